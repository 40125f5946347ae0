//! Which fast path, if any, an SA's packets take: chosen once when the SA is installed.
//!
//! The general paths (`encap.rs`, `decap.rs`) handle every mode, family, suite and
//! option, and re-derive per packet what only depends on the SA. The fast paths
//! (`encap_fast.rs`, `decap_fast.rs`) cover the shape IKE negotiates by default, tunnel
//! mode over IPv4 with an AEAD suite (AES-GCM, ChaCha20-Poly1305), with or without ESP
//! in UDP and ESN, and do only the per-packet work. They hand a packet back to the
//! general path, untouched, whenever anything is unusual (an inner IPv6 packet, a short
//! buffer, a lifetime limit within reach, a replayed sequence number, ...), so every
//! error and every rare case has one implementation; `tests/fast_path_props.rs` checks
//! that both paths leave identical bytes and state.

use palisade_crypto::EncrId;

use crate::sa::{Direction, Mode, SaConfig, SaTransform};
use crate::tunnel::OuterTemplate;

/// The IV length of the suites the fast paths take.
pub(crate) const AEAD_IV_LEN: usize = 8;

/// The fast path of one SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FastPath {
    /// Every packet takes the general path.
    None,
    /// Outbound: tunnel mode, IPv4 outer header, AEAD, no TFC padding.
    SealTunnelV4(SealTunnelV4),
    /// Inbound: tunnel mode, IPv4 outer header, AEAD.
    OpenTunnelV4,
}

/// What the outbound fast path needs per packet, next to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SealTunnelV4 {
    /// The outer IPv4 header template (protocol ESP, or UDP with `udp_ports`).
    pub outer: OuterTemplate,
    /// The SPI as it goes on the wire.
    pub spi: [u8; 4],
    /// ESP in UDP: source and destination ports as they go on the wire.
    pub udp_ports: Option<[u8; 4]>,
    /// Extended sequence numbers.
    pub esn: bool,
    /// The last sequence number the SA may send (`SecurityAssociation::max_seq`).
    pub max_seq: u64,
}

impl FastPath {
    /// The fast path for an SA of `config` with outer template `outer` (outbound tunnel
    /// mode only).
    pub(crate) fn choose(config: &SaConfig, outer: Option<&OuterTemplate>) -> FastPath {
        // GCM and ChaCha20-Poly1305: 8-byte IV, 16-byte ICV, 4-byte alignment, sealed by
        // `EspTransform`'s AEAD path. GMAC, CBC and NULL keep the general path.
        let aead = matches!(
            config.transform,
            SaTransform::Esp(s) if matches!(s.encr, EncrId::AesGcm16 | EncrId::ChaCha20Poly1305)
        );
        if !aead || config.mode != Mode::Tunnel || !config.local.is_ipv4() {
            return FastPath::None;
        }
        match (config.direction, outer) {
            (Direction::Outbound, Some(outer)) if outer.is_v4() && config.tfc_pad_to.is_none() => {
                FastPath::SealTunnelV4(SealTunnelV4 {
                    outer: *outer,
                    spi: config.spi.to_be_bytes(),
                    udp_ports: config.udp_encap.map(|u| {
                        let [a, b] = u.local_port.to_be_bytes();
                        let [c, d] = u.remote_port.to_be_bytes();
                        [a, b, c, d]
                    }),
                    esn: config.esn,
                    max_seq: if config.esn {
                        u64::MAX
                    } else {
                        u64::from(u32::MAX)
                    },
                })
            }
            (Direction::Inbound, _) => FastPath::OpenTunnelV4,
            _ => FastPath::None,
        }
    }
}
