//! The Identification payloads IDi and IDr (RFC 7296 §3.5).
//!
//! The body (ID Type, reserved bytes, data) is what the AUTH computation
//! signs as RestOfInitIDPayload/RestOfRespIDPayload (§2.15), so callers
//! keep the raw body from [`super::Payload`] alongside this view.

use core::net::{Ipv4Addr, Ipv6Addr};

use super::cursor::{Reader, Writer};
use super::payload::PayloadBody;
use crate::WireError;

/// ID Type values (§3.5).
pub mod id_type {
    /// A single four-octet IPv4 address.
    pub const ID_IPV4_ADDR: u8 = 1;
    /// A fully-qualified domain name, no terminator.
    pub const ID_FQDN: u8 = 2;
    /// An RFC 822 email address, no terminator.
    pub const ID_RFC822_ADDR: u8 = 3;
    /// A single sixteen-octet IPv6 address.
    pub const ID_IPV6_ADDR: u8 = 5;
    /// The DER encoding of an ASN.1 X.500 Distinguished Name.
    pub const ID_DER_ASN1_DN: u8 = 9;
    /// The DER encoding of an ASN.1 X.509 GeneralName.
    pub const ID_DER_ASN1_GN: u8 = 10;
    /// An opaque octet stream for vendor-specific information.
    pub const ID_KEY_ID: u8 = 11;
}

/// An IDi or IDr payload body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Identification<'a> {
    /// One of [`id_type`].
    pub id_type: u8,
    /// Identification Data.
    pub data: &'a [u8],
}

impl<'a> Identification<'a> {
    /// Parses an ID body. Address types must carry exactly one address,
    /// every other type at least one byte.
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let id_type = r.u8()?;
        let _reserved = r.take(3)?;
        let id = Self {
            id_type,
            data: r.rest(),
        };
        id.check()?;
        Ok(id)
    }

    fn check(&self) -> Result<(), WireError> {
        let ok = match self.id_type {
            id_type::ID_IPV4_ADDR => self.data.len() == 4,
            id_type::ID_IPV6_ADDR => self.data.len() == 16,
            _ => !self.data.is_empty(),
        };
        if ok {
            Ok(())
        } else {
            Err(WireError::BadSubstructure)
        }
    }

    /// The address of an ID_IPV4_ADDR identity.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        (self.id_type == id_type::ID_IPV4_ADDR)
            .then(|| <[u8; 4]>::try_from(self.data).ok().map(Ipv4Addr::from))
            .flatten()
    }

    /// The address of an ID_IPV6_ADDR identity.
    pub fn ipv6(&self) -> Option<Ipv6Addr> {
        (self.id_type == id_type::ID_IPV6_ADDR)
            .then(|| <[u8; 16]>::try_from(self.data).ok().map(Ipv6Addr::from))
            .flatten()
    }
}

impl PayloadBody for Identification<'_> {
    fn body_len(&self) -> usize {
        4 + self.data.len()
    }
    fn write_body(&self, out: &mut [u8]) -> Result<usize, WireError> {
        self.check()?;
        let mut w = Writer::new(out);
        w.u8(self.id_type)?;
        w.put(&[0; 3])?;
        w.put(self.data)?;
        Ok(w.len())
    }
}
