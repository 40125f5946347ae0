//! Change subscriptions (`Fwpm*SubscribeChanges0`): add and delete events, delivered
//! best-effort to every subscriber except the session that made the change.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use uuid::Uuid;

use crate::catalog::{Change, SessionId};
use crate::engine::Shared;
use crate::layer::Layer;
use crate::store::ObjectKind;

/// How many events wait for a subscriber before new ones are dropped (and counted).
pub const QUEUE_DEPTH: usize = 4096;

/// Which changes a subscriber wants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscriptionTemplate {
    /// Kinds of objects; empty means all.
    pub kinds: Vec<ObjectKind>,
    /// Only filters and callouts at this layer.
    pub layer: Option<Layer>,
    /// Only objects of this provider.
    pub provider: Option<Uuid>,
}

impl SubscriptionTemplate {
    fn wants(&self, c: &Change) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&c.kind))
            && self.layer.is_none_or(|l| c.layer == Some(l))
            && self.provider.is_none_or(|p| c.provider == Some(p))
    }
}

struct Subscriber {
    id: u64,
    session: SessionId,
    template: SubscriptionTemplate,
    tx: SyncSender<Change>,
    dropped: Arc<AtomicU64>,
}

#[derive(Default)]
pub(crate) struct Subscribers {
    list: Mutex<Vec<Subscriber>>,
    next: AtomicU64,
}

impl Subscribers {
    pub(crate) fn add(
        &self,
        shared: Weak<Shared>,
        session: SessionId,
        template: SubscriptionTemplate,
    ) -> Subscription {
        let (tx, rx) = sync_channel(QUEUE_DEPTH);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let dropped = Arc::new(AtomicU64::new(0));
        self.list
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Subscriber {
                id,
                session,
                template,
                tx,
                dropped: dropped.clone(),
            });
        Subscription {
            id,
            rx,
            shared,
            dropped,
        }
    }

    fn remove(&self, id: u64) {
        self.list
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|s| s.id != id);
    }

    /// Sends the changes a session committed to everyone else who wants them, without
    /// waiting: a full queue drops the event and counts it.
    pub(crate) fn notify(&self, from: SessionId, changes: &[Change]) {
        let list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        for s in list.iter().filter(|s| s.session != from) {
            for c in changes.iter().filter(|c| s.template.wants(c)) {
                match s.tx.try_send(c.clone()) {
                    Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                    Err(TrySendError::Full(_)) => {
                        s.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

/// A subscription: the receiving end of change events. Dropping it unsubscribes.
pub struct Subscription {
    id: u64,
    rx: Receiver<Change>,
    shared: Weak<Shared>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}

impl Subscription {
    /// The next event, if one is waiting.
    pub fn try_next(&self) -> Option<Change> {
        self.rx.try_recv().ok()
    }

    /// The next event, waiting up to `timeout`.
    pub fn next_timeout(&self, timeout: Duration) -> Option<Change> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// How many events were dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.subscribers.remove(self.id);
        }
    }
}
