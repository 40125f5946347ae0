//! IKE_INTERMEDIATE (RFC 9242) carrying the additional key exchanges of
//! RFC 9370, e.g. ML-KEM-768 after a classic IKE_SA_INIT.
//!
//! After IKE_SA_INIT, when the chosen proposal has ADDKE transforms and
//! both sides sent INTERMEDIATE_EXCHANGE_SUPPORTED, the initiator runs one
//! IKE_INTERMEDIATE exchange per additional key exchange, in ADDKE order,
//! each with one KE payload in the SK payload. After each the keys are
//! replaced (RFC 9370 §2.2.2):
//!
//! ```text
//! SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)
//! {SK_d(n) | SK_ai(n) | ... | SK_pr(n)} = prf+(SKEYSEED(n), Ni | Nr | SPIi | SPIr)
//! ```
//!
//! and every message is folded into the IntAuth chains that IKE_AUTH
//! then signs (RFC 9242 §3.3.2):
//!
//! ```text
//! IntAuth_iN = prf(SK_piN, IntAuth_i(N-1) | IntAuth_iN_A | IntAuth_iN_P)
//! IntAuth_rN = prf(SK_prN, IntAuth_r(N-1) | IntAuth_rN_A | IntAuth_rN_P)
//! IntAuth    = IntAuth_iN | IntAuth_rN | IKE_AUTH_MID
//! ```
//!
//! with SK_p the keys that protected exchange N, `_A` the message up to
//! the Encrypted payload's IV with both Length fields counting only the
//! plaintext, and `_P` the plaintext inner payloads. So an IKE_INTERMEDIATE
//! message that one side saw differently from the other makes IKE_AUTH fail.
//!
//! Not done: fragmenting IKE_INTERMEDIATE messages (RFC 7383 allows it;
//! ours go out whole, about 1.3 kB with ML-KEM-768), and additional key
//! exchanges in CREATE_CHILD_SA (RFC 9370 §2.2.3, §2.2.4: IKE_FOLLOWUP_KE).

use std::collections::VecDeque;
use std::time::Instant;

use palisade_crypto::{KeId, KeyExchange as Ke, Prf, PrfOutput};
use palisade_wire::ikev2::{
    IKE_HEADER_LEN, IkeHeader, KeyExchange, PAYLOAD_HEADER_LEN, exchange_type, notify_type,
    payload_type,
};

use crate::Endpoint;
use crate::endpoint::Path;
use crate::error::{DropReason, FailurePoint, FailureReason, Role, Stage};
use crate::message::{Received, chain, seal_chain};
use crate::retransmit::Purpose;

/// Where an IKE SA stands in its IKE_INTERMEDIATE exchanges. Kept beside
/// the [`crate::ike_sa::IkeSa`] under the same SPI and removed with it.
#[derive(Debug, Default)]
pub(crate) struct Intermediate {
    /// The additional key exchanges still to run, in ADDKE order; the
    /// first is the one in flight.
    pending: VecDeque<KeId>,
    /// Initiator: our side of the key exchange in flight.
    ke: Option<Ke>,
    /// IntAuth_i(n) and IntAuth_r(n) after the exchanges done so far.
    int_auth_i: Option<PrfOutput>,
    int_auth_r: Option<PrfOutput>,
    /// The message ID of the IKE_AUTH request, once all are done.
    auth_message_id: Option<u32>,
}

impl Intermediate {
    /// Additional key exchanges `methods` to run.
    pub(crate) fn new(methods: impl IntoIterator<Item = KeId>) -> Self {
        Self {
            pending: methods.into_iter().collect(),
            ..Self::default()
        }
    }

    /// Whether IKE_AUTH must still wait.
    pub(crate) fn is_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// `IntAuth_iN | IntAuth_rN | IKE_AUTH_MID`, once every exchange is done.
    pub(crate) fn int_auth(&self) -> Option<Vec<u8>> {
        let (i, r, mid) = (
            self.int_auth_i.as_ref()?,
            self.int_auth_r.as_ref()?,
            self.auth_message_id?,
        );
        if self.is_pending() {
            return None;
        }
        Some([i.as_ref(), r.as_ref(), &mid.to_be_bytes()].concat())
    }
}

/// One step of an IntAuth chain (RFC 9242 §3.3.2):
/// `prf(SK_p, previous | A | P)` over `message` whose Encrypted payload's
/// IV starts at `iv_at` and whose inner payloads are `inner` in plaintext.
/// `A` is `message[..iv_at]` with the IKE header's and the Encrypted
/// payload header's Length fields set as if the Encrypted payload held
/// `inner` alone. `None` if `message` is shorter than that.
pub(crate) fn int_auth_step(
    prf: Prf,
    sk_p: &[u8],
    previous: Option<&PrfOutput>,
    message: &[u8],
    iv_at: usize,
    inner: &[u8],
) -> Option<PrfOutput> {
    let mut a = message.get(..iv_at)?.to_vec();
    let sk_header = iv_at.checked_sub(PAYLOAD_HEADER_LEN)?;
    if sk_header < IKE_HEADER_LEN {
        return None;
    }
    let message_len = u32::try_from(iv_at.checked_add(inner.len())?).ok()?;
    let sk_len = u16::try_from(PAYLOAD_HEADER_LEN.checked_add(inner.len())?).ok()?;
    a.get_mut(24..28)?
        .copy_from_slice(&message_len.to_be_bytes());
    a.get_mut(sk_header + 2..sk_header + 4)?
        .copy_from_slice(&sk_len.to_be_bytes());
    let previous = previous.map_or(&[][..], |p| p.as_ref());
    Some(prf.prf_parts(sk_p, &[previous, &a, inner]))
}

/// The inner payloads of an IKE_INTERMEDIATE message: one KE payload.
fn ke_chain(method: KeId, data: &[u8]) -> Result<(u8, Vec<u8>), palisade_wire::WireError> {
    chain(|b| {
        b.push(
            payload_type::KE,
            false,
            &KeyExchange {
                dh_group: method.into(),
                data,
            },
        )
    })
}

/// Where the IV starts in a message we sealed: no unencrypted payloads.
const OUR_IV_AT: usize = IKE_HEADER_LEN + PAYLOAD_HEADER_LEN;

impl Endpoint {
    /// `IntAuth_iN | IntAuth_rN | IKE_AUTH_MID` for IKE SA `spi`'s
    /// IKE_AUTH; empty if it had no IKE_INTERMEDIATE exchange.
    pub(crate) fn int_auth(&self, spi: u64) -> Vec<u8> {
        self.intermediate
            .get(&spi)
            .and_then(Intermediate::int_auth)
            .unwrap_or_default()
    }

    /// Whether IKE SA `spi` still has IKE_INTERMEDIATE exchanges to run.
    pub(crate) fn intermediate_pending(&self, spi: u64) -> bool {
        self.intermediate
            .get(&spi)
            .is_some_and(Intermediate::is_pending)
    }

    /// Initiator: the next IKE_INTERMEDIATE request, or IKE_AUTH when all
    /// additional key exchanges are done.
    pub(crate) fn send_ike_intermediate(&mut self, now: Instant, spi: u64) {
        let fail = |this: &mut Self, reason| {
            this.fail(spi, Stage::IkeIntermediate, FailurePoint::Local, reason);
        };
        let (Some(sa), Some(state)) = (self.sas.get_mut(&spi), self.intermediate.get_mut(&spi))
        else {
            return;
        };
        let Some(&method) = state.pending.front() else {
            state.auth_message_id = Some(sa.next_message_id);
            return self.send_ike_auth(now, spi);
        };
        let Ok(ke) = Ke::generate(method) else {
            return fail(self, FailureReason::Crypto);
        };
        let message_id = sa.next_message_id;
        let header = sa.header(exchange_type::IKE_INTERMEDIATE, message_id, false);
        let Some(keys) = sa.keys.as_mut() else { return };
        let Ok((first, inner)) = ke_chain(method, ke.public_value()) else {
            return fail(self, FailureReason::Crypto);
        };
        let Ok(request) = seal_chain(&header, &mut keys.outbound, first, &inner) else {
            return fail(self, FailureReason::Crypto);
        };
        let Some(int_auth_i) = int_auth_step(
            keys.prf,
            keys.sk.sk_pi(),
            state.int_auth_i.as_ref(),
            &request,
            OUR_IV_AT,
            &inner,
        ) else {
            return fail(self, FailureReason::Crypto);
        };
        state.int_auth_i = Some(int_auth_i);
        state.ke = Some(ke);
        sa.next_message_id = message_id.wrapping_add(1);
        sa.outstanding = None;
        self.send_request(now, spi, message_id, Purpose::IkeIntermediate, request);
    }

    /// Initiator: the IKE_INTERMEDIATE response: the responder's KE data,
    /// IntAuth_r, new keys, then the next exchange or IKE_AUTH.
    pub(crate) fn handle_ike_intermediate_response(
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
        let fail = |this: &mut Self, point, reason| {
            this.fail(spi, Stage::IkeIntermediate, point, reason);
        };
        let inner = opened.inner();
        let Ok(p) = Received::gather(opened.first, inner, inner.len()) else {
            return fail(
                self,
                FailurePoint::Local,
                FailureReason::Protocol("malformed IKE_INTERMEDIATE response"),
            );
        };
        if let Some(err) = p.error() {
            return fail(
                self,
                FailurePoint::Peer,
                FailureReason::PeerError(err.notify_type),
            );
        }
        let (Some(sa), Some(state)) = (self.sas.get_mut(&spi), self.intermediate.get_mut(&spi))
        else {
            return;
        };
        let (Some(keys), Some(ke)) = (sa.keys.as_ref(), state.ke.take()) else {
            return;
        };
        let secret = match p.ke {
            Some(k) if k.dh_group == u16::from(ke.id()) => ke.shared_secret(k.data),
            _ => {
                return fail(
                    self,
                    FailurePoint::Local,
                    FailureReason::Protocol("IKE_INTERMEDIATE response without the KE chosen"),
                );
            }
        };
        let Ok(secret) = secret else {
            return fail(
                self,
                FailurePoint::Local,
                FailureReason::Protocol("invalid key exchange value"),
            );
        };
        let Some(int_auth_r) = opened.outer.sk.and_then(|(_, iv_at)| {
            int_auth_step(
                keys.prf,
                keys.sk.sk_pr(),
                state.int_auth_r.as_ref(),
                bytes,
                iv_at,
                inner,
            )
        }) else {
            return fail(self, FailurePoint::Local, FailureReason::Crypto);
        };
        let Ok(next) = keys.after_additional_exchange(
            Role::Initiator,
            secret.as_ref(),
            &sa.ni,
            &sa.nr,
            sa.spi_i,
            sa.spi_r,
        ) else {
            return fail(self, FailurePoint::Local, FailureReason::Crypto);
        };
        state.int_auth_r = Some(int_auth_r);
        state.pending.pop_front();
        sa.keys = Some(next);
        sa.outstanding = None;
        self.send_ike_intermediate(now, spi);
    }

    /// Responder: an IKE_INTERMEDIATE request with the next additional key
    /// exchange's KE payload.
    pub(crate) fn respond_ike_intermediate(
        &mut self,
        spi: u64,
        path: Path,
        header: &IkeHeader,
        bytes: &[u8],
    ) {
        let Some(method) = self
            .intermediate
            .get(&spi)
            .and_then(|s| s.pending.front().copied())
        else {
            self.counters.count(DropReason::Unexpected);
            return;
        };
        let Some(opened) = self.open_protected(spi, path, header, bytes) else {
            return;
        };
        let message_id = header.message_id;
        let inner = opened.inner();
        let peer_ke = Received::gather(opened.first, inner, inner.len())
            .ok()
            .and_then(|p| p.ke)
            .filter(|k| k.dh_group == u16::from(method));
        // RFC 9370 §2.2.2: a missing KE or another method is INVALID_SYNTAX.
        let Some(Ok((ke, secret))) = peer_ke.map(|k| Ke::respond(method, k.data)) else {
            let exchange = exchange_type::IKE_INTERMEDIATE;
            self.answer_error(spi, exchange, message_id, notify_type::INVALID_SYNTAX);
            return self.fail(
                spi,
                Stage::IkeIntermediate,
                FailurePoint::Local,
                FailureReason::Protocol("IKE_INTERMEDIATE without a valid KE of the chosen method"),
            );
        };
        let fail = |this: &mut Self| {
            this.fail(
                spi,
                Stage::IkeIntermediate,
                FailurePoint::Local,
                FailureReason::Crypto,
            );
        };
        let (Some(sa), Some(state)) = (self.sas.get_mut(&spi), self.intermediate.get_mut(&spi))
        else {
            return;
        };
        let h = sa.header(exchange_type::IKE_INTERMEDIATE, message_id, true);
        let Some(keys) = sa.keys.as_mut() else { return };
        let Some(int_auth_i) = opened.outer.sk.and_then(|(_, iv_at)| {
            int_auth_step(
                keys.prf,
                keys.sk.sk_pi(),
                state.int_auth_i.as_ref(),
                bytes,
                iv_at,
                inner,
            )
        }) else {
            return fail(self);
        };
        let Ok((first, our_inner)) = ke_chain(method, ke.public_value()) else {
            return fail(self);
        };
        let Ok(response) = seal_chain(&h, &mut keys.outbound, first, &our_inner) else {
            return fail(self);
        };
        let Some(int_auth_r) = int_auth_step(
            keys.prf,
            keys.sk.sk_pr(),
            state.int_auth_r.as_ref(),
            &response,
            OUR_IV_AT,
            &our_inner,
        ) else {
            return fail(self);
        };
        let Ok(next) = keys.after_additional_exchange(
            Role::Responder,
            secret.as_ref(),
            &sa.ni,
            &sa.nr,
            sa.spi_i,
            sa.spi_r,
        ) else {
            return fail(self);
        };
        state.int_auth_i = Some(int_auth_i);
        state.int_auth_r = Some(int_auth_r);
        state.pending.pop_front();
        let next_id = message_id.wrapping_add(1);
        if !state.is_pending() {
            state.auth_message_id = Some(next_id);
        }
        sa.keys = Some(next);
        let (local, remote) = sa.answered(message_id, &response);
        self.send(local, remote, response);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_crypto::prf::PrfId;

    /// A message as `seal_chain` lays it out, with `inner` in place of the
    /// ciphertext and 16 octets each of IV and ICV.
    fn message(inner: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; OUR_IV_AT];
        m[18] = exchange_type::IKE_INTERMEDIATE;
        m.extend_from_slice(&[0xaa; 16]);
        m.extend_from_slice(inner);
        m.extend_from_slice(&[0xbb; 16]);
        let len = m.len() as u32;
        m[24..28].copy_from_slice(&len.to_be_bytes());
        let sk_len = (m.len() - IKE_HEADER_LEN) as u16;
        m[IKE_HEADER_LEN + 2..IKE_HEADER_LEN + 4].copy_from_slice(&sk_len.to_be_bytes());
        m
    }

    #[test]
    fn int_auth_covers_a_with_plaintext_lengths_and_p() {
        let prf = Prf::new(PrfId::HmacSha2_256);
        let inner = [1u8, 2, 3, 4, 5];
        let m = message(&inner);
        let got = int_auth_step(prf, b"sk_p", None, &m, OUR_IV_AT, &inner).expect("test setup");
        let mut a = m[..OUR_IV_AT].to_vec();
        a[24..28].copy_from_slice(&(OUR_IV_AT as u32 + 5).to_be_bytes());
        a[IKE_HEADER_LEN + 2..IKE_HEADER_LEN + 4].copy_from_slice(&9u16.to_be_bytes());
        assert_eq!(got.as_ref(), prf.prf_parts(b"sk_p", &[&a, &inner]).as_ref());
        // Chained: the previous value goes first.
        let next =
            int_auth_step(prf, b"sk_p2", Some(&got), &m, OUR_IV_AT, &inner).expect("test setup");
        assert_eq!(
            next.as_ref(),
            prf.prf_parts(b"sk_p2", &[got.as_ref(), &a, &inner])
                .as_ref()
        );
    }

    #[test]
    fn any_change_in_the_message_changes_int_auth() {
        let prf = Prf::new(PrfId::HmacSha2_256);
        let inner = [7u8; 40];
        let m = message(&inner);
        let reference = int_auth_step(prf, b"k", None, &m, OUR_IV_AT, &inner).expect("test setup");
        let mut tampered_header = m.clone();
        tampered_header[19] ^= 0x01; // a flag
        let mut tampered_inner = inner;
        tampered_inner[3] ^= 0x80;
        for (msg, inn) in [(&tampered_header, &inner), (&m, &tampered_inner)] {
            let other = int_auth_step(prf, b"k", None, msg, OUR_IV_AT, inn).expect("test setup");
            assert_ne!(other.as_ref(), reference.as_ref());
        }
        // IV and ICV are not covered: they differ between the two sides'
        // view only if the SK payload would not open anyway.
        let mut other_iv = m.clone();
        other_iv[OUR_IV_AT] ^= 1;
        let same =
            int_auth_step(prf, b"k", None, &other_iv, OUR_IV_AT, &inner).expect("test setup");
        assert_eq!(same.as_ref(), reference.as_ref());
        // Too short a message is refused, not a panic.
        assert!(int_auth_step(prf, b"k", None, &m[..20], OUR_IV_AT, &inner).is_none());
        assert!(int_auth_step(prf, b"k", None, &m, 10, &inner).is_none());
    }

    /// Two endpoints in process, hybrid policy, messages handed over by
    /// hand: the endpoints, and A's IKE_AUTH request once both sides ran
    /// the IKE_INTERMEDIATE exchange.
    fn up_to_ike_auth() -> (Endpoint, Endpoint, Vec<u8>) {
        use crate::endpoint::EndpointConfig;
        use crate::policy::{Acquire, IkePolicy, QuickModePolicy, StaticPolicy};
        use palisade_filter::policy::{
            AuthenticationMethod, DhGroup, IkeCipher, IkeIntegrity, IpsecProposal,
            IpsecTransportPolicy, MainModePolicy, MainModeProposal,
        };
        let (a, b): (std::net::SocketAddr, std::net::SocketAddr) = (
            "192.0.2.1:500".parse().expect("test setup"),
            "192.0.2.2:500".parse().expect("test setup"),
        );
        let policy = |peer: std::net::SocketAddr| {
            let ike = IkePolicy::new(MainModePolicy::new(
                [AuthenticationMethod::preshared_key("k")],
                vec![MainModeProposal::new(
                    IkeCipher::AesGcm128,
                    IkeIntegrity::Sha256,
                    DhGroup::Curve25519,
                )],
            ))
            .with_additional_key_exchanges([KeId::MlKem768], true);
            StaticPolicy::new().with_peer(
                Some(peer.ip()),
                ike,
                Some(QuickModePolicy::Transport(IpsecTransportPolicy::new(vec![
                    IpsecProposal::esp_aes128_gcm(),
                ]))),
            )
        };
        let now = Instant::now();
        let mut ea = Endpoint::new(EndpointConfig::default(), policy(b));
        let mut eb = Endpoint::new(EndpointConfig::default(), policy(a));
        ea.handle_acquire(
            now,
            Acquire {
                local: a,
                remote: b,
                traffic: None,
            },
        );
        let mut to_b = ea.poll_transmit().expect("test setup").bytes;
        for _ in 0..2 {
            eb.handle_datagram(now, b, a, &to_b);
            let to_a = eb.poll_transmit().expect("test setup").bytes;
            ea.handle_datagram(now, a, b, &to_a);
            to_b = ea.poll_transmit().expect("test setup").bytes;
        }
        assert_eq!(
            IkeHeader::parse(&to_b).expect("test setup").exchange_type,
            exchange_type::IKE_AUTH
        );
        (ea, eb, to_b)
    }

    #[test]
    fn an_int_auth_that_differs_fails_authentication_not_a_panic() {
        // The unaltered run authenticates.
        let (_, mut eb, auth) = up_to_ike_auth();
        let now = Instant::now();
        let (a, b) = (
            "192.0.2.1:500".parse().expect("test setup"),
            "192.0.2.2:500".parse().expect("test setup"),
        );
        eb.handle_datagram(now, b, a, &auth);
        assert!(
            core::iter::from_fn(|| eb.poll_event())
                .any(|e| matches!(e, crate::Event::IkeSaEstablished(_)))
        );
        // As if the responder had seen a different IKE_INTERMEDIATE request
        // (what an attacker holding the pre-AUTH keys could cause): its
        // IntAuth_i differs, so the initiator's AUTH does not verify.
        let (_, mut eb, auth) = up_to_ike_auth();
        for state in eb.intermediate.values_mut() {
            let prf = Prf::new(palisade_crypto::prf::PrfId::HmacSha2_256);
            state.int_auth_i = Some(prf.prf(b"other", b"message"));
        }
        eb.handle_datagram(now, b, a, &auth);
        let events: Vec<_> = core::iter::from_fn(|| eb.poll_event()).collect();
        assert!(
            events.iter().any(|e| matches!(e, crate::Event::Failure(f)
                if f.stage == Stage::IkeAuth && f.reason == FailureReason::AuthenticationFailed)),
            "{events:?}"
        );
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, crate::Event::IkeSaEstablished(_)))
        );
    }

    #[test]
    fn int_auth_is_complete_only_after_the_last_exchange() {
        let prf = Prf::new(PrfId::HmacSha2_256);
        let mut s = Intermediate::new([KeId::MlKem768]);
        assert!(s.is_pending());
        assert_eq!(s.int_auth(), None);
        s.int_auth_i = Some(prf.prf(b"i", b"x"));
        s.int_auth_r = Some(prf.prf(b"r", b"x"));
        s.pending.pop_front();
        s.auth_message_id = Some(2);
        let all = s.int_auth().expect("test setup");
        assert_eq!(all.len(), 32 + 32 + 4);
        assert_eq!(&all[64..], &[0, 0, 0, 2]);
    }
}
