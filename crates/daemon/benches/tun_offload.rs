//! What cutting the TUN's offload aggregates costs, ours against tun-rs's, in one run:
//! every byte a TCP sender hands palisaded through the TUN goes through the split once,
//! and every byte palisaded writes to the TUN through the checksum check once.
//!
//! Ids:
//! - `split/ours`, `split/tun-rs`: a 64 KiB TCP/IPv4 aggregate (virtio-net header,
//!   1,348-byte segments, as iperf3 through a 1,400-byte TUN) cut into 49 segments with
//!   their checksums (`sys::tun_gso::split` against `tun_rs::gso_split`);
//! - `copy/memcpy`: the same bytes copied, the floor for any split;
//! - `sum/ours`, `sum/tun-rs`: the one's-complement sum of one 1,348-byte payload
//!   (`sys::checksum::sum` against `tun_rs::checksum`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisaded::sys::checksum;
use palisaded::sys::tun::VIRTIO_NET_HDR_LEN;
use palisaded::sys::tun_gso;
use tun_rs::{VirtioNetHdr, gso_split};

const MSS: usize = 1_348;
const SEGMENTS: usize = 49;
const OFFSET: usize = 64;

/// An IPv4/TCP aggregate (no options) of `SEGMENTS` full segments less a few bytes, with
/// the virtio-net header the kernel puts in front.
fn aggregate() -> (VirtioNetHdr, Vec<u8>) {
    let payload = SEGMENTS * MSS - 100;
    let total = 40 + payload;
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 6;
    p[12..20].copy_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    p[20..24].copy_from_slice(&[0x13, 0x88, 0x01, 0xbb]);
    p[32] = 0x50;
    p[33] = 0x10;
    for (i, b) in p[40..].iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    let hdr = VirtioNetHdr {
        flags: 1,
        gso_type: 1,
        hdr_len: 40,
        gso_size: MSS as u16,
        csum_start: 20,
        csum_offset: 16,
    };
    (hdr, p)
}

fn bench(c: &mut Criterion) {
    let (hdr, pkt) = aggregate();
    let mut read = vec![0u8; VIRTIO_NET_HDR_LEN];
    hdr.encode(&mut read).expect("room for the header");
    read.extend_from_slice(&pkt);
    let mut bufs = vec![vec![0u8; OFFSET + 1_500]; 64];
    let mut sizes = vec![0usize; 64];
    let mut scratch = pkt.clone();

    let mut g = c.benchmark_group("split");
    g.throughput(Throughput::Bytes(pkt.len() as u64));
    g.bench_function("ours", |b| {
        b.iter(|| {
            let n = tun_gso::split(black_box(&read), &mut bufs, &mut sizes, OFFSET);
            assert_eq!(n, Ok(SEGMENTS));
        })
    });
    g.bench_function("tun-rs", |b| {
        b.iter(|| {
            // gso_split takes its input mutably but only reads it (as ours does).
            let n = gso_split(
                black_box(&mut scratch),
                hdr,
                &mut bufs,
                &mut sizes,
                OFFSET,
                false,
            );
            assert_eq!(n.ok(), Some(SEGMENTS));
        })
    });
    g.bench_function("copy/memcpy", |b| {
        b.iter(|| {
            for (seg, buf) in black_box(&pkt[40..]).chunks(MSS).zip(bufs.iter_mut()) {
                buf[OFFSET + 40..OFFSET + 40 + seg.len()].copy_from_slice(seg);
            }
        })
    });
    g.finish();

    let payload = &pkt[40..40 + MSS];
    let mut g = c.benchmark_group("sum");
    g.throughput(Throughput::Bytes(MSS as u64));
    g.bench_function("ours", |b| b.iter(|| checksum::sum(black_box(payload))));
    g.bench_function("tun-rs", |b| {
        b.iter(|| tun_rs::checksum(black_box(payload), 0))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
