//! Sequential big-endian reading and writing over byte slices.
//!
//! IKEv2 payloads are runs of fixed fields followed by variable data, so a
//! cursor that turns every short read into [`WireError::Truncated`] and every
//! short write into [`WireError::BufferTooSmall`] keeps each payload parser
//! a straight list of fields with no index arithmetic of its own.

use crate::WireError;

/// Reads fields from the front of a slice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated {
            need: usize::MAX,
            have: self.buf.len(),
        })?;
        let out = self.buf.get(self.pos..end).ok_or(WireError::Truncated {
            need: end,
            have: self.buf.len(),
        })?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        self.array::<1>().map(|[b]| b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, WireError> {
        self.array().map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        self.array().map(u32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, WireError> {
        self.array().map(u64::from_be_bytes)
    }

    /// Everything not yet read; the reader is left empty.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        out
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

/// Writes fields to the front of a slice.
#[derive(Debug)]
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> Writer<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        let end = self
            .pos
            .checked_add(bytes.len())
            .ok_or(WireError::BufferTooSmall)?;
        self.buf
            .get_mut(self.pos..end)
            .ok_or(WireError::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    pub(crate) fn u8(&mut self, v: u8) -> Result<(), WireError> {
        self.put(&[v])
    }

    pub(crate) fn u16(&mut self, v: u16) -> Result<(), WireError> {
        self.put(&v.to_be_bytes())
    }

    pub(crate) fn u32(&mut self, v: u32) -> Result<(), WireError> {
        self.put(&v.to_be_bytes())
    }

    pub(crate) fn u64(&mut self, v: u64) -> Result<(), WireError> {
        self.put(&v.to_be_bytes())
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> usize {
        self.pos
    }
}

/// A length as the `u16` of a length field, or `FieldOutOfRange` when it
/// cannot be represented.
pub(crate) fn len_u16(len: usize) -> Result<u16, WireError> {
    u16::try_from(len).map_err(|_| WireError::FieldOutOfRange)
}

/// A length as the `u8` of a size or count field.
pub(crate) fn len_u8(len: usize) -> Result<u8, WireError> {
    u8::try_from(len).map_err(|_| WireError::FieldOutOfRange)
}
