//! EngineService: every engine request kind, over the socket (the caller from the peer's
//! credentials) and in process (callers the engine's access control refuses).

mod support;

use palisade_control::{Client, ClientError, ErrorCode, Request, Response};
use palisade_filter::{
    Acl, Action, Caller, Condition, Engine, Field, Filter, Layer, ObjectKind, Principal, Rights,
    Scalar, SessionOptions,
};
use support::{POLICY, start};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn error_parts(r: Response) -> (ErrorCode, String, String) {
    match r {
        Response::Error {
            code,
            message,
            hint,
        } => (code, message, hint.unwrap_or_default()),
        other => panic!("expected an error, got {other:?}"),
    }
}

fn objects(r: Response) -> Vec<serde_json::Value> {
    match r {
        Response::Objects { objects } => objects,
        other => panic!("expected objects, got {other:?}"),
    }
}

fn telnet_block() -> serde_json::Value {
    serde_json::to_value(
        Filter::new(Layer::OutboundTransportV4, Action::Block)
            .name("no telnet")
            .condition(Condition::equal(Field::IpRemotePort, Scalar::U16(23))),
    )
    .expect("a filter serializes")
}

#[test]
fn policy_diff_dry_run_apply_and_diff_again() -> TestResult {
    let srv = start(Engine::new());
    let mut c = Client::connect(&srv.socket)?;
    let diff = |c: &mut Client| -> Result<palisade_control::PolicyChanges, ClientError> {
        match c.request(Request::PolicyDiff {
            file: "lab.toml".into(),
            text: POLICY.into(),
        })? {
            Response::PolicyChanges(p) => Ok(p),
            other => panic!("{other:?}"),
        }
    };
    let before = diff(&mut c)?;
    assert_eq!(before.policy, "lab");
    assert!(!before.applied);
    assert!(before.changes.iter().all(|ch| ch.op == "add"));
    assert_eq!(before.counts(), (before.changes.len(), 0, 0));
    assert!(before.changes.iter().any(|ch| ch.kind == "provider"));
    assert!(
        before
            .changes
            .iter()
            .any(|ch| ch.kind == "filter" && ch.layer.is_some())
    );

    let dry = c.request(Request::PolicyApply {
        file: "lab.toml".into(),
        text: POLICY.into(),
        dry_run: true,
    })?;
    assert!(
        matches!(&dry, Response::PolicyChanges(p) if !p.applied && p.changes == before.changes)
    );
    assert_eq!(
        srv.daemon
            .service
            .engine()
            .snapshot()
            .catalog
            .filter_count(),
        0
    );

    match c.request(Request::PolicyApply {
        file: "lab.toml".into(),
        text: POLICY.into(),
        dry_run: false,
    })? {
        Response::PolicyChanges(p) => {
            assert!(p.applied);
            assert_eq!(p.changes, before.changes);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        srv.daemon
            .service
            .engine()
            .snapshot()
            .catalog
            .filter_count()
            > 0
    );
    assert!(diff(&mut c)?.changes.is_empty());
    Ok(())
}

#[test]
fn policy_errors_name_file_line_and_column() -> TestResult {
    let srv = start(Engine::new());
    let mut c = Client::connect(&srv.socket)?;
    let bad = POLICY.replace("remote = \"192.0.2.2\"", "remote = \"192.0.2.300\"");
    let (code, message, hint) = error_parts(c.call(Request::PolicyApply {
        file: "lab.toml".into(),
        text: bad,
        dry_run: false,
    })?);
    assert_eq!(code, ErrorCode::PolicyError);
    assert!(message.starts_with("lab.toml:11:10: "), "{message}");
    assert!(message.contains("rules[0].remote"), "{message}");
    assert!(hint.contains("policy-format"), "{hint}");
    assert_eq!(
        srv.daemon
            .service
            .engine()
            .snapshot()
            .catalog
            .filter_count(),
        0
    );
    Ok(())
}

#[test]
fn export_holds_the_palisade_objects_with_keys_redacted() -> TestResult {
    let srv = start(Engine::new());
    let mut c = Client::connect(&srv.socket)?;
    c.request(Request::PolicyApply {
        file: "lab.toml".into(),
        text: POLICY.into(),
        dry_run: false,
    })?;
    // A filter of another provider is not part of the export.
    c.request(Request::FilterAdd {
        filter: telnet_block(),
    })?;
    match c.request(Request::PolicyExport)? {
        Response::Export(e) => {
            assert_eq!(
                e.provider
                    .as_ref()
                    .and_then(|p| p["object"]["key"].as_str()),
                Some(palisade_policy::PALISADE_PROVIDER.to_string().as_str())
            );
            assert_eq!(e.sublayers.len(), 1);
            assert!(!e.contexts.is_empty());
            assert!(!e.filters.is_empty());
            assert!(e.filters.iter().all(|f| f["object"]["name"] != "no telnet"));
            let text = serde_json::to_string(&e)?;
            assert!(!text.contains("correct horse"), "a key leaked: {text}");
            assert!(text.contains(palisade_control::engine_service::REDACTED));
        }
        other => panic!("{other:?}"),
    }
    // Context list and show redact too.
    let contexts = objects(c.request(Request::ContextList)?);
    let key = contexts[0]["object"]["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!serde_json::to_string(&contexts)?.contains("correct horse"));
    match c.request(Request::ContextShow { id: key })? {
        Response::Object { object } => {
            assert!(!object.to_string().contains("correct horse"))
        }
        other => panic!("{other:?}"),
    }
    Ok(())
}

#[test]
fn filter_add_list_show_delete() -> TestResult {
    let srv = start(Engine::new());
    let mut c = Client::connect(&srv.socket)?;
    let (key, id) = match c.request(Request::FilterAdd {
        filter: telnet_block(),
    })? {
        Response::Added { key, id: Some(id) } => (key, id),
        other => panic!("{other:?}"),
    };
    let listed = objects(c.request(Request::FilterList {
        layer: Some("outbound_transport_v4".into()),
    })?);
    assert!(listed.iter().any(|f| f["object"]["key"] == key.as_str()));
    let elsewhere = objects(c.request(Request::FilterList {
        layer: Some("INBOUND_TRANSPORT_V4".into()),
    })?);
    assert!(elsewhere.iter().all(|f| f["object"]["key"] != key.as_str()));

    for by in [id.to_string(), key.clone(), "no telnet".to_string()] {
        match c.request(Request::FilterShow { id: by.clone() })? {
            Response::Object { object } => {
                assert_eq!(object["id"], id, "by {by}");
                assert_eq!(object["object"]["name"], "no telnet");
            }
            other => panic!("{other:?}"),
        }
    }
    // What show printed can be added back (with a new key: the record's object).
    let shown = match c.request(Request::FilterShow { id: id.to_string() })? {
        Response::Object { mut object } => {
            object["object"]["key"] = serde_json::json!(uuid::Uuid::nil());
            object
        }
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        c.request(Request::FilterAdd { filter: shown })?,
        Response::Added { .. }
    ));

    assert_eq!(
        c.request(Request::FilterDelete { id: id.to_string() })?,
        Response::Ok
    );
    let (code, _, hint) = error_parts(c.call(Request::FilterShow { id: id.to_string() })?);
    assert_eq!(code, ErrorCode::NotFound);
    assert!(hint.contains("palisade filter list"), "{hint}");
    let (code, message, _) = error_parts(c.call(Request::FilterList {
        layer: Some("nowhere".into()),
    })?);
    assert_eq!(code, ErrorCode::InvalidRequest);
    assert!(message.contains("nowhere"));
    Ok(())
}

#[test]
fn sublayer_provider_and_context_round_trips() -> TestResult {
    let srv = start(Engine::new());
    let mut c = Client::connect(&srv.socket)?;
    let provider = serde_json::json!({ "name": "test provider" });
    let pkey = match c.request(Request::ProviderAdd { provider })? {
        Response::Added { key, id: None } => key,
        other => panic!("{other:?}"),
    };
    let sublayer = serde_json::json!({ "name": "test sublayer", "provider": pkey, "weight": 7 });
    let skey = match c.request(Request::SublayerAdd { sublayer })? {
        Response::Added { key, .. } => key,
        other => panic!("{other:?}"),
    };
    let compiled = palisade_policy::compile_str("lab.toml", POLICY)?;
    let mut context = serde_json::to_value(&compiled.contexts[0])?;
    context["key"] = serde_json::json!(uuid::Uuid::nil());
    context["provider"] = serde_json::json!(pkey);
    context["name"] = serde_json::json!("test context");
    // Static, as the provider it names (a stored context may not name a static provider).
    context["flags"] = serde_json::json!(0);
    let (ckey, cid) = match c.request(Request::ContextAdd { context })? {
        Response::Added { key, id: Some(id) } => (key, id),
        other => panic!("{other:?}"),
    };

    assert!(
        objects(c.request(Request::ProviderList)?)
            .iter()
            .any(|p| p["object"]["key"] == pkey.as_str())
    );
    assert!(
        objects(c.request(Request::SublayerList)?)
            .iter()
            .any(|s| s["object"]["weight"] == 7)
    );
    for (request, key) in [
        (
            Request::ProviderShow {
                id: "test provider".into(),
            },
            &pkey,
        ),
        (Request::SublayerShow { id: skey.clone() }, &skey),
        (
            Request::ContextShow {
                id: cid.to_string(),
            },
            &ckey,
        ),
    ] {
        match c.request(request)? {
            Response::Object { object } => assert_eq!(object["object"]["key"], key.as_str()),
            other => panic!("{other:?}"),
        }
    }
    // The provider is in use by the sublayer and the context: refused, with a hint.
    let (code, _, hint) = error_parts(c.call(Request::ProviderDelete { id: pkey.clone() })?);
    assert_eq!(code, ErrorCode::InvalidRequest);
    assert!(hint.contains("first"), "{hint}");
    for request in [
        Request::ContextDelete { id: ckey },
        Request::SublayerDelete { id: skey },
        Request::ProviderDelete { id: pkey },
    ] {
        assert_eq!(c.request(request)?, Response::Ok);
    }
    assert!(objects(c.request(Request::ContextList)?).is_empty());
    Ok(())
}

#[test]
fn malformed_objects_say_what_shape_is_expected() -> TestResult {
    let srv = start(Engine::new());
    let mut c = Client::connect(&srv.socket)?;
    let (code, message, hint) = error_parts(c.call(Request::FilterAdd {
        filter: serde_json::json!({ "layer": "OUTBOUND_TRANSPORT_V4", "action": "explode" }),
    })?);
    assert_eq!(code, ErrorCode::InvalidRequest);
    assert!(message.contains("explode"), "{message}");
    assert!(hint.contains("palisade filter show"), "{hint}");
    Ok(())
}

#[test]
fn explain_traces_and_refuses_bad_fields() -> TestResult {
    let srv = start(Engine::new());
    let mut c = Client::connect(&srv.socket)?;
    c.request(Request::FilterAdd {
        filter: telnet_block(),
    })?;
    let explain = |c: &mut Client, port: &str| {
        c.call(Request::Explain {
            layer: "outbound_transport_v4".into(),
            fields: vec![
                ("ip_remote_address".into(), "192.0.2.9".into()),
                ("ip_remote_port".into(), port.into()),
            ],
        })
    };
    match explain(&mut c, "23")? {
        Response::Explain { trace, text } => {
            assert_eq!(trace["decision"], "block");
            assert_eq!(trace["layer"], "OUTBOUND_TRANSPORT_V4");
            assert!(text.contains("no telnet"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    match explain(&mut c, "22")? {
        Response::Explain { trace, .. } => assert_eq!(trace["decision"], "permit"),
        other => panic!("{other:?}"),
    }
    let (code, message, hint) = error_parts(explain(&mut c, "telnet")?);
    assert_eq!(code, ErrorCode::InvalidRequest);
    assert!(message.starts_with("ip_remote_port"), "{message}");
    assert!(hint.contains("0-65535"), "{hint}");
    let (_, message, hint) = error_parts(c.call(Request::Explain {
        layer: "outbound".into(),
        fields: vec![],
    })?);
    assert!(message.contains("outbound"));
    assert!(hint.contains("outbound_transport_v4"), "{hint}");
    Ok(())
}

#[test]
fn the_engine_acl_refuses_the_socket_peer() -> TestResult {
    let engine = Engine::new();
    let me = nix::unistd::getuid().as_raw();
    {
        let mut admin = engine.open_session(Caller::root(), SessionOptions::default())?;
        admin.set_engine_acl(
            Acl::engine_default()
                .deny(Principal::Uid(me), Rights::BEGIN_WRITE_TXN)
                .allow(Principal::Uid(0), Rights::ALL),
        )?;
    }
    let srv = start(engine);
    let mut c = Client::connect(&srv.socket)?;
    let (code, message, hint) = error_parts(c.call(Request::PolicyApply {
        file: "lab.toml".into(),
        text: POLICY.into(),
        dry_run: false,
    })?);
    assert_eq!(code, ErrorCode::AccessDenied, "{message}");
    assert!(hint.contains(&format!("uid {me}")), "{hint}");
    // Reading is still allowed.
    assert!(matches!(
        c.request(Request::PolicyDiff {
            file: "lab.toml".into(),
            text: POLICY.into()
        })?,
        Response::PolicyChanges(_)
    ));
    Ok(())
}

#[test]
fn a_user_without_rights_is_refused_and_sees_only_what_it_may_read() -> TestResult {
    let engine = Engine::new();
    let service = palisade_control::EngineService::new(engine.clone());
    let root = Caller::root();
    let user = Caller::user(1000, [1000]);

    let r = service.handle(
        &user,
        &Request::FilterAdd {
            filter: telnet_block(),
        },
    );
    assert_eq!(
        r.map(error_parts).map(|p| p.0),
        Some(ErrorCode::AccessDenied)
    );
    let r = service.handle(
        &user,
        &Request::PolicyApply {
            file: "lab.toml".into(),
            text: POLICY.into(),
            dry_run: false,
        },
    );
    assert_eq!(
        r.map(error_parts).map(|p| p.0),
        Some(ErrorCode::AccessDenied)
    );

    // Root applies; then one context's own list refuses the user READ.
    service.handle(
        &root,
        &Request::PolicyApply {
            file: "lab.toml".into(),
            text: POLICY.into(),
            dry_run: false,
        },
    );
    let all = match service.handle(&root, &Request::ContextList) {
        Some(r) => objects(r),
        None => panic!("context list is an engine request"),
    };
    let hidden: uuid::Uuid = all[0]["object"]["key"]
        .as_str()
        .unwrap_or_default()
        .parse()?;
    {
        let mut admin = engine.open_session(root.clone(), SessionOptions::default())?;
        admin.set_acl(
            ObjectKind::ProviderContext,
            hidden,
            Acl::default().deny(Principal::Uid(1000), Rights::READ),
        )?;
    }
    let seen = objects(service.handle(&user, &Request::ContextList).ok_or("none")?);
    assert_eq!(seen.len(), all.len() - 1);
    assert!(
        seen.iter()
            .all(|c| c["object"]["key"] != hidden.to_string().as_str())
    );
    let r = service.handle(
        &user,
        &Request::ContextShow {
            id: hidden.to_string(),
        },
    );
    assert_eq!(
        r.map(error_parts).map(|p| p.0),
        Some(ErrorCode::AccessDenied)
    );

    // Daemon requests are not the engine service's.
    assert!(service.handle(&user, &Request::Status).is_none());
    assert!(service.handle(&user, &Request::Stats).is_none());
    Ok(())
}
