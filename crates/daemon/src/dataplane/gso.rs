//! ESP in UDP leaves through the NAT-T socket with segmentation offload (see
//! `sys/udp/offload.rs`): the SAD builds whole IP packets, and here runs of them to one
//! peer are gathered into the groups one `UDP_SEGMENT` send may carry.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use crate::sys::{GSO_MAX_PAYLOAD, GSO_MAX_SEGMENTS};

/// The addresses and UDP payload of an IP packet the SAD built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UdpDatagram {
    /// The source address (the local address the peer expects).
    pub local: IpAddr,
    /// The destination address and port.
    pub remote: SocketAddr,
    /// The UDP payload (the ESP packet), within the IP packet.
    pub payload: Range<usize>,
}

/// Reads what a UDP send needs from an IPv4 or IPv6 packet carrying UDP with no
/// extension headers (as the SAD builds ESP in UDP); `None` for anything else.
pub(super) fn udp_datagram(packet: &[u8]) -> Option<UdpDatagram> {
    let (local, remote, udp): (IpAddr, IpAddr, usize) = match packet.first()? >> 4 {
        4 => {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            if ihl < 20 || *packet.get(9)? != 17 {
                return None;
            }
            let src: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            (src.into(), dst.into(), ihl)
        }
        6 => {
            if *packet.get(6)? != 17 {
                return None;
            }
            let src: [u8; 16] = packet.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            (src.into(), dst.into(), 40)
        }
        _ => return None,
    };
    let port = packet.get(udp + 2..udp + 4)?;
    let start = udp + 8;
    if start > packet.len() {
        return None;
    }
    Some(UdpDatagram {
        local,
        remote: SocketAddr::new(remote, u16::from_be_bytes([port[0], port[1]])),
        payload: start..packet.len(),
    })
}

/// A run of datagrams to one peer gathered for one segmented send: every one of the
/// first one's payload length but the last, which may be shorter, within the kernel's
/// limits.
#[derive(Debug)]
pub(super) struct Group {
    size: usize,
    n: usize,
    total: usize,
    /// A shorter (or empty) datagram ended it.
    closed: bool,
}

impl Group {
    /// A group of one datagram with `len` bytes of payload.
    pub fn start(len: usize) -> Group {
        Group {
            size: len,
            n: 1,
            total: len,
            closed: len == 0,
        }
    }

    /// Takes a datagram with `len` bytes of payload if the same send may carry it;
    /// false leaves the group as it was (the datagram starts the next one).
    pub fn admit(&mut self, len: usize) -> bool {
        if self.closed
            || self.n == GSO_MAX_SEGMENTS
            || len > self.size
            || len == 0
            || self.total + len > GSO_MAX_PAYLOAD
        {
            return false;
        }
        self.n += 1;
        self.total += len;
        self.closed = len < self.size;
        true
    }

    /// The segment size of the send (the first datagram's payload length).
    pub fn size(&self) -> usize {
        self.size
    }

    /// How many datagrams it holds.
    pub fn len(&self) -> usize {
        self.n
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// How many of `lens` (payload lengths of datagrams to one peer, in order) one
    /// segmented send takes from the front.
    fn group_len(lens: impl IntoIterator<Item = usize>) -> usize {
        let mut lens = lens.into_iter();
        let Some(first) = lens.next() else {
            return 0;
        };
        let mut group = Group::start(first);
        for len in lens {
            if !group.admit(len) {
                break;
            }
        }
        group.len()
    }

    #[test]
    fn reads_ipv4_and_ipv6_udp() {
        let mut v4 = vec![0u8; 28 + 5];
        v4[0] = 0x45;
        v4[9] = 17;
        v4[12..16].copy_from_slice(&[10, 0, 0, 1]);
        v4[16..20].copy_from_slice(&[10, 0, 0, 2]);
        v4[22..24].copy_from_slice(&4500u16.to_be_bytes());
        let d = udp_datagram(&v4).expect("IPv4 UDP");
        assert_eq!(d.local, IpAddr::from([10, 0, 0, 1]));
        assert_eq!(d.remote, "10.0.0.2:4500".parse().expect("addr"));
        assert_eq!(d.payload, 28..33);

        let mut v6 = vec![0u8; 48 + 3];
        v6[0] = 0x60;
        v6[6] = 17;
        v6[23] = 1;
        v6[39] = 2;
        v6[42..44].copy_from_slice(&4501u16.to_be_bytes());
        let d = udp_datagram(&v6).expect("IPv6 UDP");
        assert_eq!(d.remote, "[::2]:4501".parse().expect("addr"));
        assert_eq!(d.payload, 48..51);

        v4[9] = 50;
        assert_eq!(udp_datagram(&v4), None, "raw ESP");
        assert_eq!(udp_datagram(&v6[..45]), None, "cut short");
        assert_eq!(udp_datagram(&[]), None);
    }

    /// What a send of `group` must satisfy for the kernel to take it.
    fn sendable(group: &[usize]) -> bool {
        let size = group[0];
        group.len() <= GSO_MAX_SEGMENTS
            && group.iter().sum::<usize>() <= GSO_MAX_PAYLOAD.max(size)
            && group[..group.len() - 1].iter().all(|l| *l == size)
            && group[group.len() - 1] <= size
    }

    proptest! {
        /// Cutting any sequence into groups keeps every datagram, in order, each group
        /// sendable, and a group ends only where the next datagram could not join it.
        #[test]
        fn groups_are_sendable_and_maximal(
            lens in prop::collection::vec(prop_oneof![Just(1438usize), Just(1200), 1usize..1500], 0..200),
        ) {
            let mut at = 0;
            while at < lens.len() {
                let n = group_len(lens[at..].iter().copied());
                prop_assert!(n >= 1);
                let group = &lens[at..at + n];
                prop_assert!(sendable(group));
                if let Some(next) = lens.get(at + n) {
                    let mut longer = group.to_vec();
                    longer.push(*next);
                    prop_assert!(
                        !sendable(&longer) || group[n - 1] < group[0],
                        "group {:?} could have taken {}", group, next
                    );
                }
                at += n;
            }
            prop_assert_eq!(group_len(std::iter::empty()), 0);
        }
    }
}
