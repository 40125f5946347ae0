//! The real Windows Filtering Platform identifiers: GUIDs of the built-in layers,
//! sublayers, callouts, providers, keying modules and condition fields, and the
//! well-known filter `rawContext` values.
//!
//! Palisade keys its objects with Windows' own GUIDs so that administrators and tools
//! that know WFP recognise them: a filter dumped from Palisade names
//! `FWPM_LAYER_OUTBOUND_TRANSPORT_V4` with the same GUID `netsh wfp show filters` would
//! print, and a policy written against the Windows SDK constants means the same thing here.
//!
//! Every value below was copied from the Windows SDK header `fwpmu.h`, read in
//! marlersoft/microsoft_windows_sdk_cpp, path `um/fwpmu.h`, commit
//! `16b53593a29860fea1706e7a862b2145c0f1b6ee`. That one file supplied every group:
//!
//! - Layers: section "GUIDs for built-in layers".
//! - Sublayers: section "GUIDs for built-in sublayers".
//! - Callouts: section "GUIDs for built-in callouts".
//! - Providers: section "GUIDs for built-in providers".
//! - Keying modules: section "GUIDs for built-in keying modules".
//! - Conditions: section "GUIDs for built-in conditions".
//! - Aliases: `#define`s in the same sections.
//! - Filter contexts: section "Well-known filter contexts" (`#define ... (0x..ui64)`).
//!
//! Each GUID was checked against the `DEFINE_GUID` bytes as well as the comment line above
//! it in the header, and against a second copy of the SDK's `fwpmu.h` in the index.
//! `FWPM_CONTEXT_ALE_SET_CONNECTION_DENY_PUBLIC_NETWORK` is not defined in that header
//! (nor anywhere in the index), so it is absent.

use uuid::{Uuid, uuid};

// ---- Layers (fwpmu.h, "GUIDs for built-in layers") ----

/// IKE/AuthIP main-mode policy layer, IPv4.
pub const FWPM_LAYER_IKEEXT_V4: Uuid = uuid!("b14b7bdb-dbbd-473e-bed4-8b4708d4f270");
/// IKE/AuthIP main-mode policy layer, IPv6.
pub const FWPM_LAYER_IKEEXT_V6: Uuid = uuid!("b64786b3-f687-4eb9-89d2-8ef32acdabe2");
/// IPsec quick-mode policy layer, IPv4.
pub const FWPM_LAYER_IPSEC_V4: Uuid = uuid!("eda65c74-610d-4bc5-948f-3c4f89556867");
/// IPsec quick-mode policy layer, IPv6.
pub const FWPM_LAYER_IPSEC_V6: Uuid = uuid!("13c48442-8d87-4261-9a29-59d2abc348b4");
/// Keying-module selection (demux) layer, IPv4.
pub const FWPM_LAYER_IPSEC_KM_DEMUX_V4: Uuid = uuid!("f02b1526-a459-4a51-b9e3-759de52b9d2c");
/// Keying-module selection (demux) layer, IPv6.
pub const FWPM_LAYER_IPSEC_KM_DEMUX_V6: Uuid = uuid!("2f755cf6-2fd4-4e88-b3e4-a91bca495235");
/// Inbound transport layer, IPv4 (where the IPsec inbound callouts sit).
pub const FWPM_LAYER_INBOUND_TRANSPORT_V4: Uuid = uuid!("5926dfc8-e3cf-4426-a283-dc393f5d0f9d");
/// Inbound transport layer, IPv6 (where the IPsec inbound callouts sit).
pub const FWPM_LAYER_INBOUND_TRANSPORT_V6: Uuid = uuid!("634a869f-fc23-4b90-b0c1-bf620a36ae6f");
/// Outbound transport layer, IPv4 (where the IPsec outbound callouts sit).
pub const FWPM_LAYER_OUTBOUND_TRANSPORT_V4: Uuid = uuid!("09e61aea-d214-46e2-9b21-b26b0b2f28c8");
/// Outbound transport layer, IPv6 (where the IPsec outbound callouts sit).
pub const FWPM_LAYER_OUTBOUND_TRANSPORT_V6: Uuid = uuid!("e1735bde-013f-4655-b351-a49e15762df0");
/// IP forwarding layer, IPv4.
pub const FWPM_LAYER_IPFORWARD_V4: Uuid = uuid!("a82acc24-4ee1-4ee1-b465-fd1d25cb10a4");
/// IP forwarding layer, IPv6.
pub const FWPM_LAYER_IPFORWARD_V6: Uuid = uuid!("7b964818-19c7-493a-b71f-832c3684d28c");
/// ALE outbound connection authorization layer, IPv4.
pub const FWPM_LAYER_ALE_AUTH_CONNECT_V4: Uuid = uuid!("c38d57d1-05a7-4c33-904f-7fbceee60e82");
/// ALE outbound connection authorization layer, IPv6.
pub const FWPM_LAYER_ALE_AUTH_CONNECT_V6: Uuid = uuid!("4a72393b-319f-44bc-84c3-ba54dcb3b6b4");
/// ALE inbound connection / accept authorization layer, IPv4.
pub const FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4: Uuid = uuid!("e1cd9fe7-f4b5-4273-96c0-592e487b8650");
/// ALE inbound connection / accept authorization layer, IPv6.
pub const FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V6: Uuid = uuid!("a3b42c97-9f04-4672-b87e-cee9c483257f");
/// Keying-module authorization layer (one layer for both families).
pub const FWPM_LAYER_KM_AUTHORIZATION: Uuid = uuid!("4aa226e9-9020-45fb-956a-c0249d841195");

// ---- Sublayers (fwpmu.h, "GUIDs for built-in sublayers") ----

/// The universal sublayer: filters added without a sublayer land here.
pub const FWPM_SUBLAYER_UNIVERSAL: Uuid = uuid!("eebecc03-ced4-4380-819a-2734397b2b74");
/// Sublayer of the IPsec tunnel-mode filters.
pub const FWPM_SUBLAYER_IPSEC_TUNNEL: Uuid = uuid!("83f299ed-9ff4-4967-aff4-c309f4dab827");
/// Sublayer of the IPsec forward outbound tunnel filters.
pub const FWPM_SUBLAYER_IPSEC_FORWARD_OUTBOUND_TUNNEL: Uuid =
    uuid!("a5082e73-8f71-4559-8a9a-101cea04ef87");
/// Sublayer of the IPsec security-realm filters.
pub const FWPM_SUBLAYER_IPSEC_SECURITY_REALM: Uuid = uuid!("37a57701-5884-4964-92b8-3e704688b0ad");
/// Sublayer of the IPsec DoS-protection filters.
pub const FWPM_SUBLAYER_IPSEC_DOSP: Uuid = uuid!("e076d572-5d3d-48ef-802b-909eddb098bd");
/// The inspection sublayer.
pub const FWPM_SUBLAYER_INSPECTION: Uuid = uuid!("877519e1-e6a9-41a5-81b4-8c4f118e4a60");
/// Sublayer of secure-socket filters.
pub const FWPM_SUBLAYER_SECURE_SOCKET: Uuid = uuid!("15a66e17-3f3c-4f7b-aa6c-812aa613dd82");
/// The LIPS sublayer.
pub const FWPM_SUBLAYER_LIPS: Uuid = uuid!("1b75c0ce-ff60-4711-a70f-b4958cc3b2d0");
/// Sublayer of RPC audit filters.
pub const FWPM_SUBLAYER_RPC_AUDIT: Uuid = uuid!("758c84f4-fb48-4de9-9aeb-3ed9551ab1fd");
/// Sublayer of Teredo / edge-traversal filters.
pub const FWPM_SUBLAYER_TEREDO: Uuid = uuid!("ba69dc66-5176-4979-9c89-26a7b46a8327");
/// Sublayer of TCP chimney offload filters.
pub const FWPM_SUBLAYER_TCP_CHIMNEY_OFFLOAD: Uuid = uuid!("337608b9-b7d5-4d5f-82f9-3618618bc058");
/// Sublayer of TCP template filters.
pub const FWPM_SUBLAYER_TCP_TEMPLATES: Uuid = uuid!("24421dcf-0ac5-4caa-9e14-50f6e3636af0");

// ---- Callouts (fwpmu.h, "GUIDs for built-in callouts") ----

/// IPsec inbound transport-mode callout, IPv4.
pub const FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4: Uuid =
    uuid!("5132900d-5e84-4b5f-80e4-01741e81ff10");
/// IPsec inbound transport-mode callout, IPv6.
pub const FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V6: Uuid =
    uuid!("49d3ac92-2a6c-4dcf-955f-1c3be009dd99");
/// IPsec outbound transport-mode callout, IPv4.
pub const FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4: Uuid =
    uuid!("4b46bf0a-4523-4e57-aa38-a87987c910d9");
/// IPsec outbound transport-mode callout, IPv6.
pub const FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V6: Uuid =
    uuid!("38d87722-ad83-4f11-a91f-df0fb077225b");
/// IPsec inbound tunnel-mode callout, IPv4.
pub const FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_V4: Uuid =
    uuid!("191a8a46-0bf8-46cf-b045-4b45dfa6a324");
/// IPsec inbound tunnel-mode callout, IPv6.
pub const FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_V6: Uuid =
    uuid!("80c342e3-1e53-4d6f-9b44-03df5aeee154");
/// IPsec outbound tunnel-mode callout, IPv4.
pub const FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V4: Uuid =
    uuid!("70a4196c-835b-4fb0-98e8-075f4d977d46");
/// IPsec outbound tunnel-mode callout, IPv6.
pub const FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V6: Uuid =
    uuid!("f1835363-a6a5-4e62-b180-23db789d8da6");
/// IPsec forward inbound tunnel callout, IPv4.
pub const FWPM_CALLOUT_IPSEC_FORWARD_INBOUND_TUNNEL_V4: Uuid =
    uuid!("28829633-c4f0-4e66-873f-844db2a899c7");
/// IPsec forward inbound tunnel callout, IPv6.
pub const FWPM_CALLOUT_IPSEC_FORWARD_INBOUND_TUNNEL_V6: Uuid =
    uuid!("af50bec2-c686-429a-884d-b74443e7b0b4");
/// IPsec forward outbound tunnel callout, IPv4.
pub const FWPM_CALLOUT_IPSEC_FORWARD_OUTBOUND_TUNNEL_V4: Uuid =
    uuid!("fb532136-15cb-440b-937c-1717ca320c40");
/// IPsec forward outbound tunnel callout, IPv6.
pub const FWPM_CALLOUT_IPSEC_FORWARD_OUTBOUND_TUNNEL_V6: Uuid =
    uuid!("dae640cc-e021-4bee-9eb6-a48b275c8c1d");
/// IPsec inbound initiate-secure callout, IPv4.
pub const FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V4: Uuid =
    uuid!("7dff309b-ba7d-4aba-91aa-ae5c6640c944");
/// IPsec inbound initiate-secure callout, IPv6.
pub const FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V6: Uuid =
    uuid!("a9a0d6d9-c58c-474e-8aeb-3cfe99d6d53d");
/// IPsec inbound tunnel ALE accept callout, IPv4.
pub const FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_ALE_ACCEPT_V4: Uuid =
    uuid!("3df6e7de-fd20-48f2-9f26-f854444cba79");
/// IPsec inbound tunnel ALE accept callout, IPv6.
pub const FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_ALE_ACCEPT_V6: Uuid =
    uuid!("a1e392d3-72ac-47bb-87a7-0122c69434ab");
/// IPsec ALE connect callout, IPv4.
pub const FWPM_CALLOUT_IPSEC_ALE_CONNECT_V4: Uuid = uuid!("6ac141fc-f75d-4203-b9c8-48e6149c2712");
/// IPsec ALE connect callout, IPv6.
pub const FWPM_CALLOUT_IPSEC_ALE_CONNECT_V6: Uuid = uuid!("4c0dda05-e31f-4666-90b0-b3dfad34129a");
/// IPsec DoS-protection forward callout, IPv4.
pub const FWPM_CALLOUT_IPSEC_DOSP_FORWARD_V4: Uuid = uuid!("2fcb56ec-cd37-4b4f-b108-62c2b1850a0c");
/// IPsec DoS-protection forward callout, IPv6.
pub const FWPM_CALLOUT_IPSEC_DOSP_FORWARD_V6: Uuid = uuid!("6d08a342-db9e-4fbe-9ed2-57374ce89f79");

// ---- Providers (fwpmu.h, "GUIDs for built-in providers") ----

/// The IKEEXT provider (owner of the IKE/AuthIP keying objects).
pub const FWPM_PROVIDER_IKEEXT: Uuid = uuid!("10ad9216-ccde-456c-8b16-e9f04e60a90b");
/// The IPsec DoS-protection configuration provider.
pub const FWPM_PROVIDER_IPSEC_DOSP_CONFIG: Uuid = uuid!("3c6c05a9-c05c-4bb9-8338-2327814ce8bf");

// ---- Keying modules (fwpmu.h, "GUIDs for built-in keying modules") ----

/// The IKE (IKEv1) keying module.
pub const FWPM_KEYING_MODULE_IKE: Uuid = uuid!("a9bbf787-82a8-45bb-a400-5d7e5952c7a9");
/// The AuthIP keying module.
pub const FWPM_KEYING_MODULE_AUTHIP: Uuid = uuid!("11e3dae0-dd26-4590-857d-ab4b28d1a095");
/// The IKEv2 keying module.
pub const FWPM_KEYING_MODULE_IKEV2: Uuid = uuid!("041792cc-8f07-419d-a394-716968cb1647");

// ---- Conditions (fwpmu.h, "GUIDs for built-in conditions") ----

/// Condition field: local IP address.
pub const FWPM_CONDITION_IP_LOCAL_ADDRESS: Uuid = uuid!("d9ee00de-c1ef-4617-bfe3-ffd8f5a08957");
/// Condition field: remote IP address.
pub const FWPM_CONDITION_IP_REMOTE_ADDRESS: Uuid = uuid!("b235ae9a-1d64-49b8-a44c-5ff3d9095045");
/// Condition field: source IP address (forwarding layers).
pub const FWPM_CONDITION_IP_SOURCE_ADDRESS: Uuid = uuid!("ae96897e-2e94-4bc9-b313-b27ee80e574d");
/// Condition field: destination IP address (forwarding layers).
pub const FWPM_CONDITION_IP_DESTINATION_ADDRESS: Uuid =
    uuid!("2d79133b-b390-45c6-8699-acaceaafed33");
/// Condition field: local address type (unicast, broadcast, ...).
pub const FWPM_CONDITION_IP_LOCAL_ADDRESS_TYPE: Uuid =
    uuid!("6ec7f6c4-376b-45d7-9e9c-d337cedcd237");
/// Condition field: destination address type (unicast, broadcast, ...).
pub const FWPM_CONDITION_IP_DESTINATION_ADDRESS_TYPE: Uuid =
    uuid!("1ec1b7c9-4eea-4f5e-b9ef-76beaaaf17ee");
/// Condition field: local interface (LUID).
pub const FWPM_CONDITION_IP_LOCAL_INTERFACE: Uuid = uuid!("4cd62a49-59c3-4969-b7f3-bda5d32890a4");
/// Condition field: forwarding interface.
pub const FWPM_CONDITION_IP_FORWARD_INTERFACE: Uuid = uuid!("1076b8a5-6323-4c5e-9810-e8d3fc9e6136");
/// Condition field: IP protocol number.
pub const FWPM_CONDITION_IP_PROTOCOL: Uuid = uuid!("3971ef2b-623e-4f9a-8cb1-6e79b806b9a7");
/// Condition field: local transport port (ICMP type on ICMP).
pub const FWPM_CONDITION_IP_LOCAL_PORT: Uuid = uuid!("0c1ba1af-5765-453f-af22-a8f791ac775b");
/// Condition field: remote transport port (ICMP code on ICMP).
pub const FWPM_CONDITION_IP_REMOTE_PORT: Uuid = uuid!("c35a604d-d22b-4e1a-91b4-68f674ee674b");
/// Condition field: current network profile (domain, private, public).
pub const FWPM_CONDITION_CURRENT_PROFILE_ID: Uuid = uuid!("ab3033c9-c0e3-4759-937d-5758c65d4ae3");
/// Condition field: why a connection is being re-authorized.
pub const FWPM_CONDITION_REAUTHORIZE_REASON: Uuid = uuid!("11205e8c-11ae-457a-8a44-477026dd764a");
/// Condition field: interface type (IANA ifType).
pub const FWPM_CONDITION_INTERFACE_TYPE: Uuid = uuid!("daf8cd14-e09e-4c93-a5ae-c5c13b73ffca");
/// Condition field: tunnel type of the interface.
pub const FWPM_CONDITION_TUNNEL_TYPE: Uuid = uuid!("77a40437-8779-4868-a261-f5a902f1c0cd");
/// Condition field: the layer's `FWP_CONDITION_FLAG_*` bits.
pub const FWPM_CONDITION_FLAGS: Uuid = uuid!("632ce23b-5167-435c-86d7-e903684aa80c");
/// Condition field: packet or connection direction.
pub const FWPM_CONDITION_DIRECTION: Uuid = uuid!("8784c146-ca97-44d6-9fd1-19fb1840cbf7");
/// Condition field: interface index.
pub const FWPM_CONDITION_INTERFACE_INDEX: Uuid = uuid!("667fd755-d695-434a-8af5-d3835a1259bc");
/// Condition field: sub-interface index.
pub const FWPM_CONDITION_SUB_INTERFACE_INDEX: Uuid = uuid!("0cd42473-d621-4be3-ae8c-72a348d283e1");
/// Condition field: application identifier (ALE layers).
pub const FWPM_CONDITION_ALE_APP_ID: Uuid = uuid!("d78e1e87-8644-4ea5-9437-d809ecefc971");
/// Condition field: local user (ALE layers).
pub const FWPM_CONDITION_ALE_USER_ID: Uuid = uuid!("af043a0a-b34d-4f86-979c-c90371af6e66");
/// Condition field: authenticated remote user (ALE layers).
pub const FWPM_CONDITION_ALE_REMOTE_USER_ID: Uuid = uuid!("f63073b7-0189-4ab0-95a4-6123cbfab862");
/// Condition field: authenticated remote machine (ALE layers).
pub const FWPM_CONDITION_ALE_REMOTE_MACHINE_ID: Uuid =
    uuid!("1aa47f51-7f93-4508-a271-81abb00c9cab");
/// Condition field: peer name (keying-module authorization).
pub const FWPM_CONDITION_PEER_NAME: Uuid = uuid!("9b539082-eb90-4186-a6cc-de5b63235016");
/// Condition field: remote identity (keying-module authorization).
pub const FWPM_CONDITION_REMOTE_ID: Uuid = uuid!("f68166fd-0682-4c89-b8f5-86436c7ef9b7");
/// Condition field: authentication type (keying-module authorization).
pub const FWPM_CONDITION_AUTHENTICATION_TYPE: Uuid = uuid!("eb458cd5-da7b-4ef9-8d43-7b0a840332f2");
/// Condition field: keying-module type.
pub const FWPM_CONDITION_KM_TYPE: Uuid = uuid!("ff0f5f49-0ceb-481b-8638-1479791f3f2c");
/// Condition field: keying-module mode (main, quick, extended).
pub const FWPM_CONDITION_KM_MODE: Uuid = uuid!("feef4582-ef8f-4f7b-858b-9077d122de47");
/// Condition field: key of the IPsec policy under negotiation.
pub const FWPM_CONDITION_IPSEC_POLICY_KEY: Uuid = uuid!("ad37dee3-722f-45cc-a4e3-068048124452");

// ---- Aliases (fwpmu.h `#define`s of the constants above) ----

/// Alias of [`FWPM_SUBLAYER_TEREDO`] (`#define` in the header).
pub const FWPM_SUBLAYER_EDGE_TRAVERSAL: Uuid = FWPM_SUBLAYER_TEREDO;
/// Alias of [`FWPM_CONDITION_IP_LOCAL_INTERFACE`] (`#define` in the header).
pub const FWPM_CONDITION_INTERFACE: Uuid = FWPM_CONDITION_IP_LOCAL_INTERFACE;
/// Alias of [`FWPM_CONDITION_INTERFACE_TYPE`] (`#define` in the header).
pub const FWPM_CONDITION_LOCAL_INTERFACE_TYPE: Uuid = FWPM_CONDITION_INTERFACE_TYPE;
/// Alias of [`FWPM_CONDITION_TUNNEL_TYPE`] (`#define` in the header).
pub const FWPM_CONDITION_LOCAL_TUNNEL_TYPE: Uuid = FWPM_CONDITION_TUNNEL_TYPE;
/// Alias of [`FWPM_CONDITION_IP_LOCAL_PORT`]: the ICMP type travels in the local-port field.
pub const FWPM_CONDITION_ICMP_TYPE: Uuid = FWPM_CONDITION_IP_LOCAL_PORT;
/// Alias of [`FWPM_CONDITION_IP_REMOTE_PORT`]: the ICMP code travels in the remote-port field.
pub const FWPM_CONDITION_ICMP_CODE: Uuid = FWPM_CONDITION_IP_REMOTE_PORT;
/// Alias of [`FWPM_CONDITION_INTERFACE_INDEX`] (`#define` in the header).
pub const FWPM_CONDITION_LOCAL_INTERFACE_INDEX: Uuid = FWPM_CONDITION_INTERFACE_INDEX;
/// Alias of [`FWPM_CONDITION_SUB_INTERFACE_INDEX`] (`#define` in the header).
pub const FWPM_CONDITION_ARRIVAL_SUB_INTERFACE_INDEX: Uuid = FWPM_CONDITION_SUB_INTERFACE_INDEX;

// ---- Filter contexts (fwpmu.h, "Well-known filter contexts"; `rawContext` values) ----

/// Filter context for the inbound IPsec transport layer: pass-through.
pub const FWPM_CONTEXT_IPSEC_INBOUND_PASSTHRU: u64 = 0x1;
/// Filter context for the inbound IPsec transport layer: persist connection security.
pub const FWPM_CONTEXT_IPSEC_INBOUND_PERSIST_CONNECTION_SECURITY: u64 = 0x2;
/// Filter context for the inbound IPsec transport layer: reserved bits.
pub const FWPM_CONTEXT_IPSEC_INBOUND_RESERVED: u64 = 0xff00_0000_0000_0000;
/// Filter context for the inbound IPsec transport layer: security realm id.
pub const FWPM_CONTEXT_IPSEC_INBOUND_SECURITY_REALM_ID: u64 = 0x4;
/// Filter context for the outbound IPsec transport layer: negotiate discover.
pub const FWPM_CONTEXT_IPSEC_OUTBOUND_NEGOTIATE_DISCOVER: u64 = 0x1;
/// Filter context for the outbound IPsec transport layer: suppress negotiation.
pub const FWPM_CONTEXT_IPSEC_OUTBOUND_SUPPRESS_NEGOTIATION: u64 = 0x2;
/// Filter context for the ALE connect layer: the connection requires IPsec security.
pub const FWPM_CONTEXT_ALE_SET_CONNECTION_REQUIRE_IPSEC_SECURITY: u64 = 0x2;
/// Filter context for the ALE connect layer: lazy security-descriptor evaluation.
pub const FWPM_CONTEXT_ALE_SET_CONNECTION_LAZY_SD_EVALUATION: u64 = 0x4;
/// Filter context for the ALE connect or accept layer: the connection requires IPsec encryption.
pub const FWPM_CONTEXT_ALE_SET_CONNECTION_REQUIRE_IPSEC_ENCRYPTION: u64 = 0x8;
/// Filter context for the ALE connect or accept layer: allow the first inbound packet unencrypted.
pub const FWPM_CONTEXT_ALE_SET_CONNECTION_ALLOW_FIRST_INBOUND_PKT_UNENCRYPTED: u64 = 0x10;
/// Filter context: allow authenticated firewall (at connect, valid only with `REQUIRE_IPSEC_SECURITY`).
pub const FWPM_CONTEXT_ALE_ALLOW_AUTH_FW: u64 = 0x20;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Pairs each named constant with its name.
    macro_rules! named {
        ($($name:ident),* $(,)?) => {
            &[$((stringify!($name), $name)),*]
        };
    }

    /// Every distinct GUID defined above (aliases excluded), with its name.
    const ALL: &[(&str, Uuid)] = named![
        FWPM_LAYER_IKEEXT_V4,
        FWPM_LAYER_IKEEXT_V6,
        FWPM_LAYER_IPSEC_V4,
        FWPM_LAYER_IPSEC_V6,
        FWPM_LAYER_IPSEC_KM_DEMUX_V4,
        FWPM_LAYER_IPSEC_KM_DEMUX_V6,
        FWPM_LAYER_INBOUND_TRANSPORT_V4,
        FWPM_LAYER_INBOUND_TRANSPORT_V6,
        FWPM_LAYER_OUTBOUND_TRANSPORT_V4,
        FWPM_LAYER_OUTBOUND_TRANSPORT_V6,
        FWPM_LAYER_IPFORWARD_V4,
        FWPM_LAYER_IPFORWARD_V6,
        FWPM_LAYER_ALE_AUTH_CONNECT_V4,
        FWPM_LAYER_ALE_AUTH_CONNECT_V6,
        FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4,
        FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V6,
        FWPM_LAYER_KM_AUTHORIZATION,
        FWPM_SUBLAYER_UNIVERSAL,
        FWPM_SUBLAYER_IPSEC_TUNNEL,
        FWPM_SUBLAYER_IPSEC_FORWARD_OUTBOUND_TUNNEL,
        FWPM_SUBLAYER_IPSEC_SECURITY_REALM,
        FWPM_SUBLAYER_IPSEC_DOSP,
        FWPM_SUBLAYER_INSPECTION,
        FWPM_SUBLAYER_SECURE_SOCKET,
        FWPM_SUBLAYER_LIPS,
        FWPM_SUBLAYER_RPC_AUDIT,
        FWPM_SUBLAYER_TEREDO,
        FWPM_SUBLAYER_TCP_CHIMNEY_OFFLOAD,
        FWPM_SUBLAYER_TCP_TEMPLATES,
        FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4,
        FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V6,
        FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4,
        FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V6,
        FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_V4,
        FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_V6,
        FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V4,
        FWPM_CALLOUT_IPSEC_OUTBOUND_TUNNEL_V6,
        FWPM_CALLOUT_IPSEC_FORWARD_INBOUND_TUNNEL_V4,
        FWPM_CALLOUT_IPSEC_FORWARD_INBOUND_TUNNEL_V6,
        FWPM_CALLOUT_IPSEC_FORWARD_OUTBOUND_TUNNEL_V4,
        FWPM_CALLOUT_IPSEC_FORWARD_OUTBOUND_TUNNEL_V6,
        FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V4,
        FWPM_CALLOUT_IPSEC_INBOUND_INITIATE_SECURE_V6,
        FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_ALE_ACCEPT_V4,
        FWPM_CALLOUT_IPSEC_INBOUND_TUNNEL_ALE_ACCEPT_V6,
        FWPM_CALLOUT_IPSEC_ALE_CONNECT_V4,
        FWPM_CALLOUT_IPSEC_ALE_CONNECT_V6,
        FWPM_CALLOUT_IPSEC_DOSP_FORWARD_V4,
        FWPM_CALLOUT_IPSEC_DOSP_FORWARD_V6,
        FWPM_PROVIDER_IKEEXT,
        FWPM_PROVIDER_IPSEC_DOSP_CONFIG,
        FWPM_KEYING_MODULE_IKE,
        FWPM_KEYING_MODULE_AUTHIP,
        FWPM_KEYING_MODULE_IKEV2,
        FWPM_CONDITION_IP_LOCAL_ADDRESS,
        FWPM_CONDITION_IP_REMOTE_ADDRESS,
        FWPM_CONDITION_IP_SOURCE_ADDRESS,
        FWPM_CONDITION_IP_DESTINATION_ADDRESS,
        FWPM_CONDITION_IP_LOCAL_ADDRESS_TYPE,
        FWPM_CONDITION_IP_DESTINATION_ADDRESS_TYPE,
        FWPM_CONDITION_IP_LOCAL_INTERFACE,
        FWPM_CONDITION_IP_FORWARD_INTERFACE,
        FWPM_CONDITION_IP_PROTOCOL,
        FWPM_CONDITION_IP_LOCAL_PORT,
        FWPM_CONDITION_IP_REMOTE_PORT,
        FWPM_CONDITION_CURRENT_PROFILE_ID,
        FWPM_CONDITION_REAUTHORIZE_REASON,
        FWPM_CONDITION_INTERFACE_TYPE,
        FWPM_CONDITION_TUNNEL_TYPE,
        FWPM_CONDITION_FLAGS,
        FWPM_CONDITION_DIRECTION,
        FWPM_CONDITION_INTERFACE_INDEX,
        FWPM_CONDITION_SUB_INTERFACE_INDEX,
        FWPM_CONDITION_ALE_APP_ID,
        FWPM_CONDITION_ALE_USER_ID,
        FWPM_CONDITION_ALE_REMOTE_USER_ID,
        FWPM_CONDITION_ALE_REMOTE_MACHINE_ID,
        FWPM_CONDITION_PEER_NAME,
        FWPM_CONDITION_REMOTE_ID,
        FWPM_CONDITION_AUTHENTICATION_TYPE,
        FWPM_CONDITION_KM_TYPE,
        FWPM_CONDITION_KM_MODE,
        FWPM_CONDITION_IPSEC_POLICY_KEY,
    ];

    #[test]
    fn string_forms_match_the_header() {
        // Copied from the `// xxxxxxxx-...` comment lines of fwpmu.h.
        let expected = [
            (
                FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4,
                "5132900d-5e84-4b5f-80e4-01741e81ff10",
            ),
            (
                FWPM_LAYER_OUTBOUND_TRANSPORT_V4,
                "09e61aea-d214-46e2-9b21-b26b0b2f28c8",
            ),
            (FWPM_LAYER_IKEEXT_V4, "b14b7bdb-dbbd-473e-bed4-8b4708d4f270"),
            (
                FWPM_LAYER_KM_AUTHORIZATION,
                "4aa226e9-9020-45fb-956a-c0249d841195",
            ),
            (
                FWPM_SUBLAYER_UNIVERSAL,
                "eebecc03-ced4-4380-819a-2734397b2b74",
            ),
            (FWPM_PROVIDER_IKEEXT, "10ad9216-ccde-456c-8b16-e9f04e60a90b"),
            (
                FWPM_KEYING_MODULE_IKEV2,
                "041792cc-8f07-419d-a394-716968cb1647",
            ),
            (
                FWPM_CONDITION_IP_LOCAL_PORT,
                "0c1ba1af-5765-453f-af22-a8f791ac775b",
            ),
            (
                FWPM_CONDITION_IPSEC_POLICY_KEY,
                "ad37dee3-722f-45cc-a4e3-068048124452",
            ),
            (
                FWPM_CALLOUT_IPSEC_DOSP_FORWARD_V4,
                "2fcb56ec-cd37-4b4f-b108-62c2b1850a0c",
            ),
        ];
        for (guid, text) in expected {
            assert_eq!(guid.hyphenated().to_string(), text);
        }
    }

    #[test]
    fn header_bytes_match() {
        // DEFINE_GUID(FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4, 0x5132900d, 0x5e84, 0x4b5f,
        //             0x80, 0xe4, 0x01, 0x74, 0x1e, 0x81, 0xff, 0x10)
        assert_eq!(
            FWPM_CALLOUT_IPSEC_INBOUND_TRANSPORT_V4,
            Uuid::from_fields(
                0x5132_900d,
                0x5e84,
                0x4b5f,
                &[0x80, 0xe4, 0x01, 0x74, 0x1e, 0x81, 0xff, 0x10]
            )
        );
        // DEFINE_GUID(FWPM_LAYER_KM_AUTHORIZATION, 0x4aa226e9, 0x9020, 0x45fb,
        //             0x95,0x6a, 0xc0, 0x24, 0x9d, 0x84, 0x11, 0x95)
        assert_eq!(
            FWPM_LAYER_KM_AUTHORIZATION,
            Uuid::from_fields(
                0x4aa2_26e9,
                0x9020,
                0x45fb,
                &[0x95, 0x6a, 0xc0, 0x24, 0x9d, 0x84, 0x11, 0x95]
            )
        );
    }

    #[test]
    fn all_guids_are_distinct() {
        let mut seen = HashSet::new();
        for (name, guid) in ALL {
            assert!(seen.insert(*guid), "{name} repeats {guid}");
        }
        let names: HashSet<_> = ALL.iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), ALL.len());
        assert_eq!(ALL.len(), 83);
        assert!(ALL.iter().all(|(_, g)| !g.is_nil()));
    }

    #[test]
    fn aliases_follow_the_header() {
        assert_eq!(FWPM_SUBLAYER_EDGE_TRAVERSAL, FWPM_SUBLAYER_TEREDO);
        assert_eq!(FWPM_CONDITION_INTERFACE, FWPM_CONDITION_IP_LOCAL_INTERFACE);
        assert_eq!(
            FWPM_CONDITION_LOCAL_INTERFACE_TYPE,
            FWPM_CONDITION_INTERFACE_TYPE
        );
        assert_eq!(FWPM_CONDITION_LOCAL_TUNNEL_TYPE, FWPM_CONDITION_TUNNEL_TYPE);
        assert_eq!(FWPM_CONDITION_ICMP_TYPE, FWPM_CONDITION_IP_LOCAL_PORT);
        assert_eq!(FWPM_CONDITION_ICMP_CODE, FWPM_CONDITION_IP_REMOTE_PORT);
        assert_eq!(
            FWPM_CONDITION_LOCAL_INTERFACE_INDEX,
            FWPM_CONDITION_INTERFACE_INDEX
        );
        assert_eq!(
            FWPM_CONDITION_ARRIVAL_SUB_INTERFACE_INDEX,
            FWPM_CONDITION_SUB_INTERFACE_INDEX
        );
    }

    #[test]
    fn filter_contexts() {
        assert_eq!(FWPM_CONTEXT_IPSEC_INBOUND_RESERVED, 0xff00_0000_0000_0000);
        assert_eq!(FWPM_CONTEXT_IPSEC_OUTBOUND_SUPPRESS_NEGOTIATION, 0x2);
        assert_eq!(FWPM_CONTEXT_ALE_ALLOW_AUTH_FW, 0x20);
        // The ALE connection flags are distinct bits.
        let ale = [
            FWPM_CONTEXT_ALE_SET_CONNECTION_REQUIRE_IPSEC_SECURITY,
            FWPM_CONTEXT_ALE_SET_CONNECTION_LAZY_SD_EVALUATION,
            FWPM_CONTEXT_ALE_SET_CONNECTION_REQUIRE_IPSEC_ENCRYPTION,
            FWPM_CONTEXT_ALE_SET_CONNECTION_ALLOW_FIRST_INBOUND_PKT_UNENCRYPTED,
            FWPM_CONTEXT_ALE_ALLOW_AUTH_FW,
        ];
        assert_eq!(
            ale.iter().fold(0, |acc, v| acc | v).count_ones() as usize,
            ale.len()
        );
    }
}
