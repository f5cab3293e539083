//! Human output of a copy: the folder plan (raw ↔ UTF-8 names, so regexes can be written),
//! per-folder lines, and the closing statistics block modelled on imapsync's. Also the exit
//! code of a finished run.

use super::exit::Exit;
use crate::store::{FailureKind, StoreError, Uid};
use crate::sync::FolderMapping;
use crate::sync::report::{FolderFailureKind, FolderReport, Reporter, SyncReport};
use std::collections::BTreeMap;

/// Prints progress lines to stdout (or nothing, for `--json`).
#[derive(Debug)]
pub struct Printer {
    enabled: bool,
    dry: bool,
    progress: bool,
}

impl Printer {
    /// A printer; `enabled = false` prints no folder lines (progress is separate).
    pub fn new(enabled: bool) -> Self {
        Printer {
            enabled,
            dry: false,
            progress: false,
        }
    }

    /// Feeds the progress display (live on a terminal, a line every 30 s otherwise).
    pub fn progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// Says folders "would" be created, not "created": nothing is changed in a dry run.
    pub fn dry_run(mut self, dry: bool) -> Self {
        self.dry = dry;
        self
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

impl Reporter for Printer {
    fn plan(&mut self, mappings: &[FolderMapping]) {
        if !self.enabled {
            return;
        }
        crate::outln!("Folders (host1 raw name = UTF-8 name -> host2 folder):");
        for m in mappings.iter().filter(|m| m.skipped.is_none()) {
            crate::outln!("  [{}] = [{}] -> [{}]", m.source, m.source_utf8, m.dest_utf8);
            if let Some(note) = &m.note {
                crate::outln!("    note: {note}");
            }
        }
        let skipped: Vec<_> = mappings.iter().filter(|m| m.skipped.is_some()).collect();
        if !skipped.is_empty() {
            crate::outln!("Folders left out:");
            for m in skipped {
                crate::outln!(
                    "  [{}] = [{}]: {}",
                    m.source,
                    m.source_utf8,
                    m.skipped.as_deref().unwrap_or("")
                );
            }
        }
    }

    fn folder_to_copy(&mut self, folder: &str, messages: u64, bytes: u64) {
        if self.progress {
            super::output::get().folder_to_copy(folder, messages, bytes);
        }
    }

    fn message_copied(&mut self, folder: &str, bytes: u64) {
        if self.progress {
            super::output::get().message_copied(folder, bytes);
        }
    }

    fn message_failed(&mut self, folder: &str, uid: Uid, e: &StoreError) {
        crate::errln!("error: {folder}, UID {uid}: {e}");
    }

    fn folder_done(&mut self, r: &FolderReport) {
        if self.progress {
            super::output::get().folder_finished(&r.source);
        }
        if !self.enabled {
            return;
        }
        let created = match (r.created, self.dry) {
            (true, false) => " (created)",
            (true, true) => " (would create)",
            _ => "",
        };
        let removed = if r.removed_by_successor > 0 {
            format!(", {} removed by the successor since", r.removed_by_successor)
        } else {
            String::new()
        };
        match &r.error {
            Some(e) => crate::outln!("{} -> {}{created}: FAILED: {e}", r.source, r.dest),
            None if r.dest_removed => crate::outln!(
                "{} -> {}: deleted or renamed by the successor since an earlier run delivered {} messages; \
                 not made again (--recopy-removed to copy it again)",
                r.source,
                r.dest,
                r.removed_by_successor
            ),
            None => crate::outln!(
                "{} -> {}{created}: {} found, {} copied ({}), {} already there{removed}{}",
                r.source,
                r.dest,
                r.found,
                r.copied,
                bytes(r.bytes_copied),
                r.already,
                if r.failed.is_empty() {
                    String::new()
                } else {
                    format!(", {} failed", r.failed.len())
                }
            ),
        }
    }

    fn reconnecting(&mut self, folder: Option<&str>, attempt: u32, why: &StoreError) {
        let place = folder.map(|f| format!(" while copying {f}")).unwrap_or_default();
        crate::errln!("warning: connection lost{place} ({why}); reconnecting (attempt {attempt})");
    }
}

/// The closing block.
pub fn print_statistics(r: &SyncReport) {
    let failures: Vec<_> = r.failures().collect();
    let folder_errors: Vec<_> = r.folder_errors().collect();
    let altered: Vec<_> = r.altered().collect();
    let repaired: Vec<_> = r.repaired().collect();
    let secs = r.duration_secs.max(0.001);
    let ok_folders = r.folders.len() - folder_errors.len();
    crate::outln!();
    crate::outln!(
        "++++ Statistics{}",
        if r.dry_run {
            " (dry run: nothing was changed)"
        } else {
            ""
        }
    );
    crate::outln!("Transfer time                  : {:.2} sec", r.duration_secs);
    crate::outln!(
        "Folders synced                 : {ok_folders}/{} synced",
        r.folders.len()
    );
    crate::outln!(
        "Folders {}           : {}",
        if r.dry_run { "would create" } else { "created     " },
        r.folders.iter().filter(|f| f.created).count()
    );
    if !r.dry_run {
        crate::outln!(
            "Folders verified               : {}/{} (message counts read back from host2)",
            r.folders.iter().filter(|f| f.verified).count(),
            r.folders.len()
        );
    }
    crate::outln!(
        "Messages found in host1        : {} ({})",
        r.found(),
        bytes(r.bytes_found())
    );
    if r.removed_by_successor() > 0 {
        crate::outln!(
            "Messages removed on host2 since: {} (delivered earlier, not copied again)",
            r.removed_by_successor()
        );
    }
    if r.dry_run {
        crate::outln!(
            "Messages transferred           : 0 (could be {} without dry mode, {})",
            r.copied(),
            bytes(r.bytes_copied())
        );
    } else {
        crate::outln!(
            "Messages transferred           : {} ({})",
            r.copied(),
            bytes(r.bytes_copied())
        );
    }
    crate::outln!("Messages already on host2      : {}", r.already());
    let resynced: u64 = r.folders.iter().map(|f| f.flags_updated).sum();
    if resynced > 0 {
        crate::outln!("Flags re-synced                : {resynced}");
    }
    crate::outln!("Messages failed                : {}", failures.len());
    if !repaired.is_empty() {
        crate::outln!(
            "Messages repaired              : {} (--fix-messages)",
            repaired.len()
        );
        for p in &repaired {
            let changes: Vec<String> = p.changes.iter().map(ToString::to_string).collect();
            crate::outln!(
                "  {}, UID {}: {} (host2 had refused it: {})",
                p.folder,
                p.uid,
                changes.join(", "),
                p.refused
            );
        }
    }
    if !r.dry_run {
        crate::outln!(
            "Messages read back             : {} ({} stored altered by host2)",
            r.folders.iter().map(|f| f.read_back).sum::<u64>(),
            altered.len()
        );
        crate::outln!(
            "Message rate                   : {:.1} messages/s",
            r.copied() as f64 / secs
        );
        crate::outln!(
            "Average bandwidth rate         : {}/s",
            bytes((r.bytes_copied() as f64 / secs) as u64)
        );
    }
    let errors = failures.len() + folder_errors.len() + altered.len();
    crate::outln!("Detected {errors} errors");
    for (i, f) in failures.iter().enumerate() {
        crate::outln!(
            "Err {}/{errors}: {}, UID {}: {}",
            i + 1,
            f.folder,
            f.uid,
            f.message
        );
    }
    for (i, f) in folder_errors.iter().enumerate() {
        crate::outln!(
            "Err {}/{errors}: folder {}: {}",
            failures.len() + i + 1,
            f.source,
            f.error.as_ref().map(|e| e.message.as_str()).unwrap_or("")
        );
    }
    let unchecked: u64 = r.folders.iter().map(|f| f.unchecked_8bit).sum();
    if unchecked > 0 {
        crate::outln!(
            "host2 rewrites 8-bit header bytes: {unchecked} more copies with such headers are \
             likely altered too (not read back; --verify reads and lists each)"
        );
    }
    for (i, a) in altered.iter().enumerate() {
        crate::outln!(
            "Err {}/{errors}: {}, UID {}: copied as UID {} but host2 altered it: {}",
            failures.len() + folder_errors.len() + i + 1,
            a.folder,
            a.uid,
            a.dest_uid,
            a.what
        );
    }
    let exit = exit_for(r);
    crate::outln!("Exiting with return value {} ({exit:?})", exit.code());
}

/// The exit code of a finished run: 0, or imapsync's code of the most frequent error class.
pub fn exit_for(r: &SyncReport) -> Exit {
    let mut counts: BTreeMap<u8, usize> = BTreeMap::new();
    for f in r.failures() {
        let e = match f.kind {
            FailureKind::OverQuota => Exit::OverQuota,
            FailureKind::Append => Exit::AppendFailed,
            FailureKind::Fetch => Exit::FetchFailed,
            FailureKind::Create => Exit::CreateFailed,
            FailureKind::Select => Exit::SelectFailed,
            FailureKind::Connection => Exit::WithErrors,
        };
        *counts.entry(e.code()).or_default() += 1;
    }
    for f in r.folder_errors().filter_map(|f| f.error.as_ref()) {
        let e = match f.kind {
            FolderFailureKind::OverQuota => Exit::OverQuota,
            FolderFailureKind::Append => Exit::AppendFailed,
            FolderFailureKind::Fetch => Exit::FetchFailed,
            FolderFailureKind::Create => Exit::CreateFailed,
            FolderFailureKind::Select => Exit::SelectFailed,
            FolderFailureKind::Connection | FolderFailureKind::CountCheck => Exit::WithErrors,
        };
        *counts.entry(e.code()).or_default() += 1;
    }
    // Copied, but not byte for byte: the server's doing, reported per message.
    *counts.entry(Exit::WithErrors.code()).or_default() += r.altered().count();
    counts.retain(|_, n| *n > 0);
    let Some(max) = counts.values().max().copied() else {
        return Exit::Ok;
    };
    let code = counts
        .iter()
        .find(|(_, n)| **n == max)
        .map(|(c, _)| *c)
        .unwrap_or(Exit::WithErrors.code());
    Exit::from_code(code).unwrap_or(Exit::WithErrors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::report::FolderFailure;

    fn with_folder_errors(kinds: &[FolderFailureKind]) -> SyncReport {
        SyncReport {
            folders: kinds
                .iter()
                .map(|k| FolderReport {
                    error: Some(FolderFailure::new(*k, "x")),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn folder_failures_have_the_exit_codes_the_readme_gives() {
        let table = [
            (FolderFailureKind::Create, 116),
            (FolderFailureKind::Select, 117),
            (FolderFailureKind::Fetch, 115),
            (FolderFailureKind::Append, 114),
            (FolderFailureKind::OverQuota, 113),
            (FolderFailureKind::CountCheck, 111),
            (FolderFailureKind::Connection, 111),
        ];
        for (kind, code) in table {
            assert_eq!(exit_for(&with_folder_errors(&[kind])).code(), code, "{kind:?}");
        }
        assert_eq!(exit_for(&with_folder_errors(&[])), Exit::Ok);
        // The most frequent class wins, as in imapsync.
        let mixed = with_folder_errors(&[
            FolderFailureKind::Select,
            FolderFailureKind::Create,
            FolderFailureKind::Create,
        ]);
        assert_eq!(exit_for(&mixed).code(), 116);
    }
}
