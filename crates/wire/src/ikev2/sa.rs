//! The Security Association payload (RFC 7296 §3.3): proposals, their
//! transforms and the transforms' attributes.
//!
//! [`SecurityAssociation::parse`] checks the whole nested structure once, so
//! the iterators it hands out afterwards cannot fail. Emitting goes through
//! [`SecurityAssociationSpec`], a borrowed description the caller builds on
//! the stack.

use super::cursor::{Reader, Writer, len_u8, len_u16};
use super::payload::PayloadBody;
use super::transform::attribute_type;
use crate::WireError;

/// "Last Substruc" of a proposal that is followed by another.
pub const MORE_PROPOSALS: u8 = 2;
/// "Last Substruc" of a transform that is followed by another.
pub const MORE_TRANSFORMS: u8 = 3;
/// "Last Substruc" of the last proposal or transform.
pub const LAST_SUBSTRUC: u8 = 0;
const PROPOSAL_HEADER_LEN: usize = 8;
const TRANSFORM_HEADER_LEN: usize = 8;
/// The Attribute Format bit: set for TV (2-byte value in place of the
/// length), clear for TLV.
const ATTRIBUTE_FORMAT_TV: u16 = 0x8000;

/// One substructure (proposal or transform): the marker, and the body
/// after the 4-byte substructure header, and what follows it.
fn substructure(buf: &[u8], min_len: usize, more: u8) -> Result<(&[u8], bool, &[u8]), WireError> {
    let mut r = Reader::new(buf);
    let marker = r.u8()?;
    let _reserved = r.u8()?;
    let length = usize::from(r.u16()?);
    if length < min_len || length > buf.len() {
        return Err(WireError::PayloadLength);
    }
    let has_more = match marker {
        LAST_SUBSTRUC => false,
        m if m == more => true,
        _ => return Err(WireError::BadSubstructure),
    };
    let (this, rest) = buf.split_at(length);
    if has_more == rest.is_empty() {
        return Err(if has_more {
            WireError::BadSubstructure
        } else {
            WireError::TrailingData
        });
    }
    Ok((this.get(4..).unwrap_or_default(), has_more, rest))
}

/// A transform attribute (§3.3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attribute<'a> {
    /// Attribute Type, without the format bit.
    pub attribute_type: u16,
    /// The value.
    pub value: AttributeValue<'a>,
}

/// An attribute's value in one of its two encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttributeValue<'a> {
    /// Type/Value: two bytes in place of the length.
    Tv(u16),
    /// Type/Length/Value.
    Tlv(&'a [u8]),
}

impl<'a> Attribute<'a> {
    /// The Key Length attribute, which is always TV (§3.3.5).
    pub fn key_length(bits: u16) -> Self {
        Self {
            attribute_type: attribute_type::KEY_LENGTH,
            value: AttributeValue::Tv(bits),
        }
    }

    fn parse(r: &mut Reader<'a>) -> Result<Self, WireError> {
        let word = r.u16()?;
        let attribute_type = word & !ATTRIBUTE_FORMAT_TV;
        let field = r.u16()?;
        let value = if word & ATTRIBUTE_FORMAT_TV != 0 {
            AttributeValue::Tv(field)
        } else {
            AttributeValue::Tlv(
                r.take(usize::from(field))
                    .map_err(|_| WireError::PayloadLength)?,
            )
        };
        Ok(Self {
            attribute_type,
            value,
        })
    }

    /// Length on the wire.
    pub fn wire_len(&self) -> usize {
        match self.value {
            AttributeValue::Tv(_) => 4,
            AttributeValue::Tlv(v) => 4 + v.len(),
        }
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        if self.attribute_type & ATTRIBUTE_FORMAT_TV != 0 {
            return Err(WireError::FieldOutOfRange);
        }
        match self.value {
            AttributeValue::Tv(v) => {
                w.u16(self.attribute_type | ATTRIBUTE_FORMAT_TV)?;
                w.u16(v)
            }
            AttributeValue::Tlv(v) => {
                w.u16(self.attribute_type)?;
                w.u16(len_u16(v.len())?)?;
                w.put(v)
            }
        }
    }
}

/// Iterator over the attributes of a checked transform.
#[derive(Debug, Clone)]
pub struct Attributes<'a>(Reader<'a>);

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        Attribute::parse(&mut self.0).ok()
    }
}

/// A transform substructure (§3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transform<'a> {
    /// One of [`super::transform_type`].
    pub transform_type: u8,
    /// Transform ID within its type ([`super::encr`], [`super::prf`], ...).
    pub transform_id: u16,
    /// The attribute bytes, already checked to be well formed.
    pub attributes: &'a [u8],
}

impl<'a> Transform<'a> {
    fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let transform_type = r.u8()?;
        let _reserved = r.u8()?;
        let transform_id = r.u16()?;
        let attributes = r.rest();
        let mut check = Reader::new(attributes);
        while !check.is_empty() {
            Attribute::parse(&mut check)?;
        }
        Ok(Self {
            transform_type,
            transform_id,
            attributes,
        })
    }

    /// The attributes.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes(Reader::new(self.attributes))
    }

    /// The Key Length attribute, if present.
    pub fn key_length(&self) -> Option<u16> {
        self.attributes().find_map(|a| match a {
            Attribute {
                attribute_type: attribute_type::KEY_LENGTH,
                value: AttributeValue::Tv(bits),
            } => Some(bits),
            _ => None,
        })
    }

    /// The transform as a [`TransformSpec`], or `None` if it carries an
    /// attribute other than a single Key Length, which no Palisade
    /// transform needs.
    pub fn to_spec(&self) -> Option<TransformSpec> {
        let mut key_length = None;
        for a in self.attributes() {
            match a.value {
                AttributeValue::Tv(bits)
                    if a.attribute_type == attribute_type::KEY_LENGTH && key_length.is_none() =>
                {
                    key_length = Some(bits);
                }
                _ => return None,
            }
        }
        Some(TransformSpec {
            transform_type: self.transform_type,
            transform_id: self.transform_id,
            key_length,
        })
    }
}

/// Iterator over the transforms of a checked proposal.
#[derive(Debug, Clone)]
pub struct Transforms<'a>(&'a [u8]);

impl<'a> Iterator for Transforms<'a> {
    type Item = Transform<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let (body, _, rest) = substructure(self.0, TRANSFORM_HEADER_LEN, MORE_TRANSFORMS).ok()?;
        self.0 = rest;
        Transform::parse(body).ok()
    }
}

/// A proposal substructure (§3.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Proposal<'a> {
    /// Proposal Num: 1 for the first, one more for each following.
    pub proposal_num: u8,
    /// One of [`super::protocol_id`].
    pub protocol_id: u8,
    /// The sending entity's SPI: empty in an initial IKE_SA_INIT, 8 bytes
    /// for IKE in a rekey, 4 for AH/ESP.
    pub spi: &'a [u8],
    /// Num Transforms, checked against the transforms present.
    pub num_transforms: u8,
    transforms: &'a [u8],
}

impl<'a> Proposal<'a> {
    fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let proposal_num = r.u8()?;
        let protocol_id = r.u8()?;
        let spi_size = r.u8()?;
        let num_transforms = r.u8()?;
        let spi = r
            .take(usize::from(spi_size))
            .map_err(|_| WireError::PayloadLength)?;
        let transforms = r.rest();
        let mut rest = transforms;
        let mut count = 0usize;
        while !rest.is_empty() {
            let (t, _, next) = substructure(rest, TRANSFORM_HEADER_LEN, MORE_TRANSFORMS)?;
            Transform::parse(t)?;
            count += 1;
            rest = next;
        }
        if count != usize::from(num_transforms) {
            return Err(WireError::BadSubstructure);
        }
        Ok(Self {
            proposal_num,
            protocol_id,
            spi,
            num_transforms,
            transforms,
        })
    }

    /// The transforms.
    pub fn transforms(&self) -> Transforms<'a> {
        Transforms(self.transforms)
    }

    /// The SPI as a number when it is 4 bytes (AH/ESP).
    pub fn spi_u32(&self) -> Option<u32> {
        <[u8; 4]>::try_from(self.spi).ok().map(u32::from_be_bytes)
    }

    /// The SPI as a number when it is 8 bytes (IKE SA rekey).
    pub fn spi_u64(&self) -> Option<u64> {
        <[u8; 8]>::try_from(self.spi).ok().map(u64::from_be_bytes)
    }
}

/// Iterator over the proposals of a checked SA payload.
#[derive(Debug, Clone)]
pub struct Proposals<'a>(&'a [u8]);

impl<'a> Iterator for Proposals<'a> {
    type Item = Proposal<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let (body, _, rest) = substructure(self.0, PROPOSAL_HEADER_LEN, MORE_PROPOSALS).ok()?;
        self.0 = rest;
        Proposal::parse(body).ok()
    }
}

/// A checked SA payload body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecurityAssociation<'a> {
    body: &'a [u8],
}

impl<'a> SecurityAssociation<'a> {
    /// Checks the whole body: at least one proposal, every length within
    /// its container, "Last Substruc" markers consistent with what follows,
    /// Num Transforms equal to the transforms present, attributes well
    /// formed. Proposal numbering and the choice of transforms are policy,
    /// left to the keying module.
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        if body.is_empty() {
            return Err(WireError::BadSubstructure);
        }
        let mut rest = body;
        while !rest.is_empty() {
            let (p, _, next) = substructure(rest, PROPOSAL_HEADER_LEN, MORE_PROPOSALS)?;
            Proposal::parse(p)?;
            rest = next;
        }
        Ok(Self { body })
    }

    /// The proposals, in order of preference.
    pub fn proposals(&self) -> Proposals<'a> {
        Proposals(self.body)
    }

    /// The body as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.body
    }
}

impl PayloadBody for SecurityAssociation<'_> {
    fn body_len(&self) -> usize {
        self.body.len()
    }
    fn write_body(&self, out: &mut [u8]) -> Result<usize, WireError> {
        self.body.write_body(out)
    }
}

/// A transform to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransformSpec {
    /// One of [`super::transform_type`].
    pub transform_type: u8,
    /// Transform ID within its type.
    pub transform_id: u16,
    /// Key Length attribute in bits, for variable-key ciphers (AES).
    pub key_length: Option<u16>,
}

impl TransformSpec {
    fn wire_len(&self) -> usize {
        TRANSFORM_HEADER_LEN + if self.key_length.is_some() { 4 } else { 0 }
    }
}

/// A proposal to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProposalSpec<'x> {
    /// Proposal Num.
    pub proposal_num: u8,
    /// One of [`super::protocol_id`].
    pub protocol_id: u8,
    /// The SPI (empty, 4 or 8 bytes).
    pub spi: &'x [u8],
    /// The transforms, written in this order.
    pub transforms: &'x [TransformSpec],
}

impl ProposalSpec<'_> {
    fn wire_len(&self) -> usize {
        PROPOSAL_HEADER_LEN
            + self.spi.len()
            + self
                .transforms
                .iter()
                .map(TransformSpec::wire_len)
                .sum::<usize>()
    }
}

/// An SA payload body to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecurityAssociationSpec<'x> {
    /// The proposals, most preferred first.
    pub proposals: &'x [ProposalSpec<'x>],
}

impl PayloadBody for SecurityAssociationSpec<'_> {
    fn body_len(&self) -> usize {
        self.proposals.iter().map(ProposalSpec::wire_len).sum()
    }

    fn write_body(&self, out: &mut [u8]) -> Result<usize, WireError> {
        if self.proposals.is_empty() {
            return Err(WireError::BadSubstructure);
        }
        let mut w = Writer::new(out);
        let last_p = self.proposals.len() - 1;
        for (i, p) in self.proposals.iter().enumerate() {
            w.u8(if i == last_p {
                LAST_SUBSTRUC
            } else {
                MORE_PROPOSALS
            })?;
            w.u8(0)?;
            w.u16(len_u16(p.wire_len())?)?;
            w.u8(p.proposal_num)?;
            w.u8(p.protocol_id)?;
            w.u8(len_u8(p.spi.len())?)?;
            w.u8(len_u8(p.transforms.len())?)?;
            w.put(p.spi)?;
            let last_t = p.transforms.len().saturating_sub(1);
            for (j, t) in p.transforms.iter().enumerate() {
                w.u8(if j == last_t {
                    LAST_SUBSTRUC
                } else {
                    MORE_TRANSFORMS
                })?;
                w.u8(0)?;
                w.u16(len_u16(t.wire_len())?)?;
                w.u8(t.transform_type)?;
                w.u8(0)?;
                w.u16(t.transform_id)?;
                if let Some(bits) = t.key_length {
                    Attribute::key_length(bits).write(&mut w)?;
                }
            }
        }
        Ok(w.len())
    }
}
