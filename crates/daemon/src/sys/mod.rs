//! The Linux side of the data plane: TUN, raw ESP and UDP sockets, policy routing, the
//! fail-closed firewall, NFQUEUE, and systemd's notifications. Everything here touches
//! the OS; the decisions are made elsewhere (ipsec_callout, the SAD).

/// SO_MARK on every socket palisaded sends with (ESP, IKE, re-sent clear packets): the
/// policy-routing rule skips marked packets, so they do not loop back into the TUN.
pub const FWMARK: u32 = 0x5041;
/// The routing table that sends protected prefixes into the TUN.
pub const ROUTE_TABLE: u32 = 0x5041;
/// Priority of the policy-routing rule (before `main` at 32766).
pub const RULE_PRIORITY: u32 = 20_000;
/// The NFQUEUE number clear-text packets from protected peers are queued to.
pub const NFQUEUE_NUM: u16 = 0x5041;
/// The TUN device's default name.
pub const DEFAULT_TUN: &str = "pal0";

pub mod checksum;
mod command;
pub mod error;
pub mod esp_socket;
pub mod firewall;
pub mod kernel_drops;
pub mod nfqueue;
pub mod notify;
pub mod route;
pub mod shard;
pub mod sock_diag;
pub mod sockopt;
pub mod tun;
pub mod tun_gro;
pub mod tun_gso;
pub mod udp;

pub use error::SysError;
pub use esp_socket::{EspBatch, EspSocket, SendOutcome};
pub use firewall::{Firewall, FirewallSpec};
pub use kernel_drops::KernelDrops;
pub use nfqueue::{NfQueue, QueuedPacket};
pub use notify::Notifier;
pub use route::PolicyRoutes;
pub use shard::shard_of;
pub use sock_diag::{SockDiag, SocketOwner};
pub use tun::Tun;
pub use tun_gro::TunGro;
pub use udp::{Datagram, IkeSocket, UdpBatch};
pub use udp::{MAX_PAYLOAD as GSO_MAX_PAYLOAD, MAX_SEGMENTS as GSO_MAX_SEGMENTS};
