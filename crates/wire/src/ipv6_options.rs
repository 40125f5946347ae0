//! The TLV-encoded options inside IPv6 Hop-by-Hop and Destination Options
//! headers (RFC 8200 §4.2).

use core::ops::Range;

use crate::WireError;

/// Pad1: a single zero byte with no length or data.
pub const PAD1: u8 = 0;
/// PadN: padding of two or more bytes.
pub const PADN: u8 = 1;
/// Router Alert (RFC 2711).
pub const ROUTER_ALERT: u8 = 0x05;
/// Jumbo Payload (RFC 2675).
pub const JUMBO_PAYLOAD: u8 = 0xC2;

/// The option-type bit saying the option data may change en route
/// (RFC 8200 §4.2); AH must treat such data as zero (RFC 4302 §3.3.3.1.2.1).
pub const CHANGES_EN_ROUTE: u8 = 0x20;

/// Where the options area starts within an options header, after the
/// Next Header and Hdr Ext Len octets.
pub const OPTIONS_START: usize = 2;

/// Whether the option's data may change on the way to the destination.
pub fn may_change_en_route(kind: u8) -> bool {
    kind & CHANGES_EN_ROUTE != 0
}

/// One option found in an options header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Option {
    /// The option-type octet.
    pub kind: u8,
    /// Offset of the type octet from the start of the options header.
    pub offset: usize,
    /// Length of the option data (0 for Pad1, which has no length octet).
    pub data_len: usize,
}

impl Ipv6Option {
    /// Byte range of the option data within the options header.
    pub fn data_range(&self) -> Range<usize> {
        let start = if self.kind == PAD1 {
            self.offset.saturating_add(1)
        } else {
            self.offset.saturating_add(2)
        };
        start..start.saturating_add(self.data_len)
    }

    /// Offset just past this option, where the next one starts.
    pub fn end(&self) -> usize {
        self.data_range().end
    }
}

/// Reads the option at `pos` within `ext_header` (a whole Hop-by-Hop or
/// Destination Options header). `Ok(None)` means the header is exhausted.
///
/// A cursor rather than only an iterator, so that callers may modify the
/// header between steps.
pub fn option_at(ext_header: &[u8], pos: usize) -> Result<Option<Ipv6Option>, WireError> {
    let Some(&kind) = ext_header.get(pos) else {
        return Ok(None);
    };
    if kind == PAD1 {
        return Ok(Some(Ipv6Option {
            kind,
            offset: pos,
            data_len: 0,
        }));
    }
    let data_len = usize::from(
        *ext_header
            .get(pos.saturating_add(1))
            .ok_or(WireError::BadOption)?,
    );
    let opt = Ipv6Option {
        kind,
        offset: pos,
        data_len,
    };
    if opt.end() > ext_header.len() {
        return Err(WireError::BadOption);
    }
    Ok(Some(opt))
}

/// Iterator over the options of a Hop-by-Hop or Destination Options
/// header. After yielding an error it yields nothing more.
#[derive(Debug, Clone)]
pub struct Ipv6Options<'a> {
    ext_header: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Ipv6Options<'a> {
    /// Iterates the options of `ext_header`, which must be exactly the
    /// options header (e.g. `&packet[h.offset..h.offset + h.len]` for an
    /// [`crate::ExtHeader`]).
    pub fn new(ext_header: &'a [u8]) -> Self {
        Self {
            ext_header,
            pos: OPTIONS_START,
            done: false,
        }
    }
}

impl Iterator for Ipv6Options<'_> {
    type Item = Result<Ipv6Option, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match option_at(self.ext_header, self.pos) {
            Ok(Some(opt)) => {
                self.pos = opt.end();
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

    #[test]
    fn walks_pad1_padn_and_data() {
        // next=6, len=0 (8 bytes): Pad1, RouterAlert(2 bytes), PadN(0)
        let hdr = [6, 0, PAD1, ROUTER_ALERT, 2, 0, 0, PADN];
        let mut it = Ipv6Options::new(&hdr[..7]);
        let a = it.next().and_then(Result::ok).expect("pad1");
        assert_eq!((a.kind, a.offset, a.data_range()), (PAD1, 2, 3..3));
        let b = it.next().and_then(Result::ok).expect("router alert");
        assert_eq!((b.kind, b.offset, b.data_range()), (ROUTER_ALERT, 3, 5..7));
        assert_eq!(it.next(), None);

        // PadN as last byte: length octet missing.
        let mut it = Ipv6Options::new(&hdr);
        assert_eq!(it.nth(2), Some(Err(WireError::BadOption)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn rejects_overrunning_data() {
        let hdr = [6, 0, 0x3E, 5, 0, 0, 0, 0];
        assert_eq!(
            Ipv6Options::new(&hdr).next(),
            Some(Err(WireError::BadOption))
        );
    }

    #[test]
    fn change_bit() {
        assert!(may_change_en_route(0x3E));
        assert!(!may_change_en_route(ROUTER_ALERT));
        assert!(!may_change_en_route(JUMBO_PAYLOAD));
    }
}
