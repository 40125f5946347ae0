//! The IKEv2 endpoint: all IKE SAs of one host, fed datagrams, acquires
//! and clock readings, drained of datagrams to send and events.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use palisade_wire::ikev2::{IkeHeader, exchange_type};

use crate::cookie::{CookieJar, HalfOpen, ReturnedCookie};
use crate::error::{
    Counters, DropReason, Failure, FailurePoint, FailureReason, PolicyInvolved, Role, Stage,
};
use crate::event::{ChildSaDeleted, Event, IkeSaId};
use crate::extensions::Extensions;
use crate::fragment::FragmentationConfig;
use crate::ike_sa::{IkeSa, State};
use crate::policy::{Acquire, PolicyLookup};
use crate::proposal::EsnPolicy;
use crate::random::{Random, RandomError, SystemRandom};
use crate::retransmit::{Outstanding, Purpose, RetransmitConfig, Timeout};

/// A datagram to send. On port 4500 the driver prefixes the non-ESP
/// marker (RFC 3948 §2.2) and strips it from what it passes to
/// [`Endpoint::handle_datagram`]; a NAT keepalive
/// ([`Transmit::is_nat_keepalive`], the single octet 0xFF) is sent as it
/// is, without the marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Source address and port.
    pub local: SocketAddr,
    /// Destination.
    pub remote: SocketAddr,
    /// The IKE message (without the non-ESP marker of port 4500).
    pub bytes: Vec<u8>,
}

/// The addresses a datagram travelled between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Path {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// Settings of the endpoint that policy does not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Retransmission of our requests.
    pub retransmit: RetransmitConfig,
    /// How long a responder keeps an IKE SA whose IKE_AUTH never comes.
    pub half_open_timeout: Duration,
    /// Extended sequence numbers for CHILD_SAs.
    pub esn: EsnPolicy,
    /// Length of our nonces (RFC 7296 §2.10: at least half the PRF key size;
    /// 32 covers every PRF offered).
    pub nonce_len: usize,
    /// IKE fragmentation (RFC 7383): whether it is offered, fragment sizes
    /// and reassembly limits.
    pub fragmentation: FragmentationConfig,
    /// Announce SIGNATURE_HASH_ALGORITHMS in IKE_SA_INIT (RFC 7427 §4), so
    /// that a peer with a certificate signs with Digital Signature (14).
    /// Off, peers use the classic RSA (1) and ECDSA (9-11) methods, and so
    /// do we unless the peer announces it.
    pub signature_hash_algorithms: bool,
    /// How many half-open IKE SAs a responder keeps before it answers new
    /// IKE_SA_INIT requests with a COOKIE (RFC 7296 §2.6) and creates no
    /// state for requests without a valid one. 0 always demands a cookie.
    pub cookie_threshold: usize,
    /// The most half-open IKE SAs one peer address may have; further
    /// IKE_SA_INIT requests from it are dropped.
    pub max_half_open_per_peer: usize,
    /// How long a port-4500 path of an IKE SA behind a NAT on our side may
    /// stay silent before a NAT keepalive goes out (RFC 3948 §4; see
    /// [`Transmit::is_nat_keepalive`] and
    /// [`Endpoint::handle_outbound_activity`]). `None` sends none.
    pub nat_keepalive_interval: Option<Duration>,
    /// The most IKE SAs one peer address may have with us, established or
    /// half-open, as either side (an IKE SA and its rekeyed successor count
    /// once); further IKE_SA_INIT requests from it are dropped
    /// ([`DropReason::IkeSaLimit`]).
    pub max_ike_sas_per_peer: usize,
    /// The most CHILD_SA pairs one IKE SA carries (a rekey replaces one and
    /// does not count twice): a further one is refused with
    /// NO_ADDITIONAL_SAS as responder and not requested as initiator
    /// ([`FailureReason::ChildSaLimit`]).
    pub max_child_sas_per_ike_sa: usize,
    /// The most requests of ours waiting behind the outstanding one on an
    /// IKE SA (window size 1); more are dropped
    /// ([`FailureReason::RequestQueueFull`], [`Counters::requests_dropped`]).
    pub max_queued_requests_per_ike_sa: usize,
    /// ESP in UDP (RFC 3948) and IKE on port 4500 even where no NAT is
    /// detected, for paths that pass only UDP. As strongSwan's `encap =
    /// yes` does, our NAT_DETECTION_SOURCE_IP carries a random value, so
    /// the peer believes we are behind a NAT and moves to port 4500, and
    /// we take our own side as translated too
    /// ([`crate::nat::NatDetection::forced_encapsulation`]). It sends no
    /// NAT keepalives: without a NAT there is no mapping to keep open.
    /// Only with a peer that does NAT detection (sends both
    /// notifications); one that does not would not understand ESP in UDP.
    pub force_udp_encapsulation: bool,
    /// Dead peer detection (RFC 7296 §2.4): an established IKE SA on
    /// which nothing protected came from the peer for this long (no IKE
    /// message that passed its integrity check, and no inbound ESP the
    /// driver reported with [`Endpoint::handle_inbound_activity`]) gets an
    /// empty INFORMATIONAL request; when its retransmissions run out the
    /// IKE SA and its CHILD_SAs are deleted with a
    /// [`FailureReason::PeerUnreachable`] failure. `None` never checks.
    pub dpd_delay: Option<Duration>,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            retransmit: RetransmitConfig::default(),
            half_open_timeout: Duration::from_secs(30),
            esn: EsnPolicy::default(),
            nonce_len: 32,
            fragmentation: FragmentationConfig::default(),
            signature_hash_algorithms: true,
            cookie_threshold: 32,
            max_half_open_per_peer: 8,
            // RFC 3948 §4: 20 seconds, shorter than common NAT UDP timeouts.
            nat_keepalive_interval: Some(Duration::from_secs(20)),
            max_ike_sas_per_peer: 16,
            max_child_sas_per_ike_sa: 64,
            max_queued_requests_per_ike_sa: 32,
            force_udp_encapsulation: false,
            // strongSwan's default dpd_delay.
            dpd_delay: Some(Duration::from_secs(30)),
        }
    }
}

/// The IKEv2 keying module of one host (see the crate documentation).
pub struct Endpoint {
    pub(crate) config: EndpointConfig,
    pub(crate) policy: Box<dyn PolicyLookup>,
    pub(crate) random: Box<dyn Random>,
    /// IKE SAs by our SPI.
    pub(crate) sas: HashMap<u64, IkeSa>,
    /// Responder: (peer, SPIi) to our SPI, to recognise a retransmitted
    /// IKE_SA_INIT request.
    pub(crate) by_initiator: HashMap<(SocketAddr, u64), u64>,
    /// Our inbound CHILD_SA SPIs in use.
    pub(crate) child_spis: HashSet<u32>,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) counters: Counters,
    /// Responder: the secrets COOKIEs are made with.
    pub(crate) cookies: CookieJar,
    /// Responder: the half-open IKE SAs, for the cookie threshold and the
    /// per-peer bound.
    pub(crate) half_open: HalfOpen,
    /// Initiator: cookies responders gave us, by our SPI.
    pub(crate) returned_cookies: HashMap<u64, ReturnedCookie>,
    /// Fragmentation and signature-hash state of each IKE SA, by our SPI.
    pub(crate) extensions: HashMap<u64, Extensions>,
    /// IKE_INTERMEDIATE state (RFC 9242, RFC 9370) of IKE SAs with
    /// additional key exchanges, by SPI like `extensions`.
    pub(crate) intermediate: HashMap<u64, crate::exchange::Intermediate>,
    /// A reading of the monotonic clock and the wall-clock time at that
    /// moment (see [`Endpoint::set_unix_time`]).
    pub(crate) unix_time: Option<(Instant, SystemTime)>,
    /// Lifetimes, queued CREATE_CHILD_SA requests and rekey collisions.
    pub(crate) rekey: crate::rekey::Rekeys,
    /// NAT keepalives: when each port-4500 path last carried something.
    pub(crate) keepalive: crate::keepalive::Keepalives,
    /// What the per-IKE SA bounds count.
    pub(crate) limits: crate::limits::Limits,
}

impl core::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Endpoint")
            .field("config", &self.config)
            .field("ike_sas", &self.sas.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint answering policy questions with `policy`, drawing SPIs
    /// and nonces from the system generator.
    pub fn new(config: EndpointConfig, policy: impl PolicyLookup + 'static) -> Self {
        Self::with_random(config, policy, SystemRandom::new())
    }

    /// An endpoint with a chosen random source.
    pub fn with_random(
        config: EndpointConfig,
        policy: impl PolicyLookup + 'static,
        random: impl Random + 'static,
    ) -> Self {
        Self {
            config,
            policy: Box::new(policy),
            random: Box::new(random),
            sas: HashMap::new(),
            by_initiator: HashMap::new(),
            child_spis: HashSet::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            cookies: CookieJar::default(),
            half_open: HalfOpen::default(),
            returned_cookies: HashMap::new(),
            extensions: HashMap::new(),
            intermediate: HashMap::new(),
            unix_time: None,
            rekey: crate::rekey::Rekeys::default(),
            keepalive: crate::keepalive::Keepalives::default(),
            limits: crate::limits::Limits::default(),
        }
    }

    /// Tells the endpoint the wall-clock time: `unix` was the time when
    /// the monotonic clock read `now`. Certificate validity (notBefore,
    /// notAfter) is checked at `unix + (later - now)`; the driver calls
    /// this at start and again whenever the system clock is stepped.
    /// Without it, peers authenticating with certificates are refused
    /// ([`crate::CertificateFailure::NoWallClock`]).
    pub fn set_unix_time(&mut self, now: Instant, unix: SystemTime) {
        self.unix_time = Some((now, unix));
    }

    /// The wall-clock time at `now`, if known.
    pub(crate) fn unix_time_at(&self, now: Instant) -> Option<SystemTime> {
        let (at, unix) = self.unix_time?;
        match now.checked_duration_since(at) {
            Some(later) => unix.checked_add(later),
            None => unix.checked_sub(at.duration_since(now)),
        }
    }

    /// A datagram arrived on `local` from `remote`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        self.keepalive.tick(now);
        // The driver should drop NAT keepalives itself; one passed in is
        // no malformed IKE message.
        if self.keepalive.is_received(bytes) {
            return;
        }
        let Ok(header) = IkeHeader::parse(bytes) else {
            self.counters.count(DropReason::Malformed);
            return;
        };
        if !header.is_response()
            && header.exchange_type == exchange_type::IKE_SA_INIT
            && header.responder_spi == 0
        {
            self.respond_ike_sa_init(now, local, remote, &header, bytes);
            return;
        }
        // The original initiator sets the I flag, so a message with it set
        // is for an SA where we are the responder (our SPI is SPIr).
        let spi = if header.is_initiator() {
            header.responder_spi
        } else {
            header.initiator_spi
        };
        let Some(sa) = self.sas.get(&spi) else {
            self.counters.count(DropReason::UnknownSpi);
            return;
        };
        // Ports may change under a NAT (RFC 7296 §2.23); addresses may not
        // (no MOBIKE). The new ports are adopted once the message is
        // authenticated, see `Endpoint::authenticated`.
        if !sa.owns(&header) || sa.remote.ip() != remote.ip() || sa.local.ip() != local.ip() {
            self.counters.count(DropReason::UnknownSpi);
            return;
        }
        let path = Path { local, remote };
        if header.next_payload == palisade_wire::ikev2::payload_type::SKF {
            self.handle_fragment(now, spi, path, &header, bytes);
            return;
        }
        if header.is_response() {
            self.handle_response(now, spi, path, &header, bytes);
        } else {
            self.handle_request(now, spi, path, &header, bytes);
        }
        self.track_installed(now);
    }

    /// The data plane needs an SA: start IKE_SA_INIT unless an IKE SA with
    /// that peer exists or is being set up. (Without CREATE_CHILD_SA an
    /// existing IKE SA cannot add CHILD_SAs, so such acquires are ignored.)
    pub fn handle_acquire(&mut self, now: Instant, acquire: Acquire) {
        self.keepalive.tick(now);
        // An established IKE SA adds a CHILD_SA with CREATE_CHILD_SA.
        if self.acquire_child(now, &acquire) {
            return;
        }
        let busy = self
            .sas
            .values()
            .any(|sa| sa.local == acquire.local && sa.remote == acquire.remote);
        if !busy {
            self.initiate(now, acquire);
        }
    }

    /// The clock reached (or passed) [`Endpoint::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.keepalive.tick(now);
        self.rekey_timeouts(now);
        let spis: Vec<u64> = self.sas.keys().copied().collect();
        for spi in spis {
            let retransmit = self.config_for(spi);
            let Some(sa) = self.sas.get_mut(&spi) else {
                continue;
            };
            if sa.state == State::InitAnswered
                && now.saturating_duration_since(sa.created) >= self.config.half_open_timeout
            {
                self.fail(
                    spi,
                    Stage::IkeAuth,
                    FailurePoint::Local,
                    FailureReason::HalfOpenTimeout,
                );
                continue;
            }
            let Some(out) = sa.outstanding.as_mut() else {
                // Dead peer detection: an empty INFORMATIONAL request,
                // given up on like any other (`Timeout::GiveUp` below).
                if self
                    .sas
                    .get(&spi)
                    .and_then(|sa| self.dpd_deadline(sa))
                    .is_some_and(|at| at <= now)
                {
                    self.request(now, spi, Purpose::Liveness);
                }
                continue;
            };
            match out.on_timeout(now, &retransmit) {
                Timeout::Wait => {}
                Timeout::Resend => {
                    let tx = Transmit {
                        local: sa.local,
                        remote: sa.remote,
                        bytes: out.bytes.clone(),
                    };
                    self.counters.retransmissions += 1;
                    // Through `send`: a fragmented request goes out whole.
                    self.send(tx.local, tx.remote, tx.bytes);
                }
                Timeout::GiveUp => {
                    let stage = match out.purpose {
                        Purpose::IkeSaInit => Stage::IkeSaInit,
                        Purpose::IkeAuth => Stage::IkeAuth,
                        Purpose::IkeIntermediate => Stage::IkeIntermediate,
                        Purpose::CreateChildSa => Stage::CreateChildSa,
                        _ => Stage::Informational,
                    };
                    self.fail(
                        spi,
                        stage,
                        FailurePoint::Local,
                        FailureReason::PeerUnreachable,
                    );
                }
            }
        }
        self.keepalive_timeouts(now);
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Endpoint::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sas
            .values()
            .flat_map(|sa| {
                let retransmit = sa.outstanding.as_ref().map(Outstanding::deadline);
                let half_open = (sa.state == State::InitAnswered)
                    .then(|| sa.created + self.config.half_open_timeout);
                // In the same walk: dead peer detection costs O(1) per SA.
                [retransmit, half_open, self.dpd_deadline(sa)]
            })
            .flatten()
            .chain(self.rekey_deadline())
            .chain(self.keepalive_deadline())
            .min()
    }

    /// Counters of dropped datagrams and retransmissions.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// How many IKE SAs are half-open as responder (IKE_SA_INIT answered,
    /// IKE_AUTH awaited): the state a flood of IKE_SA_INIT requests costs.
    pub fn half_open(&self) -> usize {
        self.sas
            .values()
            .filter(|sa| sa.state == State::InitAnswered)
            .count()
    }

    /// The established IKE SAs.
    pub fn ike_sas(&self) -> Vec<IkeSaId> {
        let mut ids: Vec<IkeSaId> = self
            .sas
            .values()
            .filter(|sa| sa.state == State::Established)
            .map(|sa| sa.id)
            .collect();
        ids.sort();
        ids
    }

    /// Deletes a CHILD_SA pair, named by our inbound SPI, with an
    /// INFORMATIONAL exchange. False if there is no such CHILD_SA.
    pub fn delete_child_sa(&mut self, now: Instant, ike_sa: IkeSaId, inbound_spi: u32) -> bool {
        let purpose = Purpose::DeleteChildSa(inbound_spi);
        self.request_informational(now, ike_sa, purpose, |sa| {
            sa.children.iter().any(|c| c.inbound_spi == inbound_spi)
        })
    }

    /// Deletes an IKE SA and its CHILD_SAs with an INFORMATIONAL exchange.
    pub fn delete_ike_sa(&mut self, now: Instant, ike_sa: IkeSaId) -> bool {
        self.request_informational(now, ike_sa, Purpose::DeleteIkeSa, |_| true)
    }

    /// Sends an empty INFORMATIONAL request (liveness check, RFC 7296
    /// §1.4); no answer after the retransmissions deletes the IKE SA.
    pub fn check_liveness(&mut self, now: Instant, ike_sa: IkeSaId) -> bool {
        self.request_informational(now, ike_sa, Purpose::Liveness, |_| true)
    }

    /// Starts an INFORMATIONAL exchange (RFC 7296 §1.4) for `purpose` on
    /// `ike_sa` if it is established and `names` accepts it (the deletes
    /// and the liveness check differ only in what they send); false if
    /// not.
    fn request_informational(
        &mut self,
        now: Instant,
        ike_sa: IkeSaId,
        purpose: Purpose,
        names: impl Fn(&IkeSa) -> bool,
    ) -> bool {
        self.keepalive.tick(now);
        let known = self
            .sas
            .get(&ike_sa.0)
            .is_some_and(|sa| sa.state == State::Established && names(sa));
        if known {
            self.request(now, ike_sa.0, purpose);
        }
        known
    }

    // ---- shared machinery for the exchanges ----

    pub(crate) fn config_for(&self, spi: u64) -> RetransmitConfig {
        let mut c = self.config.retransmit;
        if let Some(sa) = self.sas.get(&spi) {
            let secs = sa.policy.main_mode.retransmit_duration_secs;
            if secs != 0 {
                c.max_duration = Duration::from_secs(u64::from(secs));
            }
        }
        c
    }

    pub(crate) fn random_bytes(&mut self, len: usize) -> Result<Vec<u8>, RandomError> {
        let mut v = vec![0u8; len];
        self.random.fill(&mut v)?;
        Ok(v)
    }

    /// A fresh IKE SPI: non-zero and not ours already.
    pub(crate) fn new_ike_spi(&mut self) -> Result<u64, RandomError> {
        // A generator that keeps repeating itself is broken, not unlucky.
        for _ in 0..64 {
            let mut b = [0u8; 8];
            self.random.fill(&mut b)?;
            let spi = u64::from_be_bytes(b);
            if spi != 0 && !self.sas.contains_key(&spi) {
                return Ok(spi);
            }
        }
        Err(RandomError)
    }

    /// A fresh inbound CHILD_SA SPI: not reserved (RFC 4303 §2.1: 1-255)
    /// and not in use.
    pub(crate) fn new_child_spi(&mut self) -> Result<u32, RandomError> {
        for _ in 0..64 {
            let mut b = [0u8; 4];
            self.random.fill(&mut b)?;
            let spi = u32::from_be_bytes(b);
            if spi >= 256 && self.child_spis.insert(spi) {
                return Ok(spi);
            }
        }
        Err(RandomError)
    }

    /// A message of IKE SA `spi` that arrived over `path` passed its
    /// integrity check. Behind a NAT the peer's port may have changed (or
    /// the peer floated to 4500): from now on we answer where it came from
    /// (RFC 7296 §2.23). Without a NAT a changed port is not followed.
    /// It also shows the peer alive: dead peer detection starts over.
    pub(crate) fn authenticated(&mut self, spi: u64, path: Path) {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        // Every entry point ticks the clock first, so this is the `now` of
        // the call that brought the message.
        if let Some(now) = self.keepalive.clock() {
            sa.last_heard = sa.last_heard.max(now);
        }
        if sa.nat.any() {
            sa.local = path.local;
            sa.remote = path.remote;
        }
    }

    /// When dead peer detection checks IKE SA `sa` (RFC 7296 §2.4): an
    /// established IKE SA with no request of ours outstanding (an
    /// outstanding one settles liveness by its answer or its give-up), once
    /// nothing was heard from the peer for [`EndpointConfig::dpd_delay`].
    fn dpd_deadline(&self, sa: &IkeSa) -> Option<Instant> {
        let delay = self.config.dpd_delay?;
        if sa.state != State::Established || sa.outstanding.is_some() {
            return None;
        }
        sa.last_heard.checked_add(delay)
    }

    /// The data plane received authentic ESP (or AH) on a CHILD_SA of
    /// `ike_sa` at `now`: the peer is alive, so dead peer detection waits
    /// a full [`EndpointConfig::dpd_delay`] from `now`. Optional and cheap
    /// (one map lookup): per packet, or once a second per IKE SA with
    /// traffic; a driver that never calls it gets a liveness check every
    /// `dpd_delay` on IKE SAs whose IKE traffic is idle, which is always
    /// correct, only an exchange more. False if there is no such IKE SA.
    pub fn handle_inbound_activity(&mut self, now: Instant, ike_sa: IkeSaId) -> bool {
        self.keepalive.tick(now);
        let Some(sa) = self.sas.get_mut(&ike_sa.0) else {
            return false;
        };
        sa.last_heard = sa.last_heard.max(now);
        true
    }

    pub(crate) fn send(&mut self, local: SocketAddr, remote: SocketAddr, bytes: Vec<u8>) {
        self.keepalive.note_sent(local, remote);
        // A message sealed in fragments (RFC 7383) is sent, and resent
        // (§2.6), as all of its fragments.
        if let Some(fragments) = self.fragments_of(&bytes) {
            self.counters.fragments_sent += fragments.len() as u64;
            for bytes in fragments {
                self.transmits.push_back(Transmit {
                    local,
                    remote,
                    bytes,
                });
            }
            return;
        }
        self.transmits.push_back(Transmit {
            local,
            remote,
            bytes,
        });
    }

    /// Sends a request now, or queues it behind the outstanding one
    /// (window size 1).
    pub(crate) fn request(&mut self, now: Instant, spi: u64, purpose: Purpose) {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        if sa.outstanding.is_some() {
            if !self.admit_request(now, spi, purpose) {
                return;
            }
            if let Some(sa) = self.sas.get_mut(&spi) {
                sa.queued.push_back(purpose);
            }
            return;
        }
        self.send_queued(now, spi, purpose);
    }

    /// Sends a request that waited for the window.
    fn send_queued(&mut self, now: Instant, spi: u64, purpose: Purpose) {
        match purpose {
            Purpose::CreateChildSa => self.send_create_child_sa(now, spi),
            _ => self.send_informational_request(now, spi, purpose),
        }
    }

    /// Records a request as outstanding and sends it.
    pub(crate) fn send_request(
        &mut self,
        now: Instant,
        spi: u64,
        message_id: u32,
        purpose: Purpose,
        bytes: Vec<u8>,
    ) {
        let config = self.config_for(spi);
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        sa.outstanding = Some(Outstanding::new(
            message_id,
            bytes.clone(),
            purpose,
            now,
            &config,
        ));
        let (local, remote) = (sa.local, sa.remote);
        self.send(local, remote, bytes);
    }

    /// The outstanding request was answered: open the window and send the
    /// next queued request.
    pub(crate) fn request_done(&mut self, now: Instant, spi: u64) {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        sa.outstanding = None;
        if let Some(next) = sa.queued.pop_front() {
            self.send_queued(now, spi, next);
        }
    }

    /// Emits a failure for the IKE SA and removes it.
    pub(crate) fn fail(
        &mut self,
        spi: u64,
        stage: Stage,
        point: FailurePoint,
        reason: FailureReason,
    ) {
        // An IKE SA already replaced by a rekey just goes (e.g. the peer
        // never answered its Delete): its successor carries on.
        if self.superseded(spi) {
            return self.remove(spi);
        }
        self.report_failure(spi, stage, point, reason);
        self.remove(spi);
    }

    /// Emits a failure event for IKE SA `spi` (its addresses, role and
    /// policy), whether the failure ends the IKE SA ([`Endpoint::fail`])
    /// or leaves it up (a refused CREATE_CHILD_SA, a bound): one event, so
    /// one place that fills it.
    pub(crate) fn report_failure(
        &mut self,
        spi: u64,
        stage: Stage,
        point: FailurePoint,
        reason: FailureReason,
    ) {
        let Some(sa) = self.sas.get(&spi) else { return };
        let failure = Failure {
            local: sa.local,
            remote: sa.remote,
            ike_sa: Some(sa.id),
            role: sa.role,
            stage,
            point,
            reason,
            policy: self.policy_involved(spi),
        };
        self.events.push_back(Event::Failure(failure));
    }

    /// The filters IKE SA `spi`'s policy came from, for its net events.
    pub(crate) fn policy_involved(&self, spi: u64) -> PolicyInvolved {
        let Some(sa) = self.sas.get(&spi) else {
            return PolicyInvolved::default();
        };
        PolicyInvolved {
            main_mode: sa.policy.origin,
            quick_mode: sa.pending_child.as_ref().and_then(|p| p.policy.origin),
        }
    }

    /// A failure with no IKE SA behind it.
    pub(crate) fn fail_unattached(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        role: Role,
        stage: Stage,
        point: FailurePoint,
        reason: FailureReason,
    ) {
        let policy = PolicyInvolved::default();
        self.fail_unattached_involving(local, remote, role, stage, point, reason, policy);
    }

    /// A failure with no IKE SA behind it, naming the policy looked up.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fail_unattached_involving(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        role: Role,
        stage: Stage,
        point: FailurePoint,
        reason: FailureReason,
        policy: PolicyInvolved,
    ) {
        self.events.push_back(Event::Failure(Failure {
            local,
            remote,
            ike_sa: None,
            role,
            stage,
            point,
            reason,
            policy,
        }));
    }

    /// Forgets an IKE SA, reporting its CHILD_SAs and, if it was
    /// established, itself as deleted.
    pub(crate) fn remove(&mut self, spi: u64) {
        self.rekey_forget(spi);
        self.limits.forget(spi);
        let Some(sa) = self.sas.remove(&spi) else {
            return;
        };
        self.extensions.remove(&spi);
        self.intermediate.remove(&spi);
        self.half_open.remove(spi);
        self.returned_cookies.remove(&spi);
        self.by_initiator.remove(&(sa.remote, sa.spi_i));
        if let Some(p) = &sa.pending_child {
            self.child_spis.remove(&p.inbound_spi);
        }
        for c in &sa.children {
            self.child_spis.remove(&c.inbound_spi);
            self.events
                .push_back(Event::ChildSaDeleted(child_deleted(sa.id, c)));
        }
        if sa.state == State::Established {
            self.events.push_back(Event::IkeSaDeleted(sa.id));
        }
    }
}

pub(crate) fn child_deleted(ike_sa: IkeSaId, c: &crate::ike_sa::ChildRecord) -> ChildSaDeleted {
    let ip_protocol = match c.protocol_id {
        palisade_wire::ikev2::protocol_id::AH => palisade_wire::proto::AH,
        _ => palisade_wire::proto::ESP,
    };
    ChildSaDeleted {
        ike_sa,
        ip_protocol,
        inbound_spi: c.inbound_spi,
        outbound_spi: c.outbound_spi,
    }
}
