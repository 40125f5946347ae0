//! Feeds arbitrary packets to palisaded's TUN write coalescing (crates/daemon/src/sys/
//! tun_gro.rs), as a batch of decapsulated packets: a byte of flags, then packets of a
//! 16-bit length each (what is left over is the last packet).
//!
//! Beyond "no panic": every packet is written exactly once, alone or inside one
//! aggregate, and aggregates are written where their first packet was, in order; a
//! packet written alone is the buffer as it came, behind a zero virtio-net header; the
//! bytes of an aggregate are its first packet's (headers rewritten) and the others'
//! payloads, never longer than an IP packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisaded::sys::TunGro;
use palisaded::sys::tun::VIRTIO_NET_HDR_LEN;

/// Room in front of each packet, as the data plane leaves it (more than the header).
const OFFSET: usize = VIRTIO_NET_HDR_LEN + 6;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut packets: Vec<&[u8]> = Vec::new();
    while rest.len() >= 2 && packets.len() < 256 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let body = &rest[2..];
        let take = len.min(body.len());
        packets.push(&body[..take]);
        rest = &body[take..];
    }
    if !rest.is_empty() {
        packets.push(rest);
    }
    let mut bufs: Vec<Vec<u8>> = packets
        .iter()
        .map(|p| {
            let mut b = vec![0x55u8; OFFSET];
            b.extend_from_slice(p);
            b
        })
        .collect();
    let mut gro = TunGro::new();
    if gro.coalesce(&mut bufs, OFFSET, flags & 1 != 0).is_err() {
        return;
    }
    let header = OFFSET - VIRTIO_NET_HDR_LEN;
    let mut pieces = 0;
    let mut writes: Vec<Vec<u8>> = Vec::new();
    gro.for_each_write(&bufs, OFFSET, |iov| {
        pieces += iov.len();
        writes.push(iov.iter().flat_map(|s| s.iter().copied()).collect());
    });
    assert_eq!(pieces, packets.len(), "every packet written once");
    // Each write is a buffer's header and packet (alone: exactly; an aggregate: then the
    // payloads appended), in buffer order.
    let mut at = 0;
    for write in &writes {
        let i = (at..bufs.len())
            .find(|&i| {
                let b = &bufs[i][header..];
                if b[..VIRTIO_NET_HDR_LEN].iter().all(|&x| x == 0) {
                    write.as_slice() == b
                } else {
                    write.len() > b.len() && write.starts_with(b)
                }
            })
            .expect("a write starts with one of the buffers, in order");
        at = i + 1;
        if write[..VIRTIO_NET_HDR_LEN].iter().all(|&x| x == 0) {
            assert_eq!(
                &write[VIRTIO_NET_HDR_LEN..],
                packets[i],
                "alone: as it came"
            );
        } else {
            assert!(
                write.len() - VIRTIO_NET_HDR_LEN <= 65_535,
                "an aggregate fits an IP packet"
            );
        }
    }
});
