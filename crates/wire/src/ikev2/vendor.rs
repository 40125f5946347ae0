//! The Vendor ID payload (RFC 7296 §3.12).

use super::payload::PayloadBody;
use crate::WireError;

/// A Vendor ID payload body: an opaque identifier, usually a hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VendorId<'a> {
    /// Vendor ID.
    pub data: &'a [u8],
}

impl<'a> VendorId<'a> {
    /// Parses a Vendor ID body; any length, even zero, is acceptable.
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        Ok(Self { data: body })
    }
}

impl PayloadBody for VendorId<'_> {
    fn body_len(&self) -> usize {
        self.data.len()
    }
    fn write_body(&self, out: &mut [u8]) -> Result<usize, WireError> {
        self.data.write_body(out)
    }
}
