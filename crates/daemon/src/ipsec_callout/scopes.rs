//! What policy protects, read from the filters that call the outbound IPsec callouts or
//! block: the remote prefixes the daemon routes into the TUN (and the firewall guards),
//! and the IKE peers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use palisade_filter::guids as g;
use palisade_filter::policy::ProviderContextPolicy;
use palisade_filter::{Action, Field, Layer, Snapshot};

use crate::net::IpNet;

/// The protected scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes {
    /// The remote addresses of every filter calling an outbound IPsec callout (transport
    /// and tunnel mode, both families) or blocking at the outbound transport layer, as
    /// the fewest prefixes that cover exactly them,
    /// sorted, none inside another. A filter without a remote-address condition gives
    /// `0.0.0.0/0` or `::/0`.
    pub route_prefixes: Vec<IpNet>,
    /// The IKE peers policy names: each tunnel's remote endpoint, and each transport
    /// filter's remote address when it is one host (a subnet's peers are only known when
    /// traffic to them is seen). Sorted, without duplicates.
    pub peers: Vec<IpAddr>,
}

fn outbound_ipsec(callout: uuid::Uuid) -> Option<bool> {
    match callout {
        k if k == g::FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4
            || k == g::FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V6 =>
        {
            Some(false)
        }
        k if k == g::FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V4
            || k == g::FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V6 =>
        {
            Some(true)
        }
        _ => None,
    }
}

/// The scopes of one snapshot's enabled filters.
pub(crate) fn scopes(snapshot: &Snapshot) -> Scopes {
    let mut ranges: Vec<(u128, u128, bool)> = Vec::new();
    let mut peers = Vec::new();
    for (layer, v6) in [
        (Layer::OutboundTransportV4, false),
        (Layer::OutboundTransportV6, true),
    ] {
        let max = if v6 { u128::MAX } else { u128::from(u32::MAX) };
        for f in &snapshot.layer(layer).filters {
            // What a BLOCK filter stops must pass the daemon too: traffic that is never
            // routed into the TUN is never classified.
            let ipsec = f.action().callout().and_then(outbound_ipsec);
            if ipsec.is_none() && !matches!(f.action(), Action::Block) {
                continue;
            }
            // Groups on one field are ANDed, conditions within a group ORed: the union
            // of every remote-address condition covers at least what the filter matches,
            // and more is harmless (what is routed into the TUN and needs no IPsec is
            // sent on in clear).
            let mut mine: Vec<(u128, u128)> = Vec::new();
            let mut unbounded = false;
            for c in f
                .conditions()
                .iter()
                .filter(|c| c.field == Field::IpRemoteAddress)
            {
                match c.intervals() {
                    Some(set) => mine.extend_from_slice(set.as_slice()),
                    None => unbounded = true,
                }
            }
            if unbounded
                || !f
                    .conditions()
                    .iter()
                    .any(|c| c.field == Field::IpRemoteAddress)
            {
                mine = vec![(0, max)];
            }
            if ipsec == Some(true) {
                if let Some(ctx) = &f.provider_context
                    && let ProviderContextPolicy::Tunnel { policy, .. } = &ctx.object.policy
                {
                    peers.push(policy.tunnel_endpoints.remote_address);
                }
            } else if ipsec == Some(false) {
                peers.extend(
                    mine.iter()
                        .filter(|(lo, hi)| lo == hi)
                        .map(|(lo, _)| address(*lo, v6)),
                );
            }
            ranges.extend(mine.into_iter().map(|(lo, hi)| (lo, hi.min(max), v6)));
        }
    }
    peers.sort();
    peers.dedup();
    let mut route_prefixes = Vec::new();
    for v6 in [false, true] {
        let mut rs: Vec<(u128, u128)> = ranges
            .iter()
            .filter(|r| r.2 == v6)
            .map(|r| (r.0, r.1))
            .collect();
        for (lo, hi) in merge(&mut rs) {
            prefixes(lo, hi, v6, &mut route_prefixes);
        }
    }
    Scopes {
        route_prefixes,
        peers,
    }
}

fn address(key: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(key))
    } else {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(key).unwrap_or(u32::MAX)))
    }
}

/// Sorted, disjoint, non-adjacent intervals covering the same keys.
fn merge(rs: &mut [(u128, u128)]) -> Vec<(u128, u128)> {
    rs.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::new();
    for &(lo, hi) in rs.iter() {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// The fewest prefixes that cover exactly `[lo, hi]`: from `lo`, repeatedly the largest
/// aligned block that fits.
fn prefixes(lo: u128, hi: u128, v6: bool, out: &mut Vec<IpNet>) {
    let bits: u32 = if v6 { 128 } else { 32 };
    let mut at = lo;
    loop {
        // Largest block aligned at `at`: as many host bits as `at` has trailing zeros.
        let mut host = if at == 0 {
            bits
        } else {
            at.trailing_zeros().min(bits)
        };
        // Shrink until the block ends at or before `hi`.
        while host > 0 && block_end(at, host) > hi {
            host -= 1;
        }
        let len = u8::try_from(bits - host).unwrap_or(0);
        if let Ok(net) = IpNet::new(address(at, v6), len) {
            out.push(net);
        }
        let end = block_end(at, host);
        if end >= hi {
            break;
        }
        at = end + 1;
    }
}

fn block_end(at: u128, host: u32) -> u128 {
    if host >= 128 {
        u128::MAX
    } else {
        at | ((1u128 << host) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> u128 {
        u128::from(u32::from(s.parse::<Ipv4Addr>().expect("v4")))
    }

    fn cover(lo: &str, hi: &str) -> Vec<String> {
        let mut out = Vec::new();
        prefixes(v4(lo), v4(hi), false, &mut out);
        out.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_range_becomes_the_fewest_exact_prefixes() {
        assert_eq!(cover("10.2.0.0", "10.2.255.255"), ["10.2.0.0/16"]);
        assert_eq!(cover("10.0.0.1", "10.0.0.1"), ["10.0.0.1/32"]);
        assert_eq!(
            cover("10.0.0.1", "10.0.0.9"),
            ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/30", "10.0.0.8/31"]
        );
        assert_eq!(cover("0.0.0.0", "255.255.255.255"), ["0.0.0.0/0"]);
        let mut six = Vec::new();
        prefixes(0, u128::MAX, true, &mut six);
        assert_eq!(six[0].to_string(), "::/0");
        assert_eq!(six.len(), 1);
    }

    #[test]
    fn overlapping_and_adjacent_ranges_merge() {
        let mut rs = vec![(5, 9), (0, 3), (4, 4), (20, 30), (25, 26)];
        assert_eq!(merge(&mut rs), [(0, 9), (20, 30)]);
    }
}
