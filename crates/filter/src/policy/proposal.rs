//! `IPSEC_PROPOSAL0` and its SA transforms: what quick mode offers for the IPsec SAs.

use serde::{Deserialize, Serialize};

use super::main_mode::DhGroup;

/// Quick-mode SA lifetime used by the constructors: 1 hour.
pub const DEFAULT_QM_LIFETIME_SECONDS: u32 = 3600;
/// Quick-mode SA volume lifetime used by the constructors: 100 000 KiB.
pub const DEFAULT_QM_LIFETIME_KILOBYTES: u32 = 100_000;

/// `IPSEC_SA_LIFETIME0`.
///
/// ```json
/// { "seconds": 3600, "kilobytes": 100000, "packets": 0 }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaLifetime {
    /// `lifetimeSeconds`: must not be 0.
    pub seconds: u32,
    /// `lifetimeKilobytes`; 0 = no volume limit.
    #[serde(default)]
    pub kilobytes: u32,
    /// `lifetimePackets`; 0 = no packet limit.
    #[serde(default)]
    pub packets: u32,
}

impl Default for SaLifetime {
    fn default() -> Self {
        Self {
            seconds: DEFAULT_QM_LIFETIME_SECONDS,
            kilobytes: DEFAULT_QM_LIFETIME_KILOBYTES,
            packets: 0,
        }
    }
}

/// `IPSEC_AUTH_TRANSFORM_ID0` (type and config folded into one value), plus the SHA-2
/// HMACs Palisade supports beyond WFP's SHA-256.
///
/// Serde names are WFP's `IPSEC_AUTH_TRANSFORM_ID_*` suffixes, lower-cased. WFP calls the
/// GMAC transforms `GCM_AES_*`; here they are `gmac_aes_*` so they cannot be confused with
/// the GCM ciphers, and `gcm_aes_*` is accepted as an alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthTransform {
    /// `HMAC_MD5_96` (RFC 2403; weak, kept for WFP fidelity).
    #[serde(rename = "hmac_md5_96")]
    HmacMd5_96,
    /// `HMAC_SHA_1_96` (RFC 2404).
    #[serde(rename = "hmac_sha_1_96")]
    HmacSha1_96,
    /// `HMAC_SHA_256_128` (RFC 4868).
    #[serde(rename = "hmac_sha_256_128")]
    HmacSha256_128,
    /// HMAC-SHA-384-192 (RFC 4868); not in WFP.
    #[serde(rename = "hmac_sha_384_192")]
    HmacSha384_192,
    /// HMAC-SHA-512-256 (RFC 4868); not in WFP.
    #[serde(rename = "hmac_sha_512_256")]
    HmacSha512_256,
    /// WFP `GCM_AES_128`: AES-GMAC (RFC 4543), integrity without confidentiality.
    #[serde(rename = "gmac_aes_128", alias = "gcm_aes_128")]
    GmacAes128,
    /// WFP `GCM_AES_192`: AES-GMAC.
    #[serde(rename = "gmac_aes_192", alias = "gcm_aes_192")]
    GmacAes192,
    /// WFP `GCM_AES_256`: AES-GMAC.
    #[serde(rename = "gmac_aes_256", alias = "gcm_aes_256")]
    GmacAes256,
}

impl AuthTransform {
    /// WFP-style name, with Palisade's names for the transforms WFP lacks.
    pub const fn name(self) -> &'static str {
        match self {
            Self::HmacMd5_96 => "HMAC_MD5_96",
            Self::HmacSha1_96 => "HMAC_SHA_1_96",
            Self::HmacSha256_128 => "HMAC_SHA_256_128",
            Self::HmacSha384_192 => "HMAC_SHA_384_192",
            Self::HmacSha512_256 => "HMAC_SHA_512_256",
            Self::GmacAes128 => "GMAC_AES_128",
            Self::GmacAes192 => "GMAC_AES_192",
            Self::GmacAes256 => "GMAC_AES_256",
        }
    }

    /// Whether this is one of the AES-GMAC transforms.
    pub const fn is_gmac(self) -> bool {
        matches!(self, Self::GmacAes128 | Self::GmacAes192 | Self::GmacAes256)
    }
}

/// `IPSEC_CIPHER_TRANSFORM_ID0`, plus ChaCha20-Poly1305 and NULL.
///
/// Serde names are WFP's `IPSEC_CIPHER_TRANSFORM_ID_*` suffixes, lower-cased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CipherTransform {
    /// `CBC_DES` (weak; kept for WFP fidelity).
    #[serde(rename = "cbc_des")]
    CbcDes,
    /// `CBC_3DES`.
    #[serde(rename = "cbc_3des")]
    Cbc3Des,
    /// `CBC_AES_128` (RFC 3602).
    #[serde(rename = "cbc_aes_128")]
    CbcAes128,
    /// `CBC_AES_192`.
    #[serde(rename = "cbc_aes_192")]
    CbcAes192,
    /// `CBC_AES_256`.
    #[serde(rename = "cbc_aes_256")]
    CbcAes256,
    /// `GCM_AES_128`: AES-GCM with a 16-octet ICV (RFC 4106).
    #[serde(rename = "gcm_aes_128")]
    GcmAes128,
    /// `GCM_AES_192`: AES-GCM with a 16-octet ICV.
    #[serde(rename = "gcm_aes_192")]
    GcmAes192,
    /// `GCM_AES_256`: AES-GCM with a 16-octet ICV.
    #[serde(rename = "gcm_aes_256")]
    GcmAes256,
    /// ChaCha20-Poly1305 (RFC 7634); not in WFP.
    #[serde(rename = "chacha20_poly1305")]
    ChaCha20Poly1305,
    /// ENCR_NULL (RFC 2410): integrity only; needs an auth transform beside it.
    #[serde(rename = "null")]
    Null,
}

impl CipherTransform {
    /// WFP-style name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::CbcDes => "CBC_DES",
            Self::Cbc3Des => "CBC_3DES",
            Self::CbcAes128 => "CBC_AES_128",
            Self::CbcAes192 => "CBC_AES_192",
            Self::CbcAes256 => "CBC_AES_256",
            Self::GcmAes128 => "GCM_AES_128",
            Self::GcmAes192 => "GCM_AES_192",
            Self::GcmAes256 => "GCM_AES_256",
            Self::ChaCha20Poly1305 => "CHACHA20_POLY1305",
            Self::Null => "NULL",
        }
    }

    /// Whether the cipher carries its own integrity check.
    pub const fn is_aead(self) -> bool {
        matches!(
            self,
            Self::GcmAes128 | Self::GcmAes192 | Self::GcmAes256 | Self::ChaCha20Poly1305
        )
    }

    /// The GMAC transform WFP pairs with this GCM cipher in `ESP_AUTH_AND_CIPHER`.
    pub const fn matching_gmac(self) -> Option<AuthTransform> {
        match self {
            Self::GcmAes128 => Some(AuthTransform::GmacAes128),
            Self::GcmAes192 => Some(AuthTransform::GmacAes192),
            Self::GcmAes256 => Some(AuthTransform::GmacAes256),
            _ => None,
        }
    }
}

/// `IPSEC_SA_TRANSFORM0`: one protocol of the SA bundle with its algorithms.
///
/// Externally tagged by the `IPSEC_TRANSFORM_*` suffix, so each transform is a one-key
/// table: `{ "esp_cipher": "gcm_aes_128" }`,
/// `{ "esp_auth_and_cipher": { "auth": "hmac_sha_256_128", "cipher": "cbc_aes_128" } }`.
/// WFP's optional crypto-module GUID has no Linux counterpart and is left out.
///
/// AEAD ciphers: Palisade's canonical form is `esp_cipher` alone (the IKEv2 shape, RFC
/// 4106/7634). WFP's own spelling of GCM, `esp_auth_and_cipher` with the GMAC of the same
/// key size, is accepted and means the same ([`SaTransform::canonical`]); any other auth
/// beside an AEAD cipher is rejected by validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SaTransform {
    /// `IPSEC_TRANSFORM_AH`.
    Ah(AuthTransform),
    /// `IPSEC_TRANSFORM_ESP_AUTH`: ESP with integrity only.
    EspAuth(AuthTransform),
    /// `IPSEC_TRANSFORM_ESP_CIPHER`: ESP with a cipher only (an AEAD, or CBC without
    /// integrity as WFP allows).
    EspCipher(CipherTransform),
    /// `IPSEC_TRANSFORM_ESP_AUTH_AND_CIPHER`.
    EspAuthAndCipher {
        /// Integrity transform.
        auth: AuthTransform,
        /// Cipher transform.
        cipher: CipherTransform,
    },
    /// `IPSEC_TRANSFORM_ESP_AUTH_FW`: ESP integrity for firewall traversal.
    EspAuthFw(AuthTransform),
}

impl SaTransform {
    /// Whether this is an AH transform (the rest are ESP).
    pub const fn is_ah(self) -> bool {
        matches!(self, Self::Ah(_))
    }

    /// WFP-style name of the transform type (`AH`, `ESP_AUTH_AND_CIPHER`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ah(_) => "AH",
            Self::EspAuth(_) => "ESP_AUTH",
            Self::EspCipher(_) => "ESP_CIPHER",
            Self::EspAuthAndCipher { .. } => "ESP_AUTH_AND_CIPHER",
            Self::EspAuthFw(_) => "ESP_AUTH_FW",
        }
    }

    /// Rewrites WFP's GCM spelling (GCM cipher plus matching GMAC) as the cipher alone, so
    /// code that builds IKEv2 proposals or SAs sees one form; other transforms are returned
    /// unchanged.
    pub fn canonical(self) -> Self {
        match self {
            Self::EspAuthAndCipher { auth, cipher } if cipher.matching_gmac() == Some(auth) => {
                Self::EspCipher(cipher)
            }
            other => other,
        }
    }
}

/// `IPSEC_PFS_GROUP`: the DH group of a quick-mode exchange. Serde names as [`DhGroup`],
/// plus `mm` (`IPSEC_PFS_MM`: reuse the main-mode group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum PfsGroup {
    /// `IPSEC_PFS_NONE`: no perfect forward secrecy.
    #[default]
    #[serde(rename = "none")]
    None,
    /// `IPSEC_PFS_1`.
    #[serde(rename = "group_1")]
    Group1,
    /// `IPSEC_PFS_2`.
    #[serde(rename = "group_2")]
    Group2,
    /// `IPSEC_PFS_14` (= `_2048`).
    #[serde(rename = "group_14", alias = "group_2048")]
    Group14,
    /// MODP 3072 (IANA 15); not in WFP.
    #[serde(rename = "group_15")]
    Group15,
    /// MODP 4096 (IANA 16); not in WFP.
    #[serde(rename = "group_16")]
    Group16,
    /// `IPSEC_PFS_ECP_256`.
    #[serde(rename = "ecp_256", alias = "group_19")]
    Ecp256,
    /// `IPSEC_PFS_ECP_384`.
    #[serde(rename = "ecp_384", alias = "group_20")]
    Ecp384,
    /// ECP-521 (IANA 21); not in WFP.
    #[serde(rename = "ecp_521", alias = "group_21")]
    Ecp521,
    /// `IPSEC_PFS_24`.
    #[serde(rename = "group_24")]
    Group24,
    /// Curve25519 (IANA 31); not in WFP.
    #[serde(rename = "curve25519", alias = "group_31")]
    Curve25519,
    /// `IPSEC_PFS_MM`: the group the main-mode SA used.
    #[serde(rename = "mm")]
    Mm,
}

impl PfsGroup {
    /// The DH group to run, given the main-mode SA's group; `None` means no PFS exchange.
    pub const fn resolve(self, main_mode: DhGroup) -> Option<DhGroup> {
        let group = match self {
            Self::None => return None,
            Self::Group1 => DhGroup::Group1,
            Self::Group2 => DhGroup::Group2,
            Self::Group14 => DhGroup::Group14,
            Self::Group15 => DhGroup::Group15,
            Self::Group16 => DhGroup::Group16,
            Self::Ecp256 => DhGroup::Ecp256,
            Self::Ecp384 => DhGroup::Ecp384,
            Self::Ecp521 => DhGroup::Ecp521,
            Self::Group24 => DhGroup::Group24,
            Self::Curve25519 => DhGroup::Curve25519,
            Self::Mm => main_mode,
        };
        match group {
            DhGroup::None => None,
            g => Some(g),
        }
    }
}

/// `IPSEC_PROPOSAL0`.
///
/// ```json
/// { "lifetime": { "seconds": 3600, "kilobytes": 100000, "packets": 0 },
///   "sa_transforms": [{ "esp_cipher": "gcm_aes_128" }], "pfs_group": "none" }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpsecProposal {
    /// `lifetime`.
    pub lifetime: SaLifetime,
    /// `saTransforms`: one ESP or AH transform, or AH plus one ESP transform.
    pub sa_transforms: Vec<SaTransform>,
    /// `pfsGroup`.
    #[serde(default)]
    pub pfs_group: PfsGroup,
}

impl IpsecProposal {
    /// A proposal with one transform, the default lifetime and no PFS.
    pub fn new(transform: SaTransform) -> Self {
        Self {
            lifetime: SaLifetime::default(),
            sa_transforms: vec![transform],
            pfs_group: PfsGroup::None,
        }
    }

    /// The same proposal with `pfs_group` set.
    pub fn with_pfs(mut self, pfs_group: PfsGroup) -> Self {
        self.pfs_group = pfs_group;
        self
    }

    /// ESP with AES-128-GCM (16-octet ICV).
    pub fn esp_aes128_gcm() -> Self {
        Self::new(SaTransform::EspCipher(CipherTransform::GcmAes128))
    }

    /// ESP with AES-256-GCM (16-octet ICV).
    pub fn esp_aes256_gcm() -> Self {
        Self::new(SaTransform::EspCipher(CipherTransform::GcmAes256))
    }

    /// ESP with ChaCha20-Poly1305.
    pub fn esp_chacha20_poly1305() -> Self {
        Self::new(SaTransform::EspCipher(CipherTransform::ChaCha20Poly1305))
    }

    /// ESP with AES-128-CBC and HMAC-SHA-256-128.
    pub fn esp_aes128_cbc_sha256() -> Self {
        Self::new(SaTransform::EspAuthAndCipher {
            auth: AuthTransform::HmacSha256_128,
            cipher: CipherTransform::CbcAes128,
        })
    }

    /// ESP with integrity only, HMAC-SHA-256-128 (traffic stays readable, e.g. to IDS).
    pub fn esp_auth_sha256() -> Self {
        Self::new(SaTransform::EspAuth(AuthTransform::HmacSha256_128))
    }

    /// AH with HMAC-SHA-1-96: the quick mode of the domain-isolation sample (spec §4.5).
    pub fn ah_sha1() -> Self {
        Self::new(SaTransform::Ah(AuthTransform::HmacSha1_96))
    }

    /// AH with HMAC-SHA-256-128.
    pub fn ah_sha256() -> Self {
        Self::new(SaTransform::Ah(AuthTransform::HmacSha256_128))
    }
}
