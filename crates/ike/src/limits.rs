//! Bounds on the state a peer, or our own driver, can make an endpoint
//! keep (issue 4: "state per peer bounded"): established IKE SAs per peer
//! address, CHILD_SAs per IKE SA, requests queued per IKE SA, and the
//! main-mode policy's `quick_mode_limit` (CHILD_SA negotiations an IKE SA
//! carries before it is rekeyed, as WFP does).
//!
//! Half-open IKE SAs are bounded elsewhere ([`crate::cookie`]).
//!
//! What happens at each bound:
//!
//! - IKE SAs per peer address, as responder: a new IKE_SA_INIT request is
//!   dropped and counted ([`DropReason::IkeSaLimit`]); the peer's existing
//!   IKE SAs are not touched. See [`Endpoint::admit_ike_sa_per_peer`] for
//!   why a drop and not an error notification.
//!   IKE SAs replaced by a peer's rekey count too until the peer deletes
//!   them, against twice the bound: over it the peer's next IKE SA rekey
//!   is refused with TEMPORARY_FAILURE ([`FailureReason::IkeSaLimit`]).
//! - CHILD_SAs per IKE SA: as responder a further CHILD_SA is refused with
//!   NO_ADDITIONAL_SAS (RFC 7296 §3.10.1), the initiator reporting
//!   [`FailureReason::NoAdditionalSas`]; as initiator an acquire over the
//!   bound fails at once with [`FailureReason::ChildSaLimit`] and sends
//!   nothing. We do not open a second IKE SA to the same peer instead: the
//!   peer bounds those too, and its CHILD_SA bound is per IKE SA only
//!   because ours is. A CHILD_SA rekey replaces a pair and is never refused.
//! - Requests queued per IKE SA behind the outstanding one: one more is
//!   dropped with [`FailureReason::RequestQueueFull`] and counted
//!   ([`crate::Counters::requests_dropped`]); Deletes are always queued
//!   (once each), since they free state and the CHILD_SAs bound them.
//! - `quick_mode_limit`: before the IKE SA's next CHILD_SA negotiation
//!   (new or rekey) once it has carried that many, we rekey the IKE SA; the
//!   waiting request then runs on the new IKE SA, whose count starts at 0.
//!   As responder we rekey as soon as the peer's CREATE_CHILD_SA reaches
//!   the count.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::Endpoint;
use crate::error::{DropReason, FailurePoint, FailureReason, Stage};
use crate::ike_sa::State;
use crate::proposal::IkeTransforms;
use crate::rekey::{CreateKind, Renewal};
use crate::retransmit::Purpose;

/// Per-IKE SA counts the bounds need, by our SPI.
#[derive(Debug, Default)]
pub(crate) struct Limits {
    /// CHILD_SA negotiations (IKE_AUTH's, CREATE_CHILD_SA new or rekey)
    /// each IKE SA has carried, for `quick_mode_limit`.
    negotiations: HashMap<u64, u32>,
}

impl Limits {
    /// The IKE SA is gone.
    pub fn forget(&mut self, spi: u64) {
        self.negotiations.remove(&spi);
    }
}

/// What to do with a CREATE_CHILD_SA request of ours taken off the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Send it.
    Send,
    /// Refused by a bound (the failure is reported): next request.
    Refused,
    /// `quick_mode_limit` reached: an IKE SA rekey was put in front of it;
    /// take the queue's first request again.
    RekeyFirst,
    /// `quick_mode_limit` reached and the IKE SA was just rekeyed: the
    /// request waits, put back, to move to the new IKE SA.
    Wait,
}

impl Endpoint {
    /// The IKE SAs that count against a peer address's bound: established
    /// or half-open, not replaced by a rekey (old and new IKE SA of a
    /// rekey count once), in either role.
    pub(crate) fn ike_sas_of_peer(&self, peer: IpAddr) -> usize {
        self.sas
            .values()
            .filter(|sa| {
                sa.remote.ip() == peer
                    && matches!(sa.state, State::Established | State::InitAnswered)
                    && !self.rekey.superseded(sa.id.0)
            })
            .count()
    }

    /// Responder: whether a new IKE_SA_INIT request from `remote` may
    /// create an IKE SA under [`crate::EndpointConfig::max_ike_sas_per_peer`].
    ///
    /// Over the bound the request is dropped and counted, not answered.
    /// RFC 7296 has no error for this in IKE_SA_INIT: NO_ADDITIONAL_SAS
    /// (§3.10.1) is defined for CREATE_CHILD_SA responses only, and
    /// TEMPORARY_FAILURE (§2.25) for CREATE_CHILD_SA too; the unprotected
    /// IKE_SA_INIT errors of §2.21.1 (NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD,
    /// COOKIE) would tell a legitimate initiator something false, and
    /// NO_PROPOSAL_CHOSEN reads as a configuration error. Refusing later,
    /// in IKE_AUTH, would cost a key exchange per attempt and answer with
    /// AUTHENTICATION_FAILED, just as false. Dropping is what we do for the
    /// half-open bound as well: the initiator retransmits and gives up,
    /// and its existing IKE SAs, which can carry further CHILD_SAs, stay.
    /// Half-open IKE SAs count, so parallel handshakes cannot overshoot
    /// the bound between IKE_SA_INIT and IKE_AUTH.
    pub(crate) fn admit_ike_sa_per_peer(&mut self, remote: SocketAddr) -> bool {
        if self.ike_sas_of_peer(remote.ip()) >= self.config.max_ike_sas_per_peer {
            self.counters.count(DropReason::IkeSaLimit);
            return false;
        }
        true
    }

    /// Responder: whether the peer may rekey IKE SA `spi`. A rekeyed IKE
    /// SA waits for the peer's Delete; a peer that rekeys and never
    /// deletes would pile up old IKE SAs (with their keys) until their
    /// hard lifetime. So replaced ones count too, against twice the
    /// bound (each IKE SA may be mid-rekey). Over it the rekey is refused
    /// with TEMPORARY_FAILURE (RFC 7296 §2.25: retry later, here once the
    /// old IKE SAs are deleted); the IKE SA itself stays.
    pub(crate) fn ike_rekey_allowed(&self, spi: u64) -> bool {
        let Some(peer) = self.sas.get(&spi).map(|sa| sa.remote.ip()) else {
            return false;
        };
        let all = self
            .sas
            .values()
            .filter(|sa| sa.remote.ip() == peer && sa.state == State::Established)
            .count();
        all < self.config.max_ike_sas_per_peer.saturating_mul(2)
    }

    /// The CHILD_SAs of IKE SA `spi` that count against
    /// [`crate::EndpointConfig::max_child_sas_per_ike_sa`]: those not yet
    /// replaced by a rekey nor being deleted.
    pub(crate) fn live_children(&self, spi: u64) -> usize {
        let Some(sa) = self.sas.get(&spi) else {
            return 0;
        };
        sa.children
            .iter()
            .filter(|c| {
                self.rekey
                    .children
                    .get(&c.inbound_spi)
                    .is_none_or(|t| matches!(t.renewal, Renewal::Active | Renewal::Rekeying))
            })
            .count()
    }

    /// Whether IKE SA `spi` may take one more CHILD_SA (not a rekey).
    pub(crate) fn child_sa_allowed(&self, spi: u64) -> bool {
        self.live_children(spi) < self.config.max_child_sas_per_ike_sa
    }

    /// A CHILD_SA was negotiated on IKE SA `spi` (either role, new or
    /// rekey).
    pub(crate) fn note_child_negotiated(&mut self, spi: u64) {
        let n = self.limits.negotiations.entry(spi).or_default();
        *n = n.saturating_add(1);
    }

    /// The chosen main-mode proposal's `quick_mode_limit`, if not 0.
    fn quick_mode_limit(&self, spi: u64) -> Option<u32> {
        let sa = self.sas.get(&spi)?;
        let chosen = sa.keys.as_ref()?.transforms;
        sa.policy
            .main_mode
            .ike_proposals
            .iter()
            .find(|p| IkeTransforms::from_policy(p) == Some(chosen))
            .map(|p| p.quick_mode_limit)
            .filter(|&n| n != 0)
    }

    /// Responder: the peer's CREATE_CHILD_SA made a CHILD_SA on IKE SA
    /// `spi`. Once it has carried `quick_mode_limit` negotiations we rekey
    /// it at once, so that the peer's next request finds the new IKE SA. A
    /// request the peer sent before our rekey is still answered (a refusal
    /// would only make it retry): as responder the limit may be passed by
    /// one.
    pub(crate) fn quick_mode_limit_as_responder(&mut self, now: Instant, spi: u64) {
        let Some(limit) = self.quick_mode_limit(spi) else {
            return;
        };
        if self.limits.negotiations.get(&spi).copied().unwrap_or(0) >= limit {
            self.rekey_ike_sa(now, crate::event::IkeSaId(spi));
        }
    }

    /// The bounds on a CREATE_CHILD_SA request of ours, `kind`, just taken
    /// off IKE SA `spi`'s queue (its [`Purpose::CreateChildSa`] consumed).
    pub(crate) fn gate_create(&mut self, spi: u64, kind: CreateKind) -> Gate {
        if kind == CreateKind::RekeyIke {
            return Gate::Send;
        }
        if matches!(kind, CreateKind::NewChild(_)) && !self.child_sa_allowed(spi) {
            self.limit_failure(spi, Stage::CreateChildSa, FailureReason::ChildSaLimit);
            return Gate::Refused;
        }
        let Some(limit) = self.quick_mode_limit(spi) else {
            return Gate::Send;
        };
        let carried = self.limits.negotiations.get(&spi).copied().unwrap_or(0);
        if carried < limit {
            return Gate::Send;
        }
        let renewal = self.rekey.ike.get(&spi).map(|t| t.renewal);
        let queue = self.rekey.queue.entry(spi).or_default();
        match renewal {
            Some(Renewal::Active) => {
                if let Some(t) = self.rekey.ike.get_mut(&spi) {
                    t.renewal = Renewal::Rekeying;
                }
                queue.push_front(kind);
                queue.push_front(CreateKind::RekeyIke);
                // One queued purpose per queue entry: the rekey is new.
                if let Some(sa) = self.sas.get_mut(&spi) {
                    sa.queued.push_back(Purpose::CreateChildSa);
                }
                Gate::RekeyFirst
            }
            Some(Renewal::Rekeying) => {
                match queue.iter().position(|k| *k == CreateKind::RekeyIke) {
                    // A rekey queued behind us (a soft expiry): it goes first.
                    Some(at) => {
                        queue.remove(at);
                        queue.push_front(kind);
                        queue.push_front(CreateKind::RekeyIke);
                        Gate::RekeyFirst
                    }
                    // The rekey is done and the queue about to move to the
                    // new IKE SA: this IKE SA carries no more.
                    None => {
                        queue.push_front(kind);
                        if let Some(sa) = self.sas.get_mut(&spi) {
                            sa.queued.push_front(Purpose::CreateChildSa);
                        }
                        Gate::Wait
                    }
                }
            }
            // Replaced or deleted: the request is dropped as before.
            _ => Gate::Send,
        }
    }

    /// Whether a request of ours may wait behind IKE SA `spi`'s outstanding
    /// one under [`crate::EndpointConfig::max_queued_requests_per_ike_sa`].
    /// A CREATE_CHILD_SA request refused here is taken off the rekey queue
    /// too (a rekey is tried again later).
    pub(crate) fn admit_request(&mut self, now: Instant, spi: u64, purpose: Purpose) -> bool {
        let Some(sa) = self.sas.get(&spi) else {
            return true;
        };
        if sa.outstanding.is_none() {
            return true;
        }
        if sa.queued.len() < self.config.max_queued_requests_per_ike_sa {
            return true;
        }
        if matches!(purpose, Purpose::DeleteIkeSa | Purpose::DeleteChildSa(_)) {
            // Over the bound still once each: Deletes free state, and the
            // CHILD_SAs bound how many there can be.
            let already = sa.queued.contains(&purpose)
                || sa
                    .outstanding
                    .as_ref()
                    .is_some_and(|o| o.purpose == purpose);
            return !already;
        }
        self.counters.requests_dropped = self.counters.requests_dropped.saturating_add(1);
        let stage = match purpose {
            Purpose::CreateChildSa => {
                // `queue_create` pushed its kind just before.
                if let Some(kind) = self.rekey.queue.get_mut(&spi).and_then(|q| q.pop_back()) {
                    self.retry_later(now, kind, spi);
                }
                Stage::CreateChildSa
            }
            _ => Stage::Informational,
        };
        self.limit_failure(spi, stage, FailureReason::RequestQueueFull);
        false
    }

    /// A bound refused something on IKE SA `spi`, which stays up.
    fn limit_failure(&mut self, spi: u64, stage: Stage, reason: FailureReason) {
        self.report_failure(spi, stage, FailurePoint::Local, reason);
    }
}
