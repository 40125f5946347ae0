//! Condition fields (WFP's `FWPM_CONDITION_*`): what a filter can test and what a
//! classification supplies.

use serde::{Deserialize, Serialize};

/// The type of the value a field carries at classification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// An IP address of the layer's family (IPv4 at `_V4` layers, IPv6 at `_V6` layers).
    Address,
    /// One byte (protocol numbers, address types, keying-module codes).
    U8,
    /// A port.
    U16,
    /// A 32-bit number or a set of flag bits.
    U32,
    /// A 64-bit number (interface LUIDs).
    U64,
    /// Text: an executable path or a peer name.
    Text,
    /// A caller's credentials (local user: uid and gids) or a peer's authenticated
    /// identities, tested against a security descriptor.
    Token,
    /// A GUID (policy keys).
    Guid,
}

macro_rules! fields {
    ($($(#[$doc:meta])* $variant:ident = $name:literal : $ty:ident,)*) => {
        /// A condition field. Names follow `FWPM_CONDITION_*` without the prefix.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Field {
            $($(#[$doc])* $variant,)*
        }

        impl Field {
            /// Every field, in declaration order (the order of [`Field::index`]).
            pub const ALL: &'static [Field] = &[$(Field::$variant,)*];

            /// The WFP name without `FWPM_CONDITION_`, for example `IP_REMOTE_ADDRESS`.
            pub fn name(self) -> &'static str {
                match self { $(Field::$variant => $name,)* }
            }

            /// The type of value the field carries.
            pub fn field_type(self) -> FieldType {
                match self { $(Field::$variant => FieldType::$ty,)* }
            }
        }
    };
}

fields! {
    /// The local IP address.
    IpLocalAddress = "IP_LOCAL_ADDRESS": Address,
    /// The remote IP address.
    IpRemoteAddress = "IP_REMOTE_ADDRESS": Address,
    /// The local transport port (or ICMP type).
    IpLocalPort = "IP_LOCAL_PORT": U16,
    /// The remote transport port (or ICMP code).
    IpRemotePort = "IP_REMOTE_PORT": U16,
    /// The IP protocol number.
    IpProtocol = "IP_PROTOCOL": U8,
    /// The local interface (on Linux, the interface index widened to a LUID-sized number).
    IpLocalInterface = "IP_LOCAL_INTERFACE": U64,
    /// The network profile the local interface belongs to.
    CurrentProfileId = "CURRENT_PROFILE_ID": U32,
    /// `FWP_CONDITION_FLAG_*` bits describing the packet or connection.
    Flags = "FLAGS": U32,
    /// The interface index.
    InterfaceIndex = "INTERFACE_INDEX": U32,
    /// The interface type (IANA ifType).
    InterfaceType = "INTERFACE_TYPE": U32,
    /// The type of the local address ([`crate::value::address_type`]).
    IpLocalAddressType = "IP_LOCAL_ADDRESS_TYPE": U8,
    /// The type of the destination address ([`crate::value::address_type`]).
    IpDestinationAddressType = "IP_DESTINATION_ADDRESS_TYPE": U8,
    /// The sub-interface index.
    SubInterfaceIndex = "SUB_INTERFACE_INDEX": U32,
    /// The tunnel type of the interface.
    TunnelType = "TUNNEL_TYPE": U32,
    /// The application: on Linux, the executable's path.
    AleAppId = "ALE_APP_ID": Text,
    /// The local user: the uid and gids of the socket's owner.
    AleUserId = "ALE_USER_ID": Token,
    /// The peer's user identity, as extended-mode authentication established it.
    AleRemoteUserId = "ALE_REMOTE_USER_ID": Token,
    /// The peer's machine identity, as main-mode (IKE) authentication established it.
    AleRemoteMachineId = "ALE_REMOTE_MACHINE_ID": Token,
    /// The name the application gave for its peer.
    PeerName = "PEER_NAME": Text,
    /// Why a connection is being authorized again.
    ReauthorizeReason = "REAUTHORIZE_REASON": U32,
    /// The identity the keying module authenticated, at KM_AUTHORIZATION.
    RemoteId = "REMOTE_ID": Token,
    /// The authentication method used ([`crate::value::auth_type`]).
    AuthenticationType = "AUTHENTICATION_TYPE": U8,
    /// The keying module ([`crate::value::km_type`]).
    KmType = "KM_TYPE": U8,
    /// The keying mode ([`crate::value::km_mode`]).
    KmMode = "KM_MODE": U8,
    /// The direction (0 outbound, 1 inbound).
    Direction = "DIRECTION": U32,
    /// The key of the IPsec policy (provider context) being authorized.
    IpsecPolicyKey = "IPSEC_POLICY_KEY": Guid,
    /// The source address of a forwarded packet.
    IpSourceAddress = "IP_SOURCE_ADDRESS": Address,
    /// The destination address of a forwarded packet.
    IpDestinationAddress = "IP_DESTINATION_ADDRESS": Address,
    /// The interface a forwarded packet leaves by.
    IpForwardInterface = "IP_FORWARD_INTERFACE": U64,
}

/// The number of fields; [`crate::value::FieldValues`] has one slot per field.
pub const FIELD_COUNT: usize = Field::ALL.len();

impl Field {
    /// The field's slot in [`crate::value::FieldValues`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Parses a WFP name (`IP_REMOTE_ADDRESS`) or the snake-case serde name
    /// (`ip_remote_address`), ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<Field> {
        let name = name.strip_prefix("FWPM_CONDITION_").unwrap_or(name);
        Field::ALL
            .iter()
            .copied()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
