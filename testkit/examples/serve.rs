//! Starts a harness Dovecot and keeps it up for manual poking: `cargo run -p testkit --example serve`.
fn main() -> anyhow::Result<()> {
    let d = testkit::Dovecot::start()?;
    println!(
        "imap {} imaps {} dir {}",
        d.imap_port,
        d.imaps_port,
        d.root().display()
    );
    std::thread::sleep(std::time::Duration::from_secs(600));
    Ok(())
}
