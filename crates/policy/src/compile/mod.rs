//! Compilation: a checked document becomes Palisade's provider and sublayer, provider
//! contexts (main-mode and quick-mode policies) and filters. Everything an administrator
//! can get wrong is found here, with the span of the value that caused it, before the
//! engine sees anything.

mod contexts;
mod owners;
mod scenario;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;

use palisade_filter::policy::KeyingModule;
use palisade_filter::{
    Condition, Family, Filter, Provider, ProviderContext, ProviderFlags, Sublayer, SublayerFlags,
};
use serde::Serialize;
use toml::Spanned;
use uuid::Uuid;

use crate::address::{self, AddressItem};
use crate::document::{Document, Mode, OneOrMany, Rule, RuleAction};
use crate::error::Diagnostic;
use crate::keys::{PALISADE_PROVIDER, PALISADE_SUBLAYER};
use crate::traffic;

/// What a policy file compiles to: the objects to hold in the engine, all owned by
/// [`PALISADE_PROVIDER`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Compiled {
    /// The policy's name.
    pub name: String,
    /// Palisade's provider.
    pub provider: Provider,
    /// Palisade's sublayer.
    pub sublayer: Sublayer,
    /// Main-mode and quick-mode policies.
    pub contexts: Vec<ProviderContext>,
    /// Filters, each naming the rule it comes from.
    pub filters: Vec<Filter>,
}

/// A rule after its values are checked: what the scenarios compile.
#[derive(Clone, Debug)]
pub(crate) struct CheckedRule<'d> {
    pub name: &'d str,
    pub local: Vec<AddressItem>,
    pub remote: Vec<AddressItem>,
    pub protocol: Option<u8>,
    pub local_ports: Vec<(u16, u16)>,
    pub remote_ports: Vec<(u16, u16)>,
    pub action: RuleAction,
    pub inbound_required: bool,
    pub mode: Mode,
    pub tunnel: Option<(IpAddr, IpAddr)>,
    pub require_encryption: bool,
    pub authorized_peers: Vec<String>,
    /// ALE_APP_ID and ALE_USER_ID conditions from `programs` and `users`: a connection
    /// must meet them all to pass the rule's connection filters.
    pub owners: Vec<Condition>,
    /// From `denied_programs` and `denied_users`: the conditions of each BLOCK filter
    /// that turns away the rule's connections of those programs, or of those users.
    pub denied: Vec<Vec<Condition>>,
    pub families: Vec<Family>,
}

/// Where errors go: the file's name and text, to turn spans into diagnostics.
pub(crate) struct Source<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl Source<'_> {
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(self.file, self.text, span, message)
    }
}

/// Compiles a parsed document; `file` and `text` are what it was parsed from.
pub fn compile(file: &str, text: &str, doc: &Document) -> Result<Compiled, Diagnostic> {
    let src = Source { file, text };
    let policy_name = doc.policy.name.get_ref().trim();
    if policy_name.is_empty() {
        return Err(src.error(
            doc.policy.name.span(),
            "expected a non-empty policy name (every object's key is derived from it)",
        ));
    }
    let module = doc.policy.keying_module;
    let mut out = Compiled {
        name: policy_name.to_owned(),
        provider: Provider {
            key: PALISADE_PROVIDER,
            name: "Palisade".into(),
            description: "Connection security policy applied from a Palisade policy file".into(),
            flags: ProviderFlags::PERSISTENT,
            service_name: Some("palisaded".into()),
        },
        sublayer: Sublayer {
            key: PALISADE_SUBLAYER,
            name: "Palisade connection security".into(),
            description: String::new(),
            flags: SublayerFlags::PERSISTENT,
            provider: Some(PALISADE_PROVIDER),
            weight: doc.policy.sublayer_weight,
        },
        contexts: Vec::new(),
        filters: Vec::new(),
    };
    contexts::check_sets(&src, doc, module)?;
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut negotiates = false;
    for (i, rule) in doc.rules.iter().enumerate() {
        let name = rule.get_ref().name.get_ref().as_str();
        if name.trim().is_empty() {
            return Err(src.error(rule.get_ref().name.span(), "expected a non-empty rule name"));
        }
        if let Some(first) = seen.insert(name, i) {
            return Err(src.error(
                rule.get_ref().name.span(),
                format!("rule name {name:?} is already used by rules[{first}]; rule names must be unique"),
            ));
        }
        let checked = check_rule(&src, rule)?;
        if matches!(checked.action, RuleAction::Require | RuleAction::Request) {
            negotiates = true;
            let policies = contexts::rule_contexts(&src, doc, policy_name, rule, &checked, module)?;
            scenario::negotiated(&src, policy_name, rule, &checked, &policies, &mut out)?;
            out.contexts.extend(policies.into_contexts());
        } else {
            scenario::unprotected(&src, policy_name, rule, &checked, &mut out)?;
        }
    }
    if negotiates && doc.policy.ike_exemptions {
        scenario::ike_exemptions(policy_name, &mut out);
    }
    Ok(out)
}

fn addresses(
    src: &Source<'_>,
    value: Option<&Spanned<OneOrMany>>,
) -> Result<Vec<AddressItem>, Diagnostic> {
    let Some(value) = value else {
        return Ok(vec![AddressItem::Any]);
    };
    let items = value.get_ref().items();
    if items.is_empty() {
        return Err(src.error(
            value.span(),
            format!("an empty list matches nothing; {}", address::EXPECTED),
        ));
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let parsed = AddressItem::parse(item).map_err(|e| {
            let which = if items.len() > 1 {
                format!("entry {i}: ")
            } else {
                String::new()
            };
            src.error(value.span(), format!("{which}{e}"))
        })?;
        out.push(parsed);
    }
    if out.contains(&AddressItem::Any) {
        // `any` beside other entries is still everything.
        return Ok(vec![AddressItem::Any]);
    }
    Ok(out)
}

fn families(items: &[AddressItem]) -> Vec<Family> {
    if items.contains(&AddressItem::Any) {
        return vec![Family::V4, Family::V6];
    }
    let mut out = Vec::new();
    for f in [Family::V4, Family::V6] {
        if items.iter().any(|i| i.family() == Some(f)) {
            out.push(f);
        }
    }
    out
}

fn check_rule<'d>(
    src: &Source<'_>,
    rule: &'d Spanned<Rule>,
) -> Result<CheckedRule<'d>, Diagnostic> {
    let r = rule.get_ref();
    let local = addresses(src, r.local.as_ref())?;
    let remote = addresses(src, r.remote.as_ref())?;
    let (lf, rf) = (families(&local), families(&remote));
    let mut fams: Vec<Family> = lf.iter().copied().filter(|f| rf.contains(f)).collect();
    let protocol = match &r.protocol {
        Some(p) => traffic::protocol(p.get_ref()).map_err(|e| src.error(p.span(), e))?,
        None => None,
    };
    // ICMP is IPv4's and ICMPv6 IPv6's: a rule naming one applies to its family only.
    match protocol {
        Some(traffic::ICMP) => fams.retain(|f| *f == Family::V4),
        Some(traffic::ICMPV6) => fams.retain(|f| *f == Family::V6),
        _ => {}
    }
    if fams.is_empty() {
        let span = r.remote.as_ref().map_or(r.name.span(), |s| s.span());
        return Err(src.error(
            span,
            "the local and remote addresses (and protocol) share no address family; the rule would match nothing",
        ));
    }
    let ports = |list: &[Spanned<crate::document::Port>]| -> Result<Vec<(u16, u16)>, Diagnostic> {
        let mut out = Vec::new();
        for p in list {
            if !matches!(protocol, Some(traffic::TCP | traffic::UDP)) {
                return Err(src.error(p.span(), "ports need protocol = \"tcp\" or \"udp\""));
            }
            out.push(traffic::port(p.get_ref()).map_err(|e| src.error(p.span(), e))?);
        }
        Ok(out)
    };
    let local_ports = ports(&r.local_ports)?;
    let remote_ports = ports(&r.remote_ports)?;
    let action = *r.action.get_ref();
    let negotiates = matches!(action, RuleAction::Require | RuleAction::Request);
    let inbound_required = match &r.inbound {
        None => action == RuleAction::Require,
        Some(v) => match (action, v.get_ref()) {
            (RuleAction::Request, RuleAction::Require) => true,
            (RuleAction::Request, RuleAction::Request)
            | (RuleAction::Require, RuleAction::Require) => action == RuleAction::Require,
            _ => {
                return Err(src.error(
                    v.span(),
                    "inbound is only for action = \"request\": expected \"require\" or \"request\"",
                ));
            }
        },
    };
    let mode = r.mode.as_ref().map_or(Mode::Transport, |m| *m.get_ref());
    let tunnel = match (mode, &r.tunnel) {
        (Mode::Tunnel, None) => {
            let span = r.mode.as_ref().map_or(rule.span(), |m| m.span());
            return Err(src.error(
                span,
                "mode = \"tunnel\" needs tunnel = { local = \"<our outer address>\", remote = \"<peer gateway>\" }",
            ));
        }
        (Mode::Tunnel, Some(t)) => {
            let ep = |s: &Spanned<String>| {
                s.get_ref().trim().parse::<IpAddr>().map_err(|_| {
                    src.error(
                        s.span(),
                        format!("{:?}: expected one address like 198.51.100.1", s.get_ref()),
                    )
                })
            };
            let (l, rm) = (ep(&t.get_ref().local)?, ep(&t.get_ref().remote)?);
            if l.is_ipv4() != rm.is_ipv4() {
                return Err(src.error(
                    t.span(),
                    "the tunnel's endpoints must be of one address family",
                ));
            }
            // IKE looks the quick-mode policy up at the outer family's IPSEC layer.
            fams.retain(|f| *f == address::family(l));
            if fams.is_empty() {
                return Err(src.error(
                    t.span(),
                    "the tunnel's endpoints and the rule's addresses must be of one address family",
                ));
            }
            Some((l, rm))
        }
        (Mode::Transport, Some(t)) => {
            return Err(src.error(t.span(), "tunnel endpoints need mode = \"tunnel\""));
        }
        (Mode::Transport, None) => None,
    };
    if !negotiates {
        // Keys that only mean something when IPsec is negotiated must not sit silently
        // on an exempt or block rule.
        let misplaced = [
            (r.auth.as_ref().map(|s| s.span()), "auth"),
            (r.ike_proposals.as_ref().map(|s| s.span()), "ike_proposals"),
            (
                r.ipsec_proposals.as_ref().map(|s| s.span()),
                "ipsec_proposals",
            ),
            (r.tunnel.as_ref().map(|s| s.span()), "tunnel"),
            (
                r.require_encryption.as_ref().map(|s| s.span()),
                "require_encryption",
            ),
            (
                r.authorized_peers.as_ref().map(|s| s.span()),
                "authorized_peers",
            ),
            (r.programs.as_ref().map(|s| s.span()), "programs"),
            (r.users.as_ref().map(|s| s.span()), "users"),
            (
                r.denied_programs.as_ref().map(|s| s.span()),
                "denied_programs",
            ),
            (r.denied_users.as_ref().map(|s| s.span()), "denied_users"),
        ]
        .into_iter()
        .find_map(|(s, w)| s.map(|s| (s, w)));
        if let Some((span, what)) = misplaced {
            return Err(src.error(
                span,
                format!("{what} applies only to rules that negotiate IPsec (action = \"require\" or \"request\")"),
            ));
        }
    }
    let authorized_peers = r
        .authorized_peers
        .as_ref()
        .map(|p| p.get_ref().clone())
        .unwrap_or_default();
    if let Some(p) = &r.authorized_peers
        && (authorized_peers.is_empty() || authorized_peers.iter().any(|s| s.trim().is_empty()))
    {
        return Err(src.error(
            p.span(),
            "expected peer identities like \"host.example.com\"; an empty list would block every peer",
        ));
    }
    let owners = owners::conditions(src, r.programs.as_ref(), r.users.as_ref())?;
    let denied = owners::denied(src, r.denied_programs.as_ref(), r.denied_users.as_ref())?;
    Ok(CheckedRule {
        name: r.name.get_ref().as_str(),
        local,
        remote,
        protocol,
        local_ports,
        remote_ports,
        action,
        inbound_required,
        mode,
        tunnel,
        require_encryption: r.require_encryption.as_ref().is_some_and(|b| *b.get_ref()),
        authorized_peers,
        owners,
        denied,
        families: fams,
    })
}

/// The keying module's name, for messages.
pub(crate) fn module_name(module: KeyingModule) -> &'static str {
    module.name()
}

/// The key of a compiled object by its role.
pub(crate) fn key(policy: &str, rule: &str, role: &str) -> Uuid {
    crate::keys::derive(policy, rule, role)
}
