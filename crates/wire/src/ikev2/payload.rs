//! The generic payload header (RFC 7296 §3.2) and the payload chain.
//!
//! Every IKE payload starts with Next Payload, a critical bit and a
//! Payload Length that covers the header itself, so a chain can be walked
//! without understanding any payload body.

use super::cursor::{Reader, Writer, len_u16};
use crate::WireError;

/// Length of the generic payload header.
pub const PAYLOAD_HEADER_LEN: usize = 4;
/// The critical bit in the second octet of the generic payload header.
pub const CRITICAL_FLAG: u8 = 0x80;

/// Payload type values (RFC 7296 §3.2, RFC 7383 §2.5).
pub mod payload_type {
    /// No Next Payload: the last payload of a chain.
    pub const NO_NEXT_PAYLOAD: u8 = 0;
    /// Security Association (§3.3).
    pub const SA: u8 = 33;
    /// Key Exchange (§3.4).
    pub const KE: u8 = 34;
    /// Identification - Initiator (§3.5).
    pub const IDI: u8 = 35;
    /// Identification - Responder (§3.5).
    pub const IDR: u8 = 36;
    /// Certificate (§3.6).
    pub const CERT: u8 = 37;
    /// Certificate Request (§3.7).
    pub const CERTREQ: u8 = 38;
    /// Authentication (§3.8).
    pub const AUTH: u8 = 39;
    /// Nonce (§3.9).
    pub const NONCE: u8 = 40;
    /// Notify (§3.10).
    pub const N: u8 = 41;
    /// Delete (§3.11).
    pub const D: u8 = 42;
    /// Vendor ID (§3.12).
    pub const V: u8 = 43;
    /// Traffic Selector - Initiator (§3.13).
    pub const TSI: u8 = 44;
    /// Traffic Selector - Responder (§3.13).
    pub const TSR: u8 = 45;
    /// Encrypted and Authenticated (§3.14).
    pub const SK: u8 = 46;
    /// Configuration (§3.15).
    pub const CP: u8 = 47;
    /// Extensible Authentication (§3.16).
    pub const EAP: u8 = 48;
    /// Encrypted and Authenticated Fragment (RFC 7383 §2.5).
    pub const SKF: u8 = 53;

    /// Whether this code knows the layout of payload type `t`; an unknown
    /// type with the critical bit set makes the whole message unusable.
    pub fn is_understood(t: u8) -> bool {
        matches!(t, SA..=EAP | SKF)
    }

    /// Whether `t` is an Encrypted payload, whose Next Payload field names
    /// the first payload inside it and which must end its message.
    pub fn is_encrypted(t: u8) -> bool {
        t == SK || t == SKF
    }
}

/// What a payload body must be able to do to be written by
/// [`super::MessageBuilder`]: say how long it is and write itself.
pub trait PayloadBody {
    /// Length of the body, generic header excluded.
    fn body_len(&self) -> usize;
    /// Writes the body to the start of `out` and returns its length, which
    /// equals [`PayloadBody::body_len`].
    fn write_body(&self, out: &mut [u8]) -> Result<usize, WireError>;
}

/// Raw bytes are a body too: for payloads this crate has no view of (EAP)
/// and for copying a received body unchanged.
impl PayloadBody for [u8] {
    fn body_len(&self) -> usize {
        self.len()
    }
    fn write_body(&self, out: &mut [u8]) -> Result<usize, WireError> {
        Writer::new(out).put(self)?;
        Ok(self.len())
    }
}

/// The generic payload header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GenericPayloadHeader {
    /// Type of the following payload, or for SK/SKF of the first inner one.
    pub next_payload: u8,
    /// The critical bit: reject the message if this payload is not understood.
    pub critical: bool,
    /// Length of the payload, this header included.
    pub payload_length: u16,
}

impl GenericPayloadHeader {
    /// Reads the header at the start of `buf`. The seven reserved bits are
    /// ignored, as RFC 7296 §3.2 requires of a receiver.
    pub fn parse(buf: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(buf);
        let next_payload = r.u8()?;
        let flags = r.u8()?;
        Ok(Self {
            next_payload,
            critical: flags & CRITICAL_FLAG != 0,
            payload_length: r.u16()?,
        })
    }

    /// Writes the header to the start of `buf`.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let mut w = Writer::new(buf);
        w.u8(self.next_payload)?;
        w.u8(if self.critical { CRITICAL_FLAG } else { 0 })?;
        w.u16(self.payload_length)?;
        Ok(w.len())
    }

    /// A header for a body of `body_len` bytes.
    pub fn for_body(next_payload: u8, critical: bool, body_len: usize) -> Result<Self, WireError> {
        let total = body_len
            .checked_add(PAYLOAD_HEADER_LEN)
            .ok_or(WireError::FieldOutOfRange)?;
        Ok(Self {
            next_payload,
            critical,
            payload_length: len_u16(total)?,
        })
    }
}

/// One payload of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Payload<'a> {
    /// This payload's type (from the previous Next Payload field).
    pub payload_type: u8,
    /// The critical bit.
    pub critical: bool,
    /// This payload's own Next Payload field: for SK and SKF, the type of
    /// the first payload inside the encrypted data.
    pub next_payload: u8,
    /// The body, after the generic header.
    pub body: &'a [u8],
}

/// Iterator over a payload chain, yielding each payload or the first error.
///
/// It stops after an error, after the last payload (Next Payload 0) and
/// after an SK or SKF payload (whose Next Payload points inside it). Bytes
/// left over at that point are [`WireError::TrailingData`]; a payload of a
/// type not [`payload_type::is_understood`] with the critical bit set is
/// [`WireError::UnsupportedCriticalPayload`], while one without it is
/// yielded for the caller to skip.
#[derive(Debug, Clone)]
pub struct Payloads<'a> {
    next: u8,
    rest: &'a [u8],
    done: bool,
}

impl<'a> Payloads<'a> {
    /// A chain whose first payload has type `first` and which fills `buf`:
    /// the bytes after the IKE header, or a decrypted SK plaintext with
    /// `first` taken from the SK payload's Next Payload field.
    pub fn new(first: u8, buf: &'a [u8]) -> Self {
        Self {
            next: first,
            rest: buf,
            done: false,
        }
    }

    fn step(&mut self) -> Result<Option<Payload<'a>>, WireError> {
        if self.next == payload_type::NO_NEXT_PAYLOAD {
            self.done = true;
            return if self.rest.is_empty() {
                Ok(None)
            } else {
                Err(WireError::TrailingData)
            };
        }
        let header = GenericPayloadHeader::parse(self.rest)?;
        let length = usize::from(header.payload_length);
        if length < PAYLOAD_HEADER_LEN || length > self.rest.len() {
            return Err(WireError::PayloadLength);
        }
        let payload_type = self.next;
        if header.critical && !payload_type::is_understood(payload_type) {
            return Err(WireError::UnsupportedCriticalPayload(payload_type));
        }
        let (this, rest) = self.rest.split_at(length);
        self.rest = rest;
        self.next = if payload_type::is_encrypted(payload_type) {
            payload_type::NO_NEXT_PAYLOAD
        } else {
            header.next_payload
        };
        Ok(Some(Payload {
            payload_type,
            critical: header.critical,
            next_payload: header.next_payload,
            body: this.get(PAYLOAD_HEADER_LEN..).unwrap_or_default(),
        }))
    }
}

impl<'a> Iterator for Payloads<'a> {
    type Item = Result<Payload<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.step();
        if item.is_err() {
            self.done = true;
        }
        item.transpose()
    }
}

/// Checks a whole chain, for callers that want "valid or not" before
/// looking at any payload.
pub fn validate_chain(first: u8, buf: &[u8]) -> Result<usize, WireError> {
    let mut count = 0usize;
    for p in Payloads::new(first, buf) {
        p?;
        count += 1;
    }
    Ok(count)
}
