//! The classification index against the naive reference: for random filter sets, random
//! packets and random sequences of transactions, `Engine::classify` (candidates from the
//! index) must return exactly what `Engine::classify_naive` (every filter) returns.
//!
//! Values come from small pools so that filters overlap each other and packets hit them,
//! and pools include the ends of each key space. `PROPTEST_CASES` raises the case counts.

use std::net::{Ipv4Addr, Ipv6Addr};

use palisade_filter::builtin::CALLOUTS;
use palisade_filter::policy::ProviderContextPolicy;
use palisade_filter::*;
use proptest::prelude::*;
use uuid::Uuid;

/// The layers tested: both transport families and an ALE layer (text and token fields).
const LAYERS: &[Layer] = &[
    Layer::OutboundTransportV4,
    Layer::OutboundTransportV6,
    Layer::AleAuthConnectV4,
];

/// Address keys of interest at v4 layers (v6 layers place them under 2001:db8::/32 and
/// add the ends of the v6 space).
const ADDRS: &[u32] = &[
    0,
    1,
    0x0a00_0000,
    0x0a00_0001,
    0x0a00_00ff,
    0x0a00_0100,
    0x0a00_0107,
    0x0a01_0203,
    0xac10_0001,
    0xc0a8_0101,
    0xc0a8_01ff,
    0xffff_fffe,
    0xffff_ffff,
];
const PORTS: &[u16] = &[
    0, 1, 22, 53, 80, 443, 500, 1023, 1024, 4500, 8080, 65534, 65535,
];
const PROTOCOLS: &[u8] = &[0, 1, 6, 17, 50, 58, 254, 255];
const FLAG_BITS: &[u32] = &[0x1, 0x2, 0x3, 0x4, 0x20, 0x22, 0x80, 0xa7];
const IFINDEX: &[u32] = &[0, 1, 2, 3, 7, u32::MAX];
const LUIDS: &[u64] = &[0, 1, 2, 1 << 40, u64::MAX];
const APPS: &[&str] = &[
    "/usr/bin/ssh",
    "/USR/BIN/SSH",
    "/usr/bin/curl",
    "/usr/",
    "/opt/app",
    "",
];
const UIDS: &[u32] = &[0, 100, 1000, 1001];
const EXACT_WEIGHTS: &[u64] = &[0, 1, 5, 1 << 60, u64::MAX];

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------
// Filter and packet descriptions, turned into real objects for a given layer.

/// A scalar value, by pool index, read according to the field it is used with.
#[derive(Clone, Copy, Debug)]
struct Pick(usize);

/// A condition, independent of the layer until built.
#[derive(Clone, Debug)]
enum Cond {
    /// A comparison of a scalar field with a pool value.
    Compare(ScalarField, MatchType, Pick),
    /// A range of two pool values.
    Range(ScalarField, Pick, Pick),
    /// A prefix of an address field (`Equal`, `Prefix`, `NotEqual` or `NotPrefix`).
    Prefix(bool, MatchType, Pick, u8),
    /// Flags on FLAGS.
    Flags(MatchType, Pick),
    /// ALE_APP_ID text (ALE layers only).
    App(MatchType, Pick),
    /// ALE_USER_ID security descriptor (ALE layers only).
    User(MatchType, Vec<Principal>, Vec<Principal>),
}

/// A scalar field and its pool.
#[derive(Clone, Copy, Debug, PartialEq)]
enum ScalarField {
    RemoteAddress,
    LocalAddress,
    RemotePort,
    LocalPort,
    Protocol,
    InterfaceIndex,
    LocalInterface,
}

impl ScalarField {
    fn field(self) -> Field {
        match self {
            ScalarField::RemoteAddress => Field::IpRemoteAddress,
            ScalarField::LocalAddress => Field::IpLocalAddress,
            ScalarField::RemotePort => Field::IpRemotePort,
            ScalarField::LocalPort => Field::IpLocalPort,
            ScalarField::Protocol => Field::IpProtocol,
            ScalarField::InterfaceIndex => Field::InterfaceIndex,
            ScalarField::LocalInterface => Field::IpLocalInterface,
        }
    }

    fn value(self, v6: bool, pick: Pick) -> Scalar {
        match self {
            ScalarField::RemoteAddress | ScalarField::LocalAddress => address(v6, pick),
            ScalarField::RemotePort | ScalarField::LocalPort => {
                Scalar::U16(PORTS[pick.0 % PORTS.len()])
            }
            ScalarField::Protocol => Scalar::U8(PROTOCOLS[pick.0 % PROTOCOLS.len()]),
            ScalarField::InterfaceIndex => Scalar::U32(IFINDEX[pick.0 % IFINDEX.len()]),
            ScalarField::LocalInterface => Scalar::U64(LUIDS[pick.0 % LUIDS.len()]),
        }
    }
}

fn address(v6: bool, pick: Pick) -> Scalar {
    if v6 {
        let n = ADDRS.len();
        let i = pick.0 % (n + 2);
        let key = match i {
            _ if i == n => 0,
            _ if i == n + 1 => u128::MAX,
            _ => (0x2001_0db8u128 << 96) | u128::from(ADDRS[i]),
        };
        Scalar::V6(Ipv6Addr::from(key))
    } else {
        Scalar::V4(Ipv4Addr::from(ADDRS[pick.0 % ADDRS.len()]))
    }
}

fn mask(key: u128, bits: u32, len: u8) -> u128 {
    let host = bits - u32::from(len);
    if host >= 128 {
        0
    } else {
        key & !((1u128 << host) - 1)
    }
}

impl Cond {
    fn build(&self, v6: bool) -> Condition {
        match self {
            Cond::Compare(f, m, p) => {
                Condition::new(f.field(), *m, ConditionValue::Scalar(f.value(v6, *p)))
            }
            Cond::Range(f, a, b) => {
                let (a, b) = (f.value(v6, *a), f.value(v6, *b));
                let (low, high) = if a.key() <= b.key() { (a, b) } else { (b, a) };
                Condition::range(f.field(), low, high)
            }
            Cond::Prefix(remote, m, p, len) => {
                let field = if *remote {
                    Field::IpRemoteAddress
                } else {
                    Field::IpLocalAddress
                };
                let value = if v6 {
                    let len = [0u8, 32, 64, 96, 104, 120, 127, 128][usize::from(*len) % 8];
                    let key = mask(address(true, *p).key(), 128, len);
                    ConditionValue::v6_prefix(Ipv6Addr::from(key), len)
                } else {
                    let len = [0u8, 1, 8, 16, 23, 24, 31, 32][usize::from(*len) % 8];
                    let key = mask(address(false, *p).key(), 32, len);
                    ConditionValue::v4_prefix(Ipv4Addr::from(key as u32), len)
                };
                Condition::new(field, *m, value)
            }
            Cond::Flags(m, p) => Condition::new(
                Field::Flags,
                *m,
                ConditionValue::Scalar(Scalar::U32(FLAG_BITS[p.0 % FLAG_BITS.len()])),
            ),
            Cond::App(m, p) => Condition::new(
                Field::AleAppId,
                *m,
                ConditionValue::Text(APPS[p.0 % APPS.len()].to_string()),
            ),
            Cond::User(m, allow, deny) => Condition::new(
                Field::AleUserId,
                *m,
                ConditionValue::Sd(SecurityDescriptor {
                    allow: allow.clone(),
                    deny: deny.clone(),
                }),
            ),
        }
    }
}

fn scalar_field() -> impl Strategy<Value = ScalarField> {
    prop_oneof![
        4 => Just(ScalarField::RemoteAddress),
        2 => Just(ScalarField::LocalAddress),
        2 => Just(ScalarField::RemotePort),
        1 => Just(ScalarField::LocalPort),
        2 => Just(ScalarField::Protocol),
        1 => Just(ScalarField::InterfaceIndex),
        1 => Just(ScalarField::LocalInterface),
    ]
}

fn pick() -> impl Strategy<Value = Pick> {
    (0usize..64).prop_map(Pick)
}

fn principal() -> impl Strategy<Value = Principal> {
    prop_oneof![
        Just(Principal::Everyone),
        prop::sample::select(UIDS).prop_map(Principal::Uid),
        prop::sample::select(&[100u32, 200][..]).prop_map(Principal::Gid),
    ]
}

/// One condition group: one field, one to three conditions (ORed).
fn group(ale: bool) -> impl Strategy<Value = Vec<Cond>> {
    use MatchType as M;
    let compare = (
        scalar_field(),
        prop::sample::select(
            // Mostly narrow, so that the index prunes and a missed candidate shows.
            &[
                M::Equal,
                M::Equal,
                M::Equal,
                M::Equal,
                M::NotEqual,
                M::Greater,
                M::Less,
                M::GreaterOrEqual,
                M::LessOrEqual,
            ][..],
        ),
        pick(),
    );
    let scalar = prop_oneof![
        4 => compare.prop_map(|(f, m, p)| vec![Cond::Compare(f, m, p)]),
        3 => (scalar_field(), pick(), pick()).prop_map(|(f, a, b)| vec![Cond::Range(f, a, b)]),
        5 => (
            any::<bool>(),
            prop::sample::select(
                &[M::Equal, M::Prefix, M::Equal, M::Prefix, M::NotEqual, M::NotPrefix][..],
            ),
            pick(),
            0u8..8,
        )
            .prop_map(|(r, m, p, l)| vec![Cond::Prefix(r, m, p, l)]),
        2 => (
            prop::sample::select(&[M::FlagsAllSet, M::FlagsAnySet, M::FlagsNoneSet][..]),
            pick(),
        )
            .prop_map(|(m, p)| vec![Cond::Flags(m, p)]),
        // Alternatives on one field: consecutive conditions, ORed.
        3 => (scalar_field(), prop::collection::vec((pick(), pick()), 2..4)).prop_map(
            |(f, picks)| {
                picks
                    .into_iter()
                    .map(|(a, b)| {
                        if a.0 % 3 == 0 {
                            Cond::Compare(f, M::Equal, a)
                        } else {
                            Cond::Range(f, a, b)
                        }
                    })
                    .collect()
            }
        ),
        2 => (any::<bool>(), prop::collection::vec((pick(), 0u8..8), 2..4)).prop_map(
            |(r, picks)| {
                picks
                    .into_iter()
                    .map(|(p, l)| Cond::Prefix(r, M::Prefix, p, l))
                    .collect()
            }
        ),
    ];
    if !ale {
        return scalar.boxed();
    }
    let text = prop::collection::vec(
        (
            prop::sample::select(
                &[
                    M::Equal,
                    M::NotEqual,
                    M::EqualCaseInsensitive,
                    M::Prefix,
                    M::NotPrefix,
                ][..],
            ),
            pick(),
        ),
        1..3,
    )
    .prop_map(|v| v.into_iter().map(|(m, p)| Cond::App(m, p)).collect());
    let user = (
        prop::sample::select(&[M::Equal, M::NotEqual][..]),
        prop::collection::vec(principal(), 0..3),
        prop::collection::vec(principal(), 0..2),
    )
        .prop_map(|(m, a, d)| vec![Cond::User(m, a, d)]);
    prop_oneof![6 => scalar, 1 => text, 1 => user].boxed()
}

#[derive(Clone, Copy, Debug)]
enum ActionSpec {
    Permit,
    Block,
    Terminating(usize),
    Inspection(usize),
    Unknown(usize),
}

#[derive(Clone, Copy, Debug)]
enum WeightSpec {
    Auto,
    Range(u8),
    Exact(usize),
}

#[derive(Clone, Copy, Debug)]
enum ContextSpec {
    None,
    Raw(u64),
    Provider(usize),
}

/// A filter, independent of the layer until built.
#[derive(Clone, Debug)]
struct FilterSpec {
    groups: Vec<Vec<Cond>>,
    action: ActionSpec,
    clear_right: bool,
    permit_if_unregistered: bool,
    weight: WeightSpec,
    /// 0 is the universal sublayer; 1.. the test's sublayers.
    sublayer: usize,
    context: ContextSpec,
}

fn filter_spec(ale: bool) -> impl Strategy<Value = FilterSpec> {
    let action = prop_oneof![
        4 => Just(ActionSpec::Permit),
        4 => Just(ActionSpec::Block),
        2 => (0usize..4).prop_map(ActionSpec::Terminating),
        1 => (0usize..4).prop_map(ActionSpec::Inspection),
        2 => (0usize..4).prop_map(ActionSpec::Unknown),
    ];
    let weight = prop_oneof![
        3 => Just(WeightSpec::Auto),
        2 => (0u8..16).prop_map(WeightSpec::Range),
        2 => (0usize..EXACT_WEIGHTS.len()).prop_map(WeightSpec::Exact),
    ];
    let context = prop_oneof![
        3 => Just(ContextSpec::None),
        1 => (0u64..4).prop_map(ContextSpec::Raw),
        1 => (0usize..2).prop_map(ContextSpec::Provider),
    ];
    (
        prop_oneof![
            1 => prop::collection::vec(group(ale), 0..1),
            12 => prop::collection::vec(group(ale), 1..4),
        ],
        action,
        any::<bool>(),
        any::<bool>(),
        weight,
        0usize..4,
        context,
    )
        .prop_map(
            |(groups, action, clear_right, permit_if_unregistered, weight, sublayer, context)| {
                FilterSpec {
                    groups,
                    action,
                    clear_right,
                    permit_if_unregistered,
                    weight,
                    sublayer,
                    context,
                }
            },
        )
}

/// What the test added besides filters: sublayers and provider contexts.
struct World {
    engine: Engine,
    session: Session,
    sublayers: Vec<Uuid>,
    contexts: Vec<Uuid>,
}

impl World {
    fn new(sublayer_weights: &[u16]) -> World {
        let engine = Engine::new();
        let mut session = engine
            .open_session(Caller::root(), SessionOptions::default())
            .expect("session");
        let mut sublayers = Vec::new();
        for (i, w) in sublayer_weights.iter().enumerate() {
            let key = session
                .add_sublayer(Sublayer {
                    key: Uuid::nil(),
                    name: format!("test {i}"),
                    description: String::new(),
                    flags: SublayerFlags::NONE,
                    provider: None,
                    weight: *w,
                })
                .expect("sublayer");
            sublayers.push(key);
        }
        let mut contexts = Vec::new();
        for i in 0..2u8 {
            let (key, _) = session
                .add_provider_context(ProviderContext {
                    key: Uuid::nil(),
                    name: format!("context {i}"),
                    description: String::new(),
                    flags: ProviderContextFlags::NONE,
                    provider: None,
                    policy: ProviderContextPolicy::General(vec![i]),
                })
                .expect("provider context");
            contexts.push(key);
        }
        World {
            engine,
            session,
            sublayers,
            contexts,
        }
    }

    fn filter(&self, layer: Layer, spec: &FilterSpec) -> Filter {
        let v6 = layer.family() == Some(Family::V6);
        let callouts: Vec<Uuid> = CALLOUTS
            .iter()
            .filter(|c| c.2 == layer)
            .map(|c| c.0)
            .collect();
        let callout = |i: usize| callouts[i % callouts.len()];
        let action = match spec.action {
            ActionSpec::Permit => Action::Permit,
            ActionSpec::Block => Action::Block,
            ActionSpec::Terminating(i) => Action::CalloutTerminating(callout(i)),
            ActionSpec::Inspection(i) => Action::CalloutInspection(callout(i)),
            ActionSpec::Unknown(i) => Action::CalloutUnknown(callout(i)),
        };
        let mut f = Filter::new(layer, action);
        for g in &spec.groups {
            for c in g {
                f = f.condition(c.build(v6));
            }
        }
        if spec.clear_right {
            f = f.flags(FilterFlags::CLEAR_ACTION_RIGHT);
        }
        if spec.permit_if_unregistered && action.callout().is_some() {
            f = f.flags(FilterFlags::PERMIT_IF_CALLOUT_UNREGISTERED);
        }
        f = f.weight(match spec.weight {
            WeightSpec::Auto => Weight::Auto,
            WeightSpec::Range(r) => Weight::Range(r),
            WeightSpec::Exact(i) => Weight::Exact(EXACT_WEIGHTS[i]),
        });
        if spec.sublayer > 0 && !self.sublayers.is_empty() {
            f = f.sublayer(self.sublayers[(spec.sublayer - 1) % self.sublayers.len()]);
        }
        match spec.context {
            ContextSpec::None => f,
            ContextSpec::Raw(v) => f.raw_context(v),
            ContextSpec::Provider(i) => f.provider_context(self.contexts[i % self.contexts.len()]),
        }
    }

    /// Adds the filters in one transaction; every one must be accepted.
    fn add_all(&mut self, layer: Layer, specs: &[FilterSpec]) -> Vec<(Uuid, u64)> {
        let filters: Vec<Filter> = specs.iter().map(|s| self.filter(layer, s)).collect();
        let mut txn = self.session.begin(TxnKind::Write).expect("begin");
        let out = txn.add_filters(filters).expect("add filters");
        txn.commit().expect("commit");
        out
    }
}

/// A packet, independent of the layer until built: per field, a pool pick or absent.
#[derive(Clone, Debug)]
struct PacketSpec {
    remote: Option<Pick>,
    local: Option<Pick>,
    remote_port: Option<Pick>,
    local_port: Option<Pick>,
    protocol: Option<Pick>,
    ifindex: Option<Pick>,
    luid: Option<Pick>,
    flags: Option<u32>,
    app: Option<Pick>,
    uid: Option<(Pick, Vec<u32>)>,
    /// Gives the remote address as a number instead: no condition on it can match.
    wrong_kind: bool,
    /// Feeds the callouts' verdicts.
    salt: u64,
}

fn packet_spec() -> impl Strategy<Value = PacketSpec> {
    let field = || prop::option::weighted(0.9, pick());
    (
        (
            field(),
            field(),
            field(),
            field(),
            field(),
            field(),
            field(),
        ),
        prop::option::weighted(0.8, 0u32..256),
        field(),
        prop::option::weighted(
            0.9,
            (
                pick(),
                prop::collection::vec(prop::sample::select(&[100u32, 200, 300][..]), 0..3),
            ),
        ),
        prop::bool::weighted(0.03),
        any::<u64>(),
    )
        .prop_map(
            |(
                (remote, local, remote_port, local_port, protocol, ifindex, luid),
                flags,
                app,
                uid,
                wrong_kind,
                salt,
            )| {
                PacketSpec {
                    remote,
                    local,
                    remote_port,
                    local_port,
                    protocol,
                    ifindex,
                    luid,
                    flags,
                    app,
                    uid,
                    wrong_kind,
                    salt,
                }
            },
        )
}

impl PacketSpec {
    fn build(&self, layer: Layer) -> (FieldValues, u64) {
        let v6 = layer.family() == Some(Family::V6);
        let mut v = FieldValues::new();
        let mut set = |f: ScalarField, p: Option<Pick>| {
            if let Some(p) = p
                && layer.has_field(f.field())
            {
                v.set(f.field(), f.value(v6, p));
            }
        };
        set(ScalarField::RemoteAddress, self.remote);
        set(ScalarField::LocalAddress, self.local);
        set(ScalarField::RemotePort, self.remote_port);
        set(ScalarField::LocalPort, self.local_port);
        set(ScalarField::Protocol, self.protocol);
        set(ScalarField::InterfaceIndex, self.ifindex);
        set(ScalarField::LocalInterface, self.luid);
        if self.wrong_kind {
            v.set(Field::IpRemoteAddress, Scalar::U32(7));
        }
        if let Some(flags) = self.flags {
            v.set(Field::Flags, Scalar::U32(flags));
        }
        if layer.has_field(Field::AleAppId) {
            if let Some(p) = self.app {
                v.set(
                    Field::AleAppId,
                    Value::Text(APPS[p.0 % APPS.len()].to_string()),
                );
            }
            if let Some((p, gids)) = &self.uid {
                v.set(
                    Field::AleUserId,
                    Value::Token(Token::user(UIDS[p.0 % UIDS.len()], gids.clone())),
                );
            }
        }
        (v, self.salt)
    }
}

/// Callouts whose verdict is a function of the filter and the packet, covering every
/// answer: permit, block, continue, each soft or hard, and unregistered.
struct TestCallouts {
    salt: u64,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Callouts for TestCallouts {
    fn classify(&mut self, call: &CalloutCall<'_>, values: &FieldValues) -> Option<CalloutVerdict> {
        let port = values
            .get(Field::IpRemotePort)
            .and_then(Value::scalar)
            .map_or(0, |s| s.key() as u64);
        let h = splitmix(call.filter_id ^ splitmix(self.salt ^ port));
        let verdict = |action, clear_right| CalloutVerdict {
            action,
            clear_right,
        };
        match h % 7 {
            0 => Some(CalloutVerdict::PERMIT),
            1 => Some(CalloutVerdict::BLOCK),
            2 => Some(CalloutVerdict::CONTINUE),
            3 => Some(verdict(CalloutAction::Permit, true)),
            4 => Some(verdict(CalloutAction::Block, true)),
            5 => Some(verdict(CalloutAction::Continue, true)),
            _ => None,
        }
    }
}

/// Classifies with the index and naively and compares every part of the result.
fn check(engine: &Engine, layer: Layer, packet: &PacketSpec) -> Result<(), TestCaseError> {
    let (values, salt) = packet.build(layer);
    check_values(engine, layer, values, salt)
}

/// [`check`] for values built by hand.
fn check_values(
    engine: &Engine,
    layer: Layer,
    values: FieldValues,
    salt: u64,
) -> Result<(), TestCaseError> {
    // The index's own contract: ascending, and a superset of the filters that match.
    let candidates = engine.candidate_positions(layer, &values);
    prop_assert!(
        candidates.windows(2).all(|w| w[0] < w[1]),
        "not ascending: {:?}",
        candidates
    );
    let snapshot = engine.snapshot();
    for (pos, f) in snapshot.layer(layer).filters.iter().enumerate() {
        // The compiled interval tests the walk uses agree with the filter's conditions.
        prop_assert_eq!(
            snapshot.layer(layer).matches(pos, &values),
            f.record.object.matches(&values),
            "compiled tests of filter {} on {:?}",
            f.id(),
            values
        );
        if f.record.object.matches(&values) {
            prop_assert!(
                candidates.binary_search(&(pos as u32)).is_ok(),
                "filter {} at {} matches {:?} but is no candidate",
                f.id(),
                pos,
                values
            );
        }
    }
    let fast = engine.classify(layer, &values, &mut TestCallouts { salt });
    let slow = engine.classify_naive(layer, &values, &mut TestCallouts { salt });
    let ctx = |c: &Classification| c.provider_context.as_ref().map(|r| r.object.key);
    let context = || format!("layer {layer}, packet {values:?}");
    prop_assert_eq!(fast.decision, slow.decision, "{}", context());
    prop_assert_eq!(fast.hard, slow.hard, "{}", context());
    prop_assert_eq!(fast.decider, slow.decider, "{}", context());
    prop_assert_eq!(&fast.callouts, &slow.callouts, "{}", context());
    prop_assert_eq!(fast.veto, slow.veto, "{}", context());
    prop_assert_eq!(fast.raw_context, slow.raw_context, "{}", context());
    prop_assert_eq!(ctx(&fast), ctx(&slow), "{}", context());
    Ok(())
}

fn sublayer_weights() -> impl Strategy<Value = Vec<u16>> {
    // 0x8000 ties with the universal sublayer: order then falls to the key.
    prop::collection::vec(
        prop::sample::select(&[0x0100u16, 0x4000, 0x8000, 0x8001, 0xa000, 0xffff][..]),
        2..5,
    )
}

fn layer() -> impl Strategy<Value = Layer> {
    prop::sample::select(LAYERS)
}

fn specs_and_packets(
    filters: std::ops::Range<usize>,
    packets: std::ops::Range<usize>,
) -> impl Strategy<Value = (Layer, Vec<u16>, Vec<FilterSpec>, Vec<PacketSpec>)> {
    layer().prop_flat_map(move |layer| {
        let ale = layer.has_field(Field::AleAppId);
        (
            Just(layer),
            sublayer_weights(),
            prop::collection::vec(filter_spec(ale), filters.clone()),
            prop::collection::vec(packet_spec(), packets.clone()),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), ..ProptestConfig::default() })]

    /// Small filter sets: shrinks to readable counterexamples.
    #[test]
    fn small_sets_classify_as_naive((layer, weights, specs, packets) in specs_and_packets(0..40, 1..40)) {
        let mut world = World::new(&weights);
        world.add_all(layer, &specs);
        for p in &packets {
            check(&world.engine, layer, p)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(16),
        // Shrinking thousands of filters takes long; a failure here should show up, smaller, above.
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    })]

    /// Thousands of filters.
    #[test]
    fn large_sets_classify_as_naive((layer, weights, specs, packets) in specs_and_packets(200..3000, 100..200)) {
        let mut world = World::new(&weights);
        world.add_all(layer, &specs);
        prop_assert_eq!(world.engine.snapshot().layer(layer).filters.len(), specs.len());
        for p in &packets {
            check(&world.engine, layer, p)?;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Wide key spaces: many distinct intervals, nested prefixes (the index's tiers, its radix
// tables and its budget), at both families.

/// A prefix filter over the whole key space, with an optional port range and protocol.
#[derive(Clone, Debug)]
struct PrefixSpec {
    /// The high bits of the address (its low bits are masked by the length).
    addr: u128,
    /// Prefix length as a share of the address bits, in 1/32ths.
    len: u8,
    /// Instead of a prefix: a range of this many addresses.
    range: Option<u16>,
    ports: Option<(u16, u16)>,
    protocol: Option<u8>,
    block: bool,
    sublayer: usize,
}

fn prefix_spec() -> impl Strategy<Value = PrefixSpec> {
    (
        any::<u128>(),
        prop_oneof![6 => 24u8..=32, 3 => 8u8..24, 1 => 0u8..8],
        prop::option::weighted(0.1, 1u16..2000),
        prop::option::weighted(0.4, (0u16..65, 0u16..65)),
        prop::option::weighted(0.5, prop::sample::select(&[1u8, 6, 17][..])),
        any::<bool>(),
        0usize..4,
    )
        .prop_map(
            |(addr, len, range, ports, protocol, block, sublayer)| PrefixSpec {
                addr,
                len,
                range,
                ports: ports.map(|(a, b)| (a.min(b) * 1000, a.max(b) * 1000 + 999)),
                protocol,
                block,
                sublayer,
            },
        )
}

impl PrefixSpec {
    /// Nested prefixes: the same address at other lengths.
    fn around(&self, lens: &[u8]) -> Vec<PrefixSpec> {
        lens.iter()
            .map(|len| PrefixSpec {
                len: *len,
                range: None,
                ..self.clone()
            })
            .collect()
    }

    fn bounds(&self, v6: bool) -> (u128, u128) {
        let bits = if v6 { 128 } else { 32 };
        let addr = if v6 { self.addr } else { self.addr >> 96 };
        if let Some(n) = self.range {
            return (
                addr,
                addr.saturating_add(u128::from(n)).min(if v6 {
                    u128::MAX
                } else {
                    u128::from(u32::MAX)
                }),
            );
        }
        let len = u32::from(self.len) * bits / 32;
        let lo = mask(addr, bits, len as u8);
        let host = bits - len;
        let hi = if host == 128 {
            u128::MAX
        } else {
            lo | ((1u128 << host) - 1)
        };
        (lo, hi)
    }

    fn filter(&self, world: &World, layer: Layer) -> Filter {
        let v6 = layer.family() == Some(Family::V6);
        let scalar = |k: u128| {
            if v6 {
                Scalar::V6(Ipv6Addr::from(k))
            } else {
                Scalar::V4(Ipv4Addr::from(k as u32))
            }
        };
        let (lo, hi) = self.bounds(v6);
        let mut f = Filter::new(
            layer,
            if self.block {
                Action::Block
            } else {
                Action::Permit
            },
        );
        f = if self.range.is_some() {
            f.condition(Condition::range(
                Field::IpRemoteAddress,
                scalar(lo),
                scalar(hi),
            ))
        } else {
            let bits = if v6 { 128 } else { 32 };
            let len = (u32::from(self.len) * bits / 32) as u8;
            let value = if v6 {
                ConditionValue::v6_prefix(Ipv6Addr::from(lo), len)
            } else {
                ConditionValue::v4_prefix(Ipv4Addr::from(lo as u32), len)
            };
            f.condition(Condition::new(
                Field::IpRemoteAddress,
                MatchType::Prefix,
                value,
            ))
        };
        if let Some(p) = self.protocol {
            f = f.condition(Condition::equal(Field::IpProtocol, Scalar::U8(p)));
        }
        if let Some((a, b)) = self.ports {
            f = f.condition(Condition::range(
                Field::IpRemotePort,
                Scalar::U16(a),
                Scalar::U16(b),
            ));
        }
        if self.sublayer > 0 {
            f = f.sublayer(world.sublayers[(self.sublayer - 1) % world.sublayers.len()]);
        }
        f
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(16),
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn wide_key_spaces_classify_as_naive(
        v6 in any::<bool>(),
        specs in prop::collection::vec(prefix_spec(), 300..3000),
        nests in prop::collection::vec((any::<u128>(), prop::collection::vec(0u8..=32, 4..33)), 0..40),
        stairs in prop::option::weighted(0.3, (0u128..u128::MAX / 2, 40u16..300)),
        packets in prop::collection::vec((any::<bool>(), any::<usize>(), any::<u128>(), 0u16..u16::MAX, prop::sample::select(&[1u8, 6, 17][..])), 100..200),
    ) {
        let layer = if v6 { Layer::OutboundTransportV6 } else { Layer::OutboundTransportV4 };
        let mut world = World::new(&[0x4000, 0x9000, 0x8000]);
        let mut all = specs.clone();
        for (addr, lens) in &nests {
            let base = PrefixSpec { addr: *addr, ..specs[0].clone() };
            all.extend(base.around(lens));
        }
        // A staircase of ranges that all overlap: wide in every tier, so most end in the
        // always list.
        if let Some((base, steps)) = stairs {
            for i in 0..u128::from(steps) {
                let addr = if v6 { base.wrapping_add(i) } else { ((base >> 96) + i) << 96 };
                all.push(PrefixSpec { addr, range: Some(1000), ..specs[0].clone() });
            }
        }
        let filters: Vec<Filter> = all.iter().map(|s| s.filter(&world, layer)).collect();
        let mut txn = world.session.begin(TxnKind::Write).expect("begin");
        txn.add_filters(filters).expect("add");
        txn.commit().expect("commit");
        for (aimed, i, random, port, protocol) in packets {
            let target = &all[i % all.len()];
            let key = if aimed {
                let (lo, hi) = target.bounds(v6);
                lo + random % (hi - lo).saturating_add(1).max(1)
            } else if v6 {
                random
            } else {
                random >> 96
            };
            let remote = if v6 { Scalar::V6(Ipv6Addr::from(key)) } else { Scalar::V4(Ipv4Addr::from(key as u32)) };
            let port = match (aimed, target.ports) {
                (true, Some((a, b))) => a + port % (b - a + 1),
                _ => port,
            };
            let protocol = match (aimed, target.protocol) {
                (true, Some(p)) => p,
                _ => protocol,
            };
            let p = PacketSpec {
                remote: None,
                local: None,
                remote_port: None,
                local_port: None,
                protocol: None,
                ifindex: None,
                luid: None,
                flags: None,
                app: None,
                uid: None,
                wrong_kind: false,
                salt: 0,
            };
            check_values(
                &world.engine,
                layer,
                p.build(layer).0
                    .with(Field::IpRemoteAddress, remote)
                    .with(Field::IpRemotePort, Scalar::U16(port))
                    .with(Field::IpProtocol, Scalar::U8(protocol)),
                0,
            )?;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Sequences of transactions.

#[derive(Clone, Debug)]
enum Op {
    /// Adds filters in one transaction and commits.
    Add(Vec<FilterSpec>),
    /// Deletes the model's `n`th filter (modulo its size) by key.
    DeleteKey(usize),
    /// Deletes the model's `n`th filter by runtime id.
    DeleteId(usize),
    /// Adds filters and deletes one, then drops the transaction.
    Aborted(Vec<FilterSpec>, usize),
    /// Adds filters with an invalid one among them, then commits the rest: a failed call
    /// does not doom the transaction.
    FailsMidway(Vec<FilterSpec>, usize, usize),
    /// The same as one `add_filters` call: all or none, so none.
    FailsBatch(Vec<FilterSpec>, usize),
}

fn op(ale: bool) -> impl Strategy<Value = Op> {
    let specs = || prop::collection::vec(filter_spec(ale), 1..40);
    prop_oneof![
        4 => specs().prop_map(Op::Add),
        2 => any::<usize>().prop_map(Op::DeleteKey),
        2 => any::<usize>().prop_map(Op::DeleteId),
        1 => (specs(), any::<usize>()).prop_map(|(s, d)| Op::Aborted(s, d)),
        1 => (specs(), any::<usize>(), any::<usize>()).prop_map(|(s, i, d)| Op::FailsMidway(s, i, d)),
        1 => (specs(), any::<usize>()).prop_map(|(s, i)| Op::FailsBatch(s, i)),
    ]
}

/// A filter that every layer tested refuses: a prefix with host bits set.
fn invalid(layer: Layer) -> Filter {
    let value = if layer.family() == Some(Family::V6) {
        ConditionValue::v6_prefix(Ipv6Addr::LOCALHOST, 64)
    } else {
        ConditionValue::v4_prefix(Ipv4Addr::new(10, 0, 0, 1), 24)
    };
    Filter::new(layer, Action::Block).condition(Condition::new(
        Field::IpRemoteAddress,
        MatchType::Prefix,
        value,
    ))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

    #[test]
    fn transactions_keep_the_index_exact(
        (layer, weights, ops, packets) in layer().prop_flat_map(|layer| {
            let ale = layer.has_field(Field::AleAppId);
            (
                Just(layer),
                sublayer_weights(),
                prop::collection::vec(op(ale), 1..12),
                prop::collection::vec(packet_spec(), 20..40),
            )
        })
    ) {
        let mut world = World::new(&weights);
        // Keys and runtime ids of the filters the test added and has not deleted.
        let mut model: Vec<(Uuid, u64)> = Vec::new();
        for op in &ops {
            match op {
                Op::Add(specs) => model.extend(world.add_all(layer, specs)),
                Op::DeleteKey(n) | Op::DeleteId(n) => {
                    if model.is_empty() {
                        continue;
                    }
                    let (key, id) = model.remove(n % model.len());
                    let mut txn = world.session.begin(TxnKind::Write).expect("begin");
                    match op {
                        Op::DeleteKey(_) => txn.delete(ObjectKind::Filter, key),
                        _ => txn.delete_filter_by_id(id),
                    }
                    .expect("delete");
                    txn.commit().expect("commit");
                }
                Op::Aborted(specs, d) => {
                    let filters: Vec<Filter> = specs.iter().map(|s| world.filter(layer, s)).collect();
                    let before = world.engine.snapshot();
                    let mut txn = world.session.begin(TxnKind::Write).expect("begin");
                    for f in filters {
                        txn.add_filter(f).expect("add");
                    }
                    if !model.is_empty() {
                        txn.delete(ObjectKind::Filter, model[d % model.len()].0).expect("delete");
                    }
                    drop(txn);
                    prop_assert!(std::sync::Arc::ptr_eq(&before, &world.engine.snapshot()));
                }
                Op::FailsMidway(specs, at, d) => {
                    let mut filters: Vec<Filter> = specs.iter().map(|s| world.filter(layer, s)).collect();
                    filters.insert(at % (filters.len() + 1), invalid(layer));
                    let mut txn = world.session.begin(TxnKind::Write).expect("begin");
                    let mut added = Vec::new();
                    for f in filters {
                        if let Ok(k) = txn.add_filter(f) {
                            added.push(k);
                        }
                    }
                    prop_assert_eq!(added.len(), specs.len());
                    let mut deleted = None;
                    if !model.is_empty() {
                        let i = d % model.len();
                        txn.delete_filter_by_id(model[i].1).expect("delete");
                        deleted = Some(i);
                        // A second delete of the same filter fails and changes nothing.
                        prop_assert!(txn.delete_filter_by_id(model[i].1).is_err());
                    }
                    txn.commit().expect("commit");
                    if let Some(i) = deleted {
                        model.remove(i);
                    }
                    model.extend(added);
                }
                Op::FailsBatch(specs, at) => {
                    let mut filters: Vec<Filter> = specs.iter().map(|s| world.filter(layer, s)).collect();
                    filters.insert(at % (filters.len() + 1), invalid(layer));
                    let mut txn = world.session.begin(TxnKind::Write).expect("begin");
                    prop_assert!(txn.add_filters(filters).is_err());
                    txn.commit().expect("commit");
                }
            }
            let snapshot = world.engine.snapshot();
            prop_assert_eq!(snapshot.layer(layer).filters.len(), model.len());
            prop_assert_eq!(snapshot.catalog.filter_count(), model.len());
            for (key, id) in &model {
                prop_assert_eq!(snapshot.catalog.filter(*key).map(|r| r.id), Some(*id));
            }
            for p in &packets {
                check(&world.engine, layer, p)?;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The index prunes.

/// 10,000 distinct /24s, plus a few filters without conditions: a packet's candidates
/// are its /24's filter and those few, not thousands.
#[test]
fn distinct_prefixes_give_few_candidates() {
    let layer = Layer::OutboundTransportV4;
    let mut world = World::new(&[0x4000, 0xa000]);
    let mut filters: Vec<Filter> = (0..10_000u32)
        .map(|i| {
            let net = Ipv4Addr::from(0x0a00_0000 | (i << 8));
            Filter::new(
                layer,
                if i % 2 == 0 {
                    Action::Permit
                } else {
                    Action::Block
                },
            )
            .condition(Condition::new(
                Field::IpRemoteAddress,
                MatchType::Equal,
                ConditionValue::v4_prefix(net, 24),
            ))
            .condition(Condition::equal(Field::IpProtocol, Scalar::U8(6)))
        })
        .collect();
    filters.push(Filter::new(layer, Action::Permit));
    // Below the universal sublayer, a permit that agrees or is ignored: the /24 decides.
    filters.push(Filter::new(layer, Action::Permit).sublayer(world.sublayers[0]));
    let mut txn = world.session.begin(TxnKind::Write).expect("begin");
    txn.add_filters(filters).expect("add");
    txn.commit().expect("commit");

    for i in [0u32, 1, 77, 4095, 9999] {
        let values = FieldValues::new()
            .with(
                Field::IpRemoteAddress,
                Scalar::V4(Ipv4Addr::from(0x0a00_0005 | (i << 8))),
            )
            .with(Field::IpProtocol, Scalar::U8(6));
        let n = world.engine.candidate_count(layer, &values);
        assert!(n <= 4, "{n} candidates for /24 number {i}");
        let c = world.engine.classify(layer, &values, &mut NoCallouts);
        let d = c.decider.expect("a filter decides");
        assert_eq!(
            c.decision,
            if i % 2 == 0 {
                Decision::Permit
            } else {
                Decision::Block
            }
        );
        assert_ne!(d.sublayer, world.sublayers[0]);
    }
    // Outside every /24, or without the field: only the two unconditional filters.
    let outside = FieldValues::new().with(
        Field::IpRemoteAddress,
        Scalar::V4(Ipv4Addr::new(192, 0, 2, 1)),
    );
    assert_eq!(world.engine.candidate_count(layer, &outside), 2);
    assert_eq!(world.engine.candidate_count(layer, &FieldValues::new()), 2);
    // The index is small next to the filters.
    let bytes = world.engine.snapshot().layer(layer).index_bytes();
    assert!(bytes < 10_002 * 256, "{bytes} bytes of index");
}

/// A layer whose filters test only text and tokens indexes nothing, and still works.
#[test]
fn unindexable_layer_still_classifies() {
    let layer = Layer::AleAuthConnectV4;
    let mut world = World::new(&[0x4000]);
    let filters: Vec<Filter> = APPS
        .iter()
        .enumerate()
        .map(|(i, app)| {
            Filter::new(
                layer,
                if i % 2 == 0 {
                    Action::Block
                } else {
                    Action::Permit
                },
            )
            .condition(Condition::new(
                Field::AleAppId,
                MatchType::EqualCaseInsensitive,
                ConditionValue::Text(app.to_string()),
            ))
        })
        .collect();
    let mut txn = world.session.begin(TxnKind::Write).expect("begin");
    txn.add_filters(filters).expect("add");
    txn.commit().expect("commit");
    let values = FieldValues::new().with(Field::AleAppId, Value::Text("/usr/bin/SSH".into()));
    assert_eq!(world.engine.candidate_count(layer, &values), APPS.len());
    let c = world.engine.classify(layer, &values, &mut NoCallouts);
    assert_eq!(c.decision, Decision::Block);
    // An empty layer.
    assert_eq!(world.engine.candidate_count(Layer::IkeextV6, &values), 0);
}
