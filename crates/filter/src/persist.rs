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

fn encode<T: Serialize>(kind: ObjectKind, key: Uuid, record: &Record<T>) -> StoredObject {
    StoredObject {
        kind,
        key,
        // Serializing plain data structures to JSON cannot fail: no maps with non-string
        // keys, no I/O.
        body: serde_json::to_vec(record).unwrap_or_default(),
    }
}

fn encoded(catalog: &Catalog, kind: ObjectKind, key: Uuid) -> Option<StoredObject> {
    match kind {
        ObjectKind::Provider => catalog.providers.get(&key).map(|r| encode(kind, key, r)),
        ObjectKind::Sublayer => catalog.sublayers.get(&key).map(|r| encode(kind, key, r)),
        ObjectKind::Callout => catalog.callouts.get(&key).map(|r| encode(kind, key, r)),
        ObjectKind::ProviderContext => catalog.contexts.get(&key).map(|r| encode(kind, key, r)),
        ObjectKind::Filter => catalog.filters.get(&key).map(|r| encode(kind, key, r)),
    }
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
        ops.push(StoreChange::Setting {
            name: ENGINE_ACL.into(),
            value: serde_json::to_vec(&catalog.engine_acl).unwrap_or_default(),
        });
        ops.push(StoreChange::Setting {
            name: CONTAINER_ACLS.into(),
            value: serde_json::to_vec(&catalog.containers).unwrap_or_default(),
        });
    }
    let mut boot_time_changed = false;
    for (kind, key) in rewritten {
        let lifetime = match kind {
            ObjectKind::Provider => catalog.providers.get(key).map(|r| r.lifetime),
            ObjectKind::Sublayer => catalog.sublayers.get(key).map(|r| r.lifetime),
            ObjectKind::Callout => catalog.callouts.get(key).map(|r| r.lifetime),
            ObjectKind::ProviderContext => catalog.contexts.get(key).map(|r| r.lifetime),
            ObjectKind::Filter => catalog.filters.get(key).map(|r| r.lifetime),
        };
        match lifetime {
            Some(Lifetime::Persistent) => {
                ops.extend(encoded(catalog, *kind, *key).map(StoreChange::Put));
            }
            Some(Lifetime::BootTime) => boot_time_changed = true,
            _ => {}
        }
    }
    for c in changes {
        match c.lifetime {
            Lifetime::Persistent => match c.change {
                // An object added and deleted in one transaction is gone from the catalog:
                // its delete follows and the store needs neither.
                ChangeType::Add => {
                    ops.extend(encoded(catalog, c.kind, c.key).map(StoreChange::Put))
                }
                ChangeType::Delete => ops.push(StoreChange::Delete {
                    kind: c.kind,
                    key: c.key,
                }),
            },
            Lifetime::BootTime => boot_time_changed = true,
            _ => {}
        }
    }
    let boot_time: Option<Vec<StoredObject>> = boot_time_changed.then(|| {
        catalog
            .filters
            .iter()
            .filter(|(_, r)| r.lifetime == Lifetime::BootTime)
            .map(|(k, r)| encode(ObjectKind::Filter, *k, r))
            .collect()
    });
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
