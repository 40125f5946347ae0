//! Enumeration templates (`FWPM_FILTER_ENUM_TEMPLATE0`): which filters to list, by layer,
//! provider, sublayer, action and callout, and by conditions that overlap the filter's or
//! fully contain them.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use crate::catalog::{Catalog, Record, universal_sublayer};
use crate::condition::Condition;
use crate::field::Field;
use crate::filter::{Action, Filter};
use crate::layer::Layer;
use crate::security::{Caller, Rights};
use crate::store::ObjectKind;

/// How a template's conditions select filters (`FWP_FILTER_ENUM_TYPE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EnumType {
    /// Filters whose match set lies inside the template's (`FULLY_CONTAINED`).
    FullyContained,
    /// Filters whose match set meets the template's (`OVERLAPPING`).
    #[default]
    Overlapping,
}

/// The kind of an action, for action masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionKind {
    /// BLOCK.
    Block,
    /// PERMIT.
    Permit,
    /// CALLOUT_TERMINATING.
    CalloutTerminating,
    /// CALLOUT_INSPECTION.
    CalloutInspection,
    /// CALLOUT_UNKNOWN.
    CalloutUnknown,
}

impl ActionKind {
    fn of(a: Action) -> ActionKind {
        match a {
            Action::Block => ActionKind::Block,
            Action::Permit => ActionKind::Permit,
            Action::CalloutTerminating(_) => ActionKind::CalloutTerminating,
            Action::CalloutInspection(_) => ActionKind::CalloutInspection,
            Action::CalloutUnknown(_) => ActionKind::CalloutUnknown,
        }
    }
}

/// Which filters to list. Empty parts select everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FilterTemplate {
    /// Only this layer.
    pub layer: Option<Layer>,
    /// Only this provider's.
    pub provider: Option<Uuid>,
    /// Only this sublayer's.
    pub sublayer: Option<Uuid>,
    /// Only these actions; empty means any.
    pub actions: Vec<ActionKind>,
    /// Only filters calling this callout.
    pub callout: Option<Uuid>,
    /// Conditions the filters must overlap or lie inside; conditions on one field are
    /// alternatives.
    pub conditions: Vec<Condition>,
    /// How `conditions` select.
    pub enum_type: EnumType,
}

/// A set of values of one field: a union of inclusive intervals, or "not an interval
/// set" (text, flags, security descriptors), kept as the conditions themselves.
#[derive(Clone, Debug, PartialEq)]
enum FieldSet {
    Intervals(Vec<(u128, u128)>),
    Opaque(Vec<Condition>),
}

fn union(mut v: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    v.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(v.len());
    for (lo, hi) in v {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

fn intersect(a: &[(u128, u128)], b: &[(u128, u128)]) -> Vec<(u128, u128)> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let lo = a[i].0.max(b[j].0);
        let hi = a[i].1.min(b[j].1);
        if lo <= hi {
            out.push((lo, hi));
        }
        if a[i].1 < b[j].1 { i += 1 } else { j += 1 }
    }
    out
}

fn contains(outer: &[(u128, u128)], inner: &[(u128, u128)]) -> bool {
    inner
        .iter()
        .all(|(lo, hi)| outer.iter().any(|(a, b)| a <= lo && hi <= b))
}

fn group_set(group: &[Condition]) -> FieldSet {
    let mut intervals = Vec::new();
    for c in group {
        match c.intervals() {
            Some(s) => intervals.extend_from_slice(s.as_slice()),
            None => return FieldSet::Opaque(group.to_vec()),
        }
    }
    FieldSet::Intervals(union(intervals))
}

/// Per field, the set a filter's conditions allow: groups of consecutive conditions on a
/// field are unions; several groups on one field intersect.
fn filter_sets(conditions: &[Condition]) -> BTreeMap<Field, FieldSet> {
    let mut sets: BTreeMap<Field, FieldSet> = BTreeMap::new();
    let mut i = 0;
    while i < conditions.len() {
        let start = i;
        let field = conditions[i].field;
        while i < conditions.len() && conditions[i].field == field {
            i += 1;
        }
        let set = group_set(&conditions[start..i]);
        let merged = match (sets.remove(&field), set) {
            (None, s) => s,
            (Some(FieldSet::Intervals(a)), FieldSet::Intervals(b)) => {
                FieldSet::Intervals(intersect(&a, &b))
            }
            (Some(FieldSet::Opaque(mut a)), FieldSet::Opaque(b)) => {
                a.extend(b);
                FieldSet::Opaque(a)
            }
            (Some(FieldSet::Opaque(a)), FieldSet::Intervals(_))
            | (Some(FieldSet::Intervals(_)), FieldSet::Opaque(a)) => FieldSet::Opaque(a),
        };
        sets.insert(field, merged);
    }
    sets
}

/// Per field, the set a template's conditions describe: every condition on a field is an
/// alternative.
fn template_sets(conditions: &[Condition]) -> BTreeMap<Field, FieldSet> {
    let mut by_field: BTreeMap<Field, Vec<Condition>> = BTreeMap::new();
    for c in conditions {
        by_field.entry(c.field).or_default().push(c.clone());
    }
    by_field
        .into_iter()
        .map(|(f, group)| (f, group_set(&group)))
        .collect()
}

impl FilterTemplate {
    /// Whether a filter is selected.
    pub fn selects(&self, f: &Filter) -> bool {
        if self.layer.is_some_and(|l| l != f.layer)
            || self.provider.is_some_and(|p| f.provider != Some(p))
            || self
                .sublayer
                .is_some_and(|s| f.sublayer.unwrap_or_else(universal_sublayer) != s)
            || (!self.actions.is_empty() && !self.actions.contains(&ActionKind::of(f.action)))
            || self.callout.is_some_and(|c| f.action.callout() != Some(c))
        {
            return false;
        }
        if self.conditions.is_empty() {
            return true;
        }
        let template = template_sets(&self.conditions);
        let filter = filter_sets(&f.conditions);
        match self.enum_type {
            EnumType::Overlapping => {
                template
                    .iter()
                    .all(|(field, t)| match (t, filter.get(field)) {
                        // The filter does not constrain the field: it meets any set.
                        (_, None) => true,
                        (FieldSet::Intervals(t), Some(FieldSet::Intervals(s))) => {
                            !intersect(t, s).is_empty()
                        }
                        // Text, flags and descriptors cannot be intersected exactly; assume they
                        // meet, as listing too much is safer than hiding a filter.
                        _ => true,
                    })
            }
            EnumType::FullyContained => {
                template
                    .iter()
                    .all(|(field, t)| match (t, filter.get(field)) {
                        (_, None) => false,
                        (FieldSet::Intervals(t), Some(FieldSet::Intervals(s))) => contains(t, s),
                        (FieldSet::Opaque(t), Some(FieldSet::Opaque(s))) => {
                            s.iter().all(|c| t.contains(c))
                        }
                        _ => false,
                    })
            }
        }
    }
}

impl Catalog {
    /// The filters the template selects that `caller` may read, by key.
    pub fn enum_filters(
        &self,
        caller: &Caller,
        template: &FilterTemplate,
    ) -> Vec<Arc<Record<Filter>>> {
        self.filters
            .iter()
            .filter(|(_, r)| template.selects(&r.object))
            .filter(|(k, r)| {
                self.check_object(caller, ObjectKind::Filter, **k, r, Rights::READ)
                    .is_ok()
            })
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// A filter by key.
    pub fn filter(&self, key: Uuid) -> Option<&Arc<Record<Filter>>> {
        self.filters.get(&key)
    }

    /// A filter by runtime id.
    pub fn filter_by_id(&self, id: u64) -> Option<&Arc<Record<Filter>>> {
        self.filter_ids.get(&id).and_then(|k| self.filters.get(k))
    }

    /// Every provider.
    pub fn providers(&self) -> impl Iterator<Item = &Arc<Record<crate::objects::Provider>>> {
        self.providers.values()
    }

    /// Every sublayer.
    pub fn sublayers(&self) -> impl Iterator<Item = &Arc<Record<crate::objects::Sublayer>>> {
        self.sublayers.values()
    }

    /// Every callout.
    pub fn callouts(&self) -> impl Iterator<Item = &Arc<Record<crate::objects::Callout>>> {
        self.callouts.values()
    }

    /// Every provider context.
    pub fn provider_contexts(
        &self,
    ) -> impl Iterator<Item = &Arc<Record<crate::objects::ProviderContext>>> {
        self.contexts.values()
    }

    /// How many filters there are.
    pub fn filter_count(&self) -> usize {
        self.filters.len()
    }
}
