//! Forced UDP encapsulation and dead peer detection against strongSwan's
//! charon (root and strongSwan needed, as in tests/strongswan.rs).
//!
//! charon here uses kernel-libipsec, which only does ESP in UDP, so charon
//! fakes a NAT itself whatever its `encap` setting: what these tests show is
//! that charon reads our random NAT_DETECTION_SOURCE_IP as a NAT in front
//! of us ("remote host is behind NAT", `nat-remote=yes`), and that its
//! CHILD_SA is UDP-encapsulated (`encap=yes`) and carries traffic.

#[path = "common/charon.rs"]
mod charon;
#[path = "../../../tests/support/netns.rs"]
mod netns;
#[path = "../../../tests/support/strongswan.rs"]
mod strongswan;

use std::time::Duration;

use charon::{
    PSK, Sockets, acquire, charon_agrees, child, ike_sa, lab, ours, ping_through_the_tunnel,
    psk_tunnel, settled, theirs,
};
use palisade_esp::UdpEncap;
use palisade_filter::policy::{DhGroup, IkeCipher, IkeIntegrity, IpsecProposal, MainModeProposal};
use palisade_ike::{
    Endpoint, EndpointConfig, Event, FailureReason, RetransmitConfig, Stage, StaticPolicy,
};
use strongswan::{Charon, Config};

fn policy() -> StaticPolicy {
    psk_tunnel(
        vec![MainModeProposal::new(
            IkeCipher::AesGcm128,
            IkeIntegrity::Sha256,
            DhGroup::Ecp256,
        )],
        IpsecProposal::esp_aes128_gcm(),
    )
}

#[test]
fn palisade_forces_encapsulation_and_charon_sees_a_nat_in_front_of_it() {
    let Some(pair) = lab("palisade_forces_encapsulation_and_charon_sees_a_nat_in_front_of_it")
    else {
        return;
    };
    let charon = Charon::start(&pair.b, &Config::psk(theirs().ip(), ours().ip(), PSK))
        .expect("start charon");
    let mut net = Sockets::open(&pair);
    let config = EndpointConfig {
        force_udp_encapsulation: true,
        ..EndpointConfig::default()
    };
    let mut ike = Endpoint::new(config, policy());
    acquire(&mut ike);
    let events = net.drive(&mut ike, Duration::from_secs(10), settled);
    let info = ike_sa(&events).unwrap_or_else(|| panic!("no IKE SA: {events:?}"));
    assert!(info.nat.forced_encapsulation, "{:?}", info.nat);
    assert!(!info.nat.local_behind_nat, "no NAT really");
    assert_eq!((info.local.port(), info.remote.port()), (4500, 4500));
    let c = child(&events).unwrap_or_else(|| panic!("no CHILD_SA: {events:?}"));
    assert_eq!(
        c.udp_encap,
        Some(UdpEncap {
            local_port: 4500,
            remote_port: 4500
        })
    );
    let sas = charon_agrees(&charon, c);
    // charon took our faked source hash for a NAT in front of us.
    assert!(sas.contains("nat-remote=yes"), "{sas}");
    assert!(sas.contains("encap=yes"), "{sas}");
    assert!(
        charon.log().contains("remote host is behind NAT"),
        "{}",
        charon.log()
    );
    ping_through_the_tunnel(&mut net, &mut ike, c, 0x5E1C);
}

#[test]
fn dead_peer_detection_keeps_a_live_charon_and_buries_a_silent_one() {
    let Some(pair) = lab("dead_peer_detection_keeps_a_live_charon_and_buries_a_silent_one") else {
        return;
    };
    let charon = Charon::start(&pair.b, &Config::psk(theirs().ip(), ours().ip(), PSK))
        .expect("start charon");
    let mut net = Sockets::open(&pair);
    let config = EndpointConfig {
        dpd_delay: Some(Duration::from_secs(1)),
        retransmit: RetransmitConfig {
            initial_timeout: Duration::from_millis(200),
            max_retransmits: 3,
            max_duration: Duration::from_secs(10),
        },
        ..EndpointConfig::default()
    };
    let mut ike = Endpoint::new(config, policy());
    acquire(&mut ike);
    let events = net.drive(&mut ike, Duration::from_secs(10), settled);
    let info = ike_sa(&events)
        .unwrap_or_else(|| panic!("no IKE SA: {events:?}"))
        .clone();
    let c = child(&events)
        .unwrap_or_else(|| panic!("no CHILD_SA: {events:?}"))
        .clone();
    // About three checks in 3.5 s, each answered by charon.
    let events = net.drive(&mut ike, Duration::from_millis(3500), |_| false);
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(ike.ike_sas(), vec![info.id]);
    assert_eq!(ike.counters().retransmissions, 0);
    let answered = charon.log().matches("parsed INFORMATIONAL request").count();
    assert!(answered >= 2, "{}", charon.log());
    // charon's host stops answering: everything arriving there is dropped.
    let out = pair
        .b
        .command("nft")
        .arg("add table inet silent; add chain inet silent in { type filter hook input priority 0 ; policy drop ; }")
        .output()
        .expect("nft");
    assert!(out.status.success(), "{out:?}");
    // A check within 1 s, then 0.2 + 0.4 + 0.8 s and the give-up at 3 s.
    let events = net.drive(&mut ike, Duration::from_secs(8), |e| {
        e.iter().any(|e| matches!(e, Event::IkeSaDeleted(_)))
    });
    let failure = events.iter().find_map(|e| match e {
        Event::Failure(f) => Some(f),
        _ => None,
    });
    let failure = failure.unwrap_or_else(|| panic!("no failure: {events:?}"));
    assert_eq!(
        (failure.ike_sa, failure.stage, failure.reason),
        (
            Some(info.id),
            Stage::Informational,
            FailureReason::PeerUnreachable
        )
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::ChildSaDeleted(d) if d.inbound_spi == c.inbound_spi)),
        "{events:?}"
    );
    assert!(ike.ike_sas().is_empty());
}
