//! Decisions cached per flow and direction, for one engine snapshot. A hit costs a hash
//! and a copy; the map never grows past its bound (it is cleared when full, which only
//! costs re-classifications).

use std::collections::HashMap;

use ahash::RandomState;

use super::Flow;

/// Which of the callout's questions the entry answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Direction {
    /// `outbound`.
    Outbound,
    /// `inbound_clear`.
    InboundClear,
    /// `inbound_protected`.
    InboundProtected,
}

/// A bounded map from (direction, flow) to a `Copy` decision.
#[derive(Debug)]
pub(crate) struct FlowCache<V> {
    /// Keyed per process (flows come from the network), and fast: a lookup per packet.
    map: HashMap<(Direction, Flow), V, RandomState>,
    bound: usize,
}

impl<V: Copy> FlowCache<V> {
    pub fn new(bound: usize) -> Self {
        FlowCache {
            map: HashMap::with_capacity_and_hasher(bound.min(4096), RandomState::new()),
            bound: bound.max(1),
        }
    }

    #[inline]
    pub fn get(&self, direction: Direction, flow: &Flow) -> Option<V> {
        self.map.get(&(direction, *flow)).copied()
    }

    pub fn insert(&mut self, direction: Direction, flow: &Flow, value: V) {
        if self.map.len() >= self.bound {
            self.map.clear();
        }
        self.map.insert((direction, *flow), value);
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
}
