//! A tight loop for profilers (`valgrind --tool=callgrind`, `perf record`), where
//! criterion's harness would blur the picture. Not a benchmark: BENCHMARKS.md's figures
//! come from `cargo bench`.
//!
//! Usage: profile_loop MODE N
//! - `roundtrip`: N tunnel-mode AES-128-GCM encapsulations and decapsulations of 1400 bytes;
//! - `encap`: N encapsulations only;
//! - `raw`: N bare aws-lc AES-128-GCM seals of 1400 bytes;
//! - `keys`: the bare seal timed with 12 freshly made keys, N seals each.

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

fn raw_seal(key: &LessSafeKey, buf: &mut [u8]) -> Result<()> {
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([1; 12]),
            Aad::from([0u8; 8]),
            &mut buf[HEAD..HEAD + LEN],
        )
        .map_err(|_| anyhow!("seal"))?;
    buf[HEAD + LEN..HEAD + LEN + 16].copy_from_slice(tag.as_ref());
    Ok(())
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
