//! ESP and AH cryptographic transforms for the Palisade IPsec data plane.
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
//! Per-packet operations never allocate and never panic on packet contents:
//! bad input is reported as a [`CryptoError`].

#![forbid(unsafe_code)]

mod ah_transform;
mod error;
mod esp_transform;
mod ids;
mod integrity;
mod keys;
mod suite;

pub use ah_transform::AhTransform;
pub use error::CryptoError;
pub use esp_transform::EspTransform;
pub use ids::{EncrId, IntegId};
pub use integrity::Integrity;
pub use suite::EspSuite;
