//! `IPSEC_TRANSPORT_POLICY2` and `IPSEC_TUNNEL_POLICY3`: quick-mode policy, found at the
//! `IPSEC_V{4|6}` layers.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::extended_mode::ExtendedModePolicy;
use super::proposal::IpsecProposal;

/// `IPSEC_POLICY_FLAG_ND_SECURE`: negotiation discovery in the secure ring.
pub const IPSEC_POLICY_FLAG_ND_SECURE: u32 = 0x2;
/// `IPSEC_POLICY_FLAG_ND_BOUNDARY`: negotiation discovery in the boundary zone.
pub const IPSEC_POLICY_FLAG_ND_BOUNDARY: u32 = 0x4;
/// `IPSEC_POLICY_FLAG_CLEAR_DF_ON_TUNNEL`: clear DF on the outer header.
pub const IPSEC_POLICY_FLAG_CLEAR_DF_ON_TUNNEL: u32 = 0x8;
/// `IPSEC_POLICY_FLAG_NAT_ENCAP_ALLOW_PEER_BEHIND_NAT`: one side may be behind NAT.
pub const IPSEC_POLICY_FLAG_NAT_ENCAP_ALLOW_PEER_BEHIND_NAT: u32 = 0x10;
/// `IPSEC_POLICY_FLAG_NAT_ENCAP_ALLOW_GENERAL_NAT_TRAVERSAL`: either or both behind NAT.
pub const IPSEC_POLICY_FLAG_NAT_ENCAP_ALLOW_GENERAL_NAT_TRAVERSAL: u32 = 0x20;
/// `IPSEC_POLICY_FLAG_DONT_NEGOTIATE_SECOND_LIFETIME`: omit the time lifetime in QM.
pub const IPSEC_POLICY_FLAG_DONT_NEGOTIATE_SECOND_LIFETIME: u32 = 0x40;
/// `IPSEC_POLICY_FLAG_DONT_NEGOTIATE_BYTE_LIFETIME`: omit the volume lifetime in QM.
pub const IPSEC_POLICY_FLAG_DONT_NEGOTIATE_BYTE_LIFETIME: u32 = 0x80;
/// `IPSEC_POLICY_FLAG_ENABLE_V6_IN_V4_TUNNELING` (tunnel).
pub const IPSEC_POLICY_FLAG_ENABLE_V6_IN_V4_TUNNELING: u32 = 0x100;
/// `IPSEC_POLICY_FLAG_ENABLE_SERVER_ADDR_ASSIGNMENT` (tunnel).
pub const IPSEC_POLICY_FLAG_ENABLE_SERVER_ADDR_ASSIGNMENT: u32 = 0x200;
/// `IPSEC_POLICY_FLAG_TUNNEL_ALLOW_OUTBOUND_CLEAR_CONNECTION` (tunnel).
pub const IPSEC_POLICY_FLAG_TUNNEL_ALLOW_OUTBOUND_CLEAR_CONNECTION: u32 = 0x400;
/// `IPSEC_POLICY_FLAG_TUNNEL_BYPASS_ALREADY_SECURE_CONNECTION` (tunnel).
pub const IPSEC_POLICY_FLAG_TUNNEL_BYPASS_ALREADY_SECURE_CONNECTION: u32 = 0x800;
/// `IPSEC_POLICY_FLAG_TUNNEL_BYPASS_ICMPV6` (tunnel).
pub const IPSEC_POLICY_FLAG_TUNNEL_BYPASS_ICMPV6: u32 = 0x1000;
/// `IPSEC_POLICY_FLAG_KEY_MANAGER_ALLOW_DICTATE_KEY`: a third-party key manager may dictate
/// QM keys (AuthIP only).
pub const IPSEC_POLICY_FLAG_KEY_MANAGER_ALLOW_DICTATE_KEY: u32 = 0x2000;
/// `IPSEC_POLICY_FLAG_KEY_MANAGER_ALLOW_NOTIFY_KEY`: key managers are told QM keys.
pub const IPSEC_POLICY_FLAG_KEY_MANAGER_ALLOW_NOTIFY_KEY: u32 = 0x4000;
/// `IPSEC_POLICY_FLAG_SITE_TO_SITE_TUNNEL` (tunnel).
pub const IPSEC_POLICY_FLAG_SITE_TO_SITE_TUNNEL: u32 = 0x10000;

/// Every `IPSEC_POLICY_FLAG_*` with its WFP name, for error messages.
pub(crate) const IPSEC_POLICY_FLAGS: [(u32, &str); 15] = [
    (IPSEC_POLICY_FLAG_ND_SECURE, "ND_SECURE"),
    (IPSEC_POLICY_FLAG_ND_BOUNDARY, "ND_BOUNDARY"),
    (IPSEC_POLICY_FLAG_CLEAR_DF_ON_TUNNEL, "CLEAR_DF_ON_TUNNEL"),
    (
        IPSEC_POLICY_FLAG_NAT_ENCAP_ALLOW_PEER_BEHIND_NAT,
        "NAT_ENCAP_ALLOW_PEER_BEHIND_NAT",
    ),
    (
        IPSEC_POLICY_FLAG_NAT_ENCAP_ALLOW_GENERAL_NAT_TRAVERSAL,
        "NAT_ENCAP_ALLOW_GENERAL_NAT_TRAVERSAL",
    ),
    (
        IPSEC_POLICY_FLAG_DONT_NEGOTIATE_SECOND_LIFETIME,
        "DONT_NEGOTIATE_SECOND_LIFETIME",
    ),
    (
        IPSEC_POLICY_FLAG_DONT_NEGOTIATE_BYTE_LIFETIME,
        "DONT_NEGOTIATE_BYTE_LIFETIME",
    ),
    (
        IPSEC_POLICY_FLAG_ENABLE_V6_IN_V4_TUNNELING,
        "ENABLE_V6_IN_V4_TUNNELING",
    ),
    (
        IPSEC_POLICY_FLAG_ENABLE_SERVER_ADDR_ASSIGNMENT,
        "ENABLE_SERVER_ADDR_ASSIGNMENT",
    ),
    (
        IPSEC_POLICY_FLAG_TUNNEL_ALLOW_OUTBOUND_CLEAR_CONNECTION,
        "TUNNEL_ALLOW_OUTBOUND_CLEAR_CONNECTION",
    ),
    (
        IPSEC_POLICY_FLAG_TUNNEL_BYPASS_ALREADY_SECURE_CONNECTION,
        "TUNNEL_BYPASS_ALREADY_SECURE_CONNECTION",
    ),
    (
        IPSEC_POLICY_FLAG_TUNNEL_BYPASS_ICMPV6,
        "TUNNEL_BYPASS_ICMPV6",
    ),
    (
        IPSEC_POLICY_FLAG_KEY_MANAGER_ALLOW_DICTATE_KEY,
        "KEY_MANAGER_ALLOW_DICTATE_KEY",
    ),
    (
        IPSEC_POLICY_FLAG_KEY_MANAGER_ALLOW_NOTIFY_KEY,
        "KEY_MANAGER_ALLOW_NOTIFY_KEY",
    ),
    (IPSEC_POLICY_FLAG_SITE_TO_SITE_TUNNEL, "SITE_TO_SITE_TUNNEL"),
];

/// Flags that only make sense with an outer header, rejected on transport policies.
pub(crate) const TUNNEL_ONLY_FLAGS: u32 = IPSEC_POLICY_FLAG_CLEAR_DF_ON_TUNNEL
    | IPSEC_POLICY_FLAG_ENABLE_V6_IN_V4_TUNNELING
    | IPSEC_POLICY_FLAG_ENABLE_SERVER_ADDR_ASSIGNMENT
    | IPSEC_POLICY_FLAG_TUNNEL_ALLOW_OUTBOUND_CLEAR_CONNECTION
    | IPSEC_POLICY_FLAG_TUNNEL_BYPASS_ALREADY_SECURE_CONNECTION
    | IPSEC_POLICY_FLAG_TUNNEL_BYPASS_ICMPV6
    | IPSEC_POLICY_FLAG_SITE_TO_SITE_TUNNEL;

/// `IPSEC_SA_IDLE_TIMEOUT0`. The default (300 s, 60 s for fail-over peers) is Palisade's
/// choice, used when a policy file leaves the table out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaIdleTimeout {
    /// `idleTimeoutSeconds`: delete an SA after this long without traffic.
    pub idle_timeout_seconds: u32,
    /// `idleTimeoutSecondsFailOver`: the same for fail-over-capable peers, which must
    /// notice a dead node sooner.
    pub idle_timeout_seconds_fail_over: u32,
}

impl Default for SaIdleTimeout {
    fn default() -> Self {
        Self {
            idle_timeout_seconds: 300,
            idle_timeout_seconds_fail_over: 60,
        }
    }
}

/// `IPSEC_TRANSPORT_POLICY2`.
///
/// ```json
/// { "ipsec_proposals": [{ "lifetime": { "seconds": 3600, "kilobytes": 100000 },
///                         "sa_transforms": [{ "esp_cipher": "gcm_aes_128" }] }],
///   "flags": 2, "nd_allow_clear_timeout_seconds": 10 }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpsecTransportPolicy {
    /// `ipsecProposals`, in order of preference.
    pub ipsec_proposals: Vec<IpsecProposal>,
    /// `IPSEC_POLICY_FLAG_*` bits; the tunnel-only ones are rejected.
    #[serde(default)]
    pub flags: u32,
    /// `ndAllowClearTimeoutSeconds`: how long an SA keeps accepting inbound clear packets
    /// under negotiation discovery.
    #[serde(default)]
    pub nd_allow_clear_timeout_seconds: u32,
    /// `saIdleTimeout`.
    #[serde(default)]
    pub sa_idle_timeout: SaIdleTimeout,
    /// `emPolicy`: AuthIP extended mode; only AuthIP contexts may carry one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub em_policy: Option<ExtendedModePolicy>,
}

impl IpsecTransportPolicy {
    /// A policy offering `proposals`, with no flags and default timeouts.
    pub fn new(proposals: impl Into<Vec<IpsecProposal>>) -> Self {
        Self {
            ipsec_proposals: proposals.into(),
            flags: 0,
            nd_allow_clear_timeout_seconds: 0,
            sa_idle_timeout: SaIdleTimeout::default(),
            em_policy: None,
        }
    }

    /// The same policy with `flags` added (or-ed in).
    pub fn with_flags(mut self, flags: u32) -> Self {
        self.flags |= flags;
        self
    }

    /// The same policy carrying an AuthIP extended-mode policy.
    pub fn with_em_policy(mut self, em_policy: ExtendedModePolicy) -> Self {
        self.em_policy = Some(em_policy);
        self
    }
}

/// `IPSEC_TUNNEL_ENDPOINTS*`: the outer addresses, both of one IP family.
///
/// ```json
/// { "local_address": "192.0.2.1", "remote_address": "198.51.100.7" }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelEndpoints {
    /// Our outer address.
    pub local_address: IpAddr,
    /// The peer gateway's outer address.
    pub remote_address: IpAddr,
}

impl TunnelEndpoints {
    /// Endpoints from two addresses; validation checks that the families match.
    pub const fn new(local_address: IpAddr, remote_address: IpAddr) -> Self {
        Self {
            local_address,
            remote_address,
        }
    }
}

/// `IPSEC_TRAFFIC_SELECTOR0`: an address range with protocol and port range. Omitted
/// protocol and ports mean any.
///
/// ```json
/// { "start_address": "10.1.0.0", "end_address": "10.1.255.255" }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficSelector {
    /// `protocolId`: IP protocol number, 0 for any.
    #[serde(default)]
    pub protocol_id: u8,
    /// `portStart`.
    #[serde(default)]
    pub port_start: u16,
    /// `portEnd`.
    #[serde(default = "any_port_end")]
    pub port_end: u16,
    /// `startV{4|6}Address`.
    pub start_address: IpAddr,
    /// `endV{4|6}Address`, inclusive.
    pub end_address: IpAddr,
}

fn any_port_end() -> u16 {
    u16::MAX
}

impl TrafficSelector {
    /// Any protocol and port between two addresses.
    pub const fn range(start_address: IpAddr, end_address: IpAddr) -> Self {
        Self {
            protocol_id: 0,
            port_start: 0,
            port_end: u16::MAX,
            start_address,
            end_address,
        }
    }
}

/// `IPSEC_TRAFFIC_SELECTOR_POLICY0`: the inner traffic one tunnel SA carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficSelectorPolicy {
    /// `flags` (no values are published; kept as given).
    #[serde(default)]
    pub flags: u32,
    /// `localTrafficSelectors`: our side.
    pub local_traffic_selectors: Vec<TrafficSelector>,
    /// `remoteTrafficSelectors`: the peer's side.
    pub remote_traffic_selectors: Vec<TrafficSelector>,
}

/// `IPSEC_TUNNEL_POLICY3` without the Windows-only `compartmentId`.
///
/// ```json
/// { "ipsec_proposals": [{ "lifetime": { "seconds": 3600 },
///                         "sa_transforms": [{ "esp_cipher": "gcm_aes_256" }] }],
///   "tunnel_endpoints": { "local_address": "192.0.2.1", "remote_address": "198.51.100.7" },
///   "flags": 65536 }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpsecTunnelPolicy {
    /// `IPSEC_POLICY_FLAG_*` bits.
    #[serde(default)]
    pub flags: u32,
    /// `ipsecProposals`, in order of preference.
    pub ipsec_proposals: Vec<IpsecProposal>,
    /// `tunnelEndpoints`.
    pub tunnel_endpoints: TunnelEndpoints,
    /// `saIdleTimeout`.
    #[serde(default)]
    pub sa_idle_timeout: SaIdleTimeout,
    /// `emPolicy`: AuthIP extended mode; only AuthIP contexts may carry one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub em_policy: Option<ExtendedModePolicy>,
    /// `fwdPathSaLifetime`: seconds an SA for forwarded traffic lives; 0 leaves it to
    /// the keying module.
    #[serde(default)]
    pub fwd_path_sa_lifetime: u32,
    /// `trafficSelectorPolicies`: empty means the tunnel filters' conditions decide.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic_selector_policies: Vec<TrafficSelectorPolicy>,
}

impl IpsecTunnelPolicy {
    /// A tunnel between `endpoints` offering `proposals`, with no flags, default timeouts
    /// and no traffic selectors.
    pub fn new(endpoints: TunnelEndpoints, proposals: impl Into<Vec<IpsecProposal>>) -> Self {
        Self {
            flags: 0,
            ipsec_proposals: proposals.into(),
            tunnel_endpoints: endpoints,
            sa_idle_timeout: SaIdleTimeout::default(),
            em_policy: None,
            fwd_path_sa_lifetime: 0,
            traffic_selector_policies: Vec::new(),
        }
    }

    /// The same policy with `flags` added (or-ed in).
    pub fn with_flags(mut self, flags: u32) -> Self {
        self.flags |= flags;
        self
    }

    /// The same policy with one more traffic-selector policy.
    pub fn with_traffic_selectors(
        mut self,
        local: impl Into<Vec<TrafficSelector>>,
        remote: impl Into<Vec<TrafficSelector>>,
    ) -> Self {
        self.traffic_selector_policies.push(TrafficSelectorPolicy {
            flags: 0,
            local_traffic_selectors: local.into(),
            remote_traffic_selectors: remote.into(),
        });
        self
    }
}
