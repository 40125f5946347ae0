//! palisaded under systemd as PID 1, with the units the project ships (dist/) as they
//! are: systemd boots in namespaces of its own (PID, mount, cgroup, UTS, IPC) inside one
//! host of a veth pair, starts palisaded-boot.service and palisaded.service with all
//! their sandboxing, and the test drives it with systemctl as an administrator would:
//! readiness (`Type=notify`), protected traffic, `reload`, `stop` (fail closed), `start`,
//! a crash that `Restart=on-failure` repairs, a rule's `programs` recognising a program
//! of another user through the sandbox, and the watchdog (kept fed while the daemon's
//! threads answer, restarting a stopped daemon). The peer is a palisaded run by hand.
//!
//! The machine sees the host's file system through overlays (/etc, /var, /usr/local:
//! what it writes stays in the test's directory) and has its own /run and /tmp; units
//! that would touch what namespaces do not separate (sysctl, tmpfiles, swap, binfmt,
//! module loading, fstab) are masked. Its cgroups live under one made for the test and
//! removed afterwards. Root only; skipped where systemd is not installed.

#[path = "../../../tests/support/netns.rs"]
mod netns;

mod common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::daemon::{Capture, Daemon, not_ipsec_between, ping, require_policy, veth_of};
use common::greeter::{Greeter, PYTHON, bash_connect, greeted};
use netns::{Netns, VethPair, root_or_skip};
use palisade_control::{Client, Request, Response};

const SYSTEMD: &str = "/lib/systemd/systemd";
/// How long systemd may take to boot, or a unit to reach a state.
const PATIENCE: Duration = Duration::from_secs(30);

static NEXT_MACHINE: AtomicU32 = AtomicU32::new(0);

/// How the host mounts its cgroups; systemd in the machine gets the same layout, rooted
/// at the test's cgroup.
#[derive(Clone, Copy, Debug)]
enum Cgroups {
    /// cgroup v2 alone at /sys/fs/cgroup.
    Unified,
    /// v1 controllers, systemd's named v1 hierarchy and v2 at /sys/fs/cgroup/unified.
    Hybrid,
}

impl Cgroups {
    fn of_host() -> Option<Cgroups> {
        let root = Path::new("/sys/fs/cgroup");
        if root.join("cgroup.controllers").exists() {
            Some(Cgroups::Unified)
        } else if root.join("systemd/cgroup.procs").exists()
            && root.join("unified/cgroup.procs").exists()
        {
            Some(Cgroups::Hybrid)
        } else {
            None
        }
    }

    /// The hierarchies a process of the machine must be moved into.
    fn roots(self) -> Vec<PathBuf> {
        let root = PathBuf::from("/sys/fs/cgroup");
        match self {
            Cgroups::Unified => vec![root],
            Cgroups::Hybrid => vec![root.join("systemd"), root.join("unified")],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cgroups::Unified => "unified",
            Cgroups::Hybrid => "hybrid",
        }
    }
}

/// PID 1 of the machine until it becomes systemd: `$1` the test's directory, `$2` the
/// cgroup layout.
const BOOT: &str = r#"set -eu
T="$1"
mount --make-rprivate /
for d in etc var usr/local; do
    mkdir -p "$T/overlay/$d/upper" "$T/overlay/$d/work"
    mount -t overlay overlay \
        -o "lowerdir=/$d,upperdir=$T/overlay/$d/upper,workdir=$T/overlay/$d/work" "/$d"
done
# Mounted inside the cgroup namespace, the hierarchies show the test's cgroup as root.
if [ "$2" = unified ]; then
    mount -t cgroup2 cgroup2 /sys/fs/cgroup
else
    mount -t tmpfs tmpfs /sys/fs/cgroup
    mkdir /sys/fs/cgroup/systemd /sys/fs/cgroup/unified
    mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
    mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
fi
mkdir -p /usr/local/sbin /etc/palisade /etc/systemd/system/sysinit.target.wants
cp "$T/palisaded" /usr/local/sbin/palisaded
cp "$T/etc/"* /etc/palisade/
cp "$T/units/"* /etc/systemd/system/
while read -r unit; do
    rm -rf "/etc/systemd/system/$unit"
    ln -s /dev/null "/etc/systemd/system/$unit"
done < "$T/masked"
# What `systemctl enable palisaded-boot` links (its [Install] section).
ln -s ../palisaded-boot.service /etc/systemd/system/sysinit.target.wants/
# The kernel's log is the host's: the journal keeps to the machine's own.
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\nReadKMsg=no\n' > /etc/systemd/journald.conf.d/palisade-test.conf
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
export container=palisade-test
exec /lib/systemd/systemd --system --unit=palisade-test.target
"#;

/// What the machine boots: palisaded, as multi-user.target would want it once enabled.
const TARGET: &str = "[Unit]
Description=palisaded under test
Wants=palisaded.service
After=palisaded.service
";

/// One systemd machine inside a network namespace.
struct Machine {
    dir: PathBuf,
    cgroups: Vec<PathBuf>,
    /// `unshare --kill-child`: killing it takes PID 1, and so the machine, down.
    launcher: Child,
    /// systemd's pid as the host sees it.
    pid: i32,
}

impl Machine {
    /// Boots systemd in `ns` with the shipped units, palisaded configured to apply
    /// `policy`, and waits until systemd has started its first job.
    fn boot(ns: &Netns, layout: Cgroups, policy: &str) -> Machine {
        let n = NEXT_MACHINE.fetch_add(1, Ordering::Relaxed);
        let name = format!("palisade-test-{}-{n}", std::process::id());
        reap_stale_cgroups(layout);
        let dir = std::env::temp_dir().join(format!("{}-systemd", ns.name()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["units", "etc"] {
            std::fs::create_dir_all(dir.join(sub)).expect("machine directory");
        }
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist");
        for unit in ["palisaded.service", "palisaded-boot.service"] {
            std::fs::copy(dist.join(unit), dir.join("units").join(unit)).expect("unit");
        }
        std::fs::write(dir.join("units/palisade-test.target"), TARGET).expect("target");
        std::fs::write(
            dir.join("etc/palisaded.toml"),
            "policy_file = \"/etc/palisade/policy.toml\"\nlog = \"info,palisaded=debug\"\n",
        )
        .expect("config");
        std::fs::write(dir.join("etc/policy.toml"), policy).expect("policy");
        std::fs::copy(env!("CARGO_BIN_EXE_palisaded"), dir.join("palisaded")).expect("binary");
        std::fs::write(dir.join("masked"), masked_units().join("\n") + "\n").expect("masks");
        std::fs::write(dir.join("boot.sh"), BOOT).expect("boot script");

        let cgroups: Vec<PathBuf> = layout.roots().iter().map(|r| r.join(&name)).collect();
        for cg in &cgroups {
            std::fs::create_dir(cg).unwrap_or_else(|e| panic!("{}: {e}", cg.display()));
        }
        let console = std::fs::File::create(dir.join("console.log")).expect("console log");
        // The shell moves itself into the test's cgroups, then becomes iproute2 (which
        // joins `ns`), which becomes unshare, whose child is PID 1.
        let launcher = Command::new("sh")
            .arg("-c")
            .arg(
                r#"for cg in "$@"; do echo $$ > "$cg/cgroup.procs"; done
exec "$IP" netns exec "$NS" unshare --pid --fork --kill-child --mount --uts --ipc --cgroup \
    --mount-proc sh "$T/boot.sh" "$T" "$LAYOUT""#,
            )
            .arg("sh")
            .args(&cgroups)
            .env("IP", netns::find_program("ip").expect("iproute2"))
            .env("NS", ns.name())
            .env("T", &dir)
            .env("LAYOUT", layout.name())
            .stdin(Stdio::null())
            .stdout(console.try_clone().expect("console"))
            .stderr(console)
            .spawn()
            .expect("launching the machine");
        let mut machine = Machine {
            dir,
            cgroups,
            launcher,
            pid: 0,
        };
        machine.pid = machine.wait_for_systemd();
        machine
    }

    /// The pid of the launcher's child once it runs systemd.
    fn wait_for_systemd(&mut self) -> i32 {
        let deadline = Instant::now() + PATIENCE;
        let unshare = self.launcher.id();
        loop {
            let children =
                std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
                    .unwrap_or_default();
            if let Some(pid) = children.split_whitespace().next()
                && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "systemd")
                && let Ok(pid) = pid.parse::<i32>()
            {
                // systemctl can talk to it once its private socket is there.
                if Path::new(&format!("/proc/{pid}/root/run/systemd/private")).exists() {
                    return pid;
                }
            }
            if let Ok(Some(status)) = self.launcher.try_wait() {
                panic!("the machine stopped ({status}):\n{}", self.console());
            }
            assert!(
                Instant::now() < deadline,
                "systemd did not start:\n{}",
                self.console()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `program args` inside the machine (all its namespaces).
    fn exec(&self, program: &str, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-a", program])
            .args(args)
            .output()
            .expect("nsenter")
    }

    fn systemctl(&self, args: &[&str]) -> Output {
        self.exec("systemctl", args)
    }

    /// `systemctl <args>`, which must succeed.
    fn systemctl_ok(&self, args: &[&str]) {
        let out = self.systemctl(args);
        assert!(
            out.status.success(),
            "systemctl {args:?}: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.journal()
        );
    }

    /// Properties of `unit` (`systemctl show`).
    fn show(&self, unit: &str) -> HashMap<String, String> {
        let out = self.systemctl(&["show", unit]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// Waits until `f` holds for `unit`'s properties; panics with the journal after
    /// [`PATIENCE`].
    fn wait_for(
        &self,
        unit: &str,
        what: &str,
        f: impl Fn(&HashMap<String, String>) -> bool,
    ) -> HashMap<String, String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let p = self.show(unit);
            if f(&p) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "{unit}: timed out waiting for {what}: ActiveState={:?} SubState={:?} Result={:?}\n{}",
                p.get("ActiveState"),
                p.get("SubState"),
                p.get("Result"),
                self.journal()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The machine's journal (every unit, systemd's own lines too).
    fn journal(&self) -> String {
        let out = self.exec("journalctl", &["--no-pager", "-o", "short-monotonic"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn console(&self) -> String {
        std::fs::read_to_string(self.dir.join("console.log")).unwrap_or_default()
    }

    /// The control socket inside the machine, reached through its root.
    fn control(&self, request: Request) -> Response {
        let socket = format!("/proc/{}/root/run/palisade/control.sock", self.pid);
        let mut c = Client::connect(&socket)
            .unwrap_or_else(|e| panic!("{socket}: {e}\n{}", self.journal()));
        c.call(request).expect("control call")
    }

    /// A greeter of user nobody on `ports` of `addr` inside the machine (its PID
    /// namespace too, so the machine's /proc shows it).
    fn greeter_of_nobody(&self, addr: IpAddr, ports: &[u16]) -> Greeter {
        let mut prefix = Command::new("nsenter");
        prefix.args(["-t", &self.pid.to_string(), "-a"]);
        Greeter::start(prefix, 65_534, addr, ports)
    }

    /// Replaces palisaded's policy file.
    fn write_policy(&self, text: &str) {
        let path = format!("/proc/{}/root/etc/palisade/policy.toml", self.pid);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{path}: {e}"));
    }

    /// The net events of a kind.
    fn events(&self, kind: &str) -> Vec<String> {
        match self.control(Request::Events {
            follow: false,
            since: None,
        }) {
            Response::Events { events } => events
                .into_iter()
                .filter(|e| e.kind == kind)
                .map(|e| format!("{} {}", e.summary, e.detail))
                .collect(),
            other => panic!("events: {other:?}"),
        }
    }

    /// Whether a filter of the rule `rule` is in the engine.
    fn has_filters_of(&self, rule: &str) -> bool {
        match self.control(Request::FilterList { layer: None }) {
            Response::Objects { objects } => objects
                .iter()
                .any(|o| o.to_string().contains(&format!("{rule}: "))),
            other => panic!("filter list: {other:?}"),
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if std::thread::panicking() && self.pid != 0 {
            eprintln!("---- machine journal ----\n{}", self.journal());
        }
        let _ = self.launcher.kill();
        let _ = self.launcher.wait();
        remove_cgroups(&self.cgroups);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Units the machine must not start: everything the host's targets pull in (services
/// of the host, timers, sockets, mounts), and what would change state that namespaces
/// do not separate. The journal stays, for the test's diagnostics.
fn masked_units() -> Vec<String> {
    let mut units: Vec<String> = [
        "local-fs.target",
        "swap.target",
        "remote-fs.target",
        "cryptsetup.target",
        "getty.target",
        "systemd-remount-fs.service",
        "systemd-fsck-root.service",
        "systemd-sysctl.service",
        "systemd-binfmt.service",
        "proc-sys-fs-binfmt_misc.automount",
        "systemd-modules-load.service",
        "systemd-tmpfiles-setup.service",
        "systemd-tmpfiles-setup-dev.service",
        "systemd-tmpfiles-clean.timer",
        "systemd-udevd.service",
        "systemd-udev-trigger.service",
        "systemd-journal-flush.service",
    ]
    .map(str::to_owned)
    .to_vec();
    for dir in ["/lib/systemd/system", "/etc/systemd/system"] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for wants in entries.flatten() {
            if !wants.file_name().to_string_lossy().ends_with(".wants") {
                continue;
            }
            let Ok(pulled) = std::fs::read_dir(wants.path()) else {
                continue;
            };
            for unit in pulled.flatten() {
                let unit = unit.file_name().to_string_lossy().into_owned();
                if !unit.starts_with("systemd-journald") && !unit.starts_with("palisaded") {
                    units.push(unit);
                }
            }
        }
    }
    units.sort();
    units.dedup();
    units
}

/// Removes `cgroups` and what systemd made below them, once their processes are gone.
fn remove_cgroups(cgroups: &[PathBuf]) {
    for cg in cgroups {
        let deadline = Instant::now() + Duration::from_secs(5);
        while has_processes(cg) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut dirs = Vec::new();
        collect_dirs(cg, &mut dirs);
        // Deepest first: a cgroup goes only when it has no children.
        for d in dirs.iter().rev() {
            if let Err(e) = std::fs::remove_dir(d) {
                eprintln!("cgroup {}: not removed: {e}", d.display());
            }
        }
    }
}

fn has_processes(cg: &Path) -> bool {
    let mut dirs = Vec::new();
    collect_dirs(cg, &mut dirs);
    dirs.iter().any(|d| {
        std::fs::read_to_string(d.join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty())
    })
}

/// `dir` and every directory below it, parents before children.
fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    out.push(dir.to_owned());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

/// Cgroups of machines whose test process is gone (killed before its guards ran); the
/// namespace reaper (tests/support/netns.rs) has killed their processes.
fn reap_stale_cgroups(layout: Cgroups) {
    for root in layout.roots() {
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix("palisade-test-")
                .and_then(|rest| rest.split('-').next())
            else {
                continue;
            };
            if !Path::new("/proc").join(pid).exists() {
                remove_cgroups(&[e.path()]);
            }
        }
    }
}

/// Everything between the hosts protected (ping must be ESP); `extra` adds rules.
fn policy(me: IpAddr, peer: IpAddr, extra: &str) -> String {
    require_policy("e2e-systemd", me, peer, extra)
}

/// A second rule, for a host that is not there: its filters show that a reload applied
/// the new file.
const SPARE_RULE: &str = r#"
[[rules]]
name = "spare"
local = "10.200.0.1"
remote = "10.200.9.9"
action = "require"
auth = "psk"
"#;

fn assert_ping(ns: &Netns, to: IpAddr, when: &str, m: &Machine) {
    let out = ping(ns, to, 3);
    assert!(
        out.status.success(),
        "{when}: ping failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        m.journal()
    );
}

fn monotonic(p: &HashMap<String, String>, key: &str) -> u64 {
    p.get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} in {p:?}"))
}

#[test]
fn palisaded_runs_under_systemd_with_the_shipped_units() {
    if !root_or_skip("palisaded_runs_under_systemd_with_the_shipped_units") {
        return;
    }
    if !Path::new(SYSTEMD).exists()
        || netns::find_program("nsenter").is_none()
        || !Path::new(PYTHON).exists()
    {
        eprintln!("skipped: {SYSTEMD}, nsenter or {PYTHON} not installed");
        return;
    }
    let Some(layout) = Cgroups::of_host() else {
        eprintln!("skipped: the host mounts its cgroups neither unified nor hybrid");
        return;
    };
    let pair = VethPair::new().expect("namespaces");
    let (a, b) = (IpAddr::V4(VethPair::ADDR_A), IpAddr::V4(VethPair::ADDR_B));
    let peer = Daemon::start(&pair.b, "b", &policy(b, a, "")).expect("peer daemon");
    let m = Machine::boot(&pair.a, layout, &policy(a, b, ""));

    // Boot: the fail-closed rules first, then the daemon, which counts as started only
    // once it said READY=1.
    let boot = m.wait_for("palisaded-boot.service", "its run", |p| {
        p.get("ExecMainExitTimestampMonotonic")
            .is_some_and(|t| t != "0")
    });
    assert_eq!(boot["Result"], "success", "{}", m.journal());
    assert_eq!(boot["ExecMainStatus"], "0");
    let main = m.wait_for("palisaded.service", "active", |p| {
        p.get("ActiveState").is_some_and(|s| s == "active")
    });
    assert_eq!(main["Type"], "notify");
    assert_eq!(main["SubState"], "running");
    assert_eq!(main["StatusText"], "protecting traffic through pal0");
    assert!(
        monotonic(&boot, "ExecMainExitTimestampMonotonic")
            <= monotonic(&main, "ExecMainStartTimestampMonotonic"),
        "palisaded-boot must finish before palisaded starts"
    );
    match m.control(Request::Status) {
        Response::Status(s) => assert!(s.ready, "active means ready: {s:?}"),
        other => panic!("status: {other:?}"),
    }

    // The sandboxed daemon negotiates and protects.
    assert_ping(&pair.a, b, "under systemd", &m);
    peer.wait_for_sas("an IKE SA with the machine", |sas| {
        sas.iter()
            .any(|s| s.peer_id == a.to_string() && !s.child_sas.is_empty())
    });

    // `systemctl reload` re-reads the policy file and waits for the daemon's answer: a
    // new rule is applied by the time it returns; a broken file fails the reload, with
    // the file's line in the journal, and the running policy stays.
    assert!(!m.has_filters_of("spare"));
    m.write_policy(&policy(a, b, SPARE_RULE));
    m.systemctl_ok(&["reload", "palisaded"]);
    assert!(
        m.has_filters_of("spare"),
        "reload returned before the file was applied:\n{}",
        m.journal()
    );
    assert!(
        m.events("policy_changed")
            .iter()
            .any(|e| e.contains("reload")),
        "{:?}",
        m.events("policy_changed")
    );
    m.write_policy("[policy]\nname = \"broken\"\n[[rules]]\nname = 7\n");
    let refused = m.systemctl(&["reload", "palisaded"]);
    assert!(
        !refused.status.success(),
        "a broken file reloaded without an error:\n{}",
        m.journal()
    );
    assert_eq!(m.events("policy_rejected").len(), 1);
    let journal = m.journal();
    assert!(
        journal.contains("policy.toml:4:8"),
        "the journal does not name the broken line:\n{journal}"
    );
    assert!(m.has_filters_of("spare"), "the running policy stays");
    let after = m.wait_for("palisaded.service", "active after the reloads", |p| {
        p.get("ActiveState").is_some_and(|s| s == "active")
    });
    assert_eq!(
        after["MainPID"], main["MainPID"],
        "a reload is not a restart"
    );
    assert_ping(&pair.a, b, "after the reloads", &m);
    m.write_policy(&policy(a, b, SPARE_RULE));

    // Stopped, it fails closed: the unit runs nothing that removes the firewall, so the
    // machine sends no clear text to the peer.
    m.systemctl_ok(&["stop", "palisaded"]);
    let stopped = m.show("palisaded.service");
    assert_eq!(stopped["ActiveState"], "inactive");
    let tables = pair.a.command("nft").args(["list", "tables"]).output();
    let tables = String::from_utf8_lossy(&tables.expect("nft").stdout).into_owned();
    assert!(tables.contains("inet palisade"), "{tables}");
    let capture =
        Capture::start(&pair.a, &veth_of(&pair.a), m.dir.join("stopped.pcap")).expect("tcpdump");
    let out = pair
        .a
        .command("ping")
        .args(["-c", "2", "-W", "1", &b.to_string()])
        .output()
        .expect("ping");
    let clear = not_ipsec_between(&capture.finish(), a, b);
    assert!(
        !out.status.success() && clear.is_empty(),
        "traffic left in clear with the daemon stopped: {clear:#?}"
    );

    // Started again, it protects again (the peer learns of the restart from the new
    // IKE SA's INITIAL_CONTACT).
    m.systemctl_ok(&["start", "palisaded"]);
    assert_ping(&pair.a, b, "after a restart", &m);

    // A crash: systemd restarts it (Restart=on-failure), and traffic flows again.
    let before = m.show("palisaded.service");
    m.systemctl_ok(&["kill", "--signal=SIGKILL", "palisaded"]);
    let restarted = m.wait_for("palisaded.service", "a restart after SIGKILL", |p| {
        p.get("NRestarts").is_some_and(|n| n == "1")
            && p.get("ActiveState").is_some_and(|s| s == "active")
    });
    assert_ne!(restarted["MainPID"], before["MainPID"]);
    assert_ping(&pair.a, b, "after a crash", &m);

    // The sandbox lets the daemon see which program holds a socket of another user
    // (a rule's `programs`): a python3 of user nobody inside the machine listens on two
    // ports; the rule for the first allows python3, the one for the second another
    // program. From the peer, the first connection is accepted, the second refused.
    let python = std::fs::canonicalize(PYTHON).expect("python3's real path");
    let rules = format!(
        r#"
[[rules]]
name = "python"
local = "{a}"
remote = "{b}"
protocol = "tcp"
local_ports = [7001]
action = "require"
auth = "psk"
programs = ["{python}"]

[[rules]]
name = "other"
local = "{a}"
remote = "{b}"
protocol = "tcp"
local_ports = [7002]
action = "require"
auth = "psk"
programs = ["/usr/bin/none"]
"#,
        python = python.display()
    );
    m.write_policy(&policy(a, b, &rules));
    m.systemctl_ok(&["reload", "palisaded"]);
    assert!(m.has_filters_of("other"), "reload:\n{}", m.journal());
    let _greeter = m.greeter_of_nobody(a, &[7001, 7002]);
    let greeted = |port: u16| greeted(&bash_connect(&pair.b, a, port));
    assert!(
        greeted(7001),
        "the program rule's own program was refused:\n{}",
        m.journal()
    );
    assert!(!greeted(7002), "another program's rule let python3 in");

    // The watchdog: pinged while the daemon's threads answer, so a short WatchdogSec
    // (a drop-in, as an administrator would add one) does not restart a working
    // daemon; a stopped daemon stops pinging, and systemd restarts it.
    let shipped = m.show("palisaded.service");
    assert_eq!(shipped["WatchdogUSec"], "30s", "the unit's WatchdogSec");
    let dropin = format!(
        "/proc/{}/root/etc/systemd/system/palisaded.service.d",
        m.pid
    );
    std::fs::create_dir_all(&dropin).expect("drop-in directory");
    std::fs::write(
        format!("{dropin}/watchdog.conf"),
        "[Service]\nWatchdogSec=2s\nTimeoutAbortSec=2s\n",
    )
    .expect("drop-in");
    m.systemctl_ok(&["daemon-reload"]);
    m.systemctl_ok(&["restart", "palisaded"]);
    let pinged = m.wait_for("palisaded.service", "active with a 2 s watchdog", |p| {
        p.get("ActiveState").is_some_and(|s| s == "active")
    });
    std::thread::sleep(Duration::from_secs(5));
    let later = m.show("palisaded.service");
    assert_eq!(
        (later["MainPID"].as_str(), later["NRestarts"].as_str()),
        (pinged["MainPID"].as_str(), pinged["NRestarts"].as_str()),
        "a working daemon was restarted by its watchdog:\n{}",
        m.journal()
    );
    m.systemctl_ok(&["kill", "--signal=SIGSTOP", "palisaded"]);
    let restarts: u32 = pinged["NRestarts"].parse().expect("NRestarts");
    let revived = m.wait_for("palisaded.service", "a restart by the watchdog", |p| {
        p.get("NRestarts")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n > restarts)
            && p.get("ActiveState").is_some_and(|s| s == "active")
    });
    assert_ne!(revived["MainPID"], pinged["MainPID"]);
    assert_ping(&pair.a, b, "after the watchdog's restart", &m);
}
