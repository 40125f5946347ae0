//! Feeds arbitrary bytes to the filter engine's policy decoding and classification.
//!
//! The input is JSON (a list of filters, as policy tools and the store write them), a NUL
//! byte, then packet bytes. Decoding may fail; anything decoded goes through the engine's
//! validation into one transaction, and every layer is classified with field values taken
//! from the packet bytes. Beyond "no panic": the indexed classifier must agree with the
//! naive one, the compiled interval tests must agree with the conditions, and explain must
//! reach the same decision.
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use palisade_filter::policy::ProviderContextPolicy;
use palisade_filter::*;

fuzz_target!(|data: &[u8]| {
    let (json, packet) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(policy) = serde_json::from_slice::<ProviderContextPolicy>(json) {
        let _ = policy.validate();
    }
    let Ok(filters) = serde_json::from_slice::<Vec<Filter>>(json) else {
        return;
    };
    let engine = Engine::new();
    let Ok(mut session) = engine.open_session(Caller::root(), SessionOptions::default()) else {
        return;
    };
    if let Ok(mut txn) = session.begin(TxnKind::Write) {
        for f in filters.into_iter().take(64) {
            let _ = txn.add_filter(f);
        }
        let _ = txn.commit();
    }
    let values = values_from(packet);
    for layer in Layer::ALL {
        let a = engine.classify(*layer, &values, &mut NoCallouts);
        let b = engine.classify_naive(*layer, &values, &mut NoCallouts);
        assert_eq!(a.decision, b.decision);
        assert_eq!(a.decider, b.decider);
        assert_eq!(a.hard, b.hard);
        let snapshot = engine.snapshot();
        let compiled = snapshot.layer(*layer);
        for (pos, f) in compiled.filters.iter().enumerate() {
            assert_eq!(
                compiled.matches(pos, &values),
                f.record.object.matches(&values)
            );
        }
        let e = engine.explain(*layer, &values, &mut NoCallouts);
        assert_eq!(e.decision, a.decision);
        let _ = e.to_string();
    }
});

fn take<const N: usize>(b: &mut &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = N.min(b.len());
    out[..n].copy_from_slice(&b[..n]);
    *b = &b[n..];
    out
}

fn values_from(mut b: &[u8]) -> FieldValues {
    let mut v = FieldValues::new();
    let present = u32::from_le_bytes(take::<4>(&mut b));
    let v4 = |x: [u8; 4]| Scalar::V4(Ipv4Addr::from(x));
    let v6 = |x: [u8; 16]| Scalar::V6(Ipv6Addr::from(x));
    // The same bytes serve both families: each layer reads the fields it has.
    if present & 1 != 0 {
        v.set(Field::IpRemoteAddress, v4(take(&mut b)));
    } else if present & 2 != 0 {
        v.set(Field::IpRemoteAddress, v6(take(&mut b)));
    }
    if present & 4 != 0 {
        v.set(Field::IpLocalAddress, v4(take(&mut b)));
    }
    if present & 8 != 0 {
        v.set(
            Field::IpRemotePort,
            Scalar::U16(u16::from_le_bytes(take(&mut b))),
        );
    }
    if present & 16 != 0 {
        v.set(
            Field::IpLocalPort,
            Scalar::U16(u16::from_le_bytes(take(&mut b))),
        );
    }
    if present & 32 != 0 {
        v.set(Field::IpProtocol, Scalar::U8(take::<1>(&mut b)[0]));
    }
    if present & 64 != 0 {
        v.set(Field::Flags, Scalar::U32(u32::from_le_bytes(take(&mut b))));
    }
    if present & 128 != 0 {
        let len = usize::from(take::<1>(&mut b)[0]).min(b.len());
        let text = String::from_utf8_lossy(&b[..len]).into_owned();
        b = &b[len..];
        v.set(Field::AleAppId, Value::Text(text));
    }
    if present & 256 != 0 {
        let [uid, gid] = [take::<1>(&mut b)[0], take::<1>(&mut b)[0]];
        v.set(
            Field::AleUserId,
            Value::Token(Token::user(uid.into(), vec![gid.into()])),
        );
    }
    if present & 512 != 0 {
        v.set(Field::IpLocalAddressType, Scalar::U8(take::<1>(&mut b)[0]));
    }
    v
}
