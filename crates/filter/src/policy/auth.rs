//! `IKEEXT_AUTHENTICATION_METHOD*`: how peers prove who they are in main mode (and, for
//! AuthIP, extended mode).
//!
//! Windows keeps credentials in certificate stores, CSP key containers and SSPI; on Linux
//! they are files, so every certificate, trust anchor and key is given as an absolute path.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::keying::KeyingModule;
use super::secret::SecretBytes;

/// `IKEEXT_PSK_FLAG_LOCAL_AUTH_ONLY`: the key authenticates us only (IKEv2 asymmetric auth).
pub const IKEEXT_PSK_FLAG_LOCAL_AUTH_ONLY: u32 = 0x1;
/// `IKEEXT_PSK_FLAG_REMOTE_AUTH_ONLY`: the key authenticates the peer only.
pub const IKEEXT_PSK_FLAG_REMOTE_AUTH_ONLY: u32 = 0x2;

/// `IKEEXT_EAP_FLAG_LOCAL_AUTH_ONLY`: EAP authenticates us only.
pub const IKEEXT_EAP_FLAG_LOCAL_AUTH_ONLY: u32 = 0x1;
/// `IKEEXT_EAP_FLAG_REMOTE_AUTH_ONLY`: EAP authenticates the peer only.
pub const IKEEXT_EAP_FLAG_REMOTE_AUTH_ONLY: u32 = 0x2;

/// `IKEEXT_KERB_AUTH_DISABLE_INITIATOR_TOKEN_GENERATION`.
pub const IKEEXT_KERB_AUTH_DISABLE_INITIATOR_TOKEN_GENERATION: u32 = 0x1;
/// `IKEEXT_KERB_AUTH_DONT_ACCEPT_EXPLICIT_CREDENTIALS`.
pub const IKEEXT_KERB_AUTH_DONT_ACCEPT_EXPLICIT_CREDENTIALS: u32 = 0x2;
/// `IKEEXT_KERB_AUTH_FORCE_PROXY_ON_INITIATOR` (Windows 8 and later).
pub const IKEEXT_KERB_AUTH_FORCE_PROXY_ON_INITIATOR: u32 = 0x4;

/// `IKEEXT_NTLM_V2_AUTH_DONT_ACCEPT_EXPLICIT_CREDENTIALS`.
pub const IKEEXT_NTLM_V2_AUTH_DONT_ACCEPT_EXPLICIT_CREDENTIALS: u32 = 0x1;

/// `IKEEXT_CERT_AUTH_FLAG_SSL_ONE_WAY`: one-way SSL authentication.
pub const IKEEXT_CERT_AUTH_FLAG_SSL_ONE_WAY: u32 = 0x1;
/// `IKEEXT_CERT_AUTH_FLAG_DISABLE_CRL_CHECK`.
pub const IKEEXT_CERT_AUTH_FLAG_DISABLE_CRL_CHECK: u32 = 0x2;
/// `IKEEXT_CERT_AUTH_ENABLE_CRL_CHECK_STRONG`.
pub const IKEEXT_CERT_AUTH_ENABLE_CRL_CHECK_STRONG: u32 = 0x4;
/// `IKEEXT_CERT_AUTH_DISABLE_SSL_CERT_VALIDATION`.
pub const IKEEXT_CERT_AUTH_DISABLE_SSL_CERT_VALIDATION: u32 = 0x8;
/// `IKEEXT_CERT_AUTH_ALLOW_HTTP_CERT_LOOKUP` (Windows 7 and later).
pub const IKEEXT_CERT_AUTH_ALLOW_HTTP_CERT_LOOKUP: u32 = 0x10;
/// `IKEEXT_CERT_AUTH_URL_CONTAINS_BUNDLE` (Windows 7 and later).
pub const IKEEXT_CERT_AUTH_URL_CONTAINS_BUNDLE: u32 = 0x20;

/// `IKEEXT_CERT_FLAG_ENABLE_ACCOUNT_MAPPING`.
pub const IKEEXT_CERT_FLAG_ENABLE_ACCOUNT_MAPPING: u32 = 0x1;
/// `IKEEXT_CERT_FLAG_DISABLE_REQUEST_PAYLOAD`: leave this root out of certificate requests.
pub const IKEEXT_CERT_FLAG_DISABLE_REQUEST_PAYLOAD: u32 = 0x2;
/// `IKEEXT_CERT_FLAG_USE_NAP_CERTIFICATE`.
pub const IKEEXT_CERT_FLAG_USE_NAP_CERTIFICATE: u32 = 0x4;
/// `IKEEXT_CERT_FLAG_INTERMEDIATE_CA`: the entry is an intermediate, not a root.
pub const IKEEXT_CERT_FLAG_INTERMEDIATE_CA: u32 = 0x8;
/// `IKEEXT_CERT_FLAG_IGNORE_INIT_CERT_MAP_FAILURE`.
pub const IKEEXT_CERT_FLAG_IGNORE_INIT_CERT_MAP_FAILURE: u32 = 0x10;
/// `IKEEXT_CERT_FLAG_PREFER_NAP_CERTIFICATE_OUTBOUND`.
pub const IKEEXT_CERT_FLAG_PREFER_NAP_CERTIFICATE_OUTBOUND: u32 = 0x20;
/// `IKEEXT_CERT_FLAG_SELECT_NAP_CERTIFICATE` (Windows 8 and later).
pub const IKEEXT_CERT_FLAG_SELECT_NAP_CERTIFICATE: u32 = 0x40;
/// `IKEEXT_CERT_FLAG_VERIFY_NAP_CERTIFICATE` (Windows 8 and later).
pub const IKEEXT_CERT_FLAG_VERIFY_NAP_CERTIFICATE: u32 = 0x80;
/// `IKEEXT_CERT_FLAG_FOLLOW_RENEWAL_CERTIFICATE` (Windows 8 and later).
pub const IKEEXT_CERT_FLAG_FOLLOW_RENEWAL_CERTIFICATE: u32 = 0x100;

/// `IKEEXT_AUTHENTICATION_METHOD*`, tagged by `type` (the WFP constant without its
/// `IKEEXT_` prefix, lower-cased):
///
/// ```json
/// { "type": "preshared_key", "key": "correct horse battery staple" }
/// ```
///
/// Which keying module may use which method follows Microsoft's enum documentation, except
/// that pre-shared keys are also allowed for IKEv2 (as WFP does since Windows 7); see
/// [`AuthenticationMethod::is_allowed_for`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuthenticationMethod {
    /// `IKEEXT_PRESHARED_KEY` (IKE, IKEv2).
    PresharedKey(PresharedKeyAuthentication),
    /// `IKEEXT_CERTIFICATE`: RSA certificates (IKE, IKEv2).
    Certificate(CertificateAuthentication),
    /// `IKEEXT_KERBEROS` (all modules; GSS-API on Linux).
    Kerberos(KerberosAuthentication),
    /// `IKEEXT_ANONYMOUS` (AuthIP): no proof of identity, e.g. to allow a second method.
    Anonymous,
    /// `IKEEXT_SSL`: TLS inside GSS-API (AuthIP).
    Ssl(CertificateAuthentication),
    /// `IKEEXT_NTLM_V2` (AuthIP).
    NtlmV2(NtlmV2Authentication),
    /// `IKEEXT_IPV6_CGA`: cryptographically generated addresses, RFC 3972 (IKE).
    Ipv6Cga(CgaAuthentication),
    /// `IKEEXT_CERTIFICATE_ECDSA_P256` (IKE, IKEv2).
    CertificateEcdsaP256(CertificateAuthentication),
    /// `IKEEXT_CERTIFICATE_ECDSA_P384` (IKE, IKEv2).
    CertificateEcdsaP384(CertificateAuthentication),
    /// `IKEEXT_SSL_ECDSA_P256` (AuthIP).
    SslEcdsaP256(CertificateAuthentication),
    /// `IKEEXT_SSL_ECDSA_P384` (AuthIP).
    SslEcdsaP384(CertificateAuthentication),
    /// `IKEEXT_EAP` (IKEv2).
    Eap(EapAuthentication),
}

impl AuthenticationMethod {
    /// A pre-shared key method with no flags.
    pub fn preshared_key(key: impl Into<SecretBytes>) -> Self {
        Self::PresharedKey(PresharedKeyAuthentication {
            key: key.into(),
            flags: 0,
        })
    }

    /// An RSA certificate method trusting exactly the PEM roots at `roots`, presenting the
    /// certificate chain and key at the given paths.
    pub fn certificate(
        roots: impl IntoIterator<Item = PathBuf>,
        local_certificate: PathBuf,
        local_key: PathBuf,
    ) -> Self {
        Self::Certificate(CertificateAuthentication {
            inbound_roots: CertRootConfig::explicit(roots),
            outbound_roots: CertRootConfig::Unspecified,
            local_certificate: Some(local_certificate),
            local_key: Some(local_key),
            flags: 0,
        })
    }

    /// Kerberos with no flags and no proxy.
    pub fn kerberos() -> Self {
        Self::Kerberos(KerberosAuthentication::default())
    }

    /// WFP-style name of the method type (`PRESHARED_KEY`, `CERTIFICATE_ECDSA_P256`, …).
    pub const fn name(&self) -> &'static str {
        match self {
            Self::PresharedKey(_) => "PRESHARED_KEY",
            Self::Certificate(_) => "CERTIFICATE",
            Self::Kerberos(_) => "KERBEROS",
            Self::Anonymous => "ANONYMOUS",
            Self::Ssl(_) => "SSL",
            Self::NtlmV2(_) => "NTLM_V2",
            Self::Ipv6Cga(_) => "IPV6_CGA",
            Self::CertificateEcdsaP256(_) => "CERTIFICATE_ECDSA_P256",
            Self::CertificateEcdsaP384(_) => "CERTIFICATE_ECDSA_P384",
            Self::SslEcdsaP256(_) => "SSL_ECDSA_P256",
            Self::SslEcdsaP384(_) => "SSL_ECDSA_P384",
            Self::Eap(_) => "EAP",
        }
    }

    /// Whether `module` can negotiate this method.
    ///
    /// Microsoft documents PRESHARED_KEY as IKE-only, but WFP added IKEv2 pre-shared keys
    /// (with the LOCAL/REMOTE_AUTH_ONLY flags) in Windows 7, and Palisade's own IKEv2 needs
    /// them; everything else follows the `IKEEXT_AUTHENTICATION_METHOD_TYPE` page.
    pub const fn is_allowed_for(&self, module: KeyingModule) -> bool {
        use KeyingModule::{Authip, Ike, Ikev2};
        match self {
            Self::PresharedKey(_)
            | Self::Certificate(_)
            | Self::CertificateEcdsaP256(_)
            | Self::CertificateEcdsaP384(_) => matches!(module, Ike | Ikev2),
            Self::Kerberos(_) => true,
            Self::Anonymous
            | Self::Ssl(_)
            | Self::SslEcdsaP256(_)
            | Self::SslEcdsaP384(_)
            | Self::NtlmV2(_) => matches!(module, Authip),
            Self::Ipv6Cga(_) => matches!(module, Ike),
            Self::Eap(_) => matches!(module, Ikev2),
        }
    }
}

/// `IKEEXT_PRESHARED_KEY_AUTHENTICATION1`. `Debug` never shows the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresharedKeyAuthentication {
    /// `presharedKey`: a string, or `{ hex = "…" }` for binary keys.
    pub key: SecretBytes,
    /// `IKEEXT_PSK_FLAG_*` bits (IKEv2 only).
    #[serde(default)]
    pub flags: u32,
}

/// `IKEEXT_CERTIFICATE_AUTHENTICATION*`, for the certificate and SSL methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateAuthentication {
    /// `inbound*Config`: trust anchors that the peer's certificate must chain to.
    pub inbound_roots: CertRootConfig,
    /// `outbound*Config`: the roots our own certificate should chain to (sent as
    /// certificate requests). Defaults to `unspecified`.
    #[serde(default)]
    pub outbound_roots: CertRootConfig,
    /// Our certificate chain as a PEM file; Windows picks it from the machine store instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_certificate: Option<PathBuf>,
    /// The private key for `local_certificate`, as a PEM file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_key: Option<PathBuf>,
    /// `IKEEXT_CERT_AUTH_*` bits.
    #[serde(default)]
    pub flags: u32,
}

/// `IKEEXT_CERT_CONFIG_TYPE` with its data, tagged by `store`:
///
/// ```json
/// { "store": "explicit_trust_list", "roots": [{ "path": "/etc/palisade/ca.pem" }] }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "store", rename_all = "snake_case", deny_unknown_fields)]
pub enum CertRootConfig {
    /// `IKEEXT_CERT_CONFIG_EXPLICIT_TRUST_LIST`: exactly these anchors.
    ExplicitTrustList {
        /// The anchors, each a PEM file.
        roots: Vec<CertRoot>,
    },
    /// `IKEEXT_CERT_CONFIG_ENTERPRISE_STORE`: an administrator-kept PEM bundle or directory
    /// of organisation CAs (Windows' NTAuth store).
    EnterpriseStore {
        /// The bundle or directory.
        path: PathBuf,
    },
    /// `IKEEXT_CERT_CONFIG_TRUSTED_ROOT_STORE`: the system trust store.
    TrustedRootStore {
        /// A PEM bundle or hashed directory; absent means the distribution's default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<PathBuf>,
    },
    /// `IKEEXT_CERT_CONFIG_UNSPECIFIED`: no constraint in this direction.
    #[default]
    Unspecified,
}

impl CertRootConfig {
    /// An explicit trust list of PEM files, with no per-root flags.
    pub fn explicit(paths: impl IntoIterator<Item = PathBuf>) -> Self {
        Self::ExplicitTrustList {
            roots: paths
                .into_iter()
                .map(|path| CertRoot { path, flags: 0 })
                .collect(),
        }
    }
}

/// `IKEEXT_CERT_ROOT_CONFIG0`, with the certificate blob replaced by its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertRoot {
    /// PEM file holding the anchor (or intermediate, with `IKEEXT_CERT_FLAG_INTERMEDIATE_CA`).
    pub path: PathBuf,
    /// `IKEEXT_CERT_FLAG_*` bits.
    #[serde(default)]
    pub flags: u32,
}

/// `IKEEXT_KERBEROS_AUTHENTICATION1`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KerberosAuthentication {
    /// `IKEEXT_KERB_AUTH_*` bits.
    pub flags: u32,
    /// `proxyServer`: a Kerberos proxy (KKDCP) to use as initiator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_server: Option<String>,
}

/// `IKEEXT_NTLM_V2_AUTHENTICATION0`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NtlmV2Authentication {
    /// `IKEEXT_NTLM_V2_AUTH_*` bits.
    pub flags: u32,
}

/// `IKEEXT_EAP_AUTHENTICATION0`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EapAuthentication {
    /// `IKEEXT_EAP_FLAG_*` bits.
    pub flags: u32,
}

/// `IKEEXT_IPV6_CGA_AUTHENTICATION0`, with the CSP key container replaced by a key file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgaAuthentication {
    /// The private key that generated the address, as a PEM file.
    pub key: PathBuf,
    /// `cgaModifier`: the 16-octet modifier of the CGA parameters.
    pub modifier: [u8; 16],
    /// `cgaCollisionCount`: 0, 1 or 2 (RFC 3972 §3).
    #[serde(default)]
    pub collision_count: u8,
}

/// `IKEEXT_AUTHENTICATION_IMPERSONATION_TYPE` (AuthIP). Serde: `none`, `socket_principal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImpersonationType {
    /// `IKEEXT_IMPERSONATION_NONE`.
    #[default]
    None,
    /// `IKEEXT_IMPERSONATION_SOCKET_PRINCIPAL`: authenticate as the socket's user.
    SocketPrincipal,
}
