//! ESP throughput against the bare cipher of the same library, in one run.
//!
//! Groups `esp/<suite>/<bytes>`, functions:
//! - `raw_seal` / `raw_open`: aws-lc-rs alone on `bytes` bytes (AEAD with an 8-byte AAD,
//!   or AES-CBC then HMAC-SHA-256 over the result);
//! - `encap` / `decap`: Palisade's `Sad::encapsulate` / `Sad::decapsulate` of an IPv4
//!   packet of `bytes` bytes in tunnel mode (outer header, ESP header, IV, padding,
//!   trailer, ICV, sequence numbers, anti-replay, lifetime and counters included).
//!
//! Inputs come from a pool of 64 buffers refilled between timed passes (a sealed packet
//! can be opened only once, anti-replay), so only the operation itself is timed and the
//! raw and Palisade functions see the same memory: the same buffers, just as warm.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{
    AES_128_GCM, AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey,
};
use aws_lc_rs::cipher::{
    AES_128, DecryptingKey, EncryptingKey, EncryptionContext, UnboundCipherKey,
};
use aws_lc_rs::hmac;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_esp::{Direction, EspSuite, Mode, Packet, SaConfig, SaTransform, Sad};

const HEAD: usize = 128;
const TAIL: usize = 128;
const SIZES: [usize; 4] = [64, 512, 1400, 8192];

/// An IPv4 UDP packet of exactly `len` bytes (the tests' builder: 20 + 8 + payload).
fn ip_packet(len: usize) -> Vec<u8> {
    let (a, b) = (
        IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1)),
    );
    common::udp_packet(a, b, len - 28, 0)
}

fn framed(packet: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; HEAD + packet.len() + TAIL];
    buf[HEAD..HEAD + packet.len()].copy_from_slice(packet);
    buf
}

/// Keys (and SAs) per function. Where aws-lc's heap-allocated key context lands moves
/// the time of one key by up to 20 % (BENCHMARKS.md, notes); rotating over several keys
/// on both sides averages that luck out instead of comparing one draw with another.
const KEYS: usize = 8;

struct Sads {
    tx: Sad,
    rx: Sad,
    out: Vec<palisade_esp::SaHandle>,
}

fn sads(suite: EspSuite) -> Sads {
    let now = Instant::now();
    let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    let (mut tx, mut rx) = (Sad::new(), Sad::new());
    let mut out = Vec::new();
    for k in 0..KEYS {
        let keys: Vec<u8> = (0..suite.keymat_len()).map(|i| (i + k) as u8).collect();
        let cfg = |dir, l, r| {
            let mut c = SaConfig::new(0x1234_5600 + k as u32, dir, SaTransform::Esp(suite), l, r);
            c.mode = Mode::Tunnel;
            c
        };
        out.push(
            tx.install(cfg(Direction::Outbound, a, b), &keys, now)
                .expect("outbound"),
        );
        rx.install(cfg(Direction::Inbound, b, a), &keys, now)
            .expect("inbound");
    }
    Sads { tx, rx, out }
}

/// The bare primitive of a suite, as aws-lc-rs offers it (built once, so size is moot).
#[allow(clippy::large_enum_variant)]
enum Raw {
    Aead(LessSafeKey),
    CbcSha256 {
        enc: EncryptingKey,
        dec: DecryptingKey,
        mac: hmac::Key,
    },
}

impl Raw {
    fn new(suite: &str, k: usize) -> Raw {
        let key = [7u8 + k as u8; 32];
        match suite {
            "aes128gcm" => Raw::Aead(LessSafeKey::new(
                UnboundKey::new(&AES_128_GCM, &key[..16]).expect("key"),
            )),
            "aes256gcm" => Raw::Aead(LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, &key).expect("key"),
            )),
            "chacha20poly1305" => Raw::Aead(LessSafeKey::new(
                UnboundKey::new(&CHACHA20_POLY1305, &key).expect("key"),
            )),
            _ => Raw::CbcSha256 {
                enc: EncryptingKey::cbc(UnboundCipherKey::new(&AES_128, &key[..16]).expect("key"))
                    .expect("cbc"),
                dec: DecryptingKey::cbc(UnboundCipherKey::new(&AES_128, &key[..16]).expect("key"))
                    .expect("cbc"),
                mac: hmac::Key::new(hmac::HMAC_SHA256, &key),
            },
        }
    }

    /// Seals `buf[..len]`, leaving the tag in `buf[len..len + 16]`.
    fn seal(&self, buf: &mut [u8], len: usize) {
        match self {
            // The scatter form writes the tag in place: aws-lc-rs's fastest call for a
            // tag next to the ciphertext, and the one Palisade uses.
            Raw::Aead(k) => {
                let (data, tag) = buf[..len + 16].split_at_mut(len);
                k.seal_in_place_scatter(
                    Nonce::assume_unique_for_key([1; 12]),
                    Aad::from([0u8; 8]),
                    data,
                    &[],
                    tag,
                )
                .expect("seal");
            }
            Raw::CbcSha256 { enc, mac, .. } => {
                let n = len / 16 * 16;
                enc.less_safe_encrypt(&mut buf[..n], EncryptionContext::Iv128([3u8; 16].into()))
                    .expect("cbc");
                let tag = hmac::sign(mac, &buf[..len]);
                buf[len..len + 16].copy_from_slice(&tag.as_ref()[..16]);
            }
        }
    }

    fn open(&self, buf: &mut [u8], len: usize) {
        match self {
            Raw::Aead(k) => {
                let (data, tag) = buf[..len + 16].split_at_mut(len);
                k.open_in_place_separate_tag(
                    Nonce::assume_unique_for_key([1; 12]),
                    Aad::from([0u8; 8]),
                    tag,
                    data,
                )
                .expect("open");
            }
            Raw::CbcSha256 { dec, mac, .. } => {
                let tag = hmac::sign(mac, &buf[..len]);
                assert!(
                    aws_lc_rs::constant_time::verify_slices_are_equal(
                        &tag.as_ref()[..16],
                        &buf[len..len + 16]
                    )
                    .is_ok()
                );
                let n = len / 16 * 16;
                dec.decrypt(
                    &mut buf[..n],
                    aws_lc_rs::cipher::DecryptionContext::Iv128([3u8; 16].into()),
                )
                .expect("cbc");
            }
        }
    }
}

const POOL: usize = 64;

/// A pool buffer: bytes, packet start and length, and which of the `KEYS` keys it uses.
type Item = (Vec<u8>, usize, usize, usize);

/// Times `op` over `iters` items of `pool`, refilling the pool (untimed) before each pass.
fn over_pool<T>(
    iters: u64,
    pool: &mut [T],
    mut refill: impl FnMut(&mut T),
    mut op: impl FnMut(&mut T),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(pool.len());
        pool[..n].iter_mut().for_each(&mut refill);
        let t = Instant::now();
        for item in &mut pool[..n] {
            op(black_box(item));
        }
        total += t.elapsed();
        left -= n as u64;
    }
    total
}

fn bench(c: &mut Criterion) {
    let suites = [
        ("aes128gcm", EspSuite::AES128_GCM16),
        ("aes256gcm", EspSuite::AES256_GCM16),
        ("chacha20poly1305", EspSuite::CHACHA20_POLY1305),
        ("aes128cbc_sha256", EspSuite::AES128_CBC_SHA256_128),
    ];
    for (name, suite) in suites {
        let raws: Vec<Raw> = (0..KEYS).map(|k| Raw::new(name, k)).collect();
        for size in SIZES {
            let mut g = c.benchmark_group(format!("esp/{name}/{size}"));
            g.throughput(Throughput::Bytes(size as u64));
            let packet = ip_packet(size);
            let plain = framed(&packet);

            let mut pool: Vec<Item> = (0..POOL)
                .map(|i| (plain.clone(), HEAD, size, i % KEYS))
                .collect();
            let sealed_raw: Vec<Vec<u8>> = raws
                .iter()
                .map(|raw| {
                    let mut sealed = plain.clone();
                    raw.seal(&mut sealed, size);
                    sealed
                })
                .collect();
            let mut s = sads(suite);
            let now = Instant::now();

            g.bench_function("raw_seal", |b| {
                b.iter_custom(|iters| {
                    over_pool(
                        iters,
                        &mut pool,
                        |(buf, ..)| buf.copy_from_slice(&plain),
                        |(buf, _, _, k)| raws[*k].seal(buf, size),
                    )
                })
            });
            g.bench_function("encap", |b| {
                b.iter_custom(|iters| {
                    over_pool(
                        iters,
                        &mut pool,
                        |(buf, ..)| buf.copy_from_slice(&plain),
                        |(buf, _, _, k)| {
                            let mut pkt = Packet::new(buf, HEAD, size);
                            s.tx.encapsulate(s.out[*k], &mut pkt, now).expect("encap");
                        },
                    )
                })
            });
            g.bench_function("raw_open", |b| {
                b.iter_custom(|iters| {
                    over_pool(
                        iters,
                        &mut pool,
                        |(buf, _, _, k)| buf.copy_from_slice(&sealed_raw[*k]),
                        |(buf, _, _, k)| raws[*k].open(buf, size),
                    )
                })
            });
            let (tx, rx, out) = (&mut s.tx, &mut s.rx, &s.out);
            g.bench_function("decap", |b| {
                b.iter_custom(|iters| {
                    over_pool(
                        iters,
                        &mut pool,
                        // A fresh sequence number for every packet, sealed untimed.
                        |(buf, start, len, k)| {
                            buf.copy_from_slice(&plain);
                            let mut pkt = Packet::new(buf, HEAD, size);
                            tx.encapsulate(out[*k], &mut pkt, now).expect("encap");
                            (*start, *len) = (pkt.start, pkt.len);
                        },
                        |(buf, start, len, _)| {
                            let mut pkt = Packet::new(buf, *start, *len);
                            rx.decapsulate(&mut pkt, now).expect("decap");
                        },
                    )
                })
            });
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
