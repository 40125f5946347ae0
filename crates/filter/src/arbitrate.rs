//! Filter arbitration (spec §5, WFP's "Filter Arbitration"): the one walk that both
//! [`crate::Engine::classify`] and [`crate::Engine::explain`] take.
//!
//! - Within a sublayer, matching filters run in descending weight until one permits or
//!   blocks; callouts may continue to the next.
//! - Every sublayer is evaluated, heaviest first. The walk keeps the current action and
//!   the action right: while the right is set, a lower sublayer's decision replaces the
//!   current one; a hard decision (a block filter, a permit filter with
//!   `CLEAR_ACTION_RIGHT`, a callout that clears the right) clears it.
//! - With the right cleared, only a callout's block overturns a hard permit: a veto.

use smallvec::SmallVec;

use crate::classify::{
    CalloutAction, CalloutCall, CalloutInvoked, Callouts, Classification, Decider, Decision, Veto,
};
use crate::compiled::{CompiledFilter, CompiledLayer};
use crate::filter::Action;
use crate::flags::FilterFlags;
use crate::value::FieldValues;

/// What happened to one filter during the walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Not looked at: its sublayer had already decided.
    Skipped,
    /// Its conditions did not match.
    NoMatch,
    /// It matched and returned no decision (inspection callout, or continue).
    Continued,
    /// It matched and decided for its sublayer.
    Decided {
        decision: Decision,
        hard: bool,
        effect: Effect,
    },
}

/// What a sublayer's decision did to the layer's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    /// The first decision of the layer.
    First,
    /// It replaced an overridable decision.
    Overrode,
    /// It agreed with the current soft decision, which stays with the earlier filter.
    Agreed,
    /// The action right was cleared; it changed nothing.
    Ignored,
    /// A callout block overturned a hard permit.
    Vetoed,
}

/// Observes the walk; [`NoTrace`] compiles away.
pub(crate) trait Trace {
    /// Whether the walk reports every filter, including those the index skipped.
    const ON: bool;
    /// A filter was considered.
    fn step(&mut self, _filter: &CompiledFilter, _step: Step) {}
}

/// No observation: the classification path.
pub(crate) struct NoTrace;

impl Trace for NoTrace {
    const ON: bool = false;
}

struct State {
    decision: Option<Decision>,
    right: bool,
    decider: Option<usize>,
    veto: Option<Veto>,
}

/// Arbitrates over `candidates`, positions in `layer.filters` in ascending order (every
/// filter that can match must be among them).
pub(crate) fn arbitrate<I, C, T>(
    layer: &CompiledLayer,
    candidates: I,
    values: &FieldValues,
    callouts: &mut C,
    trace: &mut T,
) -> Classification
where
    I: Iterator<Item = u32>,
    C: Callouts + ?Sized,
    T: Trace,
{
    let mut state = State {
        decision: None,
        right: true,
        decider: None,
        veto: None,
    };
    let mut invoked: SmallVec<[CalloutInvoked; 2]> = SmallVec::new();
    let mut decided_sublayer: Option<u32> = None;

    for pos in candidates {
        let pos = pos as usize;
        let Some(f) = layer.filters.get(pos) else {
            continue;
        };
        if decided_sublayer == Some(f.sublayer_ordinal) {
            if T::ON {
                trace.step(f, Step::Skipped);
            }
            continue;
        }
        if !layer.matches(pos, values) {
            if T::ON {
                trace.step(f, Step::NoMatch);
            }
            continue;
        }
        let flags = f.flags();
        let outcome = match f.action() {
            Action::Permit => Some((
                Decision::Permit,
                flags.contains(FilterFlags::CLEAR_ACTION_RIGHT),
                false,
            )),
            Action::Block => Some((Decision::Block, true, false)),
            action @ (Action::CalloutTerminating(key)
            | Action::CalloutInspection(key)
            | Action::CalloutUnknown(key)) => {
                let call = CalloutCall {
                    layer: layer.layer,
                    callout: key,
                    filter_id: f.id(),
                    filter_key: f.key(),
                    raw_context: f.raw_context(),
                    provider_context: f.provider_context.as_ref(),
                    right_set: state.right,
                };
                let verdict = callouts.classify(&call, values);
                invoked.push(CalloutInvoked {
                    callout: key,
                    filter_id: f.id(),
                    raw_context: call.raw_context,
                    verdict,
                });
                let hard_flag = flags.contains(FilterFlags::CLEAR_ACTION_RIGHT);
                match verdict {
                    // An unregistered callout's filter acts as a block filter, or as a
                    // permit filter when the filter asks for it.
                    None if flags.contains(FilterFlags::PERMIT_IF_CALLOUT_UNREGISTERED) => {
                        Some((Decision::Permit, hard_flag, false))
                    }
                    None => Some((Decision::Block, true, false)),
                    // Inspection callouts look; what they return does not decide.
                    Some(_) if matches!(action, Action::CalloutInspection(_)) => None,
                    Some(v) => match v.action {
                        CalloutAction::Continue => None,
                        CalloutAction::Permit => {
                            Some((Decision::Permit, v.clear_right || hard_flag, true))
                        }
                        CalloutAction::Block => {
                            Some((Decision::Block, v.clear_right || hard_flag, true))
                        }
                    },
                }
            }
        };
        let Some((decision, hard, from_callout)) = outcome else {
            if T::ON {
                trace.step(f, Step::Continued);
            }
            continue;
        };
        decided_sublayer = Some(f.sublayer_ordinal);
        let effect = match state.decision {
            None => {
                state.decision = Some(decision);
                state.right = !hard;
                state.decider = Some(pos);
                Effect::First
            }
            Some(current) if state.right => {
                if current != decision || hard {
                    state.decision = Some(decision);
                    state.right = !hard;
                    state.decider = Some(pos);
                    Effect::Overrode
                } else {
                    Effect::Agreed
                }
            }
            Some(Decision::Permit) if decision == Decision::Block && from_callout => {
                let overridden = state
                    .decider
                    .and_then(|d| layer.filters.get(d))
                    .map_or(0, CompiledFilter::id);
                state.decision = Some(Decision::Block);
                state.veto = Some(Veto {
                    filter_id: f.id(),
                    overridden_filter_id: overridden,
                });
                state.decider = Some(pos);
                Effect::Vetoed
            }
            Some(_) => Effect::Ignored,
        };
        if T::ON {
            trace.step(
                f,
                Step::Decided {
                    decision,
                    hard,
                    effect,
                },
            );
        }
    }

    let decider = state.decider.and_then(|d| layer.filters.get(d));
    Classification {
        decision: state.decision.unwrap_or(Decision::Permit),
        hard: state.decision.is_some() && !state.right,
        decider: decider.map(|f| Decider {
            filter_id: f.id(),
            filter_key: f.key(),
            sublayer: f.sublayer,
        }),
        provider_context: decider.and_then(|f| f.provider_context.clone()),
        raw_context: decider.and_then(CompiledFilter::raw_context),
        callouts: invoked,
        veto: state.veto,
    }
}
