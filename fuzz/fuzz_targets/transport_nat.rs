//! palisade-esp's checksum fix-up after transport-mode ESP crossed a NAT, on arbitrary
//! bytes: the packet comes from a peer (authenticated, but its contents are the peer's
//! choice), so no input may panic it or change the packet's length, and a refused packet
//! is left as it was. A fix-up from the addresses the packet already carries changes
//! nothing. The fix-up of an ICMP error's quote (`restore_icmp_quote`) runs on the same
//! bytes: no panic, the length kept, and from the packet's own addresses no change; and
//! `restore`, both at once, leaves the bytes the two calls in turn leave.
//! (The checksums' values are checked against a recompute from scratch in
//! crates/esp/tests/transport_nat.rs.)
//!
//! The first byte picks the original addresses' family (bit 0: IPv6) and the next 32
//! bytes are their octets (4 or 16 of each); the rest is the packet.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use palisade_esp::transport_nat::{
    OriginalAddresses, restore, restore_checksum, restore_icmp_quote,
};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Some((addrs, packet)) = rest.split_at_checked(32) else {
        return;
    };
    let original = if pick & 1 == 1 {
        let (s, d) = addrs.split_at(16);
        OriginalAddresses {
            source: IpAddr::from(Ipv6Addr::from(<[u8; 16]>::try_from(s).expect("16"))),
            destination: IpAddr::from(Ipv6Addr::from(<[u8; 16]>::try_from(d).expect("16"))),
        }
    } else {
        OriginalAddresses {
            source: IpAddr::from(Ipv4Addr::new(addrs[0], addrs[1], addrs[2], addrs[3])),
            destination: IpAddr::from(Ipv4Addr::new(addrs[4], addrs[5], addrs[6], addrs[7])),
        }
    };

    // The ICMP quote's fix-up: no panic, the length kept.
    let mut q = packet.to_vec();
    let _ = restore_icmp_quote(&mut q, &original);
    assert_eq!(q.len(), packet.len());

    let mut p = packet.to_vec();
    let result = restore_checksum(&mut p, &original);
    // `restore`, which reads the headers once, does what the two calls do in turn.
    let mut both = p.clone();
    let sequential = result.and_then(|_| restore_icmp_quote(&mut both, &original));
    let mut at_once = packet.to_vec();
    let combined = restore(&mut at_once, &original);
    assert_eq!(combined.is_ok(), sequential.is_ok());
    if combined.is_ok() {
        assert_eq!(at_once, both);
    }
    assert_eq!(p.len(), packet.len());
    if result.is_err() {
        assert_eq!(p, packet, "a refused packet is left as it was");
        return;
    }
    let Some(own) = own_addresses(packet) else {
        return;
    };
    // From the packet's own addresses: nothing to change, but for a checksum of 0xffff
    // becoming 0x0000 (the other form of one's-complement zero; UDP keeps 0xffff, its
    // zero meaning "no checksum").
    let mut same = packet.to_vec();
    let _ = restore_checksum(&mut same, &own);
    let differ: Vec<usize> = (0..packet.len())
        .filter(|&i| same[i] != packet[i])
        .collect();
    if let [first, ..] = differ[..] {
        assert!(
            differ.len() <= 2
                && differ.iter().all(|&i| i < first + 2)
                && packet.get(first..first + 2) == Some(&[0xff, 0xff][..])
                && same.get(first..first + 2) == Some(&[0, 0][..]),
            "a fix-up from the packet's own addresses changed {differ:?}"
        );
    }
    // A quote with the addresses the packet's own header has already is ours.
    let mut same = packet.to_vec();
    let _ = restore_icmp_quote(&mut same, &own);
    assert_eq!(
        same, packet,
        "a quote fix-up from the packet's own addresses"
    );
});

/// The addresses in `packet`'s IP header, if it has one of its family's length.
fn own_addresses(packet: &[u8]) -> Option<OriginalAddresses> {
    match packet.first()? >> 4 {
        4 if packet.len() >= 20 => Some(OriginalAddresses {
            source: IpAddr::from(<[u8; 4]>::try_from(&packet[12..16]).ok()?),
            destination: IpAddr::from(<[u8; 4]>::try_from(&packet[16..20]).ok()?),
        }),
        6 if packet.len() >= 40 => Some(OriginalAddresses {
            source: IpAddr::from(<[u8; 16]>::try_from(&packet[8..24]).ok()?),
            destination: IpAddr::from(<[u8; 16]>::try_from(&packet[24..40]).ok()?),
        }),
        _ => None,
    }
}
