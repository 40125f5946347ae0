//! Interop with strongSwan using certificates: a PKI made at test time
//! (rcgen), written as PEM into charon's swanctl/x509, x509ca and private
//! directories; Palisade as initiator and as responder, RSA and ECDSA, RFC
//! 7427 Digital Signature and the classic methods; and a chain of RSA-4096
//! certificates large enough that both charon and Palisade send IKE_AUTH in
//! fragments (RFC 7383). Each run is proven by an ICMP echo through the
//! CHILD_SA, as tests/strongswan.rs does.
//!
//! Needs root and strongSwan, as tests/strongswan.rs (skipped otherwise);
//! the driver and the ping are tests/common/charon.rs, shared with it.

#[path = "common/charon.rs"]
mod charon;
#[path = "../../../tests/support/netns.rs"]
mod netns;
#[allow(dead_code)]
#[path = "common/pki.rs"]
mod pki;
#[path = "../../../tests/support/strongswan.rs"]
mod strongswan;

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use charon::{
    Sockets, acquire, charon_agrees, child, ike_sa, lab, ours, ping_through_the_tunnel, settled,
    theirs, tunnel,
};
use palisade_filter::policy::{
    AuthenticationMethod, DhGroup, IkeCipher, IkeIntegrity, IpsecProposal, MainModePolicy,
    MainModeProposal,
};
use palisade_ike::{Credentials, Endpoint, EndpointConfig, Identity, IkePolicy, StaticPolicy};
use pki::{Ca, EndEntity, Key, San, anchors};
use strongswan::{Charon, Config};

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
    tunnel(ike, IpsecProposal::esp_aes128_gcm())
}

fn endpoint(pki: &Pki, local_id: Option<Identity>, config: EndpointConfig) -> Endpoint {
    let mut ike = Endpoint::new(config, policy(pki, local_id));
    // The driver's business: the library never reads the wall clock.
    ike.set_unix_time(Instant::now(), SystemTime::now());
    ike
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
    acquire(&mut ike);
    let events = net.drive(&mut ike, Duration::from_secs(15), settled);
    let sent = std::mem::take(&mut net.sent);
    let info = ike_sa(&events).unwrap_or_else(|| panic!("no IKE SA: {events:?}"));
    assert_eq!(info.peer_id, charon_dn(pki), "charon's default identity");
    let c = child(&events).unwrap_or_else(|| panic!("no CHILD_SA: {events:?}"));
    charon_agrees(&charon, c);
    ping_through_the_tunnel(&mut net, &mut ike, c, 0xCE57);
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
    let events = net.during(
        &charon,
        &["--initiate", "--child", "pal", "--timeout", "15"],
        &mut ike,
        Duration::from_secs(15),
        settled,
    );
    let info = ike_sa(&events).unwrap_or_else(|| panic!("no IKE SA: {events:?}"));
    assert_eq!(info.peer_id, charon_dn(pki));
    assert_eq!(info.local_id, local_id);
    let c = child(&events).unwrap_or_else(|| panic!("no CHILD_SA: {events:?}"));
    charon_agrees(&charon, c);
    ping_through_the_tunnel(&mut net, &mut ike, c, 0xCE57);
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
