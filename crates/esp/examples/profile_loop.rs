//! A tight loop for profilers (`valgrind --tool=callgrind`, `perf record`), where
//! criterion's harness would blur the picture. Not a benchmark: BENCHMARKS.md's figures
//! come from `cargo bench`.
//!
//! Usage: profile_loop MODE N
//! - `roundtrip`: N tunnel-mode AES-128-GCM encapsulations and decapsulations of 1400 bytes;
//! - `encap`: N encapsulations only;
//! - `raw`: N bare aws-lc AES-128-GCM seals of 1400 bytes;
//! - `keys`: the bare seal timed with 12 freshly made keys, N seals each;
//! - `ratio`: N rounds that each time, back to back, 64 of: bare seals, encapsulations,
//!   bare opens, decapsulations, `EspTransform` seals and opens alone (the crypto layer
//!   without the SA), and seals of the ESP layout straight through aws-lc-rs; then the
//!   median of each and the ratios to the bare AEAD. All share every round's
//!   conditions, so the slow and fast phases of this VM move them together (run it
//!   under `taskset -c 1` to stay on one vCPU).

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::IpAddr;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use palisade_esp::{Direction, EspSuite, Mode, Packet, SaConfig, SaTransform, Sad};

const HEAD: usize = 128;
const LEN: usize = 1400;

fn raw_key(keys: &[u8]) -> Result<LessSafeKey> {
    let unbound = UnboundKey::new(&AES_128_GCM, &keys[..16]).map_err(|_| anyhow!("key"))?;
    Ok(LessSafeKey::new(unbound))
}

/// The bare seal, in aws-lc-rs's fastest form for a tag next to the ciphertext: the
/// scatter call writes it in place (`seal_in_place_separate_tag` returns a `Tag` whose
/// move through the stack stalls a store-forward).
fn raw_seal(key: &LessSafeKey, buf: &mut [u8]) -> Result<()> {
    let (data, tag) = buf[HEAD..HEAD + LEN + 16].split_at_mut(LEN);
    key.seal_in_place_scatter(
        Nonce::assume_unique_for_key([1; 12]),
        Aad::from([0u8; 8]),
        data,
        &[],
        tag,
    )
    .map_err(|_| anyhow!("seal"))
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().context("usage: profile_loop MODE N")?;
    let n: u32 = args.next().context("usage: profile_loop MODE N")?.parse()?;
    let now = Instant::now();
    let suite = EspSuite::AES128_GCM16;
    let keys = vec![7u8; suite.keymat_len()];
    let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse()?, "192.0.2.2".parse()?);
    let cfg = |dir, local, remote| {
        let mut c = SaConfig::new(0x1234, dir, SaTransform::Esp(suite), local, remote);
        c.mode = Mode::Tunnel;
        c
    };
    let (mut tx, mut rx) = (Sad::new(), Sad::new());
    let out = tx.install(cfg(Direction::Outbound, a, b), &keys, now)?;
    rx.install(cfg(Direction::Inbound, b, a), &keys, now)?;
    let inner = common::udp_packet("10.1.0.1".parse()?, "10.2.0.1".parse()?, LEN - 28, 0);
    let mut buf = vec![0u8; HEAD + LEN + 128];
    if mode == "keys" {
        let mut kept = Vec::new();
        for k in 0..12 {
            let key = raw_key(&keys)?;
            let t = Instant::now();
            for _ in 0..n {
                raw_seal(&key, &mut buf)?;
            }
            println!("key {k}: {:?} per seal", t.elapsed() / n);
            // Keep the keys alive so the next ones land elsewhere in memory.
            kept.push(key);
        }
        return Ok(());
    }
    let key = raw_key(&keys)?;
    if mode == "ratio" {
        return ratio(&key, &mut tx, &mut rx, out, &inner, n, now);
    }
    let t = Instant::now();
    for _ in 0..n {
        buf[HEAD..HEAD + LEN].copy_from_slice(&inner);
        match mode.as_str() {
            "raw" => raw_seal(&key, &mut buf)?,
            "encap" | "roundtrip" => {
                let mut pkt = Packet::new(&mut buf, HEAD, LEN);
                tx.encapsulate(out, &mut pkt, now)?;
                if mode == "roundtrip" {
                    rx.decapsulate(&mut pkt, now)?;
                }
            }
            other => return Err(anyhow!("unknown mode {other}")),
        }
    }
    println!("{mode}: {:?} per iteration", t.elapsed() / n);
    Ok(())
}

fn raw_open(key: &LessSafeKey, buf: &mut [u8]) -> Result<()> {
    let (data, tag) = buf[HEAD..HEAD + LEN + 16].split_at_mut(LEN);
    key.open_in_place_separate_tag(
        Nonce::assume_unique_for_key([1; 12]),
        Aad::from([0u8; 8]),
        tag,
        data,
    )
    .map_err(|_| anyhow!("open"))?;
    Ok(())
}

/// Interleaved rounds of 64 operations each; see the module doc.
fn ratio(
    key: &LessSafeKey,
    tx: &mut Sad,
    rx: &mut Sad,
    out: palisade_esp::SaHandle,
    inner: &[u8],
    rounds: u32,
    now: Instant,
) -> Result<()> {
    const BATCH: usize = 64;
    let mut pool: Vec<(Vec<u8>, usize, usize)> =
        vec![(vec![0u8; HEAD + LEN + 128], HEAD, LEN); BATCH];
    let mut sealed = vec![0u8; HEAD + LEN + 128];
    sealed[HEAD..HEAD + LEN].copy_from_slice(inner);
    raw_seal(key, &mut sealed)?;
    let mut times: [Vec<f64>; 7] = Default::default();
    let mut sealed_esp = Vec::new();
    let transform = palisade_crypto::EspTransform::new(EspSuite::AES128_GCM16, &[7u8; 20])
        .map_err(|e| anyhow!("{e}"))?;
    // SPI | seq | IV | LEN + 4 payload (a multiple of 4) | ICV, at the offset encap uses.
    let esp_at = HEAD - 16;
    let esp_len = 16 + LEN + 4 + 16;
    let mut seq = 0u64;
    for _ in 0..rounds {
        // the crypto layer alone
        for (buf, ..) in pool.iter_mut() {
            buf[HEAD..HEAD + LEN].copy_from_slice(inner);
        }
        let t = Instant::now();
        for (buf, ..) in pool.iter_mut() {
            seq += 1;
            let esp = &mut std::hint::black_box(buf)[esp_at..esp_at + esp_len];
            esp[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
            transform
                .seal(esp, seq, false)
                .map_err(|e| anyhow!("{e}"))?;
        }
        times[4].push(t.elapsed().as_nanos() as f64 / BATCH as f64);
        // aws-lc-rs on the ESP layout: nonce salt||seq, AAD from the header in the packet
        for (buf, ..) in pool.iter_mut() {
            buf[HEAD..HEAD + LEN].copy_from_slice(inner);
        }
        let t = Instant::now();
        for (buf, ..) in pool.iter_mut() {
            seq += 1;
            let esp = &mut std::hint::black_box(buf)[esp_at..esp_at + esp_len];
            esp[..4].copy_from_slice(&0x1234u32.to_be_bytes());
            esp[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
            esp[8..16].copy_from_slice(&seq.to_be_bytes());
            let mut nonce = [7u8; 12];
            nonce[4..].copy_from_slice(&seq.to_be_bytes());
            let (hdr, rest) = esp.split_at_mut(16);
            let (payload, icv) = rest.split_at_mut(LEN + 4);
            let tag = key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&hdr[..8]),
                    payload,
                )
                .map_err(|_| anyhow!("seal"))?;
            icv.copy_from_slice(tag.as_ref());
        }
        times[5].push(t.elapsed().as_nanos() as f64 / BATCH as f64);
        // the crypto layer's open on what the transform sealed (fresh copies each round)
        sealed_esp.clear();
        for (buf, ..) in pool.iter_mut() {
            buf[HEAD..HEAD + LEN].copy_from_slice(inner);
            seq += 1;
            let esp = &mut buf[esp_at..esp_at + esp_len];
            esp[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
            transform
                .seal(esp, seq, false)
                .map_err(|e| anyhow!("{e}"))?;
            sealed_esp.push(seq);
        }
        let t = Instant::now();
        for ((buf, ..), s) in pool.iter_mut().zip(&sealed_esp) {
            let esp = &mut std::hint::black_box(buf)[esp_at..esp_at + esp_len];
            transform.open(esp, *s, false).map_err(|e| anyhow!("{e}"))?;
        }
        times[6].push(t.elapsed().as_nanos() as f64 / BATCH as f64);
        // raw seal
        for (buf, ..) in pool.iter_mut() {
            buf[HEAD..HEAD + LEN].copy_from_slice(inner);
        }
        let t = Instant::now();
        for (buf, ..) in pool.iter_mut() {
            raw_seal(key, std::hint::black_box(buf))?;
        }
        times[0].push(t.elapsed().as_nanos() as f64 / BATCH as f64);
        // encap
        for (buf, ..) in pool.iter_mut() {
            buf[HEAD..HEAD + LEN].copy_from_slice(inner);
        }
        let t = Instant::now();
        for (buf, ..) in pool.iter_mut() {
            let mut pkt = Packet::new(std::hint::black_box(buf), HEAD, LEN);
            tx.encapsulate(out, &mut pkt, now)?;
        }
        times[1].push(t.elapsed().as_nanos() as f64 / BATCH as f64);
        // raw open
        for (buf, ..) in pool.iter_mut() {
            buf.copy_from_slice(&sealed);
        }
        let t = Instant::now();
        for (buf, ..) in pool.iter_mut() {
            raw_open(key, std::hint::black_box(buf))?;
        }
        times[2].push(t.elapsed().as_nanos() as f64 / BATCH as f64);
        // decap: sealed untimed with fresh sequence numbers
        for (buf, start, len) in pool.iter_mut() {
            buf[HEAD..HEAD + LEN].copy_from_slice(inner);
            let mut pkt = Packet::new(buf, HEAD, LEN);
            tx.encapsulate(out, &mut pkt, now)?;
            (*start, *len) = (pkt.start, pkt.len);
        }
        let t = Instant::now();
        for (buf, start, len) in pool.iter_mut() {
            let mut pkt = Packet::new(std::hint::black_box(buf), *start, *len);
            rx.decapsulate(&mut pkt, now)?;
        }
        times[3].push(t.elapsed().as_nanos() as f64 / BATCH as f64);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let [s, e, o, d, c, v, co] = times.each_mut().map(med);
    println!(
        "EspTransform::open {co:.1} ns: raw_open/transform {:.1} %",
        100.0 * o / co
    );
    println!(
        "inline ESP layout {v:.1} ns: raw_seal/inline {:.1} %",
        100.0 * s / v
    );
    println!(
        "EspTransform::seal {c:.1} ns: raw_seal/transform {:.1} %",
        100.0 * s / c
    );
    println!(
        "raw_seal {s:.1} ns, encap {e:.1} ns: encap/raw_seal {:.1} %",
        100.0 * s / e
    );
    println!(
        "raw_open {o:.1} ns, decap {d:.1} ns: decap/raw_open {:.1} %",
        100.0 * o / d
    );
    Ok(())
}
