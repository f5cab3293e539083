//! imapsync's command line, parsed the way Getopt::Long does: `--opt value`, `--opt=value`,
//! single-dash `-opt`, unique prefixes (`--just` is ambiguous, `--justfo` is not), `--noopt`
//! for booleans, repeatable list options. An unknown option is an error that names it.

use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Takes a value; the last one wins.
    Value,
    /// Takes a value; repeatable.
    List,
    /// Boolean; `--noX` negates.
    Flag,
}

/// Every option we accept: imapsync's that matter, and a few of ours (marked).
const OPTIONS: &[(&str, Kind)] = &[
    ("host1", Kind::Value),
    ("host2", Kind::Value),
    ("user1", Kind::Value),
    ("user2", Kind::Value),
    ("password1", Kind::Value),
    ("password2", Kind::Value),
    ("passfile1", Kind::Value),
    ("passfile2", Kind::Value),
    ("port1", Kind::Value),
    ("port2", Kind::Value),
    ("ssl1", Kind::Flag),
    ("ssl2", Kind::Flag),
    ("tls1", Kind::Flag),
    ("tls2", Kind::Flag),
    ("sslargs1", Kind::List),
    ("sslargs2", Kind::List),
    ("authmech1", Kind::Value),
    ("authmech2", Kind::Value),
    ("authuser1", Kind::Value),
    ("authuser2", Kind::Value),
    ("sep1", Kind::Value),
    ("sep2", Kind::Value),
    ("prefix1", Kind::Value),
    ("prefix2", Kind::Value),
    ("exclude", Kind::List),
    ("include", Kind::List),
    ("folder", Kind::List),
    ("subfolder1", Kind::Value),
    ("subfolder2", Kind::Value),
    ("regextrans2", Kind::List),
    ("automap", Kind::Flag),
    ("maxage", Kind::Value),
    ("minage", Kind::Value),
    ("justlogin", Kind::Flag),
    ("justconnect", Kind::Flag),
    ("justfolders", Kind::Flag),
    ("usecache", Kind::Flag),
    ("addheader", Kind::Flag),
    ("log", Kind::Flag),
    ("logfile", Kind::Value),
    ("logdir", Kind::Value),
    ("dry", Kind::Flag),
    ("foldersizes", Kind::Flag),
    ("foldersizesatend", Kind::Flag),
    ("buffersize", Kind::Value),
    ("resyncflags", Kind::Flag),
    ("syncinternaldates", Kind::Flag),
    ("subscribeall", Kind::Flag),
    ("timeout", Kind::Value),
    ("reconnectretry1", Kind::Value),
    ("reconnectretry2", Kind::Value),
    ("timeout1", Kind::Value),
    ("timeout2", Kind::Value),
    ("version", Kind::Flag),
    ("help", Kind::Flag),
    // Ours.
    ("json", Kind::Flag),
    ("ca-file", Kind::Value),
    ("insecure", Kind::Flag),
    ("state-dir", Kind::Value),
    ("workers", Kind::Value),
    ("verify", Kind::Flag),
    ("fix-messages", Kind::Flag),
];

/// A command line that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// Not an option we know.
    #[error("unknown option: {0}")]
    Unknown(String),
    /// A prefix matching several options.
    #[error("option {given} is ambiguous (could be {candidates})")]
    Ambiguous {
        /// As typed.
        given: String,
        /// What it could mean.
        candidates: String,
    },
    /// A value option at the end of the line.
    #[error("option --{0} needs a value")]
    MissingValue(String),
    /// `--noX` on an option that takes a value, or `--flag=value`.
    #[error("option --{0} takes no value")]
    UnexpectedValue(String),
    /// A value that does not parse.
    #[error("option --{name}: {reason}")]
    BadValue {
        /// The option.
        name: String,
        /// Why.
        reason: String,
    },
    /// Something that is not an option.
    #[error("unexpected argument {0:?} (imapsync takes options only)")]
    Positional(String),
}

/// The parsed options, by canonical name.
#[derive(Debug, Default, Clone)]
pub struct RawOptions {
    values: BTreeMap<&'static str, Vec<String>>,
    flags: BTreeMap<&'static str, bool>,
}

fn lookup(name: &str) -> Result<(&'static str, Kind), ArgError> {
    if let Some(&(n, k)) = OPTIONS.iter().find(|(n, _)| *n == name) {
        return Ok((n, k));
    }
    let matches: Vec<_> = OPTIONS.iter().filter(|(n, _)| n.starts_with(name)).collect();
    match matches.as_slice() {
        [(n, k)] => Ok((n, *k)),
        [] => Err(ArgError::Unknown(format!("--{name}"))),
        many => Err(ArgError::Ambiguous {
            given: format!("--{name}"),
            candidates: many
                .iter()
                .map(|(n, _)| format!("--{n}"))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Parses imapsync arguments (without the program name).
pub fn parse(args: &[String]) -> Result<RawOptions, ArgError> {
    let mut out = RawOptions::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let body = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .filter(|b| !b.is_empty());
        let Some(body) = body else {
            return Err(ArgError::Positional(arg.clone()));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let resolved = match lookup(name) {
            Ok(r) => Ok(r),
            // `--noX` negates boolean X.
            Err(e) => match name.strip_prefix("no").map(lookup) {
                Some(Ok((n, Kind::Flag))) => {
                    if inline.is_some() {
                        return Err(ArgError::UnexpectedValue(n.to_string()));
                    }
                    out.flags.insert(n, false);
                    continue;
                }
                _ => Err(e),
            },
        };
        let (canon, kind) = resolved?;
        match kind {
            Kind::Flag => {
                if inline.is_some() {
                    return Err(ArgError::UnexpectedValue(canon.to_string()));
                }
                out.flags.insert(canon, true);
            }
            Kind::Value | Kind::List => {
                let value = match inline {
                    Some(v) => v,
                    None => {
                        let v = args
                            .get(i)
                            .ok_or_else(|| ArgError::MissingValue(canon.to_string()))?;
                        i += 1;
                        v.clone()
                    }
                };
                let slot = out.values.entry(canon).or_default();
                if kind == Kind::Value {
                    slot.clear();
                }
                slot.push(value);
            }
        }
    }
    Ok(out)
}

impl RawOptions {
    /// The value of a single-value option.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.last()).map(String::as_str)
    }
    /// All values of a list option, in order.
    pub fn list(&self, name: &str) -> &[String] {
        self.values.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
    /// A boolean: `Some(true)` given, `Some(false)` negated, `None` absent.
    pub fn flag(&self, name: &str) -> Option<bool> {
        self.flags.get(name).copied()
    }
    /// Whether a boolean is on.
    pub fn on(&self, name: &str) -> bool {
        self.flag(name) == Some(true)
    }
    /// A numeric option.
    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, ArgError> {
        self.value(name)
            .map(|v| {
                v.parse().map_err(|_| ArgError::BadValue {
                    name: name.into(),
                    reason: format!("{v:?} is not a number"),
                })
            })
            .transpose()
    }
    /// A one-character separator option.
    pub fn separator(&self, name: &str) -> Result<Option<char>, ArgError> {
        match self.value(name) {
            None => Ok(None),
            Some(v) => {
                let mut c = v.chars();
                match (c.next(), c.next()) {
                    (Some(ch), None) => Ok(Some(ch)),
                    _ => Err(ArgError::BadValue {
                        name: name.into(),
                        reason: format!("{v:?} is not one character"),
                    }),
                }
            }
        }
    }
    /// A path option.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.value(name).map(PathBuf::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &[&str]) -> Result<RawOptions, ArgError> {
        parse(&line.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn the_bluemind_guide_line_parses() {
        let o = p(&[
            "--host1",
            "bm.bluemind.loc",
            "--user1",
            "bertrand@bluemind.loc",
            "--password1",
            "8ertranD",
            "--host2",
            "bm.bluemind.loc",
            "--user2",
            "nathalie@bluemind.loc",
            "--password2",
            "Nathali3",
            "--authmech2",
            "PLAIN",
            "--port2",
            "143",
            "--sep1",
            "/",
            "--exclude",
            "^Dossiers partag",
            "--exclude",
            "^Outbox",
            "--exclude",
            "^Junk",
            "--exclude",
            "^Trash",
            "--exclude",
            "^Autres utilisateurs",
            "--nofoldersizes",
            "--buffersize",
            "8192000",
            "--sep2",
            "/",
            "--justfolders",
            "--subfolder2",
            "Nathalie",
            "--dry",
        ])
        .unwrap();
        assert_eq!(o.value("host1"), Some("bm.bluemind.loc"));
        assert_eq!(o.list("exclude").len(), 5);
        assert_eq!(o.flag("foldersizes"), Some(false));
        assert!(o.on("justfolders") && o.on("dry"));
        assert_eq!(o.number::<u16>("port2").unwrap(), Some(143));
        assert_eq!(o.separator("sep1").unwrap(), Some('/'));
        assert_eq!(o.value("subfolder2"), Some("Nathalie"));
    }

    #[test]
    fn getopt_long_forms() {
        let o = p(&[
            "-host1",
            "a",
            "--user1=b@c",
            "-dry",
            "--justfo",
            "--exclude=x",
            "--exclude",
            "y",
        ])
        .unwrap();
        assert_eq!(o.value("host1"), Some("a"));
        assert_eq!(o.value("user1"), Some("b@c"));
        assert!(o.on("dry") && o.on("justfolders"));
        assert_eq!(o.list("exclude"), ["x", "y"]);
        // The last single value wins.
        assert_eq!(
            p(&["--port1", "1", "--port1", "2"]).unwrap().value("port1"),
            Some("2")
        );
        assert_eq!(p(&["--nossl1"]).unwrap().flag("ssl1"), Some(false));
    }

    #[test]
    fn errors_name_the_option() {
        assert_eq!(
            p(&["--frobnicate"]).unwrap_err(),
            ArgError::Unknown("--frobnicate".into())
        );
        assert!(matches!(p(&["--just"]).unwrap_err(), ArgError::Ambiguous { .. }));
        assert_eq!(
            p(&["--host1"]).unwrap_err(),
            ArgError::MissingValue("host1".into())
        );
        assert_eq!(
            p(&["--dry=1"]).unwrap_err(),
            ArgError::UnexpectedValue("dry".into())
        );
        assert!(matches!(p(&["stray"]).unwrap_err(), ArgError::Positional(_)));
        assert!(p(&["--port1", "x"]).unwrap().number::<u16>("port1").is_err());
        assert!(p(&["--nohost1"]).is_err());
    }
}
