//! Typed provider-context policies (spec §5–§6): what a provider context carries and what
//! the keying modules read when a filter at `IKEEXT`, `IPSEC` or `IPSEC_KM_DEMUX` matches.
//!
//! | WFP structure | Type | Context types |
//! |---|---|---|
//! | `IKEEXT_POLICY2` | [`MainModePolicy`] | `IKE_MM`, `AUTHIP_MM`, `IKEV2_MM` |
//! | `IPSEC_TRANSPORT_POLICY2` | [`IpsecTransportPolicy`] | `*_QM_TRANSPORT` |
//! | `IPSEC_TUNNEL_POLICY3` | [`IpsecTunnelPolicy`] | `*_QM_TUNNEL` |
//! | `IKEEXT_EM_POLICY2` | [`ExtendedModePolicy`] | inside AuthIP QM policies |
//! | `IPSEC_KEYING_POLICY1` | [`KeyingPolicy`] | `IPSEC_KEYING` |
//!
//! [`ProviderContextPolicy`] ties each to its [`ProviderContextType`]; `validate()` on
//! every policy returns a [`PolicyError`] naming the offending field.
//!
//! # Serde conventions
//!
//! These types are what administrators write in policy files, so their serde form is
//! the interface:
//!
//! - Field names are WFP's member names in snake_case (`ikeProposals` → `ike_proposals`).
//! - Enum values are WFP's constant names with the type prefix removed, lower-cased
//!   (`IKEEXT_CIPHER_AES_128` → `aes_128`, `IPSEC_PFS_MM` → `mm`). Values WFP lacks but
//!   Palisade's IKEv2 supports follow the same pattern with IANA names (`curve25519`,
//!   `chacha20_poly1305`, `hmac_sha_512_256`).
//! - Enums with data are tagged by a `type` field (authentication methods, provider
//!   contexts) or, for SA transforms, are one-key tables (`{ esp_cipher = "gcm_aes_128" }`).
//! - Flags stay `u32` bit sets with the WFP constants exported here (TOML takes `0x10`).
//! - Structures reject unknown fields, so a misspelt key is an error, not a silent default;
//!   fields with a natural WFP default (flags, counts, timeouts) may be omitted.
//! - Files (certificates, trust anchors, keys) are absolute paths; nothing is read here.

mod auth;
mod context;
mod extended_mode;
mod keying;
mod main_mode;
mod proposal;
mod quick_mode;
mod secret;
mod validate;

pub use auth::{
    AuthenticationMethod, CertRoot, CertRootConfig, CertificateAuthentication, CgaAuthentication,
    EapAuthentication, IKEEXT_CERT_AUTH_ALLOW_HTTP_CERT_LOOKUP,
    IKEEXT_CERT_AUTH_DISABLE_SSL_CERT_VALIDATION, IKEEXT_CERT_AUTH_ENABLE_CRL_CHECK_STRONG,
    IKEEXT_CERT_AUTH_FLAG_DISABLE_CRL_CHECK, IKEEXT_CERT_AUTH_FLAG_SSL_ONE_WAY,
    IKEEXT_CERT_AUTH_URL_CONTAINS_BUNDLE, IKEEXT_CERT_FLAG_DISABLE_REQUEST_PAYLOAD,
    IKEEXT_CERT_FLAG_ENABLE_ACCOUNT_MAPPING, IKEEXT_CERT_FLAG_FOLLOW_RENEWAL_CERTIFICATE,
    IKEEXT_CERT_FLAG_IGNORE_INIT_CERT_MAP_FAILURE, IKEEXT_CERT_FLAG_INTERMEDIATE_CA,
    IKEEXT_CERT_FLAG_PREFER_NAP_CERTIFICATE_OUTBOUND, IKEEXT_CERT_FLAG_SELECT_NAP_CERTIFICATE,
    IKEEXT_CERT_FLAG_USE_NAP_CERTIFICATE, IKEEXT_CERT_FLAG_VERIFY_NAP_CERTIFICATE,
    IKEEXT_EAP_FLAG_LOCAL_AUTH_ONLY, IKEEXT_EAP_FLAG_REMOTE_AUTH_ONLY,
    IKEEXT_KERB_AUTH_DISABLE_INITIATOR_TOKEN_GENERATION,
    IKEEXT_KERB_AUTH_DONT_ACCEPT_EXPLICIT_CREDENTIALS, IKEEXT_KERB_AUTH_FORCE_PROXY_ON_INITIATOR,
    IKEEXT_NTLM_V2_AUTH_DONT_ACCEPT_EXPLICIT_CREDENTIALS, IKEEXT_PSK_FLAG_LOCAL_AUTH_ONLY,
    IKEEXT_PSK_FLAG_REMOTE_AUTH_ONLY, ImpersonationType, KerberosAuthentication,
    NtlmV2Authentication, PresharedKeyAuthentication,
};
pub use context::{ProviderContextPolicy, ProviderContextType};
pub use extended_mode::ExtendedModePolicy;
pub use keying::{
    FWPM_KEYING_MODULE_AUTHIP, FWPM_KEYING_MODULE_IKE, FWPM_KEYING_MODULE_IKEV2,
    IPSEC_KEYING_POLICY_FLAG_TERMINATING_MATCH, KeyingModule, KeyingPolicy,
};
pub use main_mode::{
    DEFAULT_MM_LIFETIME_SECONDS, DhGroup, IKEEXT_POLICY_FLAG_DISABLE_DIAGNOSTICS,
    IKEEXT_POLICY_FLAG_ENABLE_OPTIONAL_DH, IKEEXT_POLICY_FLAG_NO_IMPERSONATION_LUID_VERIFY,
    IKEEXT_POLICY_FLAG_NO_MACHINE_LUID_VERIFY, IkeCipher, IkeIntegrity, MainModePolicy,
    MainModeProposal,
};
pub use proposal::{
    AuthTransform, CipherTransform, DEFAULT_QM_LIFETIME_KILOBYTES, DEFAULT_QM_LIFETIME_SECONDS,
    IpsecProposal, PfsGroup, SaLifetime, SaTransform,
};
pub use quick_mode::{
    IPSEC_POLICY_FLAG_CLEAR_DF_ON_TUNNEL, IPSEC_POLICY_FLAG_DONT_NEGOTIATE_BYTE_LIFETIME,
    IPSEC_POLICY_FLAG_DONT_NEGOTIATE_SECOND_LIFETIME,
    IPSEC_POLICY_FLAG_ENABLE_SERVER_ADDR_ASSIGNMENT, IPSEC_POLICY_FLAG_ENABLE_V6_IN_V4_TUNNELING,
    IPSEC_POLICY_FLAG_KEY_MANAGER_ALLOW_DICTATE_KEY,
    IPSEC_POLICY_FLAG_KEY_MANAGER_ALLOW_NOTIFY_KEY,
    IPSEC_POLICY_FLAG_NAT_ENCAP_ALLOW_GENERAL_NAT_TRAVERSAL,
    IPSEC_POLICY_FLAG_NAT_ENCAP_ALLOW_PEER_BEHIND_NAT, IPSEC_POLICY_FLAG_ND_BOUNDARY,
    IPSEC_POLICY_FLAG_ND_SECURE, IPSEC_POLICY_FLAG_SITE_TO_SITE_TUNNEL,
    IPSEC_POLICY_FLAG_TUNNEL_ALLOW_OUTBOUND_CLEAR_CONNECTION,
    IPSEC_POLICY_FLAG_TUNNEL_BYPASS_ALREADY_SECURE_CONNECTION,
    IPSEC_POLICY_FLAG_TUNNEL_BYPASS_ICMPV6, IpsecTransportPolicy, IpsecTunnelPolicy, SaIdleTimeout,
    TrafficSelector, TrafficSelectorPolicy, TunnelEndpoints,
};
pub use secret::SecretBytes;
pub use validate::PolicyError;
