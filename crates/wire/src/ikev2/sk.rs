//! The Encrypted and Authenticated payload SK (RFC 7296 §3.14) and the
//! Encrypted and Authenticated Fragment payload SKF (RFC 7383 §2.5).
//!
//! Only the framing is here. IV and ICV lengths depend on the negotiated
//! transform, so the crypto side passes them in; decryption, the integrity
//! check and the padding it reveals are its business, with
//! [`strip_padding`] and [`padding_len`] for the last step.

use core::ops::Range;

use super::cursor::{Reader, Writer};
use crate::WireError;

/// Length of Fragment Number and Total Fragments, before the IV of SKF.
pub const FRAGMENT_PREFIX_LEN: usize = 4;

/// Where IV, ciphertext and ICV lie within an SK body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EncryptedRanges {
    /// Initialization Vector.
    pub iv: Range<usize>,
    /// Ciphertext.
    pub ciphertext: Range<usize>,
    /// Integrity Checksum Data.
    pub icv: Range<usize>,
}

/// An SK body split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Encrypted<'a> {
    /// Initialization Vector.
    pub iv: &'a [u8],
    /// Encrypted inner payloads, padding and Pad Length.
    pub ciphertext: &'a [u8],
    /// Integrity Checksum Data (the AEAD tag for AEAD transforms).
    pub icv: &'a [u8],
}

impl<'a> Encrypted<'a> {
    /// Splits an SK body given the transform's IV and ICV lengths. The
    /// ciphertext must not be empty: it holds at least the Pad Length.
    pub fn split(body: &'a [u8], iv_len: usize, icv_len: usize) -> Result<Self, WireError> {
        let r = Self::ranges(body.len(), iv_len, icv_len)?;
        Ok(Self {
            iv: body.get(r.iv).unwrap_or_default(),
            ciphertext: body.get(r.ciphertext).unwrap_or_default(),
            icv: body.get(r.icv).unwrap_or_default(),
        })
    }

    /// The IV, ciphertext and ICV ranges within a body of `body_len`
    /// bytes, for decrypting in place.
    pub fn ranges(
        body_len: usize,
        iv_len: usize,
        icv_len: usize,
    ) -> Result<EncryptedRanges, WireError> {
        let overhead = iv_len
            .checked_add(icv_len)
            .ok_or(WireError::PayloadLength)?;
        let ct_len = body_len
            .checked_sub(overhead)
            .filter(|&n| n > 0)
            .ok_or(WireError::PayloadLength)?;
        let ct_end = iv_len + ct_len;
        Ok(EncryptedRanges {
            iv: 0..iv_len,
            ciphertext: iv_len..ct_end,
            icv: ct_end..body_len,
        })
    }

    /// Body length for a ciphertext of `ciphertext_len` bytes (the padded
    /// plaintext's length for the transforms Palisade uses) with the given
    /// IV and ICV, saturating rather than overflowing.
    pub fn body_len(iv_len: usize, ciphertext_len: usize, icv_len: usize) -> usize {
        iv_len
            .saturating_add(ciphertext_len)
            .saturating_add(icv_len)
    }
}

/// An SKF body: the fragment numbering and the encrypted fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncryptedFragment<'a> {
    /// Fragment Number, from 1.
    pub fragment_number: u16,
    /// Total Fragments, at least `fragment_number`.
    pub total_fragments: u16,
    /// The encrypted fragment.
    pub encrypted: Encrypted<'a>,
}

impl<'a> EncryptedFragment<'a> {
    /// Parses an SKF body given the transform's IV and ICV lengths.
    pub fn parse(body: &'a [u8], iv_len: usize, icv_len: usize) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let fragment_number = r.u16()?;
        let total_fragments = r.u16()?;
        check_numbering(fragment_number, total_fragments)?;
        Ok(Self {
            fragment_number,
            total_fragments,
            encrypted: Encrypted::split(r.rest(), iv_len, icv_len)?,
        })
    }

    /// Writes Fragment Number and Total Fragments to the start of an SKF
    /// body reserved by [`super::MessageBuilder::push_encrypted`]; the
    /// rest of the body is IV, ciphertext and ICV. The associated data of
    /// an AEAD runs up to and including these four bytes.
    pub fn write_prefix(
        body: &mut [u8],
        fragment_number: u16,
        total_fragments: u16,
    ) -> Result<usize, WireError> {
        check_numbering(fragment_number, total_fragments)?;
        let mut w = Writer::new(body);
        w.u16(fragment_number)?;
        w.u16(total_fragments)?;
        Ok(w.len())
    }
}

fn check_numbering(number: u16, total: u16) -> Result<(), WireError> {
    if number == 0 || number > total {
        return Err(WireError::BadSubstructure);
    }
    Ok(())
}

/// The inner payloads of a decrypted SK plaintext: everything before the
/// padding announced by the last byte (Pad Length). Padding contents are
/// not checked, as RFC 7296 §3.14 lets them be anything.
pub fn strip_padding(plaintext: &[u8]) -> Result<&[u8], WireError> {
    let (&pad_len, rest) = plaintext
        .split_last()
        .ok_or(WireError::Truncated { need: 1, have: 0 })?;
    let end = rest
        .len()
        .checked_sub(usize::from(pad_len))
        .ok_or(WireError::BadPadLength)?;
    rest.get(..end).ok_or(WireError::BadPadLength)
}

/// Padding needed after `inner_len` bytes of payloads so that payloads,
/// padding and the Pad Length byte fill whole `block_size` blocks (1 for
/// AEADs and stream ciphers).
pub fn padding_len(inner_len: usize, block_size: usize) -> usize {
    let block = block_size.max(1);
    (block - (inner_len % block + 1) % block) % block
}

/// Writes `pad_len` zero bytes of padding and the Pad Length byte at the
/// start of `out` (right after the inner payloads); returns bytes written.
pub fn write_padding(out: &mut [u8], pad_len: u8) -> Result<usize, WireError> {
    let mut w = Writer::new(out);
    for _ in 0..pad_len {
        w.u8(0)?;
    }
    w.u8(pad_len)?;
    Ok(w.len())
}
