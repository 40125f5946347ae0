//! Writing an IKE message: the header, then a chain of payloads whose Next
//! Payload fields and lengths are filled in as they are appended.
//!
//! The same builder writes the plaintext of an SK payload (a chain with no
//! header), whose first payload type goes into the SK payload's own Next
//! Payload field.

use core::ops::Range;

use super::cursor::Writer;
use super::header::{IKE_HEADER_LEN, IkeHeader};
use super::payload::{GenericPayloadHeader, PAYLOAD_HEADER_LEN, PayloadBody, payload_type};
use crate::WireError;

/// Offset of Next Payload in the IKE header.
const HEADER_NEXT_PAYLOAD: usize = 16;
/// Offset of Length in the IKE header.
const HEADER_LENGTH: usize = 24;

/// Appends payloads to a caller's buffer.
#[derive(Debug)]
pub struct MessageBuilder<'b> {
    buf: &'b mut [u8],
    has_header: bool,
    len: usize,
    first: u8,
    /// Where the Next Payload byte to patch for the next payload is.
    last_next_at: Option<usize>,
    sealed: bool,
}

impl<'b> MessageBuilder<'b> {
    /// Starts a message with `header`; its Next Payload and Length fields
    /// are overwritten by [`MessageBuilder::finish`].
    pub fn new(buf: &'b mut [u8], header: &IkeHeader) -> Result<Self, WireError> {
        header.write(buf)?;
        Ok(Self {
            buf,
            has_header: true,
            len: IKE_HEADER_LEN,
            first: payload_type::NO_NEXT_PAYLOAD,
            last_next_at: Some(HEADER_NEXT_PAYLOAD),
            sealed: false,
        })
    }

    /// Starts a bare payload chain, such as the plaintext of an SK payload.
    pub fn chain(buf: &'b mut [u8]) -> Self {
        Self {
            buf,
            has_header: false,
            len: 0,
            first: payload_type::NO_NEXT_PAYLOAD,
            last_next_at: None,
            sealed: false,
        }
    }

    /// Appends a payload of type `kind`.
    pub fn push<B: PayloadBody + ?Sized>(
        &mut self,
        kind: u8,
        critical: bool,
        body: &B,
    ) -> Result<(), WireError> {
        let body_len = body.body_len();
        let at = self.append_header(kind, kind, critical, body_len)?;
        let out = self.buf.get_mut(at..).ok_or(WireError::BufferTooSmall)?;
        let written = body.write_body(out)?;
        if written != body_len {
            return Err(WireError::BadSubstructure);
        }
        self.commit(kind, at + body_len);
        Ok(())
    }

    /// Appends an Encrypted payload (SK, or SKF when `kind` says so) whose
    /// Next Payload is `first_inner`, reserving `body_len` bytes for IV,
    /// ciphertext and ICV. Returns the body's range in the buffer for the
    /// crypto layer to fill; no payload may follow.
    pub fn push_encrypted(
        &mut self,
        kind: u8,
        first_inner: u8,
        body_len: usize,
    ) -> Result<Range<usize>, WireError> {
        if !payload_type::is_encrypted(kind) {
            return Err(WireError::BadSubstructure);
        }
        let at = self.append_header(kind, first_inner, false, body_len)?;
        let end = at.checked_add(body_len).ok_or(WireError::BufferTooSmall)?;
        if end > self.buf.len() {
            return Err(WireError::BufferTooSmall);
        }
        self.commit(kind, end);
        self.sealed = true;
        Ok(at..end)
    }

    /// Writes a generic header for `kind` at the end and returns where the
    /// body starts; nothing is committed until the body is written.
    fn append_header(
        &mut self,
        kind: u8,
        next: u8,
        critical: bool,
        body_len: usize,
    ) -> Result<usize, WireError> {
        if self.sealed {
            return Err(WireError::PayloadAfterEncrypted);
        }
        if kind == payload_type::NO_NEXT_PAYLOAD {
            return Err(WireError::BadSubstructure);
        }
        // The SK payload's Next Payload is its first inner payload; every
        // other header starts as "last" and is patched by its successor.
        let next = if payload_type::is_encrypted(kind) {
            next
        } else {
            payload_type::NO_NEXT_PAYLOAD
        };
        let header = GenericPayloadHeader::for_body(next, critical, body_len)?;
        let out = self
            .buf
            .get_mut(self.len..)
            .ok_or(WireError::BufferTooSmall)?;
        header.write(out)?;
        Ok(self.len + PAYLOAD_HEADER_LEN)
    }

    fn commit(&mut self, kind: u8, end: usize) {
        match self.last_next_at.and_then(|at| self.buf.get_mut(at)) {
            Some(byte) => *byte = kind,
            None => self.first = kind,
        }
        if self.first == payload_type::NO_NEXT_PAYLOAD {
            self.first = kind;
        }
        self.last_next_at = Some(self.len);
        self.len = end;
    }

    /// Type of the first payload appended, 0 if none.
    pub fn first_payload(&self) -> u8 {
        self.first
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written (a bare chain with no payload).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fills in the header's Length and returns the message length.
    pub fn finish(self) -> Result<usize, WireError> {
        if self.has_header {
            let length = u32::try_from(self.len).map_err(|_| WireError::FieldOutOfRange)?;
            let field = self
                .buf
                .get_mut(HEADER_LENGTH..HEADER_LENGTH + 4)
                .ok_or(WireError::BufferTooSmall)?;
            Writer::new(field).u32(length)?;
        }
        Ok(self.len)
    }
}
