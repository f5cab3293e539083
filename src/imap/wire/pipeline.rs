//! The bookkeeping of pipelined commands, without I/O: which tag completed, with which
//! outcome, and what it said (APPENDUID, STATUS data, the server's words). The session feeds
//! it each parsed response as it reads them; this module only looks at them, so it is tested
//! (and fuzzed) on bytes alone.

use async_imap::imap_proto::{
    MailboxDatum, Outcome, RequestId, Response, ResponseCode, Status, StatusAttribute,
};

/// `(UIDVALIDITY, UIDNEXT, MESSAGES, HIGHESTMODSEQ)` of a mailbox, as the server said.
pub type FolderState = (Option<u32>, Option<u32>, u32, Option<u64>);

/// The completions of commands sent back to back, matched by tag.
#[derive(Debug)]
pub struct Completions<T> {
    tags: Vec<RequestId>,
    done: Vec<Option<T>>,
    left: usize,
    /// STATUS data seen since the last completion: it belongs to the next one.
    status_data: Option<FolderState>,
}

impl<T> Completions<T> {
    /// Waits for these tags, in the order they were sent.
    pub fn new(tags: Vec<RequestId>) -> Self {
        let n = tags.len();
        Completions {
            tags,
            done: (0..n).map(|_| None).collect(),
            left: n,
            status_data: None,
        }
    }

    /// Takes one response; `map` turns a completion of ours (with the STATUS data that came
    /// before it) into its outcome. A tag not ours, or completed twice, is ignored. Returns
    /// whether every command is complete.
    pub fn on_response(
        &mut self,
        resp: &Response<'_>,
        map: &mut impl FnMut(&Status, &Outcome<'_>, Option<FolderState>) -> T,
    ) -> bool {
        match resp {
            Response::MailboxData(MailboxDatum::Status { status, .. }) => {
                self.status_data = Some(folder_state_of(status));
            }
            Response::Done { tag, status, outcome } => {
                if let Some(i) = self.tags.iter().position(|t| t == tag)
                    && self.done[i].is_none()
                {
                    self.left -= 1;
                    self.done[i] = Some(map(status, outcome, self.status_data.take()));
                }
            }
            _ => {}
        }
        self.is_complete()
    }

    /// Whether every command has completed.
    pub fn is_complete(&self) -> bool {
        self.left == 0
    }

    /// The outcomes in the order the commands were sent (only the completed ones).
    pub fn finish(self) -> Vec<T> {
        self.done.into_iter().flatten().collect()
    }
}

/// `(UIDVALIDITY, UIDNEXT, MESSAGES, HIGHESTMODSEQ)` of a STATUS response.
pub fn folder_state_of(attrs: &[StatusAttribute]) -> FolderState {
    let mut state: FolderState = (None, None, 0, None);
    for a in attrs {
        match a {
            StatusAttribute::UidValidity(v) => state.0 = Some(*v),
            StatusAttribute::UidNext(v) => state.1 = Some(*v),
            StatusAttribute::Messages(v) => state.2 = *v,
            StatusAttribute::HighestModSeq(v) => state.3 = Some(*v),
            _ => {}
        }
    }
    state
}

/// Most UIDs taken from one APPENDUID set: a hostile `1:4294967295` must not allocate 32 GB.
const MAX_APPENDED: usize = 1 << 16;

/// The `(UIDVALIDITY, UID)`s of an `[APPENDUID v set]` response code (RFC 4315), in order.
pub fn appended_uids(outcome: &Outcome<'_>) -> Vec<(u32, u32)> {
    use async_imap::imap_proto::rfc4315::UidSetMember;
    let mut out = Vec::new();
    if let Some(ResponseCode::AppendUid(validity, set)) = &outcome.code {
        for m in set {
            let room = MAX_APPENDED.saturating_sub(out.len());
            match m {
                UidSetMember::Uid(u) if room > 0 => out.push((*validity, *u)),
                UidSetMember::UidRange(r) => out.extend(r.clone().take(room).map(|u| (*validity, u))),
                UidSetMember::Uid(_) => {}
            }
        }
    }
    out
}

/// The server's words for a refused command. Codes imap-proto does not know (`[OVERQUOTA]`,
/// `[TOOBIG]`, `[LIMIT]`) stay at the front of the text, where the engine classifies them.
pub fn refusal_words(outcome: &Outcome<'_>) -> String {
    let code = outcome
        .code
        .as_ref()
        .map(|c| format!("[{c:?}] "))
        .unwrap_or_default();
    format!("{code}{}", outcome.information.as_deref().unwrap_or("").trim())
}

/// One replayed completion: OK or not, the first APPENDUID, the server's words, the STATUS
/// data before it.
pub type Replayed = (bool, Option<(u32, u32)>, String, Option<FolderState>);

/// Feeds a byte stream of server responses to the bookkeeping, as the session does: for
/// tests and fuzzing. Returns the outcomes of the tags `A1`…`An` it saw complete.
pub fn replay(mut bytes: &[u8], n: usize) -> Vec<Replayed> {
    let tags = (1..=n).map(|i| RequestId(format!("A{i}"))).collect();
    let mut c = Completions::new(tags);
    let mut map = |status: &Status, outcome: &Outcome<'_>, data: Option<FolderState>| {
        (
            *status == Status::Ok,
            appended_uids(outcome).first().copied(),
            refusal_words(outcome),
            data,
        )
    };
    while !bytes.is_empty() {
        match Response::parse(bytes) {
            Ok((rest, resp)) => {
                if c.on_response(&resp, &mut map) {
                    break;
                }
                bytes = rest;
            }
            // Incomplete or garbage: the session would wait or fail the connection.
            Err(_) => break,
        }
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn completions_match_tags_in_any_order_with_their_status_data() {
        let wire = b"* STATUS \"INBOX\" (MESSAGES 3 UIDNEXT 9 UIDVALIDITY 7)\r\n\
                     A1 OK done\r\n\
                     X9 OK not ours\r\n\
                     A3 NO [OVERQUOTA] Quota exceeded\r\n\
                     A2 OK [APPENDUID 38505 3955:3957] APPEND completed\r\n\
                     A2 OK twice\r\n";
        let got = replay(wire, 3);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].3, Some((Some(7), Some(9), 3, None)));
        assert!(got[0].0);
        assert_eq!(got[1].1, Some((38505, 3955)));
        assert!(!got[2].0);
        assert!(got[2].2.contains("Quota exceeded"), "{}", got[2].2);
    }

    #[test]
    fn a_huge_appenduid_range_is_bounded() {
        let wire = b"A1 OK [APPENDUID 1 1:4294967295] done\r\n";
        let (_, resp) = Response::parse(wire).unwrap();
        let Response::Done { outcome, .. } = resp else {
            panic!()
        };
        assert_eq!(appended_uids(&outcome).len(), MAX_APPENDED);
    }

    proptest! {
        #[test]
        fn any_bytes_are_replayed_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), n in 0usize..4) {
            let got = replay(&bytes, n);
            prop_assert!(got.len() <= n);
        }
    }
}
