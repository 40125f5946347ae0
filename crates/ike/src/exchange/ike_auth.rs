//! IKE_AUTH (RFC 7296 §1.2, §2.15) with pre-shared keys or certificates
//! (CERT, CERTREQ, signature AUTH: [`crate::certificate_auth`]), carrying
//! the first CHILD_SA (SA, TSi, TSr, USE_TRANSPORT_MODE; §1.3.1, §2.9).
//! Both IKE_AUTH messages go out in fragments when large and fragmentation
//! was negotiated ([`crate::fragment`]).
//!
//! EAP and the peer's optional IDr hint are not supported yet.

use std::time::{Instant, SystemTime};

use palisade_crypto::signature::HashAlgorithm;
use palisade_filter::policy::TrafficSelector;
use palisade_wire::WireError;
use palisade_wire::ikev2::{
    Auth, Certificate, Identification, IkeHeader, MessageBuilder, Notify, auth_method,
    cert_encoding, exchange_type, notify_type, payload_type,
};

use super::{
    ChildAnswer, answered, child_keymat, child_request, hold_to_policy, push_certreq, push_ts,
    record_child_sa, substitute_request,
};
use crate::Endpoint;
use crate::auth::{SignedOctets, psk_auth, verify_psk_auth};
use crate::certificate_auth;
use crate::endpoint::Path;
use crate::error::{CertificateFailure, FailurePoint, FailureReason, Role, Stage};
use crate::event::{Event, IkeSaInfo};
use crate::identity::Identity;
use crate::ike_sa::{IkeSa, Keys, State};
use crate::message::{BuildError, Received, chain};
use crate::proposal::{
    ChildChoice, ChildOffer, OwnedProposal, check_child_response, push_sa, select_child,
};
use crate::retransmit::Purpose;
use crate::traffic_selector;
use palisade_esp::transport_nat::OriginalAddresses;

/// What `signer` signs or MACs: its IKE_SA_INIT message, the other side's
/// nonce, its SK_p and ID body (RFC 7296 §2.15: InitiatorSignedOctets and
/// ResponderSignedOctets). Our AUTH and the check of the peer's are the
/// same octets, only of the other side, so one function serves both.
/// `int_auth` is the IntAuth of RFC 9242 §3.3.2 (empty without
/// IKE_INTERMEDIATE).
fn signed_octets_of<'a>(
    sa: &'a IkeSa,
    keys: &'a Keys,
    signer: Role,
    id_body: &'a [u8],
    int_auth: &'a [u8],
) -> SignedOctets<'a> {
    let (real_message, peer_nonce, sk_p) = match signer {
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
    let signed = signed_octets_of(sa, keys, sa.role, id_body, int_auth);
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
    let peer = match sa.role {
        Role::Initiator => Role::Responder,
        Role::Responder => Role::Initiator,
    };
    let signed = signed_octets_of(sa, keys, peer, id_body, int_auth);
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

impl Endpoint {
    /// Initiator: IDi, AUTH, [USE_TRANSPORT_MODE], SA, TSi, TSr.
    pub(crate) fn send_ike_auth(&mut self, now: Instant, spi: u64) {
        let esn = self.config.esn;
        let int_auth = self.int_auth(spi);
        let initial_contact = self.is_initial_contact(spi);
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
                push_certreq(b, authorities)?;
            }
            b.push(
                payload_type::AUTH,
                false,
                &Auth {
                    auth_method: method,
                    data: &auth,
                },
            )?;
            if initial_contact {
                b.push(
                    payload_type::N,
                    false,
                    &Notify::new(notify_type::INITIAL_CONTACT, &[]),
                )?;
            }
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

    /// Whether our IKE_AUTH request for `spi` carries INITIAL_CONTACT (RFC 7296 §2.4):
    /// we hold no other established IKE SA with the peer's address, as after a restart,
    /// so the peer may drop whatever it still holds for us.
    fn is_initial_contact(&self, spi: u64) -> bool {
        let Some(sa) = self.sas.get(&spi) else {
            return false;
        };
        !self.sas.iter().any(|(other, o)| {
            *other != spi && o.state == State::Established && o.remote.ip() == sa.remote.ip()
        })
    }

    /// The peer authenticated as `peer_id` on `spi` said INITIAL_CONTACT: its other IKE SAs
    /// with us are from before it lost its state. They go, with their CHILD_SAs, without
    /// Delete exchanges (nobody on the other side would answer them).
    fn forget_stale_ike_sas(&mut self, spi: u64, peer_id: &crate::identity::Identity) {
        let stale: Vec<u64> = self
            .sas
            .iter()
            .filter(|(other, o)| {
                **other != spi
                    && o.state == State::Established
                    && o.peer_id.as_ref() == Some(peer_id)
            })
            .map(|(other, _)| *other)
            .collect();
        for other in stale {
            self.remove(other);
        }
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
        let Some(opened) = self.open_protected(spi, path, header, bytes) else {
            return;
        };
        let inner = opened.inner();
        self.respond_ike_auth_inner(now, spi, header.message_id, opened.first, inner);
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
                self.answer_error(
                    spi,
                    exchange_type::IKE_AUTH,
                    message_id,
                    notify_type::INVALID_SYNTAX,
                );
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
                self.answer_error(
                    spi,
                    exchange_type::IKE_AUTH,
                    message_id,
                    notify_type::AUTHENTICATION_FAILED,
                );
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
        let (local, remote) = sa.answered(message_id, &response);
        self.send(local, remote, response);
        let Some(sa) = self.sas.get(&spi) else { return };
        if let Some(e) = established(sa, peer_id.clone()) {
            self.events.push_back(e);
        }
        if p.has_notify(notify_type::INITIAL_CONTACT) {
            self.forget_stale_ike_sas(spi, &peer_id);
        }
        match child {
            Ok(c) => {
                let selectors = (c.tsr, c.tsi);
                let transport = c.transport;
                self.install_child(
                    spi,
                    c.choice,
                    c.inbound_spi,
                    transport,
                    selectors,
                    c.nat_original,
                );
            }
            Err((_, reason)) => {
                self.report_failure(spi, Stage::ChildSa, FailurePoint::Local, reason);
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
        let mut request = child_request(p)?;
        substitute_request(sa, p, &mut request);
        let Some(policy) = self
            .policy
            .quick_mode(sa.local.ip(), sa.remote.ip(), &request.traffic)
        else {
            return Err((notify_type::TS_UNACCEPTABLE, FailureReason::NoPolicy));
        };
        let offer = ChildOffer::offer(policy.quick_mode.proposals());
        let Some(choice) = select_child(&offer, esn, &request.sa) else {
            return Err((
                notify_type::NO_PROPOSAL_CHOSEN,
                FailureReason::NoProposalChosen,
            ));
        };
        let (narrowed_i, narrowed_r) = hold_to_policy(&policy, p, &request)?;
        let Ok(inbound_spi) = self.new_child_spi() else {
            return Err((notify_type::NO_PROPOSAL_CHOSEN, FailureReason::Crypto));
        };
        Ok(ChildAnswer {
            choice,
            inbound_spi,
            transport: policy.is_transport(),
            tsi: narrowed_i,
            tsr: narrowed_r,
            nat_original: request.nat_original,
            // No key exchange for the first CHILD_SA (RFC 7296 §1.2).
            ke: None,
        })
    }

    /// Records a CHILD_SA and hands it to the data plane.
    fn install_child(
        &mut self,
        spi: u64,
        choice: ChildChoice,
        inbound_spi: u32,
        transport: bool,
        selectors: (Vec<TrafficSelector>, Vec<TrafficSelector>),
        nat_original: Option<OriginalAddresses>,
    ) {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        // KEYMAT for the first CHILD_SA (RFC 7296 §2.17): no g^ir, the
        // IKE_SA_INIT nonces, the IKE SA's roles.
        let keymat = sa.keys.as_ref().and_then(|keys| {
            let we_initiated = sa.role == Role::Initiator;
            child_keymat(keys, &choice.protocol, None, &sa.ni, &sa.nr, we_initiated)
        });
        let Some(keymat) = keymat else {
            self.child_spis.remove(&inbound_spi);
            let stage = Stage::ChildSa;
            return self.fail(spi, stage, FailurePoint::Local, FailureReason::Crypto);
        };
        let mut child = record_child_sa(
            sa,
            &choice,
            inbound_spi,
            transport,
            selectors,
            nat_original,
            keymat,
        );
        self.jitter_volume(&mut child);
        // The first quick mode of the IKE SA, for `quick_mode_limit`.
        self.note_child_negotiated(spi);
        self.events
            .push_back(Event::ChildSaInstalled(Box::new(child)));
    }

    /// Initiator: the IKE_AUTH response.
    pub(crate) fn handle_ike_auth_response(
        &mut self,
        now: Instant,
        spi: u64,
        path: Path,
        bytes: &[u8],
    ) {
        let Ok(header) = IkeHeader::parse(bytes) else {
            return;
        };
        let Some(opened) = self.open_protected(spi, path, &header, bytes) else {
            return;
        };
        let inner = opened.inner();
        self.handle_ike_auth_response_inner(now, spi, opened.first, inner);
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
        if let Some(e) = established(sa, peer_id) {
            self.events.push_back(e);
        }
        // The IKE SA stays up without its first CHILD_SA (RFC 7296 §1.2).
        let child_failure = |this: &mut Self, point, reason| {
            this.report_failure(spi, Stage::ChildSa, point, reason);
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
            let Some(sa) = self.sas.get(&spi) else { return };
            let checked = match (p.sa, p.tsi, p.tsr) {
                (Some(sa_payload), Some(tsi), Some(tsr)) => {
                    // Across a NAT in transport mode, the addresses we see (RFC 7296
                    // §2.23.1).
                    let got = answered(
                        sa,
                        transport,
                        (
                            traffic_selector::from_wire(&tsi),
                            traffic_selector::from_wire(&tsr),
                        ),
                        (&pending.tsi, &pending.tsr),
                    );
                    match check_child_response(&pending.offer, esn, &sa_payload) {
                        None => Err(FailureReason::Protocol(
                            "responder chose a CHILD_SA proposal not offered",
                        )),
                        Some(_) if !got.within_proposal => Err(FailureReason::TsUnacceptable),
                        Some(_) if transport != pending.policy.is_transport() => {
                            Err(FailureReason::ModeMismatch)
                        }
                        Some(choice) => Ok((choice, got)),
                    }
                }
                _ => Err(FailureReason::Protocol(
                    "IKE_AUTH response without SA, TSi or TSr",
                )),
            };
            match checked {
                Ok((choice, got)) => {
                    let selectors = (got.tsi, got.tsr);
                    let inbound_spi = pending.inbound_spi;
                    let original = got.nat_original;
                    self.install_child(spi, choice, inbound_spi, transport, selectors, original);
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
