//! A layer's filters compiled for classification: in arbitration order (sublayers by
//! weight, then filters by weight), with an index that finds the candidates for a packet.

use std::sync::Arc;

use uuid::Uuid;

use crate::catalog::{Catalog, Record, universal_sublayer};
use crate::condition::Condition;
use crate::filter::{Action, Filter, FilterContext};
use crate::flags::FilterFlags;
use crate::index::LayerIndex;
use crate::layer::Layer;
use crate::objects::ProviderContext;

/// One filter, ready for arbitration.
#[derive(Debug)]
pub struct CompiledFilter {
    /// The filter.
    pub record: Arc<Record<Filter>>,
    /// Its sublayer's position in arbitration order (0 first).
    pub sublayer_ordinal: u32,
    /// Its sublayer's key.
    pub sublayer: Uuid,
    /// Its sublayer's weight.
    pub sublayer_weight: u16,
    /// Its effective weight.
    pub weight: u64,
    /// Its provider context, resolved.
    pub provider_context: Option<Arc<Record<ProviderContext>>>,
}

impl CompiledFilter {
    /// The conditions.
    #[inline]
    pub fn conditions(&self) -> &[Condition] {
        &self.record.object.conditions
    }

    /// The runtime id.
    #[inline]
    pub fn id(&self) -> u64 {
        self.record.id
    }

    /// The action.
    #[inline]
    pub fn action(&self) -> Action {
        self.record.object.action
    }

    /// The flags.
    #[inline]
    pub fn flags(&self) -> FilterFlags {
        self.record.object.flags
    }

    /// The raw context, if any.
    pub fn raw_context(&self) -> Option<u64> {
        match self.record.object.context {
            FilterContext::Raw(v) => Some(v),
            _ => None,
        }
    }
}

/// A layer's compiled filters.
#[derive(Debug)]
pub struct CompiledLayer {
    /// The layer.
    pub layer: Layer,
    /// Its enabled filters in arbitration order.
    pub filters: Vec<CompiledFilter>,
    /// The index over `filters`.
    pub(crate) index: LayerIndex,
}

impl CompiledLayer {
    /// Compiles `layer` from the catalog.
    pub(crate) fn build(catalog: &Catalog, layer: Layer) -> CompiledLayer {
        let universal = universal_sublayer();
        let mut filters: Vec<CompiledFilter> = catalog
            .filters
            .values()
            .filter(|r| r.object.layer == layer && !r.object.flags.contains(FilterFlags::DISABLED))
            .map(|r| {
                let sublayer = r.object.sublayer.unwrap_or(universal);
                let sublayer_weight = catalog
                    .sublayers
                    .get(&sublayer)
                    .map_or(0, |s| s.object.weight);
                let provider_context = match r.object.context {
                    FilterContext::ProviderContext(k) => catalog.contexts.get(&k).cloned(),
                    _ => None,
                };
                CompiledFilter {
                    weight: r.object.weight.effective(&r.object.conditions).unwrap_or(0),
                    record: r.clone(),
                    sublayer_ordinal: 0,
                    sublayer,
                    sublayer_weight,
                    provider_context,
                }
            })
            .collect();
        // Ties are broken by key and id so that the order, and so every decision, is the
        // same after a reload.
        filters.sort_by(|a, b| {
            b.sublayer_weight
                .cmp(&a.sublayer_weight)
                .then(a.sublayer.cmp(&b.sublayer))
                .then(b.weight.cmp(&a.weight))
                .then(a.id().cmp(&b.id()))
        });
        let mut ordinal = 0;
        for i in 0..filters.len() {
            if i > 0 && filters[i].sublayer != filters[i - 1].sublayer {
                ordinal += 1;
            }
            filters[i].sublayer_ordinal = ordinal;
        }
        let index = LayerIndex::build(layer, &filters);
        CompiledLayer {
            layer,
            filters,
            index,
        }
    }

    /// Heap bytes held by the index (the filters themselves are shared with the catalog).
    pub fn index_bytes(&self) -> usize {
        self.index.heap_bytes() + self.filters.capacity() * std::mem::size_of::<CompiledFilter>()
    }
}
