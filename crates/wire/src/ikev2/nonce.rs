//! The Nonce payload (RFC 7296 §3.9).

use super::payload::PayloadBody;
use crate::WireError;

/// Smallest nonce RFC 7296 §3.9 allows.
pub const MIN_NONCE_LEN: usize = 16;
/// Largest nonce RFC 7296 §3.9 allows.
pub const MAX_NONCE_LEN: usize = 256;

/// A Nonce payload body of 16 to 256 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nonce<'a> {
    /// Nonce Data.
    pub data: &'a [u8],
}

impl<'a> Nonce<'a> {
    /// Parses a Nonce body, checking its size.
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let n = Self { data: body };
        n.check()?;
        Ok(n)
    }

    fn check(&self) -> Result<(), WireError> {
        if (MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&self.data.len()) {
            Ok(())
        } else {
            Err(WireError::NonceLength(self.data.len()))
        }
    }
}

impl PayloadBody for Nonce<'_> {
    fn body_len(&self) -> usize {
        self.data.len()
    }
    fn write_body(&self, out: &mut [u8]) -> Result<usize, WireError> {
        self.check()?;
        self.data.write_body(out)
    }
}
