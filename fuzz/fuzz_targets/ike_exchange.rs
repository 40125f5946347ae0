//! Two palisade-ike endpoints negotiating through a network the fuzzer controls.
//!
//! The input is a script: each step takes the datagram at the head of the queue and
//! delivers, drops, duplicates, corrupts or reorders it, injects the fuzzer's own bytes
//! into either endpoint, or moves the clock (retransmissions, give-up, half-open
//! timeouts). The messages themselves are genuine (both endpoints encrypt with the keys
//! they negotiated), so the script reaches every state of IKE_SA_INIT, IKE_AUTH and
//! INFORMATIONAL, and the corruption and injection reach the parsers and the checks in
//! each of them. Nothing may panic.

#![no_main]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use palisade_filter::policy::{
    AuthenticationMethod, DhGroup, IkeCipher, IkeIntegrity, IpsecProposal, IpsecTransportPolicy,
    MainModePolicy, MainModeProposal,
};
use palisade_ike::{
    Acquire, Endpoint, EndpointConfig, IkePolicy, QuickModePolicy, Random, RandomError,
    StaticPolicy, Transmit,
};

/// Steps per input, and datagrams in flight: enough for a handshake with
/// retransmissions, small enough to keep an input fast.
const MAX_STEPS: usize = 512;
const MAX_QUEUE: usize = 64;

/// A deterministic source (xorshift64*), so that a crash replays exactly.
struct Seeded(u64);

impl Random for Seeded {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        for chunk in buf.chunks_mut(8) {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_be_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("constant address")
}

fn policy(peer: SocketAddr) -> StaticPolicy {
    let ike = IkePolicy::new(MainModePolicy::new(
        [AuthenticationMethod::preshared_key("fuzz-psk-0123456789")],
        vec![
            MainModeProposal::new(
                IkeCipher::AesGcm128,
                IkeIntegrity::Sha256,
                DhGroup::Curve25519,
            ),
            MainModeProposal::new(IkeCipher::Aes128, IkeIntegrity::Sha256, DhGroup::Ecp256),
        ],
    ));
    let child = QuickModePolicy::Transport(IpsecTransportPolicy::new(vec![
        IpsecProposal::esp_aes128_gcm(),
        IpsecProposal::esp_aes128_cbc_sha256(),
    ]));
    StaticPolicy::new().with_peer(Some(peer.ip()), ike, Some(child))
}

/// The script's reader: runs out quietly at the end of the input.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*first)
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }
}

fuzz_target!(|data: &[u8]| {
    let (a_addr, b_addr) = (addr("192.0.2.1:500"), addr("192.0.2.2:500"));
    let config = EndpointConfig::default();
    let mut a = Endpoint::with_random(config, policy(b_addr), Seeded(0x0123_4567_89ab_cdef));
    let mut b = Endpoint::with_random(config, policy(a_addr), Seeded(0xfedc_ba98_7654_3210));
    let mut now = Instant::now();
    a.handle_acquire(
        now,
        Acquire {
            local: a_addr,
            remote: b_addr,
            traffic: None,
        },
    );

    // (to B?, datagram)
    let mut queue: VecDeque<(bool, Transmit)> = VecDeque::new();
    let mut script = Script(data);
    for _ in 0..MAX_STEPS {
        while a.poll_event().is_some() {}
        while b.poll_event().is_some() {}
        while let Some(tx) = a.poll_transmit() {
            if queue.len() < MAX_QUEUE {
                queue.push_back((true, tx));
            }
        }
        while let Some(tx) = b.poll_transmit() {
            if queue.len() < MAX_QUEUE {
                queue.push_back((false, tx));
            }
        }
        let Some(op) = script.byte() else { break };
        match op % 8 {
            // Deliver the head (the common case, so the handshake can progress).
            0..=2 => {
                if let Some((to_b, tx)) = queue.pop_front() {
                    deliver(&mut a, &mut b, now, to_b, &tx);
                }
            }
            3 => {
                queue.pop_front();
            }
            4 => {
                if let Some(head) = queue.front().cloned() {
                    queue.push_back(head);
                }
            }
            // Corrupt one byte of the head, then deliver it.
            5 => {
                let at = usize::from(script.byte().unwrap_or(0));
                let xor = script.byte().unwrap_or(1) | 1;
                if let Some((to_b, mut tx)) = queue.pop_front() {
                    let len = tx.bytes.len();
                    if len > 0 {
                        tx.bytes[at % len] ^= xor;
                    }
                    deliver(&mut a, &mut b, now, to_b, &tx);
                }
            }
            // Inject the script's bytes, or the head truncated, into either side.
            6 => {
                let to_b = op & 0x10 != 0;
                let len = usize::from(script.byte().unwrap_or(0));
                let bytes = if op & 0x20 != 0 {
                    queue
                        .front()
                        .map(|(_, tx)| tx.bytes[..len.min(tx.bytes.len())].to_vec())
                        .unwrap_or_default()
                } else {
                    script.bytes(len).to_vec()
                };
                let (from, to) = if to_b {
                    (a_addr, b_addr)
                } else {
                    (b_addr, a_addr)
                };
                let tx = Transmit {
                    local: from,
                    remote: to,
                    bytes,
                };
                deliver(&mut a, &mut b, now, to_b, &tx);
            }
            // Time passes: retransmissions, give-up, half-open timeouts.
            _ => {
                let step = u64::from(script.byte().unwrap_or(0)) * 100;
                now += Duration::from_millis(step);
                a.handle_timeout(now);
                b.handle_timeout(now);
            }
        }
    }
});

/// Hands `tx` to the endpoint it is addressed to, as the driver would.
fn deliver(a: &mut Endpoint, b: &mut Endpoint, now: Instant, to_b: bool, tx: &Transmit) {
    let endpoint = if to_b { b } else { a };
    endpoint.handle_datagram(now, tx.remote, tx.local, &tx.bytes);
}
