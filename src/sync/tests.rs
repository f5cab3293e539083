//! Engine tests on the in-memory store (architecture: "every crash point, out-of-order
//! completions, refusals, re-runs"). Each crash test loops over every point: the journal's
//! N-th write, or a connection's k-th operation; then a resumed run must leave exactly the
//! source's messages at the destination, each once, and one more run must copy nothing.

use super::engine::{SyncOptions, run};
use super::mapping::FolderRules;
use super::report::Silent;
use super::state::SyncState;
use crate::store::memory::{Account, MemoryStore, Switches};
use std::sync::{Arc, Mutex};

const SUB: &str = "Bertrand";
/// Two connection pairs, as in production.
const WORKERS: usize = 2;

fn message(n: usize, with_ids: bool, filler: usize) -> Vec<u8> {
    let mut m = String::new();
    if with_ids {
        m.push_str(&format!(
            "Received: from mx{n}.example (mx{n}.example [127.0.0.1])\r\n\tby bm.example; Mon, 1 Jan 2024 10:00:{:02} +0100\r\n",
            n % 60
        ));
        m.push_str(&format!("Message-ID: <m{n}@example>\r\n"));
    }
    m.push_str(&format!(
        "From: a@example\r\nTo: b@example\r\nSubject: message {n}\r\nDate: Mon, 1 Jan 2024 10:00:00 +0100\r\n\r\n"
    ));
    m.push_str(&format!("Body of {n}.\r\n"));
    m.push_str(&"x".repeat(filler));
    m.push_str("\r\n");
    m.into_bytes()
}

/// The leaver: nested and non-ASCII folders, duplicates, messages without identity headers,
/// one message over the batch budget (streamed), Junk and Trash (not copied).
fn leaver() -> Account {
    let mut a = Account::default();
    a.create("Sent", &["\\Sent"]);
    a.create("Trash", &["\\Trash"]);
    a.create("Junk", &["\\Junk"]);
    a.create("Projets", &[]);
    a.create("Projets/R&AOk-unions", &[]);
    let flags: [&[&str]; 4] = [
        &["\\Seen"],
        &[],
        &["\\Seen", "\\Flagged"],
        &["$Forwarded", "\\Answered"],
    ];
    for n in 0..24 {
        let date = format!("{:02}-Jan-2024 10:00:00 +0100", n % 28 + 1);
        a.add("INBOX", flags[n % 4], &date, &message(n, true, n * 37));
    }
    // Exact duplicates: both must arrive.
    let dup = message(100, true, 10);
    a.add("INBOX", &["\\Seen"], "02-Feb-2024 10:00:00 +0100", &dup);
    a.add("INBOX", &["\\Seen"], "02-Feb-2024 10:00:00 +0100", &dup);
    // Drafts and sent items of some clients have neither Message-ID nor Received.
    for n in 200..206 {
        a.add(
            "Sent",
            &["\\Seen"],
            "03-Mar-2024 09:00:00 +0000",
            &message(n, false, n),
        );
    }
    for n in 300..305 {
        a.add(
            "Projets/R&AOk-unions",
            &[],
            "04-Apr-2024 08:00:00 +0200",
            &message(n, true, 5),
        );
    }
    a.add(
        "Projets",
        &["\\Seen"],
        "05-May-2024 08:00:00 +0200",
        &message(400, true, 9 << 20),
    );
    a.add("Trash", &[], "06-Jun-2024 08:00:00 +0200", &message(500, true, 1));
    a.add("Junk", &[], "06-Jun-2024 08:00:00 +0200", &message(501, true, 1));
    a
}

const COPIED: [&str; 4] = ["INBOX", "Sent", "Projets", "Projets/R&AOk-unions"];

fn options() -> SyncOptions {
    SyncOptions {
        rules: FolderRules::offboarding(SUB),
        ..Default::default()
    }
}

struct Pair {
    src: Arc<Mutex<Account>>,
    dst: Arc<Mutex<Account>>,
    state_dir: tempfile::TempDir,
}

impl Pair {
    fn new() -> Self {
        Pair {
            src: Arc::new(Mutex::new(leaver())),
            dst: Arc::new(Mutex::new(Account::default())),
            state_dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// One run; `crash` makes the journal die at that write; `dst_switches` misbehave the
    /// destination connections.
    fn run(
        &self,
        crash: Option<(usize, bool)>,
        dst_switches: &Switches,
    ) -> Result<super::SyncReport, String> {
        self.run_with(crash, &Switches::default(), dst_switches)
    }

    fn run_with(
        &self,
        crash: Option<(usize, bool)>,
        src_switches: &Switches,
        dst_switches: &Switches,
    ) -> Result<super::SyncReport, String> {
        let mut workers: Vec<(MemoryStore, MemoryStore)> = (0..WORKERS)
            .map(|_| {
                (
                    MemoryStore::new(self.src.clone(), src_switches.clone()),
                    MemoryStore::new(self.dst.clone(), dst_switches.clone()),
                )
            })
            .collect();
        let mut state = SyncState::open(self.state_dir.path(), "pair").map_err(|e| e.to_string())?;
        if let Some((n, torn)) = crash {
            state.crash_at_write(n, torn);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(run(&mut workers, &options(), Some(&mut state), &mut Silent))
            .map_err(|e| e.to_string())
    }

    /// The destination holds exactly the source's messages, each once, with flags and dates,
    /// and nothing of Junk or Trash.
    fn assert_exact(&self, context: &str) {
        let src = self.src.lock().expect("lock");
        let dst = self.dst.lock().expect("lock");
        for f in COPIED {
            let target = if f == "INBOX" {
                format!("{SUB}/INBOX")
            } else {
                format!("{SUB}/{f}")
            };
            let want = src.contents(f);
            let got = dst.contents(&target);
            assert_eq!(
                got.len(),
                want.len(),
                "{context}: {target} has {} messages, want {}",
                got.len(),
                want.len()
            );
            assert!(got == want, "{context}: {target} differs from {f}");
        }
        for f in ["Trash", "Junk"] {
            assert!(
                !dst.folders.contains_key(&format!("{SUB}/{f}")),
                "{context}: {f} copied"
            );
        }
    }

    fn journal_writes_of_a_full_run() -> usize {
        let p = Pair::new();
        p.run(None, &Switches::default()).expect("clean run");
        let text = std::fs::read_to_string(p.state_dir.path().join("pair.jsonl")).expect("journal");
        text.lines().count()
    }
}

fn total_source_messages() -> u64 {
    let a = leaver();
    COPIED.iter().map(|f| a.folders[*f].messages.len() as u64).sum()
}

#[test]
fn a_clean_run_copies_everything_once_and_a_rerun_nothing() {
    let p = Pair::new();
    let r = p.run(None, &Switches::default()).expect("run");
    assert_eq!(r.copied(), total_source_messages());
    assert!(r.folders.iter().all(|f| f.verified), "{:?}", r.folders);
    p.assert_exact("first run");
    let r = p.run(None, &Switches::default()).expect("re-run");
    assert_eq!(r.copied(), 0);
    assert!(r.folders.iter().all(|f| f.unchanged), "{:?}", r.folders);
    p.assert_exact("re-run");
}

#[test]
fn resume_after_a_crash_at_every_journal_write_copies_each_message_once() {
    let writes = Pair::journal_writes_of_a_full_run();
    assert!(writes as u64 > total_source_messages(), "{writes} journal writes");
    for n in 1..=writes {
        for torn in [false, true] {
            let context = format!("crash at journal write {n}{}", if torn { " (torn)" } else { "" });
            let p = Pair::new();
            let first = p.run(Some((n, torn)), &Switches::default());
            assert!(first.is_err(), "{context}: the run did not stop");
            let resumed = p
                .run(None, &Switches::default())
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            p.assert_exact(&context);
            let again = p
                .run(None, &Switches::default())
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_eq!(again.copied(), 0, "{context}: the third run copied");
            assert!(resumed.copied() <= total_source_messages());
        }
    }
}

/// Kills one side's connections at their k-th operation, for every k until a run no longer
/// reaches it; each time a resumed run must end exact and leave the source as it was.
fn resume_after_connection_death_at_every_operation(source_side: bool) {
    let side = if source_side { "source" } else { "destination" };
    for k in 1.. {
        let context = format!("{side} dies at operation {k}");
        let p = Pair::new();
        let dying = Switches {
            fail_at_op: Some(k),
            ..Default::default()
        };
        let healthy = Switches::default();
        let (src, dst) = if source_side {
            (&dying, &healthy)
        } else {
            (&healthy, &dying)
        };
        if p.run_with(None, src, dst).is_ok() {
            assert!(k > 10, "a run of {k} operations is too short to test anything");
            p.assert_exact(&context);
            break;
        }
        assert!(k < 1000, "the {side} never stops failing");
        p.run(None, &healthy).unwrap_or_else(|e| panic!("{context}: {e}"));
        p.assert_exact(&context);
        let again = p.run(None, &healthy).unwrap_or_else(|e| panic!("{context}: {e}"));
        assert_eq!(again.copied(), 0, "{context}: the third run copied");
        // The source was only read: it is exactly as it was.
        let src = p.src.lock().expect("lock");
        let original = leaver();
        for (name, f) in &original.folders {
            assert_eq!(
                src.contents(name),
                original.contents(name),
                "{context}: source {name} changed"
            );
            assert_eq!(
                src.folders[name].uid_next, f.uid_next,
                "{context}: source {name} grew"
            );
        }
    }
}

#[test]
fn resume_after_the_destination_connection_dies_at_every_operation() {
    resume_after_connection_death_at_every_operation(false);
}

#[test]
fn resume_after_the_source_connection_dies_at_every_operation() {
    resume_after_connection_death_at_every_operation(true);
}

#[test]
fn without_uidplus_identity_alone_keeps_reruns_and_resumes_exact() {
    let no_uidplus = Switches {
        no_uidplus: true,
        ..Default::default()
    };
    let p = Pair::new();
    p.run(None, &no_uidplus).expect("run");
    p.assert_exact("no UIDPLUS");
    assert_eq!(p.run(None, &no_uidplus).expect("re-run").copied(), 0);
    for n in [1, 5, 17, 30] {
        let context = format!("no UIDPLUS, crash at journal write {n}");
        let p = Pair::new();
        let _ = p.run(Some((n, true)), &no_uidplus);
        p.run(None, &no_uidplus)
            .unwrap_or_else(|e| panic!("{context}: {e}"));
        p.assert_exact(&context);
    }
}

#[test]
fn messages_stored_out_of_order_are_journalled_against_the_right_copy() {
    let reversed = Switches {
        reverse_batches: true,
        ..Default::default()
    };
    let p = Pair::new();
    p.run(None, &reversed).expect("run");
    p.assert_exact("reversed batches");
    // Every journal line points at the destination message with the same bytes.
    let state = SyncState::open(p.state_dir.path(), "pair").expect("state");
    let src = p.src.lock().expect("lock");
    let dst = p.dst.lock().expect("lock");
    let mut checked = 0;
    for f in COPIED {
        let folder = &src.folders[f];
        let target = &dst.folders[&format!("{SUB}/{f}")];
        let records = state
            .copied_in(f, folder.uid_validity)
            .expect("journal of the folder");
        for m in &folder.messages {
            let r = &records[&m.uid];
            let copy = target
                .messages
                .iter()
                .find(|c| c.uid == r.du)
                .expect("journalled copy");
            assert_eq!(
                copy.body, m.body,
                "{f} UID {} journalled against another message",
                m.uid
            );
            checked += 1;
        }
    }
    assert_eq!(checked as u64, total_source_messages());
}

#[test]
fn a_refused_message_is_reported_the_rest_copied_and_a_rerun_duplicates_nothing() {
    let limit = Switches {
        max_size: Some(1 << 20),
        ..Default::default()
    };
    let p = Pair::new();
    let r = p.run(None, &limit).expect("run");
    let failed: Vec<_> = r.failures().collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].folder, "Projets");
    assert_eq!(r.copied(), total_source_messages() - 1);
    let r = p.run(None, &limit).expect("re-run");
    assert_eq!(r.copied(), 0);
    assert_eq!(
        r.failures().count(),
        1,
        "the refused message is tried again, and only it"
    );
    // Once the limit is lifted, the last message arrives and the copy is exact.
    p.run(None, &Switches::default()).expect("run without limit");
    p.assert_exact("after the limit was lifted");
}

#[test]
fn appends_acknowledged_but_not_kept_are_caught_by_the_count_check() {
    let p = Pair::new();
    let r = p
        .run(
            None,
            &Switches {
                lose_appends: true,
                ..Default::default()
            },
        )
        .expect("run");
    for f in &r.folders {
        assert!(!f.verified, "{}: verified although nothing was kept", f.source);
        assert_eq!(f.dest_messages, Some(0));
        let e = f.error.as_deref().unwrap_or_default();
        assert!(e.contains("check after copy"), "{}: {e}", f.source);
    }
    // The next run against a sound server copies everything: nothing was taken as done.
    let r = p.run(None, &Switches::default()).expect("second run");
    assert_eq!(r.copied(), total_source_messages());
    assert!(r.folders.iter().all(|f| f.verified && f.error.is_none()));
    p.assert_exact("after a server lost the appends");
}
