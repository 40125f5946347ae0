//! The engine's objects at one point in time, and the rules every change must keep:
//! unique keys, references to objects that exist and live at least as long, no deletion
//! of an object still referenced, and access rights (spec §5).
//!
//! A write transaction works on its own copy of the catalog; objects sit behind `Arc`s,
//! so the copy costs a pointer per object and readers of the published catalog never see
//! a half-made change.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::EngineError;
use crate::filter::{Filter, FilterContext};
use crate::flags::FilterFlags;
use crate::layer::{Layer, LayerKind};
use crate::objects::{Callout, Provider, ProviderContext, Sublayer};
use crate::policy::ProviderContextType;
use crate::security::{Acl, Caller, Rights, access_check};
use crate::store::ObjectKind;

mod object;
pub(crate) use object::Object;

/// A session's runtime id.
pub type SessionId = u64;

/// How long an object lives (spec §5): dynamic < static < persistent < built-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifetime {
    /// Deleted when its session ends.
    Dynamic(SessionId),
    /// Lives until the engine stops.
    Static,
    /// A boot-time filter: kept in the store's boot-time set and enforced from daemon
    /// start; it may only reference what exists at boot.
    BootTime,
    /// Stored; loaded when the engine starts.
    Persistent,
    /// Created by the engine itself; cannot be deleted.
    BuiltIn,
}

impl Lifetime {
    fn rank(self) -> u8 {
        match self {
            Lifetime::Dynamic(_) => 0,
            Lifetime::Static => 1,
            Lifetime::BootTime | Lifetime::Persistent => 2,
            Lifetime::BuiltIn => 3,
        }
    }

    /// Whether an object of this lifetime may reference one of `referenced`'s.
    fn may_reference(self, referenced: Lifetime) -> bool {
        match (self, referenced) {
            (Lifetime::Dynamic(a), Lifetime::Dynamic(b)) => a == b,
            _ => referenced.rank() >= self.rank(),
        }
    }

    /// Whether the store keeps objects of this lifetime.
    pub fn is_stored(self) -> bool {
        matches!(self, Lifetime::Persistent | Lifetime::BootTime)
    }
}

/// An object as the engine holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record<T> {
    /// The object.
    pub object: T,
    /// Its runtime id (WFP's LUIDs): filters, callouts and provider contexts have one;
    /// other objects have 0.
    pub id: u64,
    /// Its lifetime.
    pub lifetime: Lifetime,
    /// The uid that added it.
    pub owner: u32,
    /// Its own access list (checked before its container's and the engine's).
    pub acl: Acl,
}

/// What a change did, for subscribers and the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeType {
    /// Added.
    Add,
    /// Deleted.
    Delete,
}

/// One change made by a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Added or deleted.
    pub change: ChangeType,
    /// The kind of object.
    pub kind: ObjectKind,
    /// Its key.
    pub key: Uuid,
    /// Its runtime id (0 for kinds without one).
    pub id: u64,
    /// The layer of a filter or callout.
    pub layer: Option<Layer>,
    /// The object's provider.
    pub provider: Option<Uuid>,
    /// The lifetime the object had.
    pub lifetime: Lifetime,
}

/// The caller of an operation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Actor<'a> {
    pub caller: &'a Caller,
    pub session: SessionId,
    pub dynamic: bool,
}

/// Every object of the engine.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub(crate) providers: BTreeMap<Uuid, Arc<Record<Provider>>>,
    pub(crate) sublayers: BTreeMap<Uuid, Arc<Record<Sublayer>>>,
    pub(crate) callouts: BTreeMap<Uuid, Arc<Record<Callout>>>,
    pub(crate) contexts: BTreeMap<Uuid, Arc<Record<ProviderContext>>>,
    pub(crate) filters: BTreeMap<Uuid, Arc<Record<Filter>>>,
    pub(crate) filter_ids: BTreeMap<u64, Uuid>,
    /// How many objects reference each object.
    refs: BTreeMap<(ObjectKind, Uuid), u32>,
    pub(crate) engine_acl: Acl,
    pub(crate) containers: BTreeMap<ObjectKind, Acl>,
    next_id: u64,
    pub(crate) changes: Vec<Change>,
    /// Objects whose access list changed: the store must rewrite the stored ones.
    pub(crate) rewritten: Vec<(ObjectKind, Uuid)>,
    /// Whether anything changed since the catalog was published.
    pub(crate) dirty: bool,
    /// Whether the engine's or a container's access list changed (the store keeps them
    /// as settings).
    pub(crate) acls_changed: bool,
}

/// The key of the default sublayer (`FWPM_SUBLAYER_UNIVERSAL`).
pub fn universal_sublayer() -> Uuid {
    crate::guids::FWPM_SUBLAYER_UNIVERSAL
}

/// The kinds in the order their objects must be deleted when a session ends.
const TEARDOWN_ORDER: [ObjectKind; 5] = [
    ObjectKind::Filter,
    ObjectKind::ProviderContext,
    ObjectKind::Callout,
    ObjectKind::Sublayer,
    ObjectKind::Provider,
];

impl Catalog {
    /// An empty catalog with the default access lists; built-in objects are added by
    /// [`crate::builtin`].
    pub(crate) fn new() -> Catalog {
        Catalog {
            providers: BTreeMap::new(),
            sublayers: BTreeMap::new(),
            callouts: BTreeMap::new(),
            contexts: BTreeMap::new(),
            filters: BTreeMap::new(),
            filter_ids: BTreeMap::new(),
            refs: BTreeMap::new(),
            engine_acl: Acl::engine_default(),
            containers: BTreeMap::new(),
            next_id: 1,
            changes: Vec::new(),
            rewritten: Vec::new(),
            dirty: false,
            acls_changed: false,
        }
    }

    fn alloc_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Makes sure ids handed out later do not collide with `id` (a loaded object's).
    pub(crate) fn reserve_id(&mut self, id: u64) {
        self.next_id = self.next_id.max(id + 1);
    }

    fn container(&self, kind: ObjectKind) -> &Acl {
        const NONE: &Acl = &Acl(Vec::new());
        self.containers.get(&kind).unwrap_or(NONE)
    }

    /// Checks a right on a container (to add) for the actor.
    pub(crate) fn check_container(
        &self,
        caller: &Caller,
        kind: ObjectKind,
        wanted: Rights,
    ) -> Result<(), EngineError> {
        let container = self.container(kind);
        access_check(caller, None, &[container, &self.engine_acl], wanted).map_err(|missing| {
            EngineError::AccessDenied {
                what: format!("the {} container", kind_name(kind)),
                missing,
            }
        })
    }

    /// Checks a right on the engine itself.
    pub(crate) fn check_engine(&self, caller: &Caller, wanted: Rights) -> Result<(), EngineError> {
        access_check(caller, None, &[&self.engine_acl], wanted).map_err(|missing| {
            EngineError::AccessDenied {
                what: "the engine".into(),
                missing,
            }
        })
    }

    /// Checks a right on an object.
    pub(crate) fn check_object<T>(
        &self,
        caller: &Caller,
        kind: ObjectKind,
        key: Uuid,
        record: &Record<T>,
        wanted: Rights,
    ) -> Result<(), EngineError> {
        let container = self.container(kind);
        access_check(
            caller,
            Some(record.owner),
            &[&record.acl, container, &self.engine_acl],
            wanted,
        )
        .map_err(|missing| EngineError::AccessDenied {
            what: format!("{} {key}", kind_name(kind)),
            missing,
        })
    }

    /// Checks `wanted` for `caller` on one object: its own access list, then its kind's
    /// container's, then the engine's, as every engine operation does. For services that
    /// hand objects out beside the engine (the control API's list and show).
    pub fn check_object_access(
        &self,
        caller: &Caller,
        kind: ObjectKind,
        key: Uuid,
        wanted: Rights,
    ) -> Result<(), EngineError> {
        let not_found = || EngineError::NotFound {
            kind: kind_name(kind),
            key,
        };
        match kind {
            ObjectKind::Provider => {
                let r = self.providers.get(&key).ok_or_else(not_found)?;
                self.check_object(caller, kind, key, r, wanted)
            }
            ObjectKind::Sublayer => {
                let r = self.sublayers.get(&key).ok_or_else(not_found)?;
                self.check_object(caller, kind, key, r, wanted)
            }
            ObjectKind::Callout => {
                let r = self.callouts.get(&key).ok_or_else(not_found)?;
                self.check_object(caller, kind, key, r, wanted)
            }
            ObjectKind::ProviderContext => {
                let r = self.contexts.get(&key).ok_or_else(not_found)?;
                self.check_object(caller, kind, key, r, wanted)
            }
            ObjectKind::Filter => {
                let r = self.filters.get(&key).ok_or_else(not_found)?;
                self.check_object(caller, kind, key, r, wanted)
            }
        }
    }

    fn lifetime_for(actor: &Actor<'_>, persistent: bool) -> Result<Lifetime, EngineError> {
        match (persistent, actor.dynamic) {
            (true, true) => Err(EngineError::DynamicSessionPersistent),
            (true, false) => Ok(Lifetime::Persistent),
            (false, true) => Ok(Lifetime::Dynamic(actor.session)),
            (false, false) => Ok(Lifetime::Static),
        }
    }

    fn assign_key(key: Uuid) -> Uuid {
        if key.is_nil() { Uuid::new_v4() } else { key }
    }

    /// Checks that an object of `lifetime` (owned by `provider`) may reference `target`.
    fn check_link(
        &self,
        actor: &Actor<'_>,
        from: (Lifetime, Option<Uuid>),
        kind: ObjectKind,
        key: Uuid,
        target: (Lifetime, Option<Uuid>, u32, &Acl),
    ) -> Result<(), EngineError> {
        let (lifetime, provider) = from;
        let (target_lifetime, target_provider, owner, acl) = target;
        if !lifetime.may_reference(target_lifetime) {
            return Err(EngineError::LifetimeViolation {
                kind: kind_name(kind),
                key,
                referenced: target_lifetime,
                referencing: lifetime,
            });
        }
        if lifetime.is_stored()
            && target_lifetime == Lifetime::Persistent
            && target_provider.is_some()
            && target_provider != provider
        {
            return Err(EngineError::OtherProvidersObject {
                kind: kind_name(kind),
                key,
            });
        }
        let container = self.container(kind);
        access_check(
            actor.caller,
            Some(owner),
            &[acl, container, &self.engine_acl],
            Rights::ADD_LINK,
        )
        .map_err(|missing| EngineError::AccessDenied {
            what: format!("{} {key}", kind_name(kind)),
            missing,
        })
    }

    fn link_provider(
        &mut self,
        actor: &Actor<'_>,
        from: (Lifetime, Option<Uuid>),
    ) -> Result<Option<(ObjectKind, Uuid)>, EngineError> {
        let Some(key) = from.1 else { return Ok(None) };
        let p = self
            .providers
            .get(&key)
            .ok_or(EngineError::NotFound {
                kind: "provider",
                key,
            })?
            .clone();
        self.check_link(
            actor,
            from,
            ObjectKind::Provider,
            key,
            (p.lifetime, None, p.owner, &p.acl),
        )?;
        Ok(Some((ObjectKind::Provider, key)))
    }

    fn add_refs(&mut self, targets: &[(ObjectKind, Uuid)]) {
        for t in targets {
            *self.refs.entry(*t).or_insert(0) += 1;
        }
    }

    fn drop_refs(&mut self, targets: &[(ObjectKind, Uuid)]) {
        for t in targets {
            if let Some(n) = self.refs.get_mut(t) {
                *n -= 1;
                if *n == 0 {
                    self.refs.remove(t);
                }
            }
        }
    }

    fn in_use(&self, kind: ObjectKind, key: Uuid) -> bool {
        self.refs.contains_key(&(kind, key))
    }

    fn record_change(&mut self, change: Change) {
        self.changes.push(change);
    }

    /// Adds an object of a kind other than filter: flags, access, key, lifetime and the
    /// provider it names are checked before anything changes.
    fn add_object<T: Object>(
        &mut self,
        actor: &Actor<'_>,
        mut object: T,
        built_in: bool,
    ) -> Result<(Uuid, u64), EngineError> {
        if let Some(flags) = object.invalid_flags() {
            return Err(EngineError::InvalidFlags {
                kind: kind_name(T::KIND),
                flags,
            });
        }
        if !built_in {
            self.check_container(actor.caller, T::KIND, Rights::ADD)?;
        }
        let key = Catalog::assign_key(*object.key_mut());
        *object.key_mut() = key;
        object.validate(key)?;
        if T::map(self).contains_key(&key) {
            return Err(EngineError::AlreadyExists {
                kind: kind_name(T::KIND),
                key,
            });
        }
        let lifetime = if built_in {
            Lifetime::BuiltIn
        } else {
            Catalog::lifetime_for(actor, object.persistent())?
        };
        let provider = object.provider_key();
        let links: Vec<_> = self
            .link_provider(actor, (lifetime, provider))?
            .into_iter()
            .collect();
        self.add_refs(&links);
        let id = if T::HAS_ID { self.alloc_id() } else { 0 };
        let layer = object.layer();
        let record = Record {
            object,
            id,
            lifetime,
            owner: actor.caller.uid,
            acl: Acl::default(),
        };
        T::map(self).insert(key, Arc::new(record));
        self.record_change(Change {
            change: ChangeType::Add,
            kind: T::KIND,
            key,
            id,
            layer,
            provider,
            lifetime,
        });
        Ok((key, id))
    }

    pub(crate) fn add_provider(
        &mut self,
        actor: &Actor<'_>,
        p: Provider,
        built_in: bool,
    ) -> Result<Uuid, EngineError> {
        self.add_object(actor, p, built_in).map(|(key, _)| key)
    }

    pub(crate) fn add_sublayer(
        &mut self,
        actor: &Actor<'_>,
        s: Sublayer,
        built_in: bool,
    ) -> Result<Uuid, EngineError> {
        self.add_object(actor, s, built_in).map(|(key, _)| key)
    }

    pub(crate) fn add_callout(
        &mut self,
        actor: &Actor<'_>,
        c: Callout,
        built_in: bool,
    ) -> Result<(Uuid, u64), EngineError> {
        self.add_object(actor, c, built_in)
    }

    pub(crate) fn add_provider_context(
        &mut self,
        actor: &Actor<'_>,
        pc: ProviderContext,
    ) -> Result<(Uuid, u64), EngineError> {
        self.add_object(actor, pc, false)
    }

    // ---- filters ----

    /// The objects a filter references.
    fn filter_links(f: &Filter) -> Vec<(ObjectKind, Uuid)> {
        let mut links = vec![(
            ObjectKind::Sublayer,
            f.sublayer.unwrap_or_else(universal_sublayer),
        )];
        if let Some(p) = f.provider {
            links.push((ObjectKind::Provider, p));
        }
        if let Some(c) = f.action.callout() {
            links.push((ObjectKind::Callout, c));
        }
        if let FilterContext::ProviderContext(k) = f.context {
            links.push((ObjectKind::ProviderContext, k));
        }
        links
    }

    pub(crate) fn add_filter(
        &mut self,
        actor: &Actor<'_>,
        mut f: Filter,
    ) -> Result<(Uuid, u64), EngineError> {
        let flags = f.flags;
        let flag_error = |why: &'static str| EngineError::InvalidFilter {
            key: f.key,
            why: why.to_string(),
        };
        if flags.unknown_bits() != 0 {
            return Err(EngineError::InvalidFlags {
                kind: "filter",
                flags: flags.to_string(),
            });
        }
        if flags.contains(FilterFlags::DISABLED) {
            return Err(flag_error("DISABLED is set by the engine, not by callers"));
        }
        let boot_time = flags.contains(FilterFlags::BOOTTIME);
        if boot_time && flags.contains(FilterFlags::PERSISTENT) {
            return Err(flag_error("BOOTTIME and PERSISTENT cannot be combined"));
        }
        if boot_time && !f.layer.is_kernel() {
            return Err(flag_error(
                "BOOTTIME filters must be at a per-packet or per-connection layer",
            ));
        }
        if boot_time && actor.dynamic {
            return Err(EngineError::DynamicSessionPersistent);
        }
        if flags.contains(FilterFlags::PERMIT_IF_CALLOUT_UNREGISTERED)
            && f.action.callout().is_none()
        {
            return Err(flag_error(
                "PERMIT_IF_CALLOUT_UNREGISTERED needs a callout action",
            ));
        }
        let has_pc = matches!(f.context, FilterContext::ProviderContext(_));
        if has_pc != flags.contains(FilterFlags::HAS_PROVIDER_CONTEXT) {
            return Err(flag_error(
                "HAS_PROVIDER_CONTEXT must be set exactly when the context is a provider context",
            ));
        }
        if f.weight.effective(&f.conditions).is_none() {
            return Err(flag_error("a weight range must be 0-15"));
        }
        for (i, c) in f.conditions.iter().enumerate() {
            c.validate(f.layer)
                .map_err(|source| EngineError::Condition {
                    key: f.key,
                    index: i,
                    source,
                })?;
        }
        self.check_container(actor.caller, ObjectKind::Filter, Rights::ADD)?;
        f.key = Catalog::assign_key(f.key);
        let key = f.key;
        if self.filters.contains_key(&key) {
            return Err(EngineError::AlreadyExists {
                kind: "filter",
                key,
            });
        }
        let lifetime = if boot_time {
            Lifetime::BootTime
        } else {
            Catalog::lifetime_for(actor, flags.contains(FilterFlags::PERSISTENT))?
        };
        let from = (lifetime, f.provider);

        let sublayer_key = f.sublayer.unwrap_or_else(universal_sublayer);
        let s = self
            .sublayers
            .get(&sublayer_key)
            .ok_or(EngineError::NotFound {
                kind: "sublayer",
                key: sublayer_key,
            })?
            .clone();
        self.check_link(
            actor,
            from,
            ObjectKind::Sublayer,
            sublayer_key,
            (s.lifetime, s.object.provider, s.owner, &s.acl),
        )?;
        self.link_provider(actor, from)?;
        if let Some(ck) = f.action.callout() {
            let c = self
                .callouts
                .get(&ck)
                .ok_or(EngineError::NotFound {
                    kind: "callout",
                    key: ck,
                })?
                .clone();
            if c.object.layer != f.layer {
                return Err(EngineError::InvalidFilter {
                    key,
                    why: format!(
                        "callout {ck} works at {}, not at {}",
                        c.object.layer, f.layer
                    ),
                });
            }
            self.check_link(
                actor,
                from,
                ObjectKind::Callout,
                ck,
                (c.lifetime, c.object.provider, c.owner, &c.acl),
            )?;
        }
        if let FilterContext::ProviderContext(pk) = f.context {
            let pc = self
                .contexts
                .get(&pk)
                .ok_or(EngineError::NotFound {
                    kind: "provider context",
                    key: pk,
                })?
                .clone();
            let ty = pc.object.policy.context_type();
            if !context_fits_layer(ty, f.layer) {
                return Err(EngineError::InvalidFilter {
                    key,
                    why: format!(
                        "a {} provider context cannot be used at {}",
                        ty.name(),
                        f.layer
                    ),
                });
            }
            self.check_link(
                actor,
                from,
                ObjectKind::ProviderContext,
                pk,
                (pc.lifetime, pc.object.provider, pc.owner, &pc.acl),
            )?;
        }

        let links = Catalog::filter_links(&f);
        self.add_refs(&links);
        let id = self.alloc_id();
        let (layer, provider) = (f.layer, f.provider);
        let record = Record {
            object: f,
            id,
            lifetime,
            owner: actor.caller.uid,
            acl: Acl::default(),
        };
        self.filters.insert(key, Arc::new(record));
        self.filter_ids.insert(id, key);
        self.record_change(Change {
            change: ChangeType::Add,
            kind: ObjectKind::Filter,
            key,
            id,
            layer: Some(layer),
            provider,
            lifetime,
        });
        Ok((key, id))
    }

    // ---- deletion ----

    /// Deletes an object by kind and key, if the actor may and nothing references it.
    pub(crate) fn delete(
        &mut self,
        actor: Option<&Actor<'_>>,
        kind: ObjectKind,
        key: Uuid,
    ) -> Result<(), EngineError> {
        match kind {
            ObjectKind::Provider => self.delete_object::<Provider>(actor, key),
            ObjectKind::Sublayer => self.delete_object::<Sublayer>(actor, key),
            ObjectKind::Callout => self.delete_object::<Callout>(actor, key),
            ObjectKind::ProviderContext => self.delete_object::<ProviderContext>(actor, key),
            ObjectKind::Filter => {
                let id = self.delete_object::<Filter>(actor, key)?;
                self.filter_ids.remove(&id);
                Ok(id)
            }
        }
        .map(drop)
    }

    fn delete_object<T: Object>(
        &mut self,
        actor: Option<&Actor<'_>>,
        key: Uuid,
    ) -> Result<u64, EngineError> {
        let kind = T::KIND;
        let not_found = EngineError::NotFound {
            kind: kind_name(kind),
            key,
        };
        let r = T::map(self).get(&key).cloned().ok_or(not_found)?;
        if r.lifetime == Lifetime::BuiltIn {
            return Err(EngineError::BuiltIn {
                kind: kind_name(kind),
                key,
            });
        }
        if let Some(actor) = actor {
            self.check_object(actor.caller, kind, key, &r, Rights::DELETE)?;
        }
        if self.in_use(kind, key) {
            return Err(EngineError::InUse {
                kind: kind_name(kind),
                key,
            });
        }
        T::map(self).remove(&key);
        self.drop_refs(&r.object.links());
        self.record_change(Change {
            change: ChangeType::Delete,
            kind,
            key,
            id: r.id,
            layer: r.object.layer(),
            provider: r.object.provider_key(),
            lifetime: r.lifetime,
        });
        Ok(r.id)
    }

    /// The keys of a session's dynamic objects, in the order they can be deleted.
    pub(crate) fn dynamic_objects(&self, session: SessionId) -> Vec<(ObjectKind, Uuid)> {
        let dynamic = Lifetime::Dynamic(session);
        let mut out = Vec::new();
        for kind in TEARDOWN_ORDER {
            let keys: Vec<Uuid> = match kind {
                ObjectKind::Filter => keys_with(&self.filters, dynamic),
                ObjectKind::ProviderContext => keys_with(&self.contexts, dynamic),
                ObjectKind::Callout => keys_with(&self.callouts, dynamic),
                ObjectKind::Sublayer => keys_with(&self.sublayers, dynamic),
                ObjectKind::Provider => keys_with(&self.providers, dynamic),
            };
            out.extend(keys.into_iter().map(|k| (kind, k)));
        }
        out
    }

    /// Replaces an object's own access list (needs `WRITE_DAC`), or a container's (`key`
    /// nil; needs `WRITE_DAC` on the engine).
    pub(crate) fn set_acl(
        &mut self,
        caller: &Caller,
        kind: ObjectKind,
        key: Uuid,
        acl: Acl,
    ) -> Result<(), EngineError> {
        if key.is_nil() {
            self.check_engine(caller, Rights::WRITE_DAC)?;
            self.containers.insert(kind, acl);
            self.acls_changed = true;
            return Ok(());
        }
        match kind {
            ObjectKind::Provider => self.set_object_acl::<Provider>(caller, key, acl),
            ObjectKind::Sublayer => self.set_object_acl::<Sublayer>(caller, key, acl),
            ObjectKind::Callout => self.set_object_acl::<Callout>(caller, key, acl),
            ObjectKind::ProviderContext => self.set_object_acl::<ProviderContext>(caller, key, acl),
            ObjectKind::Filter => self.set_object_acl::<Filter>(caller, key, acl),
        }
    }

    fn set_object_acl<T: Object>(
        &mut self,
        caller: &Caller,
        key: Uuid,
        acl: Acl,
    ) -> Result<(), EngineError> {
        let r = T::map(self)
            .get(&key)
            .cloned()
            .ok_or(EngineError::NotFound {
                kind: kind_name(T::KIND),
                key,
            })?;
        self.check_object(caller, T::KIND, key, &r, Rights::WRITE_DAC)?;
        let mut new = (*r).clone();
        new.acl = acl;
        T::map(self).insert(key, Arc::new(new));
        self.rewritten.push((T::KIND, key));
        Ok(())
    }

    /// Puts back an object read from the store, with its id, owner and access list.
    pub(crate) fn restore<T: Object>(&mut self, record: Record<T>) -> Result<(), EngineError> {
        let key = record.object.key();
        let links = record.object.links();
        for (kind, k) in &links {
            if !self.exists(*kind, *k) {
                return Err(EngineError::NotFound {
                    kind: kind_name(*kind),
                    key: *k,
                });
            }
        }
        self.add_refs(&links);
        self.reserve_id(record.id);
        if T::KIND == ObjectKind::Filter {
            self.filter_ids.insert(record.id, key);
        }
        T::map(self).insert(key, Arc::new(record));
        Ok(())
    }
}

fn keys_with<T>(map: &BTreeMap<Uuid, Arc<Record<T>>>, lifetime: Lifetime) -> Vec<Uuid> {
    map.iter()
        .filter(|(_, r)| r.lifetime == lifetime)
        .map(|(k, _)| *k)
        .collect()
}

impl Catalog {
    fn exists(&self, kind: ObjectKind, key: Uuid) -> bool {
        match kind {
            ObjectKind::Provider => Provider::map_ref(self).contains_key(&key),
            ObjectKind::Sublayer => Sublayer::map_ref(self).contains_key(&key),
            ObjectKind::Callout => Callout::map_ref(self).contains_key(&key),
            ObjectKind::ProviderContext => ProviderContext::map_ref(self).contains_key(&key),
            ObjectKind::Filter => Filter::map_ref(self).contains_key(&key),
        }
    }
}

/// Which provider contexts a filter may carry at a layer: keying modules look up their
/// policy by type, so a quick-mode policy at IKEEXT would be a policy nobody reads.
fn context_fits_layer(ty: ProviderContextType, layer: Layer) -> bool {
    use ProviderContextType as T;
    match layer.kind() {
        LayerKind::Ikeext => matches!(ty, T::IkeMm | T::AuthipMm | T::Ikev2Mm),
        LayerKind::Ipsec => matches!(
            ty,
            T::IkeQmTransport
                | T::IkeQmTunnel
                | T::AuthipQmTransport
                | T::AuthipQmTunnel
                | T::Ikev2QmTransport
                | T::Ikev2QmTunnel
        ),
        LayerKind::IpsecKmDemux => ty == T::IpsecKeying,
        _ => true,
    }
}

/// A kind's name in messages.
pub fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Provider => "provider",
        ObjectKind::Sublayer => "sublayer",
        ObjectKind::Callout => "callout",
        ObjectKind::ProviderContext => "provider context",
        ObjectKind::Filter => "filter",
    }
}
