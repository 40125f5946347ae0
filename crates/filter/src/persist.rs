//! Between the catalog and the [`Store`]: which changes are stored, how records are
//! encoded (JSON), and loading them back at start.

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::catalog::{Catalog, Change, ChangeType, Lifetime, Object, Record, kind_name};
use crate::error::EngineError;
use crate::filter::Filter;
use crate::flags::{FilterFlags, ProviderFlags};
use crate::objects::{Callout, Provider, ProviderContext, Sublayer};
use crate::store::{ObjectKind, Store, StoreChange, StoredObject};

fn encode<T: Serialize>(
    kind: ObjectKind,
    key: Uuid,
    value: &T,
) -> Result<StoredObject, EngineError> {
    let body = serde_json::to_vec(value).map_err(|source| EngineError::Encode {
        what: format!("{} {key}", kind_name(kind)),
        source,
    })?;
    Ok(StoredObject { kind, key, body })
}

/// An object's lifetime and stored form, if the catalog has it.
fn stored<T: Object + Serialize>(
    catalog: &Catalog,
    key: Uuid,
) -> Option<(Lifetime, Result<StoredObject, EngineError>)> {
    T::map_ref(catalog)
        .get(&key)
        .map(|r| (r.lifetime, encode(T::KIND, key, r.as_ref())))
}

fn stored_any(
    catalog: &Catalog,
    kind: ObjectKind,
    key: Uuid,
) -> Option<(Lifetime, Result<StoredObject, EngineError>)> {
    match kind {
        ObjectKind::Provider => stored::<Provider>(catalog, key),
        ObjectKind::Sublayer => stored::<Sublayer>(catalog, key),
        ObjectKind::Callout => stored::<Callout>(catalog, key),
        ObjectKind::ProviderContext => stored::<ProviderContext>(catalog, key),
        ObjectKind::Filter => stored::<Filter>(catalog, key),
    }
}

fn setting(name: &str, value: &impl Serialize) -> Result<StoreChange, EngineError> {
    let value = serde_json::to_vec(value).map_err(|source| EngineError::Encode {
        what: format!("setting {name}"),
        source,
    })?;
    Ok(StoreChange::Setting {
        name: name.into(),
        value,
    })
}

/// Writes a transaction's stored changes: persistent objects, and the whole boot-time set
/// if it changed.
pub(crate) fn commit(
    store: &Store,
    catalog: &Catalog,
    changes: &[Change],
    rewritten: &[(ObjectKind, Uuid)],
    acls_changed: bool,
) -> Result<(), EngineError> {
    let mut ops = Vec::new();
    if acls_changed {
        ops.push(setting(ENGINE_ACL, &catalog.engine_acl)?);
        ops.push(setting(CONTAINER_ACLS, &catalog.containers)?);
    }
    let mut boot_time_changed = false;
    // Objects whose access list changed are written again; they keep their lifetime.
    let rewrites = rewritten.iter().map(|(kind, key)| (*kind, *key, None));
    let adds_and_deletes = changes
        .iter()
        .map(|c| (c.kind, c.key, Some((c.change, c.lifetime))));
    for (kind, key, change) in rewrites.chain(adds_and_deletes) {
        if let Some((ChangeType::Delete, lifetime)) = change {
            match lifetime {
                Lifetime::Persistent => ops.push(StoreChange::Delete { kind, key }),
                Lifetime::BootTime => boot_time_changed = true,
                _ => {}
            }
            continue;
        }
        // An object added and deleted in one transaction is gone from the catalog: its
        // delete follows, and the store needs neither.
        match stored_any(catalog, kind, key) {
            Some((Lifetime::Persistent, object)) => ops.push(StoreChange::Put(object?)),
            Some((Lifetime::BootTime, _)) => boot_time_changed = true,
            _ => {}
        }
    }
    let boot_time: Option<Vec<StoredObject>> = if boot_time_changed {
        let set: Result<Vec<_>, _> = catalog
            .filters
            .iter()
            .filter(|(_, r)| r.lifetime == Lifetime::BootTime)
            .map(|(k, r)| encode(ObjectKind::Filter, *k, r.as_ref()))
            .collect();
        Some(set?)
    } else {
        None
    };
    store.commit_with_boot_time(&ops, boot_time.as_deref())?;
    Ok(())
}

/// The settings under which the engine's and the containers' access lists are stored.
const ENGINE_ACL: &str = "engine_acl";
const CONTAINER_ACLS: &str = "container_acls";

fn decode<T: DeserializeOwned>(object: &StoredObject) -> Result<Record<T>, EngineError> {
    serde_json::from_slice(&object.body).map_err(|source| EngineError::Decode {
        kind: kind_name(object.kind),
        key: object.key,
        source,
    })
}

fn restore<T: DeserializeOwned + Object>(
    catalog: &mut Catalog,
    object: &StoredObject,
    lifetime: Lifetime,
) -> Result<(), EngineError> {
    let mut record: Record<T> = decode(object)?;
    record.lifetime = lifetime;
    catalog.restore(record)
}

/// Loads the stored objects into a catalog that holds the built-in ones. The store returns
/// them by kind in dependency order (providers first, filters last).
pub(crate) fn load(
    store: &Store,
    catalog: &mut Catalog,
    starts_at_boot: &dyn Fn(&str) -> bool,
) -> Result<(), EngineError> {
    let persistent = Lifetime::Persistent;
    // Providers whose service does not start at boot: their filters are not enforced.
    let mut idle = std::collections::BTreeSet::new();
    for object in store.load()? {
        match object.kind {
            ObjectKind::Provider => {
                let mut record: Record<Provider> = decode(&object)?;
                record.lifetime = persistent;
                let idle_service = record
                    .object
                    .service_name
                    .as_deref()
                    .is_some_and(|s| !starts_at_boot(s));
                record.object.flags = if idle_service {
                    idle.insert(record.object.key);
                    record.object.flags.with(ProviderFlags::DISABLED)
                } else {
                    record.object.flags.without(ProviderFlags::DISABLED)
                };
                catalog.restore(record)?;
            }
            ObjectKind::Sublayer => restore::<Sublayer>(catalog, &object, persistent)?,
            ObjectKind::Callout => restore::<Callout>(catalog, &object, persistent)?,
            ObjectKind::ProviderContext => {
                restore::<ProviderContext>(catalog, &object, persistent)?
            }
            ObjectKind::Filter => {
                let mut record: Record<Filter> = decode(&object)?;
                record.lifetime = persistent;
                let disabled = record.object.provider.is_some_and(|p| idle.contains(&p));
                record.object.flags = if disabled {
                    record.object.flags.with(FilterFlags::DISABLED)
                } else {
                    record.object.flags.without(FilterFlags::DISABLED)
                };
                catalog.restore(record)?;
            }
        }
    }
    for object in store.boot_time_filters()? {
        restore::<Filter>(catalog, &object, Lifetime::BootTime)?;
    }
    for (name, value) in store.settings()? {
        let bad = |source| EngineError::Setting {
            name: name.clone(),
            source,
        };
        match name.as_str() {
            ENGINE_ACL => catalog.engine_acl = serde_json::from_slice(&value).map_err(bad)?,
            CONTAINER_ACLS => catalog.containers = serde_json::from_slice(&value).map_err(bad)?,
            // A setting a newer version wrote and this one does not know: ignored, as it
            // cannot loosen anything this version enforces.
            _ => {}
        }
    }
    Ok(())
}
