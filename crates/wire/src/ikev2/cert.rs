//! The Certificate and Certificate Request payloads (RFC 7296 §3.6, §3.7).

use super::cursor::{Reader, Writer};
use super::payload::PayloadBody;
use crate::WireError;

/// Certificate Encoding values (§3.6).
pub mod cert_encoding {
    /// PKCS #7 wrapped X.509 certificate.
    pub const PKCS7_WRAPPED_X509_CERTIFICATE: u8 = 1;
    /// X.509 Certificate - Signature: one DER certificate.
    pub const X509_CERTIFICATE_SIGNATURE: u8 = 4;
    /// Certificate Revocation List (CRL).
    pub const CERTIFICATE_REVOCATION_LIST: u8 = 7;
    /// Hash and URL of X.509 certificate.
    pub const HASH_AND_URL_OF_X509_CERTIFICATE: u8 = 12;
    /// Hash and URL of X.509 bundle.
    pub const HASH_AND_URL_OF_X509_BUNDLE: u8 = 13;
}

/// Length of a SHA-1 hash of a trust anchor's public key in CERTREQ.
pub const CA_HASH_LEN: usize = 20;

/// A CERT payload body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Certificate<'a> {
    /// One of [`cert_encoding`].
    pub cert_encoding: u8,
    /// Certificate Data (for encoding 4: one DER certificate).
    pub data: &'a [u8],
}

/// A CERTREQ payload body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertificateRequest<'a> {
    /// One of [`cert_encoding`], the kind of certificate wanted.
    pub cert_encoding: u8,
    /// Certification Authority: for X.509, SHA-1 hashes of trusted CAs'
    /// SubjectPublicKeyInfo, 20 bytes each.
    pub authorities: &'a [u8],
}

fn parse_encoded(body: &[u8]) -> Result<(u8, &[u8]), WireError> {
    let mut r = Reader::new(body);
    let encoding = r.u8()?;
    Ok((encoding, r.rest()))
}

fn write_encoded(out: &mut [u8], encoding: u8, data: &[u8]) -> Result<usize, WireError> {
    let mut w = Writer::new(out);
    w.u8(encoding)?;
    w.put(data)?;
    Ok(w.len())
}

impl<'a> Certificate<'a> {
    /// Parses a CERT body.
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let (cert_encoding, data) = parse_encoded(body)?;
        Ok(Self {
            cert_encoding,
            data,
        })
    }
}

impl<'a> CertificateRequest<'a> {
    /// Parses a CERTREQ body.
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let (cert_encoding, authorities) = parse_encoded(body)?;
        Ok(Self {
            cert_encoding,
            authorities,
        })
    }

    /// The CA hashes, or `None` if the field is not a whole number of them.
    pub fn ca_hashes(&self) -> Option<impl Iterator<Item = &'a [u8]> + 'a> {
        self.authorities
            .len()
            .is_multiple_of(CA_HASH_LEN)
            .then(|| self.authorities.chunks_exact(CA_HASH_LEN))
    }
}

impl PayloadBody for Certificate<'_> {
    fn body_len(&self) -> usize {
        1 + self.data.len()
    }
    fn write_body(&self, out: &mut [u8]) -> Result<usize, WireError> {
        write_encoded(out, self.cert_encoding, self.data)
    }
}

impl PayloadBody for CertificateRequest<'_> {
    fn body_len(&self) -> usize {
        1 + self.authorities.len()
    }
    fn write_body(&self, out: &mut [u8]) -> Result<usize, WireError> {
        write_encoded(out, self.cert_encoding, self.authorities)
    }
}
