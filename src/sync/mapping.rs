//! Which source folders are copied, and where each one lands.
//!
//! Regexes see the **raw wire names** of the source (modified UTF-7, source separator and
//! prefix), as imapsync's `--include`/`--exclude` do, so imapsync command lines keep their
//! meaning; `--regextrans2` sees wire names of the destination. The subfolder is kept in
//! UTF-8 (imapsync strips `é` from `Hélène`; we do not).
//!
//! Names are converted between wire and UTF-8 with the stores' [`FolderNames`] (this module
//! knows no protocol), and only for folders that are not excluded by a regex: a folder left
//! out is never decoded, so a name a server spells badly cannot stop a run through a folder
//! nobody asked for. One that is copied and not valid on the wire is copied under a sane name,
//! said in the plan.

use crate::store::{FolderInfo, FolderNames, NamespacePrefixes};
use fancy_regex::Regex;

/// A `s/…/…/flags` substitution (imapsync `--regextrans2`).
#[derive(Debug, Clone)]
pub struct Substitution {
    regex: Regex,
    replacement: String,
    global: bool,
}

/// A regex or substitution that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// Bad regex.
    #[error("invalid regex {pattern:?}: {reason}")]
    Regex {
        /// The pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
    /// Bad substitution syntax.
    #[error("invalid substitution {0:?}: expected s/REGEX/REPLACEMENT/ (flags g and i allowed)")]
    Substitution(String),
}

/// Compiles a regex with Perl-like syntax (lookaround allowed, as in imapsync).
pub fn compile(pattern: &str) -> Result<Regex, RuleError> {
    Regex::new(pattern).map_err(|e| RuleError::Regex {
        pattern: pattern.to_string(),
        reason: e.to_string(),
    })
}

impl Substitution {
    /// Parses `s/re/repl/flags` with any delimiter (`s,a,b,` works too). Perl's `$1` becomes
    /// `${1}` for the regex crate.
    pub fn parse(expr: &str) -> Result<Self, RuleError> {
        let bad = || RuleError::Substitution(expr.to_string());
        let rest = expr.strip_prefix('s').ok_or_else(bad)?;
        let delim = rest.chars().next().ok_or_else(bad)?;
        let parts: Vec<&str> = split_unescaped(&rest[delim.len_utf8()..], delim);
        let [pattern, replacement, flags] = parts.as_slice() else {
            return Err(bad());
        };
        if flags.chars().any(|c| !"gi".contains(c)) {
            return Err(bad());
        }
        let pattern = if flags.contains('i') {
            format!("(?i){pattern}")
        } else {
            pattern.to_string()
        };
        let replacement = perl_replacement(replacement);
        Ok(Substitution {
            regex: compile(&pattern)?,
            replacement,
            global: flags.contains('g'),
        })
    }

    fn apply(&self, s: &str) -> String {
        if self.global {
            self.regex.replace_all(s, self.replacement.as_str()).into_owned()
        } else {
            self.regex.replace(s, self.replacement.as_str()).into_owned()
        }
    }
}

fn split_unescaped(s: &str, delim: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == delim {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

fn perl_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' if chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                let mut n = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    n.push(*d);
                    chars.next();
                }
                out.push_str(&format!("${{{n}}}"));
            }
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// What to copy and where.
#[derive(Debug, Clone, Default)]
pub struct FolderRules {
    /// Destination folder everything goes under (UTF-8, destination separator inside).
    pub subfolder: Option<String>,
    /// The subfolder is one folder's name, not a path (the offboarding's "J. Dupont"): a
    /// destination separator in it is replaced, not taken for a level.
    pub subfolder_is_name: bool,
    /// Only copy the source subtree under this folder, to the destination root (`--subfolder1`).
    pub source_subfolder: Option<String>,
    /// Regexes on raw source names that select folders (`--include`).
    pub include: Vec<Regex>,
    /// Exact raw source names that select folders (`--folder`).
    pub folders: Vec<String>,
    /// Regexes on raw source names that remove folders (`--exclude`).
    pub exclude: Vec<Regex>,
    /// Leave out other users' and shared namespaces (found by NAMESPACE).
    pub skip_foreign_namespaces: bool,
    /// Leave out folders with these special-use attributes (`\Junk`, `\Trash`).
    pub skip_special_use: Vec<String>,
    /// Leave out these top-level folders by name (UTF-8, e.g. `Outbox`).
    pub skip_names: Vec<String>,
    /// Leave out, as personal, folders with a level of their name among these (UTF-8,
    /// case-insensitive: `Perso`, `Privé`…), and everything under them.
    pub skip_personal: Vec<String>,
    /// Force the source separator (`--sep1`).
    pub sep1: Option<char>,
    /// Force the destination separator (`--sep2`).
    pub sep2: Option<char>,
    /// Substitutions on destination wire names (`--regextrans2`).
    pub regextrans2: Vec<Substitution>,
    /// Force the source's personal prefix, wire form (`--prefix1`).
    pub prefix1: Option<String>,
    /// Force the destination's personal prefix, wire form (`--prefix2`).
    pub prefix2: Option<String>,
    /// Map special-use folders to the destination's folder of the same use (`--automap`);
    /// off with a subfolder, as in imapsync.
    pub automap: bool,
}

impl FolderRules {
    /// The offboarding defaults: everything of the leaver's own, under `subfolder`, without
    /// other people's folders, Junk, Trash and Outbox.
    pub fn offboarding(subfolder: &str) -> Self {
        FolderRules {
            subfolder: Some(subfolder.to_string()),
            subfolder_is_name: true,
            skip_foreign_namespaces: true,
            skip_special_use: vec!["\\Junk".into(), "\\Trash".into()],
            skip_names: vec!["Outbox".into(), "Junk".into(), "Trash".into()],
            ..Default::default()
        }
    }
}

/// One source folder and its fate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct FolderMapping {
    /// Source wire name.
    pub source: String,
    /// Source name in UTF-8.
    pub source_utf8: String,
    /// Destination wire name (empty when skipped).
    pub dest: String,
    /// Destination name in UTF-8.
    pub dest_utf8: String,
    /// Why it is not copied, if it is not.
    pub skipped: Option<String>,
    /// Something a person should know about this folder's name (a source name that was not
    /// valid on the wire and is copied under a sane one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Left out as personal mail.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub personal: bool,
}

/// A folder name that cannot be mapped.
#[derive(Debug, thiserror::Error)]
#[error("folder {name:?}: {reason}")]
pub struct MappingError {
    /// The wire name.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// Selects and maps the source folders. Every selectable source folder gets an entry, copied
/// or skipped with its reason, so the plan shows everything.
pub fn plan_folders(
    source: &[FolderInfo],
    (ns1, names1): (&NamespacePrefixes, FolderNames),
    (ns2, names2): (&NamespacePrefixes, FolderNames),
    rules: &FolderRules,
) -> Result<Vec<FolderMapping>, MappingError> {
    let display = |wire: &str| (names1.to_display)(wire).0;
    let (ns_prefix1, nsep1) = ns1.personal.clone().unwrap_or_default();
    let (ns_prefix2, nsep2) = ns2.personal.clone().unwrap_or_default();
    let prefix1 = rules.prefix1.clone().unwrap_or(ns_prefix1);
    let prefix2 = rules.prefix2.clone().unwrap_or(ns_prefix2);
    let sep1 = rules
        .sep1
        .or(nsep1)
        .or_else(|| source.iter().find_map(|f| f.delimiter))
        .unwrap_or('/');
    let sep2 = rules.sep2.or(nsep2).unwrap_or('/');
    let selective = !rules.include.is_empty() || !rules.folders.is_empty();
    let mut out = Vec::new();
    for f in source.iter().filter(|f| f.selectable()) {
        let raw = &f.name;
        let mut skipped = None;
        if selective
            && !rules.folders.iter().any(|n| n == raw)
            && !rules.include.iter().any(|r| r.is_match(raw).unwrap_or(false))
        {
            skipped = Some("not selected by --include/--folder".to_string());
        } else if let Some(r) = rules.exclude.iter().find(|r| r.is_match(raw).unwrap_or(false)) {
            skipped = Some(format!("excluded by {:?}", r.as_str()));
        }
        if let Some(reason) = skipped {
            // Left out by the admin's own rules: never decoded, shown as on the wire.
            out.push(FolderMapping {
                source: raw.clone(),
                source_utf8: raw.clone(),
                dest: String::new(),
                dest_utf8: String::new(),
                skipped: Some(reason),
                note: None,
                personal: false,
            });
            continue;
        }
        let (utf8, irregular) = (names1.to_display)(raw);
        let note = irregular.map(|why| format!("source name {raw:?} is {why}: copied as {utf8:?}"));
        if rules.skip_foreign_namespaces
            && let Some(p) = ns1
                .foreign
                .iter()
                .find(|p| !p.is_empty() && (raw.starts_with(p.as_str()) || raw == p.trim_end_matches(sep1)))
        {
            skipped = Some(format!("in namespace {:?} (someone else's folders)", display(p)));
        } else if let Some(a) = rules.skip_special_use.iter().find(|a| f.has_attribute(a)) {
            skipped = Some(format!("special-use {a}"));
        } else if rules
            .skip_names
            .iter()
            .any(|n| utf8.strip_prefix(&prefix1).unwrap_or(&utf8) == n)
        {
            skipped = Some("left out by default".to_string());
        }
        let personal = skipped.is_none()
            && utf8
                .strip_prefix(&prefix1)
                .unwrap_or(&utf8)
                .split(sep1)
                .any(|level| {
                    rules
                        .skip_personal
                        .iter()
                        .any(|p| p.to_lowercase() == level.trim().to_lowercase())
                });
        if personal {
            skipped = Some("personal folder (--include-personal copies it)".to_string());
        }
        // Strip the source prefix (never from INBOX), then the --subfolder1 root.
        let mut rel = utf8.strip_prefix(&display(&prefix1)).unwrap_or(&utf8).to_string();
        if let Some(sub1) = &rules.source_subfolder {
            match rel.strip_prefix(sub1.as_str()) {
                Some("") => rel = "INBOX".to_string(),
                Some(rest) if rest.starts_with(sep1) => rel = rest[sep1.len_utf8()..].to_string(),
                _ if skipped.is_none() => skipped = Some(format!("outside --subfolder1 {sub1:?}")),
                _ => {}
            }
        }
        let mut changed = Vec::new();
        let segments: Vec<String> = rel
            .split(sep1)
            .map(|seg| {
                let fixed = segment_for(seg, sep1, sep2);
                if fixed != seg {
                    changed.push(format!("{seg:?} became {fixed:?}"));
                }
                fixed
            })
            .collect();
        let rel = segments.join(&sep2.to_string());
        let mut dest = match &rules.subfolder {
            Some(sub) if rules.subfolder_is_name => {
                let fixed = segment_for(sub, sep1, sep2);
                if fixed != *sub {
                    changed.push(format!("the folder {sub:?} became {fixed:?}"));
                }
                format!("{fixed}{sep2}{rel}")
            }
            Some(sub) => format!("{sub}{sep2}{rel}"),
            None => rel,
        };
        let note = match (note, changed.is_empty()) {
            (note, true) => note,
            (note, false) => {
                let why = format!(
                    "the destination separates levels with {sep2:?}: {}, so that the hierarchy stays as it is",
                    changed.join(", ")
                );
                Some(note.map_or(why.clone(), |n| format!("{n}; {why}")))
            }
        };
        let prefix2 = (names2.to_display)(&prefix2).0;
        if !dest.eq_ignore_ascii_case("INBOX") && !dest.starts_with(&prefix2) {
            dest = format!("{prefix2}{dest}");
        }
        let mut wire = (names2.to_wire)(&dest);
        for s in &rules.regextrans2 {
            wire = s.apply(&wire);
        }
        let (dest_utf8, bad) = (names2.to_display)(&wire);
        if let Some(e) = bad.filter(|_| !rules.regextrans2.is_empty()) {
            return Err(MappingError {
                name: raw.clone(),
                reason: format!(
                    "--regextrans2 made an invalid destination name {wire:?} ({e}); write non-ASCII letters in \
                     modified UTF-7 as imapsync needs (é is &AOk-: `offboard probe` shows the raw names)"
                ),
            });
        }
        out.push(FolderMapping {
            source: raw.clone(),
            source_utf8: utf8,
            dest: wire,
            dest_utf8,
            skipped,
            note,
            personal,
        });
    }
    out.sort_by(|a, b| a.source.cmp(&b.source));
    Ok(out)
}

/// One level of a source name as the destination can hold it: the destination's separator
/// inside a name would make a level of its own ("J. Dupont" on a `.` server), so it is swapped
/// for the source's, and a `/` left that way becomes `_` where `/` is not the separator — as
/// imapsync does (its separator swap and `fixslash2`), so both tools name folders alike.
fn segment_for(segment: &str, sep1: char, sep2: char) -> String {
    segment
        .chars()
        .map(|c| if c == sep2 { sep1 } else { c })
        .map(|c| if c == '/' && sep2 != '/' { '_' } else { c })
        .collect()
}

/// The special uses `--automap` follows (RFC 6154).
const SPECIAL_USES: [&str; 7] = [
    "\\Sent",
    "\\Drafts",
    "\\Trash",
    "\\Junk",
    "\\Archive",
    "\\All",
    "\\Flagged",
];

/// `--automap`: a source folder with a special use goes to the destination's folder with the
/// same use (`Sent` → `Envoyés` when that is the destination's `\Sent`). Only without a
/// subfolder: under one, every folder keeps its own name.
pub fn automap(
    mappings: &mut [FolderMapping],
    source: &[FolderInfo],
    dest: &[FolderInfo],
    rules: &FolderRules,
    names2: FolderNames,
) {
    if !rules.automap || rules.subfolder.is_some() {
        return;
    }
    for m in mappings.iter_mut().filter(|m| m.skipped.is_none()) {
        let Some(src) = source.iter().find(|f| f.name == m.source) else {
            continue;
        };
        let Some(usage) = SPECIAL_USES.iter().find(|u| src.has_attribute(u)) else {
            continue;
        };
        if let Some(target) = dest.iter().find(|f| f.has_attribute(usage)) {
            m.dest = target.name.clone();
            m.dest_utf8 = (names2.to_display)(&target.name).0;
        }
    }
}

/// The destination folders to create for `dest`, parents first (wire names).
pub fn with_parents(dest_utf8: &str, sep: char, names: FolderNames) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = String::new();
    for part in dest_utf8.split(sep) {
        if !path.is_empty() {
            path.push(sep);
        }
        path.push_str(part);
        out.push((names.to_wire)(&path));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    // The tests speak IMAP's names; the module itself never imports `imap`.
    use crate::imap::store::MUTF7_NAMES as N;

    fn folder(name: &str, attrs: &[&str]) -> FolderInfo {
        FolderInfo {
            name: name.into(),
            delimiter: Some('/'),
            attributes: attrs.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn bluemind_ns() -> NamespacePrefixes {
        NamespacePrefixes {
            personal: Some((String::new(), Some('/'))),
            foreign: vec!["Autres utilisateurs/".into(), "Dossiers partag&AOk-s/".into()],
        }
    }

    fn source() -> Vec<FolderInfo> {
        vec![
            folder("INBOX", &[]),
            folder("Sent", &["\\Sent"]),
            folder("Junk", &["\\Junk"]),
            folder("Trash", &["\\Trash"]),
            folder("Outbox", &[]),
            folder("Projets/Client &AOk-", &[]),
            folder("Autres utilisateurs/tom", &[]),
            folder("Dossiers partag&AOk-s", &["\\Noselect"]),
            folder("Dossiers partag&AOk-s/compta", &[]),
        ]
    }

    fn dest_of(m: &[FolderMapping], src: &str) -> Option<String> {
        m.iter()
            .find(|f| f.source == src && f.skipped.is_none())
            .map(|f| f.dest_utf8.clone())
    }

    #[test]
    fn offboarding_defaults_keep_only_the_leavers_own_folders() {
        let m = plan_folders(
            &source(),
            (&bluemind_ns(), N),
            (&bluemind_ns(), N),
            &FolderRules::offboarding("Bertrand Dupré"),
        )
        .unwrap();
        let copied: Vec<_> = m
            .iter()
            .filter(|f| f.skipped.is_none())
            .map(|f| f.dest_utf8.as_str())
            .collect();
        assert_eq!(
            copied,
            [
                "Bertrand Dupré/INBOX",
                "Bertrand Dupré/Projets/Client é",
                "Bertrand Dupré/Sent"
            ]
        );
        assert_eq!(m.iter().find(|f| f.source == "Bertrand Dupré").map(|_| ()), None);
        assert!(
            m.iter()
                .find(|f| f.source == "Dossiers partag&AOk-s/compta")
                .unwrap()
                .skipped
                .as_ref()
                .unwrap()
                .contains("Dossiers partagés")
        );
        // The UTF-8 subfolder is encoded on the wire, not stripped.
        assert_eq!(
            m.iter().find(|f| f.source == "INBOX").unwrap().dest,
            "Bertrand Dupr&AOk-/INBOX"
        );
    }

    #[test]
    fn imapsync_excludes_match_raw_names_unanchored_and_ored() {
        let rules = FolderRules {
            subfolder: Some("Nathalie".into()),
            exclude: [
                "^Dossiers partag",
                "^Outbox",
                "^Junk",
                "^Trash",
                "^Autres utilisateurs",
            ]
            .iter()
            .map(|p| compile(p).unwrap())
            .collect(),
            ..Default::default()
        };
        let m = plan_folders(&source(), (&bluemind_ns(), N), (&bluemind_ns(), N), &rules).unwrap();
        let copied: Vec<_> = m
            .iter()
            .filter(|f| f.skipped.is_none())
            .map(|f| f.dest_utf8.as_str())
            .collect();
        assert_eq!(
            copied,
            ["Nathalie/INBOX", "Nathalie/Projets/Client é", "Nathalie/Sent"]
        );
        // A UTF-8 pattern does not match the wire name (imapsync's behaviour, documented).
        let rules = FolderRules {
            exclude: vec![compile("^Projets/Client é").unwrap()],
            ..Default::default()
        };
        let m = plan_folders(&source(), (&bluemind_ns(), N), (&bluemind_ns(), N), &rules).unwrap();
        assert!(
            m.iter()
                .find(|f| f.source == "Projets/Client &AOk-")
                .unwrap()
                .skipped
                .is_none()
        );
        // Unanchored.
        let rules = FolderRules {
            exclude: vec![compile("ent").unwrap()],
            ..Default::default()
        };
        let m = plan_folders(&source(), (&bluemind_ns(), N), (&bluemind_ns(), N), &rules).unwrap();
        assert!(m.iter().find(|f| f.source == "Sent").unwrap().skipped.is_some());
        assert!(
            m.iter()
                .find(|f| f.source == "Projets/Client &AOk-")
                .unwrap()
                .skipped
                .is_some()
        );
    }

    #[test]
    fn includes_select_first_then_excludes_remove() {
        let rules = FolderRules {
            include: vec![compile("^Projets").unwrap(), compile("^INBOX$").unwrap()],
            exclude: vec![compile("INBOX").unwrap()],
            ..Default::default()
        };
        let m = plan_folders(&source(), (&bluemind_ns(), N), (&bluemind_ns(), N), &rules).unwrap();
        let copied: Vec<_> = m
            .iter()
            .filter(|f| f.skipped.is_none())
            .map(|f| f.source.as_str())
            .collect();
        assert_eq!(copied, ["Projets/Client &AOk-"]);
    }

    #[test]
    fn separators_prefixes_and_regextrans2() {
        let ns1 = NamespacePrefixes {
            personal: Some(("INBOX.".into(), Some('.'))),
            foreign: vec![],
        };
        let ns2 = bluemind_ns();
        let src = vec![folder("INBOX", &[]), folder("INBOX.Projets.2024", &[])];
        let rules = FolderRules {
            subfolder: Some("Archives/Bob".into()),
            ..Default::default()
        };
        let m = plan_folders(&src, (&ns1, N), (&ns2, N), &rules).unwrap();
        assert_eq!(dest_of(&m, "INBOX").unwrap(), "Archives/Bob/INBOX");
        assert_eq!(
            dest_of(&m, "INBOX.Projets.2024").unwrap(),
            "Archives/Bob/Projets/2024"
        );
        // --regextrans2 works on wire names, as in imapsync: é is written &AOk-.
        let rules = FolderRules {
            regextrans2: vec![Substitution::parse("s,^(.*)2024$,${1}Ann&AOk-e 2024,").unwrap()],
            ..Default::default()
        };
        let m = plan_folders(&src, (&ns1, N), (&ns2, N), &rules).unwrap();
        assert_eq!(dest_of(&m, "INBOX.Projets.2024").unwrap(), "Projets/Année 2024");
        let rules = FolderRules {
            regextrans2: vec![Substitution::parse("s,2024,Année,").unwrap()],
            ..Default::default()
        };
        let err = plan_folders(&src, (&ns1, N), (&ns2, N), &rules).unwrap_err();
        assert!(err.to_string().contains("modified UTF-7"), "{err}");
        let s = Substitution::parse("s/Sent/Envoy&AOk-s/g").unwrap();
        assert_eq!(s.apply("Sent/Sent"), "Envoy&AOk-s/Envoy&AOk-s");
        let s = Substitution::parse("s/^(Old)(.*)$/$2 $1/").unwrap();
        assert_eq!(s.apply("OldStuff"), "Stuff Old");
        assert!(Substitution::parse("s/a/b/x").is_err());
        assert!(Substitution::parse("tr/a/b/").is_err());
    }

    #[test]
    fn subfolder1_takes_a_subtree_to_the_root() {
        let src = vec![folder("INBOX", &[]), folder("Old", &[]), folder("Old/2020", &[])];
        let rules = FolderRules {
            source_subfolder: Some("Old".into()),
            ..Default::default()
        };
        let m = plan_folders(&src, (&bluemind_ns(), N), (&bluemind_ns(), N), &rules).unwrap();
        assert_eq!(dest_of(&m, "Old").unwrap(), "INBOX");
        assert_eq!(dest_of(&m, "Old/2020").unwrap(), "2020");
        assert!(dest_of(&m, "INBOX").is_none());
    }

    #[test]
    fn a_badly_spelt_source_name_is_copied_under_a_sane_name_and_an_excluded_one_never_decoded() {
        let src = vec![
            folder("INBOX", &[]),
            folder("Bad &A!!-", &[]),
            folder("R\u{e9}unions", &[]),
            folder("&AGE-rchives", &[]),
            folder("Old &broken", &[]),
        ];
        let rules = FolderRules {
            subfolder: Some("N".into()),
            exclude: vec![compile("^Old").unwrap()],
            ..Default::default()
        };
        let m = plan_folders(&src, (&bluemind_ns(), N), (&bluemind_ns(), N), &rules).unwrap();
        let of = |wire: &str| m.iter().find(|f| f.source == wire).unwrap();
        assert_eq!(of("Bad &A!!-").dest_utf8, "N/Bad &A!!-");
        assert_eq!(of("Bad &A!!-").dest, "N/Bad &-A!!-");
        assert!(
            of("Bad &A!!-")
                .note
                .as_deref()
                .unwrap()
                .contains("not valid modified UTF-7")
        );
        assert_eq!(of("R\u{e9}unions").dest, "N/R&AOk-unions");
        assert_eq!(of("&AGE-rchives").dest_utf8, "N/archives");
        assert!(of("INBOX").note.is_none());
        // Excluded: left out as it is, not decoded.
        let old = of("Old &broken");
        assert!(old.skipped.is_some() && old.note.is_none());
        assert_eq!(old.source_utf8, "Old &broken");
    }

    #[test]
    fn automap_follows_special_use_and_prefixes_can_be_forced() {
        let src = vec![
            folder("INBOX", &[]),
            folder("Sent", &["\\Sent"]),
            folder("Notes", &[]),
        ];
        let dst = vec![folder("INBOX", &[]), folder("Envoy&AOk-s", &["\\Sent"])];
        let rules = FolderRules {
            automap: true,
            ..Default::default()
        };
        let mut m = plan_folders(&src, (&bluemind_ns(), N), (&bluemind_ns(), N), &rules).unwrap();
        automap(&mut m, &src, &dst, &rules, N);
        assert_eq!(dest_of(&m, "Sent").unwrap(), "Envoyés");
        assert_eq!(dest_of(&m, "Notes").unwrap(), "Notes");
        // Under a subfolder, names are kept.
        let rules = FolderRules {
            automap: true,
            subfolder: Some("N".into()),
            ..Default::default()
        };
        let mut m = plan_folders(&src, (&bluemind_ns(), N), (&bluemind_ns(), N), &rules).unwrap();
        automap(&mut m, &src, &dst, &rules, N);
        assert_eq!(dest_of(&m, "Sent").unwrap(), "N/Sent");
        // --prefix2 forces the destination prefix.
        let rules = FolderRules {
            prefix2: Some("INBOX.".into()),
            sep2: Some('.'),
            ..Default::default()
        };
        let m = plan_folders(&src, (&bluemind_ns(), N), (&bluemind_ns(), N), &rules).unwrap();
        assert_eq!(dest_of(&m, "Notes").unwrap(), "INBOX.Notes");
    }

    /// Issue 13: a name level holding the destination's separator stays one level, named as
    /// imapsync names it, and the plan says so.
    #[test]
    fn a_separator_inside_a_name_does_not_make_a_level() {
        let dot_ns = NamespacePrefixes {
            personal: Some((String::new(), Some('.'))),
            ..Default::default()
        };
        let slash_ns = bluemind_ns();
        let src = vec![
            folder("INBOX", &[]),
            folder("Clients/M. Dupont", &[]),
            folder("Notes", &[]),
        ];
        // (source separator side, destination side, subfolder, is a name) → Clients/M. Dupont
        // and INBOX's destinations.
        let cases: [(&NamespacePrefixes, &NamespacePrefixes, &str, bool, &str, &str); 4] = [
            (
                &slash_ns,
                &dot_ns,
                "J. Dupont",
                true,
                "J_ Dupont.Clients.M_ Dupont",
                "J_ Dupont.INBOX",
            ),
            (
                &slash_ns,
                &slash_ns,
                "J. Dupont",
                true,
                "J. Dupont/Clients/M. Dupont",
                "J. Dupont/INBOX",
            ),
            // imapsync's --subfolder2 is a path written with host2's separator.
            (
                &slash_ns,
                &dot_ns,
                "Archives.J",
                false,
                "Archives.J.Clients.M_ Dupont",
                "Archives.J.INBOX",
            ),
            (
                &slash_ns,
                &slash_ns,
                "Archives/J",
                false,
                "Archives/J/Clients/M. Dupont",
                "Archives/J/INBOX",
            ),
        ];
        for (ns1, ns2, sub, is_name, clients, inbox) in cases {
            let rules = FolderRules {
                subfolder: Some(sub.into()),
                subfolder_is_name: is_name,
                ..Default::default()
            };
            let m = plan_folders(&src, (ns1, N), (ns2, N), &rules).unwrap();
            assert_eq!(dest_of(&m, "Clients/M. Dupont").unwrap(), clients, "{sub}");
            assert_eq!(dest_of(&m, "INBOX").unwrap(), inbox, "{sub}");
            let note = m
                .iter()
                .find(|m| m.source == "Clients/M. Dupont")
                .and_then(|m| m.note.clone());
            assert_eq!(note.is_some(), clients.contains('_'), "{note:?}");
        }
        // A source with `.` levels and a `/` inside a name, into a `/` server.
        let src = vec![folder("Clients.A/B", &[])];
        let m = plan_folders(&src, (&dot_ns, N), (&slash_ns, N), &FolderRules::default()).unwrap();
        assert_eq!(dest_of(&m, "Clients.A/B").unwrap(), "Clients/A.B");
    }

    #[test]
    fn parents_come_first() {
        assert_eq!(
            with_parents("Nathalie/Projets/Client é", '/', N),
            ["Nathalie", "Nathalie/Projets", "Nathalie/Projets/Client &AOk-"]
        );
    }
}
