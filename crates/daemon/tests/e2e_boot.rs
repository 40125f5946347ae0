//! Boot-time hold: after a reboot (simulated by removing the rules the daemon leaves),
//! `palisaded --boot-rules` puts back the fail-closed firewall for the stored policy
//! before the daemon runs, so protected traffic is dropped rather than sent in clear;
//! the daemon, once started, protects it again. Root only; skipped otherwise.

#[path = "../../../tests/support/netns.rs"]
mod netns;

mod common;

use std::net::IpAddr;

use common::daemon::{Capture, Daemon, not_ipsec_between, ping, require_policy, veth_of};
use netns::{VethPair, root_or_skip};

fn policy(me: IpAddr, peer: IpAddr) -> String {
    require_policy("e2e-boot", me, peer, "")
}

/// Runs palisaded with one flag and a's configuration inside a's namespace.
fn palisaded(pair: &VethPair, a: &Daemon, flag: &str) -> String {
    let out = pair
        .a
        .command(env!("CARGO_BIN_EXE_palisaded"))
        .arg("--config")
        .arg(a.dir().join("palisaded.toml"))
        .arg(flag)
        .output()
        .expect("palisaded");
    assert!(
        out.status.success(),
        "palisaded {flag}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn boot_rules_hold_protected_traffic_until_the_daemon_runs() {
    if !root_or_skip("boot_rules_hold_protected_traffic_until_the_daemon_runs") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (a_ip, b_ip) = (IpAddr::V4(VethPair::ADDR_A), IpAddr::V4(VethPair::ADDR_B));
    let mut a = Daemon::start(&pair.a, "a", &policy(a_ip, b_ip)).expect("daemon a");
    let _b = Daemon::start(&pair.b, "b", &policy(b_ip, a_ip)).expect("daemon b");
    assert!(ping(&pair.a, b_ip, 2).status.success(), "{}", a.log());

    // "Reboot": the daemon stops and the rules it leaves behind are gone.
    a.stop();
    palisaded(&pair, &a, "--remove-rules");
    let veth = veth_of(&pair.a);
    let capture = Capture::start(&pair.a, &veth, a.dir().join("open.pcap")).expect("tcpdump");
    let _ = ping(&pair.a, b_ip, 2);
    let open = capture.finish();
    assert!(
        !not_ipsec_between(&open, a_ip, b_ip).is_empty(),
        "without rules the ping should leave in clear (else this test proves nothing): {open:#?}"
    );

    // Early at boot: the rules for the stored policy, no daemon yet.
    let said = palisaded(&pair, &a, "--boot-rules");
    assert!(said.contains("1 protected prefixes"), "{said}");
    let capture = Capture::start(&pair.a, &veth, a.dir().join("held.pcap")).expect("tcpdump");
    assert!(!ping(&pair.a, b_ip, 2).status.success());
    let held = capture.finish();
    let clear = not_ipsec_between(&held, a_ip, b_ip);
    assert!(
        clear.is_empty(),
        "clear text while only the boot rules held: {clear:#?}"
    );

    // The daemon starts and protects the traffic again.
    a.spawn(&pair.a).expect("restart");
    assert!(ping(&pair.a, b_ip, 3).status.success(), "{}", a.log());
}
