//! Transport mode across a NAT (RFC 7296 §2.23.1).
//!
//! In transport mode the traffic selectors name the hosts themselves, and a host behind
//! a NAT proposes its own (private) address, which its peer never sees: the peer's
//! policy names the NAT's public address, and its data plane sees that address on every
//! packet. When NAT detection found a NAT, RFC 7296 §2.23.1 has each side keep the
//! addresses the peer proposed (to fix up TCP and UDP checksums, RFC 3948 §3.1.2) and
//! put the IKE SA's addresses in their place: the addresses the two hosts actually see
//! of each other. strongSwan does the same (`get_transport_nat_ts` in its
//! `child_create.c`), for each side found behind a NAT (its COND_NAT_HERE for ours,
//! COND_NAT_THERE for the peer's; a side that only forces encapsulation is not
//! translated): only host selectors of the first one's address are kept, each with the
//! IKE address instead, its protocol and ports unchanged. The CHILD_SA's selectors are then the ones the data plane enforces on
//! what it sends and receives, and the addresses the peer proposed become the
//! [`OriginalAddresses`] of the inbound checksum fix-up.

use std::net::IpAddr;

use palisade_esp::transport_nat::OriginalAddresses;
use palisade_filter::policy::TrafficSelector;

/// Selectors with the IKE SA's addresses in place of the ones proposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substituted {
    /// The initiator's side (TSi), as this host sees it.
    pub tsi: Vec<TrafficSelector>,
    /// The responder's side (TSr), as this host sees it.
    pub tsr: Vec<TrafficSelector>,
    /// The addresses the peer puts in its packets' pseudo-headers, when either differs
    /// from what this host sees.
    pub original: Option<OriginalAddresses>,
}

/// The host selectors of `selectors` with the first one's address, moved to `ike`; and
/// that first address. Nothing when there is no host selector of `ike`'s family: the
/// caller then keeps what was proposed (and narrowing decides).
pub fn substitute(
    selectors: &[TrafficSelector],
    ike: IpAddr,
) -> Option<(Vec<TrafficSelector>, IpAddr)> {
    let is_host = |ts: &TrafficSelector| {
        ts.start_address == ts.end_address && ts.start_address.is_ipv4() == ike.is_ipv4()
    };
    let first = selectors.iter().find(|ts| is_host(ts))?.start_address;
    let mut out: Vec<TrafficSelector> = Vec::new();
    for ts in selectors
        .iter()
        .filter(|ts| is_host(ts) && ts.start_address == first)
    {
        let moved = TrafficSelector {
            start_address: ike,
            end_address: ike,
            ..*ts
        };
        if !out.contains(&moved) {
            out.push(moved);
        }
    }
    Some((out, first))
}

/// The IKE SA's addresses, and which of the two sides a NAT translates, when its
/// CHILD_SAs in transport mode get their selectors substituted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatTransport {
    /// Our IKE address.
    pub local: IpAddr,
    /// The peer's IKE address: where its packets come from, as we see them.
    pub remote: IpAddr,
    /// We are behind a NAT: selectors naming us are replaced by `local`.
    pub local_behind_nat: bool,
    /// The peer is behind a NAT (or pretends to be, forcing encapsulation): selectors
    /// naming it are replaced by `remote`.
    pub remote_behind_nat: bool,
}

impl NatTransport {
    /// Responder: the initiator's TSi names the peer, its TSr names us.
    pub fn request(&self, tsi: &[TrafficSelector], tsr: &[TrafficSelector]) -> Substituted {
        let (tsi, peer_said_of_itself) = self.side(tsi, self.remote, self.remote_behind_nat);
        let (tsr, peer_said_of_us) = self.side(tsr, self.local, self.local_behind_nat);
        self.substituted(tsi, tsr, peer_said_of_itself, peer_said_of_us)
    }

    /// Initiator: the responder's TSi names us, its TSr names the peer. Our own
    /// proposal, substituted the same way, is what the response is held to.
    pub fn response(&self, tsi: &[TrafficSelector], tsr: &[TrafficSelector]) -> Substituted {
        let (tsi, peer_said_of_us) = self.side(tsi, self.local, self.local_behind_nat);
        let (tsr, peer_said_of_itself) = self.side(tsr, self.remote, self.remote_behind_nat);
        self.substituted(tsi, tsr, peer_said_of_itself, peer_said_of_us)
    }

    /// A side's selectors and the address the peer gave it: substituted if a NAT
    /// translates that side, else as proposed (and then the peer's address for it is the
    /// one we see).
    fn side(
        &self,
        selectors: &[TrafficSelector],
        ike: IpAddr,
        translated: bool,
    ) -> (Vec<TrafficSelector>, IpAddr) {
        match substitute(selectors, ike).filter(|_| translated) {
            Some(s) => s,
            None => (selectors.to_vec(), ike),
        }
    }

    fn substituted(
        &self,
        tsi: Vec<TrafficSelector>,
        tsr: Vec<TrafficSelector>,
        source: IpAddr,
        destination: IpAddr,
    ) -> Substituted {
        // `substitute` takes only addresses of the IKE address's family, so the
        // originals are of the packets' family.
        let changed = source != self.remote || destination != self.local;
        Substituted {
            tsi,
            tsr,
            original: changed.then_some(OriginalAddresses {
                source,
                destination,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic_selector::tests::ts;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    /// One address, every protocol and port.
    fn host(addr: &str) -> Vec<TrafficSelector> {
        vec![ts(0, (0, 65535), addr, addr)]
    }

    /// b (10.202.0.2) with a behind the NAT's 10.202.0.1.
    fn b_with_a_behind_nat() -> NatTransport {
        NatTransport {
            local: ip("10.202.0.2"),
            remote: ip("10.202.0.1"),
            local_behind_nat: false,
            remote_behind_nat: true,
        }
    }

    #[test]
    fn host_selectors_of_the_first_address_move_to_the_ike_address() {
        let proposed = [
            ts(6, (5201, 5201), "10.201.0.1", "10.201.0.1"),
            ts(0, (0, 65535), "10.201.0.1", "10.201.0.1"),
            ts(0, (0, 65535), "10.201.0.0", "10.201.0.255"),
            ts(0, (0, 65535), "10.201.0.9", "10.201.0.9"),
        ];
        let (moved, first) = substitute(&proposed, ip("10.202.0.1")).expect("hosts");
        assert_eq!(first, ip("10.201.0.1"));
        assert_eq!(
            moved,
            vec![
                ts(6, (5201, 5201), "10.202.0.1", "10.202.0.1"),
                ts(0, (0, 65535), "10.202.0.1", "10.202.0.1"),
            ]
        );
        assert_eq!(
            substitute(
                &[ts(0, (0, 65535), "10.0.0.0", "10.0.0.255")],
                ip("10.0.0.1")
            ),
            None
        );
        assert_eq!(substitute(&host("fd00::1"), ip("10.0.0.1")), None);
    }

    #[test]
    fn each_side_learns_what_the_other_put_in_its_packets() {
        // a 10.201.0.1 behind the NAT's 10.202.0.1; b 10.202.0.2.
        let at_b = b_with_a_behind_nat();
        let request = at_b.request(&host("10.201.0.1"), &host("10.202.0.2"));
        assert_eq!(request.tsi, host("10.202.0.1"));
        assert_eq!(request.tsr, host("10.202.0.2"));
        assert_eq!(
            request.original,
            Some(OriginalAddresses {
                source: ip("10.201.0.1"),
                destination: ip("10.202.0.2"),
            })
        );
        // b answers with those; a puts its own addresses back and learns its public one.
        let at_a = NatTransport {
            local: ip("10.201.0.1"),
            remote: ip("10.202.0.2"),
            local_behind_nat: true,
            remote_behind_nat: false,
        };
        let response = at_a.response(&request.tsi, &request.tsr);
        assert_eq!(response.tsi, host("10.201.0.1"));
        assert_eq!(response.tsr, host("10.202.0.2"));
        assert_eq!(
            response.original,
            Some(OriginalAddresses {
                source: ip("10.202.0.2"),
                destination: ip("10.202.0.1"),
            })
        );
        // What we see already: nothing to fix up.
        let same = at_a.response(&response.tsi, &response.tsr);
        assert_eq!(same.original, None);
    }

    #[test]
    fn only_a_translated_side_is_substituted() {
        // b public, a behind the NAT: b's own selectors stay as a proposed them (an
        // address of b's other than its IKE one, here), a's move to the NAT's address.
        let at_b = b_with_a_behind_nat();
        let request = at_b.request(&host("10.201.0.1"), &host("10.202.0.22"));
        assert_eq!(request.tsr, host("10.202.0.22"));
        assert_eq!(request.tsi, host("10.202.0.1"));
        // Neither side translated (we only force encapsulation): all as proposed.
        let forced = NatTransport {
            remote_behind_nat: false,
            ..at_b
        };
        let request = forced.request(&host("10.202.0.1"), &host("10.202.0.2"));
        assert_eq!(request.tsi, host("10.202.0.1"));
        assert_eq!(request.original, None);
    }
}
