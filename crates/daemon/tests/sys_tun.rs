//! The TUN device in a namespace of its own: what the kernel routes into it comes out of
//! `recv`, and what `send` writes is delivered by the kernel like any received packet.

#[path = "../../../tests/support/netns.rs"]
mod netns;
mod sys_common;

use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

use palisaded::sys::Tun;
use sys_common::{PROTO_UDP, ipv4_fields, ipv4_udp, recv_matching, tun_in_namespace};

const TUN_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const ROUTED: Ipv4Addr = Ipv4Addr::new(10, 78, 0, 5);

#[test]
fn sys_tun_is_up_with_its_mtu_and_no_rp_filter() {
    if !netns::root_or_skip("sys_tun_is_up_with_its_mtu_and_no_rp_filter") {
        return;
    }
    let pair = netns::VethPair::new().expect("namespaces");
    // New devices inherit `default`: make it strict, so that 0 is Tun::create's doing.
    pair.a
        .run(|| std::fs::write("/proc/sys/net/ipv4/conf/default/rp_filter", "1"))
        .expect("setns")
        .expect("default rp_filter");
    let tun = tun_in_namespace(&pair, false);
    assert_eq!(tun.name(), "pal0");
    let link = pair.a.ip(&["-o", "link", "show", "pal0"]).expect("link");
    assert!(link.contains("mtu 1400"), "{link}");
    assert!(link.contains(",UP"), "{link}");
    let rp = pair
        .a
        .run(|| std::fs::read_to_string("/proc/sys/net/ipv4/conf/pal0/rp_filter"))
        .expect("setns")
        .expect("rp_filter");
    assert_eq!(rp.trim(), "0");
}

#[test]
fn sys_tun_receives_what_is_routed_into_it() {
    if !netns::root_or_skip("sys_tun_receives_what_is_routed_into_it") {
        return;
    }
    let pair = netns::VethPair::new().expect("namespaces");
    let tun = tun_in_namespace(&pair, false);
    let sender = pair.a.udp_socket((TUN_ADDR, 0).into()).expect("socket");
    sender
        .send_to(b"into the tun", (ROUTED, 9999))
        .expect("send");

    let packet = recv_matching(
        &tun,
        |t, b| t.recv(b),
        Duration::from_secs(3),
        |p| ipv4_fields(p) == Some((TUN_ADDR, ROUTED, PROTO_UDP)),
    )
    .expect("the datagram comes out of the TUN as one IPv4 packet, no PI header");
    assert!(packet.ends_with(b"into the tun"));
    assert_eq!(
        usize::from(u16::from_be_bytes([packet[2], packet[3]])),
        packet.len()
    );
}

#[test]
fn sys_tun_send_is_delivered_locally() {
    if !netns::root_or_skip("sys_tun_send_is_delivered_locally") {
        return;
    }
    let pair = netns::VethPair::new().expect("namespaces");
    let tun = tun_in_namespace(&pair, false);
    let receiver: UdpSocket = pair.a.udp_socket((TUN_ADDR, 7000).into()).expect("socket");
    receiver
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");

    let packet = ipv4_udp((ROUTED, 4000), (TUN_ADDR, 7000), b"out of the tun");
    assert_eq!(tun.send(&packet).expect("write"), packet.len());
    let mut buf = [0u8; 64];
    let (n, from) = receiver
        .recv_from(&mut buf)
        .expect("delivered to the local socket");
    assert_eq!(&buf[..n], b"out of the tun");
    assert_eq!(from, (ROUTED, 4000).into());
}

#[test]
fn sys_tun_multi_queue_shares_one_device() {
    if !netns::root_or_skip("sys_tun_multi_queue_shares_one_device") {
        return;
    }
    let pair = netns::VethPair::new().expect("namespaces");
    let queues = pair
        .a
        .run(|| Tun::create_multi_queue("pal0", 1400, 3))
        .expect("setns")
        .expect("create pal0 with three queues");
    assert_eq!(queues.len(), 3);
    assert!(queues.iter().all(|q| q.name() == "pal0"));
    let link = pair.a.ip(&["-d", "link", "show", "pal0"]).expect("link");
    assert!(link.contains("multi_queue"), "{link}");
}
