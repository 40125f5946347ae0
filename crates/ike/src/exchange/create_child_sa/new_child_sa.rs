//! A CHILD_SA made by CREATE_CHILD_SA, further (RFC 7296 §1.3.1) or by a
//! rekey (§1.3.3): the responder's decision on proposal, PFS group,
//! transport mode and traffic selectors (§2.9), refused with
//! INVALID_KE_PAYLOAD naming the group we want (§1.3, §3.10.1); the
//! KEYMAT (§2.17); the CHILD_SA recorded and handed to the data plane.

use std::time::Instant;

use palisade_crypto::{ChildSaKeys, KeId, KeyExchange as Ke};
use palisade_esp::Mode;
use palisade_filter::policy::TrafficSelector;
use palisade_wire::ikev2::{Proposal, SecurityAssociation, notify_type, protocol_id};
use zeroize::Zeroizing;

use super::key_exchange::{child_offer, groups_of, proposal_groups};
use super::{ChildAnswer, DirectionKeymat, reencode};
use crate::Endpoint;
use crate::child_sa::{ChildSa, lifetime};
use crate::error::FailureReason;
use crate::event::Event;
use crate::identity::Identity;
use crate::ike_sa::{ChildRecord, Keys};
use crate::message::Received;
use crate::policy::Traffic;
use crate::proposal::{ChildChoice, ChildProtocol, select_child};
use crate::traffic_selector::{self, narrow};

/// KEYMAT of a CHILD_SA made by CREATE_CHILD_SA (RFC 7296 §2.17), as
/// (inbound, outbound): "initiator" is the exchange's initiator.
pub(super) fn child_keymat(
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

impl Endpoint {
    /// The responder's decision on the CHILD_SA part of a request.
    #[allow(clippy::type_complexity)]
    pub(super) fn answer_new_child(
        &mut self,
        spi: u64,
        p: &Received<'_>,
    ) -> Result<(ChildAnswer, Option<Zeroizing<Vec<u8>>>), (u16, Vec<u8>, Option<FailureReason>)>
    {
        let esn = self.config.esn;
        let refuse = |n: u16, r: FailureReason| (n, Vec::new(), Some(r));
        let sa = self.sas.get(&spi).ok_or(refuse(
            notify_type::NO_PROPOSAL_CHOSEN,
            FailureReason::Crypto,
        ))?;
        let ike_ke = sa.keys.as_ref().map(|k| k.transforms.ke).ok_or(refuse(
            notify_type::NO_PROPOSAL_CHOSEN,
            FailureReason::Crypto,
        ))?;
        let (Some(sa_payload), Some(tsi), Some(tsr)) = (p.sa, p.tsi, p.tsr) else {
            return Err(refuse(
                notify_type::INVALID_SYNTAX,
                FailureReason::Protocol("no SA, TSi or TSr"),
            ));
        };
        let (tsi, tsr) = (
            traffic_selector::from_wire(&tsi),
            traffic_selector::from_wire(&tsr),
        );
        let (Some(first_i), Some(first_r)) = (tsi.first(), tsr.first()) else {
            return Err(refuse(
                notify_type::TS_UNACCEPTABLE,
                FailureReason::TsUnacceptable,
            ));
        };
        let traffic = Traffic {
            local: *first_r,
            remote: *first_i,
        };
        let policy = self
            .policy
            .quick_mode(sa.local.ip(), sa.remote.ip(), &traffic)
            .ok_or(refuse(
                notify_type::TS_UNACCEPTABLE,
                FailureReason::NoPolicy,
            ))?;
        let (offer, groups) = child_offer(&policy, ike_ke);
        let kei = p.ke;
        let kei_group = kei.map(|k| k.dh_group);
        // First the proposals that fit the KEi sent (or need none), then,
        // to name the group we want in INVALID_KE_PAYLOAD, all of them.
        let fits = |pr: &Proposal<'_>| {
            let ke = groups_of(pr);
            ke.is_empty() || ke.contains(&0) || kei_group.is_some_and(|g| ke.contains(&g))
        };
        let select = |keep: &dyn Fn(&Proposal<'_>) -> bool| {
            let bytes = reencode(&sa_payload, true, keep)?;
            let stripped = SecurityAssociation::parse(&bytes).ok()?;
            select_child(&offer, esn, &stripped)
        };
        // The groups our policy allows with a protocol.
        let ours_for = |protocol: ChildProtocol| -> Vec<Option<KeId>> {
            offer
                .iter()
                .zip(&groups)
                .filter(|(o, _)| o.protocol == protocol)
                .map(|(_, g)| *g)
                .collect()
        };
        let fitting = select(&fits).and_then(|choice| {
            let theirs: Vec<u16> = proposal_groups(&sa_payload, choice.proposal_num);
            let ours = ours_for(choice.protocol);
            let pfs = kei_group
                .filter(|g| theirs.contains(g))
                .and_then(|g| KeId::try_from(g).ok());
            match pfs {
                Some(g) if ours.contains(&Some(g)) || ours.contains(&None) => {
                    Some((choice, Some(g)))
                }
                _ if ours.contains(&None) && (theirs.is_empty() || theirs.contains(&0)) => {
                    Some((choice, None))
                }
                _ => None,
            }
        });
        let Some((choice, group)) = fitting else {
            // A group of ours that some proposal of the peer's lists.
            let theirs: Vec<u16> = sa_payload
                .proposals()
                .flat_map(|pr| groups_of(&pr))
                .collect();
            let want = groups
                .iter()
                .flatten()
                .find(|g| theirs.contains(&u16::from(**g)))
                .filter(|_| kei_group.is_some());
            return Err(match want {
                Some(g) => (
                    notify_type::INVALID_KE_PAYLOAD,
                    u16::from(*g).to_be_bytes().to_vec(),
                    None,
                ),
                None => refuse(
                    notify_type::NO_PROPOSAL_CHOSEN,
                    FailureReason::NoProposalChosen,
                ),
            });
        };
        let transport_asked = p.has_notify(notify_type::USE_TRANSPORT_MODE);
        if policy.is_transport() && !transport_asked {
            return Err(refuse(
                notify_type::NO_PROPOSAL_CHOSEN,
                FailureReason::ModeMismatch,
            ));
        }
        let narrowed_i = narrow(&tsi, &policy.remote_selectors);
        let narrowed_r = narrow(&tsr, &policy.local_selectors);
        if narrowed_i.is_empty() || narrowed_r.is_empty() {
            return Err(refuse(
                notify_type::TS_UNACCEPTABLE,
                FailureReason::TsUnacceptable,
            ));
        }
        let (ke, g_ir) = match (group, kei) {
            (Some(g), Some(k)) => {
                let ke = Ke::generate(g)
                    .map_err(|_| refuse(notify_type::NO_PROPOSAL_CHOSEN, FailureReason::Crypto))?;
                let shared = ke.shared_secret(k.data).map_err(|_| {
                    refuse(
                        notify_type::INVALID_SYNTAX,
                        FailureReason::Protocol("invalid key exchange value"),
                    )
                })?;
                (Some(ke), Some(Zeroizing::new(shared.as_ref().to_vec())))
            }
            _ => (None, None),
        };
        let inbound_spi = self
            .new_child_spi()
            .map_err(|_| refuse(notify_type::NO_PROPOSAL_CHOSEN, FailureReason::Crypto))?;
        Ok((
            ChildAnswer {
                choice,
                inbound_spi,
                transport: policy.is_transport(),
                tsi: narrowed_i,
                tsr: narrowed_r,
                ke,
            },
            g_ir,
        ))
    }

    /// Records a CHILD_SA made by CREATE_CHILD_SA and hands it to the data
    /// plane. `selectors` are (ours, the peer's).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn install_created(
        &mut self,
        now: Instant,
        spi: u64,
        choice: &ChildChoice,
        inbound_spi: u32,
        transport: bool,
        selectors: (Vec<TrafficSelector>, Vec<TrafficSelector>),
        keymat: (DirectionKeymat, DirectionKeymat),
    ) {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
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
        let child = ChildSa {
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
            peer_id: sa
                .peer_id
                .clone()
                .unwrap_or_else(|| Identity::from_ip(sa.remote.ip())),
            inbound_keys,
            outbound_keys,
        };
        self.track_child(now, &child, spi);
        self.note_child_negotiated(spi);
        self.events
            .push_back(Event::ChildSaInstalled(Box::new(child)));
    }
}
