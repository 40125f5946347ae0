//! The Internet checksum (RFC 1071) used by IPv4, UDP and friends.

/// Incremental ones' complement sum, for checksums that span
/// non-contiguous data such as a pseudo-header followed by a segment.
///
/// Data may be fed in pieces of any length, including odd ones: a trailing
/// odd byte is held back and paired with the first byte of the next piece,
/// so the result is the same as summing the concatenation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksum {
    // Summed in 64 bits with end-around carry; 2^64 - 1 is a multiple of
    // 2^16 - 1, so folding at the end gives the same 16-bit ones' complement
    // sum while processing eight bytes per step.
    sum: u64,
    pending: Option<u8>,
}

fn add_carry(sum: u64, word: u64) -> u64 {
    let (s, carry) = sum.overflowing_add(word);
    // After an overflow `s < word`, so adding the carry cannot overflow.
    s.wrapping_add(u64::from(carry))
}

fn fold(mut sum: u64) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    // The loop leaves at most 16 significant bits.
    sum as u16
}

impl Checksum {
    /// An empty accumulator.
    pub const fn new() -> Self {
        Self {
            sum: 0,
            pending: None,
        }
    }

    /// Adds `data` as a continuation of everything added so far.
    pub fn add_bytes(&mut self, data: &[u8]) {
        let mut data = data;
        if let Some(hi) = self.pending.take() {
            match data.split_first() {
                Some((&lo, rest)) => {
                    self.sum = add_carry(self.sum, u64::from(u16::from_be_bytes([hi, lo])));
                    data = rest;
                }
                None => {
                    self.pending = Some(hi);
                    return;
                }
            }
        }
        let mut words = data.chunks_exact(8);
        for chunk in &mut words {
            if let Ok(b) = <[u8; 8]>::try_from(chunk) {
                self.sum = add_carry(self.sum, u64::from_be_bytes(b));
            }
        }
        let mut pairs = words.remainder().chunks_exact(2);
        for pair in &mut pairs {
            if let &[hi, lo] = pair {
                self.sum = add_carry(self.sum, u64::from(u16::from_be_bytes([hi, lo])));
            }
        }
        if let &[last] = pairs.remainder() {
            self.pending = Some(last);
        }
    }

    /// Adds a 16-bit value in network byte order.
    pub fn add_u16(&mut self, value: u16) {
        self.add_bytes(&value.to_be_bytes());
    }

    /// Adds a 32-bit value in network byte order.
    pub fn add_u32(&mut self, value: u32) {
        self.add_bytes(&value.to_be_bytes());
    }

    /// The checksum field value: the ones' complement of the folded sum.
    ///
    /// A trailing odd byte is padded with a zero byte, as RFC 1071 requires.
    pub fn finish(&self) -> u16 {
        let sum = match self.pending {
            Some(hi) => add_carry(self.sum, u64::from(hi) << 8),
            None => self.sum,
        };
        !fold(sum)
    }
}

/// RFC 1071 checksum of `data`.
///
/// Summing a region that already contains a correct checksum yields 0,
/// which is how received checksums are verified.
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut c = Checksum::new();
    c.add_bytes(data);
    c.finish()
}

/// Offset of the checksum field in an IPv4 header.
const IPV4_CHECKSUM_OFFSET: usize = 10;

/// Checksum of an IPv4 header, computed as if its checksum field were zero.
///
/// `header` should be exactly the header (IHL × 4 bytes); this lets the
/// result be written straight into a header whose old checksum is stale.
/// A slice too short to contain the checksum field is summed as it is.
pub fn ipv4_header_checksum(header: &[u8]) -> u16 {
    let mut c = Checksum::new();
    match (
        header.get(..IPV4_CHECKSUM_OFFSET),
        header.get(IPV4_CHECKSUM_OFFSET + 2..),
    ) {
        (Some(before), Some(after)) => {
            c.add_bytes(before);
            c.add_bytes(after);
        }
        (Some(before), None) => c.add_bytes(before),
        (None, _) => c.add_bytes(header),
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward 16-bit reference sum, to check the 64-bit fast path.
    fn reference(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for pair in data.chunks(2) {
            let hi = pair.first().copied().unwrap_or(0);
            let lo = pair.get(1).copied().unwrap_or(0);
            sum += u32::from(u16::from_be_bytes([hi, lo]));
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: these bytes sum to 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&data), !0xddf2);
        assert_eq!(reference(&data), !0xddf2);
    }

    #[test]
    fn captured_ipv4_header() {
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(ipv4_header_checksum(&header), 0xb861);
        assert_eq!(internet_checksum(&header), 0);
    }

    #[test]
    fn empty_and_zero() {
        assert_eq!(internet_checksum(&[]), 0xFFFF);
        assert_eq!(internet_checksum(&[0; 7]), 0xFFFF);
        assert_eq!(internet_checksum(&[0xFF, 0xFF]), 0);
        assert_eq!(internet_checksum(&[0xFF; 64]), 0);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(internet_checksum(&[0x12]), !0x1200);
        assert_eq!(internet_checksum(&[0x12, 0x34, 0x56]), !(0x1234 + 0x5600));
    }

    #[test]
    fn split_feeding_matches_whole() {
        let data: [u8; 37] = core::array::from_fn(|i| (i as u8).wrapping_mul(151).wrapping_add(7));
        let whole = internet_checksum(&data);
        assert_eq!(whole, reference(&data));
        for split_a in 0..data.len() {
            for split_b in split_a..data.len() {
                let mut c = Checksum::new();
                c.add_bytes(data.get(..split_a).unwrap_or_default());
                c.add_bytes(data.get(split_a..split_b).unwrap_or_default());
                c.add_bytes(data.get(split_b..).unwrap_or_default());
                assert_eq!(c.finish(), whole, "split at {split_a}/{split_b}");
            }
        }
    }

    #[test]
    fn u16_u32_helpers_are_network_order() {
        let mut a = Checksum::new();
        a.add_u32(0x0102_0304);
        a.add_u16(0x0506);
        assert_eq!(a.finish(), internet_checksum(&[1, 2, 3, 4, 5, 6]));
    }

    #[test]
    fn short_ipv4_slices_do_not_panic() {
        for len in 0..20 {
            let _ = ipv4_header_checksum(&[0xAB; 20][..len]);
        }
    }
}
