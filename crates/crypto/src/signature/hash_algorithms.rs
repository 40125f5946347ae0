//! The SIGNATURE_HASH_ALGORITHMS notification (RFC 7427 §4): each side
//! lists, in IKE_SA_INIT, the hashes it can verify Digital Signature
//! authentication with, as 16-bit ids of the IANA "IKEv2 Hash Algorithms"
//! registry.

use super::SignatureError;

/// The Notify Message Type of SIGNATURE_HASH_ALGORITHMS.
pub const SIGNATURE_HASH_ALGORITHMS: u16 = 16431;

/// IKEv2 Hash Algorithms (RFC 7427 §7) this crate signs or verifies with.
#[repr(u16)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-1 (announced for interoperability; never used for method 14 here).
    Sha1 = 1,
    /// SHA2-256.
    Sha256 = 2,
    /// SHA2-384.
    Sha384 = 3,
    /// SHA2-512.
    Sha512 = 4,
}

impl TryFrom<u16> for HashAlgorithm {
    type Error = u16;

    /// The algorithm for an id, or the id back if we do not know it.
    fn try_from(id: u16) -> Result<Self, u16> {
        Ok(match id {
            1 => Self::Sha1,
            2 => Self::Sha256,
            3 => Self::Sha384,
            4 => Self::Sha512,
            other => return Err(other),
        })
    }
}

impl From<HashAlgorithm> for u16 {
    fn from(hash: HashAlgorithm) -> Self {
        hash as u16
    }
}

/// The notification data announcing `hashes`: big-endian 16-bit ids.
pub fn encode_hash_algorithms(hashes: &[HashAlgorithm]) -> Vec<u8> {
    hashes
        .iter()
        .flat_map(|&h| u16::from(h).to_be_bytes())
        .collect()
}

/// The hashes a peer announced. Ids we do not know (e.g. Identity, 5, of
/// RFC 8420) are skipped, as the peer may list more than we implement; data
/// of odd length is malformed.
pub fn parse_hash_algorithms(data: &[u8]) -> Result<Vec<HashAlgorithm>, SignatureError> {
    let chunks = data.chunks_exact(2);
    if !chunks.remainder().is_empty() {
        return Err(SignatureError::MalformedHashAlgorithms);
    }
    Ok(chunks
        .filter_map(|pair| <[u8; 2]>::try_from(pair).ok())
        .filter_map(|pair| HashAlgorithm::try_from(u16::from_be_bytes(pair)).ok())
        .collect())
}

/// The first hash of `ours` (in our order of preference) that the peer also
/// announced, if any.
pub fn choose_hash_algorithm(
    ours: &[HashAlgorithm],
    theirs: &[HashAlgorithm],
) -> Option<HashAlgorithm> {
    ours.iter().copied().find(|h| theirs.contains(h))
}
