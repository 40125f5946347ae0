//! Sessions, transactions, referential integrity, lifetimes, enumeration, subscriptions
//! and access control (spec §5).

use std::net::Ipv4Addr;
use std::time::Duration;

use palisade_filter::guids;
use palisade_filter::policy::{
    IpsecProposal, IpsecTransportPolicy, KeyingModule, MainModePolicy, ProviderContextPolicy,
};
use palisade_filter::*;
use uuid::Uuid;

const L: Layer = Layer::OutboundTransportV4;

fn root(engine: &Engine) -> Session {
    engine
        .open_session(Caller::root(), SessionOptions::default())
        .expect("session")
}

fn sublayer(weight: u16) -> Sublayer {
    Sublayer {
        key: Uuid::nil(),
        name: format!("w{weight}"),
        description: String::new(),
        flags: SublayerFlags::NONE,
        provider: None,
        weight,
    }
}

fn to(addr: [u8; 4]) -> FieldValues {
    FieldValues::new().with(Field::IpRemoteAddress, Scalar::V4(Ipv4Addr::from(addr)))
}

fn block_to(net: [u8; 4], len: u8) -> Filter {
    Filter::new(L, Action::Block).condition(Condition::new(
        Field::IpRemoteAddress,
        MatchType::Equal,
        ConditionValue::v4_prefix(Ipv4Addr::from(net), len),
    ))
}

fn decision(engine: &Engine, addr: [u8; 4]) -> Decision {
    engine.classify(L, &to(addr), &mut NoCallouts).decision
}

#[test]
fn commit_publishes_and_abort_discards() {
    let engine = Engine::new();
    let mut s = root(&engine);
    let mut txn = s.begin(TxnKind::Write).expect("begin");
    txn.add_filter(block_to([10, 0, 0, 0], 8)).expect("add");
    // Not visible outside the transaction before commit.
    assert_eq!(decision(&engine, [10, 1, 1, 1]), Decision::Permit);
    txn.abort();
    assert_eq!(decision(&engine, [10, 1, 1, 1]), Decision::Permit);

    let mut txn = s.begin(TxnKind::Write).expect("begin");
    txn.add_filter(block_to([10, 0, 0, 0], 8)).expect("add");
    txn.commit().expect("commit");
    assert_eq!(decision(&engine, [10, 1, 1, 1]), Decision::Block);
    assert_eq!(decision(&engine, [11, 1, 1, 1]), Decision::Permit);
}

#[test]
fn a_failed_call_does_not_doom_the_transaction() {
    let engine = Engine::new();
    let mut s = root(&engine);
    let mut txn = s.begin(TxnKind::Write).expect("begin");
    txn.add_filter(block_to([10, 0, 0, 0], 8)).expect("add");
    let bad = Filter::new(L, Action::Block).condition(Condition::equal(
        Field::AleAppId, // not a field of OUTBOUND_TRANSPORT
        Scalar::U8(1),
    ));
    let err = txn.add_filter(bad).expect_err("invalid field");
    assert!(
        err.to_string()
            .contains("ALE_APP_ID is not a condition field of layer OUTBOUND_TRANSPORT_V4"),
        "{err}"
    );
    let missing = Filter::new(L, Action::Permit).sublayer(Uuid::new_v4());
    assert!(matches!(
        txn.add_filter(missing),
        Err(EngineError::NotFound {
            kind: "sublayer",
            ..
        })
    ));
    txn.add_filter(block_to([12, 0, 0, 0], 8))
        .expect("add after failures");
    txn.commit().expect("commit");
    assert_eq!(decision(&engine, [10, 0, 0, 1]), Decision::Block);
    assert_eq!(decision(&engine, [12, 0, 0, 1]), Decision::Block);
    assert_eq!(
        engine
            .snapshot()
            .catalog
            .enum_filters(&Caller::root(), &FilterTemplate::default())
            .len(),
        2
    );
}

#[test]
fn batches_are_all_or_nothing() {
    let engine = Engine::new();
    let mut s = root(&engine);
    let mut txn = s.begin(TxnKind::Write).expect("begin");
    let good = block_to([10, 0, 0, 0], 8);
    let bad = block_to([10, 0, 0, 0], 8).weight(Weight::Range(16));
    assert!(txn.add_filters([good.clone(), bad]).is_err());
    assert_eq!(txn.catalog().filter_count(), 0);
    txn.add_filters([good]).expect("good batch");
    txn.commit().expect("commit");
    assert_eq!(engine.snapshot().catalog.filter_count(), 1);
}

#[test]
fn read_only_transactions_refuse_writes() {
    let engine = Engine::new();
    let mut s = root(&engine);
    let mut txn = s.begin(TxnKind::ReadOnly).expect("begin");
    assert!(matches!(
        txn.add_filter(block_to([10, 0, 0, 0], 8)),
        Err(EngineError::ReadOnly)
    ));
}

#[test]
fn one_writer_at_a_time_with_a_timeout() {
    let engine = Engine::new();
    let mut a = root(&engine);
    let mut b = engine
        .open_session(
            Caller::root(),
            SessionOptions {
                txn_wait_timeout: Duration::from_millis(100),
                ..SessionOptions::default()
            },
        )
        .expect("session");
    let txn = a.begin(TxnKind::Write).expect("begin");
    let started = std::time::Instant::now();
    assert!(matches!(
        b.begin(TxnKind::Write),
        Err(EngineError::Timeout(_))
    ));
    assert!(started.elapsed() >= Duration::from_millis(100));
    // Readers are not blocked by the writer.
    assert!(b.begin(TxnKind::ReadOnly).is_ok());
    drop(txn);
    assert!(b.begin(TxnKind::Write).is_ok());

    // A writer waiting in another thread gets the lock when the first commits.
    let engine2 = engine.clone();
    let txn = a.begin(TxnKind::Write).expect("begin");
    let waiter = std::thread::spawn(move || {
        let mut c = engine2
            .open_session(Caller::root(), SessionOptions::default())
            .expect("session");
        let mut t = c.begin(TxnKind::Write).expect("waits, then begins");
        t.add_filter(block_to([10, 0, 0, 0], 8)).expect("add");
        t.commit().expect("commit");
    });
    std::thread::sleep(Duration::from_millis(50));
    txn.commit().expect("commit");
    waiter.join().expect("thread");
    assert_eq!(decision(&engine, [10, 0, 0, 1]), Decision::Block);
}

#[test]
fn dynamic_objects_vanish_with_their_session() {
    let engine = Engine::new();
    let mut d = engine
        .open_session(
            Caller::root(),
            SessionOptions {
                dynamic: true,
                ..SessionOptions::default()
            },
        )
        .expect("session");
    let sl = d.add_sublayer(sublayer(7)).expect("sublayer");
    d.add_filter(block_to([10, 0, 0, 0], 8).sublayer(sl))
        .expect("filter");
    assert!(matches!(
        d.add_filter(block_to([11, 0, 0, 0], 8).flags(FilterFlags::PERSISTENT)),
        Err(EngineError::DynamicSessionPersistent)
    ));
    // A static filter of another session cannot use the dynamic sublayer.
    let mut s = root(&engine);
    assert!(matches!(
        s.add_filter(block_to([12, 0, 0, 0], 8).sublayer(sl)),
        Err(EngineError::LifetimeViolation { .. })
    ));
    assert_eq!(decision(&engine, [10, 0, 0, 1]), Decision::Block);
    drop(d);
    assert_eq!(decision(&engine, [10, 0, 0, 1]), Decision::Permit);
    assert!(
        engine
            .snapshot()
            .catalog
            .sublayers()
            .all(|r| r.object.key != sl)
    );
}

#[test]
fn referenced_objects_cannot_be_deleted() {
    let engine = Engine::new();
    let mut s = root(&engine);
    let sl = s.add_sublayer(sublayer(7)).expect("sublayer");
    let (fk, fid) = s
        .add_filter(block_to([10, 0, 0, 0], 8).sublayer(sl))
        .expect("filter");
    assert!(matches!(
        s.delete(ObjectKind::Sublayer, sl),
        Err(EngineError::InUse { .. })
    ));
    assert!(matches!(
        s.delete(ObjectKind::Sublayer, guids::FWPM_SUBLAYER_UNIVERSAL),
        Err(EngineError::BuiltIn { .. })
    ));
    s.delete_filter_by_id(fid).expect("delete filter");
    assert!(matches!(
        s.delete(ObjectKind::Filter, fk),
        Err(EngineError::NotFound { .. })
    ));
    s.delete(ObjectKind::Sublayer, sl).expect("now unused");
}

#[test]
fn keys_are_unique_and_assigned() {
    let engine = Engine::new();
    let mut s = root(&engine);
    let key = Uuid::new_v4();
    let (k, id) = s
        .add_filter(block_to([10, 0, 0, 0], 8).key(key))
        .expect("add");
    assert_eq!(k, key);
    assert!(matches!(
        s.add_filter(block_to([10, 0, 0, 0], 8).key(key)),
        Err(EngineError::AlreadyExists { .. })
    ));
    let (k2, id2) = s.add_filter(block_to([10, 0, 0, 0], 8)).expect("add");
    assert!(!k2.is_nil());
    assert_ne!(id, id2);
}

#[test]
fn filters_are_checked_against_the_rules_of_the_spec() {
    let engine = Engine::new();
    let mut s = root(&engine);
    let callout = guids::FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4;
    let cases: Vec<(Filter, &str)> = vec![
        (
            Filter::new(L, Action::CalloutTerminating(callout)),
            "works at INBOUND_TRANSPORT_V4",
        ),
        (
            Filter::new(L, Action::Block).flags(FilterFlags::BOOTTIME | FilterFlags::PERSISTENT),
            "BOOTTIME and PERSISTENT",
        ),
        (
            Filter::new(Layer::IkeextV4, Action::Permit).flags(FilterFlags::BOOTTIME),
            "per-packet or per-connection",
        ),
        (
            Filter::new(L, Action::Block).flags(FilterFlags::PERMIT_IF_CALLOUT_UNREGISTERED),
            "needs a callout",
        ),
        (
            Filter::new(L, Action::Block).flags(FilterFlags::HAS_PROVIDER_CONTEXT),
            "HAS_PROVIDER_CONTEXT",
        ),
        (
            Filter::new(L, Action::Block).flags(FilterFlags::DISABLED),
            "DISABLED",
        ),
        (
            Filter::new(L, Action::Block).weight(Weight::Range(16)),
            "0-15",
        ),
        (
            Filter::new(L, Action::Block).condition(Condition::new(
                Field::IpRemoteAddress,
                MatchType::Equal,
                ConditionValue::v4_prefix(Ipv4Addr::new(10, 0, 0, 1), 8),
            )),
            "bits set beyond its prefix",
        ),
        (
            Filter::new(L, Action::Block).condition(Condition::equal(
                Field::IpRemoteAddress,
                Scalar::V6(std::net::Ipv6Addr::LOCALHOST),
            )),
            "IPv4 address",
        ),
    ];
    for (f, why) in cases {
        let err = s.add_filter(f).expect_err(why);
        assert!(err.to_string().contains(why), "{err} should mention {why}");
    }
}

fn mm_context() -> ProviderContext {
    ProviderContext {
        key: Uuid::nil(),
        name: "mm".into(),
        description: String::new(),
        flags: ProviderContextFlags::NONE,
        provider: None,
        policy: ProviderContextPolicy::MainMode {
            module: KeyingModule::Ikev2,
            policy: MainModePolicy::ikev2_default_psk(b"a pre-shared key".to_vec()),
        },
    }
}

#[test]
fn keying_modules_find_their_policy_through_the_deciding_filter() {
    let engine = Engine::new();
    let mut s = root(&engine);
    let (mm, _) = s.add_provider_context(mm_context()).expect("mm");
    let qm = ProviderContext {
        name: "qm".into(),
        policy: ProviderContextPolicy::Transport {
            module: KeyingModule::Ikev2,
            policy: IpsecTransportPolicy::new(vec![IpsecProposal::esp_aes128_gcm()]),
        },
        ..mm_context()
    };
    let (qm, _) = s.add_provider_context(qm).expect("qm");
    s.add_filter(Filter::new(Layer::IkeextV4, Action::Permit).provider_context(mm))
        .expect("mm filter");
    // A quick-mode policy at IKEEXT is refused: no keying module would read it there.
    let err = s
        .add_filter(Filter::new(Layer::IkeextV4, Action::Permit).provider_context(qm))
        .expect_err("wrong layer");
    assert!(
        err.to_string().contains("cannot be used at IKEEXT_V4"),
        "{err}"
    );
    s.add_filter(Filter::new(Layer::IpsecV4, Action::Permit).provider_context(qm))
        .expect("qm filter");
    let found = engine.classify(Layer::IkeextV4, &to([192, 0, 2, 1]), &mut NoCallouts);
    assert_eq!(found.provider_context.map(|p| p.object.key), Some(mm));
    let found = engine.classify(Layer::IpsecV4, &to([192, 0, 2, 1]), &mut NoCallouts);
    assert_eq!(found.provider_context.map(|p| p.object.key), Some(qm));
    assert!(matches!(
        s.delete(ObjectKind::ProviderContext, mm),
        Err(EngineError::InUse { .. })
    ));
}

#[test]
fn persistent_objects_reference_only_lasting_objects() {
    let engine = Engine::new();
    let mut s = root(&engine);
    let static_sl = s.add_sublayer(sublayer(3)).expect("static");
    let err = s
        .add_filter(
            block_to([10, 0, 0, 0], 8)
                .sublayer(static_sl)
                .flags(FilterFlags::PERSISTENT),
        )
        .expect_err("persistent -> static");
    assert!(
        matches!(err, EngineError::LifetimeViolation { .. }),
        "{err}"
    );

    let provider = |name: &str| Provider {
        key: Uuid::nil(),
        name: name.into(),
        description: String::new(),
        flags: ProviderFlags::PERSISTENT,
        service_name: None,
    };
    let a = s.add_provider(provider("a")).expect("a");
    let b = s.add_provider(provider("b")).expect("b");
    let sl = s
        .add_sublayer(Sublayer {
            flags: SublayerFlags::PERSISTENT,
            provider: Some(a),
            ..sublayer(4)
        })
        .expect("a's sublayer");
    let err = s
        .add_filter(
            block_to([10, 0, 0, 0], 8)
                .sublayer(sl)
                .provider(b)
                .flags(FilterFlags::PERSISTENT),
        )
        .expect_err("b's filter in a's sublayer");
    assert!(
        matches!(err, EngineError::OtherProvidersObject { .. }),
        "{err}"
    );
    s.add_filter(
        block_to([10, 0, 0, 0], 8)
            .sublayer(sl)
            .provider(a)
            .flags(FilterFlags::PERSISTENT),
    )
    .expect("a's filter in a's sublayer");
}

#[test]
fn enumeration_templates() {
    let engine = Engine::new();
    let mut s = root(&engine);
    let (wide, _) = s.add_filter(block_to([10, 0, 0, 0], 8)).expect("wide");
    let (narrow, _) = s.add_filter(block_to([10, 1, 0, 0], 16)).expect("narrow");
    let (other, _) = s.add_filter(block_to([192, 168, 0, 0], 16)).expect("other");
    let (permit, _) = s
        .add_filter(Filter::new(Layer::InboundTransportV4, Action::Permit))
        .expect("permit");
    let keys = |t: FilterTemplate| -> Vec<Uuid> {
        let mut k: Vec<Uuid> = engine
            .snapshot()
            .catalog
            .enum_filters(&Caller::root(), &t)
            .iter()
            .map(|r| r.object.key)
            .collect();
        k.sort();
        k
    };
    let sorted = |mut v: Vec<Uuid>| {
        v.sort();
        v
    };
    assert_eq!(keys(FilterTemplate::default()).len(), 4);
    assert_eq!(
        keys(FilterTemplate {
            layer: Some(Layer::InboundTransportV4),
            ..Default::default()
        }),
        vec![permit]
    );
    assert_eq!(
        keys(FilterTemplate {
            actions: vec![ActionKind::Permit],
            ..Default::default()
        }),
        vec![permit]
    );
    let in_10_1 = vec![Condition::new(
        Field::IpRemoteAddress,
        MatchType::Equal,
        ConditionValue::v4_prefix(Ipv4Addr::new(10, 1, 0, 0), 16),
    )];
    // Overlapping 10.1/16: the /8 and the /16, and the filter with no address condition.
    assert_eq!(
        keys(FilterTemplate {
            layer: Some(L),
            conditions: in_10_1.clone(),
            enum_type: EnumType::Overlapping,
            ..Default::default()
        }),
        sorted(vec![wide, narrow])
    );
    // Fully inside 10/8: only filters that constrain the address to within it.
    let in_10 = vec![Condition::new(
        Field::IpRemoteAddress,
        MatchType::Equal,
        ConditionValue::v4_prefix(Ipv4Addr::new(10, 0, 0, 0), 8),
    )];
    assert_eq!(
        keys(FilterTemplate {
            conditions: in_10,
            enum_type: EnumType::FullyContained,
            ..Default::default()
        }),
        sorted(vec![wide, narrow])
    );
    assert_eq!(
        keys(FilterTemplate {
            conditions: in_10_1,
            enum_type: EnumType::FullyContained,
            ..Default::default()
        }),
        vec![narrow]
    );
    let _ = other;
}

#[test]
fn subscribers_hear_of_other_sessions_changes() {
    let engine = Engine::new();
    let mut a = root(&engine);
    let mut b = root(&engine);
    let sub_a = a
        .subscribe(SubscriptionTemplate {
            kinds: vec![ObjectKind::Filter],
            ..Default::default()
        })
        .expect("subscribe");
    let sub_b = b
        .subscribe(SubscriptionTemplate::default())
        .expect("subscribe");
    let (key, id) = a.add_filter(block_to([10, 0, 0, 0], 8)).expect("add");
    let sl = b.add_sublayer(sublayer(9)).expect("sublayer");
    // b hears of a's filter; a hears nothing of its own change, nor of b's sublayer
    // (not in its template).
    let ev = sub_b.next_timeout(Duration::from_secs(1)).expect("event");
    assert_eq!(
        (ev.change, ev.kind, ev.key, ev.id),
        (ChangeType::Add, ObjectKind::Filter, key, id)
    );
    assert!(sub_b.try_next().is_none(), "b's own change is not echoed");
    assert!(sub_a.try_next().is_none());
    b.delete(ObjectKind::Sublayer, sl).expect("delete");
    a.delete(ObjectKind::Filter, key).expect("delete");
    let ev = sub_b
        .next_timeout(Duration::from_secs(1))
        .expect("delete event");
    assert_eq!((ev.change, ev.key), (ChangeType::Delete, key));
    assert!(sub_a.try_next().is_none());
}

#[test]
fn everyone_reads_and_classifies_but_only_the_permitted_write() {
    let engine = Engine::new();
    let mut admin = root(&engine);
    admin
        .add_filter(block_to([10, 0, 0, 0], 8))
        .expect("root adds");
    let alice = Caller::user(1000, [1000, 50]);
    let mut user = engine
        .open_session(alice.clone(), SessionOptions::default())
        .expect("everyone may open");
    assert_eq!(
        user.classify(L, &to([10, 0, 0, 1]), &mut NoCallouts)
            .expect("classify")
            .decision,
        Decision::Block
    );
    assert_eq!(
        engine
            .snapshot()
            .catalog
            .enum_filters(&alice, &FilterTemplate::default())
            .len(),
        1
    );
    let err = user
        .add_filter(block_to([11, 0, 0, 0], 8))
        .expect_err("no ADD");
    assert!(matches!(err, EngineError::AccessDenied { .. }), "{err}");
    let (root_filter, _) = admin
        .add_filter(block_to([12, 0, 0, 0], 8))
        .expect("root adds");

    // Root lets group 50 add filters; alice adds one and deletes it, as its owner, but not
    // root's.
    admin
        .set_acl(
            ObjectKind::Filter,
            Uuid::nil(),
            Acl::default().allow(Principal::Gid(50), Rights::ADD | Rights::BEGIN_WRITE_TXN),
        )
        .expect("container acl");
    let err = user
        .add_filter(block_to([11, 0, 0, 0], 8))
        .expect_err("no write txn");
    assert!(err.to_string().contains("BEGIN_WRITE_TXN"), "{err}");
    admin
        .set_acl(
            ObjectKind::Filter,
            Uuid::nil(),
            Acl::default().allow(Principal::Gid(50), Rights::ADD),
        )
        .expect("container acl");
    let engine_acl = Acl::engine_default().allow(Principal::Gid(50), Rights::BEGIN_WRITE_TXN);
    admin.set_engine_acl(engine_acl).expect("engine acl");
    // A filter references its sublayer, which takes ADD_LINK on it.
    let err = user
        .add_filter(block_to([11, 0, 0, 0], 8))
        .expect_err("no ADD_LINK");
    assert!(err.to_string().contains("ADD_LINK"), "{err}");
    admin
        .set_acl(
            ObjectKind::Sublayer,
            Uuid::nil(),
            Acl::default().allow(Principal::Gid(50), Rights::ADD_LINK),
        )
        .expect("sublayer container acl");
    let (mine, _) = user
        .add_filter(block_to([11, 0, 0, 0], 8))
        .expect("alice adds");
    let err = user
        .delete(ObjectKind::Filter, root_filter)
        .expect_err("not hers");
    assert!(matches!(err, EngineError::AccessDenied { .. }), "{err}");
    user.delete(ObjectKind::Filter, mine).expect("her own");
    // She may also hide her next filter from others by its own list.
    let (mine, _) = user
        .add_filter(block_to([11, 0, 0, 0], 8))
        .expect("alice adds");
    user.set_acl(
        ObjectKind::Filter,
        mine,
        Acl::default().deny(Principal::Everyone, Rights::READ),
    )
    .expect("owner sets the list");
    let bob = Caller::user(1001, [1001]);
    assert!(
        engine
            .snapshot()
            .catalog
            .enum_filters(&bob, &FilterTemplate::default())
            .iter()
            .all(|r| r.object.key != mine)
    );
}
