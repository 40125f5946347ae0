//! The IKE SA encryption and integrity keys, handed out for one purpose:
//! writing a key log that lets Wireshark/tshark decrypt a capture of the
//! IKE exchanges (its IKEv2 decryption table). Nothing in the protocol
//! needs them outside the endpoint; the daemon asks only when the
//! operator turned key export on, and it warns that it is on.
//!
//! SK_d, SK_pi and SK_pr are not exported: a capture is decrypted with the
//! four keys below, and those three would let their holder derive CHILD_SA
//! keys or forge AUTH payloads.

use zeroize::Zeroizing;

use crate::endpoint::Endpoint;
use crate::event::IkeSaId;
use crate::proposal::IkeTransforms;

/// SK_ei, SK_er, SK_ai and SK_ar of one IKE SA (RFC 7296 §2.14), with the
/// SPIs and transforms that name them in a capture. Wiped on drop; `Debug`
/// leaves the keys out.
#[derive(Clone)]
pub struct IkeSaKeys {
    /// Our name for the IKE SA.
    pub id: IkeSaId,
    /// IKE SA Initiator's SPI.
    pub initiator_spi: u64,
    /// IKE SA Responder's SPI.
    pub responder_spi: u64,
    /// The negotiated transforms (encryption, key length, integrity).
    pub transforms: IkeTransforms,
    sk_ei: Zeroizing<Vec<u8>>,
    sk_er: Zeroizing<Vec<u8>>,
    sk_ai: Zeroizing<Vec<u8>>,
    sk_ar: Zeroizing<Vec<u8>>,
}

impl IkeSaKeys {
    /// SK_ei: protects what the initiator sends (salt last for AEADs).
    pub fn sk_ei(&self) -> &[u8] {
        &self.sk_ei
    }

    /// SK_er: protects what the responder sends (salt last for AEADs).
    pub fn sk_er(&self) -> &[u8] {
        &self.sk_er
    }

    /// SK_ai: the initiator's integrity key (empty with an AEAD).
    pub fn sk_ai(&self) -> &[u8] {
        &self.sk_ai
    }

    /// SK_ar: the responder's integrity key (empty with an AEAD).
    pub fn sk_ar(&self) -> &[u8] {
        &self.sk_ar
    }
}

impl core::fmt::Debug for IkeSaKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IkeSaKeys")
            .field("id", &self.id)
            .field(
                "initiator_spi",
                &format_args!("{:#018x}", self.initiator_spi),
            )
            .field(
                "responder_spi",
                &format_args!("{:#018x}", self.responder_spi),
            )
            .field("transforms", &self.transforms)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// The current SK_e/SK_a keys of IKE SA `id`, for key export only (a
    /// Wireshark key log; see the module documentation). `None` when there
    /// is no such IKE SA or its key exchange is not done yet. After an
    /// IKE_INTERMEDIATE exchange (RFC 9370) these are the updated keys,
    /// the ones IKE_AUTH and later exchanges use; after an IKE SA rekey
    /// the new IKE SA has its own id and keys.
    pub fn ike_sa_keys(&self, id: IkeSaId) -> Option<IkeSaKeys> {
        let sa = self.sas.get(&id.0)?;
        let keys = sa.keys.as_ref()?;
        let copy = |k: &[u8]| Zeroizing::new(k.to_vec());
        Some(IkeSaKeys {
            id,
            initiator_spi: sa.spi_i,
            responder_spi: sa.spi_r,
            transforms: keys.transforms,
            sk_ei: copy(keys.sk.sk_ei()),
            sk_er: copy(keys.sk.sk_er()),
            sk_ai: copy(keys.sk.sk_ai()),
            sk_ar: copy(keys.sk.sk_ar()),
        })
    }
}
