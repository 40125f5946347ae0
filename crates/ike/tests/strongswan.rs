//! Interop with strongSwan: Palisade's endpoint, driven over a real UDP socket in one
//! network namespace, negotiates with charon in another, in both roles.
//!
//! Needs root and strongSwan (charon-systemd, swanctl; scripts/lib/deps.sh installs
//! them). Not root, or PALISADE_SKIP_STRONGSWAN=1: skipped with a printed reason.
//! charon's kernel-libipsec back end only does tunnel mode, so the CHILD_SAs here are
//! host-to-host tunnels.

#[path = "common/charon.rs"]
mod charon;
#[path = "../../../tests/support/netns.rs"]
mod netns;
#[path = "../../../tests/support/strongswan.rs"]
mod strongswan;

use std::time::{Duration, Instant};

use charon::{
    PSK, Sockets, acquire, charon_agrees, child, ike_sa, lab, ours, ping_through_the_tunnel,
    psk_tunnel, settled, theirs,
};
use palisade_esp::UdpEncap;
use palisade_filter::policy::{DhGroup, IkeCipher, IkeIntegrity, IpsecProposal, MainModeProposal};
use palisade_ike::{ChildSa, Endpoint, EndpointConfig, Event, Identity, StaticPolicy};
use strongswan::{Charon, Config};

/// Our side: a host-to-host tunnel to charon with the given IKE proposals.
fn policy(proposals: Vec<MainModeProposal>) -> StaticPolicy {
    psk_tunnel(proposals, IpsecProposal::esp_aes128_gcm())
}

/// charon's view agrees with ours: established, installed, same SPIs.
fn check_charon_agrees(charon: &Charon<'_>, c: &ChildSa) {
    let sas = charon_agrees(charon, c);
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
    acquire(&mut ike);
    let events = net.drive(&mut ike, Duration::from_secs(10), settled);
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
    ping_through_the_tunnel(&mut net, &mut ike, c, 0x5A17);
    // A liveness check, then charon deletes the IKE SA and we hear of it.
    assert!(ike.check_liveness(Instant::now(), info.id));
    let events = net.drive(&mut ike, Duration::from_secs(5), |_| false);
    assert!(events.is_empty(), "{events:?}");
    let events = net.during(
        &charon,
        &["--terminate", "--ike", "pal", "--timeout", "5"],
        &mut ike,
        Duration::from_secs(5),
        |e| e.iter().any(|e| matches!(e, Event::IkeSaDeleted(_))),
    );
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
    let events = net.during(
        &charon,
        &["--initiate", "--child", "pal", "--timeout", "10"],
        &mut ike,
        Duration::from_secs(10),
        settled,
    );
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
    ping_through_the_tunnel(&mut net, &mut ike, c, 0x5A17);
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
