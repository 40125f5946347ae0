//! Filter conditions (`FWPM_FILTER_CONDITION0`): a field, a match type and a value, how
//! they are checked when a filter is added, and how they match.

use serde::{Deserialize, Serialize};

use crate::field::{Field, FieldType};
use crate::layer::{Family, Layer};
use crate::value::{Scalar, ScalarKind, Token, Value};

/// How a condition compares the field's value with its own (`FWP_MATCH_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchType {
    /// Equal; with a prefix, inside it; with a security descriptor, granted by it.
    Equal,
    /// Greater than the condition's value.
    Greater,
    /// Less than the condition's value.
    Less,
    /// Greater than or equal.
    GreaterOrEqual,
    /// Less than or equal.
    LessOrEqual,
    /// Inside the condition's range (inclusive).
    Range,
    /// Every flag of the condition's value is set.
    FlagsAllSet,
    /// At least one flag of the condition's value is set.
    FlagsAnySet,
    /// None of the condition's flags is set.
    FlagsNoneSet,
    /// Equal text, ignoring ASCII case.
    EqualCaseInsensitive,
    /// Not equal (the negation of [`MatchType::Equal`]).
    NotEqual,
    /// Inside an address prefix, or text that starts with the condition's text.
    Prefix,
    /// The negation of [`MatchType::Prefix`].
    NotPrefix,
}

impl MatchType {
    /// The WFP name without `FWP_MATCH_`.
    pub fn name(self) -> &'static str {
        match self {
            MatchType::Equal => "EQUAL",
            MatchType::Greater => "GREATER",
            MatchType::Less => "LESS",
            MatchType::GreaterOrEqual => "GREATER_OR_EQUAL",
            MatchType::LessOrEqual => "LESS_OR_EQUAL",
            MatchType::Range => "RANGE",
            MatchType::FlagsAllSet => "FLAGS_ALL_SET",
            MatchType::FlagsAnySet => "FLAGS_ANY_SET",
            MatchType::FlagsNoneSet => "FLAGS_NONE_SET",
            MatchType::EqualCaseInsensitive => "EQUAL_CASE_INSENSITIVE",
            MatchType::NotEqual => "NOT_EQUAL",
            MatchType::Prefix => "PREFIX",
            MatchType::NotPrefix => "NOT_PREFIX",
        }
    }
}

/// Who a security descriptor names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Principal {
    /// Anyone, including a token with no identity.
    Everyone,
    /// A local user.
    Uid(u32),
    /// Members of a local group.
    Gid(u32),
    /// A peer that authenticated with this identity (compared ignoring ASCII case, as
    /// FQDNs and distinguished names are).
    Name(String),
}

impl Principal {
    fn names(&self, token: &Token) -> bool {
        match self {
            Principal::Everyone => true,
            Principal::Uid(u) => token.uid == Some(*u),
            Principal::Gid(g) => token.gids.contains(g),
            Principal::Name(n) => token.names.iter().any(|t| t.eq_ignore_ascii_case(n)),
        }
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::Everyone => f.write_str("everyone"),
            Principal::Uid(u) => write!(f, "uid {u}"),
            Principal::Gid(g) => write!(f, "gid {g}"),
            Principal::Name(n) => write!(f, "{n:?}"),
        }
    }
}

/// The Linux stand-in for WFP's `FWP_SECURITY_DESCRIPTOR_TYPE` in the user and identity
/// conditions: an access check against a token. Deny entries win over allow entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityDescriptor {
    /// Principals granted.
    #[serde(default)]
    pub allow: Vec<Principal>,
    /// Principals refused, whatever `allow` says.
    #[serde(default)]
    pub deny: Vec<Principal>,
}

impl SecurityDescriptor {
    /// Grants the principals listed.
    pub fn allow(principals: impl Into<Vec<Principal>>) -> SecurityDescriptor {
        SecurityDescriptor {
            allow: principals.into(),
            deny: Vec::new(),
        }
    }

    /// Whether the token is granted access.
    pub fn grants(&self, token: &Token) -> bool {
        !self.deny.iter().any(|p| p.names(token)) && self.allow.iter().any(|p| p.names(token))
    }
}

/// The value a condition compares with (`FWP_CONDITION_VALUE0`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionValue {
    /// One value.
    Scalar(Scalar),
    /// An address prefix (`FWP_V4_ADDR_MASK`, `FWP_V6_ADDR_AND_MASK`): `addr` is a
    /// [`Scalar::V4`] or [`Scalar::V6`], `len` its prefix length.
    Prefix {
        /// The network address.
        addr: Scalar,
        /// The prefix length in bits.
        len: u8,
    },
    /// An inclusive range of one kind of scalar (`FWP_RANGE0`).
    Range {
        /// The lowest value inside.
        low: Scalar,
        /// The highest value inside.
        high: Scalar,
    },
    /// Text.
    Text(String),
    /// A security descriptor, for token fields.
    Sd(SecurityDescriptor),
}

impl ConditionValue {
    /// An IPv4 prefix.
    pub fn v4_prefix(addr: std::net::Ipv4Addr, len: u8) -> ConditionValue {
        ConditionValue::Prefix {
            addr: Scalar::V4(addr),
            len,
        }
    }

    /// An IPv6 prefix.
    pub fn v6_prefix(addr: std::net::Ipv6Addr, len: u8) -> ConditionValue {
        ConditionValue::Prefix {
            addr: Scalar::V6(addr),
            len,
        }
    }
}

impl std::fmt::Display for ConditionValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConditionValue::Scalar(s) => write!(f, "{s}"),
            ConditionValue::Prefix { addr, len } => write!(f, "{addr}/{len}"),
            ConditionValue::Range { low, high } => write!(f, "{low}-{high}"),
            ConditionValue::Text(t) => write!(f, "{t:?}"),
            ConditionValue::Sd(sd) => {
                f.write_str("allow [")?;
                for (i, p) in sd.allow.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{p}")?;
                }
                f.write_str("]")?;
                if !sd.deny.is_empty() {
                    f.write_str(" deny [")?;
                    for (i, p) in sd.deny.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{p}")?;
                    }
                    f.write_str("]")?;
                }
                Ok(())
            }
        }
    }
}

/// One condition of a filter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The field tested.
    pub field: Field,
    /// How it is compared.
    #[serde(rename = "match")]
    pub match_type: MatchType,
    /// What it is compared with.
    pub value: ConditionValue,
}

/// Why a condition cannot be added.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    /// The layer does not offer the field.
    #[error("{field} is not a condition field of layer {layer}")]
    FieldNotAtLayer {
        /// The field.
        field: Field,
        /// The layer.
        layer: Layer,
    },
    /// The value's type does not fit the field.
    #[error("{field} takes {expected}, not {value}")]
    ValueType {
        /// The field.
        field: Field,
        /// What the field takes.
        expected: &'static str,
        /// The value given.
        value: String,
    },
    /// The match type cannot be used with this value.
    #[error("match type {} cannot compare {field} with {value}", match_type.name())]
    MatchType {
        /// The field.
        field: Field,
        /// The match type.
        match_type: MatchType,
        /// The value given.
        value: String,
    },
    /// A prefix length longer than the address.
    #[error("{field}: prefix length {len} is longer than the address")]
    PrefixLength {
        /// The field.
        field: Field,
        /// The length given.
        len: u8,
    },
    /// A prefix with host bits set, which would hide a typo.
    #[error("{field}: {value} has bits set beyond its prefix length")]
    PrefixHostBits {
        /// The field.
        field: Field,
        /// The value given.
        value: String,
    },
    /// A range whose ends differ in type or whose low end is above its high end.
    #[error("{field}: range {value} is empty or mixes types")]
    Range {
        /// The field.
        field: Field,
        /// The value given.
        value: String,
    },
}

/// At most two inclusive intervals of scalar keys: the set of values a condition matches,
/// when it can be written so (everything but flags, text and security descriptors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Intervals {
    items: [(u128, u128); 2],
    len: u8,
}

impl Intervals {
    const EMPTY: Intervals = Intervals {
        items: [(0, 0); 2],
        len: 0,
    };

    fn one(lo: u128, hi: u128) -> Intervals {
        let mut s = Intervals::EMPTY;
        s.push(lo, hi);
        s
    }

    fn push(&mut self, lo: u128, hi: u128) {
        if lo <= hi {
            self.items[usize::from(self.len)] = (lo, hi);
            self.len += 1;
        }
    }

    /// Everything except `[lo, hi]` in `[0, max]`.
    fn complement(lo: u128, hi: u128, max: u128) -> Intervals {
        let mut s = Intervals::EMPTY;
        if lo > 0 {
            s.push(0, lo - 1);
        }
        if hi < max {
            s.push(hi + 1, max);
        }
        s
    }

    /// The intervals, ascending and disjoint.
    pub fn as_slice(&self) -> &[(u128, u128)] {
        &self.items[..usize::from(self.len)]
    }
}

fn prefix_bounds(addr: &Scalar, len: u8) -> (u128, u128) {
    let bits = addr.kind().bits();
    let host = bits - u32::from(len).min(bits);
    let mask = if host >= 128 {
        u128::MAX
    } else {
        (1u128 << host) - 1
    };
    let key = addr.key();
    (key & !mask, key | mask)
}

impl Condition {
    /// A condition.
    pub fn new(field: Field, match_type: MatchType, value: ConditionValue) -> Condition {
        Condition {
            field,
            match_type,
            value,
        }
    }

    /// `field == value`.
    pub fn equal(field: Field, value: Scalar) -> Condition {
        Condition::new(field, MatchType::Equal, ConditionValue::Scalar(value))
    }

    /// `field` inside `[low, high]`.
    pub fn range(field: Field, low: Scalar, high: Scalar) -> Condition {
        Condition::new(field, MatchType::Range, ConditionValue::Range { low, high })
    }

    /// Checks that the condition can be used at `layer` (spec §2 and §5).
    pub fn validate(&self, layer: Layer) -> Result<(), ConditionError> {
        let field = self.field;
        if !layer.has_field(field) {
            return Err(ConditionError::FieldNotAtLayer { field, layer });
        }
        let value = || self.value.to_string();
        let scalar_fits = |s: &Scalar| match field.field_type() {
            FieldType::Address => match layer.family() {
                Some(Family::V4) => s.kind() == ScalarKind::V4,
                Some(Family::V6) => s.kind() == ScalarKind::V6,
                None => false,
            },
            FieldType::U8 => s.kind() == ScalarKind::U8,
            FieldType::U16 => s.kind() == ScalarKind::U16,
            FieldType::U32 => s.kind() == ScalarKind::U32,
            FieldType::U64 => s.kind() == ScalarKind::U64,
            FieldType::Guid => s.kind() == ScalarKind::Guid,
            FieldType::Text | FieldType::Token => false,
        };
        let expected = match field.field_type() {
            FieldType::Address => match layer.family() {
                Some(Family::V6) => "an IPv6 address, prefix or range",
                _ => "an IPv4 address, prefix or range",
            },
            FieldType::U8 => "an 8-bit number or range",
            FieldType::U16 => "a 16-bit number or range",
            FieldType::U32 => "a 32-bit number or range",
            FieldType::U64 => "a 64-bit number or range",
            FieldType::Guid => "a GUID",
            FieldType::Text => "text",
            FieldType::Token => "a security descriptor",
        };
        let type_error = || ConditionError::ValueType {
            field,
            expected,
            value: value(),
        };
        let match_error = || ConditionError::MatchType {
            field,
            match_type: self.match_type,
            value: value(),
        };
        use MatchType as M;
        match &self.value {
            ConditionValue::Scalar(s) => {
                if !scalar_fits(s) {
                    return Err(type_error());
                }
                let integer = matches!(
                    s.kind(),
                    ScalarKind::U8 | ScalarKind::U16 | ScalarKind::U32 | ScalarKind::U64
                );
                match self.match_type {
                    M::Equal
                    | M::NotEqual
                    | M::Greater
                    | M::Less
                    | M::GreaterOrEqual
                    | M::LessOrEqual => Ok(()),
                    M::FlagsAllSet | M::FlagsAnySet | M::FlagsNoneSet if integer => Ok(()),
                    _ => Err(match_error()),
                }
            }
            ConditionValue::Prefix { addr, len } => {
                if field.field_type() != FieldType::Address || !scalar_fits(addr) {
                    return Err(type_error());
                }
                if u32::from(*len) > addr.kind().bits() {
                    return Err(ConditionError::PrefixLength { field, len: *len });
                }
                if prefix_bounds(addr, *len).0 != addr.key() {
                    return Err(ConditionError::PrefixHostBits {
                        field,
                        value: value(),
                    });
                }
                match self.match_type {
                    M::Equal | M::NotEqual | M::Prefix | M::NotPrefix => Ok(()),
                    _ => Err(match_error()),
                }
            }
            ConditionValue::Range { low, high } => {
                if !scalar_fits(low) || !scalar_fits(high) {
                    return Err(type_error());
                }
                if low.key() > high.key() {
                    return Err(ConditionError::Range {
                        field,
                        value: value(),
                    });
                }
                match self.match_type {
                    M::Range => Ok(()),
                    _ => Err(match_error()),
                }
            }
            ConditionValue::Text(_) => {
                if field.field_type() != FieldType::Text {
                    return Err(type_error());
                }
                match self.match_type {
                    M::Equal | M::NotEqual | M::EqualCaseInsensitive | M::Prefix | M::NotPrefix => {
                        Ok(())
                    }
                    _ => Err(match_error()),
                }
            }
            ConditionValue::Sd(_) => {
                if field.field_type() != FieldType::Token {
                    return Err(type_error());
                }
                match self.match_type {
                    M::Equal | M::NotEqual => Ok(()),
                    _ => Err(match_error()),
                }
            }
        }
    }

    /// Whether the value matches. An absent value matches no condition, negated ones
    /// included: a filter cannot be satisfied by what the classification did not say.
    #[inline]
    pub fn matches(&self, value: Option<&Value>) -> bool {
        let Some(value) = value else {
            return false;
        };
        use MatchType as M;
        match (&self.value, value) {
            (ConditionValue::Scalar(c), Value::Scalar(v)) => {
                if c.kind() != v.kind() {
                    return false;
                }
                let (v, c) = (v.key(), c.key());
                match self.match_type {
                    M::Equal => v == c,
                    M::NotEqual => v != c,
                    M::Greater => v > c,
                    M::Less => v < c,
                    M::GreaterOrEqual => v >= c,
                    M::LessOrEqual => v <= c,
                    M::FlagsAllSet => v & c == c,
                    M::FlagsAnySet => v & c != 0,
                    M::FlagsNoneSet => v & c == 0,
                    _ => false,
                }
            }
            (ConditionValue::Prefix { addr, len }, Value::Scalar(v)) => {
                if addr.kind() != v.kind() {
                    return false;
                }
                let (lo, hi) = prefix_bounds(addr, *len);
                let inside = (lo..=hi).contains(&v.key());
                match self.match_type {
                    M::Equal | M::Prefix => inside,
                    M::NotEqual | M::NotPrefix => !inside,
                    _ => false,
                }
            }
            (ConditionValue::Range { low, high }, Value::Scalar(v)) => {
                low.kind() == v.kind()
                    && self.match_type == M::Range
                    && (low.key()..=high.key()).contains(&v.key())
            }
            (ConditionValue::Text(c), Value::Text(v)) => match self.match_type {
                M::Equal => v == c,
                M::NotEqual => v != c,
                M::EqualCaseInsensitive => v.eq_ignore_ascii_case(c),
                M::Prefix => v.starts_with(c.as_str()),
                M::NotPrefix => !v.starts_with(c.as_str()),
                _ => false,
            },
            (ConditionValue::Sd(sd), Value::Token(t)) => match self.match_type {
                M::Equal => sd.grants(t),
                M::NotEqual => !sd.grants(t),
                _ => false,
            },
            _ => false,
        }
    }

    /// The scalar keys the condition matches, as at most two intervals, or `None` when the
    /// condition is not an interval condition (flags, text, security descriptors). The
    /// index and enumeration templates use this; it agrees with [`Condition::matches`] on
    /// every scalar of the right kind.
    pub fn intervals(&self) -> Option<Intervals> {
        use MatchType as M;
        match &self.value {
            ConditionValue::Scalar(c) => {
                let (k, max) = (c.key(), c.kind().max_key());
                Some(match self.match_type {
                    M::Equal => Intervals::one(k, k),
                    M::NotEqual => Intervals::complement(k, k, max),
                    M::Greater if k < max => Intervals::one(k + 1, max),
                    M::Greater => Intervals::EMPTY,
                    M::Less if k > 0 => Intervals::one(0, k - 1),
                    M::Less => Intervals::EMPTY,
                    M::GreaterOrEqual => Intervals::one(k, max),
                    M::LessOrEqual => Intervals::one(0, k),
                    _ => return None,
                })
            }
            ConditionValue::Prefix { addr, len } => {
                let (lo, hi) = prefix_bounds(addr, *len);
                match self.match_type {
                    M::Equal | M::Prefix => Some(Intervals::one(lo, hi)),
                    M::NotEqual | M::NotPrefix => {
                        Some(Intervals::complement(lo, hi, addr.kind().max_key()))
                    }
                    _ => None,
                }
            }
            ConditionValue::Range { low, high } if self.match_type == M::Range => {
                Some(Intervals::one(low.key(), high.key()))
            }
            _ => None,
        }
    }

    /// The kind of scalar the condition compares, if it compares scalars.
    pub fn scalar_kind(&self) -> Option<ScalarKind> {
        match &self.value {
            ConditionValue::Scalar(s) => Some(s.kind()),
            ConditionValue::Prefix { addr, .. } => Some(addr.kind()),
            ConditionValue::Range { low, .. } => Some(low.kind()),
            _ => None,
        }
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use MatchType as M;
        let op = match (self.match_type, &self.value) {
            (M::Equal, ConditionValue::Prefix { .. })
            | (M::Prefix, ConditionValue::Prefix { .. }) => "in",
            (M::NotEqual, ConditionValue::Prefix { .. })
            | (M::NotPrefix, ConditionValue::Prefix { .. }) => "not in",
            (M::Equal, ConditionValue::Sd(_)) => "granted by",
            (M::NotEqual, ConditionValue::Sd(_)) => "not granted by",
            (M::Equal, _) => "==",
            (M::NotEqual, _) => "!=",
            (M::Greater, _) => ">",
            (M::Less, _) => "<",
            (M::GreaterOrEqual, _) => ">=",
            (M::LessOrEqual, _) => "<=",
            (M::Range, _) => "in",
            (M::FlagsAllSet, _) => "has all flags",
            (M::FlagsAnySet, _) => "has any flag of",
            (M::FlagsNoneSet, _) => "has none of flags",
            (M::EqualCaseInsensitive, _) => "== (ignoring case)",
            (M::Prefix, _) => "starts with",
            (M::NotPrefix, _) => "does not start with",
        };
        match (self.match_type, &self.value) {
            (M::FlagsAllSet | M::FlagsAnySet | M::FlagsNoneSet, ConditionValue::Scalar(s)) => {
                write!(f, "{} {op} {:#x}", self.field, s.key())
            }
            _ => write!(f, "{} {op} {}", self.field, self.value),
        }
    }
}
