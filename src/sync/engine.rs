//! The copy executor: for each selected folder, find what the destination lacks and append
//! it, byte for byte, with its flags and internal date.
//!
//! Which message is already there is decided by [`super::matching`] (journal partners first,
//! then identity keys as a multiset), so exact duplicates inside a source folder arrive as
//! many times as they exist, a run killed at any moment resumes without a duplicate, and
//! what the successor removed since an earlier run delivered it stays removed unless asked.
//! Nothing on the destination is ever deleted or overwritten; the source is only EXAMINEd and
//! read with BODY.PEEK.
//!
//! Speed: the folder tree is planned, then made in one go (parents first, one pipelined
//! exchange on IMAP); a journalled run asks every folder's status on both sides in one go
//! too, so unchanged folders cost nothing more; then each connection pair (a "worker") takes
//! the next folder from a shared queue, and inside a folder the next batch of bodies is
//! fetched while the previous one is appended (MULTIAPPEND). After each folder the
//! destination's count is read back and must hold everything copied. Workers run as
//! futures of one task, so shared state needs no locks; no borrow of it is held across an
//! await.
//!
//! Failures act by reach, never by text: a message's is reported and the run goes on; a
//! folder's is reported and the next folder starts; a connection's (dropped, `BYE`, stalled)
//! makes the worker open both its connections again with bounded exponential backoff and
//! start the folder over — what was copied is found again, so nothing is copied twice; only
//! when the attempts are spent does the run stop. Over quota stops the run at once (every
//! further message would be refused too). A run that stops keeps its report.

use super::index::{Compact, FolderIndex, Msg, Pending, Slim};
use super::journal::{CopyRecord, FolderRecord, Journal};
use super::mapping::{FolderMapping, FolderRules, MappingError, automap, plan_folders, with_parents};
use super::matching::{Delivered, Destination, Inputs, match_folder};
use super::readback::Sent;
use super::report::{
    FolderFailure, FolderFailureKind, FolderReport, MessageFailure, RepairedMessage, Reporter, SyncReport,
};
use crate::store::{
    FailureKind, FailureScope, FolderNames, FolderStatus, NewMessage, Store, StoreError, TreeOp, Uid,
};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// How a worker gets its connections back after one failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    /// Attempts per failure (0: never reconnect, stop at the first connection failure).
    pub attempts: u32,
    /// Wait before the first attempt; doubled after each failed one.
    pub first_delay: Duration,
    /// The longest wait between attempts.
    pub max_delay: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            attempts: 5,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// How a run behaves.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Which folders, and where they go.
    pub rules: FolderRules,
    /// Change nothing; report what would be done.
    pub dry_run: bool,
    /// Only the folder tree, no messages.
    pub just_folders: bool,
    /// Make the flags of messages already at the destination equal to the source's. Off by
    /// default: the successor's own read/unread state is kept.
    pub resync_flags: bool,
    /// Only messages at most this many days old (by internal date).
    pub max_age_days: Option<u32>,
    /// Only messages at least this many days old.
    pub min_age_days: Option<u32>,
    /// The current time, Unix seconds (an input, so tests are reproducible).
    pub now: i64,
    /// What an earlier run delivered and the successor has since removed (messages, folders)
    /// stays removed, and destination folders are subscribed only when this run makes them
    /// (the offboarding). Off: copy it again and subscribe every destination folder
    /// (imapsync's behaviour).
    pub keep_removals: bool,
    /// Reconnection after a connection failure.
    pub reconnect: Reconnect,
    /// Read back every copy's bytes after the copy (`--verify`); without it, the sizes of
    /// all and the bytes of those a server is known to rewrite (8-bit headers).
    pub verify: bool,
    /// A message the destination refuses is repaired where it can be (bare LF, NUL,
    /// nameless header lines) and appended again (`--fix-messages`).
    pub fix_messages: bool,
}

/// Failures that stop the whole run.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The source side failed (and reconnecting did not help).
    #[error("source: {0}")]
    Source(StoreError),
    /// The destination side failed (and reconnecting did not help).
    #[error("destination: {0}")]
    Destination(StoreError),
    /// The destination is over quota: nothing more can be copied.
    #[error(
        "the destination is over quota while copying {folder} ({server}); free space or raise the quota, then run again"
    )]
    OverQuota {
        /// The folder being copied (UTF-8).
        folder: String,
        /// The server's words.
        server: String,
    },
    /// A folder name cannot be mapped.
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// The journal cannot be written.
    #[error(transparent)]
    Journal(#[from] super::journal::JournalError),
}

impl SyncError {
    /// A connection failure that opening the connections again may cure.
    fn reconnectable(&self) -> bool {
        matches!(self, SyncError::Source(e) | SyncError::Destination(e)
            if e.scope == FailureScope::Account && e.kind == FailureKind::Connection)
    }

    fn store_error(&self) -> Option<&StoreError> {
        match self {
            SyncError::Source(e) | SyncError::Destination(e) => Some(e),
            _ => None,
        }
    }
}

/// A run that stopped early, with the report of what it did until then.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Aborted {
    /// What was done before the stop (`aborted` says why).
    pub report: Box<SyncReport>,
    /// Why it stopped.
    #[source]
    pub error: SyncError,
}

/// What is known of a folder pair before its copy starts: whether the destination existed
/// before the run, and the statuses read for all folders at once.
#[derive(Debug, Default)]
struct Prefetched {
    dest_existed: bool,
    source: Option<FolderStatus>,
    dest: Option<FolderStatus>,
}

/// One folder waiting for a worker.
#[derive(Debug, Clone, Copy)]
struct Queued {
    /// Index into the mappings.
    index: usize,
    /// Whether the destination folder may hold messages (it existed, or an earlier attempt
    /// of this run copied into it).
    dest_existed: bool,
    /// Attempts already made after connection failures.
    retries: u32,
}

/// What the workers share. Borrows are short and never held across an await.
struct Shared<'a> {
    prefetched: RefCell<HashMap<usize, Prefetched>>,
    journal: RefCell<Option<&'a mut Journal>>,
    reporter: RefCell<&'a mut dyn Reporter>,
    queue: RefCell<VecDeque<Queued>>,
    reports: RefCell<Vec<(usize, FolderReport)>>,
    fatal: RefCell<Option<SyncError>>,
    stop: Cell<bool>,
    /// `--verify`: every copy's bytes are read back.
    verify: bool,
    /// `--fix-messages`.
    fix_messages: bool,
}

/// What worker 0 learns and decides before any message moves.
struct Prepared {
    mappings: Vec<FolderMapping>,
    queue: VecDeque<Queued>,
    reports: Vec<(usize, FolderReport)>,
    prefetched: HashMap<usize, Prefetched>,
}

/// Runs a copy with one worker per `(source, destination)` connection pair. Worker 0 also
/// lists, plans and builds the folder tree. A run that stops early returns its report inside
/// [`Aborted`].
pub async fn run<S: Store, D: Store>(
    workers: &mut [(S, D)],
    opts: &SyncOptions,
    mut journal: Option<&mut Journal>,
    reporter: &mut dyn Reporter,
) -> Result<SyncReport, Aborted> {
    let started = Instant::now();
    let empty = |error: SyncError| Aborted {
        report: Box::new(SyncReport {
            dry_run: opts.dry_run,
            aborted: Some(error.to_string()),
            duration_secs: started.elapsed().as_secs_f64(),
            ..Default::default()
        }),
        error,
    };
    let Some((src, dst)) = workers.first_mut() else {
        return Ok(SyncReport {
            dry_run: opts.dry_run,
            ..Default::default()
        });
    };
    // Listing, planning and the tree are idempotent: after a connection failure they are
    // simply done again (a folder created just before the cut is listed the second time).
    let mut attempt = 0;
    let prepared = loop {
        match prepare(src, dst, opts, journal.as_deref()).await {
            Ok(p) => break p,
            Err(e) if e.reconnectable() && attempt < opts.reconnect.attempts => {
                attempt += 1;
                if let Some(why) = e.store_error() {
                    reporter.reconnecting(None, attempt, why);
                }
                if let Err(e) = reconnect_pair(src, dst, opts, attempt).await {
                    return Err(empty(e));
                }
            }
            Err(e) => return Err(empty(e)),
        }
    };
    let Prepared {
        mappings,
        queue,
        reports,
        prefetched,
    } = prepared;
    reporter.plan(&mappings);

    let shared = Shared {
        prefetched: RefCell::new(prefetched),
        journal: RefCell::new(journal.take()),
        reporter: RefCell::new(reporter),
        queue: RefCell::new(queue),
        reports: RefCell::new(reports),
        fatal: RefCell::new(None),
        stop: Cell::new(false),
        verify: opts.verify,
        fix_messages: opts.fix_messages,
    };
    let tasks = workers
        .iter_mut()
        .map(|(src, dst)| worker(src, dst, opts, &mappings, &shared));
    futures::future::join_all(tasks).await;

    let Shared {
        journal,
        reports,
        fatal,
        ..
    } = shared;
    let mut reports = reports.into_inner();
    reports.sort_by_key(|(i, _)| *i);
    let mut report = SyncReport {
        dry_run: opts.dry_run,
        folders: reports.into_iter().map(|(_, r)| r).collect(),
        skipped_folders: mappings.iter().filter(|m| m.skipped.is_some()).cloned().collect(),
        ..Default::default()
    };
    let mut fatal = fatal.into_inner();
    if let Some(j) = journal.into_inner() {
        let synced = j.sync().and_then(|()| j.compact_if_worthwhile());
        if let (Err(e), None) = (synced, &fatal) {
            fatal = Some(e.into());
        }
    }
    report.duration_secs = started.elapsed().as_secs_f64();
    match fatal {
        Some(error) => {
            report.aborted = Some(error.to_string());
            Err(Aborted {
                report: Box::new(report),
                error,
            })
        }
        None => Ok(report),
    }
}

/// Lists both sides, plans the folders, builds the destination tree and (on a journalled
/// run) reads every folder's status at once.
async fn prepare<S: Store, D: Store>(
    src: &mut S,
    dst: &mut D,
    opts: &SyncOptions,
    journal: Option<&Journal>,
) -> Result<Prepared, SyncError> {
    // Each side on its own connection: ask both at once.
    let (ns1, ns2) = tokio::join!(src.namespaces(), dst.namespaces());
    let (ns1, ns2) = (
        ns1.map_err(SyncError::Source)?,
        ns2.map_err(SyncError::Destination)?,
    );
    let (source_folders, dest_folders) = tokio::join!(src.list_folders(), dst.list_folders());
    let source_folders = source_folders.map_err(SyncError::Source)?;
    let dest_folders = dest_folders.map_err(SyncError::Destination)?;
    let names2 = dst.folder_names();
    let sep2 = opts
        .rules
        .sep2
        .or(ns2.personal.as_ref().and_then(|p| p.1))
        .unwrap_or('/');
    let mut mappings = plan_folders(
        &source_folders,
        (&ns1, src.folder_names()),
        (&ns2, names2),
        &opts.rules,
    )?;
    automap(&mut mappings, &source_folders, &dest_folders, &opts.rules, names2);

    // The tree, parents first, every created folder subscribed.
    let mut existing: HashSet<String> = dest_folders.iter().map(|f| f.name.clone()).collect();
    let subscribed: HashSet<String> = if opts.dry_run || opts.keep_removals {
        HashSet::new()
    } else {
        dst.list_subscribed()
            .await
            .map_err(SyncError::Destination)?
            .into_iter()
            .collect()
    };
    let mut reports = Vec::new();
    // Planned first, then sent in one go: one round trip for the tree, not two per folder.
    let mut ops = Vec::new();
    let mut queued_ops = HashSet::new();
    let mut planned = Vec::new();
    for (i, m) in mappings.iter().enumerate().filter(|(_, m)| m.skipped.is_none()) {
        let dest_existed = existing.contains(&m.dest);
        let delivered = journal.map_or(0, |j| j.delivered_to(&m.dest));
        if !dest_existed && opts.keep_removals && delivered > 0 {
            // An earlier run made it and delivered into it; the successor deleted or renamed
            // it since. Not made again (`--recopy-removed` does).
            let mut fr = FolderReport::new(m);
            fr.dest_removed = true;
            fr.removed_by_successor = delivered;
            reports.push((i, fr));
            continue;
        }
        let start = ops.len();
        let tree = TreeInputs {
            sep2,
            names: names2,
            subscribe_existing: !opts.keep_removals,
        };
        let created = plan_tree(m, tree, &mut existing, &subscribed, &mut queued_ops, &mut ops);
        planned.push((i, dest_existed, created, start..ops.len()));
    }
    let outcomes = if opts.dry_run || ops.is_empty() {
        Vec::new()
    } else {
        dst.build_tree(&ops).await.map_err(SyncError::Destination)?
    };
    let mut queue = VecDeque::new();
    for (i, dest_existed, created, steps) in planned {
        let mut fr = FolderReport::new(&mappings[i]);
        fr.created = created;
        let failed = outcomes
            .get(steps)
            .unwrap_or_default()
            .iter()
            .find_map(|r| r.as_ref().err());
        match failed {
            Some(e) => fr.error = Some(e.clone().into()),
            None => queue.push_back(Queued {
                index: i,
                dest_existed,
                retries: 0,
            }),
        }
        reports.push((i, fr));
    }
    // INBOX first: it is usually the biggest folder, and starting it first balances workers.
    let inbox = queue
        .iter()
        .position(|q| mappings[q.index].source.eq_ignore_ascii_case("INBOX"));
    if let Some(inbox) = inbox.and_then(|pos| queue.remove(pos)) {
        queue.push_front(inbox);
    }

    // Re-runs decide from statuses alone: ask for all of them now, one round trip per side
    // instead of two per folder. Read before any copy, so mail arriving during the run makes
    // the next run look again.
    let filtered = opts.max_age_days.is_some() || opts.min_age_days.is_some();
    let mut prefetched: HashMap<usize, Prefetched> = HashMap::new();
    if let Some(j) = journal
        && !opts.just_folders
        && !filtered
        && !queue.is_empty()
    {
        // A big folder is left to its worker, whose EXAMINE gives the same figures: some
        // servers scan a changed folder at each open (Dovecot's Maildir reads the whole
        // directory), and a big one opened twice doubles what a top-up costs.
        let asked: Vec<usize> = queue
            .iter()
            .filter(|q| {
                let m = &mappings[q.index];
                j.in_step(&m.source, &m.dest)
                    .is_none_or(|r| r.source.2 < OPEN_ONCE)
            })
            .map(|q| q.index)
            .collect();
        let sources: Vec<String> = asked.iter().map(|i| mappings[*i].source.clone()).collect();
        // The destination's only matters where the journal has the pair in step.
        let in_step: Vec<usize> = queue
            .iter()
            .filter(|q| {
                q.dest_existed
                    && j.in_step(&mappings[q.index].source, &mappings[q.index].dest)
                        .is_some()
            })
            .map(|q| q.index)
            .collect();
        let dests: Vec<String> = in_step.iter().map(|i| mappings[*i].dest.clone()).collect();
        let (s1, s2) = tokio::join!(
            async {
                if sources.is_empty() {
                    Ok(Vec::new())
                } else {
                    src.status_many(&sources).await
                }
            },
            async {
                if dests.is_empty() {
                    Ok(Vec::new())
                } else {
                    dst.status_many(&dests).await
                }
            }
        );
        for (i, s1) in asked.iter().zip(s1.map_err(SyncError::Source)?) {
            prefetched.entry(*i).or_default().source = s1.ok();
        }
        for (i, s2) in in_step.iter().zip(s2.map_err(SyncError::Destination)?) {
            prefetched.entry(*i).or_default().dest = s2.ok();
        }
    }
    Ok(Prepared {
        mappings,
        queue,
        reports,
        prefetched,
    })
}

/// Opens both connections of a pair again, waiting before each attempt (doubling from
/// `first_delay`, capped at `max_delay`); `attempt` is 1-based.
async fn reconnect_pair<S: Store, D: Store>(
    src: &mut S,
    dst: &mut D,
    opts: &SyncOptions,
    attempt: u32,
) -> Result<(), SyncError> {
    let r = &opts.reconnect;
    let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
    let delay = r.first_delay.saturating_mul(factor).min(r.max_delay);
    tokio::time::sleep(delay).await;
    let (a, b) = tokio::join!(src.reconnect(), dst.reconnect());
    a.map_err(SyncError::Source)?;
    b.map_err(SyncError::Destination)?;
    Ok(())
}

/// One worker: takes folders from the queue until it is empty or the run must stop.
async fn worker<S: Store, D: Store>(
    src: &mut S,
    dst: &mut D,
    opts: &SyncOptions,
    mappings: &[FolderMapping],
    shared: &Shared<'_>,
) {
    loop {
        if shared.stop.get() {
            return;
        }
        let Some(q) = shared.queue.borrow_mut().pop_front() else {
            return;
        };
        let i = q.index;
        let m = &mappings[i];
        if q.retries == 0 {
            shared.reporter.borrow_mut().folder_started(m);
        }
        let mut fr = shared
            .reports
            .borrow_mut()
            .iter_mut()
            .find(|(j, _)| *j == i)
            .map(|(_, r)| std::mem::take(r))
            .unwrap_or_else(|| FolderReport::new(m));
        let mut pre = shared.prefetched.borrow_mut().remove(&i).unwrap_or_default();
        pre.dest_existed = q.dest_existed;
        let outcome = copy_folder(src, dst, opts, m, pre, shared, &mut fr).await;
        let mut retry = None;
        match outcome {
            Ok(()) => {}
            Err(Stop::Folder(e)) => fr.error = Some(e),
            Err(Stop::Run(e)) if e.reconnectable() && q.retries < opts.reconnect.attempts => {
                // Both connections again, then this folder from the top: what was copied is
                // found by the journal and identity, so nothing is copied twice.
                let mut attempt = q.retries;
                let mut last = e;
                loop {
                    attempt += 1;
                    if let Some(why) = last.store_error() {
                        shared
                            .reporter
                            .borrow_mut()
                            .reconnecting(Some(&m.source_utf8), attempt, why);
                    }
                    match reconnect_pair(src, dst, opts, attempt).await {
                        Ok(()) => {
                            retry = Some(Queued {
                                index: i,
                                dest_existed: true,
                                retries: attempt,
                            });
                            break;
                        }
                        Err(e) if e.reconnectable() && attempt < opts.reconnect.attempts => last = e,
                        Err(e) => {
                            last = e;
                            break;
                        }
                    }
                }
                if retry.is_none() {
                    fr.error = Some(FolderFailure::new(
                        FolderFailureKind::Connection,
                        last.to_string(),
                    ));
                    shared.stop.set(true);
                    shared.fatal.borrow_mut().get_or_insert(last);
                }
            }
            Err(Stop::Run(e)) => {
                if fr.error.is_none() {
                    let kind = match &e {
                        SyncError::OverQuota { .. } => FolderFailureKind::OverQuota,
                        _ => FolderFailureKind::Connection,
                    };
                    fr.error = Some(FolderFailure::new(kind, e.to_string()));
                }
                shared.stop.set(true);
                shared.fatal.borrow_mut().get_or_insert(e);
            }
        }
        if let Some(r) = retry {
            // This worker takes it again at once: its connections are the fresh ones.
            fr.failed.clear();
            shared.queue.borrow_mut().push_front(r);
        } else {
            shared.reporter.borrow_mut().folder_done(&fr);
        }
        if let Some(slot) = shared.reports.borrow_mut().iter_mut().find(|(j, _)| *j == i) {
            slot.1 = fr;
        }
    }
}

enum Stop {
    Folder(FolderFailure),
    Run(SyncError),
}

/// A failure on one side: the folder's, or (scope `Account`) the connection's.
fn side(e: StoreError, source: bool) -> Stop {
    if e.scope == FailureScope::Account {
        Stop::Run(if source {
            SyncError::Source(e)
        } else {
            SyncError::Destination(e)
        })
    } else {
        Stop::Folder(e.into())
    }
}

/// How the tree is planned.
#[derive(Debug, Clone, Copy)]
struct TreeInputs {
    sep2: char,
    names: FolderNames,
    /// Subscribe a destination folder that exists unsubscribed (imapsync); else only the
    /// folders this run makes are subscribed, so one the successor unsubscribed stays so.
    subscribe_existing: bool,
}

/// The steps that give the destination folder its missing parents and itself (each created
/// one subscribed), or subscribe it when it exists unsubscribed. Returns whether the folder
/// itself is (or, dry, would be) created.
fn plan_tree(
    m: &FolderMapping,
    t: TreeInputs,
    existing: &mut HashSet<String>,
    subscribed: &HashSet<String>,
    queued: &mut HashSet<TreeOp>,
    ops: &mut Vec<TreeOp>,
) -> bool {
    let mut created = false;
    for name in with_parents(&m.dest_utf8, t.sep2, t.names) {
        if existing.contains(&name) {
            let op = TreeOp::Subscribe(name.clone());
            if t.subscribe_existing
                && name == m.dest
                && !subscribed.contains(&name)
                && queued.insert(op.clone())
            {
                ops.push(op);
            }
            continue;
        }
        if name.eq_ignore_ascii_case("INBOX") {
            continue;
        }
        if name == m.dest {
            created = true;
        }
        ops.push(TreeOp::Create(name.clone()));
        ops.push(TreeOp::Subscribe(name.clone()));
        queued.insert(TreeOp::Subscribe(name.clone()));
        existing.insert(name);
    }
    created
}

/// Copies what the destination folder lacks.
async fn copy_folder<S: Store, D: Store>(
    src: &mut S,
    dst: &mut D,
    opts: &SyncOptions,
    m: &FolderMapping,
    pre: Prefetched,
    shared: &Shared<'_>,
    fr: &mut FolderReport,
) -> Result<(), Stop> {
    // Re-run fast path: both sides exactly as when they were last in step → nothing to do,
    // and not a header is fetched: UIDVALIDITY, UIDNEXT and MESSAGES unchanged on both sides,
    // and with --resyncflags also HIGHESTMODSEQ (CONDSTORE), which moves with any flag change.
    // The source's status is read before anything else (usually all at once, by `run`), so
    // mail arriving during the copy makes the next run look again.
    let filtered = opts.max_age_days.is_some() || opts.min_age_days.is_some();
    let journalled = shared.journal.borrow().is_some();
    let dest_exists = pre.dest_existed;
    // Where no status was read for it, the folder is opened now, and once.
    let mut opened = None;
    let before = match pre.source {
        _ if !journalled || opts.just_folders || filtered => None,
        Some(s1) => Some(s1),
        None => {
            let st = src.examine(&m.source).await.map_err(|e| side(e, true))?;
            opened = Some(st);
            Some(st)
        }
    };
    let in_step = shared
        .journal
        .borrow()
        .as_ref()
        .and_then(|s| s.in_step(&m.source, &m.dest))
        .cloned();
    // A top-up reads only what is new on each side: (first new source UID, first new
    // destination UID).
    let mut topup = None;
    let mut dest_now = None;
    if let (Some(rec), Some(s1), true) = (in_step, before.as_ref(), dest_exists) {
        let s2 = match pre.dest {
            Some(s2) => s2,
            None => dst.status(&m.dest).await.map_err(|e| side(e, false))?,
        };
        topup = top_up_from(&rec, s1, &s2, opts.resync_flags);
        dest_now = Some(s2);
        if unchanged_since(&rec, s1, &s2, opts.resync_flags) {
            fr.found = u64::from(s1.exists);
            fr.already = u64::from(s1.exists);
            fr.unchanged = true;
            // Exactly as when it was last checked.
            fr.dest_messages = Some(u64::from(s2.exists));
            fr.verified = true;
            return Ok(());
        }
    }

    let status = match opened {
        Some(st) => st,
        None => src.examine(&m.source).await.map_err(|e| side(e, true))?,
    };
    if let Some(j) = shared.journal.borrow_mut().as_deref_mut() {
        j.retire_other_incarnations(&m.source, status.uid_validity);
    }
    if opts.just_folders {
        fr.found = u64::from(status.exists);
        return Ok(());
    }
    // A message that arrived while the last run copied has a UID past the recorded UIDNEXT
    // but may have its copy already, below the recorded destination UIDNEXT: read the
    // destination from the lowest copy the journal names for the new ones (all of it when a
    // copy's UID is unknown).
    if let (Some((source_from, dest_from)), Some(j)) = (topup, shared.journal.borrow().as_deref()) {
        let lowest = j
            .deliveries(&m.source, status.uid_validity, &m.dest)
            .filter(|(su, _, _)| *su >= source_from)
            .map(|(_, _, du)| if du == 0 { 1 } else { du })
            .min()
            .unwrap_or(dest_from);
        topup = Some((source_from, dest_from.min(lowest)));
    }
    let (source_from, dest_from) = topup.unwrap_or((1, 1));
    let mut source = FolderIndex::read_from(src, status.exists, source_from)
        .await
        .map_err(|e| side(e, true))?;
    if filtered {
        let now = opts.now;
        let keep = |secs: Option<i64>| {
            let Some(t) = secs else { return true };
            let age_days = (now - t) / 86_400;
            opts.max_age_days.is_none_or(|max| age_days <= i64::from(max))
                && opts.min_age_days.is_none_or(|min| age_days >= i64::from(min))
        };
        let kept: HashSet<Uid> = source
            .records()
            .iter()
            .filter(|r| keep(source.date_secs(r)))
            .map(|r| r.uid)
            .collect();
        source.retain(|r| kept.contains(&r.uid));
    }
    // On a top-up the messages before the new ones were all there at the last run.
    let earlier = if topup.is_some() {
        u64::from(status.exists).saturating_sub(source.records().len() as u64)
    } else {
        0
    };
    fr.found = earlier + source.records().len() as u64;
    fr.bytes_found = source.records().iter().map(|r| r.size()).sum();

    // What the destination holds now.
    let resync = opts.resync_flags && !opts.dry_run;
    let mut dest = None;
    let mut dest_index = FolderIndex::default();
    let mut dest_count = 0;
    // A top-up into a destination that allocated no UID since the copies of the new
    // messages could start holds nothing to read: not even opened (on a big folder each
    // open costs the server a scan).
    let quiet = match (topup, dest_now) {
        (Some((_, from)), Some(s2)) => s2.uid_next.is_some_and(|next| next <= from),
        _ => false,
    };
    if let (true, Some(s2)) = (quiet, dest_now) {
        dest = Some(s2.uid_validity);
        dest_count = u64::from(s2.exists);
    } else if dest_exists {
        let st = if resync {
            dst.select(&m.dest).await
        } else {
            dst.examine(&m.dest).await
        };
        let st = st.map_err(|e| side(e, false))?;
        dest_index = FolderIndex::read_from(dst, st.exists, dest_from)
            .await
            .map_err(|e| side(e, false))?;
        dest = Some(st.uid_validity);
        dest_count = u64::from(st.exists);
    }
    let dest_before = if topup.is_some() {
        dest_count
    } else {
        dest_index.records().len() as u64
    };

    let first = source.records().first().map_or(Uid::MAX, |r| r.uid);
    let (journal, lost) = deliveries(
        shared.journal.borrow().as_deref(),
        m,
        (status.uid_validity, first),
        dest,
    );
    let plan = match_folder(Inputs {
        source: source.records(),
        dest: dest.map(|validity| Destination {
            validity,
            messages: dest_index.records(),
        }),
        journal: &journal,
        // Messages a server lost were not removed by anyone: they are copied again.
        keep_removals: opts.keep_removals && !lost,
    });
    drop(journal);
    // On a retry after a reconnection, what the failed attempt copied is found here again.
    let copied_before = fr.copied;
    fr.already = (earlier + plan.pairs.len() as u64).saturating_sub(copied_before);
    fr.removed_by_successor = plan.removed.len() as u64;
    if resync {
        let theirs: HashMap<Uid, &Compact> = source.records().iter().map(|r| (r.uid, r)).collect();
        let ours: HashMap<Uid, &Compact> = dest_index.records().iter().map(|r| (r.uid, r)).collect();
        for (su, du) in &plan.pairs {
            let (Some(s), Some(d)) = (theirs.get(su), ours.get(du)) else {
                continue;
            };
            let want = source.flags(s);
            if want != dest_index.flags(d) {
                dst.set_flags(*du, want).await.map_err(|e| side(e, false))?;
                fr.flags_updated += 1;
            }
        }
    }
    drop(dest_index);
    // The index gives way to the list of what to copy, without identity keys.
    let pending = source.into_pending(&plan.todo);
    let complete = plan.removed.is_empty();
    drop(plan);
    if opts.dry_run {
        fr.copied += pending.records().len() as u64;
        fr.bytes_copied += pending.records().iter().map(|m| m.size()).sum::<u64>();
        return Ok(());
    }
    if let Some(j) = shared.journal.borrow_mut().as_deref_mut() {
        j.reserve(&m.source, status.uid_validity, pending.records().len());
    }
    shared.reporter.borrow_mut().folder_to_copy(
        &m.source_utf8,
        pending.records().len() as u64,
        pending.records().iter().map(|r| r.size()).sum(),
    );
    let mut sent = Sent::with_capacity(pending.records().len());
    copy_messages(
        src,
        dst,
        m,
        status.uid_validity,
        &pending,
        shared,
        (fr, &mut sent),
    )
    .await?;
    drop(pending);
    if let Some(j) = shared.journal.borrow_mut().as_deref_mut() {
        j.sync().map_err(|e| Stop::Run(e.into()))?;
    }

    let attempt = Attempt {
        dest_before,
        copied_before,
        source_before: before,
        dest_open: dest.is_some() && !quiet,
        flags_synced: resync,
        complete,
    };
    check_and_record(dst, m, attempt, shared, fr, sent).await
}

/// What one attempt at a folder knew before copying, for the check after it.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    /// Messages in the destination folder before the copy.
    dest_before: u64,
    /// `fr.copied` before this attempt (earlier attempts after a reconnection).
    copied_before: u64,
    /// The source's status read before anything else, on a journalled run.
    source_before: Option<FolderStatus>,
    /// This connection has the destination folder open (EXAMINE again, not STATUS).
    dest_open: bool,
    /// Nothing was left out on purpose (removals): the pair may be recorded as in step.
    complete: bool,
    /// The flags of the messages already there were brought in step (`--resyncflags`): only
    /// then are the HIGHESTMODSEQs recorded, which let a later resync skip the folder. A plain
    /// run copies the flags of what it copies, not of the rest.
    flags_synced: bool,
}

/// Reads the count back: the destination must hold what it held plus what was copied. A
/// server that acknowledged an APPEND without keeping the message is caught here, and the
/// next run copies what is missing (the journal is told, so those are not taken for the
/// successor's removals). A folder that checks out is recorded as in step, so the next run
/// can skip it.
async fn check_and_record<D: Store>(
    dst: &mut D,
    m: &FolderMapping,
    a: Attempt,
    shared: &Shared<'_>,
    fr: &mut FolderReport,
    sent: Sent,
) -> Result<(), Stop> {
    // STATUS is not for the selected mailbox (RFC 3501 §6.3.10): where this connection has
    // the destination open, open it again instead; and open it where copies are to be read
    // back.
    let d = if a.dest_open || !sent.is_empty() {
        dst.examine(&m.dest).await
    } else {
        dst.status(&m.dest).await
    };
    let d = d.map_err(|e| side(e, false))?;
    sent.read_back(dst, &m.source_utf8, fr)
        .await
        .map_err(|e| side(e, false))?;
    let expected = a.dest_before + (fr.copied - a.copied_before);
    fr.dest_messages = Some(u64::from(d.exists));
    fr.verified = u64::from(d.exists) >= expected;
    let mut journal = shared.journal.borrow_mut();
    let journal = journal.as_deref_mut();
    if !fr.verified {
        if let Some(j) = journal {
            j.record_lost(&m.dest, d.uid_validity)
                .and_then(|()| j.sync())
                .map_err(|e| Stop::Run(e.into()))?;
        }
        fr.error = Some(FolderFailure::new(
            FolderFailureKind::CountCheck,
            format!(
                "check after copy: {} holds {} messages, at least {expected} expected; \
                 run again to copy what is missing",
                m.dest_utf8, d.exists
            ),
        ));
        return Ok(());
    }
    // Not when something was left out (failures, removals): the next run must look again.
    if let Some(s1) = a.source_before.filter(|_| fr.failed.is_empty() && a.complete)
        && let Some(next) = s1.uid_next
        && let Some(dnext) = d.uid_next
        && let Some(j) = journal
    {
        let rec = FolderRecord {
            folder: m.source.clone(),
            dest: m.dest.clone(),
            source: (s1.uid_validity, next, s1.exists),
            destination: (d.uid_validity, dnext, d.exists),
            source_modseq: s1.highest_modseq.filter(|_| a.flags_synced),
            destination_modseq: d.highest_modseq.filter(|_| a.flags_synced),
        };
        j.record_in_step(rec).map_err(|e| Stop::Run(e.into()))?;
    }
    Ok(())
}

/// Where a re-run may read only what is new: both folders are the same incarnations as when
/// they were last in step, the source only grew, and nothing was deleted at the destination
/// since (every UID it allocated since is there, and every one before) — then the source's
/// messages below the recorded UIDNEXT all had their copy, and any copy of a newer one has a
/// destination UID at or above the recorded one. Not with `--resyncflags` (flags of old
/// messages matter). Returns the first new UID on each side.
fn top_up_from(
    rec: &FolderRecord,
    s1: &FolderStatus,
    s2: &FolderStatus,
    resync_flags: bool,
) -> Option<(Uid, Uid)> {
    let (source_validity, source_next, _) = rec.source;
    let (dest_validity, dest_next, dest_exists) = rec.destination;
    let (n1, n2) = (s1.uid_next?, s2.uid_next?);
    let nothing_deleted =
        u64::from(s2.exists) == u64::from(dest_exists) + u64::from(n2.saturating_sub(dest_next));
    (!resync_flags
        && s1.uid_validity == source_validity
        && s2.uid_validity == dest_validity
        && n1 >= source_next
        && n2 >= dest_next
        && nothing_deleted)
        .then_some((source_next, dest_next))
}

/// Both sides as when they were last in step: UIDVALIDITY, UIDNEXT and MESSAGES unchanged,
/// and with `--resyncflags` also HIGHESTMODSEQ (CONDSTORE), which moves with any flag change.
fn unchanged_since(rec: &FolderRecord, s1: &FolderStatus, s2: &FolderStatus, resync_flags: bool) -> bool {
    let triple = |s: &FolderStatus| (s.uid_validity, s.uid_next.unwrap_or(0), s.exists);
    let flags_unchanged = !resync_flags
        || (s1.highest_modseq.is_some()
            && s1.highest_modseq == rec.source_modseq
            && s2.highest_modseq.is_some()
            && s2.highest_modseq == rec.destination_modseq);
    triple(s1) == rec.source && triple(s2) == rec.destination && flags_unchanged
}

/// The journal's deliveries of this source folder incarnation into this destination folder,
/// from source UID `from` on (a top-up needs only the new messages'), and whether that destination incarnation (`dest`: its UIDVALIDITY when it exists) lost
/// acknowledged appends.
fn deliveries(
    journal: Option<&Journal>,
    m: &FolderMapping,
    (source_validity, from): (u32, Uid),
    dest: Option<u32>,
) -> (HashMap<Uid, Delivered>, bool) {
    let Some(j) = journal else {
        return (HashMap::new(), false);
    };
    let delivered = j
        .deliveries(&m.source, source_validity, &m.dest)
        .filter(|(su, _, _)| *su >= from)
        .map(|(su, dest_validity, dest_uid)| {
            let d = Delivered {
                dest_validity,
                dest_uid,
            };
            (su, d)
        })
        .collect();
    let lost = dest.is_some_and(|dv| j.lost_appends(&m.dest, dv));
    (delivered, lost)
}

/// From this many messages (as last recorded), a source folder's status is read by its
/// worker's EXAMINE rather than with the others' STATUS ahead of the copy.
const OPEN_ONCE: u32 = 10_000;

/// At most this many messages per FETCH and per APPEND command. Batches are sized by bytes
/// first: a destination pays per transaction (Dovecot rewrites its index per APPEND
/// command), so small messages travel a thousand to a MULTIAPPEND.
const BATCH_MESSAGES: usize = 1_000;
/// At most this many bytes (by RFC822.SIZE) per batch: with one batch being fetched while
/// the previous one is appended, about twice this is in memory, whatever the mailbox size.
const BATCH_BYTES: u64 = 4 << 20;

/// Splits the messages to copy into batches bounded by count and bytes; a message bigger
/// than the budget travels alone.
/// Ranges of `todo`, each a batch of the messages in it within the budget (those over it are
/// in no batch's count: they are streamed alone).
fn batches(todo: &[Slim]) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    let (mut count, mut bytes) = (0, 0);
    for (i, m) in todo.iter().enumerate() {
        // Those over the budget travel alone, streamed: not in any batch's count.
        if m.size() > BATCH_BYTES {
            if let Some(b) = out.last_mut() {
                b.end = i + 1;
            }
            continue;
        }
        let full = out.is_empty() || count >= BATCH_MESSAGES || bytes + m.size() > BATCH_BYTES;
        if full {
            out.push(i..i + 1);
            (count, bytes) = (0, 0);
        }
        count += 1;
        bytes += m.size();
        if let Some(b) = out.last_mut() {
            b.end = i + 1;
        }
    }
    out
}

type Fetched = Result<Vec<(Uid, crate::store::Body)>, StoreError>;

/// Stops the folder when the run is stopping (another worker hit a fatal failure): the
/// folder is then reported unfinished, and never recorded as in step.
fn halted(shared: &Shared<'_>) -> Result<(), Stop> {
    if shared.stop.get() {
        return Err(Stop::Folder(FolderFailure::new(
            FolderFailureKind::Connection,
            "not finished: the run stopped (see its error); run again to finish",
        )));
    }
    Ok(())
}

/// The over-quota stop: the folder's error names what was left, the run stops with one
/// message instead of one refusal per remaining message.
fn over_quota(fr: &mut FolderReport, m: &FolderMapping, left: usize, e: StoreError) -> Stop {
    fr.error = Some(FolderFailure::new(
        FolderFailureKind::OverQuota,
        format!(
            "the destination is over quota ({}); {left} messages of this folder were not copied",
            e.message
        ),
    ));
    Stop::Run(SyncError::OverQuota {
        folder: m.source_utf8.clone(),
        server: e.message,
    })
}

/// The copy pipeline of one folder: batch k+1 is fetched from the source while batch k is
/// appended to the destination, each on its own connection.
async fn copy_messages<S: Store, D: Store>(
    src: &mut S,
    dst: &mut D,
    m: &FolderMapping,
    source_validity: u32,
    pending: &Pending,
    shared: &Shared<'_>,
    (fr, sent): (&mut FolderReport, &mut Sent),
) -> Result<(), Stop> {
    let todo = pending.records();
    let (copied_at_start, failed_at_start) = (fr.copied, fr.failed.len());
    let left = |fr: &FolderReport| {
        let done = (fr.copied - copied_at_start) as usize + (fr.failed.len() - failed_at_start);
        todo.len().saturating_sub(done)
    };
    // Messages over the batch budget are streamed one by one, never held whole.
    for record in todo.iter().filter(|m| m.size() > BATCH_BYTES) {
        halted(shared)?;
        let meta = &pending.msg(record);
        match stream_one(src, dst, m, meta).await? {
            Ok(uid) => {
                if let Some((_, dest_uid)) = uid {
                    sent.note_size(meta.uid, dest_uid, meta.size);
                }
                copied_one(shared, fr, m, source_validity, meta, meta.size, uid)?
            }
            Err(e) if e.kind == FailureKind::OverQuota => return Err(over_quota(fr, m, left(fr), e)),
            Err(e) => failed_one(shared, fr, m, meta.uid, e),
        }
    }
    let batches = batches(todo);
    let Some(first) = batches.first() else {
        return Ok(());
    };
    let uids = |b: &std::ops::Range<usize>| {
        todo[b.clone()]
            .iter()
            .filter(|m| m.size() <= BATCH_BYTES)
            .map(|m| m.uid)
            .collect::<Vec<_>>()
    };
    let mut fetched: Fetched = src.fetch_bodies(&uids(first)).await;
    for (k, range) in batches.iter().enumerate() {
        halted(shared)?;
        // Flags and dates are rebuilt for this batch only.
        let batch: Vec<Msg> = todo[range.clone()]
            .iter()
            .filter(|m| m.size() <= BATCH_BYTES)
            .map(|r| pending.msg(r))
            .collect();
        let (bodies, fetch_failed) = match fetched {
            Ok(b) => (b, false),
            Err(e) if e.scope == FailureScope::Account => return Err(side(e, true)),
            Err(e) => {
                for meta in &batch {
                    failed_one(shared, fr, m, meta.uid, e.clone());
                }
                (Vec::new(), true)
            }
        };
        let mut by_uid: HashMap<Uid, crate::store::Body> = bodies.into_iter().collect();
        let mut present: Vec<(&Msg, crate::store::Body)> = Vec::with_capacity(batch.len());
        for meta in &batch {
            match by_uid.remove(&meta.uid) {
                Some(b) => present.push((meta, b)),
                None if fetch_failed => {}
                None => failed_one(
                    shared,
                    fr,
                    m,
                    meta.uid,
                    StoreError::new(
                        FailureScope::Message,
                        FailureKind::Fetch,
                        "the message vanished from the source during the copy",
                    ),
                ),
            }
        }
        let msgs: Vec<NewMessage<'_>> = present
            .iter()
            .map(|(meta, body)| NewMessage {
                flags: &meta.flags,
                internal_date: meta.internal_date.as_deref(),
                body: body.bytes(),
            })
            .collect();
        let next = batches.get(k + 1);
        let append = async {
            if msgs.is_empty() {
                Ok(Vec::new())
            } else {
                dst.append_batch(&m.dest, &msgs).await
            }
        };
        let prefetch = async {
            match next {
                Some(b) => Some(src.fetch_bodies(&uids(b)).await),
                None => None,
            }
        };
        let (appended, prefetched) = tokio::join!(append, prefetch);
        let outcomes = appended.map_err(|e| side(e, false))?;
        let mut quota = None;
        for ((meta, body), outcome) in present.iter().zip(outcomes) {
            match outcome {
                Ok(uid) => {
                    if let Some((_, dest_uid)) = uid {
                        sent.note(meta.uid, dest_uid, body.bytes(), shared.verify);
                    }
                    copied_one(
                        shared,
                        fr,
                        m,
                        source_validity,
                        meta,
                        body.bytes().len() as u64,
                        uid,
                    )?
                }
                Err(e) if e.scope == FailureScope::Account => return Err(side(e, false)),
                Err(e) if e.kind == FailureKind::OverQuota => {
                    quota.get_or_insert(e);
                }
                Err(e) if e.kind == FailureKind::Append => {
                    refused(
                        dst,
                        (m, source_validity),
                        (meta, body.bytes()),
                        e,
                        shared,
                        (fr, sent),
                    )
                    .await?
                }
                Err(e) => failed_one(shared, fr, m, meta.uid, e),
            }
        }
        if let Some(j) = shared.journal.borrow_mut().as_deref_mut() {
            j.sync().map_err(|e| Stop::Run(e.into()))?;
        }
        if let Some(e) = quota {
            return Err(over_quota(fr, m, left(fr), e));
        }
        // A source connection that died while prefetching stops here, after this batch was
        // appended and journalled.
        fetched = match prefetched {
            Some(Err(e)) if e.scope == FailureScope::Account => return Err(side(e, true)),
            Some(f) => f,
            None => Ok(Vec::new()),
        };
    }
    Ok(())
}

/// A message the destination refused: with `--fix-messages`, repaired where it can be and
/// appended again (reported with every change); without, reported, saying when the option
/// would copy it.
async fn refused<D: Store>(
    dst: &mut D,
    (m, source_validity): (&FolderMapping, u32),
    (meta, body): (&Msg, &[u8]),
    e: StoreError,
    shared: &Shared<'_>,
    (fr, sent): (&mut FolderReport, &mut Sent),
) -> Result<(), Stop> {
    let Some((fixed, changes)) = super::repair::repair(body) else {
        failed_one(shared, fr, m, meta.uid, e);
        return Ok(());
    };
    let list = changes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if !shared.fix_messages {
        let mut e = e;
        e.message = format!("{} (--fix-messages would copy it repaired: {list})", e.message);
        failed_one(shared, fr, m, meta.uid, e);
        return Ok(());
    }
    let again = NewMessage {
        flags: &meta.flags,
        internal_date: meta.internal_date.as_deref(),
        body: &fixed,
    };
    match dst.append(&m.dest, again).await {
        Ok(uid) => {
            if let Some((_, dest_uid)) = uid {
                sent.note(meta.uid, dest_uid, &fixed, shared.verify);
            }
            fr.repaired.push(RepairedMessage {
                folder: m.source_utf8.clone(),
                uid: meta.uid,
                changes,
                refused: e.message,
            });
            copied_one(shared, fr, m, source_validity, meta, fixed.len() as u64, uid)
        }
        Err(again) if again.scope == FailureScope::Account => Err(side(again, false)),
        Err(mut again) => {
            again.message = format!(
                "{}; repaired ({list}) and refused again: {}",
                e.message, again.message
            );
            failed_one(shared, fr, m, meta.uid, again);
            Ok(())
        }
    }
}

/// Reports and counts one message that could not be copied; the run goes on.
fn failed_one(shared: &Shared<'_>, fr: &mut FolderReport, m: &FolderMapping, uid: Uid, e: StoreError) {
    shared
        .reporter
        .borrow_mut()
        .message_failed(&m.source_utf8, uid, &e);
    fr.fail(MessageFailure {
        folder: m.source_utf8.clone(),
        uid,
        kind: e.kind,
        message: e.message,
    });
}

/// Counts and journals one copied message.
fn copied_one(
    shared: &Shared<'_>,
    fr: &mut FolderReport,
    m: &FolderMapping,
    source_validity: u32,
    meta: &Msg,
    len: u64,
    uid: Option<(u32, Uid)>,
) -> Result<(), Stop> {
    fr.copied += 1;
    fr.bytes_copied += len;
    shared.reporter.borrow_mut().message_copied(&m.source_utf8, len);
    if let Some(s) = shared.journal.borrow_mut().as_deref_mut() {
        let (dest_validity, dest_uid) = uid.unwrap_or((0, 0));
        let r = CopyRecord {
            source_folder: m.source.clone(),
            source_validity,
            source_uid: meta.uid,
            dest_folder: m.dest.clone(),
            dest_validity,
            dest_uid,
        };
        s.record(r).map_err(|e| Stop::Run(e.into()))?;
    }
    Ok(())
}

/// Pieces of a streamed message.
const CHUNK: u64 = 1 << 20;

/// Copies one message in one APPEND, holding it whole: the path for messages whose size is
/// not exact, and for servers that refuse partial FETCH.
async fn copy_whole<S: Store, D: Store>(
    src: &mut S,
    dst: &mut D,
    m: &FolderMapping,
    meta: &Msg,
) -> Result<Result<Option<(u32, Uid)>, StoreError>, Stop> {
    let mut bodies = match src.fetch_bodies(&[meta.uid]).await {
        Ok(b) => b,
        Err(e) if e.scope == FailureScope::Account => return Err(side(e, true)),
        Err(e) => return Ok(Err(e)),
    };
    let Some((_, body)) = bodies.pop() else {
        return Ok(Err(StoreError::new(
            FailureScope::Message,
            FailureKind::Fetch,
            "the message vanished from the source",
        )));
    };
    let msg = NewMessage {
        flags: &meta.flags,
        internal_date: meta.internal_date.as_deref(),
        body: body.bytes(),
    };
    let mut out = dst
        .append_batch(&m.dest, &[msg])
        .await
        .map_err(|e| side(e, false))?;
    Ok(out.pop().unwrap_or(Ok(None)))
}

/// Streams one big message from source to destination in `CHUNK` pieces. The outer error
/// stops the folder's attempt (a literal cut in the middle leaves the destination connection
/// unusable, so it is opened again); the inner one is this message's failure.
async fn stream_one<S: Store, D: Store>(
    src: &mut S,
    dst: &mut D,
    m: &FolderMapping,
    meta: &Msg,
) -> Result<Result<Option<(u32, Uid)>, StoreError>, Stop> {
    let size = meta.size;
    // The literal's length is announced first, so RFC822.SIZE must be the exact length:
    // reading 2 bytes at size-1 must give exactly 1. Otherwise, and where the server refuses
    // partial FETCH, take the whole-message path.
    let tail = match src.fetch_body_part(meta.uid, size.saturating_sub(1), 2).await {
        Ok(t) => Some(t),
        Err(e) if e.scope == FailureScope::Account => return Err(side(e, true)),
        Err(_) => None,
    };
    if size == 0 || tail.as_ref().is_none_or(|t| t.bytes().len() != 1) {
        return copy_whole(src, dst, m, meta).await;
    }
    drop(tail);
    match dst
        .append_start(&m.dest, &meta.flags, meta.internal_date.as_deref(), size)
        .await
    {
        Ok(()) => {}
        Err(e) if e.scope == FailureScope::Account => return Err(side(e, false)),
        Err(e) => return Ok(Err(e)),
    }
    let mut offset = 0;
    while offset < size {
        let part = src
            .fetch_body_part(meta.uid, offset, CHUNK.min(size - offset))
            .await;
        let part = match part {
            Ok(p) if !p.bytes().is_empty() => p,
            other => {
                let why = match other {
                    Err(e) => e.message,
                    Ok(_) => "the source message ended early".to_string(),
                };
                let e = StoreError::new(
                    FailureScope::Account,
                    FailureKind::Connection,
                    format!(
                        "streaming UID {} of {} failed half-way ({why}); the destination connection was given up",
                        meta.uid, m.source_utf8
                    ),
                );
                return Err(side(e, false));
            }
        };
        dst.append_write(part.bytes()).await.map_err(|e| side(e, false))?;
        offset += part.bytes().len() as u64;
    }
    match dst.append_finish().await {
        Ok(uid) => Ok(Ok(uid)),
        Err(e) if e.scope == FailureScope::Account => Err(side(e, false)),
        Err(e) => Ok(Err(e)),
    }
}

#[cfg(test)]
mod batch_tests {
    use super::{BATCH_BYTES, BATCH_MESSAGES, Slim, batches};
    use proptest::prelude::*;

    proptest! {
        /// Every message within the budget is in exactly one batch, in order; a batch holds
        /// at most BATCH_MESSAGES of them and BATCH_BYTES (one alone may fill it).
        #[test]
        fn batches_cover_every_small_message_once_within_the_budget(
            sizes in proptest::collection::vec(prop_oneof![1u32..200_000, 3_000_000u32..6_000_000], 0..3000)
        ) {
            let todo: Vec<Slim> = sizes.iter().enumerate().map(|(i, s)| Slim::of_size(i as u32 + 1, *s)).collect();
            let small = |m: &&Slim| m.size() <= BATCH_BYTES;
            let mut seen = Vec::new();
            let mut last_end = 0;
            for b in batches(&todo) {
                prop_assert!(b.start >= last_end && b.start < b.end);
                last_end = b.end;
                let inside: Vec<&Slim> = todo[b].iter().filter(small).collect();
                prop_assert!(!inside.is_empty() && inside.len() <= BATCH_MESSAGES);
                let bytes: u64 = inside.iter().map(|m| m.size()).sum();
                prop_assert!(inside.len() == 1 || bytes <= BATCH_BYTES);
                seen.extend(inside.iter().map(|m| m.uid));
            }
            let want: Vec<u32> = todo.iter().filter(small).map(|m| m.uid).collect();
            prop_assert_eq!(seen, want);
        }
    }
}
