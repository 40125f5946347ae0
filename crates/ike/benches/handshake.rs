//! IKE SA plus first CHILD_SA establishment, both ends in one process:
//! IKE_SA_INIT and IKE_AUTH with every key exchange, KDF, SK payload and
//! AUTH computation, and the policy lookups at IKEEXT and IPSEC through
//! the filtering engine. Messages are handed from one endpoint to the
//! other directly (no sockets).
//!
//! `cargo bench -p palisade-ike --bench handshake`; one iteration is one
//! complete handshake, so handshakes per second = 1 / time.
//!
//! - `handshake/psk_x25519`: pre-shared key, Curve25519, AES-GCM-256 with
//!   PRF-HMAC-SHA-256 for the IKE SA, ESP AES-GCM-128 transport mode.
//! - `handshake/ecdsa_p256`: the same with certificates instead: each side
//!   sends its ECDSA P-256 end-entity certificate (issued by a P-256 root
//!   both trust), signs AUTH with RFC 7427 Digital Signature and validates
//!   the peer's certificate path.

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use palisade_filter::policy::{
    AuthenticationMethod, DhGroup, IkeCipher, IkeIntegrity, IpsecProposal, IpsecTransportPolicy,
    KeyingModule, MainModePolicy, MainModeProposal, ProviderContextPolicy,
};
use palisade_filter::{
    Action, Caller, Engine, Filter, Layer, ProviderContext, ProviderContextFlags, SessionOptions,
};
use palisade_ike::{Acquire, Endpoint, EndpointConfig, EnginePolicy, Event};
use uuid::Uuid;

/// The test PKI (rcgen), shared with the integration tests.
#[allow(dead_code)]
#[path = "../tests/common/pki.rs"]
mod pki;

use pki::{Ca, EndEntity, Key, San, credentials, today};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

/// One host's policy: IKEv2 main mode authenticating with `method` and
/// transport quick mode, for any peer. Returns the engine and the key of
/// the main-mode provider context.
fn engine(method: AuthenticationMethod) -> (Engine, Uuid) {
    let engine = Engine::new();
    let mut s = engine
        .open_session(Caller::root(), SessionOptions::default())
        .expect("session");
    let context = |policy| ProviderContext {
        key: Uuid::nil(),
        name: String::new(),
        description: String::new(),
        flags: ProviderContextFlags::NONE,
        provider: None,
        policy,
    };
    let (mm, _) = s
        .add_provider_context(context(ProviderContextPolicy::MainMode {
            module: KeyingModule::Ikev2,
            policy: MainModePolicy::new(
                [method],
                [MainModeProposal::new(
                    IkeCipher::AesGcm256,
                    IkeIntegrity::Sha256,
                    DhGroup::Curve25519,
                )],
            ),
        }))
        .expect("mm");
    let (qm, _) = s
        .add_provider_context(context(ProviderContextPolicy::Transport {
            module: KeyingModule::Ikev2,
            policy: IpsecTransportPolicy::new(vec![IpsecProposal::esp_aes128_gcm()]),
        }))
        .expect("qm");
    s.add_filter(Filter::new(Layer::IkeextV4, Action::Permit).provider_context(mm))
        .expect("mm filter");
    s.add_filter(Filter::new(Layer::IpsecV4, Action::Permit).provider_context(qm))
        .expect("qm filter");
    (engine, mm)
}

fn psk() -> EnginePolicy {
    EnginePolicy::new(engine(AuthenticationMethod::preshared_key("benchmark psk")).0)
}

/// Certificate policy presenting `ee`, trusting `root`.
fn ecdsa(ee: &EndEntity, root: &Ca) -> EnginePolicy {
    let (engine, mm) = engine(AuthenticationMethod::certificate(
        [PathBuf::from("/etc/palisade/root.pem")],
        PathBuf::from("/etc/palisade/cert.pem"),
        PathBuf::from("/etc/palisade/key.pem"),
    ));
    EnginePolicy::new(engine).with_credentials(mm, credentials(ee, &[], &[root]))
}

/// One complete handshake between fresh endpoints; returns the number of
/// CHILD_SAs installed (2: one per side).
fn handshake(a: &EnginePolicy, b: &EnginePolicy, now: Instant, unix: SystemTime) -> usize {
    let (la, lb) = (addr("192.0.2.1:500"), addr("192.0.2.2:500"));
    let mut ea = Endpoint::new(EndpointConfig::default(), a.clone());
    let mut eb = Endpoint::new(EndpointConfig::default(), b.clone());
    // Certificate validity is checked against the wall clock.
    ea.set_unix_time(now, unix);
    eb.set_unix_time(now, unix);
    ea.handle_acquire(
        now,
        Acquire {
            local: la,
            remote: lb,
            traffic: None,
        },
    );
    let mut installed = 0;
    loop {
        let mut moved = false;
        while let Some(tx) = ea.poll_transmit() {
            eb.handle_datagram(now, tx.remote, tx.local, &tx.bytes);
            moved = true;
        }
        while let Some(tx) = eb.poll_transmit() {
            ea.handle_datagram(now, tx.remote, tx.local, &tx.bytes);
            moved = true;
        }
        if !moved {
            break;
        }
    }
    for ep in [&mut ea, &mut eb] {
        while let Some(e) = ep.poll_event() {
            if let Event::ChildSaInstalled(c) = e {
                black_box(&c);
                installed += 1;
            }
        }
    }
    installed
}

fn benches(c: &mut Criterion) {
    let now = Instant::now();
    let unix = today();
    let (a, b) = (psk(), psk());
    assert_eq!(
        handshake(&a, &b, now, unix),
        2,
        "the handshake must complete"
    );
    let root = Ca::root("Benchmark Root", Key::EcdsaP256);
    let ee_a = root.end_entity(
        "a.example.org",
        &[San::Ip(addr("192.0.2.1:0").ip())],
        Key::EcdsaP256,
    );
    let ee_b = root.end_entity(
        "b.example.org",
        &[San::Ip(addr("192.0.2.2:0").ip())],
        Key::EcdsaP256,
    );
    let (ca, cb) = (ecdsa(&ee_a, &root), ecdsa(&ee_b, &root));
    assert_eq!(
        handshake(&ca, &cb, now, unix),
        2,
        "the handshake must complete"
    );

    let mut group = c.benchmark_group("handshake");
    group.bench_function("psk_x25519", |bench| {
        bench.iter(|| handshake(black_box(&a), black_box(&b), now, unix))
    });
    group.bench_function("ecdsa_p256", |bench| {
        bench.iter(|| handshake(black_box(&ca), black_box(&cb), now, unix))
    });
    group.finish();
}

criterion_group!(handshake_benches, benches);
criterion_main!(handshake_benches);
