//! Where the keying module gets its policy (spec §1, §4.1, §6): the daemon
//! classifies at IKEEXT for the main-mode policy and at IPSEC for the
//! quick-mode policy and answers through [`PolicyLookup`]. [`StaticPolicy`]
//! answers from a fixed table, for tests and simple setups.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use palisade_crypto::KeId;
use palisade_filter::policy::{
    AuthenticationMethod, IpsecProposal, IpsecTransportPolicy, IpsecTunnelPolicy, MainModePolicy,
    TrafficSelector,
};

use crate::credentials::{Credentials, LocalCredential};
use crate::identity::Identity;
use crate::traffic_selector::host;

/// Which filter decided a policy lookup and which provider context it
/// carried: what a failure names (spec §6.2, the filter id of a net event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyOrigin {
    /// The deciding filter's runtime id (WFP's filter LUID).
    pub filter_id: u64,
    /// The deciding filter's key.
    pub filter_key: uuid::Uuid,
    /// The key of the provider context the filter points at.
    pub provider_context: uuid::Uuid,
}

/// The main-mode (IKE SA) policy for a pair of addresses: the provider
/// context of the IKEEXT filter that matched, and the identities to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkePolicy {
    /// The `IKEEXT_POLICY`: proposals, authentication methods, retransmit duration.
    pub main_mode: MainModePolicy,
    /// What we send as IDi/IDr; `None` sends our certificate's subject
    /// (ID_DER_ASN1_DN) if we have one, else our address
    /// (ID_IPV4_ADDR/ID_IPV6_ADDR).
    pub local_id: Option<Identity>,
    /// The identity the peer must authenticate as; `None` accepts any
    /// identity the pre-shared key proves or the peer's certificate vouches
    /// for.
    pub remote_id: Option<Identity>,
    /// The IKEEXT filter and provider context this came from; `None` for
    /// policy not from the filter engine ([`StaticPolicy`]).
    pub origin: Option<PolicyOrigin>,
    /// Certificate authentication (the `CERTIFICATE*` methods), loaded by
    /// the daemon: with a local credential we sign AUTH instead of using
    /// the pre-shared key; with trust anchors we accept peers that sign.
    pub certificates: Option<Arc<Credentials>>,
    /// Post-quantum hybrid key exchange (RFC 9370): key exchange methods
    /// added to every main-mode proposal as ADDKE1, ADDKE2, ... WFP's
    /// `IKEEXT_POLICY` has no such setting, so it lives here, beside the
    /// identities the daemon also supplies; empty by default.
    pub additional_key_exchanges: AdditionalKeyExchanges,
}

/// The additional key exchanges (RFC 9370 §2.2.1) of an IKE SA policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdditionalKeyExchanges {
    /// One method per additional key exchange, in order (ADDKE1 first; at
    /// most seven). Typically `[KeId::MlKem768]`.
    pub methods: Vec<KeId>,
    /// Whether they are required: if not, every proposal is offered and
    /// accepted also without them, so a peer without RFC 9370 support
    /// falls back to the classic exchange; if so, such a peer gets
    /// NO_PROPOSAL_CHOSEN.
    pub required: bool,
}

impl IkePolicy {
    /// A policy with no identity constraints.
    pub fn new(main_mode: MainModePolicy) -> Self {
        Self {
            main_mode,
            local_id: None,
            remote_id: None,
            origin: None,
            certificates: None,
            additional_key_exchanges: AdditionalKeyExchanges::default(),
        }
    }

    /// The same policy with additional key exchanges (RFC 9370), e.g.
    /// `[KeId::MlKem768]` for a post-quantum hybrid IKE SA.
    pub fn with_additional_key_exchanges(
        mut self,
        methods: impl IntoIterator<Item = KeId>,
        required: bool,
    ) -> Self {
        self.additional_key_exchanges = AdditionalKeyExchanges {
            methods: methods.into_iter().collect(),
            required,
        };
        self
    }

    /// The same policy with certificate credentials.
    pub fn with_certificates(mut self, certificates: Arc<Credentials>) -> Self {
        self.certificates = Some(certificates);
        self
    }

    /// What we send as IDi/IDr: the configured identity; else, with a
    /// certificate, its subject (ID_DER_ASN1_DN, which the certificate
    /// always vouches for; strongSwan's default too); else our address.
    pub(crate) fn local_identity(&self, local: IpAddr) -> Identity {
        if let Some(id) = &self.local_id {
            return id.clone();
        }
        match self.local_credential() {
            Some(l) => Identity::DerAsn1Dn(l.end_entity().subject_der().to_vec()),
            None => Identity::from_ip(local),
        }
    }

    /// Our certificate and key, if we authenticate with a signature.
    pub(crate) fn local_credential(&self) -> Option<&LocalCredential> {
        self.certificates.as_deref()?.local.as_ref()
    }

    /// The first pre-shared key among the authentication methods.
    pub(crate) fn preshared_key(&self) -> Option<&[u8]> {
        self.main_mode
            .authentication_methods
            .iter()
            .find_map(|m| match m {
                AuthenticationMethod::PresharedKey(psk) if !psk.key.is_empty() => {
                    Some(psk.key.expose())
                }
                _ => None,
            })
    }
}

/// The quick-mode policy kind the IPSEC filter's provider context carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuickModePolicy {
    /// `IPSEC_TRANSPORT_POLICY`: transport mode between the two hosts.
    Transport(IpsecTransportPolicy),
    /// `IPSEC_TUNNEL_POLICY`: tunnel mode between the tunnel endpoints.
    Tunnel(IpsecTunnelPolicy),
}

impl QuickModePolicy {
    /// The proposals, most preferred first.
    pub fn proposals(&self) -> &[IpsecProposal] {
        match self {
            Self::Transport(p) => &p.ipsec_proposals,
            Self::Tunnel(p) => &p.ipsec_proposals,
        }
    }
}

/// The CHILD_SA policy for some traffic: the quick-mode policy and the
/// selectors it allows on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildPolicy {
    /// Transport or tunnel policy.
    pub quick_mode: QuickModePolicy,
    /// Traffic on our side the CHILD_SA may carry.
    pub local_selectors: Vec<TrafficSelector>,
    /// Traffic on the peer's side.
    pub remote_selectors: Vec<TrafficSelector>,
    /// The IPSEC filter and provider context this came from; `None` for
    /// policy not from the filter engine.
    pub origin: Option<PolicyOrigin>,
}

impl ChildPolicy {
    /// Transport mode for all traffic between `local` and `remote`.
    pub fn transport(policy: IpsecTransportPolicy, local: IpAddr, remote: IpAddr) -> Self {
        Self {
            quick_mode: QuickModePolicy::Transport(policy),
            local_selectors: vec![host(local)],
            remote_selectors: vec![host(remote)],
            origin: None,
        }
    }

    /// Tunnel mode for the given inner traffic.
    pub fn tunnel(
        policy: IpsecTunnelPolicy,
        local_selectors: Vec<TrafficSelector>,
        remote_selectors: Vec<TrafficSelector>,
    ) -> Self {
        Self {
            quick_mode: QuickModePolicy::Tunnel(policy),
            local_selectors,
            remote_selectors,
            origin: None,
        }
    }

    /// Whether this is a transport-mode policy.
    pub fn is_transport(&self) -> bool {
        matches!(self.quick_mode, QuickModePolicy::Transport(_))
    }
}

/// Traffic seen or proposed: one selector for each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    /// Our side.
    pub local: TrafficSelector,
    /// The peer's side.
    pub remote: TrafficSelector,
}

/// The data plane saw traffic that policy says must be protected and no
/// SA carries it yet (the ACQUIRE of spec §4.1, raised by the outbound
/// IPsec callout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acquire {
    /// Our IKE address and port (usually port 500).
    pub local: SocketAddr,
    /// The peer's IKE address and port.
    pub remote: SocketAddr,
    /// The packet's selectors, sent first in TSi/TSr so that the responder
    /// can narrow to the flow that triggered the negotiation (RFC 7296 §2.9).
    pub traffic: Option<Traffic>,
}

/// Policy as the filter engine answers it. Implemented by the daemon over
/// `classify` at IKEEXT and IPSEC; the keying module never sees filters.
pub trait PolicyLookup {
    /// Main-mode policy for an IKE SA between `local` and `remote`
    /// (classification at IKEEXT_V4/V6 on IP_LOCAL_ADDRESS and
    /// IP_REMOTE_ADDRESS). `None`: no IKEv2 with this peer.
    fn main_mode(&self, local: IpAddr, remote: IpAddr) -> Option<IkePolicy>;

    /// Quick-mode policy for a CHILD_SA between the IKE peers `local` and
    /// `remote` carrying `traffic` (classification at IPSEC_V4/V6 with the
    /// selectors' addresses, ports and protocol). As initiator `traffic` is
    /// the acquire's; as responder it is the first TSr/TSi pair the
    /// initiator proposed.
    fn quick_mode(&self, local: IpAddr, remote: IpAddr, traffic: &Traffic) -> Option<ChildPolicy>;
}

/// A fixed policy table: the first entry whose remote address matches
/// answers; `None` as remote matches any peer.
#[derive(Debug, Clone, Default)]
pub struct StaticPolicy {
    entries: Vec<StaticEntry>,
}

#[derive(Debug, Clone)]
struct StaticEntry {
    remote: Option<IpAddr>,
    ike: IkePolicy,
    child: Option<QuickModePolicy>,
    selectors: Option<(Vec<TrafficSelector>, Vec<TrafficSelector>)>,
}

impl StaticPolicy {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry for `remote` (or any peer). A transport policy allows
    /// the two hosts' traffic; a tunnel policy the selectors given by
    /// [`StaticPolicy::with_selectors`], or none.
    pub fn with_peer(
        mut self,
        remote: Option<IpAddr>,
        ike: IkePolicy,
        child: Option<QuickModePolicy>,
    ) -> Self {
        self.entries.push(StaticEntry {
            remote,
            ike,
            child,
            selectors: None,
        });
        self
    }

    /// Sets the selectors of the last entry added.
    pub fn with_selectors(
        mut self,
        local: Vec<TrafficSelector>,
        remote: Vec<TrafficSelector>,
    ) -> Self {
        if let Some(e) = self.entries.last_mut() {
            e.selectors = Some((local, remote));
        }
        self
    }

    fn entry(&self, remote: IpAddr) -> Option<&StaticEntry> {
        self.entries
            .iter()
            .find(|e| e.remote.is_none_or(|r| r == remote))
    }
}

impl PolicyLookup for StaticPolicy {
    fn main_mode(&self, _local: IpAddr, remote: IpAddr) -> Option<IkePolicy> {
        self.entry(remote).map(|e| e.ike.clone())
    }

    fn quick_mode(&self, local: IpAddr, remote: IpAddr, _traffic: &Traffic) -> Option<ChildPolicy> {
        let e = self.entry(remote)?;
        let child = e.child.clone()?;
        let (l, r) = match (&e.selectors, &child) {
            (Some((l, r)), _) => (l.clone(), r.clone()),
            (None, QuickModePolicy::Transport(_)) => (vec![host(local)], vec![host(remote)]),
            (None, QuickModePolicy::Tunnel(_)) => (Vec::new(), Vec::new()),
        };
        Some(ChildPolicy {
            quick_mode: child,
            local_selectors: l,
            remote_selectors: r,
            origin: None,
        })
    }
}
