//! palisade-ike: IKEv2 (RFC 7296) as a sans-IO state machine.
//!
//! An [`Endpoint`] holds every IKE SA of one host. The daemon feeds it
//! datagrams, acquires from the data plane and clock readings, and drains
//! datagrams to send and [`Event`]s; it never touches a socket or reads
//! the clock.
//!
//! ```text
//! ike.handle_datagram(now, local, remote, &bytes);
//! ike.handle_acquire(now, Acquire { local, remote, traffic });
//! ike.handle_timeout(now);
//! while let Some(tx) = ike.poll_transmit() { /* send tx.bytes from tx.local to tx.remote */ }
//! while let Some(ev) = ike.poll_event() { /* Event::ChildSaInstalled(child) => sad.install(...) */ }
//! ike.poll_timeout()   // when to call handle_timeout next
//! ```
//!
//! Policy comes from the filter engine through [`PolicyLookup`] (spec §1,
//! §4.1, §6): the main-mode policy (`IKEEXT_POLICY`) for a pair of
//! addresses, the quick-mode policy (`IPSEC_TRANSPORT_POLICY` /
//! `IPSEC_TUNNEL_POLICY`) for the traffic of a CHILD_SA.
//!
//! # What works
//!
//! - IKE_SA_INIT in both roles: proposal selection ([`proposal`]), KE with
//!   ECP-256, ECP-384 and Curve25519, nonces, NAT detection notifications
//!   (detection only), INVALID_KE_PAYLOAD answered and followed.
//! - IKE_AUTH with pre-shared keys (§2.15), identities IPv4/IPv6/FQDN/RFC822
//!   (others opaque), optional required peer identity, and the first
//!   CHILD_SA: ESP (AES-GCM, ChaCha20-Poly1305, AES-CBC+HMAC, NULL+HMAC,
//!   GMAC) or AH, ESN per [`EsnPolicy`], transport (USE_TRANSPORT_MODE) or
//!   tunnel mode, traffic selector narrowing (§2.9). The result is a
//!   [`ChildSa`] that converts to `palisade_esp::SaConfig` + KEYMAT.
//! - NAT traversal, the part strongSwan needs: NAT detection, IKE floats to
//!   port 4500 from IKE_AUTH on when a NAT is detected (RFC 7296 §2.23), a
//!   peer's new ports are followed once a message from them authenticates,
//!   and the CHILD_SA then carries `udp_encap` for ESP in UDP (RFC 3948).
//!   The driver adds and strips the non-ESP marker on port 4500.
//! - SK payload protection via `palisade_crypto::IkeProtection`.
//! - Message IDs with window 1, retransmission with exponential back-off
//!   and give-up, cached responses resent byte for byte, drops counted by
//!   [`DropReason`].
//! - INFORMATIONAL: Delete of CHILD_SAs and of the IKE SA in both
//!   directions, liveness checks.
//!
//! # Not yet (TODO)
//!
//! - CREATE_CHILD_SA: no rekeying of CHILD_SAs or the IKE SA, no further
//!   CHILD_SAs on an IKE SA (requests are answered NO_ADDITIONAL_SAS), so
//!   lifetimes end SAs instead of renewing them.
//! - Certificates, EAP, RFC 7427 signatures, SIGNATURE_HASH_ALGORITHMS.
//! - NAT keepalives (RFC 3948 §2.3), address changes (MOBIKE), AH behind a
//!   NAT (refused by palisade-esp, not yet by negotiation).
//! - COOKIE (§2.6) in both roles; IKE fragmentation (RFC 7383);
//!   IKE_INTERMEDIATE and ML-KEM (RFC 9242, RFC 9370); MODP groups (until
//!   palisade-crypto offers them through `KeId`).
//! - AH+ESP bundles; CHILD_SA PFS (irrelevant until CREATE_CHILD_SA).
//! - The filter-engine binding of [`PolicyLookup`] and the daemon.
//! - An initiator that rejects the responder's AUTH does not send a Delete.
//! - No limit on half-open IKE SAs beyond their 30 s timeout (cookies).
//!
//! # Tests
//!
//! `tests/establish.rs` and `tests/reliability.rs` run two endpoints over a
//! simulated network (loss, duplication, reordering, a NAT) with a test
//! clock and prove the CHILD_SA keys with palisade-esp; `tests/mutation.rs`
//! feeds mutated messages; `tests/strongswan.rs` negotiates with charon in
//! network namespaces in both roles and pings through the tunnel (root and
//! strongSwan needed, else skipped).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;
mod child_sa;
mod endpoint;
mod error;
mod event;
mod exchange;
mod identity;
mod ike_sa;
mod message;
pub mod nat;
mod policy;
pub mod proposal;
mod random;
mod retransmit;
pub mod traffic_selector;

pub use auth::{SignedOctets, psk_auth, verify_psk_auth};
pub use child_sa::{ChildSa, SaInstall, lifetime};
pub use endpoint::{Endpoint, EndpointConfig, Transmit};
pub use error::{Counters, DropReason, Failure, FailurePoint, FailureReason, Role, Stage};
pub use event::{ChildSaDeleted, Event, IkeSaId, IkeSaInfo};
pub use identity::Identity;
pub use policy::{
    Acquire, ChildPolicy, IkePolicy, PolicyLookup, QuickModePolicy, StaticPolicy, Traffic,
};
pub use proposal::{ChildProtocol, EsnPolicy, IkeTransforms};
pub use random::{Random, RandomError, SystemRandom};
pub use retransmit::RetransmitConfig;
