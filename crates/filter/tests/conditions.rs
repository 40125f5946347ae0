//! Every match type of spec §5 on every kind of value, and how conditions combine.

use std::net::{Ipv4Addr, Ipv6Addr};

use palisade_filter::*;

fn c(field: Field, m: MatchType, v: ConditionValue) -> Condition {
    Condition::new(field, m, v)
}

fn s(v: Scalar) -> ConditionValue {
    ConditionValue::Scalar(v)
}

fn port(p: u16) -> Option<Value> {
    Some(Value::Scalar(Scalar::U16(p)))
}

#[test]
fn scalar_comparisons() {
    use MatchType::*;
    let f = Field::IpRemotePort;
    let table = [
        (Equal, 80, [false, true, false]),
        (NotEqual, 80, [true, false, true]),
        (Greater, 80, [false, false, true]),
        (Less, 80, [true, false, false]),
        (GreaterOrEqual, 80, [false, true, true]),
        (LessOrEqual, 80, [true, true, false]),
    ];
    for (m, v, want) in table {
        let cond = c(f, m, s(Scalar::U16(v)));
        let got = [79, 80, 81].map(|p| cond.matches(port(p).as_ref()));
        assert_eq!(got, want, "{m:?}");
    }
}

#[test]
fn ranges_are_inclusive() {
    let cond = Condition::range(Field::IpRemotePort, Scalar::U16(1000), Scalar::U16(2000));
    let got = [999, 1000, 1500, 2000, 2001].map(|p| cond.matches(port(p).as_ref()));
    assert_eq!(got, [false, true, true, true, false]);
    let v4 = Condition::range(
        Field::IpRemoteAddress,
        Scalar::V4(Ipv4Addr::new(10, 0, 0, 5)),
        Scalar::V4(Ipv4Addr::new(10, 0, 1, 5)),
    );
    let addr = |a: [u8; 4]| Some(Value::Scalar(Scalar::V4(Ipv4Addr::from(a))));
    assert!(v4.matches(addr([10, 0, 0, 200]).as_ref()));
    assert!(!v4.matches(addr([10, 0, 1, 6]).as_ref()));
}

#[test]
fn flags() {
    use MatchType::*;
    let f = Field::Flags;
    let v = |x: u32| Some(Value::Scalar(Scalar::U32(x)));
    let all = c(f, FlagsAllSet, s(Scalar::U32(0b110)));
    let any = c(f, FlagsAnySet, s(Scalar::U32(0b110)));
    let none = c(f, FlagsNoneSet, s(Scalar::U32(0b110)));
    for (x, want) in [
        (0b000, [false, false, true]),
        (0b010, [false, true, false]),
        (0b111, [true, true, false]),
    ] {
        assert_eq!(
            [
                all.matches(v(x).as_ref()),
                any.matches(v(x).as_ref()),
                none.matches(v(x).as_ref())
            ],
            want,
            "{x:#b}"
        );
    }
}

#[test]
fn prefixes_for_both_families() {
    use MatchType::*;
    let v4 = |a: [u8; 4]| Some(Value::Scalar(Scalar::V4(Ipv4Addr::from(a))));
    let net = ConditionValue::v4_prefix(Ipv4Addr::new(192, 168, 0, 0), 16);
    for (m, inside) in [
        (Equal, true),
        (Prefix, true),
        (NotEqual, false),
        (NotPrefix, false),
    ] {
        let cond = c(Field::IpRemoteAddress, m, net.clone());
        assert_eq!(cond.matches(v4([192, 168, 7, 7]).as_ref()), inside, "{m:?}");
        assert_eq!(
            cond.matches(v4([192, 169, 0, 0]).as_ref()),
            !inside,
            "{m:?}"
        );
    }
    let all = c(
        Field::IpRemoteAddress,
        Prefix,
        ConditionValue::v4_prefix(Ipv4Addr::UNSPECIFIED, 0),
    );
    assert!(all.matches(v4([1, 2, 3, 4]).as_ref()));
    let v6 = |a: &str| {
        Some(Value::Scalar(Scalar::V6(
            a.parse::<Ipv6Addr>().expect("v6"),
        )))
    };
    let net6 = c(
        Field::IpRemoteAddress,
        Prefix,
        ConditionValue::v6_prefix("2001:db8::".parse().expect("v6"), 32),
    );
    assert!(net6.matches(v6("2001:db8:1::1").as_ref()));
    assert!(!net6.matches(v6("2001:db9::1").as_ref()));
    // An IPv4 value never matches an IPv6 condition.
    assert!(!net6.matches(v4([32, 1, 13, 184]).as_ref()));
}

#[test]
fn text() {
    use MatchType::*;
    let f = Field::AleAppId;
    let t = |x: &str| Some(Value::Text(x.into()));
    let path = || ConditionValue::Text("/usr/bin/ssh".into());
    assert!(c(f, Equal, path()).matches(t("/usr/bin/ssh").as_ref()));
    assert!(!c(f, Equal, path()).matches(t("/usr/bin/SSH").as_ref()));
    assert!(c(f, EqualCaseInsensitive, path()).matches(t("/usr/bin/SSH").as_ref()));
    assert!(c(f, NotEqual, path()).matches(t("/usr/bin/scp").as_ref()));
    let dir = || ConditionValue::Text("/usr/bin/".into());
    assert!(c(f, Prefix, dir()).matches(t("/usr/bin/ssh").as_ref()));
    assert!(!c(f, Prefix, dir()).matches(t("/opt/ssh").as_ref()));
    assert!(c(f, NotPrefix, dir()).matches(t("/opt/ssh").as_ref()));
}

#[test]
fn security_descriptors() {
    let sd = SecurityDescriptor {
        allow: vec![
            Principal::Gid(100),
            Principal::Name("host1.example.com".into()),
        ],
        deny: vec![Principal::Uid(666)],
    };
    let user = c(
        Field::AleUserId,
        MatchType::Equal,
        ConditionValue::Sd(sd.clone()),
    );
    let tok = |t: Token| Some(Value::Token(t));
    assert!(user.matches(tok(Token::user(1000, [100])).as_ref()));
    assert!(!user.matches(tok(Token::user(1000, [101])).as_ref()));
    assert!(
        !user.matches(tok(Token::user(666, [100])).as_ref()),
        "deny wins"
    );
    let machine = c(
        Field::AleRemoteMachineId,
        MatchType::Equal,
        ConditionValue::Sd(sd.clone()),
    );
    assert!(machine.matches(tok(Token::peer(["HOST1.example.com"])).as_ref()));
    assert!(!machine.matches(tok(Token::peer(["host2.example.com"])).as_ref()));
    let not = c(
        Field::AleRemoteMachineId,
        MatchType::NotEqual,
        ConditionValue::Sd(sd),
    );
    assert!(not.matches(tok(Token::peer(["host2.example.com"])).as_ref()));
}

#[test]
fn absent_values_match_nothing() {
    for m in [MatchType::Equal, MatchType::NotEqual] {
        assert!(!c(Field::IpRemotePort, m, s(Scalar::U16(1))).matches(None));
    }
}

#[test]
fn consecutive_conditions_on_one_field_are_alternatives() {
    let l = Layer::OutboundTransportV4;
    let f = Filter::new(l, Action::Block)
        .condition(Condition::equal(Field::IpRemotePort, Scalar::U16(22)))
        .condition(Condition::equal(Field::IpRemotePort, Scalar::U16(23)))
        .condition(Condition::equal(Field::IpProtocol, Scalar::U8(6)));
    let v = |p: u16, proto: u8| {
        FieldValues::new()
            .with(Field::IpRemotePort, Scalar::U16(p))
            .with(Field::IpProtocol, Scalar::U8(proto))
    };
    assert!(f.matches(&v(22, 6)));
    assert!(f.matches(&v(23, 6)));
    assert!(!f.matches(&v(24, 6)));
    assert!(!f.matches(&v(22, 17)));
    // Separated by another field, two conditions on one field AND.
    let g = Filter::new(l, Action::Block)
        .condition(Condition::equal(Field::IpRemotePort, Scalar::U16(22)))
        .condition(Condition::equal(Field::IpProtocol, Scalar::U8(6)))
        .condition(Condition::equal(Field::IpRemotePort, Scalar::U16(23)));
    assert!(!g.matches(&v(22, 6)));
    assert!(
        Filter::new(l, Action::Block).matches(&FieldValues::new()),
        "no conditions match all"
    );
}

#[test]
fn validation_names_what_is_wrong() {
    use MatchType::*;
    let l = Layer::OutboundTransportV4;
    let bad = [
        (
            c(
                Field::IpRemotePort,
                FlagsAllSet,
                ConditionValue::Text("x".into()),
            ),
            "takes a 16-bit number",
        ),
        (
            c(
                Field::IpRemoteAddress,
                Greater,
                ConditionValue::v4_prefix(Ipv4Addr::new(10, 0, 0, 0), 8),
            ),
            "match type GREATER",
        ),
        (
            c(
                Field::IpRemoteAddress,
                Prefix,
                ConditionValue::v4_prefix(Ipv4Addr::new(10, 0, 0, 0), 33),
            ),
            "prefix length 33",
        ),
        (
            Condition::range(Field::IpRemotePort, Scalar::U16(9), Scalar::U16(1)),
            "range 9-1 is empty",
        ),
        (
            c(Field::IpRemotePort, Range, s(Scalar::U16(1))),
            "match type RANGE",
        ),
        (
            c(Field::AleUserId, Equal, s(Scalar::U32(0))),
            "ALE_USER_ID is not a condition field",
        ),
        (
            c(
                Field::IpRemoteAddress,
                FlagsAnySet,
                s(Scalar::V4(Ipv4Addr::LOCALHOST)),
            ),
            "FLAGS_ANY_SET",
        ),
    ];
    for (cond, want) in bad {
        let err = cond.validate(l).expect_err(want).to_string();
        assert!(err.contains(want), "{err:?} should contain {want:?}");
    }
    let good = [
        c(Field::Flags, FlagsAllSet, s(Scalar::U32(2))),
        c(
            Field::IpRemoteAddress,
            NotPrefix,
            ConditionValue::v4_prefix(Ipv4Addr::new(10, 0, 0, 0), 8),
        ),
        Condition::range(Field::IpLocalPort, Scalar::U16(1), Scalar::U16(1023)),
    ];
    for cond in good {
        cond.validate(l).expect("valid");
    }
    let ale = Layer::AleAuthRecvAcceptV6;
    c(
        Field::AleAppId,
        EqualCaseInsensitive,
        ConditionValue::Text("/usr/sbin/sshd".into()),
    )
    .validate(ale)
    .expect("text at ALE");
    c(
        Field::AleRemoteMachineId,
        Equal,
        ConditionValue::Sd(SecurityDescriptor::allow(vec![Principal::Everyone])),
    )
    .validate(ale)
    .expect("sd at ALE");
}

#[test]
fn intervals_agree_with_matching() {
    use MatchType::*;
    let f = Field::IpRemotePort;
    let conds = [
        c(f, Equal, s(Scalar::U16(7))),
        c(f, NotEqual, s(Scalar::U16(7))),
        c(f, Greater, s(Scalar::U16(65535))),
        c(f, Less, s(Scalar::U16(0))),
        c(f, GreaterOrEqual, s(Scalar::U16(9))),
        c(f, LessOrEqual, s(Scalar::U16(9))),
        Condition::range(f, Scalar::U16(3), Scalar::U16(12)),
    ];
    for cond in &conds {
        let set = cond.intervals().expect("interval condition");
        for p in (0..=20u16).chain([65534, 65535]) {
            let in_set = set
                .as_slice()
                .iter()
                .any(|(lo, hi)| (*lo..=*hi).contains(&u128::from(p)));
            assert_eq!(in_set, cond.matches(port(p).as_ref()), "{cond} at {p}");
        }
    }
}
