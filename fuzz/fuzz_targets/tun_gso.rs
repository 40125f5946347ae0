//! Feeds arbitrary reads to palisaded's TUN segmentation (crates/daemon/src/sys/
//! tun_gso.rs): a virtio-net header and a packet, as a TUN with offloads hands them over.
//!
//! Beyond "no panic": a split that succeeds fills at most the buffers given, within
//! their length; a read without segmentation comes out as one packet of its own length;
//! an aggregate comes out as segments whose IPv4 header checksums and TCP or UDP
//! checksums verify, whose payloads put together are the aggregate's, and of which all
//! but the last carry exactly `gso_size` bytes of payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisaded::sys::checksum::{fold, sum_words};
use palisaded::sys::tun::VIRTIO_NET_HDR_LEN;
use palisaded::sys::tun::VirtioNetHdr;
use palisaded::sys::tun_gso;

const BUFFERS: usize = 64;
const OFFSET: usize = 16;
const BUF_LEN: usize = OFFSET + 1_600;

fuzz_target!(|data: &[u8]| {
    let mut bufs = vec![vec![0u8; BUF_LEN]; BUFFERS];
    let mut sizes = vec![0usize; BUFFERS];
    let Ok(n) = tun_gso::split(data, &mut bufs, &mut sizes, OFFSET) else {
        return;
    };
    assert!((1..=BUFFERS).contains(&n));
    assert!(sizes[..n].iter().all(|&s| s <= BUF_LEN - OFFSET));
    let pkt = &data[VIRTIO_NET_HDR_LEN..];
    let Ok(hdr) = VirtioNetHdr::decode(data) else {
        unreachable!("a split read holds a header");
    };
    let gso_type = hdr.gso_type;
    if gso_type == 0 {
        assert_eq!(
            (n, sizes[0]),
            (1, pkt.len()),
            "one packet, as long as it came"
        );
        return;
    }
    let gso_size = usize::from(hdr.gso_size);
    let iph = usize::from(hdr.csum_start);
    let v6 = pkt[0] >> 4 == 6;
    let udp = gso_type & 0x7f == 5;
    let l4h = if udp {
        8
    } else {
        usize::from(pkt[iph + 12] >> 4) * 4
    };
    let hdr = iph + l4h;
    let mut payload = Vec::new();
    for (i, &size) in sizes[..n].iter().enumerate() {
        let seg = &bufs[i][OFFSET..OFFSET + size];
        if !v6 {
            assert_eq!(
                fold(sum_words(&seg[..iph], 0)),
                0xffff,
                "IPv4 header checksum"
            );
        }
        let addrs = if v6 { &seg[8..40] } else { &seg[12..20] };
        let proto: u64 = if udp { 17 } else { 6 };
        let pseudo = sum_words(addrs, proto + (size - iph) as u64);
        assert_eq!(
            fold(sum_words(&seg[iph..], pseudo)),
            0xffff,
            "transport checksum"
        );
        if i + 1 < n {
            assert_eq!(size - hdr, gso_size, "full segments but the last");
        }
        payload.extend_from_slice(&seg[hdr..]);
    }
    assert_eq!(payload, &pkt[hdr..], "the payload, cut and put back");
});
