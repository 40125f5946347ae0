//! CHILD_SA rekey as responder (RFC 7296 §1.3.3): the SA a REKEY_SA
//! notification names, or CHILD_SA_NOT_FOUND / TEMPORARY_FAILURE
//! (§2.25.1); once the new SA is installed, the old one waits for the
//! peer's Delete, or, if our own rekey of it is in flight, the collision
//! is recorded for the nonces to decide (§2.8.1). The initiator's side is
//! in `request.rs` and `response.rs`.

use palisade_wire::ikev2::notify_type;

use crate::Endpoint;
use crate::event::{ChildSaRekeyed, Event, IkeSaId};
use crate::rekey::{Collision, Created, Renewal};

impl Endpoint {
    /// The CHILD_SA a REKEY_SA notification names (by the peer's inbound
    /// SPI, our outbound one), as our inbound SPI; or the notification to
    /// refuse with.
    pub(super) fn find_rekeyed_child(
        &self,
        spi: u64,
        proto: u8,
        their: Option<u32>,
    ) -> Result<Option<u32>, u16> {
        let sa = self.sas.get(&spi).ok_or(notify_type::CHILD_SA_NOT_FOUND)?;
        let their = their.ok_or(notify_type::CHILD_SA_NOT_FOUND)?;
        let child = sa
            .children
            .iter()
            .find(|c| c.protocol_id == proto && c.outbound_spi == their)
            .ok_or(notify_type::CHILD_SA_NOT_FOUND)?;
        match self
            .rekey
            .children
            .get(&child.inbound_spi)
            .map(|t| t.renewal)
        {
            // Already replaced or being deleted (§2.25.1).
            Some(Renewal::Replaced | Renewal::Deleting) => Err(notify_type::TEMPORARY_FAILURE),
            _ => Ok(Some(child.inbound_spi)),
        }
    }

    /// The peer rekeyed our CHILD_SA `old` into `new`: a collision if our
    /// own rekey of it is in flight, else `old` waits for the peer's Delete.
    pub(super) fn peer_rekeyed_child(
        &mut self,
        spi: u64,
        old: u32,
        new: u32,
        ni: Vec<u8>,
        nr: Vec<u8>,
    ) {
        if self.rekey.child_rekey_in_flight(spi, old) {
            if let Some(r) = self.rekey.ours.get_mut(&spi) {
                r.collision = Some(Collision {
                    peer_ni: ni,
                    our_nr: nr,
                    created: Created::Child(new),
                });
            }
            return;
        }
        if let Some(t) = self.rekey.children.get_mut(&old) {
            t.renewal = Renewal::Replaced;
        }
        self.events.push_back(Event::ChildSaRekeyed(ChildSaRekeyed {
            ike_sa: IkeSaId(spi),
            old_inbound_spi: old,
            new_inbound_spi: new,
        }));
    }
}
