//! The per-layer classification index: from a packet's field values, the positions of the
//! few filters that may match, in arbitration order.
//!
//! # Design
//!
//! A filter's condition group on a scalar field (consecutive conditions on one field,
//! ORed) is a set of key intervals ([`Condition::intervals`]); groups are ANDed, so a
//! filter can only match a packet whose value of that field lies in the set. Text, flags
//! and security-descriptor conditions are not intervals and are left to
//! [`crate::Filter::matches`], which the arbitration walk calls on every candidate. A
//! field in two separate groups gets the intersection of their sets; filters whose set
//! is empty on some field (`> 255` on a byte) can match nothing and are in no list.
//!
//! **Field assignment.** Rather than indexing the whole layer by one field, every filter
//! is assigned to the field on which it is most selective, and each field used gets its
//! own interval index. With a single field, every filter not constraining it (a rule on
//! local addresses only, or on a protocol only) would be a candidate for every packet.
//! Selectivity is estimated from the layer's own filters: for a filter and a field, the
//! share of the filters constraining that field whose interval hulls overlap this
//! filter's, smoothed towards the share of the key space it covers (so that a field only
//! two filters use, each with one exact address, still counts as selective). At most
//! [`MAX_FIELDS`] fields are indexed, each only if [`MIN_FIELD_FILTERS`] filters are
//! assigned to it; the others' filters are assigned again among those kept.
//!
//! **Intervals and lists.** A field's index cuts the key space at every end of its
//! filters' intervals into elementary intervals (adjacent ones with the same filters
//! merged) and keeps, for each, the ascending positions of the filters covering it, all
//! in one flat array with offsets (no allocation per interval).
//!
//! **Tiers.** A filter covering many elementary intervals (a `/8` over thousands of
//! `/24`s) would be copied into each. So a field's filters are split into up to
//! [`MAX_TIERS`] tiers, each an index of its own: a filter covering more than
//! [`SPAN_CAP`] intervals of a tier, or the widest while the tier's copies exceed
//! [`LIST_BUDGET`] per filter, moves to the next tier, where only the wide filters cut
//! the key space and so each covers few intervals again. What the last tier cannot take
//! within budget goes to the *always* list, with the filters that constrain no indexed
//! field. A tier costs one more search per lookup, not more candidates.
//!
//! **Lookup.** A search over tens of thousands of starts is a chain of dependent loads,
//! mostly cache misses. Each tier keeps one slot per interval, its start (`u32` for
//! fields of up to 32 bits: v4 addresses, ports, protocols) beside the interval's only
//! filter inline or, for an empty or longer list, the list's bounds; and a radix table of
//! about one bucket per interval, from the top bits of the key to the few intervals the
//! bucket holds. A lookup reads the bucket, one or two lines of slots, and only for
//! longer lists the list. A field the packet lacks (or gives with the wrong type)
//! matches none of the field's filters, so it contributes nothing.
//!
//! **Guards.** Reading a filter's conditions in the arbitration walk costs another chain
//! of misses (compiled filter, record, conditions), and a filter found by one field is
//! often ruled out by another (a `/8` whose port differs). So every entry carries, inline,
//! the hull of the filter's most selective other interval condition on a field of up to
//! 32 bits (of at most [`MAX_GUARDS`] fields per layer, whose values a lookup reads once),
//! and the lookup drops the entries whose guard the packet fails before arbitration sees
//! them. The guard is a cheap second level: on the benchmark's mix it brings the
//! candidates down to the filters that actually match (5.7 candidates for 5.6 matching
//! filters at 100,000 filters, against 8.6 without guards). A real second level
//! (sub-indexes of long lists by another field) was not needed on the shapes measured;
//! policies whose filters are selective only as a conjunction of unselective fields
//! (thousands of rules each on a common port *and* one of a few local subnets) would
//! still give long lists.
//!
//! The lookup merges the tiers' lists with the always list in ascending order, with a
//! fixed-size merge over slices: no allocation per lookup. Each filter is in exactly one
//! list (possibly in several of its intervals, but a lookup sees one interval per tier),
//! so the merge yields each position at most once.

use crate::compiled::CompiledFilter;
use crate::condition::Condition;
use crate::field::{Field, FieldType};
use crate::layer::{Family, Layer};
use crate::value::{FieldValues, ScalarKind, Value};

/// The most fields indexed per layer; every one costs a binary search per lookup.
const MAX_FIELDS: usize = 4;

/// The most tiers per field (see the module doc).
const MAX_TIERS: usize = 3;

/// The most interval indexes (tiers of all fields) per layer: each is a binary search and
/// a list to merge per lookup.
const MAX_LISTS: usize = 7;

/// Fewer filters assigned to a field than this, and they go to the always list: the
/// lookup would cost more than checking them.
const MIN_FIELD_FILTERS: usize = 4;

/// Average list entries per filter a tier may hold before the filters covering the most
/// intervals move to the next tier (or, from the last, to the always list).
const LIST_BUDGET: usize = 8;

/// A filter covering more elementary intervals than this moves to the next tier, if there
/// is one, even within the budget.
const SPAN_CAP: usize = 32;

/// A filter may always cover this many elementary intervals, whatever the budget says.
const ALWAYS_NARROW: usize = 4;

/// The most fields guards test per layer.
const MAX_GUARDS: usize = 8;

/// The most radix buckets per tier (4 bytes each).
const RADIX_MAX: usize = 1 << 20;

/// Pseudo-count of the selectivity estimate's prior (the share of the key space).
const PRIOR: f64 = 16.0;

/// One position per filter, ascending.
type Positions = Vec<u32>;

/// A candidate as the lists store it: its position, and a guard that rejects it without
/// touching the filter itself.
///
/// Reading a filter's conditions costs a chain of cache misses (the compiled filter, its
/// record, its conditions); the guard is the hull of one more of its interval conditions
/// (the most selective that fits 32 bits), inline in the list, so a filter the lookup
/// found by one field but that another field rules out never reaches arbitration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    pos: u32,
    lo: u32,
    hi: u32,
    /// The guard field's slot in [`LayerIndex::guards`], or [`NO_GUARD`].
    guard: u8,
}

/// `Entry::guard` of an entry without a guard.
const NO_GUARD: u8 = u8::MAX;

/// The packet's value of a guard field: its key, or one no guard's range holds when the
/// packet lacks the field or gives another type (matching none of its conditions).
const NO_VALUE: u64 = u64::MAX;

impl Entry {
    /// Whether the filter may match as far as the guard can tell, given the packet's
    /// guard field values.
    #[inline]
    fn passes(&self, keys: &[u64; MAX_GUARDS]) -> bool {
        match keys.get(usize::from(self.guard)) {
            Some(&k) => u64::from(self.lo) <= k && k <= u64::from(self.hi),
            None => true,
        }
    }
}

/// Finds the filters that may match a packet.
#[derive(Debug)]
pub(crate) struct LayerIndex {
    fields: Vec<FieldIndex>,
    /// Filters that constrain no indexed field, or too widely: candidates for every packet
    /// their guards let through.
    always: Vec<Entry>,
    /// The fields guards test; a lookup reads each once.
    guards: Vec<(Field, ScalarKind)>,
}

/// `Entry::pos` of a slot whose interval does not hold exactly one filter: its `lo..hi`
/// are the bounds of its list in [`FieldIndex::lists`]. Never a position: `build`
/// numbers filters below `u32::MAX`.
const LINK: u32 = u32::MAX;

/// One elementary interval: its start and, inline, its only filter or a link to its list.
#[derive(Clone, Copy, Debug)]
struct Slot<K> {
    start: K,
    entry: Entry,
}

/// The elementary intervals of one tier, found by key.
///
/// A plain binary search over tens of thousands of starts is a chain of dependent loads,
/// most of them cache misses; `radix` narrows it first to the few intervals that one
/// slice of the key space holds. Most intervals hold one filter, kept inline in the slot,
/// so a lookup is typically two cache misses: the bucket and the slots.
#[derive(Debug)]
struct Table<K> {
    slots: Vec<Slot<K>>,
    /// For bucket `b` (keys `base + (b << shift)` onwards), the interval holding its
    /// first key; one more than there are buckets, so `radix[b + 1]` bounds bucket `b`.
    radix: Vec<u32>,
    base: u128,
    shift: u32,
}

impl<K: Copy + Into<u128>> Table<K> {
    /// `starts` ascending, the first 0, with each interval's entry.
    fn new(starts: &[u128], entries: &[Entry], narrow: impl Fn(u128) -> K) -> Table<K> {
        let slots = starts
            .iter()
            .zip(entries)
            .map(|(s, e)| Slot {
                start: narrow(*s),
                entry: *e,
            })
            .collect();
        // Buckets span from the first non-zero start to the last; about one per interval.
        let base = starts.get(1).copied().unwrap_or(0);
        let last = starts.last().copied().unwrap_or(0);
        let buckets = starts.len().next_power_of_two().clamp(1, RADIX_MAX);
        let span = last - base;
        let mut shift = 0;
        while shift < 128 && (span >> shift) >= buckets as u128 {
            shift += 1;
        }
        let step = 1u128.checked_shl(shift).unwrap_or(u128::MAX);
        let radix = (0..=buckets)
            .map(|b| {
                let first = (b as u128)
                    .checked_mul(step)
                    .and_then(|o| base.checked_add(o))
                    .unwrap_or(u128::MAX);
                let rank = starts.partition_point(|s| *s <= first);
                len_u32(rank.saturating_sub(1))
            })
            .collect();
        Table {
            slots,
            radix,
            base,
            shift,
        }
    }

    /// The entry of the interval holding `key`.
    #[inline]
    fn find(&self, key: u128) -> Option<&Entry> {
        let i = if key < self.base {
            0
        } else {
            let buckets = self.radix.len() - 1;
            let b = (key - self.base)
                .checked_shr(self.shift)
                .unwrap_or(0)
                .min(buckets as u128 - 1) as usize;
            let lo = *self.radix.get(b)? as usize;
            let hi = *self.radix.get(b + 1)? as usize;
            // The answer is in lo..=hi: lo plus how many of the later starts are <= key.
            let window = self.slots.get(lo + 1..=hi)?;
            lo + window.partition_point(|s| s.start.into() <= key)
        };
        Some(&self.slots.get(i)?.entry)
    }

    fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot<K>>() + self.radix.capacity() * 4
    }
}

/// A tier's intervals, with starts at the narrowest width the field's keys fit.
#[derive(Debug)]
enum Keys {
    U32(Table<u32>),
    U64(Table<u64>),
    U128(Table<u128>),
}

impl Keys {
    fn new(kind: ScalarKind, starts: &[u128], entries: &[Entry]) -> Keys {
        // Every start is a key of `kind`, so it fits the width chosen.
        match kind.bits() {
            0..=32 => Keys::U32(Table::new(starts, entries, |k| k as u32)),
            33..=64 => Keys::U64(Table::new(starts, entries, |k| k as u64)),
            _ => Keys::U128(Table::new(starts, entries, |k| k)),
        }
    }

    #[inline]
    fn find(&self, key: u128) -> Option<&Entry> {
        match self {
            Keys::U32(t) => t.find(key),
            Keys::U64(t) => t.find(key),
            Keys::U128(t) => t.find(key),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Keys::U32(t) => t.heap_bytes(),
            Keys::U64(t) => t.heap_bytes(),
            Keys::U128(t) => t.heap_bytes(),
        }
    }
}

/// One tier of one field's interval index.
#[derive(Debug)]
struct FieldIndex {
    field: Field,
    /// The scalar kind the layer's conditions on the field compare.
    kind: ScalarKind,
    keys: Keys,
    /// The lists of the intervals holding none or several filters.
    lists: Vec<Entry>,
}

impl FieldIndex {
    /// The filters of this tier that may match `values`.
    #[inline]
    fn lookup<'a>(&'a self, values: &FieldValues) -> &'a [Entry] {
        let Some(Value::Scalar(s)) = values.get(self.field) else {
            return &[];
        };
        if s.kind() != self.kind {
            return &[];
        }
        match self.keys.find(s.key()) {
            Some(e) if e.pos == LINK => self.lists.get(e.lo as usize..e.hi as usize).unwrap_or(&[]),
            Some(e) => std::slice::from_ref(e),
            None => &[],
        }
    }

    fn heap_bytes(&self) -> usize {
        self.keys.heap_bytes() + self.lists.capacity() * std::mem::size_of::<Entry>()
    }
}

/// Candidate positions: an ascending merge of up to `MAX_LISTS + 1` ascending lists, less
/// the entries whose guards reject the packet.
pub(crate) struct Candidates<'a> {
    /// The first `live` are non-empty.
    heads: [&'a [Entry]; MAX_LISTS + 1],
    live: usize,
    /// The packet's value of each guard field.
    keys: [u64; MAX_GUARDS],
}

impl<'a> Candidates<'a> {
    fn push(&mut self, list: &'a [Entry]) {
        // `build` makes at most `MAX_LISTS` tiers, so there is always room.
        debug_assert!(self.live < self.heads.len());
        if !list.is_empty() && self.live < self.heads.len() {
            self.heads[self.live] = list;
            self.live += 1;
        }
    }

    /// The lowest entry left.
    #[inline]
    fn pop(&mut self) -> Option<Entry> {
        // One list left (the usual case once the short per-field lists are spent): no
        // comparisons.
        if self.live == 1 {
            let (&first, rest) = self.heads[0].split_first()?;
            self.heads[0] = rest;
            if rest.is_empty() {
                self.live = 0;
            }
            return Some(first);
        }
        let mut best = usize::MAX;
        let mut best_pos = u32::MAX;
        for (i, head) in self.heads[..self.live].iter().enumerate() {
            if let Some(e) = head.first()
                && (best == usize::MAX || e.pos < best_pos)
            {
                best = i;
                best_pos = e.pos;
            }
        }
        let head = self.heads.get_mut(best)?;
        let (&first, rest) = head.split_first()?;
        *head = rest;
        if rest.is_empty() {
            self.live -= 1;
            self.heads.swap(best, self.live);
        }
        Some(first)
    }
}

impl Iterator for Candidates<'_> {
    type Item = u32;

    #[inline]
    fn next(&mut self) -> Option<u32> {
        loop {
            let e = self.pop()?;
            if e.passes(&self.keys) {
                return Some(e.pos);
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.heads[..self.live].iter().map(|h| h.len()).sum();
        (0, Some(n))
    }
}

/// The scalar kind the layer's conditions on `field` compare, if the field is a scalar.
fn field_kind(layer: Layer, field: Field) -> Option<ScalarKind> {
    Some(match field.field_type() {
        FieldType::Address => match layer.family()? {
            Family::V4 => ScalarKind::V4,
            Family::V6 => ScalarKind::V6,
        },
        FieldType::U8 => ScalarKind::U8,
        FieldType::U16 => ScalarKind::U16,
        FieldType::U32 => ScalarKind::U32,
        FieldType::U64 => ScalarKind::U64,
        FieldType::Guid => ScalarKind::Guid,
        FieldType::Text | FieldType::Token => return None,
    })
}

/// Sorts inclusive intervals and merges those that overlap or touch.
fn normalize(ivs: &mut Vec<(u128, u128)>) {
    ivs.sort_unstable();
    let mut out = 0;
    for i in 0..ivs.len() {
        let (lo, hi) = ivs[i];
        if out > 0 && ivs[out - 1].1.checked_add(1).is_none_or(|end| lo <= end) {
            ivs[out - 1].1 = ivs[out - 1].1.max(hi);
        } else {
            ivs[out] = (lo, hi);
            out += 1;
        }
    }
    ivs.truncate(out);
}

/// The intersection of two normalized interval lists.
fn intersect(a: &[(u128, u128)], b: &[(u128, u128)]) -> Vec<(u128, u128)> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let lo = a[i].0.max(b[j].0);
        let hi = a[i].1.min(b[j].1);
        if lo <= hi {
            out.push((lo, hi));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// One filter's interval set on one candidate field.
#[derive(Clone, Copy, Debug)]
struct Constraint {
    /// Index into the layer's candidate fields.
    field: usize,
    /// Range of the set's intervals in `Constraints::intervals`.
    start: u32,
    end: u32,
}

/// Every filter's interval sets, flat: filter `p`'s are `of[p]`.
struct Constraints {
    /// Per filter, the range of its constraints in `items`; `None` if it can match nothing.
    of: Vec<Option<(u32, u32)>>,
    items: Vec<Constraint>,
    intervals: Vec<(u128, u128)>,
}

impl Constraints {
    fn collect(filters: &[CompiledFilter], fields: &[(Field, ScalarKind)]) -> Constraints {
        let mut c = Constraints {
            of: Vec::with_capacity(filters.len()),
            items: Vec::new(),
            intervals: Vec::new(),
        };
        let mut scratch: Vec<(u128, u128)> = Vec::new();
        for f in filters {
            let first_item = c.items.len();
            let first_interval = c.intervals.len();
            let mut dead = false;
            let conditions = f.conditions();
            let mut i = 0;
            while i < conditions.len() {
                let field = conditions[i].field;
                let group_end = conditions[i..]
                    .iter()
                    .position(|x| x.field != field)
                    .map_or(conditions.len(), |n| i + n);
                let group = &conditions[i..group_end];
                i = group_end;
                let Some(fi) = fields.iter().position(|(f, _)| *f == field) else {
                    continue;
                };
                if !group_intervals(group, fields[fi].1, &mut scratch) {
                    // Not an interval group: Filter::matches checks it; the index
                    // treats the filter as unconstrained there.
                    continue;
                }
                if let Some(prev) = c.items[first_item..].iter_mut().find(|x| x.field == fi) {
                    // The field in a second group: both must hold.
                    let old = &c.intervals[prev.start as usize..prev.end as usize];
                    scratch = intersect(old, &scratch);
                }
                if scratch.is_empty() {
                    dead = true;
                    break;
                }
                c.intervals.extend_from_slice(&scratch);
                let (start, end) = (
                    len_u32(c.intervals.len() - scratch.len()),
                    len_u32(c.intervals.len()),
                );
                match c.items[first_item..].iter_mut().find(|x| x.field == fi) {
                    Some(prev) => (prev.start, prev.end) = (start, end),
                    None => c.items.push(Constraint {
                        field: fi,
                        start,
                        end,
                    }),
                }
            }
            if dead {
                c.items.truncate(first_item);
                c.intervals.truncate(first_interval);
                c.of.push(None);
            } else {
                c.of.push(Some((len_u32(first_item), len_u32(c.items.len()))));
            }
        }
        c
    }

    fn of(&self, pos: usize) -> &[Constraint] {
        match self.of.get(pos) {
            Some(Some((a, b))) => self.items.get(*a as usize..*b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    fn intervals(&self, c: &Constraint) -> &[(u128, u128)] {
        self.intervals
            .get(c.start as usize..c.end as usize)
            .unwrap_or(&[])
    }
}

/// Collects a condition group's key set into `out`, normalized; false if some condition
/// is not an interval condition of `kind`.
fn group_intervals(group: &[Condition], kind: ScalarKind, out: &mut Vec<(u128, u128)>) -> bool {
    out.clear();
    for c in group {
        if c.scalar_kind() != Some(kind) {
            return false;
        }
        let Some(set) = c.intervals() else {
            return false;
        };
        out.extend_from_slice(set.as_slice());
    }
    normalize(out);
    true
}

/// Positions and counts fit in `u32`: arbitration numbers filters so.
fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl LayerIndex {
    /// Indexes `filters`, which are in arbitration order (a filter's position is its
    /// priority).
    pub(crate) fn build(layer: Layer, filters: &[CompiledFilter]) -> LayerIndex {
        let fields: Vec<(Field, ScalarKind)> = layer
            .fields()
            .iter()
            .filter_map(|f| Some((*f, field_kind(layer, *f)?)))
            .collect();
        let cons = Constraints::collect(filters, &fields);
        // Positions are `u32` throughout arbitration; `LINK` is not one.
        let n = filters.len().min(LINK as usize);

        // Selectivity estimate per constraint (see the module doc): the hulls of every
        // field's constraints, sorted by low and by high end.
        let mut los: Vec<Vec<u128>> = vec![Vec::new(); fields.len()];
        let mut his: Vec<Vec<u128>> = vec![Vec::new(); fields.len()];
        for c in &cons.items {
            let ivs = cons.intervals(c);
            if let (Some(first), Some(last)) = (ivs.first(), ivs.last()) {
                los[c.field].push(first.0);
                his[c.field].push(last.1);
            }
        }
        los.iter_mut().for_each(|v| v.sort_unstable());
        his.iter_mut().for_each(|v| v.sort_unstable());
        let score = |c: &Constraint| -> f64 {
            let ivs = cons.intervals(c);
            let (Some(first), Some(last)) = (ivs.first(), ivs.last()) else {
                return f64::INFINITY;
            };
            let (lo, hi) = (first.0, last.1);
            let total = los[c.field].len();
            let below = his[c.field].partition_point(|h| *h < lo);
            let above = total - los[c.field].partition_point(|l| *l <= hi);
            let overlap = total.saturating_sub(below + above) as f64;
            let space = fields[c.field].1.max_key() as f64 + 1.0;
            let size: f64 = ivs.iter().map(|(l, h)| (h - l) as f64 + 1.0).sum();
            (overlap + PRIOR * size / space) / (total as f64 + PRIOR)
        };

        // Assign every filter to its most selective field, then keep the fields with the
        // most filters and assign again among those.
        let best = |pos: usize, allowed: &dyn Fn(usize) -> bool| -> Option<usize> {
            cons.of(pos)
                .iter()
                .filter(|c| allowed(c.field))
                .map(|c| (score(c), c.field))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, f)| f)
        };
        let mut assigned: Vec<Option<usize>> = (0..n).map(|p| best(p, &|_| true)).collect();
        let mut counts = vec![0usize; fields.len()];
        for f in assigned.iter().flatten() {
            counts[*f] += 1;
        }
        let mut order: Vec<usize> = (0..fields.len()).collect();
        order.sort_by_key(|f| std::cmp::Reverse(counts[*f]));
        let mut kept = vec![false; fields.len()];
        for f in order.iter().take(MAX_FIELDS) {
            kept[*f] = counts[*f] >= MIN_FIELD_FILTERS;
        }
        for (pos, a) in assigned.iter_mut().enumerate() {
            if a.is_some_and(|f| !kept[f]) {
                *a = best(pos, &|f| kept[f]);
            }
        }

        // A filter's guard: its most selective constraint that fits 32 bits, other than
        // the one its list was found by, unless the hull is the whole key space; among
        // the fields `usable` allows.
        let guard_of = |pos: u32, found_by: Option<usize>, usable: &dyn Fn(usize) -> bool| {
            cons.of(pos as usize)
                .iter()
                .filter(|c| {
                    Some(c.field) != found_by && fields[c.field].1.bits() <= 32 && usable(c.field)
                })
                .filter_map(|c| {
                    let ivs = cons.intervals(c);
                    let (lo, hi) = (ivs.first()?.0, ivs.last()?.1);
                    let max = fields[c.field].1.max_key();
                    let lo = u32::try_from(lo).ok()?;
                    let hi = u32::try_from(hi).ok()?;
                    (lo > 0 || u128::from(hi) < max).then(|| (score(c), c.field, lo, hi))
                })
                .min_by(|a, b| a.0.total_cmp(&b.0))
        };
        // The fields guards may test: those most filters would use, if too many would.
        let mut guard_use = vec![0usize; fields.len()];
        for (pos, a) in assigned.iter().enumerate() {
            if let Some((_, f, _, _)) = guard_of(len_u32(pos), *a, &|_| true) {
                guard_use[f] += 1;
            }
        }
        let mut guard_fields: Vec<usize> =
            (0..fields.len()).filter(|f| guard_use[*f] > 0).collect();
        guard_fields.sort_by_key(|f| std::cmp::Reverse(guard_use[*f]));
        guard_fields.truncate(MAX_GUARDS);
        let entry = |pos: u32, found_by: Option<usize>| -> Entry {
            let usable = |f: usize| guard_fields.contains(&f);
            match guard_of(pos, found_by, &usable) {
                Some((_, f, lo, hi)) => Entry {
                    pos,
                    lo,
                    hi,
                    guard: guard_fields
                        .iter()
                        .position(|g| *g == f)
                        .and_then(|i| u8::try_from(i).ok())
                        .unwrap_or(NO_GUARD),
                },
                None => Entry {
                    pos,
                    lo: 0,
                    hi: 0,
                    guard: NO_GUARD,
                },
            }
        };

        let mut always: Positions = Vec::new();
        let mut per_field: Vec<Vec<u32>> = vec![Vec::new(); fields.len()];
        for (pos, a) in assigned.iter().enumerate() {
            let pos32 = len_u32(pos);
            match a {
                Some(f) => per_field[*f].push(pos32),
                // Dead filters (nothing can match) are in no list.
                None if cons.of.get(pos).is_some_and(Option::is_some) => always.push(pos32),
                None => {}
            }
        }

        // Fields with more filters first, so that if the tiers run out it is the
        // smaller fields' wide filters that go to the always list.
        order.sort_by_key(|f| std::cmp::Reverse(per_field[*f].len()));
        let mut indexes = Vec::new();
        for fi in order {
            let members = &per_field[fi];
            if members.is_empty() {
                continue;
            }
            let max_tiers = MAX_TIERS.min(MAX_LISTS.saturating_sub(indexes.len()));
            build_field(
                (fi, fields[fi].0, fields[fi].1),
                members,
                &cons,
                max_tiers,
                &entry,
                &mut indexes,
                &mut always,
            );
        }
        always.sort_unstable();
        let always: Vec<Entry> = always.iter().map(|p| entry(*p, None)).collect();
        LayerIndex {
            fields: indexes,
            always,
            guards: guard_fields.iter().map(|f| fields[*f]).collect(),
        }
    }

    /// Positions of candidate filters, ascending: every filter whose conditions match
    /// `values` is among them.
    #[inline]
    pub(crate) fn candidates<'a>(
        &'a self,
        values: &'a FieldValues,
    ) -> impl Iterator<Item = u32> + 'a {
        let mut c = Candidates {
            heads: [&[]; MAX_LISTS + 1],
            live: 0,
            keys: [NO_VALUE; MAX_GUARDS],
        };
        for ((field, kind), key) in self.guards.iter().zip(c.keys.iter_mut()) {
            if let Some(Value::Scalar(s)) = values.get(*field)
                && s.kind() == *kind
            {
                // Guard fields are at most 32 bits wide.
                *key = s.key() as u64;
            }
        }
        for f in &self.fields {
            c.push(f.lookup(values));
        }
        c.push(&self.always);
        c
    }

    /// Heap bytes the index holds.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.fields.capacity() * std::mem::size_of::<FieldIndex>()
            + self
                .fields
                .iter()
                .map(FieldIndex::heap_bytes)
                .sum::<usize>()
            + self.always.capacity() * std::mem::size_of::<Entry>()
            + self.guards.capacity() * std::mem::size_of::<(Field, ScalarKind)>()
    }
}

/// The sorted, distinct starts of the elementary intervals the sets cut `[0, max]` into.
fn boundaries<'a>(sets: impl Iterator<Item = &'a [(u128, u128)]>, kind: ScalarKind) -> Vec<u128> {
    let max = kind.max_key();
    let mut b = vec![0u128];
    for set in sets {
        for (lo, hi) in set {
            b.push(*lo);
            if *hi < max {
                b.push(hi + 1);
            }
        }
    }
    b.sort_unstable();
    b.dedup();
    b
}

/// The elementary intervals `(first, last)` a set covers.
fn span_of(starts: &[u128], set: &[(u128, u128)]) -> impl Iterator<Item = (usize, usize)> {
    set.iter().map(|(lo, hi)| {
        // Both ends are starts or inside an interval; `rank - 1` is their interval.
        let first = starts.partition_point(|b| b <= lo).saturating_sub(1);
        let last = starts.partition_point(|b| b <= hi).saturating_sub(1);
        (first, last)
    })
}

/// Builds one field's index over `members` (ascending positions, each with a constraint
/// on field `fi`) as tiers: each tier takes the filters that fit its copy budget among
/// those left, the widest pass to the next; those left after the last go to `always`.
fn build_field(
    (fi, field, kind): (usize, Field, ScalarKind),
    members: &[u32],
    cons: &Constraints,
    max_tiers: usize,
    entry: &dyn Fn(u32, Option<usize>) -> Entry,
    tiers: &mut Vec<FieldIndex>,
    always: &mut Positions,
) {
    let sets: Vec<&[(u128, u128)]> = members
        .iter()
        .map(|p| {
            cons.of(*p as usize)
                .iter()
                .find(|c| c.field == fi)
                .map_or(&[][..], |c| cons.intervals(c))
        })
        .collect();
    // Indices into `members`, ascending.
    let mut left: Vec<usize> = (0..members.len()).collect();
    for tier in 0..max_tiers {
        if left.is_empty() {
            break;
        }
        // A later tier can take the widest at little cost; the last leaves them to the
        // always list only to keep within the budget.
        let cap = (tier + 1 < max_tiers).then_some(SPAN_CAP);
        let (narrow, wide) = split_wide(&left, &sets, kind, cap);
        let entry = |pos: u32| entry(pos, Some(fi));
        if let Some(tier) = build_tier(field, kind, &narrow, members, &sets, &entry) {
            tiers.push(tier);
        }
        left = wide;
    }
    always.extend(left.iter().map(|i| members[*i]));
}

/// Splits `left` into the filters a tier copies into every interval they cover and those
/// left for the next: the widest move on until the copies fit the budget.
fn split_wide(
    left: &[usize],
    sets: &[&[(u128, u128)]],
    kind: ScalarKind,
    cap: Option<usize>,
) -> (Vec<usize>, Vec<usize>) {
    let starts = boundaries(left.iter().map(|i| sets[*i]), kind);
    let spans: Vec<usize> = left
        .iter()
        .map(|i| span_of(&starts, sets[*i]).map(|(a, b)| b - a + 1).sum())
        .collect();
    let mut by_span: Vec<usize> = (0..left.len()).collect();
    by_span.sort_by_key(|k| std::cmp::Reverse(spans[*k]));
    let budget = LIST_BUDGET * left.len();
    let mut total: usize = spans.iter().sum();
    let mut wide = vec![false; left.len()];
    for k in by_span {
        if spans[k] <= ALWAYS_NARROW || (total <= budget && cap.is_none_or(|c| spans[k] <= c)) {
            break;
        }
        wide[k] = true;
        total -= spans[k];
    }
    let pick = |w: bool| -> Vec<usize> {
        left.iter()
            .zip(&wide)
            .filter(|(_, x)| **x == w)
            .map(|(i, _)| *i)
            .collect()
    };
    (pick(false), pick(true))
}

/// One tier: the elementary intervals `narrow`'s sets cut the key space into and, per
/// interval, the positions covering it. `None` if `narrow` is empty.
fn build_tier(
    field: Field,
    kind: ScalarKind,
    narrow: &[usize],
    members: &[u32],
    sets: &[&[(u128, u128)]],
    entry: &dyn Fn(u32) -> Entry,
) -> Option<FieldIndex> {
    if narrow.is_empty() {
        return None;
    }
    // Counted, then filled in ascending position order, so every list is ascending.
    let starts = boundaries(narrow.iter().map(|i| sets[*i]), kind);
    let mut offsets = vec![0u32; starts.len() + 1];
    for i in narrow {
        for (a, b) in span_of(&starts, sets[*i]) {
            for slot in &mut offsets[a + 1..=b + 1] {
                *slot += 1;
            }
        }
    }
    for i in 1..offsets.len() {
        offsets[i] += offsets[i - 1];
    }
    let mut lists = vec![0u32; offsets.last().map_or(0, |n| *n as usize)];
    let mut cursor: Vec<u32> = offsets[..starts.len()].to_vec();
    for i in narrow {
        for (a, b) in span_of(&starts, sets[*i]) {
            for c in &mut cursor[a..=b] {
                lists[*c as usize] = members[*i];
                *c += 1;
            }
        }
    }

    // Adjacent intervals with the same filters are one.
    let list = |i: usize| &lists[offsets[i] as usize..offsets[i + 1] as usize];
    let mut kept_starts = Vec::with_capacity(starts.len());
    let mut kept_offsets = vec![0u32];
    let mut kept_lists: Positions = Vec::with_capacity(lists.len());
    for (i, start) in starts.iter().enumerate() {
        if i > 0 && list(i) == list(i - 1) {
            continue;
        }
        kept_starts.push(*start);
        kept_lists.extend_from_slice(list(i));
        kept_offsets.push(len_u32(kept_lists.len()));
    }
    // One filter inline in its slot, others in the flat lists.
    let mut slots = Vec::with_capacity(kept_starts.len());
    let mut out: Vec<Entry> = Vec::new();
    for w in kept_offsets.windows(2) {
        let list = &kept_lists[w[0] as usize..w[1] as usize];
        slots.push(match list {
            [p] => entry(*p),
            _ => {
                let lo = len_u32(out.len());
                out.extend(list.iter().map(|p| entry(*p)));
                Entry {
                    pos: LINK,
                    lo,
                    hi: len_u32(out.len()),
                    guard: NO_GUARD,
                }
            }
        });
    }
    out.shrink_to_fit();
    Some(FieldIndex {
        field,
        kind,
        keys: Keys::new(kind, &kept_starts, &slots),
        lists: out,
    })
}

impl crate::compiled::CompiledLayer {
    /// How many candidates the index yields for `values`: an observable for tests and
    /// benchmarks of the index.
    #[doc(hidden)]
    pub fn candidate_count(&self, values: &FieldValues) -> usize {
        self.index.candidates(values).count()
    }
}

impl crate::Engine {
    /// How many candidates the index yields for `values` at `layer` in the current
    /// snapshot: an observable for tests and benchmarks of the index.
    #[doc(hidden)]
    pub fn candidate_count(&self, layer: Layer, values: &FieldValues) -> usize {
        self.snapshot()
            .layer(layer)
            .index
            .candidates(values)
            .count()
    }

    /// The positions (in [`crate::compiled::CompiledLayer::filters`]) of the candidates the index
    /// yields for `values` at `layer` in the current snapshot, in the order it yields
    /// them: an observable for tests of the index.
    #[doc(hidden)]
    pub fn candidate_positions(&self, layer: Layer, values: &FieldValues) -> Vec<u32> {
        self.snapshot()
            .layer(layer)
            .index
            .candidates(values)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entries(n: usize) -> Vec<Entry> {
        (0..n)
            .map(|i| Entry {
                pos: len_u32(i),
                lo: 0,
                hi: 0,
                guard: NO_GUARD,
            })
            .collect()
    }

    /// The interval holding `key`, the slow way.
    fn reference(starts: &[u128], key: u128) -> u32 {
        len_u32(starts.partition_point(|s| *s <= key) - 1)
    }

    /// Starts (0 and `keys`, sorted, distinct) and probes around each of them.
    fn starts_and_probes(keys: Vec<u128>, mut probes: Vec<u128>) -> (Vec<u128>, Vec<u128>) {
        let mut starts = vec![0];
        starts.extend(keys);
        starts.sort_unstable();
        starts.dedup();
        for s in &starts {
            probes.extend([s.wrapping_sub(1), *s, s.wrapping_add(1)]);
        }
        probes.extend([0, u128::MAX]);
        (starts, probes)
    }

    proptest! {
        #[test]
        fn wide_tables_find_the_interval(
            keys in prop::collection::vec(
                prop_oneof![any::<u128>(), (0u128..4096), (u128::MAX - 4096..=u128::MAX)],
                0..300,
            ),
            probes in prop::collection::vec(any::<u128>(), 0..50),
        ) {
            let (starts, probes) = starts_and_probes(keys, probes);
            let table = Table::new(&starts, &entries(starts.len()), |k| k);
            for p in probes {
                prop_assert_eq!(table.find(p).map(|e| e.pos), Some(reference(&starts, p)), "key {}", p);
            }
        }

        #[test]
        fn narrow_tables_find_the_interval(
            keys in prop::collection::vec(prop_oneof![any::<u32>(), 0u32..64, 1000u32..1100], 0..300),
            probes in prop::collection::vec(any::<u32>(), 0..50),
        ) {
            let keys = keys.into_iter().map(u128::from).collect();
            let probes = probes.into_iter().map(u128::from).collect();
            let (starts, probes) = starts_and_probes(keys, probes);
            let table = Table::new(&starts, &entries(starts.len()), |k| k as u32);
            for p in probes.into_iter().filter(|p| *p <= u128::from(u32::MAX)) {
                prop_assert_eq!(table.find(p).map(|e| e.pos), Some(reference(&starts, p)), "key {}", p);
            }
        }

        #[test]
        fn normalize_and_intersect_agree_with_sets(
            a in prop::collection::vec((0u128..64, 0u128..8), 0..6),
            b in prop::collection::vec((0u128..64, 0u128..8), 0..6),
        ) {
            let mut a: Vec<(u128, u128)> = a.into_iter().map(|(lo, w)| (lo, lo + w)).collect();
            let mut b: Vec<(u128, u128)> = b.into_iter().map(|(lo, w)| (lo, lo + w)).collect();
            let inside = |s: &[(u128, u128)], k: u128| s.iter().any(|(lo, hi)| (*lo..=*hi).contains(&k));
            let (ra, rb) = (a.clone(), b.clone());
            normalize(&mut a);
            normalize(&mut b);
            // Normalized: ascending, disjoint and not touching.
            prop_assert!(a.windows(2).all(|w| w[0].1 + 1 < w[1].0));
            let both = intersect(&a, &b);
            for k in 0..80 {
                prop_assert_eq!(inside(&a, k), inside(&ra, k));
                prop_assert_eq!(inside(&both, k), inside(&ra, k) && inside(&rb, k));
            }
        }
    }

    #[test]
    fn extreme_tables() {
        for starts in [
            vec![0u128],
            vec![0, u128::MAX],
            vec![0, 1, u128::MAX - 1, u128::MAX],
        ] {
            let table = Table::new(&starts, &entries(starts.len()), |k| k);
            for p in [0, 1, 2, u128::MAX / 2, u128::MAX - 1, u128::MAX] {
                assert_eq!(table.find(p).map(|e| e.pos), Some(reference(&starts, p)));
            }
        }
    }
}
