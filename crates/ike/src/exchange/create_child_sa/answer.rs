//! Responder: a CREATE_CHILD_SA request (RFC 7296 §1.3) dispatched to
//! the decision for its kind (a further CHILD_SA, a CHILD_SA rekey, an IKE
//! SA rekey), or refused while the IKE SA is being replaced (§2.25) or
//! over the bounds of `crate::limits`; then the response built, cached
//! for retransmission (§2.1) and applied, with a collision with our own
//! IKE SA rekey recorded (§2.8.2).

use std::time::Instant;

use palisade_wire::ikev2::{
    IkeHeader, Nonce, Notify, exchange_type, notify_type, payload_type, protocol_id,
};

use super::Answer;
use super::ike_sa_rekey::rekeyed_keys;
use super::key_exchange::ke_spec;
use crate::Endpoint;
use crate::endpoint::Path;
use crate::error::{FailurePoint, FailureReason, Role, Stage};
use crate::exchange::{child_keymat, push_ke, push_ts};
use crate::ike_sa::Keys;
use crate::message::{Received, encrypted};
use crate::proposal::{OwnedProposal, push_sa};
use crate::rekey::{Collision, CreateKind, Created};

impl Endpoint {
    /// Responder: a CREATE_CHILD_SA request.
    pub(crate) fn respond_create_child_sa(
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
        let message_id = header.message_id;
        // A request we cannot read is answered INVALID_SYNTAX (RFC 7296
        // §3.10.1), whatever is wrong with it.
        let invalid_syntax = |this: &mut Self, what| {
            let reason = Some(FailureReason::Protocol(what));
            let answer = Answer::Error(notify_type::INVALID_SYNTAX, Vec::new(), reason);
            this.answer_create(now, spi, message_id, answer, Vec::new(), None);
        };
        let p = match Received::gather(opened.first, opened.inner(), opened.plain.len()) {
            Ok(p) => p,
            Err(_) => return invalid_syntax(self, "malformed CREATE_CHILD_SA request"),
        };
        let Some(ni) = p.nonce.map(<[u8]>::to_vec) else {
            return invalid_syntax(self, "CREATE_CHILD_SA without a nonce");
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
                    push_ke(b, ke)?;
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
                push_ke(b, ke)
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
        let (local, remote) = sa.answered(message_id, &response);
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
                    a.nat_original,
                    keymat,
                    rekeyed.is_some(),
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
}
