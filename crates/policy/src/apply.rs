//! Applying a compiled policy: the diff, carried out in one write transaction. Either
//! every change commits or none does; a failure leaves the engine's policy as it was.

use std::collections::BTreeSet;

use palisade_filter::{Engine, FilterContext, ObjectKind, Session, TxnKind};
use uuid::Uuid;

use crate::compile::Compiled;
use crate::diff::{Diff, Held, Op, between};
use crate::error::PolicyFileError;

/// Makes `engine` hold exactly `compiled` among Palisade's objects, through `session`
/// (a session of `engine`); returns what changed. The diff is computed inside the transaction, under the
/// engine's writer lock, so nothing can change between computing and applying it.
pub fn apply(
    _engine: &Engine,
    session: &mut Session,
    compiled: &Compiled,
) -> Result<Diff, PolicyFileError> {
    let caller = session.caller().clone();
    let mut txn = session.begin(TxnKind::Write)?;
    let held = Held::read(txn.catalog(), &caller);
    let diff = between(&held, compiled);
    if diff.is_empty() {
        return Ok(diff);
    }
    let touched = |kind: ObjectKind, ops: &[Op]| -> BTreeSet<Uuid> {
        diff.changes
            .iter()
            .filter(|c| c.kind == kind && ops.contains(&c.op))
            .map(|c| c.key)
            .collect()
    };
    let gone = [Op::Change, Op::Remove];
    // Replacing the provider or the sublayer means replacing everything that refers to
    // them; rare (a new sublayer weight), so done wholesale.
    let wholesale = !touched(ObjectKind::Provider, &gone).is_empty()
        || !touched(ObjectKind::Sublayer, &gone).is_empty();
    let contexts_gone = touched(ObjectKind::ProviderContext, &gone);
    let filters_gone = touched(ObjectKind::Filter, &gone);

    // Filters first (they refer to contexts and the sublayer), then what they refer to.
    let mut deleted_filters = BTreeSet::new();
    for (key, f) in &held.filters {
        let relinked = matches!(f.context, FilterContext::ProviderContext(c) if contexts_gone.contains(&c) || wholesale);
        if wholesale || relinked || filters_gone.contains(key) {
            txn.delete(ObjectKind::Filter, *key)?;
            deleted_filters.insert(*key);
        }
    }
    for key in held.contexts.keys() {
        if wholesale || contexts_gone.contains(key) {
            txn.delete(ObjectKind::ProviderContext, *key)?;
        }
    }
    let mut sublayer_deleted = false;
    for key in held.sublayers.keys() {
        if wholesale {
            txn.delete(ObjectKind::Sublayer, *key)?;
            sublayer_deleted = true;
        }
    }
    let provider_deleted = wholesale && held.provider.is_some();
    if provider_deleted {
        txn.delete(ObjectKind::Provider, crate::keys::PALISADE_PROVIDER)?;
    }

    if held.provider.is_none() || provider_deleted {
        txn.add_provider(compiled.provider.clone())?;
    }
    if !held.sublayers.contains_key(&compiled.sublayer.key) || sublayer_deleted {
        txn.add_sublayer(compiled.sublayer.clone())?;
    }
    for c in &compiled.contexts {
        if wholesale || contexts_gone.contains(&c.key) || !held.contexts.contains_key(&c.key) {
            txn.add_provider_context(c.clone())
                .map_err(|e| refused("provider context", &c.name, e))?;
        }
    }
    for f in &compiled.filters {
        if !held.filters.contains_key(&f.key) || deleted_filters.contains(&f.key) {
            txn.add_filter(f.clone())
                .map_err(|e| refused("filter", &f.name, e))?;
        }
    }
    txn.commit()?;
    Ok(diff)
}

/// Names the object the engine refused, so the administrator sees the rule (filters and
/// contexts are named after their rules).
fn refused(kind: &str, name: &str, source: palisade_filter::EngineError) -> PolicyFileError {
    PolicyFileError::Refused {
        object: format!("{kind} {name:?}"),
        source,
    }
}
