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
//! `IPSEC_TUNNEL_POLICY`) for the traffic of a CHILD_SA. [`EnginePolicy`]
//! answers those lookups from a `palisade_filter::Engine`.
//!
//! # What works
//!
//! - IKE_SA_INIT in both roles: proposal selection ([`proposal`]), KE with
//!   MODP-2048/3072/4096, ECP-256, ECP-384, ECP-521 and Curve25519, nonces, NAT detection notifications
//!   (detection only), INVALID_KE_PAYLOAD answered and followed.
//! - IKE_AUTH with pre-shared keys (§2.15) or X.509 certificates
//!   ([`Credentials`] in [`IkePolicy::certificates`], loaded by the daemon):
//!   CERT (end entity and intermediates) and CERTREQ (SHA-1 hashes of our
//!   trust anchors, in the IKE_SA_INIT response and the IKE_AUTH request);
//!   AUTH signed with RSA or ECDSA keys by RFC 7427 Digital Signature when
//!   the peer sent SIGNATURE_HASH_ALGORITHMS (which we send, see
//!   [`EndpointConfig::signature_hash_algorithms`]), else by the classic
//!   methods 1 and 9-11; the peer's certificate validated to the trust
//!   anchors at the wall-clock time the driver gives
//!   ([`Endpoint::set_unix_time`]), its identity matched against the
//!   certificate, then its signature checked; each refusal named in
//!   [`CertificateFailure`]. Pre-shared key and certificate may be mixed
//!   (one side signs, the other MACs). Identities IPv4/IPv6/FQDN/RFC822 and
//!   DN (ID_DER_ASN1_DN, sent by default with a certificate; others
//!   opaque), optional required peer identity, and the first
//!   CHILD_SA: ESP (AES-GCM, ChaCha20-Poly1305, AES-CBC+HMAC, NULL+HMAC,
//!   GMAC) or AH, ESN per [`EsnPolicy`], transport (USE_TRANSPORT_MODE) or
//!   tunnel mode, traffic selector narrowing (§2.9). The result is a
//!   [`ChildSa`] that converts to `palisade_esp::SaConfig` + KEYMAT.
//! - NAT traversal, the part strongSwan needs: NAT detection, IKE floats to
//!   port 4500 from IKE_AUTH on when a NAT is detected (RFC 7296 §2.23), a
//!   peer's new ports are followed once a message from them authenticates,
//!   and the CHILD_SA then carries `udp_encap` for ESP in UDP (RFC 3948).
//!   The driver adds and strips the non-ESP marker on port 4500.
//!   Transport mode across a NAT (RFC 7296 §2.23.1, [`transport_nat`]): the
//!   traffic selectors both sides propose are replaced by the IKE SA's
//!   addresses, as strongSwan does, and the CHILD_SA carries the addresses the
//!   peer proposed ([`ChildSa::nat_original`]) for the data plane's checksum
//!   fix-up (RFC 3948 §3.1.2).
//!   NAT keepalives (RFC 3948 §2.3): when we are the side behind the NAT,
//!   a one-octet 0xFF [`Transmit`] ([`Transmit::is_nat_keepalive`], sent
//!   without the marker) on the IKE SA's port-4500 path whenever nothing
//!   else went there for [`EndpointConfig::nat_keepalive_interval`]
//!   (20 s), for as long as the IKE SA lives; the driver may report ESP
//!   sent with [`Endpoint::handle_outbound_activity`] to save some.
//!   Forced ESP in UDP without a NAT
//!   ([`EndpointConfig::force_udp_encapsulation`], strongSwan's `encap =
//!   yes`): a random NAT_DETECTION_SOURCE_IP makes the peer believe we are
//!   behind a NAT, we act as if we were (port 4500, `udp_encap`), and send
//!   no keepalives, there being no mapping to keep.
//! - SK payload protection via `palisade_crypto::IkeProtection`.
//! - Key export for packet-capture decryption only: [`Endpoint::ike_sa_keys`]
//!   hands out an IKE SA's SK_e/SK_a keys ([`IkeSaKeys`]) for a Wireshark key
//!   log the operator turned on.
//! - IKE fragmentation (RFC 7383, [`FragmentationConfig`]): negotiated with
//!   IKEV2_FRAGMENTATION_SUPPORTED; IKE_AUTH messages too large for a
//!   576-octet IPv4 or 1280-octet IPv6 packet go out as SKF fragments, each
//!   sealed on its own, all resent on retransmission; fragments received
//!   are checked one by one and reassembled within limits of count, size
//!   and age, duplicates and bad ones dropped and counted ([`Counters`]).
//! - Message IDs with window 1, retransmission with exponential back-off
//!   and give-up, cached responses resent byte for byte, drops counted by
//!   [`DropReason`].
//! - INFORMATIONAL: Delete of CHILD_SAs and of the IKE SA in both
//!   directions, liveness checks. Dead peer detection (§2.4,
//!   [`EndpointConfig::dpd_delay`], 30 s): an established IKE SA that
//!   heard nothing authentic from its peer for the delay (IKE, or inbound
//!   ESP the driver reports with [`Endpoint::handle_inbound_activity`])
//!   sends an empty INFORMATIONAL request; when its retransmissions run
//!   out the IKE SA and its CHILD_SAs are deleted
//!   ([`FailureReason::PeerUnreachable`]).
//! - INITIAL_CONTACT (§2.4): sent in IKE_AUTH when no other IKE SA with the
//!   peer's address is established (as after a restart); on receipt, the
//!   sender's older IKE SAs and their CHILD_SAs are dropped without Delete
//!   exchanges.
//! - CREATE_CHILD_SA in both roles (RFC 7296 §1.3): further CHILD_SAs (an
//!   acquire on an established IKE SA), CHILD_SA rekey (REKEY_SA; the new
//!   pair is installed, [`Event::ChildSaRekeyed`], then the rekey's
//!   initiator deletes the old pair), IKE SA rekey (§2.18: new SPIs,
//!   SKEYSEED from the old SK_d, the CHILD_SAs and the authenticated
//!   identity move to the new IKE SA, [`Event::IkeSaRekeyed`], the old one
//!   is deleted), PFS when the quick-mode proposal names a group (MODP
//!   2048/3072/4096, ECP-256/384/521, Curve25519, or the IKE SA's), and
//!   INVALID_KE_PAYLOAD answered and followed. Rekey collisions (§2.8.1,
//!   §2.8.2): both exchanges complete, the one with the lowest nonce is
//!   deleted by its initiator, the other initiator deletes the old SA;
//!   TEMPORARY_FAILURE for SAs already replaced (§2.25). Lifetimes: soft
//!   expiry at 90 % of the policy's `SaLifetime` seconds and of the IKE
//!   proposal's `max_lifetime_seconds` (or `soft_expiration_time`), drawn
//!   up to 10 % earlier from [`Random`]; hard expiry deletes. Byte and
//!   packet lifetimes come from the data plane through
//!   [`Endpoint::handle_child_sa_expiry`]; [`Endpoint::rekey_child_sa`]
//!   and [`Endpoint::rekey_ike_sa`] start rekeys on demand.
//! - Policy from the filtering engine ([`EnginePolicy`]): as initiator the
//!   acquire's addresses are classified at IKEEXT_V4/V6 and its traffic at
//!   IPSEC_V4/V6, as responder the peer's addresses and the first proposed
//!   TSi/TSr pair; the deciding filter's IKEv2 provider context (main mode;
//!   transport or tunnel quick mode, a tunnel's selectors from its
//!   traffic-selector policies or else its filter's address conditions) is
//!   the policy. [`Failure`] names the filters and provider contexts
//!   involved ([`PolicyInvolved`], spec §6.2).
//! - COOKIE (§2.6) in both roles: above [`EndpointConfig::cookie_threshold`]
//!   half-open IKE SAs a responder answers IKE_SA_INIT statelessly with a
//!   keyed cookie over Ni, IPi and SPIi (rotating secret, the previous one
//!   still accepted); an initiator returns it first, also across
//!   INVALID_KE_PAYLOAD. Half-open IKE SAs per peer address are bounded
//!   ([`EndpointConfig::max_half_open_per_peer`]).
//! - Bounds on what a peer can make us keep (`limits`): IKE SAs per peer
//!   address ([`EndpointConfig::max_ike_sas_per_peer`]; further
//!   IKE_SA_INIT requests dropped and counted, [`DropReason::IkeSaLimit`];
//!   IKE SAs the peer rekeyed and never deleted bounded too, its further
//!   IKE SA rekeys refused with TEMPORARY_FAILURE),
//!   CHILD_SAs per IKE SA ([`EndpointConfig::max_child_sas_per_ike_sa`];
//!   refused with NO_ADDITIONAL_SAS as responder, not requested as
//!   initiator; rekeys not counted twice), requests queued per IKE SA
//!   ([`EndpointConfig::max_queued_requests_per_ike_sa`]; dropped with a
//!   [`Failure`], [`Counters::requests_dropped`]), and the main-mode
//!   proposal's `quick_mode_limit`: after that many CHILD_SA negotiations
//!   (new or rekey) the IKE SA is rekeyed before the next one.
//! - Post-quantum hybrid IKE SAs: additional key exchanges (RFC 9370,
//!   ADDKE1..7, e.g. ML-KEM-768 after Curve25519 or ECP-256) from
//!   [`IkePolicy::additional_key_exchanges`], required or with a classic
//!   fallback; INTERMEDIATE_EXCHANGE_SUPPORTED and one IKE_INTERMEDIATE
//!   exchange (RFC 9242) per additional key exchange, the keys updated
//!   after each, and IntAuth in IKE_AUTH's signed octets.
//!
//! # Not yet (TODO)
//!
//! - CREATE_CHILD_SA: no reauthentication (a new IKE_SA_INIT) at the IKE
//!   SA's hard lifetime, which deletes it instead; INVALID_KE_PAYLOAD in
//!   an IKE SA rekey is handled but not tested; requests queued on an IKE
//!   SA as it is rekeyed move to the new one, except INFORMATIONAL ones (a pending CHILD_SA Delete is re-sent
//!   there only if the old IKE SA goes before it is answered).
//! - EAP; certificate revocation (CRL, OCSP), hash-and-URL encodings, raw
//!   public keys, wildcard or DN-pattern identities; choosing among several
//!   local certificates by the peer's CERTREQ (we always send our one
//!   chain).
//! - Address changes (MOBIKE), AH behind a
//!   NAT (refused by palisade-esp, not yet by negotiation).
//! - Transport mode across a NAT with selectors wider than one host
//!   (subnets, ranges): §2.23.1 substitution keeps only host selectors, as
//!   strongSwan does, so such a proposal narrows to nothing.
//! - IKE fragmentation of messages other than IKE_AUTH (the others stay
//!   small; fragmented ones are dropped as unsupported), and path MTU
//!   discovery for fragments (RFC 7383 §2.5.2).
//! - Additional key exchanges in CREATE_CHILD_SA (RFC 9370 §2.2.3-§2.2.4,
//!   IKE_FOLLOWUP_KE): CHILD_SAs and IKE SA rekeys are classic, their
//!   proposals with ADDKE refused unless they allow NONE; IKE_INTERMEDIATE
//!   messages are not fragmented (RFC 7383); no interop test (strongSwan
//!   5.9.8 has neither RFC 9370 nor ML-KEM); hybrid policy is not read
//!   from the filter engine (WFP has no such setting).
//! - AH+ESP bundles.
//! - The daemon. [`EnginePolicy`] ignores IKEv1/AuthIP contexts, the
//!   IPSEC_KM_DEMUX layer, callouts at IKEEXT/IPSEC, and per-filter
//!   `maxDynamicFilters`.
//! - An initiator that rejects the responder's AUTH does not send a Delete.
//!
//! # Tests
//!
//! `tests/establish.rs` and `tests/reliability.rs` run two endpoints over a
//! simulated network (loss, duplication, reordering, a NAT) with a test
//! clock and prove the CHILD_SA keys with palisade-esp; `tests/mutation.rs`
//! feeds mutated messages; `tests/strongswan.rs` negotiates with charon in
//! network namespaces in both roles and pings through the tunnel (as root;
//! without root the strongSwan tests skip, and a missing strongSwan fails
//! them unless `PALISADE_SKIP_STRONGSWAN=1`). `tests/engine_policy.rs` negotiates
//! from in-memory filter engines; `tests/cookies.rs` covers cookies and
//! floods, and charon returning our cookie. `benches/handshake.rs` times
//! whole handshakes in process.
//! `tests/certificates.rs` and `tests/fragmentation.rs` authenticate with a
//! PKI made at test time (rcgen) in process; `tests/strongswan_certs.rs`
//! does so with charon, RSA and ECDSA in both roles, and fragments a chain
//! of RSA-4096 certificates in both directions. `tests/rekey.rs` covers
//! CREATE_CHILD_SA in process, rekey collisions scripted message by
//! message in every order; `tests/strongswan_rekey.rs` rekeys CHILD_SAs
//! and IKE SAs started by either side with charon, with MODP-2048 and
//! Curve25519 PFS, pinging through each new CHILD_SA. `tests/nat_keepalive.rs`
//! covers NAT keepalives over the simulated NAT, `tests/udp_encapsulation.rs`
//! forced ESP in UDP without one, `tests/dead_peer.rs` dead peer detection
//! (`tests/strongswan_encap.rs`: both against charon); `tests/strongswan_groups.rs`
//! runs ECP-521 with charon (IKE SA, CHILD_SA, and a CHILD_SA rekey with
//! ECP-521 PFS started by either side). `tests/hybrid.rs` negotiates
//! hybrid IKE SAs (ML-KEM-768) in process, with fallback, refusal,
//! tampering, loss and rekeys. `tests/limits.rs` reaches each bound of
//! `limits` over the simulated network.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;
mod certificate_auth;
mod child_sa;
mod cookie;
mod credentials;
mod endpoint;
mod engine_policy;
mod error;
mod event;
mod exchange;
mod extensions;
mod fragment;
mod identity;
mod ike_sa;
mod keepalive;
mod key_export;
mod limits;
mod message;
pub mod nat;
mod policy;
pub mod proposal;
mod random;
mod rekey;
mod retransmit;
pub mod traffic_selector;
pub mod transport_nat;

pub use auth::{SignedOctets, psk_auth, verify_psk_auth};
pub use child_sa::{ChildSa, SaInstall, lifetime};
pub use credentials::{CredentialError, Credentials, LocalCredential};
pub use endpoint::{Endpoint, EndpointConfig, Transmit};
pub use engine_policy::EnginePolicy;
pub use error::CertificateFailure;
pub use error::{
    Counters, DropReason, Failure, FailurePoint, FailureReason, PolicyInvolved, Role, Stage,
};
pub use event::{ChildSaDeleted, ChildSaRekeyed, Event, IkeSaId, IkeSaInfo};
pub use fragment::FragmentationConfig;
pub use identity::Identity;
pub use key_export::IkeSaKeys;
pub use policy::{
    Acquire, AdditionalKeyExchanges, ChildPolicy, IkePolicy, PolicyLookup, PolicyOrigin,
    QuickModePolicy, StaticPolicy, Traffic,
};
pub use proposal::{ChildProtocol, EsnPolicy, IkeTransforms};
pub use random::{Random, RandomError, SystemRandom};
pub use rekey::Expiry;
pub use retransmit::RetransmitConfig;
