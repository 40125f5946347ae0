//! The Notify payload (RFC 7296 §3.10) and its message types (§3.10.1).

use super::cursor::{Reader, Writer, len_u8};
use super::payload::PayloadBody;
use crate::WireError;

/// Notify Message Type values: errors below 16384, status types above.
pub mod notify_type {
    /// A critical payload was not understood.
    pub const UNSUPPORTED_CRITICAL_PAYLOAD: u16 = 1;
    /// A message arrived for an unknown IKE SA.
    pub const INVALID_IKE_SPI: u16 = 4;
    /// The major version is not supported.
    pub const INVALID_MAJOR_VERSION: u16 = 5;
    /// A message was malformed.
    pub const INVALID_SYNTAX: u16 = 7;
    /// A message ID was outside the window.
    pub const INVALID_MESSAGE_ID: u16 = 9;
    /// A packet arrived for an unknown Child SA.
    pub const INVALID_SPI: u16 = 11;
    /// None of the proposals was acceptable.
    pub const NO_PROPOSAL_CHOSEN: u16 = 14;
    /// The KE group is not the selected one; data is the accepted group.
    pub const INVALID_KE_PAYLOAD: u16 = 17;
    /// Authentication failed.
    pub const AUTHENTICATION_FAILED: u16 = 24;
    /// Only a single pair of traffic selectors is acceptable.
    pub const SINGLE_PAIR_REQUIRED: u16 = 34;
    /// No more Child SAs are accepted on this IKE SA.
    pub const NO_ADDITIONAL_SAS: u16 = 35;
    /// No internal address could be assigned.
    pub const INTERNAL_ADDRESS_FAILURE: u16 = 36;
    /// A CP payload was required but not sent.
    pub const FAILED_CP_REQUIRED: u16 = 37;
    /// The traffic selectors are not acceptable.
    pub const TS_UNACCEPTABLE: u16 = 38;
    /// A packet's selectors do not match its SA.
    pub const INVALID_SELECTORS: u16 = 39;
    /// A transient condition (e.g. a rekey collision); retry later.
    pub const TEMPORARY_FAILURE: u16 = 43;
    /// The Child SA to rekey does not exist.
    pub const CHILD_SA_NOT_FOUND: u16 = 44;

    /// The sender has no other SA with the peer: drop stale state.
    pub const INITIAL_CONTACT: u16 = 16384;
    /// Flow-control window size.
    pub const SET_WINDOW_SIZE: u16 = 16385;
    /// Only a subset of the traffic selectors was accepted.
    pub const ADDITIONAL_TS_POSSIBLE: u16 = 16386;
    /// IP compression is supported.
    pub const IPCOMP_SUPPORTED: u16 = 16387;
    /// Hash of the sender's SPIs, address and port (NAT detection).
    pub const NAT_DETECTION_SOURCE_IP: u16 = 16388;
    /// Hash of the SPIs and the destination's address and port.
    pub const NAT_DETECTION_DESTINATION_IP: u16 = 16389;
    /// A stateless cookie to echo (§2.6).
    pub const COOKIE: u16 = 16390;
    /// Transport mode is requested for the Child SA.
    pub const USE_TRANSPORT_MODE: u16 = 16391;
    /// Certificates may be fetched by URL.
    pub const HTTP_CERT_LOOKUP_SUPPORTED: u16 = 16392;
    /// This CREATE_CHILD_SA rekeys the SA whose SPI is given.
    pub const REKEY_SA: u16 = 16393;
    /// The sender does not accept TFC padding.
    pub const ESP_TFC_PADDING_NOT_SUPPORTED: u16 = 16394;
    /// Non-first fragments are also sent on this SA.
    pub const NON_FIRST_FRAGMENTS_ALSO: u16 = 16395;
    /// RFC 7383: the sender can receive IKE fragments.
    pub const IKEV2_FRAGMENTATION_SUPPORTED: u16 = 16430;
    /// RFC 7427: the hash algorithms the sender accepts for signatures,
    /// a list of 2-byte identifiers.
    pub const SIGNATURE_HASH_ALGORITHMS: u16 = 16431;
    /// RFC 9242: the sender supports the IKE_INTERMEDIATE exchange.
    pub const INTERMEDIATE_EXCHANGE_SUPPORTED: u16 = 16438;

    /// Whether `t` is an error type (which makes a response fail).
    pub fn is_error(t: u16) -> bool {
        t < 16384
    }
}

/// A Notify payload body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Notify<'a> {
    /// Protocol ID of the SA concerned ([`super::protocol_id`]), or 0 when
    /// the notification is not about an SA.
    pub protocol_id: u8,
    /// The SPI of that SA; empty for the IKE SA and most status types.
    pub spi: &'a [u8],
    /// One of [`notify_type`].
    pub notify_type: u16,
    /// Notification Data.
    pub data: &'a [u8],
}

impl<'a> Notify<'a> {
    /// A notification about no SA in particular.
    pub fn new(notify_type: u16, data: &'a [u8]) -> Self {
        Self {
            protocol_id: 0,
            spi: &[],
            notify_type,
            data,
        }
    }

    /// Parses a Notify body.
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let protocol_id = r.u8()?;
        let spi_size = r.u8()?;
        let notify_type = r.u16()?;
        let spi = r
            .take(usize::from(spi_size))
            .map_err(|_| WireError::PayloadLength)?;
        Ok(Self {
            protocol_id,
            spi,
            notify_type,
            data: r.rest(),
        })
    }

    /// The SPI as a number when it is 4 bytes (e.g. REKEY_SA for ESP).
    pub fn spi_u32(&self) -> Option<u32> {
        <[u8; 4]>::try_from(self.spi).ok().map(u32::from_be_bytes)
    }

    /// The group an INVALID_KE_PAYLOAD asks for.
    pub fn invalid_ke_group(&self) -> Option<u16> {
        (self.notify_type == notify_type::INVALID_KE_PAYLOAD)
            .then(|| <[u8; 2]>::try_from(self.data).ok().map(u16::from_be_bytes))
            .flatten()
    }

    /// The 2-byte hash algorithm identifiers of SIGNATURE_HASH_ALGORITHMS
    /// (RFC 7427 §4); a trailing odd byte is ignored.
    pub fn hash_algorithms(&self) -> impl Iterator<Item = u16> + 'a {
        let data = if self.notify_type == notify_type::SIGNATURE_HASH_ALGORITHMS {
            self.data
        } else {
            &[]
        };
        data.chunks_exact(2)
            .filter_map(|c| <[u8; 2]>::try_from(c).ok().map(u16::from_be_bytes))
    }
}

impl PayloadBody for Notify<'_> {
    fn body_len(&self) -> usize {
        4 + self.spi.len() + self.data.len()
    }
    fn write_body(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let mut w = Writer::new(out);
        w.u8(self.protocol_id)?;
        w.u8(len_u8(self.spi.len())?)?;
        w.u16(self.notify_type)?;
        w.put(self.spi)?;
        w.put(self.data)?;
        Ok(w.len())
    }
}
