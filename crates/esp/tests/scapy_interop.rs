//! Byte-for-byte interop with an independent implementation: scapy's
//! `scapy.layers.ipsec.SecurityAssociation`.
//!
//! For every transform, both modes, IPv4 and IPv6 (and v4-in-v6, v6-in-v4), with and
//! without UDP encapsulation and with ESN: Palisade seals and scapy opens; scapy seals
//! and Palisade opens; scapy's packets with one byte flipped are rejected as integrity
//! failures and a replayed packet as a replay, and both are counted.
//!
//! Needs python3 with scapy and cryptography (scripts/test.sh installs them). Set
//! PALISADE_SKIP_SCAPY=1 to skip explicitly; a missing scapy is otherwise a failure.

mod common;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;

#[path = "../../../tests/support/scapy.rs"]
mod scapy;
use std::time::Instant;

use common::{PairSpec, keymat, keymat_len, open, pair, seal, udp_packet};
use palisade_esp::{
    Direction, DropReason, EspError, EspSuite, IntegId, Mode, SaConfig, SaTransform, Sad, UdpEncap,
};
use serde_json::{Value, json};

const PALISADE_PORT: u16 = 4500;
const PEER_PORT: u16 = 4501;

struct Case {
    name: String,
    transform: SaTransform,
    mode: Mode,
    inner_v6: bool,
    outer_v6: bool,
    udp: bool,
    esn: bool,
}

fn scapy_names(t: SaTransform) -> (&'static str, &'static str, &'static str) {
    match t {
        SaTransform::Esp(s) => {
            let crypt = match s.encr {
                palisade_esp::EncrId::AesGcm16 => "AES-GCM",
                palisade_esp::EncrId::ChaCha20Poly1305 => "CHACHA20-POLY1305",
                palisade_esp::EncrId::NullAuthAesGmac => "AES-NULL-GMAC",
                palisade_esp::EncrId::AesCbc => "AES-CBC",
                palisade_esp::EncrId::Null => "NULL",
            };
            ("ESP", crypt, auth_name(s.integ))
        }
        SaTransform::Ah(i) => ("AH", "NULL", auth_name(i)),
    }
}

fn auth_name(i: IntegId) -> &'static str {
    match i {
        IntegId::None => "NULL",
        IntegId::HmacSha1_96 => "HMAC-SHA1-96",
        IntegId::HmacSha2_256_128 => "SHA2-256-128",
        IntegId::HmacSha2_384_192 => "SHA2-384-192",
        IntegId::HmacSha2_512_256 => "SHA2-512-256",
        other => panic!("scapy has no {other:?}"),
    }
}

fn addrs(v6: bool, inner: bool) -> (IpAddr, IpAddr) {
    let s = match (v6, inner) {
        (false, false) => ("10.200.0.1", "10.200.0.2"),
        (false, true) => ("10.201.1.1", "10.201.2.2"),
        (true, false) => ("fd00:200::1", "fd00:200::2"),
        (true, true) => ("fd00:201:1::1", "fd00:201:2::2"),
    };
    (s.0.parse().expect("addr"), s.1.parse().expect("addr"))
}

fn cases() -> Vec<Case> {
    let suites = [
        EspSuite::AES128_GCM16,
        EspSuite::AES256_GCM16,
        EspSuite::CHACHA20_POLY1305,
        EspSuite::AES128_GMAC,
        EspSuite::AES256_GMAC,
        EspSuite::AES128_CBC_SHA1_96,
        EspSuite::AES128_CBC_SHA256_128,
        EspSuite::AES256_CBC_SHA384_192,
        EspSuite::AES256_CBC_SHA512_256,
        EspSuite::NULL_SHA256_128,
    ];
    let mut out = Vec::new();
    for suite in suites {
        for mode in [Mode::Transport, Mode::Tunnel] {
            for v6 in [false, true] {
                for udp in [false, true] {
                    out.push(Case {
                        name: format!(
                            "esp/{}/{:?}/{}/{}",
                            suite.name(),
                            mode,
                            if v6 { "v6" } else { "v4" },
                            if udp { "udp" } else { "raw" }
                        ),
                        transform: SaTransform::Esp(suite),
                        mode,
                        inner_v6: v6,
                        outer_v6: v6,
                        udp,
                        esn: false,
                    });
                }
            }
        }
    }
    // Mixed families in tunnel mode, and ESN across the 2^32 boundary.
    for (inner_v6, outer_v6) in [(false, true), (true, false)] {
        out.push(Case {
            name: format!("esp/aes128gcm16/tunnel/inner-v6={inner_v6}/outer-v6={outer_v6}"),
            transform: SaTransform::Esp(EspSuite::AES128_GCM16),
            mode: Mode::Tunnel,
            inner_v6,
            outer_v6,
            udp: false,
            esn: false,
        });
    }
    for suite in [
        EspSuite::AES128_GCM16,
        EspSuite::AES128_CBC_SHA256_128,
        EspSuite::CHACHA20_POLY1305,
    ] {
        for mode in [Mode::Transport, Mode::Tunnel] {
            out.push(Case {
                name: format!("esp/{}/{:?}/v4/esn", suite.name(), mode),
                transform: SaTransform::Esp(suite),
                mode,
                inner_v6: false,
                outer_v6: false,
                udp: false,
                esn: true,
            });
        }
    }
    for integ in [
        IntegId::HmacSha1_96,
        IntegId::HmacSha2_256_128,
        IntegId::HmacSha2_384_192,
        IntegId::HmacSha2_512_256,
    ] {
        for mode in [Mode::Transport, Mode::Tunnel] {
            for v6 in [false, true] {
                out.push(Case {
                    name: format!("ah/{:?}/{:?}/{}", integ, mode, if v6 { "v6" } else { "v4" }),
                    transform: SaTransform::Ah(integ),
                    mode,
                    inner_v6: v6,
                    outer_v6: v6,
                    udp: false,
                    esn: integ == IntegId::HmacSha2_256_128,
                });
            }
        }
    }
    out
}

/// Sequence numbers used on each side: across 2^32 with ESN, from 1 without.
fn seqs(esn: bool) -> Vec<u64> {
    if esn {
        vec![0xFFFF_FFFE, 0xFFFF_FFFF, 0x1_0000_0001, 0x1_0000_0002]
    } else {
        vec![1, 2, 3, 4]
    }
}

const PAYLOADS: [usize; 4] = [0, 1, 61, 1200];

struct Prepared {
    json: Value,
    /// Clear packets scapy will seal towards Palisade.
    plain_s2p: Vec<Vec<u8>>,
}

fn prepare(case: &Case, index: usize, now: Instant) -> Prepared {
    let (palisade, peer) = addrs(case.outer_v6, false);
    let (inner_a, inner_b) = if case.mode == Mode::Tunnel {
        addrs(case.inner_v6, true)
    } else {
        (palisade, peer)
    };
    let spec = PairSpec {
        transform: case.transform,
        mode: case.mode,
        a: palisade,
        b: peer,
        esn: case.esn,
        udp: case.udp.then_some(UdpEncap {
            local_port: PALISADE_PORT,
            remote_port: PEER_PORT,
        }),
        tfc_pad_to: None,
        window: 1024,
    };
    let spi_p2s = 0x1000_0000 + index as u32;
    let mut p = pair(&spec, spi_p2s, now);
    let first = seqs(case.esn)[0];
    p.a.get_mut_for_test(p.out)
        .expect("sa")
        .set_outbound_sequence(first - 1);

    let mut plain = Vec::new();
    let mut sealed = Vec::new();
    for (i, len) in PAYLOADS.iter().enumerate() {
        let pkt = udp_packet(inner_a, inner_b, *len, (i as u8) << 2 | 0b10);
        sealed.push(hex::encode(seal(&mut p, &pkt, now).expect("seal")));
        plain.push(hex::encode(&pkt));
    }
    let plain_s2p: Vec<Vec<u8>> = PAYLOADS
        .iter()
        .map(|len| udp_packet(inner_b, inner_a, *len, 0))
        .collect();
    let keylen = keymat_len(case.transform);
    let split = match case.transform {
        SaTransform::Esp(s) => s.encr_key_len(),
        SaTransform::Ah(_) => 0,
    };
    let k_p2s = keymat(keylen, spi_p2s as u8);
    let spi_s2p = 0x2000_0000 + index as u32;
    let k_s2p = keymat(keylen, spi_s2p as u8);
    let (proto, crypt, auth) = scapy_names(case.transform);
    let json = json!({
        "name": case.name,
        "proto": proto,
        "crypt_algo": crypt,
        "auth_algo": auth,
        "crypt_key_p2s": hex::encode(&k_p2s[..split]),
        "auth_key_p2s": hex::encode(&k_p2s[split..]),
        "crypt_key_s2p": hex::encode(&k_s2p[..split]),
        "auth_key_s2p": hex::encode(&k_s2p[split..]),
        "spi_p2s": spi_p2s,
        "spi_s2p": spi_s2p,
        "mode": if case.mode == Mode::Tunnel { "tunnel" } else { "transport" },
        "outer_family": if case.outer_v6 { 6 } else { 4 },
        "inner_family": if case.inner_v6 { 6 } else { 4 },
        "palisade": palisade.to_string(),
        "peer": peer.to_string(),
        "nat_t": case.udp,
        "palisade_port": PALISADE_PORT,
        "peer_port": PEER_PORT,
        "esn": case.esn,
        "plain": plain,
        "sealed": sealed,
        "seqs": seqs(case.esn),
        "plain_s2p": plain_s2p.iter().map(hex::encode).collect::<Vec<_>>(),
        "seqs_s2p": seqs(case.esn),
    });
    Prepared { json, plain_s2p }
}

#[test]
fn scapy_opens_palisade_and_palisade_opens_scapy() {
    let Some(py) =
        scapy::python_or_skip("scapy.layers.ipsec, cryptography", "the scapy interop test")
    else {
        return;
    };
    let now = Instant::now();
    let cases = cases();
    let prepared: Vec<Prepared> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| prepare(c, i, now))
        .collect();
    let dir = std::env::temp_dir().join(format!("palisade-scapy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let input = dir.join("cases.json");
    let output = dir.join("results.json");
    let doc = json!({ "cases": prepared.iter().map(|p| p.json.clone()).collect::<Vec<_>>() });
    std::fs::write(&input, serde_json::to_vec(&doc).expect("json")).expect("write cases");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/scapy_esp.py");
    let status = Command::new(&py)
        .arg(&script)
        .arg(&input)
        .arg(&output)
        .status()
        .expect("run scapy");
    assert!(status.success(), "scapy_esp.py failed");
    let results: Value =
        serde_json::from_slice(&std::fs::read(&output).expect("read results")).expect("parse");
    let _ = std::fs::remove_dir_all(&dir);

    let mut failures = Vec::new();
    let mut checked = 0usize;
    for (index, ((case, prep), res)) in cases
        .iter()
        .zip(&prepared)
        .zip(results["cases"].as_array().expect("cases"))
        .enumerate()
    {
        // 1. scapy opened what Palisade sealed.
        let opened = res["opened"].as_array().expect("opened");
        assert_eq!(opened.len(), PAYLOADS.len(), "{}", case.name);
        if opened.iter().any(|o| o != true) {
            failures.push(format!(
                "{}: scapy could not open: {}",
                case.name, res["errors"]
            ));
        }
        // 2. Palisade opens what scapy sealed, rejects tampering and replay.
        let (palisade, peer) = addrs(case.outer_v6, false);
        let spi_s2p = 0x2000_0000 + index as u32;
        let mut cfg = SaConfig::new(spi_s2p, Direction::Inbound, case.transform, palisade, peer);
        cfg.mode = case.mode;
        cfg.esn = case.esn;
        if case.udp {
            cfg.udp_encap = Some(UdpEncap {
                local_port: PALISADE_PORT,
                remote_port: PEER_PORT,
            });
        }
        let mut sad = Sad::new();
        let h = sad
            .install(cfg, &keymat(keymat_len(case.transform), spi_s2p as u8), now)
            .expect("install inbound");
        let hexes = |k: &str| -> Vec<Vec<u8>> {
            res[k]
                .as_array()
                .expect(k)
                .iter()
                .map(|v| hex::decode(v.as_str().expect("hex")).expect("hex"))
                .collect()
        };
        for bad in hexes("tampered") {
            match open(&mut sad, &bad, now) {
                Err(EspError::Integrity) => {}
                other => failures.push(format!("{}: tampered packet gave {other:?}", case.name)),
            }
        }
        for (wire, want) in hexes("sealed").iter().zip(&prep.plain_s2p) {
            match open(&mut sad, wire, now) {
                Ok(got) if &got == want => checked += 1,
                Ok(got) => failures.push(format!(
                    "{}: Palisade opened {} want {}",
                    case.name,
                    hex::encode(got),
                    hex::encode(want)
                )),
                Err(e) => failures.push(format!("{}: Palisade could not open: {e:?}", case.name)),
            }
        }
        let replayed = hex::decode(res["replayed"].as_str().expect("replayed")).expect("hex");
        match open(&mut sad, &replayed, now) {
            Err(EspError::Replay) => {}
            other => failures.push(format!("{}: replayed packet gave {other:?}", case.name)),
        }
        let counters = sad.get(h).expect("sa").counters();
        if counters.drops.get(DropReason::Integrity) != PAYLOADS.len() as u64
            || counters.drops.get(DropReason::Replay) != 1
            || counters.packets != PAYLOADS.len() as u64
            || sad.drops().get(DropReason::Integrity) != PAYLOADS.len() as u64
        {
            failures.push(format!("{}: counters {:?}", case.name, counters));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "scapy {}: {} cases, {} packets each way verified",
        results["scapy"],
        cases.len(),
        checked
    );
    assert_eq!(checked, cases.len() * PAYLOADS.len());
}
