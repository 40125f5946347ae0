//! UDP datagrams longer than the TUN's MTU, echoed: a server in one namespace sends
//! each datagram back, and a client checks every echo byte for byte.

// Each e2e test binary uses a different part of this module.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use crate::netns::Netns;

/// Datagram payload sizes: one fragment more than the MTU, a few, and a jumbo frame's.
pub const SIZES: [usize; 4] = [1500, 4000, 6000, 8000];
/// Longer ones, up to near what ESP can carry in one IP packet (65,535 bytes).
pub const LONG_SIZES: [usize; 2] = [20_000, 65_000];
/// Each size this many times.
pub const ROUNDS: usize = 3;

/// A thread in `ns` that sends every datagram at `at` back to its sender. It stops 20 s
/// after the last datagram, or at the first send that fails.
pub fn echo_server(ns: &Netns, at: SocketAddr) -> UdpSocket {
    let s = ns.udp_socket(at).expect("echo socket");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let server = s.try_clone().expect("clone");
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = server.recv_from(&mut buf) {
            if server.send_to(&buf[..n], from).is_err() {
                break;
            }
        }
    });
    s
}

/// Sends every size `ROUNDS` times from `ns` (at `local`) to the echo server at `to`,
/// checking each echo; `context` says what failed (daemons' logs).
pub fn echo_all(ns: &Netns, local: IpAddr, to: SocketAddr, context: &dyn Fn() -> String) {
    echo_sizes(ns, local, to, &SIZES, context);
}

/// [`echo_all`] with other sizes.
pub fn echo_sizes(
    ns: &Netns,
    local: IpAddr,
    to: SocketAddr,
    sizes: &[usize],
    context: &dyn Fn() -> String,
) {
    let tx = ns.udp_socket(SocketAddr::new(local, 0)).expect("socket");
    // The first datagram may wait for IKE (held, then sent on the new SA).
    tx.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = vec![0u8; 65_536];
    for round in 0..ROUNDS {
        for (i, &size) in sizes.iter().enumerate() {
            let seed = (round * sizes.len() + i) as u8;
            let d: Vec<u8> = (0..size)
                .map(|k| (k as u8).wrapping_mul(31) ^ seed)
                .collect();
            tx.send_to(&d, to).expect("send");
            let n = tx.recv(&mut buf).unwrap_or_else(|e| {
                panic!("no echo of {size} bytes from {to} ({e})\n{}", context())
            });
            assert_eq!(
                &buf[..n],
                &d[..],
                "the echo of {size} bytes is the datagram"
            );
        }
    }
}
