//! Address sets as administrators write them: `any`, an address, a prefix
//! (`10.0.0.0/8`, `2001:db8::/32`) or a range (`10.0.0.1-10.0.0.9`).

use std::net::IpAddr;

use palisade_filter::{Condition, ConditionValue, Family, Field, MatchType, Scalar};

/// What an address-set entry must look like, for error messages.
pub const EXPECTED: &str =
    "expected `any`, an address, a prefix like 10.0.0.0/8 or a range 10.0.0.1-10.0.0.9";

/// One entry of an address set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressItem {
    /// Every address of both families.
    Any,
    /// A prefix (one address is a full-length prefix).
    Prefix(IpAddr, u8),
    /// An inclusive range of one family.
    Range(IpAddr, IpAddr),
}

impl AddressItem {
    /// Parses one entry; the error says what is wrong.
    pub fn parse(text: &str) -> Result<AddressItem, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("any") {
            return Ok(AddressItem::Any);
        }
        if let Some((addr, len)) = t.split_once('/') {
            let addr: IpAddr = addr
                .trim()
                .parse()
                .map_err(|_| format!("{text:?}: {EXPECTED}"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let len: u8 = len
                .trim()
                .parse()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0-{max}"))?;
            if network(addr, len) != addr {
                return Err(format!(
                    "{text:?} has bits set beyond /{len}; did you mean {}/{len}?",
                    network(addr, len)
                ));
            }
            return Ok(AddressItem::Prefix(addr, len));
        }
        if let Some((low, high)) = t.split_once('-') {
            let parse = |s: &str| s.trim().parse::<IpAddr>().ok();
            let (Some(low), Some(high)) = (parse(low), parse(high)) else {
                return Err(format!("{text:?}: {EXPECTED}"));
            };
            if low.is_ipv4() != high.is_ipv4() {
                return Err(format!("{text:?}: a range's ends must be of one family"));
            }
            if low > high {
                return Err(format!(
                    "{text:?}: the range's first address is above its last"
                ));
            }
            return Ok(AddressItem::Range(low, high));
        }
        let addr: IpAddr = t.parse().map_err(|_| format!("{text:?}: {EXPECTED}"))?;
        Ok(AddressItem::Prefix(
            addr,
            if addr.is_ipv4() { 32 } else { 128 },
        ))
    }

    /// The entry's family; `None` for `any`.
    pub fn family(self) -> Option<Family> {
        let addr = match self {
            AddressItem::Any => return None,
            AddressItem::Prefix(a, _) | AddressItem::Range(a, _) => a,
        };
        Some(if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        })
    }

    /// The condition matching this entry on `field`; `None` for `any`.
    pub fn condition(self, field: Field) -> Option<Condition> {
        match self {
            AddressItem::Any => None,
            AddressItem::Prefix(a, len) => Some(Condition::new(
                field,
                MatchType::Equal,
                ConditionValue::Prefix {
                    addr: scalar(a),
                    len,
                },
            )),
            AddressItem::Range(low, high) => {
                Some(Condition::range(field, scalar(low), scalar(high)))
            }
        }
    }
}

/// An address as a condition scalar.
pub fn scalar(addr: IpAddr) -> Scalar {
    match addr {
        IpAddr::V4(a) => Scalar::V4(a),
        IpAddr::V6(a) => Scalar::V6(a),
    }
}

/// The address's family.
pub fn family(addr: IpAddr) -> Family {
    if addr.is_ipv4() {
        Family::V4
    } else {
        Family::V6
    }
}

fn network(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse() {
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert_eq!(AddressItem::parse("any"), Ok(AddressItem::Any));
        assert_eq!(
            AddressItem::parse("10.0.0.0/8"),
            Ok(AddressItem::Prefix(v4("10.0.0.0"), 8))
        );
        assert_eq!(
            AddressItem::parse("10.0.0.1 - 10.0.0.9"),
            Ok(AddressItem::Range(v4("10.0.0.1"), v4("10.0.0.9")))
        );
        assert_eq!(
            AddressItem::parse("192.0.2.7"),
            Ok(AddressItem::Prefix(v4("192.0.2.7"), 32))
        );
        assert!(AddressItem::parse("10.0.0.1/8").is_err());
        assert!(AddressItem::parse("10.0.0.0/33").is_err());
        assert!(AddressItem::parse("10.0.0.300").is_err());
        assert!(AddressItem::parse("10.0.0.9-10.0.0.1").is_err());
        assert!(AddressItem::parse("2001:db8::/32").is_ok());
    }
}
