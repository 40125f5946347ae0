//! What IKE_SA_INIT's notifications settled for an IKE SA beyond RFC 7296:
//! the peer's SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4) and whether both
//! sides support IKE fragmentation (RFC 7383 §2.3), plus the fragments in
//! flight. Kept beside the [`crate::ike_sa::IkeSa`] under the same SPI and
//! removed with it.

use palisade_crypto::signature::HashAlgorithm;

use crate::fragment::{Reassembly, SentFragments};

/// Per-IKE-SA state of the extensions.
#[derive(Debug, Default)]
pub(crate) struct Extensions {
    /// The hashes the peer can verify Digital Signature (14) AUTH with;
    /// `None` if it sent no SIGNATURE_HASH_ALGORITHMS.
    pub peer_hashes: Option<Vec<HashAlgorithm>>,
    /// Both sides sent IKEV2_FRAGMENTATION_SUPPORTED.
    pub fragmentation: bool,
    /// A request of the peer's being reassembled.
    pub request_in: Option<Reassembly>,
    /// A response of the peer's being reassembled.
    pub response_in: Option<Reassembly>,
    /// Our last fragmented request and response, resent as a whole.
    pub sent: Vec<SentFragments>,
}
