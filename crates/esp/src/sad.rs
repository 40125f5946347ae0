//! The Security Association Database (RFC 4301 §4.4.2): inbound lookup by SPI in O(1),
//! outbound by handle, and the global drop counters.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::time::Instant;

use crate::counters::DropCounters;
use crate::decap::{self, Opened};
use crate::decap_fast;
use crate::encap::{self, Encapsulated};
use crate::encap_fast;
use crate::error::{ConfigError, EspError};
use crate::lifetime::Expiry;
use crate::outer::Outer;
use crate::packet::Packet;
use crate::sa::{Direction, SaConfig, SecurityAssociation};
use palisade_wire::proto;

/// Names an installed SA. A handle of a removed SA never names a later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SaHandle {
    index: u32,
    generation: u32,
}

/// A decapsulated packet and the SA that opened it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decapsulated {
    /// The inbound SA that opened the innermost IPsec header.
    pub sa: SaHandle,
    /// For an AH+ESP bundle, the AH SA that verified the outer layer.
    pub outer_sa: Option<SaHandle>,
    /// Details of the opened packet.
    pub opened: Opened,
}

/// SAs applied together to one packet: ESP inside AH (WFP's IPSEC_SA_BUNDLE with two
/// SAs, spec §6.1). Outbound, ESP is applied first, then AH over the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaBundle {
    /// The ESP SA.
    pub esp: SaHandle,
    /// The AH SA (transport mode) over it, if any.
    pub ah: Option<SaHandle>,
}

/// A lifetime event found by [`Sad::poll_lifetimes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifetimeEvent {
    /// The SA concerned.
    pub sa: SaHandle,
    /// `NewlySoft` (time to rekey) or `HardExpired` (the SA no longer passes traffic).
    pub expiry: Expiry,
}

struct Slot {
    generation: u32,
    sa: Option<SecurityAssociation>,
}

/// SPIs are chosen by us or by IKE, never by the sender of a packet, so a fixed
/// multiplicative hash is enough and much cheaper than SipHash on the per-packet path.
#[derive(Default)]
struct SpiHasher(u64);

impl Hasher for SpiHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// (IP protocol, SPI) packed in a u64.
type SpiKey = u64;

fn spi_key(protocol: u8, spi: u32) -> SpiKey {
    (u64::from(protocol) << 32) | u64::from(spi)
}

/// The inbound SAs of one (protocol, SPI): nearly always one, kept inline so the
/// per-packet lookup is one hash probe; several only when SPIs collide across local
/// addresses, and then the destination decides.
enum SpiEntry {
    One(IpAddr, SaHandle),
    Several(Vec<(IpAddr, SaHandle)>),
}

impl SpiEntry {
    fn has_destination(&self, dst: IpAddr) -> bool {
        match self {
            SpiEntry::One(d, _) => *d == dst,
            SpiEntry::Several(v) => v.iter().any(|(d, _)| *d == dst),
        }
    }
}

/// The general send path: ESP or AH by the SA's transform. Out of line for the same
/// reason as `Sad::decapsulate_inner`.
#[inline(never)]
fn encapsulate_general(
    sa: &mut SecurityAssociation,
    pkt: &mut Packet<'_>,
    now: Instant,
) -> Result<Encapsulated, EspError> {
    match sa.config.transform {
        crate::sa::SaTransform::Esp(_) => encap::encapsulate(sa, pkt, now),
        crate::sa::SaTransform::Ah(_) => crate::ah::encapsulate(sa, pkt, now),
    }
}

/// The SAs of one host.
#[derive(Default)]
pub struct Sad {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Inbound SAs by (protocol, SPI).
    inbound: HashMap<SpiKey, SpiEntry, BuildHasherDefault<SpiHasher>>,
    drops: DropCounters,
    /// [`Sad::next_deadline`]'s answer, once computed (`None`: not since the last install,
    /// removal or poll). Deadlines only move later or vanish as SAs age, so a kept value
    /// is never later than the true one: at worst a caller wakes early and polls. Without
    /// it, every wake-up of a data plane walked every SA (a third of a busy responder's
    /// time with thousands of SAs).
    earliest: Cell<Option<Option<Instant>>>,
}

impl core::fmt::Debug for Sad {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sad")
            .field("sas", &self.len())
            .field("drops", &self.drops)
            .finish()
    }
}

impl Sad {
    /// An empty SAD.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keys and installs an SA (see [`SecurityAssociation::new`] for `keymat`).
    pub fn install(
        &mut self,
        config: SaConfig,
        keymat: &[u8],
        now: Instant,
    ) -> Result<SaHandle, ConfigError> {
        self.earliest.set(None);
        let inbound_key = (config.direction == Direction::Inbound)
            .then(|| spi_key(config.transform.ip_protocol(), config.spi));
        if let Some(key) = inbound_key
            && self
                .inbound
                .get(&key)
                .is_some_and(|e| e.has_destination(config.local))
        {
            return Err(ConfigError::DuplicateSpi(config.spi));
        }
        let local = config.local;
        let sa = SecurityAssociation::new(config, keymat, now)?;
        let handle = match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                slot.sa = Some(sa);
                SaHandle {
                    index,
                    generation: slot.generation,
                }
            }
            None => {
                let index = u32::try_from(self.slots.len()).map_err(|_| ConfigError::Full)?;
                self.slots.push(Slot {
                    generation: 0,
                    sa: Some(sa),
                });
                SaHandle {
                    index,
                    generation: 0,
                }
            }
        };
        if let Some(key) = inbound_key {
            let entry = match self.inbound.remove(&key) {
                None => SpiEntry::One(local, handle),
                Some(SpiEntry::One(d, h)) => SpiEntry::Several(vec![(d, h), (local, handle)]),
                Some(SpiEntry::Several(mut v)) => {
                    v.push((local, handle));
                    SpiEntry::Several(v)
                }
            };
            self.inbound.insert(key, entry);
        }
        Ok(handle)
    }

    /// Removes an SA; its keys are zeroized as it drops. Returns its configuration.
    pub fn remove(&mut self, handle: SaHandle) -> Result<SaConfig, ConfigError> {
        self.earliest.set(None);
        let slot = self
            .slots
            .get_mut(handle.index as usize)
            .filter(|s| s.generation == handle.generation && s.sa.is_some())
            .ok_or(ConfigError::NoSuchSa)?;
        let sa = slot.sa.take().ok_or(ConfigError::NoSuchSa)?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(handle.index);
        let config = sa.config().clone();
        if config.direction == Direction::Inbound {
            let key = spi_key(config.transform.ip_protocol(), config.spi);
            let rest = match self.inbound.remove(&key) {
                Some(SpiEntry::Several(mut v)) => {
                    v.retain(|(_, h)| *h != handle);
                    match v.as_slice() {
                        [] => None,
                        [(d, h)] => Some(SpiEntry::One(*d, *h)),
                        _ => Some(SpiEntry::Several(v)),
                    }
                }
                Some(SpiEntry::One(d, h)) if h != handle => Some(SpiEntry::One(d, h)),
                Some(SpiEntry::One(..)) | None => None,
            };
            if let Some(rest) = rest {
                self.inbound.insert(key, rest);
            }
        }
        Ok(config)
    }

    /// The SA a handle names.
    pub fn get(&self, handle: SaHandle) -> Option<&SecurityAssociation> {
        self.slots
            .get(handle.index as usize)
            .filter(|s| s.generation == handle.generation)
            .and_then(|s| s.sa.as_ref())
    }

    fn get_mut(&mut self, handle: SaHandle) -> Option<&mut SecurityAssociation> {
        let slot = self.slots.get_mut(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        slot.sa.as_mut()
    }

    /// Mutable access for tests and benchmarks (e.g. to jump the sequence number).
    #[doc(hidden)]
    pub fn get_mut_for_test(&mut self, handle: SaHandle) -> Option<&mut SecurityAssociation> {
        self.earliest.set(None);
        self.get_mut(handle)
    }

    /// Number of installed SAs.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.sa.is_some()).count()
    }

    /// Whether no SA is installed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every installed SA with its handle.
    pub fn iter(&self) -> impl Iterator<Item = (SaHandle, &SecurityAssociation)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.sa.as_ref().map(|sa| {
                (
                    SaHandle {
                        index: i as u32,
                        generation: s.generation,
                    },
                    sa,
                )
            })
        })
    }

    /// Drops by reason over all SAs, including packets that matched none.
    pub fn drops(&self) -> &DropCounters {
        &self.drops
    }

    /// The inbound SA for a protocol, SPI and destination address.
    pub fn lookup_inbound(&self, protocol: u8, spi: u32, dst: IpAddr) -> Option<SaHandle> {
        match self.inbound.get(&spi_key(protocol, spi))? {
            SpiEntry::One(_, h) => Some(*h),
            SpiEntry::Several(v) => v.iter().find(|(d, _)| *d == dst).map(|(_, h)| *h),
        }
    }

    /// Protects one packet with an outbound SA, in place.
    pub fn encapsulate(
        &mut self,
        handle: SaHandle,
        pkt: &mut Packet<'_>,
        now: Instant,
    ) -> Result<Encapsulated, EspError> {
        let result = match self.get_mut(handle) {
            // Only outbound SAs have the outbound fast path, so its answer needs no
            // direction check, and a sealed packet returns at once.
            Some(sa) => match encap_fast::encapsulate(sa, pkt, now) {
                Some(Ok(done)) => return Ok(done),
                fast if sa.config.direction == Direction::Outbound => {
                    let r = match fast {
                        Some(r) => r,
                        None => encapsulate_general(sa, pkt, now),
                    };
                    if let Err(e) = r {
                        sa.counters.drops.count(e.reason());
                    }
                    r
                }
                _ => Err(EspError::NoSuchSa),
            },
            None => Err(EspError::NoSuchSa),
        };
        if let Err(e) = result {
            self.drops.count(e.reason());
        }
        result
    }

    /// Opens one received IPsec packet (ESP, ESP in UDP, or AH) in place.
    pub fn decapsulate(
        &mut self,
        pkt: &mut Packet<'_>,
        now: Instant,
    ) -> Result<Decapsulated, EspError> {
        let result = match self.decapsulate_fast(pkt, now) {
            Some(r) => r,
            None => self.decapsulate_inner(pkt, now),
        };
        if let Err(e) = result {
            self.drops.count(e.reason());
        }
        result
    }

    /// The fast path (`decap_fast.rs`) when the packet and its SA fit it; `None` when
    /// nothing was touched and the general path must take the packet.
    #[inline(always)]
    fn decapsulate_fast(
        &mut self,
        pkt: &mut Packet<'_>,
        now: Instant,
    ) -> Option<Result<Decapsulated, EspError>> {
        let outer = decap_fast::OuterV4::parse(pkt)?;
        let handle = self.lookup_inbound(proto::ESP, outer.spi, IpAddr::V4(outer.dst))?;
        let sa = self.get_mut(handle)?;
        Some(match decap_fast::decapsulate(sa, pkt, &outer, now)? {
            Ok(opened) => Ok(Decapsulated {
                sa: handle,
                outer_sa: None,
                opened,
            }),
            Err(e) => {
                sa.counters.drops.count(e.reason());
                Err(e)
            }
        })
    }

    /// The general receive path. Out of line: inlined, its locals and spills made
    /// `decapsulate`'s frame (and register pressure) the fast path's too.
    #[inline(never)]
    fn decapsulate_inner(
        &mut self,
        pkt: &mut Packet<'_>,
        now: Instant,
    ) -> Result<Decapsulated, EspError> {
        if !pkt.is_valid() {
            return Err(EspError::Malformed("packet range outside the buffer"));
        }
        let outer = Outer::parse(pkt.bytes())?;
        if outer.ipsec_protocol() == proto::AH {
            self.decapsulate_ah(pkt, &outer, now)
        } else {
            self.decapsulate_esp(pkt, &outer, now)
        }
    }

    /// The inbound SA named by the SPI at `spi_at` (an offset into the packet).
    #[inline(always)]
    fn inbound_sa(
        &mut self,
        pkt: &Packet<'_>,
        outer: &Outer,
        spi_at: usize,
    ) -> Result<(SaHandle, &mut SecurityAssociation), EspError> {
        let at = pkt.start + spi_at;
        let spi = match pkt.buf.get(at..at + 4) {
            Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
            _ => return Err(EspError::TooShort),
        };
        let handle = self
            .lookup_inbound(outer.ipsec_protocol(), spi, outer.dst)
            .ok_or(EspError::UnknownSpi(spi))?;
        let sa = self.get_mut(handle).ok_or(EspError::UnknownSpi(spi))?;
        Ok((handle, sa))
    }

    #[inline(always)]
    fn decapsulate_esp(
        &mut self,
        pkt: &mut Packet<'_>,
        outer: &Outer,
        now: Instant,
    ) -> Result<Decapsulated, EspError> {
        let (handle, sa) = self.inbound_sa(pkt, outer, outer.ipsec_offset)?;
        let opened = decap::decapsulate(sa, pkt, outer, now)
            .inspect_err(|e| sa.counters.drops.count(e.reason()))?;
        Ok(Decapsulated {
            sa: handle,
            outer_sa: None,
            opened,
        })
    }

    fn decapsulate_ah(
        &mut self,
        pkt: &mut Packet<'_>,
        outer: &Outer,
        now: Instant,
    ) -> Result<Decapsulated, EspError> {
        // AH: Next Header, Payload Len and Reserved come before the SPI.
        let (handle, sa) = self.inbound_sa(pkt, outer, outer.ipsec_offset + 4)?;
        let opened = crate::ah::decapsulate(sa, pkt, outer, now)
            .inspect_err(|e| sa.counters.drops.count(e.reason()))?;
        if opened.next_header != proto::ESP {
            return Ok(Decapsulated {
                sa: handle,
                outer_sa: None,
                opened,
            });
        }
        // ESP inside AH: the bundle's inner layer. One level only, as bundles allow.
        let inner_outer = Outer::parse(pkt.bytes())?;
        if inner_outer.ipsec_protocol() != proto::ESP {
            return Err(EspError::Malformed("AH bundle without ESP inside"));
        }
        let inner = self.decapsulate_esp(pkt, &inner_outer, now)?;
        Ok(Decapsulated {
            outer_sa: Some(handle),
            ..inner
        })
    }

    /// Protects one packet with a bundle: ESP, then AH over it.
    pub fn encapsulate_bundle(
        &mut self,
        bundle: SaBundle,
        pkt: &mut Packet<'_>,
        now: Instant,
    ) -> Result<Encapsulated, EspError> {
        let esp = self.encapsulate(bundle.esp, pkt, now)?;
        match bundle.ah {
            None => Ok(esp),
            Some(ah) => {
                let a = self.encapsulate(ah, pkt, now)?;
                Ok(Encapsulated {
                    seq: esp.seq,
                    soft_expired: esp.soft_expired || a.soft_expired,
                })
            }
        }
    }

    /// Checks that a bundle is ESP inside transport-mode AH, both outbound.
    pub fn check_bundle(&self, bundle: SaBundle) -> Result<(), ConfigError> {
        let esp = self.get(bundle.esp).ok_or(ConfigError::NoSuchSa)?;
        if !matches!(esp.config().transform, crate::sa::SaTransform::Esp(_)) {
            return Err(ConfigError::Bundle("the first SA must be ESP"));
        }
        if let Some(ah) = bundle.ah {
            let ah = self.get(ah).ok_or(ConfigError::NoSuchSa)?;
            if !matches!(ah.config().transform, crate::sa::SaTransform::Ah(_))
                || ah.config().mode != crate::sa::Mode::Transport
            {
                return Err(ConfigError::Bundle(
                    "the second SA must be transport-mode AH",
                ));
            }
            if ah.config().direction != esp.config().direction {
                return Err(ConfigError::Bundle("both SAs must have the same direction"));
            }
        }
        Ok(())
    }

    /// Protects a batch with one SA; `results[i]` is the outcome for `pkts[i]`.
    pub fn encapsulate_batch(
        &mut self,
        handle: SaHandle,
        pkts: &mut [Packet<'_>],
        now: Instant,
        results: &mut [Result<Encapsulated, EspError>],
    ) {
        for (pkt, out) in pkts.iter_mut().zip(results.iter_mut()) {
            *out = self.encapsulate(handle, pkt, now);
        }
    }

    /// Opens a batch; `results[i]` is the outcome for `pkts[i]`.
    pub fn decapsulate_batch(
        &mut self,
        pkts: &mut [Packet<'_>],
        now: Instant,
        results: &mut [Result<Decapsulated, EspError>],
    ) {
        for (pkt, out) in pkts.iter_mut().zip(results.iter_mut()) {
            *out = self.decapsulate(pkt, now);
        }
    }

    /// Time-driven lifetime checks: appends every SA that became soft-expired or
    /// hard-expired since the last call. Hard-expired SAs stay installed (and drop
    /// traffic) until the caller removes them.
    pub fn poll_lifetimes(&mut self, now: Instant, events: &mut Vec<LifetimeEvent>) {
        self.earliest.set(None);
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let Some(sa) = slot.sa.as_mut() {
                let expiry = sa.lifetime.poll(now);
                let report = match expiry {
                    Expiry::NewlySoft => true,
                    Expiry::HardExpired => !core::mem::replace(&mut sa.hard_reported, true),
                    Expiry::Alive | Expiry::SoftExpired => false,
                };
                if report {
                    events.push(LifetimeEvent {
                        sa: SaHandle {
                            index: i as u32,
                            generation: slot.generation,
                        },
                        expiry,
                    });
                }
            }
        }
    }

    /// The earliest time-based lifetime event of any SA (possibly earlier than the
    /// true one between polls, never later).
    pub fn next_deadline(&self) -> Option<Instant> {
        if let Some(known) = self.earliest.get() {
            return known;
        }
        let earliest = self.next_deadline_walk();
        self.earliest.set(Some(earliest));
        earliest
    }

    /// The earliest deadline by walking every SA.
    #[doc(hidden)]
    pub fn next_deadline_walk(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|s| s.sa.as_ref())
            .filter_map(|sa| sa.lifetime.next_deadline())
            .min()
    }
}
