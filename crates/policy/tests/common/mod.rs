//! Shared by the integration tests: an engine with a policy applied, packets to
//! classify, and a callout recorder standing in for the daemon's IPsec callouts.
#![allow(dead_code)]

use std::net::IpAddr;
use std::path::PathBuf;

use palisade_filter::value::address_type;
use palisade_filter::{
    Caller, CalloutCall, CalloutVerdict, Callouts, Classification, Engine, Field, FieldValues,
    Layer, Scalar, Session, SessionOptions, Token,
};
use palisade_policy::{Compiled, apply, compile_str};
use uuid::Uuid;

pub fn example(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/policies")
        .join(name);
    std::fs::read_to_string(&path).expect("example policy")
}

pub fn compile(name: &str, text: &str) -> Compiled {
    compile_str(name, text).unwrap_or_else(|e| panic!("{e}"))
}

pub fn session(engine: &Engine) -> Session {
    engine
        .open_session(Caller::root(), SessionOptions::default())
        .expect("session")
}

/// A fresh engine holding the example policy `name`.
pub fn applied(name: &str) -> (Engine, Compiled) {
    let compiled = compile(name, &example(name));
    let engine = Engine::new();
    let mut s = session(&engine);
    apply(&engine, &mut s, &compiled).unwrap_or_else(|e| panic!("{e}"));
    (engine, compiled)
}

fn scalar(a: IpAddr) -> Scalar {
    match a {
        IpAddr::V4(a) => Scalar::V4(a),
        IpAddr::V6(a) => Scalar::V6(a),
    }
}

/// A unicast packet or connection between two addresses.
pub fn flow(
    local: &str,
    remote: &str,
    protocol: u8,
    local_port: u16,
    remote_port: u16,
) -> FieldValues {
    let l: IpAddr = local.parse().expect("local");
    let r: IpAddr = remote.parse().expect("remote");
    FieldValues::new()
        .with(Field::IpLocalAddress, scalar(l))
        .with(Field::IpRemoteAddress, scalar(r))
        .with(Field::IpProtocol, Scalar::U8(protocol))
        .with(Field::IpLocalPort, Scalar::U16(local_port))
        .with(Field::IpRemotePort, Scalar::U16(remote_port))
        .with(Field::IpLocalAddressType, Scalar::U8(address_type::UNICAST))
}

/// What IKE supplies at IKEEXT: the two peers' addresses.
pub fn peers(local: &str, remote: &str) -> FieldValues {
    let l: IpAddr = local.parse().expect("local");
    let r: IpAddr = remote.parse().expect("remote");
    FieldValues::new()
        .with(Field::IpLocalAddress, scalar(l))
        .with(Field::IpRemoteAddress, scalar(r))
}

/// The peer's authenticated machine identity, at the ALE layers.
pub fn with_peer_identity(values: FieldValues, name: &str) -> FieldValues {
    values.with(
        Field::AleRemoteMachineId,
        palisade_filter::Value::Token(Token::peer([name])),
    )
}

/// One callout invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub callout: Uuid,
    pub raw_context: Option<u64>,
    pub provider_context: Option<Uuid>,
}

/// Stands in for the IPsec callouts when no SA exists yet: records the call and blocks
/// (the packet would be queued while IKE negotiates).
#[derive(Default)]
pub struct NoSa {
    pub calls: Vec<Call>,
}

impl Callouts for NoSa {
    fn classify(&mut self, call: &CalloutCall<'_>, _: &FieldValues) -> Option<CalloutVerdict> {
        self.calls.push(Call {
            callout: call.callout,
            raw_context: call.raw_context,
            provider_context: call.provider_context.map(|c| c.object.key),
        });
        Some(CalloutVerdict::BLOCK)
    }
}

pub fn classify(
    engine: &Engine,
    layer: Layer,
    values: &FieldValues,
) -> (Classification, Vec<Call>) {
    let mut callouts = NoSa::default();
    let c = engine.classify(layer, values, &mut callouts);
    (c, callouts.calls)
}
