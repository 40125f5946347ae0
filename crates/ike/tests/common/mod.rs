//! Two endpoints joined by a simulated network, driven by a test clock,
//! and the policies and packets the tests share.
#![allow(dead_code)]

pub mod pki;

/// The data plane's test packets and room sizes (palisade-esp's own test support), so
/// that a CHILD_SA is proven with the same packets the ESP tests use.
#[path = "../../../esp/tests/common/mod.rs"]
mod esp_common;
use esp_common::{ROOM, udp_packet};

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use palisade_esp::{Packet, Sad};
use palisade_filter::policy::{
    AuthenticationMethod, DhGroup, IkeCipher, IkeIntegrity, IpsecProposal, IpsecTransportPolicy,
    MainModePolicy, MainModeProposal,
};
use palisade_ike::{
    Acquire, ChildSa, Endpoint, EndpointConfig, Event, Failure, IkePolicy, IkeSaInfo,
    QuickModePolicy, Random, RandomError, StaticPolicy, Transmit,
};

pub const A: &str = "192.0.2.1:500";
pub const B: &str = "192.0.2.2:500";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// xorshift64*: a seeded, reproducible source for SPIs, nonces and the
/// network's decisions.
#[derive(Debug, Clone)]
pub struct Seeded(pub u64);

impl Seeded {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

impl Random for Seeded {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_be_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

pub fn main_mode(psk: &str, proposals: &[MainModeProposal]) -> IkePolicy {
    IkePolicy::new(MainModePolicy::new(
        [AuthenticationMethod::preshared_key(psk)],
        proposals.to_vec(),
    ))
}

pub fn mm(cipher: IkeCipher, integrity: IkeIntegrity, dh: DhGroup) -> MainModeProposal {
    MainModeProposal::new(cipher, integrity, dh)
}

/// The main-mode proposal most tests negotiate: AES-GCM-128, SHA-256, Curve25519.
pub fn gcm() -> MainModeProposal {
    mm(
        IkeCipher::AesGcm128,
        IkeIntegrity::Sha256,
        DhGroup::Curve25519,
    )
}

/// One peer, transport mode, with the given policies.
pub fn transport_policy(peer: &str, ike: IkePolicy, qm: Vec<IpsecProposal>) -> StaticPolicy {
    StaticPolicy::new().with_peer(
        Some(addr(peer).ip()),
        ike,
        Some(QuickModePolicy::Transport(IpsecTransportPolicy::new(qm))),
    )
}

/// What travels: to endpoint `to_b`, delivered at `at`.
#[derive(Debug, Clone)]
pub struct InFlight {
    pub at: Instant,
    pub to_b: bool,
    pub tx: Transmit,
}

/// The simulated network and the two endpoints.
pub struct Net {
    pub a: Endpoint,
    pub b: Endpoint,
    pub now: Instant,
    pub start: Instant,
    pub rng: Seeded,
    pub loss: f64,
    pub duplicate: f64,
    /// Extra random latency up to this many milliseconds (reorders).
    pub jitter_ms: u64,
    /// Drop everything sent to B.
    pub b_dead: bool,
    /// A NAT in front of A that adds this to A's source ports.
    pub nat_offset: Option<u16>,
    /// A NAT in front of A that also puts the second address (its public one) in
    /// place of A's own, the first, as a masquerading router does.
    pub nat_address: Option<(IpAddr, IpAddr)>,
    pub flight: Vec<InFlight>,
    /// Every datagram sent, by A (`true`) or B.
    pub log: Vec<(bool, Vec<u8>)>,
    /// When each datagram of `log` was sent, and its addresses before the NAT.
    pub log_at: Vec<(Instant, Transmit)>,
    pub events_a: Vec<Event>,
    pub events_b: Vec<Event>,
}

impl Net {
    pub fn new(policy_a: StaticPolicy, policy_b: StaticPolicy, seed: u64) -> Self {
        Self::with_config(policy_a, policy_b, seed, EndpointConfig::default())
    }

    pub fn with_config(
        policy_a: StaticPolicy,
        policy_b: StaticPolicy,
        seed: u64,
        config: EndpointConfig,
    ) -> Self {
        let now = Instant::now();
        Self {
            a: Endpoint::with_random(config, policy_a, Seeded(seed ^ 0xA5A5_A5A5)),
            b: Endpoint::with_random(config, policy_b, Seeded(seed ^ 0x5A5A_5A5A_0000)),
            now,
            start: now,
            rng: Seeded(seed | 1),
            loss: 0.0,
            duplicate: 0.0,
            jitter_ms: 0,
            b_dead: false,
            nat_offset: None,
            nat_address: None,
            flight: Vec::new(),
            log: Vec::new(),
            log_at: Vec::new(),
            events_a: Vec::new(),
            events_b: Vec::new(),
        }
    }

    /// Like [`Net::with_config`] with a different configuration for each
    /// endpoint.
    pub fn with_configs(
        policy_a: StaticPolicy,
        policy_b: StaticPolicy,
        seed: u64,
        config_a: EndpointConfig,
        config_b: EndpointConfig,
    ) -> Self {
        let mut net = Self::with_config(policy_a.clone(), policy_b.clone(), seed, config_a);
        net.b = Endpoint::with_random(config_b, policy_b, Seeded(seed ^ 0x5A5A_5A5A_0000));
        net
    }

    /// A sends an acquire for traffic to B.
    pub fn acquire(&mut self) {
        self.acquire_between(A, B);
    }

    /// An acquire at A for traffic from `local` to `remote`.
    pub fn acquire_between(&mut self, local: &str, remote: &str) {
        self.a.handle_acquire(
            self.now,
            Acquire {
                local: addr(local),
                remote: addr(remote),
                traffic: None,
            },
        );
    }

    fn collect(&mut self) {
        while let Some(e) = self.a.poll_event() {
            self.events_a.push(e);
        }
        while let Some(e) = self.b.poll_event() {
            self.events_b.push(e);
        }
        let mut sent = Vec::new();
        while let Some(tx) = self.a.poll_transmit() {
            sent.push((true, tx));
        }
        while let Some(tx) = self.b.poll_transmit() {
            sent.push((false, tx));
        }
        for (from_a, mut tx) in sent {
            self.log.push((from_a, tx.bytes.clone()));
            self.log_at.push((self.now, tx.clone()));
            if let Some(off) = self.nat_offset {
                if from_a {
                    tx.local.set_port(tx.local.port() + off);
                } else {
                    tx.remote.set_port(tx.remote.port() - off);
                }
            }
            if let Some((inside, outside)) = self.nat_address {
                if from_a && tx.local.ip() == inside {
                    tx.local.set_ip(outside);
                } else if !from_a && tx.remote.ip() == outside {
                    tx.remote.set_ip(inside);
                }
            }
            if (from_a && self.b_dead) || self.rng.chance(self.loss) {
                continue;
            }
            let copies = if self.rng.chance(self.duplicate) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let jitter = if self.jitter_ms > 0 {
                    self.rng.next() % self.jitter_ms
                } else {
                    0
                };
                self.flight.push(InFlight {
                    at: self.now + Duration::from_millis(10 + jitter),
                    to_b: from_a,
                    tx: tx.clone(),
                });
            }
        }
    }

    /// Runs until nothing is in flight and no timer is pending, or for at
    /// most `limit` of simulated time.
    pub fn run(&mut self, limit: Duration) {
        let end = self.now + limit;
        loop {
            self.collect();
            let next_flight = self.flight.iter().map(|f| f.at).min();
            let next_timer = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = [next_flight, next_timer].into_iter().flatten().min() else {
                return;
            };
            if next > end {
                self.now = end;
                return;
            }
            self.now = self.now.max(next);
            let (due, rest): (Vec<_>, Vec<_>) =
                self.flight.drain(..).partition(|f| f.at <= self.now);
            self.flight = rest;
            for f in due {
                let (to, local, remote) = if f.to_b {
                    (&mut self.b, f.tx.remote, f.tx.local)
                } else {
                    (&mut self.a, f.tx.remote, f.tx.local)
                };
                to.handle_datagram(self.now, local, remote, &f.tx.bytes);
            }
            self.a.handle_timeout(self.now);
            self.b.handle_timeout(self.now);
        }
    }
}

pub fn established(events: &[Event]) -> Vec<&IkeSaInfo> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::IkeSaEstablished(i) => Some(i),
            _ => None,
        })
        .collect()
}

pub fn children(events: &[Event]) -> Vec<&ChildSa> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ChildSaInstalled(c) => Some(&**c),
            _ => None,
        })
        .collect()
}

pub fn failures(events: &[Event]) -> Vec<&Failure> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Failure(f) => Some(f),
            _ => None,
        })
        .collect()
}

/// Installs both directions of each side's CHILD_SA in its own SAD and
/// sends a packet each way: what one side seals the other must open.
pub fn prove_with_esp(a: &ChildSa, b: &ChildSa, now: Instant) {
    let mut sad_a = Sad::new();
    let mut sad_b = Sad::new();
    let mut handles = Vec::new();
    for (sad, child) in [(&mut sad_a, a), (&mut sad_b, b)] {
        let [inbound, outbound] = child.sa_configs();
        sad.install(inbound.config, inbound.keymat, now)
            .expect("install inbound");
        handles.push(
            sad.install(outbound.config, outbound.keymat, now)
                .expect("install outbound"),
        );
    }
    let mut sads = [sad_a, sad_b];
    for (from, out, src, dst) in [
        (0, handles[0], a.local, a.remote),
        (1, handles[1], b.local, b.remote),
    ] {
        let [x, y] = &mut sads;
        let (from, to) = if from == 0 { (x, y) } else { (y, x) };
        let pkt = udp_packet(src, dst, 100, 0);
        let mut buf = vec![0u8; ROOM + pkt.len() + 512];
        buf[ROOM..ROOM + pkt.len()].copy_from_slice(&pkt);
        let mut p = Packet::new(&mut buf, ROOM, pkt.len());
        from.encapsulate(out, &mut p, now).expect("encapsulate");
        let wire = p.bytes().to_vec();
        assert_ne!(wire, pkt, "the packet is protected");
        let mut buf = vec![0u8; ROOM + wire.len() + 512];
        buf[ROOM..ROOM + wire.len()].copy_from_slice(&wire);
        let mut p = Packet::new(&mut buf, ROOM, wire.len());
        to.decapsulate(&mut p, now)
            .expect("the peer opens what we sealed");
        assert_eq!(p.bytes(), &pkt[..]);
    }
}
