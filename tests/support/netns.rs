//! Network namespaces for the interop tests: uniquely named namespaces joined by a veth
//! pair, removed by a guard even when the test panics, and a way to run code (and so
//! open sockets) inside one of them. Include it with
//! `#[path = "../../../tests/support/netns.rs"] mod netns;` (strongswan.rs expects the
//! module to be called `netns`).
//!
//! Names are `pal-<pid>-<counter>-a|b`: unique across the test binaries that run at the
//! same time (their pids differ) and across the tests of one binary (the counter). The
//! veth ends are created straight inside the namespaces, so nothing appears, even for a
//! moment, in the namespace the tests run in.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sched::{CloneFlags, setns};

static NEXT_PAIR: AtomicU32 = AtomicU32::new(0);
static REAPED: std::sync::Once = std::sync::Once::new();
/// `ip netns add` makes /run/netns a shared mount the first time it runs; two of those
/// at once can race, so the tests of one binary create their namespaces one at a time.
static CREATING: Mutex<()> = Mutex::new(());

/// Whether this process may create namespaces (it must be root); prints why not, for a
/// test that then returns early.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("not root: skipping {test} (network namespaces need root)");
    false
}

/// `name` on `$PATH`, else in the sbin directories a non-login root shell may lack.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Runs `cmd` and turns a failure into an error that shows the command and its stderr.
pub fn run_checked(cmd: &mut Command) -> io::Result<String> {
    let out = cmd.output()?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(io::Error::other(format!(
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
    )))
}

fn ip_command() -> Command {
    Command::new(find_program("ip").unwrap_or_else(|| PathBuf::from("ip")))
}

/// A named network namespace (`ip netns add`), deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace `name`, with its loopback up and IPv6 off (no router
    /// solicitations or DAD on the wire the tests look at).
    pub fn create(name: String) -> io::Result<Self> {
        run_checked(ip_command().args(["netns", "add", &name]))?;
        // From here on the guard owns the namespace: an error below still removes it.
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        // /proc/sys/net shows the namespace of the thread that opens it.
        ns.run(|| {
            ["all", "default"].iter().try_for_each(|conf| {
                std::fs::write(format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6"), "1")
            })
        })??;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file that pins the namespace, and that setns(2) takes.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// `ip -n <name> <args>`.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        run_checked(ip_command().arg("-n").arg(&self.name).args(args))
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`). iproute2
    /// execs the program in place, so the child's pid is the program's own.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = ip_command();
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `f` on a thread that has joined this namespace, and returns its result.
    ///
    /// A socket opened by `f` belongs to this namespace for its whole life, whichever
    /// thread uses it later: a socket's namespace is fixed when it is created. A panic in
    /// `f` is resumed on the caller's thread.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        let file = File::open(self.path())?;
        std::thread::scope(|scope| {
            let joined = scope
                .spawn(move || -> io::Result<T> {
                    // The namespace is switched for this short-lived thread only, never
                    // for the test's own thread or the rest of the process.
                    setns(&file, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                    Ok(f())
                })
                .join();
            joined.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// A UDP socket bound to `addr` inside this namespace.
    pub fn udp_socket(&self, addr: SocketAddr) -> io::Result<UdpSocket> {
        self.run(|| UdpSocket::bind(addr))?
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Interfaces inside (the veth end, charon's ipsec0) go with the namespace.
        if let Err(e) = run_checked(ip_command().args(["netns", "del", &self.name])) {
            eprintln!("netns {}: cleanup failed: {e}", self.name);
        }
    }
}

/// Two namespaces joined by a veth pair: `a` at [`VethPair::ADDR_A`], `b` at
/// [`VethPair::ADDR_B`], in one /24.
#[derive(Debug)]
pub struct VethPair {
    /// The first namespace, conventionally the side under test.
    pub a: Netns,
    /// The second namespace, conventionally the reference peer.
    pub b: Netns,
}

impl VethPair {
    /// The address of `a`'s veth end.
    pub const ADDR_A: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
    /// The address of `b`'s veth end.
    pub const ADDR_B: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);

    /// Creates both namespaces and the link between them, checked with one datagram.
    pub fn new() -> io::Result<Self> {
        let pid = std::process::id();
        let n = NEXT_PAIR.fetch_add(1, Ordering::Relaxed);
        // A test that panicked while holding the lock left nothing half-made behind it.
        let _creating = CREATING.lock().unwrap_or_else(|e| e.into_inner());
        REAPED.call_once(reap_stale);
        let a = Netns::create(format!("pal-{pid}-{n}-a"))?;
        let b = Netns::create(format!("pal-{pid}-{n}-b"))?;
        // Interface names have at most 15 bytes; they only need to be unique inside
        // their namespace, so the counter may wrap here.
        let veth = |side: char| format!("pal-{pid:x}-{:x}{side}", n % 0x1000);
        let (veth_a, veth_b) = (veth('a'), veth('b'));
        let link = format!(
            "link add {veth_a} netns {} type veth peer name {veth_b} netns {}",
            a.name(),
            b.name()
        );
        run_checked(ip_command().args(link.split(' ')))?;
        for (ns, dev, addr) in [(&a, &veth_a, Self::ADDR_A), (&b, &veth_b, Self::ADDR_B)] {
            ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ns.ip(&["link", "set", dev, "up"])?;
        }
        let pair = Self { a, b };
        pair.check_link()?;
        Ok(pair)
    }

    /// One datagram from `a` to `b`, so that a broken link fails here and not as a
    /// timeout in the test proper.
    fn check_link(&self) -> io::Result<()> {
        let rx = self.b.udp_socket((Self::ADDR_B, 0).into())?;
        let tx = self.a.udp_socket((Self::ADDR_A, 0).into())?;
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
        tx.send_to(b"palisade", rx.local_addr()?)?;
        let mut buf = [0u8; 16];
        let (n, from) = rx.recv_from(&mut buf)?;
        if buf.get(..n) != Some(b"palisade".as_slice()) || from != tx.local_addr()? {
            return Err(io::Error::other("veth check: unexpected datagram"));
        }
        Ok(())
    }
}

/// Removes the namespaces of test processes that are gone: a test binary killed by a
/// signal (SIGKILL, or SIGPIPE through `cargo test | head`) runs no destructor, and
/// would leave its namespaces and the charon inside them behind for good. A namespace
/// is stale when the pid in its name no longer exists; whatever still runs in it is
/// killed first, so that nothing outlives the namespace.
fn reap_stale() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("pal-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        if let Ok(pids) = run_checked(ip_command().args(["netns", "pids", &name])) {
            for pid in pids
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        match run_checked(ip_command().args(["netns", "del", &name])) {
            Ok(_) => eprintln!("removed namespace {name}, left by a test process that is gone"),
            Err(e) => eprintln!("stale namespace {name}: {e}"),
        }
    }
}
