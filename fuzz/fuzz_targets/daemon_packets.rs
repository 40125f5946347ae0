//! Feeds arbitrary bytes to palisaded's packet classification (crates/daemon/src/
//! ipsec_callout.rs): `Flow::outbound` and `Flow::inbound` read the packet, and an
//! `IpsecCallout` over an engine holding examples/policies/transport-mode.toml decides
//! what the data plane does with whatever flow was read: `outbound`, `inbound_clear`,
//! and `inbound_protected` as if it had arrived on each of two fixed SAs (the
//! transport-mode SA that policy negotiates, and a tunnel-mode SA of every address).
//!
//! Beyond "no panic": both directions read the same packet as mirror images, and the
//! cached, indexed decisions (the callout lives across inputs, as in the daemon) equal
//! the naive classifier's.
#![no_main]

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use palisade_filter::policy::TrafficSelector;
use palisade_filter::{Caller, Engine, SessionOptions};
use palisaded::ipsec_callout::{Flow, IpsecCallout, ProtectionMode, SaSelectors};

const POLICY: &str = include_str!("../../examples/policies/transport-mode.toml");
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

thread_local! {
    static CALLOUT: RefCell<IpsecCallout> = RefCell::new(IpsecCallout::new(engine()));
    static SAS: [SaSelectors; 2] = sas();
}

fn engine() -> Engine {
    let compiled =
        palisade_policy::compile_str("transport-mode.toml", POLICY).expect("example compiles");
    let engine = Engine::new();
    let mut session = engine
        .open_session(Caller::root(), SessionOptions::default())
        .expect("root session");
    palisade_policy::apply(&engine, &mut session, &compiled).expect("example applies");
    engine
}

fn sas() -> [SaSelectors; 2] {
    let v4 = |s: &str| IpAddr::V4(s.parse::<Ipv4Addr>().expect("v4"));
    let one = |a: IpAddr| vec![TrafficSelector::range(a, a)];
    let every = || {
        vec![
            TrafficSelector::range(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V4(Ipv4Addr::BROADCAST),
            ),
            TrafficSelector::range(
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::from(u128::MAX)),
            ),
        ]
    };
    [
        SaSelectors {
            local: one(v4("192.0.2.10")),
            remote: one(v4("192.0.2.20")),
            mode: ProtectionMode::Transport,
            encrypting: true,
            peer_names: vec!["192.0.2.20".to_owned()],
        },
        SaSelectors {
            local: every(),
            remote: every(),
            mode: ProtectionMode::Tunnel {
                local: v4("198.51.100.1"),
                remote: v4("203.0.113.1"),
            },
            encrypting: false,
            peer_names: vec![],
        },
    ]
}

fuzz_target!(|data: &[u8]| {
    let out = Flow::outbound(data);
    let inb = Flow::inbound(data);
    assert_eq!(
        out.is_some(),
        inb.is_some(),
        "one direction read the packet"
    );
    if let (Some(o), Some(i)) = (out, inb) {
        assert_eq!((o.family, o.protocol), (i.family, i.protocol));
        assert_eq!((o.local, o.remote), (i.remote, i.local));
        assert_eq!((o.tcp_syn, o.later_fragment), (i.tcp_syn, i.later_fragment));
        if matches!(o.protocol, ICMP | ICMPV6) {
            assert_eq!((o.local_port, o.remote_port), (i.local_port, i.remote_port));
        } else {
            assert_eq!((o.local_port, o.remote_port), (i.remote_port, i.local_port));
        }
    }
    CALLOUT.with_borrow_mut(|callout| {
        if let Some(flow) = out {
            let first = callout.outbound(&flow);
            assert_eq!(callout.outbound(&flow), first, "cached outbound");
            assert_eq!(callout.outbound_naive(&flow), first, "naive outbound");
        }
        let Some(flow) = inb else {
            return;
        };
        let first = callout.inbound_clear(&flow);
        assert_eq!(callout.inbound_clear(&flow), first, "cached inbound_clear");
        assert_eq!(
            callout.inbound_clear_naive(&flow),
            first,
            "naive inbound_clear"
        );
        SAS.with(|sas| {
            for sa in sas {
                let first = callout.inbound_protected(&flow, sa);
                assert_eq!(
                    callout.inbound_protected(&flow, sa),
                    first,
                    "cached inbound_protected"
                );
                assert_eq!(
                    callout.inbound_protected_naive(&flow, sa),
                    first,
                    "naive inbound_protected"
                );
            }
        });
    });
});
