//! Policy changes on a running daemon, end to end: a malformed policy (through the control
//! API, or in the configured file at start) is refused with the file, line and field, and
//! the running policy and the traffic it protects stay as they were; a good policy applied
//! through the API takes effect at once; a reload of the configured file (`palisaded
//! --reload`, what `systemctl reload` runs) applies it whole or refuses it whole. Two
//! hosts in transport mode.
//! Root only (network namespaces); skipped otherwise.

#[path = "../../../tests/support/netns.rs"]
mod netns;

mod common;

use std::net::{IpAddr, SocketAddr};

use common::daemon::{
    Capture, Daemon, not_ipsec_between, ping, require_policy, tcp_transfer, veth_of,
};
use netns::{VethPair, root_or_skip};
use palisade_control::{ErrorCode, Export, Request, Response};

fn addrs() -> (IpAddr, IpAddr) {
    (IpAddr::V4(VethPair::ADDR_A), IpAddr::V4(VethPair::ADDR_B))
}

/// Everything between the hosts protected.
fn protect_all(me: IpAddr, peer: IpAddr) -> String {
    require_policy("e2e-policy", me, peer, "")
}

/// As [`protect_all`], with ICMP between the hosts exempted (in clear).
fn icmp_exempt(me: IpAddr, peer: IpAddr) -> String {
    format!(
        r#"{}
[[rules]]
name = "icmp"
local = "{me}"
remote = "{peer}"
protocol = "icmp"
action = "exempt"
"#,
        protect_all(me, peer)
    )
}

/// Broken variants of [`icmp_exempt`]: (what is wrong, the text, the field path the error
/// must name, a unique text on the offending line).
fn broken(me: IpAddr, peer: IpAddr) -> Vec<(&'static str, String, &'static str, &'static str)> {
    let good = icmp_exempt(me, peer);
    vec![
        (
            "a bad address",
            good.replacen(
                &format!("remote = \"{peer}\"\nprotocol"),
                "remote = \"10.200.0.300\"\nprotocol",
                1,
            ),
            "rules[1].remote",
            "10.200.0.300",
        ),
        (
            "an unknown field",
            good.replace("action = \"exempt\"", "actoin = \"exempt\""),
            "rules[1].actoin",
            "actoin",
        ),
        (
            "an undefined authentication set",
            good.replace("auth = \"psk\"", "auth = \"kerberos\""),
            "rules[0].auth",
            "kerberos",
        ),
        (
            "an unknown protocol",
            good.replace("protocol = \"icmp\"", "protocol = \"icmp-please\""),
            "rules[1].protocol",
            "icmp-please",
        ),
    ]
}

/// The 1-based line of `text` that contains `needle` (exactly one must).
fn line_of(text: &str, needle: &str) -> usize {
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(lines.len(), 1, "{needle:?} in {text}");
    lines[0]
}

fn export(d: &Daemon) -> Export {
    match d.call(Request::PolicyExport) {
        Response::Export(e) => e,
        other => panic!("export: {other:?}"),
    }
}

/// Two echoes from a to b, answered.
fn ping_ok(pair: &VethPair, a: &Daemon, b: &Daemon) {
    let out = ping(&pair.a, addrs().1, 2);
    assert!(
        out.status.success(),
        "ping failed:\n{}\n--- a ---\n{}\n--- b ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        a.log(),
        b.log()
    );
}

/// Traffic between the hosts: ping and TCP both pass, and only IPsec is on the wire.
fn assert_protected_traffic_flows(pair: &VethPair, a: &Daemon, b: &Daemon, port: u16) {
    let (a_ip, b_ip) = addrs();
    let capture =
        Capture::start(&pair.a, &veth_of(&pair.a), a.dir().join("wire.pcap")).expect("tcpdump");
    ping_ok(pair, a, b);
    let moved = tcp_transfer(&pair.a, &pair.b, (VethPair::ADDR_B, port).into(), 1 << 20)
        .unwrap_or_else(|e| panic!("TCP: {e}\n{}\n{}", a.log(), b.log()));
    assert_eq!(moved, 1 << 20);
    let lines = capture.finish();
    let clear = not_ipsec_between(&lines, a_ip, b_ip);
    assert!(clear.is_empty(), "clear text between the hosts: {clear:#?}");
    assert!(
        lines.iter().any(|l| l.contains(": ESP(")),
        "no ESP: {lines:#?}"
    );
}

#[test]
fn malformed_policy_through_the_api_is_refused_and_changes_nothing() {
    if !root_or_skip("malformed_policy_through_the_api_is_refused_and_changes_nothing") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (a_ip, b_ip) = addrs();
    let a = Daemon::start(&pair.a, "a", &protect_all(a_ip, b_ip)).expect("daemon a");
    let b = Daemon::start(&pair.b, "b", &protect_all(b_ip, a_ip)).expect("daemon b");
    ping_ok(&pair, &a, &b);
    let filters = a.status().filters;
    assert!(filters > 0, "no filters from the policy file");
    let before = export(&a);

    for (what, text, field, needle) in broken(a_ip, b_ip) {
        let file = format!("broken-{}.toml", what.replace(' ', "-"));
        let line = line_of(&text, needle);
        for dry_run in [true, false] {
            let response = a.call(Request::PolicyApply {
                file: file.clone(),
                text: text.clone(),
                dry_run,
            });
            let Response::Error {
                code,
                message,
                hint,
            } = response
            else {
                panic!("{what}: accepted: {response:?}");
            };
            assert_eq!(code, ErrorCode::PolicyError, "{what}: {message}");
            let at = format!("{file}:{line}:");
            assert!(
                message.starts_with(&at),
                "{what}: the error does not say {at}: {message}"
            );
            assert!(
                message.contains(&format!(": {field}: ")),
                "{what}: the error does not name {field}: {message}"
            );
            assert!(hint.is_some(), "{what}: no hint");
        }
        // The diff request refuses it the same way.
        let diff = a.call(Request::PolicyDiff {
            file: file.clone(),
            text,
        });
        assert!(
            matches!(&diff, Response::Error { code: ErrorCode::PolicyError, message, .. }
                if message.starts_with(&format!("{file}:{line}:"))),
            "{what}: diff: {diff:?}"
        );
    }

    assert_eq!(a.status().filters, filters, "the filter count changed");
    assert_eq!(export(&a), before, "the running policy changed");
    assert_protected_traffic_flows(&pair, &a, &b, 5501);
}

#[test]
fn malformed_policy_file_at_start_is_refused_and_the_stored_policy_stays() {
    if !root_or_skip("malformed_policy_file_at_start_is_refused_and_the_stored_policy_stays") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (a_ip, b_ip) = addrs();
    let mut a = Daemon::start(&pair.a, "a", &protect_all(a_ip, b_ip)).expect("daemon a");
    let b = Daemon::start(&pair.b, "b", &protect_all(b_ip, a_ip)).expect("daemon b");
    ping_ok(&pair, &a, &b);
    let filters = a.status().filters;
    let before = export(&a);
    a.stop();

    let (_, text, field, needle) = broken(a_ip, b_ip).swap_remove(1);
    let line = line_of(&text, needle);
    let file = a.dir().join("policy.toml");
    std::fs::write(&file, &text).expect("write the policy file");
    a.spawn(&pair.a).expect("restart a");

    let at = format!("{}:{line}:", file.display());
    let log = a.log();
    assert!(
        log.lines()
            .any(|l| l.contains("policy file not applied") && l.contains(&at) && l.contains(field)),
        "the log does not say {at} {field}:\n{log}"
    );
    let events = a.events();
    assert!(
        events.iter().any(|e| e.kind == "policy_rejected"
            && e.summary.starts_with(&at)
            && e.summary.contains(&format!(": {field}: "))),
        "no policy_rejected event naming {at} {field}: {events:#?}"
    );
    assert_eq!(a.status().filters, filters, "the filter count changed");
    assert_eq!(export(&a), before, "the stored policy changed");
    // a's daemon said goodbye to b when it stopped, so this negotiates afresh.
    assert_protected_traffic_flows(&pair, &a, &b, 5502);
}

#[test]
fn a_good_policy_through_the_api_takes_effect() {
    if !root_or_skip("a_good_policy_through_the_api_takes_effect") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (a_ip, b_ip) = addrs();
    let a = Daemon::start(&pair.a, "a", &protect_all(a_ip, b_ip)).expect("daemon a");
    let b = Daemon::start(&pair.b, "b", &protect_all(b_ip, a_ip)).expect("daemon b");
    assert_protected_traffic_flows(&pair, &a, &b, 5601);
    let filters = a.status().filters;

    for (d, me, peer) in [(&b, b_ip, a_ip), (&a, a_ip, b_ip)] {
        let text = icmp_exempt(me, peer);
        // A dry run first: it reports the additions and changes nothing.
        let Response::PolicyChanges(dry) = d.call(Request::PolicyApply {
            file: "exempt.toml".into(),
            text: text.clone(),
            dry_run: true,
        }) else {
            panic!("dry run refused");
        };
        assert!(!dry.applied && !dry.changes.is_empty(), "{dry:?}");
        let Response::PolicyChanges(done) = d.call(Request::PolicyApply {
            file: "exempt.toml".into(),
            text,
            dry_run: false,
        }) else {
            panic!("apply refused");
        };
        assert!(done.applied, "{done:?}");
        assert_eq!(
            done.changes, dry.changes,
            "the dry run predicted other changes"
        );
        assert!(
            done.changes
                .iter()
                .any(|c| c.op == "add" && c.kind == "filter" && c.name.starts_with("icmp")),
            "no exemption filter added: {done:#?}"
        );
    }
    assert!(a.status().filters > filters, "no filter was added");

    let capture =
        Capture::start(&pair.a, &veth_of(&pair.a), a.dir().join("wire.pcap")).expect("tcpdump");
    ping_ok(&pair, &a, &b);
    let moved = tcp_transfer(
        &pair.a,
        &pair.b,
        SocketAddr::from((VethPair::ADDR_B, 5602)),
        1 << 20,
    )
    .unwrap_or_else(|e| panic!("TCP: {e}\n{}\n{}", a.log(), b.log()));
    assert_eq!(moved, 1 << 20);
    let lines = capture.finish();
    let clear = not_ipsec_between(&lines, a_ip, b_ip);
    let echo = |kind: &str, from: IpAddr, to: IpAddr| {
        clear
            .iter()
            .any(|l| l.contains(&format!("IP {from} > {to}: ICMP echo {kind}")))
    };
    assert!(
        echo("request", a_ip, b_ip) && echo("reply", b_ip, a_ip),
        "the exempted ping did not cross in clear: {lines:#?}"
    );
    let not_icmp: Vec<&String> = clear.iter().filter(|l| !l.contains(": ICMP ")).collect();
    assert!(
        not_icmp.is_empty(),
        "clear text besides ICMP: {not_icmp:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains(": ESP(")),
        "TCP was not ESP: {lines:#?}"
    );
}

#[test]
fn reloading_the_policy_file_applies_it_whole_or_refuses_it() {
    if !root_or_skip("reloading_the_policy_file_applies_it_whole_or_refuses_it") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (a_ip, b_ip) = addrs();
    let a = Daemon::start(&pair.a, "a", &protect_all(a_ip, b_ip)).expect("daemon a");
    let file = a.dir().join("policy.toml");
    let filters = a.status().filters;
    // What `systemctl reload` runs: palisaded asking the running daemon, and waiting.
    let reload = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_palisaded"))
            .arg("--config")
            .arg(a.dir().join("palisaded.toml"))
            .arg("--reload")
            .output()
            .expect("palisaded --reload")
    };

    std::fs::write(&file, icmp_exempt(a_ip, b_ip)).expect("write the policy file");
    let out = reload();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("policy \"e2e-policy\" reloaded:") && !stdout.contains(" 0 added"),
        "{stdout}"
    );
    let added = a.status().filters;
    assert!(added > filters, "the reload added no filter");
    let applied = export(&a);

    // Unchanged, a reload through the API changes nothing.
    let Response::PolicyChanges(same) = a.call(Request::PolicyReload) else {
        panic!("reload refused");
    };
    assert!(same.changes.is_empty(), "{same:?}");

    // Broken, the file is refused whole, both ways, with its line and field.
    let (_, text, field, needle) = broken(a_ip, b_ip).swap_remove(1);
    let at = format!("{}:{}:", file.display(), line_of(&text, needle));
    std::fs::write(&file, &text).expect("write the policy file");
    let response = a.call(Request::PolicyReload);
    assert!(
        matches!(&response, Response::Error { code: ErrorCode::PolicyError, message, .. }
            if message.starts_with(&at) && message.contains(field)),
        "{response:?}"
    );
    let out = reload();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a broken file reloaded");
    assert!(
        stderr.contains(&at) && stderr.contains(field),
        "--reload does not say {at} {field}: {stderr}"
    );
    assert_eq!(a.status().filters, added, "the filter count changed");
    assert_eq!(export(&a), applied, "the running policy changed");

    // An unreadable file is refused the same way.
    std::fs::remove_file(&file).expect("remove the policy file");
    assert!(
        matches!(a.call(Request::PolicyReload),
            Response::Error { code: ErrorCode::PolicyError, ref message, .. }
            if message.contains(&file.display().to_string())),
        "a missing file"
    );
    assert_eq!(export(&a), applied, "the running policy changed");
}
