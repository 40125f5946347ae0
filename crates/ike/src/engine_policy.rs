//! [`PolicyLookup`] over the filtering engine (spec §1, §4.1, §6): the
//! keying module classifies at IKEEXT for the main-mode policy and at IPSEC
//! for the quick-mode policy, and uses the provider context of the filter
//! that decided. Arbitration (weights, sublayers, the most specific filter
//! first) is the engine's; this file only builds the field values and reads
//! the answer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use palisade_filter::policy::{
    KeyingModule, ProviderContextPolicy, TrafficSelector, TrafficSelectorPolicy,
};
use palisade_filter::{
    Classification, ConditionValue, Decision, Engine, Field, FieldValues, Filter, Layer, MatchType,
    NoCallouts, Scalar, Snapshot,
};

use crate::credentials::Credentials;
use crate::policy::{ChildPolicy, IkePolicy, PolicyLookup, PolicyOrigin, Traffic};

/// The keying module's view of a [`palisade_filter::Engine`]: IKEv2
/// main-mode policy from `IKEEXT_V4/V6`, quick-mode policy from
/// `IPSEC_V4/V6`.
///
/// A lookup finds nothing when no filter matches, the deciding filter
/// blocks or has no provider context, or the context is not an IKEv2 one
/// (`IKEV2_MM`, `IKEV2_QM_TRANSPORT`, `IKEV2_QM_TUNNEL`): the filter that
/// wins arbitration decides, and a policy for IKEv1 or AuthIP is not one
/// this module can use.
///
/// A main-mode policy authenticating with certificates names PEM files the
/// library never reads: the daemon loads them and registers the result
/// for the provider context with [`EnginePolicy::with_credentials`].
#[derive(Debug, Clone)]
pub struct EnginePolicy {
    engine: Engine,
    credentials: HashMap<uuid::Uuid, Arc<Credentials>>,
}

impl EnginePolicy {
    /// Looks policy up in `engine` (cloning an engine shares it, so filters
    /// added later are seen by the next lookup).
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            credentials: HashMap::new(),
        }
    }

    /// Certificate credentials for the main-mode provider context
    /// `context`: every IKE SA whose policy comes from it uses them.
    pub fn with_credentials(mut self, context: uuid::Uuid, credentials: Arc<Credentials>) -> Self {
        self.credentials.insert(context, credentials);
        self
    }
}

fn scalar(addr: IpAddr) -> Scalar {
    match addr {
        IpAddr::V4(a) => Scalar::V4(a),
        IpAddr::V6(a) => Scalar::V6(a),
    }
}

/// The deciding filter and its provider context's policy, if it permits.
fn decided(c: &Classification) -> Option<(PolicyOrigin, &ProviderContextPolicy)> {
    if c.decision != Decision::Permit {
        return None;
    }
    let decider = c.decider?;
    let context = c.provider_context.as_ref()?;
    let origin = PolicyOrigin {
        filter_id: decider.filter_id,
        filter_key: decider.filter_key,
        provider_context: context.object.key,
    };
    Some((origin, &context.object.policy))
}

impl PolicyLookup for EnginePolicy {
    fn main_mode(&self, local: IpAddr, remote: IpAddr) -> Option<IkePolicy> {
        let layer = if remote.is_ipv4() {
            Layer::IkeextV4
        } else {
            Layer::IkeextV6
        };
        let values = FieldValues::new()
            .with(Field::IpLocalAddress, scalar(local))
            .with(Field::IpRemoteAddress, scalar(remote));
        let found = self.engine.classify(layer, &values, &mut NoCallouts);
        let (origin, policy) = decided(&found)?;
        let ProviderContextPolicy::MainMode {
            module: KeyingModule::Ikev2,
            policy,
        } = policy
        else {
            return None;
        };
        let mut ike = IkePolicy::new(policy.clone());
        if let Some(c) = self.credentials.get(&origin.provider_context) {
            ike = ike.with_certificates(Arc::clone(c));
        }
        ike.origin = Some(origin);
        Some(ike)
    }

    fn quick_mode(&self, local: IpAddr, remote: IpAddr, traffic: &Traffic) -> Option<ChildPolicy> {
        let layer = if remote.is_ipv4() {
            Layer::IpsecV4
        } else {
            Layer::IpsecV6
        };
        let (l, r) = (&traffic.local, &traffic.remote);
        let mut values = FieldValues::new()
            .with(Field::IpLocalAddress, scalar(l.start_address))
            .with(Field::IpRemoteAddress, scalar(r.start_address));
        // A selector of one protocol and one port is a flow; wider ones
        // leave the field unset, so only filters without a condition on it
        // match.
        let protocol = if l.protocol_id == r.protocol_id {
            l.protocol_id
        } else {
            0
        };
        if protocol != 0 {
            values.set(Field::IpProtocol, Scalar::U8(protocol));
        }
        if l.port_start == l.port_end {
            values.set(Field::IpLocalPort, Scalar::U16(l.port_start));
        }
        if r.port_start == r.port_end {
            values.set(Field::IpRemotePort, Scalar::U16(r.port_start));
        }
        // One snapshot for the classification and the filter's conditions,
        // so that a commit in between cannot mix two policies.
        let snapshot = self.engine.snapshot();
        let found = snapshot.classify(layer, &values, &mut NoCallouts);
        let (origin, policy) = decided(&found)?;
        let mut child = match policy {
            ProviderContextPolicy::Transport {
                module: KeyingModule::Ikev2,
                policy,
            } => ChildPolicy::transport(policy.clone(), local, remote),
            ProviderContextPolicy::Tunnel {
                module: KeyingModule::Ikev2,
                policy,
            } => {
                let (ls, rs) = match covering(&policy.traffic_selector_policies, traffic) {
                    Some(p) => (
                        p.local_traffic_selectors.clone(),
                        p.remote_traffic_selectors.clone(),
                    ),
                    None => filter_selectors(&snapshot, origin.filter_id, local, remote),
                };
                ChildPolicy::tunnel(policy.clone(), ls, rs)
            }
            _ => return None,
        };
        child.origin = Some(origin);
        Some(child)
    }
}

/// The tunnel's traffic-selector policy that carries `traffic`, or the
/// first one if none covers it (the peer then narrows or refuses).
fn covering<'a>(
    policies: &'a [TrafficSelectorPolicy],
    traffic: &Traffic,
) -> Option<&'a TrafficSelectorPolicy> {
    policies
        .iter()
        .find(|p| {
            p.local_traffic_selectors
                .iter()
                .any(|s| contains(s, &traffic.local))
                && p.remote_traffic_selectors
                    .iter()
                    .any(|s| contains(s, &traffic.remote))
        })
        .or_else(|| policies.first())
}

fn contains(outer: &TrafficSelector, inner: &TrafficSelector) -> bool {
    let protocol = outer.protocol_id == 0 || outer.protocol_id == inner.protocol_id;
    protocol
        && outer.port_start <= inner.port_start
        && inner.port_end <= outer.port_end
        && same_family(outer.start_address, inner.start_address)
        && outer.start_address <= inner.start_address
        && inner.end_address <= outer.end_address
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// A tunnel policy without traffic-selector policies carries what its
/// filter matches (`trafficSelectorPolicies`: "empty means the tunnel
/// filters' conditions decide"): the filter's address conditions become
/// the selectors, and a side without one is any address of the family.
fn filter_selectors(
    snapshot: &Snapshot,
    filter_id: u64,
    local: IpAddr,
    remote: IpAddr,
) -> (Vec<TrafficSelector>, Vec<TrafficSelector>) {
    let filter = snapshot.catalog.filter_by_id(filter_id);
    let side = |field, family: IpAddr| {
        let from_filter: Vec<TrafficSelector> = filter
            .map(|f| selectors(&f.object, field))
            .unwrap_or_default();
        if from_filter.is_empty() {
            vec![any(family)]
        } else {
            from_filter
        }
    };
    (
        side(Field::IpLocalAddress, local),
        side(Field::IpRemoteAddress, remote),
    )
}

/// The address ranges of `filter`'s equality conditions on `field`
/// (alternatives, as consecutive conditions on one field are ORed).
fn selectors(filter: &Filter, field: Field) -> Vec<TrafficSelector> {
    filter
        .conditions
        .iter()
        .filter(|c| c.field == field && c.match_type == MatchType::Equal)
        .filter_map(|c| range(&c.value))
        .map(|(start, end)| TrafficSelector::range(start, end))
        .collect()
}

fn address(s: &Scalar) -> Option<IpAddr> {
    match s {
        Scalar::V4(a) => Some(IpAddr::V4(*a)),
        Scalar::V6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

/// First and last address of a condition value.
fn range(value: &ConditionValue) -> Option<(IpAddr, IpAddr)> {
    match value {
        ConditionValue::Scalar(s) => address(s).map(|a| (a, a)),
        ConditionValue::Range { low, high } => Some((address(low)?, address(high)?)),
        ConditionValue::Prefix { addr, len } => {
            let a = address(addr)?;
            Some(prefix_range(a, *len))
        }
        _ => None,
    }
}

fn prefix_range(addr: IpAddr, len: u8) -> (IpAddr, IpAddr) {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let host = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            let start = bits & !host;
            (IpAddr::V4(start.into()), IpAddr::V4((start | host).into()))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let host = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            let start = bits & !host;
            (IpAddr::V6(start.into()), IpAddr::V6((start | host).into()))
        }
    }
}

/// Every address of `family`'s family.
fn any(family: IpAddr) -> TrafficSelector {
    let (start, end) = prefix_range(family, 0);
    TrafficSelector::range(start, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic_selector::host;

    #[test]
    fn prefixes_become_ranges() {
        let a: IpAddr = "10.1.2.3".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let (s, e) = prefix_range(a, 16);
        assert_eq!(s, IpAddr::from([10, 1, 0, 0]));
        assert_eq!(e, IpAddr::from([10, 1, 255, 255]));
        let (s, e) = prefix_range(a, 32);
        assert_eq!((s, e), (a, a));
        assert_eq!(
            any(a),
            TrafficSelector::range([0u8; 4].into(), [255u8; 4].into())
        );
        assert_eq!(host(a), TrafficSelector::range(a, a));
    }
}
