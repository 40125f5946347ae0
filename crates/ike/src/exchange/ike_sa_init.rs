//! IKE_SA_INIT (RFC 7296 §1.2): SA, KE, Nonce and NAT detection, both
//! roles; INVALID_KE_PAYLOAD answered and followed; COOKIE (§2.6)
//! demanded and returned (see `cookie.rs`); the ADDKE transforms of
//! RFC 9370 offered and chosen with INTERMEDIATE_EXCHANGE_SUPPORTED, after
//! which `ike_intermediate.rs` runs before IKE_AUTH.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use palisade_crypto::signature::{encode_hash_algorithms, parse_hash_algorithms};
use palisade_crypto::{KeId, KeyExchange as Ke};
use palisade_wire::WireError;
use palisade_wire::ikev2::{
    IkeHeader, MessageBuilder, Nonce, Notify, exchange_type, notify_type, payload_type,
};

use crate::Endpoint;
use crate::certificate_auth::OUR_HASHES;
use crate::endpoint::EndpointConfig;
use crate::error::{DropReason, FailurePoint, FailureReason, PolicyInvolved, Role, Stage};
use crate::event::IkeSaId;
use crate::exchange::{Intermediate, push_certreq, push_ke};
use crate::extensions::Extensions;
use crate::ike_sa::{IkeSa, Keys, PendingChild, State};
use crate::message::{Received, init_notify_response, plain};
use crate::nat::{NAT_HASH_LEN, NatDetection, nat_hash};
use crate::policy::{Acquire, Traffic};
use crate::proposal::{
    ChildOffer, IkeTransforms, OwnedProposal, check_ike_response, push_sa, select_ike,
};
use crate::random::RandomError;
use crate::retransmit::Purpose;
use crate::traffic_selector::host;

/// SA, KE, Nonce and the two NAT detection notifications: the body of both
/// IKE_SA_INIT messages.
fn push_init_payloads(
    b: &mut MessageBuilder<'_>,
    proposals: &[OwnedProposal],
    ke: &Ke,
    nonce: &[u8],
    nat: (&[u8], &[u8]),
) -> Result<(), WireError> {
    push_sa(b, proposals)?;
    push_ke(b, ke)?;
    b.push(payload_type::NONCE, false, &Nonce { data: nonce })?;
    b.push(
        payload_type::N,
        false,
        &Notify::new(notify_type::NAT_DETECTION_SOURCE_IP, nat.0),
    )?;
    b.push(
        payload_type::N,
        false,
        &Notify::new(notify_type::NAT_DETECTION_DESTINATION_IP, nat.1),
    )
}

/// What IKE_SA_INIT carries beyond RFC 7296: SIGNATURE_HASH_ALGORITHMS
/// (RFC 7427 §4, unless configured off: we can check Digital Signature AUTH
/// whatever our own credentials), IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383 §2.3) and, from
/// a responder with trust anchors, a CERTREQ naming them (RFC 7296 §3.7).
fn push_init_extensions(
    b: &mut MessageBuilder<'_>,
    config: &EndpointConfig,
    fragmentation: bool,
    certreq: Option<&[u8]>,
) -> Result<(), WireError> {
    if let Some(authorities) = certreq {
        push_certreq(b, authorities)?;
    }
    if config.signature_hash_algorithms {
        let hashes = encode_hash_algorithms(&OUR_HASHES);
        b.push(
            payload_type::N,
            false,
            &Notify::new(notify_type::SIGNATURE_HASH_ALGORITHMS, &hashes),
        )?;
    }
    if fragmentation {
        b.push(
            payload_type::N,
            false,
            &Notify::new(notify_type::IKEV2_FRAGMENTATION_SUPPORTED, &[]),
        )?;
    }
    Ok(())
}

/// The peer's IKE_SA_INIT extensions (see [`push_init_extensions`]);
/// fragmentation is on only if we offer it too.
fn peer_extensions(p: &Received<'_>, offer_fragmentation: bool) -> Extensions {
    Extensions {
        peer_hashes: p
            .notify_data(notify_type::SIGNATURE_HASH_ALGORITHMS)
            .next()
            .and_then(|data| parse_hash_algorithms(data).ok()),
        fragmentation: offer_fragmentation
            && p.has_notify(notify_type::IKEV2_FRAGMENTATION_SUPPORTED),
        ..Extensions::default()
    }
}

/// The IKE_SA_INIT request; `src` is our NAT_DETECTION_SOURCE_IP (see
/// [`Endpoint::nat_source_hash`]).
fn init_request(
    sa: &IkeSa,
    config: &EndpointConfig,
    src: &[u8; NAT_HASH_LEN],
) -> Result<Vec<u8>, WireError> {
    let ke = sa.ke.as_ref().ok_or(WireError::BadSubstructure)?;
    let header = sa.header(exchange_type::IKE_SA_INIT, 0, false);
    let dst = nat_hash(sa.spi_i, 0, sa.remote);
    plain(&header, |b| {
        push_init_payloads(
            b,
            &OwnedProposal::ike_offer(&sa.offer),
            ke,
            &sa.ni,
            (src, &dst),
        )?;
        push_init_extensions(b, config, config.fragmentation.enabled, None)?;
        push_intermediate_supported(b, sa.offer.iter().any(has_additional))
    })
}

/// Whether `t` has additional key exchanges (RFC 9370), which need
/// IKE_INTERMEDIATE.
fn has_additional(t: &IkeTransforms) -> bool {
    t.additional_key_exchanges().next().is_some()
}

/// INTERMEDIATE_EXCHANGE_SUPPORTED (RFC 9242 §3.1), sent when we offer
/// or chose additional key exchanges: they run in IKE_INTERMEDIATE.
fn push_intermediate_supported(b: &mut MessageBuilder<'_>, send: bool) -> Result<(), WireError> {
    if !send {
        return Ok(());
    }
    b.push(
        payload_type::N,
        false,
        &Notify::new(notify_type::INTERMEDIATE_EXCHANGE_SUPPORTED, &[]),
    )
}

impl Endpoint {
    /// Our NAT_DETECTION_SOURCE_IP: the hash of our address and port, or,
    /// forcing ESP in UDP ([`EndpointConfig::force_udp_encapsulation`]),
    /// random octets no address hashes to, so that the peer concludes we
    /// are behind a NAT (what strongSwan's `encap = yes` sends). The
    /// destination hash stays true: the peer must not think itself
    /// translated and start NAT keepalives for nothing.
    fn nat_source_hash(
        &mut self,
        spi_i: u64,
        spi_r: u64,
        local: SocketAddr,
    ) -> Result<[u8; NAT_HASH_LEN], RandomError> {
        if !self.config.force_udp_encapsulation {
            return Ok(nat_hash(spi_i, spi_r, local));
        }
        let mut fake = [0u8; NAT_HASH_LEN];
        self.random.fill(&mut fake)?;
        Ok(fake)
    }

    /// Starts an IKE SA for an acquire: policy lookups, then IKE_SA_INIT.
    pub(crate) fn initiate(&mut self, now: Instant, acquire: Acquire) {
        let (local, remote) = (acquire.local, acquire.remote);
        // Net events name the filters that supplied the policy (§6.2).
        let refuse_involving = |this: &mut Self, reason, involved| {
            this.fail_unattached_involving(
                local,
                remote,
                Role::Initiator,
                Stage::Policy,
                FailurePoint::Local,
                reason,
                involved,
            );
        };
        let refuse = |this: &mut Self, reason| {
            refuse_involving(this, reason, PolicyInvolved::default());
        };
        let Some(policy) = self.policy.main_mode(local.ip(), remote.ip()) else {
            return refuse(self, FailureReason::NoPolicy);
        };
        let mut involved = PolicyInvolved {
            main_mode: policy.origin,
            quick_mode: None,
        };
        let offer = IkeTransforms::offer_with_additional(
            &policy.main_mode.ike_proposals,
            &policy.additional_key_exchanges,
        );
        if offer.is_empty() {
            return refuse_involving(
                self,
                FailureReason::UnsupportedPolicy("no supported IKE proposal"),
                involved,
            );
        }
        if policy.preshared_key().is_none() && policy.local_credential().is_none() {
            return refuse(
                self,
                FailureReason::UnsupportedPolicy("no pre-shared key or certificate"),
            );
        }
        let traffic = acquire.traffic.unwrap_or(Traffic {
            local: host(local.ip()),
            remote: host(remote.ip()),
        });
        let Some(child_policy) = self.policy.quick_mode(local.ip(), remote.ip(), &traffic) else {
            return refuse_involving(self, FailureReason::NoPolicy, involved);
        };
        involved.quick_mode = child_policy.origin;
        let child_offer = ChildOffer::offer(child_policy.quick_mode.proposals());
        if child_offer.is_empty() {
            return refuse_involving(
                self,
                FailureReason::UnsupportedPolicy("no supported IPsec proposal"),
                involved,
            );
        }
        let mut tsi = vec![traffic.local];
        tsi.extend(
            child_policy
                .local_selectors
                .iter()
                .filter(|s| **s != traffic.local),
        );
        let mut tsr = vec![traffic.remote];
        tsr.extend(
            child_policy
                .remote_selectors
                .iter()
                .filter(|s| **s != traffic.remote),
        );
        let (Ok(spi_i), Ok(ni), Ok(inbound_spi)) = (
            self.new_ike_spi(),
            self.random_bytes(self.config.nonce_len),
            self.new_child_spi(),
        ) else {
            return refuse(self, FailureReason::Crypto);
        };
        let Some(first) = offer.first() else { return };
        let Ok(ke) = Ke::generate(first.ke) else {
            return refuse(self, FailureReason::Crypto);
        };
        let local_id = policy.local_identity(local.ip());
        let sa = IkeSa {
            id: IkeSaId(spi_i),
            role: Role::Initiator,
            spi_i,
            spi_r: 0,
            local,
            remote,
            state: State::InitSent,
            created: now,
            last_heard: now,
            policy,
            local_id,
            peer_id: None,
            offer,
            ke: Some(ke),
            ke_retried: false,
            ni,
            nr: Vec::new(),
            init_request: Vec::new(),
            init_response: Vec::new(),
            keys: None,
            nat: NatDetection::default(),
            next_message_id: 1,
            peer_next_id: 0,
            outstanding: None,
            queued: VecDeque::new(),
            last_response: None,
            pending_child: Some(PendingChild {
                policy: child_policy,
                offer: child_offer,
                inbound_spi,
                tsi,
                tsr,
            }),
            children: Vec::new(),
        };
        let src = self.nat_source_hash(spi_i, 0, local);
        let Some(request) = src
            .ok()
            .and_then(|src| init_request(&sa, &self.config, &src).ok())
        else {
            self.child_spis.remove(&inbound_spi);
            return refuse(self, FailureReason::Crypto);
        };
        self.sas.insert(
            spi_i,
            IkeSa {
                init_request: request.clone(),
                ..sa
            },
        );
        self.send_request(now, spi_i, 0, Purpose::IkeSaInit, request);
    }

    /// Responder: a new IKE_SA_INIT request, or a retransmission of one.
    pub(crate) fn respond_ike_sa_init(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        header: &IkeHeader,
        bytes: &[u8],
    ) {
        if !header.is_initiator() || header.message_id != 0 {
            self.counters.count(DropReason::Malformed);
            return;
        }
        if let Some(spi) = self.by_initiator.get(&(remote, header.initiator_spi)) {
            let cached = self
                .sas
                .get(spi)
                .filter(|sa| sa.init_request == bytes)
                .map(|sa| (sa.local, sa.init_response.clone()));
            match cached {
                Some((local, response)) => {
                    self.counters.count(DropReason::Retransmission);
                    self.send(local, remote, response);
                }
                None => self.counters.count(DropReason::Unexpected),
            }
            return;
        }
        let Some(p) = self.gather_message(header, bytes) else {
            return;
        };
        let (Some(sa_payload), Some(ke_payload), Some(ni)) = (p.sa, p.ke, p.nonce) else {
            self.counters.count(DropReason::Malformed);
            return;
        };
        // Before any policy lookup or key exchange: under load, state only
        // for initiators that return our cookie (RFC 7296 §2.6).
        if !self.admit_ike_sa_init(now, local, remote, header, &p, ni) {
            return;
        }
        // The bound on IKE SAs per peer address: dropped, not answered
        // (RFC 7296 has no fitting error here; see `crate::limits`).
        if !self.admit_ike_sa_per_peer(remote) {
            return;
        }
        let answer = |this: &mut Self, notify: u16, data: &[u8]| {
            if let Ok(m) = init_notify_response(header, notify, data) {
                this.send(local, remote, m);
            }
        };
        let refuse = |this: &mut Self, reason| {
            this.fail_unattached(
                local,
                remote,
                Role::Responder,
                Stage::IkeSaInit,
                FailurePoint::Local,
                reason,
            );
        };
        let Some(policy) = self.policy.main_mode(local.ip(), remote.ip()) else {
            answer(self, notify_type::NO_PROPOSAL_CHOSEN, &[]);
            return refuse(self, FailureReason::NoPolicy);
        };
        let mut ours = IkeTransforms::offer_with_additional(
            &policy.main_mode.ike_proposals,
            &policy.additional_key_exchanges,
        );
        // Additional key exchanges need IKE_INTERMEDIATE (RFC 9370 §2.2.1).
        if !p.has_notify(notify_type::INTERMEDIATE_EXCHANGE_SUPPORTED) {
            ours.retain(|t| !has_additional(t));
        }
        let Some((proposal_num, chosen)) = select_ike(&ours, &sa_payload) else {
            answer(self, notify_type::NO_PROPOSAL_CHOSEN, &[]);
            let involved = PolicyInvolved {
                main_mode: policy.origin,
                quick_mode: None,
            };
            return self.fail_unattached_involving(
                local,
                remote,
                Role::Responder,
                Stage::IkeSaInit,
                FailurePoint::Local,
                FailureReason::NoProposalChosen,
                involved,
            );
        };
        if ke_payload.dh_group != u16::from(chosen.ke) {
            // Stateless (RFC 7296 §1.2): the initiator retries with our group.
            let group = u16::from(chosen.ke).to_be_bytes();
            answer(self, notify_type::INVALID_KE_PAYLOAD, &group);
            return;
        }
        let Ok(ke) = Ke::generate(chosen.ke) else {
            return refuse(self, FailureReason::Crypto);
        };
        let Ok(g_ir) = ke.shared_secret(ke_payload.data) else {
            answer(self, notify_type::INVALID_SYNTAX, &[]);
            return refuse(self, FailureReason::Protocol("invalid key exchange value"));
        };
        let (Ok(spi_r), Ok(nr)) = (self.new_ike_spi(), self.random_bytes(self.config.nonce_len))
        else {
            return refuse(self, FailureReason::Crypto);
        };
        let spi_i = header.initiator_spi;
        let Ok(keys) = Keys::derive(
            Role::Responder,
            chosen,
            g_ir.as_ref(),
            ni,
            &nr,
            spi_i,
            spi_r,
        ) else {
            return refuse(self, FailureReason::Crypto);
        };
        let nat = NatDetection::check_forcing(
            self.config.force_udp_encapsulation,
            spi_i,
            0,
            local,
            remote,
            p.notify_data(notify_type::NAT_DETECTION_SOURCE_IP),
            p.notify_data(notify_type::NAT_DETECTION_DESTINATION_IP),
        );
        let local_id = policy.local_identity(local.ip());
        let sa = IkeSa {
            id: IkeSaId(spi_r),
            role: Role::Responder,
            spi_i,
            spi_r,
            local,
            remote,
            state: State::InitAnswered,
            created: now,
            last_heard: now,
            policy,
            local_id,
            peer_id: None,
            offer: Vec::new(),
            ke: None,
            ke_retried: false,
            ni: ni.to_vec(),
            nr,
            init_request: bytes.to_vec(),
            init_response: Vec::new(),
            keys: Some(keys),
            nat,
            next_message_id: 0,
            peer_next_id: 1,
            outstanding: None,
            queued: VecDeque::new(),
            last_response: None,
            pending_child: None,
            children: Vec::new(),
        };
        let Ok(src) = self.nat_source_hash(spi_i, spi_r, local) else {
            return refuse(self, FailureReason::Crypto);
        };
        let dst = nat_hash(spi_i, spi_r, remote);
        let h = sa.header(exchange_type::IKE_SA_INIT, 0, true);
        let extensions = peer_extensions(&p, self.config.fragmentation.enabled);
        let certreq = sa
            .policy
            .certificates
            .as_deref()
            .filter(|c| c.has_trust_anchors())
            .map(|c| c.trust_anchors.certreq_data());
        let Ok(response) = plain(&h, |b| {
            push_init_payloads(
                b,
                &[OwnedProposal::ike(proposal_num, &chosen)],
                &ke,
                &sa.nr,
                (&src, &dst),
            )?;
            push_init_extensions(
                b,
                &self.config,
                extensions.fragmentation,
                certreq.as_deref(),
            )?;
            push_intermediate_supported(b, has_additional(&chosen))
        }) else {
            return refuse(self, FailureReason::Crypto);
        };
        self.by_initiator.insert((remote, spi_i), spi_r);
        self.half_open.insert(spi_r, remote.ip());
        self.extensions.insert(spi_r, extensions);
        if has_additional(&chosen) {
            self.intermediate
                .insert(spi_r, Intermediate::new(chosen.additional_key_exchanges()));
        }
        self.sas.insert(
            spi_r,
            IkeSa {
                init_response: response.clone(),
                last_response: Some((0, response.clone())),
                ..sa
            },
        );
        self.send(local, remote, response);
    }

    /// Initiator: the IKE_SA_INIT response.
    pub(crate) fn handle_ike_sa_init_response(
        &mut self,
        now: Instant,
        spi: u64,
        header: &IkeHeader,
        bytes: &[u8],
    ) {
        let Some(p) = self.gather_message(header, bytes) else {
            return;
        };
        let fail = |this: &mut Self, point, reason| this.fail(spi, Stage::IkeSaInit, point, reason);
        if let Some(err) = p.error() {
            if let Some(group) = err.invalid_ke_group() {
                return self.retry_with_group(now, spi, group);
            }
            let reason = match err.notify_type {
                notify_type::NO_PROPOSAL_CHOSEN => FailureReason::NoProposalChosen,
                t => FailureReason::PeerError(t),
            };
            return fail(self, FailurePoint::Peer, reason);
        }
        if let Some(cookie) = p.notify_data(notify_type::COOKIE).next() {
            return self.retry_with_cookie(now, spi, cookie);
        }
        let (Some(sa_payload), Some(ke_payload), Some(nr)) = (p.sa, p.ke, p.nonce) else {
            self.counters.count(DropReason::Malformed);
            return;
        };
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        if header.responder_spi == 0 {
            self.counters.count(DropReason::Malformed);
            return;
        }
        let Some(chosen) = check_ike_response(&sa.offer, &sa_payload) else {
            return fail(
                self,
                FailurePoint::Local,
                FailureReason::Protocol("responder chose a proposal not offered"),
            );
        };
        if has_additional(&chosen) && !p.has_notify(notify_type::INTERMEDIATE_EXCHANGE_SUPPORTED) {
            return fail(
                self,
                FailurePoint::Peer,
                FailureReason::Protocol(
                    "additional key exchanges without INTERMEDIATE_EXCHANGE_SUPPORTED",
                ),
            );
        }
        let Some(ke) = sa.ke.take() else { return };
        if ke.id() != chosen.ke || ke_payload.dh_group != u16::from(chosen.ke) {
            return fail(
                self,
                FailurePoint::Local,
                FailureReason::Protocol("KE group differs from the chosen one"),
            );
        }
        let Ok(g_ir) = ke.shared_secret(ke_payload.data) else {
            return fail(
                self,
                FailurePoint::Local,
                FailureReason::Protocol("invalid key exchange value"),
            );
        };
        let spi_r = header.responder_spi;
        let Ok(keys) = Keys::derive(
            Role::Initiator,
            chosen,
            g_ir.as_ref(),
            &sa.ni,
            nr,
            sa.spi_i,
            spi_r,
        ) else {
            return fail(self, FailurePoint::Local, FailureReason::Crypto);
        };
        sa.nat = NatDetection::check_forcing(
            self.config.force_udp_encapsulation,
            sa.spi_i,
            spi_r,
            sa.local,
            sa.remote,
            p.notify_data(notify_type::NAT_DETECTION_SOURCE_IP),
            p.notify_data(notify_type::NAT_DETECTION_DESTINATION_IP),
        );
        if sa.nat.any() {
            // RFC 7296 §2.23: with a NAT in the path (or one we pretend
            // to be behind), IKE moves to port 4500 from IKE_AUTH on,
            // where ESP-in-UDP will travel too.
            sa.local.set_port(palisade_wire::NAT_T_PORT);
            sa.remote.set_port(palisade_wire::NAT_T_PORT);
        }
        sa.spi_r = spi_r;
        sa.nr = nr.to_vec();
        sa.init_response = bytes.to_vec();
        sa.keys = Some(keys);
        sa.state = State::AuthSent;
        let extensions = peer_extensions(&p, self.config.fragmentation.enabled);
        self.extensions.insert(spi, extensions);
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        sa.outstanding = None;
        if has_additional(&chosen) {
            // RFC 9370 §2.2.2: one IKE_INTERMEDIATE per additional key
            // exchange, then IKE_AUTH.
            self.intermediate
                .insert(spi, Intermediate::new(chosen.additional_key_exchanges()));
            return self.send_ike_intermediate(now, spi);
        }
        self.send_ike_auth(now, spi);
    }

    /// INVALID_KE_PAYLOAD: retry once with the group the responder wants,
    /// if we offered it (RFC 7296 §1.2, §3.10.1).
    fn retry_with_group(&mut self, now: Instant, spi: u64, group: u16) {
        let Some(local) = self.sas.get(&spi).map(|sa| sa.local) else {
            return;
        };
        let Ok(src) = self.nat_source_hash(spi, 0, local) else {
            return self.fail(
                spi,
                Stage::IkeSaInit,
                FailurePoint::Local,
                FailureReason::Crypto,
            );
        };
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let offered = KeId::try_from(group)
            .ok()
            .filter(|g| sa.offer.iter().any(|t| t.ke == *g));
        let Some(group) = offered.filter(|_| !sa.ke_retried) else {
            return self.fail(
                spi,
                Stage::IkeSaInit,
                FailurePoint::Peer,
                FailureReason::Protocol("INVALID_KE_PAYLOAD for a group not offered"),
            );
        };
        let Ok(ke) = Ke::generate(group) else {
            return self.fail(
                spi,
                Stage::IkeSaInit,
                FailurePoint::Local,
                FailureReason::Crypto,
            );
        };
        sa.ke = Some(ke);
        sa.ke_retried = true;
        let Ok(request) = init_request(sa, &self.config, &src) else {
            return self.fail(
                spi,
                Stage::IkeSaInit,
                FailurePoint::Local,
                FailureReason::Crypto,
            );
        };
        // A cookie, once given, goes first in every retry (RFC 7296 §2.6).
        let request = crate::cookie::with_returned_cookie(&self.returned_cookies, spi, request);
        sa.init_request = request.clone();
        self.send_request(now, spi, 0, Purpose::IkeSaInit, request);
    }
}
