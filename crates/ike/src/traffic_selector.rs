//! Traffic selectors (RFC 7296 §2.9, §3.13): intersection, the responder's
//! narrowing and the initiator's check of what came back.
//!
//! A selector is the policy type [`palisade_filter::policy::TrafficSelector`]
//! (protocol, port range, address range), so what policy says and what goes
//! on the wire are the same values. Protocol 0 means any protocol; a port
//! range with start above end (RFC 7296's OPAQUE) matches nothing here.

use std::net::IpAddr;

use palisade_filter::policy::TrafficSelector;
use palisade_wire::ikev2::{self, AddressRange, TrafficSelectors};

/// Any protocol and port to or from one address.
pub fn host(ip: IpAddr) -> TrafficSelector {
    TrafficSelector::range(ip, ip)
}

/// The traffic both `a` and `b` select, if any.
pub fn intersect(a: &TrafficSelector, b: &TrafficSelector) -> Option<TrafficSelector> {
    if a.start_address.is_ipv4() != b.start_address.is_ipv4()
        || a.end_address.is_ipv4() != a.start_address.is_ipv4()
        || b.end_address.is_ipv4() != b.start_address.is_ipv4()
    {
        return None;
    }
    let protocol_id = match (a.protocol_id, b.protocol_id) {
        (0, p) | (p, 0) => p,
        (p, q) if p == q => p,
        _ => return None,
    };
    let port_start = a.port_start.max(b.port_start);
    let port_end = a.port_end.min(b.port_end);
    let start_address = a.start_address.max(b.start_address);
    let end_address = a.end_address.min(b.end_address);
    (port_start <= port_end && start_address <= end_address).then_some(TrafficSelector {
        protocol_id,
        port_start,
        port_end,
        start_address,
        end_address,
    })
}

/// Whether everything `inner` selects, `outer` selects too.
pub fn contains(outer: &TrafficSelector, inner: &TrafficSelector) -> bool {
    intersect(outer, inner).as_ref() == Some(inner)
}

/// The responder's narrowing (RFC 7296 §2.9): every non-empty intersection
/// of a proposed selector with one the policy allows, in the proposer's
/// order, without duplicates. Empty means TS_UNACCEPTABLE.
pub fn narrow(proposed: &[TrafficSelector], allowed: &[TrafficSelector]) -> Vec<TrafficSelector> {
    let mut out: Vec<TrafficSelector> = Vec::new();
    for p in proposed {
        for a in allowed {
            if let Some(ts) = intersect(p, a)
                && !out.contains(&ts)
            {
                out.push(ts);
            }
        }
    }
    out
}

/// Whether every selector the responder returned lies within one we proposed.
pub fn all_within(returned: &[TrafficSelector], proposed: &[TrafficSelector]) -> bool {
    !returned.is_empty()
        && returned
            .iter()
            .all(|r| proposed.iter().any(|p| contains(p, r)))
}

/// The wire form of a selector.
pub fn to_wire(ts: &TrafficSelector) -> ikev2::TrafficSelector<'static> {
    ikev2::TrafficSelector::Range(AddressRange {
        ip_protocol_id: ts.protocol_id,
        start_port: ts.port_start,
        end_port: ts.port_end,
        start_address: ts.start_address,
        end_address: ts.end_address,
    })
}

/// The address-range selectors of a TS payload; other TS types (security
/// labels) are not understood and left out, which can only narrow.
pub fn from_wire(payload: &TrafficSelectors<'_>) -> Vec<TrafficSelector> {
    payload
        .selectors()
        .filter_map(|s| match s {
            ikev2::TrafficSelector::Range(r) => Some(TrafficSelector {
                protocol_id: r.ip_protocol_id,
                port_start: r.start_port,
                port_end: r.end_port,
                start_address: r.start_address,
                end_address: r.end_address,
            }),
            ikev2::TrafficSelector::Other { .. } => None,
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A selector for tests: protocol, port range, address range.
    pub(crate) fn ts(proto: u8, ports: (u16, u16), from: &str, to: &str) -> TrafficSelector {
        TrafficSelector {
            protocol_id: proto,
            port_start: ports.0,
            port_end: ports.1,
            start_address: from.parse().expect("ip"),
            end_address: to.parse().expect("ip"),
        }
    }

    #[test]
    fn intersection_takes_the_tighter_bound_of_each_dimension() {
        let wide = ts(0, (0, 65535), "10.0.0.0", "10.0.255.255");
        let narrow_one = ts(6, (80, 443), "10.0.1.0", "10.1.0.0");
        assert_eq!(
            intersect(&wide, &narrow_one),
            Some(ts(6, (80, 443), "10.0.1.0", "10.0.255.255"))
        );
        assert_eq!(intersect(&narrow_one, &wide), intersect(&wide, &narrow_one));
    }

    #[test]
    fn disjoint_protocols_ports_addresses_or_families_do_not_intersect() {
        let a = ts(6, (80, 80), "10.0.0.1", "10.0.0.1");
        assert_eq!(
            intersect(&a, &ts(17, (80, 80), "10.0.0.1", "10.0.0.1")),
            None
        );
        assert_eq!(
            intersect(&a, &ts(6, (81, 90), "10.0.0.1", "10.0.0.1")),
            None
        );
        assert_eq!(
            intersect(&a, &ts(6, (80, 80), "10.0.0.2", "10.0.0.9")),
            None
        );
        assert_eq!(intersect(&a, &ts(0, (0, 65535), "::", "ffff::")), None);
        // OPAQUE ports select nothing here.
        assert_eq!(
            intersect(&a, &ts(6, (65535, 0), "10.0.0.1", "10.0.0.1")),
            None
        );
    }

    #[test]
    fn narrowing_keeps_the_proposers_order_and_drops_what_policy_refuses() {
        let proposed = [
            ts(6, (5555, 5555), "192.0.2.1", "192.0.2.1"),
            ts(0, (0, 65535), "192.0.2.0", "192.0.2.255"),
        ];
        let allowed = [ts(0, (0, 65535), "192.0.2.1", "192.0.2.1")];
        assert_eq!(
            narrow(&proposed, &allowed),
            vec![
                ts(6, (5555, 5555), "192.0.2.1", "192.0.2.1"),
                ts(0, (0, 65535), "192.0.2.1", "192.0.2.1"),
            ]
        );
        assert!(
            narrow(
                &proposed,
                &[ts(0, (0, 65535), "198.51.100.0", "198.51.100.9")]
            )
            .is_empty()
        );
    }

    #[test]
    fn the_initiator_accepts_only_subsets_of_its_proposal() {
        let proposed = [ts(0, (0, 65535), "10.0.0.0", "10.0.0.255")];
        assert!(all_within(
            &[ts(6, (1, 2), "10.0.0.5", "10.0.0.6")],
            &proposed
        ));
        assert!(!all_within(
            &[ts(6, (1, 2), "10.0.0.5", "10.0.1.6")],
            &proposed
        ));
        assert!(!all_within(&[], &proposed));
    }

    #[test]
    fn wire_form_round_trips() {
        use palisade_wire::ikev2::{PayloadBody, TrafficSelectorsSpec};
        let sels = [
            ts(6, (80, 443), "10.0.0.0", "10.0.0.255"),
            ts(0, (0, 65535), "2001:db8::", "2001:db8::ffff"),
        ];
        let wire: Vec<_> = sels.iter().map(to_wire).collect();
        let spec = TrafficSelectorsSpec { selectors: &wire };
        let mut buf = vec![0u8; spec.body_len()];
        spec.write_body(&mut buf).expect("write");
        let parsed = TrafficSelectors::parse(&buf).expect("parse");
        assert_eq!(from_wire(&parsed), sels.to_vec());
    }
}
