//! What a classification returns, and how callouts take part in it.

use std::sync::Arc;

use serde::Serialize;
use smallvec::SmallVec;
use uuid::Uuid;

use crate::catalog::Record;
use crate::layer::Layer;
use crate::objects::ProviderContext;
use crate::value::FieldValues;

/// The final action at a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The traffic may pass (or the keying module uses the policy found).
    Permit,
    /// The traffic is dropped.
    Block,
}

/// What a callout's classify function returns (`FWPS_CLASSIFY_OUT0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CalloutAction {
    /// Permit.
    Permit,
    /// Block.
    Block,
    /// No decision: the next filter of the sublayer decides.
    Continue,
}

/// A callout's answer: its action, and whether it clears the action right, making a permit
/// or block hard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CalloutVerdict {
    /// The action.
    pub action: CalloutAction,
    /// Whether lower sublayers may no longer override it.
    pub clear_right: bool,
}

impl CalloutVerdict {
    /// A soft permit.
    pub const PERMIT: CalloutVerdict = CalloutVerdict {
        action: CalloutAction::Permit,
        clear_right: false,
    };
    /// A soft block.
    pub const BLOCK: CalloutVerdict = CalloutVerdict {
        action: CalloutAction::Block,
        clear_right: false,
    };
    /// Continue.
    pub const CONTINUE: CalloutVerdict = CalloutVerdict {
        action: CalloutAction::Continue,
        clear_right: false,
    };
}

/// What a callout is told about the filter that called it.
#[derive(Debug)]
pub struct CalloutCall<'a> {
    /// The layer being classified.
    pub layer: Layer,
    /// The callout's key.
    pub callout: Uuid,
    /// The calling filter's runtime id.
    pub filter_id: u64,
    /// The calling filter's key.
    pub filter_key: Uuid,
    /// The filter's raw context, if it has one.
    pub raw_context: Option<u64>,
    /// The filter's provider context, if it has one.
    pub provider_context: Option<&'a Arc<Record<ProviderContext>>>,
    /// Whether the action right is still set: `false` means a higher sublayer made a hard
    /// decision, and a block now would be a veto.
    pub right_set: bool,
}

/// The callout functions registered at run time. The engine calls them while it
/// arbitrates; the daemon implements the built-in IPsec callouts.
pub trait Callouts {
    /// Classifies with the callout `call.callout`; `None` means no function is registered
    /// for it, and the filter acts as a block (or a permit with
    /// `PERMIT_IF_CALLOUT_UNREGISTERED`).
    fn classify(&mut self, call: &CalloutCall<'_>, values: &FieldValues) -> Option<CalloutVerdict>;
}

/// No callout registered: every callout filter acts as its unregistered fallback.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCallouts;

impl Callouts for NoCallouts {
    fn classify(&mut self, _: &CalloutCall<'_>, _: &FieldValues) -> Option<CalloutVerdict> {
        None
    }
}

/// A callout called during a classification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CalloutInvoked {
    /// The callout's key.
    pub callout: Uuid,
    /// The calling filter's runtime id.
    pub filter_id: u64,
    /// The filter's raw context.
    pub raw_context: Option<u64>,
    /// The verdict; `None` if the callout was not registered.
    pub verdict: Option<CalloutVerdict>,
}

/// The filter that made the decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Decider {
    /// Its runtime id.
    pub filter_id: u64,
    /// Its key.
    pub filter_key: Uuid,
    /// Its sublayer's key.
    pub sublayer: Uuid,
}

/// A callout block that overturned a hard permit (spec §5): a conflict in the policy,
/// reported to the caller so that it can raise an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Veto {
    /// The filter whose callout vetoed.
    pub filter_id: u64,
    /// The filter whose hard permit was overturned.
    pub overridden_filter_id: u64,
}

/// The result of classifying at a layer.
#[derive(Clone, Debug)]
pub struct Classification {
    /// The decision. With no matching filter it is a soft permit, as in WFP.
    pub decision: Decision,
    /// Whether the action right was cleared (a hard decision).
    pub hard: bool,
    /// The filter that decided, if any matched.
    pub decider: Option<Decider>,
    /// The deciding filter's provider context, if it has one: for the keying modules'
    /// lookups at IKEEXT, IPSEC and IPSEC_KM_DEMUX, the policy to use.
    pub provider_context: Option<Arc<Record<ProviderContext>>>,
    /// The deciding filter's raw context, if it has one.
    pub raw_context: Option<u64>,
    /// The callouts called, in order.
    pub callouts: SmallVec<[CalloutInvoked; 2]>,
    /// A veto, if one happened.
    pub veto: Option<Veto>,
}

impl Classification {
    /// Whether the traffic is permitted.
    pub fn permitted(&self) -> bool {
        self.decision == Decision::Permit
    }
}
