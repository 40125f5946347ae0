//! Ordinary tests of `palisade_filter::store`: round trips, reopening, refusal of foreign and
//! newer files, the boot-time set and its export. Crash safety is in `store_crash.rs`.

use std::path::{Path, PathBuf};

use palisade_filter::store::Store;
use palisade_filter::store::{
    FORMAT_VERSION, ObjectKind, StoreChange, StoreError, StoredObject, export_boot_time,
    read_boot_time_export,
};
use proptest::prelude::*;
use redb::{Database, TableDefinition};
use uuid::Uuid;

fn object(kind: ObjectKind, key: u128, body: &str) -> StoredObject {
    StoredObject {
        kind,
        key: Uuid::from_u128(key),
        body: body.as_bytes().to_vec(),
    }
}

fn temp_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("policy.redb");
    (dir, path)
}

fn sorted(mut objects: Vec<StoredObject>) -> Vec<StoredObject> {
    objects.sort_by_key(|o| (o.kind, o.key));
    objects
}

fn assert_names(error: &StoreError, path: &Path) {
    let message = error.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "error message {message:?} does not name {}",
        path.display()
    );
    assert_eq!(error.path(), path);
}

#[test]
fn new_store_is_empty() {
    let (_dir, path) = temp_store();
    let store = Store::open(&path).expect("open");
    assert_eq!(store.path(), path);
    assert!(store.load().expect("load").is_empty());
    assert!(store.boot_time_filters().expect("boot").is_empty());
}

#[test]
fn put_delete_load_round_trip_in_kind_then_key_order() {
    let (_dir, path) = temp_store();
    let store = Store::open(&path).expect("open");
    let objects = vec![
        object(ObjectKind::Filter, 2, r#"{"f":2}"#),
        object(ObjectKind::Provider, 9, r#"{"p":9}"#),
        object(ObjectKind::Filter, 1, r#"{"f":1}"#),
        object(ObjectKind::ProviderContext, 3, r#"{"pc":3}"#),
        object(ObjectKind::Sublayer, 3, r#"{"s":3}"#),
        object(ObjectKind::Callout, u128::MAX, r#"{"c":"max"}"#),
        object(ObjectKind::Provider, 1, ""),
    ];
    store
        .commit(
            &objects
                .iter()
                .cloned()
                .map(StoreChange::Put)
                .collect::<Vec<_>>(),
        )
        .expect("commit");
    assert_eq!(store.load().expect("load"), sorted(objects.clone()));

    // Same GUID, different kinds: distinct objects.
    store
        .commit(&[
            StoreChange::Put(object(ObjectKind::Callout, 1, "callout one")),
            StoreChange::Delete {
                kind: ObjectKind::Filter,
                key: Uuid::from_u128(2),
            },
            StoreChange::Put(object(ObjectKind::Provider, 9, r#"{"p":"nine"}"#)),
        ])
        .expect("commit");
    let expected = sorted(vec![
        object(ObjectKind::Provider, 1, ""),
        object(ObjectKind::Provider, 9, r#"{"p":"nine"}"#),
        object(ObjectKind::Sublayer, 3, r#"{"s":3}"#),
        object(ObjectKind::Callout, 1, "callout one"),
        object(ObjectKind::Callout, u128::MAX, r#"{"c":"max"}"#),
        object(ObjectKind::ProviderContext, 3, r#"{"pc":3}"#),
        object(ObjectKind::Filter, 1, r#"{"f":1}"#),
    ]);
    assert_eq!(store.load().expect("load"), expected);
}

#[test]
fn changes_apply_in_order_within_a_commit() {
    let (_dir, path) = temp_store();
    let store = Store::open(&path).expect("open");
    store
        .commit(&[
            StoreChange::Put(object(ObjectKind::Filter, 1, "first")),
            StoreChange::Put(object(ObjectKind::Filter, 1, "second")),
            StoreChange::Put(object(ObjectKind::Filter, 2, "gone")),
            StoreChange::Delete {
                kind: ObjectKind::Filter,
                key: Uuid::from_u128(2),
            },
        ])
        .expect("commit");
    assert_eq!(
        store.load().expect("load"),
        vec![object(ObjectKind::Filter, 1, "second")]
    );
}

#[test]
fn objects_and_boot_time_set_commit_together_or_not_at_all() {
    let (_dir, path) = temp_store();
    let store = Store::open(&path).expect("open");
    let provider = object(ObjectKind::Provider, 1, "{}");
    let boot = vec![object(ObjectKind::Filter, 2, r#"{"boot":1}"#)];
    store
        .commit_with_boot_time(&[StoreChange::Put(provider.clone())], Some(&boot))
        .expect("commit both");
    assert_eq!(store.load().expect("load"), vec![provider.clone()]);
    assert_eq!(store.boot_time_filters().expect("boot"), boot);

    // An invalid boot-time set stops the object changes too.
    let error = store
        .commit_with_boot_time(
            &[StoreChange::Delete {
                kind: ObjectKind::Provider,
                key: provider.key,
            }],
            Some(&[object(ObjectKind::Sublayer, 3, "{}")]),
        )
        .expect_err("invalid boot-time set");
    assert!(
        matches!(error, StoreError::InvalidBootTimeSet { .. }),
        "{error:?}"
    );
    assert_eq!(store.load().expect("load"), vec![provider.clone()]);
    assert_eq!(store.boot_time_filters().expect("boot"), boot);

    // Without a boot-time set, the stored one is left alone.
    store
        .commit_with_boot_time(
            &[StoreChange::Put(object(ObjectKind::Filter, 4, "{}"))],
            None,
        )
        .expect("objects only");
    assert_eq!(store.load().expect("load").len(), 2);
    assert_eq!(store.boot_time_filters().expect("boot"), boot);
}

#[test]
fn kind_names_are_stable() {
    let names: Vec<&str> = ObjectKind::ALL.iter().map(|kind| kind.name()).collect();
    assert_eq!(
        names,
        [
            "provider",
            "sublayer",
            "callout",
            "provider_context",
            "filter"
        ]
    );
    for kind in ObjectKind::ALL {
        let json = serde_json::to_string(&kind).expect("serialize");
        assert_eq!(json, format!("\"{}\"", kind.name()));
        assert_eq!(
            serde_json::from_str::<ObjectKind>(&json).expect("deserialize"),
            kind
        );
    }
    // Storage order is dependency order: what filters reference loads first.
    let mut sorted = ObjectKind::ALL;
    sorted.sort();
    assert_eq!(sorted, ObjectKind::ALL);
}

#[test]
fn deleting_a_missing_key_is_fine_and_changes_nothing() {
    let (_dir, path) = temp_store();
    let store = Store::open(&path).expect("open");
    store
        .commit(&[StoreChange::Put(object(ObjectKind::Sublayer, 5, "s"))])
        .expect("commit");
    store
        .commit(&[
            StoreChange::Delete {
                kind: ObjectKind::Sublayer,
                key: Uuid::from_u128(6),
            },
            // Right GUID, wrong kind.
            StoreChange::Delete {
                kind: ObjectKind::Filter,
                key: Uuid::from_u128(5),
            },
        ])
        .expect("deleting missing keys");
    assert_eq!(
        store.load().expect("load"),
        vec![object(ObjectKind::Sublayer, 5, "s")]
    );
    store.commit(&[]).expect("empty commit");
}

#[test]
fn reopening_after_drop_keeps_data() {
    let (_dir, path) = temp_store();
    let objects: Vec<StoredObject> = (0..500u128)
        .map(|i| {
            object(
                ObjectKind::ALL[(i % 5) as usize],
                i * 7919,
                &format!("{{\"i\":{i}}}"),
            )
        })
        .collect();
    let boot = vec![object(ObjectKind::Filter, 42, r#"{"boot":true}"#)];
    {
        let store = Store::open(&path).expect("open");
        store
            .commit(
                &objects
                    .iter()
                    .cloned()
                    .map(StoreChange::Put)
                    .collect::<Vec<_>>(),
            )
            .expect("commit");
        store.set_boot_time_filters(&boot).expect("boot");
    }
    let store = Store::open(&path).expect("reopen");
    assert_eq!(store.load().expect("load"), sorted(objects));
    assert_eq!(store.boot_time_filters().expect("boot"), boot);
}

#[test]
fn a_store_is_locked_while_open() {
    let (_dir, path) = temp_store();
    let _store = Store::open(&path).expect("open");
    let error = Store::open(&path).expect_err("second open of a locked file");
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
    assert_names(&error, &path);
}

#[test]
fn a_file_that_is_not_redb_is_refused_and_left_alone() {
    let (_dir, path) = temp_store();
    let content = b"#!/bin/sh\necho this is somebody else's file\n".repeat(200);
    std::fs::write(&path, &content).expect("write");
    let error = Store::open(&path).expect_err("foreign file");
    assert!(matches!(error, StoreError::Foreign { .. }), "{error:?}");
    assert_names(&error, &path);
    assert_eq!(std::fs::read(&path).expect("read"), content);
}

#[test]
fn a_redb_file_of_another_program_is_refused() {
    let (_dir, path) = temp_store();
    {
        let db = Database::create(&path).expect("create");
        let txn = db.begin_write().expect("write");
        {
            let mut table = txn
                .open_table(TableDefinition::<&str, u64>::new("counters"))
                .expect("table");
            table.insert("hits", 3).expect("insert");
        }
        txn.commit().expect("commit");
    }
    let error = Store::open(&path).expect_err("foreign redb file");
    assert!(matches!(error, StoreError::Foreign { .. }), "{error:?}");
    assert_names(&error, &path);
    assert!(error.to_string().contains("counters"), "{error}");
}

#[test]
fn a_redb_file_with_a_foreign_magic_is_refused() {
    let (_dir, path) = temp_store();
    write_meta(&path, b"some-other-program", &FORMAT_VERSION.to_le_bytes());
    let error = Store::open(&path).expect_err("foreign magic");
    assert!(matches!(error, StoreError::Foreign { .. }), "{error:?}");
    assert_names(&error, &path);
}

#[test]
fn an_empty_redb_file_is_adopted() {
    let (_dir, path) = temp_store();
    drop(Database::create(&path).expect("create"));
    let store = Store::open(&path).expect("open");
    store
        .commit(&[StoreChange::Put(object(ObjectKind::Filter, 1, "x"))])
        .expect("commit");
    drop(store);
    assert_eq!(
        Store::open(&path)
            .expect("reopen")
            .load()
            .expect("load")
            .len(),
        1
    );
}

#[test]
fn a_newer_format_version_is_refused() {
    let (_dir, path) = temp_store();
    drop(Store::open(&path).expect("create"));
    write_meta(
        &path,
        b"palisade-filter-store",
        &(FORMAT_VERSION + 1).to_le_bytes(),
    );
    let error = Store::open(&path).expect_err("newer version");
    match &error {
        StoreError::UnsupportedVersion {
            found, supported, ..
        } => {
            assert_eq!(*found, FORMAT_VERSION + 1);
            assert_eq!(*supported, FORMAT_VERSION);
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    assert_names(&error, &path);
    assert!(error.to_string().contains("version 2"), "{error}");
}

// Writes the metadata table as the store lays it out, to fake other programs and versions.
fn write_meta(path: &Path, magic: &[u8], version: &[u8]) {
    let db = Database::create(path).expect("create");
    let txn = db.begin_write().expect("write");
    {
        let mut meta = txn
            .open_table(TableDefinition::<&str, &[u8]>::new("palisade_meta"))
            .expect("meta");
        meta.insert("magic", magic).expect("magic");
        meta.insert("format_version", version).expect("version");
    }
    txn.commit().expect("commit");
}

#[test]
fn a_missing_directory_is_an_error_naming_the_path() {
    let (_dir, path) = temp_store();
    let path = path.join("no").join("such").join("store.redb");
    let error = Store::open(&path).expect_err("missing directory");
    assert!(
        matches!(error, StoreError::Open { .. } | StoreError::Io { .. }),
        "{error:?}"
    );
    assert_names(&error, &path);
}

#[test]
fn boot_time_set_is_replaced_as_a_whole() {
    let (_dir, path) = temp_store();
    let store = Store::open(&path).expect("open");
    let first: Vec<StoredObject> = (0..100u128)
        .map(|i| object(ObjectKind::Filter, i, &format!("{{\"first\":{i}}}")))
        .collect();
    store.set_boot_time_filters(&first).expect("first");
    assert_eq!(store.boot_time_filters().expect("read"), first);

    let second = vec![
        object(ObjectKind::Filter, 1000, r#"{"second":1}"#),
        object(ObjectKind::Filter, 5, r#"{"second":0}"#),
    ];
    store.set_boot_time_filters(&second).expect("second");
    assert_eq!(store.boot_time_filters().expect("read"), sorted(second));

    // The boot-time set and the persistent objects are independent.
    assert!(store.load().expect("load").is_empty());
    store.set_boot_time_filters(&[]).expect("clear");
    assert!(store.boot_time_filters().expect("read").is_empty());
}

#[test]
fn invalid_boot_time_sets_are_refused_without_writing() {
    let (_dir, path) = temp_store();
    let store = Store::open(&path).expect("open");
    let good = vec![object(ObjectKind::Filter, 1, "{}")];
    store.set_boot_time_filters(&good).expect("good");

    let not_a_filter = vec![
        object(ObjectKind::Filter, 2, "{}"),
        object(ObjectKind::Callout, 3, "{}"),
    ];
    let duplicate = vec![
        object(ObjectKind::Filter, 2, "{}"),
        object(ObjectKind::Filter, 2, "{\"again\":1}"),
    ];
    for bad in [not_a_filter, duplicate] {
        let error = store.set_boot_time_filters(&bad).expect_err("refused");
        assert!(
            matches!(error, StoreError::InvalidBootTimeSet { .. }),
            "{error:?}"
        );
        assert_names(&error, &path);
        assert_eq!(store.boot_time_filters().expect("read"), good);
    }
}

#[test]
fn boot_time_export_round_trips_byte_for_byte() {
    let dir = tempfile::tempdir().expect("temp dir");
    let export = dir.path().join("boot-time.json");
    let filters = vec![
        object(
            ObjectKind::Filter,
            0xfeed,
            "{\n  \"layer\": \"ALE_AUTH_RECV_ACCEPT_V4\",\n  \"action\": \"BLOCK\", \"ü\": \"\\u0000\"\n}",
        ),
        object(ObjectKind::Filter, 1, r#"{"weight":15}"#),
        object(ObjectKind::Filter, 2, ""),
    ];
    export_boot_time(&export, &filters).expect("export");
    assert_eq!(
        read_boot_time_export(&export).expect("read"),
        sorted(filters.clone())
    );

    // An early-boot reader sees plain JSON with the body as JSON text.
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&export).expect("read")).expect("json");
    assert_eq!(document["format"], "palisade-boot-time-filters");
    assert_eq!(document["version"], FORMAT_VERSION);
    assert_eq!(document["filters"][0]["kind"], "filter");
    assert_eq!(
        document["filters"][0]["key"],
        Uuid::from_u128(1).to_string()
    );
    assert_eq!(document["filters"][0]["body"], r#"{"weight":15}"#);

    // Replacing leaves exactly the new set and no temporary files.
    let replacement = vec![object(ObjectKind::Filter, 9, "{}")];
    export_boot_time(&export, &replacement).expect("export again");
    assert_eq!(read_boot_time_export(&export).expect("read"), replacement);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names, vec!["boot-time.json".to_owned()]);

    export_boot_time(&export, &[]).expect("export empty");
    assert!(read_boot_time_export(&export).expect("read").is_empty());
}

#[test]
fn store_and_export_agree() {
    let (dir, path) = temp_store();
    let store = Store::open(&path).expect("open");
    let filters: Vec<StoredObject> = (0..50u128)
        .map(|i| {
            object(
                ObjectKind::Filter,
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                "{}",
            )
        })
        .collect();
    store.set_boot_time_filters(&filters).expect("set");
    let export = dir.path().join("boot.json");
    export_boot_time(&export, &store.boot_time_filters().expect("read")).expect("export");
    assert_eq!(
        read_boot_time_export(&export).expect("import"),
        store.boot_time_filters().expect("read")
    );
}

#[test]
fn bad_exports_are_refused_naming_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("boot.json");

    let missing = read_boot_time_export(&path).expect_err("missing");
    assert!(matches!(missing, StoreError::Io { .. }), "{missing:?}");
    assert_names(&missing, &path);

    type Expected = fn(&StoreError) -> bool;
    let cases: [(&str, Expected); 5] = [
        ("not json", |e| matches!(e, StoreError::Json { .. })),
        (
            r#"{"format":"something-else","version":1,"filters":[]}"#,
            |e| matches!(e, StoreError::Foreign { .. }),
        ),
        (
            r#"{"format":"palisade-boot-time-filters","version":2,"filters":"new shape"}"#,
            |e| matches!(e, StoreError::UnsupportedVersion { found: 2, .. }),
        ),
        (
            r#"{"format":"palisade-boot-time-filters","version":1,"filters":[{"kind":"gadget","key":"00000000-0000-0000-0000-000000000001","body":""}]}"#,
            |e| matches!(e, StoreError::Corrupt { .. }),
        ),
        (
            r#"{"format":"palisade-boot-time-filters","version":1,"filters":[{"kind":"provider","key":"00000000-0000-0000-0000-000000000001","body":""}]}"#,
            |e| matches!(e, StoreError::InvalidBootTimeSet { .. }),
        ),
    ];
    for (content, expected) in cases {
        std::fs::write(&path, content).expect("write");
        let error = read_boot_time_export(&path).expect_err(content);
        assert!(expected(&error), "{content}: {error:?}");
        assert_names(&error, &path);
    }
}

#[test]
fn exports_refuse_what_the_reader_would_refuse() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("boot.json");
    let not_utf8 = StoredObject {
        kind: ObjectKind::Filter,
        key: Uuid::from_u128(1),
        body: vec![0xff, 0xfe],
    };
    let provider = object(ObjectKind::Provider, 2, "{}");
    for bad in [vec![not_utf8], vec![provider]] {
        let error = export_boot_time(&path, &bad).expect_err("refused");
        assert!(
            matches!(error, StoreError::InvalidBootTimeSet { .. }),
            "{error:?}"
        );
        assert_names(&error, &path);
        assert!(!path.exists());
    }

    let nowhere = dir.path().join("missing-dir").join("boot.json");
    let error = export_boot_time(&nowhere, &[]).expect_err("missing directory");
    assert!(matches!(error, StoreError::Io { .. }), "{error:?}");
    assert!(error.to_string().contains("missing-dir"), "{error}");
}

fn arb_kind() -> impl Strategy<Value = ObjectKind> {
    prop::sample::select(ObjectKind::ALL.to_vec())
}

fn arb_change() -> impl Strategy<Value = StoreChange> {
    // Few keys, so that puts, overwrites and deletes collide.
    let key = (0u128..8).prop_map(Uuid::from_u128);
    prop_oneof![
        (
            arb_kind(),
            key.clone(),
            prop::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(kind, key, body)| StoreChange::Put(StoredObject {
                kind,
                key,
                body
            })),
        (arb_kind(), key).prop_map(|(kind, key)| StoreChange::Delete { kind, key }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    // The store behaves like a map from (kind, key) to body, across commits and a reopen.
    #[test]
    fn store_matches_a_model(
        commits in prop::collection::vec(prop::collection::vec(arb_change(), 0..12), 1..6)
    ) {
        let (_dir, path) = temp_store();
        let mut model = std::collections::BTreeMap::new();
        {
            let store = Store::open(&path).expect("open");
            for changes in &commits {
                store.commit(changes).expect("commit");
                for change in changes {
                    match change {
                        StoreChange::Put(o) => { model.insert((o.kind, o.key), o.body.clone()); }
                        StoreChange::Delete { kind, key } => { model.remove(&(*kind, *key)); }
                        StoreChange::Setting { .. } => {}
                    }
                }
                let expected: Vec<StoredObject> = model
                    .iter()
                    .map(|(&(kind, key), body)| StoredObject { kind, key, body: body.clone() })
                    .collect();
                prop_assert_eq!(store.load().expect("load"), expected);
            }
        }
        let reopened = Store::open(&path).expect("reopen").load().expect("load");
        prop_assert_eq!(reopened.len(), model.len());
    }
}

#[test]
fn settings_are_stored_with_the_objects() {
    let (_dir, path) = temp_store();
    {
        let store = Store::open(&path).expect("open");
        assert!(store.settings().expect("settings").is_empty());
        store
            .commit(&[
                StoreChange::Setting {
                    name: "engine_acl".into(),
                    value: b"[1]".to_vec(),
                },
                StoreChange::Setting {
                    name: "engine_acl".into(),
                    value: b"[2]".to_vec(),
                },
            ])
            .expect("commit");
    }
    let store = Store::open(&path).expect("reopen");
    assert_eq!(
        store.settings().expect("settings"),
        vec![("engine_acl".to_string(), b"[2]".to_vec())]
    );
}
