//! Keying modules and `IPSEC_KEYING_POLICY1`, the policy read at the `IPSEC_KM_DEMUX`
//! layers to decide which keying modules an initiator tries.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `FWPM_KEYING_MODULE_IKE` (fwpmu.h): a9bbf787-82a8-45bb-a400-5d7e5952c7a9.
pub const FWPM_KEYING_MODULE_IKE: Uuid = Uuid::from_u128(0xa9bbf787_82a8_45bb_a400_5d7e5952c7a9);
/// `FWPM_KEYING_MODULE_AUTHIP` (fwpmu.h): 11e3dae0-dd26-4590-857d-ab4b28d1a095.
pub const FWPM_KEYING_MODULE_AUTHIP: Uuid = Uuid::from_u128(0x11e3dae0_dd26_4590_857d_ab4b28d1a095);
/// `FWPM_KEYING_MODULE_IKEV2` (fwpmu.h): 041792cc-8f07-419d-a394-716968cb1647.
pub const FWPM_KEYING_MODULE_IKEV2: Uuid = Uuid::from_u128(0x041792cc_8f07_419d_a394_716968cb1647);

/// `IPSEC_KEYING_POLICY_FLAG_TERMINATING_MATCH`. Microsoft's only description ("forces the
/// use of a Kerberos proxy server when acting as initiator") looks wrong (spec §8), so
/// Palisade stores the bit and hands it back but gives it no meaning of its own yet.
pub const IPSEC_KEYING_POLICY_FLAG_TERMINATING_MATCH: u32 = 0x1;

/// All `IPSEC_KEYING_POLICY_FLAG_*` bits Palisade knows; anything else is a typo.
pub(crate) const KEYING_POLICY_KNOWN_FLAGS: u32 = IPSEC_KEYING_POLICY_FLAG_TERMINATING_MATCH;

/// A built-in keying module. Serde names: `ike`, `authip`, `ikev2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyingModule {
    /// IKEv1 (RFC 2409).
    Ike,
    /// Microsoft's Authenticated IP ([MS-AIPS]), an IKEv1 extension.
    Authip,
    /// IKEv2 (RFC 7296), the module Palisade itself implements.
    Ikev2,
}

impl KeyingModule {
    /// Every module, in `IKEEXT_KEY_MODULE_TYPE` order.
    pub const ALL: [Self; 3] = [Self::Ike, Self::Authip, Self::Ikev2];

    /// The module's `FWPM_KEYING_MODULE_*` GUID.
    pub const fn guid(self) -> Uuid {
        match self {
            Self::Ike => FWPM_KEYING_MODULE_IKE,
            Self::Authip => FWPM_KEYING_MODULE_AUTHIP,
            Self::Ikev2 => FWPM_KEYING_MODULE_IKEV2,
        }
    }

    /// The module whose `FWPM_KEYING_MODULE_*` GUID this is.
    pub fn from_guid(guid: Uuid) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.guid() == guid)
    }

    /// WFP-style name (`IKE`, `AUTHIP`, `IKEV2`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ike => "IKE",
            Self::Authip => "AUTHIP",
            Self::Ikev2 => "IKEV2",
        }
    }
}

impl fmt::Display for KeyingModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `IPSEC_KEYING_POLICY1`: the keying modules an initiator may try for matching traffic.
///
/// ```json
/// { "keying_modules": ["authip", "ikev2"], "flags": 0 }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyingPolicy {
    /// `keyModKeys`: distinct modules. WFP calls the set unordered; when peers share more
    /// than one, AuthIP is preferred (spec §4.1).
    pub keying_modules: Vec<KeyingModule>,
    /// `IPSEC_KEYING_POLICY_FLAG_*` bits.
    #[serde(default)]
    pub flags: u32,
}

impl KeyingPolicy {
    /// A policy allowing `modules`, with no flags.
    pub fn new(modules: impl Into<Vec<KeyingModule>>) -> Self {
        Self {
            keying_modules: modules.into(),
            flags: 0,
        }
    }

    /// Only IKEv2: the usual choice on Linux, where peers seldom speak AuthIP.
    pub fn ikev2_only() -> Self {
        Self::new([KeyingModule::Ikev2])
    }
}
