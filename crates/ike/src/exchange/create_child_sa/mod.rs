//! CREATE_CHILD_SA (RFC 7296 §1.3) in both roles: a further CHILD_SA
//! (§1.3.1), the rekey of a CHILD_SA (§1.3.3, REKEY_SA) and of the IKE SA
//! (§1.3.2, §2.18), with a key exchange for PFS when the quick-mode policy
//! names a group (§2.17), INVALID_KE_PAYLOAD answered and followed, and
//! the rekey collisions of §2.8.1 and §2.8.2.
//!
//! ```text
//! new CHILD_SA     SA, Ni, [KEi], TSi, TSr          SA, Nr, [KEr], TSi, TSr
//! CHILD_SA rekey   N(REKEY_SA), SA, Ni, [KEi], ...  (same as above)
//! IKE SA rekey     SA (SPIi), Ni, KEi               SA (SPIr), Nr, KEr
//! ```
//!
//! The initiator of a rekey deletes the old SA once the new one is in
//! place. When both peers rekey the same SA at once, both exchanges
//! complete; the SA whose exchange holds the lowest of the four nonces is
//! redundant and its initiator deletes it, the other initiator deletes the
//! old SA.
//!
//! One file per concept:
//!
//! - `request.rs`: initiator, our request built and sent (§1.3.1-§1.3.3);
//! - `answer.rs`: responder, the request dispatched by kind, the response
//!   sent and applied;
//! - `response.rs`: initiator, the response checked and applied,
//!   INVALID_KE_PAYLOAD followed;
//! - `new_child_sa.rs`: a CHILD_SA's negotiation as responder and its
//!   installation, for new and rekeyed ones (its KEYMAT, §2.17, and its
//!   record are shared with IKE_AUTH in `exchange/mod.rs`);
//! - `child_sa_rekey.rs`: REKEY_SA as responder (§1.3.3, §2.8.1);
//! - `ike_sa_rekey.rs`: the IKE SA rekey in both roles (§1.3.2, §2.18,
//!   §2.8.2);
//! - `key_exchange.rs`: PFS groups and KE transforms (§1.3.1, §2.17);
//! - this file: what they share, the responder's answer types, SA
//!   payload re-encoding, the collision rule (`lost`) and the failure
//!   event (TS payloads are shared with IKE_AUTH in `exchange/mod.rs`).

mod answer;
mod child_sa_rekey;
mod ike_sa_rekey;
mod key_exchange;
mod new_child_sa;
mod request;
mod response;

use palisade_crypto::KeyExchange as Ke;
use palisade_wire::ikev2::{
    MessageBuilder, PAYLOAD_HEADER_LEN, Proposal, SecurityAssociation, protocol_id, transform_type,
};
use zeroize::Zeroizing;

use crate::Endpoint;
use crate::error::{FailurePoint, FailureReason, Stage};
use crate::exchange::ChildAnswer;
use crate::proposal::{IkeTransforms, OwnedProposal, push_sa};
use crate::rekey::Collision;

/// The SA payload re-encoded with some transforms left out and, for IKE
/// proposals, without SPIs: what [`crate::proposal`]'s selection (written
/// for IKE_AUTH and IKE_SA_INIT) expects.
fn reencode(
    sa: &SecurityAssociation<'_>,
    drop_ke: bool,
    keep: &dyn Fn(&Proposal<'_>) -> bool,
) -> Option<Vec<u8>> {
    let proposals: Vec<OwnedProposal> = sa
        .proposals()
        .filter(|p| keep(p))
        .map(|p| OwnedProposal {
            num: p.proposal_num,
            protocol_id: p.protocol_id,
            spi: if p.protocol_id == protocol_id::IKE {
                Vec::new()
            } else {
                p.spi.to_vec()
            },
            transforms: p
                .transforms()
                .filter_map(|t| t.to_spec())
                .filter(|t| !(drop_ke && t.transform_type == transform_type::KE))
                .collect(),
        })
        .collect();
    let mut buf = vec![0u8; sa.as_bytes().len() + 64];
    let mut b = MessageBuilder::chain(&mut buf);
    push_sa(&mut b, &proposals).ok()?;
    let len = b.finish().ok()?;
    buf.truncate(len);
    Some(buf.split_off(PAYLOAD_HEADER_LEN))
}

/// Whether our exchange of a collision is the redundant one: it holds the
/// lowest of the four nonces (RFC 7296 §2.8.1, §2.8.2).
fn lost(our_ni: &[u8], peer_nr: &[u8], c: &Collision) -> bool {
    let ours = our_ni.min(peer_nr);
    let theirs = c.peer_ni.as_slice().min(c.our_nr.as_slice());
    ours < theirs
}

/// What a responder sends back, before the message is sealed.
enum Answer {
    Child {
        answer: ChildAnswer,
        g_ir: Option<Zeroizing<Vec<u8>>>,
        rekeyed: Option<u32>,
    },
    Ike {
        num: u8,
        chosen: IkeTransforms,
        spi_i: u64,
        ke: Ke,
        g_ir: Zeroizing<Vec<u8>>,
    },
    Error(u16, Vec<u8>, Option<FailureReason>),
}

impl Endpoint {
    /// A failure of a CREATE_CHILD_SA exchange that leaves the IKE SA up.
    fn child_failure(&mut self, spi: u64, point: FailurePoint, reason: FailureReason) {
        self.report_failure(spi, Stage::CreateChildSa, point, reason);
    }
}
