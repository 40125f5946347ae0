//! Raw ESP between two namespaces: a hand-made ESP packet sent from `a` arrives at `b`
//! whole, outer IPv4 header included, and the send side carries the mark.

#[path = "../../../tests/support/netns.rs"]
mod netns;
mod sys_common;

use std::time::Duration;

use netns::VethPair;
use palisaded::sys::{EspSocket, FWMARK};
use sys_common::{PROTO_ESP, ipv4_esp, ipv4_fields, recv_matching};

const SPI: u32 = 0x0102_0304;

#[test]
fn sys_esp_packet_arrives_whole() {
    if !netns::root_or_skip("sys_esp_packet_arrives_whole") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (tx, rx) = sys_common::esp_sockets(&pair);

    let packet = ipv4_esp(
        VethPair::ADDR_A,
        VethPair::ADDR_B,
        SPI,
        7,
        b"opaque ciphertext",
    );
    assert_eq!(tx.send(&packet).expect("send"), packet.len());

    let got = recv_matching(
        &rx,
        |s, b| s.recv(b),
        Duration::from_secs(3),
        |p| ipv4_fields(p) == Some((VethPair::ADDR_A, VethPair::ADDR_B, PROTO_ESP)),
    )
    .expect("the ESP packet reaches b's raw socket");
    assert_eq!(
        got.len(),
        packet.len(),
        "header and payload, nothing more or less"
    );
    // TTL and checksum are the kernel's along the way; everything after the header is ours.
    assert_eq!(&got[20..], &packet[20..]);
    assert_eq!(&got[12..20], &packet[12..20]);
}

#[test]
fn sys_esp_send_is_marked() {
    if !netns::root_or_skip("sys_esp_send_is_marked") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    // In a, only packets with the mark may be routed at all.
    let rule = format!("rule add not fwmark {FWMARK:#x} blackhole priority 100");
    pair.a
        .ip(&rule.split(' ').collect::<Vec<_>>())
        .expect("rule");
    let marked = pair
        .a
        .run(|| EspSocket::open(FWMARK))
        .expect("setns")
        .expect("open");
    let unmarked = pair
        .a
        .run(|| EspSocket::open(0))
        .expect("setns")
        .expect("open");
    let rx = pair
        .b
        .run(|| EspSocket::open(FWMARK))
        .expect("setns")
        .expect("open b");
    rx.set_nonblocking(true).expect("nonblocking");

    let lost = ipv4_esp(VethPair::ADDR_A, VethPair::ADDR_B, SPI, 1, b"unmarked");
    assert!(
        unmarked.send(&lost).is_err(),
        "the blackhole rule refuses an unmarked send"
    );
    let packet = ipv4_esp(VethPair::ADDR_A, VethPair::ADDR_B, SPI, 2, b"marked");
    marked.send(&packet).expect("a marked send is routed");
    let got = recv_matching(
        &rx,
        |s, b| s.recv(b),
        Duration::from_secs(3),
        |p| ipv4_fields(p).is_some_and(|f| f.2 == PROTO_ESP),
    )
    .expect("the marked packet arrives");
    assert!(got.ends_with(b"marked") && !got.ends_with(b"unmarked"));
}

#[test]
fn sys_esp_send_refuses_what_is_not_ipv4() {
    if !netns::root_or_skip("sys_esp_send_refuses_what_is_not_ipv4") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let s = pair
        .a
        .run(|| EspSocket::open(FWMARK))
        .expect("setns")
        .expect("open");
    let err = s.send(&[0x60; 40]).expect_err("an IPv6 header is refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        s.send(&[0x45; 10]).is_err(),
        "a truncated header is refused"
    );
}

#[test]
fn sys_esp_ipv6_packet_arrives_with_its_header_rebuilt() {
    if !netns::root_or_skip("sys_esp_ipv6_packet_arrives_with_its_header_rebuilt") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    sys_common::enable_ipv6(&pair.a, sys_common::V6_A);
    sys_common::enable_ipv6(&pair.b, sys_common::V6_B);
    let tx = pair
        .a
        .run(|| EspSocket::open_v6(FWMARK))
        .expect("setns")
        .expect("open a");
    let rx = pair
        .b
        .run(|| EspSocket::open_v6(FWMARK))
        .expect("setns")
        .expect("open b");
    rx.set_nonblocking(true).expect("nonblocking");

    let mut esp = SPI.to_be_bytes().to_vec();
    esp.extend_from_slice(&9u32.to_be_bytes());
    esp.extend_from_slice(b"opaque v6 ciphertext");
    let packet = sys_common::ipv6(sys_common::V6_A, sys_common::V6_B, PROTO_ESP, &esp);
    assert!(
        tx.send(&ipv4_esp(VethPair::ADDR_A, VethPair::ADDR_B, SPI, 1, b""))
            .is_err()
    );
    assert_eq!(tx.send(&packet).expect("send"), packet.len());

    let got = recv_matching(
        &rx,
        |s, b| s.recv(b),
        Duration::from_secs(3),
        |p| p.len() > 40 && p[6] == PROTO_ESP,
    )
    .expect("the IPv6 ESP packet reaches b's raw socket");
    // No router on the way: the rebuilt header equals the one sent, hop limit included.
    assert_eq!(got, packet);
}

#[test]
fn sys_esp_a_packet_longer_than_the_buffer_is_refused() {
    if !netns::root_or_skip("sys_esp_a_packet_longer_than_the_buffer_is_refused") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (tx, rx) = sys_common::esp_sockets(&pair);
    let packet = ipv4_esp(VethPair::ADDR_A, VethPair::ADDR_B, SPI, 3, &[0xaa; 200]);
    tx.send(&packet).expect("send");
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    assert!(
        sys_common::readable_before(&rx, deadline),
        "the packet arrives"
    );
    let mut small = [0u8; 100];
    let err = rx.recv(&mut small).expect_err("cut");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
}
