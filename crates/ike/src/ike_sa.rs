//! The state of one IKE SA: who we are in it, what was exchanged so far,
//! its keys, its message IDs and its CHILD_SAs.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use palisade_crypto::ikev2_kdf::{rekey_skeyseed, skeyseed};
use palisade_crypto::{CryptoError, IkeProtection, IkeSaKeys, KeyExchange as Ke, Prf};
use palisade_filter::policy::TrafficSelector;
use palisade_wire::ikev2::{IKE_MAJOR_VERSION, IkeHeader, flags};

use crate::error::Role;
use crate::event::IkeSaId;
use crate::identity::Identity;
use crate::nat::NatDetection;
use crate::policy::{ChildPolicy, IkePolicy};
use crate::proposal::{ChildOffer, IkeTransforms};
use crate::retransmit::{Outstanding, Purpose};

/// Where the IKE SA stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Initiator: IKE_SA_INIT request sent.
    InitSent,
    /// Responder: IKE_SA_INIT answered, IKE_AUTH awaited.
    InitAnswered,
    /// Initiator: IKE_AUTH request sent.
    AuthSent,
    /// Authenticated.
    Established,
}

/// The IKE SA's keys, once the key exchange is done.
pub(crate) struct Keys {
    pub transforms: IkeTransforms,
    pub prf: Prf,
    pub sk: IkeSaKeys,
    /// Protects what we send.
    pub outbound: IkeProtection,
    /// Opens what we receive.
    pub inbound: IkeProtection,
}

impl Keys {
    /// SKEYSEED and the seven keys (RFC 7296 §2.14), and the SK payload
    /// protection for each direction.
    pub fn derive(
        role: Role,
        transforms: IkeTransforms,
        g_ir: &[u8],
        ni: &[u8],
        nr: &[u8],
        spi_i: u64,
        spi_r: u64,
    ) -> Result<Self, CryptoError> {
        let prf = Prf::new(transforms.prf);
        let seed = skeyseed(prf, ni, nr, g_ir);
        Self::from_skeyseed(role, transforms, seed.as_ref(), ni, nr, spi_i, spi_r)
    }

    /// The keys after an additional key exchange (RFC 9370 §2.2.2):
    /// `SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)`, then all seven
    /// keys from it by prf+ over `Ni | Nr | SPIi | SPIr` as in RFC 7296
    /// §2.14, with the IKE_SA_INIT nonces and SPIs.
    pub fn after_additional_exchange(
        &self,
        role: Role,
        secret: &[u8],
        ni: &[u8],
        nr: &[u8],
        spi_i: u64,
        spi_r: u64,
    ) -> Result<Self, CryptoError> {
        let seed = rekey_skeyseed(self.prf, self.sk.sk_d(), secret, ni, nr);
        Self::from_skeyseed(role, self.transforms, seed.as_ref(), ni, nr, spi_i, spi_r)
    }

    /// The seven keys from SKEYSEED by prf+ over `Ni | Nr | SPIi | SPIr`
    /// (RFC 7296 §2.14), and the SK payload protection for each direction:
    /// the one derivation behind a new IKE SA, an additional key exchange
    /// (RFC 9370) and an IKE SA rekey (§2.18), which differ only in how
    /// SKEYSEED is computed.
    pub(crate) fn from_skeyseed(
        role: Role,
        transforms: IkeTransforms,
        seed: &[u8],
        ni: &[u8],
        nr: &[u8],
        spi_i: u64,
        spi_r: u64,
    ) -> Result<Self, CryptoError> {
        let prf = Prf::new(transforms.prf);
        let sk = IkeSaKeys::derive(
            prf,
            seed,
            transforms.key_lengths()?,
            ni,
            nr,
            spi_i.to_be_bytes(),
            spi_r.to_be_bytes(),
        )?;
        let protection = |e: &[u8], a: &[u8]| {
            IkeProtection::new(transforms.encr, transforms.key_bits, transforms.integ, e, a)
        };
        let initiator = protection(sk.sk_ei(), sk.sk_ai())?;
        let responder = protection(sk.sk_er(), sk.sk_ar())?;
        let (outbound, inbound) = match role {
            Role::Initiator => (initiator, responder),
            Role::Responder => (responder, initiator),
        };
        Ok(Self {
            transforms,
            prf,
            sk,
            outbound,
            inbound,
        })
    }
}

/// The first CHILD_SA as the initiator proposed it.
#[derive(Debug, Clone)]
pub(crate) struct PendingChild {
    pub policy: ChildPolicy,
    pub offer: Vec<ChildOffer>,
    pub inbound_spi: u32,
    pub tsi: Vec<TrafficSelector>,
    pub tsr: Vec<TrafficSelector>,
}

/// An installed CHILD_SA pair, as far as the IKE SA needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChildRecord {
    /// ESP or AH protocol id.
    pub protocol_id: u8,
    pub inbound_spi: u32,
    pub outbound_spi: u32,
}

pub(crate) struct IkeSa {
    pub id: IkeSaId,
    pub role: Role,
    pub spi_i: u64,
    pub spi_r: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: State,
    pub created: Instant,
    /// When the peer last showed it is alive: a message that passed its
    /// integrity check, or inbound ESP the driver reported. Dead peer
    /// detection counts from here (RFC 7296 §2.4).
    pub last_heard: Instant,
    pub policy: IkePolicy,
    pub local_id: Identity,
    pub peer_id: Option<Identity>,
    /// Initiator: what we offered, numbered from 1.
    pub offer: Vec<IkeTransforms>,
    /// Initiator: our key exchange until the response arrives.
    pub ke: Option<Ke>,
    /// Initiator: INVALID_KE_PAYLOAD was followed once already.
    pub ke_retried: bool,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    /// RealMessage1: the IKE_SA_INIT request as sent.
    pub init_request: Vec<u8>,
    /// RealMessage2: the IKE_SA_INIT response as sent.
    pub init_response: Vec<u8>,
    pub keys: Option<Keys>,
    pub nat: NatDetection,
    /// Message ID of our next request.
    pub next_message_id: u32,
    /// Message ID the peer's next request must carry.
    pub peer_next_id: u32,
    pub outstanding: Option<Outstanding>,
    /// Requests waiting for the window to open.
    pub queued: VecDeque<Purpose>,
    /// The response to the peer's last request, resent byte for byte when
    /// that request is retransmitted.
    pub last_response: Option<(u32, Vec<u8>)>,
    pub pending_child: Option<PendingChild>,
    pub children: Vec<ChildRecord>,
}

impl IkeSa {
    /// We answer the peer's request `message_id` with `response`: it is
    /// kept to be sent again, byte for byte, if the request comes again,
    /// and the next request is expected (RFC 7296 §2.1, §2.3, window size
    /// 1). The same for every exchange we respond to; returns where to
    /// send the response.
    pub fn answered(&mut self, message_id: u32, response: &[u8]) -> (SocketAddr, SocketAddr) {
        self.last_response = Some((message_id, response.to_vec()));
        self.peer_next_id = message_id.wrapping_add(1);
        (self.local, self.remote)
    }

    /// A header for a message we send in `exchange`.
    pub fn header(&self, exchange: u8, message_id: u32, response: bool) -> IkeHeader {
        let mut f = 0;
        if self.role == Role::Initiator {
            f |= flags::INITIATOR;
        }
        if response {
            f |= flags::RESPONSE;
        }
        IkeHeader {
            initiator_spi: self.spi_i,
            responder_spi: self.spi_r,
            next_payload: 0,
            major_version: IKE_MAJOR_VERSION,
            minor_version: 0,
            exchange_type: exchange,
            flags: f,
            message_id,
            length: 0,
        }
    }

    /// Whether a received header belongs to this SA: its SPIs, and the
    /// Initiator flag saying the sender is the other role.
    pub fn owns(&self, header: &IkeHeader) -> bool {
        let from_initiator = header.is_initiator();
        let peer_is_initiator = self.role == Role::Responder;
        header.initiator_spi == self.spi_i
            && (header.responder_spi == self.spi_r || self.state == State::InitSent)
            && from_initiator == peer_is_initiator
    }
}
