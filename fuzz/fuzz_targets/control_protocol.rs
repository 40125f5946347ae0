//! Feeds arbitrary text to palisaded's control protocol (crates/control) and to its
//! configuration file parser (crates/daemon/src/config.rs).
//!
//! The input is read as the control socket reads it, one JSON message per line: each
//! line is decoded as a `Hello`, a `Request` and a `Response`; each request that decodes
//! is answered by `EngineService::handle` over an in-memory engine holding
//! examples/policies/transport-mode.toml, first as an unprivileged caller, then as root
//! (so `policy_apply` compiles and applies whatever text the line carries, and later
//! lines see what earlier ones changed). The whole input is also parsed as palisaded.toml.
//!
//! Beyond "no panic": every decoded message re-encodes to itself, every answer is a
//! message the client can decode, and no answer carries the policy's pre-shared key.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use palisade_control::{EngineService, Hello, Request, Response};
use palisade_filter::{Caller, Engine, SessionOptions};
use palisade_policy::Compiled;

const POLICY: &str = include_str!("../../examples/policies/transport-mode.toml");
const EXAMPLE_KEY: &str = "correct horse battery staple";
/// Replaces the example's key, so that finding it in an answer means it leaked.
const SECRET: &str = "fuzz-secret-psk-5d1c9a07e3";
/// Requests answered per input; each may apply a policy.
const MAX_LINES: usize = 16;

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        assert!(POLICY.contains(EXAMPLE_KEY), "the example's key changed");
        let text = POLICY.replace(EXAMPLE_KEY, SECRET);
        palisade_policy::compile_str("transport-mode.toml", &text).expect("example compiles")
    })
}

fn engine() -> Engine {
    let engine = Engine::new();
    let mut session = engine
        .open_session(Caller::root(), SessionOptions::default())
        .expect("root session");
    palisade_policy::apply(&engine, &mut session, compiled()).expect("example applies");
    engine
}

fn round_trips<T>(value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_string(value).expect("a message encodes");
    let back: T = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("{json} does not decode: {e}\nfrom {value:?}"));
    assert_eq!(&back, value, "{json} decodes to something else");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = palisaded::config::Config::parse(Path::new("x.toml"), text);

    let mut service = None;
    let user = Caller {
        uid: 1000,
        gids: vec![1000],
    };
    for line in text.lines().take(MAX_LINES) {
        if let Ok(hello) = serde_json::from_str::<Hello>(line) {
            round_trips(&hello);
        }
        if let Ok(response) = serde_json::from_str::<Response>(line) {
            round_trips(&response);
        }
        let Ok(request) = serde_json::from_str::<Request>(line) else {
            continue;
        };
        round_trips(&request);
        let service = service.get_or_insert_with(|| EngineService::new(engine()));
        for caller in [&user, &Caller::root()] {
            let Some(answer) = service.handle(caller, &request) else {
                continue;
            };
            round_trips(&answer);
            let json = serde_json::to_string(&answer).expect("an answer encodes");
            assert!(
                !json.contains(SECRET),
                "the pre-shared key left through {request:?} as uid {}: {json}",
                caller.uid
            );
        }
    }
});
