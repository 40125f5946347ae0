//! IKE output held back until the data plane has installed the SAs it announces.
//!
//! A responder's IKE_AUTH or CREATE_CHILD_SA answer lets the peer send on the new
//! CHILD_SA at once, and an initiator's Delete of a rekeyed pair moves the peer onto the
//! new one: the SAs must be in the data plane before those messages leave, or the
//! peer's first ESP on them is dropped for an unknown SPI. A busy worker runs its
//! commands between batches, so "sent to the worker" is not "installed". The keying
//! thread therefore opens a fence after queueing installs: the owning workers each
//! answer once they have carried out everything sent before it, and what the keying
//! thread transmits from then on waits here, in order, until every fence before it is
//! answered (or its deadline passes: a stuck worker must not silence IKE).
//!
//! Sans-IO: the keying thread feeds it answers and the clock, and sends what it
//! releases.

use std::collections::VecDeque;
use std::time::Instant;

/// One fence: the answers it still waits for, until when, and the sequence number of
/// the first item queued behind it.
#[derive(Debug)]
struct Fence {
    token: u64,
    remaining: usize,
    deadline: Instant,
    start: u64,
}

/// Items (IKE datagrams) in sending order, held behind open fences.
#[derive(Debug)]
pub struct InstallFence<T> {
    held: VecDeque<T>,
    /// Sequence number of `held[0]`.
    base: u64,
    fences: VecDeque<Fence>,
    next_token: u64,
}

impl<T> Default for InstallFence<T> {
    fn default() -> Self {
        InstallFence {
            held: VecDeque::new(),
            base: 0,
            fences: VecDeque::new(),
            next_token: 1,
        }
    }
}

impl<T> InstallFence<T> {
    /// Opens a fence that `answers` answers close, or `deadline`; what is pushed from now
    /// on waits for it. Returns the token the answers carry.
    pub fn open(&mut self, answers: usize, deadline: Instant) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        if answers > 0 {
            self.fences.push_back(Fence {
                token,
                remaining: answers,
                deadline,
                start: self.base + self.held.len() as u64,
            });
        }
        token
    }

    /// Queues `item` behind the open fences; gives it back when none is open and nothing
    /// waits (send it now).
    pub fn push(&mut self, item: T) -> Option<T> {
        if self.fences.is_empty() && self.held.is_empty() {
            return Some(item);
        }
        self.held.push_back(item);
        None
    }

    /// One answer for the fence `token` (an unknown or late one is ignored).
    pub fn answered(&mut self, token: u64) {
        if let Some(f) = self.fences.iter_mut().find(|f| f.token == token) {
            f.remaining = f.remaining.saturating_sub(1);
        }
    }

    /// Closes the fences whose deadline is past; how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut n = 0;
        for f in self.fences.iter_mut().filter(|f| f.remaining > 0) {
            if f.deadline <= now {
                f.remaining = 0;
                n += 1;
            }
        }
        n
    }

    /// The earliest deadline of an open fence.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.fences
            .iter()
            .filter(|f| f.remaining > 0)
            .map(|f| f.deadline)
            .min()
    }

    /// What no open fence holds back any more, in order.
    pub fn release(&mut self) -> impl Iterator<Item = T> + '_ {
        while self.fences.front().is_some_and(|f| f.remaining == 0) {
            self.fences.pop_front();
        }
        let limit = self
            .fences
            .front()
            .map_or(self.base + self.held.len() as u64, |f| f.start);
        let n = (limit - self.base) as usize;
        self.base = limit;
        self.held.drain(..n)
    }

    /// Everything held, fences or not (the keying thread stops).
    pub fn drain_all(&mut self) -> impl Iterator<Item = T> + '_ {
        self.fences.clear();
        self.base += self.held.len() as u64;
        self.held.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    #[test]
    fn nothing_waits_without_a_fence() {
        let mut f = InstallFence::default();
        assert_eq!(f.push(1), Some(1));
        assert_eq!(f.release().count(), 0);
    }

    #[test]
    fn what_follows_a_fence_waits_for_all_its_answers_in_order() {
        let t0 = Instant::now();
        let mut f = InstallFence::default();
        let a = f.open(2, t0 + Duration::from_millis(100));
        assert_eq!(f.push("auth response"), None);
        assert_eq!(f.push("later"), None);
        f.answered(a);
        assert_eq!(f.release().count(), 0, "one worker has not answered");
        f.answered(a);
        assert_eq!(f.release().collect::<Vec<_>>(), ["auth response", "later"]);
        assert_eq!(f.push("free"), Some("free"));
    }

    #[test]
    fn a_later_fence_holds_only_what_follows_it() {
        let t0 = Instant::now();
        let mut f = InstallFence::default();
        let a = f.open(1, t0 + Duration::from_millis(100));
        f.push(1);
        let b = f.open(1, t0 + Duration::from_millis(100));
        f.push(2);
        f.answered(b);
        assert_eq!(
            f.release().count(),
            0,
            "1 still waits for a, and 2 behind it"
        );
        f.answered(a);
        assert_eq!(f.release().collect::<Vec<_>>(), [1, 2]);
        let c = f.open(1, t0 + Duration::from_millis(100));
        f.push(3);
        let _d = f.open(1, t0 + Duration::from_millis(100));
        f.push(4);
        f.answered(c);
        assert_eq!(f.release().collect::<Vec<_>>(), [3], "4 waits for d");
    }

    #[test]
    fn a_fence_nobody_answers_opens_at_its_deadline() {
        let t0 = Instant::now();
        let mut f = InstallFence::default();
        f.open(1, t0 + Duration::from_millis(100));
        f.push(1);
        assert_eq!(f.next_deadline(), Some(t0 + Duration::from_millis(100)));
        assert_eq!(f.expire(t0 + Duration::from_millis(99)), 0);
        assert_eq!(f.release().count(), 0);
        assert_eq!(f.expire(t0 + Duration::from_millis(100)), 1);
        assert_eq!(f.release().collect::<Vec<_>>(), [1]);
        assert_eq!(f.next_deadline(), None);
        f.answered(12345);
        assert_eq!(f.open(0, t0), 2, "no answers to wait for: nothing held");
        assert_eq!(f.push(2), Some(2));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Open(usize),
        Push,
        Answer(usize),
        Expire,
    }

    proptest! {
        /// Against a reference that re-derives from the whole history what may have
        /// gone: items go out once each, in order, and an item goes out only once every
        /// fence opened before it was answered in full or expired.
        #[test]
        fn releases_in_order_exactly_what_no_open_fence_holds(
            ops in prop::collection::vec(prop_oneof![
                (1usize..3).prop_map(Op::Open),
                Just(Op::Push),
                (0usize..8).prop_map(Op::Answer),
                Just(Op::Expire),
            ], 0..60)
        ) {
            let t0 = Instant::now();
            let mut f = InstallFence::default();
            let mut fences: Vec<(u64, usize)> = Vec::new(); // token, answers still due
            let mut items: Vec<Vec<usize>> = Vec::new(); // per item: indices of fences before it
            let mut out = Vec::new();
            for op in ops {
                match op {
                    Op::Open(n) => {
                        let t = f.open(n, t0 + Duration::from_secs(1));
                        fences.push((t, n));
                    }
                    Op::Push => {
                        let id = items.len();
                        items.push((0..fences.len()).collect());
                        if let Some(x) = f.push(id) {
                            out.push(x);
                        }
                    }
                    Op::Answer(i) => {
                        if let Some(fe) = fences.get_mut(i) {
                            f.answered(fe.0);
                            fe.1 = fe.1.saturating_sub(1);
                        }
                    }
                    Op::Expire => {
                        f.expire(t0 + Duration::from_secs(2));
                        for fe in &mut fences {
                            fe.1 = 0;
                        }
                    }
                }
                out.extend(f.release());
                // Reference: the longest prefix of items whose fences are all closed.
                let free = items
                    .iter()
                    .take_while(|before| before.iter().all(|&i| fences[i].1 == 0))
                    .count();
                prop_assert_eq!(&out, &(0..free).collect::<Vec<_>>());
            }
        }
    }
}
