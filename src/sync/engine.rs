//! The copy executor: for each selected folder, find what the destination lacks and append
//! it, byte for byte, with its flags and internal date.
//!
//! Matching is a multiset of identity keys: a destination holding N copies of a key covers N
//! source messages with that key, so exact duplicates inside a source folder arrive as many
//! times as they exist, and a run killed at any moment resumes without a duplicate. The
//! resume journal short-cuts that matching for messages it knows; identity is the safety net
//! when it is lost or the source's UIDVALIDITY changed. Nothing on the destination is ever
//! deleted or overwritten; the source is only EXAMINEd and read with BODY.PEEK.
//!
//! Speed: the folder tree is planned, then made in one go (parents first, one pipelined
//! exchange on IMAP); a journalled run asks every folder's status on both sides in one go
//! too, so unchanged folders cost nothing more; then each connection pair (a "worker") takes
//! the next folder from a shared queue, and inside a folder the next batch of bodies is
//! fetched while the previous one is appended (MULTIAPPEND). After each folder the
//! destination's count is read back and must hold everything copied. Workers run as
//! futures of one task, so shared state needs no locks; no borrow of it is held across an
//! await.

use super::identity::{fallback_key, header_key};
use super::mapping::{FolderMapping, FolderRules, MappingError, automap, plan_folders, with_parents};
use super::report::{FolderReport, MessageFailure, Reporter, SyncReport};
use super::state::{CopyRecord, FolderRecord, SyncState};
use crate::store::{
    FailureKind, FailureScope, FolderStatus, MessageMeta, NewMessage, Store, StoreError, TreeOp, Uid,
};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

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
}

/// Failures that stop the whole run.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The source side failed.
    #[error("source: {0}")]
    Source(StoreError),
    /// The destination side failed.
    #[error("destination: {0}")]
    Destination(StoreError),
    /// A folder name cannot be mapped.
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// The journal cannot be written.
    #[error(transparent)]
    State(#[from] super::state::StateError),
}

/// Keys of messages, computed the same way on both sides.
async fn keys_of<S: Store>(store: &mut S, metas: &[MessageMeta]) -> Result<Vec<String>, StoreError> {
    let mut keys: Vec<Option<String>> = metas.iter().map(|m| header_key(&m.identity_headers)).collect();
    let missing: Vec<Uid> = metas
        .iter()
        .zip(&keys)
        .filter(|(_, k)| k.is_none())
        .map(|(m, _)| m.uid)
        .collect();
    if !missing.is_empty() {
        let headers: HashMap<Uid, Vec<u8>> = store.fetch_headers(&missing).await?.into_iter().collect();
        for (m, k) in metas.iter().zip(keys.iter_mut()) {
            if k.is_none() {
                *k = Some(fallback_key(
                    headers.get(&m.uid).map(Vec::as_slice).unwrap_or(&[]),
                    m.size,
                ));
            }
        }
    }
    Ok(keys.into_iter().map(Option::unwrap_or_default).collect())
}

fn date_secs(d: &str) -> Option<i64> {
    chrono::DateTime::parse_from_str(d.trim(), "%d-%b-%Y %H:%M:%S %z")
        .ok()
        .map(|d| d.timestamp())
}

/// What is known of a folder pair before its copy starts: whether the destination existed
/// before the run, and the statuses read for all folders at once.
#[derive(Debug, Default)]
struct Prefetched {
    dest_existed: bool,
    source: Option<FolderStatus>,
    dest: Option<FolderStatus>,
}

/// What the workers share. Borrows are short and never held across an await.
struct Shared<'a> {
    prefetched: RefCell<HashMap<usize, Prefetched>>,
    state: RefCell<Option<&'a mut SyncState>>,
    reporter: RefCell<&'a mut dyn Reporter>,
    queue: RefCell<VecDeque<(usize, bool)>>,
    reports: RefCell<Vec<(usize, FolderReport)>>,
    fatal: RefCell<Option<SyncError>>,
    stop: Cell<bool>,
}

/// Runs a copy with one worker per `(source, destination)` connection pair. Worker 0 also
/// lists, plans and builds the folder tree.
pub async fn run<S: Store, D: Store>(
    workers: &mut [(S, D)],
    opts: &SyncOptions,
    state: Option<&mut SyncState>,
    reporter: &mut dyn Reporter,
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let Some((src, dst)) = workers.first_mut() else {
        return Ok(SyncReport {
            dry_run: opts.dry_run,
            ..Default::default()
        });
    };
    // Each side on its own connection: ask both at once.
    let (ns1, ns2) = tokio::join!(src.namespaces(), dst.namespaces());
    let (ns1, ns2) = (
        ns1.map_err(SyncError::Source)?,
        ns2.map_err(SyncError::Destination)?,
    );
    let (source_folders, dest_folders) = tokio::join!(src.list_folders(), dst.list_folders());
    let source_folders = source_folders.map_err(SyncError::Source)?;
    let dest_folders = dest_folders.map_err(SyncError::Destination)?;
    let sep2 = opts
        .rules
        .sep2
        .or(ns2.personal.as_ref().and_then(|p| p.1))
        .unwrap_or('/');
    let mut mappings = plan_folders(&source_folders, &ns1, &ns2, &opts.rules)?;
    automap(&mut mappings, &source_folders, &dest_folders, &opts.rules);
    reporter.plan(&mappings);

    // The tree, parents first, every created folder subscribed.
    let mut existing: HashSet<String> = dest_folders.iter().map(|f| f.name.clone()).collect();
    let subscribed: HashSet<String> = if opts.dry_run {
        HashSet::new()
    } else {
        dst.list_subscribed()
            .await
            .map_err(SyncError::Destination)?
            .into_iter()
            .collect()
    };
    let copied: Vec<usize> = (0..mappings.len())
        .filter(|&i| mappings[i].skipped.is_none())
        .collect();
    // Planned first, then sent in one go: one round trip for the tree, not two per folder.
    let mut ops = Vec::new();
    let mut planned = Vec::with_capacity(copied.len());
    for &i in &copied {
        let m = &mappings[i];
        let dest_existed = existing.contains(&m.dest);
        let start = ops.len();
        let created = plan_tree(m, sep2, &mut existing, &subscribed, &mut ops);
        planned.push((i, dest_existed, created, start..ops.len()));
    }
    let outcomes = if opts.dry_run || ops.is_empty() {
        Vec::new()
    } else {
        dst.build_tree(&ops).await.map_err(SyncError::Destination)?
    };
    let mut queue = VecDeque::new();
    let mut reports = Vec::new();
    for (i, dest_existed, created, steps) in planned {
        let mut fr = FolderReport::new(&mappings[i]);
        fr.created = created;
        let failed = outcomes
            .get(steps)
            .unwrap_or_default()
            .iter()
            .find_map(|r| r.as_ref().err());
        match failed {
            Some(e) => fr.error = Some(e.to_string()),
            None => queue.push_back((i, dest_existed)),
        }
        reports.push((i, fr));
    }
    // INBOX first: it is usually the biggest folder, and starting it first balances workers.
    let inbox = queue
        .iter()
        .position(|(i, _)| mappings[*i].source.eq_ignore_ascii_case("INBOX"));
    if let Some(inbox) = inbox.and_then(|pos| queue.remove(pos)) {
        queue.push_front(inbox);
    }

    // Re-runs decide from statuses alone: ask for all of them now, one round trip per side
    // instead of two per folder. Read before any copy, so mail arriving during the run makes
    // the next run look again.
    let filtered = opts.max_age_days.is_some() || opts.min_age_days.is_some();
    let mut prefetched: HashMap<usize, Prefetched> = HashMap::new();
    if let Some(st) = state.as_deref()
        && !opts.just_folders
        && !filtered
        && !queue.is_empty()
    {
        let sources: Vec<String> = queue.iter().map(|(i, _)| mappings[*i].source.clone()).collect();
        // The destination's only matters where the journal has the pair in step.
        let in_step: Vec<usize> = queue
            .iter()
            .filter(|(i, existed)| *existed && st.in_step(&mappings[*i].source, &mappings[*i].dest).is_some())
            .map(|(i, _)| *i)
            .collect();
        let dests: Vec<String> = in_step.iter().map(|i| mappings[*i].dest.clone()).collect();
        let (s1, s2) = tokio::join!(src.status_many(&sources), async {
            if dests.is_empty() {
                Ok(Vec::new())
            } else {
                dst.status_many(&dests).await
            }
        });
        for ((i, _), s1) in queue.iter().zip(s1.map_err(SyncError::Source)?) {
            prefetched.entry(*i).or_default().source = s1.ok();
        }
        for (i, s2) in in_step.iter().zip(s2.map_err(SyncError::Destination)?) {
            prefetched.entry(*i).or_default().dest = s2.ok();
        }
    }

    let shared = Shared {
        prefetched: RefCell::new(prefetched),
        state: RefCell::new(state),
        reporter: RefCell::new(reporter),
        queue: RefCell::new(queue),
        reports: RefCell::new(reports),
        fatal: RefCell::new(None),
        stop: Cell::new(false),
    };
    let tasks = workers
        .iter_mut()
        .map(|(src, dst)| worker(src, dst, opts, &mappings, &shared));
    futures::future::join_all(tasks).await;

    let Shared {
        state,
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
    if let Some(e) = fatal.into_inner() {
        return Err(e);
    }
    if let Some(s) = state.into_inner() {
        s.sync()?;
    }
    report.duration_secs = started.elapsed().as_secs_f64();
    Ok(report)
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
        let Some((i, dest_existed)) = shared.queue.borrow_mut().pop_front() else {
            return;
        };
        let m = &mappings[i];
        shared.reporter.borrow_mut().folder_started(m);
        let mut fr = shared
            .reports
            .borrow_mut()
            .iter_mut()
            .find(|(j, _)| *j == i)
            .map(|(_, r)| std::mem::take(r))
            .unwrap_or_else(|| FolderReport::new(m));
        let mut pre = shared.prefetched.borrow_mut().remove(&i).unwrap_or_default();
        pre.dest_existed = dest_existed;
        match copy_folder(src, dst, opts, m, pre, shared, &mut fr).await {
            Ok(()) => {}
            Err(Stop::Folder(e)) => fr.error = Some(e),
            Err(Stop::Run(e)) => {
                shared.stop.set(true);
                shared.fatal.borrow_mut().get_or_insert(e);
            }
        }
        shared.reporter.borrow_mut().folder_done(&fr);
        if let Some(slot) = shared.reports.borrow_mut().iter_mut().find(|(j, _)| *j == i) {
            slot.1 = fr;
        }
    }
}

enum Stop {
    Folder(String),
    Run(SyncError),
}

fn side(e: StoreError, source: bool) -> Stop {
    if e.scope == FailureScope::Account {
        Stop::Run(if source {
            SyncError::Source(e)
        } else {
            SyncError::Destination(e)
        })
    } else {
        Stop::Folder(e.to_string())
    }
}

/// The steps that give the destination folder its missing parents and itself (each created
/// one subscribed), or subscribe it when it exists unsubscribed. Returns whether the folder
/// itself is (or, dry, would be) created.
fn plan_tree(
    m: &FolderMapping,
    sep2: char,
    existing: &mut HashSet<String>,
    subscribed: &HashSet<String>,
    ops: &mut Vec<TreeOp>,
) -> bool {
    let mut created = false;
    for name in with_parents(&m.dest_utf8, sep2) {
        if existing.contains(&name) {
            if name == m.dest
                && !subscribed.contains(&name)
                && !ops.contains(&TreeOp::Subscribe(name.clone()))
            {
                ops.push(TreeOp::Subscribe(name));
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
    let journalled = shared.state.borrow().is_some();
    let dest_exists = pre.dest_existed;
    let before = match pre.source {
        _ if !journalled || opts.just_folders || filtered => None,
        Some(s1) => Some(s1),
        None => Some(src.status(&m.source).await.map_err(|e| side(e, true))?),
    };
    let in_step = shared
        .state
        .borrow()
        .as_ref()
        .and_then(|s| s.in_step(&m.source, &m.dest))
        .cloned();
    if let (Some(rec), Some(s1), true) = (in_step, before.as_ref(), dest_exists) {
        let s2 = match pre.dest {
            Some(s2) => s2,
            None => dst.status(&m.dest).await.map_err(|e| side(e, false))?,
        };
        let triple = |s: &crate::store::FolderStatus| (s.uid_validity, s.uid_next.unwrap_or(0), s.exists);
        let flags_unchanged = !opts.resync_flags
            || (s1.highest_modseq.is_some()
                && s1.highest_modseq == rec.source_modseq
                && s2.highest_modseq.is_some()
                && s2.highest_modseq == rec.destination_modseq);
        if triple(s1) == rec.source && triple(&s2) == rec.destination && flags_unchanged {
            fr.found = u64::from(s1.exists);
            fr.already = u64::from(s1.exists);
            fr.unchanged = true;
            // Exactly as when it was last checked.
            fr.dest_messages = Some(u64::from(s2.exists));
            fr.verified = true;
            return Ok(());
        }
    }

    let status = src.examine(&m.source).await.map_err(|e| side(e, true))?;
    if opts.just_folders {
        fr.found = u64::from(status.exists);
        return Ok(());
    }
    let mut metas = src.fetch_meta().await.map_err(|e| side(e, true))?;
    if filtered {
        metas.retain(|meta| {
            let Some(t) = meta.internal_date.as_deref().and_then(date_secs) else {
                return true;
            };
            let age_days = (opts.now - t) / 86_400;
            opts.max_age_days.is_none_or(|max| age_days <= i64::from(max))
                && opts.min_age_days.is_none_or(|min| age_days >= i64::from(min))
        });
    }
    fr.found = metas.len() as u64;
    fr.bytes_found = metas.iter().map(|m| m.size).sum();

    // What the destination already holds: a multiset of keys, each with its messages.
    let resync = opts.resync_flags && !opts.dry_run;
    let mut have: HashMap<String, Vec<Uid>> = HashMap::new();
    let mut dest_validity = 0;
    let mut dest_before = 0u64;
    let mut dest_flags: HashMap<Uid, Vec<String>> = HashMap::new();
    if dest_exists {
        let st = if resync {
            dst.select(&m.dest).await
        } else {
            dst.examine(&m.dest).await
        };
        dest_validity = st.map_err(|e| side(e, false))?.uid_validity;
        let dmetas = dst.fetch_meta().await.map_err(|e| side(e, false))?;
        dest_before = dmetas.len() as u64;
        let dkeys = keys_of(dst, &dmetas).await.map_err(|e| side(e, false))?;
        for (d, k) in dmetas.iter().zip(dkeys) {
            have.entry(k).or_default().push(d.uid);
        }
        dest_flags = dmetas.into_iter().map(|d| (d.uid, d.flags)).collect();
    }
    let keys = keys_of(src, &metas).await.map_err(|e| side(e, true))?;

    // Each source message claims one destination message: the one the journal names when it
    // is still there, else one with the same key. Unclaimed source messages are copied.
    let journal = shared
        .state
        .borrow()
        .as_ref()
        .and_then(|s| s.copied_in(&m.source, status.uid_validity))
        .cloned()
        .unwrap_or_default();
    let mut todo = Vec::new();
    let mut matched: Vec<(&MessageMeta, Uid)> = Vec::new();
    for (meta, key) in metas.iter().zip(&keys) {
        let candidates = have.entry(key.clone()).or_default();
        let journalled = journal.get(&meta.uid).filter(|r| {
            r.df == m.dest && r.du != 0 && r.dv == dest_validity && dest_flags.contains_key(&r.du)
        });
        let partner = match journalled {
            Some(r) => {
                candidates.retain(|u| *u != r.du);
                Some(r.du)
            }
            // Without APPENDUID the journal cannot point at the copy: identity decides.
            None => candidates.pop(),
        };
        match partner {
            Some(uid) => {
                fr.already += 1;
                matched.push((meta, uid));
            }
            None => todo.push(meta),
        }
    }
    if resync {
        for (meta, uid) in matched {
            let mut want = meta.flags.clone();
            let mut current = dest_flags.get(&uid).cloned().unwrap_or_default();
            want.sort();
            current.sort();
            if want != current {
                dst.set_flags(uid, &meta.flags)
                    .await
                    .map_err(|e| side(e, false))?;
                fr.flags_updated += 1;
            }
        }
    }

    if opts.dry_run {
        fr.copied += todo.len() as u64;
        fr.bytes_copied += todo.iter().map(|m| m.size).sum::<u64>();
        return Ok(());
    }
    copy_messages(src, dst, m, status.uid_validity, &todo, shared, fr).await?;

    // Read the count back: the destination must hold what it held plus what was copied. A
    // server that acknowledged an APPEND without keeping the message is caught here, and the
    // next run copies what is missing.
    let d = dst.status(&m.dest).await.map_err(|e| side(e, false))?;
    let expected = dest_before + fr.copied;
    fr.dest_messages = Some(u64::from(d.exists));
    fr.verified = u64::from(d.exists) >= expected;
    if !fr.verified {
        fr.error = Some(format!(
            "check after copy: {} holds {} messages, at least {expected} expected; \
             run again to copy what is missing",
            m.dest_utf8, d.exists
        ));
    }

    // In step now: remember both statuses so the next run can skip this folder.
    if let Some(s1) = before.filter(|_| fr.failed.is_empty() && fr.verified)
        && let Some(next) = s1.uid_next
        && let Some(dnext) = d.uid_next
        && let Some(s) = shared.state.borrow_mut().as_deref_mut()
    {
        let rec = FolderRecord {
            folder: m.source.clone(),
            dest: m.dest.clone(),
            source: (s1.uid_validity, next, s1.exists),
            destination: (d.uid_validity, dnext, d.exists),
            source_modseq: s1.highest_modseq,
            destination_modseq: d.highest_modseq,
        };
        s.record_in_step(rec).map_err(|e| Stop::Run(e.into()))?;
    }
    Ok(())
}

/// At most this many messages per FETCH and per APPEND command.
const BATCH_MESSAGES: usize = 50;
/// At most this many bytes (by RFC822.SIZE) per batch: with one batch being fetched while
/// the previous one is appended, about twice this is in memory, whatever the mailbox size.
const BATCH_BYTES: u64 = 8 << 20;

/// Splits the messages to copy into batches bounded by count and bytes; a message bigger
/// than the budget travels alone.
fn batches<'a>(todo: &[&'a MessageMeta]) -> Vec<Vec<&'a MessageMeta>> {
    let mut out: Vec<Vec<&MessageMeta>> = Vec::new();
    let mut bytes = 0;
    for m in todo {
        let full = out
            .last()
            .is_none_or(|b| b.len() >= BATCH_MESSAGES || bytes + m.size > BATCH_BYTES);
        if full {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += m.size;
        if let Some(b) = out.last_mut() {
            b.push(m);
        }
    }
    out
}

type Fetched = Result<Vec<(Uid, crate::store::Body)>, StoreError>;

/// The copy pipeline of one folder: batch k+1 is fetched from the source while batch k is
/// appended to the destination, each on its own connection.
async fn copy_messages<S: Store, D: Store>(
    src: &mut S,
    dst: &mut D,
    m: &FolderMapping,
    source_validity: u32,
    todo: &[&MessageMeta],
    shared: &Shared<'_>,
    fr: &mut FolderReport,
) -> Result<(), Stop> {
    // Messages over the batch budget are streamed one by one, never held whole.
    let (big, small): (Vec<&MessageMeta>, Vec<&MessageMeta>) =
        todo.iter().partition(|m| m.size > BATCH_BYTES);
    for meta in big {
        match stream_one(src, dst, m, meta).await? {
            Ok(uid) => copied_one(shared, fr, m, source_validity, meta, meta.size, uid)?,
            Err(e) => failed_one(shared, fr, m, meta.uid, e),
        }
    }
    let batches = batches(&small);
    let Some(first) = batches.first() else {
        return Ok(());
    };
    let uids = |b: &[&MessageMeta]| b.iter().map(|m| m.uid).collect::<Vec<_>>();
    let mut fetched: Fetched = src.fetch_bodies(&uids(first)).await;
    for (k, batch) in batches.iter().enumerate() {
        let bodies = match fetched {
            Ok(b) => b,
            Err(e) if e.scope == FailureScope::Account => return Err(side(e, true)),
            Err(e) => {
                for meta in batch {
                    let f = MessageFailure {
                        folder: m.source_utf8.clone(),
                        uid: meta.uid,
                        kind: e.kind,
                        message: e.message.clone(),
                    };
                    fr.fail(f);
                }
                Vec::new()
            }
        };
        let mut by_uid: HashMap<Uid, crate::store::Body> = bodies.into_iter().collect();
        let mut present: Vec<(&MessageMeta, crate::store::Body)> = Vec::with_capacity(batch.len());
        for meta in batch {
            match by_uid.remove(&meta.uid) {
                Some(b) => present.push((meta, b)),
                None if fr.failed.iter().any(|f| f.uid == meta.uid) => {}
                None => fr.fail(MessageFailure {
                    folder: m.source_utf8.clone(),
                    uid: meta.uid,
                    kind: FailureKind::Fetch,
                    message: "the message vanished from the source during the copy".into(),
                }),
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
        for ((meta, body), outcome) in present.iter().zip(outcomes) {
            match outcome {
                Ok(uid) => copied_one(
                    shared,
                    fr,
                    m,
                    source_validity,
                    meta,
                    body.bytes().len() as u64,
                    uid,
                )?,
                Err(e) if e.scope == FailureScope::Account => return Err(side(e, false)),
                Err(e) => failed_one(shared, fr, m, meta.uid, e),
            }
        }
        fetched = prefetched.unwrap_or(Ok(Vec::new()));
    }
    Ok(())
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
    meta: &MessageMeta,
    len: u64,
    uid: Option<(u32, Uid)>,
) -> Result<(), Stop> {
    fr.copied += 1;
    fr.bytes_copied += len;
    shared.reporter.borrow_mut().message_copied(len);
    if let Some(s) = shared.state.borrow_mut().as_deref_mut() {
        let (dv, du) = uid.unwrap_or((0, 0));
        let r = CopyRecord {
            sf: m.source.clone(),
            sv: source_validity,
            su: meta.uid,
            df: m.dest.clone(),
            dv,
            du,
        };
        s.record(r).map_err(|e| Stop::Run(e.into()))?;
    }
    Ok(())
}

/// Pieces of a streamed message.
const CHUNK: u64 = 1 << 20;

/// Streams one big message from source to destination in `CHUNK` pieces. The outer error
/// stops the run (a literal cut in the middle leaves the destination connection unusable);
/// the inner one is this message's failure.
async fn stream_one<S: Store, D: Store>(
    src: &mut S,
    dst: &mut D,
    m: &FolderMapping,
    meta: &MessageMeta,
) -> Result<Result<Option<(u32, Uid)>, StoreError>, Stop> {
    let size = meta.size;
    // The literal's length is announced first, so RFC822.SIZE must be the exact length:
    // reading 2 bytes at size-1 must give exactly 1. Otherwise take the whole-message path.
    let tail = match src.fetch_body_part(meta.uid, size.saturating_sub(1), 2).await {
        Ok(t) => t,
        Err(e) if e.scope == FailureScope::Account => return Err(side(e, true)),
        Err(e) => return Ok(Err(e)),
    };
    if size == 0 || tail.bytes().len() != 1 {
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
        return Ok(out.pop().unwrap_or(Ok(None)));
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
                        "streaming UID {} of {} failed half-way ({why}); the destination connection was given up, a re-run resumes",
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
