//! Interop with strongSwan: Palisade's endpoint, driven over a real UDP socket in one
//! network namespace, negotiates with charon in another, in both roles.
//!
//! Needs root and strongSwan (charon-systemd, swanctl; scripts/lib/deps.sh installs
//! them). Not root, or PALISADE_SKIP_STRONGSWAN=1: skipped with a printed reason.
//! charon's kernel-libipsec back end only does tunnel mode, so the CHILD_SAs here are
//! host-to-host tunnels.

#[path = "../../../tests/support/netns.rs"]
mod netns;
#[path = "../../../tests/support/strongswan.rs"]
mod strongswan;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use netns::VethPair;
use palisade_esp::{Packet, Sad, UdpEncap};
use palisade_filter::policy::{
    AuthenticationMethod, DhGroup, IkeCipher, IkeIntegrity, IpsecProposal, IpsecTunnelPolicy,
    MainModePolicy, MainModeProposal, TunnelEndpoints,
};
use palisade_ike::traffic_selector::host;
use palisade_ike::{
    Acquire, ChildSa, Endpoint, EndpointConfig, Event, Identity, IkePolicy, IkeSaInfo,
    QuickModePolicy, StaticPolicy,
};
use palisade_wire::{Ipv4Header, UdpHeader, internet_checksum, proto};
use strongswan::{Charon, Config};

const PSK: &str = "palisade-psk-0123456789";

fn lab(test: &str) -> Option<VethPair> {
    if !strongswan::available_or_skip(test) {
        return None;
    }
    Some(VethPair::new().expect("create namespaces and veth pair"))
}

fn ours() -> SocketAddr {
    (VethPair::ADDR_A, 500).into()
}
fn theirs() -> SocketAddr {
    (VethPair::ADDR_B, 500).into()
}

/// Our side: a host-to-host tunnel to charon with the given IKE proposals.
fn policy(proposals: Vec<MainModeProposal>) -> StaticPolicy {
    let (a, b) = (ours().ip(), theirs().ip());
    StaticPolicy::new()
        .with_peer(
            Some(b),
            IkePolicy::new(MainModePolicy::new(
                [AuthenticationMethod::preshared_key(PSK)],
                proposals,
            )),
            Some(QuickModePolicy::Tunnel(IpsecTunnelPolicy::new(
                TunnelEndpoints::new(a, b),
                vec![IpsecProposal::esp_aes128_gcm()],
            ))),
        )
        .with_selectors(vec![host(a)], vec![host(b)])
}

/// Our two sockets in namespace `a`: IKE on 500, and on 4500 IKE behind
/// the non-ESP marker plus ESP in UDP (RFC 3948).
struct Sockets {
    ike: UdpSocket,
    natt: UdpSocket,
    /// ESP-in-UDP datagrams that arrived on 4500, for the data-plane check.
    esp: Vec<Vec<u8>>,
}

const NON_ESP_MARKER: [u8; 4] = [0; 4];

impl Sockets {
    fn open(pair: &VethPair) -> Self {
        let ike = pair.a.udp_socket(ours()).expect("socket 500");
        let natt = pair
            .a
            .udp_socket((VethPair::ADDR_A, 4500).into())
            .expect("socket 4500");
        for s in [&ike, &natt] {
            s.set_read_timeout(Some(Duration::from_millis(10)))
                .expect("read timeout");
        }
        Self {
            ike,
            natt,
            esp: Vec::new(),
        }
    }

    /// Runs the endpoint with the real clock until `done` says so or
    /// `timeout` passes; returns every event.
    fn drive(
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
                if tx.local.port() == 4500 {
                    let mut m = NON_ESP_MARKER.to_vec();
                    m.extend_from_slice(&tx.bytes);
                    self.natt.send_to(&m, tx.remote).expect("send 4500");
                } else {
                    self.ike.send_to(&tx.bytes, tx.remote).expect("send 500");
                }
            }
            while let Some(e) = ike.poll_event() {
                events.push(e);
            }
            if done(&events) || start.elapsed() > timeout {
                return events;
            }
            if let Ok((n, from)) = self.ike.recv_from(&mut buf) {
                ike.handle_datagram(Instant::now(), ours(), from, &buf[..n]);
            }
            if let Ok((n, from)) = self.natt.recv_from(&mut buf) {
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
}

/// An IPv4 packet from `src` to `dst` with `payload` as protocol `protocol`.
fn ipv4(src: std::net::Ipv4Addr, dst: std::net::Ipv4Addr, protocol: u8, payload: &[u8]) -> Vec<u8> {
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

/// The CHILD_SA carries traffic both ways: an ICMP echo request sealed by
/// palisade-esp with our outbound SA reaches charon's kernel-libipsec, which
/// opens it and delivers it; the kernel's echo reply comes back sealed by
/// charon and palisade-esp opens it with our inbound SA.
fn ping_through_the_tunnel(net: &mut Sockets, ike: &mut Endpoint, c: &ChildSa) {
    let now = Instant::now();
    let [inbound, outbound] = c.sa_configs();
    let encap = UdpEncap {
        local_port: 4500,
        remote_port: 4500,
    };
    assert_eq!(outbound.config.udp_encap, Some(encap));
    let mut sad = Sad::new();
    sad.install(inbound.config, inbound.keymat, now)
        .expect("inbound SA");
    let out = sad
        .install(outbound.config, outbound.keymat, now)
        .expect("outbound SA");
    let echo = ipv4(
        VethPair::ADDR_A,
        VethPair::ADDR_B,
        proto::ICMP,
        &icmp_echo(0x5A17),
    );
    let mut buf = vec![0u8; 256 + echo.len() + 256];
    buf[256..256 + echo.len()].copy_from_slice(&echo);
    let mut p = Packet::new(&mut buf, 256, echo.len());
    sad.encapsulate(out, &mut p, now).expect("encapsulate");
    // Outer IPv4 and UDP headers are the socket's business.
    let esp = &p.bytes()[28..];
    net.natt
        .send_to(esp, (VethPair::ADDR_B, 4500))
        .expect("send ESP in UDP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while net.esp.is_empty() && Instant::now() < deadline {
        net.drive(ike, Duration::from_millis(100), |_| false);
    }
    let reply = net.esp.first().cloned().expect("an ESP reply from charon");
    let mut udp = vec![0u8; 8];
    UdpHeader {
        src_port: 4500,
        dst_port: 4500,
        length: (8 + reply.len()) as u16,
        checksum: 0,
    }
    .write(&mut udp)
    .expect("udp header");
    udp.extend_from_slice(&reply);
    let wire = ipv4(VethPair::ADDR_B, VethPair::ADDR_A, proto::UDP, &udp);
    let mut buf = vec![0u8; 256 + wire.len() + 256];
    buf[256..256 + wire.len()].copy_from_slice(&wire);
    let mut p = Packet::new(&mut buf, 256, wire.len());
    sad.decapsulate(&mut p, Instant::now())
        .expect("open charon's ESP");
    let inner = p.bytes();
    assert_eq!(
        &inner[12..16],
        &VethPair::ADDR_B.octets(),
        "from charon's host"
    );
    assert_eq!(inner[9], proto::ICMP);
    assert_eq!(inner[20], 0, "echo reply");
    assert_eq!(&inner[24..26], &0x5A17u16.to_be_bytes(), "our identifier");
}

fn child(events: &[Event]) -> Option<&ChildSa> {
    events.iter().find_map(|e| match e {
        Event::ChildSaInstalled(c) => Some(&**c),
        _ => None,
    })
}

fn ike_sa(events: &[Event]) -> Option<&IkeSaInfo> {
    events.iter().find_map(|e| match e {
        Event::IkeSaEstablished(i) => Some(i),
        _ => None,
    })
}

/// charon's view agrees with ours: established, installed, same SPIs.
fn check_charon_agrees(charon: &Charon<'_>, c: &ChildSa) {
    let sas = charon.list_sas().expect("list-sas");
    assert!(sas.contains("state=ESTABLISHED"), "{sas}");
    assert!(sas.contains("state=INSTALLED"), "{sas}");
    assert!(
        sas.contains(&format!("spi-in={:08x}", c.outbound_spi)),
        "{sas}"
    );
    assert!(
        sas.contains(&format!("spi-out={:08x}", c.inbound_spi)),
        "{sas}"
    );
}

#[test]
fn palisade_initiates_and_charon_accepts() {
    let Some(pair) = lab("palisade_initiates_and_charon_accepts") else {
        return;
    };
    let charon = Charon::start(&pair.b, &Config::psk(theirs().ip(), ours().ip(), PSK))
        .expect("start charon");
    let mut net = Sockets::open(&pair);
    // Curve25519 first: charon (ECP-256 only) answers INVALID_KE_PAYLOAD and we retry.
    let mut ike = Endpoint::new(
        EndpointConfig::default(),
        policy(vec![
            MainModeProposal::new(
                IkeCipher::AesGcm128,
                IkeIntegrity::Sha256,
                DhGroup::Curve25519,
            ),
            MainModeProposal::new(IkeCipher::AesGcm128, IkeIntegrity::Sha256, DhGroup::Ecp256),
        ]),
    );
    ike.handle_acquire(
        Instant::now(),
        Acquire {
            local: ours(),
            remote: theirs(),
            traffic: None,
        },
    );
    let events = net.drive(&mut ike, Duration::from_secs(10), |e| {
        child(e).is_some() || e.iter().any(|e| matches!(e, Event::Failure(_)))
    });
    let info = ike_sa(&events).unwrap_or_else(|| panic!("no IKE SA: {events:?}"));
    assert_eq!(info.peer_id, Identity::from_ip(theirs().ip()));
    assert_eq!(u16::from(info.transforms.ke), 19, "retried with ECP-256");
    let c = child(&events).unwrap_or_else(|| panic!("no CHILD_SA: {events:?}"));
    assert!(!c.esn, "charon's default ESP proposal has no ESN");
    check_charon_agrees(&charon, c);
    assert!(
        info.nat.remote_behind_nat,
        "charon fakes NAT to force UDP encapsulation"
    );
    ping_through_the_tunnel(&mut net, &mut ike, c);
    // A liveness check, then charon deletes the IKE SA and we hear of it.
    assert!(ike.check_liveness(Instant::now(), info.id));
    let events = net.drive(&mut ike, Duration::from_secs(5), |_| false);
    assert!(events.is_empty(), "{events:?}");
    let events = std::thread::scope(|s| {
        let terminate =
            s.spawn(|| charon.swanctl(&["--terminate", "--ike", "pal", "--timeout", "5"]));
        let events = net.drive(&mut ike, Duration::from_secs(5), |e| {
            e.iter().any(|e| matches!(e, Event::IkeSaDeleted(_)))
        });
        let out = terminate.join().expect("swanctl thread");
        assert!(out.is_ok(), "swanctl --terminate: {out:?}");
        events
    });
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::ChildSaDeleted(d) if d.inbound_spi == c.inbound_spi)),
        "{events:?}"
    );
    assert!(ike.ike_sas().is_empty());
}

#[test]
fn charon_initiates_and_palisade_responds() {
    let Some(pair) = lab("charon_initiates_and_palisade_responds") else {
        return;
    };
    let mut config = Config::psk(theirs().ip(), ours().ip(), PSK);
    config.proposals = "aes256-sha256-ecp384".into();
    // kernel-libipsec has no ESN ("IPsec SA: ESN not supported").
    config.esp_proposals = "aes128gcm16".into();
    let charon = Charon::start(&pair.b, &config).expect("start charon");
    let mut net = Sockets::open(&pair);
    let mut ike = Endpoint::new(
        EndpointConfig::default(),
        policy(vec![MainModeProposal::new(
            IkeCipher::Aes256,
            IkeIntegrity::Sha256,
            DhGroup::Ecp384,
        )]),
    );
    let events = std::thread::scope(|s| {
        let initiate =
            s.spawn(|| charon.swanctl(&["--initiate", "--child", "pal", "--timeout", "10"]));
        let events = net.drive(&mut ike, Duration::from_secs(10), |e| {
            child(e).is_some() || e.iter().any(|e| matches!(e, Event::Failure(_)))
        });
        let out = initiate.join().expect("swanctl thread");
        assert!(out.is_ok(), "swanctl --initiate: {out:?}");
        events
    });
    let info = ike_sa(&events).unwrap_or_else(|| panic!("no IKE SA: {events:?}"));
    assert_eq!(info.peer_id, Identity::from_ip(theirs().ip()));
    let c = child(&events).unwrap_or_else(|| panic!("no CHILD_SA: {events:?}"));
    assert!(!c.esn);
    assert_eq!(
        c.udp_encap,
        Some(UdpEncap {
            local_port: 4500,
            remote_port: 4500
        }),
        "charon floated to 4500 and we followed"
    );
    check_charon_agrees(&charon, c);
    ping_through_the_tunnel(&mut net, &mut ike, c);
    // We delete the CHILD_SA, then the IKE SA; charon ends with nothing.
    assert!(ike.delete_child_sa(Instant::now(), info.id, c.inbound_spi));
    assert!(ike.delete_ike_sa(Instant::now(), info.id));
    let events = net.drive(&mut ike, Duration::from_secs(5), |e| {
        e.iter().any(|e| matches!(e, Event::IkeSaDeleted(_)))
    });
    assert!(
        events.iter().any(|e| matches!(e, Event::ChildSaDeleted(_))),
        "{events:?}"
    );
    let sas = charon.list_sas().expect("list-sas");
    assert!(!sas.contains("ESTABLISHED"), "{sas}");
}
