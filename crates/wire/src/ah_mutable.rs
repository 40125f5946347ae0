//! Zeroing the IP header fields that AH must not cover because routers may
//! change them (RFC 4302 §3.3.3.1).
//!
//! Both functions edit a scratch copy of the packet that is then fed to the
//! ICV computation; they never touch the packet that is sent or delivered.
//! On error the copy may be partly zeroed and must be discarded.

use crate::WireError;
use crate::bytes::{array_at_mut, range_mut, u8_at};
use crate::ipv4::{IPV4_MIN_HEADER_LEN, checked_header_len, options};
use crate::ipv6::IPV6_HEADER_LEN;
use crate::ipv6_ext::{ExtChain, routing_segments_left};
use crate::ipv6_options::{self, OPTIONS_START, may_change_en_route};
use crate::proto;

/// Zeroes the mutable fields of the IPv4 header at the start of `buf`
/// (RFC 4302 §3.3.3.1.1).
///
/// Zeroed: the whole TOS octet (DSCP and ECN), flags and fragment offset,
/// TTL and header checksum. Options listed as immutable in RFC 4302
/// Appendix A.1 are kept ([`options::is_immutable`]); every other option is
/// zeroed entirely, type and length octets included, as that appendix
/// says. Bytes after the header are not touched, so `buf` may be the
/// header alone or the whole packet.
pub fn zero_mutable_ipv4(buf: &mut [u8]) -> Result<(), WireError> {
    let header_len = checked_header_len(buf)?;
    let header = range_mut(buf, 0, header_len)?;
    {
        let fixed: &mut [u8; IPV4_MIN_HEADER_LEN] = array_at_mut(header, 0)?;
        fixed[1] = 0; // TOS
        fixed[6] = 0; // flags, fragment offset
        fixed[7] = 0;
        fixed[8] = 0; // TTL
        fixed[10] = 0; // checksum
        fixed[11] = 0;
    }
    let mut pos = IPV4_MIN_HEADER_LEN;
    // Each option's extent is read before it is zeroed, so zeroing a type
    // octet (which would make it read as End of List) cannot derail the walk.
    while let Some(opt) = options::option_at(header, pos)? {
        if !options::is_immutable(opt.kind) {
            range_mut(header, opt.offset, opt.len)?.fill(0);
        }
        if opt.kind == options::kind::EOL {
            break;
        }
        pos = opt.offset.saturating_add(opt.len);
    }
    Ok(())
}

/// Zeroes the mutable fields of the IPv6 packet in `buf`, whose extension
/// headers were walked into `chain` (RFC 4302 §3.3.3.1.2).
///
/// Zeroed: Traffic Class, Flow Label, Hop Limit, and the data (not the type
/// or length) of every Hop-by-Hop or Destination option whose type has the
/// "may change en route" bit set.
///
/// Not supported, reported as [`WireError::UnsupportedExtension`]:
/// - a Routing header with Segments Left != 0: AH would need the
///   destination address as it will be at the final hop, which means
///   predicting the route, and no deployment we serve uses source routing;
/// - a Fragment header: AH is computed over whole datagrams and this crate
///   does no reassembly.
///
/// The AH ICV itself is left alone; zero it with [`crate::ah::zero_icv`].
pub fn zero_mutable_ipv6(buf: &mut [u8], chain: &ExtChain) -> Result<(), WireError> {
    let version = u8_at(buf, 0)? >> 4;
    if version != 6 {
        return Err(WireError::BadVersion(version));
    }
    // Reject unsupported packets before editing anything.
    for h in chain.headers() {
        match h.kind {
            proto::IPV6_ROUTE if routing_segments_left(buf, h.offset)? != 0 => {
                return Err(WireError::UnsupportedExtension(proto::IPV6_ROUTE));
            }
            proto::IPV6_FRAG => return Err(WireError::UnsupportedExtension(proto::IPV6_FRAG)),
            _ => {}
        }
    }
    {
        let fixed: &mut [u8; IPV6_HEADER_LEN] = array_at_mut(buf, 0)?;
        // Version stays; Traffic Class and Flow Label span the rest of the
        // first four octets.
        fixed[0] &= 0xF0;
        fixed[1] = 0;
        fixed[2] = 0;
        fixed[3] = 0;
        fixed[7] = 0; // Hop Limit
    }
    for h in chain.headers() {
        if h.kind == proto::HOPOPT || h.kind == proto::IPV6_OPTS {
            zero_changing_options(range_mut(buf, h.offset, h.len)?)?;
        }
    }
    Ok(())
}

fn zero_changing_options(ext_header: &mut [u8]) -> Result<(), WireError> {
    let mut pos = OPTIONS_START;
    while let Some(opt) = ipv6_options::option_at(ext_header, pos)? {
        if may_change_en_route(opt.kind) {
            let range = opt.data_range();
            range_mut(ext_header, range.start, range.len())?.fill(0);
        }
        pos = opt.end();
    }
    Ok(())
}
