//! Initiator: the response to our CREATE_CHILD_SA request (RFC 7296
//! §1.3). INVALID_KE_PAYLOAD is followed once; other errors end the
//! exchange, leaving the peer's rekey standing after a collision we
//! answered, else a rekey is retried later. A CHILD_SA is checked against
//! our offer, PFS group, selectors (§2.9) and mode, installed, and for a
//! rekey the old CHILD_SA, or after a collision the redundant one, is
//! deleted (§2.8.1). An IKE SA rekey's answer goes to `ike_sa_rekey.rs`.

use std::time::Instant;

use palisade_crypto::{KeId, KeyExchange as Ke};
use palisade_wire::ikev2::{IkeHeader, SecurityAssociation, notify_type};
use zeroize::Zeroizing;

use super::key_exchange::proposal_groups;
use super::{lost, reencode};
use crate::Endpoint;
use crate::endpoint::Path;
use crate::error::{FailurePoint, FailureReason};
use crate::event::{ChildSaRekeyed, Event, IkeSaId};
use crate::exchange::{answered, child_keymat};
use crate::message::Received;
use crate::proposal::check_child_response;
use crate::rekey::{CreateKind, Created, OurRequest, Renewal};
use crate::retransmit::Purpose;
use crate::traffic_selector;

impl Endpoint {
    /// Initiator: the response to our CREATE_CHILD_SA request.
    pub(crate) fn handle_create_child_sa_response(
        &mut self,
        now: Instant,
        spi: u64,
        path: Path,
        bytes: &[u8],
    ) {
        let esn = self.config.esn;
        let Ok(header) = IkeHeader::parse(bytes) else {
            return;
        };
        let Some(opened) = self.open_protected(spi, path, &header, bytes) else {
            return;
        };
        let Some(mut req) = self.rekey.ours.remove(&spi) else {
            return self.request_done(now, spi);
        };
        let Ok(p) = Received::gather(opened.first, opened.inner(), opened.plain.len()) else {
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
        let Some(sa) = self.sas.get(&spi) else { return };
        // Across a NAT in transport mode, the addresses we see (RFC 7296 §2.23.1).
        let got = answered(sa, transport, (tsi, tsr), (&req.tsi, &req.tsr));
        if !got.within_proposal {
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
        let selectors = (got.tsi, got.tsr);
        let original = got.nat_original;
        self.install_created(
            now, spi, &choice, new, transport, selectors, original, keymat, false,
        );
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
    pub(super) fn create_failed(
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
