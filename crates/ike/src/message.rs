//! Reading and writing whole IKE messages: the payloads of a message
//! gathered by type, and messages built plain (IKE_SA_INIT) or with their
//! payloads inside an SK payload.

use palisade_crypto::{CryptoError, IkeProtection};
use palisade_wire::WireError;
use palisade_wire::ikev2::{
    Auth, Certificate, CertificateRequest, Delete, IKE_HEADER_LEN, IKE_MAJOR_VERSION, IkeHeader,
    KeyExchange, MessageBuilder, Nonce, Notify, PAYLOAD_HEADER_LEN, Payloads, SecurityAssociation,
    TrafficSelectors, exchange_type, flags, payload_type,
};

/// Largest message this implementation writes: room for a chain of
/// RSA-4096 certificates in IKE_AUTH, which then goes out in fragments
/// (RFC 7383) where the peer supports them.
const MAX_MESSAGE: usize = 32 * 1024;

/// The payloads of one message (or of one SK payload's plaintext), checked
/// and sorted by type. Singular payloads appearing twice make the message
/// malformed; unknown non-critical payloads are skipped.
#[derive(Debug, Default)]
pub(crate) struct Received<'a> {
    pub sa: Option<SecurityAssociation<'a>>,
    pub ke: Option<KeyExchange<'a>>,
    pub nonce: Option<&'a [u8]>,
    /// IDi body (what MACedIDForI covers).
    pub idi: Option<&'a [u8]>,
    /// IDr body.
    pub idr: Option<&'a [u8]>,
    pub auth: Option<Auth<'a>>,
    pub tsi: Option<TrafficSelectors<'a>>,
    pub tsr: Option<TrafficSelectors<'a>>,
    pub notifies: Vec<Notify<'a>>,
    pub deletes: Vec<Delete<'a>>,
    /// CERT payloads, in order (the first is the end entity's).
    pub certs: Vec<Certificate<'a>>,
    /// CERTREQ payloads.
    pub certreqs: Vec<CertificateRequest<'a>>,
    /// The SK payload: its Next Payload (first inner type) and where its
    /// body starts in the message.
    pub sk: Option<(u8, usize)>,
}

fn once<T>(slot: &mut Option<T>, value: T) -> Result<(), WireError> {
    if slot.is_some() {
        return Err(WireError::BadSubstructure);
    }
    *slot = Some(value);
    Ok(())
}

impl<'a> Received<'a> {
    /// Gathers the chain that starts with type `first` and fills `buf`;
    /// `message_len` is the length of the whole message `buf` ends, to
    /// locate an SK body.
    pub fn gather(first: u8, buf: &'a [u8], message_len: usize) -> Result<Self, WireError> {
        let mut r = Self::default();
        for p in Payloads::new(first, buf) {
            let p = p?;
            match p.payload_type {
                payload_type::SA => once(&mut r.sa, SecurityAssociation::parse(p.body)?)?,
                payload_type::KE => once(&mut r.ke, KeyExchange::parse(p.body)?)?,
                payload_type::NONCE => once(&mut r.nonce, Nonce::parse(p.body)?.data)?,
                payload_type::IDI => {
                    palisade_wire::ikev2::Identification::parse(p.body)?;
                    once(&mut r.idi, p.body)?;
                }
                payload_type::IDR => {
                    palisade_wire::ikev2::Identification::parse(p.body)?;
                    once(&mut r.idr, p.body)?;
                }
                payload_type::AUTH => once(&mut r.auth, Auth::parse(p.body)?)?,
                payload_type::TSI => once(&mut r.tsi, TrafficSelectors::parse(p.body)?)?,
                payload_type::TSR => once(&mut r.tsr, TrafficSelectors::parse(p.body)?)?,
                payload_type::N => r.notifies.push(Notify::parse(p.body)?),
                payload_type::D => r.deletes.push(Delete::parse(p.body)?),
                payload_type::CERT => r.certs.push(Certificate::parse(p.body)?),
                payload_type::CERTREQ => r.certreqs.push(CertificateRequest::parse(p.body)?),
                payload_type::SK => {
                    let at = message_len
                        .checked_sub(p.body.len())
                        .ok_or(WireError::PayloadLength)?;
                    once(&mut r.sk, (p.next_payload, at))?;
                }
                // V, CP, EAP, SKF and unknown non-critical
                // payloads carry nothing this implementation acts on.
                _ => {}
            }
        }
        Ok(r)
    }

    /// The first error notification, if any.
    pub fn error(&self) -> Option<&Notify<'a>> {
        self.notifies
            .iter()
            .find(|n| palisade_wire::ikev2::notify_type::is_error(n.notify_type))
    }

    /// Whether a status notification of `kind` is present.
    pub fn has_notify(&self, kind: u16) -> bool {
        self.notifies.iter().any(|n| n.notify_type == kind)
    }

    /// The data of every notification of `kind`.
    pub fn notify_data(&self, kind: u16) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.notifies
            .iter()
            .filter(move |n| n.notify_type == kind)
            .map(|n| n.data)
    }
}

/// Opens the SK payload of `datagram` (whose payloads are `outer`) into a
/// fresh buffer; returns the buffer and the inner payloads' range.
pub(crate) fn open_sk(
    datagram: &[u8],
    outer: &Received<'_>,
    protection: &IkeProtection,
) -> Option<(Vec<u8>, u8, core::ops::Range<usize>)> {
    let (first, at) = outer.sk?;
    let mut plain = datagram.to_vec();
    let range = protection.open(&mut plain, at).ok()?;
    Some((plain, first, range))
}

/// Why a message could not be built: our own bug or an aws-lc failure,
/// never the peer's doing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    #[error("encoding: {0}")]
    Wire(#[from] WireError),
    #[error("sealing: {0}")]
    Seal(#[from] CryptoError),
}

/// Builds a message without encryption (IKE_SA_INIT).
pub(crate) fn plain(
    header: &IkeHeader,
    mut fill: impl FnMut(&mut MessageBuilder<'_>) -> Result<(), WireError>,
) -> Result<Vec<u8>, WireError> {
    with_room(|size| {
        let mut buf = vec![0u8; size];
        let mut b = MessageBuilder::new(&mut buf, header)?;
        fill(&mut b)?;
        let len = b.finish()?;
        buf.truncate(len);
        Ok(buf)
    })
}

/// An unprotected IKE_SA_INIT response of one Notify, from no SA
/// (responder SPI zero): the stateless cookie answer (RFC 7296 §2.6) and
/// the error answers (§2.21.1) are this same message with another
/// notification, so one function builds both.
pub(crate) fn init_notify_response(
    request: &IkeHeader,
    notify: u16,
    data: &[u8],
) -> Result<Vec<u8>, WireError> {
    let header = IkeHeader {
        initiator_spi: request.initiator_spi,
        responder_spi: 0,
        next_payload: 0,
        major_version: IKE_MAJOR_VERSION,
        minor_version: 0,
        exchange_type: exchange_type::IKE_SA_INIT,
        flags: flags::RESPONSE,
        message_id: 0,
        length: 0,
    };
    plain(&header, |b| {
        b.push(payload_type::N, false, &Notify::new(notify, data))
    })
}

/// Runs `build` with a buffer that fits most messages, and only when that is too
/// small with the largest: zeroing 32 KiB per message was ~9 % of a PSK handshake's
/// instructions, and nearly every message is under a kilobyte or two.
fn with_room<T>(mut build: impl FnMut(usize) -> Result<T, WireError>) -> Result<T, WireError> {
    const COMMON: usize = 2048;
    match build(COMMON) {
        Err(WireError::BufferTooSmall) => build(MAX_MESSAGE),
        other => other,
    }
}

/// Builds a message whose payloads all go inside one SK payload, sealed by
/// `protection`.
pub(crate) fn encrypted(
    header: &IkeHeader,
    protection: &mut IkeProtection,
    fill: impl FnMut(&mut MessageBuilder<'_>) -> Result<(), WireError>,
) -> Result<Vec<u8>, BuildError> {
    let (first, inner) = chain(fill)?;
    seal_chain(header, protection, first, &inner)
}

/// Builds a bare payload chain (what goes inside an SK payload): its first
/// payload type and its bytes.
pub(crate) fn chain(
    mut fill: impl FnMut(&mut MessageBuilder<'_>) -> Result<(), WireError>,
) -> Result<(u8, Vec<u8>), WireError> {
    with_room(|size| {
        let mut inner = vec![0u8; size];
        let mut b = MessageBuilder::chain(&mut inner);
        fill(&mut b)?;
        let first = b.first_payload();
        let inner_len = b.finish()?;
        inner.truncate(inner_len);
        Ok((first, inner))
    })
}

/// Seals the payload chain `inner` (first payload type `first`) in one SK
/// payload behind `header`.
pub(crate) fn seal_chain(
    header: &IkeHeader,
    protection: &mut IkeProtection,
    first: u8,
    inner: &[u8],
) -> Result<Vec<u8>, BuildError> {
    let inner_len = inner.len();
    let body_len = protection.body_len(inner_len);
    let mut buf = vec![0u8; IKE_HEADER_LEN + PAYLOAD_HEADER_LEN + body_len];
    let mut m = MessageBuilder::new(&mut buf, header)?;
    let body = m.push_encrypted(payload_type::SK, first, body_len)?;
    m.finish()?;
    let plain_at = body.start + protection.iv_len();
    buf.get_mut(plain_at..plain_at + inner_len)
        .ok_or(WireError::BufferTooSmall)?
        .copy_from_slice(inner);
    protection.seal(&mut buf, body.start, inner_len)?;
    Ok(buf)
}
