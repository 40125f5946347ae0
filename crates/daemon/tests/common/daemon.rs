//! A palisaded per test host: its configuration and policy in a private directory, the
//! daemon started inside the host's namespace, a control client, and a guard that stops
//! it (and shows its log when the test failed).

// Each e2e test binary uses a different part of this module.
#![allow(dead_code)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use palisade_control::{Client, IkeSaView, NetEvent, Request, Response, SaCounters, Stats, Status};

use crate::netns::Netns;

/// One running daemon.
pub struct Daemon {
    name: String,
    ns_name: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    /// Starts palisaded inside `ns` with `policy` (TOML) and waits until it answers.
    pub fn start(ns: &Netns, name: &str, policy: &str) -> io::Result<Daemon> {
        Self::start_with(ns, name, policy, "")
    }

    /// [`Daemon::start`] with `settings` (palisaded.toml tables such as
    /// `[ike]\nforce_udp_encapsulation = true`) after the test's own top-level keys.
    pub fn start_with(ns: &Netns, name: &str, policy: &str, settings: &str) -> io::Result<Daemon> {
        let dir = std::env::temp_dir().join(format!("{}-{name}", ns.name()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("state"))?;
        std::fs::write(dir.join("policy.toml"), policy)?;
        std::fs::write(
            dir.join("palisaded.toml"),
            format!(
                "state_dir = \"{d}/state\"\ncontrol_socket = \"{d}/control.sock\"\n\
                 policy_file = \"{d}/policy.toml\"\nlog = \"info,palisaded=debug\"\n{settings}\n",
                d = dir.display()
            ),
        )?;
        let mut d = Daemon {
            name: name.to_owned(),
            ns_name: ns.name().to_owned(),
            dir,
            child: None,
        };
        d.spawn(ns)?;
        Ok(d)
    }

    /// Starts the daemon process (again, after a kill).
    pub fn spawn(&mut self, ns: &Netns) -> io::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("palisaded.log"))?;
        let child = ns
            .command(env!("CARGO_BIN_EXE_palisaded"))
            .arg("--config")
            .arg(self.dir.join("palisaded.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(mut c) = Client::connect(self.socket())
                && let Ok(Response::Status(s)) = c.call(Request::Status)
                && s.ready
            {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(io::Error::other(format!(
                    "palisaded {} exited with {status}:\n{}",
                    self.name,
                    self.log()
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "palisaded {} did not become ready:\n{}",
                    self.name,
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The control socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("control.sock")
    }

    /// The private directory (config, policy, state, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("palisaded.log")).unwrap_or_default()
    }

    /// One request.
    pub fn call(&self, request: Request) -> Response {
        let mut c = Client::connect(self.socket())
            .unwrap_or_else(|e| panic!("{}: connect: {e}\n{}", self.name, self.log()));
        c.call(request)
            .unwrap_or_else(|e| panic!("{}: call: {e}\n{}", self.name, self.log()))
    }

    /// The IKE SAs with their CHILD_SAs.
    pub fn sas(&self) -> Vec<IkeSaView> {
        match self.call(Request::SaList) {
            Response::Sas { sas } => sas,
            other => panic!("{}: sa list: {other:?}", self.name),
        }
    }

    /// The daemon's status.
    pub fn status(&self) -> Status {
        match self.call(Request::Status) {
            Response::Status(s) => s,
            other => panic!("{}: status: {other:?}", self.name),
        }
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        match self.call(Request::Stats) {
            Response::Stats(s) => *s,
            other => panic!("{}: stats: {other:?}", self.name),
        }
    }

    /// The net events the daemon's ring holds.
    pub fn events(&self) -> Vec<NetEvent> {
        match self.call(Request::Events {
            follow: false,
            since: None,
        }) {
            Response::Events { events } => events,
            other => panic!("{}: events: {other:?}", self.name),
        }
    }

    /// Waits until `f` holds for the SA list, or panics with the logs.
    pub fn wait_for_sas(&self, what: &str, f: impl Fn(&[IkeSaView]) -> bool) -> Vec<IkeSaView> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let sas = self.sas();
            if f(&sas) {
                return sas;
            }
            assert!(
                Instant::now() < deadline,
                "{}: timed out waiting for {what}; SAs: {sas:#?}\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `signal` to the daemon (SIGSTOP and SIGCONT: a data plane that stalls).
    /// After SIGSTOP it returns once every thread has stopped (the signal is delivered
    /// to each thread as it next runs, so a busy one may read on for a while).
    pub fn signal(&self, signal: Signal) {
        let Some(pid) = self.child.as_ref().and_then(|c| i32::try_from(c.id()).ok()) else {
            return;
        };
        kill(Pid::from_raw(pid), signal).expect("kill(2)");
        if signal != Signal::SIGSTOP {
            return;
        }
        let all_stopped = || {
            std::fs::read_dir(format!("/proc/{pid}/task"))
                .map(|tasks| {
                    tasks.flatten().all(|t| {
                        std::fs::read_to_string(t.path().join("stat")).is_ok_and(|stat| {
                            // The state follows the command name's closing parenthesis.
                            stat.rsplit_once(") ")
                                .is_some_and(|(_, rest)| rest.starts_with('T'))
                        })
                    })
                })
                .unwrap_or(false)
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !all_stopped() {
            assert!(Instant::now() < deadline, "{}: not stopped", self.name);
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL: no cleanup at all, as a crash.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then SIGKILL after 5 s.
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(c.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "---- palisaded {} ({}) log ----\n{}",
                self.name,
                self.ns_name,
                self.log()
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The veth device inside `ns` (VethPair makes exactly one).
pub fn veth_of(ns: &Netns) -> String {
    let out = ns
        .ip(&["-o", "link", "show", "type", "veth"])
        .expect("ip link");
    out.split(':')
        .nth(1)
        .and_then(|s| s.trim().split('@').next())
        .map(str::to_owned)
        .expect("a veth device")
}

/// A packet capture on `dev` inside `ns` (tcpdump), stopped and read by `finish`.
pub struct Capture {
    child: Child,
    file: PathBuf,
}

impl Capture {
    /// Starts capturing everything on `dev`.
    pub fn start(ns: &Netns, dev: &str, file: PathBuf) -> io::Result<Capture> {
        let child = ns
            .command("tcpdump")
            // Immediate mode: without it the kernel hands packets over a block at a
            // time, and a block that a few large (UDP GSO) packets leave part full waits
            // for its timeout, so a capture stopped soon after the traffic misses them.
            .args(["-i", dev, "-n", "-U", "--immediate-mode", "-s", "200", "-w"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        // tcpdump needs a moment before it sees packets.
        std::thread::sleep(Duration::from_millis(700));
        Ok(Capture { child, file })
    }

    /// Stops and returns one summary line per packet (`tcpdump -r -nn`).
    pub fn finish(mut self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(300));
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
        }
        let _ = self.child.wait();
        let out = std::process::Command::new("tcpdump")
            .args(["-nn", "-r"])
            .arg(&self.file)
            .output()
            .expect("tcpdump -r");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Sends `payload` from inside `ns` to `to` (IPv4) as IP protocol `protocol`, the kernel
/// building the IP header, through a raw socket with the daemon's mark: the packet goes
/// on the wire as an attacker's would, not into the namespace's TUN and its SA.
pub fn send_forged(ns: &Netns, to: IpAddr, protocol: i32, payload: &[u8]) -> io::Result<usize> {
    ns.run(|| {
        let s = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::RAW,
            Some(socket2::Protocol::from(protocol)),
        )?;
        s.set_mark(palisaded::sys::FWMARK)?;
        s.send_to(payload, &SocketAddr::new(to, 0).into())
    })?
}

/// Waits for a forged packet sent to `d` to be judged, then asserts that its first
/// CHILD_SA accepted nothing since `before` and counted one more integrity drop.
pub fn assert_forged_dropped(d: &Daemon, before: &SaCounters) {
    std::thread::sleep(Duration::from_millis(300));
    let sas = d.sas();
    let after = &sas[0].child_sas[0].inbound;
    assert_eq!(
        after.packets, before.packets,
        "a forged packet was accepted"
    );
    assert_eq!(
        after.drops.get("integrity").copied().unwrap_or(0),
        before.drops.get("integrity").copied().unwrap_or(0) + 1,
        "{after:?}\n{}",
        d.log()
    );
}

/// A policy named `name` that requires IPsec for all traffic between `me` and `peer`
/// (one rule, `peer`, authenticated with a pre-shared key), followed by `extra` (more
/// TOML: rules, or nothing).
pub fn require_policy(
    name: &str,
    me: impl std::fmt::Display,
    peer: impl std::fmt::Display,
    extra: &str,
) -> String {
    format!(
        r#"{}
[[rules]]
name = "peer"
local = "{me}"
remote = "{peer}"
action = "require"
auth = "psk"
{extra}"#,
        psk_head(name, &format!("{name} secret"))
    )
}

/// A policy named `name` with one tunnel-mode rule, `site`, from `local_net` to
/// `remote_net` between the gateways `me` and `peer`, authenticated with a pre-shared
/// key.
pub fn tunnel_policy(
    name: &str,
    local_net: &str,
    remote_net: &str,
    me: impl std::fmt::Display,
    peer: impl std::fmt::Display,
) -> String {
    format!(
        r#"{}
[[rules]]
name = "site"
local = "{local_net}"
remote = "{remote_net}"
action = "require"
mode = "tunnel"
tunnel = {{ local = "{me}", remote = "{peer}" }}
auth = "psk"
"#,
        psk_head(name, &format!("{name} secret"))
    )
}

/// A policy's head: its name, and the pre-shared key `secret` as auth set `psk`.
fn psk_head(name: &str, secret: &str) -> String {
    format!(
        r#"
[policy]
name = "{name}"

[auth_sets.psk]
method = "preshared_key"
key = "{secret}"
"#
    )
}

/// A Palisade policy named `name` with one rule for talking to charon: `rule` (its name,
/// addresses, action and mode, one `key = value` per line), authenticated with the
/// pre-shared key `secret`, with the suite the strongSwan configuration of
/// tests/support/strongswan.rs offers (IKE AES-GCM-128/SHA-256/ECP-256, ESP AES-GCM-128).
pub fn charon_suite_policy(name: &str, secret: &str, rule: &str) -> String {
    format!(
        r#"{}
[ike_proposal_sets.charon]
proposals = [{{ cipher = "aes_gcm_128_16icv", integrity = "sha_256", dh_group = "ecp_256" }}]

[ipsec_proposal_sets.gcm]
proposals = [{{ esp = "gcm_aes_128" }}]

[[rules]]
{rule}
auth = "psk"
ike_proposals = "charon"
ipsec_proposals = "gcm"
"#,
        psk_head(name, secret)
    )
}

/// `ping -c count` from inside `ns` to `to`, each reply awaited at most 3 s.
pub fn ping(ns: &Netns, to: IpAddr, count: u32) -> Output {
    ns.command("ping")
        .args([
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "3",
            &to.to_string(),
        ])
        .output()
        .expect("ping")
}

/// Sends `len` bytes over TCP from `from` to a listener at `to` opened inside `at`, and
/// returns how many arrived (an error if connecting, writing or reading failed).
pub fn tcp_transfer(from: &Netns, at: &Netns, to: SocketAddr, len: usize) -> io::Result<usize> {
    tcp_transfer_via(from, at, to, to, len)
}

/// [`tcp_transfer`] to a listener bound at `listen` inside `at` that `from` reaches at
/// `to`: another address when a NAT stands between them.
pub fn tcp_transfer_via(
    from: &Netns,
    at: &Netns,
    listen: SocketAddr,
    to: SocketAddr,
    len: usize,
) -> io::Result<usize> {
    let listener = at.run(|| TcpListener::bind(listen))??;
    // A connection that never arrives fails the transfer instead of hanging the test.
    listener.set_nonblocking(true)?;
    let server = std::thread::spawn(move || -> io::Result<usize> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut s = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if std::time::Instant::now() > deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "no connection reached the listener in 30 s",
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        };
        s.set_nonblocking(false)?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut buf = vec![0u8; 65536];
        let mut got = 0;
        loop {
            match s.read(&mut buf)? {
                0 => return Ok(got),
                n => got += n,
            }
        }
    });
    let sent = from
        .run(|| TcpStream::connect_timeout(&to, Duration::from_secs(10)))?
        .and_then(|mut client| {
            client.set_write_timeout(Some(Duration::from_secs(20)))?;
            let chunk = vec![0x5au8; 65536];
            let mut sent = 0;
            while sent < len {
                let n = chunk.len().min(len - sent);
                client.write_all(&chunk[..n])?;
                sent += n;
            }
            Ok(sent)
        });
    if let Err(e) = sent {
        // Unblocks the server's accept, which would otherwise wait for ever.
        let _ = from.run(|| TcpStream::connect_timeout(&to, Duration::from_secs(1)));
        let _ = server.join();
        return Err(e);
    }
    server
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// The captured packets between `x` and `y` (lines of [`Capture::finish`]) that are not
/// IPsec: neither ESP (raw or in UDP; a later IPv4 fragment of raw ESP, which tcpdump
/// shows as `ip-proto-50`) nor IKE on port 500 or 4500 nor a NAT keepalive.
/// Address resolution (ARP, IPv6 neighbour discovery) runs beneath IPsec and is left out.
pub fn not_ipsec_between(lines: &[String], x: IpAddr, y: IpAddr) -> Vec<String> {
    let (x, y) = (format!(" {x}"), format!(" {y}"));
    lines
        .iter()
        .filter(|l| (l.contains(" IP ") || l.contains(" IP6 ")) && l.contains(&x) && l.contains(&y))
        .filter(|l| !l.contains("neighbor solicitation") && !l.contains("neighbor advertisement"))
        .filter(|l| {
            !(l.contains(": ESP(")
                || l.contains(": ip-proto-50")
                || l.contains("UDP-encap: ESP(")
                || l.contains(": isakmp")
                || l.contains("NONESP-encap: isakmp")
                || l.contains("isakmp-nat-keep-alive"))
        })
        .cloned()
        .collect()
}
