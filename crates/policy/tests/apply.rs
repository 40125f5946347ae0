//! Diff and apply: re-applying is a no-op, a changed rule changes only its objects, other
//! providers' objects are never touched, and a failing apply changes nothing.

mod common;

use common::*;
use palisade_filter::{
    Action, Condition, Engine, Field, Filter, FilterFlags, Layer, ObjectKind, Scalar,
};
use palisade_policy::diff::Op;
use palisade_policy::keys::derive;
use palisade_policy::{PALISADE_PROVIDER, PolicyFileError, apply, diff};
use uuid::Uuid;

fn snapshot_keys(engine: &Engine) -> Vec<(Uuid, String)> {
    let s = engine.snapshot();
    let mut v: Vec<(Uuid, String)> = s
        .catalog
        .enum_filters(&palisade_filter::Caller::root(), &Default::default())
        .iter()
        .map(|f| (f.object.key, format!("{:?}", f.object)))
        .collect();
    v.extend(
        s.catalog
            .provider_contexts()
            .map(|c| (c.object.key, format!("{:?}", c.object))),
    );
    v.sort();
    v
}

#[test]
fn reapplying_the_same_file_is_a_no_op() {
    let (engine, compiled) = applied("domain-isolation.toml");
    let before = snapshot_keys(&engine);
    let mut s = session(&engine);
    let d = apply(&engine, &mut s, &compiled).expect("re-apply");
    assert!(d.is_empty(), "{d}");
    assert!(d.to_string().contains("no changes"));
    assert_eq!(snapshot_keys(&engine), before);
}

#[test]
fn changing_one_rule_diffs_only_that_rule() {
    let text = example("transport-mode.toml");
    let (engine, _) = applied("transport-mode.toml");
    // A new peer address for db01: its filters change, nothing else.
    let moved = text.replace(
        "remote = \"192.0.2.20\"\naction = \"require\"",
        "remote = \"192.0.2.21\"\naction = \"require\"",
    );
    assert_ne!(moved, text);
    let b = compile("transport-mode.toml", &moved);
    let d = diff(&engine, &b);
    assert!(!d.is_empty());
    for c in &d.changes {
        assert_eq!(c.op, Op::Change, "{d}");
        assert_eq!(c.kind, ObjectKind::Filter, "{d}");
        assert!(c.name.starts_with("db01: "), "{d}");
        assert_eq!(c.fields, vec!["conditions".to_string()], "{d}");
    }
    let rendered = d.to_string();
    assert!(
        rendered.contains("~ filter           db01: ikeext-v4 [IKEEXT_V4] (changed: conditions)"),
        "{rendered}"
    );
    assert!(
        rendered.ends_with("0 to add, 4 to change, 0 to remove.\n"),
        "{rendered}"
    );
    let json: serde_json::Value = serde_json::from_str(&d.to_json()).expect("json");
    assert_eq!(json["changes"].as_array().map(Vec::len), Some(4));
    assert_eq!(json["changes"][0]["op"], "change");

    let mut s = session(&engine);
    let applied_diff = apply(&engine, &mut s, &b).expect("apply");
    assert_eq!(applied_diff, d);
    assert!(diff(&engine, &b).is_empty());
    let (mm, _) = classify(&engine, Layer::IkeextV4, &peers("192.0.2.10", "192.0.2.21"));
    assert!(mm.provider_context.is_some());
    let (old, _) = classify(&engine, Layer::IkeextV4, &peers("192.0.2.10", "192.0.2.20"));
    assert!(old.provider_context.is_none());
}

#[test]
fn changing_a_proposal_set_changes_the_context_and_relinks_its_filters() {
    let text = example("transport-mode.toml");
    let (engine, _) = applied("transport-mode.toml");
    let b = compile(
        "t.toml",
        &text.replace("{ esp = \"gcm_aes_256\" },", "{ esp = \"gcm_aes_128\" },"),
    );
    let d = diff(&engine, &b);
    assert_eq!(d.counts(), (0, 1, 0), "{d}");
    assert_eq!(d.changes[0].kind, ObjectKind::ProviderContext);
    assert_eq!(
        d.changes[0].key,
        derive("transport-mode", "db01", "quick-mode")
    );
    assert_eq!(d.changes[0].fields, vec!["policy".to_string()]);
    let mut s = session(&engine);
    apply(&engine, &mut s, &b).expect("apply");
    assert!(diff(&engine, &b).is_empty());
    let (qm, _) = classify(
        &engine,
        Layer::IpsecV4,
        &flow("192.0.2.10", "192.0.2.20", 6, 1, 2),
    );
    assert_eq!(qm.provider_context.expect("context").object, b.contexts[1]);
}

#[test]
fn removing_a_rule_removes_only_its_objects_and_other_providers_objects_stay() {
    let (engine, _) = applied("exemptions.toml");
    // Someone else's filter, without Palisade's provider.
    let theirs = Filter::new(Layer::OutboundTransportV4, Action::Block)
        .name("theirs")
        .condition(Condition::equal(Field::IpRemotePort, Scalar::U16(23)));
    let mut s = session(&engine);
    let (their_key, _) = s.add_filter(theirs).expect("their filter");

    let text = example("exemptions.toml");
    let without = text.replace(
        "[[rules]]\nname = \"quarantined\"\nremote = \"10.0.66.0/24\"\naction = \"block\"\n",
        "",
    );
    assert_ne!(without, text);
    let b = compile("exemptions.toml", &without);
    let d = apply(&engine, &mut s, &b).expect("apply");
    assert_eq!(d.counts(), (0, 0, 2), "{d}");
    assert!(
        d.of(Op::Remove)
            .all(|c| c.name.starts_with("quarantined: ")),
        "{d}"
    );
    assert!(engine.snapshot().catalog.filter(their_key).is_some());

    // An empty policy removes every Palisade object but the provider and sublayer.
    let empty = compile("empty.toml", "[policy]\nname = \"exemptions\"\n");
    let d = apply(&engine, &mut s, &empty).expect("apply empty");
    assert_eq!(d.counts().2, b.filters.len() + b.contexts.len(), "{d}");
    let snapshot = engine.snapshot();
    assert!(snapshot.catalog.filter(their_key).is_some());
    let ours = snapshot
        .catalog
        .enum_filters(&palisade_filter::Caller::root(), &Default::default())
        .into_iter()
        .filter(|f| f.object.provider == Some(PALISADE_PROVIDER))
        .count();
    assert_eq!(ours, 0);
}

#[test]
fn a_failing_apply_changes_nothing() {
    let (engine, a) = applied("transport-mode.toml");
    let before = snapshot_keys(&engine);
    // B: a real change (a new rule) plus an object the engine refuses (IKEEXT has no
    // application-id condition), added last so that the earlier changes were made.
    let mut b = compile(
        "transport-mode.toml",
        &example("transport-mode.toml").replace("name = \"icmp\"", "name = \"ping\""),
    );
    let mut bad = Filter::new(Layer::IkeextV4, Action::Permit)
        .key(Uuid::from_u128(7))
        .provider(PALISADE_PROVIDER)
        .sublayer(palisade_policy::PALISADE_SUBLAYER)
        .flags(FilterFlags::PERSISTENT)
        .condition(Condition::equal(Field::IpRemotePort, Scalar::U16(1)));
    bad.name = "injected".into();
    b.filters.push(bad);
    let mut s = session(&engine);
    let err = apply(&engine, &mut s, &b).expect_err("the engine refuses the filter");
    assert!(
        matches!(&err, PolicyFileError::Refused { object, .. } if object == "filter \"injected\""),
        "{err}"
    );
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    assert!(
        err.to_string()
            .contains("IP_REMOTE_PORT is not a condition field of layer IKEEXT_V4"),
        "{err}"
    );
    assert_eq!(snapshot_keys(&engine), before);
    assert!(diff(&engine, &a).is_empty());
    // The session is still usable.
    assert!(apply(&engine, &mut s, &a).expect("apply A").is_empty());
}

#[test]
fn a_new_sublayer_weight_replaces_everything_in_one_transaction() {
    let (engine, a) = applied("tunnel-mode.toml");
    let b = compile(
        "tunnel-mode.toml",
        &example("tunnel-mode.toml").replace(
            "name = \"site-to-site\"\n",
            "name = \"site-to-site\"\nsublayer_weight = 0x8100\n",
        ),
    );
    let d = diff(&engine, &b);
    assert_eq!(d.counts(), (0, 1, 0), "{d}");
    assert_eq!(d.changes[0].kind, ObjectKind::Sublayer);
    assert_eq!(d.changes[0].fields, vec!["weight".to_string()]);
    let mut s = session(&engine);
    apply(&engine, &mut s, &b).expect("apply");
    assert!(diff(&engine, &b).is_empty());
    assert_eq!(diff(&engine, &a).counts(), (0, 1, 0));
    let (qm, _) = classify(
        &engine,
        Layer::IpsecV4,
        &flow("10.1.0.5", "10.2.0.5", 6, 1, 22),
    );
    assert!(qm.provider_context.is_some());
}
