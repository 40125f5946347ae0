//! The arbitration rules of spec §5 (WFP's "Filter Arbitration"), case by case: sublayers
//! by weight, filters by weight, callouts that continue, soft and hard permit and block,
//! the override right, and veto.

use std::collections::HashMap;

use palisade_filter::*;
use uuid::Uuid;

const LAYER: Layer = Layer::OutboundTransportV4;

/// What a scripted callout answers; `None` means "not registered".
#[derive(Clone, Copy, Debug)]
enum Script {
    Permit,
    PermitHard,
    Block,
    BlockHard,
    Continue,
    Unregistered,
}

struct Scripted(HashMap<Uuid, Script>);

impl Callouts for Scripted {
    fn classify(&mut self, call: &CalloutCall<'_>, _: &FieldValues) -> Option<CalloutVerdict> {
        let v = |action, clear_right| {
            Some(CalloutVerdict {
                action,
                clear_right,
            })
        };
        match self.0.get(&call.callout)? {
            Script::Permit => v(CalloutAction::Permit, false),
            Script::PermitHard => v(CalloutAction::Permit, true),
            Script::Block => v(CalloutAction::Block, false),
            Script::BlockHard => v(CalloutAction::Block, true),
            Script::Continue => v(CalloutAction::Continue, false),
            Script::Unregistered => None,
        }
    }
}

/// One filter of a case: what it does.
#[derive(Clone, Copy, Debug)]
enum F {
    Permit,
    PermitHard,
    Block,
    /// A terminating callout with the scripted answer.
    Callout(Script),
    /// An inspection callout with the scripted answer.
    Inspect(Script),
    /// An unregistered callout with PERMIT_IF_CALLOUT_UNREGISTERED.
    CalloutOrPermit,
    /// A permit whose conditions do not match the packet.
    PermitNoMatch,
}

struct Case {
    name: &'static str,
    /// Sublayers from heaviest to lightest; filters within each from heaviest to lightest.
    sublayers: &'static [&'static [F]],
    /// Expected decision, hardness, and the deciding filter as (sublayer, position).
    decision: Decision,
    hard: bool,
    decider: Option<(usize, usize)>,
    /// The vetoed filter, if a veto is expected: (sublayer, position) of the veto and of
    /// the overridden hard permit.
    veto: Option<((usize, usize), (usize, usize))>,
}

const CASES: &[Case] = &[
    Case {
        name: "no filter: soft permit by default",
        sublayers: &[],
        decision: Decision::Permit,
        hard: false,
        decider: None,
        veto: None,
    },
    Case {
        name: "permit filter is soft",
        sublayers: &[&[F::Permit]],
        decision: Decision::Permit,
        hard: false,
        decider: Some((0, 0)),
        veto: None,
    },
    Case {
        name: "block filter is hard",
        sublayers: &[&[F::Block]],
        decision: Decision::Block,
        hard: true,
        decider: Some((0, 0)),
        veto: None,
    },
    Case {
        name: "block overrides a soft permit above",
        sublayers: &[&[F::Permit], &[F::Block]],
        decision: Decision::Block,
        hard: true,
        decider: Some((1, 0)),
        veto: None,
    },
    Case {
        name: "hard permit survives a block filter below",
        sublayers: &[&[F::PermitHard], &[F::Block]],
        decision: Decision::Permit,
        hard: true,
        decider: Some((0, 0)),
        veto: None,
    },
    Case {
        name: "callout block below a hard permit is a veto",
        sublayers: &[&[F::PermitHard], &[F::Callout(Script::Block)]],
        decision: Decision::Block,
        hard: true,
        decider: Some((1, 0)),
        veto: Some(((1, 0), (0, 0))),
    },
    Case {
        name: "hard block ignores a permit below",
        sublayers: &[&[F::Block], &[F::Permit]],
        decision: Decision::Block,
        hard: true,
        decider: Some((0, 0)),
        veto: None,
    },
    Case {
        name: "hard block ignores a hard permit below",
        sublayers: &[&[F::Block], &[F::PermitHard]],
        decision: Decision::Block,
        hard: true,
        decider: Some((0, 0)),
        veto: None,
    },
    Case {
        name: "callout block is soft: a permit below overrides it",
        sublayers: &[&[F::Callout(Script::Block)], &[F::Permit]],
        decision: Decision::Permit,
        hard: false,
        decider: Some((1, 0)),
        veto: None,
    },
    Case {
        name: "soft callout block then block filter: the filter's hard block",
        sublayers: &[&[F::Callout(Script::Block)], &[F::Block]],
        decision: Decision::Block,
        hard: true,
        decider: Some((1, 0)),
        veto: None,
    },
    Case {
        name: "callout clearing the right makes its block hard",
        sublayers: &[&[F::Callout(Script::BlockHard)], &[F::Permit]],
        decision: Decision::Block,
        hard: true,
        decider: Some((0, 0)),
        veto: None,
    },
    Case {
        name: "callout clearing the right makes its permit hard",
        sublayers: &[&[F::Callout(Script::PermitHard)], &[F::Block]],
        decision: Decision::Permit,
        hard: true,
        decider: Some((0, 0)),
        veto: None,
    },
    Case {
        name: "hard callout permit can still be vetoed by a callout",
        sublayers: &[
            &[F::Callout(Script::PermitHard)],
            &[F::Callout(Script::Block)],
        ],
        decision: Decision::Block,
        hard: true,
        decider: Some((1, 0)),
        veto: Some(((1, 0), (0, 0))),
    },
    Case {
        name: "callout permit below a hard permit changes nothing",
        sublayers: &[&[F::PermitHard], &[F::Callout(Script::Permit)]],
        decision: Decision::Permit,
        hard: true,
        decider: Some((0, 0)),
        veto: None,
    },
    Case {
        name: "continue passes to the next filter of the sublayer",
        sublayers: &[&[F::Callout(Script::Continue), F::Block]],
        decision: Decision::Block,
        hard: true,
        decider: Some((0, 1)),
        veto: None,
    },
    Case {
        name: "the heavier filter decides its sublayer; the rest is skipped",
        sublayers: &[&[F::Permit, F::Block]],
        decision: Decision::Permit,
        hard: false,
        decider: Some((0, 0)),
        veto: None,
    },
    Case {
        name: "every sublayer is evaluated after a permit",
        sublayers: &[&[F::Permit, F::Block], &[F::Block]],
        decision: Decision::Block,
        hard: true,
        decider: Some((1, 0)),
        veto: None,
    },
    Case {
        name: "inspection callouts cannot decide",
        sublayers: &[&[F::Inspect(Script::Block), F::Permit]],
        decision: Decision::Permit,
        hard: false,
        decider: Some((0, 1)),
        veto: None,
    },
    Case {
        name: "unregistered callout acts as a block filter",
        sublayers: &[&[F::Callout(Script::Unregistered)], &[F::Permit]],
        decision: Decision::Block,
        hard: true,
        decider: Some((0, 0)),
        veto: None,
    },
    Case {
        name: "PERMIT_IF_CALLOUT_UNREGISTERED acts as a permit filter",
        sublayers: &[&[F::CalloutOrPermit], &[F::Callout(Script::Continue)]],
        decision: Decision::Permit,
        hard: false,
        decider: Some((0, 0)),
        veto: None,
    },
    Case {
        name: "an agreeing soft permit below leaves the first decider",
        sublayers: &[&[F::Permit], &[F::Permit]],
        decision: Decision::Permit,
        hard: false,
        decider: Some((0, 0)),
        veto: None,
    },
    Case {
        name: "a hard permit below a soft one takes over",
        sublayers: &[&[F::Permit], &[F::PermitHard]],
        decision: Decision::Permit,
        hard: true,
        decider: Some((1, 0)),
        veto: None,
    },
    Case {
        name: "a soft block below a soft permit takes over",
        sublayers: &[&[F::Permit], &[F::Callout(Script::Block)]],
        decision: Decision::Block,
        hard: false,
        decider: Some((1, 0)),
        veto: None,
    },
    Case {
        name: "non-matching filters do not count",
        sublayers: &[&[F::PermitNoMatch], &[F::Block]],
        decision: Decision::Block,
        hard: true,
        decider: Some((1, 0)),
        veto: None,
    },
    Case {
        name: "a sublayer where everything continues makes no decision",
        sublayers: &[
            &[F::Callout(Script::Continue), F::Inspect(Script::Permit)],
            &[F::Callout(Script::Block)],
        ],
        decision: Decision::Block,
        hard: false,
        decider: Some((1, 0)),
        veto: None,
    },
];

fn port(p: u16) -> Condition {
    Condition::equal(Field::IpRemotePort, Scalar::U16(p))
}

/// Builds the case's policy; returns the engine, the callout script, and the filter ids
/// by (sublayer, position).
fn build(sublayers: &[&[F]]) -> (Engine, Scripted, HashMap<(usize, usize), u64>, Session) {
    let engine = Engine::new();
    let mut s = engine
        .open_session(Caller::root(), SessionOptions::default())
        .expect("session");
    let mut script = HashMap::new();
    let mut ids = HashMap::new();
    let mut txn = s.begin(TxnKind::Write).expect("begin");
    let n = sublayers.len();
    for (si, filters) in sublayers.iter().enumerate() {
        let sublayer = txn
            .add_sublayer(Sublayer {
                key: Uuid::nil(),
                name: format!("sublayer {si}"),
                description: String::new(),
                flags: SublayerFlags::NONE,
                provider: None,
                weight: u16::try_from(0x1000 + 0x100 * (n - si)).expect("weight"),
            })
            .expect("sublayer");
        for (fi, f) in filters.iter().enumerate() {
            let weight = Weight::Exact(1000 - fi as u64);
            let mut callout = |s: Script| {
                let (key, _) = txn_callout(&mut txn);
                script.insert(key, s);
                key
            };
            let filter = match *f {
                F::Permit => Filter::new(LAYER, Action::Permit),
                F::PermitHard => {
                    Filter::new(LAYER, Action::Permit).flags(FilterFlags::CLEAR_ACTION_RIGHT)
                }
                F::Block => Filter::new(LAYER, Action::Block),
                F::Callout(s) => Filter::new(LAYER, Action::CalloutTerminating(callout(s))),
                F::Inspect(s) => Filter::new(LAYER, Action::CalloutInspection(callout(s))),
                F::CalloutOrPermit => Filter::new(
                    LAYER,
                    Action::CalloutTerminating(callout(Script::Unregistered)),
                )
                .flags(FilterFlags::PERMIT_IF_CALLOUT_UNREGISTERED),
                F::PermitNoMatch => Filter::new(LAYER, Action::Permit).condition(port(1)),
            }
            .sublayer(sublayer)
            .weight(weight)
            .condition(port(443))
            .name(format!("{f:?}"));
            // `PermitNoMatch` carries two conditions on one field, which are ORed; make
            // it AND by putting another field in between.
            let filter = match *f {
                F::PermitNoMatch => {
                    let mut filter = filter;
                    filter
                        .conditions
                        .insert(1, Condition::equal(Field::IpProtocol, Scalar::U8(6)));
                    filter
                }
                _ => filter,
            };
            let (_, id) = txn.add_filter(filter).expect("filter");
            ids.insert((si, fi), id);
        }
    }
    txn.commit().expect("commit");
    (engine, Scripted(script), ids, s)
}

fn txn_callout(txn: &mut Transaction<'_>) -> (Uuid, u64) {
    txn.add_callout(Callout {
        key: Uuid::nil(),
        name: "scripted".into(),
        description: String::new(),
        flags: CalloutFlags::NONE,
        provider: None,
        layer: LAYER,
    })
    .expect("callout")
}

fn packet() -> FieldValues {
    FieldValues::new()
        .with(Field::IpRemotePort, Scalar::U16(443))
        .with(Field::IpProtocol, Scalar::U8(17))
}

#[test]
fn arbitration_table() {
    let mut failures = Vec::new();
    for case in CASES {
        let (engine, mut script, ids, _session) = build(case.sublayers);
        let values = packet();
        let got = engine.classify(LAYER, &values, &mut script);
        let naive = engine.classify_naive(LAYER, &values, &mut script);
        let explained = engine.explain(LAYER, &values, &mut script);
        let want_decider = case.decider.map(|d| ids[&d]);
        let want_veto = case.veto.map(|(v, o)| Veto {
            filter_id: ids[&v],
            overridden_filter_id: ids[&o],
        });
        let ok = got.decision == case.decision
            && got.hard == case.hard
            && got.decider.map(|d| d.filter_id) == want_decider
            && got.veto == want_veto
            && naive.decision == got.decision
            && naive.decider == got.decider
            && explained.decision == got.decision
            && explained.decider == want_decider
            && explained.veto == want_veto;
        if !ok {
            failures.push(format!(
                "{}: got {:?} hard={} decider={:?} veto={:?}; want {:?} hard={} decider={:?} veto={:?}\n{}",
                case.name,
                got.decision,
                got.hard,
                got.decider.map(|d| d.filter_id),
                got.veto,
                case.decision,
                case.hard,
                want_decider,
                want_veto,
                explained
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_sublayer_sees_the_traffic() {
    // A callout in the lowest sublayer is called even after a hard decision above: WFP
    // evaluates every sublayer (IDS and QoS callouts rely on it).
    let (engine, mut script, ids, _s) = build(&[&[F::Block], &[F::Inspect(Script::Continue)]]);
    let got = engine.classify(LAYER, &packet(), &mut script);
    assert_eq!(got.decision, Decision::Block);
    assert_eq!(got.callouts.len(), 1);
    assert_eq!(got.callouts[0].filter_id, ids[&(1, 0)]);
}

#[test]
fn callouts_learn_whether_the_right_is_set() {
    struct Spy(Vec<bool>);
    impl Callouts for Spy {
        fn classify(&mut self, c: &CalloutCall<'_>, _: &FieldValues) -> Option<CalloutVerdict> {
            self.0.push(c.right_set);
            Some(CalloutVerdict::CONTINUE)
        }
    }
    for (first, right) in [(F::Permit, true), (F::PermitHard, false), (F::Block, false)] {
        let (engine, _, _, _s) = build(&[&[first], &[F::Callout(Script::Continue)]]);
        let mut spy = Spy(Vec::new());
        engine.classify(LAYER, &packet(), &mut spy);
        assert_eq!(spy.0, vec![right], "after {first:?}");
    }
}

#[test]
fn explain_reads_like_a_trace() {
    let (engine, mut script, ids, _s) = build(CASES[5].sublayers);
    let e = engine.explain(LAYER, &packet(), &mut script);
    let text = e.to_string();
    assert!(text.contains("layer OUTBOUND_TRANSPORT_V4"), "{text}");
    assert!(text.contains("IP_REMOTE_PORT == 443"), "{text}");
    assert!(text.contains("VETO"), "{text}");
    assert!(
        text.contains(&format!(
            "decision: BLOCK (hard) by filter {}",
            ids[&(1, 0)]
        )),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&e.to_json()).expect("json");
    assert_eq!(json["decision"], "block");
    assert_eq!(json["veto"]["overridden_filter_id"], ids[&(0, 0)]);
    assert_eq!(json["sublayers"].as_array().map(Vec::len), Some(2));
}
