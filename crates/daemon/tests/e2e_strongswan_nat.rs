//! strongSwan behind a masquerading NAT negotiating transport mode with Palisade on the
//! public side (the topology of `common/nat.rs`): the IKE half of RFC 7296 §2.23.1
//! against the reference peer. charon in `a` proposes its private address; palisaded in
//! `b`, whose rule names the NAT's address, must put the IKE addresses in place of the
//! proposed ones, find its policy and answer with them; charon must accept the answer
//! (it substitutes its own address back) instead of refusing selectors it never
//! proposed.
//!
//! Only the negotiation: kernel-libipsec, charon's userspace data plane here (these
//! kernels have no ESP modules), refuses transport-mode SAs ("unsupported mode"), so
//! charon deletes the CHILD_SA after installing it fails, and no traffic flows. The data
//! plane across the NAT is `e2e_nat_transport.rs`, Palisade on both sides.
//!
//! Root only; skipped otherwise (and without charon).

#[path = "../../../tests/support/netns.rs"]
mod netns;
#[path = "../../../tests/support/strongswan.rs"]
mod strongswan;

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::daemon::{Daemon, charon_suite_policy};
use common::nat::{A, B, NAT_OUTSIDE, Topology};
use netns::root_or_skip;
use strongswan::{Charon, Config};

const SECRET: &str = "e2e strongswan nat secret";

/// Transport mode with the host behind the NAT, known by the NAT's address; charon's
/// suite.
fn palisade_policy() -> String {
    charon_suite_policy(
        "e2e-strongswan-nat",
        SECRET,
        &format!(
            r#"name = "behind-nat"
local = "{B}"
remote = "{NAT_OUTSIDE}"
action = "require"
mode = "transport""#
        ),
    )
}

/// charon behind the NAT: transport mode, its own and the peer's IKE addresses as
/// selectors (`dynamic`), its private address as its identity.
fn charon_config() -> Config {
    let mut c = Config::psk(IpAddr::V4(A), IpAddr::V4(B), SECRET);
    c.mode = "transport".into();
    c.local_ts = "dynamic".into();
    c.remote_ts = "dynamic".into();
    c
}

fn wait_for(what: &str, timeout: Duration, f: impl Fn() -> bool, logs: &dyn Fn() -> String) {
    let end = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < end, "{what}: timed out\n{}", logs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn strongswan_behind_a_nat_negotiates_transport_mode_with_palisade() {
    if !root_or_skip("strongswan_behind_a_nat_negotiates_transport_mode")
        || !strongswan::available_or_skip("strongswan_behind_a_nat_negotiates_transport_mode")
    {
        return;
    }
    let t = Topology::new();
    let b = Daemon::start(&t.b, "b", &palisade_policy()).expect("palisaded");
    let charon = Charon::start(&t.a, &charon_config()).expect("charon");
    let logs = || {
        format!(
            "--- palisaded ---\n{}\n--- charon ---\n{}",
            b.log(),
            charon.log()
        )
    };
    // The result does not matter: charon's install fails (see above).
    let _ = charon.swanctl(&["--initiate", "--child", "pal", "--timeout", "20"]);

    // Palisade found its policy for the NAT's address and installed its half.
    wait_for(
        "palisaded's transport-mode CHILD_SA",
        Duration::from_secs(15),
        || {
            b.log()
                .lines()
                .any(|l| l.contains("CHILD_SA installed") && l.contains("Transport"))
        },
        &logs,
    );
    // charon took the answer: it puts its own addresses back in place of the NAT's
    // (strongSwan's get_transport_nat_ts, silent at this log level: "received" is after
    // the substitution), both sides match its configuration, and only installing the
    // transport-mode SA in kernel-libipsec fails.
    wait_for(
        "charon installing the CHILD_SA",
        Duration::from_secs(10),
        || charon.log().contains("IPsec SA: unsupported mode"),
        &logs,
    );
    let charon_log = charon.log();
    for side in [A, B] {
        let matched = format!("config: {side}/32, received: {side}/32 => match: {side}/32");
        assert!(
            charon_log.contains(&matched),
            "charon did not select {side}\n{}",
            logs()
        );
    }
    // ... and neither side refused the other's selectors.
    for refusal in [
        "no acceptable traffic selectors",
        "unacceptable",
        "peer selected invalid traffic selectors",
        "TS_UNACCEPTABLE",
    ] {
        assert!(
            !charon_log.contains(refusal),
            "charon: {refusal}\n{}",
            logs()
        );
    }
    assert!(
        !b.log().contains("TsUnacceptable"),
        "palisaded refused the selectors\n{}",
        logs()
    );
}
