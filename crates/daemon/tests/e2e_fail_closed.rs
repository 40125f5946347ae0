//! Fail closed, end to end: when palisaded on a host dies (SIGKILL) or is stopped
//! (SIGTERM), traffic that policy protects is dropped, never sent or accepted in clear,
//! and a restarted daemon brings it back over new SAs. Two hosts in transport mode.
//! Root only (network namespaces); skipped otherwise.

#[path = "../../../tests/support/netns.rs"]
mod netns;

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::daemon::{
    Capture, Daemon, not_ipsec_between, ping, require_policy, tcp_transfer, veth_of,
};
use netns::{Netns, VethPair, root_or_skip};

/// Everything between the two hosts protected.
fn policy(me: IpAddr, peer: IpAddr) -> String {
    require_policy("e2e-fail-closed", me, peer, "")
}

fn addrs() -> (IpAddr, IpAddr) {
    (IpAddr::V4(VethPair::ADDR_A), IpAddr::V4(VethPair::ADDR_B))
}

/// A TCP stream from `a` to `b` that writes until told to stop; `received` counts what
/// `b` read.
struct Stream {
    received: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    client: Option<JoinHandle<()>>,
    server: Option<JoinHandle<()>>,
}

impl Stream {
    fn start(pair: &VethPair, port: u16) -> Stream {
        let to: SocketAddr = (VethPair::ADDR_B, port).into();
        let listener = pair
            .b
            .run(|| TcpListener::bind(to))
            .expect("ns")
            .expect("bind");
        let received = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (received.clone(), stop.clone());
        let server = std::thread::spawn(move || {
            let Ok((mut c, _)) = listener.accept() else {
                return;
            };
            // Short timeouts, so that the thread notices `stop` during a stall.
            let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
            let mut buf = vec![0u8; 65536];
            while !s.load(Ordering::Relaxed) {
                match c.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        r.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => return,
                }
            }
        });
        let mut client = pair
            .a
            .run(|| TcpStream::connect_timeout(&to, Duration::from_secs(10)))
            .expect("ns")
            .expect("connect");
        let s = stop.clone();
        let client = std::thread::spawn(move || {
            let _ = client.set_write_timeout(Some(Duration::from_millis(200)));
            let chunk = vec![0x5au8; 16384];
            while !s.load(Ordering::Relaxed) {
                match client.write(&chunk) {
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => return,
                }
            }
        });
        Stream {
            received,
            stop,
            client: Some(client),
            server: Some(server),
        }
    }

    fn received(&self) -> usize {
        self.received.load(Ordering::Relaxed)
    }

    /// Waits until `b` has read at least `n` bytes.
    fn wait_for(&self, n: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.received() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Waits until nothing more arrives for `quiet`; the count then.
    fn settle(&self, quiet: Duration, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        let mut last = self.received();
        let mut since = Instant::now();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            let now = self.received();
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                break;
            }
        }
        last
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in [self.client.take(), self.server.take()]
            .into_iter()
            .flatten()
        {
            let _ = t.join();
        }
    }
}

/// Pings until one echo is answered, for at most `within`.
fn ping_within(ns: &Netns, to: IpAddr, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if ping(ns, to, 1).status.success() {
            return Some(start.elapsed());
        }
    }
    None
}

/// A datagram from `b` to `a`'s `port` sent in clear: with palisaded's mark, so `b`'s
/// own policy routing does not seal it (as an attacker's or a misconfigured peer's
/// packet would arrive).
fn send_clear_udp(pair: &VethPair, port: u16) {
    let (a_ip, b_ip) = addrs();
    pair.b
        .run(|| -> std::io::Result<()> {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
            s.set_mark(palisaded::sys::FWMARK)?;
            s.bind(&SocketAddr::new(b_ip, 0).into())?;
            for _ in 0..3 {
                s.send_to(b"clear", &SocketAddr::new(a_ip, port).into())?;
            }
            Ok(())
        })
        .expect("ns")
        .expect("send clear UDP");
}

/// Whether `sock` (inside `a`) receives anything within `within`.
fn receives(sock: &UdpSocket, within: Duration) -> bool {
    sock.set_read_timeout(Some(within)).expect("timeout");
    let mut buf = [0u8; 64];
    sock.recv_from(&mut buf).is_ok()
}

#[test]
fn killed_daemon_leaks_nothing_and_a_restart_recovers() {
    if !root_or_skip("killed_daemon_leaks_nothing_and_a_restart_recovers") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (a_ip, b_ip) = addrs();
    let mut a = Daemon::start(&pair.a, "a", &policy(a_ip, b_ip)).expect("daemon a");
    let b = Daemon::start(&pair.b, "b", &policy(b_ip, a_ip)).expect("daemon b");
    assert!(
        ping(&pair.a, b_ip, 2).status.success(),
        "{}\n{}",
        a.log(),
        b.log()
    );
    let old_sas = b.wait_for_sas("b's first SA", |s| {
        s.len() == 1 && s[0].child_sas.len() == 1
    });
    let old_inbound = old_sas[0].child_sas[0].inbound_spi;
    let capture =
        Capture::start(&pair.a, &veth_of(&pair.a), b.dir().join("wire.pcap")).expect("tcpdump");

    let stream = Stream::start(&pair, 5301);
    assert!(
        stream.wait_for(1 << 20, Duration::from_secs(15)),
        "the transfer did not start: {} bytes\n{}\n{}",
        stream.received(),
        a.log(),
        b.log()
    );
    a.kill9();
    // What was sealed before the kill may still arrive; then nothing more does.
    let stalled_at = stream.settle(Duration::from_secs(1), Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        stream.received(),
        stalled_at,
        "data reached b while a's daemon was dead"
    );
    // Nor does clear text come in: nothing answers the NFQUEUE, so the kernel drops it.
    let udp = pair
        .a
        .udp_socket((VethPair::ADDR_A, 5302).into())
        .expect("udp");
    send_clear_udp(&pair, 5302);
    assert!(
        !receives(&udp, Duration::from_secs(1)),
        "a clear datagram from the protected peer was delivered while the daemon was dead"
    );

    a.spawn(&pair.a).expect("restart a");
    let took = ping_within(&pair.a, b_ip, Duration::from_secs(20));
    assert!(
        took.is_some(),
        "no echo within 20 s of the restart\n--- a ---\n{}\n--- b ---\n{}",
        a.log(),
        b.log()
    );
    let moved = tcp_transfer(&pair.a, &pair.b, (VethPair::ADDR_B, 5303).into(), 1 << 20)
        .unwrap_or_else(|e| panic!("TCP after the restart: {e}\n{}\n{}", a.log(), b.log()));
    assert_eq!(moved, 1 << 20);
    // The stream from before the kill: TCP retransmits into the new SA (not asserted:
    // its backoff may be long by now; reported for the record).
    let resumed = stream.received() > stalled_at;
    eprintln!("old stream resumed after the restart: {resumed}");
    drop(stream);

    let lines = capture.finish();
    let probe = format!("> {a_ip}.5302: UDP");
    assert!(
        lines.iter().any(|l| l.contains(&probe)),
        "the clear datagrams from b were not on the wire (the inbound check proves nothing)"
    );
    let clear: Vec<String> = not_ipsec_between(&lines, a_ip, b_ip)
        .into_iter()
        .filter(|l| !l.contains(&probe))
        .collect();
    assert!(clear.is_empty(), "clear text between the hosts: {clear:#?}");
    assert!(lines.iter().any(|l| l.contains(": ESP(")), "no ESP seen");

    // a has only the new IKE SA; b carries traffic on the new CHILD_SA, not the stale one.
    let a_sas = a.wait_for_sas("a's new SA", |s| s.len() == 1 && s[0].child_sas.len() == 1);
    let new_out = a_sas[0].child_sas[0].outbound_spi;
    assert_ne!(new_out, old_inbound, "a reused the old SPI?");
    let b_sas = b.sas();
    let b_new = b_sas
        .iter()
        .flat_map(|s| &s.child_sas)
        .find(|c| c.inbound_spi == new_out)
        .unwrap_or_else(|| panic!("b has no CHILD_SA for a's new SA: {b_sas:#?}"));
    assert!(
        b_new.outbound.packets > 0 && b_new.inbound.packets > 0,
        "{b_new:#?}"
    );
}

#[test]
fn stopped_daemon_leaves_protected_traffic_blocked() {
    if !root_or_skip("stopped_daemon_leaves_protected_traffic_blocked") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (a_ip, b_ip) = addrs();
    let mut a = Daemon::start(&pair.a, "a", &policy(a_ip, b_ip)).expect("daemon a");
    let b = Daemon::start(&pair.b, "b", &policy(b_ip, a_ip)).expect("daemon b");
    assert!(
        ping(&pair.a, b_ip, 2).status.success(),
        "{}\n{}",
        a.log(),
        b.log()
    );
    a.stop();
    assert!(
        a.log().contains("the firewall rules stay"),
        "a did not stop cleanly:\n{}",
        a.log()
    );
    let capture =
        Capture::start(&pair.a, &veth_of(&pair.a), b.dir().join("wire.pcap")).expect("tcpdump");

    // Outbound from a: ICMP, TCP and UDP to b all fail, and none leaves in clear.
    assert!(
        !ping(&pair.a, b_ip, 2).status.success(),
        "ping crossed with a's daemon stopped"
    );
    let tcp = pair
        .a
        .run(|| {
            TcpStream::connect_timeout(&(VethPair::ADDR_B, 5401).into(), Duration::from_secs(2))
        })
        .expect("ns");
    assert!(tcp.is_err(), "TCP connected with a's daemon stopped");
    let _ = pair
        .a
        .run(|| {
            UdpSocket::bind((VethPair::ADDR_A, 0))
                .and_then(|s| s.send_to(b"clear?", (VethPair::ADDR_B, 5402)))
        })
        .expect("ns");
    // Inbound to a: a clear datagram from b is not delivered.
    let udp = pair
        .a
        .udp_socket((VethPair::ADDR_A, 5403).into())
        .expect("udp");
    send_clear_udp(&pair, 5403);
    assert!(
        !receives(&udp, Duration::from_secs(1)),
        "a clear datagram from the protected peer was delivered with a's daemon stopped"
    );
    // b's own traffic to a is protected by b, which finds no IKE peer: nothing in clear.
    assert!(!ping(&pair.b, a_ip, 1).status.success(), "b reached a");

    let lines = capture.finish();
    let from_a: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(&format!("IP {a_ip}")) && l.contains(&format!("> {b_ip}")))
        .collect();
    assert!(
        from_a.is_empty(),
        "a sent to b with its daemon stopped: {from_a:#?}"
    );
    let probe = format!("> {a_ip}.5403: UDP");
    assert!(
        lines.iter().any(|l| l.contains(&probe)),
        "the clear datagrams from b were not on the wire (the inbound check proves nothing): {lines:#?}"
    );
    let clear: Vec<String> = not_ipsec_between(&lines, a_ip, b_ip)
        .into_iter()
        .filter(|l| !l.contains(&probe))
        .collect();
    assert!(clear.is_empty(), "clear text between the hosts: {clear:#?}");
}

/// b speaks first after a's daemon restarted: b still holds the SAs a lost with its
/// daemon, and keeps sealing with them; a drops what arrives (unknown SPI). a, seeing ESP
/// from a peer its policy names and with which it holds no pair, negotiates anew; its
/// IKE_AUTH carries INITIAL_CONTACT (RFC 7296 §2.4), so b drops the stale SAs and sends
/// on the new pair.
#[test]
fn peer_with_stale_sas_reaches_a_restarted_daemon() {
    if !root_or_skip("peer_with_stale_sas_reaches_a_restarted_daemon") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (a_ip, b_ip) = addrs();
    let mut a = Daemon::start(&pair.a, "a", &policy(a_ip, b_ip)).expect("daemon a");
    let b = Daemon::start(&pair.b, "b", &policy(b_ip, a_ip)).expect("daemon b");
    assert!(
        ping(&pair.a, b_ip, 2).status.success(),
        "{}\n{}",
        a.log(),
        b.log()
    );
    let stale = b.wait_for_sas("b's SA", |s| s.len() == 1 && s[0].child_sas.len() == 1)[0].id;
    a.kill9();
    a.spawn(&pair.a).expect("restart a");
    let took = ping_within(&pair.b, a_ip, Duration::from_secs(30));
    assert!(
        took.is_some(),
        "b did not reach a within 30 s of a's restart; b's SAs: {:#?}\n--- a ---\n{}\n--- b ---\n{}",
        b.sas(),
        a.log(),
        b.log()
    );
    b.wait_for_sas("the stale IKE SA gone from b", |s| {
        s.len() == 1 && s[0].id != stale
    });
}
