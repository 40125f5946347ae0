//! The engine's errors. Each names the object and what is wrong with it.

use uuid::Uuid;

use crate::catalog::Lifetime;
use crate::condition::ConditionError;
use crate::policy::PolicyError;
use crate::security::Rights;
use crate::store::StoreError;

/// Why an engine operation failed. A failed operation inside a transaction changes
/// nothing and does not doom the transaction.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No object of that kind has that key.
    #[error("no {kind} {key}")]
    NotFound {
        /// The kind.
        kind: &'static str,
        /// The key.
        key: Uuid,
    },
    /// No filter has that runtime id.
    #[error("no filter with id {0}")]
    FilterIdNotFound(u64),
    /// The key is taken.
    #[error("{kind} {key} already exists")]
    AlreadyExists {
        /// The kind.
        kind: &'static str,
        /// The key.
        key: Uuid,
    },
    /// Other objects reference it.
    #[error("{kind} {key} is in use by other objects")]
    InUse {
        /// The kind.
        kind: &'static str,
        /// The key.
        key: Uuid,
    },
    /// Built-in objects cannot be deleted.
    #[error("{kind} {key} is built in")]
    BuiltIn {
        /// The kind.
        kind: &'static str,
        /// The key.
        key: Uuid,
    },
    /// The object would outlive something it references.
    #[error(
        "cannot reference {kind} {key}: it lives {referenced:?}, shorter than the {referencing:?} object referencing it"
    )]
    LifetimeViolation {
        /// The referenced kind.
        kind: &'static str,
        /// The referenced key.
        key: Uuid,
        /// Its lifetime.
        referenced: Lifetime,
        /// The new object's lifetime.
        referencing: Lifetime,
    },
    /// A stored object cannot reference another provider's persistent object.
    #[error("cannot reference {kind} {key}: it is another provider's persistent object")]
    OtherProvidersObject {
        /// The referenced kind.
        kind: &'static str,
        /// The referenced key.
        key: Uuid,
    },
    /// Unknown or output-only flags.
    #[error("invalid {kind} flags {flags}")]
    InvalidFlags {
        /// The kind.
        kind: &'static str,
        /// The flags given.
        flags: String,
    },
    /// A filter breaks a rule of spec §5.
    #[error("filter {key}: {why}")]
    InvalidFilter {
        /// The filter's key (nil if none was given).
        key: Uuid,
        /// The rule.
        why: String,
    },
    /// A filter condition is invalid.
    #[error("filter {key}: condition {index}: {source}")]
    Condition {
        /// The filter's key (nil if none was given).
        key: Uuid,
        /// The condition's position.
        index: usize,
        /// What is wrong.
        source: ConditionError,
    },
    /// A provider context's policy is invalid.
    #[error("provider context {key}: {source}")]
    Policy {
        /// The context's key.
        key: Uuid,
        /// What is wrong.
        source: PolicyError,
    },
    /// Dynamic sessions cannot add persistent or boot-time objects.
    #[error("a dynamic session cannot add persistent or boot-time objects")]
    DynamicSessionPersistent,
    /// The caller lacks rights.
    #[error("access denied to {what}: missing {missing}")]
    AccessDenied {
        /// What was accessed.
        what: String,
        /// The rights missing.
        missing: Rights,
    },
    /// Another session held the write lock longer than this session's wait timeout.
    #[error("timed out after {0:?} waiting for another session's write transaction")]
    Timeout(std::time::Duration),
    /// A write was attempted in a read-only transaction.
    #[error("the transaction is read-only")]
    ReadOnly,
    /// The session is closed.
    #[error("the session is closed")]
    SessionClosed,
    /// The store failed; the commit did not happen.
    #[error("store: {0}")]
    Store(#[from] Box<StoreError>),
    /// An object or setting could not be encoded for the store; the commit did not happen.
    #[error("encoding {what} for the store: {source}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// The encoder's message.
        source: serde_json::Error,
    },
    /// A stored setting could not be decoded.
    #[error("stored setting {name}: {source}")]
    Setting {
        /// The setting.
        name: String,
        /// The decoder's message.
        source: serde_json::Error,
    },
    /// A stored object could not be decoded.
    #[error("stored {kind} {key}: {source}")]
    Decode {
        /// The kind.
        kind: &'static str,
        /// The key.
        key: Uuid,
        /// The decoder's message.
        source: serde_json::Error,
    },
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> EngineError {
        EngineError::Store(Box::new(e))
    }
}
