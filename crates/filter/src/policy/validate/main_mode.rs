//! Main-mode and extended-mode checks, including authentication methods.

use super::super::auth::*;
use super::super::extended_mode::ExtendedModePolicy;
use super::super::keying::KeyingModule;
use super::super::main_mode::*;
use super::{Check, PolicyError, absolute, exclusive, field, known_flags, not_available};

impl MainModePolicy {
    /// Checks the policy for use by `module` (which the carrying context type decides):
    /// `soft_expiration_time` 0, at least one method and proposal, methods, ciphers and DH
    /// groups the module can negotiate, non-zero lifetimes, AuthIP-only flags and
    /// impersonation only for AuthIP.
    pub fn validate(&self, module: KeyingModule) -> Result<(), PolicyError> {
        if self.soft_expiration_time != 0 {
            let reason = "documented as unused by WFP; must be 0";
            return Err(PolicyError::Invalid {
                path: "soft_expiration_time".into(),
                reason,
            });
        }
        auth_methods(
            &self.authentication_methods,
            module,
            "authentication_methods",
        )?;
        if self.initiator_impersonation_type != ImpersonationType::None
            && module != KeyingModule::Authip
        {
            return Err(not_available(
                "initiator_impersonation_type".into(),
                "impersonation",
                module,
            ));
        }
        if self.ike_proposals.is_empty() {
            return Err(PolicyError::Empty {
                path: "ike_proposals".into(),
            });
        }
        for (i, proposal) in self.ike_proposals.iter().enumerate() {
            mm_proposal(proposal, module, &format!("ike_proposals[{i}]"))?;
        }
        let known = IKEEXT_POLICY_FLAG_DISABLE_DIAGNOSTICS
            | IKEEXT_POLICY_FLAG_NO_MACHINE_LUID_VERIFY
            | IKEEXT_POLICY_FLAG_NO_IMPERSONATION_LUID_VERIFY
            | IKEEXT_POLICY_FLAG_ENABLE_OPTIONAL_DH;
        known_flags("flags", self.flags, known)?;
        if module != KeyingModule::Authip {
            for (bit, flag) in [
                (
                    IKEEXT_POLICY_FLAG_NO_IMPERSONATION_LUID_VERIFY,
                    "NO_IMPERSONATION_LUID_VERIFY",
                ),
                (IKEEXT_POLICY_FLAG_ENABLE_OPTIONAL_DH, "ENABLE_OPTIONAL_DH"),
            ] {
                if self.flags & bit != 0 {
                    return Err(PolicyError::FlagNotApplicable {
                        path: "flags".into(),
                        flag,
                        scope: "for AuthIP",
                    });
                }
            }
        }
        Ok(())
    }
}

fn mm_proposal(proposal: &MainModeProposal, module: KeyingModule, path: &str) -> Check {
    // IKEv1 (and AuthIP on top of it) protects its messages with a cipher plus HMAC only;
    // AEAD payload protection and Curve25519 were defined for IKEv2 alone (RFC 5282, 8031).
    if proposal.cipher.is_aead() && module != KeyingModule::Ikev2 {
        return Err(not_available(
            field(path, "cipher"),
            proposal.cipher.name(),
            module,
        ));
    }
    if proposal.max_lifetime_seconds == 0 {
        return Err(PolicyError::Zero {
            path: field(path, "max_lifetime_seconds"),
        });
    }
    match proposal.dh_group {
        // Only AuthIP can skip the DH exchange (Kerberos supplies the keying material).
        DhGroup::None if module != KeyingModule::Authip => Err(not_available(
            field(path, "dh_group"),
            "DH group NONE",
            module,
        )),
        DhGroup::Curve25519 if module != KeyingModule::Ikev2 => {
            Err(not_available(field(path, "dh_group"), "Curve25519", module))
        }
        _ => Ok(()),
    }
}

impl ExtendedModePolicy {
    /// Checks: at least one method, AuthIP methods only.
    pub fn validate(&self) -> Result<(), PolicyError> {
        em_policy(self, "")
    }
}

pub(super) fn em_policy(policy: &ExtendedModePolicy, prefix: &str) -> Check {
    auth_methods(
        &policy.authentication_methods,
        KeyingModule::Authip,
        &field(prefix, "authentication_methods"),
    )
}

fn auth_methods(methods: &[AuthenticationMethod], module: KeyingModule, path: &str) -> Check {
    if methods.is_empty() {
        return Err(PolicyError::Empty {
            path: path.to_owned(),
        });
    }
    for (i, method) in methods.iter().enumerate() {
        let path = format!("{path}[{i}]");
        if !method.is_allowed_for(module) {
            return Err(PolicyError::AuthMethodNotAllowed {
                path,
                method: method.name(),
                module,
            });
        }
        auth_method(method, module, &path)?;
    }
    Ok(())
}

fn auth_method(method: &AuthenticationMethod, module: KeyingModule, path: &str) -> Check {
    use AuthenticationMethod as M;
    match method {
        M::PresharedKey(psk) => {
            if psk.key.is_empty() {
                return Err(PolicyError::Empty {
                    path: field(path, "key"),
                });
            }
            one_way_flags(&field(path, "flags"), psk.flags, module)
        }
        M::Certificate(cert)
        | M::CertificateEcdsaP256(cert)
        | M::CertificateEcdsaP384(cert)
        | M::Ssl(cert)
        | M::SslEcdsaP256(cert)
        | M::SslEcdsaP384(cert) => certificate(cert, path),
        M::Kerberos(kerberos) => {
            if kerberos.proxy_server.as_deref() == Some("") {
                return Err(PolicyError::Empty {
                    path: field(path, "proxy_server"),
                });
            }
            let known = IKEEXT_KERB_AUTH_DISABLE_INITIATOR_TOKEN_GENERATION
                | IKEEXT_KERB_AUTH_DONT_ACCEPT_EXPLICIT_CREDENTIALS
                | IKEEXT_KERB_AUTH_FORCE_PROXY_ON_INITIATOR;
            known_flags(&field(path, "flags"), kerberos.flags, known)
        }
        M::NtlmV2(ntlm) => known_flags(
            &field(path, "flags"),
            ntlm.flags,
            IKEEXT_NTLM_V2_AUTH_DONT_ACCEPT_EXPLICIT_CREDENTIALS,
        ),
        M::Ipv6Cga(cga) => {
            absolute(field(path, "key"), &cga.key)?;
            if cga.collision_count > 2 {
                let reason = "RFC 3972 allows only 0, 1 or 2";
                return Err(PolicyError::Invalid {
                    path: field(path, "collision_count"),
                    reason,
                });
            }
            Ok(())
        }
        M::Eap(eap) => one_way_flags(&field(path, "flags"), eap.flags, module),
        M::Anonymous => Ok(()),
    }
}

/// The PSK and EAP flags: LOCAL_AUTH_ONLY (0x1) and REMOTE_AUTH_ONLY (0x2) make a method
/// one-directional, which only IKEv2's asymmetric authentication can express.
fn one_way_flags(path: &str, flags: u32, module: KeyingModule) -> Check {
    known_flags(
        path,
        flags,
        IKEEXT_PSK_FLAG_LOCAL_AUTH_ONLY | IKEEXT_PSK_FLAG_REMOTE_AUTH_ONLY,
    )?;
    exclusive(
        path,
        flags,
        (IKEEXT_PSK_FLAG_LOCAL_AUTH_ONLY, "LOCAL_AUTH_ONLY"),
        (IKEEXT_PSK_FLAG_REMOTE_AUTH_ONLY, "REMOTE_AUTH_ONLY"),
    )?;
    if flags != 0 && module != KeyingModule::Ikev2 {
        let flag = if flags & IKEEXT_PSK_FLAG_LOCAL_AUTH_ONLY != 0 {
            "LOCAL_AUTH_ONLY"
        } else {
            "REMOTE_AUTH_ONLY"
        };
        return Err(PolicyError::FlagNotApplicable {
            path: path.to_owned(),
            flag,
            scope: "for IKEv2",
        });
    }
    Ok(())
}

fn certificate(cert: &CertificateAuthentication, path: &str) -> Check {
    let inbound = field(path, "inbound_roots");
    if cert.inbound_roots == CertRootConfig::Unspecified {
        // Without anchors any self-signed certificate would authenticate; the system store
        // must be asked for explicitly.
        let reason = "peers need trust anchors; use trusted_root_store for the system store";
        return Err(PolicyError::Invalid {
            path: inbound,
            reason,
        });
    }
    cert_roots(&cert.inbound_roots, &inbound)?;
    cert_roots(&cert.outbound_roots, &field(path, "outbound_roots"))?;
    match (&cert.local_certificate, &cert.local_key) {
        (Some(certificate), Some(key)) => {
            absolute(field(path, "local_certificate"), certificate)?;
            absolute(field(path, "local_key"), key)?;
        }
        (Some(_), None) => {
            let reason = "local_certificate needs its private key";
            return Err(PolicyError::Invalid {
                path: field(path, "local_key"),
                reason,
            });
        }
        (None, Some(_)) => {
            let reason = "local_key needs its certificate";
            return Err(PolicyError::Invalid {
                path: field(path, "local_certificate"),
                reason,
            });
        }
        (None, None) => {}
    }
    let flags_path = field(path, "flags");
    let known = IKEEXT_CERT_AUTH_FLAG_SSL_ONE_WAY
        | IKEEXT_CERT_AUTH_FLAG_DISABLE_CRL_CHECK
        | IKEEXT_CERT_AUTH_ENABLE_CRL_CHECK_STRONG
        | IKEEXT_CERT_AUTH_DISABLE_SSL_CERT_VALIDATION
        | IKEEXT_CERT_AUTH_ALLOW_HTTP_CERT_LOOKUP
        | IKEEXT_CERT_AUTH_URL_CONTAINS_BUNDLE;
    known_flags(&flags_path, cert.flags, known)?;
    exclusive(
        &flags_path,
        cert.flags,
        (IKEEXT_CERT_AUTH_FLAG_DISABLE_CRL_CHECK, "DISABLE_CRL_CHECK"),
        (
            IKEEXT_CERT_AUTH_ENABLE_CRL_CHECK_STRONG,
            "ENABLE_CRL_CHECK_STRONG",
        ),
    )
}

const CERT_ROOT_KNOWN_FLAGS: u32 = IKEEXT_CERT_FLAG_ENABLE_ACCOUNT_MAPPING
    | IKEEXT_CERT_FLAG_DISABLE_REQUEST_PAYLOAD
    | IKEEXT_CERT_FLAG_USE_NAP_CERTIFICATE
    | IKEEXT_CERT_FLAG_INTERMEDIATE_CA
    | IKEEXT_CERT_FLAG_IGNORE_INIT_CERT_MAP_FAILURE
    | IKEEXT_CERT_FLAG_PREFER_NAP_CERTIFICATE_OUTBOUND
    | IKEEXT_CERT_FLAG_SELECT_NAP_CERTIFICATE
    | IKEEXT_CERT_FLAG_VERIFY_NAP_CERTIFICATE
    | IKEEXT_CERT_FLAG_FOLLOW_RENEWAL_CERTIFICATE;

fn cert_roots(config: &CertRootConfig, path: &str) -> Check {
    match config {
        CertRootConfig::ExplicitTrustList { roots } => {
            if roots.is_empty() {
                return Err(PolicyError::Empty {
                    path: field(path, "roots"),
                });
            }
            for (i, root) in roots.iter().enumerate() {
                let root_path = format!("{path}.roots[{i}]");
                absolute(field(&root_path, "path"), &root.path)?;
                known_flags(
                    &field(&root_path, "flags"),
                    root.flags,
                    CERT_ROOT_KNOWN_FLAGS,
                )?;
            }
            Ok(())
        }
        CertRootConfig::EnterpriseStore { path: store } => absolute(field(path, "path"), store),
        CertRootConfig::TrustedRootStore { path: Some(store) } => {
            absolute(field(path, "path"), store)
        }
        CertRootConfig::TrustedRootStore { path: None } | CertRootConfig::Unspecified => Ok(()),
    }
}
