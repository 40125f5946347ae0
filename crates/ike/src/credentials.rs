//! Certificate credentials of an IKE policy (RFC 7296 §2.15, §3.6, §3.7;
//! RFC 4945): our certificate chain and private key, and the trust anchors
//! a peer's certificate must chain to.
//!
//! The library never reads files: the daemon loads what the filter
//! engine's `CertificateAuthentication` names (PEM paths) and hands the
//! result over in [`crate::IkePolicy::certificates`].

use std::sync::Arc;

use palisade_crypto::{Certificate, SigningKey, TrustAnchors};

/// Why credentials could not be put together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// A chain needs at least the end-entity certificate.
    #[error("empty certificate chain")]
    EmptyChain,
    /// The private key is not the one the end-entity certificate certifies.
    #[error("the private key does not match the end-entity certificate")]
    KeyMismatch,
    /// The key's public half could not be exported (aws-lc failure).
    #[error("cannot read the private key's public key")]
    Key,
}

/// Our certificate chain and its key: what we send in CERT payloads and
/// sign AUTH with.
pub struct LocalCredential {
    end_entity: Certificate,
    intermediates: Vec<Certificate>,
    key: SigningKey,
}

impl LocalCredential {
    /// `chain` is the end-entity certificate first, then the intermediates
    /// the peer needs to reach its trust anchor (the root itself may be
    /// left out); `key` must be the end entity's private key.
    pub fn new(chain: Vec<Certificate>, key: SigningKey) -> Result<Self, CredentialError> {
        let mut chain = chain.into_iter();
        let end_entity = chain.next().ok_or(CredentialError::EmptyChain)?;
        let spki = key
            .public_key_spki_der()
            .map_err(|_| CredentialError::Key)?;
        // A wrong key would only show as the peer's AUTHENTICATION_FAILED.
        if spki != end_entity.subject_public_key_info() {
            return Err(CredentialError::KeyMismatch);
        }
        Ok(Self {
            end_entity,
            intermediates: chain.collect(),
            key,
        })
    }

    /// The end-entity certificate.
    pub fn end_entity(&self) -> &Certificate {
        &self.end_entity
    }

    /// The intermediates, in the order given.
    pub fn intermediates(&self) -> &[Certificate] {
        &self.intermediates
    }

    /// The whole chain, end entity first: our CERT payloads.
    pub fn chain(&self) -> impl Iterator<Item = &Certificate> {
        core::iter::once(&self.end_entity).chain(&self.intermediates)
    }

    /// The private key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }
}

impl core::fmt::Debug for LocalCredential {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalCredential")
            .field("end_entity", &self.end_entity)
            .field("intermediates", &self.intermediates)
            .field("key", &self.key)
            .finish()
    }
}

/// The certificate half of an IKE policy: optionally our own credential
/// (without one we authenticate with the pre-shared key), and the trust
/// anchors that peers authenticating with signatures must chain to
/// (without any, signature AUTH from the peer is refused).
#[derive(Debug, Default)]
pub struct Credentials {
    /// Our chain and key.
    pub local: Option<LocalCredential>,
    /// Anchors for the peer's certificate; also what our CERTREQ names.
    pub trust_anchors: TrustAnchors,
}

impl Credentials {
    /// Credentials with both halves.
    pub fn new(local: Option<LocalCredential>, trust_anchors: TrustAnchors) -> Arc<Self> {
        Arc::new(Self {
            local,
            trust_anchors,
        })
    }

    /// Whether we can check a peer's certificate at all.
    pub fn has_trust_anchors(&self) -> bool {
        !self.trust_anchors.certificates().is_empty()
    }
}

/// Same certificates, same anchors (keys follow from the certificates).
impl PartialEq for Credentials {
    fn eq(&self, other: &Self) -> bool {
        let chain = |c: &Self| {
            c.local
                .as_ref()
                .map(|l| l.chain().map(|c| c.der().to_vec()).collect::<Vec<_>>())
        };
        chain(self) == chain(other)
            && self.trust_anchors.certificates() == other.trust_anchors.certificates()
    }
}

impl Eq for Credentials {}
