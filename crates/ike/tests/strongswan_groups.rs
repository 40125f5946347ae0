//! Interop of key-exchange group 21 (ECP-521, RFC 5903) with strongSwan:
//! an IKE SA with AES-GCM-256, PRF-HMAC-SHA-512 and ECP-521, its first
//! CHILD_SA (AES-GCM-256), then a CHILD_SA rekey with PFS in ECP-521,
//! started by Palisade and by charon. Each CHILD_SA is proven with an ICMP
//! echo sealed by palisade-esp that charon's host answers through the
//! tunnel; charon's log shows the ECP-521 exchanges.
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
    PSK, Sockets, acquire, charon_has, child_deleted, ike_deleted, ike_sa, installed, lab,
    no_failures, ours, ping, psk_tunnel, settled, theirs,
};
use palisade_crypto::KeId;
use palisade_filter::policy::{
    DhGroup, IkeCipher, IkeIntegrity, IpsecProposal, MainModeProposal, PfsGroup,
};
use palisade_ike::{Endpoint, EndpointConfig, Event, IkeSaInfo};
use strongswan::{Charon, Config};

/// charon's side: IKE and ESP proposals with ECP-521 only.
const IKE_PROPOSALS: &str = "aes256gcm16-prfsha512-ecp521";
const ESP_PROPOSALS: &str = "aes256gcm16-ecp521";

/// How long the endpoint is driven while a swanctl command runs.
const SWANCTL: Duration = Duration::from_secs(20);

fn charon_config() -> Config {
    let mut config = Config::psk(theirs().ip(), ours().ip(), PSK);
    config.proposals = IKE_PROPOSALS.into();
    config.esp_proposals = ESP_PROPOSALS.into();
    config
}

/// Our side: a host-to-host tunnel to charon, AES-GCM-256/SHA-512/ECP-521
/// for IKE and AES-GCM-256 with PFS in ECP-521 for ESP.
fn endpoint() -> Endpoint {
    let policy = psk_tunnel(
        vec![MainModeProposal::new(
            IkeCipher::AesGcm256,
            IkeIntegrity::Sha512,
            DhGroup::Ecp521,
        )],
        IpsecProposal::esp_aes256_gcm().with_pfs(PfsGroup::Ecp521),
    );
    Endpoint::new(EndpointConfig::default(), policy)
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
    acquire(&mut ike);
    let events = net.drive(&mut ike, Duration::from_secs(10), settled);
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
        SWANCTL,
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
    let events = net.during(
        &charon,
        &["--rekey", "--child", "pal"],
        &mut ike,
        SWANCTL,
        |e| child_deleted(e, old),
    );
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
        SWANCTL,
        |e| ike_deleted(e, info.id),
    );
    assert!(ike_deleted(&events, info.id), "{events:?}");
    assert!(ike.ike_sas().is_empty());
}
