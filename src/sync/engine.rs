//! The copy executor: for each selected folder, find what the destination lacks and append
//! it, byte for byte, with its flags and internal date.
//!
//! Matching is a multiset of identity keys: a destination holding N copies of a key covers N
//! source messages with that key, so exact duplicates inside a source folder arrive as many
//! times as they exist, and a run killed at any moment resumes without a duplicate. The
//! resume journal short-cuts that matching for messages it knows; identity is the safety net
//! when it is lost or the source's UIDVALIDITY changed. Nothing on the destination is ever
//! deleted or overwritten; the source is only EXAMINEd and read with BODY.PEEK.

use super::identity::{fallback_key, header_key};
use super::mapping::{FolderMapping, FolderRules, MappingError, plan_folders, with_parents};
use super::report::{FolderReport, MessageFailure, Reporter, SyncReport};
use super::state::{CopyRecord, SyncState};
use crate::store::{FailureKind, FailureScope, MessageMeta, NewMessage, Store, StoreError, Uid};
use std::collections::{HashMap, HashSet};
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

/// Runs a copy from `src` to `dst`.
pub async fn run<S: Store, D: Store>(
    src: &mut S,
    dst: &mut D,
    opts: &SyncOptions,
    mut state: Option<&mut SyncState>,
    reporter: &mut dyn Reporter,
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let ns1 = src.namespaces().await.map_err(SyncError::Source)?;
    let ns2 = dst.namespaces().await.map_err(SyncError::Destination)?;
    let source_folders = src.list_folders().await.map_err(SyncError::Source)?;
    let dest_folders = dst.list_folders().await.map_err(SyncError::Destination)?;
    let sep2 = opts
        .rules
        .sep2
        .or(ns2.personal.as_ref().and_then(|p| p.1))
        .unwrap_or('/');
    let mappings = plan_folders(&source_folders, &ns1, &ns2, &opts.rules)?;
    reporter.plan(&mappings);

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
    let mut report = SyncReport {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    for m in mappings.iter().filter(|m| m.skipped.is_none()) {
        let mut fr = FolderReport::new(m);
        reporter.folder_started(m);
        match copy_folder(
            src,
            dst,
            opts,
            m,
            sep2,
            &mut existing,
            &subscribed,
            state.as_deref_mut(),
            reporter,
            &mut fr,
        )
        .await
        {
            Ok(()) => {}
            Err(Stop::Folder(e)) => fr.error = Some(e),
            Err(Stop::Run(e)) => {
                report.folders.push(fr);
                report.duration_secs = started.elapsed().as_secs_f64();
                report.aborted = Some(e.to_string());
                return Err(e);
            }
        }
        reporter.folder_done(&fr);
        report.folders.push(fr);
    }
    report.skipped_folders = mappings.iter().filter(|m| m.skipped.is_some()).cloned().collect();
    if let Some(s) = state {
        s.sync()?;
    }
    report.duration_secs = started.elapsed().as_secs_f64();
    Ok(report)
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

#[allow(clippy::too_many_arguments)]
async fn copy_folder<S: Store, D: Store>(
    src: &mut S,
    dst: &mut D,
    opts: &SyncOptions,
    m: &FolderMapping,
    sep2: char,
    existing: &mut HashSet<String>,
    subscribed: &HashSet<String>,
    mut state: Option<&mut SyncState>,
    reporter: &mut dyn Reporter,
    fr: &mut FolderReport,
) -> Result<(), Stop> {
    // Folder tree first, parents first; every folder we create is subscribed.
    let dest_exists = existing.contains(&m.dest);
    for name in with_parents(&m.dest_utf8, sep2) {
        if existing.contains(&name) {
            if !opts.dry_run && name == m.dest && !subscribed.contains(&name) {
                dst.subscribe(&name).await.map_err(|e| side(e, false))?;
            }
            continue;
        }
        if name.eq_ignore_ascii_case("INBOX") {
            continue;
        }
        if name == m.dest {
            fr.created = true;
        }
        if !opts.dry_run {
            dst.create_folder(&name).await.map_err(|e| side(e, false))?;
            dst.subscribe(&name).await.map_err(|e| side(e, false))?;
        }
        existing.insert(name);
    }

    let status = src.examine(&m.source).await.map_err(|e| side(e, true))?;
    if opts.just_folders {
        fr.found = u64::from(status.exists);
        return Ok(());
    }
    let mut metas = src.fetch_meta().await.map_err(|e| side(e, true))?;
    if opts.max_age_days.is_some() || opts.min_age_days.is_some() {
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
    let mut dest_flags: HashMap<Uid, Vec<String>> = HashMap::new();
    if dest_exists {
        let st = if resync {
            dst.select(&m.dest).await
        } else {
            dst.examine(&m.dest).await
        };
        dest_validity = st.map_err(|e| side(e, false))?.uid_validity;
        let dmetas = dst.fetch_meta().await.map_err(|e| side(e, false))?;
        let dkeys = keys_of(dst, &dmetas).await.map_err(|e| side(e, false))?;
        for (d, k) in dmetas.iter().zip(dkeys) {
            have.entry(k).or_default().push(d.uid);
        }
        dest_flags = dmetas.into_iter().map(|d| (d.uid, d.flags)).collect();
    }
    let keys = keys_of(src, &metas).await.map_err(|e| side(e, true))?;

    // Each source message claims one destination message: the one the journal names when it
    // is still there, else one with the same key. Unclaimed source messages are copied.
    let journal = state
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

    for meta in todo {
        if opts.dry_run {
            fr.copied += 1;
            fr.bytes_copied += meta.size;
            continue;
        }
        let body = match src.fetch_body(meta.uid).await {
            Ok(b) => b,
            Err(e) if e.scope == FailureScope::Message => {
                fr.fail(MessageFailure {
                    folder: m.source_utf8.clone(),
                    uid: meta.uid,
                    kind: e.kind,
                    message: e.message,
                });
                continue;
            }
            Err(e) => return Err(side(e, true)),
        };
        let msg = NewMessage {
            flags: &meta.flags,
            internal_date: meta.internal_date.as_deref(),
            body: &body,
        };
        match dst.append(&m.dest, msg).await {
            Ok(appended) => {
                fr.copied += 1;
                fr.bytes_copied += body.len() as u64;
                reporter.message_copied(body.len() as u64);
                if let Some(s) = state.as_deref_mut() {
                    let (dv, du) = appended.unwrap_or((0, 0));
                    s.record(CopyRecord {
                        sf: m.source.clone(),
                        sv: status.uid_validity,
                        su: meta.uid,
                        df: m.dest.clone(),
                        dv,
                        du,
                    })
                    .map_err(|e| Stop::Run(e.into()))?;
                }
            }
            Err(e) if e.scope == FailureScope::Message => {
                reporter.message_failed(&m.source_utf8, meta.uid, &e);
                fr.fail(MessageFailure {
                    folder: m.source_utf8.clone(),
                    uid: meta.uid,
                    kind: e.kind,
                    message: e.message,
                });
            }
            Err(e) if e.kind == FailureKind::Connection => return Err(side(e, false)),
            Err(e) => return Err(side(e, false)),
        }
    }
    Ok(())
}
