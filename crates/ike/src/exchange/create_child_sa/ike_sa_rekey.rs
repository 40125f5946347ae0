//! IKE SA rekey (RFC 7296 §1.3.2, §2.18) in both roles: the responder's
//! decision on proposal and KE, the new keys (SKEYSEED from the old SK_d),
//! the new IKE SA with the old one's addresses, policy and identities, the
//! CHILD_SAs and queued requests moved to it; as initiator, the response
//! and the collision decided (§2.8.2).

use std::time::Instant;

use palisade_crypto::ikev2_kdf::rekey_skeyseed;
use palisade_crypto::{CryptoError, KeyExchange as Ke};
use palisade_wire::ikev2::{SecurityAssociation, notify_type};
use zeroize::Zeroizing;

use super::{Answer, lost, reencode};
use crate::Endpoint;
use crate::error::{FailurePoint, FailureReason, Role};
use crate::event::IkeSaId;
use crate::ike_sa::{IkeSa, Keys, State};
use crate::message::Received;
use crate::proposal::{IkeTransforms, check_ike_response, select_ike};
use crate::rekey::{CreateKind, Created, OurRequest, Renewal};
use crate::retransmit::Purpose;

/// The keys of a rekeyed IKE SA (RFC 7296 §2.18): SKEYSEED from the old
/// SK_d with the old PRF, the seven keys with the new PRF.
#[allow(clippy::too_many_arguments)]
pub(super) fn rekeyed_keys(
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
    Keys::from_skeyseed(role, transforms, seed.as_ref(), ni, nr, spi_i, spi_r)
}

impl Endpoint {
    /// The responder's decision on an IKE SA rekey.
    pub(super) fn answer_ike_rekey(&mut self, spi: u64, p: &Received<'_>) -> Answer {
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

    /// The new IKE SA of a rekey, established at once with the old one's
    /// addresses, policy and authenticated identities (§2.18); its message
    /// IDs start from 0.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn create_rekeyed_ike_sa(
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
            last_heard: now,
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
    pub(super) fn move_children_and_queue(&mut self, now: Instant, old: u64, new: u64) {
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

    /// Initiator: the successful response to our IKE SA rekey.
    pub(super) fn ike_rekeyed(
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
}
