//! The engine over a store: persistent objects and boot-time filters survive a restart,
//! static ones do not.

use std::net::Ipv4Addr;

use palisade_filter::store::read_boot_time_export;
use palisade_filter::*;
use uuid::Uuid;

const L: Layer = Layer::OutboundTransportV4;

fn block_to(net: [u8; 4], len: u8) -> Filter {
    Filter::new(L, Action::Block).condition(Condition::new(
        Field::IpRemoteAddress,
        MatchType::Equal,
        ConditionValue::v4_prefix(Ipv4Addr::from(net), len),
    ))
}

fn decision(engine: &Engine, addr: [u8; 4]) -> Decision {
    let v = FieldValues::new().with(Field::IpRemoteAddress, Scalar::V4(Ipv4Addr::from(addr)));
    engine.classify(L, &v, &mut NoCallouts).decision
}

#[test]
fn persistent_and_boot_time_objects_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.redb");
    let (persistent_key, persistent_id, sublayer);
    {
        let engine = Engine::open(Store::open(&path).expect("store")).expect("engine");
        let mut s = engine
            .open_session(Caller::root(), SessionOptions::default())
            .expect("session");
        let mut txn = s.begin(TxnKind::Write).expect("begin");
        let provider = txn
            .add_provider(Provider {
                key: Uuid::nil(),
                name: "site policy".into(),
                description: String::new(),
                flags: ProviderFlags::PERSISTENT,
                service_name: None,
            })
            .expect("provider");
        sublayer = txn
            .add_sublayer(Sublayer {
                key: Uuid::nil(),
                name: "site".into(),
                description: String::new(),
                flags: SublayerFlags::PERSISTENT,
                provider: Some(provider),
                weight: 0x100,
            })
            .expect("sublayer");
        (persistent_key, persistent_id) = txn
            .add_filter(
                block_to([10, 0, 0, 0], 8)
                    .name("persistent")
                    .provider(provider)
                    .sublayer(sublayer)
                    .flags(FilterFlags::PERSISTENT),
            )
            .expect("persistent filter");
        txn.add_filter(block_to([11, 0, 0, 0], 8).name("static"))
            .expect("static filter");
        txn.add_filter(
            block_to([12, 0, 0, 0], 8)
                .name("boot")
                .flags(FilterFlags::BOOTTIME),
        )
        .expect("boot-time filter");
        txn.commit().expect("commit");
        assert_eq!(decision(&engine, [11, 0, 0, 1]), Decision::Block);
        assert_eq!(engine.boot_time_filters().len(), 1);
    }
    let engine = Engine::open(Store::open(&path).expect("reopen")).expect("engine");
    assert_eq!(
        decision(&engine, [10, 0, 0, 1]),
        Decision::Block,
        "persistent"
    );
    assert_eq!(
        decision(&engine, [11, 0, 0, 1]),
        Decision::Permit,
        "static is gone"
    );
    assert_eq!(
        decision(&engine, [12, 0, 0, 1]),
        Decision::Block,
        "boot-time"
    );
    let snapshot = engine.snapshot();
    let f = snapshot
        .catalog
        .filter(persistent_key)
        .expect("persistent filter");
    assert_eq!(f.id, persistent_id, "runtime ids survive");
    assert_eq!(f.lifetime, Lifetime::Persistent);
    assert_eq!(f.object.name, "persistent");

    // New ids never collide with loaded ones.
    let mut s = engine
        .open_session(Caller::root(), SessionOptions::default())
        .expect("session");
    let (_, id) = s.add_filter(block_to([13, 0, 0, 0], 8)).expect("add");
    assert!(id > persistent_id);

    // Deleting a persistent filter is durable too.
    s.delete(ObjectKind::Filter, persistent_key)
        .expect("delete");
    drop(s);
    drop(snapshot);
    drop(engine);
    let engine = Engine::open(Store::open(&path).expect("reopen")).expect("engine");
    assert_eq!(decision(&engine, [10, 0, 0, 1]), Decision::Permit);
    assert!(
        engine
            .snapshot()
            .catalog
            .sublayers()
            .any(|r| r.object.key == sublayer)
    );

    // The boot-time set can be exported for an early-boot enforcer.
    let export = dir.path().join("boot.json");
    let store = Store::open(&dir.path().join("other.redb")).expect("store");
    drop(store);
    let boot: Vec<_> = engine
        .boot_time_filters()
        .into_iter()
        .map(|f| palisade_filter::store::StoredObject {
            kind: ObjectKind::Filter,
            key: f.key,
            body: serde_json::to_vec(&f).expect("json"),
        })
        .collect();
    palisade_filter::store::export_boot_time(&export, &boot).expect("export");
    let back = read_boot_time_export(&export).expect("read");
    assert_eq!(back.len(), 1);
    let f: Filter = serde_json::from_slice(&back[0].body).expect("filter");
    assert_eq!(f.name, "boot");
}

#[cfg(unix)]
#[test]
fn the_store_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.redb");
    drop(Store::open(&path).expect("create"));
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "pre-shared keys live in this file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    drop(Store::open(&path).expect("reopen"));
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn access_lists_of_the_engine_and_containers_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.redb");
    let alice = Caller::user(1000, [50]);
    {
        let engine = Engine::open(Store::open(&path).expect("store")).expect("engine");
        let mut s = engine
            .open_session(Caller::root(), SessionOptions::default())
            .expect("session");
        s.set_engine_acl(Acl::engine_default().allow(Principal::Gid(50), Rights::BEGIN_WRITE_TXN))
            .expect("engine acl");
        s.set_acl(
            ObjectKind::Filter,
            Uuid::nil(),
            Acl::default().allow(Principal::Gid(50), Rights::ADD),
        )
        .expect("filter container");
        s.set_acl(
            ObjectKind::Sublayer,
            Uuid::nil(),
            Acl::default().allow(Principal::Gid(50), Rights::ADD_LINK),
        )
        .expect("sublayer container");
    }
    let engine = Engine::open(Store::open(&path).expect("reopen")).expect("engine");
    let mut user = engine
        .open_session(alice, SessionOptions::default())
        .expect("session");
    user.add_filter(block_to([10, 0, 0, 0], 8))
        .expect("the grants were restored");
}

#[test]
fn filters_of_a_provider_whose_service_does_not_start_at_boot_are_disabled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.redb");
    let key;
    {
        let engine = Engine::open(Store::open(&path).expect("store")).expect("engine");
        let mut s = engine
            .open_session(Caller::root(), SessionOptions::default())
            .expect("session");
        let provider = s
            .add_provider(Provider {
                key: Uuid::nil(),
                name: "vpn app".into(),
                description: String::new(),
                flags: ProviderFlags::PERSISTENT,
                service_name: Some("vpn-app.service".into()),
            })
            .expect("provider");
        (key, _) = s
            .add_filter(
                block_to([10, 0, 0, 0], 8)
                    .provider(provider)
                    .flags(FilterFlags::PERSISTENT),
            )
            .expect("filter");
    }
    let not_at_boot = Engine::open_with_services(Store::open(&path).expect("store"), |s| {
        s != "vpn-app.service"
    })
    .expect("engine");
    assert_eq!(decision(&not_at_boot, [10, 0, 0, 1]), Decision::Permit);
    let snapshot = not_at_boot.snapshot();
    let f = snapshot.catalog.filter(key).expect("still loaded");
    assert!(f.object.flags.contains(FilterFlags::DISABLED));
    assert!(
        snapshot
            .catalog
            .providers()
            .any(|p| p.object.flags.contains(ProviderFlags::DISABLED))
    );
    drop(snapshot);
    drop(not_at_boot);
    let at_boot = Engine::open(Store::open(&path).expect("store")).expect("engine");
    assert_eq!(decision(&at_boot, [10, 0, 0, 1]), Decision::Block);
    assert!(
        !at_boot
            .snapshot()
            .catalog
            .filter(key)
            .expect("loaded")
            .object
            .flags
            .contains(FilterFlags::DISABLED)
    );
}
