//! Coalesced TUN writes on a TUN with offloads, against the kernel: a TCP handshake made
//! by hand through the device, then one batch of data segments written with
//! `Tun::send_batch`, which coalesces them into one GSO aggregate; a listener in the
//! namespace must receive every byte. And a batch of UDP datagrams (which takes tun-rs's
//! path): a socket in the namespace must receive each one.

#[path = "../../../tests/support/netns.rs"]
mod netns;
mod sys_common;

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use palisaded::sys::Tun;
use palisaded::sys::TunGro;
use palisaded::sys::tun::{IDEAL_BATCH_SIZE, VIRTIO_NET_HDR_LEN};
use sys_common::{checksum, ipv4, readable_before, tun_in_namespace};

const TUN_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 5);
const PORT: u16 = 5201;
const PEER_PORT: u16 = 40_000;
const PROTO_TCP: u8 = 6;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const MSS: usize = 1000;

/// An IPv4 TCP segment from the peer to the listener (DF set, as TCP sends).
fn segment(seq: u32, ack: u32, flags: u8, id: u16, data: &[u8]) -> Vec<u8> {
    let mut tcp = Vec::with_capacity(20 + data.len());
    tcp.extend_from_slice(&PEER_PORT.to_be_bytes());
    tcp.extend_from_slice(&PORT.to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&ack.to_be_bytes());
    tcp.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    tcp.extend_from_slice(data);
    let mut pseudo = Vec::with_capacity(12 + tcp.len());
    pseudo.extend_from_slice(&PEER.octets());
    pseudo.extend_from_slice(&TUN_ADDR.octets());
    pseudo.extend_from_slice(&[0, PROTO_TCP]);
    pseudo.extend_from_slice(&u16::try_from(tcp.len()).expect("small").to_be_bytes());
    pseudo.extend_from_slice(&tcp);
    let sum = checksum(&pseudo);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    let mut p = ipv4(PEER, TUN_ADDR, PROTO_TCP, &tcp);
    // DF and the IP id, then the header checksum again.
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6] = 0x40;
    p[10..12].fill(0);
    let sum = checksum(&p[..20]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p
}

/// A TUN write buffer with room for a 64 KiB aggregate, as the data plane's.
fn buffer(packet: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(VIRTIO_NET_HDR_LEN + 65_535 + 1500);
    b.resize(VIRTIO_NET_HDR_LEN, 0);
    b.extend_from_slice(packet);
    b
}

/// The listener's SYN-ACK, read from the TUN: its sequence number and window.
fn syn_ack(tun: &Tun) -> Option<(u32, u16)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut scratch = vec![0u8; VIRTIO_NET_HDR_LEN + 65_535];
    let mut bufs = vec![vec![0u8; 1500]; IDEAL_BATCH_SIZE];
    let mut sizes = vec![0usize; IDEAL_BATCH_SIZE];
    while readable_before(tun, deadline) {
        let n = match tun.recv_batch(&mut scratch, &mut bufs, &mut sizes, 0) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("TUN read: {e}"),
        };
        for (b, &len) in bufs.iter().zip(&sizes).take(n) {
            let p = &b[..len];
            if len >= 40
                && p[0] == 0x45
                && p[9] == PROTO_TCP
                && p[20..22] == PORT.to_be_bytes()
                && p[33] == SYN | ACK
            {
                let seq = u32::from_be_bytes([p[24], p[25], p[26], p[27]]);
                return Some((seq, u16::from_be_bytes([p[34], p[35]])));
            }
        }
    }
    None
}

#[test]
fn sys_tun_gro_aggregate_is_delivered_to_a_tcp_socket() {
    if !netns::root_or_skip("sys_tun_gro_aggregate_is_delivered_to_a_tcp_socket") {
        return;
    }
    let pair = netns::VethPair::new().expect("namespaces");
    let tun = tun_in_namespace(&pair, true);
    let listener = pair
        .a
        .run(|| TcpListener::bind((TUN_ADDR, PORT)))
        .expect("setns")
        .expect("listen");
    let mut gro = TunGro::new();
    let offset = VIRTIO_NET_HDR_LEN;

    let isn = 0x1000_0000u32;
    let mut syn = vec![buffer(&segment(isn, 0, SYN, 1, &[]))];
    tun.send_batch(&mut gro, &mut syn, offset).expect("SYN");
    let (server_isn, window) = syn_ack(&tun).expect("SYN-ACK from the listener");

    // As much as the window takes (no window scaling: no options), at most 40 segments.
    let segments = (usize::from(window) / MSS).min(40);
    assert!(segments >= 8, "window {window}");
    let data: Vec<u8> = (0..segments * MSS).map(|i| (i * 7 % 251) as u8).collect();
    let mut bufs: Vec<Vec<u8>> = data
        .chunks(MSS)
        .enumerate()
        .map(|(k, chunk)| {
            let seq = isn + 1 + (k * MSS) as u32;
            let flags = if k + 1 == segments { ACK | PSH } else { ACK };
            buffer(&segment(seq, server_isn + 1, flags, 2 + k as u16, chunk))
        })
        .collect();
    let written = tun.send_batch(&mut gro, &mut bufs, offset).expect("data");
    // One write: the virtio-net header and one aggregate of every segment.
    assert_eq!(written, VIRTIO_NET_HDR_LEN + 40 + data.len());

    listener.set_nonblocking(false).expect("blocking");
    let (mut conn, from) = listener.accept().expect("accept");
    assert_eq!(from, (PEER, PEER_PORT).into());
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut got = vec![0u8; data.len()];
    conn.read_exact(&mut got).expect("every byte delivered");
    assert!(got == data, "the bytes delivered are the bytes sent");
}

/// An IPv4 UDP datagram from the peer to `port` on the TUN's address, checksummed.
fn datagram(port: u16, id: u16, data: &[u8]) -> Vec<u8> {
    const PROTO_UDP: u8 = 17;
    let len = u16::try_from(8 + data.len()).expect("small");
    let mut udp = Vec::with_capacity(8 + data.len());
    udp.extend_from_slice(&PEER_PORT.to_be_bytes());
    udp.extend_from_slice(&port.to_be_bytes());
    udp.extend_from_slice(&len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(data);
    let mut pseudo = Vec::with_capacity(12 + udp.len());
    pseudo.extend_from_slice(&PEER.octets());
    pseudo.extend_from_slice(&TUN_ADDR.octets());
    pseudo.extend_from_slice(&[0, PROTO_UDP]);
    pseudo.extend_from_slice(&len.to_be_bytes());
    pseudo.extend_from_slice(&udp);
    let sum = checksum(&pseudo);
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    let mut p = ipv4(PEER, TUN_ADDR, PROTO_UDP, &udp);
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[10..12].fill(0);
    let sum = checksum(&p[..20]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p
}

#[test]
fn sys_tun_gro_udp_batch_is_delivered_datagram_by_datagram() {
    if !netns::root_or_skip("sys_tun_gro_udp_batch_is_delivered_datagram_by_datagram") {
        return;
    }
    let pair = netns::VethPair::new().expect("namespaces");
    let tun = tun_in_namespace(&pair, true);
    let socket = pair
        .a
        .run(|| UdpSocket::bind((TUN_ADDR, 5353)))
        .expect("setns")
        .expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // 20 datagrams of one flow, the same size but the last: what UDP coalescing takes.
    let sent: Vec<Vec<u8>> = (0..20u8)
        .map(|k| vec![k; if k == 19 { 300 } else { 1200 }])
        .collect();
    let mut bufs: Vec<Vec<u8>> = sent
        .iter()
        .enumerate()
        .map(|(k, d)| buffer(&datagram(5353, 100 + k as u16, d)))
        .collect();
    let mut gro = TunGro::new();
    let written = tun
        .send_batch(&mut gro, &mut bufs, VIRTIO_NET_HDR_LEN)
        .expect("UDP batch");
    // Linux 6.2 and later take UDP segmentation from a TUN: one write of them all,
    // which the kernel cuts back into the datagrams.
    assert!(tun.udp_offload(), "this kernel has TUN_F_USO4");
    let payload: usize = sent.iter().map(Vec::len).sum();
    assert_eq!(written, VIRTIO_NET_HDR_LEN + 28 + payload, "one aggregate");
    let mut buf = vec![0u8; 2048];
    for (k, d) in sent.iter().enumerate() {
        let (n, from) = socket
            .recv_from(&mut buf)
            .expect("every datagram delivered");
        assert_eq!(from, (PEER, PEER_PORT).into());
        assert_eq!(&buf[..n], d.as_slice(), "datagram {k} whole and in order");
    }
}
