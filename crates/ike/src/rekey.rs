//! When SAs are renewed and what a CREATE_CHILD_SA exchange in flight is
//! for: lifetimes with soft expiry and jitter (RFC 7296 §2.8), the
//! requests queued per IKE SA, and the bookkeeping that resolves rekey
//! collisions (§2.8.1 for CHILD_SAs, §2.8.2 for the IKE SA).
//!
//! Lifetimes are local in IKEv2: each side rekeys at its own soft expiry.
//! The soft expiry is drawn a little earlier at random (up to a tenth of
//! the soft lifetime, from the endpoint's [`crate::Random`]) so that two
//! peers with the same policy rarely start the same rekey at once; when
//! they do, the collision rules pick one survivor.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use palisade_crypto::KeyExchange as Ke;
use palisade_filter::policy::TrafficSelector;

use crate::Endpoint;
use crate::event::{Event, IkeSaId};
use crate::ike_sa::State;
use crate::policy::{Acquire, ChildPolicy, Traffic};
use crate::proposal::{ChildOffer, IkeTransforms};
use crate::retransmit::Purpose;

/// How far a CHILD_SA has run through its lifetime, as the data plane
/// reports it (palisade-esp's per-packet soft expiry and its
/// `poll_lifetimes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expiry {
    /// The soft limit (bytes, packets or time) was reached: rekey.
    Soft,
    /// The hard limit was reached: the SA is unusable, delete it.
    Hard,
}

/// Retry of a rekey the peer refused for now (TEMPORARY_FAILURE, §2.25).
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// How long the winner of a rekey collision waits for the loser to delete
/// the redundant SA before deleting it itself: the loser may never have
/// seen its own exchange complete (its response lost, then the old IKE SA
/// deleted under it).
const REDUNDANT_GRACE: Duration = Duration::from_secs(10);

/// What one CREATE_CHILD_SA request of ours asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreateKind {
    /// A further CHILD_SA for this traffic (§1.3.1).
    NewChild(Traffic),
    /// Rekey of the CHILD_SA whose inbound SPI (ours) this is (§1.3.3).
    RekeyChild(u32),
    /// Rekey of the IKE SA itself (§1.3.2).
    RekeyIke,
}

/// Where a CHILD_SA or IKE SA stands with respect to renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Renewal {
    /// In use; rekeyed at its soft expiry.
    Active,
    /// A rekey of ours is queued or in flight.
    Rekeying,
    /// A successor exists; it waits for its Delete (ours or the peer's).
    Replaced,
    /// Its Delete was sent.
    Deleting,
}

impl Renewal {
    /// The lifetime events (RFC 7296 §2.8) still to come for an SA in this
    /// state with these expiries: the soft one only while it is active (one
    /// rekey), the hard one until its Delete is sent. The same rule for a
    /// CHILD_SA and an IKE SA.
    fn deadlines(self, soft_at: Option<Instant>, hard_at: Option<Instant>) -> [Option<Instant>; 2] {
        let soft = (self == Renewal::Active).then_some(soft_at).flatten();
        let hard = (self != Renewal::Deleting).then_some(hard_at).flatten();
        [soft, hard]
    }
}

/// A CHILD_SA as the rekey logic needs it, by our inbound SPI.
#[derive(Debug, Clone)]
pub(crate) struct ChildTrack {
    /// Our SPI of the IKE SA it currently belongs to.
    pub ike_spi: u64,
    pub local_selectors: Vec<TrafficSelector>,
    pub remote_selectors: Vec<TrafficSelector>,
    pub soft_at: Option<Instant>,
    pub hard_at: Option<Instant>,
    pub renewal: Renewal,
}

/// An IKE SA's lifetime and renewal, by our SPI.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IkeTrack {
    pub soft_at: Option<Instant>,
    pub hard_at: Option<Instant>,
    pub renewal: Renewal,
}

/// What the exchange of a rekey collision created on our side, as its
/// responder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Created {
    /// A CHILD_SA, by our inbound SPI.
    Child(u32),
    /// An IKE SA, by our SPI.
    Ike(u64),
}

/// The peer's rekey of the SA we are rekeying too, answered while ours was
/// in flight: its nonces decide which new SA survives.
#[derive(Debug, Clone)]
pub(crate) struct Collision {
    pub peer_ni: Vec<u8>,
    pub our_nr: Vec<u8>,
    pub created: Created,
}

/// Our CREATE_CHILD_SA request in flight on an IKE SA (window size 1).
pub(crate) struct OurRequest {
    pub kind: CreateKind,
    pub ni: Vec<u8>,
    /// PFS or the IKE SA rekey's key exchange.
    pub ke: Option<Ke>,
    /// INVALID_KE_PAYLOAD was followed once already.
    pub ke_retried: bool,
    /// The new inbound CHILD_SA SPI, or 0 for an IKE SA rekey.
    pub child_spi: u32,
    /// The new IKE SPI (SPIi of the new IKE SA) for an IKE SA rekey.
    pub ike_spi: u64,
    pub child_policy: Option<ChildPolicy>,
    pub child_offer: Vec<ChildOffer>,
    /// The key exchange each child offer asks for (PFS), by offer.
    pub child_groups: Vec<Option<palisade_crypto::KeId>>,
    pub ike_offer: Vec<IkeTransforms>,
    pub tsi: Vec<TrafficSelector>,
    pub tsr: Vec<TrafficSelector>,
    pub collision: Option<Collision>,
}

/// Rekey and lifetime state of all SAs of an endpoint.
#[derive(Default)]
pub(crate) struct Rekeys {
    pub children: HashMap<u32, ChildTrack>,
    pub ike: HashMap<u64, IkeTrack>,
    /// Requests waiting for an IKE SA's window, one per queued
    /// [`Purpose::CreateChildSa`], in the same order.
    pub queue: HashMap<u64, VecDeque<CreateKind>>,
    /// The request in flight per IKE SA.
    pub ours: HashMap<u64, OurRequest>,
    /// Deletes of CHILD_SAs that were under way on an IKE SA removed
    /// before they were answered, while the CHILD_SAs had moved on to its
    /// successor: sent again there, as (IKE SA, our inbound SPI).
    pub orphan_deletes: Vec<(u64, u32)>,
}

impl Rekeys {
    /// Whether a rekey of ours for this CHILD_SA is in flight (sent, not
    /// merely queued).
    pub fn child_rekey_in_flight(&self, ike_spi: u64, inbound: u32) -> bool {
        self.ours
            .get(&ike_spi)
            .is_some_and(|r| r.kind == CreateKind::RekeyChild(inbound))
    }

    /// Whether the IKE SA was replaced by a rekey (or is a collision's
    /// redundant one) and only waits to be deleted.
    pub fn superseded(&self, spi: u64) -> bool {
        self.ike
            .get(&spi)
            .is_some_and(|t| matches!(t.renewal, Renewal::Replaced | Renewal::Deleting))
    }

    /// The peer's SA of a collision we won: the peer should delete it; if
    /// it has not after [`REDUNDANT_GRACE`], we do.
    pub fn redundant(&mut self, now: Instant, created: Created) {
        let (soft_at, hard_at) = (None, Some(now + REDUNDANT_GRACE));
        match created {
            Created::Child(spi) => {
                if let Some(t) = self.children.get_mut(&spi) {
                    *t = ChildTrack {
                        soft_at,
                        hard_at,
                        renewal: Renewal::Replaced,
                        ..t.clone()
                    };
                }
            }
            Created::Ike(spi) => {
                self.ike.insert(
                    spi,
                    IkeTrack {
                        soft_at,
                        hard_at,
                        renewal: Renewal::Replaced,
                    },
                );
            }
        }
    }

    /// Whether the IKE SA may still carry new exchanges of ours.
    pub fn ike_active(&self, spi: u64) -> bool {
        self.ike
            .get(&spi)
            .is_none_or(|t| matches!(t.renewal, Renewal::Active | Renewal::Rekeying))
    }
}

/// `hard` less a tenth (at least one second), as `child_sa::lifetime` does
/// for CHILD_SAs.
fn soft_of(hard: Duration) -> Option<Duration> {
    let secs = hard.as_secs();
    secs.checked_sub((secs / 10).max(1))
        .filter(|&s| s > 0)
        .map(Duration::from_secs)
}

impl Endpoint {
    /// See [`Rekeys::superseded`].
    pub(crate) fn superseded(&self, spi: u64) -> bool {
        self.rekey.superseded(spi)
    }

    /// A random amount in `0..=max`; 0 if the generator fails (which only costs the
    /// jitter it is drawn for).
    fn random_up_to(&mut self, max: u64) -> u64 {
        let mut b = [0u8; 8];
        match self.random.fill(&mut b) {
            Ok(()) => u64::from_be_bytes(b) % max.saturating_add(1),
            Err(_) => 0,
        }
    }

    /// `soft` less a random jitter of up to a tenth of it.
    fn jittered(&mut self, soft: Duration) -> Duration {
        let max_ms = u64::try_from(soft.as_millis() / 10).unwrap_or(u64::MAX);
        soft.saturating_sub(Duration::from_millis(self.random_up_to(max_ms)))
    }

    /// Moves a CHILD_SA's soft byte and packet limits (where the data plane asks for a
    /// rekey) down by a random amount of up to a tenth of them. Both peers count the
    /// same packets against the same policy, so without it they reach the soft limit
    /// together and their rekeys collide (§2.8.1) every time.
    pub(crate) fn jitter_volume(&mut self, child: &mut crate::child_sa::ChildSa) {
        for soft in [
            &mut child.lifetime.soft.bytes,
            &mut child.lifetime.soft.packets,
        ] {
            if let Some(v) = soft.as_mut() {
                *v = (*v - self.random_up_to(*v / 10)).max(1);
            }
        }
    }

    /// Starts tracking a CHILD_SA installed now.
    pub(crate) fn track_child(
        &mut self,
        now: Instant,
        child: &crate::child_sa::ChildSa,
        ike_spi: u64,
    ) {
        let soft = child.lifetime.soft.time.map(|s| self.jittered(s));
        let track = ChildTrack {
            ike_spi,
            local_selectors: child.local_selectors.clone(),
            remote_selectors: child.remote_selectors.clone(),
            soft_at: soft.map(|s| now + s),
            hard_at: child.lifetime.hard.time.map(|h| now + h),
            renewal: Renewal::Active,
        };
        self.rekey.children.insert(child.inbound_spi, track);
    }

    /// Starts tracking an IKE SA established (or rekeyed) now: its hard
    /// lifetime is the chosen main-mode proposal's `max_lifetime_seconds`,
    /// its soft lifetime `soft_expiration_time` when set, else 90 %.
    pub(crate) fn track_ike(&mut self, now: Instant, spi: u64) {
        let Some(sa) = self.sas.get(&spi) else { return };
        let Some(keys) = sa.keys.as_ref() else { return };
        let chosen = keys.transforms;
        let main_mode = &sa.policy.main_mode;
        let hard = main_mode
            .ike_proposals
            .iter()
            .find(|p| IkeTransforms::from_policy(p) == Some(chosen))
            .map(|p| p.max_lifetime_seconds)
            .filter(|&s| s != 0)
            .map(|s| Duration::from_secs(u64::from(s)));
        let soft_setting = main_mode.soft_expiration_time;
        let soft = match hard {
            Some(h) if soft_setting != 0 && u64::from(soft_setting) < h.as_secs() => {
                Some(Duration::from_secs(u64::from(soft_setting)))
            }
            Some(h) => soft_of(h),
            None => None,
        };
        let soft = soft.map(|s| self.jittered(s));
        self.rekey.ike.insert(
            spi,
            IkeTrack {
                soft_at: soft.map(|s| now + s),
                hard_at: hard.map(|h| now + h),
                renewal: Renewal::Active,
            },
        );
    }

    /// Tracks the SAs that other exchanges (IKE_AUTH) reported in events
    /// during this call: they were created at `now`.
    pub(crate) fn track_installed(&mut self, now: Instant) {
        for (ike_spi, inbound) in std::mem::take(&mut self.rekey.orphan_deletes) {
            self.delete_child_sa(now, IkeSaId(ike_spi), inbound);
        }
        let mut new_children = Vec::new();
        let mut new_ike = Vec::new();
        for e in &self.events {
            match e {
                Event::ChildSaInstalled(c) if !self.rekey.children.contains_key(&c.inbound_spi) => {
                    new_children.push((**c).clone());
                }
                Event::IkeSaEstablished(i) if !self.rekey.ike.contains_key(&i.id.0) => {
                    new_ike.push(i.id.0);
                }
                _ => {}
            }
        }
        for spi in new_ike {
            self.track_ike(now, spi);
        }
        for c in new_children {
            if self.child_spis.contains(&c.inbound_spi) {
                self.track_child(now, &c, c.ike_sa.0);
            }
        }
    }

    /// Forgets the rekey state of an IKE SA being removed. A rekey
    /// collision we answered may have left the successor with no CHILD_SAs
    /// yet: they move to it rather than die with the old IKE SA.
    pub(crate) fn rekey_forget(&mut self, spi: u64) {
        self.rekey.ike.remove(&spi);
        self.rekey.queue.remove(&spi);
        if let Some(sa) = self.sas.get(&spi) {
            let pending = sa
                .outstanding
                .iter()
                .map(|o| o.purpose)
                .chain(sa.queued.iter().copied());
            for purpose in pending {
                let Purpose::DeleteChildSa(inbound) = purpose else {
                    continue;
                };
                let holder = self.sas.iter().find(|(other, s)| {
                    **other != spi && s.children.iter().any(|c| c.inbound_spi == inbound)
                });
                if let Some((&holder, _)) = holder {
                    self.rekey.orphan_deletes.push((holder, inbound));
                }
            }
        }
        let Some(ours) = self.rekey.ours.remove(&spi) else {
            return;
        };
        if let Some(Collision {
            created: Created::Ike(successor),
            ..
        }) = ours.collision
        {
            self.move_children(spi, successor);
        }
        if ours.child_spi != 0 {
            self.child_spis.remove(&ours.child_spi);
        }
    }

    /// Moves every CHILD_SA of IKE SA `from` to IKE SA `to` and tells the
    /// driver (RFC 7296 §2.18: CHILD_SAs survive an IKE SA rekey).
    pub(crate) fn move_children(&mut self, from: u64, to: u64) {
        if !self.sas.contains_key(&to) {
            return;
        }
        let moved = match self.sas.get_mut(&from) {
            Some(old) => std::mem::take(&mut old.children),
            None => return,
        };
        for c in &moved {
            if let Some(t) = self.rekey.children.get_mut(&c.inbound_spi) {
                t.ike_spi = to;
            }
        }
        if let Some(new) = self.sas.get_mut(&to) {
            new.children.extend(moved);
        }
        if let Some(t) = self.rekey.ike.get_mut(&from) {
            t.renewal = Renewal::Replaced;
        }
        self.events.push_back(Event::IkeSaRekeyed {
            old: IkeSaId(from),
            new: IkeSaId(to),
        });
    }

    /// Brings the CHILD_SA with our inbound SPI `inbound` back to IKE SA
    /// `spi` if an IKE SA rekey moved it to a successor while a Delete for
    /// it was under way on `spi`.
    pub(crate) fn reclaim_child(&mut self, spi: u64, inbound: u32) {
        let Some(sa) = self.sas.get(&spi) else { return };
        if sa.children.iter().any(|c| c.inbound_spi == inbound) {
            return;
        }
        let (local, remote) = (sa.local, sa.remote);
        self.reclaim(spi, local, remote, |c| c.inbound_spi == inbound);
    }

    /// The same for the CHILD_SAs a peer's Delete names (by the peer's
    /// inbound SPI, our outbound one).
    pub(crate) fn reclaim_children(
        &mut self,
        spi: u64,
        deletes: &[palisade_wire::ikev2::Delete<'_>],
    ) {
        let Some(sa) = self.sas.get(&spi) else { return };
        let (local, remote) = (sa.local, sa.remote);
        let missing: Vec<(u8, u32)> = deletes
            .iter()
            .flat_map(|d| d.spis_u32().map(move |s| (d.protocol_id, s)))
            .filter(|&(p, s)| {
                !sa.children
                    .iter()
                    .any(|c| c.protocol_id == p && c.outbound_spi == s)
            })
            .collect();
        for (p, s) in missing {
            self.reclaim(spi, local, remote, |c| {
                c.protocol_id == p && c.outbound_spi == s
            });
        }
    }

    fn reclaim(
        &mut self,
        spi: u64,
        local: std::net::SocketAddr,
        remote: std::net::SocketAddr,
        wanted: impl Fn(&crate::ike_sa::ChildRecord) -> bool,
    ) {
        let found = self.sas.iter_mut().find_map(|(&other, sa)| {
            if other == spi || sa.local != local || sa.remote != remote {
                return None;
            }
            let at = sa.children.iter().position(&wanted)?;
            Some(sa.children.remove(at))
        });
        let Some(c) = found else { return };
        if let Some(t) = self.rekey.children.get_mut(&c.inbound_spi) {
            t.ike_spi = spi;
        }
        if let Some(sa) = self.sas.get_mut(&spi) {
            sa.children.push(c);
        }
    }

    /// Queues a CREATE_CHILD_SA request on IKE SA `spi`.
    pub(crate) fn queue_create(&mut self, now: Instant, spi: u64, kind: CreateKind) {
        self.rekey.queue.entry(spi).or_default().push_back(kind);
        self.request(now, spi, Purpose::CreateChildSa);
    }

    /// The established IKE SA with this peer that may carry new exchanges.
    fn usable_ike_sa(&self, acquire: &Acquire) -> Option<u64> {
        self.sas
            .values()
            .filter(|sa| {
                sa.state == State::Established
                    && sa.local == acquire.local
                    && sa.remote == acquire.remote
                    && self.rekey.ike_active(sa.id.0)
            })
            .map(|sa| sa.id.0)
            .min()
    }

    /// An acquire for a peer we have an IKE SA with: a further CHILD_SA by
    /// CREATE_CHILD_SA (RFC 7296 §1.3.1), unless one for the same traffic
    /// is already on its way. False when there is no such IKE SA.
    pub(crate) fn acquire_child(&mut self, now: Instant, acquire: &Acquire) -> bool {
        let Some(spi) = self.usable_ike_sa(acquire) else {
            return false;
        };
        let traffic = acquire.traffic.unwrap_or(Traffic {
            local: crate::traffic_selector::host(acquire.local.ip()),
            remote: crate::traffic_selector::host(acquire.remote.ip()),
        });
        let kind = CreateKind::NewChild(traffic);
        let pending = self
            .rekey
            .queue
            .get(&spi)
            .is_some_and(|q| q.contains(&kind))
            || self.rekey.ours.get(&spi).is_some_and(|r| r.kind == kind);
        if !pending {
            self.queue_create(now, spi, kind);
        }
        true
    }

    /// The CHILD_SA pairs of an IKE SA as (our inbound SPI, our outbound
    /// SPI), sorted.
    pub fn child_sas(&self, ike_sa: IkeSaId) -> Vec<(u32, u32)> {
        let mut v: Vec<(u32, u32)> = self
            .sas
            .get(&ike_sa.0)
            .map(|sa| {
                sa.children
                    .iter()
                    .map(|c| (c.inbound_spi, c.outbound_spi))
                    .collect()
            })
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// Starts a rekey of a CHILD_SA pair named by our inbound SPI (the soft
    /// expiry's doing, or the driver's). False if there is no such
    /// CHILD_SA or it is already being rekeyed or replaced.
    pub fn rekey_child_sa(&mut self, now: Instant, ike_sa: IkeSaId, inbound_spi: u32) -> bool {
        let exists = self.sas.get(&ike_sa.0).is_some_and(|sa| {
            sa.state == State::Established
                && sa.children.iter().any(|c| c.inbound_spi == inbound_spi)
        });
        let active = self
            .rekey
            .children
            .get(&inbound_spi)
            .is_some_and(|t| t.renewal == Renewal::Active);
        if !exists || !active || !self.rekey.ike_active(ike_sa.0) {
            return false;
        }
        if let Some(t) = self.rekey.children.get_mut(&inbound_spi) {
            t.renewal = Renewal::Rekeying;
        }
        self.queue_create(now, ike_sa.0, CreateKind::RekeyChild(inbound_spi));
        true
    }

    /// Starts a rekey of an IKE SA. False if there is no such established
    /// IKE SA or it is already being rekeyed or replaced. Until the old IKE
    /// SA's Delete exchange is done, [`Endpoint::ike_sas`] lists both.
    pub fn rekey_ike_sa(&mut self, now: Instant, ike_sa: IkeSaId) -> bool {
        let exists = self
            .sas
            .get(&ike_sa.0)
            .is_some_and(|sa| sa.state == State::Established);
        let active = self
            .rekey
            .ike
            .get(&ike_sa.0)
            .is_none_or(|t| t.renewal == Renewal::Active);
        if !exists || !active {
            return false;
        }
        if let Some(t) = self.rekey.ike.get_mut(&ike_sa.0) {
            t.renewal = Renewal::Rekeying;
        }
        self.queue_create(now, ike_sa.0, CreateKind::RekeyIke);
        true
    }

    /// The data plane reports a CHILD_SA's byte or packet lifetime (either
    /// direction's SPI names the pair): a soft expiry starts a rekey, a
    /// hard expiry deletes the pair. False if the SPI is unknown.
    pub fn handle_child_sa_expiry(&mut self, now: Instant, spi: u32, expiry: Expiry) -> bool {
        let found = self.sas.values().find_map(|sa| {
            sa.children
                .iter()
                .find(|c| c.inbound_spi == spi || c.outbound_spi == spi)
                .map(|c| (sa.id, c.inbound_spi))
        });
        let Some((ike_sa, inbound)) = found else {
            return false;
        };
        match expiry {
            Expiry::Soft => {
                self.rekey_child_sa(now, ike_sa, inbound);
            }
            Expiry::Hard => self.expire_child(now, ike_sa.0, inbound),
        }
        self.track_installed(now);
        true
    }

    fn expire_child(&mut self, now: Instant, ike_spi: u64, inbound: u32) {
        let Some(t) = self.rekey.children.get_mut(&inbound) else {
            return;
        };
        if t.renewal == Renewal::Deleting {
            return;
        }
        t.renewal = Renewal::Deleting;
        self.delete_child_sa(now, IkeSaId(ike_spi), inbound);
    }

    /// Lifetime timers: soft expiries start rekeys, hard expiries delete.
    pub(crate) fn rekey_timeouts(&mut self, now: Instant) {
        self.track_installed(now);
        // CHILD_SAs deleted by other exchanges leave their tracks behind.
        let live = &self.child_spis;
        self.rekey.children.retain(|spi, _| live.contains(spi));
        let mut soft = Vec::new();
        let mut hard = Vec::new();
        for (&spi, t) in &self.rekey.children {
            if t.renewal != Renewal::Deleting && t.hard_at.is_some_and(|h| h <= now) {
                hard.push((t.ike_spi, spi));
            } else if t.renewal == Renewal::Active && t.soft_at.is_some_and(|s| s <= now) {
                soft.push((t.ike_spi, spi));
            }
        }
        hard.sort_unstable();
        soft.sort_unstable();
        for (ike, spi) in hard {
            self.expire_child(now, ike, spi);
        }
        for (ike, spi) in soft {
            if !self.rekey_child_sa(now, IkeSaId(ike), spi)
                && let Some(t) = self.rekey.children.get_mut(&spi)
            {
                // Not possible now (the IKE SA is being replaced): later.
                t.soft_at = Some(now + RETRY_AFTER);
            }
        }
        let mut ike_soft = Vec::new();
        let mut ike_hard = Vec::new();
        for (&spi, t) in &self.rekey.ike {
            if t.renewal != Renewal::Deleting && t.hard_at.is_some_and(|h| h <= now) {
                ike_hard.push(spi);
            } else if t.renewal == Renewal::Active && t.soft_at.is_some_and(|s| s <= now) {
                ike_soft.push(spi);
            }
        }
        ike_hard.sort_unstable();
        ike_soft.sort_unstable();
        for spi in ike_hard {
            if let Some(t) = self.rekey.ike.get_mut(&spi) {
                t.renewal = Renewal::Deleting;
            }
            self.delete_ike_sa(now, IkeSaId(spi));
        }
        for spi in ike_soft {
            if !self.rekey_ike_sa(now, IkeSaId(spi))
                && let Some(t) = self.rekey.ike.get_mut(&spi)
            {
                t.soft_at = Some(now + RETRY_AFTER);
            }
        }
    }

    /// The next lifetime event.
    pub(crate) fn rekey_deadline(&self) -> Option<Instant> {
        let children =
            (self.rekey.children.values()).flat_map(|t| t.renewal.deadlines(t.soft_at, t.hard_at));
        let ike = (self.rekey.ike.values()).flat_map(|t| t.renewal.deadlines(t.soft_at, t.hard_at));
        children.chain(ike).flatten().min()
    }

    /// A rekey the peer refused for now is tried again later.
    pub(crate) fn retry_later(&mut self, now: Instant, kind: CreateKind, ike_spi: u64) {
        match kind {
            CreateKind::RekeyChild(spi) => {
                if let Some(t) = self.rekey.children.get_mut(&spi)
                    && t.renewal == Renewal::Rekeying
                {
                    t.renewal = Renewal::Active;
                    t.soft_at = Some(now + RETRY_AFTER);
                }
            }
            CreateKind::RekeyIke => {
                if let Some(t) = self.rekey.ike.get_mut(&ike_spi)
                    && t.renewal == Renewal::Rekeying
                {
                    t.renewal = Renewal::Active;
                    t.soft_at = Some(now + RETRY_AFTER);
                }
            }
            CreateKind::NewChild(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_lifetime_is_ninety_percent() {
        assert_eq!(
            soft_of(Duration::from_secs(28800)),
            Some(Duration::from_secs(25920))
        );
        assert_eq!(soft_of(Duration::from_secs(1)), None);
    }
}
