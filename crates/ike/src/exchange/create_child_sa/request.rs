//! Initiator: our CREATE_CHILD_SA request (RFC 7296 §1.3.1-§1.3.3), taken
//! from the IKE SA's queue when its window opens, prepared (offer, KE,
//! traffic selectors, new SPI, nonce) and built, REKEY_SA included for a
//! CHILD_SA rekey; built again under a new message ID after
//! INVALID_KE_PAYLOAD.

use std::time::Instant;

use palisade_crypto::KeyExchange as Ke;
use palisade_filter::policy::TrafficSelector;
use palisade_wire::ikev2::{Nonce, Notify, exchange_type, notify_type, payload_type};

use super::key_exchange::{child_offer, ke_spec};
use crate::Endpoint;
use crate::error::{FailurePoint, FailureReason, Stage};
use crate::exchange::{push_ke, push_ts};
use crate::ike_sa::State;
use crate::limits::Gate;
use crate::message::encrypted;
use crate::policy::Traffic;
use crate::proposal::{IkeTransforms, OwnedProposal, push_sa};
use crate::rekey::{CreateKind, OurRequest, Renewal};
use crate::retransmit::Purpose;
use crate::traffic_selector::host;

impl Endpoint {
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
    pub(super) fn send_our_request(&mut self, now: Instant, spi: u64) {
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
                push_ke(b, ke)?;
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
}
