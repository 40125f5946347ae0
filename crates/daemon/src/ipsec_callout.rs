//! The IPsec callouts of the data plane (spec §3): the filter engine's view of each
//! packet the daemon handles, as WFP's built-in IPsec callouts give it. Sans-IO: flows
//! in, decisions out; the daemon owns the TUN, the sockets and the SAD.
//!
//! - [`IpsecCallout::outbound`] classifies at OUTBOUND_TRANSPORT_V4/V6. A filter calling
//!   `FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_*` or `..._OUTBOUND_TUNNEL_*` means protect
//!   (transport mode; or tunnel mode between the endpoints of the filter's tunnel
//!   provider context); `NEGOTIATE_DISCOVER` in its raw context (negotiation discovery)
//!   allows clear text while no SA exists. A connection start ([`Flow::connection_start`]:
//!   a TCP SYN, or any UDP, ICMP or other packet without a handshake), and every protected
//!   flow, is also classified at ALE_AUTH_CONNECT: a block there blocks the start, and
//!   `FWPM_CALLOUT_IPSEC_ALE_CONNECT_*` with `REQUIRE_IPSEC_ENCRYPTION` (guaranteed
//!   encryption) marks the protection as needing an encrypting SA and withdraws the
//!   clear fallback. A flow the transport layer exempts stays clear.
//! - [`IpsecCallout::inbound_clear`] classifies a clear-text packet at
//!   INBOUND_TRANSPORT_V4/V6: an inbound transport or tunnel callout means the packet
//!   should have been protected, so it is blocked, except that with
//!   `PERSIST_CONNECTION_SECURITY` (negotiation discovery) clear text is allowed until
//!   the flow has once arrived protected: after that, clear packets of that flow (same
//!   addresses, protocol and ports) are blocked; callouts made by
//!   [`IpsecCallout::share`] (one per thread) share that memory. The
//!   `ndAllowClearTimeoutSeconds` window
//!   of WFP is not kept (that needs a clock). A connection start is then classified at
//!   ALE_AUTH_RECV_ACCEPT: a block there blocks it, and so does
//!   `INBOUND_INITIATE_SECURE` (negotiation discovery with `inbound = "require"`,
//!   guaranteed encryption, remote identity authorization) when the transport layer put
//!   the flow under an IPsec callout (an exemption there exempts the connection too).
//!   Without a handshake a reply looks like a connection start: a packet of a UDP or
//!   ICMP flow we started (sent through [`IpsecCallout::outbound`]) is not blocked at
//!   ALE_AUTH_RECV_ACCEPT, as WFP lets replies in on the ALE flow their connect made.
//! - [`IpsecCallout::inbound_protected`] checks a decapsulated packet: the SA's traffic
//!   selectors must cover it; a transport callout demands a transport-mode SA, a tunnel
//!   callout a tunnel-mode SA between its policy's endpoints; a connection start is
//!   classified at ALE_AUTH_RECV_ACCEPT (replies as above) with the peer's authenticated
//!   identities as
//!   `ALE_REMOTE_MACHINE_ID`, and `REQUIRE_IPSEC_ENCRYPTION` needs an encrypting SA.
//!   Protected packets where policy asks for none (exemptions, no filter) are accepted.
//! - [`IpsecCallout::scopes`]: what to route into the TUN and which IKE peers exist.
//!
//! At the ALE layers, ALE_USER_ID and ALE_APP_ID come from the owner of the flow's local
//! socket, where [`IpsecCallout::with_socket_owners`] says how to find it and a filter
//! there tests them (owners.rs); the naive reference paths leave them unset.
//!
//! Not handled: the IPFORWARD layer (forwarded packets read from the TUN are classified
//! at the transport layers, with their source as the local address: the compiled policy
//! gives both the same conditions); `SUPPRESS_NEGOTIATION` and the
//! `IPSEC_NO_ACQUIRE_INITIATE` filter flag. A UDP or ICMP flow a peer started is judged
//! at ALE_AUTH_RECV_ACCEPT per flow, not per socket: our answers to it are classified at
//! ALE_AUTH_CONNECT like flows of our own.
//!
//! Later fragments carry no ports: they are classified without them, and where an IPsec
//! filter would match them but for its port conditions, they are treated as that
//! filter says (outbound: blocked, not sent in clear, unless negotiation discovery;
//! inbound: judged by its callout). Reassembling first (conntrack before NFQUEUE) gives
//! the exact answer; this is the fail-closed one.

mod cache;
mod callouts;
mod flow;
mod flow_set;
mod owners;
mod sa_selectors;
mod scopes;

use std::net::IpAddr;
use std::sync::Arc;

use ahash::RandomState;

use palisade_filter::guids as g;
use palisade_filter::policy::TrafficSelector;
use palisade_filter::{Decision, Engine, FieldValues, Layer, Snapshot};
use palisade_ike::Traffic;

use cache::{Direction, FlowCache};
use callouts::{CalloutKind, Classifier, Verdict, fill, layer};
pub use flow::Flow;
use flow_set::FlowSet;
pub use owners::{LocalOwner, SocketOwners, SocketOwnersFactory};
use owners::{OwnerLookup, fill_owner};
pub use sa_selectors::SaSelectors;
pub use scopes::Scopes;

/// How many flows the caches and the sets of secured and started flows hold before they
/// are cleared.
pub const FLOW_CACHE_BOUND: usize = 65_536;

/// What to do with a packet we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    /// Send it unchanged (marked, so it does not come back into the TUN).
    Clear,
    /// Drop it.
    Block {
        /// The deciding filter, if one matched.
        filter_id: Option<u64>,
    },
    /// Send it through an SA; none yet: queue it and raise an Acquire.
    Protect(Protection),
    /// Drop it for now: a connection start whose socket's program is still being looked
    /// for off the data path; the connection's next packet is judged with it.
    Pending,
}

/// How a packet is to be protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protection {
    /// Transport, or tunnel between the policy's endpoints.
    pub mode: ProtectionMode,
    /// The IKE peer: the remote host, or the remote gateway.
    pub peer: IpAddr,
    /// Our IKE address: the packet's source, or our gateway address.
    pub local: IpAddr,
    /// The packet's selectors, for the Acquire (RFC 7296 §2.9: sent first in TSi/TSr).
    /// One address each side, the protocol, and one port each side; ICMP and protocols
    /// without ports (and later fragments) select every port.
    pub traffic: Traffic,
    /// The filter whose callout decided.
    pub filter_id: u64,
    /// Negotiation discovery (`NEGOTIATE_DISCOVER`): while no SA exists, or if IKE
    /// fails, the packet may go out in clear instead of waiting.
    pub clear_fallback: bool,
    /// Guaranteed encryption: only an SA that encrypts may carry the flow.
    pub require_encryption: bool,
}

/// Transport or tunnel mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtectionMode {
    /// ESP between the two hosts.
    Transport,
    /// ESP inside a new outer header between two gateways.
    Tunnel {
        /// Our outer address.
        local: IpAddr,
        /// The peer gateway's outer address.
        remote: IpAddr,
    },
}

/// What to do with a packet we receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// Deliver it.
    Permit,
    /// Drop it and count the reason.
    Block {
        /// The deciding filter, if one matched (none when the SA's selectors refused).
        filter_id: Option<u64>,
        /// Why, for counters and net events.
        reason: &'static str,
    },
}

/// Why inbound packets are dropped.
pub mod reason {
    /// A BLOCK filter (or a block from a callout that is not an IPsec one).
    pub const BLOCKED_BY_FILTER: &str = "blocked by filter";
    /// Clear text where an inbound transport callout demands IPsec.
    pub const CLEAR_WHERE_REQUIRED: &str = "clear text where policy requires IPsec";
    /// Clear text where an inbound tunnel callout demands the tunnel.
    pub const CLEAR_WHERE_TUNNEL: &str = "clear text where a tunnel policy requires IPsec";
    /// Negotiation discovery: the flow arrived protected before, and stays so.
    pub const CLEAR_AFTER_SECURED: &str = "clear text on a flow that arrived protected before";
    /// A clear connection start where ALE_AUTH_RECV_ACCEPT demands a secured one.
    pub const CLEAR_CONNECTION: &str = "clear connection where policy requires inbound IPsec";
    /// ALE_AUTH_RECV_ACCEPT blocked the connection.
    pub const CONNECTION_BLOCKED: &str = "inbound connection blocked by filter";
    /// Decapsulated, but outside the selectors of the SA it came on.
    pub const OUTSIDE_SELECTORS: &str = "outside the traffic selectors of its SA";
    /// Arrived on a tunnel-mode SA where policy demands transport mode.
    pub const WRONG_MODE: &str = "arrived on an SA of the wrong mode";
    /// Arrived on an SA that is not the tunnel its policy names.
    pub const WRONG_TUNNEL: &str = "arrived on an SA other than its policy's tunnel";
    /// Guaranteed encryption, over an SA that does not encrypt.
    pub const NOT_ENCRYPTED: &str = "connection requires encryption; its SA does not encrypt";
    /// A connection start whose socket's program is still being looked for (see
    /// [`super::Outbound::Pending`]).
    pub const PROGRAM_PENDING: &str = "connection start while its program is looked for";
}

/// The IPsec callouts over one engine, with a flow cache that follows its snapshots.
#[derive(Debug)]
pub struct IpsecCallout {
    engine: Engine,
    snapshot: Arc<Snapshot>,
    /// The engine's generation when `snapshot` was taken (or older).
    generation: u64,
    values: FieldValues,
    outbound_cache: FlowCache<Outbound>,
    inbound_cache: FlowCache<Verdict>,
    /// ALE_AUTH_RECV_ACCEPT's decisions.
    accept_cache: AcceptCache,
    /// Flows that arrived protected under `PERSIST_CONNECTION_SECURITY`, shared with
    /// the callouts made by [`IpsecCallout::share`].
    secured: FlowSet,
    /// UDP, ICMP and other flows without a handshake that we sent, shared likewise:
    /// their replies are not inbound connections.
    initiated: FlowSet,
    /// Who holds a flow's local socket (ALE_USER_ID, ALE_APP_ID); none: those fields
    /// stay unset.
    owners: Option<OwnerLookup>,
}

impl IpsecCallout {
    /// The callouts over `engine`'s current and future policy.
    pub fn new(engine: Engine) -> Self {
        let generation = engine.generation();
        let snapshot = engine.snapshot();
        IpsecCallout {
            engine,
            snapshot,
            generation,
            values: FieldValues::new(),
            outbound_cache: FlowCache::new(FLOW_CACHE_BOUND),
            inbound_cache: FlowCache::new(FLOW_CACHE_BOUND),
            accept_cache: AcceptCache::new(),
            secured: FlowSet::new(FLOW_CACHE_BOUND),
            initiated: FlowSet::new(FLOW_CACHE_BOUND),
            owners: None,
        }
    }

    /// With the owners of local sockets known (`factory` makes each thread's lookup),
    /// for filters with ALE_USER_ID or ALE_APP_ID conditions at the ALE layers.
    pub fn with_socket_owners(mut self, factory: SocketOwnersFactory) -> Self {
        self.owners = Some(OwnerLookup::new(factory, &self.snapshot));
        self
    }

    /// Callouts for another thread over the same engine: their own cache, and the same
    /// set of flows that arrived protected, so that negotiation discovery's "once
    /// secure, no clear" holds between the thread that decapsulates and the one that
    /// judges clear packets.
    pub fn share(&self) -> Self {
        let generation = self.engine.generation();
        let snapshot = self.engine.snapshot();
        let owners = self.owners.as_ref().map(|o| {
            let mut fresh = o.fresh();
            fresh.follow(&snapshot);
            fresh
        });
        IpsecCallout {
            engine: self.engine.clone(),
            snapshot,
            generation,
            values: FieldValues::new(),
            outbound_cache: FlowCache::new(FLOW_CACHE_BOUND),
            inbound_cache: FlowCache::new(FLOW_CACHE_BOUND),
            accept_cache: AcceptCache::new(),
            secured: self.secured.share(),
            initiated: self.initiated.share(),
            owners,
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Follows the engine to its latest snapshot, dropping cached decisions if it
    /// changed. Returns whether it did: then [`IpsecCallout::scopes`] may have changed
    /// too. Every query calls it.
    pub fn sync(&mut self) -> bool {
        let generation = self.engine.generation();
        if generation == self.generation {
            return false;
        }
        self.generation = generation;
        let now = self.engine.snapshot();
        if Arc::ptr_eq(&now, &self.snapshot) {
            return false;
        }
        self.snapshot = now;
        if let Some(o) = &mut self.owners {
            o.follow(&self.snapshot);
        }
        self.outbound_cache.clear();
        self.inbound_cache.clear();
        self.accept_cache.decisions.clear();
        true
    }

    /// How many decisions are cached (both directions).
    pub fn cached(&self) -> usize {
        self.outbound_cache.len() + self.inbound_cache.len()
    }

    /// What to do with a packet we send.
    pub fn outbound(&mut self, flow: &Flow) -> Outbound {
        self.sync();
        if let Some(cached) = self.outbound_cache.get(Direction::Outbound, flow) {
            return cached;
        }
        let (decided, settled) = outbound(
            Classifier::Indexed(&self.snapshot),
            &mut self.values,
            flow,
            self.owners.as_mut(),
        );
        if settled {
            self.outbound_cache
                .insert(Direction::Outbound, flow, decided);
        }
        // Once per flow and snapshot, as the cache misses: the set is bounded alike.
        if flow.connection_start() && !flow.tcp_syn {
            self.initiated.record(flow);
        }
        decided
    }

    /// What to do with a clear-text packet from the network.
    pub fn inbound_clear(&mut self, flow: &Flow) -> Inbound {
        self.sync();
        let verdict = match self.inbound_cache.get(Direction::InboundClear, flow) {
            Some(v) => v,
            None => {
                let v = transport_in(
                    Classifier::Indexed(&self.snapshot),
                    &mut self.values,
                    flow,
                    false,
                );
                self.inbound_cache.insert(Direction::InboundClear, flow, v);
                v
            }
        };
        inbound_clear(
            Classifier::Indexed(&self.snapshot),
            &mut self.values,
            (&self.secured, &self.initiated),
            flow,
            verdict,
            Ale {
                cache: Some(&mut self.accept_cache),
                owners: self.owners.as_mut(),
            },
        )
    }

    /// Whether a decapsulated packet may be delivered, having arrived on the SA
    /// `arrived_on`.
    pub fn inbound_protected(&mut self, flow: &Flow, arrived_on: &SaSelectors) -> Inbound {
        self.sync();
        if !arrived_on.covers(flow) {
            return Inbound::Block {
                filter_id: None,
                reason: reason::OUTSIDE_SELECTORS,
            };
        }
        let verdict = match self.inbound_cache.get(Direction::InboundProtected, flow) {
            Some(v) => v,
            None => {
                let v = transport_in(
                    Classifier::Indexed(&self.snapshot),
                    &mut self.values,
                    flow,
                    true,
                );
                self.inbound_cache
                    .insert(Direction::InboundProtected, flow, v);
                v
            }
        };
        let decided = inbound_protected(
            Classifier::Indexed(&self.snapshot),
            &mut self.values,
            flow,
            arrived_on,
            verdict,
            &self.initiated,
            Ale {
                cache: Some(&mut self.accept_cache),
                owners: self.owners.as_mut(),
            },
        );
        if decided == Inbound::Permit
            && let Some(hit) = verdict.permitted_hit()
            && hit.raw_context & g::FWPM_CONTEXT_IPSEC_INBOUND_PERSIST_CONNECTION_SECURITY != 0
        {
            self.secured.record(flow);
        }
        decided
    }

    /// [`IpsecCallout::outbound`] without the cache or the index, through
    /// `Engine::classify_naive` and the same callouts: the reference the fast path is
    /// tested against.
    pub fn outbound_naive(&self, flow: &Flow) -> Outbound {
        outbound(
            Classifier::Naive(&self.engine),
            &mut FieldValues::new(),
            flow,
            None,
        )
        .0
    }

    /// [`IpsecCallout::inbound_clear`] through `Engine::classify_naive`, uncached.
    pub fn inbound_clear_naive(&self, flow: &Flow) -> Inbound {
        let c = Classifier::Naive(&self.engine);
        let mut values = FieldValues::new();
        let v = transport_in(c, &mut values, flow, false);
        inbound_clear(
            c,
            &mut values,
            (&self.secured, &self.initiated),
            flow,
            v,
            Ale::NAIVE,
        )
    }

    /// [`IpsecCallout::inbound_protected`] through `Engine::classify_naive`, uncached,
    /// remembering nothing.
    pub fn inbound_protected_naive(&self, flow: &Flow, arrived_on: &SaSelectors) -> Inbound {
        if !arrived_on.covers(flow) {
            return Inbound::Block {
                filter_id: None,
                reason: reason::OUTSIDE_SELECTORS,
            };
        }
        let c = Classifier::Naive(&self.engine);
        let mut values = FieldValues::new();
        let v = transport_in(c, &mut values, flow, true);
        inbound_protected(
            c,
            &mut values,
            flow,
            arrived_on,
            v,
            &self.initiated,
            Ale::NAIVE,
        )
    }

    /// What the daemon routes into the TUN and which IKE peers policy names, from the
    /// engine's current filters.
    pub fn scopes(&self) -> Scopes {
        scopes::scopes(&self.engine.snapshot())
    }
}

/// One side's selector for the Acquire.
fn selector(flow: &Flow, addr: IpAddr, port: u16) -> TrafficSelector {
    let exact_port = flow.has_ports() && !flow.is_icmp();
    TrafficSelector {
        protocol_id: flow.protocol,
        port_start: if exact_port { port } else { 0 },
        port_end: if exact_port { port } else { u16::MAX },
        start_address: addr,
        end_address: addr,
    }
}

/// What to do with a packet we send, and whether the decision is settled (false: made
/// while the socket's program was still being looked for; not to be cached).
fn outbound(
    c: Classifier<'_>,
    values: &mut FieldValues,
    flow: &Flow,
    owners: Option<&mut OwnerLookup>,
) -> (Outbound, bool) {
    fill(values, flow, true, false, None);
    let at = layer(flow, Layer::OutboundTransportV4, Layer::OutboundTransportV6);
    let v = c.classify(at, values);
    let mut decided = match (v.decision, v.hit) {
        (Decision::Block, _) => {
            return (
                Outbound::Block {
                    filter_id: v.decider,
                },
                true,
            );
        }
        (Decision::Permit, Some(hit))
            if matches!(
                hit.kind,
                CalloutKind::OutboundTransport | CalloutKind::OutboundTunnel
            ) =>
        {
            let (mode, local, peer) = match hit.tunnel {
                Some((local, remote)) if hit.kind == CalloutKind::OutboundTunnel => {
                    (ProtectionMode::Tunnel { local, remote }, local, remote)
                }
                _ => (ProtectionMode::Transport, flow.local, flow.remote),
            };
            Outbound::Protect(Protection {
                mode,
                peer,
                local,
                traffic: Traffic {
                    local: selector(flow, flow.local, flow.local_port),
                    remote: selector(flow, flow.remote, flow.remote_port),
                },
                filter_id: hit.filter_id,
                clear_fallback: hit.raw_context & g::FWPM_CONTEXT_IPSEC_OUTBOUND_NEGOTIATE_DISCOVER
                    != 0,
                require_encryption: false,
            })
        }
        _ => Outbound::Clear,
    };
    // A later fragment of a flow that a port-specific IPsec filter may cover is not
    // sent in clear (negotiation discovery allows clear text anyway).
    if flow.later_fragment
        && decided == Outbound::Clear
        && let Some(h) = c.ipsec_ignoring_ports(at, values, &v)
        && h.raw_context & g::FWPM_CONTEXT_IPSEC_OUTBOUND_NEGOTIATE_DISCOVER == 0
    {
        return (
            Outbound::Block {
                filter_id: Some(h.filter_id),
            },
            true,
        );
    }
    if !flow.connection_start() && decided == Outbound::Clear {
        return (decided, true);
    }
    let at = layer(flow, Layer::AleAuthConnectV4, Layer::AleAuthConnectV6);
    let settled = fill_owner(owners, at, flow, values);
    if !settled && flow.connection_start() {
        // Neither a permit nor a block may rest on a program not yet known: a filter
        // that blocks the program would be passed, one that alone allows it would not.
        return (Outbound::Pending, false);
    }
    let ale = c.classify(at, values);
    if ale.decision == Decision::Block && flow.connection_start() {
        return (
            Outbound::Block {
                filter_id: ale.decider,
            },
            settled,
        );
    }
    let encrypt = ale.permitted_hit().filter(|h| {
        h.kind == CalloutKind::AleConnect
            && h.raw_context & g::FWPM_CONTEXT_ALE_SET_CONNECTION_REQUIRE_IPSEC_ENCRYPTION != 0
    });
    // Clear by an exemption stays clear: the exemption outranks the rule that demands
    // encryption, as it does at the transport layer.
    if encrypt.is_some()
        && let Outbound::Protect(p) = &mut decided
    {
        p.require_encryption = true;
        p.clear_fallback = false;
    }
    (decided, settled)
}

fn transport_in(
    c: Classifier<'_>,
    values: &mut FieldValues,
    flow: &Flow,
    secured: bool,
) -> Verdict {
    fill(values, flow, false, secured, None);
    let at = layer(flow, Layer::InboundTransportV4, Layer::InboundTransportV6);
    let mut v = c.classify(at, values);
    // A later fragment of a flow that a port-specific IPsec filter may cover is judged
    // as that filter would judge it.
    if flow.later_fragment
        && v.decision == Decision::Permit
        && let Some(h) = c.ipsec_ignoring_ports(at, values, &v)
    {
        v.hit = Some(h);
    }
    v
}

fn block(filter_id: Option<u64>, reason: &'static str) -> Inbound {
    Inbound::Block { filter_id, reason }
}

/// Clear text from the network; the pair: the secured flows and the flows we started.
fn inbound_clear(
    c: Classifier<'_>,
    values: &mut FieldValues,
    (secured, initiated): (&FlowSet, &FlowSet),
    flow: &Flow,
    v: Verdict,
    Ale { cache, owners }: Ale<'_>,
) -> Inbound {
    if v.decision == Decision::Block {
        return block(v.decider, reason::BLOCKED_BY_FILTER);
    }
    if let Some(hit) = v.hit {
        let nd = hit.raw_context & g::FWPM_CONTEXT_IPSEC_INBOUND_PERSIST_CONNECTION_SECURITY != 0;
        match hit.kind {
            // Negotiation discovery: clear until the flow has arrived protected once.
            CalloutKind::InboundTransport if nd && secured.contains(flow) => {
                return block(Some(hit.filter_id), reason::CLEAR_AFTER_SECURED);
            }
            CalloutKind::InboundTransport if nd => {}
            CalloutKind::InboundTransport => {
                return block(Some(hit.filter_id), reason::CLEAR_WHERE_REQUIRED);
            }
            CalloutKind::InboundTunnel => {
                return block(Some(hit.filter_id), reason::CLEAR_WHERE_TUNNEL);
            }
            _ => {}
        }
    }
    if !flow.connection_start() {
        return Inbound::Permit;
    }
    recv_accept(cache, Direction::InboundClear, flow, 0, initiated, || {
        let (ale, settled) = classify_recv_accept(c, values, flow, None, owners);
        if !settled {
            return (block(None, reason::PROGRAM_PENDING), false);
        }
        let decided = match (ale.decision, ale.hit) {
            (Decision::Block, _) => block(ale.decider, reason::CONNECTION_BLOCKED),
            // Only for flows the transport layer put under IPsec policy: an exemption
            // there exempts the connection too (spec §4.1 step 5 puts exemptions on
            // every layer with an IPsec callout filter; the policy compiler emits them at
            // the transport layers only).
            (Decision::Permit, Some(h))
                if h.kind == CalloutKind::InboundInitiateSecure && v.hit.is_some() =>
            {
                block(Some(h.filter_id), reason::CLEAR_CONNECTION)
            }
            _ => Inbound::Permit,
        };
        (decided, settled)
    })
}

fn inbound_protected(
    c: Classifier<'_>,
    values: &mut FieldValues,
    flow: &Flow,
    sa: &SaSelectors,
    v: Verdict,
    initiated: &FlowSet,
    Ale { cache, owners }: Ale<'_>,
) -> Inbound {
    if v.decision == Decision::Block {
        return block(v.decider, reason::BLOCKED_BY_FILTER);
    }
    if let Some(hit) = v.hit {
        match hit.kind {
            CalloutKind::InboundTransport if sa.mode != ProtectionMode::Transport => {
                return block(Some(hit.filter_id), reason::WRONG_MODE);
            }
            CalloutKind::InboundTunnel => {
                let ok = matches!((sa.mode, hit.tunnel),
                    (ProtectionMode::Tunnel { local, remote }, Some(t)) if (local, remote) == t);
                if !ok {
                    return block(Some(hit.filter_id), reason::WRONG_TUNNEL);
                }
            }
            _ => {}
        }
    }
    if !flow.connection_start() {
        return Inbound::Permit;
    }
    let identity = cache.as_ref().map_or(0, |a| a.identity(sa));
    recv_accept(
        cache,
        Direction::InboundProtected,
        flow,
        identity,
        initiated,
        || {
            let (ale, settled) =
                classify_recv_accept(c, values, flow, Some(&sa.peer_names), owners);
            if !settled {
                return (block(None, reason::PROGRAM_PENDING), false);
            }
            let decided = match (ale.decision, ale.hit) {
                (Decision::Block, _) => block(ale.decider, reason::CONNECTION_BLOCKED),
                (Decision::Permit, Some(h))
                    if h.kind == CalloutKind::InboundInitiateSecure
                        && h.raw_context
                            & g::FWPM_CONTEXT_ALE_SET_CONNECTION_REQUIRE_IPSEC_ENCRYPTION
                            != 0
                        && !sa.encrypting
                        && v.hit.is_some() =>
                {
                    block(Some(h.filter_id), reason::NOT_ENCRYPTED)
                }
                _ => Inbound::Permit,
            };
            (decided, settled)
        },
    )
}

/// What the fast path brings to ALE_AUTH_RECV_ACCEPT: its cache of decisions, and the
/// lookup of local socket owners; the naive reference has neither.
struct Ale<'a> {
    cache: Option<&'a mut AcceptCache>,
    owners: Option<&'a mut OwnerLookup>,
}

impl Ale<'_> {
    const NAIVE: Ale<'static> = Ale {
        cache: None,
        owners: None,
    };
}

/// Classifies `flow` at ALE_AUTH_RECV_ACCEPT: in clear, or protected by an SA whose
/// peer authenticated as `peer_names`; and whether the verdict is settled (see
/// [`outbound`]).
fn classify_recv_accept(
    c: Classifier<'_>,
    values: &mut FieldValues,
    flow: &Flow,
    peer_names: Option<&[String]>,
    owners: Option<&mut OwnerLookup>,
) -> (Verdict, bool) {
    fill(values, flow, false, peer_names.is_some(), peer_names);
    let at = layer(flow, Layer::AleAuthRecvAcceptV4, Layer::AleAuthRecvAcceptV6);
    let settled = fill_owner(owners, at, flow, values);
    (c.classify(at, values), settled)
}

/// Where ALE_AUTH_RECV_ACCEPT's decisions are kept: per flow, and for a decapsulated
/// packet also per identity of the SA it came on (the peer's names and whether the SA
/// encrypts are conditions there), hashed with a key of this process. UDP and ICMP
/// consult the layer at every packet, so this is their fast path; the naive reference
/// keeps none.
#[derive(Debug)]
struct AcceptCache {
    decisions: FlowCache<(u64, Inbound)>,
    identities: RandomState,
}

impl AcceptCache {
    fn new() -> Self {
        AcceptCache {
            decisions: FlowCache::new(FLOW_CACHE_BOUND),
            identities: RandomState::new(),
        }
    }

    fn identity(&self, sa: &SaSelectors) -> u64 {
        self.identities.hash_one((sa.encrypting, &sa.peer_names))
    }
}

/// The ALE_AUTH_RECV_ACCEPT decision for the connection start `flow`, which `decide`
/// classifies, kept in `cache` (when there is one) under `identity`. A block does not
/// hold for a packet of a flow we started (`initiated`, never a SYN): without a
/// handshake a reply looks like a connection start, and WFP lets replies in on the ALE
/// flow their connect made. Only blocks look the set up (a lock), so permitted traffic
/// takes none.
fn recv_accept(
    cache: Option<&mut AcceptCache>,
    direction: Direction,
    flow: &Flow,
    identity: u64,
    initiated: &FlowSet,
    decide: impl FnOnce() -> (Inbound, bool),
) -> Inbound {
    let decided = match cache {
        None => decide().0,
        Some(cache) => match cache.decisions.get(direction, flow) {
            Some((id, d)) if id == identity => d,
            _ => {
                let (d, settled) = decide();
                if settled {
                    cache.decisions.insert(direction, flow, (identity, d));
                }
                d
            }
        },
    };
    if decided != Inbound::Permit && !flow.tcp_syn && initiated.contains(flow) {
        return Inbound::Permit;
    }
    decided
}
