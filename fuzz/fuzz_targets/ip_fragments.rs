//! palisade-esp's IP reassembly and fragmentation on arbitrary bytes: the fragments come
//! from the host's own stack, but palisaded must survive whatever it reads. Sequences of
//! fragments are pushed into a small reassembly: no panic, never more datagrams in
//! progress than the limit, and a completed datagram is no longer than the limit. Each
//! completed datagram is cut again at an MTU the input picks and put back together by a
//! fresh reassembly: it must come back byte for byte. Every input packet is also cut on
//! its own, which must not panic and, when it succeeds, yields fragments within the MTU.
//!
//! Input: the first two bytes pick the MTU (576 plus a multiple of 8, up to 2,616); then
//! packets, each behind a two-byte big-endian length.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use palisade_esp::fragmentation::fragment_in_place;
use palisade_esp::reassembly::{Pushed, Reassembly, ReassemblyLimits};

const LIMITS: ReassemblyLimits = ReassemblyLimits {
    datagrams: 4,
    max_len: 9216,
    timeout: Duration::from_secs(30),
};

fuzz_target!(|data: &[u8]| {
    let Some((pick, mut rest)) = data.split_at_checked(2) else {
        return;
    };
    let mtu = 576 + 8 * usize::from(u16::from_be_bytes([pick[0], pick[1]]) % 256);
    let now = Instant::now();
    let mut r = Reassembly::new(LIMITS);
    let mut out = vec![0u8; LIMITS.max_len];
    while let Some((len, tail)) = rest.split_at_checked(2) {
        let len = usize::from(u16::from_be_bytes([len[0], len[1]])).min(tail.len());
        let (packet, next) = tail.split_at(len);
        rest = next;

        let mut buf = packet.to_vec();
        buf.resize(len + 4096, 0);
        if let Ok(f) = fragment_in_place(&mut buf, 0..len, mtu, 7) {
            if len <= mtu {
                assert_eq!(f.count(), 1);
            } else {
                assert!(f.ranges().all(|r| r.len() <= mtu));
            }
        }

        if let Ok(Pushed::Complete(n)) = r.push(packet, now, &mut out) {
            assert!(n <= LIMITS.max_len);
            round_trip(&out[..n], mtu);
        }
        assert!(r.in_progress() <= LIMITS.datagrams);
    }
});

/// Cuts `datagram` to `mtu` and puts it back together.
fn round_trip(datagram: &[u8], mtu: usize) {
    let mut buf = datagram.to_vec();
    buf.resize(datagram.len() + 4096, 0);
    let Ok(f) = fragment_in_place(&mut buf, 0..datagram.len(), mtu, 0x5041) else {
        return;
    };
    if f.count() == 1 {
        return;
    }
    let mut again = Reassembly::new(LIMITS);
    let mut out = vec![0u8; LIMITS.max_len];
    let mut whole = None;
    for range in f.ranges() {
        assert!(range.len() <= mtu);
        if let Ok(Pushed::Complete(n)) = again.push(&buf[range], Instant::now(), &mut out) {
            whole = Some(out[..n].to_vec());
        }
    }
    let whole = whole.expect("the fragments of a reassembled datagram reassemble");
    // DF and the reserved bit are cleared when cutting; the rest is the datagram.
    if datagram[0] >> 4 == 4 {
        let (mut a, mut b) = (datagram.to_vec(), whole);
        for p in [&mut a, &mut b] {
            p[6] &= 0x1f;
            p[10..12].fill(0);
        }
        assert_eq!(a, b);
    } else {
        assert_eq!(whole, datagram);
    }
}
