//! What the daemon implements to answer requests: the server calls it with the peer's
//! credentials and the parsed request.

use std::sync::mpsc::Receiver;

use palisade_filter::Caller;

use crate::protocol::{NetEvent, Request, Response};

/// Answers requests for one daemon. Called from the server's connection threads, so
/// several calls run at once.
///
/// The daemon answers its own requests (status, SAs, stats) and hands the engine's
/// (policy, filter, sublayer, provider, context, explain) to
/// [`crate::EngineService::handle`], which opens an engine session as `caller` so the
/// engine's access control decides. `Request::Events` never reaches `handle`: the
/// server answers it through [`Handler::events`].
pub trait Handler {
    /// The response to `request` from `caller`.
    fn handle(&self, caller: &Caller, request: Request) -> Response;

    /// The net events after sequence number `since` (all the ring holds without it),
    /// oldest first, and a receiver of the events raised from now on, so nothing falls
    /// between the two. The daemon owns the ring; a refused caller gets an error
    /// response. The stream ends when the sender is dropped or the client goes away.
    fn events(
        &self,
        caller: &Caller,
        since: Option<u64>,
    ) -> Result<(Vec<NetEvent>, Receiver<NetEvent>), Response>;
}
