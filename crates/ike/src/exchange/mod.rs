//! The exchanges, one file each, as methods of [`crate::Endpoint`]; this
//! file routes a message of a known IKE SA to its exchange after the
//! message ID checks of RFC 7296 §2.3 (window size 1).

mod create_child_sa;
mod ike_auth;
mod ike_intermediate;
mod ike_sa_init;
mod informational;

use std::time::Instant;

use palisade_wire::ikev2::{IkeHeader, exchange_type};

pub(crate) use ike_intermediate::Intermediate;

use crate::Endpoint;
use crate::endpoint::Path;
use crate::error::DropReason;
use crate::ike_sa::State;
use crate::retransmit::Purpose;

impl Endpoint {
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
