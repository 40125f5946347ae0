//! Interop with strongSwan using certificates: a PKI made at test time
//! (rcgen), written as PEM into charon's swanctl/x509, x509ca and private
//! directories; Palisade as initiator and as responder, RSA and ECDSA, RFC
//! 7427 Digital Signature and the classic methods; and a chain of RSA-4096
//! certificates large enough that both charon and Palisade send IKE_AUTH in
//! fragments (RFC 7383). Each run is proven by an ICMP echo through the
//! CHILD_SA, as tests/strongswan.rs does.
//!
//! Needs root and strongSwan, as tests/strongswan.rs (skipped otherwise).
//! The driver and the ping are that file's, repeated here because test
//! binaries cannot share a module with another test's own code.

#[path = "../../../tests/support/netns.rs"]
mod netns;
#[allow(dead_code)]
#[path = "common/pki.rs"]
mod pki;
#[path = "../../../tests/support/strongswan.rs"]
mod strongswan;

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use netns::VethPair;
use palisade_esp::{Packet, Sad, UdpEncap};
use palisade_filter::policy::{
    AuthenticationMethod, DhGroup, IkeCipher, IkeIntegrity, IpsecProposal, IpsecTunnelPolicy,
    MainModePolicy, MainModeProposal, TunnelEndpoints,
};
use palisade_ike::traffic_selector::host;
use palisade_ike::{
    Acquire, ChildSa, Credentials, Endpoint, EndpointConfig, Event, Identity, IkePolicy, IkeSaInfo,
    QuickModePolicy, StaticPolicy,
};
use palisade_wire::{Ipv4Header, UdpHeader, internet_checksum, proto};
use pki::{Ca, EndEntity, Key, San, anchors};
use strongswan::{Charon, Config};

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

/// The PKI of one test: root, optional intermediates (outermost first),
/// Palisade's and charon's end entities, both under the last CA.
struct Pki {
    root: Ca,
    intermediates: Vec<Ca>,
    palisade: EndEntity,
    charon: EndEntity,
}

/// Valid around the real clock charon checks against.
const YEARS: (i32, i32) = (2024, 2036);

fn make_pki(key: Key, intermediates: usize) -> Pki {
    let root = Ca::root("Palisade Interop Root", key);
    let mut chain: Vec<Ca> = Vec::new();
    for i in 0..intermediates {
        let name = format!("Palisade Interop Intermediate {}", i + 1);
        let ca = chain.last().unwrap_or(&root).intermediate(&name, key);
        chain.push(ca);
    }
    let issuer = chain.last().unwrap_or(&root);
    let palisade = issuer.end_entity_valid(
        "palisade.example.org",
        &[San::Ip(ours().ip()), San::Dns("palisade.example.org")],
        key,
        YEARS,
    );
    let charon = issuer.end_entity_valid(
        "charon.example.org",
        &[San::Ip(theirs().ip()), San::Dns("charon.example.org")],
        key,
        YEARS,
    );
    Pki {
        root,
        intermediates: chain,
        palisade,
        charon,
    }
}

/// Writes charon's certificates and key and replaces its connection with
/// one authenticating by certificate (`pubkey`), then reloads.
fn configure_charon(charon: &Charon<'_>, pki: &Pki, palisade_id: &str, extra: &str) {
    let dir = charon.dir().join("swanctl");
    fs::write(dir.join("x509ca/root.pem"), &pki.root.pem).expect("root");
    for (i, ca) in pki.intermediates.iter().enumerate() {
        fs::write(dir.join(format!("x509ca/intermediate{i}.pem")), &ca.pem).expect("ca");
    }
    fs::write(dir.join("x509/charon.pem"), &pki.charon.pem).expect("cert");
    fs::write(dir.join("private/charon.pem"), &pki.charon.key_pem).expect("key");
    let conf = format!(
        r#"connections {{
  pal {{
    version = 2
    local_addrs = {b}
    remote_addrs = {a}
    proposals = aes128gcm16-prfsha256-ecp256
    dpd_delay = 0
    fragmentation = yes
    send_cert = always
    send_certreq = yes
    local {{
      auth = pubkey
      certs = charon.pem
    }}
    remote {{
      auth = pubkey
      id = "{palisade_id}"
    }}
    children {{
      pal {{
        mode = tunnel
        local_ts = {b}/32
        remote_ts = {a}/32
        esp_proposals = aes128gcm16
        start_action = none
      }}
    }}
{extra}
  }}
}}
"#,
        a = ours().ip(),
        b = theirs().ip(),
    );
    fs::write(dir.join("swanctl.conf"), conf).expect("swanctl.conf");
    let out = charon
        .swanctl(&["--load-all", "--noprompt"])
        .expect("swanctl --load-all");
    assert!(out.contains("loaded certificate"), "{out}");
    assert!(out.contains("loaded") && out.contains("key"), "{out}");
}

/// Turns RFC 7427 off in charon: it neither announces
/// SIGNATURE_HASH_ALGORITHMS nor signs with Digital Signature.
fn charon_without_digital_signature(charon: &Charon<'_>) {
    let conf = charon.dir().join("strongswan.conf");
    let mut text = fs::read_to_string(&conf).expect("read strongswan.conf");
    text.push_str("charon {\n  signature_authentication = no\n}\n");
    fs::write(&conf, text).expect("write strongswan.conf");
    charon
        .swanctl(&["--reload-settings"])
        .expect("swanctl --reload-settings");
}

/// Our side: a host-to-host tunnel to charon with our certificate and the
/// interop root as the only trust anchor.
fn policy(pki: &Pki, local_id: Option<Identity>) -> StaticPolicy {
    let (a, b) = (ours().ip(), theirs().ip());
    let chain: Vec<&Ca> = pki.intermediates.iter().rev().collect();
    let creds = Credentials::new(Some(pki.palisade.credential(&chain)), anchors(&[&pki.root]));
    let mut ike = IkePolicy::new(MainModePolicy::new(
        [AuthenticationMethod::certificate(
            [PathBuf::from("/etc/palisade/root.pem")],
            PathBuf::from("/etc/palisade/cert.pem"),
            PathBuf::from("/etc/palisade/key.pem"),
        )],
        vec![MainModeProposal::new(
            IkeCipher::AesGcm128,
            IkeIntegrity::Sha256,
            DhGroup::Ecp256,
        )],
    ))
    .with_certificates(Arc::clone(&creds));
    ike.local_id = local_id;
    StaticPolicy::new()
        .with_peer(
            Some(b),
            ike,
            Some(QuickModePolicy::Tunnel(IpsecTunnelPolicy::new(
                TunnelEndpoints::new(a, b),
                vec![IpsecProposal::esp_aes128_gcm()],
            ))),
        )
        .with_selectors(vec![host(a)], vec![host(b)])
}

fn endpoint(pki: &Pki, local_id: Option<Identity>, config: EndpointConfig) -> Endpoint {
    let mut ike = Endpoint::new(config, policy(pki, local_id));
    // The driver's business: the library never reads the wall clock.
    ike.set_unix_time(Instant::now(), SystemTime::now());
    ike
}

/// Our two sockets in namespace `a`: IKE on 500, and on 4500 IKE behind
/// the non-ESP marker plus ESP in UDP (RFC 3948).
struct Sockets {
    ike: UdpSocket,
    natt: UdpSocket,
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
            s.set_read_timeout(Some(Duration::from_millis(5)))
                .expect("read timeout");
        }
        Self {
            ike,
            natt,
            esp: Vec::new(),
        }
    }

    /// Runs the endpoint with the real clock until `done` or `timeout`;
    /// returns every event and the size of every datagram we sent.
    fn drive(
        &mut self,
        ike: &mut Endpoint,
        timeout: Duration,
        done: impl Fn(&[Event]) -> bool,
    ) -> (Vec<Event>, Vec<usize>) {
        let start = Instant::now();
        let mut events = Vec::new();
        let mut sent = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            while let Some(tx) = ike.poll_transmit() {
                if tx.local.port() == 4500 {
                    let mut m = NON_ESP_MARKER.to_vec();
                    m.extend_from_slice(&tx.bytes);
                    sent.push(m.len());
                    self.natt.send_to(&m, tx.remote).expect("send 4500");
                } else {
                    sent.push(tx.bytes.len());
                    self.ike.send_to(&tx.bytes, tx.remote).expect("send 500");
                }
            }
            while let Some(e) = ike.poll_event() {
                events.push(e);
            }
            if done(&events) || start.elapsed() > timeout {
                return (events, sent);
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

/// An ICMP echo sealed by palisade-esp reaches charon's kernel-libipsec
/// through the CHILD_SA, and the reply sealed by charon opens here.
fn ping_through_the_tunnel(net: &mut Sockets, ike: &mut Endpoint, c: &ChildSa) {
    let now = Instant::now();
    let [inbound, outbound] = c.sa_configs();
    assert_eq!(
        outbound.config.udp_encap,
        Some(UdpEncap {
            local_port: 4500,
            remote_port: 4500
        })
    );
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
        &icmp_echo(0xCE57),
    );
    let mut buf = vec![0u8; 256 + echo.len() + 256];
    buf[256..256 + echo.len()].copy_from_slice(&echo);
    let mut p = Packet::new(&mut buf, 256, echo.len());
    sad.encapsulate(out, &mut p, now).expect("encapsulate");
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
    assert_eq!(&inner[12..16], &VethPair::ADDR_B.octets());
    assert_eq!(inner[9], proto::ICMP);
    assert_eq!(inner[20], 0, "echo reply");
    assert_eq!(&inner[24..26], &0xCE57u16.to_be_bytes());
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

fn settled(e: &[Event]) -> bool {
    child(e).is_some() || e.iter().any(|e| matches!(e, Event::Failure(_)))
}

fn charon_agrees(charon: &Charon<'_>, c: &ChildSa) {
    let sas = charon.list_sas().expect("list-sas");
    assert!(sas.contains("state=ESTABLISHED"), "{sas}");
    assert!(sas.contains("state=INSTALLED"), "{sas}");
    assert!(
        sas.contains(&format!("spi-in={:08x}", c.outbound_spi)),
        "{sas}"
    );
}

fn palisade_dn(pki: &Pki) -> Identity {
    Identity::DerAsn1Dn(pki.palisade.cert.subject_der().to_vec())
}

fn charon_dn(pki: &Pki) -> Identity {
    Identity::DerAsn1Dn(pki.charon.cert.subject_der().to_vec())
}

/// Palisade initiates; charon accepts. Returns charon's log and the
/// datagram sizes we sent.
fn palisade_initiates(
    test: &str,
    pki: &Pki,
    local_id: Option<Identity>,
    charon_expects: &str,
    config: EndpointConfig,
    classic_charon: bool,
) -> Option<(String, Vec<usize>)> {
    let pair = lab(test)?;
    let charon = Charon::start(
        &pair.b,
        &Config::psk(theirs().ip(), ours().ip(), "unused-psk"),
    )
    .expect("start charon");
    configure_charon(&charon, pki, charon_expects, "");
    if classic_charon {
        charon_without_digital_signature(&charon);
    }
    let mut net = Sockets::open(&pair);
    let mut ike = endpoint(pki, local_id, config);
    ike.handle_acquire(
        Instant::now(),
        Acquire {
            local: ours(),
            remote: theirs(),
            traffic: None,
        },
    );
    let (events, sent) = net.drive(&mut ike, Duration::from_secs(15), settled);
    let info = ike_sa(&events).unwrap_or_else(|| panic!("no IKE SA: {events:?}"));
    assert_eq!(info.peer_id, charon_dn(pki), "charon's default identity");
    let c = child(&events).unwrap_or_else(|| panic!("no CHILD_SA: {events:?}"));
    charon_agrees(&charon, c);
    ping_through_the_tunnel(&mut net, &mut ike, c);
    Some((charon.log(), sent))
}

#[test]
fn palisade_initiates_with_rsa_and_digital_signatures() {
    let pki = make_pki(Key::Rsa2048, 1);
    let Some((log, _)) = palisade_initiates(
        "palisade_initiates_with_rsa_and_digital_signatures",
        &pki,
        None,
        "CN=palisade.example.org, O=Palisade tests",
        EndpointConfig::default(),
        false,
    ) else {
        return;
    };
    // charon checked our RFC 7427 signature and our DN identity.
    assert!(
        log.contains(
            "authentication of 'CN=palisade.example.org, O=Palisade tests' with RSA_EMSA_PKCS1_SHA2_256 successful"
        ),
        "{log}"
    );
}

#[test]
fn palisade_initiates_with_ecdsa_and_classic_methods() {
    let pki = make_pki(Key::EcdsaP256, 1);
    let classic = EndpointConfig {
        signature_hash_algorithms: false,
        ..EndpointConfig::default()
    };
    let Some((log, _)) = palisade_initiates(
        "palisade_initiates_with_ecdsa_and_classic_methods",
        &pki,
        Some(Identity::Fqdn("palisade.example.org".into())),
        "palisade.example.org",
        classic,
        true,
    ) else {
        return;
    };
    // Neither side announced RFC 7427: method 9 both ways.
    assert!(
        log.contains(
            "authentication of 'palisade.example.org' with ECDSA-256 signature successful"
        ),
        "{log}"
    );
    assert!(
        log.contains("with ECDSA-256 signature successful")
            && log.contains("(myself) with ECDSA-256 signature successful"),
        "{log}"
    );
}

/// charon initiates; Palisade responds.
fn charon_initiates(
    test: &str,
    pki: &Pki,
    local_id: Identity,
    charon_expects: &str,
) -> Option<String> {
    let pair = lab(test)?;
    let charon = Charon::start(
        &pair.b,
        &Config::psk(theirs().ip(), ours().ip(), "unused-psk"),
    )
    .expect("start charon");
    configure_charon(&charon, pki, charon_expects, "");
    let mut net = Sockets::open(&pair);
    let mut ike = endpoint(pki, Some(local_id.clone()), EndpointConfig::default());
    let events = std::thread::scope(|s| {
        let initiate =
            s.spawn(|| charon.swanctl(&["--initiate", "--child", "pal", "--timeout", "15"]));
        let (events, _) = net.drive(&mut ike, Duration::from_secs(15), settled);
        let out = initiate.join().expect("swanctl thread");
        assert!(out.is_ok(), "swanctl --initiate: {out:?}");
        events
    });
    let info = ike_sa(&events).unwrap_or_else(|| panic!("no IKE SA: {events:?}"));
    assert_eq!(info.peer_id, charon_dn(pki));
    assert_eq!(info.local_id, local_id);
    let c = child(&events).unwrap_or_else(|| panic!("no CHILD_SA: {events:?}"));
    charon_agrees(&charon, c);
    ping_through_the_tunnel(&mut net, &mut ike, c);
    Some(charon.log())
}

#[test]
fn charon_initiates_with_ecdsa_and_palisade_responds() {
    let pki = make_pki(Key::EcdsaP256, 1);
    let Some(log) = charon_initiates(
        "charon_initiates_with_ecdsa_and_palisade_responds",
        &pki,
        Identity::from_ip(ours().ip()),
        &ours().ip().to_string(),
    ) else {
        return;
    };
    assert!(
        log.contains(&format!(
            "authentication of '{}' with ECDSA_WITH_SHA256_DER successful",
            ours().ip()
        )),
        "{log}"
    );
}

#[test]
fn charon_initiates_with_rsa_and_palisade_responds_with_its_dn() {
    let pki = make_pki(Key::Rsa2048, 0);
    let Some(log) = charon_initiates(
        "charon_initiates_with_rsa_and_palisade_responds_with_its_dn",
        &pki,
        palisade_dn(&pki),
        "CN=palisade.example.org, O=Palisade tests",
    ) else {
        return;
    };
    assert!(
        log.contains("authentication of 'CN=palisade.example.org, O=Palisade tests' with RSA_EMSA_PKCS1_SHA2_256 successful"),
        "{log}"
    );
}

#[test]
fn a_chain_of_rsa_4096_certificates_is_fragmented_by_both_sides() {
    let pki = make_pki(Key::Rsa4096, 2);
    let Some((log, sent)) = palisade_initiates(
        "a_chain_of_rsa_4096_certificates_is_fragmented_by_both_sides",
        &pki,
        None,
        "CN=palisade.example.org, O=Palisade tests",
        EndpointConfig::default(),
        false,
    ) else {
        return;
    };
    // We sent IKE_AUTH in fragments that each fit a 576-octet IPv4 packet.
    assert!(sent.len() > 6, "{sent:?}");
    assert!(sent.iter().all(|&n| n <= 576 - 28), "{sent:?}");
    // charon reassembled ours and fragmented its own answer.
    assert!(
        log.contains("reassembled fragmented IKE message"),
        "charon received fragments:\n{log}"
    );
    assert!(
        log.contains("splitting IKE message") && log.contains("IKE_AUTH response 1 [ EF("),
        "charon sent fragments:\n{log}"
    );
}
