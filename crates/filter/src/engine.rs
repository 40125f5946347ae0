//! The engine: sessions, transactions, and the published snapshot that classification
//! reads without taking a lock.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use uuid::Uuid;

use crate::arbitrate::{NoTrace, arbitrate};
use crate::catalog::{Actor, Catalog, Change, Lifetime, Record, SessionId};
use crate::classify::{Callouts, Classification};
use crate::compiled::CompiledLayer;
use crate::error::EngineError;
use crate::filter::Filter;
use crate::layer::Layer;
use crate::objects::{Callout, Provider, ProviderContext, Sublayer};
use crate::persist;
use crate::security::{Acl, Caller, Rights};
use crate::store::{ObjectKind, Store};
use crate::subscription::{Subscribers, Subscription, SubscriptionTemplate};
use crate::value::FieldValues;

/// WFP's default wait for another session's write transaction.
pub const DEFAULT_TXN_WAIT: Duration = Duration::from_secs(15);

/// What classification reads: the catalog and every layer's compiled filters, as of one
/// commit.
#[derive(Debug)]
pub struct Snapshot {
    /// Every object.
    pub catalog: Arc<Catalog>,
    /// Per layer, in [`Layer::index`] order.
    pub layers: Vec<Arc<CompiledLayer>>,
}

impl Snapshot {
    fn build(catalog: Arc<Catalog>) -> Snapshot {
        let layers = Layer::ALL
            .iter()
            .map(|l| Arc::new(CompiledLayer::build(&catalog, *l)))
            .collect();
        Snapshot { catalog, layers }
    }

    /// The compiled layer.
    pub fn layer(&self, layer: Layer) -> &CompiledLayer {
        &self.layers[layer.index()]
    }

    /// Classifies at `layer` with the index, in this snapshot.
    pub fn classify<C: Callouts + ?Sized>(
        &self,
        layer: Layer,
        values: &FieldValues,
        callouts: &mut C,
    ) -> Classification {
        let compiled = self.layer(layer);
        arbitrate(
            compiled,
            compiled.index.candidates(values),
            values,
            callouts,
            &mut NoTrace,
        )
    }
}

pub(crate) struct Shared {
    snapshot: ArcSwap<Snapshot>,
    /// Bumped after each new snapshot: a per-packet "has it changed" is one load, where
    /// taking the snapshot is a reference count on a line all readers share.
    generation: AtomicU64,
    /// The session holding the write lock, if any.
    writer: Mutex<Option<SessionId>>,
    writer_released: Condvar,
    store: Mutex<Option<Store>>,
    next_session: AtomicU64,
    pub(crate) subscribers: Subscribers,
}

/// The filtering engine. Cloning it is cheap and shares it.
#[derive(Clone)]
pub struct Engine {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// How a session is opened (`FWPM_SESSION0`).
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// A name for administrators.
    pub name: String,
    /// Dynamic sessions' objects are deleted when the session ends.
    pub dynamic: bool,
    /// How long `begin` waits for another session's write transaction.
    pub txn_wait_timeout: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            name: String::new(),
            dynamic: false,
            txn_wait_timeout: DEFAULT_TXN_WAIT,
        }
    }
}

/// Read-only or read-write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnKind {
    /// Sees one consistent state; changes nothing (`FWPM_TXN_READ_ONLY`).
    ReadOnly,
    /// Changes objects; one at a time across the engine.
    Write,
}

impl Engine {
    /// An engine without a store: persistent objects live until it stops.
    pub fn new() -> Engine {
        let catalog = crate::builtin::catalog();
        Engine::with(catalog, None)
    }

    /// An engine over a store: loads the persistent objects and the boot-time filters,
    /// and writes every later commit's persistent changes before publishing them.
    pub fn open(store: Store) -> Result<Engine, EngineError> {
        Engine::open_with_services(store, |_| true)
    }

    /// As [`Engine::open`], with a test of whether a provider's service (its
    /// `service_name`, a systemd unit) starts at boot. As in WFP, the stored filters of a
    /// provider whose service does not are loaded but not enforced: they carry the
    /// DISABLED flag (and so does the provider) for as long as this engine runs; the
    /// service, once started, adds its policy itself.
    pub fn open_with_services(
        store: Store,
        starts_at_boot: impl Fn(&str) -> bool,
    ) -> Result<Engine, EngineError> {
        let mut catalog = crate::builtin::catalog();
        persist::load(&store, &mut catalog, &starts_at_boot)?;
        Ok(Engine::with(catalog, Some(store)))
    }

    fn with(mut catalog: Catalog, store: Option<Store>) -> Engine {
        catalog.changes.clear();
        Engine {
            shared: Arc::new(Shared {
                snapshot: ArcSwap::from_pointee(Snapshot::build(Arc::new(catalog))),
                writer: Mutex::new(None),
                writer_released: Condvar::new(),
                store: Mutex::new(store),
                next_session: AtomicU64::new(1),
                generation: AtomicU64::new(0),
                subscribers: Subscribers::default(),
            }),
        }
    }

    /// Opens a session for `caller` (needs `OPEN` on the engine).
    pub fn open_session(
        &self,
        caller: Caller,
        options: SessionOptions,
    ) -> Result<Session, EngineError> {
        self.snapshot()
            .catalog
            .check_engine(&caller, Rights::OPEN)?;
        Ok(Session {
            engine: self.clone(),
            id: self.shared.next_session.fetch_add(1, Ordering::Relaxed),
            caller,
            options,
        })
    }

    /// Checks `wanted` for `caller` against the engine's access control list: for the
    /// services beside the engine that the engine's security descriptor guards, as WFP's
    /// does for IPsec SA and statistics queries (the daemon's SA, statistics and event
    /// requests).
    pub fn check_access(&self, caller: &Caller, wanted: Rights) -> Result<(), EngineError> {
        self.snapshot().catalog.check_engine(caller, wanted)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot.load_full()
    }

    /// Changes with every new snapshot: a snapshot taken after reading a generation is
    /// at least as new as that generation.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// Classifies at `layer` with the index. Takes no lock; callers inside the daemon
    /// are trusted, as WFP's kernel callers are (sessions check `CLASSIFY`).
    pub fn classify<C: Callouts + ?Sized>(
        &self,
        layer: Layer,
        values: &FieldValues,
        callouts: &mut C,
    ) -> Classification {
        self.shared
            .snapshot
            .load()
            .classify(layer, values, callouts)
    }

    /// Classifies at `layer` by trying every filter in order: the reference the index is
    /// tested against.
    pub fn classify_naive<C: Callouts + ?Sized>(
        &self,
        layer: Layer,
        values: &FieldValues,
        callouts: &mut C,
    ) -> Classification {
        let snapshot = self.shared.snapshot.load();
        let compiled = snapshot.layer(layer);
        let n = u32::try_from(compiled.filters.len()).unwrap_or(u32::MAX);
        arbitrate(compiled, 0..n, values, callouts, &mut NoTrace)
    }

    /// The boot-time filters, for the daemon to enforce before anything else starts.
    pub fn boot_time_filters(&self) -> Vec<Filter> {
        self.snapshot()
            .catalog
            .filters
            .values()
            .filter(|r| r.lifetime == Lifetime::BootTime)
            .map(|r| r.object.clone())
            .collect()
    }

    fn lock_writer(
        &self,
        session: SessionId,
        timeout: Duration,
    ) -> Result<WriterGuard, EngineError> {
        let deadline = Instant::now() + timeout;
        let mut holder = lock(&self.shared.writer);
        while holder.is_some() {
            let now = Instant::now();
            if now >= deadline {
                return Err(EngineError::Timeout(timeout));
            }
            holder = match self
                .shared
                .writer_released
                .wait_timeout(holder, deadline - now)
            {
                Ok((h, _)) => h,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        *holder = Some(session);
        Ok(WriterGuard {
            shared: self.shared.clone(),
        })
    }

    /// Makes a write transaction's catalog durable (its stored objects) and visible.
    fn publish(
        &self,
        session: SessionId,
        mut catalog: Catalog,
    ) -> Result<Vec<Change>, EngineError> {
        if !catalog.dirty {
            return Ok(Vec::new());
        }
        let changes = std::mem::take(&mut catalog.changes);
        let rewritten = std::mem::take(&mut catalog.rewritten);
        let acls_changed = std::mem::take(&mut catalog.acls_changed);
        catalog.dirty = false;
        {
            let store = lock(&self.shared.store);
            if let Some(store) = store.as_ref() {
                persist::commit(store, &catalog, &changes, &rewritten, acls_changed)?;
            }
        }
        let old = self.shared.snapshot.load_full();
        let touched: BTreeSet<Layer> = changes
            .iter()
            .filter(|c| c.kind == ObjectKind::Filter)
            .filter_map(|c| c.layer)
            .collect();
        let catalog = Arc::new(catalog);
        let layers = Layer::ALL
            .iter()
            .map(|l| {
                if touched.contains(l) {
                    Arc::new(CompiledLayer::build(&catalog, *l))
                } else {
                    old.layers[l.index()].clone()
                }
            })
            .collect();
        self.shared
            .snapshot
            .store(Arc::new(Snapshot { catalog, layers }));
        self.shared.generation.fetch_add(1, Ordering::Release);
        self.shared.subscribers.notify(session, &changes);
        Ok(changes)
    }
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves nothing half-written that matters:
    // the data they guard is replaced whole.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct WriterGuard {
    shared: Arc<Shared>,
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        *lock(&self.shared.writer) = None;
        self.shared.writer_released.notify_one();
    }
}

/// A session (`FWPM_SESSION0`): a caller's connection to the engine. Dropping it ends it:
/// its transaction aborts and, if it is dynamic, its objects are deleted.
pub struct Session {
    engine: Engine,
    id: SessionId,
    caller: Caller,
    options: SessionOptions,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("caller", &self.caller)
            .field("options", &self.options)
            .finish()
    }
}

macro_rules! implicit {
    ($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        $(#[$doc])*
        ///
        /// Runs in its own transaction.
        pub fn $name(&mut self, $($arg: $ty),*) -> Result<$ret, EngineError> {
            let mut txn = self.begin(TxnKind::Write)?;
            let out = txn.$name($($arg),*)?;
            txn.commit()?;
            Ok(out)
        }
    };
}

impl Session {
    /// The session's runtime id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The caller.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Begins a transaction. A write transaction waits up to the session's timeout for
    /// another session's to end.
    pub fn begin(&mut self, kind: TxnKind) -> Result<Transaction<'_>, EngineError> {
        let snapshot = self.engine.snapshot();
        let right = match kind {
            TxnKind::ReadOnly => Rights::BEGIN_READ_TXN,
            TxnKind::Write => Rights::BEGIN_WRITE_TXN,
        };
        snapshot.catalog.check_engine(&self.caller, right)?;
        let writer = match kind {
            TxnKind::ReadOnly => None,
            TxnKind::Write => Some(
                self.engine
                    .lock_writer(self.id, self.options.txn_wait_timeout)?,
            ),
        };
        // Under the writer lock, the published catalog is the latest: nobody else can
        // commit until this transaction ends.
        let catalog = match kind {
            TxnKind::ReadOnly => snapshot.catalog.clone(),
            TxnKind::Write => self.engine.snapshot().catalog.clone(),
        };
        Ok(Transaction {
            session: self,
            kind,
            catalog,
            _writer: writer,
        })
    }

    /// Classifies (needs `CLASSIFY`).
    pub fn classify<C: Callouts + ?Sized>(
        &self,
        layer: Layer,
        values: &FieldValues,
        callouts: &mut C,
    ) -> Result<Classification, EngineError> {
        let snapshot = self.engine.shared.snapshot.load();
        snapshot
            .catalog
            .check_engine(&self.caller, Rights::CLASSIFY)?;
        Ok(snapshot.classify(layer, values, callouts))
    }

    implicit!(
        /// Adds a provider.
        add_provider(provider: Provider) -> Uuid
    );
    implicit!(
        /// Adds a sublayer.
        add_sublayer(sublayer: Sublayer) -> Uuid
    );
    implicit!(
        /// Adds a callout; returns its key and runtime id.
        add_callout(callout: Callout) -> (Uuid, u64)
    );
    implicit!(
        /// Adds a provider context; returns its key and runtime id.
        add_provider_context(context: ProviderContext) -> (Uuid, u64)
    );
    implicit!(
        /// Adds a filter; returns its key and runtime id.
        add_filter(filter: Filter) -> (Uuid, u64)
    );
    implicit!(
        /// Deletes an object by kind and key.
        delete(kind: ObjectKind, key: Uuid) -> ()
    );
    implicit!(
        /// Deletes a filter by runtime id.
        delete_filter_by_id(id: u64) -> ()
    );
    implicit!(
        /// Replaces an object's access list (nil key: the kind's container's).
        set_acl(kind: ObjectKind, key: Uuid, acl: Acl) -> ()
    );
    implicit!(
        /// Replaces the engine's access list.
        set_engine_acl(acl: Acl) -> ()
    );

    /// Subscribes to changes other sessions make (needs `SUBSCRIBE`).
    pub fn subscribe(&self, template: SubscriptionTemplate) -> Result<Subscription, EngineError> {
        self.engine
            .snapshot()
            .catalog
            .check_engine(&self.caller, Rights::SUBSCRIBE)?;
        Ok(self.engine.shared.subscribers.add(
            Arc::downgrade(&self.engine.shared),
            self.id,
            template,
        ))
    }

    /// Ends the session now (as dropping it does).
    pub fn close(self) {}

    fn teardown(&mut self) {
        if !self.options.dynamic {
            return;
        }
        let Ok(_writer) = self.engine.lock_writer(self.id, Duration::from_secs(3600)) else {
            return;
        };
        let mut catalog = (*self.engine.snapshot().catalog).clone();
        for (kind, key) in catalog.dynamic_objects(self.id) {
            // Nothing else can reference a session's dynamic objects (lifetime rules),
            // so each deletion succeeds; a failure leaves that object, not a broken engine.
            if catalog.delete(None, kind, key).is_ok() {
                catalog.dirty = true;
            }
        }
        let _ = self.engine.publish(self.id, catalog);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// A transaction. Changes are visible inside it at once, and to everyone else on
/// [`Transaction::commit`]; dropping it aborts.
pub struct Transaction<'s> {
    session: &'s mut Session,
    kind: TxnKind,
    catalog: Arc<Catalog>,
    _writer: Option<WriterGuard>,
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("session", &self.session.id)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Transaction<'_> {
    /// The objects as this transaction sees them.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Runs `op` on the transaction's catalog. Every catalog operation checks everything
    /// before it changes anything, so a failed call leaves the transaction as it was.
    fn write<T>(
        &mut self,
        op: impl FnOnce(&mut Catalog, &Actor<'_>) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        if self.kind == TxnKind::ReadOnly {
            return Err(EngineError::ReadOnly);
        }
        let actor = Actor {
            caller: &self.session.caller,
            session: self.session.id,
            dynamic: self.session.options.dynamic,
        };
        let catalog = Arc::make_mut(&mut self.catalog);
        let out = op(catalog, &actor)?;
        catalog.dirty = true;
        Ok(out)
    }

    /// Adds a provider.
    pub fn add_provider(&mut self, provider: Provider) -> Result<Uuid, EngineError> {
        self.write(|c, a| c.add_provider(a, provider, false))
    }

    /// Adds a sublayer.
    pub fn add_sublayer(&mut self, sublayer: Sublayer) -> Result<Uuid, EngineError> {
        self.write(|c, a| c.add_sublayer(a, sublayer, false))
    }

    /// Adds a callout.
    pub fn add_callout(&mut self, callout: Callout) -> Result<(Uuid, u64), EngineError> {
        self.write(|c, a| c.add_callout(a, callout, false))
    }

    /// Adds a provider context.
    pub fn add_provider_context(
        &mut self,
        context: ProviderContext,
    ) -> Result<(Uuid, u64), EngineError> {
        self.write(|c, a| c.add_provider_context(a, context))
    }

    /// Adds a filter.
    pub fn add_filter(&mut self, filter: Filter) -> Result<(Uuid, u64), EngineError> {
        self.write(|c, a| c.add_filter(a, filter))
    }

    /// Adds many filters; all or none.
    pub fn add_filters(
        &mut self,
        filters: impl IntoIterator<Item = Filter>,
    ) -> Result<Vec<(Uuid, u64)>, EngineError> {
        let before = self.catalog.clone();
        let out = self.write(|c, a| filters.into_iter().map(|f| c.add_filter(a, f)).collect());
        if out.is_err() {
            self.catalog = before;
        }
        out
    }

    /// Deletes an object.
    pub fn delete(&mut self, kind: ObjectKind, key: Uuid) -> Result<(), EngineError> {
        self.write(|c, a| c.delete(Some(a), kind, key))
    }

    /// Deletes a filter by runtime id.
    pub fn delete_filter_by_id(&mut self, id: u64) -> Result<(), EngineError> {
        let key = *self
            .catalog
            .filter_ids
            .get(&id)
            .ok_or(EngineError::FilterIdNotFound(id))?;
        self.delete(ObjectKind::Filter, key)
    }

    /// Replaces an access list.
    pub fn set_acl(&mut self, kind: ObjectKind, key: Uuid, acl: Acl) -> Result<(), EngineError> {
        let caller = self.session.caller.clone();
        self.write(|c, _| c.set_acl(&caller, kind, key, acl))
    }

    /// Replaces the engine's access list (needs `WRITE_DAC` on the engine).
    pub fn set_engine_acl(&mut self, acl: Acl) -> Result<(), EngineError> {
        let caller = self.session.caller.clone();
        self.write(|c, _| {
            c.check_engine(&caller, Rights::WRITE_DAC)?;
            c.engine_acl = acl;
            c.acls_changed = true;
            Ok(())
        })
    }

    /// A filter by key.
    pub fn filter(&self, key: Uuid) -> Option<&Arc<Record<Filter>>> {
        self.catalog.filters.get(&key)
    }

    /// Commits: stored objects are written durably first, then the new state is
    /// published. On error nothing is applied.
    pub fn commit(self) -> Result<(), EngineError> {
        if self.kind == TxnKind::ReadOnly {
            return Ok(());
        }
        let catalog = Arc::try_unwrap(self.catalog).unwrap_or_else(|a| (*a).clone());
        self.session.engine.publish(self.session.id, catalog)?;
        Ok(())
    }

    /// Aborts (as dropping does).
    pub fn abort(self) {}
}
