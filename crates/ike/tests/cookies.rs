//! COOKIEs (RFC 7296 §2.6) and the bound on half-open IKE SAs: a responder
//! under load keeps no state for IKE_SA_INIT requests until their sender
//! returns a cookie, and an initiator returns it.

mod common;
#[path = "../../../tests/support/netns.rs"]
mod netns;
#[path = "../../../tests/support/strongswan.rs"]
mod strongswan;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{
    A, B, Net, Seeded, addr, children, established, failures, main_mode, mm, prove_with_esp,
    transport_policy,
};
use palisade_crypto::KeId;
use palisade_filter::policy::{
    DhGroup, IkeCipher, IkeIntegrity, IpsecProposal, IpsecTransportPolicy, MainModeProposal,
};
use palisade_ike::{
    Acquire, DropReason, Endpoint, EndpointConfig, QuickModePolicy, StaticPolicy, Transmit,
};
use palisade_wire::ikev2::{IkeHeader, Notify, notify_type, payload_type};

fn x25519() -> MainModeProposal {
    mm(
        IkeCipher::AesGcm256,
        IkeIntegrity::Sha256,
        DhGroup::Curve25519,
    )
}

fn p256() -> MainModeProposal {
    mm(IkeCipher::AesGcm256, IkeIntegrity::Sha256, DhGroup::Ecp256)
}

fn qm() -> Vec<IpsecProposal> {
    vec![IpsecProposal::esp_aes128_gcm()]
}

/// Policy for any peer, so that requests from many addresses are answered.
fn any_peer(proposals: &[MainModeProposal]) -> StaticPolicy {
    StaticPolicy::new().with_peer(
        None,
        main_mode("k", proposals),
        Some(QuickModePolicy::Transport(IpsecTransportPolicy::new(qm()))),
    )
}

fn config(cookie_threshold: usize) -> EndpointConfig {
    EndpointConfig {
        cookie_threshold,
        ..EndpointConfig::default()
    }
}

fn endpoint(config: EndpointConfig, policy: StaticPolicy, seed: u64) -> Endpoint {
    Endpoint::with_random(config, policy, Seeded(seed))
}

fn drain(ep: &mut Endpoint) -> Vec<Transmit> {
    std::iter::from_fn(|| ep.poll_transmit()).collect()
}

/// The IKE_SA_INIT request `ep` sends for an acquire from `local` to B.
fn request_from(ep: &mut Endpoint, now: Instant, local: &str) -> Transmit {
    ep.handle_acquire(
        now,
        Acquire {
            local: addr(local),
            remote: addr(B),
            traffic: None,
        },
    );
    let mut sent = drain(ep);
    assert_eq!(sent.len(), 1);
    sent.remove(0)
}

/// Hands `tx` to `to` and returns what `to` sends back.
fn deliver(to: &mut Endpoint, now: Instant, tx: &Transmit) -> Vec<Transmit> {
    to.handle_datagram(now, tx.remote, tx.local, &tx.bytes);
    drain(to)
}

/// The payload types of a message, in order, and its notifications.
fn payloads(bytes: &[u8]) -> (Vec<u8>, Vec<(u16, Vec<u8>)>) {
    let header = IkeHeader::parse(bytes).expect("header");
    let mut types = Vec::new();
    let mut notifies = Vec::new();
    for p in header.payloads(bytes) {
        let p = p.expect("payload");
        types.push(p.payload_type);
        if p.payload_type == payload_type::N {
            let n = Notify::parse(p.body).expect("notify");
            notifies.push((n.notify_type, n.data.to_vec()));
        }
    }
    (types, notifies)
}

/// The COOKIE a message carries, if it does.
fn cookie_of(bytes: &[u8]) -> Option<Vec<u8>> {
    payloads(bytes)
        .1
        .into_iter()
        .find(|(t, _)| *t == notify_type::COOKIE)
        .map(|(_, d)| d)
}

/// A full IKE_SA_INIT response: SA, KE, Nonce and more.
fn is_full_response(bytes: &[u8]) -> bool {
    let types = payloads(bytes).0;
    types.contains(&payload_type::SA) && types.contains(&payload_type::KE)
}

/// `request` as if sent by another initiator: a different SPIi.
fn with_spi(request: &Transmit, spi: u64, from: SocketAddr) -> Transmit {
    let mut bytes = request.bytes.clone();
    bytes[..8].copy_from_slice(&spi.to_be_bytes());
    Transmit {
        local: from,
        remote: request.remote,
        bytes,
    }
}

/// Runs two endpoints at A and B until neither has anything to send.
fn pump(a: &mut Endpoint, b: &mut Endpoint, now: Instant) {
    for _ in 0..50 {
        let from_a = drain(a);
        let from_b = drain(b);
        if from_a.is_empty() && from_b.is_empty() {
            return;
        }
        for tx in from_a.into_iter().filter(|t| t.remote == addr(B)) {
            b.handle_datagram(now, tx.remote, tx.local, &tx.bytes);
        }
        for tx in from_b.into_iter().filter(|t| t.remote == addr(A)) {
            a.handle_datagram(now, tx.remote, tx.local, &tx.bytes);
        }
    }
    panic!("endpoints kept talking");
}

#[test]
fn above_the_threshold_a_cookie_is_demanded_and_no_state_kept() {
    let now = Instant::now();
    let mut b = endpoint(config(2), any_peer(&[x25519()]), 2);
    let mut x = endpoint(EndpointConfig::default(), any_peer(&[x25519()]), 3);
    for (i, local) in ["198.51.100.1:500", "198.51.100.2:500"].iter().enumerate() {
        let req = request_from(&mut x, now, local);
        let answer = deliver(&mut b, now, &req);
        assert_eq!(answer.len(), 1);
        assert!(is_full_response(&answer[0].bytes));
        assert_eq!(b.half_open(), i + 1);
    }
    let req = request_from(&mut x, now, "198.51.100.3:500");
    let answer = deliver(&mut b, now, &req);
    assert_eq!(answer.len(), 1);
    let (types, notifies) = payloads(&answer[0].bytes);
    assert_eq!(types, vec![payload_type::N], "only N(COOKIE)");
    assert_eq!(notifies[0].0, notify_type::COOKIE);
    assert!(!notifies[0].1.is_empty() && notifies[0].1.len() <= 64);
    let header = IkeHeader::parse(&answer[0].bytes).expect("header");
    assert_eq!(header.responder_spi, 0, "no SPI: no state");
    assert_eq!(b.half_open(), 2);
    assert_eq!(b.counters().dropped(DropReason::CookieRequired), 1);
    assert!(b.poll_event().is_none());
    // A retransmission of that request is answered the same way, still
    // without state.
    let again = deliver(&mut b, now, &req);
    assert_eq!(cookie_of(&again[0].bytes), Some(notifies[0].1.clone()));
    assert_eq!(b.half_open(), 2);
}

#[test]
fn a_correct_cookie_is_accepted_a_wrong_or_stale_one_answered_afresh() {
    let now = Instant::now();
    let mut a = endpoint(EndpointConfig::default(), any_peer(&[x25519()]), 4);
    let mut b = endpoint(config(0), any_peer(&[x25519()]), 5);
    let req1 = request_from(&mut a, now, A);
    assert_eq!(cookie_of(&req1.bytes), None);
    let answer = deliver(&mut b, now, &req1);
    let c1 = cookie_of(&answer[0].bytes).expect("cookie demanded");

    // The initiator retries with the cookie as its first payload.
    let retry = deliver(&mut a, now, &answer[0]);
    assert_eq!(retry.len(), 1);
    let (types, notifies) = payloads(&retry[0].bytes);
    assert_eq!(types[0], payload_type::N);
    assert_eq!(notifies[0], (notify_type::COOKIE, c1.clone()));
    assert_eq!(
        IkeHeader::parse(&retry[0].bytes).expect("h").initiator_spi,
        IkeHeader::parse(&req1.bytes).expect("h").initiator_spi
    );

    // A wrong cookie: answered with the right one, no state.
    let mut wrong = retry[0].clone();
    let at = wrong
        .bytes
        .windows(c1.len())
        .position(|w| w == c1.as_slice())
        .expect("cookie in request");
    wrong.bytes[at + c1.len() - 1] ^= 1;
    let answer = deliver(&mut b, now, &wrong);
    assert_eq!(cookie_of(&answer[0].bytes), Some(c1.clone()));
    assert_eq!(b.half_open(), 0);

    // A stale cookie (its secret rotated out twice): a fresh one.
    let later = now + Duration::from_secs(150);
    let answer = deliver(&mut b, later, &retry[0]);
    let c2 = cookie_of(&answer[0].bytes).expect("fresh cookie");
    assert_ne!(c2, c1);
    assert_eq!(b.half_open(), 0);
    assert_eq!(b.counters().dropped(DropReason::CookieRequired), 3);

    // The initiator takes the fresh cookie, replacing the old one.
    let retry2 = deliver(&mut a, later, &answer[0]);
    let (types, notifies) = payloads(&retry2[0].bytes);
    assert_eq!(types[0], payload_type::N);
    assert_eq!(
        notifies
            .iter()
            .filter(|(t, _)| *t == notify_type::COOKIE)
            .count(),
        1
    );
    assert_eq!(notifies[0], (notify_type::COOKIE, c2));
    // The correct cookie: state and a full answer.
    let answer = deliver(&mut b, later, &retry2[0]);
    assert_eq!(answer.len(), 1);
    assert!(is_full_response(&answer[0].bytes));
    assert_eq!(b.half_open(), 1);
    // A cookie made with the previous secret is still good one rotation on.
    let mut c = endpoint(EndpointConfig::default(), any_peer(&[x25519()]), 6);
    let req = request_from(&mut c, later, "198.51.100.9:500");
    let answer = deliver(&mut b, later, &req);
    let retry = deliver(&mut c, later, &answer[0]);
    let answer = deliver(&mut b, later + Duration::from_secs(61), &retry[0]);
    assert!(is_full_response(&answer[0].bytes));
}

#[test]
fn the_initiator_completes_the_handshake_through_cookies() {
    let mut net = Net::with_config(
        transport_policy(B, main_mode("k", &[x25519()]), qm()),
        transport_policy(A, main_mode("k", &[x25519()]), qm()),
        7,
        config(0),
    );
    net.acquire();
    net.run(Duration::from_secs(5));
    assert!(
        failures(&net.events_a).is_empty(),
        "{:?}",
        failures(&net.events_a)
    );
    assert_eq!(established(&net.events_a).len(), 1);
    assert_eq!(established(&net.events_b).len(), 1);
    assert_eq!(net.b.counters().dropped(DropReason::CookieRequired), 1);
    assert_eq!(net.b.half_open(), 0, "established, no longer half-open");
    let (ca, cb) = (children(&net.events_a), children(&net.events_b));
    assert_eq!((ca.len(), cb.len()), (1, 1));
    prove_with_esp(ca[0], cb[0], net.now);
}

#[test]
fn cookie_then_invalid_ke_payload() {
    // A starts with Curve25519; B takes only P-256 and always wants a
    // cookie: COOKIE, then INVALID_KE_PAYLOAD, then success, the cookie
    // kept in the last retry.
    let mut net = Net::with_config(
        transport_policy(B, main_mode("k", &[x25519(), p256()]), qm()),
        transport_policy(A, main_mode("k", &[p256()]), qm()),
        8,
        config(0),
    );
    net.acquire();
    net.run(Duration::from_secs(5));
    assert!(
        failures(&net.events_a).is_empty(),
        "{:?}",
        failures(&net.events_a)
    );
    let ike = established(&net.events_a);
    assert_eq!(ike.len(), 1);
    assert_eq!(ike[0].transforms.ke, KeId::Ecp256);
    assert_eq!(net.b.counters().dropped(DropReason::CookieRequired), 1);
    let requests_with_cookie = net
        .log
        .iter()
        .filter(|(from_a, bytes)| *from_a && cookie_of(bytes).is_some())
        .count();
    assert_eq!(requests_with_cookie, 2, "both retries carry the cookie");
}

#[test]
fn invalid_ke_payload_then_cookie() {
    let now = Instant::now();
    let mut a = endpoint(
        EndpointConfig::default(),
        transport_policy(B, main_mode("k", &[x25519(), p256()]), qm()),
        9,
    );
    let mut b = endpoint(config(1), any_peer(&[p256()]), 10);
    // No load yet: B answers INVALID_KE_PAYLOAD, statelessly.
    let req1 = request_from(&mut a, now, A);
    let invalid_ke = deliver(&mut b, now, &req1);
    let notifies = payloads(&invalid_ke[0].bytes).1;
    assert_eq!(notifies[0].0, notify_type::INVALID_KE_PAYLOAD);
    assert_eq!(b.half_open(), 0);
    // Another initiator makes B reach its threshold.
    let mut y = endpoint(EndpointConfig::default(), any_peer(&[p256()]), 11);
    let other = request_from(&mut y, now, "198.51.100.7:500");
    assert!(is_full_response(&deliver(&mut b, now, &other)[0].bytes));
    assert_eq!(b.half_open(), 1);
    // A retries with P-256 and is asked for a cookie, returns it, and
    // completes.
    let req2 = deliver(&mut a, now, &invalid_ke[0]);
    assert_eq!(cookie_of(&req2[0].bytes), None);
    let cookie = deliver(&mut b, now, &req2[0]);
    assert!(cookie_of(&cookie[0].bytes).is_some());
    a.handle_datagram(now, cookie[0].remote, cookie[0].local, &cookie[0].bytes);
    pump(&mut a, &mut b, now);
    let events: Vec<_> = std::iter::from_fn(|| a.poll_event()).collect();
    assert!(failures(&events).is_empty(), "{:?}", failures(&events));
    let ike = established(&events);
    assert_eq!(ike.len(), 1);
    assert_eq!(ike[0].transforms.ke, KeId::Ecp256);
}

#[test]
fn a_flood_from_spoofed_addresses_keeps_state_bounded() {
    let now = Instant::now();
    let threshold = 16;
    let mut b = endpoint(config(threshold), any_peer(&[x25519()]), 12);
    let mut x = endpoint(EndpointConfig::default(), any_peer(&[x25519()]), 13);
    let template = request_from(&mut x, now, "203.0.113.1:500");
    let flood = 2000u64;
    let mut answered = 0;
    for i in 0..flood {
        let from: SocketAddr =
            SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 500));
        answered += deliver(&mut b, now, &with_spi(&template, 0x1000 + i, from)).len();
    }
    // Every request answered (by a cookie above the threshold), but state
    // for the first `threshold` only.
    assert_eq!(answered as u64, flood);
    assert_eq!(b.half_open(), threshold);
    assert_eq!(
        b.counters().dropped(DropReason::CookieRequired),
        flood - threshold as u64
    );
    // A real initiator still gets through, by returning the cookie.
    let mut a = endpoint(
        EndpointConfig::default(),
        transport_policy(B, main_mode("k", &[x25519()]), qm()),
        14,
    );
    a.handle_acquire(
        now,
        Acquire {
            local: addr(A),
            remote: addr(B),
            traffic: None,
        },
    );
    pump(&mut a, &mut b, now);
    let events: Vec<_> = std::iter::from_fn(|| a.poll_event()).collect();
    assert_eq!(established(&events).len(), 1, "{:?}", failures(&events));
    // The half-open ones time out and the count falls back to zero.
    b.handle_timeout(now + Duration::from_secs(31));
    assert_eq!(b.half_open(), 0);
}

#[test]
fn half_open_ike_sas_per_peer_are_bounded() {
    let now = Instant::now();
    let config = EndpointConfig {
        cookie_threshold: 1000,
        max_half_open_per_peer: 4,
        ..EndpointConfig::default()
    };
    let mut b = endpoint(config, any_peer(&[x25519()]), 15);
    let mut x = endpoint(EndpointConfig::default(), any_peer(&[x25519()]), 16);
    let template = request_from(&mut x, now, A);
    let mut answered = 0;
    for i in 0..20 {
        answered += deliver(&mut b, now, &with_spi(&template, 0x2000 + i, addr(A))).len();
    }
    assert_eq!(
        answered, 4,
        "requests over the bound are dropped unanswered"
    );
    assert_eq!(b.half_open(), 4);
    assert_eq!(b.counters().dropped(DropReason::HalfOpenLimit), 16);
    // Another address is not affected.
    let other = with_spi(&template, 0x3000, addr("192.0.2.77:500"));
    assert_eq!(deliver(&mut b, now, &other).len(), 1);
    assert_eq!(b.half_open(), 5);
}

/// Interop: charon initiates to a Palisade responder that demands a cookie
/// for every IKE_SA_INIT; charon returns it and the CHILD_SA comes up.
/// Needs root and strongSwan (skipped with a reason otherwise).
#[test]
fn charon_returns_our_cookie() {
    use std::net::UdpSocket;

    use netns::VethPair;
    use palisade_filter::policy::AuthenticationMethod;
    use palisade_filter::policy::{IpsecTunnelPolicy, MainModePolicy, TunnelEndpoints};
    use palisade_ike::traffic_selector::host;
    use palisade_ike::{Event, IkePolicy};

    const PSK: &str = "palisade-cookie-psk-0123456789";
    if !strongswan::available_or_skip("charon_returns_our_cookie") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let ours: SocketAddr = (VethPair::ADDR_A, 500).into();
    let theirs: SocketAddr = (VethPair::ADDR_B, 500).into();
    let charon = strongswan::Charon::start(
        &pair.b,
        &strongswan::Config::psk(theirs.ip(), ours.ip(), PSK),
    )
    .expect("start charon");
    let policy = StaticPolicy::new()
        .with_peer(
            Some(theirs.ip()),
            IkePolicy::new(MainModePolicy::new(
                [AuthenticationMethod::preshared_key(PSK)],
                vec![mm(
                    IkeCipher::AesGcm128,
                    IkeIntegrity::Sha256,
                    DhGroup::Ecp256,
                )],
            )),
            Some(QuickModePolicy::Tunnel(IpsecTunnelPolicy::new(
                TunnelEndpoints::new(ours.ip(), theirs.ip()),
                vec![IpsecProposal::esp_aes128_gcm()],
            ))),
        )
        .with_selectors(vec![host(ours.ip())], vec![host(theirs.ip())]);
    let mut ike = Endpoint::new(config(0), policy);
    let ike_socket = pair.a.udp_socket(ours).expect("socket 500");
    let natt_local: SocketAddr = (VethPair::ADDR_A, 4500).into();
    let natt = pair.a.udp_socket(natt_local).expect("socket 4500");
    for s in [&ike_socket, &natt] {
        s.set_read_timeout(Some(Duration::from_millis(10)))
            .expect("timeout");
    }
    let drive = |ike: &mut Endpoint, sockets: (&UdpSocket, &UdpSocket)| {
        let start = Instant::now();
        let mut events = Vec::new();
        let mut buf = vec![0u8; 65536];
        while start.elapsed() < Duration::from_secs(10) {
            while let Some(tx) = ike.poll_transmit() {
                if tx.local.port() == 4500 {
                    let mut m = vec![0u8; 4];
                    m.extend_from_slice(&tx.bytes);
                    sockets.1.send_to(&m, tx.remote).expect("send 4500");
                } else {
                    sockets.0.send_to(&tx.bytes, tx.remote).expect("send 500");
                }
            }
            while let Some(e) = ike.poll_event() {
                events.push(e);
            }
            if events
                .iter()
                .any(|e| matches!(e, Event::ChildSaInstalled(_) | Event::Failure(_)))
            {
                break;
            }
            if let Ok((n, from)) = sockets.0.recv_from(&mut buf) {
                ike.handle_datagram(Instant::now(), ours, from, &buf[..n]);
            }
            // IKE behind the non-ESP marker on 4500 (RFC 3948); ESP ignored.
            if let Ok((n, from)) = sockets.1.recv_from(&mut buf)
                && let Some(([0, 0, 0, 0], m)) = buf[..n].split_first_chunk::<4>()
            {
                ike.handle_datagram(Instant::now(), natt_local, from, m);
            }
            let now = Instant::now();
            if ike.poll_timeout().is_some_and(|t| t <= now) {
                ike.handle_timeout(now);
            }
        }
        events
    };
    let events = std::thread::scope(|s| {
        let initiate =
            s.spawn(|| charon.swanctl(&["--initiate", "--child", "pal", "--timeout", "10"]));
        let events = drive(&mut ike, (&ike_socket, &natt));
        let out = initiate.join().expect("swanctl thread");
        assert!(out.is_ok(), "swanctl --initiate: {out:?}");
        events
    });
    assert!(failures(&events).is_empty(), "{events:?}");
    assert_eq!(established(&events).len(), 1, "{events:?}");
    assert_eq!(children(&events).len(), 1, "{events:?}");
    assert_eq!(ike.counters().dropped(DropReason::CookieRequired), 1);
    let sas = charon.list_sas().expect("list-sas");
    assert!(sas.contains("state=ESTABLISHED"), "{sas}");
}
