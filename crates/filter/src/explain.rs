//! `explain`: the arbitration walk over every filter of a layer, recorded, with why each
//! condition matched or not, as text for administrators and as JSON for tools.
//!
//! The decision comes from the same [`arbitrate`](crate::arbitrate) function that
//! classification uses; only the candidates differ (every filter here, so that the trace
//! shows the ones the index would skip too).

use std::fmt::Write as _;

use serde::Serialize;
use uuid::Uuid;

use crate::arbitrate::{Effect, Step, Trace, arbitrate};
use crate::classify::{CalloutInvoked, Callouts, Decision, Veto};
use crate::compiled::CompiledFilter;
use crate::engine::Engine;
use crate::field::Field;
use crate::layer::Layer;
use crate::value::{FieldValues, Value};

/// One condition of a considered filter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConditionTrace {
    /// The condition, as text.
    pub condition: String,
    /// The value the classification supplied for its field.
    pub value: Option<String>,
    /// Whether it matched.
    pub matched: bool,
}

/// What happened to one filter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// Not looked at: its sublayer had already decided.
    Skipped,
    /// Its conditions did not all match.
    NoMatch,
    /// Matched but made no decision (an inspection callout, or a callout that continued).
    Continued,
    /// Matched and decided for its sublayer.
    Decided {
        /// Its decision.
        decision: Decision,
        /// Whether the decision was hard.
        hard: bool,
        /// What it did to the layer's result.
        effect: String,
    },
}

/// One considered filter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FilterTrace {
    /// Runtime id.
    pub id: u64,
    /// Key.
    pub key: Uuid,
    /// Name.
    pub name: String,
    /// Effective weight.
    pub weight: u64,
    /// Action, as text.
    pub action: String,
    /// Outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Its conditions and how each fared (empty when skipped).
    pub conditions: Vec<ConditionTrace>,
}

/// One sublayer with the filters of the layer in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SublayerTrace {
    /// Key.
    pub key: Uuid,
    /// Name.
    pub name: String,
    /// Weight.
    pub weight: u16,
    /// Its filters in order.
    pub filters: Vec<FilterTrace>,
}

/// The full trace of a classification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The layer.
    pub layer: Layer,
    /// The values supplied, as text.
    pub values: Vec<(Field, String)>,
    /// Sublayers with filters at this layer, in arbitration order.
    pub sublayers: Vec<SublayerTrace>,
    /// The decision.
    pub decision: Decision,
    /// Whether it is hard.
    pub hard: bool,
    /// The deciding filter's id.
    pub decider: Option<u64>,
    /// The deciding filter's provider context.
    pub provider_context: Option<Uuid>,
    /// Callouts called.
    pub callouts: Vec<CalloutInvoked>,
    /// A veto, if one happened.
    pub veto: Option<Veto>,
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Scalar(s) => s.to_string(),
        Value::Text(t) => format!("{t:?}"),
        Value::Token(t) => {
            let mut parts = Vec::new();
            if let Some(u) = t.uid {
                parts.push(format!("uid {u}"));
            }
            if !t.gids.is_empty() {
                let gids: Vec<String> = t.gids.iter().map(u32::to_string).collect();
                parts.push(format!("gids {}", gids.join(",")));
            }
            parts.extend(t.names.iter().map(|n| format!("{n:?}")));
            if parts.is_empty() {
                "nobody".into()
            } else {
                parts.join(" ")
            }
        }
    }
}

struct Recorder<'v> {
    values: &'v FieldValues,
    catalog: &'v crate::catalog::Catalog,
    steps: Vec<(u64, FilterTrace, Uuid)>,
}

impl Trace for Recorder<'_> {
    const ON: bool = true;

    fn step(&mut self, f: &CompiledFilter, step: Step) {
        let conditions = if step == Step::Skipped {
            Vec::new()
        } else {
            f.conditions()
                .iter()
                .map(|c| {
                    let value = self.values.get(c.field);
                    ConditionTrace {
                        condition: c.to_string(),
                        value: value.map(value_text),
                        matched: c.matches(value),
                    }
                })
                .collect()
        };
        let outcome = match step {
            Step::Skipped => Outcome::Skipped,
            Step::NoMatch => Outcome::NoMatch,
            Step::Continued => Outcome::Continued,
            Step::Decided {
                decision,
                hard,
                effect,
            } => Outcome::Decided {
                decision,
                hard,
                effect: match effect {
                    Effect::First => "first decision of the layer",
                    Effect::Overrode => "overrides the earlier, overridable decision",
                    Effect::Agreed => "agrees with the earlier decision, which stands",
                    Effect::Ignored => "ignored: a higher sublayer made a hard decision",
                    Effect::Vetoed => "VETO: a callout block overturns a hard permit",
                }
                .to_string(),
            },
        };
        let action = match f.action().callout() {
            Some(c) => match self.catalog.callouts.get(&c) {
                Some(r) if !r.object.name.is_empty() => {
                    format!("{} {:?} ({c})", f.action().name(), r.object.name)
                }
                _ => format!("{} {c}", f.action().name()),
            },
            None => f.action().name().to_string(),
        };
        self.steps.push((
            f.id(),
            FilterTrace {
                id: f.id(),
                key: f.record.object.key,
                name: f.record.object.name.clone(),
                weight: f.weight,
                action,
                outcome,
                conditions,
            },
            f.sublayer,
        ));
    }
}

impl Engine {
    /// Classifies at `layer` over every filter and records the walk.
    pub fn explain<C: Callouts + ?Sized>(
        &self,
        layer: Layer,
        values: &FieldValues,
        callouts: &mut C,
    ) -> Explanation {
        let snapshot = self.snapshot();
        let compiled = snapshot.layer(layer);
        let mut recorder = Recorder {
            values,
            catalog: &snapshot.catalog,
            steps: Vec::new(),
        };
        let n = u32::try_from(compiled.filters.len()).unwrap_or(u32::MAX);
        let result = arbitrate(compiled, 0..n, values, callouts, &mut recorder);

        let mut sublayers: Vec<SublayerTrace> = Vec::new();
        for (_, trace, sublayer) in recorder.steps {
            if sublayers.last().is_none_or(|s| s.key != sublayer) {
                let s = snapshot.catalog.sublayers.get(&sublayer);
                sublayers.push(SublayerTrace {
                    key: sublayer,
                    name: s.map(|s| s.object.name.clone()).unwrap_or_default(),
                    weight: s.map_or(0, |s| s.object.weight),
                    filters: Vec::new(),
                });
            }
            if let Some(s) = sublayers.last_mut() {
                s.filters.push(trace);
            }
        }
        Explanation {
            layer,
            values: values.iter().map(|(f, v)| (f, value_text(v))).collect(),
            sublayers,
            decision: result.decision,
            hard: result.hard,
            decider: result.decider.map(|d| d.filter_id),
            provider_context: result.provider_context.map(|p| p.object.key),
            callouts: result.callouts.into_vec(),
            veto: result.veto,
        }
    }
}

fn decision_text(d: Decision, hard: bool) -> String {
    let d = match d {
        Decision::Permit => "PERMIT",
        Decision::Block => "BLOCK",
    };
    format!("{d} ({})", if hard { "hard" } else { "soft" })
}

impl Explanation {
    /// The trace as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    fn filter_label(&self, id: u64) -> String {
        self.sublayers
            .iter()
            .flat_map(|s| &s.filters)
            .find(|f| f.id == id)
            .map(|f| {
                if f.name.is_empty() {
                    format!("filter {id}")
                } else {
                    format!("filter {id} {:?}", f.name)
                }
            })
            .unwrap_or_else(|| format!("filter {id}"))
    }
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        let _ = writeln!(s, "layer {}", self.layer);
        if self.values.is_empty() {
            let _ = writeln!(s, "values: none");
        } else {
            let _ = writeln!(s, "values:");
            for (f, v) in &self.values {
                let _ = writeln!(s, "  {f} = {v}");
            }
        }
        if self.sublayers.is_empty() {
            let _ = writeln!(s, "no filters at this layer");
        }
        for sub in &self.sublayers {
            let name = if sub.name.is_empty() {
                sub.key.to_string()
            } else {
                format!("{:?} ({})", sub.name, sub.key)
            };
            let _ = writeln!(s, "sublayer {name}, weight {:#06x}:", sub.weight);
            for f in &sub.filters {
                let label = if f.name.is_empty() {
                    format!("filter {}", f.id)
                } else {
                    format!("filter {} {:?}", f.id, f.name)
                };
                let verdict = match &f.outcome {
                    Outcome::Skipped => "skipped: its sublayer has already decided".to_string(),
                    Outcome::NoMatch => "does not match".to_string(),
                    Outcome::Continued => "matches; continues (no decision)".to_string(),
                    Outcome::Decided {
                        decision,
                        hard,
                        effect,
                    } => format!("matches -> {}; {effect}", decision_text(*decision, *hard)),
                };
                let _ = writeln!(
                    s,
                    "  {label}, weight {:#x}, {}: {verdict}",
                    f.weight, f.action
                );
                for c in &f.conditions {
                    let mark = if c.matched { "yes" } else { "no " };
                    let value = c.value.as_deref().unwrap_or("(no value)");
                    let _ = writeln!(s, "      [{mark}] {}   (value: {value})", c.condition);
                }
            }
        }
        for c in &self.callouts {
            let v = match c.verdict {
                Some(v) => format!(
                    "{:?}{}",
                    v.action,
                    if v.clear_right {
                        ", clears the right"
                    } else {
                        ""
                    }
                ),
                None => "not registered: its filter acts as a block filter, or as a permit \
                         filter with PERMIT_IF_CALLOUT_UNREGISTERED"
                    .into(),
            };
            let _ = writeln!(s, "callout {} (filter {}): {v}", c.callout, c.filter_id);
        }
        let by = match self.decider {
            Some(id) => format!(" by {}", self.filter_label(id)),
            None => " (no filter matched: the default)".into(),
        };
        let _ = writeln!(
            s,
            "decision: {}{by}",
            decision_text(self.decision, self.hard)
        );
        if let Some(v) = self.veto {
            let _ = writeln!(
                s,
                "veto: {} overturned the hard permit of {}",
                self.filter_label(v.filter_id),
                self.filter_label(v.overridden_filter_id)
            );
        }
        if let Some(pc) = self.provider_context {
            let _ = writeln!(s, "provider context: {pc}");
        }
        out.write_str(&s)
    }
}
