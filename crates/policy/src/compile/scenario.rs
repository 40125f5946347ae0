//! The filters of each scenario of spec §4, per address family:
//!
//! - transport mode (`require`): IKEEXT and IPSEC filters pointing at the rule's
//!   main-mode and quick-mode contexts, and transport-layer filters calling the IPsec
//!   transport callouts for unicast traffic;
//! - negotiation discovery (`request`): the same, with the callouts' ND raw contexts
//!   (inbound PERSIST_CONNECTION_SECURITY, outbound NEGOTIATE_DISCOVER), and with
//!   `inbound = "require"` an ALE_AUTH_RECV_ACCEPT filter calling INBOUND_INITIATE_SECURE;
//! - guaranteed encryption: ALE filters at RECV_ACCEPT and CONNECT whose raw context is
//!   REQUIRE_IPSEC_ENCRYPTION;
//! - remote identity authorization: a RECV_ACCEPT filter for the authorized peers'
//!   identities (ALE_REMOTE_MACHINE_ID) and a BLOCK for every other peer;
//! - tunnel mode: IKEEXT between the tunnel endpoints, IPSEC for the inner addresses with
//!   the tunnel context, and the tunnel callouts at the transport and forward layers;
//! - exemptions: PERMIT filters in weight range IKE_EXEMPTIONS (0xC), above every IPsec
//!   filter; blocks above them (0xD), so a block is never exempted by accident;
//! - IKE exemptions (§4.4): UDP 500 and 4500 (IPv4), 500 (IPv6) permitted likewise.

use palisade_filter::guids as g;
use palisade_filter::value::address_type;
use palisade_filter::weight::{WEIGHT_RANGE_IKE_EXEMPTIONS, WEIGHT_RANGE_IPSEC};
use palisade_filter::{
    Action, Condition, Family, Field, Filter, FilterFlags, Layer, Principal, Scalar,
    SecurityDescriptor, Weight,
};
use palisade_filter::{ConditionValue, MatchType};
use toml::Spanned;

use super::contexts::{RuleContexts, context_key};
use super::{CheckedRule, Compiled, Source, key};
use crate::address::AddressItem;
use crate::document::{Mode, Rule, RuleAction};
use crate::error::Diagnostic;
use crate::keys::{PALISADE_PROVIDER, PALISADE_SUBLAYER};
use crate::traffic;

/// Blocks sit above exemptions.
pub const WEIGHT_RANGE_BLOCK: u8 = WEIGHT_RANGE_IKE_EXEMPTIONS + 1;

/// Which side of the flow a condition set describes.
#[derive(Clone, Copy)]
enum Shape {
    /// Addresses only (IKEEXT).
    Addresses,
    /// Addresses, protocol and ports (IPSEC, transport, ALE).
    Flow,
    /// Source and destination, outbound (IPFORWARD: local side is the source).
    ForwardOut,
    /// Source and destination, inbound.
    ForwardIn,
}

fn v(family: Family, v4: Layer, v6: Layer) -> Layer {
    match family {
        Family::V4 => v4,
        Family::V6 => v6,
    }
}

fn suffix(family: Family) -> &'static str {
    match family {
        Family::V4 => "v4",
        Family::V6 => "v6",
    }
}

fn addrs(out: &mut Vec<Condition>, items: &[AddressItem], field: Field, family: Family) {
    out.extend(
        items
            .iter()
            .filter(|i| i.family() == Some(family))
            .filter_map(|i| i.condition(field)),
    );
}

fn conditions(rule: &CheckedRule<'_>, family: Family, shape: Shape) -> Vec<Condition> {
    let mut out = Vec::new();
    let (lf, rf) = match shape {
        Shape::Addresses | Shape::Flow => (Field::IpLocalAddress, Field::IpRemoteAddress),
        Shape::ForwardOut => (Field::IpSourceAddress, Field::IpDestinationAddress),
        Shape::ForwardIn => (Field::IpDestinationAddress, Field::IpSourceAddress),
    };
    addrs(&mut out, &rule.local, lf, family);
    addrs(&mut out, &rule.remote, rf, family);
    if matches!(shape, Shape::Addresses) {
        return out;
    }
    if let Some(p) = rule.protocol {
        out.push(Condition::equal(Field::IpProtocol, Scalar::U8(p)));
    }
    if matches!(shape, Shape::Flow) {
        out.extend(
            rule.local_ports
                .iter()
                .map(|p| traffic::port_condition(Field::IpLocalPort, *p)),
        );
        out.extend(
            rule.remote_ports
                .iter()
                .map(|p| traffic::port_condition(Field::IpRemotePort, *p)),
        );
    }
    out
}

fn unicast() -> Condition {
    Condition::equal(Field::IpLocalAddressType, Scalar::U8(address_type::UNICAST))
}

/// A filter of the rule, keyed by its role, owned by Palisade, in Palisade's sublayer.
fn filter(
    policy: &str,
    rule: &str,
    role: &str,
    layer: Layer,
    action: Action,
    conditions: Vec<Condition>,
) -> Filter {
    let mut f = Filter::new(layer, action)
        .key(key(policy, rule, role))
        .name(format!("{rule}: {role}"))
        .provider(PALISADE_PROVIDER)
        .sublayer(PALISADE_SUBLAYER)
        .flags(FilterFlags::PERSISTENT);
    f.description = format!("policy {policy}");
    f.conditions = conditions;
    f
}

/// Checks each filter's conditions the way the engine will, so an error names the rule
/// and not a GUID.
fn push(
    src: &Source<'_>,
    rule: &Spanned<Rule>,
    out: &mut Compiled,
    f: Filter,
) -> Result<(), Diagnostic> {
    for c in &f.conditions {
        if let Err(e) = c.validate(f.layer) {
            return Err(src.error(
                rule.get_ref().name.span(),
                format!("cannot be expressed at {}: {e}", f.layer),
            ));
        }
    }
    out.filters.push(f);
    Ok(())
}

/// The filters of a rule that negotiates IPsec.
pub(crate) fn negotiated(
    src: &Source<'_>,
    policy: &str,
    rule: &Spanned<Rule>,
    r: &CheckedRule<'_>,
    contexts: &RuleContexts,
    out: &mut Compiled,
) -> Result<(), Diagnostic> {
    let name = r.name;
    let mm = context_key(policy, name, true);
    let qm = context_key(policy, name, false);
    debug_assert_eq!(contexts.main_mode.key, mm);
    let nd = r.action == RuleAction::Request;
    for &family in &r.families {
        let s = suffix(family);
        // Main mode: keyed by the IKE peers, which are the tunnel endpoints in tunnel mode.
        let ike_conditions = match r.tunnel {
            Some((l, rm)) => vec![
                AddressItem::Prefix(l, full(l)).condition(Field::IpLocalAddress),
                AddressItem::Prefix(rm, full(rm)).condition(Field::IpRemoteAddress),
            ]
            .into_iter()
            .flatten()
            .collect(),
            None => conditions(r, family, Shape::Addresses),
        };
        let ikeext = filter(
            policy,
            name,
            &format!("ikeext-{s}"),
            v(family, Layer::IkeextV4, Layer::IkeextV6),
            Action::Permit,
            ike_conditions,
        )
        .provider_context(mm);
        push(src, rule, out, ikeext)?;
        let ipsec = filter(
            policy,
            name,
            &format!("ipsec-{s}"),
            v(family, Layer::IpsecV4, Layer::IpsecV6),
            Action::Permit,
            conditions(r, family, Shape::Flow),
        )
        .provider_context(qm);
        push(src, rule, out, ipsec)?;

        let mut flow = vec![unicast()];
        flow.extend(conditions(r, family, Shape::Flow));
        match r.mode {
            Mode::Transport => {
                let (inbound, outbound) = match family {
                    Family::V4 => (
                        g::FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4,
                        g::FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4,
                    ),
                    Family::V6 => (
                        g::FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V6,
                        g::FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V6,
                    ),
                };
                let mut f_in = filter(
                    policy,
                    name,
                    &format!("inbound-transport-{s}"),
                    v(family, Layer::InboundTransportV4, Layer::InboundTransportV6),
                    Action::CalloutTerminating(inbound),
                    flow.clone(),
                )
                .weight(Weight::Range(WEIGHT_RANGE_IPSEC));
                let mut f_out = filter(
                    policy,
                    name,
                    &format!("outbound-transport-{s}"),
                    v(
                        family,
                        Layer::OutboundTransportV4,
                        Layer::OutboundTransportV6,
                    ),
                    Action::CalloutTerminating(outbound),
                    flow.clone(),
                )
                .weight(Weight::Range(WEIGHT_RANGE_IPSEC));
                if nd {
                    f_in =
                        f_in.raw_context(g::FWPM_CONTEXT_IPSEC_INBOUND_PERSIST_CONNECTION_SECURITY);
                    f_out = f_out.raw_context(g::FWPM_CONTEXT_IPSEC_OUTBOUND_NEGOTIATE_DISCOVER);
                }
                push(src, rule, out, f_in)?;
                push(src, rule, out, f_out)?;
            }
            Mode::Tunnel => {
                let (inbound, outbound, fwd_in, fwd_out) = match family {
                    Family::V4 => (
                        g::FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_V4,
                        g::FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V4,
                        g::FWPM_CALLOUT_IPSEC_FORWARD_INBOUND_TUNNEL_V4,
                        g::FWPM_CALLOUT_IPSEC_FORWARD_OUTBOUND_TUNNEL_V4,
                    ),
                    Family::V6 => (
                        g::FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_V6,
                        g::FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V6,
                        g::FWPM_CALLOUT_IPSEC_FORWARD_INBOUND_TUNNEL_V6,
                        g::FWPM_CALLOUT_IPSEC_FORWARD_OUTBOUND_TUNNEL_V6,
                    ),
                };
                // The tunnel callouts read the tunnel policy from the filter's context.
                let fwd = v(family, Layer::IpforwardV4, Layer::IpforwardV6);
                for (role, layer, callout, conds) in [
                    (
                        "inbound-tunnel",
                        v(family, Layer::InboundTransportV4, Layer::InboundTransportV6),
                        inbound,
                        flow.clone(),
                    ),
                    (
                        "outbound-tunnel",
                        v(
                            family,
                            Layer::OutboundTransportV4,
                            Layer::OutboundTransportV6,
                        ),
                        outbound,
                        flow.clone(),
                    ),
                    (
                        "forward-inbound-tunnel",
                        fwd,
                        fwd_in,
                        conditions(r, family, Shape::ForwardIn),
                    ),
                    (
                        "forward-outbound-tunnel",
                        fwd,
                        fwd_out,
                        conditions(r, family, Shape::ForwardOut),
                    ),
                ] {
                    let f = filter(
                        policy,
                        name,
                        &format!("{role}-{s}"),
                        layer,
                        Action::CalloutTerminating(callout),
                        conds,
                    )
                    .weight(Weight::Range(WEIGHT_RANGE_IPSEC))
                    .provider_context(qm);
                    push(src, rule, out, f)?;
                }
            }
        }

        // Connection-level filters.
        let accept = v(
            family,
            Layer::AleAuthRecvAcceptV4,
            Layer::AleAuthRecvAcceptV6,
        );
        let initiate_secure = match family {
            Family::V4 => g::FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V4,
            Family::V6 => g::FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V6,
        };
        let encryption = if r.require_encryption {
            g::FWPM_CONTEXT_ALE_SET_CONNECTION_REQUIRE_IPSEC_ENCRYPTION
        } else {
            0
        };
        let ale_flow = conditions(r, family, Shape::Flow);
        // Inbound connections: secured (negotiation discovery's secure ring, guaranteed
        // encryption, remote identity authorization), limited to some peers or to the
        // sockets of some programs and users, or both. A limited rule has an allowed
        // filter, more specific (identity, program or user conditions) so it outranks
        // the block for everyone else.
        let secure_in =
            !r.authorized_peers.is_empty() || r.inbound_required && nd || encryption != 0;
        let limited = !r.authorized_peers.is_empty() || !r.owners.is_empty();
        if secure_in || limited {
            let mut allowed = ale_flow.clone();
            if !r.authorized_peers.is_empty() {
                let sd = SecurityDescriptor::allow(
                    r.authorized_peers
                        .iter()
                        .map(|p| Principal::Name(p.trim().to_owned()))
                        .collect::<Vec<_>>(),
                );
                allowed.push(Condition::new(
                    Field::AleRemoteMachineId,
                    MatchType::Equal,
                    ConditionValue::Sd(sd),
                ));
            }
            allowed.extend(r.owners.iter().cloned());
            let action = if secure_in {
                Action::CalloutTerminating(initiate_secure)
            } else {
                Action::Permit
            };
            let role = if limited {
                "recv-accept-authorized"
            } else {
                "recv-accept"
            };
            let mut f = filter(
                policy,
                name,
                &format!("{role}-{s}"),
                accept,
                action,
                allowed,
            );
            if encryption != 0 {
                f = f.raw_context(encryption);
            }
            push(src, rule, out, f)?;
            if limited {
                let f = filter(
                    policy,
                    name,
                    &format!("recv-accept-unauthorized-{s}"),
                    accept,
                    Action::Block,
                    ale_flow.clone(),
                );
                push(src, rule, out, f)?;
            }
        }
        // Connections we start: guaranteed encryption's callout, limited to the sockets
        // of some programs and users, or both.
        if encryption != 0 || !r.owners.is_empty() {
            let connect = v(family, Layer::AleAuthConnectV4, Layer::AleAuthConnectV6);
            let connect_callout = match family {
                Family::V4 => g::FWPM_CALLOUT_IPSEC_ALE_CONNECT_V4,
                Family::V6 => g::FWPM_CALLOUT_IPSEC_ALE_CONNECT_V6,
            };
            let mut allowed = ale_flow.clone();
            allowed.extend(r.owners.iter().cloned());
            let role = if r.owners.is_empty() {
                "connect"
            } else {
                "connect-authorized"
            };
            let action = if encryption != 0 {
                Action::CalloutTerminating(connect_callout)
            } else {
                Action::Permit
            };
            let mut f = filter(
                policy,
                name,
                &format!("{role}-{s}"),
                connect,
                action,
                allowed,
            );
            if encryption != 0 {
                f = f.raw_context(encryption);
            }
            push(src, rule, out, f)?;
            if !r.owners.is_empty() {
                let f = filter(
                    policy,
                    name,
                    &format!("connect-unauthorized-{s}"),
                    connect,
                    Action::Block,
                    ale_flow.clone(),
                );
                push(src, rule, out, f)?;
            }
        }
        // Denied programs and users: BLOCK filters at both connection layers, in the
        // block rules' weight range so that they outrank the rule's (automatically
        // weighted) connection filters whatever those test.
        for (i, extra) in r.denied.iter().enumerate() {
            for (role, layer) in [
                (
                    "recv-accept-denied",
                    v(
                        family,
                        Layer::AleAuthRecvAcceptV4,
                        Layer::AleAuthRecvAcceptV6,
                    ),
                ),
                (
                    "connect-denied",
                    v(family, Layer::AleAuthConnectV4, Layer::AleAuthConnectV6),
                ),
            ] {
                let mut conds = ale_flow.clone();
                conds.extend(extra.iter().cloned());
                let f = filter(
                    policy,
                    name,
                    &format!("{role}-{i}-{s}"),
                    layer,
                    Action::Block,
                    conds,
                )
                .weight(Weight::Range(WEIGHT_RANGE_BLOCK));
                push(src, rule, out, f)?;
            }
        }
    }
    Ok(())
}

fn full(addr: std::net::IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// The filters of an `exempt` or `block` rule.
pub(crate) fn unprotected(
    src: &Source<'_>,
    policy: &str,
    rule: &Spanned<Rule>,
    r: &CheckedRule<'_>,
    out: &mut Compiled,
) -> Result<(), Diagnostic> {
    let (action, range, verb) = match r.action {
        RuleAction::Block => (Action::Block, WEIGHT_RANGE_BLOCK, "block"),
        _ => (Action::Permit, WEIGHT_RANGE_IKE_EXEMPTIONS, "exempt"),
    };
    for &family in &r.families {
        let s = suffix(family);
        for (dir, layer) in [
            (
                "inbound",
                v(family, Layer::InboundTransportV4, Layer::InboundTransportV6),
            ),
            (
                "outbound",
                v(
                    family,
                    Layer::OutboundTransportV4,
                    Layer::OutboundTransportV6,
                ),
            ),
        ] {
            let f = filter(
                policy,
                r.name,
                &format!("{verb}-{dir}-{s}"),
                layer,
                action,
                conditions(r, family, Shape::Flow),
            )
            .weight(Weight::Range(range));
            push(src, rule, out, f)?;
        }
    }
    Ok(())
}

/// The IKE exemptions of spec §4.4, added with the first negotiating rule.
pub(crate) fn ike_exemptions(policy: &str, out: &mut Compiled) {
    for family in [Family::V4, Family::V6] {
        // IKE's own ports: 500, and 4500 for NAT traversal (IPv4 only, per WFP).
        let ports: &[u16] = match family {
            Family::V4 => &[500, 4500],
            Family::V6 => &[500],
        };
        let mut conds = vec![Condition::equal(
            Field::IpProtocol,
            Scalar::U8(traffic::UDP),
        )];
        conds.extend(
            ports
                .iter()
                .map(|p| Condition::equal(Field::IpLocalPort, Scalar::U16(*p))),
        );
        for (dir, layer) in [
            (
                "inbound",
                v(family, Layer::InboundTransportV4, Layer::InboundTransportV6),
            ),
            (
                "outbound",
                v(
                    family,
                    Layer::OutboundTransportV4,
                    Layer::OutboundTransportV6,
                ),
            ),
        ] {
            let mut f = filter(
                policy,
                "(IKE exemption)",
                &format!("ike-exempt-{dir}-{}", suffix(family)),
                layer,
                Action::Permit,
                conds.clone(),
            )
            .weight(Weight::Range(WEIGHT_RANGE_IKE_EXEMPTIONS));
            f.name = format!("IKE exemption: {dir} {}", suffix(family));
            out.filters.push(f);
        }
    }
}
