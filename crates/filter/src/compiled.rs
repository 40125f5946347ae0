//! A layer's filters compiled for classification: in arbitration order (sublayers by
//! weight, then filters by weight), with an index that finds the candidates for a packet.

use std::sync::Arc;

use uuid::Uuid;

use crate::catalog::{Catalog, Record, universal_sublayer};
use crate::condition::Condition;
use crate::field::Field;
use crate::filter::{Action, Filter, FilterContext};
use crate::flags::FilterFlags;
use crate::index::LayerIndex;
use crate::layer::Layer;
use crate::objects::ProviderContext;
use crate::value::{FieldValues, ScalarKind, Value};

/// One filter, ready for arbitration. What the walk reads for every candidate is kept
/// inline, so that it costs no pointer chase into the record.
#[derive(Debug)]
pub struct CompiledFilter {
    /// The filter.
    pub record: Arc<Record<Filter>>,
    id: u64,
    key: Uuid,
    raw_context: Option<u64>,
    action: Action,
    flags: FilterFlags,
    /// The filter's conditions as interval tests in [`CompiledLayer::tests`], or `None`
    /// when one of them is not an interval condition (text, flags, security descriptors)
    /// and the filter is matched by [`Filter::matches`].
    tests: Option<(u32, u32)>,
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
        self.id
    }

    /// The action.
    #[inline]
    pub fn action(&self) -> Action {
        self.action
    }

    /// The flags.
    #[inline]
    pub fn flags(&self) -> FilterFlags {
        self.flags
    }

    /// The raw context, if any.
    #[inline]
    pub fn raw_context(&self) -> Option<u64> {
        self.raw_context
    }

    /// The key.
    #[inline]
    pub fn key(&self) -> Uuid {
        self.key
    }
}

/// One interval test of a filter's conditions: the field's value must be a scalar of
/// `kind` with its key in `[lo, hi]`. Tests of one group of consecutive conditions on a
/// field are alternatives; `last` ends the group.
#[derive(Clone, Copy, Debug)]
struct IntervalTest {
    lo: u128,
    hi: u128,
    field: Field,
    kind: ScalarKind,
    last: bool,
}

/// A layer's compiled filters.
#[derive(Debug)]
pub struct CompiledLayer {
    /// The layer.
    pub layer: Layer,
    /// Its enabled filters in arbitration order.
    pub filters: Vec<CompiledFilter>,
    /// The interval tests of every filter, in filter order: a candidate's tests sit
    /// together in one or two cache lines.
    tests: Vec<IntervalTest>,
    /// The index over `filters`.
    pub(crate) index: LayerIndex,
}

/// Appends the interval tests of `conditions` to `tests`; `None` if one of them is not
/// an interval condition.
fn interval_tests(conditions: &[Condition], tests: &mut Vec<IntervalTest>) -> Option<(u32, u32)> {
    let start = tests.len();
    let mut i = 0;
    while i < conditions.len() {
        let field = conditions[i].field;
        let group_start = tests.len();
        while i < conditions.len() && conditions[i].field == field {
            let c = &conditions[i];
            let (Some(set), Some(kind)) = (c.intervals(), c.scalar_kind()) else {
                tests.truncate(start);
                return None;
            };
            for (lo, hi) in set.as_slice() {
                tests.push(IntervalTest {
                    lo: *lo,
                    hi: *hi,
                    field,
                    kind,
                    last: false,
                });
            }
            i += 1;
        }
        if tests.len() == group_start {
            // A group that matches no value (`> 255` on a byte): an empty interval keeps
            // the group, so the filter never matches.
            tests.push(IntervalTest {
                lo: 1,
                hi: 0,
                field,
                kind: ScalarKind::U8,
                last: false,
            });
        }
        if let Some(t) = tests.last_mut() {
            t.last = true;
        }
    }
    let len = tests.len() - start;
    Some((u32::try_from(start).ok()?, u32::try_from(len).ok()?))
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
                    id: r.id,
                    key: r.object.key,
                    raw_context: match r.object.context {
                        FilterContext::Raw(v) => Some(v),
                        _ => None,
                    },
                    action: r.object.action,
                    flags: r.object.flags,
                    tests: None,
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
        let mut tests = Vec::new();
        for f in &mut filters {
            f.tests = interval_tests(&f.record.object.conditions, &mut tests);
        }
        tests.shrink_to_fit();
        let index = LayerIndex::build(layer, &filters);
        CompiledLayer {
            layer,
            filters,
            tests,
            index,
        }
    }

    /// Whether the filter at `pos` matches: the same answer as [`Filter::matches`], from
    /// the inline interval tests when the filter has them.
    #[inline]
    pub fn matches(&self, pos: usize, values: &FieldValues) -> bool {
        let Some(f) = self.filters.get(pos) else {
            return false;
        };
        let Some((start, len)) = f.tests else {
            return f.record.object.matches(values);
        };
        let (start, len) = (start as usize, len as usize);
        let Some(tests) = self.tests.get(start..start + len) else {
            return f.record.object.matches(values);
        };
        let mut hit = false;
        for t in tests {
            if !hit
                && let Some(Value::Scalar(v)) = values.get(t.field)
                && v.kind() == t.kind
            {
                let k = v.key();
                hit = t.lo <= k && k <= t.hi;
            }
            if t.last {
                if !hit {
                    return false;
                }
                hit = false;
            }
        }
        true
    }

    /// Heap bytes of the compiled layer beyond the catalog's records: the compiled filter
    /// array, the interval tests and the index.
    pub fn compiled_bytes(&self) -> (usize, usize, usize) {
        (
            self.filters.capacity() * std::mem::size_of::<CompiledFilter>(),
            self.tests.capacity() * std::mem::size_of::<IntervalTest>(),
            self.index.heap_bytes(),
        )
    }

    /// Heap bytes of the index and the compiled filter array it points into (the interval
    /// tests are counted separately by [`CompiledLayer::compiled_bytes`]).
    pub fn index_bytes(&self) -> usize {
        let (filters, _, index) = self.compiled_bytes();
        filters + index
    }
}
