//! What a CHILD_SA carries, as the inbound callouts check it: its traffic selectors, its
//! mode and outer addresses, whether it encrypts, and who the peer proved to be.

use std::net::IpAddr;

use palisade_crypto::EncrId;
use palisade_filter::policy::TrafficSelector;
use palisade_ike::{ChildProtocol, ChildSa};

use super::{Flow, ProtectionMode};

/// The inbound CHILD_SA a decapsulated packet arrived on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaSelectors {
    /// Our side's traffic (`ChildSa::local_selectors`).
    pub local: Vec<TrafficSelector>,
    /// The peer's side's traffic (`ChildSa::remote_selectors`).
    pub remote: Vec<TrafficSelector>,
    /// Transport, or tunnel between the SA's outer addresses.
    pub mode: ProtectionMode,
    /// ESP with a cipher: what guaranteed encryption (`REQUIRE_IPSEC_ENCRYPTION`)
    /// demands. AH, ENCR_NULL and NULL_AUTH_AES_GMAC do not encrypt.
    pub encrypting: bool,
    /// The identities the peer authenticated with, for `ALE_REMOTE_MACHINE_ID`.
    pub peer_names: Vec<String>,
}

impl SaSelectors {
    /// The selectors, mode and identity of a negotiated CHILD_SA.
    pub fn from_child_sa(sa: &ChildSa) -> SaSelectors {
        let mode = match sa.mode {
            palisade_esp::Mode::Transport => ProtectionMode::Transport,
            palisade_esp::Mode::Tunnel => ProtectionMode::Tunnel {
                local: sa.local,
                remote: sa.remote,
            },
        };
        let encrypting = match sa.protocol {
            ChildProtocol::Esp(s) => !matches!(s.encr, EncrId::Null | EncrId::NullAuthAesGmac),
            ChildProtocol::Ah(_) => false,
        };
        SaSelectors {
            local: sa.local_selectors.clone(),
            remote: sa.remote_selectors.clone(),
            mode,
            encrypting,
            peer_names: vec![sa.peer_id.to_string()],
        }
    }

    /// Whether the SA's selectors cover the flow: one local selector holds our address and
    /// port, and one remote selector theirs (RFC 4301 §5.2 step 4: a packet that arrived
    /// on an SA whose selectors do not cover it is dropped).
    pub fn covers(&self, flow: &Flow) -> bool {
        let (local_port, remote_port) = if !flow.has_ports() {
            (None, None)
        } else if flow.is_icmp() {
            let type_code = (flow.local_port << 8) | (flow.remote_port & 0xff);
            (Some(type_code), Some(type_code))
        } else {
            (Some(flow.local_port), Some(flow.remote_port))
        };
        let side = |list: &[TrafficSelector], addr: IpAddr, port: Option<u16>| {
            list.iter().any(|ts| selects(ts, flow.protocol, addr, port))
        };
        side(&self.local, flow.local, local_port) && side(&self.remote, flow.remote, remote_port)
    }
}

/// Whether one selector holds an address and port. Without a port (a later fragment, a
/// protocol without ports) only a selector of every port does (RFC 4301 §4.4.1: OPAQUE
/// ports match only ANY). ICMP type and code are compared as RFC 7296 §3.13.1 encodes
/// them: type in the high byte, code in the low byte, on either side's selector.
fn selects(ts: &TrafficSelector, protocol: u8, addr: IpAddr, port: Option<u16>) -> bool {
    if ts.protocol_id != 0 && ts.protocol_id != protocol {
        return false;
    }
    if addr.is_ipv4() != ts.start_address.is_ipv4()
        || addr < ts.start_address
        || addr > ts.end_address
    {
        return false;
    }
    let any = ts.port_start == 0 && ts.port_end == u16::MAX;
    match port {
        _ if any => true,
        None => false,
        Some(p) => ts.port_start <= p && p <= ts.port_end,
    }
}
