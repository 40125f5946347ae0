//! Packet formats for the Palisade IPsec data plane.
//!
//! This crate only parses and emits wire formats: IPv4/IPv6 headers and
//! extension chains, ESP (RFC 4303), AH (RFC 4302), UDP and the NAT-T
//! encapsulation of RFC 3948. It does no cryptography and no I/O.
//!
//! Every parser runs once per packet on attacker-controlled bytes, so two
//! rules hold throughout: no input can make any function panic (all access is
//! bounds-checked and malformed input yields a [`WireError`]), and nothing on
//! a parse or emit path allocates. The crate is `no_std` to enforce the
//! latter at compile time.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ah;
pub mod ah_mutable;
mod bytes;
pub mod checksum;
pub mod error;
pub mod esp;
pub mod ikev2;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod ipv6_ext;
pub mod ipv6_options;
pub mod natt;
pub mod udp;

pub use ah::{AH_FIXED_LEN, AhHeader, ah_len_for};
pub use ah_mutable::{zero_mutable_ipv4, zero_mutable_ipv6};
pub use checksum::{Checksum, internet_checksum, ipv4_header_checksum};
pub use error::WireError;
pub use esp::{ESP_HEADER_LEN, ESP_TRAILER_LEN, EspHeader, EspTrailer, check_padding, pad_len_for};
pub use ip::{IpVersion, ip_version, proto};
pub use ipv4::{IPV4_MIN_HEADER_LEN, Ipv4Header};
pub use ipv6::{IPV6_HEADER_LEN, Ipv6Header};
pub use ipv6_ext::{ExtChain, ExtHeader, MAX_EXT_HEADERS};
pub use natt::{NAT_KEEPALIVE, NAT_T_PORT, NON_ESP_MARKER, Udp4500Payload, classify_udp_4500};
pub use udp::{UDP_HEADER_LEN, UdpHeader, udp_checksum_v4, udp_checksum_v6};
