//! A CHILD_SA made by CREATE_CHILD_SA, further (RFC 7296 §1.3.1) or by a
//! rekey (§1.3.3): the responder's decision on proposal, PFS group,
//! transport mode and traffic selectors (§2.9), refused with
//! INVALID_KE_PAYLOAD naming the group we want (§1.3, §3.10.1); the
//! CHILD_SA handed to the data plane. What IKE_AUTH's first CHILD_SA does
//! the same way (the request read and held to the policy, the KEYMAT of
//! §2.17, the record) is in `exchange/mod.rs`.

use std::time::Instant;

use palisade_crypto::{KeId, KeyExchange as Ke};
use palisade_esp::transport_nat::OriginalAddresses;
use palisade_filter::policy::TrafficSelector;
use palisade_wire::ikev2::{Proposal, SecurityAssociation, notify_type};
use zeroize::Zeroizing;

use super::key_exchange::{child_offer, groups_of, proposal_groups};
use super::reencode;
use crate::Endpoint;
use crate::error::FailureReason;
use crate::event::Event;
use crate::exchange::{
    ChildAnswer, DirectionKeymat, child_request, hold_to_policy, record_child_sa,
    substitute_request,
};
use crate::message::Received;
use crate::proposal::{ChildChoice, ChildProtocol, select_child};

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
        let mut request = child_request(p).map_err(|(n, r)| refuse(n, r))?;
        substitute_request(sa, p, &mut request);
        let sa_payload = request.sa;
        let policy = self
            .policy
            .quick_mode(sa.local.ip(), sa.remote.ip(), &request.traffic)
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
        let (narrowed_i, narrowed_r) =
            hold_to_policy(&policy, p, &request).map_err(|(n, r)| refuse(n, r))?;
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
                nat_original: request.nat_original,
                ke,
            },
            g_ir,
        ))
    }

    /// Records a CHILD_SA made by CREATE_CHILD_SA and hands it to the data
    /// plane. `selectors` are (ours, the peer's); `answered_rekey` when it is
    /// our answer to the peer's rekey (see [`ChildSa::outbound_deferred`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn install_created(
        &mut self,
        now: Instant,
        spi: u64,
        choice: &ChildChoice,
        inbound_spi: u32,
        transport: bool,
        selectors: (Vec<TrafficSelector>, Vec<TrafficSelector>),
        nat_original: Option<OriginalAddresses>,
        keymat: (DirectionKeymat, DirectionKeymat),
        answered_rekey: bool,
    ) {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let mut child = record_child_sa(
            sa,
            choice,
            inbound_spi,
            transport,
            selectors,
            nat_original,
            keymat,
        );
        child.outbound_deferred = answered_rekey;
        self.jitter_volume(&mut child);
        self.track_child(now, &child, spi);
        self.note_child_negotiated(spi);
        self.events
            .push_back(Event::ChildSaInstalled(Box::new(child)));
    }
}
