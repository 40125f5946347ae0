//! ESP and AH cryptographic transforms for the Palisade IPsec data plane, and the
//! IKEv2 key schedule the keying module builds on.
//!
//! Transforms are named by their IANA IKEv2 transform ids ([`EncrId`],
//! [`IntegId`]) and grouped into ESP suites ([`EspSuite`]). An
//! [`EspTransform`] seals and opens whole ESP packets in place; an
//! [`AhTransform`] signs and verifies whole IP packets carrying AH;
//! [`Integrity`] is the truncated HMAC both use.
//!
//! Every primitive (AES-GCM, ChaCha20-Poly1305, AES-CBC, HMAC and
//! constant-time comparison) comes from aws-lc via aws-lc-rs; this crate only
//! lays out nonces, AAD and ICVs the way the IPsec RFCs and the independent
//! implementation we test against (scapy's `layers/ipsec.py`) do.
//!
//! For IKEv2: the PRFs by IANA id and prf+ ([`prf`]), SKEYSEED and the IKE
//! and CHILD_SA key material of RFC 7296 §2.14, §2.17 and §2.18 ([`ikev2_kdf`],
//! checked against NIST CAVP SP 800-135 vectors), and the ECP-256, ECP-384, ECP-521
//! and Curve25519 key exchanges ([`key_exchange`]), and ML-KEM-768 (aws-lc's
//! `kem` module) for RFC 9370's additional key exchanges.
//!
//! Also for IKEv2: the MODP groups 14, 15 and 16 of RFC 3526 in
//! [`key_exchange`] (aws-lc's `DH` through aws-lc-sys; with RSA SHA-1
//! signing, the only direct C calls here, each in a small module that
//! allows `unsafe`), AUTH payload
//! signatures for RSA, ECDSA (RFC 4754) and Digital Signature (RFC 7427)
//! authentication ([`signature`]), and X.509 certificates for IKE: parsing,
//! path validation with rustls-webpki, identity matching and CERTREQ
//! authority hashes ([`certificate`]).
//!
//! Per-packet operations never allocate and never panic on packet contents:
//! bad input is reported as a [`CryptoError`].

#![deny(unsafe_code)]

mod ah_transform;
pub mod certificate;
mod error;
mod esp_transform;
mod ids;
mod ike_protection;
pub mod ikev2_kdf;
mod integrity;
pub mod key_exchange;
mod keys;
pub mod prf;
pub mod signature;
mod suite;

pub use ah_transform::AhTransform;
pub use certificate::{Certificate, CertificateError, IkeIdentity, TrustAnchors};
pub use error::CryptoError;
pub use esp_transform::{AeadPath, EspTransform};
pub use ids::{EncrId, IntegId};
pub use ike_protection::IkeProtection;
pub use ikev2_kdf::{ChildSaKeys, IkeSaKeys, KeyLengths};
pub use integrity::Integrity;
pub use key_exchange::{KeId, KeyExchange};
pub use prf::{KeyMaterial, Prf, PrfId, PrfOutput};
pub use signature::{AuthMethod, SignatureError, SignatureScheme, SigningKey};
pub use suite::EspSuite;
