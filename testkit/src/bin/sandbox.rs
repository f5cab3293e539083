//! The sandbox: a local Dovecot and the BlueMind double seeded with the scenario (bertrand
//! with a realistic mailbox, nathalie, mailshares shared with bertrand directly and through a
//! group, one not shared; forwards, rules, a calendar, a phone, a personal folder), then
//! `offboard audit bertrand`, `offboard bertrand --to nathalie` (plan, then for real) and
//! `offboard runs` against it, reports shown.
//!
//!     cargo run -p testkit --bin sandbox            # runs the hand-over and shows the report
//!     cargo run -p testkit --bin sandbox -- --keep  # and keeps everything up for poking

use anyhow::{Context, Result};
use std::process::Command;

/// On a fresh Debian machine, installs Dovecot (as root), without starting a system one.
fn ensure_dovecot() -> Result<()> {
    if std::path::Path::new("/usr/sbin/dovecot").exists() {
        return Ok(());
    }
    anyhow::ensure!(
        nix::unistd::geteuid().is_root(),
        "Dovecot is not installed: run `sudo apt-get install dovecot-imapd` (or `bash .ci/run`) first"
    );
    eprintln!("Installing Dovecot (apt-get)…");
    let guard = std::path::Path::new("/usr/sbin/policy-rc.d");
    let made_guard = !guard.exists() && std::fs::write(guard, "#!/bin/sh\nexit 101\n").is_ok();
    if made_guard {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(guard, std::fs::Permissions::from_mode(0o755))?;
    }
    let ok = Command::new("apt-get")
        .args(["update", "-qq"])
        .status()?
        .success()
        && Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "dovecot-imapd",
                "dovecot-core",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()?
            .success();
    if made_guard {
        let _ = std::fs::remove_file(guard);
    }
    anyhow::ensure!(ok, "apt-get could not install Dovecot");
    Ok(())
}

fn main() -> Result<()> {
    let keep = std::env::args().any(|a| a == "--keep");
    ensure_dovecot()?;
    // Build the offboard binary next to this one.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(["build", "-q", "-p", "offboard", "--bin", "offboard"])
        .status()?;
    anyhow::ensure!(status.success(), "cargo build of offboard failed");
    let bin = std::env::current_exe()?
        .parent()
        .context("exe dir")?
        .join("offboard");
    eprintln!("Starting Dovecot and the BlueMind double, filling bertrand's mailbox…");
    let sb = testkit::sandbox::Sandbox::start(400, Default::default())?;
    eprintln!("Config: {}\n", sb.config.display());
    for args in [
        &["audit", "bertrand"][..],
        &["bertrand", "--to", "nathalie", "--dry-run"],
        &["bertrand", "--to", "nathalie", "--yes"],
        &["runs"],
    ] {
        eprintln!("$ offboard {}", args.join(" "));
        let st = Command::new(&bin)
            .args(["--config"])
            .arg(&sb.config)
            .args(args)
            .status()?;
        eprintln!("(exit code {})\n", st.code().unwrap_or(-1));
    }
    if keep {
        eprintln!(
            "Keeping the sandbox up (Ctrl-C to stop). BlueMind double: {}  IMAP: localhost:{} (TLS)",
            sb.bluemind.url(),
            sb.dovecot.imaps_port
        );
        eprintln!(
            "Try: {} --config {} bertrand --to nathalie --json",
            bin.display(),
            sb.config.display()
        );
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
    Ok(())
}
