//! ESP in UDP with segmentation offload over a veth pair: one `send_segments` call
//! leaves as separate datagrams of the given size, which a receiver without UDP GRO gets
//! one by one and a receiver with it gets coalesced, with the segment size reported, so
//! that the data plane can cut them apart again.

#[path = "../../../tests/support/netns.rs"]
mod netns;
mod sys_common;

use std::io::IoSlice;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netns::VethPair;
use palisaded::sys::{Datagram, FWMARK, IkeSocket, UdpBatch};

const OFFSET: usize = 64;
const SEGMENT: usize = 1_000;

/// Ten full segments and a short last one, each filled with its index.
fn segments() -> Vec<Vec<u8>> {
    (0..11u8)
        .map(|i| vec![i; if i == 10 { 321 } else { SEGMENT }])
        .collect()
}

/// Sends `segments()` from a's NAT-T socket to b's in one call and returns what b's
/// socket received, one entry per datagram the kernel delivered.
fn send_and_receive(gro: bool) -> Vec<(Datagram, Vec<u8>)> {
    let pair = VethPair::new().expect("namespaces");
    let tx = pair
        .a
        .run(|| IkeSocket::bind(0, FWMARK))
        .expect("setns")
        .expect("bind a");
    let rx = pair
        .b
        .run(|| IkeSocket::bind(0, FWMARK))
        .expect("setns")
        .expect("bind b");
    rx.set_nonblocking(true).expect("nonblocking");
    if gro {
        rx.enable_gro().expect("UDP_GRO");
    }
    let mut batch = UdpBatch::new(16);
    let mut bufs = vec![vec![0u8; OFFSET + 65_535]; 16];
    let mut got = vec![None; 16];
    let to = SocketAddr::from((VethPair::ADDR_B, rx.port()));

    // First a plain datagram into the same slots: its receive carries packet info alone,
    // and the coalesced one after it must still find room for packet info and segment
    // size (nix's recvmmsg keeps the lowered control length; UdpBatch renews it).
    tx.send_segments(&[IoSlice::new(b"plain")], 5, VethPair::ADDR_A.into(), to)
        .expect("plain send");
    let deadline = Instant::now() + Duration::from_secs(3);
    assert!(
        sys_common::readable_before(&rx, deadline),
        "the plain datagram"
    );
    let n = rx
        .recv_batch(&mut batch, &mut bufs, OFFSET, &mut got)
        .expect("receive");
    assert_eq!(n, 1);
    let d = got[0].expect("the plain datagram with its packet info");
    assert_eq!((d.len, d.segment, d.local), (5, 5, to));

    let data = segments();
    let iov: Vec<IoSlice<'_>> = data.iter().map(|s| IoSlice::new(s)).collect();
    let sent = tx
        .send_segments(&iov, SEGMENT as u16, VethPair::ADDR_A.into(), to)
        .expect("segmented send");
    assert_eq!(sent, 10 * SEGMENT + 321, "the kernel took every byte");

    let mut out = Vec::new();
    let total = |out: &Vec<(Datagram, Vec<u8>)>| out.iter().map(|(d, _)| d.len).sum::<usize>();
    let deadline = Instant::now() + Duration::from_secs(3);
    while total(&out) < sent && sys_common::readable_before(&rx, deadline) {
        match rx.recv_batch(&mut batch, &mut bufs, OFFSET, &mut got) {
            Ok(n) => {
                for i in 0..n {
                    let d = got[i].expect("a datagram with packet info");
                    assert_eq!(d.remote, SocketAddr::from((VethPair::ADDR_A, tx.port())));
                    assert_eq!(d.local, to);
                    out.push((d, bufs[i][OFFSET..OFFSET + d.len].to_vec()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("recv_batch: {e}"),
        }
    }
    out
}

/// Cuts what was received back into datagrams with `Datagram::segments`.
fn cut(received: &[(Datagram, Vec<u8>)]) -> Vec<Vec<u8>> {
    received
        .iter()
        .flat_map(|(d, bytes)| d.segments().map(|r| bytes[r].to_vec()))
        .collect()
}

#[test]
fn sys_udp_gso_without_gro_arrives_as_separate_datagrams() {
    if !netns::root_or_skip("sys_udp_gso_without_gro_arrives_as_separate_datagrams") {
        return;
    }
    let got = send_and_receive(false);
    assert_eq!(got.len(), 11, "one datagram per segment");
    assert!(got.iter().all(|(d, _)| d.segment == d.len));
    assert_eq!(cut(&got), segments());
}

#[test]
fn sys_udp_gso_with_gro_arrives_coalesced_and_cuts_back() {
    if !netns::root_or_skip("sys_udp_gso_with_gro_arrives_coalesced_and_cuts_back") {
        return;
    }
    let got = send_and_receive(true);
    // Over a veth the segmented buffer is delivered whole to a GRO socket.
    assert!(
        got.len() < 11,
        "coalesced: {:?}",
        got.iter()
            .map(|(d, _)| (d.len, d.segment))
            .collect::<Vec<_>>()
    );
    assert!(
        got.iter()
            .all(|(d, _)| d.segment == SEGMENT || d.len < SEGMENT)
    );
    assert_eq!(cut(&got), segments(), "every datagram back, in order");
}
