//! The Traffic Selector payloads TSi and TSr (RFC 7296 §3.13).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::cursor::{Reader, Writer, len_u8, len_u16};
use super::payload::PayloadBody;
use crate::WireError;

/// TS Type values (§3.13.1).
pub mod ts_type {
    /// A range of IPv4 addresses.
    pub const TS_IPV4_ADDR_RANGE: u8 = 7;
    /// A range of IPv6 addresses.
    pub const TS_IPV6_ADDR_RANGE: u8 = 8;
}

const TS_HEADER_LEN: usize = 4;
const TS_IPV4_LEN: usize = 16;
const TS_IPV6_LEN: usize = 40;

/// An address range with protocol and port range: TS_IPV4_ADDR_RANGE or
/// TS_IPV6_ADDR_RANGE by the family of its addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressRange {
    /// IP protocol, 0 for any.
    pub ip_protocol_id: u8,
    /// First port; 0 with `end_port` 65535 for any port, and 65535 with
    /// `end_port` 0 for "OPAQUE" (§3.13.1).
    pub start_port: u16,
    /// Last port.
    pub end_port: u16,
    /// First address.
    pub start_address: IpAddr,
    /// Last address, of the same family.
    pub end_address: IpAddr,
}

/// One traffic selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrafficSelector<'a> {
    /// An IPv4 or IPv6 address range.
    Range(AddressRange),
    /// A type this code does not interpret (e.g. RFC 9478's TS_SECLABEL),
    /// kept so that the keying module can decide what to do with it.
    Other {
        /// TS Type.
        ts_type: u8,
        /// The octet after TS Type (IP Protocol ID for address ranges).
        second_octet: u8,
        /// Everything after Selector Length.
        data: &'a [u8],
    },
}

impl<'a> TrafficSelector<'a> {
    fn parse(r: &mut Reader<'a>) -> Result<Self, WireError> {
        let ts_type = r.u8()?;
        let second_octet = r.u8()?;
        let length = usize::from(r.u16()?);
        let data = length
            .checked_sub(TS_HEADER_LEN)
            .ok_or(WireError::PayloadLength)
            .and_then(|n| r.take(n).map_err(|_| WireError::PayloadLength))?;
        let mut d = Reader::new(data);
        let range = |start: IpAddr, end: IpAddr, ports: (u16, u16)| AddressRange {
            ip_protocol_id: second_octet,
            start_port: ports.0,
            end_port: ports.1,
            start_address: start,
            end_address: end,
        };
        match (ts_type, length) {
            (ts_type::TS_IPV4_ADDR_RANGE, TS_IPV4_LEN) => {
                let ports = (d.u16()?, d.u16()?);
                let start = Ipv4Addr::from(d.array::<4>()?);
                let end = Ipv4Addr::from(d.array::<4>()?);
                Ok(Self::Range(range(start.into(), end.into(), ports)))
            }
            (ts_type::TS_IPV6_ADDR_RANGE, TS_IPV6_LEN) => {
                let ports = (d.u16()?, d.u16()?);
                let start = Ipv6Addr::from(d.array::<16>()?);
                let end = Ipv6Addr::from(d.array::<16>()?);
                Ok(Self::Range(range(start.into(), end.into(), ports)))
            }
            (ts_type::TS_IPV4_ADDR_RANGE | ts_type::TS_IPV6_ADDR_RANGE, _) => {
                Err(WireError::BadSubstructure)
            }
            _ => Ok(Self::Other {
                ts_type,
                second_octet,
                data,
            }),
        }
    }

    /// Length on the wire.
    pub fn wire_len(&self) -> usize {
        match self {
            Self::Range(r) if r.start_address.is_ipv4() => TS_IPV4_LEN,
            Self::Range(_) => TS_IPV6_LEN,
            Self::Other { data, .. } => TS_HEADER_LEN + data.len(),
        }
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        match self {
            Self::Range(r) => {
                let kind = match (r.start_address, r.end_address) {
                    (IpAddr::V4(_), IpAddr::V4(_)) => ts_type::TS_IPV4_ADDR_RANGE,
                    (IpAddr::V6(_), IpAddr::V6(_)) => ts_type::TS_IPV6_ADDR_RANGE,
                    _ => return Err(WireError::BadSubstructure),
                };
                w.u8(kind)?;
                w.u8(r.ip_protocol_id)?;
                w.u16(len_u16(self.wire_len())?)?;
                w.u16(r.start_port)?;
                w.u16(r.end_port)?;
                for a in [r.start_address, r.end_address] {
                    match a {
                        IpAddr::V4(a) => w.put(&a.octets())?,
                        IpAddr::V6(a) => w.put(&a.octets())?,
                    }
                }
                Ok(())
            }
            Self::Other {
                ts_type,
                second_octet,
                data,
            } => {
                w.u8(*ts_type)?;
                w.u8(*second_octet)?;
                w.u16(len_u16(self.wire_len())?)?;
                w.put(data)
            }
        }
    }
}

/// Iterator over the selectors of a checked TS payload.
#[derive(Debug, Clone)]
pub struct Selectors<'a>(Reader<'a>);

impl<'a> Iterator for Selectors<'a> {
    type Item = TrafficSelector<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        TrafficSelector::parse(&mut self.0).ok()
    }
}

/// A checked TSi or TSr payload body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficSelectors<'a> {
    /// Number of TSs.
    pub count: u8,
    selectors: &'a [u8],
}

impl<'a> TrafficSelectors<'a> {
    /// Parses a TS body: Number of TSs must equal the selectors present
    /// and they must fill the body exactly.
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let count = r.u8()?;
        let _reserved = r.take(3)?;
        let selectors = r.rest();
        let mut check = Reader::new(selectors);
        for _ in 0..count {
            TrafficSelector::parse(&mut check)?;
        }
        if !check.is_empty() {
            return Err(WireError::TrailingData);
        }
        Ok(Self { count, selectors })
    }

    /// The selectors.
    pub fn selectors(&self) -> Selectors<'a> {
        Selectors(Reader::new(self.selectors))
    }
}

impl PayloadBody for TrafficSelectors<'_> {
    fn body_len(&self) -> usize {
        4 + self.selectors.len()
    }
    fn write_body(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let mut w = Writer::new(out);
        w.u8(self.count)?;
        w.put(&[0; 3])?;
        w.put(self.selectors)?;
        Ok(w.len())
    }
}

/// A TSi or TSr body to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficSelectorsSpec<'x> {
    /// The selectors, in order.
    pub selectors: &'x [TrafficSelector<'x>],
}

impl PayloadBody for TrafficSelectorsSpec<'_> {
    fn body_len(&self) -> usize {
        4 + self
            .selectors
            .iter()
            .map(TrafficSelector::wire_len)
            .sum::<usize>()
    }
    fn write_body(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let mut w = Writer::new(out);
        w.u8(len_u8(self.selectors.len())?)?;
        w.put(&[0; 3])?;
        for s in self.selectors {
            s.write(&mut w)?;
        }
        Ok(w.len())
    }
}
