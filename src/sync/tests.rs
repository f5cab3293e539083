//! Engine tests on the in-memory store (architecture: "every crash point, out-of-order
//! completions, refusals, re-runs"). Each crash test loops over every point: the journal's
//! N-th write, or a connection's k-th operation; then a resumed run must leave exactly the
//! source's messages at the destination, each once, and one more run must copy nothing.

use super::engine::{Reconnect, SyncError, SyncOptions, run};
use super::journal::Journal;
use super::mapping::FolderRules;
use super::report::{FolderFailureKind, Silent, SyncReport};
use crate::store::memory::{Account, MemoryStore, Switches};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// The offboarding's options; no reconnection (the crash loops test resumption by a new
/// run), and no waiting where a test turns reconnection on.
fn options() -> SyncOptions {
    SyncOptions {
        rules: FolderRules::offboarding(SUB),
        keep_removals: true,
        reconnect: Reconnect {
            attempts: 0,
            first_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        },
        ..Default::default()
    }
}

fn reconnecting() -> SyncOptions {
    let mut o = options();
    o.reconnect.attempts = 3;
    o
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
        self.run_opts(&options(), crash, src_switches, dst_switches)
            .map_err(|b| b.1.to_string())
    }

    /// One run with these options; a stopped run gives its report and error.
    fn run_opts(
        &self,
        opts: &SyncOptions,
        crash: Option<(usize, bool)>,
        src_switches: &Switches,
        dst_switches: &Switches,
    ) -> Result<SyncReport, Box<(SyncReport, SyncError)>> {
        let mut workers: Vec<(MemoryStore, MemoryStore)> = (0..WORKERS)
            .map(|_| {
                (
                    MemoryStore::new(self.src.clone(), src_switches.clone()),
                    MemoryStore::new(self.dst.clone(), dst_switches.clone()),
                )
            })
            .collect();
        let mut state = Journal::open(self.state_dir.path(), "pair").expect("journal");
        if let Some((n, torn)) = crash {
            state.crash_at_write(n, torn);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(run(&mut workers, opts, Some(&mut state), &mut Silent))
            .map_err(|a| Box::new((*a.report, a.error)))
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

/// (source, destination) switches: one side's connections die at their k-th operation.
fn dying_at(k: usize, source_side: bool) -> (Switches, Switches) {
    let dying = Switches {
        fail_at_op: Some(k),
        ..Default::default()
    };
    if source_side {
        (dying, Switches::default())
    } else {
        (Switches::default(), dying)
    }
}

/// Kills one side's connections at their k-th operation, for every k until a run no longer
/// reaches it; each time a resumed run must end exact and leave the source as it was.
fn resume_after_connection_death_at_every_operation(source_side: bool) {
    let side = if source_side { "source" } else { "destination" };
    for k in 1.. {
        let context = format!("{side} dies at operation {k}");
        let p = Pair::new();
        let (src, dst) = &dying_at(k, source_side);
        let healthy = Switches::default();
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
    let state = Journal::open(p.state_dir.path(), "pair").expect("state");
    let src = p.src.lock().expect("lock");
    let dst = p.dst.lock().expect("lock");
    let mut checked = 0;
    for f in COPIED {
        let folder = &src.folders[f];
        let target = &dst.folders[&format!("{SUB}/{f}")];
        for m in &folder.messages {
            let r = state.copy_of(f, folder.uid_validity, m.uid).expect("journalled");
            let copy = target
                .messages
                .iter()
                .find(|c| c.uid == r.dest_uid)
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
        let e = f.error.as_ref().expect("a folder error");
        assert_eq!(e.kind, FolderFailureKind::CountCheck, "{}: {e}", f.source);
        assert!(e.message.contains("check after copy"), "{}: {e}", f.source);
    }
    // The next run against a sound server copies everything: nothing was taken as done.
    let r = p.run(None, &Switches::default()).expect("second run");
    assert_eq!(r.copied(), total_source_messages());
    assert!(r.folders.iter().all(|f| f.verified && f.error.is_none()));
    p.assert_exact("after a server lost the appends");
}

/// Like the death loops above, but with reconnection on: every run finishes by itself, in
/// one go, exact, and the source is untouched.
fn connection_death_is_survived_by_reconnecting(source_side: bool) {
    let side = if source_side { "source" } else { "destination" };
    let mut revived = 0;
    for k in 1.. {
        let context = format!("{side} dies at operation {k}, reconnecting");
        let p = Pair::new();
        let (src, dst) = &dying_at(k, source_side);
        let healthy = Switches::default();
        let r = p
            .run_opts(&reconnecting(), None, src, dst)
            .unwrap_or_else(|b| panic!("{context}: the run stopped: {}", b.1));
        p.assert_exact(&context);
        assert!(
            r.failures().next().is_none(),
            "{context}: {:?}",
            r.failures().collect::<Vec<_>>()
        );
        assert!(r.folder_errors().next().is_none(), "{context}");
        let again = p.run(None, &healthy).unwrap_or_else(|e| panic!("{context}: {e}"));
        assert_eq!(again.copied(), 0, "{context}: the next run copied");
        // A fault that never triggered ends the loop: the run is now shorter than k.
        let plain = Pair::new();
        let ops_left = plain.run_with(None, src, dst).is_err();
        if !ops_left {
            break;
        }
        revived += 1;
        assert!(k < 1000, "the {side} never stops failing");
    }
    assert!(revived > 10, "only {revived} fault points");
}

#[test]
fn the_source_connection_dying_at_any_operation_is_survived_by_reconnecting() {
    connection_death_is_survived_by_reconnecting(true);
}

#[test]
fn the_destination_connection_dying_at_any_operation_is_survived_by_reconnecting() {
    connection_death_is_survived_by_reconnecting(false);
}

#[test]
fn reconnection_attempts_are_bounded_and_the_report_is_kept() {
    let p = Pair::new();
    let dead = Switches {
        fail_at_op: Some(40),
        no_reconnect: true,
        ..Default::default()
    };
    let (report, error) = *p
        .run_opts(&reconnecting(), None, &Switches::default(), &dead)
        .expect_err("a destination that cannot come back stops the run");
    assert!(matches!(error, SyncError::Destination(_)), "{error}");
    assert!(report.aborted.is_some());
    assert!(report.copied() > 0, "what was copied before the stop is reported");
    // Nothing of it is lost: the next run finishes the job.
    p.run(None, &Switches::default()).expect("resume");
    p.assert_exact("after a stop for a dead destination");
}

/// Issue 10 (C1): exact duplicates A and B of one folder in different batches; A's batch is
/// refused once, B is copied and journalled. The next run must copy A, not let it take B's
/// copy (the matcher before issue 10 lost A and still ended with exit 0).
#[test]
fn issue_10_a_refused_duplicate_is_copied_on_the_next_run() {
    let mut src = Account::default();
    let dup = message(1, true, 10);
    src.add("INBOX", &[], "01-Jan-2024 10:00:00 +0100", &dup);
    for n in 2..80 {
        src.add("INBOX", &[], "01-Jan-2024 10:00:00 +0100", &message(n, true, 10));
    }
    src.add("INBOX", &[], "01-Jan-2024 10:00:00 +0100", &dup);
    let p = Pair {
        src: Arc::new(Mutex::new(src)),
        dst: Arc::new(Mutex::new(Account::default())),
        state_dir: tempfile::tempdir().expect("temp dir"),
    };
    // One worker, so batches go in order: the first (A among its 50) is refused.
    let refuse_first_batch = Switches {
        refuse_appends: Some(50),
        ..Default::default()
    };
    let run_one = |dst: Switches| {
        let mut workers = vec![(
            MemoryStore::new(p.src.clone(), Switches::default()),
            MemoryStore::new(p.dst.clone(), dst),
        )];
        let mut state = Journal::open(p.state_dir.path(), "pair").expect("journal");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(run(&mut workers, &options(), Some(&mut state), &mut Silent))
            .map_err(|a| a.error.to_string())
    };
    let first = run_one(refuse_first_batch).expect("first run");
    assert_eq!(first.failures().count(), 50);
    assert_eq!(first.copied(), 30, "B and the rest of the second batch");
    let second = run_one(Switches::default()).expect("second run");
    assert_eq!(second.copied(), 50, "A and its batch");
    let src = p.src.lock().expect("lock");
    let dst = p.dst.lock().expect("lock");
    assert_eq!(dst.contents(&format!("{SUB}/INBOX")), src.contents("INBOX"));
}

#[test]
fn what_the_successor_removed_stays_removed_unless_asked() {
    let p = Pair::new();
    p.run(None, &Switches::default()).expect("first run");
    let inbox = format!("{SUB}/INBOX");
    let sent = format!("{SUB}/Sent");
    {
        let mut dst = p.dst.lock().expect("lock");
        // She deletes two messages of the INBOX copy, deletes the Sent folder, and
        // unsubscribes the Projets folder.
        let f = dst.folders.get_mut(&inbox).expect("inbox");
        f.messages.drain(..2);
        dst.folders.remove(&sent);
        dst.subscribed.remove(&sent);
        dst.subscribed.remove(&format!("{SUB}/Projets"));
    }
    let r = p.run(None, &Switches::default()).expect("re-run");
    assert_eq!(r.copied(), 0, "nothing is brought back");
    assert_eq!(r.removed_by_successor(), 2 + 6);
    let sent_report = r.folders.iter().find(|f| f.source == "Sent").expect("Sent");
    assert!(sent_report.dest_removed && sent_report.error.is_none());
    {
        let dst = p.dst.lock().expect("lock");
        assert!(
            !dst.folders.contains_key(&sent),
            "a deleted folder is not made again"
        );
        assert!(
            !dst.subscribed.contains(&format!("{SUB}/Projets")),
            "unsubscribed stays so"
        );
        assert_eq!(dst.folders[&inbox].messages.len(), 24);
    }
    // New mail in a folder she pruned still arrives.
    p.src
        .lock()
        .expect("lock")
        .add("INBOX", &[], "07-Jul-2024 08:00:00 +0200", &message(600, true, 3));
    let r = p.run(None, &Switches::default()).expect("run after new mail");
    assert_eq!(r.copied(), 1);
    assert_eq!(r.removed_by_successor(), 8);
    // --recopy-removed brings everything back, once.
    let mut recopy = options();
    recopy.keep_removals = false;
    let r = p
        .run_opts(&recopy, None, &Switches::default(), &Switches::default())
        .expect("recopy");
    assert_eq!(r.copied(), 8);
    p.assert_exact("after --recopy-removed");
    let r = p
        .run_opts(&recopy, None, &Switches::default(), &Switches::default())
        .expect("again");
    assert_eq!(r.copied(), 0);
}

#[test]
fn messages_a_server_lost_are_not_taken_for_the_successors_removals() {
    let p = Pair::new();
    let lose = Switches {
        lose_appends: true,
        ..Default::default()
    };
    p.run(None, &lose).expect("run");
    let r = p.run(None, &Switches::default()).expect("second run");
    assert_eq!(r.removed_by_successor(), 0);
    assert_eq!(r.copied(), total_source_messages());
    p.assert_exact("after a server lost the appends");
}

#[test]
fn over_quota_stops_the_folder_and_the_run_with_one_error() {
    let p = Pair::new();
    let quota = Switches {
        quota_messages: Some(10),
        ..Default::default()
    };
    let (report, error) = *p
        .run_opts(&options(), None, &Switches::default(), &quota)
        .expect_err("over quota stops the run");
    assert!(matches!(error, SyncError::OverQuota { .. }), "{error}");
    assert!(report.aborted.is_some());
    assert!(report.copied() <= 10);
    // One folder error, no refusal per message.
    let errors: Vec<_> = report.folder_errors().collect();
    assert!(!errors.is_empty());
    assert!(errors.iter().any(|f| {
        f.error
            .as_ref()
            .is_some_and(|e| e.kind == FolderFailureKind::OverQuota)
    }));
    assert_eq!(
        report.failures().count(),
        0,
        "{:?}",
        report.failures().collect::<Vec<_>>()
    );
    // Space freed: the next run finishes, without a duplicate.
    p.run(None, &Switches::default())
        .expect("after the quota was raised");
    p.assert_exact("after over quota");
}

#[test]
fn a_server_without_partial_fetch_still_copies_big_messages() {
    let p = Pair::new();
    let no_partial = Switches {
        no_partial_fetch: true,
        ..Default::default()
    };
    let r = p.run_with(None, &no_partial, &Switches::default()).expect("run");
    assert_eq!(r.failures().count(), 0);
    p.assert_exact("no partial FETCH");
}

#[test]
fn a_dry_run_changes_nothing_and_plans_what_a_run_does() {
    let p = Pair::new();
    let mut dry = options();
    dry.dry_run = true;
    let plan = p
        .run_opts(&dry, None, &Switches::default(), &Switches::default())
        .expect("dry run");
    assert_eq!(plan.copied(), total_source_messages());
    assert_eq!(p.dst.lock().expect("lock").folders.len(), 1, "only INBOX");
    let r = p.run(None, &Switches::default()).expect("run");
    assert_eq!(r.copied(), plan.copied());
}

#[test]
fn a_source_folder_deleted_mid_run_is_a_folder_error_and_the_rest_is_copied() {
    let p = Pair::new();
    let vanish = Switches {
        vanish_on_examine: Some("Sent".into()),
        ..Default::default()
    };
    let r = p
        .run_with(None, &vanish, &Switches::default())
        .expect("the run goes on");
    let sent = r.folders.iter().find(|f| f.source == "Sent").expect("Sent");
    assert_eq!(
        sent.error.as_ref().map(|e| e.kind),
        Some(FolderFailureKind::Select)
    );
    assert_eq!(r.folder_errors().count(), 1);
    let dst = p.dst.lock().expect("lock");
    let src = p.src.lock().expect("lock");
    for f in ["INBOX", "Projets", "Projets/R&AOk-unions"] {
        assert_eq!(dst.contents(&format!("{SUB}/{f}")), src.contents(f), "{f}");
    }
}

#[test]
fn no_fetch_on_an_empty_folder_and_no_status_on_the_selected_one() {
    let p = Pair::new();
    p.src.lock().expect("lock").create("Empty", &[]);
    let strict = Switches {
        strict: true,
        ..Default::default()
    };
    for n in 0..3 {
        // New mail makes the later runs open the destination folder, copy, and count again.
        p.src.lock().expect("lock").add(
            "INBOX",
            &[],
            "07-Jul-2024 08:00:00 +0200",
            &message(700 + n, true, 3),
        );
        let r = p.run_with(None, &strict, &strict).expect("run");
        assert!(
            r.folder_errors().next().is_none(),
            "{:?}",
            r.folder_errors().map(|f| &f.error).collect::<Vec<_>>()
        );
        p.assert_exact("strict server");
    }
}

/// Issue 12: a re-run after new mail reads only what is new on both sides (the journal and
/// the last in-step statuses vouch for the rest), and still copies an exact duplicate of an
/// old message, once.
#[test]
fn a_top_up_reads_only_the_new_messages() {
    let p = Pair::new();
    p.run(None, &Switches::default()).expect("first run");
    let old_dup = p.src.lock().expect("lock").folders["INBOX"].messages[3]
        .body
        .clone();
    {
        let mut src = p.src.lock().expect("lock");
        src.add("INBOX", &[], "07-Jul-2024 08:00:00 +0200", &message(800, true, 3));
        src.add(
            "INBOX",
            &["\\Seen"],
            "07-Jul-2024 08:00:00 +0200",
            &message(801, false, 3),
        );
        src.add("INBOX", &[], "07-Jul-2024 08:00:00 +0200", &old_dup);
        src.metas_served = 0;
        src.opened.clear();
    }
    {
        let mut dst = p.dst.lock().expect("lock");
        dst.metas_served = 0;
        dst.opened.clear();
    }
    let r = p.run(None, &Switches::default()).expect("top-up");
    assert_eq!(r.copied(), 3);
    p.assert_exact("after a top-up");
    // Nothing arrived at the destination since: not read before the copy, opened once after
    // it to read the copies back (a big folder's open costs the server a scan); the source
    // opened once.
    let dest_inbox = format!("{SUB}/INBOX");
    assert_eq!(
        p.dst.lock().expect("lock").opened,
        std::slice::from_ref(&dest_inbox)
    );
    assert!(p.dst.lock().expect("lock").statused.contains(&dest_inbox));
    assert_eq!(p.src.lock().expect("lock").opened, ["INBOX"]);
    assert_eq!(
        p.src.lock().expect("lock").metas_served,
        3,
        "the source was read whole"
    );
    assert_eq!(
        p.dst.lock().expect("lock").metas_served,
        0,
        "the destination was read whole"
    );
    let inbox = r.folders.iter().find(|f| f.source == "INBOX").expect("INBOX");
    assert_eq!(inbox.found, inbox.already + 3);
    // And the next run skips the folder again.
    let r = p.run(None, &Switches::default()).expect("re-run");
    assert_eq!(r.copied(), 0);
    assert!(r.folders.iter().all(|f| f.unchanged));
}

/// Issue 12: a big folder (10,000 messages and more) is opened once per run, its status read
/// from the EXAMINE: STATUS then EXAMINE would make a server that scans a changed folder at
/// each open (Dovecot's Maildir) scan it twice. The small ones still get one STATUS each,
/// all at once.
#[test]
fn a_big_folder_is_opened_once_by_a_top_up() {
    let p = Pair::new();
    {
        let mut src = p.src.lock().expect("lock");
        for i in 0..10_000 {
            src.add(
                "INBOX",
                &[],
                "07-Jul-2024 08:00:00 +0200",
                &message(10_000 + i, true, 1),
            );
        }
    }
    p.run(None, &Switches::default()).expect("first run");
    {
        let mut src = p.src.lock().expect("lock");
        src.add("INBOX", &[], "07-Jul-2024 08:00:00 +0200", &message(99, true, 2));
        src.opened.clear();
        src.statused.clear();
    }
    let r = p.run(None, &Switches::default()).expect("top-up");
    assert_eq!(r.copied(), 1);
    p.assert_exact("after a top-up");
    let src = p.src.lock().expect("lock");
    assert_eq!(src.opened, ["INBOX"]);
    assert!(!src.statused.iter().any(|f| f == "INBOX"), "{:?}", src.statused);
    assert!(src.statused.iter().any(|f| f == "Sent"), "{:?}", src.statused);
    drop(src);
    // And a re-run with nothing new opens it once and copies nothing.
    p.src.lock().expect("lock").opened.clear();
    let r = p.run(None, &Switches::default()).expect("re-run");
    assert_eq!(r.copied(), 0);
    assert!(r.folders.iter().all(|f| f.unchanged));
    assert_eq!(p.src.lock().expect("lock").opened, ["INBOX"]);
}

/// A message that arrived while the last run was copying its folder (after the status the
/// run recorded, before it read the messages) was copied by that run: the top-up finds its
/// copy through the journal, below the recorded destination UIDNEXT, and copies nothing.
#[test]
fn a_message_that_arrived_during_the_last_copy_is_not_copied_again_by_a_top_up() {
    let p = Pair::new();
    let arrives = Switches {
        arrive_on_examine: Some(("INBOX".into(), message(900, true, 7))),
        ..Default::default()
    };
    let r = p
        .run_with(None, &arrives, &Switches::default())
        .expect("first run");
    assert_eq!(r.copied(), total_source_messages() + 1, "the arrival was copied");
    p.assert_exact("first run");
    // imapsync mode copies again what it cannot find: the copy must be found.
    let mut imapsync = options();
    imapsync.keep_removals = false;
    let r = p
        .run_opts(&imapsync, None, &Switches::default(), &Switches::default())
        .expect("top-up");
    assert_eq!(r.copied(), 0, "copied twice");
    assert_eq!(r.removed_by_successor(), 0);
    p.assert_exact("after the top-up");
}

/// Issue 13: a flag changed on the source, then a plain run that copies a new message into
/// the folder, then `--resyncflags`: the plain run's recorded status must not let the
/// resync skip the folder (the plain run copied flags of new messages only).
#[test]
fn a_resync_after_a_plain_top_up_still_sees_an_older_flag_change() {
    let p = Pair::new();
    let mut resync = options();
    resync.resync_flags = true;
    let none = Switches::default();
    p.run_opts(&resync, None, &none, &none).expect("first run");
    {
        let mut src = p.src.lock().expect("lock");
        let f = src.folders.get_mut("INBOX").expect("INBOX");
        f.messages[0].flags = vec!["\\Flagged".into(), "\\Seen".into()];
        f.modseq += 1;
        src.add("INBOX", &[], "07-Jul-2024 08:00:00 +0200", &message(700, true, 2));
    }
    let r = p.run(None, &none).expect("plain run");
    assert_eq!(r.copied(), 1);
    let r = p.run_opts(&resync, None, &none, &none).expect("resync");
    let updated: u64 = r.folders.iter().map(|f| f.flags_updated).sum();
    assert_eq!(updated, 1, "the flag change was missed");
    p.assert_exact("after the resync");
}

/// Issue 13: what a server stored is read back. A server that rewrites 8-bit header bytes
/// (Cyrus's munge8bit: same size) is caught on the messages with such headers, each reported;
/// one that changes line ends is caught by size on every message; with `--verify` every
/// copy's bytes are compared.
#[test]
fn copies_a_server_altered_are_reported_per_message() {
    let with_8bit = |p: &Pair| {
        let mut src = p.src.lock().expect("lock");
        for i in 0..3 {
            let body =
                format!("Message-ID: <8bit-{i}@x>\r\nSubject: R\u{e9}union n\u{b0}{i}\r\n\r\nbody\r\n");
            src.add("INBOX", &[], "07-Jul-2024 08:00:00 +0200", body.as_bytes());
        }
    };
    let altered = |r: &SyncReport| r.altered().map(|a| (a.uid, a.what.clone())).collect::<Vec<_>>();

    // munge8bit: exactly the three messages with 8-bit headers.
    let p = Pair::new();
    with_8bit(&p);
    let munging = Switches {
        munge8bit: true,
        ..Default::default()
    };
    let r = p.run(None, &munging).expect("run");
    let found = altered(&r);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found.iter().all(|(_, what)| what.contains("munge8bit")),
        "{found:?}"
    );
    assert_eq!(r.folders.iter().map(|f| f.read_back).sum::<u64>(), r.copied());
    // The next run does not copy them again (they are there, altered) and reports nothing.
    let again = p.run(None, &munging).expect("re-run");
    assert_eq!(again.copied(), 0);
    assert_eq!(altered(&again).len(), 0);

    // A server that changes line ends: every message, by size, and once (with --verify too).
    let stripping = Switches {
        strip_cr: true,
        ..Default::default()
    };
    for verify in [false, true] {
        let p = Pair::new();
        let mut opts = options();
        opts.verify = verify;
        let r = p
            .run_opts(&opts, None, &Switches::default(), &stripping)
            .expect("run");
        assert_eq!(altered(&r).len() as u64, r.copied(), "verify {verify}");
        assert!(altered(&r).iter().all(|(_, what)| what.contains("bytes, ")));
    }

    // A faithful server: nothing reported, with or without --verify.
    for verify in [false, true] {
        let p = Pair::new();
        with_8bit(&p);
        let mut opts = options();
        opts.verify = verify;
        let none = Switches::default();
        let r = p.run_opts(&opts, None, &none, &none).expect("run");
        assert_eq!(altered(&r).len(), 0, "verify {verify}");
        p.assert_exact("faithful server");
    }
    // With --verify, whole messages are compared: the same three, found by their bytes.
    let p = Pair::new();
    with_8bit(&p);
    let mut opts = options();
    opts.verify = true;
    let r = p
        .run_opts(&opts, None, &Switches::default(), &munging)
        .expect("run");
    let found = altered(&r);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found.iter().all(|(_, what)| what.contains("bytes differ")),
        "{found:?}"
    );
}

/// Issue 13: messages a server refuses are not dead ends. Without `--fix-messages` each is a
/// failure that names the option; with it, each is repaired, stored, reported with what was
/// changed, and read back as stored; a message with no repairable defect stays a failure.
#[test]
fn refused_messages_are_repaired_only_when_asked_and_each_change_is_reported() {
    let malformed: [&[u8]; 3] = [
        b"Message-ID: <lf@x>\nSubject: bare LF\n\nbody\n",
        b"Message-ID: <nul@x>\r\nSubject: NUL\r\n\r\nbo\0dy\r\n",
        b"Message-ID: <nameless@x>\r\nSubject: a\r\nnot a field\r\n\r\nbody\r\n",
    ];
    let add = |p: &Pair| {
        let mut src = p.src.lock().expect("lock");
        for body in malformed {
            src.add("INBOX", &[], "07-Jul-2024 08:00:00 +0200", body);
        }
    };
    let picky = Switches {
        refuse_malformed: true,
        ..Default::default()
    };
    let none = Switches::default();

    let p = Pair::new();
    add(&p);
    let r = p.run(None, &picky).expect("run");
    let failures: Vec<_> = r.failures().collect();
    assert_eq!(failures.len(), 3, "{failures:?}");
    assert!(
        failures
            .iter()
            .all(|f| f.message.contains("--fix-messages would copy it"))
    );
    assert_eq!(r.repaired().count(), 0);

    let mut fix = options();
    fix.fix_messages = true;
    let r = p
        .run_opts(&fix, None, &none, &picky)
        .expect("run with --fix-messages");
    assert_eq!(r.failures().count(), 0);
    let repaired: Vec<_> = r.repaired().map(|x| x.changes.clone()).collect();
    use super::repair::Change::*;
    assert_eq!(repaired, [vec![BareLf], vec![Nul], vec![NamelessHeaderLine]]);
    assert!(r.repaired().all(|x| x.refused.contains("bare newlines")));
    assert_eq!(
        r.altered().count(),
        0,
        "the repaired bytes are what was read back"
    );
    let dest = p.dst.lock().expect("lock").contents(&format!("{SUB}/INBOX"));
    assert!(
        dest.iter()
            .any(|(b, _, _)| b == b"Message-ID: <lf@x>\r\nSubject: bare LF\r\n\r\nbody\r\n")
    );
    // Nothing is copied twice by a further run.
    let again = p.run_opts(&fix, None, &none, &picky).expect("re-run");
    assert_eq!(again.copied(), 0);
    assert_eq!(again.failures().count(), 0);
}
