//! Walking the IPv6 extension header chain (RFC 8200 §4) and finding where
//! ESP or AH belongs in it (RFC 4303 §3.1.1, RFC 4302 §3.1.1).

use crate::WireError;
use crate::ah::AH_FIXED_LEN;
use crate::bytes::{array_at, u8_at};
use crate::ipv6::{IPV6_HEADER_LEN, Ipv6Header, NEXT_HEADER_OFFSET};
use crate::proto;

/// Most extension headers [`ExtChain::walk`] accepts. Real traffic carries
/// a handful at most; the cap keeps the chain on the stack and bounds the
/// work an attacker can cause per packet.
pub const MAX_EXT_HEADERS: usize = 16;

/// Fragment Offset bits of the Fragment header's offset/flags word.
const FRAGMENT_OFFSET_MASK: u16 = 0xFFF8;

/// One extension header in a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtHeader {
    /// Header type: the Next Header value that announced this header.
    pub kind: u8,
    /// Offset of the header from the start of the packet.
    pub offset: usize,
    /// Length of the header in bytes.
    pub len: usize,
    /// The Next Header value this header carries (its first octet).
    pub next_header: u8,
}

impl ExtHeader {
    /// Offset just past this header.
    pub fn end(&self) -> usize {
        self.offset.saturating_add(self.len)
    }
}

/// The extension headers of an IPv6 packet, in order, and what follows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtChain {
    headers: [ExtHeader; MAX_EXT_HEADERS],
    count: usize,
    non_first_fragment: bool,
    /// Type of whatever follows the last walked header (ESP, TCP, UDP,
    /// no-next-header, or an extension header type this walker does not
    /// know).
    pub upper_protocol: u8,
    /// Offset of that upper-layer data from the start of the packet.
    pub upper_offset: usize,
}

impl ExtChain {
    /// Parses the IPv6 fixed header of `packet` and walks its extension
    /// headers: Hop-by-Hop (only directly after the fixed header),
    /// Routing, Fragment, Destination Options and AH.
    ///
    /// The walk stops at the first other type, which becomes
    /// `upper_protocol`. That includes ESP (whatever follows it is
    /// encrypted) and extension types such as Mobility or HIP, which the
    /// data plane has no reason to look inside. It also stops after a
    /// Fragment header with a non-zero offset, because the bytes after it
    /// are the middle of some other header; see
    /// [`ExtChain::is_non_first_fragment`].
    ///
    /// Only bytes within the IPv6 payload length are considered.
    pub fn walk(packet: &[u8]) -> Result<Self, WireError> {
        let ip = Ipv6Header::parse(packet)?;
        let end = ip.payload_range().end;
        let area = packet.get(..end).ok_or(WireError::BadPayloadLength)?;

        let mut chain = Self {
            headers: [ExtHeader::default(); MAX_EXT_HEADERS],
            count: 0,
            non_first_fragment: false,
            upper_protocol: ip.next_header,
            upper_offset: IPV6_HEADER_LEN,
        };
        let mut kind = ip.next_header;
        let mut offset = IPV6_HEADER_LEN;
        while is_walked(kind) {
            if kind == proto::HOPOPT && chain.count != 0 {
                return Err(WireError::MisplacedHopByHop);
            }
            let [next_header, len_field] = *array_at::<2>(area, offset)?;
            let len = match kind {
                proto::IPV6_FRAG => 8,
                proto::AH => (usize::from(len_field) + 2) * 4,
                _ => (usize::from(len_field) + 1) * 8,
            };
            if kind == proto::AH && len < AH_FIXED_LEN {
                return Err(WireError::BadHeaderLength);
            }
            let header_end = offset.saturating_add(len);
            if header_end > end {
                return Err(WireError::Truncated {
                    need: header_end,
                    have: end,
                });
            }
            // A later fragment's data starts mid-way through some header,
            // so nothing after its Fragment header can be walked.
            let non_first_fragment = kind == proto::IPV6_FRAG && {
                let [hi, lo] = *array_at::<2>(area, offset.saturating_add(2))?;
                u16::from_be_bytes([hi, lo]) & FRAGMENT_OFFSET_MASK != 0
            };
            let slot = chain
                .headers
                .get_mut(chain.count)
                .ok_or(WireError::TooManyExtensions)?;
            *slot = ExtHeader {
                kind,
                offset,
                len,
                next_header,
            };
            chain.count += 1;
            kind = next_header;
            offset = header_end;
            if non_first_fragment {
                chain.non_first_fragment = true;
                break;
            }
        }
        chain.upper_protocol = kind;
        chain.upper_offset = offset;
        Ok(chain)
    }

    /// The walked headers, in packet order.
    pub fn headers(&self) -> &[ExtHeader] {
        self.headers.get(..self.count).unwrap_or_default()
    }

    /// Number of walked headers.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the packet has no (walked) extension headers.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The first header of type `kind`, with its index.
    pub fn find(&self, kind: u8) -> Option<(usize, &ExtHeader)> {
        self.headers()
            .iter()
            .enumerate()
            .find(|(_, h)| h.kind == kind)
    }

    /// Whether a Fragment header with a non-zero offset ended the walk, in
    /// which case `upper_offset` points at fragment data, not at a header
    /// of type `upper_protocol`.
    pub fn is_non_first_fragment(&self) -> bool {
        self.non_first_fragment
    }

    /// Where an ESP header is inserted in transport mode (RFC 4303 §3.1.1):
    /// after Hop-by-Hop, Routing and Fragment headers and any Destination
    /// Options header that comes before a Routing header (those are for
    /// intermediate destinations and must stay readable). Everything from
    /// the first other header on, including a final Destination Options
    /// header, goes inside ESP.
    ///
    /// Returns the insertion offset and the index of the header whose Next
    /// Header octet must be changed to ESP, `None` meaning the fixed header.
    /// Use [`ExtChain::next_header_field_offset`] to locate that octet.
    pub fn esp_insert_point(&self) -> (usize, Option<usize>) {
        self.insert_point()
    }

    /// Where an AH header is inserted in transport mode. RFC 4302 §3.1.1
    /// places AH exactly like ESP: after the per-hop and routing-related
    /// headers, before end-to-end ones.
    pub fn ah_insert_point(&self) -> (usize, Option<usize>) {
        self.insert_point()
    }

    fn insert_point(&self) -> (usize, Option<usize>) {
        let headers = self.headers();
        let mut point = (IPV6_HEADER_LEN, None);
        for (i, h) in headers.iter().enumerate() {
            let stays_before = match h.kind {
                proto::HOPOPT | proto::IPV6_ROUTE | proto::IPV6_FRAG => true,
                proto::IPV6_OPTS => headers
                    .get(i + 1..)
                    .unwrap_or_default()
                    .iter()
                    .any(|later| later.kind == proto::IPV6_ROUTE),
                _ => false,
            };
            if !stays_before {
                break;
            }
            point = (h.end(), Some(i));
        }
        point
    }

    /// Offset within the packet of the Next Header octet to patch for an
    /// insertion point returned by [`ExtChain::esp_insert_point`]: 6 for the
    /// fixed header, else the first octet of header `index`.
    ///
    /// An index that does not name a walked header is treated as `None`;
    /// indices from this chain's own insert-point methods are always valid.
    pub fn next_header_field_offset(&self, index: Option<usize>) -> usize {
        index
            .and_then(|i| self.headers().get(i))
            .map_or(NEXT_HEADER_OFFSET, |h| h.offset)
    }
}

/// Extension header types [`ExtChain::walk`] steps over.
pub fn is_walked(kind: u8) -> bool {
    matches!(
        kind,
        proto::HOPOPT | proto::IPV6_ROUTE | proto::IPV6_FRAG | proto::IPV6_OPTS | proto::AH
    )
}

/// Routing header Segments Left (RFC 8200 §4.4), for a header at `offset`.
pub fn routing_segments_left(packet: &[u8], offset: usize) -> Result<u8, WireError> {
    u8_at(packet, offset.saturating_add(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds an IPv6 packet from a fixed-header next-header value and
    /// already-encoded extension headers and payload.
    fn packet(first: u8, rest: &[&[u8]]) -> ([u8; 512], usize) {
        let mut buf = [0u8; 512];
        let mut len = IPV6_HEADER_LEN;
        for part in rest {
            buf[len..len + part.len()].copy_from_slice(part);
            len += part.len();
        }
        let ip = Ipv6Header {
            traffic_class: 0,
            flow_label: 0,
            payload_len: (len - IPV6_HEADER_LEN) as u16,
            next_header: first,
            hop_limit: 64,
            src: [1; 16],
            dst: [2; 16],
        };
        ip.write(&mut buf).expect("write");
        (buf, len)
    }

    const TCP: [u8; 20] = [0; 20];

    fn opts(next: u8) -> [u8; 8] {
        // PadN filling the rest of an 8-byte header.
        [next, 0, 1, 4, 0, 0, 0, 0]
    }

    fn routing(next: u8, segments_left: u8) -> [u8; 24] {
        let mut r = [0u8; 24];
        r[0] = next;
        r[1] = 2;
        r[2] = 2;
        r[3] = segments_left;
        r
    }

    fn fragment(next: u8, offset_units: u16) -> [u8; 8] {
        let [hi, lo] = (offset_units << 3).to_be_bytes();
        [next, 0, hi, lo, 0xde, 0xad, 0xbe, 0xef]
    }

    #[test]
    fn full_chain_esp_point_after_fragment() {
        let (buf, len) = packet(
            proto::HOPOPT,
            &[
                &opts(proto::IPV6_OPTS),
                &opts(proto::IPV6_ROUTE),
                &routing(proto::IPV6_FRAG, 0),
                &fragment(proto::IPV6_OPTS, 0),
                &opts(proto::TCP),
                &TCP,
            ],
        );
        let chain = ExtChain::walk(&buf[..len]).expect("walk");
        let kinds: [u8; 5] = core::array::from_fn(|i| chain.headers()[i].kind);
        assert_eq!(
            kinds,
            [
                proto::HOPOPT,
                proto::IPV6_OPTS,
                proto::IPV6_ROUTE,
                proto::IPV6_FRAG,
                proto::IPV6_OPTS
            ]
        );
        let offsets: [usize; 5] = core::array::from_fn(|i| chain.headers()[i].offset);
        assert_eq!(offsets, [40, 48, 56, 80, 88]);
        assert_eq!(chain.headers()[2].len, 24);
        assert_eq!(chain.len(), 5);
        assert_eq!(chain.upper_protocol, proto::TCP);
        assert_eq!(chain.upper_offset, 96);
        assert!(!chain.is_non_first_fragment());

        let (at, index) = chain.esp_insert_point();
        assert_eq!((at, index), (88, Some(3)));
        assert_eq!(chain.next_header_field_offset(index), 80);
        assert_eq!(chain.ah_insert_point(), (88, Some(3)));
        assert_eq!(chain.find(proto::IPV6_ROUTE).map(|(i, _)| i), Some(2));
    }

    #[test]
    fn no_extensions_inserts_after_fixed_header() {
        let (buf, len) = packet(proto::UDP, &[&[0; 8]]);
        let chain = ExtChain::walk(&buf[..len]).expect("walk");
        assert!(chain.is_empty());
        assert_eq!((chain.upper_protocol, chain.upper_offset), (proto::UDP, 40));
        assert_eq!(chain.esp_insert_point(), (40, None));
        assert_eq!(chain.next_header_field_offset(None), 6);
        assert_eq!(chain.next_header_field_offset(Some(0)), 6);
    }

    #[test]
    fn final_destination_options_is_encrypted() {
        let (buf, len) = packet(proto::IPV6_OPTS, &[&opts(proto::TCP), &TCP]);
        let chain = ExtChain::walk(&buf[..len]).expect("walk");
        assert_eq!(chain.esp_insert_point(), (40, None));
    }

    #[test]
    fn destination_options_before_routing_stays_outside() {
        let (buf, len) = packet(
            proto::IPV6_OPTS,
            &[
                &opts(proto::IPV6_ROUTE),
                &routing(proto::IPV6_OPTS, 0),
                &opts(proto::UDP),
                &[0; 8],
            ],
        );
        let chain = ExtChain::walk(&buf[..len]).expect("walk");
        assert_eq!(chain.esp_insert_point(), (72, Some(1)));
        assert_eq!(chain.next_header_field_offset(Some(1)), 48);
    }

    #[test]
    fn ah_is_walked_and_esp_stops() {
        // AH with Payload Len 4: (4 + 2) * 4 = 24 bytes.
        let mut ah = [0u8; 24];
        ah[0] = proto::ESP;
        ah[1] = 4;
        let (buf, len) = packet(
            proto::HOPOPT,
            &[&opts(proto::AH), &ah, &[0, 0, 1, 0, 0, 0, 0, 1]],
        );
        let chain = ExtChain::walk(&buf[..len]).expect("walk");
        assert_eq!(chain.len(), 2);
        assert_eq!(chain.headers()[1].len, 24);
        assert_eq!((chain.upper_protocol, chain.upper_offset), (proto::ESP, 72));
        assert_eq!(chain.esp_insert_point(), (48, Some(0)));
    }

    #[test]
    fn ah_shorter_than_fixed_part_rejected() {
        let (buf, len) = packet(proto::AH, &[&[proto::TCP, 0, 0, 0, 0, 0, 1, 0], &TCP]);
        assert_eq!(ExtChain::walk(&buf[..len]), Err(WireError::BadHeaderLength));
    }

    #[test]
    fn hop_by_hop_must_be_first() {
        let (buf, len) = packet(proto::IPV6_OPTS, &[&opts(proto::HOPOPT), &opts(proto::TCP)]);
        assert_eq!(
            ExtChain::walk(&buf[..len]),
            Err(WireError::MisplacedHopByHop)
        );
    }

    #[test]
    fn chain_length_cap() {
        let hdr = opts(proto::IPV6_OPTS);
        let parts = [&hdr[..]; MAX_EXT_HEADERS + 1];
        let (buf, len) = packet(proto::IPV6_OPTS, &parts);
        assert_eq!(
            ExtChain::walk(&buf[..len]),
            Err(WireError::TooManyExtensions)
        );
        // Exactly the cap, ending in no-next-header, is fine.
        let mut parts = [&hdr[..]; MAX_EXT_HEADERS];
        let last = opts(proto::IPV6_NONXT);
        parts[MAX_EXT_HEADERS - 1] = &last;
        let (buf, len) = packet(proto::IPV6_OPTS, &parts);
        let chain = ExtChain::walk(&buf[..len]).expect("walk");
        assert_eq!(chain.len(), MAX_EXT_HEADERS);
        assert_eq!(chain.upper_protocol, proto::IPV6_NONXT);
    }

    #[test]
    fn header_beyond_payload_is_truncated() {
        // Routing header claims 24 bytes but only 8 are in the payload.
        let (buf, len) = packet(proto::IPV6_ROUTE, &[&routing(proto::TCP, 0)[..8]]);
        assert_eq!(
            ExtChain::walk(&buf[..len]),
            Err(WireError::Truncated { need: 64, have: 48 })
        );
        // Next header announced but no bytes at all.
        let (buf, len) = packet(proto::IPV6_FRAG, &[]);
        assert_eq!(
            ExtChain::walk(&buf[..len]),
            Err(WireError::Truncated { need: 42, have: 40 })
        );
    }

    #[test]
    fn later_fragment_stops_walk() {
        let (buf, len) = packet(
            proto::IPV6_FRAG,
            &[&fragment(proto::IPV6_OPTS, 100), &[0xFF; 16]],
        );
        let chain = ExtChain::walk(&buf[..len]).expect("walk");
        assert!(chain.is_non_first_fragment());
        assert_eq!(chain.len(), 1);
        assert_eq!(
            (chain.upper_protocol, chain.upper_offset),
            (proto::IPV6_OPTS, 48)
        );
    }
}
