//! ALE_USER_ID and ALE_APP_ID, end to end: two hosts in transport mode, and filters that
//! judge connections by who holds the local socket. On the server, a BLOCK at
//! ALE_AUTH_RECV_ACCEPT for sockets of user `nobody`: a connection to nobody's listener
//! is refused, one to root's is not. On the client, a BLOCK at ALE_AUTH_CONNECT for one
//! program (python3): python3 cannot connect, bash can. Both work before the filters.
//! Then the same from policy files: `users = ["root"]` on the server's TCP rule and
//! `programs = [bash]` on the client's; and with every program search handed off the
//! worker, the first SYN held and the retransmission judged; and deny lists,
//! `denied_programs = [python3]` and `denied_users = [nobody]`. Root only (namespaces, a
//! process of another user).

#[path = "../../../tests/support/netns.rs"]
mod netns;

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::process::Output;

use common::daemon::{Daemon, require_policy};
use common::greeter::{Greeter, PYTHON, bash_connect, greeted};
use netns::{Netns, VethPair, root_or_skip};
use palisade_control::{Request, Response};
use palisade_filter::{
    Action, Condition, ConditionValue, Field, Filter, Layer, MatchType, Principal,
    SecurityDescriptor,
};

const NOBODY: u32 = 65_534;
/// nobody's listener, and root's.
const NOBODYS_PORT: u16 = 7001;
const ROOTS_PORT: u16 = 7002;

fn policy(me: IpAddr, peer: IpAddr) -> String {
    require_policy("e2e-ale-owners", me, peer, "")
}

/// The same by python3.
fn python_connect(ns: &Netns, to: IpAddr, port: u16) -> Output {
    ns.command(PYTHON)
        .args([
            "-c",
            &format!(
                "import socket,sys\n\
                 c=socket.create_connection(('{to}',{port}),timeout=4)\n\
                 sys.stdout.write(c.recv(5).decode())\n"
            ),
        ])
        .output()
        .expect("python3")
}

fn add_filter(d: &Daemon, filter: Filter) {
    let filter = serde_json::to_value(filter).expect("filter json");
    match d.call(Request::FilterAdd { filter }) {
        Response::Added { .. } => {}
        other => panic!("filter add: {other:?}"),
    }
}

/// Whether test `name` can run: as root (namespaces), with the system's python3.
fn can_run(name: &str) -> bool {
    if !root_or_skip(name) {
        return false;
    }
    if !Path::new(PYTHON).exists() {
        eprintln!("skipped: {PYTHON} not installed");
        return false;
    }
    true
}

fn drops(d: &Daemon, reason: &str) -> u64 {
    d.stats().global_drops.get(reason).copied().unwrap_or(0)
}

#[test]
fn connections_are_judged_by_the_user_and_program_of_the_local_socket() {
    if !can_run("connections_are_judged_by_the_user_and_program_of_the_local_socket") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (a, b) = (IpAddr::V4(VethPair::ADDR_A), IpAddr::V4(VethPair::ADDR_B));
    let client = Daemon::start(&pair.a, "a", &policy(a, b)).expect("daemon a");
    let server = Daemon::start(&pair.b, "b", &policy(b, a)).expect("daemon b");
    let _nobodys = Greeter::in_netns(&pair.b, NOBODY, b, &[NOBODYS_PORT]);
    let _roots = Greeter::in_netns(&pair.b, 0, b, &[ROOTS_PORT]);

    // Before the filters: every connection is made (the first one starts IKE).
    for port in [NOBODYS_PORT, ROOTS_PORT] {
        let out = bash_connect(&pair.a, b, port);
        assert!(greeted(&out), "bash to {port} before the filters: {out:?}");
    }
    let out = python_connect(&pair.a, b, ROOTS_PORT);
    assert!(greeted(&out), "python3 before the filters: {out:?}");

    // The server refuses connections to nobody's sockets; the client refuses python3's.
    add_filter(
        &server,
        Filter::new(Layer::AleAuthRecvAcceptV4, Action::Block)
            .name("no connections to nobody")
            .condition(Condition::new(
                Field::AleUserId,
                MatchType::Equal,
                ConditionValue::Sd(SecurityDescriptor::allow([Principal::Uid(NOBODY)])),
            )),
    );
    let python = std::fs::canonicalize(PYTHON).expect("python3's real path");
    add_filter(
        &client,
        Filter::new(Layer::AleAuthConnectV4, Action::Block)
            .name("no python")
            .condition(Condition::new(
                Field::AleAppId,
                MatchType::Equal,
                ConditionValue::Text(python.to_string_lossy().into_owned()),
            )),
    );

    let refused_before = drops(&server, "policy_blocked");
    let out = bash_connect(&pair.a, b, NOBODYS_PORT);
    assert!(
        !greeted(&out),
        "a connection to nobody's listener was accepted"
    );
    assert!(
        drops(&server, "policy_blocked") > refused_before,
        "the refused SYNs are counted"
    );
    let out = bash_connect(&pair.a, b, ROOTS_PORT);
    assert!(greeted(&out), "bash to root's listener: {out:?}");

    let blocked_before = client.stats().clear_blocked;
    let out = python_connect(&pair.a, b, ROOTS_PORT);
    assert!(!greeted(&out), "python3 connected: {out:?}");
    assert!(
        client.stats().clear_blocked > blocked_before,
        "the refused SYNs are counted"
    );
    // Another program from the same host to the same service still connects.
    let out = bash_connect(&pair.a, b, ROOTS_PORT);
    assert!(greeted(&out), "bash after python3 was refused: {out:?}");
}

/// A rule for TCP between the hosts limited by `limit` (`users = [...]` or
/// `programs = [...]`), beside the rule that protects everything.
fn limited_tcp(me: IpAddr, peer: IpAddr, limit: &str) -> String {
    require_policy(
        "e2e-ale-owners-policy",
        me,
        peer,
        &format!(
            r#"
[[rules]]
name = "tcp"
local = "{me}"
remote = "{peer}"
protocol = "tcp"
action = "require"
auth = "psk"
{limit}
"#
        ),
    )
}

/// [`limited_tcp`] for the client: only bash (by its real path) starts the connections.
fn only_bash(me: IpAddr, peer: IpAddr) -> String {
    let bash = netns::find_program("bash")
        .and_then(|b| std::fs::canonicalize(b).ok())
        .expect("bash");
    limited_tcp(me, peer, &format!("programs = [\"{}\"]", bash.display()))
}

#[test]
fn policy_file_programs_and_users_limit_connections() {
    if !can_run("policy_file_programs_and_users_limit_connections") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (a, b) = (IpAddr::V4(VethPair::ADDR_A), IpAddr::V4(VethPair::ADDR_B));
    // The client lets only bash start TCP connections to the server; the server accepts
    // them only on root's sockets.
    let client = Daemon::start(&pair.a, "a", &only_bash(a, b)).expect("daemon a");
    let server =
        Daemon::start(&pair.b, "b", &limited_tcp(b, a, "users = [\"root\"]")).expect("daemon b");
    nobody_refused_and_python_blocked(&pair, &client, &server);
}

/// With the server refusing connections to nobody's sockets and the client refusing
/// python3's: bash reaches root's listener, not nobody's, and python3 reaches neither;
/// both refusals counted.
fn nobody_refused_and_python_blocked(pair: &VethPair, client: &Daemon, server: &Daemon) {
    let b = IpAddr::V4(VethPair::ADDR_B);
    let _nobodys = Greeter::in_netns(&pair.b, NOBODY, b, &[NOBODYS_PORT]);
    let _roots = Greeter::in_netns(&pair.b, 0, b, &[ROOTS_PORT]);

    let out = bash_connect(&pair.a, b, ROOTS_PORT);
    assert!(greeted(&out), "bash to root's listener: {out:?}");
    let refused = drops(server, "policy_blocked");
    let out = bash_connect(&pair.a, b, NOBODYS_PORT);
    assert!(!greeted(&out), "nobody's listener accepted a connection");
    assert!(drops(server, "policy_blocked") > refused);
    let blocked = client.stats().clear_blocked;
    let out = python_connect(&pair.a, b, ROOTS_PORT);
    assert!(!greeted(&out), "python3 connected: {out:?}");
    assert!(client.stats().clear_blocked > blocked);
    let out = bash_connect(&pair.a, b, ROOTS_PORT);
    assert!(greeted(&out), "bash after python3 was refused: {out:?}");
}

/// With `dataplane.program_search_ms = 0` every program search leaves the worker: each
/// new socket's first SYN is held (`owner_pending`), never judged without its program,
/// and the retransmission is judged with it: bash still connects, python3 still does
/// not.
#[test]
fn searches_off_the_worker_hold_the_first_syn_and_judge_the_retransmission() {
    if !can_run("searches_off_the_worker_hold_the_first_syn_and_judge_the_retransmission") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (a, b) = (IpAddr::V4(VethPair::ADDR_A), IpAddr::V4(VethPair::ADDR_B));
    let client = Daemon::start_with(
        &pair.a,
        "a",
        &only_bash(a, b),
        "[dataplane]\nprogram_search_ms = 0\n",
    )
    .expect("daemon a");
    let _server = Daemon::start(&pair.b, "b", &limited_tcp(b, a, "")).expect("daemon b");
    let _roots = Greeter::in_netns(&pair.b, 0, b, &[ROOTS_PORT]);

    let out = bash_connect(&pair.a, b, ROOTS_PORT);
    assert!(greeted(&out), "bash, after its held SYN: {out:?}");
    let held = drops(&client, "owner_pending");
    assert!(
        held >= 1,
        "the first SYN was not held: {:?}",
        client.stats()
    );
    let blocked = client.stats().clear_blocked;
    let out = python_connect(&pair.a, b, ROOTS_PORT);
    assert!(!greeted(&out), "python3 connected: {out:?}");
    assert!(
        drops(&client, "owner_pending") > held,
        "python3's SYN held too"
    );
    assert!(
        client.stats().clear_blocked > blocked,
        "python3's retransmission blocked by the rule, not let through"
    );
}

/// Deny lists from policy files: the client's TCP rule denies python3 (bash and any
/// other program pass), the server's denies user nobody (root's listener accepts).
#[test]
fn policy_file_denied_programs_and_users_block_only_those() {
    if !can_run("policy_file_denied_programs_and_users_block_only_those") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (a, b) = (IpAddr::V4(VethPair::ADDR_A), IpAddr::V4(VethPair::ADDR_B));
    let python = std::fs::canonicalize(PYTHON).expect("python3's real path");
    let client = Daemon::start(
        &pair.a,
        "a",
        &limited_tcp(
            a,
            b,
            &format!("denied_programs = [\"{}\"]", python.display()),
        ),
    )
    .expect("daemon a");
    let server = Daemon::start(
        &pair.b,
        "b",
        &limited_tcp(b, a, &format!("denied_users = [\"{NOBODY}\"]")),
    )
    .expect("daemon b");
    nobody_refused_and_python_blocked(&pair, &client, &server);
}
