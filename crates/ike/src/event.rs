//! What the endpoint tells its driver: SAs to install or remove, and
//! failures (the net events of spec §6.2).

use std::net::SocketAddr;

use crate::child_sa::ChildSa;
use crate::error::{Failure, Role};
use crate::identity::Identity;
use crate::nat::NatDetection;
use crate::proposal::IkeTransforms;

/// An IKE SA, named by our own SPI for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IkeSaId(pub u64);

/// An authenticated IKE SA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeSaInfo {
    /// Our name for it.
    pub id: IkeSaId,
    /// Our role.
    pub role: Role,
    /// IKE SA Initiator's SPI.
    pub initiator_spi: u64,
    /// IKE SA Responder's SPI.
    pub responder_spi: u64,
    /// Our address.
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
    /// The negotiated transforms.
    pub transforms: IkeTransforms,
    /// The identity we authenticated as.
    pub local_id: Identity,
    /// The identity the peer authenticated as: what ALE conditions such as
    /// ALE_REMOTE_MACHINE_ID are evaluated against.
    pub peer_id: Identity,
    /// What the NAT detection notifications said; with a NAT, IKE runs on
    /// port 4500 and the CHILD_SAs are UDP-encapsulated.
    pub nat: NatDetection,
}

/// A CHILD_SA pair that is gone, in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChildSaDeleted {
    /// The IKE SA it belonged to.
    pub ike_sa: IkeSaId,
    /// IP protocol of the SA (50 ESP, 51 AH).
    pub ip_protocol: u8,
    /// Our inbound SPI.
    pub inbound_spi: u32,
    /// Our outbound SPI.
    pub outbound_spi: u32,
}

/// An output of the endpoint.
#[derive(Debug, Clone)]
pub enum Event {
    /// IKE_AUTH completed: the peer is authenticated.
    IkeSaEstablished(IkeSaInfo),
    /// A CHILD_SA pair to install (see [`ChildSa::sa_configs`]).
    ChildSaInstalled(Box<ChildSa>),
    /// A CHILD_SA pair to remove.
    ChildSaDeleted(ChildSaDeleted),
    /// An IKE SA is gone (deleted by either side or failed); its CHILD_SAs
    /// were reported deleted just before.
    IkeSaDeleted(IkeSaId),
    /// A negotiation failed.
    Failure(Failure),
    /// A CHILD_SA pair was rekeyed (RFC 7296 §1.3.3): the new pair was
    /// just reported by [`Event::ChildSaInstalled`]; the old pair stays
    /// until its [`Event::ChildSaDeleted`], so traffic flows throughout.
    ChildSaRekeyed(ChildSaRekeyed),
    /// An IKE SA was rekeyed (RFC 7296 §2.18): its CHILD_SAs now belong to
    /// `new`, which keeps the authenticated peer identity; `old` is
    /// reported deleted once its Delete exchange is done.
    IkeSaRekeyed {
        /// The IKE SA replaced.
        old: IkeSaId,
        /// Its successor.
        new: IkeSaId,
    },
}

/// The old and new pair of a CHILD_SA rekey, by our inbound SPIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChildSaRekeyed {
    /// The IKE SA both pairs belong to.
    pub ike_sa: IkeSaId,
    /// Our inbound SPI of the pair replaced.
    pub old_inbound_spi: u32,
    /// Our inbound SPI of the new pair.
    pub new_inbound_spi: u32,
}
