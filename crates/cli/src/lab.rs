//! `palisade lab`: a live demonstration on this machine. Two hosts in network namespaces,
//! a palisaded on each with a transport-mode policy, traffic between them, and what
//! happened: the SAs with their counters and a capture of the link that shows nothing but
//! IKE and ESP. Traffic is a ping, a TCP transfer, and a UDP datagram longer than the MTU
//! there and back (the hosts cut it into fragments; palisaded protects it whole).
//! Everything is removed at the end (unless `--keep`).

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use palisade_control::{Client, IkeSaView, Request, Response, Stats};

/// Options of `palisade lab`.
#[derive(Debug, clap::Args)]
pub struct LabArgs {
    /// Leave the namespaces and daemons running (remove them later with
    /// `ip netns del NAME` for both namespaces and `palisaded --remove-rules`).
    #[arg(long)]
    pub keep: bool,
    /// Bytes the TCP transfer sends.
    #[arg(long, default_value_t = 16 << 20)]
    pub bytes: usize,
}

const WEB: Ipv4Addr = Ipv4Addr::new(10, 90, 0, 1);
const DB: Ipv4Addr = Ipv4Addr::new(10, 90, 0, 2);

fn policy(me: Ipv4Addr, peer: Ipv4Addr) -> String {
    format!(
        r#"# Transport mode (spec §4.1): everything between the two hosts is protected;
# clear traffic between them is dropped until IKE succeeds.
[policy]
name = "lab"

[auth_sets.lab-psk]
method = "preshared_key"
key = "palisade lab secret"

[ike_proposal_sets.modern]
proposals = [{{ cipher = "aes_gcm_128_16icv", integrity = "sha_256", dh_group = "curve25519" }}]

[ipsec_proposal_sets.gcm]
proposals = [{{ esp = "gcm_aes_128" }}]

[[rules]]
name = "peer"
local = "{me}"
remote = "{peer}"
action = "require"
auth = "lab-psk"
ike_proposals = "modern"
ipsec_proposals = "gcm"
"#
    )
}

struct Host {
    name: &'static str,
    ns: String,
    addr: Ipv4Addr,
    dir: PathBuf,
    daemon: Option<Child>,
}

impl Host {
    fn socket(&self) -> PathBuf {
        self.dir.join("control.sock")
    }

    fn exec(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, program]);
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("palisaded.log")).unwrap_or_default()
    }
}

/// Namespaces, daemons and files of one run; removed on drop.
struct Lab {
    hosts: Vec<Host>,
    root: PathBuf,
    keep: bool,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for h in &mut self.hosts {
            if let Some(mut c) = h.daemon.take() {
                if let Ok(pid) = i32::try_from(c.id()) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                }
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = c.kill();
                let _ = c.wait();
            }
            // The namespace takes its TUN, routes and firewall rules with it.
            let _ = Command::new("ip").args(["netns", "del", &h.ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn palisaded_binary() -> Result<PathBuf> {
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("palisaded")));
    if let Some(p) = sibling.filter(|p| p.is_file()) {
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("palisaded"))
        .find(|p| p.is_file())
        .context("palisaded not found next to palisade or on PATH (build it: cargo build --release -p palisaded)")
}

fn step(title: &str) {
    println!("\n== {title}");
}

/// Runs `f` on a thread inside the namespace `ns` (a socket made there stays there).
fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
    let file = File::open(Path::new("/run/netns").join(ns))?;
    std::thread::scope(|s| {
        s.spawn(move || -> Result<T> {
            setns(&file, CloneFlags::CLONE_NEWNET).context("joining the namespace")?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// `palisade lab`.
pub fn lab(args: &LabArgs) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "palisade lab creates network namespaces and needs root\nhint: run it as root (sudo palisade lab)"
        );
    }
    let palisaded = palisaded_binary()?;
    let pid = std::process::id();
    let root = std::env::temp_dir().join(format!("palisade-lab-{pid}"));
    let mut lab = Lab {
        hosts: Vec::new(),
        root: root.clone(),
        keep: args.keep,
    };
    step("Two hosts in network namespaces, one link between them");
    for (name, addr) in [("web", WEB), ("db", DB)] {
        let ns = format!("pal-lab-{pid}-{name}");
        run(Command::new("ip").args(["netns", "add", &ns]))?;
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("state"))?;
        lab.hosts.push(Host {
            name,
            ns,
            addr,
            dir,
            daemon: None,
        });
    }
    let (web, db) = (&lab.hosts[0], &lab.hosts[1]);
    run(Command::new("ip").args([
        "link", "add", "lab0", "netns", &web.ns, "type", "veth", "peer", "name", "lab0", "netns",
        &db.ns,
    ]))?;
    for h in &lab.hosts {
        run(Command::new("ip").args(["-n", &h.ns, "link", "set", "lo", "up"]))?;
        run(Command::new("ip").args([
            "-n",
            &h.ns,
            "addr",
            "add",
            &format!("{}/24", h.addr),
            "dev",
            "lab0",
        ]))?;
        run(Command::new("ip").args(["-n", &h.ns, "link", "set", "lab0", "up"]))?;
        println!("   {:<4} {} in namespace {}", h.name, h.addr, h.ns);
    }

    step("A transport-mode policy on each host (web's shown)");
    for (i, h) in lab.hosts.iter().enumerate() {
        let peer = if i == 0 { DB } else { WEB };
        let text = policy(h.addr, peer);
        if i == 0 {
            for line in text.lines() {
                println!("   {line}");
            }
        }
        std::fs::write(h.dir.join("policy.toml"), text)?;
        std::fs::write(
            h.dir.join("palisaded.toml"),
            format!(
                "state_dir = \"{d}/state\"\ncontrol_socket = \"{d}/control.sock\"\npolicy_file = \"{d}/policy.toml\"\n",
                d = h.dir.display()
            ),
        )?;
    }

    step("palisaded on each host");
    for h in &mut lab.hosts {
        let log = File::create(h.dir.join("palisaded.log"))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &h.ns])
            .arg(&palisaded)
            .arg("--config")
            .arg(h.dir.join("palisaded.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting palisaded")?;
        h.daemon = Some(child);
    }
    for h in &lab.hosts {
        wait_ready(h)?;
        println!(
            "   {:<4} ready (log: {})",
            h.name,
            h.dir.join("palisaded.log").display()
        );
    }

    let (web, db) = (&lab.hosts[0], &lab.hosts[1]);
    let pcap = root.join("link.pcap");
    let capture = web
        .exec("tcpdump")
        .args(["-i", "lab0", "-n", "-U", "-s", "200", "-w"])
        .arg(&pcap)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok();
    if capture.is_none() {
        println!("   (tcpdump not found: no capture; apt install tcpdump)");
    }
    std::thread::sleep(Duration::from_millis(700));

    step("ping db from web (the first packet starts IKE)");
    let ping = web
        .exec("ping")
        .args(["-c", "4", "-i", "0.3", "-W", "3", &DB.to_string()])
        .output()?;
    for line in String::from_utf8_lossy(&ping.stdout).lines() {
        println!("   {line}");
    }
    if !ping.status.success() {
        bail!(
            "ping failed; web's log:\n{}\ndb's log:\n{}",
            web.log(),
            db.log()
        );
    }

    step(&format!(
        "a TCP transfer of {} MiB from web to db",
        args.bytes >> 20
    ));
    let (secs, moved) = tcp_transfer(&web.ns, &db.ns, args.bytes)?;
    println!(
        "   {moved} bytes in {secs:.2} s: {:.0} Mbit/s through two userspace ESP stacks",
        moved as f64 * 8.0 / secs / 1e6
    );

    step(&format!(
        "a {DATAGRAM}-byte UDP datagram from web to db and back (longer than the MTU: each host cuts it into fragments, palisaded puts them back together and protects it whole)"
    ));
    udp_echo(&web.ns, &db.ns)?;
    let s = stats(web)?;
    println!(
        "   the datagram came back whole; palisaded on web: {} datagram(s) reassembled, {} sent in fragments",
        s.reassembled, s.fragmented
    );

    step("the SAs (palisade sa list, on each host)");
    for h in &lab.hosts {
        println!("   -- {}", h.name);
        for line in crate::commands::render_sas(&sas(h)?).lines() {
            println!("   {line}");
        }
    }

    if let Some(mut c) = capture {
        std::thread::sleep(Duration::from_millis(300));
        if let Ok(pid) = i32::try_from(c.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
        }
        let _ = c.wait();
        step("what crossed the link (tcpdump on web's side)");
        let out = run(Command::new("tcpdump").arg("-nn").arg("-r").arg(&pcap))?;
        let lines: Vec<&str> = out.lines().filter(|l| l.contains(" IP ")).collect();
        let esp = lines.iter().filter(|l| l.contains("ESP(")).count();
        // A later fragment of an ESP packet: tcpdump cannot show the SPI.
        let fragments = lines.iter().filter(|l| l.contains(": ip-proto-50")).count();
        let ike = lines
            .iter()
            .filter(|l| l.contains(".500: isakmp") || l.contains(".4500: "))
            .count();
        let clear = lines.len() - esp - fragments - ike;
        println!(
            "   {} IP packets: {esp} ESP, {fragments} later fragments of ESP, {ike} IKE, {clear} anything else",
            lines.len()
        );
        for l in lines.iter().take(6) {
            println!("   {l}");
        }
        if clear > 0 {
            bail!("clear-text packets crossed the link");
        }
    }
    if args.keep {
        println!(
            "\nKept: namespaces {} and {}; try `ip netns exec {} palisade --socket {} sa list`",
            web.ns,
            db.ns,
            web.ns,
            web.socket().display()
        );
    } else {
        step("cleaning up (daemons stopped, namespaces removed)");
    }
    Ok(())
}

fn wait_ready(h: &Host) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(mut c) = Client::connect(h.socket())
            && let Ok(Response::Status(s)) = c.call(Request::Status)
            && s.ready
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("palisaded on {} did not start:\n{}", h.name, h.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stats(h: &Host) -> Result<Stats> {
    let mut c = Client::connect(h.socket())?;
    match c.call(Request::Stats)? {
        Response::Stats(s) => Ok(*s),
        other => bail!("unexpected answer: {other:?}"),
    }
}

/// The UDP datagram's length: over four times the TUN's MTU.
const DATAGRAM: usize = 6000;

/// Sends a [`DATAGRAM`]-byte datagram from `from` to a socket in `to` that sends it
/// back; checks it came back unchanged.
fn udp_echo(from: &str, to: &str) -> Result<()> {
    let addr: SocketAddr = (DB, 5202).into();
    let server = in_ns(to, || UdpSocket::bind(addr))??;
    server.set_read_timeout(Some(Duration::from_secs(10)))?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let mut buf = vec![0u8; DATAGRAM + 100];
        let (n, peer) = server.recv_from(&mut buf)?;
        server.send_to(&buf[..n], peer)?;
        Ok(())
    });
    let client = in_ns(from, || UdpSocket::bind((WEB, 0)))??;
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    let datagram: Vec<u8> = (0..DATAGRAM).map(|i| (i % 251) as u8).collect();
    client.send_to(&datagram, addr)?;
    let mut buf = vec![0u8; DATAGRAM + 100];
    let n = client
        .recv(&mut buf)
        .context("the datagram did not come back")?;
    echo.join()
        .map_err(|_| anyhow::anyhow!("the echo thread panicked"))??;
    if buf[..n] != datagram[..] {
        bail!("the datagram came back changed ({n} bytes)");
    }
    Ok(())
}

fn sas(h: &Host) -> Result<Vec<IkeSaView>> {
    let mut c = Client::connect(h.socket())?;
    match c.call(Request::SaList)? {
        Response::Sas { sas } => Ok(sas),
        other => bail!("unexpected answer: {other:?}"),
    }
}

fn tcp_transfer(from: &str, to: &str, bytes: usize) -> Result<(f64, usize)> {
    let addr: SocketAddr = (DB, 5201).into();
    let listener = in_ns(to, || TcpListener::bind(addr))??;
    let server = std::thread::spawn(move || -> std::io::Result<usize> {
        let (mut s, _) = listener.accept()?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0;
        loop {
            match s.read(&mut buf)? {
                0 => return Ok(got),
                n => got += n,
            }
        }
    });
    let start = Instant::now();
    let mut s = in_ns(from, || {
        TcpStream::connect_timeout(&addr, Duration::from_secs(10))
    })??;
    let chunk = vec![0x5au8; 1 << 16];
    let mut sent = 0;
    while sent < bytes {
        let n = chunk.len().min(bytes - sent);
        s.write_all(&chunk[..n])?;
        sent += n;
    }
    drop(s);
    let got = server
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))??;
    Ok((start.elapsed().as_secs_f64(), got))
}
