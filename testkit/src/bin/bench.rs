//! The benchmark: one Dovecot, one reproducible mailbox, every tool copying it, side by side.
//!
//!     cargo build --release && cargo run --release -p testkit --bin bench -- \
//!         [--messages N] [--huge N] [--huge-mb MB] [--runs N] [--peer-runs N] [--only-offboard]
//!         [--disk] [--rtt-ms N] [--one-folder N]
//!
//! `--one-folder N`: one INBOX of N small messages (0.6–2 KB of text, a career's mailbox)
//! instead of the mixed mailbox, to measure what grows with a folder's size.
//! `--no-peers`: offboard and the raw ceiling only (mbsync takes most of an hour on 500,000);
//! `--no-model`: without the imapsync model (minutes on 100,000 messages).
//!
//! `OFFBOARD_BENCH_ARGS` adds options to the offboard runs (e.g. "--workers 4").
//!
//! Times, in one run: `offboard` first copy, `offboard` re-run with nothing new, the raw
//! ceiling (the source read whole, then written with MULTIAPPEND 1,000 messages per command
//! over one connection: what any copy pays at least with this server), `mbsync`
//! (package isync) doing the same copy, `imapsync` when $IMAPSYNC names one, the imapsync
//! model (`bench/imapsync-model.pl`: imapsync's commands through imapsync's IMAP library, a
//! floor for imapsync's time) when Perl has Mail::IMAPClient, and `doveadm import` (the
//! server copying internally: the floor), and last the `offboard` top-up after 10 new
//! messages arrive in the INBOX. Each destination is checked against the source. Prints wall time, messages/s, MB/s, peak RSS, CPU, and the ratio to offboard.
//! Not part of the test suite: timings belong here, not in tests.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;
use testkit::wire::{Conn, Token, quote, tokenize};
use testkit::{BERTRAND, Dovecot, DovecotOptions, MailboxSpec, fill, readback};

struct Measure {
    tool: String,
    wall: f64,
    rss_kib: u64,
    cpu: f64,
    messages: usize,
    bytes: u64,
    check: String,
}

impl Measure {
    fn new(
        tool: impl Into<String>,
        (wall, rss_kib, cpu): (f64, u64, f64),
        messages: usize,
        bytes: u64,
        check: impl Into<String>,
    ) -> Self {
        Measure {
            tool: tool.into(),
            wall,
            rss_kib,
            cpu,
            messages,
            bytes,
            check: check.into(),
        }
    }
}

/// Runs a command under GNU time, returning (wall s, peak RSS KiB, user+sys CPU s).
fn timed(cmd: &mut Command) -> Result<(f64, u64, f64, String)> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("time");
    let mut full = Command::new("/usr/bin/time");
    full.arg("-f")
        .arg("%M %U %S")
        .arg("-o")
        .arg(&out)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => full.env(k, v),
            None => full.env_remove(k),
        };
    }
    // Each run starts with the previous runs' writes on disk, so that their writeback does
    // not land in this run's time.
    let _ = Command::new("sync").status();
    let start = Instant::now();
    let o = full
        .output()
        .context("run (is GNU time installed? apt-get install time)")?;
    let wall = start.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&out)?;
    let f: Vec<f64> = text
        .split_whitespace()
        .rev()
        .take(3)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .filter_map(|s| s.parse().ok())
        .collect();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if !o.status.success() {
        bail!(
            "{:?} failed ({}):\n{}",
            cmd.get_program(),
            o.status,
            log.chars()
                .rev()
                .take(2000)
                .collect::<String>()
                .chars()
                .rev()
                .collect::<String>()
        );
    }
    Ok((
        wall,
        f.first().copied().unwrap_or(0.0) as u64,
        f.get(1).unwrap_or(&0.0) + f.get(2).unwrap_or(&0.0),
        log,
    ))
}

fn offboard_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe.parent().context("exe dir")?.join("offboard");
    if !bin.exists() {
        bail!("{} not found: run `cargo build --release` first", bin.display());
    }
    Ok(bin)
}

/// The destinations' password: every timed run copies into a new user of its own.
const DEST_PASSWORD: &str = "Bench-dest-1";

/// A new, empty successor mailbox for one timed run. Each run gets its own rather than
/// emptying one between runs: deleting 200 MB of mail files makes this disk (ext4 with
/// online discard) slow for the next seconds, and would penalise whichever tool runs next.
fn fresh_destination(d: &Dovecot, tool: &str, run: usize) -> Result<String> {
    let login = format!("dest-{tool}-{run}@bluemind.loc");
    d.add_user(&login, DEST_PASSWORD)?;
    Ok(login)
}

/// Checks the copy under `sub` (mbsync puts INBOX at the destination's INBOX: `inbox_at_root`).
fn verify(
    d: &Dovecot,
    source: &readback::MailboxSnapshot,
    user: &str,
    sub: &str,
    exact: bool,
    inbox_at_root: bool,
) -> Result<String> {
    let dst = readback::snapshot(d.imap_port, user)?;
    let mut missing = 0usize;
    let mut where_missing = Vec::new();
    for (name, f) in &source.folders {
        let under_inbox = name == "INBOX" || name.starts_with("INBOX/");
        let target = if under_inbox && inbox_at_root {
            name.clone()
        } else {
            format!("{sub}/{name}")
        };
        let got = dst.folder(&target);
        match got {
            None => {
                missing += f.messages.len();
                where_missing.push(target.clone());
            }
            Some(t) if exact && t.content() != f.content() => bail!("{target}: content differs"),
            Some(t) if t.messages.len() != f.messages.len() => bail!(
                "{target}: {} messages, want {}",
                t.messages.len(),
                f.messages.len()
            ),
            Some(_) => {}
        }
    }
    if missing > 0 {
        let have: Vec<_> = dst.folders.keys().collect();
        bail!("{missing} messages missing: no {where_missing:?} among {have:?}");
    }
    Ok(if exact {
        "byte-exact".into()
    } else {
        "counts match (bodies rewritten)".into()
    })
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| -> usize {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let n = arg("--messages", 5000);
    let huge = arg("--huge", 0);
    let huge_mb = arg("--huge-mb", 12);
    let runs = arg("--runs", 3).max(1);
    // imapsync and its model take tens of seconds a run: one unless asked for more.
    let peer_runs = arg("--peer-runs", 1).max(1);
    let only_offboard = args.iter().any(|a| a == "--only-offboard");
    let no_peers = only_offboard || args.iter().any(|a| a == "--no-peers");
    // Mail in memory unless --disk: this machine's shared disk makes wall times vary 2–3×
    // from one minute to the next, which would drown the differences between the tools.
    let on_disk = args.iter().any(|a| a == "--disk");
    let shm = std::path::Path::new("/dev/shm");
    let base_dir = (!on_disk && shm.is_dir()).then(|| shm.to_path_buf());
    let storage = if base_dir.is_some() {
        "mail in tmpfs"
    } else {
        "mail on disk, fsync off"
    };
    let d = Dovecot::start_with(DovecotOptions {
        base_dir,
        fsync: false,
        max_lifetime: std::time::Duration::from_secs(3600),
        ..Default::default()
    })?;
    let one_folder = arg("--one-folder", 0);
    let n = if one_folder > 0 { one_folder } else { n };
    let mut spec = MailboxSpec::benchmark(2026, n);
    if one_folder > 0 {
        spec.folders = vec!["INBOX".into()];
        spec.medium_share = 0.0;
        spec.body_size = 600..2_000;
    }
    spec.large = huge;
    spec.large_size = huge_mb << 20;
    // The benchmark copies the leaver's own folders: no Junk/Trash/Outbox in the source.
    spec.folders
        .retain(|f| !["Junk", "Trash", "Outbox"].contains(&f.as_str()));
    eprintln!("filling {n} messages (+{huge} of {huge_mb} MB)…");
    fill::fill(d.imap_port, BERTRAND.0, &spec)?;
    let source = readback::snapshot(d.imap_port, BERTRAND.0)?;
    let total_bytes: u64 = source
        .folders
        .values()
        .flat_map(|f| f.messages.iter())
        .map(|m| m.size)
        .sum();
    let total = source.total();
    eprintln!(
        "source: {total} messages, {:.1} MB in {} folders",
        total_bytes as f64 / 1e6,
        source.folders.len()
    );

    // --rtt-ms N: the tools reach Dovecot through a proxy that delays each direction by N/2,
    // as a server across a network would (filling and checking stay direct).
    let rtt_ms = arg("--rtt-ms", 0);
    let proxy = (rtt_ms > 0)
        .then(|| {
            testkit::delay::DelayProxy::start(
                d.imap_port,
                std::time::Duration::from_micros(rtt_ms as u64 * 500),
            )
        })
        .transpose()?;
    let tool_port = proxy.as_ref().map_or(d.imap_port, |p| p.port);
    let link = if rtt_ms > 0 {
        format!("{rtt_ms} ms round trip")
    } else {
        "loopback".to_string()
    };

    let work = tempfile::tempdir()?;
    let pass1 = work.path().join("p1");
    let pass2 = work.path().join("p2");
    std::fs::write(&pass1, BERTRAND.1)?;
    std::fs::write(&pass2, DEST_PASSWORD)?;
    let mut results = Vec::new();
    let summary = format!(
        "{}, {storage}, {link}, median of {runs} runs",
        spec_summary(n, huge, huge_mb)
    );
    // To compare settings, e.g. OFFBOARD_BENCH_ARGS="--workers 4".
    let extra_offboard_args = std::env::var("OFFBOARD_BENCH_ARGS").unwrap_or_default();
    // The imapsync command line, for offboard's imapsync mode, imapsync and its model.
    let imapsync_args = |user: &str, sub: &str| -> Vec<std::ffi::OsString> {
        let port = tool_port.to_string();
        let mut v: Vec<std::ffi::OsString> = Vec::new();
        for a in [
            "--host1",
            "127.0.0.1",
            "--port1",
            &port,
            "--notls1",
            "--user1",
            BERTRAND.0,
        ] {
            v.push(a.into());
        }
        v.push("--passfile1".into());
        v.push(pass1.clone().into());
        for a in [
            "--host2",
            "127.0.0.1",
            "--port2",
            &port,
            "--notls2",
            "--user2",
            user,
        ] {
            v.push(a.into());
        }
        v.push("--passfile2".into());
        v.push(pass2.clone().into());
        v.push("--subfolder2".into());
        v.push(sub.into());
        v
    };

    // offboard: first copy, then a re-run with nothing new into the last copy.
    let ob = offboard_bin()?;
    let ob_cmd = |user: &str, state: &std::path::Path| {
        let mut c = Command::new(&ob);
        c.arg("imapsync")
            .args(imapsync_args(user, "OB"))
            .arg("--state-dir")
            .arg(state)
            .args(extra_offboard_args.split_whitespace());
        c
    };
    let mut firsts = Vec::new();
    let mut last = None;
    let mut check = String::new();
    for run in 0..runs {
        let user = fresh_destination(&d, "offboard", run)?;
        let state = work.path().join(format!("state-{run}"));
        let (wall, rss, cpu, _) = timed(&mut ob_cmd(&user, &state))?;
        eprintln!(
            "offboard first copy, run {}: {wall:.2} s, peak RSS {:.1} MB",
            run + 1,
            rss as f64 / 1024.0
        );
        check =
            verify(&d, &source, &user, "OB", true, false).unwrap_or_else(|e| format!("CHECK FAILED: {e:#}"));
        firsts.push((wall, rss, cpu));
        last = Some((user, state));
    }
    let (wall, rss, cpu) = median(&mut firsts);
    results.push(Measure::new(
        "offboard (first copy)",
        (wall, rss, cpu),
        total,
        total_bytes,
        check,
    ));
    let mut last_copy = None;
    if let Some((user, state)) = last {
        let (wall, rss, cpu, log) = timed(&mut ob_cmd(&user, &state))?;
        if !log.contains("Messages transferred           : 0 ") {
            bail!("re-run copied something:\n{log}")
        }
        results.push(Measure::new(
            "offboard (re-run, nothing new)",
            (wall, rss, cpu),
            total,
            0,
            "copied nothing",
        ));
        last_copy = Some((user, state));
    }
    let last = last_copy;

    if !only_offboard {
        let user = fresh_destination(&d, "raw", 0)?;
        let (read, write) = raw_multiappend(tool_port, &source, &user)?;
        eprintln!("raw MULTIAPPEND×1000: {read:.2} s read + {write:.2} s write");
        let check =
            verify(&d, &source, &user, "RAW", true, false).unwrap_or_else(|e| format!("CHECK FAILED: {e:#}"));
        results.push(Measure::new(
            format!("raw MULTIAPPEND×1000, 1 connection ({read:.1} s read + {write:.1} s write)"),
            (read + write, 0, 0.0),
            total,
            total_bytes,
            check,
        ));
    }
    if no_peers {
        top_up(&d, &ob_cmd, last, &mut results)?;
        print_table(&results, total, total_bytes, &summary);
        return Ok(());
    }

    // mbsync: the source's INBOX goes to the destination's INBOX, the rest under MB/.
    let mbsync = median_of("mbsync", runs, |run| {
        let user = fresh_destination(&d, "mbsync", run)?;
        let mbsyncrc = work.path().join(format!("mbsyncrc-{run}"));
        let meta = work.path().join(format!("mbsync-meta-{run}"));
        std::fs::create_dir_all(&meta)?;
        std::fs::write(
            &mbsyncrc,
            format!(
                "FSync no\n\nIMAPAccount src\nHost 127.0.0.1\nPort {p}\nUser {u1}\nPassCmd \"cat {p1}\"\nSSLType None\nAuthMechs LOGIN\n\n\
                 IMAPStore src\nAccount src\n\n\
                 IMAPAccount dst\nHost 127.0.0.1\nPort {p}\nUser {u2}\nPassCmd \"cat {p2}\"\nSSLType None\nAuthMechs LOGIN\n\n\
                 IMAPStore dst\nAccount dst\nPath MB/\n\n\
                 Channel c\nFar :src:\nNear :dst:\nPatterns *\nCreate Near\nSync Pull\nSyncState {meta}/\nExpunge None\n",
                p = tool_port,
                u1 = BERTRAND.0,
                u2 = user,
                p1 = pass1.display(),
                p2 = pass2.display(),
                meta = meta.display()
            ),
        )?;
        let (wall, rss, cpu, _) = timed(Command::new("mbsync").arg("-c").arg(&mbsyncrc).args(["-a", "-q"]))?;
        let check =
            verify(&d, &source, &user, "MB", false, true).unwrap_or_else(|e| format!("CHECK FAILED: {e}"));
        Ok(((wall, rss, cpu), check))
    });
    if let Some((m, check)) = mbsync {
        results.push(Measure::new("mbsync", m, total, total_bytes, check));
    }

    // imapsync when $IMAPSYNC names one; the imapsync model (a floor for imapsync's time)
    // when Perl has Mail::IMAPClient.
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/imapsync-model.pl");
    let model_ok = Command::new("perl")
        .args(["-MMail::IMAPClient", "-e1"])
        .output()
        .is_ok_and(|o| o.status.success());
    // (tool, program and its first arguments, extra arguments, bodies byte-exact: imapsync's
    // --addheader rewrites the messages that have no Message-ID).
    let mut peers: Vec<(&str, Vec<std::ffi::OsString>, &[&str], bool)> = Vec::new();
    if let Some(imapsync) = std::env::var_os("IMAPSYNC") {
        peers.push(("imapsync", vec![imapsync], &["--nolog", "--addheader"], false));
    }
    let no_model = args.iter().any(|a| a == "--no-model");
    if model_ok && !no_model {
        peers.push((
            "imapsync model (floor, see bench/imapsync-model.pl)",
            vec!["perl".into(), model.into_os_string()],
            &[],
            true,
        ));
    } else if !no_model {
        eprintln!("imapsync model skipped: apt-get install libmail-imapclient-perl");
    }
    for (k, (tool, program, extra, exact)) in peers.into_iter().enumerate() {
        let measured = median_of(tool, peer_runs, |run| {
            let user = fresh_destination(&d, &format!("peer{k}"), run)?;
            let mut c = Command::new(&program[0]);
            c.args(&program[1..]).args(imapsync_args(&user, "IS")).args(extra);
            let (wall, rss, cpu, _) = timed(&mut c)?;
            let check = verify(&d, &source, &user, "IS", exact, false)
                .unwrap_or_else(|e| format!("CHECK FAILED: {e}"));
            Ok(((wall, rss, cpu), check))
        });
        if let Some((m, check)) = measured {
            results.push(Measure::new(tool, m, total, total_bytes, check));
        }
    }

    // doveadm import: the server copying internally, the floor.
    let user = fresh_destination(&d, "doveadm", 0)?;
    let src_home = d.root().join("home").join(BERTRAND.0).join("Maildir");
    let loc = format!("maildir:{}:LAYOUT=fs", src_home.display());
    let mut c = Command::new("doveadm");
    c.arg("-c")
        .arg(d.config_path())
        .args(["import", "-u", &user, "-s", &loc, "DA", "all"]);
    match timed(&mut c) {
        Ok((wall, rss, cpu, _)) => {
            let check = verify(&d, &source, &user, "DA", true, false)
                .unwrap_or_else(|e| format!("CHECK FAILED: {e}"));
            results.push(Measure::new(
                "doveadm import (floor)",
                (wall, rss, cpu),
                total,
                total_bytes,
                check,
            ));
        }
        Err(e) => eprintln!("doveadm import failed: {e}"),
    }

    top_up(&d, &ob_cmd, last, &mut results)?;
    print_table(&results, total, total_bytes, &summary);
    Ok(())
}

/// The top-up: 10 messages arrive in the INBOX after the hand-over and offboard copies them
/// into its last copy (run last: the peers are checked against the source as it was).
fn top_up(
    d: &Dovecot,
    ob_cmd: &dyn Fn(&str, &std::path::Path) -> Command,
    last: Option<(String, PathBuf)>,
    results: &mut Vec<Measure>,
) -> Result<()> {
    let Some((user, state)) = last else {
        return Ok(());
    };
    let mut c = Conn::login(d.imap_port, BERTRAND.0, BERTRAND.1)?;
    let bodies: Vec<Vec<u8>> = (0..10)
        .map(|i| {
            format!("Message-ID: <topup-{i}@bench>\r\nSubject: late {i}\r\n\r\nlate mail\r\n").into_bytes()
        })
        .collect();
    let items: Vec<(String, String, &[u8])> = bodies
        .iter()
        .map(|b| {
            (
                String::new(),
                "30-Nov-2026 09:00:00 +0000".to_string(),
                b.as_slice(),
            )
        })
        .collect();
    c.multiappend("INBOX", &items)?;
    c.logout();
    let (wall, rss, cpu, log) = timed(&mut ob_cmd(&user, &state))?;
    if !log.contains("Messages transferred           : 10 ") {
        bail!("the top-up did not copy the 10 new messages:\n{log}")
    }
    results.push(Measure::new(
        "offboard (top-up, 10 new)",
        (wall, rss, cpu),
        10,
        0,
        "copied the 10",
    ));
    Ok(())
}

/// The ceiling: the source read whole (one UID FETCH per folder), then written with
/// MULTIAPPEND, 1,000 messages per command, over one connection each way. No matching, no
/// journal, no check: what any copy tool pays at least with this server. Returns (read s,
/// write s).
fn raw_multiappend(port: u16, source: &readback::MailboxSnapshot, user: &str) -> Result<(f64, f64)> {
    type Raw = (String, String, Vec<u8>);
    let start = Instant::now();
    let mut src = Conn::login(port, BERTRAND.0, BERTRAND.1)?;
    let mut folders: Vec<(&str, Vec<Raw>)> = Vec::new();
    for (name, f) in &source.folders {
        if f.messages.is_empty() {
            continue;
        }
        src.command(&format!("EXAMINE {}", quote(&f.wire_name)))?;
        let mut msgs = Vec::with_capacity(f.messages.len());
        // In windows, as any tool must: one FETCH of 500,000 bodies outgrows the server.
        let n = f.messages.len();
        let mut responses = Vec::new();
        for start in (1..=n).step_by(20_000) {
            let end = (start + 19_999).min(n);
            responses.extend(src.command(&format!("FETCH {start}:{end} (FLAGS INTERNALDATE BODY.PEEK[])"))?);
        }
        for resp in responses {
            let t = tokenize(&resp)?;
            let Some(Token::List(items)) = t.get(3) else {
                continue;
            };
            let mut m: Raw = Default::default();
            for pair in items.chunks(2) {
                match pair {
                    [Token::Atom(k), Token::List(fl)] if k == "FLAGS" => {
                        m.0 = fl
                            .iter()
                            .filter_map(Token::text)
                            .filter(|f| f != "\\Recent")
                            .collect::<Vec<_>>()
                            .join(" ")
                    }
                    [Token::Atom(k), v] if k == "INTERNALDATE" => m.1 = v.text().unwrap_or_default(),
                    [Token::Atom(k), Token::Str(b)] if k == "BODY[]" => m.2 = b.clone(),
                    _ => {}
                }
            }
            msgs.push(m);
        }
        folders.push((name, msgs));
    }
    src.logout();
    let read = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut dst = Conn::login(port, user, DEST_PASSWORD)?;
    for (name, msgs) in &folders {
        let wire = testkit::mutf7::encode(&format!("RAW/{name}"));
        // Parents come first (the folders are sorted) and exist already for their children.
        let _ = dst.command(&format!("CREATE {}", quote(&wire)));
        for chunk in msgs.chunks(1000) {
            let items: Vec<(String, String, &[u8])> = chunk
                .iter()
                .map(|(f, d, b)| (f.clone(), d.clone(), b.as_slice()))
                .collect();
            dst.multiappend(&wire, &items)?;
        }
    }
    dst.logout();
    Ok((read, start.elapsed().as_secs_f64()))
}

/// Runs a tool `runs` times and keeps the median run, with the check of the last copy; a
/// failed run is reported and left out.
fn median_of(
    tool: &str,
    runs: usize,
    mut one: impl FnMut(usize) -> Result<((f64, u64, f64), String)>,
) -> Option<((f64, u64, f64), String)> {
    let mut measured = Vec::new();
    let mut check = String::new();
    for run in 0..runs {
        match one(run) {
            Ok((m, c)) => {
                eprintln!("{tool}, run {}: {:.2} s", run + 1, m.0);
                measured.push(m);
                check = c;
            }
            Err(e) => eprintln!("{tool} failed: {e}"),
        }
    }
    (!measured.is_empty()).then(|| (median(&mut measured), check))
}

/// The run with the median wall time.
fn median(runs: &mut [(f64, u64, f64)]) -> (f64, u64, f64) {
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    runs[runs.len() / 2]
}

fn spec_summary(n: usize, huge: usize, huge_mb: usize) -> String {
    if huge > 0 {
        format!("{n} messages + {huge} × {huge_mb} MB")
    } else {
        format!("{n} messages")
    }
}

fn print_table(results: &[Measure], total: usize, bytes: u64, spec: &str) {
    let base = results.first().map(|r| r.wall).unwrap_or(1.0);
    println!(
        "\nMailbox: {spec} ({total} messages, {:.1} MB), Dovecot on this machine\n",
        bytes as f64 / 1e6
    );
    println!("| tool | wall (s) | messages/s | MB/s | peak RSS (MB) | CPU (s) | × offboard | check |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for r in results {
        println!(
            "| {} | {:.2} | {:.0} | {:.1} | {:.1} | {:.2} | {:.2} | {} |",
            r.tool,
            r.wall,
            r.messages as f64 / r.wall,
            r.bytes as f64 / 1e6 / r.wall,
            r.rss_kib as f64 / 1024.0,
            r.cpu,
            r.wall / base,
            r.check
        );
    }
}
