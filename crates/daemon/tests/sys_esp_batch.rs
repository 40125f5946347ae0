//! Raw ESP in batches between two namespaces, over IPv4 and IPv6: `send_batch` sends
//! every packet of a batch in order with `sendmmsg` (skipping, and counting, what is not
//! of the socket's family), and `recv_batch` hands them over whole and in order (IPv6
//! with the header the raw socket keeps back rebuilt), refusing (length 0) a packet
//! longer than its buffer instead of cutting it.

#[path = "../../../tests/support/netns.rs"]
mod netns;
mod sys_common;

use std::time::{Duration, Instant};

use netns::VethPair;
use palisaded::sys::{EspBatch, EspSocket};
use sys_common::{V6_A, V6_B, ipv4_esp, readable_before};

const SPI: u32 = 0x0a0b_0c0d;

/// Receives with `recv_batch` into buffers of `size` bytes until `want` slots came back
/// or three seconds passed; returns each slot's bytes (empty for a refused packet).
fn recv_all(rx: &EspSocket, size: usize, want: usize) -> Vec<Vec<u8>> {
    let mut batch = EspBatch::new(16);
    let mut bufs = vec![vec![0u8; size]; 16];
    let mut lens = vec![0usize; 16];
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while got.len() < want && readable_before(rx, deadline) {
        match rx.recv_batch(&mut batch, &mut bufs, &mut lens) {
            Ok(n) => {
                for i in 0..n {
                    got.push(bufs[i][..lens[i]].to_vec());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("recv_batch: {e}"),
        }
    }
    got
}

#[test]
fn sys_esp_batch_arrives_whole_and_in_order() {
    if !netns::root_or_skip("sys_esp_batch_arrives_whole_and_in_order") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (tx, rx) = sys_common::esp_sockets(&pair);

    // 40 packets of different lengths (more than one sendmmsg chunk of the batch's 16),
    // a slot that is not IPv4 among them, each packet at its own offset in its buffer.
    let mut bufs = Vec::new();
    let mut packets = Vec::new();
    let mut sent = Vec::new();
    for seq in 1..=40u32 {
        let payload = vec![seq as u8; 20 + seq as usize * 30];
        let p = ipv4_esp(VethPair::ADDR_A, VethPair::ADDR_B, SPI, seq, &payload);
        let offset = seq as usize % 7;
        let mut buf = vec![0u8; offset];
        buf.extend_from_slice(&p);
        packets.push((bufs.len(), offset..offset + p.len()));
        bufs.push(buf);
        sent.push(p);
        if seq == 20 {
            packets.push((bufs.len(), 0..40));
            bufs.push(vec![0x60; 40]);
        }
    }
    let mut batch = EspBatch::new(16);
    let outcome = tx.send_batch(&mut batch, &bufs, &packets);
    assert_eq!((outcome.sent, outcome.failed), (40, 1), "{outcome:?}");

    let got = recv_all(&rx, 2048, 40);
    assert_eq!(got.len(), 40, "every packet arrives");
    for (g, p) in got.iter().zip(&sent) {
        assert_eq!(g.len(), p.len(), "header and payload, nothing more or less");
        // TTL and checksum are the kernel's; addresses and everything after are ours.
        assert_eq!(&g[12..], &p[12..], "in the order sent");
    }
}

/// An IPv6 ESP packet from `V6_A` to `V6_B`.
fn ipv6_esp(seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut esp = SPI.to_be_bytes().to_vec();
    esp.extend_from_slice(&seq.to_be_bytes());
    esp.extend_from_slice(payload);
    sys_common::ipv6(V6_A, V6_B, 50, &esp)
}

#[test]
fn sys_esp_batch_v6_arrives_whole_and_in_order() {
    if !netns::root_or_skip("sys_esp_batch_v6_arrives_whole_and_in_order") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (tx, rx) = sys_common::esp_sockets_v6(&pair);

    // 40 packets over three sendmmsg chunks, an IPv4 packet among them (refused).
    let mut bufs = Vec::new();
    let mut sent = Vec::new();
    for seq in 1..=40u32 {
        bufs.push(ipv6_esp(seq, &vec![seq as u8; 20 + seq as usize * 30]));
        sent.push(bufs.len() - 1);
        if seq == 20 {
            bufs.push(ipv4_esp(VethPair::ADDR_A, VethPair::ADDR_B, SPI, 99, b"v4"));
        }
    }
    let packets: Vec<_> = bufs
        .iter()
        .enumerate()
        .map(|(i, b)| (i, 0..b.len()))
        .collect();
    let outcome = tx.send_batch(&mut EspBatch::new(16), &bufs, &packets);
    assert_eq!((outcome.sent, outcome.failed), (40, 1), "{outcome:?}");

    // Queued by now: one recvmmsg takes a whole batch.
    std::thread::sleep(Duration::from_millis(200));
    let mut batch = EspBatch::new(16);
    let mut slots = vec![vec![0u8; 2048]; 16];
    let mut lens = vec![0usize; 16];
    let first = rx
        .recv_batch(&mut batch, &mut slots, &mut lens)
        .expect("recv_batch");
    assert_eq!(first, 16, "a batch per system call");
    let mut got: Vec<Vec<u8>> = (0..first).map(|i| slots[i][..lens[i]].to_vec()).collect();
    got.extend(recv_all(&rx, 2048, 40 - first));
    assert_eq!(got.len(), 40, "every packet arrives");
    // No router on the way: each rebuilt header equals the one sent, hop limit included.
    for (g, &i) in got.iter().zip(&sent) {
        assert_eq!(g, &bufs[i], "in the order sent, byte for byte");
    }
}

#[test]
fn sys_esp_batch_v6_refuses_a_packet_longer_than_its_buffer() {
    if !netns::root_or_skip("sys_esp_batch_v6_refuses_a_packet_longer_than_its_buffer") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (tx, rx) = sys_common::esp_sockets_v6(&pair);
    let (long, short) = (ipv6_esp(1, &[7u8; 600]), ipv6_esp(2, &[9u8; 100]));
    let bufs = [long.clone(), short.clone()];
    let packets = [(0, 0..long.len()), (1, 0..short.len())];
    assert_eq!(
        tx.send_batch(&mut EspBatch::new(4), &bufs, &packets).sent,
        2
    );
    let got = recv_all(&rx, 300, 2);
    assert_eq!(got.len(), 2, "both slots come back");
    assert!(got[0].is_empty(), "the long packet is refused, not cut");
    assert_eq!(got[1], short, "the short one is whole");
}

#[test]
fn sys_esp_batch_refuses_a_packet_longer_than_its_buffer() {
    if !netns::root_or_skip("sys_esp_batch_refuses_a_packet_longer_than_its_buffer") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (tx, rx) = sys_common::esp_sockets(&pair);

    let long = ipv4_esp(VethPair::ADDR_A, VethPair::ADDR_B, SPI, 1, &[7u8; 600]);
    let short = ipv4_esp(VethPair::ADDR_A, VethPair::ADDR_B, SPI, 2, &[9u8; 100]);
    let bufs = [long.clone(), short.clone()];
    let packets = [(0, 0..long.len()), (1, 0..short.len())];
    let outcome = tx.send_batch(&mut EspBatch::new(4), &bufs, &packets);
    assert_eq!(outcome.sent, 2);

    let got = recv_all(&rx, 300, 2);
    assert_eq!(got.len(), 2, "both slots come back");
    assert!(got[0].is_empty(), "the long packet is refused, not cut");
    assert_eq!(&got[1][12..], &short[12..], "the short one is whole");
}
