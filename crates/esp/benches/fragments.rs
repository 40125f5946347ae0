//! The fragment path against the copies it cannot avoid, in one run.
//!
//! Group `fragments/<bytes>`, functions:
//! - `memcpy`: the datagram's bytes copied twice (into the reassembly's buffer, and from
//!   it into the slot the datagram is protected in), what putting a datagram back
//!   together must at least do;
//! - `reassemble`: `Reassembly::push` of the datagram's fragments (IPv4, cut to 1,400
//!   bytes beforehand, outside the timing) until it is complete;
//! - `fragment`: `fragment_in_place` of the whole datagram to 1,400 bytes.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_esp::fragmentation::fragment_in_place;
use palisade_esp::reassembly::{Pushed, Reassembly, ReassemblyLimits};

const MTU: usize = 1400;
const SIZES: [usize; 2] = [4000, 8000];

fn datagram(payload: usize) -> Vec<u8> {
    common::udp_packet(
        IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1)),
        payload,
        0,
    )
}

fn fragments(c: &mut Criterion) {
    for size in SIZES {
        let whole = datagram(size - 28);
        let mut buf = vec![0u8; whole.len() + 4096];
        buf[..whole.len()].copy_from_slice(&whole);
        let cut = fragment_in_place(&mut buf, 0..whole.len(), MTU, 7).expect("fragment");
        let pieces: Vec<Vec<u8>> = cut.ranges().map(|r| buf[r].to_vec()).collect();

        let mut g = c.benchmark_group(format!("fragments/{size}"));
        g.throughput(Throughput::Bytes(size as u64));
        let mut staging = vec![0u8; 9216];
        let mut slot = vec![0u8; 9216];
        g.bench_function("memcpy", |b| {
            b.iter(|| {
                staging[..whole.len()].copy_from_slice(black_box(&whole));
                slot[..whole.len()].copy_from_slice(&staging[..whole.len()]);
                black_box(&slot);
            })
        });
        let mut r = Reassembly::new(ReassemblyLimits::default());
        let mut out = vec![0u8; 9216];
        let now = Instant::now();
        g.bench_function("reassemble", |b| {
            b.iter(|| {
                let mut done = 0;
                for p in &pieces {
                    if let Ok(Pushed::Complete(n)) = r.push(black_box(p), now, &mut out) {
                        done = n;
                    }
                }
                // And into the slot, as the daemon copies it.
                slot[..done].copy_from_slice(&out[..done]);
                black_box(done)
            })
        });
        let mut work = vec![0u8; whole.len() + 4096];
        g.bench_function("fragment", |b| {
            b.iter(|| {
                work[..whole.len()].copy_from_slice(&whole);
                let f = fragment_in_place(&mut work, 0..whole.len(), MTU, 7).expect("fragment");
                black_box(f.count())
            })
        });
        g.finish();
    }
}

criterion_group!(benches, fragments);
criterion_main!(benches);
