//! Filter weights (spec §5): given verbatim, automatic from the conditions' specificity,
//! or a range 0-15 in the top four bits with automatic low bits.

use serde::{Deserialize, Serialize};

use crate::condition::{Condition, ConditionValue, MatchType};
use crate::field::Field;

/// How many low bits automatic weighting fills (`FWPM_AUTO_WEIGHT_BITS`).
pub const AUTO_WEIGHT_BITS: u32 = 60;

/// WFP's weight ranges for IPsec policy (`FWPM_WEIGHT_RANGE_IPSEC`).
pub const WEIGHT_RANGE_IPSEC: u8 = 0x0;
/// WFP's weight range for IKE and ICMP exemptions (`FWPM_WEIGHT_RANGE_IKE_EXEMPTIONS`).
pub const WEIGHT_RANGE_IKE_EXEMPTIONS: u8 = 0xC;

/// The weight a filter is added with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weight {
    /// `FWP_EMPTY`: computed from the conditions, in `[0, 2^60)`.
    #[default]
    Auto,
    /// `FWP_UINT8` 0-15: that value in the top four bits, the rest automatic.
    Range(u8),
    /// `FWP_UINT64`: used as given.
    Exact(u64),
}

impl Weight {
    /// The effective weight of a filter with these conditions; `None` if a range is above 15.
    pub fn effective(self, conditions: &[Condition]) -> Option<u64> {
        match self {
            Weight::Exact(w) => Some(w),
            Weight::Auto => Some(auto_weight(conditions)),
            Weight::Range(r) if r <= 15 => {
                Some((u64::from(r) << AUTO_WEIGHT_BITS) | auto_weight(conditions))
            }
            Weight::Range(_) => None,
        }
    }
}

/// Slots of six bits each, most significant first: a filter more specific on an earlier
/// slot outranks any filter less specific there, whatever the later slots say. Addresses
/// come first because they are what administrators scope policies by; WFP does not
/// publish its own order, so this one is Palisade's.
fn slot(field: Field) -> usize {
    use Field::*;
    match field {
        IpRemoteAddress | IpDestinationAddress | RemoteId => 0,
        IpLocalAddress | IpSourceAddress => 1,
        IpProtocol | KmType => 2,
        IpRemotePort | KmMode => 3,
        IpLocalPort | AuthenticationType => 4,
        AleAppId | PeerName | IpsecPolicyKey => 5,
        AleUserId | AleRemoteUserId | AleRemoteMachineId => 6,
        IpLocalInterface | IpForwardInterface | InterfaceIndex | SubInterfaceIndex => 7,
        InterfaceType | TunnelType | IpLocalAddressType | IpDestinationAddressType | Direction => 8,
        Flags | CurrentProfileId | ReauthorizeReason => 9,
    }
}

const SLOTS: usize = 10;
const SLOT_MAX: u64 = 63;

/// How specific one condition is, from 0 (matches nearly anything) to 63 (one value).
fn specificity(c: &Condition) -> u64 {
    if let (Some(set), Some(kind)) = (c.intervals(), c.scalar_kind()) {
        let bits = u64::from(kind.bits());
        let size: u128 = set
            .as_slice()
            .iter()
            .map(|(lo, hi)| (hi - lo).saturating_add(1))
            .fold(0u128, u128::saturating_add);
        // log2 of the number of values matched, rounded up: 0 for one value.
        let log = match size {
            0 | 1 => 0,
            n => u64::from(128 - (n - 1).leading_zeros()),
        };
        return (bits.saturating_sub(log) * SLOT_MAX).div_ceil(bits.max(1));
    }
    match (&c.value, c.match_type) {
        (ConditionValue::Text(_), MatchType::Equal | MatchType::EqualCaseInsensitive) => SLOT_MAX,
        (ConditionValue::Text(_), MatchType::Prefix) => 40,
        (ConditionValue::Sd(_), MatchType::Equal) => 48,
        (ConditionValue::Scalar(_), MatchType::FlagsAllSet) => 24,
        _ => 8,
    }
}

/// The automatic weight of a filter with these conditions, in `[0, 2^60)`.
///
/// Consecutive conditions on one field are alternatives, so the group is as specific as
/// its least specific member; each slot keeps its most specific group.
pub fn auto_weight(conditions: &[Condition]) -> u64 {
    let mut slots = [0u64; SLOTS];
    let mut i = 0;
    while i < conditions.len() {
        let field = conditions[i].field;
        let mut group = SLOT_MAX;
        while i < conditions.len() && conditions[i].field == field {
            group = group.min(specificity(&conditions[i]));
            i += 1;
        }
        let s = &mut slots[slot(field)];
        *s = (*s).max(group);
    }
    slots.iter().fold(0u64, |acc, s| (acc << 6) | s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::ConditionValue;
    use crate::value::Scalar;
    use std::net::Ipv4Addr;

    fn prefix(len: u8) -> Condition {
        Condition::new(
            Field::IpRemoteAddress,
            MatchType::Equal,
            ConditionValue::v4_prefix(Ipv4Addr::new(10, 0, 0, 0), len),
        )
    }

    #[test]
    fn longer_prefixes_weigh_more() {
        let w: Vec<u64> = [0u8, 8, 16, 24, 32]
            .iter()
            .map(|l| auto_weight(&[prefix(*l)]))
            .collect();
        assert!(w.windows(2).all(|p| p[0] < p[1]), "{w:?}");
        assert!(w.iter().all(|w| *w < 1 << AUTO_WEIGHT_BITS));
    }

    #[test]
    fn earlier_slots_dominate() {
        let port = Condition::equal(Field::IpRemotePort, Scalar::U16(443));
        let with_port = auto_weight(&[prefix(8), port]);
        assert!(auto_weight(&[prefix(9)]) > with_port);
        assert!(with_port > auto_weight(&[prefix(8)]));
        assert_eq!(auto_weight(&[]), 0);
    }

    #[test]
    fn alternatives_weigh_as_the_widest() {
        let two = [prefix(24), prefix(8)];
        assert_eq!(auto_weight(&two), auto_weight(&[prefix(8)]));
    }

    #[test]
    fn ranges_put_the_range_on_top() {
        let w = Weight::Range(WEIGHT_RANGE_IKE_EXEMPTIONS)
            .effective(&[prefix(32)])
            .expect("range in 0-15");
        assert_eq!(w >> AUTO_WEIGHT_BITS, 0xC);
        assert_eq!(
            w & ((1 << AUTO_WEIGHT_BITS) - 1),
            auto_weight(&[prefix(32)])
        );
        assert_eq!(Weight::Range(16).effective(&[]), None);
        assert_eq!(Weight::Exact(7).effective(&[prefix(32)]), Some(7));
    }
}
