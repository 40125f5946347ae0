//! ECN through tunnels, RFC 6040 (normal mode).

/// The ECN codepoints (the low two bits of the TOS / traffic class octet).
pub const NOT_ECT: u8 = 0b00;
/// ECT(1).
pub const ECT1: u8 = 0b01;
/// ECT(0).
pub const ECT0: u8 = 0b10;
/// Congestion Experienced.
pub const CE: u8 = 0b11;

/// Outer ECN at the tunnel ingress. RFC 6040 §4.1 normal mode copies the inner field,
/// CE included, so congestion marked before the tunnel survives it.
#[inline]
pub fn encapsulate(inner: u8) -> u8 {
    inner & 0b11
}

/// Inner ECN at the tunnel egress, from RFC 6040 §4.2 Figure 4; `None` means drop
/// (CE on the outer header of a Not-ECT inner packet: the congestion cannot be
/// passed on, and forwarding would hide it).
#[inline]
pub fn decapsulate(inner: u8, outer: u8) -> Option<u8> {
    let (inner, outer) = (inner & 0b11, outer & 0b11);
    match (inner, outer) {
        (NOT_ECT, CE) => None,
        (NOT_ECT, _) => Some(NOT_ECT),
        (CE, _) => Some(CE),
        (_, CE) => Some(CE),
        (_, ECT1) => Some(ECT1),
        (inner, _) => Some(inner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6040 Figure 4, row by row (inner), column by column (outer).
    #[test]
    fn decapsulation_table() {
        let outer = [NOT_ECT, ECT0, ECT1, CE];
        let table: [(u8, [Option<u8>; 4]); 4] = [
            (NOT_ECT, [Some(NOT_ECT), Some(NOT_ECT), Some(NOT_ECT), None]),
            (ECT0, [Some(ECT0), Some(ECT0), Some(ECT1), Some(CE)]),
            (ECT1, [Some(ECT1), Some(ECT1), Some(ECT1), Some(CE)]),
            (CE, [Some(CE), Some(CE), Some(CE), Some(CE)]),
        ];
        for (inner, row) in table {
            for (o, want) in outer.iter().zip(row) {
                assert_eq!(
                    decapsulate(inner, *o),
                    want,
                    "inner {inner:02b} outer {o:02b}"
                );
            }
        }
    }

    #[test]
    fn encapsulation_copies() {
        for v in [NOT_ECT, ECT0, ECT1, CE] {
            assert_eq!(encapsulate(v | 0b1010_1000), v);
        }
    }
}
