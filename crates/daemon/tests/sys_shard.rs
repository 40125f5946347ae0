//! Kernel steering of a peer's traffic to the data-plane worker that owns it: with one
//! raw ESP socket per worker (`EspSocket::open_shard`, a socket filter each) and one
//! NAT-T socket per worker (`IkeSocket::bind_sharded`, one reuseport group with a
//! program), every packet from a peer reaches exactly the socket of worker
//! `shard_of(peer, workers)`, and no other, for IPv4 and IPv6 and 2 or 3 workers.
//!
//! The sender `a` has several source addresses (on its loopback; `b` routes them back
//! through the veth) whose last words cover every worker; `b` holds the sockets under
//! test. Each packet carries its own number, so that a packet at the wrong socket, a
//! copy at a second socket, or a missing packet each fail the test.

#[path = "../../../tests/support/netns.rs"]
mod netns;
mod sys_common;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use netns::VethPair;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use palisaded::sys::{EspSocket, FWMARK, IkeSocket, shard_of};
use sys_common::{PROTO_ESP, V6_A, V6_B, enable_ipv6, ipv4_esp, ipv6};

const SPI: u32 = 0x5041_0001;
/// Packets sent from each source address.
const PER_SOURCE: u32 = 3;
const WAIT: Duration = Duration::from_secs(3);

/// The pair with extra source addresses on `a`'s loopback (IPv6 turned on when `v6`),
/// routed from `b` through `a`; returns them with `a`'s veth address first.
fn pair_with_sources(v6: bool) -> (VethPair, Vec<IpAddr>) {
    let pair = VethPair::new().expect("namespaces");
    let mut sources = Vec::new();
    if v6 {
        enable_ipv6(&pair.a, V6_A);
        enable_ipv6(&pair.b, V6_B);
        sources.push(IpAddr::V6(V6_A));
        for k in 1..=6u16 {
            let addr = Ipv6Addr::new(0xfd00, 0x5041, 1, 0, 0, 0, 0x0a00, k);
            pair.a
                .ip(&[
                    "-6",
                    "addr",
                    "add",
                    &format!("{addr}/128"),
                    "dev",
                    "lo",
                    "nodad",
                ])
                .expect("source address");
            sources.push(IpAddr::V6(addr));
        }
        pair.b
            .ip(&[
                "-6",
                "route",
                "add",
                "fd00:5041:1::/64",
                "via",
                &V6_A.to_string(),
            ])
            .expect("route back");
    } else {
        sources.push(IpAddr::V4(VethPair::ADDR_A));
        for k in 1..=6u8 {
            let addr = Ipv4Addr::new(10, 200, 1, k);
            pair.a
                .ip(&["addr", "add", &format!("{addr}/32"), "dev", "lo"])
                .expect("source address");
            sources.push(IpAddr::V4(addr));
        }
        pair.b
            .ip(&["route", "add", "10.200.1.0/24", "via", "10.200.0.1"])
            .expect("route back");
    }
    (pair, sources)
}

/// What was sent: packet `id` from `src`, owned by worker `owner`.
struct Sent {
    id: u32,
    src: IpAddr,
    owner: usize,
}

/// The packets `PER_SOURCE` from each source, numbered, with their owners.
fn plan(sources: &[IpAddr], workers: usize) -> Vec<Sent> {
    let mut sent = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        for n in 0..PER_SOURCE {
            sent.push(Sent {
                id: 1 + i as u32 * PER_SOURCE + n,
                src: *src,
                owner: shard_of(*src, workers),
            });
        }
    }
    let mut owners: Vec<usize> = sent.iter().map(|s| s.owner).collect();
    owners.sort_unstable();
    owners.dedup();
    assert_eq!(
        owners,
        (0..workers).collect::<Vec<_>>(),
        "the sources cover every worker"
    );
    sent
}

/// Reads every socket until `want` packets of the test came in (or `WAIT` passed), then
/// once more without waiting, so that a copy at a second socket is seen too; returns
/// what each socket got, as (packet number, source). `read` gives `None` for a packet
/// that is not the test's and `WouldBlock` when the socket is empty.
fn collect<S: AsFd>(
    sockets: &[S],
    want: usize,
    read: impl Fn(&S, &mut [u8]) -> io::Result<Option<(u32, IpAddr)>>,
) -> Vec<Vec<(u32, IpAddr)>> {
    let mut got = vec![Vec::new(); sockets.len()];
    let mut buf = vec![0u8; 2048];
    let mut sweep = |got: &mut Vec<Vec<(u32, IpAddr)>>| {
        for (i, s) in sockets.iter().enumerate() {
            loop {
                match read(s, &mut buf) {
                    Ok(Some(p)) => got[i].push(p),
                    Ok(None) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("socket {i}: {e}"),
                }
            }
        }
    };
    let deadline = Instant::now() + WAIT;
    while got.iter().map(Vec::len).sum::<usize>() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let mut fds: Vec<PollFd<'_>> = sockets
            .iter()
            .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN))
            .collect();
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => break,
            Ok(_) => sweep(&mut got),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => panic!("poll: {e}"),
        }
    }
    sweep(&mut got);
    got
}

/// Each packet sent arrived once, at its owner's socket, from its source; nothing else
/// arrived.
fn check(kind: &str, workers: usize, sent: &[Sent], got: &[Vec<(u32, IpAddr)>]) {
    assert_eq!(got.len(), workers, "{kind}: one socket per worker");
    for s in sent {
        let at: Vec<usize> = (0..workers)
            .flat_map(|w| got[w].iter().filter(|(id, _)| *id == s.id).map(move |_| w))
            .collect();
        assert_eq!(
            at,
            vec![s.owner],
            "{kind}, {workers} workers: packet {} from {} arrives at worker {}'s socket only",
            s.id,
            s.src,
            s.owner
        );
    }
    for (w, packets) in got.iter().enumerate() {
        for (id, src) in packets {
            let s = sent
                .iter()
                .find(|s| s.id == *id)
                .unwrap_or_else(|| panic!("{kind}: packet {id} at worker {w} was never sent"));
            assert_eq!(*src, s.src, "{kind}: packet {id} keeps its source");
        }
    }
}

/// An ESP packet's number (its sequence number) and source, from what
/// `EspSocket::recv` returns (the IP header, IPv6 rebuilt, then ESP).
fn esp_fields(p: &[u8]) -> Option<(u32, IpAddr)> {
    let (src, esp): (IpAddr, &[u8]) = match p.first()? >> 4 {
        4 => {
            let o: [u8; 4] = p.get(12..16)?.try_into().ok()?;
            (
                Ipv4Addr::from(o).into(),
                p.get(usize::from(p[0] & 0xf) * 4..)?,
            )
        }
        6 => {
            let o: [u8; 16] = p.get(8..24)?.try_into().ok()?;
            (Ipv6Addr::from(o).into(), p.get(40..)?)
        }
        _ => return None,
    };
    let spi = u32::from_be_bytes(esp.get(0..4)?.try_into().ok()?);
    let seq = u32::from_be_bytes(esp.get(4..8)?.try_into().ok()?);
    (spi == SPI).then_some((seq, src))
}

fn esp_steering(v6: bool) {
    let (pair, sources) = pair_with_sources(v6);
    let tx = pair
        .a
        .run(|| {
            if v6 {
                EspSocket::open_v6(FWMARK)
            } else {
                EspSocket::open(FWMARK)
            }
        })
        .expect("setns")
        .expect("open the sender");
    for workers in [2usize, 3] {
        let rx: Vec<EspSocket> = (0..workers)
            .map(|shard| {
                let s = pair
                    .b
                    .run(|| {
                        if v6 {
                            EspSocket::open_v6_shard(FWMARK, shard, workers)
                        } else {
                            EspSocket::open_shard(FWMARK, shard, workers)
                        }
                    })
                    .expect("setns")
                    .expect("open a worker's socket");
                s.set_nonblocking(true).expect("nonblocking");
                s
            })
            .collect();
        let sent = plan(&sources, workers);
        for s in &sent {
            let payload = [s.id as u8; 40];
            let packet = match s.src {
                IpAddr::V4(src) => ipv4_esp(src, VethPair::ADDR_B, SPI, s.id, &payload),
                IpAddr::V6(src) => {
                    let mut esp = SPI.to_be_bytes().to_vec();
                    esp.extend_from_slice(&s.id.to_be_bytes());
                    esp.extend_from_slice(&payload);
                    ipv6(src, V6_B, PROTO_ESP, &esp)
                }
            };
            tx.send(&packet).expect("send ESP");
        }
        let got = collect(&rx, sent.len(), |s, buf| {
            s.recv(buf).map(|n| esp_fields(&buf[..n]))
        });
        let kind = if v6 { "ESP over IPv6" } else { "ESP over IPv4" };
        check(kind, workers, &sent, &got);
    }
}

/// Binds the group on 4500 in `ns`. The previous round's group may hold the port a
/// moment longer than its `drop` (seen once in 10 runs; most likely another test's `ip`
/// child, spawned by this process, holding copies of every descriptor until it execs). The new group's first socket carries
/// its program (hence its own group) before `bind`, so it refuses to share the port with
/// that old group (`EADDRINUSE`) rather than join it: retried until a deadline.
fn bind_group(ns: &netns::Netns, v6: bool, workers: usize) -> Vec<IkeSocket> {
    let deadline = Instant::now() + WAIT;
    loop {
        let bound = ns
            .run(|| {
                if v6 {
                    IkeSocket::bind_v6_sharded(4500, FWMARK, workers)
                } else {
                    IkeSocket::bind_sharded(4500, FWMARK, workers)
                }
            })
            .expect("setns");
        match bound {
            Ok(group) => return group,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("bind the group of {workers}: {e}"),
        }
    }
}

fn natt_steering(v6: bool) {
    let (pair, sources) = pair_with_sources(v6);
    let to: SocketAddr = if v6 {
        (V6_B, 4500).into()
    } else {
        (VethPair::ADDR_B, 4500).into()
    };
    let senders: Vec<std::net::UdpSocket> = sources
        .iter()
        .map(|src| pair.a.udp_socket((*src, 0).into()).expect("sender"))
        .collect();
    for workers in [2usize, 3] {
        let rx = bind_group(&pair.b, v6, workers);
        assert_eq!(rx.len(), workers, "a socket per worker");
        for s in &rx {
            assert_eq!(s.port(), 4500);
            s.set_nonblocking(true).expect("nonblocking");
        }
        let sent = plan(&sources, workers);
        for s in &sent {
            let i = sources.iter().position(|a| *a == s.src).expect("a source");
            let mut data = s.id.to_be_bytes().to_vec();
            data.extend_from_slice(b"palisade shard");
            senders[i].send_to(&data, to).expect("send UDP");
        }
        let got = collect(&rx, sent.len(), |s, buf| {
            s.recv(buf).map(|(n, remote, _)| {
                let id = buf.get(..4).filter(|_| n >= 4)?;
                let id = u32::from_be_bytes(id.try_into().ok()?);
                Some((id, remote.ip()))
            })
        });
        let kind = if v6 {
            "NAT-T over IPv6"
        } else {
            "NAT-T over IPv4"
        };
        check(kind, workers, &sent, &got);
        // The group goes with its sockets: the next round binds 4500 anew.
        drop(rx);
    }
}

#[test]
fn sys_shard_esp_v4_reaches_only_the_owners_socket() {
    if !netns::root_or_skip("sys_shard_esp_v4_reaches_only_the_owners_socket") {
        return;
    }
    esp_steering(false);
}

#[test]
fn sys_shard_esp_v6_reaches_only_the_owners_socket() {
    if !netns::root_or_skip("sys_shard_esp_v6_reaches_only_the_owners_socket") {
        return;
    }
    esp_steering(true);
}

#[test]
fn sys_shard_natt_v4_reaches_only_the_owners_socket() {
    if !netns::root_or_skip("sys_shard_natt_v4_reaches_only_the_owners_socket") {
        return;
    }
    natt_steering(false);
}

#[test]
fn sys_shard_natt_v6_reaches_only_the_owners_socket() {
    if !netns::root_or_skip("sys_shard_natt_v6_reaches_only_the_owners_socket") {
        return;
    }
    natt_steering(true);
}

/// One worker: no filter, no group; a shard beyond the workers is refused; port 0 gives
/// every socket of a group the same kernel-chosen port.
#[test]
fn sys_shard_one_worker_is_the_plain_socket_and_port_0_is_shared() {
    if !netns::root_or_skip("sys_shard_one_worker_is_the_plain_socket_and_port_0_is_shared") {
        return;
    }
    let (pair, sources) = pair_with_sources(false);
    let rx = pair
        .b
        .run(|| EspSocket::open_shard(FWMARK, 0, 1))
        .expect("setns")
        .expect("open");
    rx.set_nonblocking(true).expect("nonblocking");
    let refused = pair
        .b
        .run(|| EspSocket::open_shard(FWMARK, 2, 2))
        .expect("setns");
    assert_eq!(
        refused.expect_err("worker 2 of 2").kind(),
        io::ErrorKind::InvalidInput
    );
    let tx = pair
        .a
        .run(|| EspSocket::open(FWMARK))
        .expect("setns")
        .expect("open");
    let sent = plan(&sources, 1);
    for s in &sent {
        let IpAddr::V4(src) = s.src else {
            unreachable!("IPv4 sources")
        };
        tx.send(&ipv4_esp(src, VethPair::ADDR_B, SPI, s.id, &[1; 16]))
            .expect("send");
    }
    let got = collect(std::slice::from_ref(&rx), sent.len(), |s, buf| {
        s.recv(buf).map(|n| esp_fields(&buf[..n]))
    });
    check("ESP, one worker", 1, &sent, &got);

    let one = pair
        .b
        .run(|| IkeSocket::bind_sharded(0, FWMARK, 1))
        .expect("setns")
        .expect("bind");
    assert_eq!(one.len(), 1);
    let group = pair
        .b
        .run(|| IkeSocket::bind_sharded(0, FWMARK, 3))
        .expect("setns")
        .expect("bind");
    assert_eq!(group.len(), 3);
    assert_ne!(group[0].port(), 0, "the kernel chose a port");
    assert!(group.iter().all(|s| s.port() == group[0].port()));
}

/// Sets the flag when dropped, also by a panic: stops the sender thread of a test that
/// fails, so that its scope can end.
struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A raw socket receives from `socket(2)` on, before its filter exists: opened while ESP
/// from both workers' peers streams in, a worker's socket still hands over only its
/// worker's packets from the first read on (what came before the filter was drained).
#[test]
fn sys_shard_esp_opened_under_traffic_reads_only_its_workers_packets() {
    if !netns::root_or_skip("sys_shard_esp_opened_under_traffic_reads_only_its_workers_packets") {
        return;
    }
    const ROUNDS: usize = 20;
    const READS: usize = 50;
    let (pair, sources) = pair_with_sources(false);
    let tx = pair
        .a
        .run(|| EspSocket::open(FWMARK))
        .expect("setns")
        .expect("open the sender");
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        scope.spawn(|| {
            let mut seq = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for src in &sources {
                    let IpAddr::V4(src) = *src else {
                        unreachable!("IPv4 sources")
                    };
                    seq = seq.wrapping_add(1);
                    // A full queue or device refuses some: the stream only has to flow.
                    let _ = tx.send(&ipv4_esp(src, VethPair::ADDR_B, SPI, seq, &[0; 32]));
                }
            }
        });
        let mut buf = vec![0u8; 2048];
        for round in 0..ROUNDS {
            let shard = round % 2;
            let rx = pair
                .b
                .run(|| EspSocket::open_shard(FWMARK, shard, 2))
                .expect("setns")
                .expect("open a worker's socket");
            rx.set_nonblocking(true).expect("nonblocking");
            let deadline = Instant::now() + WAIT;
            let mut read = 0;
            while read < READS && sys_common::readable_before(&rx, deadline) {
                match rx.recv(&mut buf) {
                    Ok(n) => {
                        let Some((_, src)) = esp_fields(&buf[..n]) else {
                            continue;
                        };
                        assert_eq!(
                            shard_of(src, 2),
                            shard,
                            "round {round}: read {read} of worker {shard}'s new socket is from {src}"
                        );
                        read += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("recv: {e}"),
                }
            }
            assert_eq!(read, READS, "round {round}: the stream reaches the socket");
        }
    });
}
