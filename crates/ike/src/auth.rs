//! Pre-shared key authentication (RFC 7296 §2.15):
//!
//! ```text
//! AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
//! InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
//! ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR
//! MACedIDForI = prf(SK_pi, RestOfInitIDPayload)
//! MACedIDForR = prf(SK_pr, RestOfRespIDPayload)
//! ```
//!
//! After IKE_INTERMEDIATE exchanges (RFC 9242 §3.3.2) both SignedOctets
//! end with `IntAuth = IntAuth_iN | IntAuth_rN | IKE_AUTH_MID`
//! ([`SignedOctets::int_auth`]).

use aws_lc_rs::constant_time;
use palisade_crypto::{Prf, PrfOutput};

/// The pad that turns a shared secret into the AUTH key.
const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// What one side signs: its IKE_SA_INIT message, the other side's nonce,
/// and its own ID payload body keyed with its SK_p.
#[derive(Debug, Clone, Copy)]
pub struct SignedOctets<'a> {
    /// The IKE_SA_INIT message this side sent (RealMessage1 or 2).
    pub real_message: &'a [u8],
    /// The other side's Nonce Data.
    pub peer_nonce: &'a [u8],
    /// This side's SK_pi or SK_pr.
    pub sk_p: &'a [u8],
    /// This side's ID payload body (RestOf[Init|Resp]IDPayload).
    pub id_body: &'a [u8],
    /// `IntAuth_iN | IntAuth_rN | IKE_AUTH_MID` after IKE_INTERMEDIATE
    /// exchanges (RFC 9242 §3.3.2); empty without them.
    pub int_auth: &'a [u8],
}

/// The AUTH payload data for a pre-shared key.
pub fn psk_auth(prf: Prf, shared_secret: &[u8], signed: &SignedOctets<'_>) -> PrfOutput {
    let maced_id = prf.prf(signed.sk_p, signed.id_body);
    let key = prf.prf(shared_secret, KEY_PAD);
    prf.prf_parts(
        key.as_ref(),
        &[
            signed.real_message,
            signed.peer_nonce,
            maced_id.as_ref(),
            signed.int_auth,
        ],
    )
}

/// Checks a received AUTH against the expected value in constant time.
pub fn verify_psk_auth(
    prf: Prf,
    shared_secret: &[u8],
    signed: &SignedOctets<'_>,
    received: &[u8],
) -> bool {
    let expected = psk_auth(prf, shared_secret, signed);
    constant_time::verify_slices_are_equal(expected.as_ref(), received).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::hmac;
    use palisade_crypto::prf::PrfId;

    fn hmac256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, key);
        let mut ctx = hmac::Context::with_key(&key);
        for p in parts {
            ctx.update(p);
        }
        ctx.sign().as_ref().to_vec()
    }

    #[test]
    fn auth_is_the_rfc_7296_construction() {
        let signed = SignedOctets {
            real_message: b"IKE_SA_INIT request bytes",
            peer_nonce: &[7u8; 32],
            sk_p: &[9u8; 32],
            id_body: &[1, 0, 0, 0, 192, 0, 2, 1],
            int_auth: &[],
        };
        let prf = Prf::new(PrfId::HmacSha2_256);
        let got = psk_auth(prf, b"secret", &signed);
        let key = hmac256(b"secret", &[b"Key Pad for IKEv2"]);
        let maced = hmac256(&[9u8; 32], &[&[1, 0, 0, 0, 192, 0, 2, 1]]);
        let expected = hmac256(&key, &[signed.real_message, signed.peer_nonce, &maced]);
        assert_eq!(got.as_ref(), &expected[..]);
        assert!(verify_psk_auth(prf, b"secret", &signed, &expected));
        assert!(!verify_psk_auth(prf, b"Secret", &signed, &expected));
        assert!(!verify_psk_auth(prf, b"secret", &signed, &expected[..31]));
        let other_id = SignedOctets {
            id_body: &[1, 0, 0, 0, 192, 0, 2, 2],
            ..signed
        };
        assert!(!verify_psk_auth(prf, b"secret", &other_id, &expected));
        // After IKE_INTERMEDIATE the IntAuth chain is MACed too.
        let with_int_auth = SignedOctets {
            int_auth: &[5u8; 68],
            ..signed
        };
        let expected_int = hmac256(
            &key,
            &[signed.real_message, signed.peer_nonce, &maced, &[5u8; 68]],
        );
        assert_eq!(
            psk_auth(prf, b"secret", &with_int_auth).as_ref(),
            &expected_int[..]
        );
        assert!(!verify_psk_auth(prf, b"secret", &with_int_auth, &expected));
    }
}
