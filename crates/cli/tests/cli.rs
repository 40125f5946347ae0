//! The palisade binary against an in-process control server with a fake daemon: output,
//! `--json`, error messages and exit codes.

#[path = "../../control/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use palisade_filter::{Acl, Caller, Engine, Principal, Rights, SessionOptions};
use support::{POLICY, Running, TempDir, start};

fn palisade(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .env("PALISADE_SOCKET", socket)
        .output()
        .expect("run palisade")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(socket: &Path, args: &[&str]) -> Run {
    let out = palisade(socket, args);
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: not JSON: {}", self.stdout))
    }
}

fn policy_file(dir: &TempDir, name: &str, text: &str) -> String {
    let path = dir.0.join(name);
    std::fs::write(&path, text).expect("write the policy");
    path.display().to_string()
}

fn filter_count(srv: &Running) -> usize {
    srv.daemon
        .service
        .engine()
        .snapshot()
        .catalog
        .filter_count()
}

#[test]
fn status_as_a_section_and_as_json() {
    let srv = start(Engine::new());
    let r = run(&srv.socket, &["status"]).ok();
    assert!(r.stdout.contains("tun:"), "{}", r.stdout);
    assert!(r.stdout.contains("pal0"));
    assert!(r.stdout.contains("uptime:      1h 1m 1s"), "{}", r.stdout);
    let j = run(&srv.socket, &["status", "--json"]).ok().json();
    assert_eq!(j["type"], "status");
    assert_eq!(j["pid"], 4242);
}

#[test]
fn no_daemon_says_how_to_start_one_and_exits_3() {
    let dir = TempDir::new("cli-nod");
    let r = run(&dir.0.join("control.sock"), &["status"]);
    assert_eq!(r.code, 3);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stderr);
    assert!(
        lines[0].starts_with("error: cannot connect to "),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("control.sock"));
    assert!(
        lines[1].contains("systemctl start palisaded"),
        "{}",
        lines[1]
    );
    // --socket wins over the environment.
    let srv = start(Engine::new());
    let socket = srv.socket.display().to_string();
    let r = run(
        &dir.0.join("nothing.sock"),
        &["--socket", &socket, "status"],
    )
    .ok();
    assert!(r.stdout.contains("pal0"));
}

#[test]
fn a_policy_mistake_is_shown_with_its_position_without_contacting_the_daemon() {
    let dir = TempDir::new("cli-bad");
    let file = policy_file(
        &dir,
        "bad.toml",
        &POLICY.replace("\"192.0.2.2\"", "\"192.0.2.300\""),
    );
    // No daemon at all: the file's mistake is still what is reported.
    let r = run(&dir.0.join("none.sock"), &["policy", "apply", &file]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let first = r.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: ") && first.contains("bad.toml:11:10: rules[0].remote:"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("hint: fix the file"), "{}", r.stderr);

    let r = run(
        &dir.0.join("none.sock"),
        &["policy", "diff", "/nonexistent/p.toml"],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("cannot read /nonexistent/p.toml"),
        "{}",
        r.stderr
    );
}

#[test]
fn policy_diff_dry_run_apply() {
    let srv = start(Engine::new());
    let dir = TempDir::new("cli-pol");
    let file = policy_file(&dir, "lab.toml", POLICY);

    let r = run(&srv.socket, &["policy", "diff", &file]).ok();
    assert!(r.stdout.starts_with("policy \"lab\": "), "{}", r.stdout);
    assert!(r.stdout.contains("to add"));
    assert!(r.stdout.contains("OP   KIND"), "{}", r.stdout);

    let r = run(&srv.socket, &["policy", "apply", "--dry-run", &file]).ok();
    assert!(
        r.stdout.contains("dry run: nothing changed"),
        "{}",
        r.stdout
    );
    assert_eq!(filter_count(&srv), 0);

    let r = run(&srv.socket, &["policy", "apply", &file]).ok();
    assert!(
        r.stdout.starts_with("applied policy \"lab\""),
        "{}",
        r.stdout
    );
    assert!(filter_count(&srv) > 0);

    let j = run(&srv.socket, &["--json", "policy", "diff", &file])
        .ok()
        .json();
    assert_eq!(j["type"], "policy_changes");
    assert_eq!(j["changes"], serde_json::json!([]));
    let r = run(&srv.socket, &["policy", "diff", &file]).ok();
    assert!(r.stdout.contains("nothing to change"));

    // The daemon re-reads its own file (the fake's is POLICY): nothing to change.
    let r = run(&srv.socket, &["policy", "reload"]).ok();
    assert!(r.stdout.contains("nothing to change"), "{}", r.stdout);

    let export = run(&srv.socket, &["policy", "export"]).ok();
    let j = export.json();
    assert!(j["filters"].as_array().is_some_and(|f| !f.is_empty()));
    assert!(!export.stdout.contains("correct horse"));
}

#[test]
fn filter_add_list_show_delete() {
    let srv = start(Engine::new());
    let r = run(
        &srv.socket,
        &[
            "filter",
            "add",
            "--layer",
            "outbound_transport_v4",
            "--action",
            "block",
            "--name",
            "no telnet",
            "--match",
            "ip_remote_port=23",
            "--match",
            "ip_remote_address=192.0.2.0-192.0.2.255",
        ],
    )
    .ok();
    assert!(r.stdout.starts_with("added filter "), "{}", r.stdout);
    let id: u64 = r
        .stdout
        .split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no id in {}", r.stdout));

    let r = run(&srv.socket, &["filter", "list"]).ok();
    let header = r.stdout.lines().next().unwrap_or_default();
    assert!(header.starts_with("ID"), "{}", r.stdout);
    assert!(header.contains("LAYER") && header.contains("NAME"));
    let row = r
        .stdout
        .lines()
        .find(|l| l.ends_with("no telnet"))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(row.starts_with(&id.to_string()));
    assert!(row.contains("OUTBOUND_TRANSPORT_V4") && row.contains("block"));

    let j = run(
        &srv.socket,
        &[
            "filter",
            "list",
            "--json",
            "--layer",
            "inbound_transport_v4",
        ],
    )
    .ok()
    .json();
    assert_eq!(j["objects"], serde_json::json!([]));

    let r = run(&srv.socket, &["filter", "show", &id.to_string()]).ok();
    assert!(
        r.stdout.starts_with(&format!("filter {id}\n")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("name:"));
    assert!(r.stdout.contains("conditions[1]:"), "{}", r.stdout);

    let r = run(&srv.socket, &["filter", "delete", "no telnet"]).ok();
    assert_eq!(r.stdout, "deleted filter no telnet\n");
    let r = run(&srv.socket, &["filter", "show", &id.to_string()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("(not_found)"), "{}", r.stderr);
    assert!(r.stderr.contains("hint: "), "{}", r.stderr);
}

#[test]
fn bad_flags_are_usage_errors_with_the_accepted_forms() {
    let srv = start(Engine::new());
    let r = run(
        &srv.socket,
        &[
            "filter",
            "add",
            "--layer",
            "outbound_transport_v4",
            "--action",
            "block",
            "--match",
            "ip_remote_port=telnet",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("ip_remote_port"), "{}", r.stderr);
    assert!(r.stderr.contains("0-65535"), "{}", r.stderr);
    let r = run(
        &srv.socket,
        &["filter", "add", "--layer", "nowhere", "--action", "block"],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("outbound_transport_v4"), "{}", r.stderr);
    let r = run(&srv.socket, &["context", "add"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--file"), "{}", r.stderr);
    let r = run(&srv.socket, &["sublayer", "list", "--layer", "x"]);
    assert_eq!(r.code, 2);
    assert_eq!(filter_count(&srv), 0);
}

#[test]
fn objects_from_json_files() {
    let srv = start(Engine::new());
    let dir = TempDir::new("cli-json");
    let path = dir.0.join("provider.json");
    std::fs::write(&path, r#"{ "name": "from a file" }"#).expect("write");
    let r = run(
        &srv.socket,
        &["provider", "add", "--file", &path.display().to_string()],
    )
    .ok();
    assert!(r.stdout.starts_with("added provider "), "{}", r.stdout);
    let r = run(&srv.socket, &["provider", "list"]).ok();
    assert!(
        r.stdout.lines().any(|l| l.ends_with("from a file")),
        "{}",
        r.stdout
    );

    std::fs::write(&path, "{ not json").expect("write");
    let r = run(
        &srv.socket,
        &["provider", "add", "--file", &path.display().to_string()],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not JSON"), "{}", r.stderr);

    std::fs::write(&path, r#"{ "name": "x", "colour": "blue" }"#).expect("write");
    let r = run(
        &srv.socket,
        &["provider", "add", "--file", &path.display().to_string()],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("colour"), "{}", r.stderr);
    assert!(r.stderr.contains("(invalid_request)"), "{}", r.stderr);
}

#[test]
fn access_denied_says_which_right_and_what_to_do() {
    let engine = Engine::new();
    // Our uid, as SO_PEERCRED reports it: the owner of a file we create.
    let probe = TempDir::new("cli-uid");
    let me = std::fs::metadata(&probe.0).expect("stat").uid();
    {
        let mut admin = engine
            .open_session(Caller::root(), SessionOptions::default())
            .expect("session");
        admin
            .set_engine_acl(
                Acl::engine_default()
                    .deny(Principal::Uid(me), Rights::BEGIN_WRITE_TXN)
                    .allow(Principal::Uid(0), Rights::ALL),
            )
            .expect("acl");
    }
    let srv = start(engine);
    let dir = TempDir::new("cli-acl");
    let file = policy_file(&dir, "lab.toml", POLICY);
    let r = run(&srv.socket, &["policy", "apply", &file]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("(access_denied)"), "{}", r.stderr);
    assert!(r.stderr.contains("BEGIN_WRITE_TXN"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("hint: the engine's access control refuses uid"),
        "{}",
        r.stderr
    );
    // Reading still works.
    run(&srv.socket, &["policy", "diff", &file]).ok();
}

#[test]
fn sa_list_show_delete() {
    let srv = start(Engine::new());
    let r = run(&srv.socket, &["sa", "list"]).ok();
    assert!(r.stdout.starts_with("ID"), "{}", r.stdout);
    assert!(r.stdout.contains("established"));
    assert!(r.stdout.contains("0xc0ffee01"), "{}", r.stdout);
    let r = run(&srv.socket, &["sa", "show", "0xc0ffee01"]).ok();
    assert!(r.stdout.starts_with("IKE SA 7\n"), "{}", r.stdout);
    assert!(r.stdout.contains("drops: replay 1"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("nat original: from 10.0.0.2 to 192.0.2.1"),
        "{}",
        r.stdout
    );
    let j = run(&srv.socket, &["sa", "list", "--json"]).ok().json();
    assert_eq!(j["sas"][0]["child_sas"][0]["inbound_spi"], 0xc0ffee01u32);
    assert_eq!(
        j["sas"][0]["child_sas"][0]["nat_original"]["source"],
        "10.0.0.2"
    );
    run(&srv.socket, &["sa", "delete", "7"]).ok();
    assert_eq!(
        *srv.daemon.deleted_sas.lock().expect("lock"),
        vec!["7".to_string()]
    );
    let r = run(&srv.socket, &["sa", "delete", "8"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("hint: `palisade sa list`"),
        "{}",
        r.stderr
    );
}

#[test]
fn stats_sections() {
    let srv = start(Engine::new());
    let r = run(&srv.socket, &["stats"]).ok();
    assert!(r.stdout.contains("esp rx/tx:"), "{}", r.stdout);
    assert!(r.stdout.contains("5 / 6"));
    assert!(r.stdout.contains("no_sa:"), "{}", r.stdout);
    assert!(r.stdout.contains("0xc0ffee01"));
    assert_eq!(
        run(&srv.socket, &["stats", "--json"]).ok().json()["esp_rx"],
        5
    );
}

#[test]
fn explain_prints_the_trace() {
    let srv = start(Engine::new());
    run(
        &srv.socket,
        &[
            "filter",
            "add",
            "--layer",
            "outbound_transport_v4",
            "--action",
            "block",
            "--name",
            "no telnet",
            "--match",
            "ip_remote_port=23",
        ],
    )
    .ok();
    let args = [
        "explain",
        "outbound_transport_v4",
        "ip_remote_address=192.0.2.1",
        "ip_remote_port=23",
    ];
    let r = run(&srv.socket, &args).ok();
    assert!(r.stdout.contains("no telnet"), "{}", r.stdout);
    assert!(r.stdout.contains("BLOCK"), "{}", r.stdout);
    let mut json_args = vec!["--json"];
    json_args.extend(args);
    let j = run(&srv.socket, &json_args).ok().json();
    assert_eq!(j["trace"]["decision"], "block");

    let r = run(
        &srv.socket,
        &["explain", "outbound_transport_v4", "ip_remote_port=x"],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with("error: ip_remote_port: "),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("hint: ip_remote_port accepts a number 0-65535"),
        "{}",
        r.stderr
    );
}

#[test]
fn events_and_follow() {
    let srv = start(Engine::new());
    srv.daemon
        .raise("sa_installed", "CHILD_SA 0xc0ffee01 installed");
    let r = run(&srv.socket, &["events"]).ok();
    assert!(r.stdout.contains("#1"), "{}", r.stdout);
    assert!(r.stdout.contains("sa_installed"));
    assert!(r.stdout.starts_with("2025-11-24T"), "{}", r.stdout);
    let r = run(&srv.socket, &["events", "--since", "1"]).ok();
    assert_eq!(r.stdout, "no events\n");

    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["events", "--follow", "--json"])
        .env("PALISADE_SOCKET", &srv.socket)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn palisade events --follow");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first: serde_json::Value =
        serde_json::from_str(&lines.next().and_then(Result::ok).unwrap_or_default())
            .expect("a JSON event line");
    assert_eq!(first["seq"], 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while srv.daemon.followers() == 0 {
        assert!(Instant::now() < deadline, "never followed");
        std::thread::sleep(Duration::from_millis(10));
    }
    srv.daemon.raise("ike_failure", "no proposal chosen");
    let second: serde_json::Value =
        serde_json::from_str(&lines.next().and_then(Result::ok).unwrap_or_default())
            .expect("a JSON event line");
    assert_eq!(second["kind"], "ike_failure");
    assert_eq!(second["type"], "event");
    let _ = child.kill();
    let _ = child.wait();
}

/// The real peer credentials of another user: run as `nobody` (root only; skipped
/// otherwise), the default access list lets it look and refuses it changes.
#[test]
fn another_user_may_look_but_not_change() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    let probe = TempDir::new("cli-root");
    if std::fs::metadata(&probe.0).expect("stat").uid() != 0 {
        eprintln!("skipped: needs root to run the command as another user");
        return;
    }
    const NOBODY: u32 = 65534;
    let srv = start(Engine::new());
    // The ACL decides, not the socket's mode: let every user connect.
    std::fs::set_permissions(&srv.socket, std::fs::Permissions::from_mode(0o777))
        .expect("chmod the socket");
    std::fs::set_permissions(&srv.dir.0, std::fs::Permissions::from_mode(0o755))
        .expect("chmod the directory");
    let file = policy_file(&srv.dir, "lab.toml", POLICY);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let as_nobody = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(args)
            .env("PALISADE_SOCKET", &srv.socket)
            .uid(NOBODY)
            .gid(NOBODY)
            .output()
            .expect("run palisade as nobody");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let r = as_nobody(&["policy", "apply", &file]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("(access_denied)"), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("uid {NOBODY}")), "{}", r.stderr);
    assert_eq!(filter_count(&srv), 0);

    run(&srv.socket, &["policy", "apply", &file]).ok();
    let r = as_nobody(&["filter", "list"]).ok();
    assert!(r.stdout.contains("peer: ipsec-v4"), "{}", r.stdout);
    let r = as_nobody(&["filter", "delete", "peer: ipsec-v4"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("(access_denied)"), "{}", r.stderr);
}
