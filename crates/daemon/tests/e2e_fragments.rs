//! Datagrams longer than the TUN's MTU in transport mode, end to end: the sending
//! host's stack cuts them into fragments for the TUN, palisaded puts them back together,
//! protects each datagram whole (RFC 4303 §3.3.4) and sends the ESP packet in fragments;
//! the receiving kernel reassembles the ESP and palisaded hands the whole datagram on.
//! Each test echoes datagrams of several sizes both ways and reads the capture packet by
//! packet: everything between the hosts is IKE, ESP, or a later fragment of an ESP
//! packet. Root only (network namespaces); skipped otherwise.

#[path = "../../../tests/support/netns.rs"]
mod netns;

mod common;
mod sys_common;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use common::daemon::{Capture, Daemon, require_policy, veth_of};
use common::echo::{LONG_SIZES, ROUNDS, SIZES, echo_all, echo_server, echo_sizes};
use netns::{VethPair, root_or_skip};
use sys_common::{V6_A, V6_B, enable_ipv6};

const PORT: u16 = 5310;

#[test]
fn ipv4_datagrams_longer_than_the_mtu_cross_in_transport_mode() {
    if !root_or_skip("ipv4_datagrams_longer_than_the_mtu_cross_in_transport_mode") {
        return;
    }
    run(false, "");
}

#[test]
fn ipv4_datagrams_longer_than_the_mtu_cross_in_udp_encapsulated_transport_mode() {
    if !root_or_skip("ipv4_datagrams_longer_than_the_mtu_cross_in_udp_encapsulated_transport_mode")
    {
        return;
    }
    run(false, "[ike]\nforce_udp_encapsulation = true\n");
}

#[test]
fn ipv6_datagrams_longer_than_the_mtu_cross_in_transport_mode() {
    if !root_or_skip("ipv6_datagrams_longer_than_the_mtu_cross_in_transport_mode") {
        return;
    }
    run(true, "");
}

/// Policy that protects one UDP port only: a later fragment shows no ports, so judged
/// alone it would match no rule and leave in clear. Judged as its whole datagram, it is
/// ESP; the datagrams to another port are clear, as policy says, cut to the MTU again.
#[test]
fn a_rule_for_one_port_protects_every_fragment_of_its_datagrams() {
    if !root_or_skip("a_rule_for_one_port_protects_every_fragment_of_its_datagrams") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let (a_ip, b_ip): (IpAddr, IpAddr) = (VethPair::ADDR_A.into(), VethPair::ADDR_B.into());
    let policy = |me: IpAddr, peer: IpAddr, ports: &str| {
        require_policy(
            "e2e-fragments-port",
            me,
            peer,
            &format!("protocol = \"udp\"\n{ports} = [{PORT}]\n"),
        )
    };
    let a = Daemon::start(&pair.a, "a", &policy(a_ip, b_ip, "remote_ports")).expect("daemon a");
    let b = Daemon::start(&pair.b, "b", &policy(b_ip, a_ip, "local_ports")).expect("daemon b");
    let pcap = a.dir().join("wire.pcap");
    let capture = Capture::start(&pair.a, &veth_of(&pair.a), pcap.clone()).expect("tcpdump");
    let protected = echo_server(&pair.b, SocketAddr::new(b_ip, PORT));
    let clear = echo_server(&pair.b, SocketAddr::new(b_ip, CLEAR_PORT));
    echo_all(&pair.a, a_ip, SocketAddr::new(b_ip, PORT), &|| logs(&a, &b));
    echo_all(&pair.a, a_ip, SocketAddr::new(b_ip, CLEAR_PORT), &|| {
        logs(&a, &b)
    });
    drop((protected, clear));
    let _ = capture.finish();

    let datagrams = (ROUNDS * SIZES.len()) as u64;
    let s = a.stats();
    assert!(s.clear_permitted >= datagrams, "{s:?}");
    assert!(
        s.reassembled >= 2 * datagrams && s.fragmented >= 2 * datagrams,
        "{s:?}"
    );
    let v = judge(&read_pcap(&pcap), a_ip, b_ip, Some(CLEAR_PORT));
    assert!(v.later_fragments >= datagrams as usize, "{v:?}");
    assert!(v.clear_permitted >= 2 * datagrams as usize, "{v:?}");
    assert!(
        v.clear.is_empty(),
        "clear packets policy protects: {:#?}",
        v.clear
    );
}

/// The port of the test's datagrams that policy leaves in clear.
const CLEAR_PORT: u16 = 5311;

/// Echoes every size from a to b and back, `a` with `settings`, and checks the wire and
/// the counters.
fn run(v6: bool, settings: &str) {
    let pair = VethPair::new().expect("namespaces");
    let (a_ip, b_ip): (IpAddr, IpAddr) = if v6 {
        enable_ipv6(&pair.a, V6_A);
        enable_ipv6(&pair.b, V6_B);
        (V6_A.into(), V6_B.into())
    } else {
        (VethPair::ADDR_A.into(), VethPair::ADDR_B.into())
    };
    let policy = |me: IpAddr, peer: IpAddr| require_policy("e2e-fragments", me, peer, "");
    let a = Daemon::start_with(&pair.a, "a", &policy(a_ip, b_ip), settings).expect("daemon a");
    let b = Daemon::start(&pair.b, "b", &policy(b_ip, a_ip)).expect("daemon b");
    let pcap = a.dir().join("wire.pcap");
    let capture = Capture::start(&pair.a, &veth_of(&pair.a), pcap.clone()).expect("tcpdump");

    let echo = echo_server(&pair.b, SocketAddr::new(b_ip, PORT));
    let to = SocketAddr::new(b_ip, PORT);
    echo_all(&pair.a, a_ip, to, &|| logs(&a, &b));
    echo_sizes(&pair.a, a_ip, to, &LONG_SIZES, &|| logs(&a, &b));
    drop(echo);
    // The longest UDP datagram: put back together, but too long to protect (an ESP
    // packet is an IP packet too). Dropped, counted, and a net event.
    let longest = if v6 { 65_527 } else { 65_507 };
    let tx = pair.a.udp_socket(SocketAddr::new(a_ip, 0)).expect("socket");
    tx.send_to(&vec![0x77; longest], to).expect("send");
    let too_long = || a.stats().global_drops.get("too_long").copied().unwrap_or(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while too_long() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(too_long(), 1, "{}", logs(&a, &b));
    let events = a.events();
    assert!(
        events
            .iter()
            .any(|e| e.kind == "drop" && e.detail["reason"] == "too_long"),
        "{events:#?}"
    );
    let _ = capture.finish();

    let datagrams = (ROUNDS * (SIZES.len() + LONG_SIZES.len())) as u64;
    for (d, name) in [(&a, "a"), (&b, "b")] {
        let s = d.stats();
        assert!(
            s.reassembled >= datagrams && s.fragmented >= datagrams,
            "{name} put back together and cut every datagram: {s:?}"
        );
        let refused: Vec<_> = s
            .global_drops
            .keys()
            .filter(|k| k.starts_with("reassembly") || *k == "send_error")
            .collect();
        assert!(refused.is_empty(), "{name}: {:?}", s.global_drops);
        let sas = d.sas();
        let child = &sas[0].child_sas[0];
        assert_eq!(child.mode, "transport", "{name}");
        assert!(child.outbound.packets >= datagrams, "{name}: {child:?}");
    }

    let packets = read_pcap(&pcap);
    let verdicts = judge(&packets, a_ip, b_ip, None);
    assert!(
        verdicts.later_fragments >= datagrams as usize,
        "ESP crossed in fragments: {verdicts:?}"
    );
    assert!(
        verdicts.clear.is_empty(),
        "packets between the hosts that are not IKE or ESP: {:#?}",
        verdicts.clear
    );
}

/// Both daemons' counters and logs, for a failure message.
fn logs(a: &Daemon, b: &Daemon) -> String {
    format!(
        "a: {:?}\nb: {:?}\n--- a ---\n{}\n--- b ---\n{}",
        a.stats(),
        b.stats(),
        a.log(),
        b.log()
    )
}

/// The IP packets of an Ethernet capture (classic pcap), each as captured.
fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).expect("pcap");
    assert!(bytes.len() >= 24, "a pcap file");
    let le = bytes[..4] == [0xd4, 0xc3, 0xb2, 0xa1];
    let u32_at = |at: usize| {
        let w = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    assert_eq!(u32_at(20), 1, "Ethernet link type");
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = u32_at(at + 8) as usize;
        let frame = &bytes[at + 16..(at + 16 + caplen).min(bytes.len())];
        at += 16 + caplen;
        if frame.len() > 14 && matches!(frame[12..14], [0x08, 0x00] | [0x86, 0xdd]) {
            out.push(frame[14..].to_vec());
        }
    }
    out
}

#[derive(Debug, Default)]
struct Verdicts {
    /// Later fragments of packets that were IPsec.
    later_fragments: usize,
    /// Packets and fragments of datagrams to or from the port left in clear.
    clear_permitted: usize,
    /// Anything else between the hosts that is not IPsec, described.
    clear: Vec<String>,
}

/// What a packet is, as far as the check cares.
enum Kind {
    /// ESP, IKE or ESP in UDP, or ICMPv6 neighbour discovery and MLD (beneath IPsec);
    /// with its fragment key if it is a first fragment.
    Ipsec(Option<(u32, IpAddr)>),
    /// A later fragment: its identification and source.
    Later(u32, IpAddr),
    /// UDP to or from `clear_port` (see [`judge`]), with its fragment key if it is a
    /// first fragment.
    ClearPort(Option<(u32, IpAddr)>),
    Other(String),
}

/// Sorts the packets between `x` and `y`: a later fragment is IPsec when its first
/// fragment (same source and identification) was; UDP to or from `clear_port`, and its
/// later fragments, are clear as policy permits.
fn judge(packets: &[Vec<u8>], x: IpAddr, y: IpAddr, clear_port: Option<u16>) -> Verdicts {
    let mut v = Verdicts::default();
    let mut ipsec_firsts: HashSet<(u32, IpAddr)> = HashSet::new();
    let mut clear_firsts: HashSet<(u32, IpAddr)> = HashSet::new();
    let mut later = Vec::new();
    for p in packets {
        let Some((src, dst, kind)) = classify(p, clear_port) else {
            continue;
        };
        if !((src == x && dst == y) || (src == y && dst == x)) {
            continue;
        }
        match kind {
            Kind::Ipsec(first) => {
                if let Some(key) = first {
                    ipsec_firsts.insert(key);
                }
            }
            Kind::Later(id, from) => later.push((id, from)),
            Kind::ClearPort(first) => {
                v.clear_permitted += 1;
                if let Some(key) = first {
                    clear_firsts.insert(key);
                }
            }
            Kind::Other(what) => v.clear.push(what),
        }
    }
    for key in later {
        if ipsec_firsts.contains(&key) {
            v.later_fragments += 1;
        } else if clear_firsts.contains(&key) {
            v.clear_permitted += 1;
        } else {
            v.clear
                .push(format!("a later fragment {key:?} of no IPsec packet"));
        }
    }
    v
}

/// Source, destination and kind of an IPv4 or IPv6 packet.
fn classify(p: &[u8], clear_port: Option<u16>) -> Option<(IpAddr, IpAddr, Kind)> {
    let port = |transport: &[u8], at: usize| {
        transport
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let clear = |proto: u8, transport: &[u8]| {
        proto == 17
            && clear_port.is_some()
            && [port(transport, 0), port(transport, 2)].contains(&clear_port)
    };
    let ipsec = |proto: u8, transport: &[u8]| match proto {
        50 => true,
        17 => [port(transport, 0), port(transport, 2)]
            .iter()
            .any(|p| matches!(p, Some(500 | 4500))),
        // Neighbour discovery and MLD.
        58 => transport
            .first()
            .is_some_and(|t| matches!(t, 130..=137 | 143)),
        _ => false,
    };
    match p.first()? >> 4 {
        4 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let src = IpAddr::from(<[u8; 4]>::try_from(p.get(12..16)?).ok()?);
            let dst = IpAddr::from(<[u8; 4]>::try_from(p.get(16..20)?).ok()?);
            let id = u32::from(u16::from_be_bytes([p[4], p[5]]));
            let word = u16::from_be_bytes([p[6], p[7]]);
            let (offset, more) = (word & 0x1fff, word & 0x2000 != 0);
            let kind = if offset != 0 {
                Kind::Later(id, src)
            } else if ipsec(p[9], p.get(ihl..)?) {
                Kind::Ipsec(more.then_some((id, src)))
            } else if clear(p[9], p.get(ihl..)?) {
                Kind::ClearPort(more.then_some((id, src)))
            } else {
                Kind::Other(format!("IPv4 proto {} {src} > {dst}", p[9]))
            };
            Some((src, dst, kind))
        }
        6 => {
            let src = IpAddr::from(<[u8; 16]>::try_from(p.get(8..24)?).ok()?);
            let dst = IpAddr::from(<[u8; 16]>::try_from(p.get(24..40)?).ok()?);
            let (mut next, mut at) = (p[6], 40);
            let mut fragment = None;
            // Hop-by-Hop, Routing and Destination Options, then perhaps a Fragment header.
            while matches!(next, 0 | 43 | 60 | 44) {
                let h = p.get(at..at + 8)?;
                if next == 44 {
                    let word = u16::from_be_bytes([h[2], h[3]]);
                    let id = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                    fragment = Some((word & 0xfff8, word & 1 != 0, id));
                    next = h[0];
                    at += 8;
                    if word & 0xfff8 != 0 {
                        break;
                    }
                } else {
                    next = h[0];
                    at += (usize::from(h[1]) + 1) * 8;
                }
            }
            let kind = match fragment {
                Some((offset, _, id)) if offset != 0 => Kind::Later(id, src),
                _ if ipsec(next, p.get(at..)?) => {
                    Kind::Ipsec(fragment.filter(|f| f.1).map(|f| (f.2, src)))
                }
                _ if clear(next, p.get(at..)?) => {
                    Kind::ClearPort(fragment.filter(|f| f.1).map(|f| (f.2, src)))
                }
                _ => Kind::Other(format!("IPv6 next header {next} {src} > {dst}")),
            };
            Some((src, dst, kind))
        }
        _ => None,
    }
}
