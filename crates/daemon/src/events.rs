//! Net events (spec §6.2) in a bounded ring, with live subscribers for
//! `palisade events --follow`.
//!
//! A slow subscriber loses events rather than slowing the daemon: each has a bounded
//! channel, and one that is full or gone is dropped.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{SystemTime, UNIX_EPOCH};

use palisade_control::protocol::NetEvent;

/// Events a follower may fall behind by before it is cut off.
const SUBSCRIBER_BACKLOG: usize = 1024;

/// The ring and its followers.
#[derive(Debug)]
pub struct EventRing {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    events: VecDeque<NetEvent>,
    capacity: usize,
    next_seq: u64,
    subscribers: Vec<SyncSender<NetEvent>>,
}

impl EventRing {
    /// A ring keeping the last `capacity` events.
    pub fn new(capacity: usize) -> EventRing {
        EventRing {
            inner: Mutex::new(Inner {
                events: VecDeque::with_capacity(capacity.min(4096)),
                capacity: capacity.max(1),
                next_seq: 1,
                subscribers: Vec::new(),
            }),
        }
    }

    /// Records an event and hands it to the followers.
    pub fn push(&self, kind: &str, summary: String, detail: serde_json::Value) {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut inner = self.lock();
        let event = NetEvent {
            seq: inner.next_seq,
            unix_ms,
            kind: kind.to_owned(),
            summary,
            detail,
        };
        inner.next_seq += 1;
        if inner.events.len() == inner.capacity {
            inner.events.pop_front();
        }
        inner.events.push_back(event.clone());
        inner
            .subscribers
            .retain(|s| match s.try_send(event.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            });
    }

    /// The events after `since` (all without it), and a receiver of what comes next.
    pub fn subscribe(&self, since: Option<u64>) -> (Vec<NetEvent>, Receiver<NetEvent>) {
        let (tx, rx) = sync_channel(SUBSCRIBER_BACKLOG);
        let mut inner = self.lock();
        let backlog = inner
            .events
            .iter()
            .filter(|e| since.is_none_or(|s| e.seq > s))
            .cloned()
            .collect();
        inner.subscribers.push(tx);
        (backlog, rx)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves a consistent ring (each push is whole).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ring_keeps_the_newest_and_followers_see_what_follows() {
        let ring = EventRing::new(3);
        for i in 0..5 {
            ring.push("drop", format!("e{i}"), json!({ "i": i }));
        }
        let (all, _) = ring.subscribe(None);
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(ring.subscribe(Some(4)).0.len(), 1);
        let (backlog, rx) = ring.subscribe(Some(4));
        assert_eq!(backlog[0].summary, "e4");
        ring.push("sa_installed", "new".into(), json!({}));
        let next = rx.try_recv().expect("live event");
        assert_eq!((next.seq, next.kind.as_str()), (6, "sa_installed"));
    }

    #[test]
    fn a_follower_that_falls_behind_is_cut_off_not_waited_for() {
        let ring = EventRing::new(8);
        let (_, rx) = ring.subscribe(None);
        for i in 0..SUBSCRIBER_BACKLOG + 10 {
            ring.push("drop", format!("{i}"), json!(null));
        }
        let got = rx.try_iter().count();
        assert_eq!(got, SUBSCRIBER_BACKLOG);
        assert!(rx.try_recv().is_err(), "disconnected after overflow");
    }
}
