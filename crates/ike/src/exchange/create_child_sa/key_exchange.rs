//! The key exchange of a CHILD_SA for PFS (RFC 7296 §1.3.1, §2.17): the
//! group each quick-mode proposal asks for, our offer with a KE transform
//! per proposal, and the KE transforms of the peer's proposals. The
//! groups are matched against the peer's KEi, and INVALID_KE_PAYLOAD sent
//! (§1.3, §3.10.1), in `new_child_sa.rs`; INVALID_KE_PAYLOAD is followed
//! in `response.rs`. The IKE SA rekey's mandatory KE is in
//! `ike_sa_rekey.rs`.

use palisade_crypto::KeId;
use palisade_filter::policy::PfsGroup;
use palisade_wire::ikev2::{Proposal, SecurityAssociation, TransformSpec, transform_type};

use crate::policy::ChildPolicy;
use crate::proposal::{ChildOffer, ChildProtocol};

/// The key exchange a quick-mode proposal's `pfs_group` asks for, given
/// the IKE SA's group; `Err` for groups this implementation cannot run.
fn pfs_ke(group: PfsGroup, ike: KeId) -> Result<Option<KeId>, ()> {
    Ok(Some(match group {
        PfsGroup::None => return Ok(None),
        PfsGroup::Mm => ike,
        PfsGroup::Group14 => KeId::Modp2048,
        PfsGroup::Group15 => KeId::Modp3072,
        PfsGroup::Group16 => KeId::Modp4096,
        PfsGroup::Ecp256 => KeId::Ecp256,
        PfsGroup::Ecp384 => KeId::Ecp384,
        PfsGroup::Ecp521 => KeId::Ecp521,
        PfsGroup::Curve25519 => KeId::Curve25519,
        _ => return Err(()),
    }))
}

/// Our CHILD_SA offer with each proposal's PFS group.
pub(super) fn child_offer(policy: &ChildPolicy, ike: KeId) -> (Vec<ChildOffer>, Vec<Option<KeId>>) {
    let mut offers: Vec<ChildOffer> = Vec::new();
    let mut groups = Vec::new();
    for p in policy.quick_mode.proposals() {
        let (Some(protocol), Ok(group)) = (ChildProtocol::from_policy(p), pfs_ke(p.pfs_group, ike))
        else {
            continue;
        };
        let dup = offers
            .iter()
            .zip(&groups)
            .any(|(o, g)| o.protocol == protocol && *g == group);
        if !dup {
            offers.push(ChildOffer {
                protocol,
                lifetime: p.lifetime,
            });
            groups.push(group);
        }
    }
    (offers, groups)
}

pub(super) fn ke_spec(ke: KeId) -> TransformSpec {
    TransformSpec {
        transform_type: transform_type::KE,
        transform_id: ke.into(),
        key_length: None,
    }
}

/// The KE transform ids of a proposal.
pub(super) fn groups_of(p: &Proposal<'_>) -> Vec<u16> {
    p.transforms()
        .filter(|t| t.transform_type == transform_type::KE)
        .map(|t| t.transform_id)
        .collect()
}

/// The KE transform ids of proposal `num` in `sa`.
pub(super) fn proposal_groups(sa: &SecurityAssociation<'_>, num: u8) -> Vec<u16> {
    sa.proposals()
        .filter(|p| p.proposal_num == num)
        .flat_map(|p| groups_of(&p))
        .collect()
}
