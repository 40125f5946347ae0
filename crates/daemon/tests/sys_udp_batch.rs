//! The NAT-T socket in batches: `recv_batch` hands over several datagrams per call, in
//! order, each with its remote address and the local address it was sent to, and
//! refuses (`None`) a datagram longer than its buffer instead of cutting it.

#[path = "../../../tests/support/netns.rs"]
mod netns;
mod sys_common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use netns::VethPair;
use palisaded::sys::{Datagram, FWMARK, IkeSocket, UdpBatch};

/// A second address of `a` (on its loopback; `b` reaches it through ARP on the veth).
const ADDR_A2: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 3);
const OFFSET: usize = 48;

#[test]
fn sys_udp_batch_reports_each_datagram_and_refuses_a_long_one() {
    if !netns::root_or_skip("sys_udp_batch_reports_each_datagram_and_refuses_a_long_one") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    pair.a
        .ip(&["addr", "add", "10.200.0.3/32", "dev", "lo"])
        .expect("second address");
    let natt = pair
        .a
        .run(|| IkeSocket::bind(4500, FWMARK))
        .expect("setns")
        .expect("bind");
    natt.set_nonblocking(true).expect("nonblocking");
    let peer = pair
        .b
        .udp_socket((VethPair::ADDR_B, 0).into())
        .expect("peer");
    let from = peer.local_addr().expect("addr");

    // 20 datagrams alternating between a's two addresses, one too long for its slot.
    let mut sent = Vec::new();
    for i in 0..20u8 {
        let to = if i % 2 == 0 {
            VethPair::ADDR_A
        } else {
            ADDR_A2
        };
        let len = if i == 7 { 400 } else { 10 + usize::from(i) };
        let data = vec![i; len];
        peer.send_to(&data, (to, 4500)).expect("send");
        sent.push((data, SocketAddr::from((to, 4500))));
    }

    let mut batch = UdpBatch::new(8);
    let mut bufs = vec![vec![0u8; OFFSET + 200]; 8];
    let mut got: Vec<Option<Datagram>> = vec![None; 8];
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while seen.len() < sent.len() && sys_common::readable_before(&natt, deadline) {
        match natt.recv_batch(&mut batch, &mut bufs, OFFSET, &mut got) {
            Ok(n) => {
                assert!(n <= 8, "at most the batch's capacity");
                for i in 0..n {
                    seen.push(got[i].map(|d| {
                        assert_eq!(d.segment, d.len, "GRO is off: one datagram each");
                        (bufs[i][OFFSET..OFFSET + d.len].to_vec(), d.remote, d.local)
                    }));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("recv_batch: {e}"),
        }
    }
    assert_eq!(seen.len(), sent.len(), "every datagram comes back");
    for (i, (s, (data, local))) in seen.iter().zip(&sent).enumerate() {
        if i == 7 {
            assert!(s.is_none(), "the long datagram is refused, not cut");
            continue;
        }
        let (bytes, remote, at) = s.as_ref().expect("a short datagram is received");
        assert_eq!(bytes, data, "datagram {i} whole and in order");
        assert_eq!(*remote, from);
        assert_eq!(at, local, "the address the peer used");
    }
}
