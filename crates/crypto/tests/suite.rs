//! Transform ids and suite arithmetic.

#![allow(clippy::unwrap_used)]

use palisade_crypto::{CryptoError, EncrId, EspSuite, IntegId};

#[test]
fn ids_round_trip_through_u16() {
    for id in [
        EncrId::Null,
        EncrId::AesCbc,
        EncrId::AesGcm16,
        EncrId::NullAuthAesGmac,
        EncrId::ChaCha20Poly1305,
    ] {
        assert_eq!(EncrId::try_from(u16::from(id)).unwrap(), id);
    }
    for id in [
        IntegId::None,
        IntegId::HmacSha1_96,
        IntegId::AesGmac128,
        IntegId::AesGmac256,
        IntegId::HmacSha2_256_128,
        IntegId::HmacSha2_384_192,
        IntegId::HmacSha2_512_256,
    ] {
        assert_eq!(IntegId::try_from(u16::from(id)).unwrap(), id);
    }
    assert_eq!(EncrId::AesGcm16 as u16, 20);
    assert_eq!(IntegId::HmacSha2_512_256 as u16, 14);
    for unknown in [0u16, 3, 13, 18, 19, 29, 1024, u16::MAX] {
        assert_eq!(
            EncrId::try_from(unknown),
            Err(CryptoError::UnknownTransform(unknown))
        );
    }
    for unknown in [1u16, 5, 8, 10, 15, u16::MAX] {
        assert_eq!(
            IntegId::try_from(unknown),
            Err(CryptoError::UnknownTransform(unknown))
        );
    }
}

#[test]
fn named_suite_parameters() {
    // (suite, name, encr key, integ key, iv, icv, align, confidential)
    let table = [
        (EspSuite::AES128_GCM16, "aes128gcm16", 20, 0, 8, 16, 4, true),
        (EspSuite::AES256_GCM16, "aes256gcm16", 36, 0, 8, 16, 4, true),
        (
            EspSuite::CHACHA20_POLY1305,
            "chacha20poly1305",
            36,
            0,
            8,
            16,
            4,
            true,
        ),
        (EspSuite::AES128_GMAC, "aes128gmac", 20, 0, 8, 16, 4, false),
        (EspSuite::AES256_GMAC, "aes256gmac", 36, 0, 8, 16, 4, false),
        (
            EspSuite::AES128_CBC_SHA1_96,
            "aes128-sha1",
            16,
            20,
            16,
            12,
            16,
            true,
        ),
        (
            EspSuite::AES128_CBC_SHA256_128,
            "aes128-sha256",
            16,
            32,
            16,
            16,
            16,
            true,
        ),
        (
            EspSuite::AES256_CBC_SHA256_128,
            "aes256-sha256",
            32,
            32,
            16,
            16,
            16,
            true,
        ),
        (
            EspSuite::AES256_CBC_SHA384_192,
            "aes256-sha384",
            32,
            48,
            16,
            24,
            16,
            true,
        ),
        (
            EspSuite::AES256_CBC_SHA512_256,
            "aes256-sha512",
            32,
            64,
            16,
            32,
            16,
            true,
        ),
        (
            EspSuite::NULL_SHA256_128,
            "null-sha256",
            0,
            32,
            0,
            16,
            4,
            false,
        ),
    ];
    assert_eq!(table.len(), EspSuite::KNOWN.len());
    for (suite, name, ek, ik, iv, icv, align, conf) in table {
        assert!(EspSuite::KNOWN.contains(&suite));
        assert_eq!(suite.validate(), Ok(()), "{name}");
        assert_eq!(suite.name(), name);
        assert_eq!(suite.encr_key_len(), ek, "{name}");
        assert_eq!(suite.integ_key_len(), ik, "{name}");
        assert_eq!(suite.keymat_len(), ek + ik, "{name}");
        assert_eq!(suite.iv_len(), iv, "{name}");
        assert_eq!(suite.icv_len(), icv, "{name}");
        assert_eq!(suite.align(), align, "{name}");
        assert_eq!(suite.is_confidential(), conf, "{name}");
    }
}

#[test]
fn validation_rules() {
    let s = |encr, key_bits, integ| EspSuite {
        encr,
        key_bits,
        integ,
    };
    let unsupported = |suite: EspSuite| {
        assert!(
            matches!(suite.validate(), Err(CryptoError::UnsupportedSuite(_))),
            "{suite:?} should be rejected"
        );
        assert_eq!(suite.name(), "unsupported");
    };
    // AEADs take no integrity transform.
    unsupported(s(EncrId::AesGcm16, 128, IntegId::HmacSha2_256_128));
    unsupported(s(EncrId::ChaCha20Poly1305, 256, IntegId::HmacSha1_96));
    unsupported(s(EncrId::NullAuthAesGmac, 128, IntegId::HmacSha2_512_256));
    // Key sizes.
    unsupported(s(EncrId::AesGcm16, 192, IntegId::None));
    unsupported(s(EncrId::AesCbc, 0, IntegId::HmacSha1_96));
    unsupported(s(EncrId::ChaCha20Poly1305, 128, IntegId::None));
    unsupported(s(EncrId::Null, 128, IntegId::HmacSha2_256_128));
    // NULL needs an HMAC.
    unsupported(s(EncrId::Null, 0, IntegId::None));
    // GMAC integrity ids are AH-only.
    unsupported(s(EncrId::AesCbc, 128, IntegId::AesGmac128));
    unsupported(s(EncrId::Null, 0, IntegId::AesGmac256));
    // Confidentiality-only CBC is the SA layer's call, so it validates here.
    assert_eq!(s(EncrId::AesCbc, 128, IntegId::None).validate(), Ok(()));
    assert_eq!(s(EncrId::AesCbc, 128, IntegId::None).name(), "aes128");
    assert_eq!(s(EncrId::Null, 0, IntegId::HmacSha1_96).name(), "null-sha1");
}

#[test]
fn integ_lengths() {
    assert_eq!(IntegId::AesGmac128.key_len(), 20);
    assert_eq!(IntegId::AesGmac256.key_len(), 36);
    assert_eq!(IntegId::HmacSha1_96.icv_len(), 12);
    assert_eq!(IntegId::HmacSha2_384_192.icv_len(), 24);
    assert!(IntegId::HmacSha1_96.is_hmac() && !IntegId::HmacSha1_96.is_gmac());
    assert!(IntegId::AesGmac256.is_gmac() && !IntegId::AesGmac256.is_hmac());
    assert!(!IntegId::None.is_hmac() && !IntegId::None.is_gmac());
}
