//! The catalog's view of each kind of object: where it is kept, its key, its provider,
//! its flags and what it references.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use super::{Catalog, Record};
use crate::error::EngineError;
use crate::filter::Filter;
use crate::flags::{CalloutFlags, FilterFlags, ProviderContextFlags, ProviderFlags, SublayerFlags};
use crate::layer::Layer;
use crate::objects::{Callout, Provider, ProviderContext, Sublayer};
use crate::store::ObjectKind;

/// What the catalog needs of each kind of object.
pub(crate) trait Object: Clone + Sized {
    /// The kind.
    const KIND: ObjectKind;
    /// Whether objects of this kind get a runtime id.
    const HAS_ID: bool;
    /// The catalog's map of this kind.
    fn map(catalog: &mut Catalog) -> &mut BTreeMap<Uuid, Arc<Record<Self>>>;
    /// The catalog's map of this kind, to read.
    fn map_ref(catalog: &Catalog) -> &BTreeMap<Uuid, Arc<Record<Self>>>;
    /// The key.
    fn key(&self) -> Uuid;
    /// The key, to assign one.
    fn key_mut(&mut self) -> &mut Uuid;
    /// The provider the object names.
    fn provider_key(&self) -> Option<Uuid>;
    /// Whether the object asks to be persistent.
    fn persistent(&self) -> bool;
    /// The layer of a filter or callout.
    fn layer(&self) -> Option<Layer> {
        None
    }
    /// Flags a caller may not set (unknown or output-only), as text.
    fn invalid_flags(&self) -> Option<String>;
    /// Checks of the object's own content.
    fn validate(&self, _key: Uuid) -> Result<(), EngineError> {
        Ok(())
    }
    /// The objects it references.
    fn links(&self) -> Vec<(ObjectKind, Uuid)> {
        self.provider_key()
            .map(|p| (ObjectKind::Provider, p))
            .into_iter()
            .collect()
    }
}

/// The accessors every kind has the same way: its map, its key, and its PERSISTENT flag.
macro_rules! basics {
    ($map:ident, $flags:ident) => {
        fn map(c: &mut Catalog) -> &mut BTreeMap<Uuid, Arc<Record<Self>>> {
            &mut c.$map
        }
        fn map_ref(c: &Catalog) -> &BTreeMap<Uuid, Arc<Record<Self>>> {
            &c.$map
        }
        fn key(&self) -> Uuid {
            self.key
        }
        fn key_mut(&mut self) -> &mut Uuid {
            &mut self.key
        }
        fn persistent(&self) -> bool {
            self.flags.contains($flags::PERSISTENT)
        }
    };
}

fn flags_text(bad: bool, flags: impl std::fmt::Display) -> Option<String> {
    bad.then(|| flags.to_string())
}

impl Object for Provider {
    const KIND: ObjectKind = ObjectKind::Provider;
    const HAS_ID: bool = false;
    basics!(providers, ProviderFlags);
    fn provider_key(&self) -> Option<Uuid> {
        None
    }
    fn invalid_flags(&self) -> Option<String> {
        let bad = self.flags.contains(ProviderFlags::DISABLED) || self.flags.unknown_bits() != 0;
        flags_text(bad, self.flags)
    }
}

impl Object for Sublayer {
    const KIND: ObjectKind = ObjectKind::Sublayer;
    const HAS_ID: bool = false;
    basics!(sublayers, SublayerFlags);
    fn provider_key(&self) -> Option<Uuid> {
        self.provider
    }
    fn invalid_flags(&self) -> Option<String> {
        flags_text(self.flags.unknown_bits() != 0, self.flags)
    }
}

impl Object for Callout {
    const KIND: ObjectKind = ObjectKind::Callout;
    const HAS_ID: bool = true;
    basics!(callouts, CalloutFlags);
    fn provider_key(&self) -> Option<Uuid> {
        self.provider
    }
    fn layer(&self) -> Option<Layer> {
        Some(self.layer)
    }
    fn invalid_flags(&self) -> Option<String> {
        let bad = self.flags.contains(CalloutFlags::REGISTERED) || self.flags.unknown_bits() != 0;
        flags_text(bad, self.flags)
    }
}

impl Object for ProviderContext {
    const KIND: ObjectKind = ObjectKind::ProviderContext;
    const HAS_ID: bool = true;
    basics!(contexts, ProviderContextFlags);
    fn provider_key(&self) -> Option<Uuid> {
        self.provider
    }
    fn invalid_flags(&self) -> Option<String> {
        flags_text(self.flags.unknown_bits() != 0, self.flags)
    }
    fn validate(&self, key: Uuid) -> Result<(), EngineError> {
        self.policy
            .validate()
            .map_err(|source| EngineError::Policy { key, source })
    }
}

impl Object for Filter {
    const KIND: ObjectKind = ObjectKind::Filter;
    const HAS_ID: bool = true;
    basics!(filters, FilterFlags);
    fn provider_key(&self) -> Option<Uuid> {
        self.provider
    }
    fn layer(&self) -> Option<Layer> {
        Some(self.layer)
    }
    fn invalid_flags(&self) -> Option<String> {
        flags_text(self.flags.unknown_bits() != 0, self.flags)
    }
    fn links(&self) -> Vec<(ObjectKind, Uuid)> {
        Catalog::filter_links(self)
    }
}
