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
    /// The entry last looked up or inserted: the segments of one TSO aggregate or one
    /// GRO receive come one after another, and comparing a flow costs less than
    /// hashing it (`hash_one` was still 1.5 % of a busy data plane).
    last: Option<(Direction, Flow, V)>,
}

impl<V: Copy> FlowCache<V> {
    pub fn new(bound: usize) -> Self {
        FlowCache {
            map: HashMap::with_capacity_and_hasher(bound.min(4096), RandomState::new()),
            bound: bound.max(1),
            last: None,
        }
    }

    #[inline]
    pub fn get(&mut self, direction: Direction, flow: &Flow) -> Option<V> {
        if let Some((d, f, v)) = &self.last
            && *d == direction
            && f == flow
        {
            return Some(*v);
        }
        let v = self.map.get(&(direction, *flow)).copied()?;
        self.last = Some((direction, *flow, v));
        Some(v)
    }

    pub fn insert(&mut self, direction: Direction, flow: &Flow, value: V) {
        if self.map.len() >= self.bound {
            self.map.clear();
        }
        self.map.insert((direction, *flow), value);
        self.last = Some((direction, *flow, value));
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.last = None;
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn flow(n: u8) -> Flow {
        Flow {
            family: palisade_filter::Family::V4,
            local: "10.0.0.1".parse().expect("addr"),
            remote: std::net::IpAddr::from([10, 0, 1, n % 4]),
            protocol: 6,
            local_port: 1000,
            remote_port: u16::from(n / 4),
            tcp_syn: false,
            later_fragment: false,
        }
    }

    proptest! {
        /// The remembered last entry never answers other than the map would: against a
        /// plain map with the same bound and clearing.
        #[test]
        fn answers_as_a_plain_bounded_map(
            ops in prop::collection::vec((0u8..4, 0u8..16, any::<bool>(), any::<u16>()), 0..200)
        ) {
            let mut cache = FlowCache::new(5);
            let mut reference: HashMap<(Direction, Flow), u16> = HashMap::new();
            for (op, f, outbound, value) in ops {
                let d = if outbound { Direction::Outbound } else { Direction::InboundProtected };
                let f = flow(f);
                match op {
                    0 | 1 => prop_assert_eq!(cache.get(d, &f), reference.get(&(d, f)).copied()),
                    2 => {
                        if reference.len() >= 5 {
                            reference.clear();
                        }
                        reference.insert((d, f), value);
                        cache.insert(d, &f, value);
                    }
                    _ => {
                        reference.clear();
                        cache.clear();
                    }
                }
                prop_assert_eq!(cache.len(), reference.len());
            }
        }
    }
}
