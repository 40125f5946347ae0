//! The filtering engine's requests (policy, filter, sublayer, provider, context,
//! explain), answered through an engine session opened as the caller, so that the
//! engine's access control decides what each caller may see and change.

use std::sync::Arc;

use palisade_filter::{
    Caller, Callouts, Engine, EngineError, Filter, FilterTemplate, Layer, NoCallouts, ObjectKind,
    Provider, ProviderContext, Record, Rights, Session, SessionOptions, Sublayer, TxnKind,
    catalog::kind_name,
};
use palisade_policy::{Compiled, Diagnostic, PALISADE_PROVIDER, PolicyFileError};
use serde::Serialize;
use uuid::Uuid;

use crate::error::ErrorCode;
use crate::field_values::parse_field_values;
use crate::protocol::{Export, PolicyChange, PolicyChanges, Request, Response};

/// What replaces a pre-shared key in objects sent to clients: keys never leave the
/// daemon through the control socket, whatever the caller may read.
pub const REDACTED: &str = "<redacted>";

/// Makes the callouts an `explain` runs with (the daemon's own, so that the trace shows
/// what its data plane would decide).
pub type CalloutsFactory = Arc<dyn Fn() -> Box<dyn Callouts> + Send + Sync>;

/// Answers the engine's requests.
#[derive(Clone)]
pub struct EngineService {
    engine: Engine,
    callouts: Option<CalloutsFactory>,
}

impl std::fmt::Debug for EngineService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineService")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl EngineService {
    /// A service over `engine`. `explain` runs without callouts (a callout filter acts
    /// as if its callout were not registered) until [`EngineService::with_callouts`].
    pub fn new(engine: Engine) -> EngineService {
        EngineService {
            engine,
            callouts: None,
        }
    }

    /// `explain` runs with the callouts `factory` makes.
    pub fn with_callouts(mut self, factory: CalloutsFactory) -> EngineService {
        self.callouts = Some(factory);
        self
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The response to an engine request; `None` for the daemon's own requests (status,
    /// SAs, stats, events).
    pub fn handle(&self, caller: &Caller, request: &Request) -> Option<Response> {
        let answer = match request {
            Request::PolicyApply {
                file,
                text,
                dry_run,
            } => self.policy_apply(caller, file, text, *dry_run),
            Request::PolicyDiff { file, text } => self.policy_apply(caller, file, text, true),
            Request::PolicyExport => self.policy_export(caller),
            Request::FilterList { layer } => self.filter_list(caller, layer.as_deref()),
            Request::FilterShow { id } => self.show(caller, ObjectKind::Filter, id),
            Request::FilterAdd { filter } => self.add::<Filter>(caller, filter),
            Request::FilterDelete { id } => self.delete(caller, ObjectKind::Filter, id),
            Request::SublayerList => self.list(caller, ObjectKind::Sublayer),
            Request::SublayerShow { id } => self.show(caller, ObjectKind::Sublayer, id),
            Request::SublayerAdd { sublayer } => self.add::<Sublayer>(caller, sublayer),
            Request::SublayerDelete { id } => self.delete(caller, ObjectKind::Sublayer, id),
            Request::ProviderList => self.list(caller, ObjectKind::Provider),
            Request::ProviderShow { id } => self.show(caller, ObjectKind::Provider, id),
            Request::ProviderAdd { provider } => self.add::<Provider>(caller, provider),
            Request::ProviderDelete { id } => self.delete(caller, ObjectKind::Provider, id),
            Request::ContextList => self.list(caller, ObjectKind::ProviderContext),
            Request::ContextShow { id } => self.show(caller, ObjectKind::ProviderContext, id),
            Request::ContextAdd { context } => self.add::<ProviderContext>(caller, context),
            Request::ContextDelete { id } => self.delete(caller, ObjectKind::ProviderContext, id),
            Request::Explain { layer, fields } => self.explain(caller, layer, fields),
            Request::Status
            | Request::PolicyReload
            | Request::SaList
            | Request::SaShow { .. }
            | Request::SaDelete { .. }
            | Request::Stats
            | Request::Events { .. } => return None,
        };
        Some(answer.unwrap_or_else(|refusal| refusal))
    }

    fn session(&self, caller: &Caller) -> Result<Session, Response> {
        self.engine
            .open_session(
                caller.clone(),
                SessionOptions {
                    name: format!("palisade control (uid {})", caller.uid),
                    ..SessionOptions::default()
                },
            )
            .map_err(|e| engine_error(caller, &e, "open an engine session"))
    }

    fn policy_apply(
        &self,
        caller: &Caller,
        file: &str,
        text: &str,
        dry_run: bool,
    ) -> Result<Response, Response> {
        let compiled = palisade_policy::compile_str(file, text).map_err(|d| diagnostic(&d))?;
        let mut session = self.session(caller)?;
        let diff = if dry_run {
            let txn = session
                .begin(TxnKind::ReadOnly)
                .map_err(|e| engine_error(caller, &e, "read the engine's policy"))?;
            palisade_policy::diff_catalog(txn.catalog(), caller, &compiled)
        } else {
            palisade_policy::apply(&self.engine, &mut session, &compiled)
                .map_err(|e| apply_error(caller, &e))?
        };
        Ok(Response::PolicyChanges(changes(&compiled, &diff, !dry_run)))
    }

    fn policy_export(&self, caller: &Caller) -> Result<Response, Response> {
        let mut session = self.session(caller)?;
        let txn = session
            .begin(TxnKind::ReadOnly)
            .map_err(|e| engine_error(caller, &e, "read the engine's policy"))?;
        let catalog = txn.catalog();
        let ours = Some(PALISADE_PROVIDER);
        let readable = |kind, key| {
            catalog
                .check_object_access(caller, kind, key, Rights::READ)
                .is_ok()
        };
        let provider = catalog
            .providers()
            .find(|p| p.object.key == PALISADE_PROVIDER)
            .filter(|p| readable(ObjectKind::Provider, p.object.key))
            .map(|p| to_json(p.as_ref()));
        let sublayers = catalog
            .sublayers()
            .filter(|s| s.object.provider == ours && readable(ObjectKind::Sublayer, s.object.key))
            .map(|s| to_json(s.as_ref()))
            .collect();
        let contexts = catalog
            .provider_contexts()
            .filter(|c| {
                c.object.provider == ours && readable(ObjectKind::ProviderContext, c.object.key)
            })
            .map(|c| to_json(c.as_ref()))
            .collect();
        let template = FilterTemplate {
            provider: ours,
            ..FilterTemplate::default()
        };
        let filters = catalog
            .enum_filters(caller, &template)
            .iter()
            .map(|f| to_json(f.as_ref()))
            .collect();
        Ok(Response::Export(Export {
            provider,
            sublayers,
            contexts,
            filters,
        }))
    }

    fn filter_list(&self, caller: &Caller, layer: Option<&str>) -> Result<Response, Response> {
        let layer = layer.map(parse_layer).transpose()?;
        let mut session = self.session(caller)?;
        let txn = session
            .begin(TxnKind::ReadOnly)
            .map_err(|e| engine_error(caller, &e, "list filters"))?;
        let template = FilterTemplate {
            layer,
            ..FilterTemplate::default()
        };
        let mut filters = txn.catalog().enum_filters(caller, &template);
        filters.sort_by_key(|f| f.id);
        let objects = filters.iter().map(|f| to_json(f.as_ref())).collect();
        Ok(Response::Objects { objects })
    }

    fn list(&self, caller: &Caller, kind: ObjectKind) -> Result<Response, Response> {
        let mut session = self.session(caller)?;
        let txn = session
            .begin(TxnKind::ReadOnly)
            .map_err(|e| engine_error(caller, &e, &format!("list {}s", kind_name(kind))))?;
        let catalog = txn.catalog();
        let readable = |key| {
            catalog
                .check_object_access(caller, kind, key, Rights::READ)
                .is_ok()
        };
        let objects = match kind {
            ObjectKind::Provider => catalog
                .providers()
                .filter(|r| readable(r.object.key))
                .map(|r| to_json(r.as_ref()))
                .collect(),
            ObjectKind::Sublayer => catalog
                .sublayers()
                .filter(|r| readable(r.object.key))
                .map(|r| to_json(r.as_ref()))
                .collect(),
            ObjectKind::ProviderContext => {
                let mut contexts: Vec<_> = catalog
                    .provider_contexts()
                    .filter(|r| readable(r.object.key))
                    .collect();
                contexts.sort_by_key(|r| r.id);
                contexts.iter().map(|r| to_json(r.as_ref())).collect()
            }
            ObjectKind::Callout => catalog
                .callouts()
                .filter(|r| readable(r.object.key))
                .map(|r| to_json(r.as_ref()))
                .collect(),
            ObjectKind::Filter => catalog
                .enum_filters(caller, &FilterTemplate::default())
                .iter()
                .map(|r| to_json(r.as_ref()))
                .collect(),
        };
        Ok(Response::Objects { objects })
    }

    fn show(&self, caller: &Caller, kind: ObjectKind, id: &str) -> Result<Response, Response> {
        let mut session = self.session(caller)?;
        let txn = session
            .begin(TxnKind::ReadOnly)
            .map_err(|e| engine_error(caller, &e, &format!("read a {}", kind_name(kind))))?;
        let catalog = txn.catalog();
        let key = resolve(catalog, kind, id)?;
        catalog
            .check_object_access(caller, kind, key, Rights::READ)
            .map_err(|e| engine_error(caller, &e, &format!("read {} {id}", kind_name(kind))))?;
        let object = match kind {
            ObjectKind::Provider => catalog
                .providers()
                .find(|r| r.object.key == key)
                .map(|r| to_json(r.as_ref())),
            ObjectKind::Sublayer => catalog
                .sublayers()
                .find(|r| r.object.key == key)
                .map(|r| to_json(r.as_ref())),
            ObjectKind::ProviderContext => catalog
                .provider_contexts()
                .find(|r| r.object.key == key)
                .map(|r| to_json(r.as_ref())),
            ObjectKind::Callout => catalog
                .callouts()
                .find(|r| r.object.key == key)
                .map(|r| to_json(r.as_ref())),
            ObjectKind::Filter => catalog.filter(key).map(|r| to_json(r.as_ref())),
        };
        object
            .map(|object| Response::Object { object })
            .ok_or_else(|| not_found(kind, id))
    }

    fn add<T: Addable>(
        &self,
        caller: &Caller,
        json: &serde_json::Value,
    ) -> Result<Response, Response> {
        // `show --json` prints the engine's record (id, lifetime, owner, acl, object);
        // take the object out of one, so that what was shown can be added back.
        let json = match json.get("object") {
            Some(object) if json.get("lifetime").is_some() => object,
            _ => json,
        };
        let object: T = serde_json::from_value(json.clone()).map_err(|e| {
            Response::error_hint(
                ErrorCode::InvalidRequest,
                format!("not a valid {}: {e}", kind_name(T::KIND)),
                format!(
                    "give palisade-filter's {} as JSON; `palisade {} show ID --json` prints one (its \"object\" field)",
                    T::TYPE_NAME,
                    cli_noun(T::KIND)
                ),
            )
        })?;
        let mut session = self.session(caller)?;
        let (key, id) = object
            .add(&mut session)
            .map_err(|e| engine_error(caller, &e, &format!("add the {}", kind_name(T::KIND))))?;
        Ok(Response::Added {
            key: key.to_string(),
            id,
        })
    }

    fn delete(&self, caller: &Caller, kind: ObjectKind, id: &str) -> Result<Response, Response> {
        let mut session = self.session(caller)?;
        let key = {
            let txn = session
                .begin(TxnKind::ReadOnly)
                .map_err(|e| engine_error(caller, &e, &format!("read a {}", kind_name(kind))))?;
            resolve(txn.catalog(), kind, id)?
        };
        session
            .delete(kind, key)
            .map_err(|e| engine_error(caller, &e, &format!("delete {} {id}", kind_name(kind))))?;
        Ok(Response::Ok)
    }

    fn explain(
        &self,
        caller: &Caller,
        layer: &str,
        fields: &[(String, String)],
    ) -> Result<Response, Response> {
        let layer = parse_layer(layer)?;
        let values = parse_field_values(layer, fields).map_err(|e| {
            Response::error_hint(
                ErrorCode::InvalidRequest,
                e.to_string(),
                format!("{} accepts {}", e.field, e.accepted),
            )
        })?;
        let session = self.session(caller)?;
        let mut callouts: Box<dyn Callouts> = match &self.callouts {
            Some(make) => make(),
            None => Box::new(NoCallouts),
        };
        // The session's classify checks the caller's CLASSIFY right; the trace is the
        // same walk over every filter.
        session
            .classify(layer, &values, &mut *callouts)
            .map_err(|e| engine_error(caller, &e, "classify"))?;
        let explanation = self.engine.explain(layer, &values, &mut *callouts);
        Ok(Response::Explain {
            trace: serde_json::to_value(&explanation).unwrap_or_default(),
            text: explanation.to_string(),
        })
    }
}

/// The objects `add` accepts.
trait Addable: serde::de::DeserializeOwned {
    const KIND: ObjectKind;
    const TYPE_NAME: &'static str;
    fn add(self, session: &mut Session) -> Result<(Uuid, Option<u64>), EngineError>;
}

impl Addable for Filter {
    const KIND: ObjectKind = ObjectKind::Filter;
    const TYPE_NAME: &'static str = "Filter";
    fn add(self, session: &mut Session) -> Result<(Uuid, Option<u64>), EngineError> {
        session.add_filter(self).map(|(k, id)| (k, Some(id)))
    }
}

impl Addable for Sublayer {
    const KIND: ObjectKind = ObjectKind::Sublayer;
    const TYPE_NAME: &'static str = "Sublayer";
    fn add(self, session: &mut Session) -> Result<(Uuid, Option<u64>), EngineError> {
        session.add_sublayer(self).map(|k| (k, None))
    }
}

impl Addable for Provider {
    const KIND: ObjectKind = ObjectKind::Provider;
    const TYPE_NAME: &'static str = "Provider";
    fn add(self, session: &mut Session) -> Result<(Uuid, Option<u64>), EngineError> {
        session.add_provider(self).map(|k| (k, None))
    }
}

impl Addable for ProviderContext {
    const KIND: ObjectKind = ObjectKind::ProviderContext;
    const TYPE_NAME: &'static str = "ProviderContext";
    fn add(self, session: &mut Session) -> Result<(Uuid, Option<u64>), EngineError> {
        session
            .add_provider_context(self)
            .map(|(k, id)| (k, Some(id)))
    }
}

/// The noun the CLI uses for a kind.
fn cli_noun(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::ProviderContext => "context",
        other => kind_name(other),
    }
}

fn parse_layer(name: &str) -> Result<Layer, Response> {
    Layer::from_name(name.trim()).ok_or_else(|| {
        let names: Vec<String> = Layer::ALL
            .iter()
            .map(|l| l.name().to_ascii_lowercase())
            .collect();
        Response::error_hint(
            ErrorCode::InvalidRequest,
            format!("no layer {name:?}"),
            format!("name one of: {}", names.join(", ")),
        )
    })
}

/// The key an id names: a key (UUID), a runtime id (filters and provider contexts), or
/// a name that exactly one object of the kind has.
fn resolve(
    catalog: &palisade_filter::Catalog,
    kind: ObjectKind,
    id: &str,
) -> Result<Uuid, Response> {
    let id = id.trim();
    if let Ok(key) = Uuid::parse_str(id) {
        return Ok(key);
    }
    let runtime: Option<u64> = id.parse().ok();
    let keys: Vec<Uuid> = match kind {
        ObjectKind::Filter => match runtime {
            Some(n) => catalog
                .filter_by_id(n)
                .map(|r| r.object.key)
                .into_iter()
                .collect(),
            // Every filter, readable or not (root's view is the only whole list the
            // catalog hands out): the caller's rights are checked on the one named, as
            // when it is named by key.
            None => by_name(
                catalog
                    .enum_filters(&Caller::root(), &FilterTemplate::default())
                    .iter()
                    .map(|r| (&r.object.name, r.object.key)),
                id,
            ),
        },
        ObjectKind::ProviderContext => match runtime {
            Some(n) => catalog
                .provider_contexts()
                .filter(|r| r.id == n)
                .map(|r| r.object.key)
                .collect(),
            None => by_name(
                catalog
                    .provider_contexts()
                    .map(|r| (&r.object.name, r.object.key)),
                id,
            ),
        },
        ObjectKind::Provider => by_name(
            catalog.providers().map(|r| (&r.object.name, r.object.key)),
            id,
        ),
        ObjectKind::Sublayer => by_name(
            catalog.sublayers().map(|r| (&r.object.name, r.object.key)),
            id,
        ),
        ObjectKind::Callout => by_name(
            catalog.callouts().map(|r| (&r.object.name, r.object.key)),
            id,
        ),
    };
    match keys.as_slice() {
        [key] => Ok(*key),
        [] => Err(not_found(kind, id)),
        _ => Err(Response::error_hint(
            ErrorCode::InvalidRequest,
            format!(
                "{} {} {id:?} names {} objects",
                keys.len(),
                kind_name(kind),
                keys.len()
            ),
            format!(
                "name it by key; `palisade {} list` shows the keys",
                cli_noun(kind)
            ),
        )),
    }
}

fn by_name<'a>(objects: impl Iterator<Item = (&'a String, Uuid)>, name: &str) -> Vec<Uuid> {
    objects
        .filter(|(n, _)| n.as_str() == name)
        .map(|(_, k)| k)
        .collect()
}

fn not_found(kind: ObjectKind, id: &str) -> Response {
    let by = match kind {
        ObjectKind::Filter | ObjectKind::ProviderContext => "id, key or name",
        _ => "key or name",
    };
    Response::error_hint(
        ErrorCode::NotFound,
        format!("no {} {id:?}", kind_name(kind)),
        format!(
            "name it by {by}; `palisade {} list` shows them",
            cli_noun(kind)
        ),
    )
}

/// An engine object as JSON, pre-shared keys redacted.
fn to_json<T: Serialize>(record: &Record<T>) -> serde_json::Value {
    let mut value = serde_json::to_value(record).unwrap_or_default();
    redact(&mut value);
    value
}

/// Replaces every pre-shared key (`{"type": "preshared_key", "key": ...}`) with
/// [`REDACTED`].
pub fn redact(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if map.get("type").and_then(|t| t.as_str()) == Some("preshared_key")
                && let Some(key) = map.get_mut("key")
            {
                *key = serde_json::Value::String(REDACTED.into());
            }
            for v in map.values_mut() {
                redact(v);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

fn changes(compiled: &Compiled, diff: &palisade_policy::Diff, applied: bool) -> PolicyChanges {
    PolicyChanges {
        policy: if diff.policy.is_empty() {
            compiled.name.clone()
        } else {
            diff.policy.clone()
        },
        applied: applied && !diff.is_empty(),
        changes: diff
            .changes
            .iter()
            .map(|c| PolicyChange {
                op: serde_json::to_value(c.op)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                kind: c.kind.name().to_owned(),
                key: c.key.to_string(),
                name: c.name.clone(),
                layer: c.layer.map(|l| l.name().to_owned()),
                fields: c.fields.clone(),
            })
            .collect(),
    }
}

fn diagnostic(d: &Diagnostic) -> Response {
    Response::error_hint(
        ErrorCode::PolicyError,
        d.to_string(),
        "fix the file at that line and column; docs/policy-format.md describes every field",
    )
}

fn apply_error(caller: &Caller, e: &PolicyFileError) -> Response {
    match e {
        PolicyFileError::Invalid(d) => diagnostic(d),
        PolicyFileError::Engine(inner) | PolicyFileError::Refused { source: inner, .. }
            if matches!(inner, EngineError::AccessDenied { .. }) =>
        {
            engine_error(caller, inner, "apply the policy (nothing was changed)")
        }
        PolicyFileError::Engine(EngineError::Timeout(_)) => Response::error_hint(
            ErrorCode::Busy,
            e.to_string(),
            "another session holds the engine's write transaction; try again",
        ),
        other => Response::error_hint(
            ErrorCode::PolicyError,
            other.to_string(),
            "nothing was changed; fix the rule named and apply again",
        ),
    }
}

/// An engine error as a response: the code programs branch on, and what to do.
pub fn engine_error(caller: &Caller, e: &EngineError, doing: &str) -> Response {
    let message = format!("cannot {doing}: {e}");
    match e {
        EngineError::AccessDenied { missing, .. } => Response::error_hint(
            ErrorCode::AccessDenied,
            message,
            format!(
                "the engine's access control refuses uid {} the right {missing}; run as root, or have an administrator grant it (docs/control-api.md, Access control)",
                caller.uid
            ),
        ),
        EngineError::NotFound { .. } | EngineError::FilterIdNotFound(_) => Response::error_hint(
            ErrorCode::NotFound,
            message,
            "`palisade filter list` (or sublayer, provider, context list) shows what exists",
        ),
        EngineError::AlreadyExists { .. } => Response::error_hint(
            ErrorCode::AlreadyExists,
            message,
            "give another key, or a nil key for the engine to assign one",
        ),
        EngineError::InUse { .. } => Response::error_hint(
            ErrorCode::InvalidRequest,
            message,
            "delete the filters (or contexts) that refer to it first",
        ),
        EngineError::Timeout(_) => Response::error_hint(
            ErrorCode::Busy,
            message,
            "another session holds the engine's write transaction; try again",
        ),
        EngineError::Store(_)
        | EngineError::Encode { .. }
        | EngineError::Setting { .. }
        | EngineError::Decode { .. }
        | EngineError::SessionClosed => Response::error_hint(
            ErrorCode::Internal,
            message,
            "palisaded's log says more; the change was not made",
        ),
        _ => Response::error_hint(
            ErrorCode::InvalidRequest,
            message,
            "fix the object as the message says",
        ),
    }
}
