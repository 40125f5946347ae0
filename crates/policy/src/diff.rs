//! The difference between a compiled policy and what an engine holds: objects to add,
//! change and remove, among Palisade's own (its provider's) only. Other providers'
//! objects are never read into the diff, so applying it never touches them.

use std::collections::BTreeMap;
use std::fmt;

use palisade_filter::{
    Caller, Catalog, Engine, Filter, FilterTemplate, Layer, ObjectKind, Provider, ProviderContext,
    Sublayer,
};
use serde::Serialize;
use uuid::Uuid;

use crate::compile::Compiled;
use crate::keys::PALISADE_PROVIDER;

/// What happens to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// The policy has it; the engine does not.
    Add,
    /// Both have it, differently: it is replaced.
    Change,
    /// The engine has it; the policy does not.
    Remove,
}

/// One object's change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectChange {
    /// Add, change or remove.
    pub op: Op,
    /// The kind of object.
    pub kind: ObjectKind,
    /// Its key.
    pub key: Uuid,
    /// Its name (filters: `rule: role`).
    pub name: String,
    /// A filter's layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<Layer>,
    /// For a change, the fields that differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

/// Every change, providers first, then sublayers, provider contexts and filters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// The policy's name.
    pub policy: String,
    /// The changes.
    pub changes: Vec<ObjectChange>,
}

impl Diff {
    /// Whether applying would change nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// How many objects are added, changed and removed.
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |op| self.changes.iter().filter(|c| c.op == op).count();
        (n(Op::Add), n(Op::Change), n(Op::Remove))
    }

    /// The changes of one operation.
    pub fn of(&self, op: Op) -> impl Iterator<Item = &ObjectChange> {
        self.changes.iter().filter(move |c| c.op == op)
    }

    /// The diff as JSON, for tools.
    pub fn to_json(&self) -> String {
        // Every field is a plain value; serialization cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// For administrators, like `terraform plan`: one line per object, `+` added, `~`
/// changed (with the fields), `-` removed, then the totals.
impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(
                f,
                "policy {:?}: no changes; the engine already holds it.",
                self.policy
            );
        }
        writeln!(f, "policy {:?}:", self.policy)?;
        for c in &self.changes {
            let sign = match c.op {
                Op::Add => '+',
                Op::Change => '~',
                Op::Remove => '-',
            };
            write!(f, "  {sign} {:<16} {}", kind_name(c.kind), c.name)?;
            if let Some(layer) = c.layer {
                write!(f, " [{layer}]")?;
            }
            if !c.fields.is_empty() {
                write!(f, " (changed: {})", c.fields.join(", "))?;
            }
            writeln!(f)?;
        }
        let (a, c, r) = self.counts();
        writeln!(f, "{a} to add, {c} to change, {r} to remove.")
    }
}

fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Provider => "provider",
        ObjectKind::Sublayer => "sublayer",
        ObjectKind::Callout => "callout",
        ObjectKind::ProviderContext => "provider context",
        ObjectKind::Filter => "filter",
    }
}

/// Palisade's objects as an engine holds them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Held {
    pub provider: Option<Provider>,
    pub sublayers: BTreeMap<Uuid, Sublayer>,
    pub contexts: BTreeMap<Uuid, ProviderContext>,
    pub filters: BTreeMap<Uuid, Filter>,
}

impl Held {
    pub fn read(catalog: &Catalog, caller: &Caller) -> Held {
        let ours = Some(PALISADE_PROVIDER);
        let template = FilterTemplate {
            provider: ours,
            ..FilterTemplate::default()
        };
        Held {
            provider: catalog
                .providers()
                .find(|p| p.object.key == PALISADE_PROVIDER)
                .map(|p| p.object.clone()),
            sublayers: catalog
                .sublayers()
                .filter(|s| s.object.provider == ours)
                .map(|s| (s.object.key, s.object.clone()))
                .collect(),
            contexts: catalog
                .provider_contexts()
                .filter(|c| c.object.provider == ours)
                .map(|c| (c.object.key, c.object.clone()))
                .collect(),
            filters: catalog
                .enum_filters(caller, &template)
                .into_iter()
                .map(|f| (f.object.key, f.object.clone()))
                .collect(),
        }
    }
}

/// The fields (as serialized) whose values differ.
fn changed_fields<T: Serialize>(held: &T, wanted: &T) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(held), serde_json::to_value(wanted))
    else {
        return vec!["(value)".into()];
    };
    let mut out: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    out.extend(b.keys().filter(|k| !a.contains_key(*k)).cloned());
    out
}

fn compare<T: Serialize + PartialEq>(
    out: &mut Vec<ObjectChange>,
    kind: ObjectKind,
    held: &BTreeMap<Uuid, T>,
    wanted: &BTreeMap<Uuid, T>,
    describe: impl Fn(&T) -> (String, Option<Layer>),
) {
    let mut changes = Vec::new();
    for (key, w) in wanted {
        let (name, layer) = describe(w);
        match held.get(key) {
            None => changes.push(ObjectChange {
                op: Op::Add,
                kind,
                key: *key,
                name,
                layer,
                fields: Vec::new(),
            }),
            Some(h) if h != w => changes.push(ObjectChange {
                op: Op::Change,
                kind,
                key: *key,
                name,
                layer,
                fields: changed_fields(h, w),
            }),
            Some(_) => {}
        }
    }
    for (key, h) in held {
        if !wanted.contains_key(key) {
            let (name, layer) = describe(h);
            changes.push(ObjectChange {
                op: Op::Remove,
                kind,
                key: *key,
                name,
                layer,
                fields: Vec::new(),
            });
        }
    }
    changes.sort_by(|a, b| (a.op, &a.name, a.key).cmp(&(b.op, &b.name, b.key)));
    out.extend(changes);
}

pub(crate) fn between(held: &Held, compiled: &Compiled) -> Diff {
    let mut changes = Vec::new();
    let one = |p: Option<&Provider>| -> BTreeMap<Uuid, Provider> {
        p.map(|p| (p.key, p.clone())).into_iter().collect()
    };
    compare(
        &mut changes,
        ObjectKind::Provider,
        &one(held.provider.as_ref()),
        &one(Some(&compiled.provider)),
        |p| (p.name.clone(), None),
    );
    let sublayers: BTreeMap<Uuid, Sublayer> =
        [(compiled.sublayer.key, compiled.sublayer.clone())].into();
    compare(
        &mut changes,
        ObjectKind::Sublayer,
        &held.sublayers,
        &sublayers,
        |s| (s.name.clone(), None),
    );
    let contexts: BTreeMap<Uuid, ProviderContext> = compiled
        .contexts
        .iter()
        .map(|c| (c.key, c.clone()))
        .collect();
    compare(
        &mut changes,
        ObjectKind::ProviderContext,
        &held.contexts,
        &contexts,
        |c| (c.name.clone(), None),
    );
    let filters: BTreeMap<Uuid, Filter> = compiled
        .filters
        .iter()
        .map(|f| (f.key, f.clone()))
        .collect();
    compare(
        &mut changes,
        ObjectKind::Filter,
        &held.filters,
        &filters,
        |f| (f.name.clone(), Some(f.layer)),
    );
    Diff {
        policy: compiled.name.clone(),
        changes,
    }
}

/// What applying `compiled` to this catalog would change, reading as `caller`.
pub fn diff_catalog(catalog: &Catalog, caller: &Caller, compiled: &Compiled) -> Diff {
    between(&Held::read(catalog, caller), compiled)
}

/// What applying `compiled` to `engine` now would change.
pub fn diff(engine: &Engine, compiled: &Compiled) -> Diff {
    diff_catalog(&engine.snapshot().catalog, &Caller::root(), compiled)
}
