//! NFQUEUE with the firewall in place: a clear datagram from the protected peer is
//! handed to the queue; accepted, it is delivered; dropped, it is not.

#[path = "../../../tests/support/netns.rs"]
mod netns;
mod sys_common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use netns::VethPair;
use palisaded::sys::firewall::QUEUE_MARK;
use palisaded::sys::{Firewall, FirewallSpec, NFQUEUE_NUM, NfQueue, QueuedPacket};
use sys_common::{PROTO_UDP, ipv4_fields, readable_before};

fn spec() -> FirewallSpec {
    FirewallSpec {
        tun: "pal0".to_owned(),
        protected: vec![format!("{}/32", VethPair::ADDR_B).parse().expect("prefix")],
        queue: NFQUEUE_NUM,
        ike_ports: [500, 4500],
    }
}

fn arrives(socket: &UdpSocket, data: &[u8], wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 256];
    socket.set_nonblocking(true).expect("nonblocking");
    while readable_before(socket, deadline) {
        if let Ok(n) = socket.recv(&mut buf)
            && &buf[..n] == data
        {
            return true;
        }
    }
    false
}

fn next_queued(queue: &mut NfQueue) -> QueuedPacket {
    let deadline = Instant::now() + Duration::from_secs(3);
    assert!(readable_before(&*queue, deadline), "a packet is queued");
    queue.recv().expect("recv")
}

#[test]
fn sys_nfqueue_verdicts_decide_delivery() {
    if !netns::root_or_skip("sys_nfqueue_verdicts_decide_delivery") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    pair.a
        .run(|| Firewall::install(&spec()))
        .expect("setns")
        .expect("firewall");
    let mut queue = pair
        .a
        .run(|| NfQueue::open(NFQUEUE_NUM))
        .expect("setns")
        .expect("open");
    assert_eq!(queue.num(), NFQUEUE_NUM);
    queue.set_nonblocking(true).expect("nonblocking");
    let rx = pair
        .a
        .udp_socket((VethPair::ADDR_A, 9000).into())
        .expect("socket");
    let tx = pair
        .b
        .udp_socket((VethPair::ADDR_B, 0).into())
        .expect("socket");

    tx.send_to(b"exempt", (VethPair::ADDR_A, 9000))
        .expect("send");
    let p = next_queued(&mut queue);
    assert_eq!(
        ipv4_fields(&p.packet),
        Some((VethPair::ADDR_B, VethPair::ADDR_A, PROTO_UDP))
    );
    assert!(p.packet.ends_with(b"exempt"), "the whole packet is copied");
    assert_eq!(p.mark, QUEUE_MARK);
    assert_eq!(p.hook, 1, "NF_INET_LOCAL_IN");
    assert!(p.in_ifindex.is_some());
    assert!(
        !arrives(&rx, b"exempt", Duration::from_millis(200)),
        "held until the verdict"
    );
    queue.verdict(p.id, true).expect("accept");
    assert!(
        arrives(&rx, b"exempt", Duration::from_secs(2)),
        "accepted: delivered"
    );

    tx.send_to(b"requires IPsec", (VethPair::ADDR_A, 9000))
        .expect("send");
    let p = next_queued(&mut queue);
    assert!(p.packet.ends_with(b"requires IPsec"));
    queue.verdict(p.id, false).expect("drop");
    assert!(
        !arrives(&rx, b"requires IPsec", Duration::from_millis(700)),
        "dropped"
    );

    let err = queue.recv().expect_err("nothing more is queued");
    assert_eq!(err.kind(), Some(std::io::ErrorKind::WouldBlock), "{err}");

    // A verdict for a packet the kernel does not hold is refused; the refusal comes
    // back on the next recv, after which the queue goes on.
    queue.verdict(0xdead, true).expect("sent");
    let deadline = Instant::now() + Duration::from_secs(2);
    assert!(readable_before(&queue, deadline), "the kernel answers");
    let err = queue.recv().expect_err("unknown packet id");
    assert_eq!(err.kind(), Some(std::io::ErrorKind::NotFound), "{err}");
    let err = queue.recv().expect_err("nothing queued");
    assert_eq!(err.kind(), Some(std::io::ErrorKind::WouldBlock), "{err}");

    // Once the queue is closed, the kernel drops again (no bypass): fail closed.
    drop(queue);
    tx.send_to(b"no listener", (VethPair::ADDR_A, 9000))
        .expect("send");
    assert!(!arrives(&rx, b"no listener", Duration::from_millis(700)));
}

#[test]
fn sys_nfqueue_a_queue_has_one_listener() {
    if !netns::root_or_skip("sys_nfqueue_a_queue_has_one_listener") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let _first = pair
        .a
        .run(|| NfQueue::open(NFQUEUE_NUM))
        .expect("setns")
        .expect("open");
    let err = pair
        .a
        .run(|| NfQueue::open(NFQUEUE_NUM))
        .expect("setns")
        .expect_err("a second listener on the same queue is refused");
    assert!(err.to_string().contains("another palisaded"), "{err}");
}

#[test]
fn sys_nfqueue_ipv6_is_queued_too() {
    if !netns::root_or_skip("sys_nfqueue_ipv6_is_queued_too") {
        return;
    }
    use sys_common::{V6_A, V6_B};
    let pair = VethPair::new().expect("namespaces");
    sys_common::enable_ipv6(&pair.a, V6_A);
    sys_common::enable_ipv6(&pair.b, V6_B);
    let spec = FirewallSpec {
        protected: vec![format!("{V6_B}/128").parse().expect("prefix")],
        ..spec()
    };
    pair.a
        .run(|| Firewall::install(&spec))
        .expect("setns")
        .expect("firewall");
    let mut queue = pair
        .a
        .run(|| NfQueue::open(NFQUEUE_NUM))
        .expect("setns")
        .expect("open");
    queue.set_nonblocking(true).expect("nonblocking");
    let rx = pair.a.udp_socket((V6_A, 9000).into()).expect("socket");
    let tx = pair.b.udp_socket((V6_B, 0).into()).expect("socket");

    tx.send_to(b"v6 exempt", (V6_A, 9000)).expect("send");
    let p = next_queued(&mut queue);
    assert_eq!(
        p.packet.first().map(|v| v >> 4),
        Some(6),
        "a whole IPv6 packet"
    );
    assert_eq!(&p.packet[8..24], &V6_B.octets(), "from the peer");
    assert!(p.packet.ends_with(b"v6 exempt"));
    queue.verdict(p.id, true).expect("accept");
    assert!(
        arrives(&rx, b"v6 exempt", Duration::from_secs(2)),
        "accepted: delivered"
    );
}
