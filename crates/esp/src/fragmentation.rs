//! Cutting an IP packet longer than the path into fragments (RFC 791 §3.2, RFC 8200
//! §4.5), in the buffer it was built in.
//!
//! Why here and not in the kernel: the data plane sends whole IP packets through raw
//! sockets with the header included, and the kernel refuses those when they are longer
//! than the route's MTU instead of fragmenting them. Packets that long come from
//! reassembly (`reassembly`): a datagram the host's stack had cut for the TUN,
//! protected whole, as transport-mode ESP must be (RFC 4303 §3.3.4).
//!
//! In place: the fragments are laid out one after the other from where the packet
//! starts, each its header and its share of the data, so the buffer needs room for the
//! extra headers after the packet (one per fragment after the first). Every fragment but the last carries
//! the same amount of data, a multiple of 8 bytes, so [`Fragments`] describes them all
//! with a few numbers and sending them allocates nothing.

use core::ops::Range;

use palisade_wire::ipv4::options::{kind, option_at};
use palisade_wire::{
    ExtChain, IPV4_MIN_HEADER_LEN, IPV6_HEADER_LEN, IpVersion, Ipv4Header, ip_version, proto,
};

use crate::reassembly::MAX_FRONT;

/// The IPv6 Fragment header's length.
const FRAGMENT_HEADER_LEN: usize = 8;

/// Why a packet could not be cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    /// Not a packet this can cut.
    #[error("cannot fragment: {0}")]
    Malformed(&'static str),
    /// The MTU leaves no room for 8 bytes of data after the headers.
    #[error("the MTU is too small to fragment into")]
    MtuTooSmall,
    /// The buffer has no room after the packet for the extra headers.
    #[error("no room in the buffer for the fragments' headers")]
    NoRoom,
}

/// Where the fragments are: fragment `k` is `start + k × stride`, `stride` bytes long,
/// but the last, which is `last` bytes long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragments {
    start: usize,
    stride: usize,
    count: usize,
    last: usize,
}

impl Fragments {
    /// How many fragments.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The buffer range of fragment `k`.
    pub fn range(&self, k: usize) -> Range<usize> {
        let at = self.start + k * self.stride;
        let len = if k + 1 == self.count {
            self.last
        } else {
            self.stride
        };
        at..at + len
    }

    /// The buffer ranges of all fragments, in order.
    pub fn ranges(&self) -> impl Iterator<Item = Range<usize>> + use<> {
        let this = *self;
        (0..self.count).map(move |k| this.range(k))
    }
}

/// Cuts the IP packet at `buf[packet]` into fragments of at most `mtu` bytes, in place.
/// An IPv4 packet keeps its identification unless it is zero; then `id`'s low 16 bits
/// are used. An IPv6 packet's Fragment headers carry `id`. DF is cleared: this host is
/// the one fragmenting. A packet that fits is one fragment, left as it is.
pub fn fragment_in_place(
    buf: &mut [u8],
    packet: Range<usize>,
    mtu: usize,
    id: u32,
) -> Result<Fragments, FragmentError> {
    let start = packet.start;
    let bytes = buf
        .get(packet.clone())
        .ok_or(FragmentError::Malformed("the packet is outside the buffer"))?;
    let len = bytes.len();
    if len <= mtu {
        return Ok(Fragments {
            start,
            stride: len,
            count: 1,
            last: len,
        });
    }
    let version = ip_version(bytes).map_err(|_| FragmentError::Malformed("not IP"))?;
    let layout = match version {
        IpVersion::V4 => v4_layout(bytes)?,
        IpVersion::V6 => v6_layout(bytes)?,
    };
    let header = layout.front + layout.inserted;
    if mtu < header + 8 {
        return Err(FragmentError::MtuTooSmall);
    }
    let chunk = (mtu - header) & !7;
    let data = len - layout.front;
    let count = data.div_ceil(chunk);
    let stride = header + chunk;
    let last_data = data - (count - 1) * chunk;
    let end = start + (count - 1) * stride + header + last_data;
    if end > buf.len() {
        return Err(FragmentError::NoRoom);
    }
    let mut front = [0u8; MAX_FRONT];
    front[..layout.front].copy_from_slice(&buf[start..start + layout.front]);

    // Last to first: each chunk moves right, over bytes already moved or not needed.
    for k in (0..count).rev() {
        let c = if k + 1 == count { last_data } else { chunk };
        let from = start + layout.front + k * chunk;
        buf.copy_within(from..from + c, start + k * stride + header);
    }
    for k in 0..count {
        let c = if k + 1 == count { last_data } else { chunk };
        let more = k + 1 < count;
        let offset = k * chunk;
        let at = start + k * stride;
        let h = &mut buf[at..at + header];
        match version {
            IpVersion::V4 => write_v4_header(
                h,
                &front[..layout.front],
                k == 0,
                header + c,
                offset,
                more,
                id,
            ),
            IpVersion::V6 => write_v6_header(
                h,
                &front[..layout.front],
                layout.next_header_at,
                header + c - IPV6_HEADER_LEN,
                offset,
                more,
                id,
            ),
        }
    }
    Ok(Fragments {
        start,
        stride,
        count,
        last: header + last_data,
    })
}

/// The parts of a packet's header that fragmenting keeps or adds.
struct Layout {
    /// The unfragmentable part: the IPv4 header, or the IPv6 header and the extension
    /// headers that stay before a Fragment header.
    front: usize,
    /// Bytes each fragment adds after it: IPv6's Fragment header.
    inserted: usize,
    /// IPv6: the Next Header octet that will name the Fragment header.
    next_header_at: usize,
}

fn v4_layout(bytes: &[u8]) -> Result<Layout, FragmentError> {
    let h = Ipv4Header::parse(bytes).map_err(|_| FragmentError::Malformed("IPv4 header"))?;
    if h.is_fragment() {
        return Err(FragmentError::Malformed("already a fragment"));
    }
    if usize::from(h.total_len) != bytes.len() {
        return Err(FragmentError::Malformed("IPv4 total length"));
    }
    Ok(Layout {
        front: h.header_len,
        inserted: 0,
        next_header_at: 0,
    })
}

fn v6_layout(bytes: &[u8]) -> Result<Layout, FragmentError> {
    let chain = ExtChain::walk(bytes).map_err(|_| FragmentError::Malformed("IPv6 header chain"))?;
    if chain.find(proto::IPV6_FRAG).is_some() {
        return Err(FragmentError::Malformed("already a fragment"));
    }
    let payload = usize::from(u16::from_be_bytes([bytes[4], bytes[5]]));
    if IPV6_HEADER_LEN + payload != bytes.len() {
        return Err(FragmentError::Malformed("IPv6 payload length"));
    }
    // RFC 8200 §4.5's unfragmentable part is what stays before ESP in transport mode.
    let (front, index) = chain.esp_insert_point();
    if front > MAX_FRONT {
        return Err(FragmentError::Malformed("unfragmentable part too long"));
    }
    Ok(Layout {
        front,
        inserted: FRAGMENT_HEADER_LEN,
        next_header_at: chain.next_header_field_offset(index),
    })
}

/// An IPv4 fragment's header: the packet's, with only the options marked to be copied
/// after the first fragment (RFC 791 §3.1; the others become NOPs, so every header is
/// as long), and its own length, flags and offset.
fn write_v4_header(
    h: &mut [u8],
    front: &[u8],
    first: bool,
    total: usize,
    offset: usize,
    more: bool,
    id: u32,
) {
    h.copy_from_slice(front);
    if !first {
        keep_copied_options(h);
    }
    h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    if h[4..6] == [0, 0] {
        h[4..6].copy_from_slice(&(id as u16).to_be_bytes());
    }
    let word = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
    h[6..8].copy_from_slice(&word.to_be_bytes());
    let sum = palisade_wire::ipv4_header_checksum(h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// Turns the options of the IPv4 header `header` without the copied flag into NOPs; an
/// option list that does not parse ends where it stops parsing (End of Option List from
/// there on).
fn keep_copied_options(header: &mut [u8]) {
    /// The copied flag of the option-type octet (RFC 791 §3.1).
    const COPIED: u8 = 0x80;
    let mut pos = IPV4_MIN_HEADER_LEN;
    loop {
        match option_at(header, pos) {
            Ok(None) => return,
            Ok(Some(o)) if o.kind == kind::EOL => return,
            Ok(Some(o)) => {
                if o.kind & COPIED == 0 {
                    header[pos..pos + o.len].fill(kind::NOP);
                }
                pos += o.len;
            }
            Err(_) => {
                header[pos..].fill(kind::EOL);
                return;
            }
        }
    }
}

/// An IPv6 fragment's headers: the unfragmentable part, naming a Fragment header, and
/// the Fragment header (RFC 8200 §4.5).
fn write_v6_header(
    h: &mut [u8],
    front: &[u8],
    next_header_at: usize,
    payload_len: usize,
    offset: usize,
    more: bool,
    id: u32,
) {
    let (unfragmentable, fragment) = h.split_at_mut(front.len());
    unfragmentable.copy_from_slice(front);
    let next_header = front[next_header_at];
    unfragmentable[next_header_at] = proto::IPV6_FRAG;
    unfragmentable[4..6].copy_from_slice(&(payload_len as u16).to_be_bytes());
    let word = offset as u16 | u16::from(more);
    fragment[0] = next_header;
    fragment[1] = 0;
    fragment[2..4].copy_from_slice(&word.to_be_bytes());
    fragment[4..8].copy_from_slice(&id.to_be_bytes());
}
