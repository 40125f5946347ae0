//! CREATE_CHILD_SA (RFC 7296 §1.3) in both roles: a further CHILD_SA
//! (§1.3.1), the rekey of a CHILD_SA (§1.3.3, REKEY_SA) and of the IKE SA
//! (§1.3.2, §2.18), with a key exchange for PFS when the quick-mode policy
//! names a group (§2.17), INVALID_KE_PAYLOAD answered and followed, and
//! the rekey collisions of §2.8.1 and §2.8.2.
//!
//! ```text
//! new CHILD_SA     SA, Ni, [KEi], TSi, TSr          SA, Nr, [KEr], TSi, TSr
//! CHILD_SA rekey   N(REKEY_SA), SA, Ni, [KEi], ...  (same as above)
//! IKE SA rekey     SA (SPIi), Ni, KEi               SA (SPIr), Nr, KEr
//! ```
//!
//! The initiator of a rekey deletes the old SA once the new one is in
//! place. When both peers rekey the same SA at once, both exchanges
//! complete; the SA whose exchange holds the lowest of the four nonces is
//! redundant and its initiator deletes it, the other initiator deletes the
//! old SA.

use std::time::Instant;

use palisade_crypto::ikev2_kdf::rekey_skeyseed;
use palisade_crypto::{
    ChildSaKeys, CryptoError, IkeProtection, IkeSaKeys, KeId, KeyExchange as Ke, Prf,
};
use palisade_esp::Mode;
use palisade_filter::policy::{PfsGroup, TrafficSelector};
use palisade_wire::WireError;
use palisade_wire::ikev2::{
    IKE_HEADER_LEN, IkeHeader, KeyExchange, MessageBuilder, Nonce, Notify, PAYLOAD_HEADER_LEN,
    Proposal, SecurityAssociation, TrafficSelectorsSpec, TransformSpec, exchange_type, notify_type,
    payload_type, protocol_id, transform_type,
};
use zeroize::Zeroizing;

use crate::Endpoint;
use crate::child_sa::{ChildSa, lifetime};
use crate::endpoint::Path;
use crate::error::{DropReason, Failure, FailurePoint, FailureReason, Role, Stage};
use crate::event::{ChildSaRekeyed, Event, IkeSaId};
use crate::identity::Identity;
use crate::ike_sa::{ChildRecord, IkeSa, Keys, State};
use crate::limits::Gate;
use crate::message::{Received, encrypted, open_sk};
use crate::policy::{ChildPolicy, Traffic};
use crate::proposal::{
    ChildChoice, ChildOffer, ChildProtocol, IkeTransforms, OwnedProposal, check_child_response,
    check_ike_response, push_sa, select_child, select_ike,
};
use crate::rekey::{Collision, CreateKind, Created, OurRequest, Renewal};
use crate::retransmit::Purpose;
use crate::traffic_selector::{self, all_within, host, narrow};

/// One direction's KEYMAT, wiped on drop.
type DirectionKeymat = Zeroizing<Vec<u8>>;

/// The key exchange a quick-mode proposal's `pfs_group` asks for, given
/// the IKE SA's group; `Err` for groups this implementation cannot run.
fn pfs_ke(group: PfsGroup, ike: KeId) -> Result<Option<KeId>, ()> {
    Ok(Some(match group {
        PfsGroup::None => return Ok(None),
        PfsGroup::Mm => ike,
        PfsGroup::Group14 => KeId::Modp2048,
        PfsGroup::Group15 => KeId::Modp3072,
        PfsGroup::Group16 => KeId::Modp4096,
        PfsGroup::Ecp256 => KeId::Ecp256,
        PfsGroup::Ecp384 => KeId::Ecp384,
        PfsGroup::Ecp521 => KeId::Ecp521,
        PfsGroup::Curve25519 => KeId::Curve25519,
        _ => return Err(()),
    }))
}

/// Our CHILD_SA offer with each proposal's PFS group.
fn child_offer(policy: &ChildPolicy, ike: KeId) -> (Vec<ChildOffer>, Vec<Option<KeId>>) {
    let mut offers: Vec<ChildOffer> = Vec::new();
    let mut groups = Vec::new();
    for p in policy.quick_mode.proposals() {
        let (Some(protocol), Ok(group)) = (ChildProtocol::from_policy(p), pfs_ke(p.pfs_group, ike))
        else {
            continue;
        };
        let dup = offers
            .iter()
            .zip(&groups)
            .any(|(o, g)| o.protocol == protocol && *g == group);
        if !dup {
            offers.push(ChildOffer {
                protocol,
                lifetime: p.lifetime,
            });
            groups.push(group);
        }
    }
    (offers, groups)
}

fn ke_spec(ke: KeId) -> TransformSpec {
    TransformSpec {
        transform_type: transform_type::KE,
        transform_id: ke.into(),
        key_length: None,
    }
}

/// The SA payload re-encoded with some transforms left out and, for IKE
/// proposals, without SPIs: what [`crate::proposal`]'s selection (written
/// for IKE_AUTH and IKE_SA_INIT) expects.
fn reencode(
    sa: &SecurityAssociation<'_>,
    drop_ke: bool,
    keep: &dyn Fn(&Proposal<'_>) -> bool,
) -> Option<Vec<u8>> {
    let proposals: Vec<OwnedProposal> = sa
        .proposals()
        .filter(|p| keep(p))
        .map(|p| OwnedProposal {
            num: p.proposal_num,
            protocol_id: p.protocol_id,
            spi: if p.protocol_id == protocol_id::IKE {
                Vec::new()
            } else {
                p.spi.to_vec()
            },
            transforms: p
                .transforms()
                .filter_map(|t| t.to_spec())
                .filter(|t| !(drop_ke && t.transform_type == transform_type::KE))
                .collect(),
        })
        .collect();
    let mut buf = vec![0u8; sa.as_bytes().len() + 64];
    let mut b = MessageBuilder::chain(&mut buf);
    push_sa(&mut b, &proposals).ok()?;
    let len = b.finish().ok()?;
    buf.truncate(len);
    Some(buf.split_off(PAYLOAD_HEADER_LEN))
}

/// The KE transform ids of a proposal.
fn groups_of(p: &Proposal<'_>) -> Vec<u16> {
    p.transforms()
        .filter(|t| t.transform_type == transform_type::KE)
        .map(|t| t.transform_id)
        .collect()
}

/// The KE transform ids of proposal `num` in `sa`.
fn proposal_groups(sa: &SecurityAssociation<'_>, num: u8) -> Vec<u16> {
    sa.proposals()
        .filter(|p| p.proposal_num == num)
        .flat_map(|p| groups_of(&p))
        .collect()
}

fn push_ts(
    b: &mut MessageBuilder<'_>,
    kind: u8,
    selectors: &[TrafficSelector],
) -> Result<(), WireError> {
    let wire: Vec<_> = selectors.iter().map(traffic_selector::to_wire).collect();
    b.push(kind, false, &TrafficSelectorsSpec { selectors: &wire })
}

/// KEYMAT of a CHILD_SA made by CREATE_CHILD_SA (RFC 7296 §2.17), as
/// (inbound, outbound): "initiator" is the exchange's initiator.
fn child_keymat(
    keys: &Keys,
    protocol: &ChildProtocol,
    g_ir: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    we_initiated: bool,
) -> Option<(DirectionKeymat, DirectionKeymat)> {
    let lengths = protocol.key_lengths().ok()?;
    let keymat = ChildSaKeys::derive(keys.prf, keys.sk.sk_d(), g_ir, ni, nr, lengths).ok()?;
    let join = |d: palisade_crypto::ikev2_kdf::DirectionKeys<'_>| {
        let mut v = Zeroizing::new(Vec::with_capacity(d.encr.len() + d.integ.len()));
        v.extend_from_slice(d.encr);
        v.extend_from_slice(d.integ);
        v
    };
    let i2r = join(keymat.initiator_to_responder());
    let r2i = join(keymat.responder_to_initiator());
    Some(if we_initiated { (r2i, i2r) } else { (i2r, r2i) })
}

/// The keys of a rekeyed IKE SA (RFC 7296 §2.18): SKEYSEED from the old
/// SK_d with the old PRF, the seven keys with the new PRF.
#[allow(clippy::too_many_arguments)]
fn rekeyed_keys(
    old: &Keys,
    role: Role,
    transforms: IkeTransforms,
    g_ir: &[u8],
    ni: &[u8],
    nr: &[u8],
    spi_i: u64,
    spi_r: u64,
) -> Result<Keys, CryptoError> {
    let seed = rekey_skeyseed(old.prf, old.sk.sk_d(), g_ir, ni, nr);
    let prf = Prf::new(transforms.prf);
    let sk = IkeSaKeys::derive(
        prf,
        seed.as_ref(),
        transforms.key_lengths()?,
        ni,
        nr,
        spi_i.to_be_bytes(),
        spi_r.to_be_bytes(),
    )?;
    let protection = |e: &[u8], a: &[u8]| {
        IkeProtection::new(transforms.encr, transforms.key_bits, transforms.integ, e, a)
    };
    let initiator = protection(sk.sk_ei(), sk.sk_ai())?;
    let responder = protection(sk.sk_er(), sk.sk_ar())?;
    let (outbound, inbound) = match role {
        Role::Initiator => (initiator, responder),
        Role::Responder => (responder, initiator),
    };
    Ok(Keys {
        transforms,
        prf,
        sk,
        outbound,
        inbound,
    })
}

/// Whether our exchange of a collision is the redundant one: it holds the
/// lowest of the four nonces (RFC 7296 §2.8.1, §2.8.2).
fn lost(our_ni: &[u8], peer_nr: &[u8], c: &Collision) -> bool {
    let ours = our_ni.min(peer_nr);
    let theirs = c.peer_ni.as_slice().min(c.our_nr.as_slice());
    ours < theirs
}

/// The responder's decision on a CHILD_SA request.
struct ChildAnswer {
    choice: ChildChoice,
    inbound_spi: u32,
    transport: bool,
    tsi: Vec<TrafficSelector>,
    tsr: Vec<TrafficSelector>,
    /// Our KE for PFS and the group.
    ke: Option<Ke>,
}

/// What a responder sends back, before the message is sealed.
enum Answer {
    Child {
        answer: ChildAnswer,
        g_ir: Option<Zeroizing<Vec<u8>>>,
        rekeyed: Option<u32>,
    },
    Ike {
        num: u8,
        chosen: IkeTransforms,
        spi_i: u64,
        ke: Ke,
        g_ir: Zeroizing<Vec<u8>>,
    },
    Error(u16, Vec<u8>, Option<FailureReason>),
}

impl Endpoint {
    /// A failure of a CREATE_CHILD_SA exchange that leaves the IKE SA up.
    fn child_failure(&mut self, spi: u64, point: FailurePoint, reason: FailureReason) {
        let Some(sa) = self.sas.get(&spi) else { return };
        let failure = Failure {
            local: sa.local,
            remote: sa.remote,
            ike_sa: Some(sa.id),
            role: sa.role,
            stage: Stage::CreateChildSa,
            point,
            reason,
            policy: self.policy_involved(spi),
        };
        self.events.push_back(Event::Failure(failure));
    }

    /// The next queued CREATE_CHILD_SA request of IKE SA `spi`, now that
    /// its window is open. Requests that became pointless while queued (the
    /// peer rekeyed that SA first) are skipped.
    pub(crate) fn send_create_child_sa(&mut self, now: Instant, spi: u64) {
        let Some(kind) = self.rekey.queue.get_mut(&spi).and_then(|q| q.pop_front()) else {
            return self.request_done(now, spi);
        };
        // CHILD_SAs per IKE SA and `quick_mode_limit` (crate::limits).
        match self.gate_create(spi, kind) {
            Gate::Send => {}
            Gate::Refused => return self.request_done(now, spi),
            Gate::RekeyFirst => return self.send_create_child_sa(now, spi),
            Gate::Wait => return,
        }
        match self.prepare_request(spi, kind) {
            Ok(Some(req)) => {
                self.rekey.ours.insert(spi, req);
                self.send_our_request(now, spi);
            }
            Ok(None) => self.request_done(now, spi),
            Err(reason) => {
                self.retry_later(now, kind, spi);
                self.child_failure(spi, FailurePoint::Local, reason);
                self.request_done(now, spi);
            }
        }
    }

    /// What to send for `kind`, or `None` if it is no longer wanted.
    fn prepare_request(
        &mut self,
        spi: u64,
        kind: CreateKind,
    ) -> Result<Option<OurRequest>, FailureReason> {
        let Some(sa) = self.sas.get(&spi) else {
            return Ok(None);
        };
        let Some(keys) = sa.keys.as_ref() else {
            return Ok(None);
        };
        if sa.state != State::Established || !self.rekey.ike_active(spi) {
            return Ok(None);
        }
        let ike_ke = keys.transforms.ke;
        let (local_ip, remote_ip) = (sa.local.ip(), sa.remote.ip());
        let mut req = OurRequest {
            kind,
            ni: Vec::new(),
            ke: None,
            ke_retried: false,
            child_spi: 0,
            ike_spi: 0,
            child_policy: None,
            child_offer: Vec::new(),
            child_groups: Vec::new(),
            ike_offer: Vec::new(),
            tsi: Vec::new(),
            tsr: Vec::new(),
            collision: None,
        };
        let traffic = match kind {
            CreateKind::RekeyIke => {
                let rekeying = self
                    .rekey
                    .ike
                    .get(&spi)
                    .is_some_and(|t| t.renewal == Renewal::Rekeying);
                if !rekeying {
                    return Ok(None);
                }
                req.ike_offer = IkeTransforms::offer(&sa.policy.main_mode.ike_proposals);
                // Our current group first: the peer accepted it already.
                req.ike_offer.sort_by_key(|t| t.ke != ike_ke);
                let first = req
                    .ike_offer
                    .first()
                    .ok_or(FailureReason::UnsupportedPolicy(
                        "no supported IKE proposal",
                    ))?;
                req.ke = Some(Ke::generate(first.ke).map_err(|_| FailureReason::Crypto)?);
                req.ike_spi = self.new_ike_spi().map_err(|_| FailureReason::Crypto)?;
                None
            }
            CreateKind::RekeyChild(old) => {
                let exists = sa.children.iter().any(|c| c.inbound_spi == old);
                let Some(t) = self.rekey.children.get(&old) else {
                    return Ok(None);
                };
                if !exists || t.renewal != Renewal::Rekeying {
                    return Ok(None);
                }
                req.tsi = t.local_selectors.clone();
                req.tsr = t.remote_selectors.clone();
                let first = |v: &[TrafficSelector], ip| v.first().copied().unwrap_or(host(ip));
                Some(Traffic {
                    local: first(&req.tsi, local_ip),
                    remote: first(&req.tsr, remote_ip),
                })
            }
            CreateKind::NewChild(traffic) => Some(traffic),
        };
        if let Some(traffic) = traffic {
            let policy = self
                .policy
                .quick_mode(local_ip, remote_ip, &traffic)
                .ok_or(FailureReason::NoPolicy)?;
            let (offer, groups) = child_offer(&policy, ike_ke);
            if offer.is_empty() {
                return Err(FailureReason::UnsupportedPolicy(
                    "no supported IPsec proposal",
                ));
            }
            if let CreateKind::NewChild(_) = kind {
                req.tsi = vec![traffic.local];
                req.tsi.extend(
                    policy
                        .local_selectors
                        .iter()
                        .filter(|s| **s != traffic.local),
                );
                req.tsr = vec![traffic.remote];
                req.tsr.extend(
                    policy
                        .remote_selectors
                        .iter()
                        .filter(|s| **s != traffic.remote),
                );
            }
            if let Some(group) = groups.iter().flatten().next() {
                req.ke = Some(Ke::generate(*group).map_err(|_| FailureReason::Crypto)?);
            }
            req.child_policy = Some(policy);
            req.child_offer = offer;
            req.child_groups = groups;
            req.child_spi = self.new_child_spi().map_err(|_| FailureReason::Crypto)?;
        }
        req.ni = self
            .random_bytes(self.config.nonce_len)
            .map_err(|_| FailureReason::Crypto)?;
        Ok(Some(req))
    }

    /// Builds and sends the request recorded in `rekey.ours` (again, with a
    /// new message ID, after INVALID_KE_PAYLOAD).
    fn send_our_request(&mut self, now: Instant, spi: u64) {
        let esn = self.config.esn;
        let (Some(sa), Some(req)) = (self.sas.get_mut(&spi), self.rekey.ours.get(&spi)) else {
            return;
        };
        let message_id = sa.next_message_id;
        let header = sa.header(exchange_type::CREATE_CHILD_SA, message_id, false);
        let rekeyed = match req.kind {
            CreateKind::RekeyChild(old) => sa
                .children
                .iter()
                .find(|c| c.inbound_spi == old)
                .map(|c| (c.protocol_id, old.to_be_bytes())),
            _ => None,
        };
        let Some(keys) = sa.keys.as_mut() else { return };
        let built = encrypted(&header, &mut keys.outbound, |b| {
            if let Some((proto, old)) = &rekeyed {
                let n = Notify {
                    protocol_id: *proto,
                    spi: old,
                    notify_type: notify_type::REKEY_SA,
                    data: &[],
                };
                b.push(payload_type::N, false, &n)?;
            }
            let proposals = if req.kind == CreateKind::RekeyIke {
                OwnedProposal::ike_offer(&req.ike_offer)
                    .into_iter()
                    .map(|mut p| {
                        p.spi = req.ike_spi.to_be_bytes().to_vec();
                        p
                    })
                    .collect()
            } else {
                if req.child_policy.as_ref().is_some_and(|p| p.is_transport()) {
                    b.push(
                        payload_type::N,
                        false,
                        &Notify::new(notify_type::USE_TRANSPORT_MODE, &[]),
                    )?;
                }
                let mut v = OwnedProposal::child_offer(&req.child_offer, esn, req.child_spi);
                for (p, g) in v.iter_mut().zip(&req.child_groups) {
                    if let Some(g) = g {
                        p.transforms.push(ke_spec(*g));
                    }
                }
                v
            };
            push_sa(b, &proposals)?;
            b.push(payload_type::NONCE, false, &Nonce { data: &req.ni })?;
            if let Some(ke) = &req.ke {
                b.push(
                    payload_type::KE,
                    false,
                    &KeyExchange {
                        dh_group: ke.id().into(),
                        data: ke.public_value(),
                    },
                )?;
            }
            if req.kind != CreateKind::RekeyIke {
                push_ts(b, payload_type::TSI, &req.tsi)?;
                push_ts(b, payload_type::TSR, &req.tsr)?;
            }
            Ok(())
        });
        let Ok(request) = built else {
            return self.fail(
                spi,
                Stage::CreateChildSa,
                FailurePoint::Local,
                FailureReason::Crypto,
            );
        };
        sa.next_message_id = message_id.wrapping_add(1);
        self.send_request(now, spi, message_id, Purpose::CreateChildSa, request);
    }

    /// Responder: a CREATE_CHILD_SA request.
    pub(crate) fn respond_create_child_sa(
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
        let message_id = header.message_id;
        let p = match Received::gather(first, plain.get(range).unwrap_or_default(), plain.len()) {
            Ok(p) => p,
            Err(_) => {
                return self.answer_create(
                    now,
                    spi,
                    message_id,
                    Answer::Error(
                        notify_type::INVALID_SYNTAX,
                        Vec::new(),
                        Some(FailureReason::Protocol("malformed CREATE_CHILD_SA request")),
                    ),
                    Vec::new(),
                    None,
                );
            }
        };
        let Some(ni) = p.nonce.map(<[u8]>::to_vec) else {
            return self.answer_create(
                now,
                spi,
                message_id,
                Answer::Error(
                    notify_type::INVALID_SYNTAX,
                    Vec::new(),
                    Some(FailureReason::Protocol("CREATE_CHILD_SA without a nonce")),
                ),
                Vec::new(),
                None,
            );
        };
        let Ok(nr) = self.random_bytes(self.config.nonce_len) else {
            return;
        };
        let is_ike =
            p.sa.and_then(|s| s.proposals().next())
                .is_some_and(|pr| pr.protocol_id == protocol_id::IKE);
        let rekey_notify = p
            .notifies
            .iter()
            .find(|n| n.notify_type == notify_type::REKEY_SA)
            .copied();
        let answer = if !self.rekey.ike_active(spi) {
            // Being replaced or deleted (§2.25): the peer retries later,
            // on the new IKE SA.
            Answer::Error(notify_type::TEMPORARY_FAILURE, Vec::new(), None)
        } else if is_ike && !self.ike_rekey_allowed(spi) {
            // Old IKE SAs the peer never deleted (crate::limits).
            Answer::Error(
                notify_type::TEMPORARY_FAILURE,
                Vec::new(),
                Some(FailureReason::IkeSaLimit),
            )
        } else if is_ike {
            self.answer_ike_rekey(spi, &p)
        } else {
            let rekeyed = match rekey_notify {
                None => Ok(None),
                Some(n) => self.find_rekeyed_child(spi, n.protocol_id, n.spi_u32()),
            };
            match rekeyed {
                Err(notify) => Answer::Error(notify, Vec::new(), None),
                // A further CHILD_SA over the bound (a rekey replaces one
                // and passes): RFC 7296 §3.10.1.
                Ok(None) if !self.child_sa_allowed(spi) => Answer::Error(
                    notify_type::NO_ADDITIONAL_SAS,
                    Vec::new(),
                    Some(FailureReason::ChildSaLimit),
                ),
                Ok(rekeyed) => match self.answer_new_child(spi, &p) {
                    Ok((answer, g_ir)) => Answer::Child {
                        answer,
                        g_ir,
                        rekeyed,
                    },
                    Err((notify, data, reason)) => Answer::Error(notify, data, reason),
                },
            }
        };
        self.answer_create(now, spi, message_id, answer, ni, Some(nr));
    }

    /// The CHILD_SA a REKEY_SA notification names (by the peer's inbound
    /// SPI, our outbound one), as our inbound SPI; or the notification to
    /// refuse with.
    fn find_rekeyed_child(
        &self,
        spi: u64,
        proto: u8,
        their: Option<u32>,
    ) -> Result<Option<u32>, u16> {
        let sa = self.sas.get(&spi).ok_or(notify_type::CHILD_SA_NOT_FOUND)?;
        let their = their.ok_or(notify_type::CHILD_SA_NOT_FOUND)?;
        let child = sa
            .children
            .iter()
            .find(|c| c.protocol_id == proto && c.outbound_spi == their)
            .ok_or(notify_type::CHILD_SA_NOT_FOUND)?;
        match self
            .rekey
            .children
            .get(&child.inbound_spi)
            .map(|t| t.renewal)
        {
            // Already replaced or being deleted (§2.25.1).
            Some(Renewal::Replaced | Renewal::Deleting) => Err(notify_type::TEMPORARY_FAILURE),
            _ => Ok(Some(child.inbound_spi)),
        }
    }

    /// The responder's decision on the CHILD_SA part of a request.
    #[allow(clippy::type_complexity)]
    fn answer_new_child(
        &mut self,
        spi: u64,
        p: &Received<'_>,
    ) -> Result<(ChildAnswer, Option<Zeroizing<Vec<u8>>>), (u16, Vec<u8>, Option<FailureReason>)>
    {
        let esn = self.config.esn;
        let refuse = |n: u16, r: FailureReason| (n, Vec::new(), Some(r));
        let sa = self.sas.get(&spi).ok_or(refuse(
            notify_type::NO_PROPOSAL_CHOSEN,
            FailureReason::Crypto,
        ))?;
        let ike_ke = sa.keys.as_ref().map(|k| k.transforms.ke).ok_or(refuse(
            notify_type::NO_PROPOSAL_CHOSEN,
            FailureReason::Crypto,
        ))?;
        let (Some(sa_payload), Some(tsi), Some(tsr)) = (p.sa, p.tsi, p.tsr) else {
            return Err(refuse(
                notify_type::INVALID_SYNTAX,
                FailureReason::Protocol("no SA, TSi or TSr"),
            ));
        };
        let (tsi, tsr) = (
            traffic_selector::from_wire(&tsi),
            traffic_selector::from_wire(&tsr),
        );
        let (Some(first_i), Some(first_r)) = (tsi.first(), tsr.first()) else {
            return Err(refuse(
                notify_type::TS_UNACCEPTABLE,
                FailureReason::TsUnacceptable,
            ));
        };
        let traffic = Traffic {
            local: *first_r,
            remote: *first_i,
        };
        let policy = self
            .policy
            .quick_mode(sa.local.ip(), sa.remote.ip(), &traffic)
            .ok_or(refuse(
                notify_type::TS_UNACCEPTABLE,
                FailureReason::NoPolicy,
            ))?;
        let (offer, groups) = child_offer(&policy, ike_ke);
        let kei = p.ke;
        let kei_group = kei.map(|k| k.dh_group);
        // First the proposals that fit the KEi sent (or need none), then,
        // to name the group we want in INVALID_KE_PAYLOAD, all of them.
        let fits = |pr: &Proposal<'_>| {
            let ke = groups_of(pr);
            ke.is_empty() || ke.contains(&0) || kei_group.is_some_and(|g| ke.contains(&g))
        };
        let select = |keep: &dyn Fn(&Proposal<'_>) -> bool| {
            let bytes = reencode(&sa_payload, true, keep)?;
            let stripped = SecurityAssociation::parse(&bytes).ok()?;
            select_child(&offer, esn, &stripped)
        };
        // The groups our policy allows with a protocol.
        let ours_for = |protocol: ChildProtocol| -> Vec<Option<KeId>> {
            offer
                .iter()
                .zip(&groups)
                .filter(|(o, _)| o.protocol == protocol)
                .map(|(_, g)| *g)
                .collect()
        };
        let fitting = select(&fits).and_then(|choice| {
            let theirs: Vec<u16> = proposal_groups(&sa_payload, choice.proposal_num);
            let ours = ours_for(choice.protocol);
            let pfs = kei_group
                .filter(|g| theirs.contains(g))
                .and_then(|g| KeId::try_from(g).ok());
            match pfs {
                Some(g) if ours.contains(&Some(g)) || ours.contains(&None) => {
                    Some((choice, Some(g)))
                }
                _ if ours.contains(&None) && (theirs.is_empty() || theirs.contains(&0)) => {
                    Some((choice, None))
                }
                _ => None,
            }
        });
        let Some((choice, group)) = fitting else {
            // A group of ours that some proposal of the peer's lists.
            let theirs: Vec<u16> = sa_payload
                .proposals()
                .flat_map(|pr| groups_of(&pr))
                .collect();
            let want = groups
                .iter()
                .flatten()
                .find(|g| theirs.contains(&u16::from(**g)))
                .filter(|_| kei_group.is_some());
            return Err(match want {
                Some(g) => (
                    notify_type::INVALID_KE_PAYLOAD,
                    u16::from(*g).to_be_bytes().to_vec(),
                    None,
                ),
                None => refuse(
                    notify_type::NO_PROPOSAL_CHOSEN,
                    FailureReason::NoProposalChosen,
                ),
            });
        };
        let transport_asked = p.has_notify(notify_type::USE_TRANSPORT_MODE);
        if policy.is_transport() && !transport_asked {
            return Err(refuse(
                notify_type::NO_PROPOSAL_CHOSEN,
                FailureReason::ModeMismatch,
            ));
        }
        let narrowed_i = narrow(&tsi, &policy.remote_selectors);
        let narrowed_r = narrow(&tsr, &policy.local_selectors);
        if narrowed_i.is_empty() || narrowed_r.is_empty() {
            return Err(refuse(
                notify_type::TS_UNACCEPTABLE,
                FailureReason::TsUnacceptable,
            ));
        }
        let (ke, g_ir) = match (group, kei) {
            (Some(g), Some(k)) => {
                let ke = Ke::generate(g)
                    .map_err(|_| refuse(notify_type::NO_PROPOSAL_CHOSEN, FailureReason::Crypto))?;
                let shared = ke.shared_secret(k.data).map_err(|_| {
                    refuse(
                        notify_type::INVALID_SYNTAX,
                        FailureReason::Protocol("invalid key exchange value"),
                    )
                })?;
                (Some(ke), Some(Zeroizing::new(shared.as_ref().to_vec())))
            }
            _ => (None, None),
        };
        let inbound_spi = self
            .new_child_spi()
            .map_err(|_| refuse(notify_type::NO_PROPOSAL_CHOSEN, FailureReason::Crypto))?;
        Ok((
            ChildAnswer {
                choice,
                inbound_spi,
                transport: policy.is_transport(),
                tsi: narrowed_i,
                tsr: narrowed_r,
                ke,
            },
            g_ir,
        ))
    }

    /// The responder's decision on an IKE SA rekey.
    fn answer_ike_rekey(&mut self, spi: u64, p: &Received<'_>) -> Answer {
        let error = |n: u16, r: FailureReason| Answer::Error(n, Vec::new(), Some(r));
        // Our own CHILD_SA exchange in flight: the IKE SA is not rekeyed
        // under it (§2.25.2); an IKE SA rekey of ours is a collision.
        if self
            .rekey
            .ours
            .get(&spi)
            .is_some_and(|r| r.kind != CreateKind::RekeyIke)
        {
            return Answer::Error(notify_type::TEMPORARY_FAILURE, Vec::new(), None);
        }
        let Some(sa) = self.sas.get(&spi) else {
            return Answer::Error(notify_type::TEMPORARY_FAILURE, Vec::new(), None);
        };
        let (Some(sa_payload), Some(kei)) = (p.sa, p.ke) else {
            return error(
                notify_type::INVALID_SYNTAX,
                FailureReason::Protocol("IKE SA rekey without SA or KE"),
            );
        };
        let ours = IkeTransforms::offer(&sa.policy.main_mode.ike_proposals);
        let chosen = reencode(&sa_payload, false, &|_| true).and_then(|bytes| {
            let stripped = SecurityAssociation::parse(&bytes).ok()?;
            select_ike(&ours, &stripped)
        });
        let Some((num, chosen)) = chosen else {
            return error(
                notify_type::NO_PROPOSAL_CHOSEN,
                FailureReason::NoProposalChosen,
            );
        };
        let spi_i = sa_payload
            .proposals()
            .find(|pr| pr.proposal_num == num)
            .and_then(|pr| pr.spi_u64())
            .filter(|&s| s != 0);
        let Some(spi_i) = spi_i else {
            return error(
                notify_type::INVALID_SYNTAX,
                FailureReason::Protocol("IKE SA rekey without a new SPI"),
            );
        };
        if kei.dh_group != u16::from(chosen.ke) {
            let group = u16::from(chosen.ke).to_be_bytes().to_vec();
            return Answer::Error(notify_type::INVALID_KE_PAYLOAD, group, None);
        }
        let Ok(ke) = Ke::generate(chosen.ke) else {
            return error(notify_type::NO_PROPOSAL_CHOSEN, FailureReason::Crypto);
        };
        let Ok(shared) = ke.shared_secret(kei.data) else {
            return error(
                notify_type::INVALID_SYNTAX,
                FailureReason::Protocol("invalid key exchange value"),
            );
        };
        Answer::Ike {
            num,
            chosen,
            spi_i,
            ke,
            g_ir: Zeroizing::new(shared.as_ref().to_vec()),
        }
    }

    /// Sends the response and applies it: installs the CHILD_SA or creates
    /// the new IKE SA, and records a collision with our own rekey.
    fn answer_create(
        &mut self,
        now: Instant,
        spi: u64,
        message_id: u32,
        answer: Answer,
        ni: Vec<u8>,
        nr: Option<Vec<u8>>,
    ) {
        let nr = nr.unwrap_or_default();
        // An IKE SA rekey needs our new SPI and keys before the response.
        let mut new_ike: Option<(u64, Keys)> = None;
        if let Answer::Ike {
            chosen,
            spi_i,
            g_ir,
            ..
        } = &answer
        {
            let Ok(spi_r) = self.new_ike_spi() else {
                return;
            };
            let Some(old) = self.sas.get(&spi).and_then(|sa| sa.keys.as_ref()) else {
                return;
            };
            match rekeyed_keys(old, Role::Responder, *chosen, g_ir, &ni, &nr, *spi_i, spi_r) {
                Ok(k) => new_ike = Some((spi_r, k)),
                Err(_) => {
                    return self.answer_create(
                        now,
                        spi,
                        message_id,
                        Answer::Error(
                            notify_type::NO_PROPOSAL_CHOSEN,
                            Vec::new(),
                            Some(FailureReason::Crypto),
                        ),
                        ni,
                        Some(nr),
                    );
                }
            }
        }
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let h = sa.header(exchange_type::CREATE_CHILD_SA, message_id, true);
        let Some(keys) = sa.keys.as_mut() else { return };
        let new_spi_r = new_ike.as_ref().map(|(s, _)| *s).unwrap_or_default();
        let built = encrypted(&h, &mut keys.outbound, |b| match &answer {
            Answer::Error(n, data, _) => b.push(payload_type::N, false, &Notify::new(*n, data)),
            Answer::Child { answer: a, .. } => {
                if a.transport {
                    b.push(
                        payload_type::N,
                        false,
                        &Notify::new(notify_type::USE_TRANSPORT_MODE, &[]),
                    )?;
                }
                let mut prop = OwnedProposal::child_choice(&a.choice, a.inbound_spi);
                if let Some(ke) = &a.ke {
                    prop.transforms.push(ke_spec(ke.id()));
                }
                push_sa(b, &[prop])?;
                b.push(payload_type::NONCE, false, &Nonce { data: &nr })?;
                if let Some(ke) = &a.ke {
                    b.push(
                        payload_type::KE,
                        false,
                        &KeyExchange {
                            dh_group: ke.id().into(),
                            data: ke.public_value(),
                        },
                    )?;
                }
                push_ts(b, payload_type::TSI, &a.tsi)?;
                push_ts(b, payload_type::TSR, &a.tsr)
            }
            Answer::Ike {
                num, chosen, ke, ..
            } => {
                let mut prop = OwnedProposal::ike(*num, chosen);
                prop.spi = new_spi_r.to_be_bytes().to_vec();
                push_sa(b, &[prop])?;
                b.push(payload_type::NONCE, false, &Nonce { data: &nr })?;
                b.push(
                    payload_type::KE,
                    false,
                    &KeyExchange {
                        dh_group: ke.id().into(),
                        data: ke.public_value(),
                    },
                )
            }
        });
        let Ok(response) = built else {
            if let Answer::Child { answer: a, .. } = &answer {
                self.child_spis.remove(&a.inbound_spi);
            }
            return self.fail(
                spi,
                Stage::CreateChildSa,
                FailurePoint::Local,
                FailureReason::Crypto,
            );
        };
        sa.last_response = Some((message_id, response.clone()));
        sa.peer_next_id = message_id.wrapping_add(1);
        let (local, remote) = (sa.local, sa.remote);
        self.send(local, remote, response);
        match answer {
            Answer::Error(_, _, reason) => {
                if let Some(reason) = reason {
                    self.child_failure(spi, FailurePoint::Local, reason);
                }
            }
            Answer::Child {
                answer: a,
                g_ir,
                rekeyed,
            } => {
                let Some(sa) = self.sas.get(&spi) else { return };
                let Some(keys) = sa.keys.as_ref() else { return };
                let keymat = child_keymat(
                    keys,
                    &a.choice.protocol,
                    g_ir.as_ref().map(|g| g.as_slice()),
                    &ni,
                    &nr,
                    false,
                );
                let Some(keymat) = keymat else {
                    self.child_spis.remove(&a.inbound_spi);
                    return self.child_failure(spi, FailurePoint::Local, FailureReason::Crypto);
                };
                self.install_created(
                    now,
                    spi,
                    &a.choice,
                    a.inbound_spi,
                    a.transport,
                    (a.tsr, a.tsi),
                    keymat,
                );
                if let Some(old) = rekeyed {
                    self.peer_rekeyed_child(spi, old, a.inbound_spi, ni, nr);
                }
                self.quick_mode_limit_as_responder(now, spi);
            }
            Answer::Ike { .. } => {
                let Some((spi_r, keys)) = new_ike else { return };
                let Answer::Ike { spi_i, .. } = answer else {
                    return;
                };
                self.create_rekeyed_ike_sa(now, spi, Role::Responder, spi_i, spi_r, keys, &ni, &nr);
                let collision = self
                    .rekey
                    .ours
                    .get_mut(&spi)
                    .filter(|r| r.kind == CreateKind::RekeyIke);
                match collision {
                    Some(r) => {
                        r.collision = Some(Collision {
                            peer_ni: ni,
                            our_nr: nr,
                            created: Created::Ike(spi_r),
                        });
                    }
                    None => self.move_children_and_queue(now, spi, spi_r),
                }
            }
        }
    }

    /// The peer rekeyed our CHILD_SA `old` into `new`: a collision if our
    /// own rekey of it is in flight, else `old` waits for the peer's Delete.
    fn peer_rekeyed_child(&mut self, spi: u64, old: u32, new: u32, ni: Vec<u8>, nr: Vec<u8>) {
        if self.rekey.child_rekey_in_flight(spi, old) {
            if let Some(r) = self.rekey.ours.get_mut(&spi) {
                r.collision = Some(Collision {
                    peer_ni: ni,
                    our_nr: nr,
                    created: Created::Child(new),
                });
            }
            return;
        }
        if let Some(t) = self.rekey.children.get_mut(&old) {
            t.renewal = Renewal::Replaced;
        }
        self.events.push_back(Event::ChildSaRekeyed(ChildSaRekeyed {
            ike_sa: IkeSaId(spi),
            old_inbound_spi: old,
            new_inbound_spi: new,
        }));
    }

    /// Records a CHILD_SA made by CREATE_CHILD_SA and hands it to the data
    /// plane. `selectors` are (ours, the peer's).
    #[allow(clippy::too_many_arguments)]
    fn install_created(
        &mut self,
        now: Instant,
        spi: u64,
        choice: &ChildChoice,
        inbound_spi: u32,
        transport: bool,
        selectors: (Vec<TrafficSelector>, Vec<TrafficSelector>),
        keymat: (DirectionKeymat, DirectionKeymat),
    ) {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let record = ChildRecord {
            protocol_id: match choice.protocol {
                ChildProtocol::Esp(_) => protocol_id::ESP,
                ChildProtocol::Ah(_) => protocol_id::AH,
            },
            inbound_spi,
            outbound_spi: choice.peer_spi,
        };
        sa.children.push(record);
        let (inbound_keys, outbound_keys) = keymat;
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
            local_selectors: selectors.0,
            remote_selectors: selectors.1,
            peer_id: sa
                .peer_id
                .clone()
                .unwrap_or_else(|| Identity::from_ip(sa.remote.ip())),
            inbound_keys,
            outbound_keys,
        };
        self.track_child(now, &child, spi);
        self.note_child_negotiated(spi);
        self.events
            .push_back(Event::ChildSaInstalled(Box::new(child)));
    }

    /// The new IKE SA of a rekey, established at once with the old one's
    /// addresses, policy and authenticated identities (§2.18); its message
    /// IDs start from 0.
    #[allow(clippy::too_many_arguments)]
    fn create_rekeyed_ike_sa(
        &mut self,
        now: Instant,
        old_spi: u64,
        role: Role,
        spi_i: u64,
        spi_r: u64,
        keys: Keys,
        ni: &[u8],
        nr: &[u8],
    ) {
        let Some(old) = self.sas.get(&old_spi) else {
            return;
        };
        let ours = match role {
            Role::Initiator => spi_i,
            Role::Responder => spi_r,
        };
        let sa = IkeSa {
            id: IkeSaId(ours),
            role,
            spi_i,
            spi_r,
            local: old.local,
            remote: old.remote,
            state: State::Established,
            created: now,
            policy: old.policy.clone(),
            local_id: old.local_id.clone(),
            peer_id: old.peer_id.clone(),
            offer: Vec::new(),
            ke: None,
            ke_retried: false,
            ni: ni.to_vec(),
            nr: nr.to_vec(),
            init_request: Vec::new(),
            init_response: Vec::new(),
            keys: Some(keys),
            nat: old.nat,
            next_message_id: 0,
            peer_next_id: 0,
            outstanding: None,
            queued: Default::default(),
            last_response: None,
            pending_child: None,
            children: Vec::new(),
        };
        self.sas.insert(ours, sa);
        self.track_ike(now, ours);
    }

    /// The IKE SA rekey stands: CHILD_SAs and our queued requests move from
    /// `old` to `new`.
    fn move_children_and_queue(&mut self, now: Instant, old: u64, new: u64) {
        self.move_children(old, new);
        let queued: Vec<CreateKind> = self
            .rekey
            .queue
            .remove(&old)
            .unwrap_or_default()
            .into_iter()
            .filter(|k| *k != CreateKind::RekeyIke)
            .collect();
        for kind in queued {
            self.queue_create(now, new, kind);
        }
    }

    /// Initiator: the response to our CREATE_CHILD_SA request.
    pub(crate) fn handle_create_child_sa_response(
        &mut self,
        now: Instant,
        spi: u64,
        path: Path,
        bytes: &[u8],
    ) {
        let esn = self.config.esn;
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
        let Some(mut req) = self.rekey.ours.remove(&spi) else {
            return self.request_done(now, spi);
        };
        let Ok(p) = Received::gather(first, plain.get(range).unwrap_or_default(), plain.len())
        else {
            return self.create_failed(
                now,
                spi,
                req,
                FailurePoint::Local,
                FailureReason::Protocol("malformed CREATE_CHILD_SA response"),
            );
        };
        if let Some(err) = p.error() {
            let offered = |g: u16| {
                req.ike_offer.iter().any(|t| u16::from(t.ke) == g)
                    || req
                        .child_groups
                        .iter()
                        .flatten()
                        .any(|k| u16::from(*k) == g)
            };
            if let Some(group) = err.invalid_ke_group()
                && !req.ke_retried
                && offered(group)
                && let Ok(g) = KeId::try_from(group)
                && let Ok(ke) = Ke::generate(g)
            {
                req.ke = Some(ke);
                req.ke_retried = true;
                if req.kind == CreateKind::RekeyIke {
                    // The chosen group's proposal first.
                    req.ike_offer.sort_by_key(|t| t.ke != g);
                }
                self.rekey.ours.insert(spi, req);
                return self.send_our_request(now, spi);
            }
            let reason = match err.notify_type {
                notify_type::TEMPORARY_FAILURE | notify_type::CHILD_SA_NOT_FOUND => None,
                notify_type::NO_PROPOSAL_CHOSEN => Some(FailureReason::NoProposalChosen),
                notify_type::TS_UNACCEPTABLE => Some(FailureReason::TsUnacceptable),
                notify_type::NO_ADDITIONAL_SAS => Some(FailureReason::NoAdditionalSas),
                t => Some(FailureReason::PeerError(t)),
            };
            return self.create_refused(now, spi, req, reason);
        }
        let Some(nr) = p.nonce.map(<[u8]>::to_vec) else {
            return self.create_failed(
                now,
                spi,
                req,
                FailurePoint::Local,
                FailureReason::Protocol("CREATE_CHILD_SA response without a nonce"),
            );
        };
        let Some(sa_payload) = p.sa else {
            return self.create_failed(
                now,
                spi,
                req,
                FailurePoint::Local,
                FailureReason::Protocol("CREATE_CHILD_SA response without SA"),
            );
        };
        if req.kind == CreateKind::RekeyIke {
            return self.ike_rekeyed(now, spi, req, &p, sa_payload, nr);
        }
        // A CHILD_SA.
        let checked = (|| {
            let stripped = reencode(&sa_payload, true, &|_| true)?;
            let stripped = SecurityAssociation::parse(&stripped).ok()?;
            let choice = check_child_response(&req.child_offer, esn, &stripped)?;
            let offered_group = *req
                .child_groups
                .get(usize::from(choice.proposal_num).checked_sub(1)?)?;
            let answered: Vec<u16> = proposal_groups(&sa_payload, choice.proposal_num);
            let g_ir = match (&req.ke, offered_group, p.ke) {
                (Some(ke), Some(g), Some(ker))
                    if ke.id() == g
                        && answered == [u16::from(g)]
                        && ker.dh_group == u16::from(g) =>
                {
                    Some(Zeroizing::new(
                        ke.shared_secret(ker.data).ok()?.as_ref().to_vec(),
                    ))
                }
                (_, None, None) if answered.is_empty() => None,
                _ => return None,
            };
            Some((choice, g_ir))
        })();
        let Some((choice, g_ir)) = checked else {
            return self.create_failed(
                now,
                spi,
                req,
                FailurePoint::Local,
                FailureReason::Protocol("responder chose a CHILD_SA proposal or group not offered"),
            );
        };
        let transport = p.has_notify(notify_type::USE_TRANSPORT_MODE);
        let (tsi, tsr) = match (p.tsi, p.tsr) {
            (Some(i), Some(r)) => (
                traffic_selector::from_wire(&i),
                traffic_selector::from_wire(&r),
            ),
            _ => {
                return self.create_failed(
                    now,
                    spi,
                    req,
                    FailurePoint::Local,
                    FailureReason::Protocol("CREATE_CHILD_SA response without TSi or TSr"),
                );
            }
        };
        if !all_within(&tsi, &req.tsi) || !all_within(&tsr, &req.tsr) {
            return self.create_failed(
                now,
                spi,
                req,
                FailurePoint::Local,
                FailureReason::TsUnacceptable,
            );
        }
        let wanted_transport = req.child_policy.as_ref().is_some_and(|p| p.is_transport());
        if transport != wanted_transport {
            return self.create_failed(
                now,
                spi,
                req,
                FailurePoint::Local,
                FailureReason::ModeMismatch,
            );
        }
        let Some(sa) = self.sas.get(&spi) else { return };
        let Some(keys) = sa.keys.as_ref() else { return };
        let Some(keymat) = child_keymat(
            keys,
            &choice.protocol,
            g_ir.as_ref().map(|g| g.as_slice()),
            &req.ni,
            &nr,
            true,
        ) else {
            return self.create_failed(now, spi, req, FailurePoint::Local, FailureReason::Crypto);
        };
        let new = req.child_spi;
        self.install_created(now, spi, &choice, new, transport, (tsi, tsr), keymat);
        self.request_done(now, spi);
        let CreateKind::RekeyChild(old) = req.kind else {
            return;
        };
        let survivor = match &req.collision {
            Some(c) if lost(&req.ni, &nr, c) => {
                // Ours is redundant: delete it; the peer deletes the old.
                if let Some(t) = self.rekey.children.get_mut(&new) {
                    t.renewal = Renewal::Deleting;
                }
                if let Some(t) = self.rekey.children.get_mut(&old) {
                    t.renewal = Renewal::Replaced;
                }
                self.request(now, spi, Purpose::DeleteChildSa(new));
                match c.created {
                    Created::Child(theirs) => theirs,
                    Created::Ike(_) => new,
                }
            }
            other => {
                if let Some(c) = other {
                    self.rekey.redundant(now, c.created);
                }
                if let Some(t) = self.rekey.children.get_mut(&old) {
                    t.renewal = Renewal::Deleting;
                }
                self.request(now, spi, Purpose::DeleteChildSa(old));
                new
            }
        };
        self.events.push_back(Event::ChildSaRekeyed(ChildSaRekeyed {
            ike_sa: IkeSaId(spi),
            old_inbound_spi: old,
            new_inbound_spi: survivor,
        }));
    }

    /// Initiator: the successful response to our IKE SA rekey.
    fn ike_rekeyed(
        &mut self,
        now: Instant,
        spi: u64,
        req: OurRequest,
        p: &Received<'_>,
        sa_payload: SecurityAssociation<'_>,
        nr: Vec<u8>,
    ) {
        let chosen = check_ike_response(&req.ike_offer, &sa_payload);
        let spi_r = sa_payload
            .proposals()
            .next()
            .and_then(|pr| pr.spi_u64())
            .filter(|&s| s != 0);
        let (Some(chosen), Some(spi_r), Some(ker), Some(ke)) =
            (chosen, spi_r, p.ke, req.ke.as_ref())
        else {
            return self.create_failed(
                now,
                spi,
                req,
                FailurePoint::Local,
                FailureReason::Protocol("IKE SA rekey response without a valid SA or KE"),
            );
        };
        if ke.id() != chosen.ke || ker.dh_group != u16::from(chosen.ke) {
            return self.create_failed(
                now,
                spi,
                req,
                FailurePoint::Local,
                FailureReason::Protocol("KE group differs from the chosen one"),
            );
        }
        let Ok(g_ir) = ke.shared_secret(ker.data) else {
            return self.create_failed(
                now,
                spi,
                req,
                FailurePoint::Local,
                FailureReason::Protocol("invalid key exchange value"),
            );
        };
        let Some(old_keys) = self.sas.get(&spi).and_then(|sa| sa.keys.as_ref()) else {
            return;
        };
        let spi_i = req.ike_spi;
        let Ok(keys) = rekeyed_keys(
            old_keys,
            Role::Initiator,
            chosen,
            g_ir.as_ref(),
            &req.ni,
            &nr,
            spi_i,
            spi_r,
        ) else {
            return self.create_failed(now, spi, req, FailurePoint::Local, FailureReason::Crypto);
        };
        self.create_rekeyed_ike_sa(now, spi, Role::Initiator, spi_i, spi_r, keys, &req.ni, &nr);
        self.request_done(now, spi);
        match &req.collision {
            Some(c) if lost(&req.ni, &nr, c) => {
                // Ours is redundant: the CHILD_SAs go to the peer's new IKE
                // SA, ours is deleted, the peer deletes the old one.
                let theirs = match c.created {
                    Created::Ike(theirs) => theirs,
                    Created::Child(_) => spi_i,
                };
                self.move_children_and_queue(now, spi, theirs);
                if let Some(t) = self.rekey.ike.get_mut(&spi_i) {
                    t.renewal = Renewal::Deleting;
                }
                self.request(now, spi_i, Purpose::DeleteIkeSa);
            }
            other => {
                if let Some(c) = other {
                    self.rekey.redundant(now, c.created);
                }
                self.move_children_and_queue(now, spi, spi_i);
                if let Some(t) = self.rekey.ike.get_mut(&spi) {
                    t.renewal = Renewal::Deleting;
                }
                self.request(now, spi, Purpose::DeleteIkeSa);
            }
        }
    }

    /// The peer refused our request with an error notification. A
    /// collision we answered meanwhile leaves the peer's rekey standing.
    fn create_refused(
        &mut self,
        now: Instant,
        spi: u64,
        req: OurRequest,
        reason: Option<FailureReason>,
    ) {
        if req.child_spi != 0 {
            self.child_spis.remove(&req.child_spi);
        }
        match (&req.collision, req.kind) {
            (Some(c), CreateKind::RekeyChild(old)) => {
                // The peer's rekey stands (the old pair may be gone
                // already, deleted by the peer).
                if let Created::Child(theirs) = c.created {
                    if let Some(t) = self.rekey.children.get_mut(&old) {
                        t.renewal = Renewal::Replaced;
                    }
                    self.events.push_back(Event::ChildSaRekeyed(ChildSaRekeyed {
                        ike_sa: IkeSaId(spi),
                        old_inbound_spi: old,
                        new_inbound_spi: theirs,
                    }));
                }
            }
            (Some(c), CreateKind::RekeyIke) => {
                if let Created::Ike(theirs) = c.created {
                    self.move_children_and_queue(now, spi, theirs);
                }
            }
            _ => {
                self.retry_later(now, req.kind, spi);
                if let Some(reason) = reason {
                    self.child_failure(spi, FailurePoint::Peer, reason);
                }
            }
        }
        self.request_done(now, spi);
    }

    /// Our request's response was unusable: the exchange is over, the SAs
    /// stay as they were (the responder may have installed its half of a
    /// CHILD_SA, which its lifetime ends).
    fn create_failed(
        &mut self,
        now: Instant,
        spi: u64,
        req: OurRequest,
        point: FailurePoint,
        reason: FailureReason,
    ) {
        if req.child_spi != 0 {
            self.child_spis.remove(&req.child_spi);
        }
        self.retry_later(now, req.kind, spi);
        self.child_failure(spi, point, reason);
        self.request_done(now, spi);
    }
}
