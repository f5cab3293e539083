use testkit::*;

#[test]
fn harness_starts_fills_and_reads_back() {
    let d = Dovecot::start().unwrap();
    let spec = MailboxSpec::leaver(7, 40);
    let msgs = fill::fill(d.imap_port, BERTRAND.0, &spec).unwrap();
    let snap = readback::snapshot(d.imap_port, BERTRAND.0).unwrap();
    for (n, f) in &snap.folders { eprintln!("{n} {} {:?} sub={} {}", f.wire_name, f.attributes, f.subscribed, f.messages.len()); }
    assert_eq!(snap.total(), msgs.len());
}
