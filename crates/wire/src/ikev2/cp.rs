//! The Configuration payload (RFC 7296 §3.15).

use super::cursor::{Reader, Writer, len_u16};
use super::payload::PayloadBody;
use crate::WireError;

/// CFG Type values (§3.15).
pub mod cfg_type {
    /// A request for configuration (initiator, IKE_AUTH request).
    pub const CFG_REQUEST: u8 = 1;
    /// The answer to a CFG_REQUEST.
    pub const CFG_REPLY: u8 = 2;
    /// Unsolicited configuration.
    pub const CFG_SET: u8 = 3;
    /// Acknowledges a CFG_SET.
    pub const CFG_ACK: u8 = 4;
}

/// Configuration Attribute types (§3.15.1).
pub mod attribute_type {
    /// An IPv4 address on the internal network.
    pub const INTERNAL_IP4_ADDRESS: u16 = 1;
    /// Its netmask.
    pub const INTERNAL_IP4_NETMASK: u16 = 2;
    /// An IPv4 DNS server.
    pub const INTERNAL_IP4_DNS: u16 = 3;
    /// An IPv4 NetBIOS name server.
    pub const INTERNAL_IP4_NBNS: u16 = 4;
    /// An IPv4 DHCP server.
    pub const INTERNAL_IP4_DHCP: u16 = 6;
    /// A version or application string.
    pub const APPLICATION_VERSION: u16 = 7;
    /// An IPv6 address and prefix length (17 bytes).
    pub const INTERNAL_IP6_ADDRESS: u16 = 8;
    /// An IPv6 DNS server.
    pub const INTERNAL_IP6_DNS: u16 = 10;
    /// An IPv6 DHCP server.
    pub const INTERNAL_IP6_DHCP: u16 = 12;
    /// A protected IPv4 subnet (address and mask).
    pub const INTERNAL_IP4_SUBNET: u16 = 13;
    /// The attribute types the sender supports.
    pub const SUPPORTED_ATTRIBUTES: u16 = 14;
    /// A protected IPv6 subnet (address and prefix length).
    pub const INTERNAL_IP6_SUBNET: u16 = 15;
}

/// The reserved top bit of the attribute type word.
const RESERVED_BIT: u16 = 0x8000;

/// One configuration attribute; an empty value in a request asks for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConfigAttribute<'a> {
    /// Attribute Type (15 bits), one of [`attribute_type`].
    pub attribute_type: u16,
    /// The value.
    pub value: &'a [u8],
}

impl<'a> ConfigAttribute<'a> {
    fn parse(r: &mut Reader<'a>) -> Result<Self, WireError> {
        let attribute_type = r.u16()? & !RESERVED_BIT;
        let length = usize::from(r.u16()?);
        let value = r.take(length).map_err(|_| WireError::PayloadLength)?;
        Ok(Self {
            attribute_type,
            value,
        })
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        if self.attribute_type & RESERVED_BIT != 0 {
            return Err(WireError::FieldOutOfRange);
        }
        w.u16(self.attribute_type)?;
        w.u16(len_u16(self.value.len())?)?;
        w.put(self.value)
    }
}

/// Iterator over the attributes of a checked CP payload.
#[derive(Debug, Clone)]
pub struct ConfigAttributes<'a>(Reader<'a>);

impl<'a> Iterator for ConfigAttributes<'a> {
    type Item = ConfigAttribute<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        ConfigAttribute::parse(&mut self.0).ok()
    }
}

/// A checked CP payload body; [`ConfigurationSpec`] is the one to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Configuration<'a> {
    /// One of [`cfg_type`].
    pub cfg_type: u8,
    attributes: &'a [u8],
}

impl<'a> Configuration<'a> {
    /// Parses a CP body, checking that the attributes fill it exactly.
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let cfg_type = r.u8()?;
        let _reserved = r.take(3)?;
        let attributes = r.rest();
        let mut check = Reader::new(attributes);
        while !check.is_empty() {
            ConfigAttribute::parse(&mut check)?;
        }
        Ok(Self {
            cfg_type,
            attributes,
        })
    }

    /// The attributes.
    pub fn attributes(&self) -> ConfigAttributes<'a> {
        ConfigAttributes(Reader::new(self.attributes))
    }
}

impl PayloadBody for Configuration<'_> {
    fn body_len(&self) -> usize {
        4 + self.attributes.len()
    }
    fn write_body(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let mut w = Writer::new(out);
        w.u8(self.cfg_type)?;
        w.put(&[0; 3])?;
        w.put(self.attributes)?;
        Ok(w.len())
    }
}

/// A CP body to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConfigurationSpec<'x> {
    /// One of [`cfg_type`].
    pub cfg_type: u8,
    /// The attributes, in order.
    pub attributes: &'x [ConfigAttribute<'x>],
}

impl PayloadBody for ConfigurationSpec<'_> {
    fn body_len(&self) -> usize {
        4 + self
            .attributes
            .iter()
            .map(|a| 4 + a.value.len())
            .sum::<usize>()
    }
    fn write_body(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let mut w = Writer::new(out);
        w.u8(self.cfg_type)?;
        w.put(&[0; 3])?;
        for a in self.attributes {
            a.write(&mut w)?;
        }
        Ok(w.len())
    }
}
