//! The exchanges, one file each, as methods of [`crate::Endpoint`]; this
//! file routes a message of a known IKE SA to its exchange after the
//! message ID checks of RFC 7296 §2.3 (window size 1), and holds what the
//! exchanges do alike: the Encrypted payload opened (§3.14), the KE and
//! TS payloads written, and a CHILD_SA's request read, held to policy,
//! keyed (§2.17) and recorded, for IKE_AUTH and CREATE_CHILD_SA.

mod create_child_sa;
mod ike_auth;
mod ike_intermediate;
mod ike_sa_init;
mod informational;

use std::ops::Range;
use std::time::Instant;

use palisade_crypto::{ChildSaKeys, KeyExchange as Ke};
use palisade_esp::Mode;
use palisade_esp::transport_nat::OriginalAddresses;
use palisade_filter::policy::TrafficSelector;
use palisade_wire::WireError;
use palisade_wire::ikev2::{
    CertificateRequest, IKE_HEADER_LEN, IkeHeader, KeyExchange, MessageBuilder, Notify,
    SecurityAssociation, TrafficSelectorsSpec, cert_encoding, exchange_type, notify_type,
    payload_type, protocol_id,
};
use zeroize::Zeroizing;

pub(crate) use ike_intermediate::Intermediate;

use crate::Endpoint;
use crate::child_sa::{ChildSa, lifetime};
use crate::endpoint::Path;
use crate::error::{DropReason, FailureReason};
use crate::identity::Identity;
use crate::ike_sa::{ChildRecord, IkeSa, Keys, State};
use crate::message::{Received, encrypted, open_sk};
use crate::policy::{ChildPolicy, Traffic};
use crate::proposal::{ChildChoice, ChildProtocol};
use crate::retransmit::Purpose;
use crate::traffic_selector::{self, narrow};
use crate::transport_nat::NatTransport;

/// One direction's KEYMAT, wiped on drop.
type DirectionKeymat = Zeroizing<Vec<u8>>;

/// KEYMAT of a CHILD_SA (RFC 7296 §2.17), as (inbound, outbound):
/// `prf+(SK_d, [g^ir (new)] | Ni | Nr)`, split by direction, where
/// "initiator" is the initiator of the exchange that made the CHILD_SA.
/// The first CHILD_SA (IKE_AUTH: no g^ir, the IKE_SA_INIT nonces and
/// roles) and a later one (CREATE_CHILD_SA: its own nonces, PFS and
/// initiator) differ only in these inputs, so one function serves both.
fn child_keymat(
    keys: &Keys,
    protocol: &ChildProtocol,
    g_ir: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    we_initiated: bool,
) -> Option<(DirectionKeymat, DirectionKeymat)> {
    let lengths = protocol.key_lengths().ok()?;
    let keymat = ChildSaKeys::derive(keys.prf, keys.sk.sk_d(), g_ir, ni, nr, lengths).ok()?;
    let join = |d: palisade_crypto::ikev2_kdf::DirectionKeys<'_>| {
        let mut v = Zeroizing::new(Vec::with_capacity(d.encr.len() + d.integ.len()));
        v.extend_from_slice(d.encr);
        v.extend_from_slice(d.integ);
        v
    };
    let i2r = join(keymat.initiator_to_responder());
    let r2i = join(keymat.responder_to_initiator());
    Some(if we_initiated { (r2i, i2r) } else { (i2r, r2i) })
}

/// Pushes our KE payload (RFC 7296 §3.4): the group and public value of
/// `ke`, the same in IKE_SA_INIT and CREATE_CHILD_SA.
fn push_ke(b: &mut MessageBuilder<'_>, ke: &Ke) -> Result<(), WireError> {
    b.push(
        payload_type::KE,
        false,
        &KeyExchange {
            dh_group: ke.id().into(),
            data: ke.public_value(),
        },
    )
}

/// Pushes a CERTREQ payload (RFC 7296 §3.7) naming the certificate
/// `authorities` we trust (SHA-1 hashes of their public keys), the same
/// in IKE_SA_INIT and IKE_AUTH.
fn push_certreq(b: &mut MessageBuilder<'_>, authorities: &[u8]) -> Result<(), WireError> {
    b.push(
        payload_type::CERTREQ,
        false,
        &CertificateRequest {
            cert_encoding: cert_encoding::X509_CERTIFICATE_SIGNATURE,
            authorities,
        },
    )
}

/// Pushes a TSi or TSr payload (RFC 7296 §3.13), the same in IKE_AUTH and
/// CREATE_CHILD_SA.
fn push_ts(
    b: &mut MessageBuilder<'_>,
    kind: u8,
    selectors: &[TrafficSelector],
) -> Result<(), WireError> {
    let wire: Vec<_> = selectors.iter().map(traffic_selector::to_wire).collect();
    b.push(kind, false, &TrafficSelectorsSpec { selectors: &wire })
}

/// The responder's decision on a CHILD_SA request, in IKE_AUTH as in
/// CREATE_CHILD_SA: one answer, sent and installed the same way.
struct ChildAnswer {
    choice: ChildChoice,
    inbound_spi: u32,
    transport: bool,
    tsi: Vec<TrafficSelector>,
    tsr: Vec<TrafficSelector>,
    /// What the initiator proposed for itself and us, when transport mode across a
    /// NAT replaced it (RFC 7296 §2.23.1).
    nat_original: Option<OriginalAddresses>,
    /// Our KE for PFS and the group (only in CREATE_CHILD_SA).
    ke: Option<Ke>,
}

/// What a CHILD_SA request proposes, in IKE_AUTH (RFC 7296 §1.2) as in
/// CREATE_CHILD_SA (§1.3.1): its SA payload, its traffic selectors, and
/// the traffic the first of them name (§2.9: ours is TSr, the
/// initiator's TSi), which the policy is looked up for.
struct ChildRequest<'a> {
    sa: SecurityAssociation<'a>,
    tsi: Vec<TrafficSelector>,
    tsr: Vec<TrafficSelector>,
    traffic: Traffic,
    /// Set when the selectors were substituted (transport mode across a NAT).
    nat_original: Option<OriginalAddresses>,
}

/// The IKE SA's addresses when its transport-mode CHILD_SAs get the selectors
/// substituted (RFC 7296 §2.23.1): a NAT on either side. Forcing encapsulation
/// ourselves translates nothing (the peer, believing us behind a NAT, substitutes
/// our selectors with the address it sees, which is ours).
fn nat_transport(sa: &IkeSa) -> Option<NatTransport> {
    let (local_behind_nat, remote_behind_nat) = (sa.nat.local_behind_nat, sa.nat.remote_behind_nat);
    (local_behind_nat || remote_behind_nat).then(|| NatTransport {
        local: sa.local.ip(),
        remote: sa.remote.ip(),
        local_behind_nat,
        remote_behind_nat,
    })
}

/// The responder's view of a transport-mode request across a NAT (RFC 7296
/// §2.23.1): the selectors name the addresses we see, and the ones the initiator
/// proposed are kept for the checksum fix-up. Looked at before the policy is, so that
/// the quick-mode policy is found for the peer's address as we see it (what a rule
/// names). A tunnel-mode request, or one without a NAT, stays as it came.
fn substitute_request(sa: &IkeSa, p: &Received<'_>, request: &mut ChildRequest<'_>) {
    let Some(nat) = nat_transport(sa) else { return };
    if !p.has_notify(notify_type::USE_TRANSPORT_MODE) {
        return;
    }
    let s = nat.request(&request.tsi, &request.tsr);
    let (Some(first_i), Some(first_r)) = (s.tsi.first(), s.tsr.first()) else {
        return;
    };
    request.traffic = Traffic {
        local: *first_r,
        remote: *first_i,
    };
    request.tsi = s.tsi;
    request.tsr = s.tsr;
    request.nat_original = s.original;
}

/// The responder reads a CHILD_SA request the same way in both exchanges:
/// without SA, TSi or TSr it is INVALID_SYNTAX, with an empty TSi or TSr
/// TS_UNACCEPTABLE.
fn child_request<'a>(p: &Received<'a>) -> Result<ChildRequest<'a>, (u16, FailureReason)> {
    let (Some(sa), Some(tsi), Some(tsr)) = (p.sa, p.tsi, p.tsr) else {
        return Err((
            notify_type::INVALID_SYNTAX,
            FailureReason::Protocol("no SA, TSi or TSr"),
        ));
    };
    let (tsi, tsr) = (
        traffic_selector::from_wire(&tsi),
        traffic_selector::from_wire(&tsr),
    );
    let (Some(first_i), Some(first_r)) = (tsi.first(), tsr.first()) else {
        return Err((notify_type::TS_UNACCEPTABLE, FailureReason::TsUnacceptable));
    };
    let traffic = Traffic {
        local: *first_r,
        remote: *first_i,
    };
    Ok(ChildRequest {
        sa,
        tsi,
        tsr,
        traffic,
        nat_original: None,
    })
}

/// The initiator's view of a transport-mode answer across a NAT (RFC 7296 §2.23.1):
/// the responder's selectors with the IKE SA's addresses in place of the ones it named,
/// held to our proposal substituted the same way; and the addresses the responder used
/// in what it sends. Unchanged without a NAT or in tunnel mode.
struct Answered {
    tsi: Vec<TrafficSelector>,
    tsr: Vec<TrafficSelector>,
    /// Whether they lie within what we proposed (RFC 7296 §2.9).
    within_proposal: bool,
    nat_original: Option<OriginalAddresses>,
}

fn answered(
    sa: &IkeSa,
    transport: bool,
    (tsi, tsr): (Vec<TrafficSelector>, Vec<TrafficSelector>),
    (proposed_i, proposed_r): (&[TrafficSelector], &[TrafficSelector]),
) -> Answered {
    match nat_transport(sa).filter(|_| transport) {
        Some(nat) => {
            let got = nat.response(&tsi, &tsr);
            let ours = nat.response(proposed_i, proposed_r);
            Answered {
                within_proposal: traffic_selector::all_within(&got.tsi, &ours.tsi)
                    && traffic_selector::all_within(&got.tsr, &ours.tsr),
                tsi: got.tsi,
                tsr: got.tsr,
                nat_original: got.original,
            }
        }
        None => Answered {
            within_proposal: traffic_selector::all_within(&tsi, proposed_i)
                && traffic_selector::all_within(&tsr, proposed_r),
            tsi,
            tsr,
            nat_original: None,
        },
    }
}

/// The responder holds a CHILD_SA request to the policy found for it,
/// the same for the first CHILD_SA and later ones: a transport-mode
/// policy needs USE_TRANSPORT_MODE (RFC 7296 §1.3.1), and the selectors
/// are narrowed to the policy's (§2.9), none left being TS_UNACCEPTABLE.
/// Returns the narrowed (TSi, TSr).
fn hold_to_policy(
    policy: &ChildPolicy,
    p: &Received<'_>,
    request: &ChildRequest<'_>,
) -> Result<(Vec<TrafficSelector>, Vec<TrafficSelector>), (u16, FailureReason)> {
    let transport_asked = p.has_notify(notify_type::USE_TRANSPORT_MODE);
    if policy.is_transport() && !transport_asked {
        return Err((notify_type::NO_PROPOSAL_CHOSEN, FailureReason::ModeMismatch));
    }
    let narrowed_i = narrow(&request.tsi, &policy.remote_selectors);
    let narrowed_r = narrow(&request.tsr, &policy.local_selectors);
    if narrowed_i.is_empty() || narrowed_r.is_empty() {
        return Err((notify_type::TS_UNACCEPTABLE, FailureReason::TsUnacceptable));
    }
    Ok((narrowed_i, narrowed_r))
}

/// Records a negotiated CHILD_SA pair on IKE SA `sa` (what its deletion
/// and rekey name, RFC 7296 §1.4.1, §2.8) and describes it for the data
/// plane. The first CHILD_SA of IKE_AUTH (§1.2) and one of
/// CREATE_CHILD_SA (§1.3.1) are the same kind of SA, recorded alike.
/// `selectors` are (ours, the peer's); `keymat` is (inbound, outbound).
fn record_child_sa(
    sa: &mut IkeSa,
    choice: &ChildChoice,
    inbound_spi: u32,
    transport: bool,
    selectors: (Vec<TrafficSelector>, Vec<TrafficSelector>),
    nat_original: Option<OriginalAddresses>,
    keymat: (DirectionKeymat, DirectionKeymat),
) -> ChildSa {
    let record = ChildRecord {
        protocol_id: match choice.protocol {
            ChildProtocol::Esp(_) => protocol_id::ESP,
            ChildProtocol::Ah(_) => protocol_id::AH,
        },
        inbound_spi,
        outbound_spi: choice.peer_spi,
    };
    sa.children.push(record);
    let (inbound_keys, outbound_keys) = keymat;
    ChildSa {
        ike_sa: sa.id,
        protocol: choice.protocol,
        mode: if transport {
            Mode::Transport
        } else {
            Mode::Tunnel
        },
        local: sa.local.ip(),
        remote: sa.remote.ip(),
        inbound_spi,
        outbound_spi: choice.peer_spi,
        esn: choice.esn,
        lifetime: lifetime(&choice.lifetime),
        udp_encap: sa.nat.any().then_some(palisade_esp::UdpEncap {
            local_port: sa.local.port(),
            remote_port: sa.remote.port(),
        }),
        local_selectors: selectors.0,
        remote_selectors: selectors.1,
        // Only transport mode puts the hosts' addresses in the checksums.
        nat_original: nat_original.filter(|_| transport),
        peer_id: sa
            .peer_id
            .clone()
            .unwrap_or_else(|| Identity::from_ip(sa.remote.ip())),
        outbound_deferred: false,
        inbound_keys,
        outbound_keys,
    }
}

/// A received message of an IKE SA whose Encrypted payload (RFC 7296
/// §3.14) passed its integrity check and was decrypted.
pub(crate) struct Protected<'a> {
    /// The outer payloads (the SK payload and where its body starts).
    pub outer: Received<'a>,
    /// The decrypted copy of the message.
    pub plain: Vec<u8>,
    /// The type of the first inner payload.
    pub first: u8,
    /// Where the inner payloads stand in `plain`.
    pub range: Range<usize>,
}

impl Protected<'_> {
    /// The inner payloads.
    pub fn inner(&self) -> &[u8] {
        self.plain.get(self.range.clone()).unwrap_or_default()
    }
}

impl Endpoint {
    /// The payloads of a received message after its header (RFC 7296 §3.2);
    /// a chain that does not parse is counted as malformed.
    pub(crate) fn gather_message<'a>(
        &mut self,
        header: &IkeHeader,
        bytes: &'a [u8],
    ) -> Option<Received<'a>> {
        let Ok(outer) = Received::gather(
            header.next_payload,
            bytes.get(IKE_HEADER_LEN..).unwrap_or_default(),
            bytes.len(),
        ) else {
            self.counters.count(DropReason::Malformed);
            return None;
        };
        Some(outer)
    }

    /// Opens the Encrypted payload (RFC 7296 §3.14) of a message of IKE SA
    /// `spi` that arrived over `path`, the same way for every exchange
    /// after IKE_SA_INIT: without the SA or its keys it is dropped
    /// silently, a malformed chain or a failed integrity check is counted
    /// and dropped (§2.21.2: no answer to what is not authenticated), and
    /// only a message that passed the check may move the peer's address
    /// (§2.23, [`Endpoint::authenticated`]).
    pub(crate) fn open_protected<'a>(
        &mut self,
        spi: u64,
        path: Path,
        header: &IkeHeader,
        bytes: &'a [u8],
    ) -> Option<Protected<'a>> {
        self.sas.get(&spi)?.keys.as_ref()?;
        let outer = self.gather_message(header, bytes)?;
        let keys = self.sas.get(&spi)?.keys.as_ref()?;
        let Some((plain, first, range)) = open_sk(bytes, &outer, &keys.inbound) else {
            self.counters.count(DropReason::Integrity);
            return None;
        };
        self.authenticated(spi, path);
        Some(Protected {
            outer,
            plain,
            first,
            range,
        })
    }

    /// Answers the peer's request `message_id` of `exchange` with only an
    /// error notification `notify`, encrypted (RFC 7296 §2.21.2); the same
    /// in IKE_AUTH and IKE_INTERMEDIATE, whose callers then end the IKE SA
    /// (so it is not kept for retransmission).
    pub(crate) fn answer_error(&mut self, spi: u64, exchange: u8, message_id: u32, notify: u16) {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let h = sa.header(exchange, message_id, true);
        let Some(keys) = sa.keys.as_mut() else { return };
        if let Ok(m) = encrypted(&h, &mut keys.outbound, |b| {
            b.push(payload_type::N, false, &Notify::new(notify, &[]))
        }) {
            let (local, remote) = (sa.local, sa.remote);
            self.send(local, remote, m);
        }
    }

    /// A request from the peer of IKE SA `spi`.
    pub(crate) fn handle_request(
        &mut self,
        now: Instant,
        spi: u64,
        path: Path,
        header: &IkeHeader,
        bytes: &[u8],
    ) {
        let Some(sa) = self.sas.get(&spi) else { return };
        let id = header.message_id;
        if id != sa.peer_next_id {
            let cached = match &sa.last_response {
                Some((cached_id, response)) if *cached_id == id => Some(response.clone()),
                _ => None,
            };
            match cached {
                // A retransmission: the same answer, byte for byte, and no
                // second processing (RFC 7296 §2.1).
                Some(response) => {
                    self.counters.count(DropReason::Retransmission);
                    let (local, remote) = (sa.local, sa.remote);
                    self.send(local, remote, response);
                }
                None => self.counters.count(DropReason::InvalidMessageId),
            }
            return;
        }
        match (header.exchange_type, sa.state) {
            // IKE_AUTH waits for every additional key exchange (RFC 9370).
            (exchange_type::IKE_AUTH, State::InitAnswered) if self.intermediate_pending(spi) => {
                self.counters.count(DropReason::Unexpected);
            }
            (exchange_type::IKE_AUTH, State::InitAnswered) => {
                self.respond_ike_auth(now, spi, path, header, bytes);
            }
            (exchange_type::IKE_INTERMEDIATE, State::InitAnswered) => {
                self.respond_ike_intermediate(spi, path, header, bytes);
            }
            (exchange_type::INFORMATIONAL, State::Established) => {
                self.respond_informational(now, spi, path, header, bytes);
            }
            (exchange_type::CREATE_CHILD_SA, State::Established) => {
                self.respond_create_child_sa(now, spi, path, header, bytes);
            }
            _ => self.counters.count(DropReason::Unexpected),
        }
    }

    /// A response from the peer of IKE SA `spi`.
    pub(crate) fn handle_response(
        &mut self,
        now: Instant,
        spi: u64,
        path: Path,
        header: &IkeHeader,
        bytes: &[u8],
    ) {
        let Some(sa) = self.sas.get(&spi) else { return };
        let Some(out) = &sa.outstanding else {
            self.counters.count(DropReason::InvalidMessageId);
            return;
        };
        if out.message_id != header.message_id {
            self.counters.count(DropReason::InvalidMessageId);
            return;
        }
        match (out.purpose, header.exchange_type) {
            (Purpose::IkeSaInit, exchange_type::IKE_SA_INIT) => {
                self.handle_ike_sa_init_response(now, spi, header, bytes);
            }
            (Purpose::IkeAuth, exchange_type::IKE_AUTH) => {
                self.handle_ike_auth_response(now, spi, path, bytes);
            }
            (Purpose::IkeIntermediate, exchange_type::IKE_INTERMEDIATE) => {
                self.handle_ike_intermediate_response(now, spi, path, header, bytes);
            }
            (
                Purpose::DeleteIkeSa | Purpose::DeleteChildSa(_) | Purpose::Liveness,
                exchange_type::INFORMATIONAL,
            ) => self.handle_informational_response(now, spi, path, bytes),
            (Purpose::CreateChildSa, exchange_type::CREATE_CHILD_SA) => {
                self.handle_create_child_sa_response(now, spi, path, bytes);
            }
            _ => self.counters.count(DropReason::Unexpected),
        }
    }
}
