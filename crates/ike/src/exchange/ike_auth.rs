//! IKE_AUTH (RFC 7296 §1.2, §2.15) with pre-shared keys or certificates
//! (CERT, CERTREQ, signature AUTH: [`crate::certificate_auth`]), carrying
//! the first CHILD_SA (SA, TSi, TSr, USE_TRANSPORT_MODE; §1.3.1, §2.9).
//! Both IKE_AUTH messages go out in fragments when large and fragmentation
//! was negotiated ([`crate::fragment`]).
//!
//! EAP and the peer's optional IDr hint are not supported yet.

use std::time::{Instant, SystemTime};

use palisade_crypto::ChildSaKeys;
use palisade_crypto::signature::HashAlgorithm;
use palisade_esp::Mode;
use palisade_filter::policy::TrafficSelector;
use palisade_wire::WireError;
use palisade_wire::ikev2::{
    Auth, Certificate, CertificateRequest, IKE_HEADER_LEN, Identification, IkeHeader,
    MessageBuilder, Notify, TrafficSelectorsSpec, auth_method, cert_encoding, exchange_type,
    notify_type, payload_type,
};
use zeroize::Zeroizing;

use crate::Endpoint;
use crate::auth::{SignedOctets, psk_auth, verify_psk_auth};
use crate::certificate_auth;
use crate::child_sa::{ChildSa, lifetime};
use crate::endpoint::Path;
use crate::error::{CertificateFailure, DropReason, FailurePoint, FailureReason, Role, Stage};
use crate::event::{Event, IkeSaInfo};
use crate::identity::Identity;
use crate::ike_sa::{ChildRecord, IkeSa, Keys, State};
use crate::message::{BuildError, Received, chain, encrypted, open_sk};
use crate::policy::Traffic;
use crate::proposal::{
    ChildChoice, ChildOffer, OwnedProposal, check_child_response, push_sa, select_child,
};
use crate::retransmit::Purpose;
use crate::traffic_selector::{self, all_within, narrow};

fn push_ts(
    b: &mut MessageBuilder<'_>,
    kind: u8,
    selectors: &[TrafficSelector],
) -> Result<(), WireError> {
    let wire: Vec<_> = selectors.iter().map(traffic_selector::to_wire).collect();
    b.push(kind, false, &TrafficSelectorsSpec { selectors: &wire })
}

/// What we sign or MAC: our IKE_SA_INIT message, the peer's nonce, our
/// SK_p and ID body (RFC 7296 §2.15).
/// `int_auth` is the IntAuth of RFC 9242 §3.3.2 (empty without
/// IKE_INTERMEDIATE).
fn our_octets<'a>(
    sa: &'a IkeSa,
    keys: &'a Keys,
    id_body: &'a [u8],
    int_auth: &'a [u8],
) -> SignedOctets<'a> {
    let (real_message, peer_nonce, sk_p) = match sa.role {
        Role::Initiator => (&sa.init_request, &sa.nr, keys.sk.sk_pi()),
        Role::Responder => (&sa.init_response, &sa.ni, keys.sk.sk_pr()),
    };
    SignedOctets {
        real_message,
        peer_nonce,
        sk_p,
        id_body,
        int_auth,
    }
}

/// What the peer signed or MACed.
fn peer_octets<'a>(
    sa: &'a IkeSa,
    keys: &'a Keys,
    id_body: &'a [u8],
    int_auth: &'a [u8],
) -> SignedOctets<'a> {
    let (real_message, peer_nonce, sk_p) = match sa.role {
        Role::Initiator => (&sa.init_response, &sa.ni, keys.sk.sk_pr()),
        Role::Responder => (&sa.init_request, &sa.nr, keys.sk.sk_pi()),
    };
    SignedOctets {
        real_message,
        peer_nonce,
        sk_p,
        id_body,
        int_auth,
    }
}

/// Our AUTH payload (Auth Method, data): a signature with our certificate's
/// key if policy gives us one, else the pre-shared key's MAC.
/// `peer_hashes` is the peer's SIGNATURE_HASH_ALGORITHMS.
fn our_auth(
    sa: &IkeSa,
    peer_hashes: Option<&[HashAlgorithm]>,
    id_body: &[u8],
    int_auth: &[u8],
) -> Option<(u8, Vec<u8>)> {
    let keys = sa.keys.as_ref()?;
    let signed = our_octets(sa, keys, id_body, int_auth);
    if let Some(local) = sa.policy.local_credential() {
        let octets = certificate_auth::signed_octets(keys.prf, &signed);
        return certificate_auth::sign(local, peer_hashes, &octets).ok();
    }
    let mac = psk_auth(keys.prf, sa.policy.preshared_key()?, &signed);
    Some((
        auth_method::SHARED_KEY_MESSAGE_INTEGRITY_CODE,
        mac.as_ref().to_vec(),
    ))
}

/// Our CERT payloads' data: the chain, end entity first (empty without a
/// certificate).
fn our_certificates(sa: &IkeSa) -> Vec<Vec<u8>> {
    sa.policy
        .local_credential()
        .map(|l| l.chain().map(|c| c.der().to_vec()).collect())
        .unwrap_or_default()
}

/// The CERTREQ Certification Authority data naming our trust anchors, if
/// we have any.
fn our_certreq(sa: &IkeSa) -> Option<Vec<u8>> {
    sa.policy
        .certificates
        .as_deref()
        .filter(|c| c.has_trust_anchors())
        .map(|c| c.trust_anchors.certreq_data())
}

fn push_certificates(b: &mut MessageBuilder<'_>, certs: &[Vec<u8>]) -> Result<(), WireError> {
    certs.iter().try_for_each(|der| {
        b.push(
            payload_type::CERT,
            false,
            &Certificate {
                cert_encoding: cert_encoding::X509_CERTIFICATE_SIGNATURE,
                data: der,
            },
        )
    })
}

/// Checks the peer's AUTH payload, by pre-shared key or by certificate at
/// wall-clock `time`, and its identity against policy.
fn peer_authenticated(
    sa: &IkeSa,
    id_body: &[u8],
    auth: &Auth<'_>,
    certs: &[Certificate<'_>],
    time: Option<SystemTime>,
    int_auth: &[u8],
) -> Result<Identity, FailureReason> {
    let keys = sa.keys.as_ref().ok_or(FailureReason::Crypto)?;
    let id = Identification::parse(id_body)
        .map(|id| Identity::from_wire(&id))
        .map_err(|_| FailureReason::Protocol("malformed ID payload"))?;
    let signed = peer_octets(sa, keys, id_body, int_auth);
    let by_certificate = auth.auth_method != auth_method::SHARED_KEY_MESSAGE_INTEGRITY_CODE;
    if by_certificate {
        let anchors = sa
            .policy
            .certificates
            .as_deref()
            .filter(|c| c.has_trust_anchors())
            .map(|c| &c.trust_anchors)
            .ok_or(FailureReason::Certificate(
                CertificateFailure::UnsupportedMethod,
            ))?;
        let time = time.ok_or(FailureReason::Certificate(CertificateFailure::NoWallClock))?;
        let certs: Vec<(u8, &[u8])> = certs.iter().map(|c| (c.cert_encoding, c.data)).collect();
        let proof = certificate_auth::PeerProof {
            certs: &certs,
            identity: &id,
            method: auth.auth_method,
            data: auth.data,
        };
        let octets = certificate_auth::signed_octets(keys.prf, &signed);
        certificate_auth::verify_peer(anchors, &proof, &octets, time)
            .map_err(FailureReason::Certificate)?;
    } else {
        let psk = sa
            .policy
            .preshared_key()
            .ok_or(FailureReason::AuthenticationFailed)?;
        if !verify_psk_auth(keys.prf, psk, &signed, auth.data) {
            return Err(FailureReason::AuthenticationFailed);
        }
    }
    match &sa.policy.remote_id {
        Some(required) if *required != id => Err(if by_certificate {
            FailureReason::Certificate(CertificateFailure::IdentityMismatch)
        } else {
            FailureReason::AuthenticationFailed
        }),
        _ => Ok(id),
    }
}

fn established(sa: &IkeSa, peer_id: Identity) -> Option<Event> {
    Some(Event::IkeSaEstablished(IkeSaInfo {
        id: sa.id,
        role: sa.role,
        initiator_spi: sa.spi_i,
        responder_spi: sa.spi_r,
        local: sa.local,
        remote: sa.remote,
        transforms: sa.keys.as_ref()?.transforms,
        local_id: sa.local_id.clone(),
        peer_id,
        nat: sa.nat,
    }))
}

/// One direction's KEYMAT, wiped on drop.
type DirectionKeymat = Zeroizing<Vec<u8>>;

/// KEYMAT for the first CHILD_SA (RFC 7296 §2.17) as (inbound, outbound).
fn child_keys(sa: &IkeSa, choice: &ChildChoice) -> Option<(DirectionKeymat, DirectionKeymat)> {
    let keys = sa.keys.as_ref()?;
    let lengths = choice.protocol.key_lengths().ok()?;
    let keymat =
        ChildSaKeys::derive(keys.prf, keys.sk.sk_d(), None, &sa.ni, &sa.nr, lengths).ok()?;
    let join = |d: palisade_crypto::ikev2_kdf::DirectionKeys<'_>| {
        let mut v = Zeroizing::new(Vec::with_capacity(d.encr.len() + d.integ.len()));
        v.extend_from_slice(d.encr);
        v.extend_from_slice(d.integ);
        v
    };
    let i2r = join(keymat.initiator_to_responder());
    let r2i = join(keymat.responder_to_initiator());
    Some(match sa.role {
        Role::Initiator => (r2i, i2r),
        Role::Responder => (i2r, r2i),
    })
}

/// Everything the responder needs to answer the CHILD_SA part.
struct ChildAnswer {
    choice: ChildChoice,
    inbound_spi: u32,
    transport: bool,
    tsi: Vec<TrafficSelector>,
    tsr: Vec<TrafficSelector>,
}

impl Endpoint {
    /// Initiator: IDi, AUTH, [USE_TRANSPORT_MODE], SA, TSi, TSr.
    pub(crate) fn send_ike_auth(&mut self, now: Instant, spi: u64) {
        let esn = self.config.esn;
        let int_auth = self.int_auth(spi);
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let id_body = sa.local_id.body();
        let peer_hashes = self
            .extensions
            .get(&spi)
            .and_then(|e| e.peer_hashes.as_deref());
        let Some((method, auth)) = our_auth(sa, peer_hashes, &id_body, &int_auth) else {
            return self.fail(
                spi,
                Stage::IkeAuth,
                FailurePoint::Local,
                FailureReason::Crypto,
            );
        };
        let certs = our_certificates(sa);
        let certreq = our_certreq(sa);
        let message_id = sa.next_message_id;
        sa.next_message_id = sa.next_message_id.wrapping_add(1);
        let header = sa.header(exchange_type::IKE_AUTH, message_id, false);
        let Some(child) = sa.pending_child.clone() else {
            return;
        };
        let built = chain(|b| {
            b.push(payload_type::IDI, false, id_body.as_slice())?;
            push_certificates(b, &certs)?;
            if let Some(authorities) = &certreq {
                b.push(
                    payload_type::CERTREQ,
                    false,
                    &CertificateRequest {
                        cert_encoding: cert_encoding::X509_CERTIFICATE_SIGNATURE,
                        authorities,
                    },
                )?;
            }
            b.push(
                payload_type::AUTH,
                false,
                &Auth {
                    auth_method: method,
                    data: &auth,
                },
            )?;
            if child.policy.is_transport() {
                b.push(
                    payload_type::N,
                    false,
                    &Notify::new(notify_type::USE_TRANSPORT_MODE, &[]),
                )?;
            }
            push_sa(
                b,
                &OwnedProposal::child_offer(&child.offer, esn, child.inbound_spi),
            )?;
            push_ts(b, payload_type::TSI, &child.tsi)?;
            push_ts(b, payload_type::TSR, &child.tsr)
        })
        .map_err(BuildError::from)
        .and_then(|(first, inner)| self.seal_message(spi, &header, first, &inner));
        let Ok(request) = built else {
            return self.fail(
                spi,
                Stage::IkeAuth,
                FailurePoint::Local,
                FailureReason::Crypto,
            );
        };
        self.send_request(now, spi, message_id, Purpose::IkeAuth, request);
    }

    /// Responder: the IKE_AUTH request.
    pub(crate) fn respond_ike_auth(
        &mut self,
        now: Instant,
        spi: u64,
        path: Path,
        header: &IkeHeader,
        bytes: &[u8],
    ) {
        let Some(sa) = self.sas.get(&spi) else { return };
        let Some(keys) = sa.keys.as_ref() else { return };
        let Ok(outer) = Received::gather(
            header.next_payload,
            bytes.get(IKE_HEADER_LEN..).unwrap_or_default(),
            bytes.len(),
        ) else {
            self.counters.count(DropReason::Malformed);
            return;
        };
        let Some((plain, first, range)) = open_sk(bytes, &outer, &keys.inbound) else {
            self.counters.count(DropReason::Integrity);
            return;
        };
        self.authenticated(spi, path);
        let inner = plain.get(range).unwrap_or_default();
        self.respond_ike_auth_inner(now, spi, header.message_id, first, inner);
    }

    /// Responder: the IKE_AUTH request's decrypted (or reassembled) inner
    /// payloads, starting with a payload of type `first`.
    pub(crate) fn respond_ike_auth_inner(
        &mut self,
        now: Instant,
        spi: u64,
        message_id: u32,
        first: u8,
        inner: &[u8],
    ) {
        let time = self.unix_time_at(now);
        let peer_hashes = self
            .extensions
            .get(&spi)
            .and_then(|e| e.peer_hashes.clone());
        let int_auth = self.int_auth(spi);
        let Some(sa) = self.sas.get(&spi) else { return };
        let p = match Received::gather(first, inner, inner.len()) {
            Ok(p) if p.idi.is_some() && p.auth.is_some() => p,
            _ => {
                self.answer_auth_error(spi, message_id, notify_type::INVALID_SYNTAX);
                return self.fail(
                    spi,
                    Stage::IkeAuth,
                    FailurePoint::Local,
                    FailureReason::Protocol("IKE_AUTH without IDi and AUTH"),
                );
            }
        };
        let (Some(idi), Some(auth)) = (p.idi, p.auth) else {
            return;
        };
        let peer_id = match peer_authenticated(sa, idi, &auth, &p.certs, time, &int_auth) {
            Ok(id) => id,
            Err(reason) => {
                self.answer_auth_error(spi, message_id, notify_type::AUTHENTICATION_FAILED);
                return self.fail(spi, Stage::IkeAuth, FailurePoint::Local, reason);
            }
        };
        let id_body = sa.local_id.body();
        let certs = our_certificates(sa);
        let Some((method, our)) = our_auth(sa, peer_hashes.as_deref(), &id_body, &int_auth) else {
            return self.fail(
                spi,
                Stage::IkeAuth,
                FailurePoint::Local,
                FailureReason::Crypto,
            );
        };
        let child = self.answer_child(spi, &p);
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        sa.peer_id = Some(peer_id.clone());
        sa.state = State::Established;
        let h = sa.header(exchange_type::IKE_AUTH, message_id, true);
        let built = chain(|b| {
            b.push(payload_type::IDR, false, id_body.as_slice())?;
            push_certificates(b, &certs)?;
            b.push(
                payload_type::AUTH,
                false,
                &Auth {
                    auth_method: method,
                    data: &our,
                },
            )?;
            match &child {
                Ok(c) => {
                    if c.transport {
                        b.push(
                            payload_type::N,
                            false,
                            &Notify::new(notify_type::USE_TRANSPORT_MODE, &[]),
                        )?;
                    }
                    push_sa(b, &[OwnedProposal::child_choice(&c.choice, c.inbound_spi)])?;
                    push_ts(b, payload_type::TSI, &c.tsi)?;
                    push_ts(b, payload_type::TSR, &c.tsr)
                }
                Err((notify, _)) => b.push(payload_type::N, false, &Notify::new(*notify, &[])),
            }
        })
        .map_err(BuildError::from)
        .and_then(|(first, inner)| self.seal_message(spi, &h, first, &inner));
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let Ok(response) = built else {
            return self.fail(
                spi,
                Stage::IkeAuth,
                FailurePoint::Local,
                FailureReason::Crypto,
            );
        };
        sa.last_response = Some((message_id, response.clone()));
        sa.peer_next_id = message_id.wrapping_add(1);
        let (local, remote) = (sa.local, sa.remote);
        self.send(local, remote, response);
        let Some(sa) = self.sas.get(&spi) else { return };
        if let Some(e) = established(sa, peer_id) {
            self.events.push_back(e);
        }
        match child {
            Ok(c) => self.install_child(spi, c.choice, c.inbound_spi, c.transport, c.tsr, c.tsi),
            Err((_, reason)) => {
                let failure = crate::error::Failure {
                    local,
                    remote,
                    ike_sa: Some(crate::IkeSaId(spi)),
                    role: Role::Responder,
                    stage: Stage::ChildSa,
                    point: FailurePoint::Local,
                    reason,
                    policy: self.policy_involved(spi),
                };
                self.events.push_back(Event::Failure(failure));
            }
        }
    }

    /// The responder's decision on the first CHILD_SA: the answer or the
    /// error notification to send.
    fn answer_child(
        &mut self,
        spi: u64,
        p: &Received<'_>,
    ) -> Result<ChildAnswer, (u16, FailureReason)> {
        let esn = self.config.esn;
        let Some(sa) = self.sas.get(&spi) else {
            return Err((notify_type::NO_PROPOSAL_CHOSEN, FailureReason::Crypto));
        };
        let (Some(sa_payload), Some(tsi), Some(tsr)) = (p.sa, p.tsi, p.tsr) else {
            return Err((
                notify_type::INVALID_SYNTAX,
                FailureReason::Protocol("no SA, TSi or TSr"),
            ));
        };
        let (tsi, tsr) = (
            traffic_selector::from_wire(&tsi),
            traffic_selector::from_wire(&tsr),
        );
        let (Some(first_i), Some(first_r)) = (tsi.first(), tsr.first()) else {
            return Err((notify_type::TS_UNACCEPTABLE, FailureReason::TsUnacceptable));
        };
        // Our side is TSr, the initiator's is TSi.
        let traffic = Traffic {
            local: *first_r,
            remote: *first_i,
        };
        let Some(policy) = self
            .policy
            .quick_mode(sa.local.ip(), sa.remote.ip(), &traffic)
        else {
            return Err((notify_type::TS_UNACCEPTABLE, FailureReason::NoPolicy));
        };
        let offer = ChildOffer::offer(policy.quick_mode.proposals());
        let Some(choice) = select_child(&offer, esn, &sa_payload) else {
            return Err((
                notify_type::NO_PROPOSAL_CHOSEN,
                FailureReason::NoProposalChosen,
            ));
        };
        let transport_asked = p.has_notify(notify_type::USE_TRANSPORT_MODE);
        if policy.is_transport() && !transport_asked {
            return Err((notify_type::NO_PROPOSAL_CHOSEN, FailureReason::ModeMismatch));
        }
        let narrowed_i = narrow(&tsi, &policy.remote_selectors);
        let narrowed_r = narrow(&tsr, &policy.local_selectors);
        if narrowed_i.is_empty() || narrowed_r.is_empty() {
            return Err((notify_type::TS_UNACCEPTABLE, FailureReason::TsUnacceptable));
        }
        let Ok(inbound_spi) = self.new_child_spi() else {
            return Err((notify_type::NO_PROPOSAL_CHOSEN, FailureReason::Crypto));
        };
        Ok(ChildAnswer {
            choice,
            inbound_spi,
            transport: policy.is_transport(),
            tsi: narrowed_i,
            tsr: narrowed_r,
        })
    }

    /// Records a CHILD_SA and hands it to the data plane.
    fn install_child(
        &mut self,
        spi: u64,
        choice: ChildChoice,
        inbound_spi: u32,
        transport: bool,
        local_selectors: Vec<TrafficSelector>,
        remote_selectors: Vec<TrafficSelector>,
    ) {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let Some((inbound_keys, outbound_keys)) = child_keys(sa, &choice) else {
            self.child_spis.remove(&inbound_spi);
            let stage = Stage::ChildSa;
            return self.fail(spi, stage, FailurePoint::Local, FailureReason::Crypto);
        };
        let record = ChildRecord {
            protocol_id: match choice.protocol {
                crate::proposal::ChildProtocol::Esp(_) => palisade_wire::ikev2::protocol_id::ESP,
                crate::proposal::ChildProtocol::Ah(_) => palisade_wire::ikev2::protocol_id::AH,
            },
            inbound_spi,
            outbound_spi: choice.peer_spi,
        };
        sa.children.push(record);
        let child = ChildSa {
            ike_sa: sa.id,
            protocol: choice.protocol,
            mode: if transport {
                Mode::Transport
            } else {
                Mode::Tunnel
            },
            local: sa.local.ip(),
            remote: sa.remote.ip(),
            inbound_spi,
            outbound_spi: choice.peer_spi,
            esn: choice.esn,
            lifetime: lifetime(&choice.lifetime),
            udp_encap: sa.nat.any().then_some(palisade_esp::UdpEncap {
                local_port: sa.local.port(),
                remote_port: sa.remote.port(),
            }),
            local_selectors,
            remote_selectors,
            peer_id: sa
                .peer_id
                .clone()
                .unwrap_or_else(|| Identity::from_ip(sa.remote.ip())),
            inbound_keys,
            outbound_keys,
        };
        // The first quick mode of the IKE SA, for `quick_mode_limit`.
        self.note_child_negotiated(spi);
        self.events
            .push_back(Event::ChildSaInstalled(Box::new(child)));
    }

    /// An encrypted IKE_AUTH response carrying only an error notification.
    fn answer_auth_error(&mut self, spi: u64, message_id: u32, notify: u16) {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let h = sa.header(exchange_type::IKE_AUTH, message_id, true);
        let Some(keys) = sa.keys.as_mut() else { return };
        if let Ok(m) = encrypted(&h, &mut keys.outbound, |b| {
            b.push(payload_type::N, false, &Notify::new(notify, &[]))
        }) {
            let (local, remote) = (sa.local, sa.remote);
            self.send(local, remote, m);
        }
    }

    /// Initiator: the IKE_AUTH response.
    pub(crate) fn handle_ike_auth_response(
        &mut self,
        now: Instant,
        spi: u64,
        path: Path,
        bytes: &[u8],
    ) {
        let Some(sa) = self.sas.get(&spi) else { return };
        let Some(keys) = sa.keys.as_ref() else { return };
        let Ok(header) = IkeHeader::parse(bytes) else {
            return;
        };
        let Ok(outer) = Received::gather(
            header.next_payload,
            bytes.get(IKE_HEADER_LEN..).unwrap_or_default(),
            bytes.len(),
        ) else {
            self.counters.count(DropReason::Malformed);
            return;
        };
        let Some((plain, first, range)) = open_sk(bytes, &outer, &keys.inbound) else {
            self.counters.count(DropReason::Integrity);
            return;
        };
        self.authenticated(spi, path);
        let inner = plain.get(range).unwrap_or_default();
        self.handle_ike_auth_response_inner(now, spi, first, inner);
    }

    /// Initiator: the IKE_AUTH response's decrypted (or reassembled) inner
    /// payloads, starting with a payload of type `first`.
    pub(crate) fn handle_ike_auth_response_inner(
        &mut self,
        now: Instant,
        spi: u64,
        first: u8,
        inner: &[u8],
    ) {
        let esn = self.config.esn;
        let time = self.unix_time_at(now);
        self.forget_sent_request(spi);
        let int_auth = self.int_auth(spi);
        let Some(sa) = self.sas.get(&spi) else { return };
        let fail = |this: &mut Self, point, reason| this.fail(spi, Stage::IkeAuth, point, reason);
        let Ok(p) = Received::gather(first, inner, inner.len()) else {
            return fail(
                self,
                FailurePoint::Local,
                FailureReason::Protocol("malformed IKE_AUTH response"),
            );
        };
        let (Some(idr), Some(auth)) = (p.idr, p.auth) else {
            let reason = match p.error().map(|n| n.notify_type) {
                Some(notify_type::AUTHENTICATION_FAILED) => FailureReason::AuthenticationFailed,
                Some(t) => FailureReason::PeerError(t),
                None => FailureReason::Protocol("IKE_AUTH response without IDr and AUTH"),
            };
            return fail(self, FailurePoint::Peer, reason);
        };
        let peer_id = match peer_authenticated(sa, idr, &auth, &p.certs, time, &int_auth) {
            Ok(id) => id,
            // TODO: tell the responder with an INFORMATIONAL Delete.
            Err(reason) => return fail(self, FailurePoint::Local, reason),
        };
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        sa.state = State::Established;
        sa.peer_id = Some(peer_id.clone());
        let Some(pending) = sa.pending_child.take() else {
            return;
        };
        let (local, remote) = (sa.local, sa.remote);
        if let Some(e) = established(sa, peer_id) {
            self.events.push_back(e);
        }
        let child_failure = |this: &mut Self, point, reason| {
            this.events.push_back(Event::Failure(crate::error::Failure {
                local,
                remote,
                ike_sa: Some(crate::IkeSaId(spi)),
                role: Role::Initiator,
                stage: Stage::ChildSa,
                point,
                reason,
                policy: this.policy_involved(spi),
            }));
        };
        if let Some(err) = p.error() {
            self.child_spis.remove(&pending.inbound_spi);
            let reason = match err.notify_type {
                notify_type::NO_PROPOSAL_CHOSEN => FailureReason::NoProposalChosen,
                notify_type::TS_UNACCEPTABLE => FailureReason::TsUnacceptable,
                t => FailureReason::PeerError(t),
            };
            child_failure(self, FailurePoint::Peer, reason);
        } else {
            let transport = p.has_notify(notify_type::USE_TRANSPORT_MODE);
            let checked = match (p.sa, p.tsi, p.tsr) {
                (Some(sa_payload), Some(tsi), Some(tsr)) => {
                    let tsi = traffic_selector::from_wire(&tsi);
                    let tsr = traffic_selector::from_wire(&tsr);
                    match check_child_response(&pending.offer, esn, &sa_payload) {
                        None => Err(FailureReason::Protocol(
                            "responder chose a CHILD_SA proposal not offered",
                        )),
                        Some(_)
                            if !all_within(&tsi, &pending.tsi)
                                || !all_within(&tsr, &pending.tsr) =>
                        {
                            Err(FailureReason::TsUnacceptable)
                        }
                        Some(_) if transport != pending.policy.is_transport() => {
                            Err(FailureReason::ModeMismatch)
                        }
                        Some(choice) => Ok((choice, tsi, tsr)),
                    }
                }
                _ => Err(FailureReason::Protocol(
                    "IKE_AUTH response without SA, TSi or TSr",
                )),
            };
            match checked {
                Ok((choice, tsi, tsr)) => {
                    self.install_child(spi, choice, pending.inbound_spi, transport, tsi, tsr);
                }
                Err(reason) => {
                    // The responder may have installed its half: delete it.
                    child_failure(self, FailurePoint::Local, reason);
                    self.request_done(now, spi);
                    self.request(now, spi, Purpose::DeleteChildSa(pending.inbound_spi));
                    return;
                }
            }
        }
        self.request_done(now, spi);
    }
}
