//! ALE_USER_ID and ALE_APP_ID: the user and the program behind a flow's local socket,
//! which WFP takes from the socket a packet belongs to. A packet the daemon reads carries
//! no socket, so the callouts ask a [`SocketOwners`] (the daemon's asks the kernel, see
//! `socket_owners.rs`), and only where a filter of the ALE layer being classified has a
//! condition on the field: a policy without such filters costs no lookup. Classifying a
//! connection start at an ALE layer is once per flow (the decisions are cached), and so
//! is the lookup. A program still being looked for off the data path (a scan of /proc
//! that would hold up a worker) makes [`OwnerLookup::fill`] answer "not settled": the
//! callouts then drop the connection start without a decision and cache nothing, and
//! the connection's next packet (a SYN's retransmission) is judged with the program.

use std::fmt;
use std::sync::Arc;

use palisade_filter::{Field, FieldValues, Layer, Snapshot, Token, Value};

use super::Flow;

/// The owner of a local socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalOwner {
    /// The user that created the socket.
    pub uid: u32,
    /// That user's groups.
    pub gids: Vec<u32>,
    /// The program of a process holding the socket (its executable's path), when asked
    /// for and known.
    pub program: Option<String>,
    /// The program was asked for and is still being looked for: a decision made
    /// without it must not be remembered.
    pub pending: bool,
}

/// Who holds the local socket of a flow: the listening or bound socket a connection
/// start we receive would reach, or the socket a connection start we send came from.
pub trait SocketOwners: Send {
    /// The owner of `flow`'s local socket; with `program`, also its program. `None`
    /// when no local socket is the flow's (a forwarded flow, a socket already closed).
    fn lookup(&mut self, flow: &Flow, program: bool) -> Option<LocalOwner>;
}

/// Makes the lookup of each thread's callouts (one per [`super::IpsecCallout::share`]).
pub type SocketOwnersFactory = Arc<dyn Fn() -> Box<dyn SocketOwners> + Send + Sync>;

/// The ALE layers whose fields include the user and the program.
const ALE_LAYERS: [Layer; 4] = [
    Layer::AleAuthConnectV4,
    Layer::AleAuthConnectV6,
    Layer::AleAuthRecvAcceptV4,
    Layer::AleAuthRecvAcceptV6,
];

/// Which of the two fields a layer's filters test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Needs {
    user: bool,
    program: bool,
}

/// A thread's lookup, and what the current snapshot's ALE filters need from it.
pub(crate) struct OwnerLookup {
    factory: SocketOwnersFactory,
    owners: Box<dyn SocketOwners>,
    needs: [Needs; ALE_LAYERS.len()],
}

impl fmt::Debug for OwnerLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnerLookup")
            .field("needs", &self.needs)
            .finish_non_exhaustive()
    }
}

impl OwnerLookup {
    pub fn new(factory: SocketOwnersFactory, snapshot: &Snapshot) -> OwnerLookup {
        let owners = factory();
        let mut lookup = OwnerLookup {
            factory,
            owners,
            needs: Default::default(),
        };
        lookup.follow(snapshot);
        lookup
    }

    /// Another thread's lookup for the same snapshot.
    pub fn fresh(&self) -> OwnerLookup {
        OwnerLookup {
            factory: Arc::clone(&self.factory),
            owners: (self.factory)(),
            needs: self.needs,
        }
    }

    /// Notes which ALE layers of `snapshot` test the user or the program.
    pub fn follow(&mut self, snapshot: &Snapshot) {
        for (need, layer) in self.needs.iter_mut().zip(ALE_LAYERS) {
            let tests = |field: Field| {
                snapshot
                    .layer(layer)
                    .filters
                    .iter()
                    .any(|f| f.record.object.conditions.iter().any(|c| c.field == field))
            };
            *need = Needs {
                user: tests(Field::AleUserId),
                program: tests(Field::AleAppId),
            };
        }
    }

    /// Sets ALE_USER_ID and ALE_APP_ID in `values` for classifying `flow` at `layer`,
    /// where a filter there tests them and the owner is known; unsets them otherwise.
    /// False when the program is still being looked for: the decision may be cached
    /// only when this is true.
    pub fn fill(&mut self, layer: Layer, flow: &Flow, values: &mut FieldValues) -> bool {
        values.unset(Field::AleUserId);
        values.unset(Field::AleAppId);
        let need = ALE_LAYERS
            .iter()
            .position(|l| *l == layer)
            .map(|i| self.needs[i])
            .unwrap_or_default();
        if !need.user && !need.program {
            return true;
        }
        let Some(owner) = self.owners.lookup(flow, need.program) else {
            return true;
        };
        let settled = !(need.program && owner.pending);
        if need.user {
            values.set(
                Field::AleUserId,
                Value::Token(Token::user(owner.uid, owner.gids)),
            );
        }
        if let Some(program) = owner.program.filter(|_| need.program) {
            values.set(Field::AleAppId, Value::Text(program));
        }
        settled
    }
}

/// [`OwnerLookup::fill`] where there may be no lookup: the fields stay unset, and
/// conditions on them do not match (a settled decision: true).
pub(crate) fn fill_owner(
    lookup: Option<&mut OwnerLookup>,
    layer: Layer,
    flow: &Flow,
    values: &mut FieldValues,
) -> bool {
    match lookup {
        Some(l) => l.fill(layer, flow, values),
        None => {
            values.unset(Field::AleUserId);
            values.unset(Field::AleAppId);
            true
        }
    }
}
