//! The built-in IPsec callouts as the engine calls them while it arbitrates
//! (`FWPM_CALLOUT_IPSEC_*`, spec §3), and the field values a flow supplies.
//!
//! The callouts here answer PERMIT and remember which filter called them and with what
//! context; the caller then finishes the callout's work against what it knows about the
//! packet (clear or on which SA). That is the same decision as a callout that blocked by
//! itself would give: a terminating callout ends its sublayer either way, and across
//! sublayers a block wins over any permit (a callout block after a hard permit is a veto,
//! which wins too). Answering PERMIT keeps one classification per flow cacheable while the
//! SA a packet arrives on varies.

use std::net::IpAddr;
use std::sync::Arc;

use palisade_filter::catalog::Record;
use palisade_filter::guids as g;
use palisade_filter::layer::LayerKind;
use palisade_filter::policy::ProviderContextPolicy;
use palisade_filter::value::condition_flag;
use palisade_filter::{
    CalloutCall, CalloutVerdict, Callouts, Classification, Condition, Decision, Engine, Field,
    FieldValues, Layer, ProviderContext, Scalar, Snapshot, Token, Value,
};

use super::Flow;

/// Which IPsec callout a filter called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CalloutKind {
    /// OUTBOUND_TRANSPORT_V4/V6: protect with a transport-mode SA.
    OutboundTransport,
    /// OUTBOUND_TUNNEL_V4/V6: protect with a tunnel-mode SA.
    OutboundTunnel,
    /// INBOUND_TRANSPORT_V4/V6: must have arrived on a transport-mode SA.
    InboundTransport,
    /// INBOUND_TUNNEL_V4/V6: must have arrived through the tunnel.
    InboundTunnel,
    /// INBOUND_INITIATE_SECURE_V4/V6 (ALE receive/accept): the connection must arrive
    /// secured.
    InboundInitiateSecure,
    /// ALE_CONNECT_V4/V6: policy modifiers for an outbound connection.
    AleConnect,
}

impl CalloutKind {
    /// The callout, if `key` is one of ours and it belongs at the layer.
    fn of(key: uuid::Uuid, layer: Layer) -> Option<CalloutKind> {
        use CalloutKind as K;
        let (kind, at) = match key {
            k if k == g::FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4
                || k == g::FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V6 =>
            {
                (K::OutboundTransport, LayerKind::OutboundTransport)
            }
            k if k == g::FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V4
                || k == g::FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V6 =>
            {
                (K::OutboundTunnel, LayerKind::OutboundTransport)
            }
            k if k == g::FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4
                || k == g::FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V6 =>
            {
                (K::InboundTransport, LayerKind::InboundTransport)
            }
            k if k == g::FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_V4
                || k == g::FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_V6 =>
            {
                (K::InboundTunnel, LayerKind::InboundTransport)
            }
            k if k == g::FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V4
                || k == g::FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V6 =>
            {
                (K::InboundInitiateSecure, LayerKind::AleAuthRecvAccept)
            }
            k if k == g::FWPM_CALLOUT_IPSEC_ALE_CONNECT_V4
                || k == g::FWPM_CALLOUT_IPSEC_ALE_CONNECT_V6 =>
            {
                (K::AleConnect, LayerKind::AleAuthConnect)
            }
            _ => return None,
        };
        (layer.kind() == at).then_some(kind)
    }
}

/// An IPsec callout that took part in a classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    /// Which callout.
    pub kind: CalloutKind,
    /// The filter that called it.
    pub filter_id: u64,
    /// The filter's raw context (`FWPM_CONTEXT_*` modifiers); 0 without one.
    pub raw_context: u64,
    /// For the tunnel callouts: the tunnel policy's outer addresses (local, remote).
    pub tunnel: Option<(IpAddr, IpAddr)>,
}

/// The callouts registered while classifying one flow: the first IPsec callout called
/// (sublayers are walked highest first, so that is the one that decided for IPsec) is
/// remembered.
#[derive(Debug, Default)]
pub(crate) struct IpsecCallouts {
    pub hit: Option<Hit>,
}

impl Callouts for IpsecCallouts {
    fn classify(&mut self, call: &CalloutCall<'_>, _: &FieldValues) -> Option<CalloutVerdict> {
        // Not ours, or at a layer it does not belong to: unregistered, so the filter
        // acts as WFP says (block, or permit with PERMIT_IF_CALLOUT_UNREGISTERED).
        let kind = CalloutKind::of(call.callout, call.layer)?;
        let tunnel = match kind {
            CalloutKind::OutboundTunnel | CalloutKind::InboundTunnel => {
                // A tunnel filter without a tunnel policy cannot say where the tunnel
                // goes: the callout fails closed.
                let Some(endpoints) = tunnel_endpoints(call.provider_context) else {
                    return Some(CalloutVerdict::BLOCK);
                };
                Some(endpoints)
            }
            _ => None,
        };
        if self.hit.is_none() {
            self.hit = Some(Hit {
                kind,
                filter_id: call.filter_id,
                raw_context: call.raw_context.unwrap_or(0),
                tunnel,
            });
        }
        Some(CalloutVerdict::PERMIT)
    }
}

/// The outer addresses (local, remote) of a tunnel policy.
fn tunnel_endpoints(context: Option<&Arc<Record<ProviderContext>>>) -> Option<(IpAddr, IpAddr)> {
    context.and_then(|c| match &c.object.policy {
        ProviderContextPolicy::Tunnel { policy, .. } => Some((
            policy.tunnel_endpoints.local_address,
            policy.tunnel_endpoints.remote_address,
        )),
        _ => None,
    })
}

/// The outcome of classifying a flow at one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Permit or block.
    pub decision: Decision,
    /// The deciding filter's id.
    pub decider: Option<u64>,
    /// The IPsec callout that took part, if any.
    pub hit: Option<Hit>,
}

impl Verdict {
    /// The IPsec callout's hit, if one was called and the flow was permitted.
    pub fn permitted_hit(&self) -> Option<Hit> {
        match self.decision {
            Decision::Permit => self.hit,
            Decision::Block => None,
        }
    }
}

/// With the index of one snapshot, or by trying every filter (the reference).
#[derive(Clone, Copy)]
pub(crate) enum Classifier<'a> {
    /// `Snapshot::classify`: the data path.
    Indexed(&'a Snapshot),
    /// `Engine::classify_naive`: what the index and the cache are tested against.
    Naive(&'a Engine),
}

impl Classifier<'_> {
    /// For a later fragment, whose ports are unknown: the first transport or tunnel
    /// callout filter, in arbitration order, that matches the flow when its port
    /// conditions are left out, unless the filter that decided `v` comes before it in
    /// its sublayer (an exemption or block that outranks it). `None` when such a filter
    /// would not have changed anything (it called its callout, or matched nothing).
    pub fn ipsec_ignoring_ports(
        &self,
        layer: Layer,
        values: &FieldValues,
        v: &Verdict,
    ) -> Option<Hit> {
        if v.hit.is_some() {
            return None;
        }
        let held;
        let snapshot: &Snapshot = match self {
            Classifier::Indexed(s) => s,
            Classifier::Naive(e) => {
                held = e.snapshot();
                &held
            }
        };
        let filters = &snapshot.layer(layer).filters;
        let decider = v
            .decider
            .and_then(|id| filters.iter().position(|f| f.id() == id));
        for (pos, f) in filters.iter().enumerate() {
            let Some(kind) = f.action().callout().and_then(|k| CalloutKind::of(k, layer)) else {
                continue;
            };
            if !matches!(
                kind,
                CalloutKind::OutboundTransport
                    | CalloutKind::OutboundTunnel
                    | CalloutKind::InboundTransport
                    | CalloutKind::InboundTunnel
            ) || !matches_ignoring_ports(f.conditions(), values)
            {
                continue;
            }
            let outranked = decider.is_some_and(|d| {
                d < pos && filters.get(d).is_some_and(|df| df.sublayer == f.sublayer)
            });
            if outranked {
                return None;
            }
            return Some(Hit {
                kind,
                filter_id: f.id(),
                raw_context: f.raw_context().unwrap_or(0),
                tunnel: tunnel_endpoints(f.provider_context.as_ref()),
            });
        }
        None
    }

    pub fn classify(&self, layer: Layer, values: &FieldValues) -> Verdict {
        let mut callouts = IpsecCallouts::default();
        let c: Classification = match self {
            Classifier::Indexed(s) => s.classify(layer, values, &mut callouts),
            Classifier::Naive(e) => e.classify_naive(layer, values, &mut callouts),
        };
        Verdict {
            decision: c.decision,
            decider: c.decider.map(|d| d.filter_id),
            hit: callouts.hit,
        }
    }
}

/// Whether every group of conditions (consecutive conditions on one field, ORed) other
/// than those on ports has a match.
fn matches_ignoring_ports(conditions: &[Condition], values: &FieldValues) -> bool {
    conditions
        .chunk_by(|a, b| a.field == b.field)
        .filter(|g| !matches!(g[0].field, Field::IpLocalPort | Field::IpRemotePort))
        .all(|g| g.iter().any(|c| c.matches(values.get(c.field))))
}

/// Which layer of a pair, by the flow's family.
pub(crate) fn layer(flow: &Flow, v4: Layer, v6: Layer) -> Layer {
    match flow.family {
        palisade_filter::Family::V4 => v4,
        palisade_filter::Family::V6 => v6,
    }
}

fn scalar(addr: IpAddr) -> Scalar {
    match addr {
        IpAddr::V4(a) => Scalar::V4(a),
        IpAddr::V6(a) => Scalar::V6(a),
    }
}

/// Writes the flow's fields into `values`, clearing what the flow does not supply, so
/// one `FieldValues` serves every packet without allocating. `peer` is the token of the
/// peer's authenticated identities, for the ALE receive/accept layer.
pub(crate) fn fill(
    values: &mut FieldValues,
    flow: &Flow,
    outbound: bool,
    secured: bool,
    peer: Option<&[String]>,
) {
    values.set(Field::IpLocalAddress, scalar(flow.local));
    values.set(Field::IpRemoteAddress, scalar(flow.remote));
    values.set(Field::IpProtocol, Scalar::U8(flow.protocol));
    if flow.has_ports() {
        values.set(Field::IpLocalPort, Scalar::U16(flow.local_port));
        values.set(Field::IpRemotePort, Scalar::U16(flow.remote_port));
    } else {
        values.unset(Field::IpLocalPort);
        values.unset(Field::IpRemotePort);
    }
    let kind = Scalar::U8(flow.destination_type(outbound));
    values.set(Field::IpLocalAddressType, kind);
    if outbound {
        values.set(Field::IpDestinationAddressType, kind);
    } else {
        values.unset(Field::IpDestinationAddressType);
    }
    let mut flags = 0;
    if secured {
        flags |= condition_flag::IS_IPSEC_SECURED;
    }
    if flow.later_fragment {
        flags |= condition_flag::IS_FRAGMENT;
    }
    values.set(Field::Flags, Scalar::U32(flags));
    match peer {
        Some(names) => values.set(
            Field::AleRemoteMachineId,
            Value::Token(Token::peer(names.iter().cloned())),
        ),
        None => values.unset(Field::AleRemoteMachineId),
    }
}
