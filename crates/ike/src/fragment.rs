//! IKE fragmentation (RFC 7383): an encrypted message too large for the
//! path goes out as several messages, each with one Encrypted Fragment
//! (SKF) payload sealed on its own, and is put together again on receipt.
//!
//! - Negotiated with IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT (§2.3),
//!   used only when both sides sent it.
//! - Sending (§2.5): a message whose sealed form is larger than the path
//!   allows ([`FragmentationConfig`]: 576-octet IPv4 and 1280-octet IPv6
//!   packets by default, §2.5.1) is cut into fragments of its inner payload
//!   chain; fragment 1 carries the first inner payload's type. The message
//!   is also sealed whole, and that form stays the name of the message in
//!   the retransmission machinery: [`crate::Endpoint`]'s `send` turns it
//!   into its fragments, so a retransmission resends every fragment, as
//!   sealed the first time (§2.6).
//! - Receiving (§2.6): each fragment's integrity is checked on arrival;
//!   fragments are kept per IKE SA, one request and one response at a time,
//!   bounded in count, bytes and age; duplicates are dropped; a larger
//!   Total Fragments for the same message restarts reassembly (the sender
//!   went to smaller fragments), a smaller one is dropped. Everything
//!   dropped is counted in [`crate::Counters::fragments_dropped`].
//! - A retransmitted request arriving in fragments is answered with the
//!   cached response on its first fragment.
//!
//! Only IKE_AUTH messages are fragmented and reassembled here; the other
//! exchanges' messages stay small.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use palisade_crypto::IkeProtection;
use palisade_wire::ikev2::{
    EncryptedFragment, IKE_HEADER_LEN, IkeHeader, MessageBuilder, PAYLOAD_HEADER_LEN, Payloads,
    exchange_type, payload_type,
};

use crate::Endpoint;
use crate::endpoint::Path;
use crate::error::DropReason;
use crate::ike_sa::State;
use crate::message::{BuildError, seal_chain};
use crate::retransmit::Purpose;

/// Fragment Number and Total Fragments before an SKF payload's IV.
const FRAGMENT_PREFIX: usize = palisade_wire::ikev2::sk::FRAGMENT_PREFIX_LEN;
/// IPv4 and IPv6 headers without options, and UDP's.
const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const UDP_HEADER: usize = 8;
/// The non-ESP marker in front of IKE on port 4500 (RFC 3948 §2.2).
const NON_ESP_MARKER: usize = 4;
/// Fragments never carry less than this much of the message, whatever the
/// configured packet size says.
const MIN_CHUNK: usize = 64;

/// Settings of IKE fragmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentationConfig {
    /// Announce IKEV2_FRAGMENTATION_SUPPORTED, and fragment when the peer
    /// announced it too.
    pub enabled: bool,
    /// Largest IPv4 packet a fragment may make (RFC 7383 §2.5.1: 576).
    pub max_packet_v4: usize,
    /// Largest IPv6 packet a fragment may make (RFC 7383 §2.5.1: 1280).
    pub max_packet_v6: usize,
    /// Most fragments accepted for one message.
    pub max_fragments: u16,
    /// Most octets of reassembled payloads accepted for one message.
    pub max_message: usize,
    /// How long an incomplete message is kept once its first fragment came.
    pub reassembly_timeout: Duration,
}

impl Default for FragmentationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_packet_v4: 576,
            max_packet_v6: 1280,
            max_fragments: 64,
            max_message: 64 * 1024,
            reassembly_timeout: Duration::from_secs(10),
        }
    }
}

impl FragmentationConfig {
    /// The largest IKE message (UDP payload, without the non-ESP marker)
    /// that fits one packet between `local` and `remote`.
    pub(crate) fn max_message_len(&self, local: SocketAddr, remote: SocketAddr) -> usize {
        let (packet, ip) = if remote.is_ipv4() {
            (self.max_packet_v4, IPV4_HEADER)
        } else {
            (self.max_packet_v6, IPV6_HEADER)
        };
        let marker = if local.port() == palisade_wire::NAT_T_PORT {
            NON_ESP_MARKER
        } else {
            0
        };
        packet.saturating_sub(ip + UDP_HEADER + marker)
    }
}

/// A message of the peer's being put together.
#[derive(Debug)]
pub(crate) struct Reassembly {
    message_id: u32,
    started: Instant,
    /// Fragment 1's Next Payload: the first inner payload's type.
    first_payload: Option<u8>,
    /// By Fragment Number - 1; the length is Total Fragments.
    fragments: Vec<Option<Vec<u8>>>,
    bytes: usize,
}

impl Reassembly {
    fn complete(&self) -> bool {
        self.first_payload.is_some() && self.fragments.iter().all(Option::is_some)
    }
}

/// A message of ours that went out in fragments: `whole` is its name in
/// `Outstanding` and `last_response`, `fragments` what is actually sent.
#[derive(Debug)]
pub(crate) struct SentFragments {
    response: bool,
    whole: Vec<u8>,
    fragments: Vec<Vec<u8>>,
}

/// The inner payload chain `inner` (first payload type `first`) sealed in
/// SKF fragments of at most `max_len` octets each.
fn seal_fragments(
    header: &IkeHeader,
    protection: &mut IkeProtection,
    first: u8,
    inner: &[u8],
    max_len: usize,
) -> Result<Vec<Vec<u8>>, BuildError> {
    // Worst-case padding is a block less one octet, plus Pad Length.
    let overhead = IKE_HEADER_LEN
        + PAYLOAD_HEADER_LEN
        + FRAGMENT_PREFIX
        + protection.iv_len()
        + protection.icv_len()
        + protection.block_size();
    let chunk = max_len.saturating_sub(overhead).max(MIN_CHUNK);
    let chunks: Vec<&[u8]> = inner.chunks(chunk).collect();
    let total =
        u16::try_from(chunks.len()).map_err(|_| palisade_wire::WireError::FieldOutOfRange)?;
    let mut header = *header;
    header.next_payload = 0;
    let mut out = Vec::with_capacity(chunks.len());
    for (i, piece) in chunks.iter().enumerate() {
        let number = u16::try_from(i + 1).map_err(|_| palisade_wire::WireError::FieldOutOfRange)?;
        let next = if number == 1 { first } else { 0 };
        let sk_len = protection.body_len(piece.len());
        let body_len = FRAGMENT_PREFIX + sk_len;
        let mut buf = vec![0u8; IKE_HEADER_LEN + PAYLOAD_HEADER_LEN + body_len];
        let mut m = MessageBuilder::new(&mut buf, &header)?;
        let body = m.push_encrypted(payload_type::SKF, next, body_len)?;
        m.finish()?;
        let prefix = buf
            .get_mut(body.start..body.start + FRAGMENT_PREFIX)
            .ok_or(palisade_wire::WireError::BufferTooSmall)?;
        EncryptedFragment::write_prefix(prefix, number, total)?;
        let iv_at = body.start + FRAGMENT_PREFIX;
        let plain_at = iv_at + protection.iv_len();
        buf.get_mut(plain_at..plain_at + piece.len())
            .ok_or(palisade_wire::WireError::BufferTooSmall)?
            .copy_from_slice(piece);
        protection.seal(&mut buf, iv_at, piece.len())?;
        out.push(buf);
    }
    Ok(out)
}

impl Endpoint {
    /// Seals an IKE_AUTH message of IKE SA `spi`: whole, and if both sides
    /// support fragmentation and it is too large for the path, also as
    /// fragments, remembered so that `send` transmits those instead.
    /// Returns the whole message.
    pub(crate) fn seal_message(
        &mut self,
        spi: u64,
        header: &IkeHeader,
        first: u8,
        inner: &[u8],
    ) -> Result<Vec<u8>, BuildError> {
        let config = self.config.fragmentation;
        let fragmentation = self.extensions.get(&spi).is_some_and(|e| e.fragmentation);
        let sa = self
            .sas
            .get_mut(&spi)
            .ok_or(palisade_wire::WireError::BadSubstructure)?;
        let max_len = config.max_message_len(sa.local, sa.remote);
        let keys = sa
            .keys
            .as_mut()
            .ok_or(palisade_wire::WireError::BadSubstructure)?;
        let whole = seal_chain(header, &mut keys.outbound, first, inner)?;
        if !fragmentation || whole.len() <= max_len {
            return Ok(whole);
        }
        let fragments = seal_fragments(header, &mut keys.outbound, first, inner, max_len)?;
        let response = header.is_response();
        let ext = self.extensions.entry(spi).or_default();
        ext.sent.retain(|s| s.response != response);
        ext.sent.push(SentFragments {
            response,
            whole: whole.clone(),
            fragments,
        });
        Ok(whole)
    }

    /// Our request of IKE SA `spi` was answered: its fragments will not be
    /// sent again.
    pub(crate) fn forget_sent_request(&mut self, spi: u64) {
        if let Some(ext) = self.extensions.get_mut(&spi) {
            ext.sent.retain(|s| s.response);
        }
    }

    /// The fragments a message we are sending was sealed in, if it was.
    pub(crate) fn fragments_of(&self, bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
        let header = IkeHeader::parse(bytes).ok()?;
        if header.next_payload != payload_type::SK {
            return None;
        }
        // We set the Initiator flag exactly when we are the initiator.
        let spi = if header.is_initiator() {
            header.initiator_spi
        } else {
            header.responder_spi
        };
        let ext = self.extensions.get(&spi)?;
        ext.sent
            .iter()
            .find(|s| s.whole == bytes)
            .map(|s| s.fragments.clone())
    }

    fn drop_fragment(&mut self, reason: DropReason) {
        self.counters.fragments_dropped += 1;
        self.counters.count(reason);
    }

    /// A message of IKE SA `spi` whose first payload is SKF.
    pub(crate) fn handle_fragment(
        &mut self,
        now: Instant,
        spi: u64,
        path: Path,
        header: &IkeHeader,
        bytes: &[u8],
    ) {
        let negotiated = self.extensions.get(&spi).is_some_and(|e| e.fragmentation);
        let Some(sa) = self.sas.get(&spi) else { return };
        let Some(keys) = sa.keys.as_ref().filter(|_| negotiated) else {
            return self.drop_fragment(DropReason::Unexpected);
        };
        // SKF must be the only payload (§2.5).
        let Some(Ok(skf)) = Payloads::new(
            payload_type::SKF,
            bytes.get(IKE_HEADER_LEN..).unwrap_or_default(),
        )
        .next() else {
            return self.drop_fragment(DropReason::Malformed);
        };
        let iv_at = IKE_HEADER_LEN + PAYLOAD_HEADER_LEN + FRAGMENT_PREFIX;
        if IKE_HEADER_LEN + PAYLOAD_HEADER_LEN + skf.body.len() != bytes.len() {
            return self.drop_fragment(DropReason::Malformed);
        }
        let Ok(fragment) =
            EncryptedFragment::parse(skf.body, keys.inbound.iv_len(), keys.inbound.icv_len())
        else {
            return self.drop_fragment(DropReason::Malformed);
        };
        let (number, total) = (fragment.fragment_number, fragment.total_fragments);
        let id = header.message_id;
        let response = header.is_response();
        // Which message this may belong to (RFC 7296 §2.3, window 1).
        let retransmitted = if response {
            if sa.outstanding.as_ref().is_none_or(|o| o.message_id != id) {
                return self.drop_fragment(DropReason::InvalidMessageId);
            }
            false
        } else if id == sa.peer_next_id {
            false
        } else if sa
            .last_response
            .as_ref()
            .is_some_and(|(last, _)| *last == id)
        {
            true
        } else {
            return self.drop_fragment(DropReason::InvalidMessageId);
        };
        let mut plain = bytes.to_vec();
        let Ok(range) = keys.inbound.open(&mut plain, iv_at) else {
            return self.drop_fragment(DropReason::Integrity);
        };
        self.counters.fragments_received += 1;
        self.authenticated(spi, path);
        if retransmitted {
            // The whole response again, once per retransmitted request.
            if number == 1
                && let Some(sa) = self.sas.get(&spi)
                && let Some((_, cached)) = sa.last_response.clone()
            {
                self.counters.count(DropReason::Retransmission);
                let (local, remote) = (sa.local, sa.remote);
                self.send(local, remote, cached);
            } else {
                self.counters.fragments_dropped += 1;
            }
            return;
        }
        let chunk = plain.get(range).unwrap_or_default().to_vec();
        let first = (number == 1).then_some(skf.next_payload);
        let Some(inner) = self.reassemble(now, spi, response, id, number, total, first, chunk)
        else {
            return;
        };
        let Some(sa) = self.sas.get(&spi) else { return };
        let Some(first) = inner.0 else { return };
        match (response, header.exchange_type, sa.state) {
            (false, exchange_type::IKE_AUTH, State::InitAnswered) => {
                self.respond_ike_auth_inner(now, spi, id, first, &inner.1);
            }
            (true, exchange_type::IKE_AUTH, _)
                if sa
                    .outstanding
                    .as_ref()
                    .is_some_and(|o| o.purpose == Purpose::IkeAuth) =>
            {
                self.handle_ike_auth_response_inner(now, spi, first, &inner.1);
            }
            _ => self.counters.count(DropReason::Unsupported),
        }
    }

    /// Adds a checked fragment; the first payload type and the inner
    /// payload chain once the message is complete.
    #[allow(clippy::too_many_arguments)]
    fn reassemble(
        &mut self,
        now: Instant,
        spi: u64,
        response: bool,
        message_id: u32,
        number: u16,
        total: u16,
        first: Option<u8>,
        chunk: Vec<u8>,
    ) -> Option<(Option<u8>, Vec<u8>)> {
        let config = self.config.fragmentation;
        if total > config.max_fragments {
            self.counters.fragments_dropped += 1;
            return None;
        }
        let ext = self.extensions.entry(spi).or_default();
        let slot = if response {
            &mut ext.response_in
        } else {
            &mut ext.request_in
        };
        let stale = slot.as_ref().is_some_and(|r| {
            r.message_id != message_id
                || now.saturating_duration_since(r.started) > config.reassembly_timeout
                || r.fragments.len() < usize::from(total)
        });
        let mut dropped = 0u64;
        if stale {
            // Another message, too old, or the sender went to smaller
            // fragments: what was kept is of no use.
            if let Some(old) = slot.take() {
                dropped += old.fragments.iter().flatten().count() as u64;
            }
        }
        let r = slot.get_or_insert_with(|| Reassembly {
            message_id,
            started: now,
            first_payload: None,
            fragments: vec![None; usize::from(total)],
            bytes: 0,
        });
        let index = usize::from(number).saturating_sub(1);
        let result = if r.fragments.len() != usize::from(total)
            || r.fragments.get(index).is_none_or(Option::is_some)
        {
            // Fewer fragments than the message being reassembled, or a
            // duplicate.
            dropped += 1;
            None
        } else if r.bytes + chunk.len() > config.max_message {
            dropped += 1 + r.fragments.iter().flatten().count() as u64;
            *slot = None;
            None
        } else {
            r.bytes += chunk.len();
            if first.is_some() {
                r.first_payload = first;
            }
            if let Some(place) = r.fragments.get_mut(index) {
                *place = Some(chunk);
            }
            if r.complete() {
                let done = slot.take()?;
                let inner: Vec<u8> = done.fragments.into_iter().flatten().flatten().collect();
                Some((done.first_payload, inner))
            } else {
                None
            }
        };
        self.counters.fragments_dropped += dropped;
        if result.is_some() {
            self.counters.messages_reassembled += 1;
        }
        result
    }
}
