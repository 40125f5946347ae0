//! Protocols and ports as administrators write them, and the conditions they become.

use palisade_filter::{Condition, Field, Scalar};

use crate::document::{Port, Protocol};

/// What a protocol must look like.
pub const PROTOCOL_EXPECTED: &str = "expected any, tcp, udp, icmp, icmpv6 or a number 0-255";
/// What a port must look like.
pub const PORT_EXPECTED: &str = "expected a port 0-65535 or a range like \"1024-2047\"";

/// IANA protocol numbers with names administrators use.
pub const TCP: u8 = 6;
/// UDP.
pub const UDP: u8 = 17;
/// ICMP.
pub const ICMP: u8 = 1;
/// ICMPv6.
pub const ICMPV6: u8 = 58;

/// The protocol number; `None` for any.
pub fn protocol(p: &Protocol) -> Result<Option<u8>, String> {
    match p {
        Protocol::Number(n) => u8::try_from(*n)
            .map(Some)
            .map_err(|_| format!("{n}: {PROTOCOL_EXPECTED}")),
        Protocol::Name(name) => match name.to_ascii_lowercase().as_str() {
            "any" => Ok(None),
            "tcp" => Ok(Some(TCP)),
            "udp" => Ok(Some(UDP)),
            "icmp" => Ok(Some(ICMP)),
            "icmpv6" | "ipv6-icmp" => Ok(Some(ICMPV6)),
            _ => Err(format!("{name:?}: {PROTOCOL_EXPECTED}")),
        },
    }
}

/// The inclusive port range.
pub fn port(p: &Port) -> Result<(u16, u16), String> {
    match p {
        Port::Number(n) => u16::try_from(*n)
            .map(|n| (n, n))
            .map_err(|_| format!("{n}: {PORT_EXPECTED}")),
        Port::Range(text) => {
            let bad = || format!("{text:?}: {PORT_EXPECTED}");
            let (low, high) = match text.split_once('-') {
                Some((l, h)) => (l.trim(), h.trim()),
                None => (text.trim(), text.trim()),
            };
            let low: u16 = low.parse().map_err(|_| bad())?;
            let high: u16 = high.parse().map_err(|_| bad())?;
            if low > high {
                return Err(format!(
                    "{text:?}: the range's first port is above its last"
                ));
            }
            Ok((low, high))
        }
    }
}

/// The condition matching a port range on `field`.
pub fn port_condition(field: Field, (low, high): (u16, u16)) -> Condition {
    if low == high {
        Condition::equal(field, Scalar::U16(low))
    } else {
        Condition::range(field, Scalar::U16(low), Scalar::U16(high))
    }
}
