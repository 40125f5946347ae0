//! INFORMATIONAL (RFC 7296 §1.4): deleting CHILD_SAs and the IKE SA in
//! either direction, and liveness checks (an empty request answered empty).

use std::time::Instant;

use palisade_wire::ikev2::{Delete, IkeHeader, exchange_type, payload_type, protocol_id};

use crate::Endpoint;
use crate::endpoint::Path;
use crate::endpoint::child_deleted;
use crate::error::{DropReason, FailurePoint, FailureReason, Stage};
use crate::event::Event;
use crate::message::{Received, encrypted};
use crate::retransmit::Purpose;

impl Endpoint {
    /// Sends a queued or new INFORMATIONAL request.
    pub(crate) fn send_informational_request(&mut self, now: Instant, spi: u64, purpose: Purpose) {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let message_id = sa.next_message_id;
        let header = sa.header(exchange_type::INFORMATIONAL, message_id, false);
        let child_protocol = |spi: u32| {
            sa.children
                .iter()
                .find(|c| c.inbound_spi == spi)
                .map_or(protocol_id::ESP, |c| c.protocol_id)
        };
        let delete_child = match purpose {
            Purpose::DeleteChildSa(child) => Some((child_protocol(child), child.to_be_bytes())),
            _ => None,
        };
        let Some(keys) = sa.keys.as_mut() else { return };
        let built = encrypted(&header, &mut keys.outbound, |b| {
            match (purpose, &delete_child) {
                (Purpose::DeleteIkeSa, _) => {
                    b.push(payload_type::D, false, &Delete::new(protocol_id::IKE, &[]))
                }
                (_, Some((proto, spi))) => {
                    b.push(payload_type::D, false, &Delete::new(*proto, spi))
                }
                _ => Ok(()),
            }
        });
        let Ok(request) = built else {
            return self.fail(
                spi,
                Stage::Informational,
                FailurePoint::Local,
                FailureReason::Crypto,
            );
        };
        sa.next_message_id = message_id.wrapping_add(1);
        self.send_request(now, spi, message_id, purpose, request);
    }

    /// An INFORMATIONAL request from the peer.
    pub(crate) fn respond_informational(
        &mut self,
        _now: Instant,
        spi: u64,
        path: Path,
        header: &IkeHeader,
        bytes: &[u8],
    ) {
        let Some(opened) = self.open_protected(spi, path, header, bytes) else {
            return;
        };
        let Ok(p) = Received::gather(opened.first, opened.inner(), opened.plain.len()) else {
            self.counters.count(DropReason::Malformed);
            return;
        };
        // A CHILD_SA named here may have moved to a rekeyed IKE SA meanwhile.
        self.reclaim_children(spi, &p.deletes);
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let delete_ike = p.deletes.iter().any(|d| d.protocol_id == protocol_id::IKE);
        // The SAs the peer deletes are our outbound ones; we answer with
        // our inbound SPIs of the same pairs (RFC 7296 §1.4.1).
        let mut deleted = Vec::new();
        if !delete_ike {
            for d in &p.deletes {
                for their in d.spis_u32() {
                    if let Some(at) = sa
                        .children
                        .iter()
                        .position(|c| c.protocol_id == d.protocol_id && c.outbound_spi == their)
                    {
                        deleted.push(sa.children.remove(at));
                    }
                }
            }
        }
        let h = sa.header(exchange_type::INFORMATIONAL, header.message_id, true);
        let Some(keys) = sa.keys.as_mut() else { return };
        let built = encrypted(&h, &mut keys.outbound, |b| {
            for proto in [protocol_id::ESP, protocol_id::AH] {
                let spis: Vec<u8> = deleted
                    .iter()
                    .filter(|c| c.protocol_id == proto)
                    .flat_map(|c| c.inbound_spi.to_be_bytes())
                    .collect();
                if !spis.is_empty() {
                    b.push(payload_type::D, false, &Delete::new(proto, &spis))?;
                }
            }
            Ok(())
        });
        let Ok(response) = built else { return };
        let id = sa.id;
        let (local, remote) = sa.answered(header.message_id, &response);
        self.send(local, remote, response);
        for c in &deleted {
            self.child_spis.remove(&c.inbound_spi);
            self.events
                .push_back(Event::ChildSaDeleted(child_deleted(id, c)));
        }
        if delete_ike {
            self.remove(spi);
        }
    }

    /// The response to our INFORMATIONAL request.
    pub(crate) fn handle_informational_response(
        &mut self,
        now: Instant,
        spi: u64,
        path: Path,
        bytes: &[u8],
    ) {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let Some(out) = &sa.outstanding else { return };
        let purpose = out.purpose;
        let Ok(header) = IkeHeader::parse(bytes) else {
            return;
        };
        if self.open_protected(spi, path, &header, bytes).is_none() {
            return;
        }
        if let Purpose::DeleteChildSa(inbound) = purpose {
            // It may have moved to a rekeyed IKE SA meanwhile.
            self.reclaim_child(spi, inbound);
        }
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        match purpose {
            Purpose::DeleteIkeSa => {
                self.remove(spi);
                return;
            }
            Purpose::DeleteChildSa(inbound) => {
                if let Some(at) = sa.children.iter().position(|c| c.inbound_spi == inbound) {
                    let c = sa.children.remove(at);
                    let id = sa.id;
                    self.events
                        .push_back(Event::ChildSaDeleted(child_deleted(id, &c)));
                }
                self.child_spis.remove(&inbound);
            }
            _ => {}
        }
        self.request_done(now, spi);
    }
}
