//! The objects that exist when the engine starts: the IPsec sublayers and the built-in
//! IPsec callouts of spec §3, under Windows' GUIDs. They cannot be deleted.
//!
//! WFP does not publish its built-in sublayers' weights; these are Palisade's. The IPsec
//! tunnel sublayers sit above the universal one so that tunnel policy decides before
//! general filters, and DoS protection sits above everything.

use crate::catalog::{Actor, Catalog};
use crate::flags::{CalloutFlags, ProviderFlags, SublayerFlags};
use crate::guids as g;
use crate::layer::Layer;
use crate::objects::{Callout, Provider, Sublayer};
use crate::security::Caller;

/// The built-in sublayers: key, name, weight.
pub const SUBLAYERS: &[(uuid::Uuid, &str, u16)] = &[
    (g::FWPM_SUBLAYER_IPSEC_DOSP, "IPsec DoS protection", 0x9000),
    (g::FWPM_SUBLAYER_IPSEC_TUNNEL, "IPsec tunnel", 0x8003),
    (
        g::FWPM_SUBLAYER_IPSEC_FORWARD_OUTBOUND_TUNNEL,
        "IPsec forward outbound tunnel",
        0x8002,
    ),
    (
        g::FWPM_SUBLAYER_IPSEC_SECURITY_REALM,
        "IPsec security realm",
        0x8001,
    ),
    (g::FWPM_SUBLAYER_UNIVERSAL, "Universal", 0x8000),
    (g::FWPM_SUBLAYER_INSPECTION, "Inspection", 0x0000),
];

/// The built-in callouts: key, name, layer, whether they read the filter's provider
/// context (the tunnel callouts read the tunnel policy).
pub const CALLOUTS: &[(uuid::Uuid, &str, Layer, bool)] = &[
    (
        g::FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4,
        "IPsec inbound transport v4",
        Layer::InboundTransportV4,
        false,
    ),
    (
        g::FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V6,
        "IPsec inbound transport v6",
        Layer::InboundTransportV6,
        false,
    ),
    (
        g::FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4,
        "IPsec outbound transport v4",
        Layer::OutboundTransportV4,
        false,
    ),
    (
        g::FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V6,
        "IPsec outbound transport v6",
        Layer::OutboundTransportV6,
        false,
    ),
    (
        g::FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_V4,
        "IPsec inbound tunnel v4",
        Layer::InboundTransportV4,
        true,
    ),
    (
        g::FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_V6,
        "IPsec inbound tunnel v6",
        Layer::InboundTransportV6,
        true,
    ),
    (
        g::FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V4,
        "IPsec outbound tunnel v4",
        Layer::OutboundTransportV4,
        true,
    ),
    (
        g::FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V6,
        "IPsec outbound tunnel v6",
        Layer::OutboundTransportV6,
        true,
    ),
    (
        g::FWPM_CALLOUT_IPSEC_FORWARD_INBOUND_TUNNEL_V4,
        "IPsec forward inbound tunnel v4",
        Layer::IpforwardV4,
        true,
    ),
    (
        g::FWPM_CALLOUT_IPSEC_FORWARD_INBOUND_TUNNEL_V6,
        "IPsec forward inbound tunnel v6",
        Layer::IpforwardV6,
        true,
    ),
    (
        g::FWPM_CALLOUT_IPSEC_FORWARD_OUTBOUND_TUNNEL_V4,
        "IPsec forward outbound tunnel v4",
        Layer::IpforwardV4,
        true,
    ),
    (
        g::FWPM_CALLOUT_IPSEC_FORWARD_OUTBOUND_TUNNEL_V6,
        "IPsec forward outbound tunnel v6",
        Layer::IpforwardV6,
        true,
    ),
    (
        g::FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V4,
        "IPsec inbound initiate secure v4",
        Layer::AleAuthRecvAcceptV4,
        false,
    ),
    (
        g::FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V6,
        "IPsec inbound initiate secure v6",
        Layer::AleAuthRecvAcceptV6,
        false,
    ),
    (
        g::FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_ALE_ACCEPT_V4,
        "IPsec inbound tunnel ALE accept v4",
        Layer::AleAuthRecvAcceptV4,
        false,
    ),
    (
        g::FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_ALE_ACCEPT_V6,
        "IPsec inbound tunnel ALE accept v6",
        Layer::AleAuthRecvAcceptV6,
        false,
    ),
    (
        g::FWPM_CALLOUT_IPSEC_ALE_CONNECT_V4,
        "IPsec ALE connect v4",
        Layer::AleAuthConnectV4,
        false,
    ),
    (
        g::FWPM_CALLOUT_IPSEC_ALE_CONNECT_V6,
        "IPsec ALE connect v6",
        Layer::AleAuthConnectV6,
        false,
    ),
    (
        g::FWPM_CALLOUT_IPSEC_DOSP_FORWARD_V4,
        "IPsec DoS protection forward v4",
        Layer::IpforwardV4,
        false,
    ),
    (
        g::FWPM_CALLOUT_IPSEC_DOSP_FORWARD_V6,
        "IPsec DoS protection forward v6",
        Layer::IpforwardV6,
        false,
    ),
];

/// A catalog holding the built-in objects.
pub(crate) fn catalog() -> Catalog {
    let mut catalog = Catalog::new();
    let root = Caller::root();
    let actor = Actor {
        caller: &root,
        session: 0,
        dynamic: false,
    };
    let add = |r: Result<(), crate::error::EngineError>| {
        // The tables above are constants with unique keys; a failure is a bug here.
        debug_assert!(r.is_ok(), "built-in object: {r:?}");
    };
    add(catalog
        .add_provider(
            &actor,
            Provider {
                key: g::FWPM_PROVIDER_IKEEXT,
                name: "IKE and AuthIP keying modules".into(),
                description: String::new(),
                flags: ProviderFlags::NONE,
                service_name: Some("palisaded".into()),
            },
            true,
        )
        .map(drop));
    for (key, name, weight) in SUBLAYERS {
        add(catalog
            .add_sublayer(
                &actor,
                Sublayer {
                    key: *key,
                    name: (*name).into(),
                    description: String::new(),
                    flags: SublayerFlags::NONE,
                    provider: None,
                    weight: *weight,
                },
                true,
            )
            .map(drop));
    }
    for (key, name, layer, uses_context) in CALLOUTS {
        let flags = if *uses_context {
            CalloutFlags::USES_PROVIDER_CONTEXT
        } else {
            CalloutFlags::NONE
        };
        add(catalog
            .add_callout(
                &actor,
                Callout {
                    key: *key,
                    name: (*name).into(),
                    description: String::new(),
                    flags,
                    provider: None,
                    layer: *layer,
                },
                true,
            )
            .map(drop));
    }
    catalog
}
