//! The Key Exchange payload (RFC 7296 §3.4).

use super::cursor::{Reader, Writer};
use super::payload::PayloadBody;
use crate::WireError;

/// A KE payload body: the group and this end's public value (or, for a
/// KEM in an RFC 9370 additional exchange, its key or ciphertext).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyExchange<'a> {
    /// Diffie-Hellman Group Num, a [`super::ke_method`] value; it must
    /// match the proposal's KE transform or the answer is INVALID_KE_PAYLOAD.
    pub dh_group: u16,
    /// Key Exchange Data. Its length per group is the crypto side's check.
    pub data: &'a [u8],
}

impl<'a> KeyExchange<'a> {
    /// Parses a KE body.
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let dh_group = r.u16()?;
        let _reserved = r.u16()?;
        Ok(Self {
            dh_group,
            data: r.rest(),
        })
    }
}

impl PayloadBody for KeyExchange<'_> {
    fn body_len(&self) -> usize {
        4 + self.data.len()
    }
    fn write_body(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let mut w = Writer::new(out);
        w.u16(self.dh_group)?;
        w.u16(0)?;
        w.put(self.data)?;
        Ok(w.len())
    }
}
