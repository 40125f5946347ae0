//! Prints what `explain` shows for a small policy: an ICMP exemption, an IPsec callout
//! and a block. Run: `cargo run -p palisade-filter --example explain_demo`.

use std::net::Ipv4Addr;

use palisade_filter::guids::FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4;
use palisade_filter::*;

fn main() -> Result<(), EngineError> {
    let engine = Engine::new();
    let mut s = engine.open_session(Caller::root(), SessionOptions::default())?;
    let l = Layer::OutboundTransportV4;
    let lan = Condition::new(
        Field::IpRemoteAddress,
        MatchType::Equal,
        ConditionValue::v4_prefix(Ipv4Addr::new(10, 0, 0, 0), 8),
    );
    let mut txn = s.begin(TxnKind::Write)?;
    txn.add_filter(
        Filter::new(l, Action::Permit)
            .name("ICMP exemption")
            .weight(Weight::Range(weight::WEIGHT_RANGE_IKE_EXEMPTIONS))
            .condition(Condition::equal(Field::IpProtocol, Scalar::U8(1))),
    )?;
    txn.add_filter(
        Filter::new(
            l,
            Action::CalloutTerminating(FWPM_CALLOUT_IPSEC_OUTBOUND_TRANSPORT_V4),
        )
        .name("protect the LAN")
        .condition(lan),
    )?;
    txn.add_filter(
        Filter::new(l, Action::Block)
            .name("no telnet")
            .condition(Condition::equal(Field::IpRemotePort, Scalar::U16(23))),
    )?;
    txn.commit()?;
    let values = FieldValues::new()
        .with(
            Field::IpRemoteAddress,
            Scalar::V4(Ipv4Addr::new(10, 1, 2, 3)),
        )
        .with(Field::IpProtocol, Scalar::U8(6))
        .with(Field::IpRemotePort, Scalar::U16(23));
    println!("{}", engine.explain(l, &values, &mut NoCallouts));
    Ok(())
}
