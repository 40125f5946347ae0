//! Defences of a responder against floods of IKE_SA_INIT requests (RFC
//! 7296 §2.6): COOKIEs, demanded once too many IKE SAs are half-open, so
//! that a request creates state only after its sender proved it receives
//! at its source address; and a bound on half-open IKE SAs per peer
//! address, for senders who do.
//!
//! The cookie is `<VersionIDofSecret> | HMAC-SHA-256(<secret>, Ni | IPi |
//! SPIi)`: the keyed form of RFC 7296's `Hash(Ni | IPi | SPIi | <secret>)`.
//! The secret rotates every [`SECRET_LIFETIME`] and the previous one is
//! still accepted until the next rotation, so that a cookie handed out just
//! before a rotation stays good for a round trip.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use aws_lc_rs::{constant_time, hmac};
use palisade_wire::ikev2::{
    IKE_HEADER_LEN, IkeHeader, Notify, PAYLOAD_HEADER_LEN, Payloads, notify_type, payload_type,
};
use zeroize::Zeroizing;

use crate::Endpoint;
use crate::error::{DropReason, FailurePoint, FailureReason, Stage};
use crate::ike_sa::State;
use crate::message::{Received, init_notify_response};
use crate::random::{Random, RandomError};
use crate::retransmit::Purpose;

/// How long a secret makes new cookies; it is accepted for as long again.
pub(crate) const SECRET_LIFETIME: Duration = Duration::from_secs(60);

/// A version octet and an HMAC-SHA-256 tag (RFC 7296 §3.10.1 allows 1 to
/// 64 octets).
const COOKIE_LEN: usize = 1 + 32;

struct Secret {
    version: u8,
    key: hmac::Key,
    created: Instant,
}

impl Secret {
    fn tag(&self, ni: &[u8], ip: IpAddr, spi_i: u64) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(ni);
        match ip {
            IpAddr::V4(a) => ctx.update(&a.octets()),
            IpAddr::V6(a) => ctx.update(&a.octets()),
        }
        ctx.update(&spi_i.to_be_bytes());
        ctx.sign()
    }
}

/// The responder's cookie secrets.
#[derive(Default)]
pub(crate) struct CookieJar {
    current: Option<Secret>,
    previous: Option<Secret>,
}

impl core::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CookieJar").finish_non_exhaustive()
    }
}

impl CookieJar {
    /// Makes a new secret if there is none or the current one is too old.
    fn rotate(&mut self, now: Instant, random: &mut dyn Random) -> Result<(), RandomError> {
        let fresh = self
            .current
            .as_ref()
            .is_some_and(|s| now.saturating_duration_since(s.created) < SECRET_LIFETIME);
        if fresh {
            return Ok(());
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        random.fill(bytes.as_mut())?;
        let version = self
            .current
            .as_ref()
            .map_or(0, |s| s.version.wrapping_add(1));
        let next = Secret {
            version,
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes.as_ref()),
            created: now,
        };
        // A secret that has not been used for two lifetimes is gone
        // entirely, not kept as "previous".
        self.previous = self
            .current
            .take()
            .filter(|s| now.saturating_duration_since(s.created) < 2 * SECRET_LIFETIME);
        self.current = Some(next);
        Ok(())
    }

    /// The cookie for an initiator's Ni, address and SPIi.
    pub fn cookie(
        &mut self,
        now: Instant,
        random: &mut dyn Random,
        ni: &[u8],
        ip: IpAddr,
        spi_i: u64,
    ) -> Result<Vec<u8>, RandomError> {
        self.rotate(now, random)?;
        let secret = self.current.as_ref().ok_or(RandomError)?;
        let mut cookie = Vec::with_capacity(COOKIE_LEN);
        cookie.push(secret.version);
        cookie.extend_from_slice(secret.tag(ni, ip, spi_i).as_ref());
        Ok(cookie)
    }

    /// Whether `cookie` is one we made, with the current or the previous
    /// secret, for this Ni, address and SPIi.
    pub fn verify(
        &mut self,
        now: Instant,
        random: &mut dyn Random,
        cookie: &[u8],
        ni: &[u8],
        ip: IpAddr,
        spi_i: u64,
    ) -> bool {
        if self.rotate(now, random).is_err() || cookie.len() != COOKIE_LEN {
            return false;
        }
        let Some((&version, tag)) = cookie.split_first() else {
            return false;
        };
        let secret = [self.current.as_ref(), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|s| s.version == version);
        secret.is_some_and(|s| {
            constant_time::verify_slices_are_equal(s.tag(ni, ip, spi_i).as_ref(), tag).is_ok()
        })
    }
}

/// How often an initiator returns a fresh cookie before it gives up: a
/// responder whose secret rotated asks twice, one that keeps asking is
/// broken or hostile.
const MAX_COOKIE_RETRIES: u8 = 3;

/// Initiator: the cookie the responder gave us, returned first in every
/// IKE_SA_INIT request from then on (also after INVALID_KE_PAYLOAD, §2.7).
#[derive(Debug, Default)]
pub(crate) struct ReturnedCookie {
    data: Vec<u8>,
    retries: u8,
}

/// `request` with `N(COOKIE)` as its first payload, replacing one that
/// was there (RFC 7296 §2.6: the initiator retries with the cookie first).
pub(crate) fn with_cookie(request: &[u8], cookie: &[u8]) -> Option<Vec<u8>> {
    let mut header = IkeHeader::parse(request).ok()?;
    let body = request.get(IKE_HEADER_LEN..)?;
    let (first, rest) = match Payloads::new(header.next_payload, body).next() {
        Some(Ok(p))
            if p.payload_type == payload_type::N
                && Notify::parse(p.body).is_ok_and(|n| n.notify_type == notify_type::COOKIE) =>
        {
            (
                p.next_payload,
                body.get(PAYLOAD_HEADER_LEN + p.body.len()..)?,
            )
        }
        _ => (header.next_payload, body),
    };
    let notify_len = PAYLOAD_HEADER_LEN + 4 + cookie.len();
    let total = IKE_HEADER_LEN + notify_len + rest.len();
    header.next_payload = payload_type::N;
    header.length = u32::try_from(total).ok()?;
    let mut out = vec![0u8; IKE_HEADER_LEN];
    header.write(&mut out).ok()?;
    out.reserve(total - IKE_HEADER_LEN);
    // Generic payload header, then the Notify body: protocol 0, no SPI.
    out.extend_from_slice(&[first, 0]);
    out.extend_from_slice(&u16::try_from(notify_len).ok()?.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&notify_type::COOKIE.to_be_bytes());
    out.extend_from_slice(cookie);
    out.extend_from_slice(rest);
    Some(out)
}

impl Endpoint {
    /// Responder: whether a new IKE_SA_INIT request may create state.
    /// Above the half-open threshold it must carry a cookie we made for
    /// its Ni, source address and SPIi, else it is answered with one and
    /// forgotten; and its address must not have too many half-open IKE SAs.
    pub(crate) fn admit_ike_sa_init(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        header: &IkeHeader,
        request: &Received<'_>,
        ni: &[u8],
    ) -> bool {
        let peer = remote.ip();
        let spi_i = header.initiator_spi;
        let threshold = self.config.cookie_threshold;
        let per_peer = self.config.max_half_open_per_peer;
        if self.half_open.len() >= threshold || self.half_open.of_peer(peer) >= per_peer {
            let sas = &self.sas;
            self.half_open.retain(|spi| {
                sas.get(&spi)
                    .is_some_and(|sa| sa.state == State::InitAnswered)
            });
        }
        if self.half_open.len() >= threshold {
            let valid = request
                .notify_data(notify_type::COOKIE)
                .next()
                .is_some_and(|c| {
                    self.cookies
                        .verify(now, self.random.as_mut(), c, ni, peer, spi_i)
                });
            if !valid {
                self.counters.count(DropReason::CookieRequired);
                let cookie = self
                    .cookies
                    .cookie(now, self.random.as_mut(), ni, peer, spi_i);
                // The stateless answer: `N(COOKIE)` alone.
                let response = cookie
                    .ok()
                    .and_then(|c| init_notify_response(header, notify_type::COOKIE, &c).ok());
                if let Some(m) = response {
                    self.send(local, remote, m);
                }
                return false;
            }
        }
        if self.half_open.of_peer(peer) >= per_peer {
            self.counters.count(DropReason::HalfOpenLimit);
            return false;
        }
        true
    }

    /// Initiator: the responder answered IKE_SA_INIT with a COOKIE; send
    /// the request again with it first (same SPIi, Ni and KE, which the
    /// cookie is bound to).
    pub(crate) fn retry_with_cookie(&mut self, now: Instant, spi: u64, cookie: &[u8]) {
        let returned = self.returned_cookies.entry(spi).or_default();
        if returned.retries >= MAX_COOKIE_RETRIES || cookie.is_empty() || cookie.len() > 64 {
            return self.fail(
                spi,
                Stage::IkeSaInit,
                FailurePoint::Peer,
                FailureReason::CookieRefused,
            );
        }
        returned.retries += 1;
        returned.data = cookie.to_vec();
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let Some(request) = with_cookie(&sa.init_request, cookie) else {
            return self.fail(
                spi,
                Stage::IkeSaInit,
                FailurePoint::Local,
                FailureReason::Crypto,
            );
        };
        sa.init_request = request.clone();
        self.send_request(now, spi, 0, Purpose::IkeSaInit, request);
    }
}

/// Initiator: `request` with the cookie returned for IKE SA `spi`, if the
/// responder gave one.
pub(crate) fn with_returned_cookie(
    returned: &HashMap<u64, ReturnedCookie>,
    spi: u64,
    request: Vec<u8>,
) -> Vec<u8> {
    returned
        .get(&spi)
        .and_then(|c| with_cookie(&request, &c.data))
        .unwrap_or(request)
}

/// The half-open IKE SAs of a responder (IKE_SA_INIT answered, IKE_AUTH
/// not yet), counted in total and per peer address.
#[derive(Debug, Default)]
pub(crate) struct HalfOpen {
    by_spi: HashMap<u64, IpAddr>,
    per_peer: HashMap<IpAddr, usize>,
}

impl HalfOpen {
    /// How many there are.
    pub fn len(&self) -> usize {
        self.by_spi.len()
    }

    /// How many `peer` has.
    pub fn of_peer(&self, peer: IpAddr) -> usize {
        self.per_peer.get(&peer).copied().unwrap_or(0)
    }

    /// IKE SA `spi` with `peer` is half-open.
    pub fn insert(&mut self, spi: u64, peer: IpAddr) {
        if self.by_spi.insert(spi, peer).is_none() {
            *self.per_peer.entry(peer).or_insert(0) += 1;
        }
    }

    /// Keeps only the IKE SAs for which `still` holds. Leaving the
    /// half-open state happens in IKE_AUTH, which does not report it here,
    /// so the count is brought up to date before it is relied on.
    pub fn retain(&mut self, mut still: impl FnMut(u64) -> bool) {
        let gone: Vec<u64> = self
            .by_spi
            .keys()
            .copied()
            .filter(|spi| !still(*spi))
            .collect();
        for spi in gone {
            self.remove(spi);
        }
    }

    /// IKE SA `spi` is no longer half-open (established or gone).
    pub fn remove(&mut self, spi: u64) {
        let Some(peer) = self.by_spi.remove(&spi) else {
            return;
        };
        if let Some(n) = self.per_peer.get_mut(&peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_peer.remove(&peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u8);

    impl Random for Counter {
        fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
            self.0 = self.0.wrapping_add(1);
            buf.fill(self.0);
            Ok(())
        }
    }

    #[test]
    fn cookies_survive_one_rotation_and_no_more() {
        let mut jar = CookieJar::default();
        let mut random = Counter(0);
        let t0 = Instant::now();
        let ip = IpAddr::from([192, 0, 2, 9]);
        let cookie = jar
            .cookie(t0, &mut random, b"nonce", ip, 7)
            .unwrap_or_default();
        assert_eq!(cookie.len(), COOKIE_LEN);
        assert!(jar.verify(t0, &mut random, &cookie, b"nonce", ip, 7));
        assert!(!jar.verify(t0, &mut random, &cookie, b"nonce", ip, 8));
        assert!(!jar.verify(t0, &mut random, &cookie, b"other", ip, 7));
        let other = IpAddr::from([192, 0, 2, 10]);
        assert!(!jar.verify(t0, &mut random, &cookie, b"nonce", other, 7));
        let t1 = t0 + SECRET_LIFETIME;
        assert!(jar.verify(t1, &mut random, &cookie, b"nonce", ip, 7));
        let newer = jar
            .cookie(t1, &mut random, b"nonce", ip, 7)
            .unwrap_or_default();
        assert_ne!(newer, cookie);
        let t2 = t1 + SECRET_LIFETIME;
        assert!(!jar.verify(t2, &mut random, &cookie, b"nonce", ip, 7));
        assert!(jar.verify(t2, &mut random, &newer, b"nonce", ip, 7));
    }

    #[test]
    fn half_open_counts_per_peer() {
        let mut h = HalfOpen::default();
        let a = IpAddr::from([192, 0, 2, 1]);
        let b = IpAddr::from([192, 0, 2, 2]);
        h.insert(1, a);
        h.insert(1, a);
        h.insert(2, a);
        h.insert(3, b);
        assert_eq!((h.len(), h.of_peer(a), h.of_peer(b)), (3, 2, 1));
        h.remove(1);
        h.remove(1);
        h.remove(3);
        assert_eq!((h.len(), h.of_peer(a), h.of_peer(b)), (1, 1, 0));
    }
}
