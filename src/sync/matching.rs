//! Which source message already has its copy at the destination, which must be copied, and
//! which the successor removed since it was delivered: a pure function of the two folders'
//! identity keys and the journal, with no I/O, so every case can be tested by table and by
//! property.
//!
//! Each destination message is claimed at most once: first by the source message the journal
//! names it for (the journal knows exact pairs, even where identity is ambiguous), then the
//! rest by identity key, as a multiset (N copies of a key cover N source messages). A source
//! message left over is copied — unless the journal shows it was delivered to this folder and
//! its copy is gone, and the caller trusts that (the successor deleted or moved it): then it
//! is reported as removed, not brought back.

use crate::store::Uid;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// A journalled delivery of a source message into *this* destination folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// The destination folder's UIDVALIDITY at delivery (0: the server did not say).
    pub dest_validity: u32,
    /// The copy's UID (0: the server did not say).
    pub dest_uid: Uid,
}

/// A message as the matcher sees it: its UID and identity key. The engine's compact records
/// are matched as they are, not copied into pairs (half a million of them is 10 MB).
pub trait Keyed {
    /// The identity key.
    type Key: Eq + Hash;
    /// UID in its folder.
    fn uid(&self) -> Uid;
    /// Identity key.
    fn key(&self) -> &Self::Key;
}

impl<K: Eq + Hash> Keyed for (Uid, K) {
    type Key = K;
    fn uid(&self) -> Uid {
        self.0
    }
    fn key(&self) -> &K {
        &self.1
    }
}

/// The destination folder as it is now.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a, T> {
    /// Its UIDVALIDITY.
    pub validity: u32,
    /// Its messages with their identity keys.
    pub messages: &'a [T],
}

/// What the matcher is given.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a, T> {
    /// The source messages in scope, with their identity keys.
    pub source: &'a [T],
    /// The destination folder; `None` when it does not exist.
    pub dest: Option<Destination<'a, T>>,
    /// Source UID → its journalled delivery into this destination folder.
    pub journal: &'a HashMap<Uid, Delivered>,
    /// Take a delivered message whose copy is gone as removed by the successor (else it is
    /// copied again: imapsync's behaviour, `--recopy-removed`, or a server that lost
    /// acknowledged appends).
    pub keep_removals: bool,
}

/// The matcher's answer: every source message is in exactly one of the three lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderMatch {
    /// `(source UID, destination UID)`: already there; no destination UID twice.
    pub pairs: Vec<(Uid, Uid)>,
    /// Source UIDs to copy, in source order.
    pub todo: Vec<Uid>,
    /// Source UIDs delivered before whose copy the successor removed.
    pub removed: Vec<Uid>,
}

/// Matches one folder. See the module doc for the rules.
pub fn match_folder<T: Keyed>(inp: Inputs<'_, T>) -> FolderMatch {
    let (validity, dest): (Option<u32>, &[T]) = match inp.dest {
        Some(d) => (Some(d.validity), d.messages),
        None => (None, &[]),
    };
    let present: HashSet<Uid> = dest.iter().map(Keyed::uid).collect();
    let mut claimed: HashSet<Uid> = HashSet::new();
    let mut partner: HashMap<Uid, Uid> = HashMap::new();
    // 1. Journal partners that are still there claim their copy first, whatever their order.
    for su in inp.source.iter().map(Keyed::uid) {
        let Some(d) = inp.journal.get(&su) else { continue };
        let valid = d.dest_uid != 0 && Some(d.dest_validity) == validity && present.contains(&d.dest_uid);
        if valid && claimed.insert(d.dest_uid) {
            partner.insert(su, d.dest_uid);
        }
    }
    // 2. The rest by key, each destination message at most once.
    let mut by_key: HashMap<&T::Key, Vec<Uid>> = HashMap::new();
    for m in dest.iter().rev() {
        if !claimed.contains(&m.uid()) {
            by_key.entry(m.key()).or_default().push(m.uid());
        }
    }
    let mut out = FolderMatch::default();
    for m in inp.source {
        let su = m.uid();
        if let Some(du) = partner.get(&su) {
            out.pairs.push((su, *du));
            continue;
        }
        if let Some(du) = by_key.get_mut(m.key()).and_then(Vec::pop) {
            claimed.insert(du);
            out.pairs.push((su, du));
            continue;
        }
        // 3. Delivered before, and its copy is gone (deleted, moved, or the whole folder
        // incarnation replaced): removed by the successor.
        let gone = inp.journal.get(&su).is_some_and(|d| {
            d.dest_uid == 0 || Some(d.dest_validity) != validity || !present.contains(&d.dest_uid)
        });
        if gone && inp.keep_removals {
            out.removed.push(su);
        } else {
            out.todo.push(su);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(dest_validity: u32, dest_uid: Uid) -> Delivered {
        Delivered {
            dest_validity,
            dest_uid,
        }
    }

    fn run(
        source: &[(Uid, char)],
        dest: Option<(u32, &[(Uid, char)])>,
        journal: &[(Uid, Delivered)],
        keep_removals: bool,
    ) -> FolderMatch {
        let journal: HashMap<Uid, Delivered> = journal.iter().copied().collect();
        match_folder(Inputs {
            source,
            dest: dest.map(|(validity, messages)| Destination { validity, messages }),
            journal: &journal,
            keep_removals,
        })
    }

    #[test]
    fn table() {
        struct Case {
            name: &'static str,
            source: &'static [(Uid, char)],
            dest: Option<(u32, &'static [(Uid, char)])>,
            journal: &'static [(Uid, (u32, Uid))],
            keep_removals: bool,
            pairs: &'static [(Uid, Uid)],
            todo: &'static [Uid],
            removed: &'static [Uid],
        }
        let cases = [
            Case {
                name: "empty destination: copy everything",
                source: &[(1, 'a'), (2, 'b')],
                dest: None,
                journal: &[],
                keep_removals: true,
                pairs: &[],
                todo: &[1, 2],
                removed: &[],
            },
            Case {
                name: "identity finds copies made without a journal (imapsync, a lost journal)",
                source: &[(1, 'a'), (2, 'b'), (3, 'c')],
                dest: Some((9, &[(10, 'c'), (11, 'a')])),
                journal: &[],
                keep_removals: true,
                pairs: &[(1, 11), (3, 10)],
                todo: &[2],
                removed: &[],
            },
            Case {
                name: "exact duplicates: N copies cover N sources",
                source: &[(1, 'a'), (2, 'a'), (3, 'a')],
                dest: Some((9, &[(10, 'a'), (11, 'a')])),
                journal: &[],
                keep_removals: true,
                pairs: &[(1, 10), (2, 11)],
                todo: &[3],
                removed: &[],
            },
            Case {
                // Issue 10: A's batch was refused, B was copied and journalled; A must not
                // take B's copy, or A is never copied and the run still ends "done".
                name: "a journalled duplicate keeps its copy; the unjournalled one is copied",
                source: &[(1, 'a'), (2, 'a')],
                dest: Some((9, &[(10, 'a')])),
                journal: &[(2, (9, 10))],
                keep_removals: true,
                pairs: &[(2, 10)],
                todo: &[1],
                removed: &[],
            },
            Case {
                name: "a journalled copy under another key (server rewrote a header) is honoured once",
                source: &[(1, 'a'), (2, 'b')],
                dest: Some((9, &[(10, 'x'), (11, 'b')])),
                journal: &[(1, (9, 10)), (2, (9, 10))],
                keep_removals: true,
                pairs: &[(1, 10), (2, 11)],
                todo: &[],
                removed: &[],
            },
            Case {
                name: "the successor deleted a delivered message: not brought back",
                source: &[(1, 'a'), (2, 'b')],
                dest: Some((9, &[(11, 'b')])),
                journal: &[(1, (9, 10)), (2, (9, 11))],
                keep_removals: true,
                pairs: &[(2, 11)],
                todo: &[],
                removed: &[1],
            },
            Case {
                name: "--recopy-removed (and imapsync mode) bring it back",
                source: &[(1, 'a'), (2, 'b')],
                dest: Some((9, &[(11, 'b')])),
                journal: &[(1, (9, 10)), (2, (9, 11))],
                keep_removals: false,
                pairs: &[(2, 11)],
                todo: &[1],
                removed: &[],
            },
            Case {
                name: "the successor deleted the folder: everything delivered is removed",
                source: &[(1, 'a'), (2, 'b'), (3, 'c')],
                dest: None,
                journal: &[(1, (9, 10)), (2, (9, 11))],
                keep_removals: true,
                pairs: &[],
                todo: &[3],
                removed: &[1, 2],
            },
            Case {
                name: "destination UIDVALIDITY changed: journal UIDs mean nothing, identity decides",
                source: &[(1, 'a'), (2, 'b')],
                dest: Some((12, &[(1, 'b')])),
                journal: &[(1, (9, 1)), (2, (9, 2))],
                keep_removals: true,
                pairs: &[(2, 1)],
                todo: &[],
                removed: &[1],
            },
            Case {
                name: "no UIDPLUS: journal without UIDs, identity decides, gone means removed",
                source: &[(1, 'a'), (2, 'b')],
                dest: Some((9, &[(5, 'b')])),
                journal: &[(1, (0, 0)), (2, (0, 0))],
                keep_removals: true,
                pairs: &[(2, 5)],
                todo: &[],
                removed: &[1],
            },
            Case {
                name: "a copy moved back (same key, new UID) is found by identity",
                source: &[(1, 'a')],
                dest: Some((9, &[(20, 'a')])),
                journal: &[(1, (9, 10))],
                keep_removals: true,
                pairs: &[(1, 20)],
                todo: &[],
                removed: &[],
            },
        ];
        for c in cases {
            let journal: Vec<(Uid, Delivered)> = c
                .journal
                .iter()
                .map(|(su, (dv, du))| (*su, d(*dv, *du)))
                .collect();
            let got = run(c.source, c.dest, &journal, c.keep_removals);
            let mut pairs = got.pairs.clone();
            pairs.sort();
            assert_eq!(pairs, c.pairs, "{}: pairs", c.name);
            assert_eq!(got.todo, c.todo, "{}: to do", c.name);
            assert_eq!(got.removed, c.removed, "{}: removed", c.name);
        }
    }

    /// The matcher before issue 10: one pass in source order, a journalled message claiming
    /// its copy only out of its own key's list. Kept to show the property catches it.
    fn legacy<K: Eq + Hash + Clone>(inp: Inputs<'_, (Uid, K)>) -> FolderMatch {
        let (validity, dest) = inp.dest.map_or((0, &[][..]), |d| (d.validity, d.messages));
        let present: HashSet<Uid> = dest.iter().map(|(u, _)| *u).collect();
        let mut have: HashMap<K, Vec<Uid>> = HashMap::new();
        for (u, k) in dest {
            have.entry(k.clone()).or_default().push(*u);
        }
        let mut out = FolderMatch::default();
        for (su, k) in inp.source {
            let candidates = have.entry(k.clone()).or_default();
            let journalled = inp
                .journal
                .get(su)
                .filter(|r| r.dest_uid != 0 && r.dest_validity == validity && present.contains(&r.dest_uid));
            let partner = match journalled {
                Some(r) => {
                    candidates.retain(|u| *u != r.dest_uid);
                    Some(r.dest_uid)
                }
                None => candidates.pop(),
            };
            match partner {
                Some(du) => out.pairs.push((*su, du)),
                None => out.todo.push(*su),
            }
        }
        out
    }

    /// A random folder pair: sources with keys from a small alphabet (so duplicates are
    /// common), a destination holding some of them (and strangers), and a journal mixing
    /// true, stale (other UIDVALIDITY), dangling (gone UID) and conflicting entries.
    #[derive(Debug, Clone)]
    struct World {
        source: Vec<(Uid, u8)>,
        dest: Option<(u32, Vec<(Uid, u8)>)>,
        journal: HashMap<Uid, Delivered>,
    }

    fn world() -> impl Strategy<Value = World> {
        (
            prop::collection::vec(0u8..4, 0..12),
            prop::collection::vec(0u8..6, 0..12),
            any::<bool>(),
            prop::collection::vec((0usize..12, 0u8..4, 0u32..14), 0..12),
        )
            .prop_map(|(skeys, dkeys, dest_exists, jentries)| {
                let source: Vec<(Uid, u8)> = skeys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (i as Uid + 1, *k))
                    .collect();
                let dest_msgs: Vec<(Uid, u8)> = dkeys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (i as Uid + 1, *k))
                    .collect();
                let mut journal = HashMap::new();
                for (s, kind, du) in jentries {
                    if s >= source.len() {
                        continue;
                    }
                    // 0, 1: the current incarnation (true, dangling or conflicting, by du);
                    // 2: a stale incarnation; 3: no UIDPLUS.
                    let entry = match kind {
                        0 | 1 => d(9, du),
                        2 => d(8, du),
                        _ => d(0, 0),
                    };
                    journal.insert(source[s].0, entry);
                }
                World {
                    source,
                    dest: dest_exists.then_some((9, dest_msgs)),
                    journal,
                }
            })
    }

    /// The invariants; `Err` says which one broke.
    fn check(w: &World, m: &FolderMatch, keep_removals: bool) -> Result<(), String> {
        let mut seen_dest = HashSet::new();
        for (_, du) in &m.pairs {
            if !seen_dest.insert(*du) {
                return Err(format!("destination UID {du} claimed twice"));
            }
        }
        let dest: HashMap<Uid, u8> = w.dest.iter().flat_map(|(_, ms)| ms.iter().copied()).collect();
        let mut seen_src = HashSet::new();
        for su in m
            .pairs
            .iter()
            .map(|p| p.0)
            .chain(m.todo.iter().copied())
            .chain(m.removed.iter().copied())
        {
            if !seen_src.insert(su) {
                return Err(format!("source UID {su} placed twice"));
            }
        }
        if seen_src.len() != w.source.len() {
            return Err("a source message is neither matched, to copy nor removed".into());
        }
        let key_of: HashMap<Uid, u8> = w.source.iter().copied().collect();
        for (su, du) in &m.pairs {
            let Some(dk) = dest.get(du) else {
                return Err(format!("pair ({su}, {du}) names a missing copy"));
            };
            let journalled = w
                .journal
                .get(su)
                .is_some_and(|d| d.dest_uid == *du && d.dest_validity == 9);
            if key_of[su] != *dk && !journalled {
                return Err(format!("pair ({su}, {du}) has neither the key nor the journal"));
            }
        }
        for su in &m.removed {
            if !keep_removals || !w.journal.contains_key(su) {
                return Err(format!("source UID {su} called removed without a delivery"));
            }
        }
        Ok(())
    }

    fn match_world(
        w: &World,
        keep_removals: bool,
        f: fn(Inputs<'_, (Uid, u8)>) -> FolderMatch,
    ) -> FolderMatch {
        f(Inputs {
            source: &w.source,
            dest: w.dest.as_ref().map(|(validity, messages)| Destination {
                validity: *validity,
                messages,
            }),
            journal: &w.journal,
            keep_removals,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn no_copy_is_claimed_twice_and_every_source_message_gets_its_own(w in world(), keep in any::<bool>()) {
            let m = match_world(&w, keep, match_folder);
            if let Err(e) = check(&w, &m, keep) {
                prop_assert!(false, "{}: {:?} → {:?}", e, w, m);
            }
            if !keep {
                prop_assert!(m.removed.is_empty());
            }
        }
    }

    #[test]
    fn the_property_fails_on_the_matcher_before_issue_10() {
        let mut runner = proptest::test_runner::TestRunner::default();
        let found = runner.run(&world(), |w| {
            let m = match_world(&w, false, legacy);
            prop_assert!(check(&w, &m, false).is_ok());
            Ok(())
        });
        assert!(found.is_err(), "the old matcher's double claim was not found");
    }
}
