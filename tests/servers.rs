//! The same cases on every pair of servers admins run (issue 13): Dovecot shaped like
//! BlueMind, Cyrus shaped like BlueMind 4's store, Dovecot advertising only what BlueMind 5's
//! endpoint does (no MULTIAPPEND, no CONDSTORE: the pipelined LITERAL+ path and re-runs
//! without HIGHESTMODSEQ), and a `.`-separator Dovecot as destination. One table of cases,
//! each run on every pair by `on_every_pair!`, not a copy of the tests per server.

use crate::support::Run;
use assert_cmd::Command;
use testkit::fault::{Direction, Fault, FaultProxy};
use testkit::server::{Kind, Server};
use testkit::{BERTRAND, MailboxSpec, NATHALIE, fill, readback};

/// The leaver's folders left out by the command line below.
const EXCLUDED: [&str; 3] = ["Junk", "Trash", "Outbox"];

/// A source and a destination server, the source filled with a leaver's mailbox (every edge
/// case of the seed, and a folder whose name holds a `.`).
struct Pair {
    src: Server,
    dst: Server,
    state: tempfile::TempDir,
    folders: Vec<String>,
    /// SHA-256 of each message whose header has 8-bit bytes → its digest once Cyrus
    /// rewrote them (when the destination is Cyrus and the source did not rewrite already).
    munged: std::collections::HashMap<String, String>,
    /// How many copied messages that is (exact duplicates count each).
    munged_messages: usize,
}

/// A message as Cyrus stores it by default (`munge8bit`): 8-bit header bytes become `X`.
fn munge8bit(body: &[u8]) -> Vec<u8> {
    let end = body
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(body.len());
    let mut out = body.to_vec();
    for b in &mut out[..end] {
        if *b >= 0x80 {
            *b = b'X';
        }
    }
    out
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

impl Pair {
    fn new(src: Kind, dst: Kind) -> Self {
        let src = Server::start(src).unwrap_or_else(|e| panic!("{}: {e:#}", src.label()));
        let dst = Server::start(dst).unwrap_or_else(|e| panic!("{}: {e:#}", dst.label()));
        let mut spec = MailboxSpec::leaver(13, 60);
        spec.folders.push("Clients/M. Dupont".into());
        let msgs = fill::fill(src.port(), BERTRAND.0, &spec)
            .unwrap_or_else(|e| panic!("fill {}: {e:#}\n{}", src.kind().label(), src.log_tail()));
        let mut folders: Vec<String> = msgs
            .iter()
            .map(|m| m.folder.clone())
            .filter(|f| !EXCLUDED.contains(&f.as_str()))
            .collect();
        folders.sort();
        folders.dedup();
        let munged: Vec<(String, String)> = if dst.kind() == Kind::Cyrus && src.kind() != Kind::Cyrus {
            msgs.iter()
                .filter(|m| folders.contains(&m.folder))
                .map(|m| (sha256(&m.bytes), sha256(&munge8bit(&m.bytes))))
                .filter(|(a, b)| a != b)
                .collect()
        } else {
            Vec::new()
        };
        let munged_messages = munged.len();
        let munged = munged.into_iter().collect();
        Pair {
            src,
            dst,
            state: tempfile::tempdir().unwrap(),
            folders,
            munged,
            munged_messages,
        }
    }

    fn what(&self) -> String {
        format!("{} → {}", self.src.kind().label(), self.dst.kind().label())
    }

    /// An imapsync command line from the source to the successor's `Bertrand` folder.
    fn line(&self, port2: u16, extra: &[&str]) -> Vec<String> {
        let (p1, p2) = (self.src.port().to_string(), port2.to_string());
        let mut v: Vec<String> = [
            "imapsync",
            "--host1",
            "127.0.0.1",
            "--port1",
            &p1,
            "--notls1",
            "--user1",
            BERTRAND.0,
            "--password1",
            BERTRAND.1,
            "--host2",
            "127.0.0.1",
            "--port2",
            &p2,
            "--notls2",
            "--user2",
            NATHALIE.0,
            "--password2",
            NATHALIE.1,
            "--subfolder2",
            "Bertrand",
            "--exclude",
            "^Junk$",
            "--exclude",
            "^Trash$",
            "--exclude",
            "^Outbox$",
            "--timeout",
            "10",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    fn run_to(&self, port2: u16, extra: &[&str]) -> Run {
        let out = Command::cargo_bin("offboard")
            .unwrap()
            .args(self.line(port2, extra))
            .arg("--state-dir")
            .arg(self.state.path())
            .env_remove("IMAPSYNC_PASSWORD1")
            .env_remove("IMAPSYNC_PASSWORD2")
            .output()
            .unwrap();
        Run::from(out)
    }

    fn run(&self, extra: &[&str]) -> Run {
        self.run_to(self.dst.port(), extra)
    }

    /// A first copy succeeded: exit 0, or where the destination rewrote messages (Cyrus and
    /// 8-bit headers), exit 111 with exactly those reported, each.
    fn assert_first_copy(&self, r: &Run) {
        let what = self.what();
        let n = self.munged_messages;
        if n == 0 {
            assert_eq!(r.code, 0, "{what}:\n{}\n{}", r.stdout, r.stderr);
            assert!(
                r.stdout.contains("(0 stored altered by host2)"),
                "{what}: {}",
                r.stdout
            );
        } else {
            assert_eq!(r.code, 111, "{what}:\n{}\n{}", r.stdout, r.stderr);
            assert!(
                r.stdout.contains(&format!("({n} stored altered by host2)")),
                "{what}: {}",
                r.stdout
            );
            assert_eq!(
                r.stdout
                    .matches("but host2 altered it: header bytes rewritten")
                    .count(),
                n
            );
        }
    }

    /// Where a source folder lands: under `Bertrand`, levels joined with the destination's
    /// separator, and that separator inside a name made `_` (imapsync's naming).
    fn dest_name(&self, folder: &str) -> String {
        let sep = self.dst.kind().separator();
        let levels: Vec<String> = folder
            .split('/')
            .map(|l| {
                if sep == '/' {
                    l.to_string()
                } else {
                    l.replace(sep, "_")
                }
            })
            .collect();
        format!("Bertrand{sep}{}", levels.join(&sep.to_string()))
    }

    /// The destination holds exactly the source's messages (bytes, flags, dates), each once,
    /// in the same tree, subscribed; nothing of the folders left out.
    fn assert_exact(&self, context: &str) {
        let what = self.what();
        let src = readback::snapshot(self.src.port(), BERTRAND.0).unwrap();
        let dst = readback::snapshot(self.dst.port(), NATHALIE.0).unwrap();
        for folder in &self.folders {
            let s = src
                .folder(folder)
                .unwrap_or_else(|| panic!("{what}: source {folder} missing"));
            let target = self.dest_name(folder);
            let t = dst.folder(&target).unwrap_or_else(|| {
                panic!(
                    "{what}, {context}: {target} missing among {:?}",
                    dst.folders.keys()
                )
            });
            // What a faithful copy holds, with Cyrus's rewrite of 8-bit headers where it applies.
            let mut want = s.clone();
            for m in &mut want.messages {
                if let Some(munged) = self.munged.get(&m.sha256) {
                    m.sha256 = munged.clone();
                }
            }
            assert_eq!(
                t.content(),
                want.content(),
                "{what}, {context}: content of {target}"
            );
            assert!(t.subscribed, "{what}, {context}: {target} not subscribed");
        }
        let sep = self.dst.kind().separator();
        let copied: usize = dst
            .folders
            .iter()
            .filter(|(name, _)| name.starts_with(&format!("Bertrand{sep}")))
            .map(|(_, f)| f.messages.len())
            .sum();
        let expected: usize = self
            .folders
            .iter()
            .filter_map(|f| src.folder(f))
            .map(|f| f.messages.len())
            .sum();
        let per_folder: Vec<(&String, usize)> =
            dst.folders.iter().map(|(n, f)| (n, f.messages.len())).collect();
        assert_eq!(
            copied, expected,
            "{what}, {context}: messages under Bertrand; destination {per_folder:?}, expected folders {:?}",
            self.folders
        );
    }
}

fn transferred(r: &Run) -> Option<u64> {
    r.stdout
        .lines()
        .find_map(|l| l.strip_prefix("Messages transferred           : "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Runs a case on every pair of servers, one test each (so they run in parallel and fail
/// apart).
macro_rules! on_every_pair {
    ($case:ident) => {
        mod $case {
            use testkit::server::Kind::*;
            #[test]
            fn dovecot_to_dovecot() {
                super::$case(Dovecot, Dovecot)
            }
            #[test]
            fn dovecot_to_cyrus() {
                super::$case(Dovecot, Cyrus)
            }
            #[test]
            fn cyrus_to_dovecot() {
                super::$case(Cyrus, Dovecot)
            }
            #[test]
            fn cyrus_to_cyrus() {
                super::$case(Cyrus, Cyrus)
            }
            #[test]
            fn dovecot_to_bluemind_5() {
                super::$case(Dovecot, BlueMind5)
            }
            #[test]
            fn bluemind_5_to_bluemind_5() {
                super::$case(BlueMind5, BlueMind5)
            }
            #[test]
            fn dovecot_to_dot_separator() {
                super::$case(Dovecot, DotSeparator)
            }
        }
    };
}

/// The copy is exact, and a re-run copies nothing (and, with a message more, just that one).
fn copies_exactly_and_reruns_copy_only_what_is_new(src: Kind, dst: Kind) {
    let p = Pair::new(src, dst);
    let what = p.what();
    let r = p.run(&[]);
    p.assert_first_copy(&r);
    p.assert_exact("first run");
    if dst == Kind::DotSeparator {
        // The plan says which name changed, and how.
        assert!(
            r.stdout.contains(r#""M. Dupont" became "M_ Dupont""#),
            "{what}: {}",
            r.stdout
        );
    }
    let again = p.run(&[]);
    assert_eq!(again.code, 0, "{what}: {}", again.stderr);
    assert_eq!(transferred(&again), Some(0), "{what}: {}", again.stdout);
    // Mail arrives after the hand-over: the next run copies it alone.
    let mut c = testkit::wire::Conn::login(p.src.port(), BERTRAND.0, BERTRAND.1).unwrap();
    c.multiappend(
        "INBOX",
        &[(
            "\\Flagged".to_string(),
            "30-Nov-2026 09:00:00 +0100".to_string(),
            b"Message-ID: <late@x>\r\nSubject: late\r\n\r\nlate\r\n".as_slice(),
        )],
    )
    .unwrap();
    c.logout();
    let late = p.run(&[]);
    assert_eq!(late.code, 0, "{what}: {}", late.stderr);
    assert_eq!(transferred(&late), Some(1), "{what}: {}", late.stdout);
    p.assert_exact("after a message arrived");
}
on_every_pair!(copies_exactly_and_reruns_copy_only_what_is_new);

/// A connection to the destination cut in the middle of an APPEND: the run reconnects (or
/// stops, and the next run finishes), and no message is there twice.
fn an_interrupted_copy_finishes_without_duplicates(src: Kind, dst: Kind) {
    let p = Pair::new(src, dst);
    let what = p.what();
    let proxy = FaultProxy::start(
        p.dst.port(),
        Fault::CutAt {
            direction: Direction::ToServer,
            pattern: b"APPEND".to_vec(),
            then: 2500,
        },
    )
    .unwrap();
    let r = p.run_to(proxy.port, &["--reconnectretry2", "3"]);
    assert!(proxy.fired(), "{what}: the cut never happened\n{}", r.stdout);
    if r.code != 0 && !r.stdout.contains("Exiting with return value 111") {
        let again = p.run(&[]);
        assert!(
            again.code == 0 || again.code == 111,
            "{what}:\n{}\n{}",
            again.stdout,
            again.stderr
        );
    }
    p.assert_exact("after the cut");
    let last = p.run(&[]);
    assert_eq!(last.code, 0, "{what}: {}", last.stdout);
    assert_eq!(transferred(&last), Some(0), "{what}: {}", last.stdout);
}
on_every_pair!(an_interrupted_copy_finishes_without_duplicates);

/// imapsync's `--dry` changes nothing and says what it would create; `--justfolders` makes
/// the tree and copies no message.
fn dry_run_and_justfolders_do_what_imapsync_does(src: Kind, dst: Kind) {
    let p = Pair::new(src, dst);
    let what = p.what();
    let before = readback::snapshot(p.dst.port(), NATHALIE.0).unwrap();
    let dry = p.run(&["--dry"]);
    assert_eq!(dry.code, 0, "{what}: {}", dry.stderr);
    assert!(dry.stdout.contains("(would create)"), "{what}: {}", dry.stdout);
    let after = readback::snapshot(p.dst.port(), NATHALIE.0).unwrap();
    assert_eq!(
        after.folders.keys().collect::<Vec<_>>(),
        before.folders.keys().collect::<Vec<_>>(),
        "{what}: the dry run changed the folders"
    );
    assert_eq!(after.total(), before.total(), "{what}: the dry run copied");
    let jf = p.run(&["--justfolders"]);
    assert_eq!(jf.code, 0, "{what}: {}", jf.stderr);
    let dst = readback::snapshot(p.dst.port(), NATHALIE.0).unwrap();
    for folder in &p.folders {
        let target = p.dest_name(folder);
        let f = dst
            .folder(&target)
            .unwrap_or_else(|| panic!("{what}: {target} not made"));
        assert!(f.messages.is_empty(), "{what}: {target} got messages");
    }
}
on_every_pair!(dry_run_and_justfolders_do_what_imapsync_does);

/// Cyrus refuses a message whose header has a line without a field name (`invalid header`):
/// without `--fix-messages` the failure names the option (exit 114); with it, the message is
/// stored with that line folded into the field before, and the report says so.
#[test]
fn a_message_cyrus_refuses_is_copied_repaired_only_with_fix_messages() {
    let src = Server::start(Kind::Dovecot).unwrap();
    let dst = Server::start(Kind::Cyrus).unwrap();
    let body = b"Message-ID: <nameless@x>\r\nSubject: a\r\nnot a field\r\nFrom: b@x\r\n\r\nbody\r\n";
    let mut c = testkit::wire::Conn::login(src.port(), BERTRAND.0, BERTRAND.1).unwrap();
    c.multiappend(
        "INBOX",
        &[(
            String::new(),
            "01-Jan-2024 10:00:00 +0000".into(),
            body.as_slice(),
        )],
    )
    .unwrap();
    c.logout();
    let p = Pair {
        src,
        dst,
        state: tempfile::tempdir().unwrap(),
        folders: vec!["INBOX".into()],
        munged: Default::default(),
        munged_messages: 0,
    };
    let r = p.run(&[]);
    assert_eq!(r.code, 114, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("--fix-messages would copy it repaired"),
        "{}",
        r.stdout
    );
    let fixed = p.run(&["--fix-messages"]);
    assert_eq!(fixed.code, 0, "{}\n{}", fixed.stdout, fixed.stderr);
    assert!(
        fixed.stdout.contains("Messages repaired              : 1"),
        "{}",
        fixed.stdout
    );
    assert!(
        fixed.stdout.contains("header lines without a name folded"),
        "{}",
        fixed.stdout
    );
    let stored = readback::folder(p.dst.port(), NATHALIE.0, "Bertrand/INBOX").unwrap();
    use sha2::Digest;
    let want = b"Message-ID: <nameless@x>\r\nSubject: a\r\n not a field\r\nFrom: b@x\r\n\r\nbody\r\n";
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].sha256, hex::encode(sha2::Sha256::digest(want)));
    assert_eq!(transferred(&p.run(&["--fix-messages"])), Some(0));
}
