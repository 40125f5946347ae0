//! One security association: its configuration, keys and per-packet state.

use std::net::IpAddr;
use std::time::Instant;

use palisade_crypto::{AhTransform, EncrId, EspSuite, EspTransform, IntegId};

use crate::counters::SaCounters;
use crate::error::ConfigError;
use crate::fast_path::FastPath;
use crate::lifetime::{Expiry, Lifetime, LifetimeTracker};
use crate::replay::{DEFAULT_REPLAY_WINDOW, ReplayWindow};
use crate::tunnel::OuterTemplate;

/// Which way the SA carries traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Packets we receive and open.
    Inbound,
    /// Packets we seal and send.
    Outbound,
}

/// RFC 4301 §4.1 SA modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// ESP/AH between the IP header and the upper-layer protocol.
    Transport,
    /// A whole inner IP packet inside a new outer header from `local` to `remote`.
    Tunnel,
}

/// What the SA applies: ESP with a suite, or AH with an integrity algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaTransform {
    /// ESP (RFC 4303).
    Esp(EspSuite),
    /// AH (RFC 4302).
    Ah(IntegId),
}

impl SaTransform {
    /// The IP protocol number of the SA's header (50 or 51).
    pub fn ip_protocol(&self) -> u8 {
        match self {
            SaTransform::Esp(_) => palisade_wire::proto::ESP,
            SaTransform::Ah(_) => palisade_wire::proto::AH,
        }
    }
}

/// The DF bit of the outer IPv4 header (RFC 4301 §8.1): the one built in tunnel mode,
/// the packet's own in transport mode (where `Copy` leaves it as it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DfPolicy {
    /// Copy DF from an inner IPv4 header; set it for inner IPv6, which routers never fragment.
    #[default]
    Copy,
    /// Always set DF.
    Set,
    /// Always clear DF (WFP's CLEAR_DF_ON_TUNNEL).
    Clear,
}

/// ESP in UDP (RFC 3948): the ports of the outer UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpEncap {
    /// Our port (source of what we send).
    pub local_port: u16,
    /// The peer's port, after any NAT (destination of what we send).
    pub remote_port: u16,
}

impl Default for UdpEncap {
    fn default() -> Self {
        UdpEncap {
            local_port: palisade_wire::NAT_T_PORT,
            remote_port: palisade_wire::NAT_T_PORT,
        }
    }
}

/// Everything about an SA except its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaConfig {
    /// The Security Parameters Index; for inbound SAs chosen by us, for outbound by the peer.
    pub spi: u32,
    /// Inbound or outbound.
    pub direction: Direction,
    /// Transport or tunnel.
    pub mode: Mode,
    /// ESP suite or AH algorithm.
    pub transform: SaTransform,
    /// Our address: the source of outbound and the destination of inbound packets
    /// (the outer header in tunnel mode).
    pub local: IpAddr,
    /// The peer's address.
    pub remote: IpAddr,
    /// Extended (64-bit) sequence numbers, RFC 4303 §2.2.1.
    pub esn: bool,
    /// Anti-replay window in packets; 0 turns the check off (manual keying only).
    pub replay_window: u32,
    /// Soft and hard lifetimes.
    pub lifetime: Lifetime,
    /// ESP in UDP, for NAT traversal.
    pub udp_encap: Option<UdpEncap>,
    /// Tunnel mode only: pad inner packets with TFC padding up to this length (RFC 4303 §2.7).
    pub tfc_pad_to: Option<u16>,
    /// The outer DF bit (IPv4).
    pub df: DfPolicy,
    /// Copy the inner DSCP to the outer header in tunnel mode.
    pub copy_dscp: bool,
    /// TTL / hop limit of outer headers built in tunnel mode.
    pub ttl: u8,
    /// Allow ESP with encryption but no integrity (RFC 4303 permits it; it is unsafe).
    pub allow_unauthenticated: bool,
}

impl SaConfig {
    /// An SA with the defaults: transport mode, 32-bit sequence numbers, a 1024-packet
    /// replay window, no lifetime limits, no UDP encapsulation, DF copied, DSCP copied, TTL 64.
    pub fn new(
        spi: u32,
        direction: Direction,
        transform: SaTransform,
        local: IpAddr,
        remote: IpAddr,
    ) -> Self {
        SaConfig {
            spi,
            direction,
            mode: Mode::Transport,
            transform,
            local,
            remote,
            esn: false,
            replay_window: DEFAULT_REPLAY_WINDOW,
            lifetime: Lifetime::default(),
            udp_encap: None,
            tfc_pad_to: None,
            df: DfPolicy::Copy,
            copy_dscp: true,
            ttl: 64,
            allow_unauthenticated: false,
        }
    }

    /// Checks everything that does not need keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.spi < 256 {
            return Err(ConfigError::ReservedSpi(self.spi));
        }
        if self.local.is_ipv4() != self.remote.is_ipv4() {
            return Err(ConfigError::AddressFamilyMismatch);
        }
        if let SaTransform::Esp(suite) = self.transform {
            suite.validate()?;
            let unauthenticated = suite.encr == EncrId::AesCbc && suite.integ == IntegId::None;
            if unauthenticated && !self.allow_unauthenticated {
                return Err(ConfigError::Unauthenticated);
            }
        }
        if matches!(self.transform, SaTransform::Ah(_)) && self.udp_encap.is_some() {
            // AH covers the IP addresses, which a NAT rewrites (RFC 3948 §1).
            return Err(ConfigError::AhInUdp);
        }
        self.lifetime.validate()?;
        Ok(())
    }
}

/// The keyed transform of an SA.
pub(crate) enum Cipher {
    Esp(EspTransform),
    Ah(AhTransform),
}

/// A live SA: configuration, keys, sequence and replay state, lifetime and counters.
pub struct SecurityAssociation {
    pub(crate) config: SaConfig,
    pub(crate) cipher: Cipher,
    /// Outbound: the last sequence number used (0 = none yet).
    pub(crate) seq: u64,
    /// Inbound: the window (also tracks the top for ESN inference).
    pub(crate) replay: ReplayWindow,
    pub(crate) lifetime: LifetimeTracker,
    /// Outbound tunnel mode over IPv4: the Identification of the next outer header.
    pub(crate) ip_id: u16,
    pub(crate) counters: SaCounters,
    /// Whether [`crate::Sad::poll_lifetimes`] already reported the hard expiry.
    pub(crate) hard_reported: bool,
    /// ESP: IV, ICV and padding sizes of the suite, looked up once.
    pub(crate) sizes: EspSizes,
    /// Outbound tunnel mode: the outer header, built once.
    pub(crate) outer: Option<OuterTemplate>,
    /// The fast path this SA's packets try first (see `fast_path.rs`).
    pub(crate) fast: FastPath,
}

/// The per-suite sizes ESP needs per packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct EspSizes {
    pub iv: usize,
    pub icv: usize,
    pub align: usize,
}

impl core::fmt::Debug for SecurityAssociation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never the keys.
        f.debug_struct("SecurityAssociation")
            .field("config", &self.config)
            .field("seq", &self.seq)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// Sequence numbers left before the SA reports itself soft-expired, so that a rekey
/// can finish before the counter runs out (RFC 4303 §3.3.3 forbids cycling).
pub const SEQ_SOFT_MARGIN: u64 = 1 << 20;

impl SecurityAssociation {
    /// Keys an SA. `keymat` is laid out as IKEv2 derives it (RFC 7296 §2.17): the
    /// encryption key (with its salt, for the AEADs) then the integrity key.
    pub fn new(config: SaConfig, keymat: &[u8], now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        let cipher = match config.transform {
            SaTransform::Esp(suite) => Cipher::Esp(EspTransform::new(suite, keymat)?),
            SaTransform::Ah(integ) => Cipher::Ah(AhTransform::new(integ, keymat)?),
        };
        let window = match config.direction {
            Direction::Inbound => config.replay_window,
            Direction::Outbound => 0,
        };
        let replay = ReplayWindow::new(window, config.esn)?;
        let sizes = match config.transform {
            SaTransform::Esp(suite) => EspSizes {
                iv: suite.iv_len(),
                icv: suite.icv_len(),
                align: suite.align(),
            },
            SaTransform::Ah(_) => EspSizes::default(),
        };
        let outer = match (config.mode, config.direction) {
            (Mode::Tunnel, Direction::Outbound) => {
                let protocol = match (config.transform, config.udp_encap) {
                    (SaTransform::Esp(_), Some(_)) => palisade_wire::proto::UDP,
                    (t, _) => t.ip_protocol(),
                };
                Some(
                    OuterTemplate::new(
                        config.local,
                        config.remote,
                        protocol,
                        config.ttl,
                        config.df,
                        config.copy_dscp,
                    )
                    .map_err(|_| ConfigError::AddressFamilyMismatch)?,
                )
            }
            _ => None,
        };
        let fast = FastPath::choose(&config, outer.as_ref());
        Ok(SecurityAssociation {
            sizes,
            outer,
            fast,
            lifetime: LifetimeTracker::new(config.lifetime, now),
            config,
            cipher,
            seq: 0,
            replay,
            ip_id: 0,
            counters: SaCounters::default(),
            hard_reported: false,
        })
    }

    /// The configuration the SA was installed with.
    pub fn config(&self) -> &SaConfig {
        &self.config
    }

    /// Packets, bytes and drops.
    pub fn counters(&self) -> &SaCounters {
        &self.counters
    }

    /// Outbound: the last sequence number sent. Inbound: the highest one accepted.
    pub fn sequence(&self) -> u64 {
        match self.config.direction {
            Direction::Outbound => self.seq,
            Direction::Inbound => self.replay.top(),
        }
    }

    /// The lifetime state (bytes and packets so far, creation time).
    pub fn lifetime(&self) -> &LifetimeTracker {
        &self.lifetime
    }

    /// The largest sequence number this SA may send.
    pub(crate) fn max_seq(&self) -> u64 {
        if self.config.esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        }
    }

    /// Takes the next outbound sequence number, refusing to wrap.
    pub(crate) fn next_seq(&mut self) -> Result<(u64, bool), crate::EspError> {
        if self.seq >= self.max_seq() {
            return Err(crate::EspError::SequenceExhausted);
        }
        self.seq += 1;
        let soft = self.max_seq() - self.seq < SEQ_SOFT_MARGIN;
        Ok((self.seq, soft))
    }

    /// Accounts a packet of `bytes` against the lifetime before it is passed on:
    /// `Err(LifetimeExpired)` beyond a hard limit, else whether a soft limit is reached.
    pub(crate) fn account(&mut self, bytes: usize, now: Instant) -> Result<bool, crate::EspError> {
        match self.lifetime.account(bytes as u64, now) {
            Expiry::HardExpired => Err(crate::EspError::LifetimeExpired),
            Expiry::Alive => Ok(false),
            Expiry::NewlySoft | Expiry::SoftExpired => Ok(true),
        }
    }

    /// Counts a packet the SA protected or accepted.
    pub(crate) fn count(&mut self, bytes: usize) {
        self.counters.packets += 1;
        self.counters.bytes += bytes as u64;
    }

    /// Test and benchmark hook: continue the outbound sequence from `seq`.
    #[doc(hidden)]
    pub fn set_outbound_sequence(&mut self, seq: u64) {
        self.seq = seq;
    }

    /// Test and benchmark hook: whether the SA may use its fast path (on by default),
    /// so that tests can run the same packets through the general path alone.
    #[doc(hidden)]
    pub fn set_fast_path_for_test(&mut self, enabled: bool) {
        self.fast = if enabled {
            FastPath::choose(&self.config, self.outer.as_ref())
        } else {
            FastPath::None
        };
    }

    /// Test hook: whether the SA has a fast path at all.
    #[doc(hidden)]
    pub fn has_fast_path_for_test(&self) -> bool {
        self.fast != FastPath::None
    }

    /// Test hook: the anti-replay window, to compare two SAs' states.
    #[doc(hidden)]
    pub fn replay_window_for_test(&self) -> &ReplayWindow {
        &self.replay
    }
}
