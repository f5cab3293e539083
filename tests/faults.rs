//! The copy under a hostile network: a proxy between `offboard imapsync` and Dovecot cuts or
//! stalls one connection at a chosen phase (testkit's `FaultProxy`). In every case the run
//! either finishes after reconnecting, or stops with a clear error and the next run finishes;
//! and the destination ends with exactly the source's messages (bodies, flags, dates read
//! back), each once.

use crate::imapsync_compat::{assert_copied, offboard, scenario, seed_line};
use testkit::Dovecot;
use testkit::fault::{Direction, Fault, FaultProxy};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Source,
    Destination,
}

/// The seed line in plain IMAP (the proxy reads the bytes), one side through the proxy,
/// with a short stall timeout.
fn line_through(d: &Dovecot, side: Side, proxy: &FaultProxy) -> Vec<String> {
    let mut args = seed_line(d, false, false);
    let port_flag = if side == Side::Source {
        "--port1"
    } else {
        "--port2"
    };
    let at = args.iter().position(|a| a == port_flag).expect("port flag") + 1;
    args[at] = proxy.port.to_string();
    args.extend(
        ["--notls1", "--notls2", "--timeout", "4", "--reconnectretry1", "4"]
            .iter()
            .map(|s| s.to_string()),
    );
    args
}

fn survives(side: Side, fault: Fault, what: &str) {
    let d = Dovecot::start().unwrap();
    let msgs = scenario(&d, 120);
    let proxy = FaultProxy::start(d.imap_port, fault).unwrap();
    let state = tempfile::tempdir().unwrap();
    let r = offboard(&d, state.path(), &line_through(&d, side, &proxy));
    assert!(proxy.fired(), "{what}: the fault never happened\n{}", r.stdout);
    if r.code != 0 {
        // A clear error, then the next run finishes.
        assert!(r.stderr.contains("error"), "{what}: {}", r.stderr);
        let again = offboard(&d, state.path(), &line_through(&d, side, &proxy));
        assert_eq!(
            again.code, 0,
            "{what}, second run:\n{}\n{}",
            again.stdout, again.stderr
        );
    } else {
        assert!(
            r.stderr.contains("reconnecting"),
            "{what}: finished without saying it reconnected: {}",
            r.stderr
        );
        assert!(proxy.connections() > 2, "{what}: no new connection was opened");
    }
    assert_copied(&d, &msgs);
    // And nothing more to do.
    let last = offboard(&d, state.path(), &line_through(&d, side, &proxy));
    assert_eq!(last.code, 0, "{what}: {}", last.stderr);
    assert!(
        last.stdout.contains("Messages transferred           : 0 "),
        "{what}: {}",
        last.stdout
    );
}

#[test]
fn a_cut_during_the_source_fetch_of_bodies_is_survived() {
    survives(
        Side::Source,
        Fault::CutAt {
            direction: Direction::ToClient,
            pattern: b"BODY[] {".to_vec(),
            then: 700,
        },
        "cut in a FETCH literal",
    );
}

#[test]
fn a_cut_in_the_middle_of_an_append_literal_is_survived() {
    survives(
        Side::Destination,
        Fault::CutAt {
            direction: Direction::ToServer,
            pattern: b"APPEND".to_vec(),
            then: 3000,
        },
        "cut in an APPEND literal",
    );
}

#[test]
fn a_cut_between_an_append_and_its_tagged_ok_is_survived_without_a_duplicate() {
    // The server stored the batch; the client never hears so. Identity finds the copies.
    survives(
        Side::Destination,
        Fault::CutAt {
            direction: Direction::ToClient,
            pattern: b"[APPENDUID".to_vec(),
            then: 0,
        },
        "cut before the APPEND's OK",
    );
}

#[test]
fn a_cut_during_list_is_survived() {
    survives(
        Side::Source,
        Fault::CutAt {
            direction: Direction::ToClient,
            pattern: b"* LIST".to_vec(),
            then: 10,
        },
        "cut during LIST",
    );
}

#[test]
fn a_cut_during_create_is_survived() {
    // The folder is made, the client is not told: the second LIST finds it.
    survives(
        Side::Destination,
        Fault::CutAt {
            direction: Direction::ToClient,
            pattern: b"Create completed".to_vec(),
            then: 0,
        },
        "cut after CREATE",
    );
}

#[test]
fn a_server_that_stalls_mid_fetch_is_timed_out_and_survived() {
    survives(
        Side::Source,
        Fault::StallAt {
            direction: Direction::ToClient,
            pattern: b"BODY[] {".to_vec(),
            then: 300,
            stall_for: std::time::Duration::from_secs(30),
        },
        "stall in a FETCH literal",
    );
}

#[test]
fn a_connection_cut_after_n_bytes_is_survived() {
    survives(
        Side::Destination,
        Fault::CutAfter {
            direction: Direction::ToServer,
            bytes: 40_000,
        },
        "cut after 40,000 bytes",
    );
}

/// Issue 10: another session changing flags makes the server send unsolicited FETCH
/// responses (with a UID) in the middle of the metadata FETCH. They must not become phantom
/// messages (a second copy, or a false "vanished" failure).
#[test]
fn unsolicited_fetch_responses_during_the_metadata_fetch_add_no_phantom_message() {
    let d = Dovecot::start().unwrap();
    let msgs = scenario(&d, 60);
    let proxy = FaultProxy::start(
        d.imap_port,
        Fault::InjectBefore {
            direction: Direction::ToClient,
            pattern: b"* 1 FETCH (UID 1 FLAGS".to_vec(),
            bytes: b"* 2 FETCH (UID 2 FLAGS (\\Flagged))\r\n* 3 FETCH (UID 3 FLAGS ())\r\n".to_vec(),
        },
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let r = offboard(&d, state.path(), &line_through(&d, Side::Source, &proxy));
    assert!(proxy.fired(), "nothing injected:\n{}", r.stdout);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("vanished"), "{}", r.stdout);
    assert_copied(&d, &msgs);
}
