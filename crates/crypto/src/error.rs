//! The single error type of this crate.

/// Everything that can go wrong while building or using a transform.
///
/// The variants carry no key material and no packet bytes, so an error can be
/// logged or counted without leaking anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// An IANA transform id this crate does not implement.
    #[error("unknown transform id {0}")]
    UnknownTransform(u16),
    /// A combination of transforms that is not allowed or not implemented.
    #[error("unsupported suite: {0}")]
    UnsupportedSuite(&'static str),
    /// Key material of the wrong length for the suite.
    #[error("bad key length: expected {expected} bytes, got {got}")]
    BadKeyLength {
        /// What the suite needs.
        expected: usize,
        /// What was supplied.
        got: usize,
    },
    /// The packet is too short for the suite's header, IV and ICV, the payload
    /// is not a positive multiple of the suite's alignment, or the sequence
    /// number in the header disagrees with the one passed in.
    #[error("packet layout does not fit the suite")]
    BadLayout,
    /// The ICV did not verify; the packet must be dropped.
    #[error("integrity check failed")]
    Integrity,
    /// aws-lc reported an internal failure (e.g. the RNG failed).
    #[error("cryptographic library failure")]
    Cipher,
    /// prf+ was asked for more than 255 blocks of output (RFC 7296 §2.13).
    #[error("prf+ output of {requested} bytes exceeds the maximum of {max}")]
    PrfPlusTooLong {
        /// Bytes asked for.
        requested: usize,
        /// 255 times the PRF output length.
        max: usize,
    },
    /// A key exchange public value (KE payload data) of the wrong length for
    /// its method, not a valid point of the group, or giving a degenerate
    /// shared secret; or a private scalar outside the group's range.
    #[error("invalid key exchange public value")]
    BadKeyExchange,
}
