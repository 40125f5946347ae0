//! The objects filters refer to: providers, sublayers, callouts and provider contexts
//! (spec §5).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::flags::{CalloutFlags, ProviderContextFlags, ProviderFlags, SublayerFlags};
use crate::layer::Layer;
use crate::policy::ProviderContextPolicy;

/// A provider (`FWPM_PROVIDER0`): who a set of objects belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// The GUID; nil asks the engine to assign one.
    #[serde(default)]
    pub key: Uuid,
    /// A name for administrators.
    #[serde(default)]
    pub name: String,
    /// A description for administrators.
    #[serde(default)]
    pub description: String,
    /// Flags.
    #[serde(default)]
    pub flags: ProviderFlags,
    /// The systemd unit that owns the provider's policy, if any.
    #[serde(default)]
    pub service_name: Option<String>,
}

/// A sublayer (`FWPM_SUBLAYER0`): an arbitration group; heavier sublayers decide first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sublayer {
    /// The GUID; nil asks the engine to assign one.
    #[serde(default)]
    pub key: Uuid,
    /// A name for administrators.
    #[serde(default)]
    pub name: String,
    /// A description for administrators.
    #[serde(default)]
    pub description: String,
    /// Flags.
    #[serde(default)]
    pub flags: SublayerFlags,
    /// The provider that owns it.
    #[serde(default)]
    pub provider: Option<Uuid>,
    /// Its weight among the sublayers.
    pub weight: u16,
}

/// A callout (`FWPM_CALLOUT0`): a function filters can call at one layer. The function
/// itself is registered at run time by whoever implements it (the daemon, for the
/// built-in IPsec callouts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Callout {
    /// The GUID; nil asks the engine to assign one.
    #[serde(default)]
    pub key: Uuid,
    /// A name for administrators.
    #[serde(default)]
    pub name: String,
    /// A description for administrators.
    #[serde(default)]
    pub description: String,
    /// Flags.
    #[serde(default)]
    pub flags: CalloutFlags,
    /// The provider that owns it.
    #[serde(default)]
    pub provider: Option<Uuid>,
    /// The layer its filters must be at.
    pub layer: Layer,
}

/// A provider context (`FWPM_PROVIDER_CONTEXT`): a typed policy that filters point at,
/// such as a main-mode or quick-mode policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderContext {
    /// The GUID; nil asks the engine to assign one.
    #[serde(default)]
    pub key: Uuid,
    /// A name for administrators.
    #[serde(default)]
    pub name: String,
    /// A description for administrators.
    #[serde(default)]
    pub description: String,
    /// Flags.
    #[serde(default)]
    pub flags: ProviderContextFlags,
    /// The provider that owns it.
    #[serde(default)]
    pub provider: Option<Uuid>,
    /// The policy.
    pub policy: ProviderContextPolicy,
}
