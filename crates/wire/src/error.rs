//! The single error type shared by every parser and emitter in the crate.

/// Why a packet could not be parsed or emitted.
///
/// The type is `Copy` and carries no heap data so that returning it on the
/// per-packet path costs nothing more than the discriminant and a few words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The input ends before a field that must be present.
    #[error("truncated packet: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes needed to read the field in question.
        need: usize,
        /// Bytes actually available.
        have: usize,
    },
    /// The IP version nibble is not the one expected.
    #[error("unexpected IP version {0}")]
    BadVersion(u8),
    /// A header length field is smaller than the fixed part of its header.
    #[error("header length field is invalid")]
    BadHeaderLength,
    /// IPv4 total length is below the header length or beyond the buffer.
    #[error("IPv4 total length is inconsistent with the header or the buffer")]
    BadTotalLength,
    /// An IPv6 extension header is present that this code does not handle
    /// in the requested context (the value is the header type).
    #[error("unsupported IPv6 extension header {0}")]
    UnsupportedExtension(u8),
    /// The extension chain is longer than [`crate::MAX_EXT_HEADERS`].
    #[error("too many IPv6 extension headers")]
    TooManyExtensions,
    /// The output buffer cannot hold what is being written.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// IPv6 payload length points beyond the buffer.
    #[error("IPv6 payload length exceeds the buffer")]
    BadPayloadLength,
    /// An IPv6 jumbogram (RFC 2675); not supported by this data plane.
    #[error("IPv6 jumbograms are not supported")]
    Jumbogram,
    /// A hop-by-hop options header appears somewhere other than directly
    /// after the IPv6 header, which RFC 8200 §4.3 forbids.
    #[error("hop-by-hop options header is not first in the chain")]
    MisplacedHopByHop,
    /// An IPv4 option or IPv6 option TLV is malformed or overruns its area.
    #[error("malformed IP option")]
    BadOption,
    /// ESP pad length plus trailer exceeds the decrypted payload.
    #[error("ESP pad length exceeds the payload")]
    BadPadLength,
    /// The SPI is in the range RFC 4303 §2.1 reserves (0..=255).
    #[error("SPI {0} is reserved")]
    ReservedSpi(u32),
    /// The UDP length field is below 8 or beyond the buffer.
    #[error("UDP length field is invalid")]
    BadUdpLength,
    /// A header field value does not fit its on-the-wire width
    /// (e.g. DSCP above 63, a 21-bit flow label).
    #[error("header field value out of range")]
    FieldOutOfRange,
    /// The major version of an IKE header is not 2 (RFC 7296 §3.1); the
    /// value lets the keying module answer INVALID_MAJOR_VERSION.
    #[error("unsupported IKE major version {0}")]
    IkeMajorVersion(u8),
    /// The IKE header's Length is below the header size or differs from the
    /// datagram's length (RFC 7296 §3.1).
    #[error("IKE message length does not match the datagram")]
    IkeLength,
    /// An IKE payload or substructure length is below its minimum or runs
    /// past its container.
    #[error("IKE payload length is invalid")]
    PayloadLength,
    /// A payload of a type this code does not understand has the critical
    /// bit set: the message must be rejected with UNSUPPORTED_CRITICAL_PAYLOAD
    /// (RFC 7296 §2.5); the value is the payload type.
    #[error("unsupported critical IKE payload type {0}")]
    UnsupportedCriticalPayload(u8),
    /// Bytes remain after the last payload of a chain or the last entry of a
    /// counted list.
    #[error("trailing bytes after the last IKE payload or entry")]
    TrailingData,
    /// The contents of an IKE payload are inconsistent (a count, a size, a
    /// "last substructure" marker or a field value the RFC forbids).
    #[error("malformed IKE payload contents")]
    BadSubstructure,
    /// A Nonce payload's data is outside 16..=256 bytes (RFC 7296 §3.9);
    /// the value is the length found.
    #[error("IKE nonce length {0} is outside 16..=256")]
    NonceLength(usize),
    /// A payload was added after an Encrypted (SK or SKF) payload, which
    /// must be the last of its message (RFC 7296 §3.14).
    #[error("a payload follows the Encrypted payload")]
    PayloadAfterEncrypted,
}
