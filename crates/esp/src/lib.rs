//! palisade-esp: the sans-IO ESP/AH security association engine.
//!
//! The engine takes packets in caller-owned buffers and a clock reading, and returns
//! them sealed or opened in place; sockets, TUN devices and timers belong to the daemon.
//! See `docs/architecture.md` for where it sits.
//!
//! - [`Sad`]: install SAs, [`Sad::encapsulate`] with a handle, [`Sad::decapsulate`] by SPI.
//! - ESP (RFC 4303) in transport and tunnel mode, IPv4 and IPv6, v4-in-v6 and v6-in-v4,
//!   ESP in UDP (RFC 3948), TFC padding, ESN, RFC 6040 ECN, DF and DSCP policies.
//! - AH (RFC 4302), and ESP inside AH as a bundle.
//! - Anti-replay windows in the style of RFC 6479 and soft/hard lifetimes.
//! - [`transport_nat`]: the TCP/UDP checksum fix-up after transport-mode ESP crossed a
//!   NAT (RFC 3948 §3.1.2).
//! - [`reassembly`] and [`fragmentation`]: IP datagrams the host cut for the TUN put
//!   back together to be protected whole, and packets longer than the path cut again.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod ah;
pub mod counters;
mod decap;
mod decap_fast;
pub mod ecn;
mod encap;
mod encap_fast;
mod error;
mod fast_path;
pub mod fragmentation;
pub mod lifetime;
mod outer;
pub mod packet;
pub mod reassembly;
pub mod replay;
mod sa;
mod sad;
pub mod transport_nat;
mod tunnel;

pub use counters::{DropCounters, DropReason, SaCounters};
pub use decap::Opened;
pub use encap::Encapsulated;
pub use error::{ConfigError, EspError};
pub use packet::{MAX_HEADROOM, MAX_TAILROOM, Packet};
pub use palisade_crypto::{EncrId, EspSuite, IntegId};
pub use sa::{DfPolicy, Direction, Mode, SaConfig, SaTransform, SecurityAssociation, UdpEncap};
pub use sad::{Decapsulated, LifetimeEvent, SaBundle, SaHandle, Sad};
