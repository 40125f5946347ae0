//! The engine's errors. Each maps to one drop counter through [`EspError::reason`].

use crate::counters::DropReason;
use palisade_crypto::CryptoError;

/// Why an SA could not be installed or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The transform suite is not usable for this SA.
    #[error("unusable transform suite: {0}")]
    Suite(#[from] CryptoError),
    /// Confidentiality-only ESP (CBC without integrity) was not explicitly allowed.
    #[error("ESP without integrity protection is refused unless allow_unauthenticated is set")]
    Unauthenticated,
    /// The anti-replay window size is out of range.
    #[error("anti-replay window: {0}")]
    Replay(#[from] crate::replay::ReplayError),
    /// A soft lifetime limit is not below its hard limit.
    #[error("lifetime: {0}")]
    Lifetime(#[from] crate::lifetime::LifetimeError),
    /// SPIs 0 to 255 are reserved (RFC 4303 §2.1).
    #[error("SPI {0:#x} is reserved (0-255)")]
    ReservedSpi(u32),
    /// An inbound SA with this SPI, protocol and destination already exists.
    #[error("an inbound SA with SPI {0:#010x} already exists for this destination")]
    DuplicateSpi(u32),
    /// Local and remote addresses belong to different IP families.
    #[error("local and remote addresses are of different IP families")]
    AddressFamilyMismatch,
    /// AH cannot be carried in UDP: NATs break it.
    #[error("AH cannot be UDP-encapsulated (NAT traversal needs ESP)")]
    AhInUdp,
    /// The handle does not name a live SA.
    #[error("no such SA")]
    NoSuchSa,
    /// The SAD holds 2^32 SAs already.
    #[error("the SAD is full")]
    Full,
    /// A bundle must be ESP inside AH, same direction (spec §6.1: numSAs 1-2).
    #[error("invalid SA bundle: {0}")]
    Bundle(&'static str),
}

/// Why a packet was not encapsulated or decapsulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EspError {
    /// No inbound SA matches the SPI (and destination).
    #[error("unknown SPI {0:#010x}")]
    UnknownSpi(u32),
    /// The sequence number was replayed or is too old.
    #[error("replayed or too old sequence number")]
    Replay,
    /// The ICV did not verify.
    #[error("integrity check failed")]
    Integrity,
    /// The self-describing padding is wrong.
    #[error("bad ESP padding")]
    BadPadding,
    /// The Next Header value does not fit.
    #[error("bad next header {0}")]
    BadNextHeader(u8),
    /// The SA's hard lifetime has expired.
    #[error("SA lifetime expired")]
    LifetimeExpired,
    /// The outbound sequence number space is used up; the SA must be replaced (RFC 4303 §3.3.3).
    #[error("sequence numbers exhausted")]
    SequenceExhausted,
    /// Inconsistent headers.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// Shorter than its headers, IV and ICV.
    #[error("packet too short")]
    TooShort,
    /// A dummy packet (Next Header 59), discarded as RFC 4303 §2.6 says.
    #[error("dummy packet")]
    Dummy,
    /// RFC 6040: outer CE over a Not-ECT inner packet.
    #[error("ECN: CE outer header on a Not-ECT inner packet")]
    EcnConflict,
    /// The caller's buffer lacks headroom or tailroom.
    #[error("not enough headroom or tailroom in the buffer")]
    NoRoom,
    /// The handle does not name a live SA of the right direction.
    #[error("no such outbound SA")]
    NoSuchSa,
    /// An internal cryptographic failure (not an ICV mismatch).
    #[error("cipher failure")]
    Cipher,
    /// An IP fragment for a transport-mode SA, which protects whole packets only
    /// (RFC 4303 §3.3.4).
    #[error("transport mode cannot protect a fragment")]
    Fragment,
    /// Protected, the packet would be longer than an IP packet can be (65,535 bytes, or
    /// that much payload behind an IPv6 header).
    #[error("packet too long to protect")]
    TooLong,
}

impl EspError {
    /// The counter this error is counted under.
    pub fn reason(self) -> DropReason {
        match self {
            EspError::UnknownSpi(_) => DropReason::UnknownSpi,
            EspError::Replay => DropReason::Replay,
            EspError::Integrity => DropReason::Integrity,
            EspError::BadPadding => DropReason::BadPadding,
            EspError::BadNextHeader(_) => DropReason::BadNextHeader,
            EspError::LifetimeExpired | EspError::SequenceExhausted => DropReason::LifetimeExpired,
            EspError::Malformed(_) | EspError::NoSuchSa | EspError::Cipher => DropReason::Malformed,
            EspError::TooShort => DropReason::TooShort,
            EspError::Dummy => DropReason::Dummy,
            EspError::EcnConflict => DropReason::EcnConflict,
            EspError::NoRoom => DropReason::NoRoom,
            EspError::Fragment => DropReason::Fragment,
            EspError::TooLong => DropReason::TooLong,
        }
    }
}

impl From<palisade_wire::WireError> for EspError {
    fn from(e: palisade_wire::WireError) -> Self {
        match e {
            palisade_wire::WireError::Truncated { .. } => EspError::TooShort,
            palisade_wire::WireError::BufferTooSmall => EspError::NoRoom,
            _ => EspError::Malformed("bad IP header"),
        }
    }
}

impl From<CryptoError> for EspError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::Integrity => EspError::Integrity,
            CryptoError::BadLayout => {
                EspError::Malformed("ESP payload not aligned to the cipher block")
            }
            _ => EspError::Cipher,
        }
    }
}
