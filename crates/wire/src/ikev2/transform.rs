//! IANA values for SA proposals (RFC 7296 §3.3, the "IKEv2 Parameters"
//! registry, RFC 9370 for additional key exchanges): the ones Palisade
//! negotiates, named as the registry names them.

/// Protocol ID of a proposal, Notify or Delete payload (§3.3.1).
pub mod protocol_id {
    /// The IKE SA itself.
    pub const IKE: u8 = 1;
    /// Authentication Header (RFC 4302).
    pub const AH: u8 = 2;
    /// Encapsulating Security Payload (RFC 4303).
    pub const ESP: u8 = 3;
}

/// Transform Type values (§3.3.2, RFC 9370 §2.2.1).
pub mod transform_type {
    /// Encryption Algorithm (ENCR).
    pub const ENCR: u8 = 1;
    /// Pseudorandom Function (PRF).
    pub const PRF: u8 = 2;
    /// Integrity Algorithm (INTEG).
    pub const INTEG: u8 = 3;
    /// Key Exchange Method (KE), formerly "Diffie-Hellman Group (D-H)".
    pub const KE: u8 = 4;
    /// Extended Sequence Numbers (ESN).
    pub const ESN: u8 = 5;
    /// Additional Key Exchange 1 (ADDKE1), RFC 9370.
    pub const ADDKE1: u8 = 6;
    /// Additional Key Exchange 2 (ADDKE2).
    pub const ADDKE2: u8 = 7;
    /// Additional Key Exchange 3 (ADDKE3).
    pub const ADDKE3: u8 = 8;
    /// Additional Key Exchange 4 (ADDKE4).
    pub const ADDKE4: u8 = 9;
    /// Additional Key Exchange 5 (ADDKE5).
    pub const ADDKE5: u8 = 10;
    /// Additional Key Exchange 6 (ADDKE6).
    pub const ADDKE6: u8 = 11;
    /// Additional Key Exchange 7 (ADDKE7).
    pub const ADDKE7: u8 = 12;
}

/// Transform IDs for Transform Type 1, Encryption Algorithm.
pub mod encr {
    /// No encryption (ESP only; RFC 2410).
    pub const ENCR_NULL: u16 = 11;
    /// AES in CBC mode (RFC 3602); needs a Key Length attribute.
    pub const ENCR_AES_CBC: u16 = 12;
    /// AES-GCM with a 16-octet ICV (RFC 4106, RFC 5282).
    pub const ENCR_AES_GCM_16: u16 = 20;
    /// AES-GMAC: integrity only, ESP only (RFC 4543).
    pub const ENCR_NULL_AUTH_AES_GMAC: u16 = 21;
    /// ChaCha20-Poly1305 (RFC 7634); no Key Length attribute.
    pub const ENCR_CHACHA20_POLY1305: u16 = 28;
}

/// Transform IDs for Transform Type 2, Pseudorandom Function.
pub mod prf {
    /// HMAC-SHA1 (RFC 2104).
    pub const PRF_HMAC_SHA1: u16 = 2;
    /// HMAC-SHA-256 (RFC 4868).
    pub const PRF_HMAC_SHA2_256: u16 = 5;
    /// HMAC-SHA-384 (RFC 4868).
    pub const PRF_HMAC_SHA2_384: u16 = 6;
    /// HMAC-SHA-512 (RFC 4868).
    pub const PRF_HMAC_SHA2_512: u16 = 7;
}

/// Transform IDs for Transform Type 3, Integrity Algorithm.
pub mod integ {
    /// No integrity algorithm: only with AEAD ciphers.
    pub const NONE: u16 = 0;
    /// HMAC-SHA1 truncated to 96 bits (RFC 2404).
    pub const AUTH_HMAC_SHA1_96: u16 = 2;
    /// HMAC-SHA-256 truncated to 128 bits (RFC 4868).
    pub const AUTH_HMAC_SHA2_256_128: u16 = 12;
    /// HMAC-SHA-384 truncated to 192 bits (RFC 4868).
    pub const AUTH_HMAC_SHA2_384_192: u16 = 13;
    /// HMAC-SHA-512 truncated to 256 bits (RFC 4868).
    pub const AUTH_HMAC_SHA2_512_256: u16 = 14;
}

/// Transform IDs for Transform Type 4, Key Exchange Method (also used in
/// the KE payload and the ADDKE types).
pub mod ke_method {
    /// No key exchange (Child SAs without PFS; ADDKE "none").
    pub const NONE: u16 = 0;
    /// 2048-bit MODP Group (RFC 3526).
    pub const MODP_2048: u16 = 14;
    /// 3072-bit MODP Group (RFC 3526).
    pub const MODP_3072: u16 = 15;
    /// 4096-bit MODP Group (RFC 3526).
    pub const MODP_4096: u16 = 16;
    /// 256-bit random ECP group (RFC 5903).
    pub const ECP_256: u16 = 19;
    /// 384-bit random ECP group (RFC 5903).
    pub const ECP_384: u16 = 20;
    /// 521-bit random ECP group (RFC 5903).
    pub const ECP_521: u16 = 21;
    /// Curve25519 (RFC 8031).
    pub const CURVE25519: u16 = 31;
    /// Curve448 (RFC 8031).
    pub const CURVE448: u16 = 32;
    /// ML-KEM-512 (RFC 9370 additional key exchange).
    pub const ML_KEM_512: u16 = 35;
    /// ML-KEM-768 (RFC 9370 additional key exchange).
    pub const ML_KEM_768: u16 = 36;
    /// ML-KEM-1024 (RFC 9370 additional key exchange).
    pub const ML_KEM_1024: u16 = 37;
}

/// Transform IDs for Transform Type 5, Extended Sequence Numbers.
pub mod esn {
    /// 32-bit sequence numbers.
    pub const NO_ESN: u16 = 0;
    /// 64-bit extended sequence numbers (RFC 4303 §2.2.1).
    pub const ESN: u16 = 1;
}

/// Transform attribute types (§3.3.5).
pub mod attribute_type {
    /// Key Length in bits, always in TV form.
    pub const KEY_LENGTH: u16 = 14;
}
