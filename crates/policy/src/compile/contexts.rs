//! The provider contexts a negotiating rule points at: its main-mode policy (from its
//! auth sets and IKE proposal set) and its quick-mode transport or tunnel policy (from
//! its IPsec proposal set, its action and its mode).

use palisade_filter::policy::{
    AuthenticationMethod, CertRootConfig, CertificateAuthentication, IPSEC_POLICY_FLAG_ND_BOUNDARY,
    IPSEC_POLICY_FLAG_ND_SECURE, IpsecProposal, IpsecTransportPolicy, IpsecTunnelPolicy,
    KeyingModule, MainModePolicy, MainModeProposal, PresharedKeyAuthentication,
    ProviderContextPolicy, SaLifetime, SaTransform, SecretBytes, TunnelEndpoints,
};
use palisade_filter::{ProviderContext, ProviderContextFlags};
use toml::Spanned;
use uuid::Uuid;

use super::{CheckedRule, Source, key, module_name};
use crate::document::{self, AuthMethodName, CertificateKind, Document, Mode, Rule, RuleAction};
use crate::error::Diagnostic;
use crate::keys::PALISADE_PROVIDER;

/// A rule's two policies.
pub(crate) struct RuleContexts {
    pub main_mode: ProviderContext,
    pub quick_mode: ProviderContext,
}

impl RuleContexts {
    pub fn into_contexts(self) -> [ProviderContext; 2] {
        [self.main_mode, self.quick_mode]
    }
}

/// Checks the named sets on their own, whether or not a rule uses them, so a broken set
/// is reported where it is written.
pub(crate) fn check_sets(
    src: &Source<'_>,
    doc: &Document,
    module: KeyingModule,
) -> Result<(), Diagnostic> {
    for set in doc.auth_sets.values() {
        auth_method(src, set, module)?;
    }
    for set in doc.ike_proposal_sets.values() {
        if set.get_ref().proposals.get_ref().is_empty() {
            return Err(src.error(
                set.get_ref().proposals.span(),
                "expected at least one proposal",
            ));
        }
    }
    for set in doc.ipsec_proposal_sets.values() {
        let proposals = &set.get_ref().proposals;
        if proposals.get_ref().is_empty() {
            return Err(src.error(proposals.span(), "expected at least one proposal"));
        }
        for p in proposals.get_ref() {
            ipsec_proposal(src, p)?;
        }
    }
    Ok(())
}

fn auth_method(
    src: &Source<'_>,
    set: &Spanned<document::AuthSet>,
    module: KeyingModule,
) -> Result<AuthenticationMethod, Diagnostic> {
    let a = set.get_ref();
    let method = match a.method.get_ref() {
        AuthMethodName::PresharedKey => {
            let Some(k) = &a.key else {
                return Err(src.error(
                    a.method.span(),
                    "method = \"preshared_key\" needs key = \"<the shared secret>\"",
                ));
            };
            if k.get_ref().is_empty() {
                return Err(src.error(k.span(), "expected a non-empty pre-shared key"));
            }
            for (span, what) in [
                (a.certificate.as_ref().map(|c| c.span()), "certificate"),
                (a.private_key.as_ref().map(|c| c.span()), "private_key"),
                (a.ca.first().map(|c| c.span()), "ca"),
            ] {
                if let Some(span) = span {
                    return Err(src.error(span, format!("{what} is for method = \"certificate\"")));
                }
            }
            AuthenticationMethod::PresharedKey(PresharedKeyAuthentication {
                key: SecretBytes::new(k.get_ref().as_bytes().to_vec()),
                flags: 0,
            })
        }
        AuthMethodName::Certificate => {
            if let Some(k) = &a.key {
                return Err(src.error(k.span(), "key is for method = \"preshared_key\""));
            }
            if a.ca.is_empty() {
                return Err(src.error(
                    a.method.span(),
                    "method = \"certificate\" needs ca = [\"/etc/palisade/ca.pem\"]: the roots the peer's certificate must chain to",
                ));
            }
            let (Some(cert), Some(private_key)) = (&a.certificate, &a.private_key) else {
                return Err(src.error(
                    a.method.span(),
                    "method = \"certificate\" needs certificate = \"<our chain, PEM>\" and private_key = \"<its key, PEM>\"",
                ));
            };
            for p in a.ca.iter().chain([cert, private_key]) {
                if !p.get_ref().is_absolute() {
                    return Err(src.error(
                        p.span(),
                        format!("{:?}: expected an absolute path like /etc/palisade/ca.pem (the daemon reads the file; a relative path would depend on its working directory)", p.get_ref().display().to_string()),
                    ));
                }
            }
            let c = CertificateAuthentication {
                inbound_roots: CertRootConfig::explicit(a.ca.iter().map(|p| p.get_ref().clone())),
                outbound_roots: CertRootConfig::Unspecified,
                local_certificate: Some(cert.get_ref().clone()),
                local_key: Some(private_key.get_ref().clone()),
                flags: 0,
            };
            match a.signature {
                CertificateKind::Rsa => AuthenticationMethod::Certificate(c),
                CertificateKind::EcdsaP256 => AuthenticationMethod::CertificateEcdsaP256(c),
                CertificateKind::EcdsaP384 => AuthenticationMethod::CertificateEcdsaP384(c),
            }
        }
    };
    if !method.is_allowed_for(module) {
        return Err(src.error(
            a.method.span(),
            format!(
                "keying module {} cannot negotiate {}",
                module_name(module),
                method.name()
            ),
        ));
    }
    Ok(method)
}

fn ipsec_proposal(
    src: &Source<'_>,
    p: &Spanned<document::IpsecProposal>,
) -> Result<IpsecProposal, Diagnostic> {
    let d = p.get_ref();
    let esp = match (d.esp, d.esp_integrity) {
        (Some(cipher), Some(auth)) => Some(SaTransform::EspAuthAndCipher { auth, cipher }),
        (Some(cipher), None) => Some(SaTransform::EspCipher(cipher)),
        (None, Some(auth)) => Some(SaTransform::EspAuth(auth)),
        (None, None) => None,
    };
    let mut sa_transforms: Vec<SaTransform> = d.ah.map(SaTransform::Ah).into_iter().collect();
    sa_transforms.extend(esp);
    if sa_transforms.is_empty() {
        return Err(src.error(
            p.span(),
            "expected esp = \"<cipher>\" (with esp_integrity for CBC ciphers), esp_integrity alone, or ah",
        ));
    }
    let proposal = IpsecProposal {
        lifetime: SaLifetime {
            seconds: d.lifetime_seconds,
            kilobytes: d.lifetime_kilobytes,
            packets: 0,
        },
        sa_transforms,
        pfs_group: d.pfs,
    };
    proposal
        .validate()
        // The engine's path names its own field; say it as the file does.
        .map_err(|e| {
            src.error(
                p.span(),
                e.to_string()
                    .replace("lifetime.seconds", "lifetime_seconds"),
            )
        })?;
    Ok(proposal)
}

/// Builds and checks a negotiating rule's main-mode and quick-mode contexts.
pub(crate) fn rule_contexts(
    src: &Source<'_>,
    doc: &Document,
    policy: &str,
    rule: &Spanned<Rule>,
    checked: &CheckedRule<'_>,
    module: KeyingModule,
) -> Result<RuleContexts, Diagnostic> {
    let r = rule.get_ref();
    let Some(auth) = &r.auth else {
        return Err(src.error(
            r.action.span(),
            "a rule that negotiates IPsec needs auth = \"<auth set>\" naming how peers authenticate",
        ));
    };
    let mut methods = Vec::new();
    for name in auth.get_ref().items() {
        let Some(set) = doc.auth_sets.get(name.as_str()) else {
            return Err(src.error(
                auth.span(),
                undefined("auth set", name, doc.auth_sets.keys()),
            ));
        };
        methods.push(auth_method(src, set, module)?);
    }
    if methods.is_empty() {
        return Err(src.error(auth.span(), "expected at least one auth set"));
    }
    let proposals = match &r.ike_proposals {
        None if module == KeyingModule::Ikev2 => MainModeProposal::ikev2_defaults(),
        None => MainModeProposal::ikev1_defaults(),
        Some(name) => {
            let Some(set) = doc.ike_proposal_sets.get(name.get_ref().as_str()) else {
                return Err(src.error(
                    name.span(),
                    undefined(
                        "IKE proposal set",
                        name.get_ref(),
                        doc.ike_proposal_sets.keys(),
                    ),
                ));
            };
            set.get_ref()
                .proposals
                .get_ref()
                .iter()
                .map(|p| MainModeProposal {
                    cipher: p.cipher,
                    integrity: p.integrity,
                    max_lifetime_seconds: p.lifetime_seconds,
                    dh_group: p.dh_group,
                    quick_mode_limit: p.quick_mode_limit,
                })
                .collect()
        }
    };
    let mm_policy = ProviderContextPolicy::MainMode {
        module,
        policy: MainModePolicy::new(methods, proposals),
    };
    // A policy error names a field of the main-mode policy; the administrator wrote it
    // through the rule's auth or proposal-set reference.
    if let Err(e) = mm_policy.validate() {
        let text = e.to_string();
        return Err(match (&r.ike_proposals, text.strip_prefix("ike_")) {
            (Some(set), Some(rest)) => src.error(
                set.span(),
                format!("IKE proposal set {:?}: {rest}", set.get_ref()),
            ),
            _ => src.error(auth.span(), format!("main-mode policy: {text}")),
        });
    }

    let ipsec = match &r.ipsec_proposals {
        None => vec![
            IpsecProposal::esp_aes128_gcm(),
            IpsecProposal::esp_aes256_gcm(),
        ],
        Some(name) => {
            let Some(set) = doc.ipsec_proposal_sets.get(name.get_ref().as_str()) else {
                return Err(src.error(
                    name.span(),
                    undefined(
                        "IPsec proposal set",
                        name.get_ref(),
                        doc.ipsec_proposal_sets.keys(),
                    ),
                ));
            };
            let mut out = Vec::new();
            for p in set.get_ref().proposals.get_ref() {
                out.push(ipsec_proposal(src, p)?);
            }
            out
        }
    };
    if checked.require_encryption {
        // Guaranteed encryption (spec §4.2): the SAs must encrypt, so every proposal
        // needs an ESP cipher.
        let weak = ipsec.iter().position(|p| {
            !p.sa_transforms.iter().any(|t| {
                matches!(t, SaTransform::EspCipher(c) | SaTransform::EspAuthAndCipher { cipher: c, .. }
                    if *c != palisade_filter::policy::CipherTransform::Null)
            })
        });
        if let Some(i) = weak {
            let span = r
                .ipsec_proposals
                .as_ref()
                .map_or_else(|| r.name.span(), |s| s.span());
            return Err(src.error(
                span,
                format!("require_encryption needs every IPsec proposal to encrypt; proposal {i} has no ESP cipher"),
            ));
        }
    }
    let flags = match checked.action {
        RuleAction::Request if checked.inbound_required => IPSEC_POLICY_FLAG_ND_SECURE,
        RuleAction::Request => IPSEC_POLICY_FLAG_ND_BOUNDARY,
        _ => 0,
    };
    let qm_policy = match (checked.mode, checked.tunnel) {
        (Mode::Tunnel, Some((local, remote))) => ProviderContextPolicy::Tunnel {
            module,
            policy: IpsecTunnelPolicy::new(TunnelEndpoints::new(local, remote), ipsec)
                .with_flags(flags),
        },
        _ => ProviderContextPolicy::Transport {
            module,
            policy: IpsecTransportPolicy::new(ipsec).with_flags(flags),
        },
    };
    if let Err(e) = qm_policy.validate() {
        let span = if e.to_string().starts_with("tunnel_endpoints") {
            r.tunnel
                .as_ref()
                .map_or_else(|| r.name.span(), |t| t.span())
        } else {
            r.ipsec_proposals
                .as_ref()
                .map_or_else(|| r.action.span(), |s| s.span())
        };
        return Err(src.error(span, format!("quick-mode policy: {e}")));
    }
    let context = |role: &str, what: &str, policy_value| ProviderContext {
        key: key(policy, checked.name, role),
        name: format!("{policy}/{}: {what}", checked.name),
        description: String::new(),
        flags: ProviderContextFlags::PERSISTENT,
        provider: Some(PALISADE_PROVIDER),
        policy: policy_value,
    };
    Ok(RuleContexts {
        main_mode: context("main-mode", "main-mode policy", mm_policy),
        quick_mode: context("quick-mode", "quick-mode policy", qm_policy),
    })
}

fn undefined<'a>(what: &str, name: &str, defined: impl Iterator<Item = &'a String>) -> String {
    let defined: Vec<String> = defined.map(|d| format!("{d:?}")).collect();
    if defined.is_empty() {
        format!("{what} {name:?} is not defined (there are none in this file)")
    } else {
        format!(
            "{what} {name:?} is not defined; defined: {}",
            defined.join(", ")
        )
    }
}

/// The provider-context key of a rule's role, for the filters pointing at it.
pub(crate) fn context_key(policy: &str, rule: &str, main_mode: bool) -> Uuid {
    key(
        policy,
        rule,
        if main_mode { "main-mode" } else { "quick-mode" },
    )
}
