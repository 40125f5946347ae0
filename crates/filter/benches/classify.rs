//! Classification at OUTBOUND_TRANSPORT_V4 with the index, against the naive walk, and the
//! cost of committing a large transaction.
//!
//! Ids:
//! - `classify/<n>`: `Engine::classify` with `n` filters, one packet per iteration from a
//!   pool of 1024 that hit and miss filters, cycled;
//! - `naive/<n>`: `Engine::classify_naive` on the same engine and packets;
//! - `commit/10000`: one write transaction adding 10,000 filters with
//!   `Transaction::add_filters`, then its commit (which compiles and indexes the layer);
//!   engine setup and teardown are not timed.
//!
//! For profiling, `CLASSIFY_SIZES=10000` (a comma-separated list) builds only those sizes
//! and runs only `classify/*` and `naive/*`, and `CLASSIFY_CANDIDATES=1` adds
//! `classify/candidates-<n>`: the index lookup alone, without arbitration.
//!
//! Filter sets are generated deterministically (splitmix64, fixed seeds) in a realistic
//! shape: remote prefixes of every length and remote ranges, some local prefixes (a few
//! filters test only local addresses), single ports and port ranges, TCP/UDP/ICMP/any,
//! permit/block/callout, over the universal sublayer and three more. Before the timings,
//! the bench prints once the heap bytes per filter with 100,000 filters, counted by a
//! counting global allocator (bytes allocated and still live after building the engine,
//! less those before).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use palisade_filter::guids::FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4;
use palisade_filter::*;
use uuid::Uuid;

#[path = "../../../tests/support/counting_alloc.rs"]
mod counting_alloc;

/// Counts live heap bytes, to measure memory per filter.
#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

const LAYER: Layer = Layer::OutboundTransportV4;
const PACKETS: usize = 1024;

/// splitmix64: a small deterministic generator, so the sets are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent` / 100.
    fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const COMMON_PORTS: &[u16] = &[
    22, 25, 53, 80, 123, 389, 443, 445, 1433, 3306, 3389, 5432, 8080, 8443,
];

/// An inclusive range of address keys.
#[derive(Clone, Copy)]
struct Span {
    lo: u32,
    hi: u32,
}

impl Span {
    fn pick(self, rng: &mut Rng) -> u32 {
        let width = u64::from(self.hi - self.lo) + 1;
        self.lo + rng.below(width) as u32
    }
}

/// What a generated filter constrains, to aim packets at it.
struct Shape {
    remote: Option<Span>,
    local: Option<Span>,
    protocol: Option<u8>,
    remote_port: Option<(u16, u16)>,
    local_port: Option<(u16, u16)>,
}

/// The local side: a gateway's or server farm's 256 subnets.
fn local_subnet(rng: &mut Rng) -> u32 {
    0xc0a8_0000 | ((rng.below(256) as u32) << 8)
}

fn prefix(addr: u32, len: u8) -> (Condition, Span) {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    let net = addr & mask;
    (
        Condition::new(
            Field::IpRemoteAddress,
            MatchType::Equal,
            ConditionValue::v4_prefix(Ipv4Addr::from(net), len),
        ),
        Span {
            lo: net,
            hi: net | !mask,
        },
    )
}

fn port_condition(rng: &mut Rng, field: Field) -> (Condition, (u16, u16)) {
    if rng.percent(75) {
        let port = if rng.percent(80) {
            COMMON_PORTS[rng.below(COMMON_PORTS.len() as u64) as usize]
        } else {
            1024 + rng.below(60_000) as u16
        };
        (Condition::equal(field, Scalar::U16(port)), (port, port))
    } else {
        let (lo, hi) = match rng.below(3) {
            0 => (1024, 65535),
            1 => {
                let lo = 1024 + rng.below(60_000) as u16;
                (lo, lo.saturating_add(rng.below(1000) as u16))
            }
            _ => (0, 1023),
        };
        (
            Condition::range(field, Scalar::U16(lo), Scalar::U16(hi)),
            (lo, hi),
        )
    }
}

/// One filter of the realistic mix, and what it constrains.
fn filter(rng: &mut Rng, sublayers: &[Option<Uuid>]) -> (Filter, Shape) {
    let action = match rng.below(20) {
        0..=8 => Action::Permit,
        9..=15 => Action::Block,
        _ => Action::CalloutTerminating(FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4),
    };
    let mut f = Filter::new(LAYER, action);
    if let Some(s) = sublayers[rng.below(sublayers.len() as u64) as usize] {
        f = f.sublayer(s);
    }
    let mut shape = Shape {
        remote: None,
        local: None,
        protocol: None,
        remote_port: None,
        local_port: None,
    };
    // Most filters name remote hosts or networks; a few only local ones.
    let remote = !rng.percent(1);
    if remote {
        let addr = rng.next() as u32;
        let (c, span) = match rng.below(100) {
            0..=29 => prefix(addr, 32),
            30..=64 => prefix(addr, 24),
            65..=79 => prefix(addr, 16 + rng.below(8) as u8),
            80..=81 => prefix(addr, 8 + rng.below(8) as u8),
            _ => {
                let hi = addr.saturating_add(1 + rng.below(1024) as u32);
                (
                    Condition::range(
                        Field::IpRemoteAddress,
                        Scalar::V4(Ipv4Addr::from(addr)),
                        Scalar::V4(Ipv4Addr::from(hi)),
                    ),
                    Span { lo: addr, hi },
                )
            }
        };
        f = f.condition(c);
        shape.remote = Some(span);
    }
    if !remote || rng.percent(15) {
        let net = local_subnet(rng);
        let (len, span) = if rng.percent(50) {
            let a = net | rng.below(256) as u32;
            (32, Span { lo: a, hi: a })
        } else {
            (
                24,
                Span {
                    lo: net,
                    hi: net | 0xff,
                },
            )
        };
        f = f.condition(Condition::new(
            Field::IpLocalAddress,
            MatchType::Equal,
            ConditionValue::v4_prefix(Ipv4Addr::from(span.lo), len),
        ));
        shape.local = Some(span);
    }
    let protocol = match rng.below(100) {
        0..=49 => Some(TCP),
        50..=79 => Some(UDP),
        80..=84 => Some(ICMP),
        _ => None,
    };
    if let Some(p) = protocol {
        f = f.condition(Condition::equal(Field::IpProtocol, Scalar::U8(p)));
        shape.protocol = Some(p);
    }
    if protocol != Some(ICMP) {
        if rng.percent(60) {
            let (c, r) = port_condition(rng, Field::IpRemotePort);
            f = f.condition(c);
            shape.remote_port = Some(r);
        }
        if rng.percent(10) {
            let (c, r) = port_condition(rng, Field::IpLocalPort);
            f = f.condition(c);
            shape.local_port = Some(r);
        }
    }
    (f, shape)
}

/// Engines and what the benchmarks feed them.
struct Setup {
    engine: Engine,
    session: Session,
    sublayers: Vec<Option<Uuid>>,
}

fn setup() -> Setup {
    let engine = Engine::new();
    let mut session = engine
        .open_session(Caller::root(), SessionOptions::default())
        .expect("session");
    let mut sublayers = vec![None];
    for (i, weight) in [0xc000u16, 0x4000, 0x1000].into_iter().enumerate() {
        let key = session
            .add_sublayer(Sublayer {
                key: Uuid::nil(),
                name: format!("bench {i}"),
                description: String::new(),
                flags: SublayerFlags::NONE,
                provider: None,
                weight,
            })
            .expect("sublayer");
        sublayers.push(Some(key));
    }
    Setup {
        engine,
        session,
        sublayers,
    }
}

/// `n` filters and the shapes to aim packets with.
fn generate(n: usize, sublayers: &[Option<Uuid>], seed: u64) -> (Vec<Filter>, Vec<Shape>) {
    let mut rng = Rng(seed);
    let mut filters = Vec::with_capacity(n);
    let mut shapes = Vec::with_capacity(n);
    // Every sublayer has a catch-all, as real policies do (a default permit or block).
    for (i, s) in sublayers.iter().enumerate() {
        let mut f = Filter::new(
            LAYER,
            if i % 2 == 0 {
                Action::Permit
            } else {
                Action::Block
            },
        );
        if let Some(s) = s {
            f = f.sublayer(*s);
        }
        filters.push(f.weight(Weight::Exact(0)));
    }
    while filters.len() < n {
        let (f, s) = filter(&mut rng, sublayers);
        filters.push(f);
        shapes.push(s);
    }
    (filters, shapes)
}

fn add(setup: &mut Setup, filters: Vec<Filter>) {
    let mut txn = setup.session.begin(TxnKind::Write).expect("begin");
    txn.add_filters(filters).expect("add filters");
    txn.commit().expect("commit");
}

/// Packets: most aimed inside a random filter's conditions, the rest anywhere.
fn packets(shapes: &[Shape], seed: u64) -> Vec<FieldValues> {
    let mut rng = Rng(seed);
    (0..PACKETS)
        .map(|_| {
            let shape = if shapes.is_empty() || rng.percent(25) {
                None
            } else {
                Some(&shapes[rng.below(shapes.len() as u64) as usize])
            };
            let any = Span {
                lo: 0,
                hi: u32::MAX,
            };
            let remote = shape.and_then(|s| s.remote).unwrap_or(any).pick(&mut rng);
            let local = match shape.and_then(|s| s.local) {
                Some(span) => span.pick(&mut rng),
                None => local_subnet(&mut rng) | 7,
            };
            let protocol = shape
                .and_then(|s| s.protocol)
                .unwrap_or(match rng.below(10) {
                    0..=5 => TCP,
                    6..=8 => UDP,
                    _ => ICMP,
                });
            let port = |r: Option<(u16, u16)>, rng: &mut Rng| match r {
                Some((lo, hi)) => lo + rng.below(u64::from(hi - lo) + 1) as u16,
                None => COMMON_PORTS[rng.below(COMMON_PORTS.len() as u64) as usize],
            };
            let remote_port = port(shape.and_then(|s| s.remote_port), &mut rng);
            let local_port = match shape.and_then(|s| s.local_port) {
                Some(r) => port(Some(r), &mut rng),
                None => 32768 + rng.below(28_000) as u16,
            };
            FieldValues::new()
                .with(Field::IpRemoteAddress, Scalar::V4(Ipv4Addr::from(remote)))
                .with(Field::IpLocalAddress, Scalar::V4(Ipv4Addr::from(local)))
                .with(Field::IpProtocol, Scalar::U8(protocol))
                .with(Field::IpRemotePort, Scalar::U16(remote_port))
                .with(Field::IpLocalPort, Scalar::U16(local_port))
                .with(Field::Flags, Scalar::U32(0))
                .with(Field::InterfaceIndex, Scalar::U32(2))
        })
        .collect()
}

/// The built-in IPsec callout, as the daemon registers it: here it always permits.
struct Permit;

impl Callouts for Permit {
    fn classify(&mut self, _: &CalloutCall<'_>, _: &FieldValues) -> Option<CalloutVerdict> {
        Some(CalloutVerdict::PERMIT)
    }
}

fn engine_with(n: usize) -> (Setup, Vec<FieldValues>) {
    let mut s = setup();
    let (filters, shapes) = generate(n, &s.sublayers, 0x5eed ^ n as u64);
    add(&mut s, filters);
    let packets = packets(&shapes, 0xfeed ^ n as u64);
    (s, packets)
}

fn report(n: usize, s: &Setup, packets: &[FieldValues]) {
    let candidates: usize = packets
        .iter()
        .map(|p| s.engine.candidate_count(LAYER, p))
        .sum();
    let decided = packets
        .iter()
        .filter(|p| s.engine.classify(LAYER, p, &mut Permit).decider.is_some())
        .count();
    let snapshot = s.engine.snapshot();
    let matching: usize = packets
        .iter()
        .map(|p| {
            snapshot
                .layer(LAYER)
                .filters
                .iter()
                .filter(|f| f.record.object.matches(p))
                .count()
        })
        .sum();
    eprintln!(
        "{n} filters: {:.2} candidates and {:.2} matching filters per packet on average; \
         {} of {} packets decided by a filter",
        candidates as f64 / packets.len() as f64,
        matching as f64 / packets.len() as f64,
        decided,
        packets.len(),
    );
}

fn memory_per_filter() {
    let n = 100_000;
    let mut s = setup();
    let (filters, _) = generate(n, &s.sublayers, 0x5eed ^ n as u64);
    // Only what the engine keeps counts: the input filters are moved in and the
    // transaction's temporaries are freed by the time the commit returns.
    let before = counting_alloc::live_bytes()
        - filters.iter().map(filter_heap_bytes).sum::<usize>() as isize
        - (filters.capacity() * std::mem::size_of::<Filter>()) as isize;
    add(&mut s, filters);
    let after = counting_alloc::live_bytes();
    let snapshot = s.engine.snapshot();
    let compiled = snapshot.layer(LAYER);
    let (array, tests, index) = compiled.compiled_bytes();
    eprintln!(
        "memory with {n} filters: {:.0} heap bytes per filter in all (catalog records, \
         compiled layer, index), of which {:.1} for the compiled filter array, {:.1} for \
         the interval tests and {:.1} for the index",
        (after - before) as f64 / n as f64,
        array as f64 / n as f64,
        tests as f64 / n as f64,
        index as f64 / n as f64,
    );
}

/// The heap a filter value owns before it is added.
fn filter_heap_bytes(f: &Filter) -> usize {
    f.name.capacity()
        + f.description.capacity()
        + f.conditions.capacity() * std::mem::size_of::<Condition>()
}

fn bench(c: &mut Criterion) {
    // `CLASSIFY_SIZES=10000` builds only that size and skips the memory count and the
    // commit, for profiling one case (under callgrind, say).
    let sizes: Vec<usize> = std::env::var("CLASSIFY_SIZES").map_or_else(
        |_| vec![100, 10_000, 100_000],
        |v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
    );
    let profiling = std::env::var_os("CLASSIFY_SIZES").is_some();
    if !profiling {
        memory_per_filter();
    }

    let mut classify = c.benchmark_group("classify");
    let mut engines = Vec::new();
    for n in sizes {
        let (s, packets) = engine_with(n);
        report(n, &s, &packets);
        let mut i = 0usize;
        classify.bench_function(n.to_string(), |b| {
            b.iter(|| {
                let p = &packets[i % PACKETS];
                i = i.wrapping_add(1);
                black_box(s.engine.classify(LAYER, black_box(p), &mut Permit))
            })
        });
        if std::env::var_os("CLASSIFY_CANDIDATES").is_some() {
            let mut i = 0usize;
            let snapshot = s.engine.snapshot();
            let compiled = snapshot.layer(LAYER);
            classify.bench_function(format!("candidates-{n}"), |b| {
                b.iter(|| {
                    let p = &packets[i % PACKETS];
                    i = i.wrapping_add(1);
                    black_box(compiled.candidate_count(black_box(p)))
                })
            });
        }
        engines.push((n, s, packets));
    }
    classify.finish();

    let mut naive = c.benchmark_group("naive");
    for (n, s, packets) in engines.iter().filter(|(n, ..)| *n <= 10_000) {
        let mut i = 0usize;
        naive.bench_function(n.to_string(), |b| {
            b.iter(|| {
                let p = &packets[i % PACKETS];
                i = i.wrapping_add(1);
                black_box(s.engine.classify_naive(LAYER, black_box(p), &mut Permit))
            })
        });
    }
    naive.finish();
    drop(engines);
    if profiling {
        return;
    }

    let mut commit = c.benchmark_group("commit");
    commit.sample_size(10);
    commit.bench_function("10000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut s = setup();
                let (filters, _) = generate(10_000, &s.sublayers, 0xc0ffee);
                let start = Instant::now();
                add(&mut s, filters);
                total += start.elapsed();
                drop(black_box(s));
            }
            total
        })
    });
    commit.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
