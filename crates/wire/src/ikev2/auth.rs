//! The Authentication payload (RFC 7296 §3.8).

use super::cursor::{Reader, Writer};
use super::payload::PayloadBody;
use crate::WireError;

/// Auth Method values (§3.8, RFC 7427 §3).
pub mod auth_method {
    /// RSA Digital Signature (PKCS#1 v1.5 with SHA-1).
    pub const RSA_DIGITAL_SIGNATURE: u8 = 1;
    /// Shared Key Message Integrity Code.
    pub const SHARED_KEY_MESSAGE_INTEGRITY_CODE: u8 = 2;
    /// DSS Digital Signature.
    pub const DSS_DIGITAL_SIGNATURE: u8 = 3;
    /// ECDSA with SHA-256 on the P-256 curve (RFC 4754).
    pub const ECDSA_SHA256_P256: u8 = 9;
    /// ECDSA with SHA-384 on the P-384 curve (RFC 4754).
    pub const ECDSA_SHA384_P384: u8 = 10;
    /// ECDSA with SHA-512 on the P-521 curve (RFC 4754).
    pub const ECDSA_SHA512_P521: u8 = 11;
    /// NULL Authentication (RFC 7619).
    pub const NULL_AUTHENTICATION: u8 = 13;
    /// Digital Signature (RFC 7427): the data starts with an AlgorithmIdentifier.
    pub const DIGITAL_SIGNATURE: u8 = 14;
}

/// An AUTH payload body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Auth<'a> {
    /// One of [`auth_method`].
    pub auth_method: u8,
    /// Authentication Data.
    pub data: &'a [u8],
}

impl<'a> Auth<'a> {
    /// Parses an AUTH body.
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let auth_method = r.u8()?;
        let _reserved = r.take(3)?;
        Ok(Self {
            auth_method,
            data: r.rest(),
        })
    }
}

impl PayloadBody for Auth<'_> {
    fn body_len(&self) -> usize {
        4 + self.data.len()
    }
    fn write_body(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let mut w = Writer::new(out);
        w.u8(self.auth_method)?;
        w.put(&[0; 3])?;
        w.put(self.data)?;
        Ok(w.len())
    }
}
