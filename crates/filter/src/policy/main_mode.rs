//! `IKEEXT_POLICY2`: main-mode (IKE SA) policy, found at the `IKEEXT_V{4|6}` layers.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::auth::{AuthenticationMethod, ImpersonationType};
use super::secret::SecretBytes;

/// `IKEEXT_POLICY_FLAG_DISABLE_DIAGNOSTICS`.
pub const IKEEXT_POLICY_FLAG_DISABLE_DIAGNOSTICS: u32 = 0x1;
/// `IKEEXT_POLICY_FLAG_NO_MACHINE_LUID_VERIFY`.
pub const IKEEXT_POLICY_FLAG_NO_MACHINE_LUID_VERIFY: u32 = 0x2;
/// `IKEEXT_POLICY_FLAG_NO_IMPERSONATION_LUID_VERIFY` (AuthIP only).
pub const IKEEXT_POLICY_FLAG_NO_IMPERSONATION_LUID_VERIFY: u32 = 0x4;
/// `IKEEXT_POLICY_FLAG_ENABLE_OPTIONAL_DH` (AuthIP only): as responder, accept any DH group
/// including none.
pub const IKEEXT_POLICY_FLAG_ENABLE_OPTIONAL_DH: u32 = 0x8;

/// Main-mode SA lifetime used by the constructors: 8 hours.
pub const DEFAULT_MM_LIFETIME_SECONDS: u32 = 8 * 3600;

/// `IKEEXT_CIPHER_TYPE`, plus ChaCha20-Poly1305 which Palisade's IKEv2 also offers.
///
/// Serde names are the WFP constants without `IKEEXT_CIPHER_`, lower-cased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IkeCipher {
    /// `IKEEXT_CIPHER_DES` (weak; kept for WFP fidelity).
    #[serde(rename = "des")]
    Des,
    /// `IKEEXT_CIPHER_3DES`.
    #[serde(rename = "3des")]
    TripleDes,
    /// `IKEEXT_CIPHER_AES_128` (CBC).
    #[serde(rename = "aes_128")]
    Aes128,
    /// `IKEEXT_CIPHER_AES_192` (CBC).
    #[serde(rename = "aes_192")]
    Aes192,
    /// `IKEEXT_CIPHER_AES_256` (CBC).
    #[serde(rename = "aes_256")]
    Aes256,
    /// `IKEEXT_CIPHER_AES_GCM_128_16ICV` (IKEv2 only, RFC 5282).
    #[serde(rename = "aes_gcm_128_16icv")]
    AesGcm128,
    /// `IKEEXT_CIPHER_AES_GCM_256_16ICV` (IKEv2 only, RFC 5282).
    #[serde(rename = "aes_gcm_256_16icv")]
    AesGcm256,
    /// ChaCha20-Poly1305 (IKEv2 only, RFC 7634); not in WFP.
    #[serde(rename = "chacha20_poly1305")]
    ChaCha20Poly1305,
}

impl IkeCipher {
    /// Whether the cipher authenticates its own output, so that the proposal's
    /// `integrity` only selects the PRF.
    pub const fn is_aead(self) -> bool {
        matches!(
            self,
            Self::AesGcm128 | Self::AesGcm256 | Self::ChaCha20Poly1305
        )
    }

    /// WFP-style name (`AES_128`, `AES_GCM_128_16ICV`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Des => "DES",
            Self::TripleDes => "3DES",
            Self::Aes128 => "AES_128",
            Self::Aes192 => "AES_192",
            Self::Aes256 => "AES_256",
            Self::AesGcm128 => "AES_GCM_128_16ICV",
            Self::AesGcm256 => "AES_GCM_256_16ICV",
            Self::ChaCha20Poly1305 => "CHACHA20_POLY1305",
        }
    }
}

impl fmt::Display for IkeCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `IKEEXT_INTEGRITY_TYPE`, plus SHA-512 for IKEv2. With an AEAD cipher it selects the PRF
/// only. Serde names: `md5`, `sha1`, `sha_256`, `sha_384`, `sha_512`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IkeIntegrity {
    /// `IKEEXT_INTEGRITY_MD5` (weak; kept for WFP fidelity).
    #[serde(rename = "md5")]
    Md5,
    /// `IKEEXT_INTEGRITY_SHA1`.
    #[serde(rename = "sha1")]
    Sha1,
    /// `IKEEXT_INTEGRITY_SHA_256`.
    #[serde(rename = "sha_256")]
    Sha256,
    /// `IKEEXT_INTEGRITY_SHA_384`.
    #[serde(rename = "sha_384")]
    Sha384,
    /// SHA-512 (RFC 4868); not in WFP.
    #[serde(rename = "sha_512")]
    Sha512,
}

/// `IKEEXT_DH_GROUP`, plus the IKEv2 groups Palisade adds (15, 16, 21, 31).
///
/// Serde names are the WFP constants without `IKEEXT_DH_`, lower-cased (`none`,
/// `group_14`, `ecp_256`, …); the IANA spellings `group_19`, `group_20`, `group_21`,
/// `group_31` and WFP's `group_2048` are accepted as aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DhGroup {
    /// `IKEEXT_DH_GROUP_NONE`: no key exchange (AuthIP only).
    #[serde(rename = "none")]
    None,
    /// `IKEEXT_DH_GROUP_1`: 768-bit MODP (weak).
    #[serde(rename = "group_1")]
    Group1,
    /// `IKEEXT_DH_GROUP_2`: 1024-bit MODP.
    #[serde(rename = "group_2")]
    Group2,
    /// `IKEEXT_DH_GROUP_14` (= `_2048`): 2048-bit MODP.
    #[serde(rename = "group_14", alias = "group_2048")]
    Group14,
    /// 3072-bit MODP (IANA 15); not in WFP.
    #[serde(rename = "group_15")]
    Group15,
    /// 4096-bit MODP (IANA 16); not in WFP.
    #[serde(rename = "group_16")]
    Group16,
    /// `IKEEXT_DH_ECP_256`: NIST P-256 (IANA 19).
    #[serde(rename = "ecp_256", alias = "group_19")]
    Ecp256,
    /// `IKEEXT_DH_ECP_384`: NIST P-384 (IANA 20).
    #[serde(rename = "ecp_384", alias = "group_20")]
    Ecp384,
    /// NIST P-521 (IANA 21, RFC 5903); not in WFP, named like `ecp_384`.
    #[serde(rename = "ecp_521", alias = "group_21")]
    Ecp521,
    /// `IKEEXT_DH_GROUP_24`: 2048-bit MODP with 256-bit prime-order subgroup.
    #[serde(rename = "group_24")]
    Group24,
    /// Curve25519 (IANA 31, RFC 8031, IKEv2 only); not in WFP.
    #[serde(rename = "curve25519", alias = "group_31")]
    Curve25519,
}

impl DhGroup {
    /// The IANA "Transform Type 4" number (0 for none).
    pub const fn iana_id(self) -> u16 {
        match self {
            Self::None => 0,
            Self::Group1 => 1,
            Self::Group2 => 2,
            Self::Group14 => 14,
            Self::Group15 => 15,
            Self::Group16 => 16,
            Self::Ecp256 => 19,
            Self::Ecp384 => 20,
            Self::Ecp521 => 21,
            Self::Group24 => 24,
            Self::Curve25519 => 31,
        }
    }
}

/// `IKEEXT_PROPOSAL0`: one main-mode transform set.
///
/// ```json
/// { "cipher": "aes_gcm_256_16icv", "integrity": "sha_256",
///   "max_lifetime_seconds": 28800, "dh_group": "curve25519", "quick_mode_limit": 0 }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MainModeProposal {
    /// `cipherAlgorithm`.
    pub cipher: IkeCipher,
    /// `integrityAlgorithm` (the PRF as well, in IKEv2).
    pub integrity: IkeIntegrity,
    /// `maxLifetimeSeconds`: must not be 0.
    pub max_lifetime_seconds: u32,
    /// `dhGroup`.
    pub dh_group: DhGroup,
    /// `quickModeLimit`: QM SAs per MM SA before rekeying; 0 = unlimited.
    #[serde(default)]
    pub quick_mode_limit: u32,
}

impl MainModeProposal {
    /// A proposal with the default 8-hour lifetime and no quick-mode limit.
    pub const fn new(cipher: IkeCipher, integrity: IkeIntegrity, dh_group: DhGroup) -> Self {
        Self {
            cipher,
            integrity,
            max_lifetime_seconds: DEFAULT_MM_LIFETIME_SECONDS,
            dh_group,
            quick_mode_limit: 0,
        }
    }

    /// Palisade's IKEv2 offer: AES-GCM-256/SHA-256/Curve25519 first, then
    /// AES-256-CBC/SHA-256/ECP-256 for peers (such as Windows) without Curve25519.
    pub fn ikev2_defaults() -> Vec<Self> {
        vec![
            Self::new(
                IkeCipher::AesGcm256,
                IkeIntegrity::Sha256,
                DhGroup::Curve25519,
            ),
            Self::new(IkeCipher::Aes256, IkeIntegrity::Sha256, DhGroup::Ecp256),
        ]
    }

    /// An offer for the IKEv1-based modules (IKE, AuthIP), which have no AEAD ciphers:
    /// AES-256-CBC/SHA-256/ECP-256, then AES-128-CBC/SHA-256/group 14.
    pub fn ikev1_defaults() -> Vec<Self> {
        vec![
            Self::new(IkeCipher::Aes256, IkeIntegrity::Sha256, DhGroup::Ecp256),
            Self::new(IkeCipher::Aes128, IkeIntegrity::Sha256, DhGroup::Group14),
        ]
    }
}

/// `IKEEXT_POLICY2`: main-mode policy for one keying module. Which module is decided by the
/// provider context that carries it ([`super::ProviderContextPolicy::MainMode`]), so
/// validation takes the module as a parameter.
///
/// ```json
/// { "authentication_methods": [{ "type": "preshared_key", "key": "s3cret" }],
///   "ike_proposals": [{ "cipher": "aes_256", "integrity": "sha_256",
///                       "max_lifetime_seconds": 28800, "dh_group": "ecp_256" }] }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MainModePolicy {
    /// `softExpirationTime`: documented as unused; must be 0.
    #[serde(default)]
    pub soft_expiration_time: u32,
    /// `authenticationMethods`, tried in order.
    pub authentication_methods: Vec<AuthenticationMethod>,
    /// `initiatorImpersonationType` (AuthIP only).
    #[serde(default)]
    pub initiator_impersonation_type: ImpersonationType,
    /// `ikeProposals`, in order of preference.
    pub ike_proposals: Vec<MainModeProposal>,
    /// `IKEEXT_POLICY_FLAG_*` bits.
    #[serde(default)]
    pub flags: u32,
    /// `maxDynamicFilters`: cap on responder-added dynamic QM filters per remote address
    /// and transport layer; 0 disables them.
    #[serde(default)]
    pub max_dynamic_filters: u32,
    /// `retransmitDurationSecs`: how long to retransmit before giving up; 0 leaves it to
    /// the keying module.
    #[serde(default)]
    pub retransmit_duration_secs: u32,
}

impl MainModePolicy {
    /// A policy with the given methods and proposals and every other field at its default.
    pub fn new(
        methods: impl Into<Vec<AuthenticationMethod>>,
        proposals: impl Into<Vec<MainModeProposal>>,
    ) -> Self {
        Self {
            soft_expiration_time: 0,
            authentication_methods: methods.into(),
            initiator_impersonation_type: ImpersonationType::None,
            ike_proposals: proposals.into(),
            flags: 0,
            max_dynamic_filters: 0,
            retransmit_duration_secs: 0,
        }
    }

    /// IKEv2 with a pre-shared key and [`MainModeProposal::ikev2_defaults`].
    pub fn ikev2_default_psk(key: impl Into<SecretBytes>) -> Self {
        Self::new(
            [AuthenticationMethod::preshared_key(key)],
            MainModeProposal::ikev2_defaults(),
        )
    }

    /// IKEv2 with RSA certificates: peers must chain to one of the PEM `roots`; we present
    /// `local_certificate` signed with `local_key`.
    pub fn ikev2_default_certificate(
        roots: impl IntoIterator<Item = PathBuf>,
        local_certificate: PathBuf,
        local_key: PathBuf,
    ) -> Self {
        Self::new(
            [AuthenticationMethod::certificate(
                roots,
                local_certificate,
                local_key,
            )],
            MainModeProposal::ikev2_defaults(),
        )
    }

    /// IKEv1 with a pre-shared key and [`MainModeProposal::ikev1_defaults`].
    pub fn ike_default_psk(key: impl Into<SecretBytes>) -> Self {
        Self::new(
            [AuthenticationMethod::preshared_key(key)],
            MainModeProposal::ikev1_defaults(),
        )
    }

    /// AuthIP with Kerberos machine authentication: the main mode of the domain-isolation
    /// sample (spec §4.5).
    pub fn authip_kerberos() -> Self {
        Self::new(
            [AuthenticationMethod::kerberos()],
            MainModeProposal::ikev1_defaults(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::DhGroup;
    use crate::policy::PfsGroup;

    #[test]
    fn ecp_521_is_iana_21_named_like_the_other_ecp_groups() -> Result<(), serde_json::Error> {
        assert_eq!(DhGroup::Ecp521.iana_id(), 21);
        assert_eq!(serde_json::to_string(&DhGroup::Ecp521)?, r#""ecp_521""#);
        assert_eq!(serde_json::to_string(&PfsGroup::Ecp521)?, r#""ecp_521""#);
        for name in [r#""ecp_521""#, r#""group_21""#] {
            assert_eq!(serde_json::from_str::<DhGroup>(name)?, DhGroup::Ecp521);
            assert_eq!(serde_json::from_str::<PfsGroup>(name)?, PfsGroup::Ecp521);
        }
        assert_eq!(
            PfsGroup::Ecp521.resolve(DhGroup::Curve25519),
            Some(DhGroup::Ecp521)
        );
        assert_eq!(PfsGroup::Mm.resolve(DhGroup::Ecp521), Some(DhGroup::Ecp521));
        Ok(())
    }
}
