//! Filtering layers (WFP's `FWPM_LAYER_*`) and the condition fields each one offers
//! (spec §2).

use serde::{Deserialize, Serialize};

use crate::field::Field;

/// The IP family of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

macro_rules! layers {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, $family:expr, $kind:ident;)*) => {
        /// A filtering layer. Names follow `FWPM_LAYER_*` without the prefix.
        ///
        /// KM_AUTHORIZATION exists once, as in WFP: none of its fields is an address.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum Layer {
            $($(#[$doc])* $variant,)*
        }

        impl Layer {
            /// Every layer, in declaration order (the order of [`Layer::index`]).
            pub const ALL: &'static [Layer] = &[$(Layer::$variant,)*];

            /// The WFP name without `FWPM_LAYER_`, for example `OUTBOUND_TRANSPORT_V4`.
            pub fn name(self) -> &'static str {
                match self { $(Layer::$variant => $name,)* }
            }

            /// The layer's IP family; `None` for KM_AUTHORIZATION.
            pub fn family(self) -> Option<Family> {
                match self { $(Layer::$variant => $family,)* }
            }

            /// What the layer is for.
            pub fn kind(self) -> LayerKind {
                match self { $(Layer::$variant => LayerKind::$kind,)* }
            }
        }
    };
}

layers! {
    /// Main-mode policy lookup by the keying modules.
    IkeextV4 = "IKEEXT_V4", Some(Family::V4), Ikeext;
    /// Main-mode policy lookup by the keying modules.
    IkeextV6 = "IKEEXT_V6", Some(Family::V6), Ikeext;
    /// Quick-mode (and AuthIP extended-mode) policy lookup.
    IpsecV4 = "IPSEC_V4", Some(Family::V4), Ipsec;
    /// Quick-mode (and AuthIP extended-mode) policy lookup.
    IpsecV6 = "IPSEC_V6", Some(Family::V6), Ipsec;
    /// Which keying modules an initiator tries.
    IpsecKmDemuxV4 = "IPSEC_KM_DEMUX_V4", Some(Family::V4), IpsecKmDemux;
    /// Which keying modules an initiator tries.
    IpsecKmDemuxV6 = "IPSEC_KM_DEMUX_V6", Some(Family::V6), IpsecKmDemux;
    /// Every inbound packet, after its transport header is parsed.
    InboundTransportV4 = "INBOUND_TRANSPORT_V4", Some(Family::V4), InboundTransport;
    /// Every inbound packet, after its transport header is parsed.
    InboundTransportV6 = "INBOUND_TRANSPORT_V6", Some(Family::V6), InboundTransport;
    /// Every outbound packet, at the top of the network layer.
    OutboundTransportV4 = "OUTBOUND_TRANSPORT_V4", Some(Family::V4), OutboundTransport;
    /// Every outbound packet, at the top of the network layer.
    OutboundTransportV6 = "OUTBOUND_TRANSPORT_V6", Some(Family::V6), OutboundTransport;
    /// Forwarded packets (tunnel gateways).
    IpforwardV4 = "IPFORWARD_V4", Some(Family::V4), Ipforward;
    /// Forwarded packets (tunnel gateways).
    IpforwardV6 = "IPFORWARD_V6", Some(Family::V6), Ipforward;
    /// Outbound connections, once per connection.
    AleAuthConnectV4 = "ALE_AUTH_CONNECT_V4", Some(Family::V4), AleAuthConnect;
    /// Outbound connections, once per connection.
    AleAuthConnectV6 = "ALE_AUTH_CONNECT_V6", Some(Family::V6), AleAuthConnect;
    /// Inbound connections (TCP accept, first packet of other protocols).
    AleAuthRecvAcceptV4 = "ALE_AUTH_RECV_ACCEPT_V4", Some(Family::V4), AleAuthRecvAccept;
    /// Inbound connections (TCP accept, first packet of other protocols).
    AleAuthRecvAcceptV6 = "ALE_AUTH_RECV_ACCEPT_V6", Some(Family::V6), AleAuthRecvAccept;
    /// Authorization of an SA about to be established.
    KmAuthorization = "KM_AUTHORIZATION", None, KmAuthorization;
}

/// A layer without its family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LayerKind {
    /// IKEEXT.
    Ikeext,
    /// IPSEC.
    Ipsec,
    /// IPSEC_KM_DEMUX.
    IpsecKmDemux,
    /// INBOUND_TRANSPORT.
    InboundTransport,
    /// OUTBOUND_TRANSPORT.
    OutboundTransport,
    /// IPFORWARD.
    Ipforward,
    /// ALE_AUTH_CONNECT.
    AleAuthConnect,
    /// ALE_AUTH_RECV_ACCEPT.
    AleAuthRecvAccept,
    /// KM_AUTHORIZATION.
    KmAuthorization,
}

use Field::*;

const IKEEXT: &[Field] = &[
    IpLocalAddress,
    IpRemoteAddress,
    IpLocalInterface,
    CurrentProfileId,
];
const IPSEC: &[Field] = &[
    IpLocalAddress,
    IpRemoteAddress,
    IpLocalPort,
    IpRemotePort,
    IpProtocol,
    IpLocalInterface,
    CurrentProfileId,
];
const KM_DEMUX: &[Field] = &[IpLocalAddress, IpRemoteAddress];
const INBOUND_TRANSPORT: &[Field] = &[
    Flags,
    InterfaceIndex,
    InterfaceType,
    IpLocalAddress,
    IpLocalAddressType,
    IpLocalInterface,
    IpLocalPort,
    IpRemotePort,
    IpProtocol,
    IpRemoteAddress,
    SubInterfaceIndex,
    TunnelType,
    CurrentProfileId,
];
const OUTBOUND_TRANSPORT: &[Field] = &[
    Flags,
    InterfaceIndex,
    InterfaceType,
    IpLocalAddress,
    IpLocalAddressType,
    IpLocalInterface,
    IpLocalPort,
    IpRemotePort,
    IpProtocol,
    IpRemoteAddress,
    SubInterfaceIndex,
    TunnelType,
    CurrentProfileId,
    IpDestinationAddressType,
];
const IPFORWARD: &[Field] = &[
    IpSourceAddress,
    IpDestinationAddress,
    IpDestinationAddressType,
    IpLocalInterface,
    IpForwardInterface,
    IpProtocol,
    Flags,
];
const ALE_RECV_ACCEPT: &[Field] = &[
    AleAppId,
    AleUserId,
    AleRemoteUserId,
    AleRemoteMachineId,
    IpLocalAddress,
    IpLocalAddressType,
    IpLocalPort,
    IpProtocol,
    IpRemoteAddress,
    IpRemotePort,
    IpLocalInterface,
    InterfaceIndex,
    InterfaceType,
    SubInterfaceIndex,
    TunnelType,
    Flags,
    CurrentProfileId,
    ReauthorizeReason,
];
const ALE_CONNECT: &[Field] = &[
    AleAppId,
    AleUserId,
    AleRemoteUserId,
    AleRemoteMachineId,
    IpLocalAddress,
    IpLocalAddressType,
    IpLocalPort,
    IpProtocol,
    IpRemoteAddress,
    IpRemotePort,
    IpDestinationAddressType,
    IpLocalInterface,
    InterfaceIndex,
    InterfaceType,
    SubInterfaceIndex,
    TunnelType,
    Flags,
    CurrentProfileId,
    ReauthorizeReason,
    PeerName,
];
const KM_AUTHORIZATION: &[Field] = &[
    RemoteId,
    AuthenticationType,
    KmType,
    KmMode,
    Direction,
    IpsecPolicyKey,
];

impl Layer {
    /// The layer's slot in per-layer tables.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The fields a filter at this layer may test (spec §2).
    pub fn fields(self) -> &'static [Field] {
        match self.kind() {
            LayerKind::Ikeext => IKEEXT,
            LayerKind::Ipsec => IPSEC,
            LayerKind::IpsecKmDemux => KM_DEMUX,
            LayerKind::InboundTransport => INBOUND_TRANSPORT,
            LayerKind::OutboundTransport => OUTBOUND_TRANSPORT,
            LayerKind::Ipforward => IPFORWARD,
            LayerKind::AleAuthConnect => ALE_CONNECT,
            LayerKind::AleAuthRecvAccept => ALE_RECV_ACCEPT,
            LayerKind::KmAuthorization => KM_AUTHORIZATION,
        }
    }

    /// Whether a filter at this layer may test `field`.
    pub fn has_field(self, field: Field) -> bool {
        self.fields().contains(&field)
    }

    /// Whether the layer is classified per packet or connection by the data plane (WFP's
    /// kernel layers), as opposed to a policy lookup by a keying module. Boot-time filters
    /// only make sense at these.
    pub fn is_kernel(self) -> bool {
        matches!(
            self.kind(),
            LayerKind::InboundTransport
                | LayerKind::OutboundTransport
                | LayerKind::Ipforward
                | LayerKind::AleAuthConnect
                | LayerKind::AleAuthRecvAccept
        )
    }

    /// Parses a WFP name, with or without `FWPM_LAYER_`, ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<Layer> {
        let name = name.strip_prefix("FWPM_LAYER_").unwrap_or(name);
        Layer::ALL
            .iter()
            .copied()
            .find(|l| l.name().eq_ignore_ascii_case(name))
    }
}

/// The number of layers.
pub const LAYER_COUNT: usize = Layer::ALL.len();

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
