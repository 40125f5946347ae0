//! `FWPM_PROVIDER_CONTEXT_TYPE` and the typed policy a provider context carries.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::keying::{KeyingModule, KeyingPolicy};
use super::main_mode::MainModePolicy;
use super::quick_mode::{IpsecTransportPolicy, IpsecTunnelPolicy};

/// `FWPM_PROVIDER_CONTEXT_TYPE` (spec §5), numbered as in WFP. Serde names are the WFP
/// constants without `FWPM_`/`_CONTEXT`, lower-cased (`ikev2_qm_transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u32)]
pub enum ProviderContextType {
    /// `FWPM_IPSEC_KEYING_CONTEXT`: [`KeyingPolicy`].
    IpsecKeying = 0,
    /// `FWPM_IPSEC_IKE_QM_TRANSPORT_CONTEXT`.
    IkeQmTransport = 1,
    /// `FWPM_IPSEC_IKE_QM_TUNNEL_CONTEXT`.
    IkeQmTunnel = 2,
    /// `FWPM_IPSEC_AUTHIP_QM_TRANSPORT_CONTEXT`.
    AuthipQmTransport = 3,
    /// `FWPM_IPSEC_AUTHIP_QM_TUNNEL_CONTEXT`.
    AuthipQmTunnel = 4,
    /// `FWPM_IPSEC_IKE_MM_CONTEXT`.
    IkeMm = 5,
    /// `FWPM_IPSEC_AUTHIP_MM_CONTEXT`.
    AuthipMm = 6,
    /// `FWPM_CLASSIFY_OPTIONS_CONTEXT` (no typed policy in Palisade yet).
    ClassifyOptions = 7,
    /// `FWPM_GENERAL_CONTEXT`: an opaque blob.
    General = 8,
    /// `FWPM_IPSEC_IKEV2_QM_TUNNEL_CONTEXT`.
    Ikev2QmTunnel = 9,
    /// `FWPM_IPSEC_IKEV2_MM_CONTEXT`.
    Ikev2Mm = 10,
    /// `FWPM_IPSEC_DOSP_CONTEXT` (no typed policy in Palisade yet).
    IpsecDosp = 11,
    /// `FWPM_IPSEC_IKEV2_QM_TRANSPORT_CONTEXT`.
    Ikev2QmTransport = 12,
    /// `FWPM_NETWORK_CONNECTION_POLICY_CONTEXT` (no typed policy in Palisade yet).
    NetworkConnectionPolicy = 13,
}

impl ProviderContextType {
    /// Every type, in numeric order.
    pub const ALL: [Self; 14] = [
        Self::IpsecKeying,
        Self::IkeQmTransport,
        Self::IkeQmTunnel,
        Self::AuthipQmTransport,
        Self::AuthipQmTunnel,
        Self::IkeMm,
        Self::AuthipMm,
        Self::ClassifyOptions,
        Self::General,
        Self::Ikev2QmTunnel,
        Self::Ikev2Mm,
        Self::IpsecDosp,
        Self::Ikev2QmTransport,
        Self::NetworkConnectionPolicy,
    ];

    /// The WFP numeric value.
    pub const fn as_u32(self) -> u32 {
        self as u32
    }

    /// The type with WFP numeric value `value`.
    pub const fn from_u32(value: u32) -> Option<Self> {
        if value < Self::ALL.len() as u32 {
            Some(Self::ALL[value as usize])
        } else {
            None
        }
    }

    /// WFP-style name (`IPSEC_KEYING`, `IKEV2_QM_TRANSPORT`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Self::IpsecKeying => "IPSEC_KEYING",
            Self::IkeQmTransport => "IKE_QM_TRANSPORT",
            Self::IkeQmTunnel => "IKE_QM_TUNNEL",
            Self::AuthipQmTransport => "AUTHIP_QM_TRANSPORT",
            Self::AuthipQmTunnel => "AUTHIP_QM_TUNNEL",
            Self::IkeMm => "IKE_MM",
            Self::AuthipMm => "AUTHIP_MM",
            Self::ClassifyOptions => "CLASSIFY_OPTIONS",
            Self::General => "GENERAL",
            Self::Ikev2QmTunnel => "IKEV2_QM_TUNNEL",
            Self::Ikev2Mm => "IKEV2_MM",
            Self::IpsecDosp => "IPSEC_DOSP",
            Self::Ikev2QmTransport => "IKEV2_QM_TRANSPORT",
            Self::NetworkConnectionPolicy => "NETWORK_CONNECTION_POLICY",
        }
    }

    /// The keying module an MM or QM context belongs to.
    pub const fn keying_module(self) -> Option<KeyingModule> {
        match self {
            Self::IkeQmTransport | Self::IkeQmTunnel | Self::IkeMm => Some(KeyingModule::Ike),
            Self::AuthipQmTransport | Self::AuthipQmTunnel | Self::AuthipMm => {
                Some(KeyingModule::Authip)
            }
            Self::Ikev2QmTransport | Self::Ikev2QmTunnel | Self::Ikev2Mm => {
                Some(KeyingModule::Ikev2)
            }
            _ => None,
        }
    }

    /// The main-mode context type of `module`.
    pub const fn main_mode(module: KeyingModule) -> Self {
        match module {
            KeyingModule::Ike => Self::IkeMm,
            KeyingModule::Authip => Self::AuthipMm,
            KeyingModule::Ikev2 => Self::Ikev2Mm,
        }
    }

    /// The quick-mode transport context type of `module`.
    pub const fn qm_transport(module: KeyingModule) -> Self {
        match module {
            KeyingModule::Ike => Self::IkeQmTransport,
            KeyingModule::Authip => Self::AuthipQmTransport,
            KeyingModule::Ikev2 => Self::Ikev2QmTransport,
        }
    }

    /// The quick-mode tunnel context type of `module`.
    pub const fn qm_tunnel(module: KeyingModule) -> Self {
        match module {
            KeyingModule::Ike => Self::IkeQmTunnel,
            KeyingModule::Authip => Self::AuthipQmTunnel,
            KeyingModule::Ikev2 => Self::Ikev2QmTunnel,
        }
    }
}

impl fmt::Display for ProviderContextType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The policy union of `FWPM_PROVIDER_CONTEXT3`, typed.
///
/// Each variant pairs a policy with the keying module it is for, and every (shape, module)
/// pair is a real context type, so a tunnel policy under a transport type cannot be built;
/// [`ProviderContextPolicy::context_type`] derives the type.
///
/// Serde shape: one flat table tagged by `type`, the [`ProviderContextType`] serde name,
/// with the policy's own fields beside it (`General` keeps its bytes under `data`):
///
/// ```json
/// { "type": "ikev2_mm",
///   "authentication_methods": [{ "type": "preshared_key", "key": "s3cret" }],
///   "ike_proposals": [{ "cipher": "aes_256", "integrity": "sha_256",
///                       "max_lifetime_seconds": 28800, "dh_group": "ecp_256" }] }
/// ```
///
/// `classify_options`, `ipsec_dosp` and `network_connection_policy` have no typed policy
/// yet and are rejected when read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderContextPolicy {
    /// `IPSEC_KEYING_POLICY1` (`IPSEC_KEYING`).
    Keying(KeyingPolicy),
    /// `IKEEXT_POLICY2` (`IKE_MM`, `AUTHIP_MM`, `IKEV2_MM`).
    MainMode {
        /// Which keying module negotiates with it.
        module: KeyingModule,
        /// The policy.
        policy: MainModePolicy,
    },
    /// `IPSEC_TRANSPORT_POLICY2` (`*_QM_TRANSPORT`).
    Transport {
        /// Which keying module negotiates with it.
        module: KeyingModule,
        /// The policy.
        policy: IpsecTransportPolicy,
    },
    /// `IPSEC_TUNNEL_POLICY3` (`*_QM_TUNNEL`).
    Tunnel {
        /// Which keying module negotiates with it.
        module: KeyingModule,
        /// The policy.
        policy: IpsecTunnelPolicy,
    },
    /// An opaque `GENERAL` blob.
    General(Vec<u8>),
}

impl ProviderContextPolicy {
    /// The context type this policy is stored under.
    pub const fn context_type(&self) -> ProviderContextType {
        match self {
            Self::Keying(_) => ProviderContextType::IpsecKeying,
            Self::MainMode { module, .. } => ProviderContextType::main_mode(*module),
            Self::Transport { module, .. } => ProviderContextType::qm_transport(*module),
            Self::Tunnel { module, .. } => ProviderContextType::qm_tunnel(*module),
            Self::General(_) => ProviderContextType::General,
        }
    }

    /// The keying module of an MM or QM policy.
    pub const fn keying_module(&self) -> Option<KeyingModule> {
        match self {
            Self::MainMode { module, .. }
            | Self::Transport { module, .. }
            | Self::Tunnel { module, .. } => Some(*module),
            Self::Keying(_) | Self::General(_) => None,
        }
    }
}

/// Borrowed serde form: one variant per context type, internally tagged.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ReprRef<'a> {
    IpsecKeying(&'a KeyingPolicy),
    IkeQmTransport(&'a IpsecTransportPolicy),
    IkeQmTunnel(&'a IpsecTunnelPolicy),
    AuthipQmTransport(&'a IpsecTransportPolicy),
    AuthipQmTunnel(&'a IpsecTunnelPolicy),
    IkeMm(&'a MainModePolicy),
    AuthipMm(&'a MainModePolicy),
    General { data: &'a [u8] },
    Ikev2QmTunnel(&'a IpsecTunnelPolicy),
    Ikev2Mm(&'a MainModePolicy),
    Ikev2QmTransport(&'a IpsecTransportPolicy),
}

/// Owned serde form, the mirror of [`ReprRef`].
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Repr {
    IpsecKeying(KeyingPolicy),
    IkeQmTransport(IpsecTransportPolicy),
    IkeQmTunnel(IpsecTunnelPolicy),
    AuthipQmTransport(IpsecTransportPolicy),
    AuthipQmTunnel(IpsecTunnelPolicy),
    IkeMm(MainModePolicy),
    AuthipMm(MainModePolicy),
    General { data: Vec<u8> },
    Ikev2QmTunnel(IpsecTunnelPolicy),
    Ikev2Mm(MainModePolicy),
    Ikev2QmTransport(IpsecTransportPolicy),
}

impl Serialize for ProviderContextPolicy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use KeyingModule::{Authip, Ike, Ikev2};
        let repr = match self {
            Self::Keying(p) => ReprRef::IpsecKeying(p),
            Self::MainMode {
                module: Ike,
                policy,
            } => ReprRef::IkeMm(policy),
            Self::MainMode {
                module: Authip,
                policy,
            } => ReprRef::AuthipMm(policy),
            Self::MainMode {
                module: Ikev2,
                policy,
            } => ReprRef::Ikev2Mm(policy),
            Self::Transport {
                module: Ike,
                policy,
            } => ReprRef::IkeQmTransport(policy),
            Self::Transport {
                module: Authip,
                policy,
            } => ReprRef::AuthipQmTransport(policy),
            Self::Transport {
                module: Ikev2,
                policy,
            } => ReprRef::Ikev2QmTransport(policy),
            Self::Tunnel {
                module: Ike,
                policy,
            } => ReprRef::IkeQmTunnel(policy),
            Self::Tunnel {
                module: Authip,
                policy,
            } => ReprRef::AuthipQmTunnel(policy),
            Self::Tunnel {
                module: Ikev2,
                policy,
            } => ReprRef::Ikev2QmTunnel(policy),
            Self::General(data) => ReprRef::General { data },
        };
        repr.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ProviderContextPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use KeyingModule::{Authip, Ike, Ikev2};
        Ok(match Repr::deserialize(deserializer)? {
            Repr::IpsecKeying(p) => Self::Keying(p),
            Repr::IkeMm(policy) => Self::MainMode {
                module: Ike,
                policy,
            },
            Repr::AuthipMm(policy) => Self::MainMode {
                module: Authip,
                policy,
            },
            Repr::Ikev2Mm(policy) => Self::MainMode {
                module: Ikev2,
                policy,
            },
            Repr::IkeQmTransport(policy) => Self::Transport {
                module: Ike,
                policy,
            },
            Repr::AuthipQmTransport(policy) => Self::Transport {
                module: Authip,
                policy,
            },
            Repr::Ikev2QmTransport(policy) => Self::Transport {
                module: Ikev2,
                policy,
            },
            Repr::IkeQmTunnel(policy) => Self::Tunnel {
                module: Ike,
                policy,
            },
            Repr::AuthipQmTunnel(policy) => Self::Tunnel {
                module: Authip,
                policy,
            },
            Repr::Ikev2QmTunnel(policy) => Self::Tunnel {
                module: Ikev2,
                policy,
            },
            Repr::General { data } => Self::General(data),
        })
    }
}
