//! Interop of CREATE_CHILD_SA with strongSwan: CHILD_SA and IKE SA rekeys
//! started by Palisade and by charon, with PFS in MODP-2048 and in
//! Curve25519, and deletes from either side. After each rekey an ICMP echo
//! sealed by palisade-esp with the current CHILD_SA's keys is answered by
//! charon's host through the tunnel.
//!
//! Needs root and strongSwan, like tests/strongswan.rs (and driven, as it
//! is, by tests/common/charon.rs); skipped otherwise with a printed
//! reason. kernel-libipsec only does tunnel mode and no ESN.

#[path = "common/charon.rs"]
mod charon;
#[path = "../../../tests/support/netns.rs"]
mod netns;
#[path = "../../../tests/support/strongswan.rs"]
mod strongswan;

use std::time::{Duration, Instant};

use charon::{
    PSK, Sockets, acquire, charon_has, child_deleted, ike_deleted, ike_rekeyed, installed, lab,
    no_failures, ours, ping, psk_tunnel, theirs,
};
use palisade_filter::policy::{
    DhGroup, IkeCipher, IkeIntegrity, IpsecProposal, MainModeProposal, PfsGroup,
};
use palisade_ike::{ChildSa, Endpoint, EndpointConfig, Event, IkeSaId, StaticPolicy};
use strongswan::{Charon, Config};

/// A host-to-host tunnel to charon with one IKE proposal and one ESP
/// proposal with PFS in `pfs`.
fn policy(mm: MainModeProposal, pfs: PfsGroup) -> StaticPolicy {
    psk_tunnel(vec![mm], IpsecProposal::esp_aes128_gcm().with_pfs(pfs))
}

/// How long the endpoint is driven while a swanctl command runs.
const SWANCTL: Duration = Duration::from_secs(10);

/// A CHILD_SA rekey of ours: the new pair is installed, charon has it, the
/// old one is deleted, and the new one carries a ping.
fn we_rekey_child(
    net: &mut Sockets,
    ike: &mut Endpoint,
    charon: &Charon<'_>,
    id: IkeSaId,
    c: &ChildSa,
    ping_id: u16,
) -> ChildSa {
    assert!(ike.rekey_child_sa(Instant::now(), id, c.inbound_spi));
    let old = c.inbound_spi;
    let events = net.drive(ike, Duration::from_secs(10), |e| child_deleted(e, old));
    no_failures(&events);
    let new = installed(&events).unwrap_or_else(|| panic!("no new CHILD_SA: {events:?}"));
    assert!(child_deleted(&events, old), "{events:?}");
    charon_has(charon, &new);
    ping(net, ike, &new, ping_id);
    new
}

#[test]
fn palisade_rekeys_child_and_ike_sa_with_modp2048() {
    let Some(pair) = lab("palisade_rekeys_child_and_ike_sa_with_modp2048") else {
        return;
    };
    let mut config = Config::psk(theirs().ip(), ours().ip(), PSK);
    config.proposals = "aes128-sha256-modp2048".into();
    config.esp_proposals = "aes128gcm16-modp2048".into();
    let charon = Charon::start(&pair.b, &config).expect("start charon");
    let mut net = Sockets::open(&pair);
    let mut ike = Endpoint::new(
        EndpointConfig::default(),
        policy(
            MainModeProposal::new(IkeCipher::Aes128, IkeIntegrity::Sha256, DhGroup::Group14),
            PfsGroup::Group14,
        ),
    );
    acquire(&mut ike);
    let events = net.drive(&mut ike, Duration::from_secs(10), |e| {
        installed(e).is_some()
    });
    no_failures(&events);
    let c = installed(&events).unwrap_or_else(|| panic!("no CHILD_SA: {events:?}"));
    let id = c.ike_sa;
    ping(&mut net, &mut ike, &c, 1);
    // CHILD_SA rekey with PFS.
    let c = we_rekey_child(&mut net, &mut ike, &charon, id, &c, 2);
    // IKE SA rekey: the CHILD_SA moves, untouched, to the new IKE SA.
    assert!(ike.rekey_ike_sa(Instant::now(), id));
    let events = net.drive(&mut ike, Duration::from_secs(10), |e| ike_deleted(e, id));
    no_failures(&events);
    let (old, new) = ike_rekeyed(&events).unwrap_or_else(|| panic!("no IKE rekey: {events:?}"));
    assert_eq!(old, id);
    assert_eq!(ike.ike_sas(), [new]);
    assert!(
        charon
            .list_sas()
            .expect("list-sas")
            .contains("state=ESTABLISHED")
    );
    ping(&mut net, &mut ike, &c, 3);
    // Keys from the new IKE SA's SK_d: another CHILD_SA rekey.
    let c = we_rekey_child(&mut net, &mut ike, &charon, new, &c, 4);
    // charon deletes the CHILD_SA, then we delete the IKE SA.
    let inbound = c.inbound_spi;
    let events = net.during(
        &charon,
        &["--terminate", "--child", "pal", "--timeout", "5"],
        &mut ike,
        SWANCTL,
        |e| child_deleted(e, inbound),
    );
    assert!(child_deleted(&events, inbound), "{events:?}");
    assert!(ike.delete_ike_sa(Instant::now(), new));
    let events = net.drive(&mut ike, Duration::from_secs(5), |e| ike_deleted(e, new));
    assert!(ike_deleted(&events, new), "{events:?}");
    let sas = charon.list_sas().expect("list-sas");
    assert!(!sas.contains("ESTABLISHED"), "{sas}");
}

#[test]
fn charon_rekeys_child_and_ike_sa_with_curve25519() {
    let Some(pair) = lab("charon_rekeys_child_and_ike_sa_with_curve25519") else {
        return;
    };
    let mut config = Config::psk(theirs().ip(), ours().ip(), PSK);
    config.proposals = "aes128gcm16-prfsha256-x25519".into();
    config.esp_proposals = "aes128gcm16-x25519".into();
    let charon = Charon::start(&pair.b, &config).expect("start charon");
    let mut net = Sockets::open(&pair);
    let mut ike = Endpoint::new(
        EndpointConfig::default(),
        policy(
            MainModeProposal::new(
                IkeCipher::AesGcm128,
                IkeIntegrity::Sha256,
                DhGroup::Curve25519,
            ),
            PfsGroup::Curve25519,
        ),
    );
    let events = net.during(
        &charon,
        &["--initiate", "--child", "pal", "--timeout", "10"],
        &mut ike,
        SWANCTL,
        |e| installed(e).is_some(),
    );
    no_failures(&events);
    let c = installed(&events).unwrap_or_else(|| panic!("no CHILD_SA: {events:?}"));
    let id = c.ike_sa;
    ping(&mut net, &mut ike, &c, 11);
    // charon rekeys the CHILD_SA: we answer, charon deletes the old pair.
    let old = c.inbound_spi;
    let events = net.during(
        &charon,
        &["--rekey", "--child", "pal"],
        &mut ike,
        SWANCTL,
        |e| child_deleted(e, old),
    );
    no_failures(&events);
    let c = installed(&events).unwrap_or_else(|| panic!("no rekeyed CHILD_SA: {events:?}"));
    assert!(events.iter().any(|e| matches!(e, Event::ChildSaRekeyed(r) if r.old_inbound_spi == old && r.new_inbound_spi == c.inbound_spi)), "{events:?}");
    assert!(child_deleted(&events, old), "{events:?}");
    charon_has(&charon, &c);
    ping(&mut net, &mut ike, &c, 12);
    // charon rekeys the IKE SA.
    let events = net.during(
        &charon,
        &["--rekey", "--ike", "pal"],
        &mut ike,
        SWANCTL,
        |e| ike_deleted(e, id),
    );
    no_failures(&events);
    let (old_ike, new) = ike_rekeyed(&events).unwrap_or_else(|| panic!("no IKE rekey: {events:?}"));
    assert_eq!(old_ike, id);
    assert_eq!(ike.ike_sas(), [new]);
    ping(&mut net, &mut ike, &c, 13);
    // Our own rekey over the IKE SA charon made.
    let c = we_rekey_child(&mut net, &mut ike, &charon, new, &c, 14);
    // And our IKE SA rekey with charon as responder.
    assert!(ike.rekey_ike_sa(Instant::now(), new));
    let events = net.drive(&mut ike, Duration::from_secs(10), |e| ike_deleted(e, new));
    no_failures(&events);
    let (_, newer) = ike_rekeyed(&events).unwrap_or_else(|| panic!("no IKE rekey: {events:?}"));
    ping(&mut net, &mut ike, &c, 15);
    // charon deletes everything.
    let events = net.during(
        &charon,
        &["--terminate", "--ike", "pal", "--timeout", "5"],
        &mut ike,
        SWANCTL,
        |e| ike_deleted(e, newer),
    );
    assert!(ike_deleted(&events, newer), "{events:?}");
    assert!(child_deleted(&events, c.inbound_spi), "{events:?}");
    assert!(ike.ike_sas().is_empty());
}
