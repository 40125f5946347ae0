//! Values: what a classification supplies for each field ([`FieldValues`]) and the scalar
//! and token types conditions compare them with.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::field::{FIELD_COUNT, Field};

/// An ordered value of fixed size: what ranges, prefixes and the index work on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scalar {
    /// One byte.
    U8(u8),
    /// A port or other 16-bit number.
    U16(u16),
    /// A 32-bit number or flag set.
    U32(u32),
    /// A 64-bit number.
    U64(u64),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address.
    V6(Ipv6Addr),
    /// A GUID.
    Guid(Uuid),
}

/// The kind of a [`Scalar`], to check that two scalars are comparable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScalarKind {
    /// [`Scalar::U8`].
    U8,
    /// [`Scalar::U16`].
    U16,
    /// [`Scalar::U32`].
    U32,
    /// [`Scalar::U64`].
    U64,
    /// [`Scalar::V4`].
    V4,
    /// [`Scalar::V6`].
    V6,
    /// [`Scalar::Guid`].
    Guid,
}

impl Scalar {
    /// The value as an unsigned number that orders like the value itself. Two scalars of
    /// one kind compare as their keys do.
    #[inline]
    pub fn key(&self) -> u128 {
        match *self {
            Scalar::U8(v) => v.into(),
            Scalar::U16(v) => v.into(),
            Scalar::U32(v) => v.into(),
            Scalar::U64(v) => v.into(),
            Scalar::V4(a) => u32::from(a).into(),
            Scalar::V6(a) => u128::from(a),
            Scalar::Guid(g) => g.as_u128(),
        }
    }

    /// The scalar's kind.
    pub fn kind(&self) -> ScalarKind {
        match self {
            Scalar::U8(_) => ScalarKind::U8,
            Scalar::U16(_) => ScalarKind::U16,
            Scalar::U32(_) => ScalarKind::U32,
            Scalar::U64(_) => ScalarKind::U64,
            Scalar::V4(_) => ScalarKind::V4,
            Scalar::V6(_) => ScalarKind::V6,
            Scalar::Guid(_) => ScalarKind::Guid,
        }
    }
}

impl ScalarKind {
    /// The number of bits of the kind's values.
    pub fn bits(self) -> u32 {
        match self {
            ScalarKind::U8 => 8,
            ScalarKind::U16 => 16,
            ScalarKind::U32 | ScalarKind::V4 => 32,
            ScalarKind::U64 => 64,
            ScalarKind::V6 | ScalarKind::Guid => 128,
        }
    }

    /// The largest key of the kind.
    pub fn max_key(self) -> u128 {
        match self.bits() {
            128 => u128::MAX,
            b => (1u128 << b) - 1,
        }
    }
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::U8(v) => write!(f, "{v}"),
            Scalar::U16(v) => write!(f, "{v}"),
            Scalar::U32(v) => write!(f, "{v}"),
            Scalar::U64(v) => write!(f, "{v}"),
            Scalar::V4(a) => write!(f, "{a}"),
            Scalar::V6(a) => write!(f, "{a}"),
            Scalar::Guid(g) => write!(f, "{g}"),
        }
    }
}

/// A set of identities: a local user's uid and gids, or the names a peer authenticated
/// with (IKE identities such as an FQDN or a certificate's subject).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// The user id, for a local user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The group ids, for a local user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gids: Vec<u32>,
    /// Authenticated names, for a peer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

impl Token {
    /// A local user's token.
    pub fn user(uid: u32, gids: impl Into<Vec<u32>>) -> Token {
        Token {
            uid: Some(uid),
            gids: gids.into(),
            names: Vec::new(),
        }
    }

    /// A peer's token from the identities it authenticated with.
    pub fn peer<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Token {
        Token {
            uid: None,
            gids: Vec::new(),
            names: names.into_iter().map(Into::into).collect(),
        }
    }
}

/// A value supplied for one field at classification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// A scalar.
    Scalar(Scalar),
    /// Text (an executable path, a peer name).
    Text(String),
    /// Credentials or authenticated identities.
    Token(Token),
}

impl Value {
    /// The scalar inside, if the value is one.
    #[inline]
    pub fn scalar(&self) -> Option<&Scalar> {
        match self {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }
}

impl From<Scalar> for Value {
    fn from(s: Scalar) -> Value {
        Value::Scalar(s)
    }
}

/// The values a classification supplies, one optional slot per [`Field`]. A field left
/// empty matches no condition on it.
///
/// Keep one per thread and overwrite it per packet: setting scalar fields does not
/// allocate.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldValues {
    slots: [Option<Value>; FIELD_COUNT],
}

impl Default for FieldValues {
    fn default() -> Self {
        FieldValues {
            slots: std::array::from_fn(|_| None),
        }
    }
}

impl FieldValues {
    /// No values.
    pub fn new() -> FieldValues {
        FieldValues::default()
    }

    /// Sets a field, returning `self` for chaining.
    pub fn with(mut self, field: Field, value: impl Into<Value>) -> FieldValues {
        self.set(field, value);
        self
    }

    /// Sets a field.
    #[inline]
    pub fn set(&mut self, field: Field, value: impl Into<Value>) {
        self.slots[field.index()] = Some(value.into());
    }

    /// Empties a field.
    pub fn unset(&mut self, field: Field) {
        self.slots[field.index()] = None;
    }

    /// The value of a field.
    #[inline]
    pub fn get(&self, field: Field) -> Option<&Value> {
        self.slots[field.index()].as_ref()
    }

    /// The fields that have values, with their values.
    pub fn iter(&self) -> impl Iterator<Item = (Field, &Value)> {
        Field::ALL
            .iter()
            .zip(self.slots.iter())
            .filter_map(|(f, v)| v.as_ref().map(|v| (*f, v)))
    }
}

/// `IP_LOCAL_ADDRESS_TYPE` and `IP_DESTINATION_ADDRESS_TYPE` values (`NL_ADDRESS_TYPE`).
pub mod address_type {
    /// Unspecified.
    pub const UNSPECIFIED: u8 = 0;
    /// Unicast.
    pub const UNICAST: u8 = 1;
    /// Anycast.
    pub const ANYCAST: u8 = 2;
    /// Multicast.
    pub const MULTICAST: u8 = 3;
    /// Broadcast.
    pub const BROADCAST: u8 = 4;
}

/// `FLAGS` bits (`FWP_CONDITION_FLAG_*`) that Palisade sets.
pub mod condition_flag {
    /// The packet is a loopback packet.
    pub const IS_LOOPBACK: u32 = 0x1;
    /// The packet arrived protected by IPsec, or the connection is secured.
    pub const IS_IPSEC_SECURED: u32 = 0x2;
    /// The classification is a reauthorization.
    pub const IS_REAUTHORIZE: u32 = 0x4;
    /// The packet is a fragment.
    pub const IS_FRAGMENT: u32 = 0x20;
    /// The packet is classified again after NAT-T decapsulation.
    pub const IS_IPSEC_NATT_RECLASSIFY: u32 = 0x80;
}

/// `KM_TYPE` values (`IKEEXT_KEY_MODULE_TYPE`).
pub mod km_type {
    /// IKEv1.
    pub const IKE: u8 = 0;
    /// AuthIP.
    pub const AUTHIP: u8 = 1;
    /// IKEv2.
    pub const IKEV2: u8 = 2;
}

/// `KM_MODE` values: which exchange the SA being authorized comes from.
pub mod km_mode {
    /// Main mode (IKE_SA).
    pub const MAIN: u8 = 0;
    /// Quick mode (CHILD_SA).
    pub const QUICK: u8 = 1;
    /// AuthIP extended mode.
    pub const EXTENDED: u8 = 2;
}

/// `AUTHENTICATION_TYPE` values (`IKEEXT_AUTHENTICATION_METHOD_TYPE`).
pub mod auth_type {
    /// Pre-shared key.
    pub const PRESHARED_KEY: u8 = 0;
    /// Certificate.
    pub const CERTIFICATE: u8 = 1;
    /// Kerberos.
    pub const KERBEROS: u8 = 2;
    /// Anonymous.
    pub const ANONYMOUS: u8 = 3;
    /// TLS.
    pub const SSL: u8 = 4;
    /// NTLMv2.
    pub const NTLM_V2: u8 = 5;
    /// CGA.
    pub const IPV6_CGA: u8 = 6;
    /// ECDSA P-256 certificate.
    pub const CERTIFICATE_ECDSA_P256: u8 = 7;
    /// ECDSA P-384 certificate.
    pub const CERTIFICATE_ECDSA_P384: u8 = 8;
    /// EAP.
    pub const EAP: u8 = 11;
}
