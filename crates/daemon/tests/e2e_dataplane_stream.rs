//! The batched data plane keeps a TCP byte stream exact: 48 MiB of a position-dependent
//! pattern from `a` to `b` through palisaded in tunnel mode (TSO aggregates from the
//! TUN split into segments, sendmmsg/recvmmsg batches, GRO-coalesced writes to the TUN)
//! arrive byte for byte, while a 4 MiB SA lifetime makes the SA pair be rekeyed a
//! dozen times mid-transfer, and no packet meets a side before its SA: each side
//! installs its SAs before its IKE message lets the peer use them (without that fence
//! this failed in 2 of 3 runs), and the responder of a rekey sends on the new pair only
//! once the peer does. (So small a lifetime is also reached in full now and then before
//! the rekey is done: those drops, `lifetime_expired`, are what a hard limit means. At
//! 1 MiB, 100-190 KB between soft and hard limit, a loaded CI machine reached it often
//! enough that whole pairs expired and were negotiated anew, with ESP in flight on them.)
//! Root only (network namespaces); skipped otherwise.

#[path = "../../../tests/support/netns.rs"]
mod netns;

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use common::daemon::{Daemon, ping};
use netns::{VethPair, root_or_skip};
use nix::sys::signal::Signal;

const LEN: usize = 48 << 20;

fn policy(me: IpAddr, peer: IpAddr) -> String {
    policy_with_lifetime(me, peer, 4096)
}

/// The policy with SAs of `kilobytes`.
fn policy_with_lifetime(me: IpAddr, peer: IpAddr, kilobytes: u32) -> String {
    format!(
        r#"
[policy]
name = "e2e-dataplane-stream"

[auth_sets.psk]
method = "preshared_key"
key = "e2e dataplane stream secret"

[ipsec_proposal_sets.gcm]
proposals = [{{ esp = "gcm_aes_128", lifetime_kilobytes = {kilobytes} }}]

[[rules]]
name = "peer"
local = "{me}"
remote = "{peer}"
action = "require"
mode = "tunnel"
tunnel = {{ local = "{me}", remote = "{peer}" }}
auth = "psk"
ipsec_proposals = "gcm"
"#
    )
}

/// The stream's byte at `i`: differs between neighbours and between 64 KiB chunks, so
/// a reordered, duplicated or shifted segment shows.
fn pattern(i: usize) -> u8 {
    ((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8
}

#[test]
fn tcp_stream_through_the_tunnel_arrives_exact_across_rekeys() {
    if !root_or_skip("tcp_stream_through_the_tunnel_arrives_exact_across_rekeys") {
        return;
    }
    stream("");
}

/// The same with each worker sending through a thread of its own.
#[test]
fn tcp_stream_with_sender_threads_arrives_exact_across_rekeys() {
    if !root_or_skip("tcp_stream_with_sender_threads_arrives_exact_across_rekeys") {
        return;
    }
    stream("[dataplane]\nsender_threads = true\n");
}

/// The same in ESP in UDP: segmented sends (UDP GSO), coalesced receives (UDP GRO).
#[test]
fn tcp_stream_in_udp_arrives_exact_across_rekeys() {
    if !root_or_skip("tcp_stream_in_udp_arrives_exact_across_rekeys") {
        return;
    }
    stream("[ike]\nforce_udp_encapsulation = true\n");
}

/// Daemons on both ends of `pair` with these policies and `settings`, the tunnel up (a
/// ping from a to b crossed it).
fn tunnel(pair: &VethPair, policy_a: &str, policy_b: &str, settings: &str) -> (Daemon, Daemon) {
    let a = Daemon::start_with(&pair.a, "a", policy_a, settings).expect("daemon a");
    let b = Daemon::start_with(&pair.b, "b", policy_b, settings).expect("daemon b");
    let out = ping(&pair.a, VethPair::ADDR_B.into(), 3);
    assert!(out.status.success(), "no tunnel:\n{}\n{}", a.log(), b.log());
    (a, b)
}

/// A 48 MiB stream from a to b, both daemons with `settings`, checked byte for byte.
fn stream(settings: &str) {
    let pair = VethPair::new().expect("namespaces");
    let (a_ip, b_ip) = (IpAddr::V4(VethPair::ADDR_A), IpAddr::V4(VethPair::ADDR_B));
    let (a, b) = tunnel(&pair, &policy(a_ip, b_ip), &policy(b_ip, a_ip), settings);

    let listen: SocketAddr = (VethPair::ADDR_B, 5202).into();
    let listener = pair
        .b
        .run(|| TcpListener::bind(listen))
        .expect("ns")
        .expect("bind");
    let server = std::thread::spawn(move || -> Result<usize, String> {
        let (mut s, _) = listener.accept().map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 65536];
        let mut at = 0;
        loop {
            let n = s
                .read(&mut buf)
                .map_err(|e| format!("read after {at}: {e}"))?;
            if n == 0 {
                return Ok(at);
            }
            if let Some(k) = (0..n).find(|&k| buf[k] != pattern(at + k)) {
                return Err(format!("byte {} differs", at + k));
            }
            at += n;
        }
    });
    let mut client = pair
        .a
        .run(|| TcpStream::connect_timeout(&listen, Duration::from_secs(10)))
        .expect("ns")
        .expect("connect");
    client
        .set_write_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut chunk = vec![0u8; 65536];
    let mut sent = 0;
    while sent < LEN {
        let n = chunk.len().min(LEN - sent);
        for (k, c) in chunk[..n].iter_mut().enumerate() {
            *c = pattern(sent + k);
        }
        client.write_all(&chunk[..n]).expect("write");
        sent += n;
    }
    drop(client);
    let got = server.join().expect("server");
    assert_eq!(
        got,
        Ok(LEN),
        "\n--- a ---\n{}\n--- b ---\n{}",
        a.log(),
        b.log()
    );

    // No packet reached a side before the SA it was sent on (in either direction: the
    // acknowledgements go on rekeyed SAs too).
    for (name, d) in [("a", &a), ("b", &b)] {
        let drops = d.stats().global_drops;
        assert_eq!(
            drops.get("unknown_spi").copied().unwrap_or(0),
            0,
            "{name} dropped ESP for SAs it did not hold yet: {drops:?}\n--- a ---\n{}\n--- b ---\n{}",
            a.log(),
            b.log()
        );
    }
    // The transfer outlived many SAs (one carries at most 4 MiB).
    let stats = b.stats();
    let sas = b.wait_for_sas("a CHILD_SA", |s| s.iter().any(|i| !i.child_sas.is_empty()));
    let current = sas
        .iter()
        .flat_map(|i| &i.child_sas)
        .map(|c| c.inbound.packets)
        .max()
        .unwrap_or(0);
    // ESP came raw or in UDP (datagrams on 4500, IKE's few among them).
    let received = stats.esp_rx + stats.udp_rx;
    assert!(
        received > 3 * current,
        "no rekey: {received} ESP packets in all, {current} on the current SA"
    );
}

/// UDP through the tunnel, many datagrams at once: batches that carry UDP are coalesced
/// into UDP segmentation writes to the TUN (sys/tun_gro.rs) where the kernel takes them.
/// Every datagram that arrives is whole and its own; at this pace, all arrive.
#[test]
fn udp_datagrams_cross_the_tunnel_whole() {
    if !root_or_skip("udp_datagrams_cross_the_tunnel_whole") {
        return;
    }
    const COUNT: usize = 3000;
    const SIZE: usize = 1200;
    let pair = VethPair::new().expect("namespaces");
    let (a_ip, b_ip) = (IpAddr::V4(VethPair::ADDR_A), IpAddr::V4(VethPair::ADDR_B));
    // The default lifetime: no hard expiry (and its drops) in the middle.
    let pa = policy_with_lifetime(a_ip, b_ip, 100_000);
    let pb = policy_with_lifetime(b_ip, a_ip, 100_000);
    let (a, b) = tunnel(&pair, &pa, &pb, "");

    let to: SocketAddr = (VethPair::ADDR_B, 5303).into();
    let rx = pair
        .b
        .run(|| -> std::io::Result<UdpSocket> {
            // A receive queue for the whole burst: losses there would be the test's own.
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
            s.set_recv_buffer_size(16 << 20)?;
            s.bind(&to.into())?;
            Ok(s.into())
        })
        .expect("ns")
        .expect("bind");
    rx.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let receiver = std::thread::spawn(move || {
        let mut seen = vec![false; COUNT];
        let mut buf = vec![0u8; 2048];
        while let Ok(n) = rx.recv(&mut buf) {
            assert_eq!(n, SIZE, "a datagram arrives whole");
            let i = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            assert!(i < COUNT, "datagram number {i}");
            assert!(
                buf[4..n]
                    .iter()
                    .enumerate()
                    .all(|(k, &x)| x == (i + k) as u8),
                "datagram {i} is its own"
            );
            seen[i] = true;
        }
        seen.iter().filter(|s| **s).count()
    });
    let tx = pair
        .a
        .run(|| UdpSocket::bind((VethPair::ADDR_A, 0)))
        .expect("ns")
        .expect("bind");
    let mut d = vec![0u8; SIZE];
    for i in 0..COUNT {
        d[..4].copy_from_slice(&(i as u32).to_be_bytes());
        for (k, x) in d[4..].iter_mut().enumerate() {
            *x = (i + k) as u8;
        }
        tx.send_to(&d, to).expect("send");
        if i % 50 == 49 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let got = receiver.join().expect("receiver");
    assert_eq!(
        got,
        COUNT,
        "\n{:?}\n{:?}\n--- a ---\n{}\n--- b ---\n{}",
        a.stats().global_drops,
        b.stats().global_drops,
        a.log(),
        b.log()
    );
}

/// The kernel's drops that no counter of palisaded's can see: with the daemon stopped
/// (SIGSTOP), datagrams routed into the TUN find its queue full and the kernel drops
/// them; resumed, the daemon reports them as `tun_queue` in its kernel drops, as
/// `palisade stats` and Prometheus show them.
#[test]
fn a_stalled_data_plane_shows_in_the_kernels_drops() {
    if !root_or_skip("a_stalled_data_plane_shows_in_the_kernels_drops") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (a_ip, b_ip) = (IpAddr::V4(VethPair::ADDR_A), IpAddr::V4(VethPair::ADDR_B));
    let (a, _b) = tunnel(&pair, &policy(a_ip, b_ip), &policy(b_ip, a_ip), "");
    let before = a.stats().kernel_drops;
    assert_eq!(before.get("tun_queue"), Some(&0), "{before:?}");
    assert_eq!(before.get("socket_buffer"), Some(&0), "{before:?}");

    let tx = pair
        .a
        .run(|| UdpSocket::bind((VethPair::ADDR_A, 0)))
        .expect("ns")
        .expect("bind");
    a.signal(Signal::SIGSTOP);
    // Far more than the TUN holds for a stopped reader: its ring, txqueuelen (500) long
    // by default; 6,000 sent leave 5,502 drops. (`signal` waits for every thread to
    // stop: before it did, a CI run found only 729 drops of 3,000, read meanwhile.)
    let mut sent = 0;
    for _ in 0..6000 {
        if tx.send_to(&[7u8; 200], (VethPair::ADDR_B, 5304)).is_ok() {
            sent += 1;
        }
    }
    a.signal(Signal::SIGCONT);
    let after = a.stats().kernel_drops;
    let dropped = after.get("tun_queue").copied().unwrap_or(0);
    assert!(
        dropped >= 1000 && dropped <= sent,
        "{sent} sent, kernel drops {after:?}"
    );
}
