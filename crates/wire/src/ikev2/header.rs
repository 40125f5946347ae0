//! The IKE header (RFC 7296 §3.1).

use super::cursor::{Reader, Writer};
use super::payload::Payloads;
use crate::WireError;

/// Length of the IKE header.
pub const IKE_HEADER_LEN: usize = 28;
/// The only major version this code speaks.
pub const IKE_MAJOR_VERSION: u8 = 2;

/// Exchange Type values (RFC 7296 §3.1 and the IANA registry).
pub mod exchange_type {
    /// Creates the IKE SA: SA, KE, Nonce (RFC 7296 §1.2).
    pub const IKE_SA_INIT: u8 = 34;
    /// Authenticates the peers and creates the first Child SA.
    pub const IKE_AUTH: u8 = 35;
    /// Creates or rekeys a Child SA, or rekeys the IKE SA.
    pub const CREATE_CHILD_SA: u8 = 36;
    /// Deletes, error notifications, liveness checks.
    pub const INFORMATIONAL: u8 = 37;
    /// RFC 9242: between IKE_SA_INIT and IKE_AUTH, used by RFC 9370 for
    /// additional key exchanges.
    pub const IKE_INTERMEDIATE: u8 = 43;
}

/// Flag bits of the IKE header (RFC 7296 §3.1).
pub mod flags {
    /// Set by the original initiator of the IKE SA.
    pub const INITIATOR: u8 = 0x08;
    /// The sender could speak a higher major version (never set by IKEv2
    /// implementations of RFC 7296).
    pub const VERSION: u8 = 0x10;
    /// The message is a response to the message with the same Message ID.
    pub const RESPONSE: u8 = 0x20;
}

/// A parsed IKE header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IkeHeader {
    /// IKE SA Initiator's SPI.
    pub initiator_spi: u64,
    /// IKE SA Responder's SPI; zero in the first IKE_SA_INIT request.
    pub responder_spi: u64,
    /// Type of the first payload, 0 if there is none.
    pub next_payload: u8,
    /// Major version; 2 for every header [`IkeHeader::parse`] returns.
    pub major_version: u8,
    /// Minor version; 0 in RFC 7296 and ignored on receipt.
    pub minor_version: u8,
    /// One of [`exchange_type`].
    pub exchange_type: u8,
    /// Bits of [`flags`]; others are sent as zero and ignored on receipt.
    pub flags: u8,
    /// Message ID, for retransmission and replay handling.
    pub message_id: u32,
    /// Length of the whole message, header included.
    pub length: u32,
}

impl IkeHeader {
    /// Parses the header of `datagram`, a whole IKE message (after the
    /// non-ESP marker on port 4500), checking the major version and that
    /// Length equals the datagram's length.
    ///
    /// The major version is checked first: a message of another version
    /// may be laid out differently, and its version is what the answer
    /// (INVALID_MAJOR_VERSION) needs.
    pub fn parse(datagram: &[u8]) -> Result<Self, WireError> {
        let header = Self::parse_unchecked(datagram)?;
        if header.major_version != IKE_MAJOR_VERSION {
            return Err(WireError::IkeMajorVersion(header.major_version));
        }
        let length = usize::try_from(header.length).map_err(|_| WireError::IkeLength)?;
        if length < IKE_HEADER_LEN || length != datagram.len() {
            return Err(WireError::IkeLength);
        }
        Ok(header)
    }

    /// Reads the 28 header bytes without any check on their values.
    pub fn parse_unchecked(buf: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(buf);
        let initiator_spi = r.u64()?;
        let responder_spi = r.u64()?;
        let next_payload = r.u8()?;
        let version = r.u8()?;
        Ok(Self {
            initiator_spi,
            responder_spi,
            next_payload,
            major_version: version >> 4,
            minor_version: version & 0x0F,
            exchange_type: r.u8()?,
            flags: r.u8()?,
            message_id: r.u32()?,
            length: r.u32()?,
        })
    }

    /// Writes the header to the start of `buf`.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        if self.major_version > 0x0F || self.minor_version > 0x0F {
            return Err(WireError::FieldOutOfRange);
        }
        let mut w = Writer::new(buf);
        w.u64(self.initiator_spi)?;
        w.u64(self.responder_spi)?;
        w.u8(self.next_payload)?;
        w.u8(self.major_version << 4 | self.minor_version)?;
        w.u8(self.exchange_type)?;
        w.u8(self.flags)?;
        w.u32(self.message_id)?;
        w.u32(self.length)?;
        Ok(w.len())
    }

    /// Whether the Initiator flag is set.
    pub fn is_initiator(&self) -> bool {
        self.flags & flags::INITIATOR != 0
    }

    /// Whether the Response flag is set.
    pub fn is_response(&self) -> bool {
        self.flags & flags::RESPONSE != 0
    }

    /// The payload chain of `datagram`, the message this header was parsed
    /// from.
    pub fn payloads<'a>(&self, datagram: &'a [u8]) -> Payloads<'a> {
        Payloads::new(
            self.next_payload,
            datagram.get(IKE_HEADER_LEN..).unwrap_or_default(),
        )
    }
}
