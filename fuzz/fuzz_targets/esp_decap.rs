//! Decapsulation with fixed SAs: whatever arrives, the receive path must not panic and
//! must leave the packet range inside the buffer.
//!
//! The first byte picks how the rest is used:
//! - even: the rest is a received IP packet, as from the wire;
//! - odd: the rest is an ESP *plaintext* (payload, padding, trailer) that the fuzzer
//!   controls, sealed with the receiver's own keys, so the code behind the ICV check
//!   (padding, next header, inner packet, ECN, transport header rebuild) is reached.
#![no_main]

use std::net::IpAddr;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use palisade_crypto::EspTransform;
use palisade_esp::{
    Direction, EspSuite, IntegId, Mode, Packet, SaConfig, SaTransform, Sad, UdpEncap,
};

const HEAD: usize = 128;
const TAIL: usize = 128;

struct Receiver {
    spi: u32,
    transform: SaTransform,
    mode: Mode,
    v6: bool,
    udp: bool,
    esn: bool,
}

const RECEIVERS: [Receiver; 5] = [
    Receiver {
        spi: 0x100,
        transform: SaTransform::Esp(EspSuite::AES128_GCM16),
        mode: Mode::Tunnel,
        v6: false,
        udp: false,
        esn: false,
    },
    Receiver {
        spi: 0x200,
        transform: SaTransform::Esp(EspSuite::AES128_CBC_SHA256_128),
        mode: Mode::Transport,
        v6: true,
        udp: true,
        esn: false,
    },
    Receiver {
        spi: 0x300,
        transform: SaTransform::Esp(EspSuite::CHACHA20_POLY1305),
        mode: Mode::Transport,
        v6: false,
        udp: false,
        esn: true,
    },
    Receiver {
        spi: 0x400,
        transform: SaTransform::Esp(EspSuite::AES256_GMAC),
        mode: Mode::Tunnel,
        v6: true,
        udp: false,
        esn: true,
    },
    Receiver {
        spi: 0x500,
        transform: SaTransform::Ah(IntegId::HmacSha2_256_128),
        mode: Mode::Transport,
        v6: false,
        udp: false,
        esn: false,
    },
];

fn addrs(v6: bool) -> (IpAddr, IpAddr) {
    if v6 {
        (
            "2001:db8::2".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
        )
    } else {
        ("192.0.2.2".parse().unwrap(), "192.0.2.1".parse().unwrap())
    }
}

fn keymat(t: SaTransform) -> Vec<u8> {
    let len = match t {
        SaTransform::Esp(s) => s.keymat_len(),
        SaTransform::Ah(i) => i.key_len(),
    };
    (0..len).map(|i| i as u8 ^ 0x5c).collect()
}

fn sad(now: Instant) -> Sad {
    let mut sad = Sad::new();
    for r in &RECEIVERS {
        let (local, remote) = addrs(r.v6);
        let mut c = SaConfig::new(r.spi, Direction::Inbound, r.transform, local, remote);
        c.mode = r.mode;
        c.esn = r.esn;
        c.replay_window = 64;
        if r.udp {
            c.udp_encap = Some(UdpEncap::default());
        }
        sad.install(c, &keymat(r.transform), now).unwrap();
    }
    sad
}

/// Wraps a fuzzer-chosen plaintext in a valid outer header and ESP, sealed with `r`'s keys.
fn sealed(r: &Receiver, seq: u32, plain: &[u8]) -> Option<Vec<u8>> {
    let SaTransform::Esp(suite) = r.transform else {
        return None;
    };
    let t = EspTransform::new(suite, &keymat(r.transform)).ok()?;
    let n = plain.len() / suite.align() * suite.align();
    if n < 2 {
        return None;
    }
    let esp_len = 8 + suite.iv_len() + n + suite.icv_len();
    let udp = if r.udp { 8 } else { 0 };
    let ip = if r.v6 { 40 } else { 20 };
    let total = ip + udp + esp_len;
    let mut p = vec![0u8; total];
    let (local, remote) = addrs(r.v6);
    let proto = if r.udp { 17 } else { 50 };
    match (remote, local) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            palisade_wire::Ipv4Header {
                dscp: 0,
                ecn: 3,
                total_len: total as u16,
                identification: 0,
                dont_fragment: false,
                more_fragments: false,
                fragment_offset: 0,
                ttl: 64,
                protocol: proto,
                checksum: 0,
                src: s.octets(),
                dst: d.octets(),
                header_len: 20,
            }
            .write(&mut p)
            .ok()?;
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            palisade_wire::Ipv6Header {
                traffic_class: 3,
                flow_label: 0,
                payload_len: (total - 40) as u16,
                next_header: proto,
                hop_limit: 64,
                src: s.octets(),
                dst: d.octets(),
            }
            .write(&mut p)
            .ok()?;
        }
        _ => return None,
    }
    if r.udp {
        palisade_wire::UdpHeader {
            src_port: 4500,
            dst_port: 4500,
            length: (udp + esp_len) as u16,
            checksum: 0,
        }
        .write(&mut p[ip..])
        .ok()?;
    }
    let esp = &mut p[ip + udp..];
    esp[..4].copy_from_slice(&r.spi.to_be_bytes());
    esp[4..8].copy_from_slice(&seq.to_be_bytes());
    let at = 8 + suite.iv_len();
    esp[at..at + n].copy_from_slice(&plain[..n]);
    t.seal(esp, u64::from(seq), r.esn).ok()?;
    Some(p)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let now = Instant::now();
    let mut sad = sad(now);
    let packet = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let Some((&which, rest)) = rest.split_first() else {
            return;
        };
        let r = &RECEIVERS[usize::from(which) % RECEIVERS.len()];
        let seq = u32::from(which).max(1);
        match sealed(r, seq, rest) {
            Some(p) => p,
            None => return,
        }
    };
    let mut buf = vec![0u8; HEAD + packet.len() + TAIL];
    buf[HEAD..HEAD + packet.len()].copy_from_slice(&packet);
    let len = buf.len();
    let mut pkt = Packet::new(&mut buf, HEAD, packet.len());
    // Every refusal is counted exactly once; a success is not counted as a drop.
    match sad.decapsulate(&mut pkt, now) {
        Ok(_) => {
            assert!(pkt.start + pkt.len <= len);
            assert_eq!(sad.drops().total(), 0);
        }
        Err(_) => assert_eq!(sad.drops().total(), 1),
    }
});
