//! The strongSwan interop tests' driver: a palisade-ike Endpoint on real UDP
//! sockets in namespace `a` of a veth pair, charon in namespace `b`; the
//! events it reports; and the ICMP echo through a CHILD_SA, sealed and
//! opened by palisade-esp.
//!
//! Included by path next to tests/support/netns.rs and strongswan.rs (which
//! uses `crate::netns`), so it lives in the strongswan test binaries only:
//!
//! ```ignore
//! #[path = "../../../tests/support/netns.rs"]
//! mod netns;
//! #[path = "../../../tests/support/strongswan.rs"]
//! mod strongswan;
//! #[path = "common/charon.rs"]
//! mod charon;
//! ```
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use palisade_esp::{Packet, SaHandle, Sad, UdpEncap};
use palisade_filter::policy::{
    AuthenticationMethod, IpsecProposal, IpsecTunnelPolicy, MainModePolicy, MainModeProposal,
    TunnelEndpoints,
};
use palisade_ike::traffic_selector::host;
use palisade_ike::{
    Acquire, ChildSa, Endpoint, Event, IkePolicy, IkeSaId, IkeSaInfo, QuickModePolicy, StaticPolicy,
};
use palisade_wire::{Ipv4Header, UdpHeader, internet_checksum, proto};

use crate::netns::VethPair;
use crate::strongswan::{self, Charon};

pub const PSK: &str = "palisade-psk-0123456789";

/// The veth pair a test runs in, or `None` (reason printed) when it skips.
pub fn lab(test: &str) -> Option<VethPair> {
    if !strongswan::available_or_skip(test) {
        return None;
    }
    Some(VethPair::new().expect("create namespaces and veth pair"))
}

pub fn ours() -> SocketAddr {
    (VethPair::ADDR_A, 500).into()
}

pub fn theirs() -> SocketAddr {
    (VethPair::ADDR_B, 500).into()
}

/// Our side: a host-to-host tunnel to charon with `ike` and one ESP proposal.
pub fn tunnel(ike: IkePolicy, esp: IpsecProposal) -> StaticPolicy {
    let (a, b) = (ours().ip(), theirs().ip());
    StaticPolicy::new()
        .with_peer(
            Some(b),
            ike,
            Some(QuickModePolicy::Tunnel(IpsecTunnelPolicy::new(
                TunnelEndpoints::new(a, b),
                vec![esp],
            ))),
        )
        .with_selectors(vec![host(a)], vec![host(b)])
}

/// [`tunnel`] authenticated with [`PSK`].
pub fn psk_tunnel(proposals: Vec<MainModeProposal>, esp: IpsecProposal) -> StaticPolicy {
    let ike = IkePolicy::new(MainModePolicy::new(
        [AuthenticationMethod::preshared_key(PSK)],
        proposals,
    ));
    tunnel(ike, esp)
}

/// Tells the endpoint to set up the tunnel to charon.
pub fn acquire(ike: &mut Endpoint) {
    ike.handle_acquire(
        Instant::now(),
        Acquire {
            local: ours(),
            remote: theirs(),
            traffic: None,
        },
    );
}

const NON_ESP_MARKER: [u8; 4] = [0; 4];

const ENCAP: UdpEncap = UdpEncap {
    local_port: 4500,
    remote_port: 4500,
};

/// Our two sockets in namespace `a`: IKE on 500, and on 4500 IKE behind
/// the non-ESP marker plus ESP in UDP (RFC 3948); and our data plane.
pub struct Sockets {
    ike: UdpSocket,
    natt: UdpSocket,
    /// ESP-in-UDP datagrams that arrived on 4500, for the data-plane check.
    pub esp: Vec<Vec<u8>>,
    /// The size of every IKE datagram we sent, as it went on the wire.
    pub sent: Vec<usize>,
    /// Each CHILD_SA installed once, so that sequence numbers keep
    /// counting up on an SA pinged twice.
    sad: Sad,
    outbound: HashMap<u32, SaHandle>,
}

impl Sockets {
    pub fn open(pair: &VethPair) -> Self {
        let ike = pair.a.udp_socket(ours()).expect("socket 500");
        let natt = pair
            .a
            .udp_socket((VethPair::ADDR_A, 4500).into())
            .expect("socket 4500");
        for s in [&ike, &natt] {
            s.set_read_timeout(Some(Duration::from_millis(5)))
                .expect("read timeout");
        }
        Self {
            ike,
            natt,
            esp: Vec::new(),
            sent: Vec::new(),
            sad: Sad::new(),
            outbound: HashMap::new(),
        }
    }

    /// Runs the endpoint with the real clock until `done` holds for the
    /// events of this call or `timeout` passes; returns those events.
    pub fn drive(
        &mut self,
        ike: &mut Endpoint,
        timeout: Duration,
        done: impl Fn(&[Event]) -> bool,
    ) -> Vec<Event> {
        let start = Instant::now();
        let mut events = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            while let Some(tx) = ike.poll_transmit() {
                if tx.is_nat_keepalive() {
                    // As it is: no non-ESP marker (RFC 3948 §2.3).
                    self.natt.send_to(&tx.bytes, tx.remote).expect("keepalive");
                } else if tx.local.port() == 4500 {
                    let mut m = NON_ESP_MARKER.to_vec();
                    m.extend_from_slice(&tx.bytes);
                    self.sent.push(m.len());
                    self.natt.send_to(&m, tx.remote).expect("send 4500");
                } else {
                    self.sent.push(tx.bytes.len());
                    self.ike.send_to(&tx.bytes, tx.remote).expect("send 500");
                }
            }
            while let Some(e) = ike.poll_event() {
                events.push(e);
            }
            if done(&events) || start.elapsed() > timeout {
                return events;
            }
            // Fragments arrive in bursts: read what is there before waiting.
            while let Ok((n, from)) = self.ike.recv_from(&mut buf) {
                ike.handle_datagram(Instant::now(), ours(), from, &buf[..n]);
            }
            while let Ok((n, from)) = self.natt.recv_from(&mut buf) {
                let local = (VethPair::ADDR_A, 4500).into();
                match buf[..n].split_first_chunk::<4>() {
                    Some((&NON_ESP_MARKER, ike_message)) => {
                        ike.handle_datagram(Instant::now(), local, from, ike_message);
                    }
                    Some(_) => self.esp.push(buf[..n].to_vec()),
                    None => {}
                }
            }
            let now = Instant::now();
            if ike.poll_timeout().is_some_and(|t| t <= now) {
                ike.handle_timeout(now);
            }
        }
    }

    /// Runs `swanctl args` while driving the endpoint until `done` or
    /// `timeout`; swanctl must succeed.
    pub fn during(
        &mut self,
        charon: &Charon<'_>,
        args: &[&str],
        ike: &mut Endpoint,
        timeout: Duration,
        done: impl Fn(&[Event]) -> bool,
    ) -> Vec<Event> {
        std::thread::scope(|s| {
            let run = s.spawn(|| charon.swanctl(args));
            let events = self.drive(ike, timeout, done);
            let out = run.join().expect("swanctl thread");
            assert!(out.is_ok(), "swanctl {args:?}: {out:?}");
            events
        })
    }

    /// Seals an ICMP echo request with identifier `id` under `c`'s outbound
    /// SA (installing `c` on first use), sends it in UDP to charon and
    /// returns the first ESP-in-UDP datagram that comes back.
    pub fn send_echo(&mut self, ike: &mut Endpoint, c: &ChildSa, id: u16) -> Vec<u8> {
        let now = Instant::now();
        let out = match self.outbound.get(&c.outbound_spi) {
            Some(h) => *h,
            None => {
                let [inbound, outbound] = c.sa_configs();
                self.sad
                    .install(inbound.config, inbound.keymat, now)
                    .expect("inbound SA");
                let h = self
                    .sad
                    .install(outbound.config, outbound.keymat, now)
                    .expect("outbound SA");
                self.outbound.insert(c.outbound_spi, h);
                h
            }
        };
        let echo = ipv4(
            VethPair::ADDR_A,
            VethPair::ADDR_B,
            proto::ICMP,
            &icmp_echo(id),
        );
        let mut buf = vec![0u8; 256 + echo.len() + 256];
        buf[256..256 + echo.len()].copy_from_slice(&echo);
        let mut p = Packet::new(&mut buf, 256, echo.len());
        self.sad.encapsulate(out, &mut p, now).expect("encapsulate");
        self.esp.clear();
        // Outer IPv4 and UDP headers are the socket's business.
        self.natt
            .send_to(&p.bytes()[28..], (VethPair::ADDR_B, 4500))
            .expect("send ESP in UDP");
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.esp.is_empty() && Instant::now() < deadline {
            self.drive(ike, Duration::from_millis(100), |_| false);
        }
        self.esp.first().cloned().expect("an ESP reply from charon")
    }

    /// Opens charon's ESP `reply` with our inbound SAs: an ICMP echo reply
    /// to our request `id`. Returns the inner IPv4 packet.
    pub fn open_echo_reply(&mut self, reply: &[u8], id: u16) -> Vec<u8> {
        let mut udp = vec![0u8; 8];
        UdpHeader {
            src_port: 4500,
            dst_port: 4500,
            length: (8 + reply.len()) as u16,
            checksum: 0,
        }
        .write(&mut udp)
        .expect("udp header");
        udp.extend_from_slice(reply);
        let wire = ipv4(VethPair::ADDR_B, VethPair::ADDR_A, proto::UDP, &udp);
        let mut buf = vec![0u8; 256 + wire.len() + 256];
        buf[256..256 + wire.len()].copy_from_slice(&wire);
        let mut p = Packet::new(&mut buf, 256, wire.len());
        self.sad
            .decapsulate(&mut p, Instant::now())
            .expect("open charon's ESP");
        let inner = p.bytes();
        assert_eq!(inner[9], proto::ICMP);
        assert_eq!(inner[20], 0, "echo reply");
        assert_eq!(&inner[24..26], &id.to_be_bytes(), "our identifier");
        inner.to_vec()
    }
}

/// The CHILD_SA carries traffic both ways: an ICMP echo request sealed by
/// palisade-esp with our outbound SA, in UDP on 4500, reaches charon's
/// kernel-libipsec, which opens it and delivers it; the kernel's echo reply
/// comes back sealed by charon and opens with our inbound SA.
pub fn ping_through_the_tunnel(net: &mut Sockets, ike: &mut Endpoint, c: &ChildSa, id: u16) {
    let [_, outbound] = c.sa_configs();
    assert_eq!(outbound.config.udp_encap, Some(ENCAP));
    let reply = net.send_echo(ike, c, id);
    let inner = net.open_echo_reply(&reply, id);
    assert_eq!(
        &inner[12..16],
        &VethPair::ADDR_B.octets(),
        "from charon's host"
    );
}

/// An ICMP echo sealed with `c`'s outbound SA is answered by charon's host
/// on `c` (not on a CHILD_SA it replaced) and the reply opens with `c`'s
/// inbound SA.
pub fn ping(net: &mut Sockets, ike: &mut Endpoint, c: &ChildSa, id: u16) {
    let reply = net.send_echo(ike, c, id);
    assert_eq!(
        reply.get(..4),
        Some(&c.inbound_spi.to_be_bytes()[..]),
        "charon answers on the current CHILD_SA"
    );
    net.open_echo_reply(&reply, id);
}

/// An IPv4 packet from `src` to `dst` with `payload` as protocol `protocol`.
fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 20];
    Ipv4Header {
        dscp: 0,
        ecn: 0,
        total_len: (20 + payload.len()) as u16,
        identification: 1,
        dont_fragment: false,
        more_fragments: false,
        fragment_offset: 0,
        ttl: 64,
        protocol,
        checksum: 0,
        src: src.octets(),
        dst: dst.octets(),
        header_len: 20,
    }
    .write(&mut p)
    .expect("ipv4 header");
    p.extend_from_slice(payload);
    p
}

/// ICMP echo request (type 8) with identifier `id`, sequence 1 and 32 bytes of data.
fn icmp_echo(id: u16) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&1u16.to_be_bytes());
    icmp.extend((0..32u8).map(|i| i.wrapping_mul(7)));
    let sum = internet_checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    icmp
}

/// The first CHILD_SA installed.
pub fn child(events: &[Event]) -> Option<&ChildSa> {
    events.iter().find_map(|e| match e {
        Event::ChildSaInstalled(c) => Some(&**c),
        _ => None,
    })
}

/// The last CHILD_SA installed.
pub fn installed(events: &[Event]) -> Option<ChildSa> {
    events.iter().rev().find_map(|e| match e {
        Event::ChildSaInstalled(c) => Some((**c).clone()),
        _ => None,
    })
}

pub fn ike_sa(events: &[Event]) -> Option<&IkeSaInfo> {
    events.iter().find_map(|e| match e {
        Event::IkeSaEstablished(i) => Some(i),
        _ => None,
    })
}

/// A CHILD_SA is installed, or something failed.
pub fn settled(e: &[Event]) -> bool {
    child(e).is_some() || e.iter().any(|e| matches!(e, Event::Failure(_)))
}

pub fn child_deleted(events: &[Event], inbound: u32) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::ChildSaDeleted(d) if d.inbound_spi == inbound))
}

pub fn ike_rekeyed(events: &[Event]) -> Option<(IkeSaId, IkeSaId)> {
    events.iter().find_map(|e| match e {
        Event::IkeSaRekeyed { old, new } => Some((*old, *new)),
        _ => None,
    })
}

pub fn ike_deleted(events: &[Event], id: IkeSaId) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::IkeSaDeleted(x) if *x == id))
}

pub fn no_failures(events: &[Event]) {
    assert!(
        !events.iter().any(|e| matches!(e, Event::Failure(_))),
        "{events:?}"
    );
}

/// charon lists the pair with our SPIs.
pub fn charon_has(charon: &Charon<'_>, c: &ChildSa) {
    let sas = charon.list_sas().expect("list-sas");
    assert!(
        sas.contains(&format!("spi-in={:08x}", c.outbound_spi))
            && sas.contains(&format!("spi-out={:08x}", c.inbound_spi)),
        "{sas}"
    );
}

/// charon has the IKE SA established and `c` installed with our outbound
/// SPI as its inbound one. Returns `swanctl --list-sas`.
pub fn charon_agrees(charon: &Charon<'_>, c: &ChildSa) -> String {
    let sas = charon.list_sas().expect("list-sas");
    assert!(sas.contains("state=ESTABLISHED"), "{sas}");
    assert!(sas.contains("state=INSTALLED"), "{sas}");
    assert!(
        sas.contains(&format!("spi-in={:08x}", c.outbound_spi)),
        "{sas}"
    );
    sas
}
