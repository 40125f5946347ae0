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
//! checked against NIST CAVP SP 800-135 vectors), and the ECP-256, ECP-384
//! and Curve25519 key exchanges ([`key_exchange`]).
//!
//! Per-packet operations never allocate and never panic on packet contents:
//! bad input is reported as a [`CryptoError`].

#![forbid(unsafe_code)]

mod ah_transform;
mod error;
mod esp_transform;
mod ids;
pub mod ikev2_kdf;
mod integrity;
pub mod key_exchange;
mod keys;
pub mod prf;
mod suite;

pub use ah_transform::AhTransform;
pub use error::CryptoError;
pub use esp_transform::EspTransform;
pub use ids::{EncrId, IntegId};
pub use ikev2_kdf::{ChildSaKeys, IkeSaKeys, KeyLengths};
pub use integrity::Integrity;
pub use key_exchange::{KeId, KeyExchange};
pub use prf::{KeyMaterial, Prf, PrfId, PrfOutput};
pub use suite::EspSuite;
