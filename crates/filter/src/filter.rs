//! Filters (`FWPM_FILTER0`): at a layer, in a sublayer, with a weight, conditions and an
//! action.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::condition::Condition;
use crate::flags::FilterFlags;
use crate::layer::Layer;
use crate::weight::Weight;

/// What a filter does when its conditions match (`FWPM_ACTION0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Drop (`FWP_ACTION_BLOCK`); hard by default.
    Block,
    /// Allow (`FWP_ACTION_PERMIT`); soft unless the filter clears the action right.
    Permit,
    /// Call the callout, which must permit or block (`FWP_ACTION_CALLOUT_TERMINATING`).
    CalloutTerminating(Uuid),
    /// Call the callout, which only looks and continues (`FWP_ACTION_CALLOUT_INSPECTION`).
    CalloutInspection(Uuid),
    /// Call the callout, which may permit, block or continue (`FWP_ACTION_CALLOUT_UNKNOWN`).
    CalloutUnknown(Uuid),
}

impl Action {
    /// The `FWP_ACTION_*` value.
    pub fn type_code(self) -> u32 {
        match self {
            Action::Block => 0x1001,
            Action::Permit => 0x1002,
            Action::CalloutTerminating(_) => 0x5003,
            Action::CalloutInspection(_) => 0x6004,
            Action::CalloutUnknown(_) => 0x4005,
        }
    }

    /// The callout the action calls, if any.
    pub fn callout(self) -> Option<Uuid> {
        match self {
            Action::Block | Action::Permit => None,
            Action::CalloutTerminating(k)
            | Action::CalloutInspection(k)
            | Action::CalloutUnknown(k) => Some(k),
        }
    }

    /// The WFP name without `FWP_ACTION_`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Block => "BLOCK",
            Action::Permit => "PERMIT",
            Action::CalloutTerminating(_) => "CALLOUT_TERMINATING",
            Action::CalloutInspection(_) => "CALLOUT_INSPECTION",
            Action::CalloutUnknown(_) => "CALLOUT_UNKNOWN",
        }
    }
}

/// What a filter carries for its callout or keying module: nothing, a raw 64-bit context
/// (`FWPM_CONTEXT_*` modifiers of the IPsec callouts), or a provider context's key (with
/// `HAS_PROVIDER_CONTEXT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterContext {
    /// No context.
    #[default]
    None,
    /// A raw context.
    Raw(u64),
    /// The key of a provider context.
    ProviderContext(Uuid),
}

/// A filter as a caller adds it. The engine assigns the key when it is nil, the runtime
/// id, and the effective weight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// The filter's GUID; nil asks the engine to assign one.
    #[serde(default)]
    pub key: Uuid,
    /// A name for administrators.
    #[serde(default)]
    pub name: String,
    /// A description for administrators.
    #[serde(default)]
    pub description: String,
    /// The layer.
    pub layer: Layer,
    /// The sublayer; `None` is `FWPM_SUBLAYER_UNIVERSAL`.
    #[serde(default)]
    pub sublayer: Option<Uuid>,
    /// The provider that owns the filter.
    #[serde(default)]
    pub provider: Option<Uuid>,
    /// Flags.
    #[serde(default)]
    pub flags: FilterFlags,
    /// The weight.
    #[serde(default)]
    pub weight: Weight,
    /// Conditions: groups of consecutive conditions on one field are ORed, groups ANDed;
    /// none matches everything.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The action.
    pub action: Action,
    /// The context.
    #[serde(default)]
    pub context: FilterContext,
}

impl Filter {
    /// A filter at `layer` with `action`, no conditions and an automatic weight.
    pub fn new(layer: Layer, action: Action) -> Filter {
        Filter {
            key: Uuid::nil(),
            name: String::new(),
            description: String::new(),
            layer,
            sublayer: None,
            provider: None,
            flags: FilterFlags::NONE,
            weight: Weight::Auto,
            conditions: Vec::new(),
            action,
            context: FilterContext::None,
        }
    }

    /// With a key.
    pub fn key(mut self, key: Uuid) -> Filter {
        self.key = key;
        self
    }

    /// With a name.
    pub fn name(mut self, name: impl Into<String>) -> Filter {
        self.name = name.into();
        self
    }

    /// In a sublayer.
    pub fn sublayer(mut self, key: Uuid) -> Filter {
        self.sublayer = Some(key);
        self
    }

    /// Owned by a provider.
    pub fn provider(mut self, key: Uuid) -> Filter {
        self.provider = Some(key);
        self
    }

    /// With flags added.
    pub fn flags(mut self, flags: FilterFlags) -> Filter {
        self.flags = self.flags | flags;
        self
    }

    /// With a weight.
    pub fn weight(mut self, weight: Weight) -> Filter {
        self.weight = weight;
        self
    }

    /// With a condition appended.
    pub fn condition(mut self, condition: Condition) -> Filter {
        self.conditions.push(condition);
        self
    }

    /// With a raw context.
    pub fn raw_context(mut self, context: u64) -> Filter {
        self.context = FilterContext::Raw(context);
        self
    }

    /// With a provider context (and `HAS_PROVIDER_CONTEXT`).
    pub fn provider_context(mut self, key: Uuid) -> Filter {
        self.context = FilterContext::ProviderContext(key);
        self.flags = self.flags | FilterFlags::HAS_PROVIDER_CONTEXT;
        self
    }

    /// Whether the conditions match the values: every group of consecutive conditions on
    /// one field has a member that matches.
    #[inline]
    pub fn matches(&self, values: &crate::value::FieldValues) -> bool {
        let c = &self.conditions;
        let mut i = 0;
        while i < c.len() {
            let field = c[i].field;
            let value = values.get(field);
            let mut hit = false;
            while i < c.len() && c[i].field == field {
                hit = hit || c[i].matches(value);
                i += 1;
            }
            if !hit {
                return false;
            }
        }
        true
    }
}
