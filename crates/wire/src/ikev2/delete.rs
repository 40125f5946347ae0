//! The Delete payload (RFC 7296 §3.11).

use super::cursor::{Reader, Writer, len_u8, len_u16};
use super::payload::PayloadBody;
use super::transform::protocol_id;
use crate::WireError;

/// A Delete payload body: SAs of one protocol to delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delete<'a> {
    /// [`protocol_id::IKE`] (no SPIs: the IKE SA carrying the message),
    /// or AH/ESP with the SPIs the sender receives on.
    pub protocol_id: u8,
    /// SPI Size: 0 for IKE, 4 for AH and ESP.
    pub spi_size: u8,
    /// The SPIs, `spi_size` bytes each, back to back.
    pub spis: &'a [u8],
}

impl<'a> Delete<'a> {
    /// A Delete of `spis` (concatenated 4-byte SPIs) for AH or ESP, or of
    /// the IKE SA when `spis` is empty and the protocol is IKE.
    pub fn new(protocol_id: u8, spis: &'a [u8]) -> Self {
        let spi_size = if protocol_id == protocol_id::IKE {
            0
        } else {
            4
        };
        Self {
            protocol_id,
            spi_size,
            spis,
        }
    }

    /// Parses a Delete body, checking that # of SPIs times SPI Size fills it.
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let protocol_id = r.u8()?;
        let spi_size = r.u8()?;
        let count = r.u16()?;
        let spis = r.rest();
        let expected = usize::from(spi_size) * usize::from(count);
        if spis.len() != expected {
            return Err(if spis.len() < expected {
                WireError::PayloadLength
            } else {
                WireError::TrailingData
            });
        }
        if spi_size == 0 && count != 0 {
            return Err(WireError::BadSubstructure);
        }
        Ok(Self {
            protocol_id,
            spi_size,
            spis,
        })
    }

    /// Num of SPIs.
    pub fn num_spis(&self) -> usize {
        match self.spi_size {
            0 => 0,
            n => self.spis.len() / usize::from(n),
        }
    }

    /// The SPIs one by one.
    pub fn spis(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let size = usize::from(self.spi_size).max(1);
        let spis = if self.spi_size == 0 {
            &[][..]
        } else {
            self.spis
        };
        spis.chunks_exact(size)
    }

    /// The 4-byte SPIs of an AH or ESP Delete as numbers.
    pub fn spis_u32(&self) -> impl Iterator<Item = u32> + 'a {
        self.spis()
            .filter_map(|s| <[u8; 4]>::try_from(s).ok().map(u32::from_be_bytes))
    }
}

impl PayloadBody for Delete<'_> {
    fn body_len(&self) -> usize {
        4 + self.spis.len()
    }
    fn write_body(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let count = if self.spi_size == 0 {
            if !self.spis.is_empty() {
                return Err(WireError::BadSubstructure);
            }
            0
        } else {
            if !self.spis.len().is_multiple_of(usize::from(self.spi_size)) {
                return Err(WireError::BadSubstructure);
            }
            self.spis.len() / usize::from(self.spi_size)
        };
        let mut w = Writer::new(out);
        w.u8(self.protocol_id)?;
        w.u8(len_u8(usize::from(self.spi_size))?)?;
        w.u16(len_u16(count)?)?;
        w.put(self.spis)?;
        Ok(w.len())
    }
}
