//! Interop of key-exchange group 21 (ECP-521, RFC 5903) with strongSwan:
//! an IKE SA with AES-GCM-256, PRF-HMAC-SHA-512 and ECP-521, its first
//! CHILD_SA (AES-GCM-256), then a CHILD_SA rekey with PFS in ECP-521,
//! started by Palisade and by charon. Each CHILD_SA is proven with an ICMP
//! echo sealed by palisade-esp that charon's host answers through the
//! tunnel; charon's log shows the ECP-521 exchanges.
//!
//! Needs root and strongSwan, like tests/strongswan.rs (whose socket
//! driving and ping this file repeats); skipped otherwise with a printed
//! reason. kernel-libipsec only does tunnel mode and no ESN.

#[path = "../../../tests/support/netns.rs"]
mod netns;
#[path = "../../../tests/support/strongswan.rs"]
mod strongswan;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use netns::VethPair;
use palisade_crypto::KeId;
use palisade_esp::{Packet, SaHandle, Sad};
use palisade_filter::policy::{
    AuthenticationMethod, DhGroup, IkeCipher, IkeIntegrity, IpsecProposal, IpsecTunnelPolicy,
    MainModePolicy, MainModeProposal, PfsGroup, TunnelEndpoints,
};
use palisade_ike::traffic_selector::host;
use palisade_ike::{
    Acquire, ChildSa, Endpoint, EndpointConfig, Event, IkePolicy, IkeSaId, IkeSaInfo,
    QuickModePolicy, StaticPolicy,
};
use palisade_wire::{Ipv4Header, UdpHeader, internet_checksum, proto};
use strongswan::{Charon, Config};

const PSK: &str = "palisade-psk-0123456789";

/// charon's side: IKE and ESP proposals with ECP-521 only.
const IKE_PROPOSALS: &str = "aes256gcm16-prfsha512-ecp521";
const ESP_PROPOSALS: &str = "aes256gcm16-ecp521";

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

fn charon_config() -> Config {
    let mut config = Config::psk(theirs().ip(), ours().ip(), PSK);
    config.proposals = IKE_PROPOSALS.into();
    config.esp_proposals = ESP_PROPOSALS.into();
    config
}

/// Our side: a host-to-host tunnel to charon, AES-GCM-256/SHA-512/ECP-521
/// for IKE and AES-GCM-256 with PFS in ECP-521 for ESP.
fn endpoint() -> Endpoint {
    let (a, b) = (ours().ip(), theirs().ip());
    let policy = StaticPolicy::new()
        .with_peer(
            Some(b),
            IkePolicy::new(MainModePolicy::new(
                [AuthenticationMethod::preshared_key(PSK)],
                vec![MainModeProposal::new(
                    IkeCipher::AesGcm256,
                    IkeIntegrity::Sha512,
                    DhGroup::Ecp521,
                )],
            )),
            Some(QuickModePolicy::Tunnel(IpsecTunnelPolicy::new(
                TunnelEndpoints::new(a, b),
                vec![IpsecProposal::esp_aes256_gcm().with_pfs(PfsGroup::Ecp521)],
            ))),
        )
        .with_selectors(vec![host(a)], vec![host(b)]);
    Endpoint::new(EndpointConfig::default(), policy)
}

struct Sockets {
    ike: UdpSocket,
    natt: UdpSocket,
    esp: Vec<Vec<u8>>,
    /// Our data plane: each CHILD_SA installed once, so that sequence
    /// numbers keep counting up on an SA pinged twice.
    sad: Sad,
    outbound: HashMap<u32, SaHandle>,
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
            sad: Sad::new(),
            outbound: HashMap::new(),
        }
    }

    /// Runs the endpoint with the real clock until `done` holds for the
    /// events of this call or `timeout` passes.
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
                if tx.is_nat_keepalive() {
                    // As it is: no non-ESP marker (RFC 3948 §2.3).
                    self.natt.send_to(&tx.bytes, tx.remote).expect("keepalive");
                } else if tx.local.port() == 4500 {
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

    /// Runs `swanctl args` while driving the endpoint until `done`.
    fn during(
        &mut self,
        charon: &Charon<'_>,
        args: &[&str],
        ike: &mut Endpoint,
        done: impl Fn(&[Event]) -> bool,
    ) -> Vec<Event> {
        std::thread::scope(|s| {
            let run = s.spawn(|| charon.swanctl(args));
            let events = self.drive(ike, Duration::from_secs(20), done);
            let out = run.join().expect("swanctl thread");
            assert!(out.is_ok(), "swanctl {args:?}: {out:?}");
            events
        })
    }
}

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

fn icmp_echo(id: u16) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&1u16.to_be_bytes());
    icmp.extend((0..32u8).map(|i| i.wrapping_mul(7)));
    let sum = internet_checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    icmp
}

/// An ICMP echo sealed with `c`'s outbound SA is answered by charon's host
/// and the reply opens with `c`'s inbound SA.
fn ping(net: &mut Sockets, ike: &mut Endpoint, c: &ChildSa, id: u16) {
    let now = Instant::now();
    let out = match net.outbound.get(&c.outbound_spi) {
        Some(h) => *h,
        None => {
            let [inbound, outbound] = c.sa_configs();
            net.sad
                .install(inbound.config, inbound.keymat, now)
                .expect("inbound SA");
            let h = net
                .sad
                .install(outbound.config, outbound.keymat, now)
                .expect("outbound SA");
            net.outbound.insert(c.outbound_spi, h);
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
    net.sad.encapsulate(out, &mut p, now).expect("encapsulate");
    net.esp.clear();
    net.natt
        .send_to(&p.bytes()[28..], (VethPair::ADDR_B, 4500))
        .expect("send ESP in UDP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while net.esp.is_empty() && Instant::now() < deadline {
        net.drive(ike, Duration::from_millis(100), |_| false);
    }
    let reply = net.esp.first().cloned().expect("an ESP reply from charon");
    assert_eq!(
        reply.get(..4),
        Some(&c.inbound_spi.to_be_bytes()[..]),
        "charon answers on the current CHILD_SA"
    );
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
    net.sad
        .decapsulate(&mut p, Instant::now())
        .expect("open charon's ESP");
    let inner = p.bytes();
    assert_eq!(inner[9], proto::ICMP);
    assert_eq!(inner[20], 0, "echo reply");
    assert_eq!(&inner[24..26], &id.to_be_bytes(), "our identifier");
}

fn installed(events: &[Event]) -> Option<ChildSa> {
    events.iter().rev().find_map(|e| match e {
        Event::ChildSaInstalled(c) => Some((**c).clone()),
        _ => None,
    })
}

fn ike_sa(events: &[Event]) -> Option<&IkeSaInfo> {
    events.iter().find_map(|e| match e {
        Event::IkeSaEstablished(i) => Some(i),
        _ => None,
    })
}

fn child_deleted(events: &[Event], inbound: u32) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::ChildSaDeleted(d) if d.inbound_spi == inbound))
}

fn ike_deleted(events: &[Event], id: IkeSaId) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::IkeSaDeleted(x) if *x == id))
}

fn no_failures(events: &[Event]) {
    assert!(
        !events.iter().any(|e| matches!(e, Event::Failure(_))),
        "{events:?}"
    );
}

/// charon lists the pair with our SPIs.
fn charon_has(charon: &Charon<'_>, c: &ChildSa) {
    let sas = charon.list_sas().expect("list-sas");
    assert!(
        sas.contains(&format!("spi-in={:08x}", c.outbound_spi))
            && sas.contains(&format!("spi-out={:08x}", c.inbound_spi)),
        "{sas}"
    );
}

/// The IKE SA runs ECP-521 on both sides.
fn check_ike_sa(charon: &Charon<'_>, info: &IkeSaInfo) {
    assert_eq!(info.transforms.ke, KeId::Ecp521);
    assert_eq!(u16::from(info.transforms.ke), 21);
    assert!(
        charon.wait_for_log(
            "selected proposal: IKE:AES_GCM_16_256/PRF_HMAC_SHA2_512/ECP_521",
            Duration::from_secs(2)
        ),
        "charon selected ECP-521 for the IKE SA:\n{}",
        charon.log()
    );
}

/// charon's side of a CHILD_SA rekey ran a key exchange in ECP-521: only a
/// CREATE_CHILD_SA carries KE for a CHILD_SA, so a selected ESP proposal
/// with a group is the rekey's (IKE_AUTH's is selected without one).
fn check_pfs(charon: &Charon<'_>) {
    assert!(
        charon.wait_for_log(
            "selected proposal: ESP:AES_GCM_16_256/ECP_521",
            Duration::from_secs(2)
        ),
        "charon selected ECP-521 PFS for the CHILD_SA rekey:\n{}",
        charon.log()
    );
}

#[test]
fn palisade_initiates_with_ecp521_and_rekeys_the_child_sa_with_pfs() {
    let Some(pair) = lab("palisade_initiates_with_ecp521_and_rekeys_the_child_sa_with_pfs") else {
        return;
    };
    let charon = Charon::start(&pair.b, &charon_config()).expect("start charon");
    let mut net = Sockets::open(&pair);
    let mut ike = endpoint();
    ike.handle_acquire(
        Instant::now(),
        Acquire {
            local: ours(),
            remote: theirs(),
            traffic: None,
        },
    );
    let events = net.drive(&mut ike, Duration::from_secs(10), |e| {
        installed(e).is_some() || e.iter().any(|e| matches!(e, Event::Failure(_)))
    });
    no_failures(&events);
    let info = ike_sa(&events).unwrap_or_else(|| panic!("no IKE SA: {events:?}"));
    check_ike_sa(&charon, info);
    let c = installed(&events).unwrap_or_else(|| panic!("no CHILD_SA: {events:?}"));
    charon_has(&charon, &c);
    ping(&mut net, &mut ike, &c, 21);
    // Our CHILD_SA rekey, with a KE payload in ECP-521.
    let old = c.inbound_spi;
    assert!(ike.rekey_child_sa(Instant::now(), c.ike_sa, old));
    let events = net.drive(&mut ike, Duration::from_secs(10), |e| child_deleted(e, old));
    no_failures(&events);
    let new = installed(&events).unwrap_or_else(|| panic!("no new CHILD_SA: {events:?}"));
    assert!(child_deleted(&events, old), "{events:?}");
    assert_ne!(new.inbound_spi, old);
    check_pfs(&charon);
    charon_has(&charon, &new);
    ping(&mut net, &mut ike, &new, 22);
    // We delete the IKE SA; charon ends with nothing.
    assert!(ike.delete_ike_sa(Instant::now(), info.id));
    let events = net.drive(&mut ike, Duration::from_secs(5), |e| {
        ike_deleted(e, info.id)
    });
    assert!(ike_deleted(&events, info.id), "{events:?}");
    let sas = charon.list_sas().expect("list-sas");
    assert!(!sas.contains("ESTABLISHED"), "{sas}");
}

#[test]
fn charon_initiates_with_ecp521_and_rekeys_the_child_sa_with_pfs() {
    let Some(pair) = lab("charon_initiates_with_ecp521_and_rekeys_the_child_sa_with_pfs") else {
        return;
    };
    let charon = Charon::start(&pair.b, &charon_config()).expect("start charon");
    let mut net = Sockets::open(&pair);
    let mut ike = endpoint();
    let events = net.during(
        &charon,
        &["--initiate", "--child", "pal", "--timeout", "10"],
        &mut ike,
        |e| installed(e).is_some(),
    );
    no_failures(&events);
    let info = ike_sa(&events).unwrap_or_else(|| panic!("no IKE SA: {events:?}"));
    check_ike_sa(&charon, info);
    let c = installed(&events).unwrap_or_else(|| panic!("no CHILD_SA: {events:?}"));
    charon_has(&charon, &c);
    ping(&mut net, &mut ike, &c, 31);
    // charon rekeys the CHILD_SA with a KE payload in ECP-521; we answer
    // with ours.
    let old = c.inbound_spi;
    let events = net.during(&charon, &["--rekey", "--child", "pal"], &mut ike, |e| {
        child_deleted(e, old)
    });
    no_failures(&events);
    let new = installed(&events).unwrap_or_else(|| panic!("no rekeyed CHILD_SA: {events:?}"));
    assert!(
        events.iter().any(|e| matches!(e, Event::ChildSaRekeyed(r)
            if r.old_inbound_spi == old && r.new_inbound_spi == new.inbound_spi)),
        "{events:?}"
    );
    check_pfs(&charon);
    charon_has(&charon, &new);
    ping(&mut net, &mut ike, &new, 32);
    // charon deletes everything.
    let events = net.during(
        &charon,
        &["--terminate", "--ike", "pal", "--timeout", "5"],
        &mut ike,
        |e| ike_deleted(e, info.id),
    );
    assert!(ike_deleted(&events, info.id), "{events:?}");
    assert!(ike.ike_sas().is_empty());
}
