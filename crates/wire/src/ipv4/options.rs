//! Walking the IPv4 options area (RFC 791 §3.1), needed to decide which
//! options AH must zero before computing its ICV (RFC 4302 Appendix A.1).

use crate::WireError;
use crate::ipv4::{IPV4_MIN_HEADER_LEN, checked_header_len};

/// IPv4 option type numbers (the whole type octet, copy/class bits included)
/// that the AH mutability classification needs.
pub mod kind {
    /// End of Option List.
    pub const EOL: u8 = 0;
    /// No Operation.
    pub const NOP: u8 = 1;
    /// Record Route.
    pub const RECORD_ROUTE: u8 = 7;
    /// Internet Timestamp.
    pub const TIMESTAMP: u8 = 68;
    /// Traceroute (RFC 1393).
    pub const TRACEROUTE: u8 = 82;
    /// Security (RFC 1108).
    pub const SECURITY: u8 = 130;
    /// Loose Source and Record Route.
    pub const LSRR: u8 = 131;
    /// Extended Security (RFC 1108).
    pub const EXTENDED_SECURITY: u8 = 133;
    /// Commercial Security.
    pub const COMMERCIAL_SECURITY: u8 = 134;
    /// Strict Source and Record Route.
    pub const SSRR: u8 = 137;
    /// Router Alert (RFC 2113).
    pub const ROUTER_ALERT: u8 = 148;
    /// Sender Directed Multi-Destination Delivery (RFC 1770).
    pub const SDMDD: u8 = 149;
}

/// Whether RFC 4302 Appendix A.1 lists the option as immutable, i.e.
/// included in the AH ICV as sent.
///
/// Everything else, including option types unknown to us, is treated as
/// mutable and zeroed whole: an unknown option may be rewritten en route,
/// and zeroing it can only weaken coverage, never break interoperability
/// with a peer that follows the same appendix. Source-route options
/// (LSRR/SSRR) are "mutable but predictable" in the RFC; predicting them is
/// not implemented, so they are zeroed like other mutable options.
pub fn is_immutable(kind: u8) -> bool {
    matches!(
        kind,
        kind::EOL
            | kind::NOP
            | kind::SECURITY
            | kind::EXTENDED_SECURITY
            | kind::COMMERCIAL_SECURITY
            | kind::ROUTER_ALERT
            | kind::SDMDD
    )
}

/// One option found in a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Option {
    /// The option-type octet.
    pub kind: u8,
    /// Offset of the type octet from the start of the IPv4 header.
    pub offset: usize,
    /// Total length of the option in bytes, type and length octets included
    /// (1 for EOL and NOP).
    pub len: usize,
}

/// Reads the option starting at `pos` within `header` (the full IPv4
/// header, IHL × 4 bytes). `Ok(None)` means the options area is exhausted.
///
/// Exposed as a cursor rather than only as an iterator so callers can
/// modify the header between steps without holding a borrow of it.
pub fn option_at(header: &[u8], pos: usize) -> Result<Option<Ipv4Option>, WireError> {
    let Some(&kind) = header.get(pos) else {
        return Ok(None);
    };
    if kind == kind::EOL || kind == kind::NOP {
        return Ok(Some(Ipv4Option {
            kind,
            offset: pos,
            len: 1,
        }));
    }
    let len = usize::from(
        *header
            .get(pos.saturating_add(1))
            .ok_or(WireError::BadOption)?,
    );
    let fits = pos.checked_add(len).is_some_and(|end| end <= header.len());
    if len < 2 || !fits {
        return Err(WireError::BadOption);
    }
    Ok(Some(Ipv4Option {
        kind,
        offset: pos,
        len,
    }))
}

/// Iterator over the options of an IPv4 header.
///
/// Yields the End of Option List option itself and then stops: what follows
/// it is padding. After yielding an error it yields nothing more.
#[derive(Debug, Clone)]
pub struct Ipv4Options<'a> {
    header: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Ipv4Options<'a> {
    /// Validates the IPv4 header at the start of `buf` and iterates its
    /// options; bytes past the header are never looked at.
    pub fn new(buf: &'a [u8]) -> Result<Self, WireError> {
        let header_len = checked_header_len(buf)?;
        let header = buf.get(..header_len).ok_or(WireError::BadHeaderLength)?;
        Ok(Self {
            header,
            pos: IPV4_MIN_HEADER_LEN,
            done: false,
        })
    }
}

impl Iterator for Ipv4Options<'_> {
    type Item = Result<Ipv4Option, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match option_at(self.header, self.pos) {
            Ok(Some(opt)) => {
                self.pos = opt.offset.saturating_add(opt.len);
                self.done = opt.kind == kind::EOL;
                Some(Ok(opt))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_with_options(opts: &[u8]) -> [u8; 60] {
        let mut h = [0u8; 60];
        let words = (20 + opts.len()).div_ceil(4);
        h[0] = 0x40 | words as u8;
        h[3] = (words * 4) as u8;
        h[20..20 + opts.len()].copy_from_slice(opts);
        h
    }

    #[test]
    fn walks_nop_rr_eol() {
        let h = header_with_options(&[1, 7, 7, 4, 10, 0, 0, 1, 0, 0, 0, 0]);
        let mut it = Ipv4Options::new(&h).expect("valid");
        let got: [Option<Result<Ipv4Option, WireError>>; 4] = core::array::from_fn(|_| it.next());
        assert_eq!(
            got,
            [
                Some(Ok(Ipv4Option {
                    kind: 1,
                    offset: 20,
                    len: 1
                })),
                Some(Ok(Ipv4Option {
                    kind: 7,
                    offset: 21,
                    len: 7
                })),
                Some(Ok(Ipv4Option {
                    kind: 0,
                    offset: 28,
                    len: 1
                })),
                None,
            ]
        );
    }

    #[test]
    fn rejects_overrun_and_short_length() {
        let h = header_with_options(&[7, 9, 4, 0]);
        let mut it = Ipv4Options::new(&h).expect("valid");
        assert_eq!(it.next(), Some(Err(WireError::BadOption)));
        assert_eq!(it.next(), None);

        let h = header_with_options(&[130, 1, 0, 0]);
        assert_eq!(
            Ipv4Options::new(&h).expect("valid").next(),
            Some(Err(WireError::BadOption))
        );

        // Type octet is the last byte of the header: no room for a length.
        let h = header_with_options(&[1, 1, 1, 68]);
        assert_eq!(
            Ipv4Options::new(&h).expect("valid").nth(3),
            Some(Err(WireError::BadOption))
        );
    }

    #[test]
    fn no_options() {
        let h = header_with_options(&[]);
        assert_eq!(Ipv4Options::new(&h).expect("valid").next(), None);
    }

    #[test]
    fn classification() {
        for k in [0, 1, 130, 133, 134, 148, 149] {
            assert!(is_immutable(k), "{k}");
        }
        for k in [7, 68, 82, 131, 137, 25, 255] {
            assert!(!is_immutable(k), "{k}");
        }
    }
}
