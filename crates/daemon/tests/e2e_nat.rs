//! Palisade to Palisade through a NAT, end to end: host `a` on a private network behind a
//! masquerading router `nat`, host `b` on the router's public side.
//!
//! ```text
//!   a 10.201.0.1 ---- 10.201.0.2 nat 10.202.0.1 ---- 10.202.0.2 b
//!                      (masquerade of 10.201.0.0/24 out of the public link,
//!                       source ports remapped)
//! ```
//!
//! What a user configures here is a host-to-host tunnel, not transport mode. `b` never
//! sees `a`'s own address on the wire: IKE and ESP come from the NAT's 10.202.0.1, so
//! that is the tunnel's remote end in `b`'s policy, while the tunnel's inner addresses
//! are the hosts' own, carried unchanged inside ESP (and 10.201.0.1 is reachable from `b`
//! only through the tunnel, as a NAT's inside should be). Transport mode would need `b`'s
//! rule to name the NAT's address for IKE but `a`'s private address for the traffic
//! selectors `a` proposes (palisade-ike does not substitute them, RFC 7296 §2.23.1), and
//! even then the NAT's rewrite of the one IP header would leave TCP and UDP checksums
//! wrong after decapsulation (RFC 3948 §3.1.2; palisade-esp does no NAT-OA fix-up).
//!
//! Root only (network namespaces); skipped otherwise.

#[path = "../../../tests/support/netns.rs"]
mod netns;

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use common::daemon::{Capture, Daemon, not_ipsec_between, ping, tcp_transfer};
use netns::{Netns, root_or_skip, run_checked};

const A: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
const NAT_INSIDE: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 2);
const NAT_OUTSIDE: Ipv4Addr = Ipv4Addr::new(10, 202, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 202, 0, 2);

/// The NAT maps the private host's ports into this range, so neither IKE's nor ESP in
/// UDP's source port survives the crossing.
const NAT_PORTS: &str = "20000-29999";

static NEXT: AtomicU32 = AtomicU32::new(0);
/// `ip netns add` may race with itself on its first use (see netns.rs).
static CREATING: Mutex<()> = Mutex::new(());

fn policy(inner_local: Ipv4Addr, inner_remote: Ipv4Addr, outer_remote: Ipv4Addr) -> String {
    format!(
        r#"
[policy]
name = "e2e-nat"

[auth_sets.psk]
method = "preshared_key"
key = "e2e nat secret"

[[rules]]
name = "peer"
local = "{inner_local}"
remote = "{inner_remote}"
action = "require"
mode = "tunnel"
tunnel = {{ local = "{inner_local}", remote = "{outer_remote}" }}
auth = "psk"
"#
    )
}

/// The three namespaces; dropped (and so removed) in reverse order of creation.
struct Topology {
    a: Netns,
    nat: Netns,
    b: Netns,
    /// The router's device on the public link (towards `b`).
    public_dev: String,
}

/// A veth pair from `x` (at `x_addr`/24) to `y` (at `y_addr`/24).
fn link(x: &Netns, x_dev: &str, x_addr: Ipv4Addr, y: &Netns, y_dev: &str, y_addr: Ipv4Addr) {
    run_checked(std::process::Command::new("ip").args([
        "link",
        "add",
        x_dev,
        "netns",
        x.name(),
        "type",
        "veth",
        "peer",
        "name",
        y_dev,
        "netns",
        y.name(),
    ]))
    .expect("veth");
    for (ns, dev, addr) in [(x, x_dev, x_addr), (y, y_dev, y_addr)] {
        ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", dev])
            .expect("addr");
        ns.ip(&["link", "set", dev, "up"]).expect("up");
    }
}

impl Topology {
    fn new() -> Topology {
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let (a, nat, b) = {
            let _creating = CREATING.lock().unwrap_or_else(|e| e.into_inner());
            // `pal-<pid>-...`: netns.rs removes them if this process dies unwinding nothing.
            let make = |tag: &str| Netns::create(format!("pal-{pid}-nat{n}-{tag}")).expect(tag);
            (make("a"), make("r"), make("b"))
        };
        let dev = |tag: &str| format!("pn{pid:x}{n:x}{tag}");
        let public_dev = dev("rb");
        link(&a, &dev("a"), A, &nat, &dev("ra"), NAT_INSIDE);
        link(&nat, &public_dev, NAT_OUTSIDE, &b, &dev("b"), B);
        a.ip(&["route", "add", "default", "via", &NAT_INSIDE.to_string()])
            .expect("a's default route");
        nat.run(|| std::fs::write("/proc/sys/net/ipv4/ip_forward", "1"))
            .expect("ns")
            .expect("forwarding");
        let ruleset = format!(
            "table ip nat {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
             oifname \"{public_dev}\" ip saddr 10.201.0.0/24 meta l4proto {{ tcp, udp }} masquerade to :{NAT_PORTS}\n    \
             oifname \"{public_dev}\" ip saddr 10.201.0.0/24 masquerade\n  }}\n}}\n"
        );
        let mut nft = nat.command("nft");
        nft.args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = nft.spawn().expect("nft");
        {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(ruleset.as_bytes())
                .expect("nft ruleset");
        }
        let out = child.wait_with_output().expect("nft");
        assert!(
            out.status.success(),
            "nft: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Topology {
            a,
            nat,
            b,
            public_dev,
        }
    }
}

#[test]
fn nat_moves_ike_to_4500_and_carries_esp_in_udp_only() {
    if !root_or_skip("nat_moves_ike_to_4500_and_carries_esp_in_udp_only") {
        return;
    }
    let t = Topology::new();
    // The NAT works, and hides the inside: b cannot reach a's private address.
    assert!(
        ping(&t.a, B.into(), 1).status.success(),
        "a -> b before IPsec"
    );
    assert!(
        !ping(&t.b, A.into(), 1).status.success(),
        "b reaches a's private address without the tunnel"
    );

    let da = Daemon::start(&t.a, "a", &policy(A, B, B)).expect("daemon a");
    let db = Daemon::start(&t.b, "b", &policy(B, A, NAT_OUTSIDE)).expect("daemon b");
    let capture =
        Capture::start(&t.nat, &t.public_dev, da.dir().join("public.pcap")).expect("tcpdump");

    // a initiates: the first echo request raises the acquire.
    let out = ping(&t.a, B.into(), 5);
    assert!(
        out.status.success(),
        "ping a -> b through the NAT failed:\n{}\n--- a ---\n{}\n--- b ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        da.log(),
        db.log()
    );
    let to: SocketAddr = (B, 5201).into();
    let moved = tcp_transfer(&t.a, &t.b, to, 4 << 20).unwrap_or_else(|e| {
        panic!(
            "TCP a -> b through the NAT: {e}\n--- a ---\n{}\n{:?}\n--- b ---\n{}\n{:?}",
            da.log(),
            da.stats(),
            db.log(),
            db.stats()
        )
    });
    assert_eq!(moved, 4 << 20, "the TCP transfer lost bytes");
    // And the other way, on the same SAs: b reaches a's private address through the tunnel.
    assert!(
        ping(&t.b, A.into(), 2).status.success(),
        "b -> a inside the tunnel"
    );

    let lines = capture.finish();
    let (nat_ip, b_ip) = (IpAddr::V4(NAT_OUTSIDE), IpAddr::V4(B));
    let public: Vec<&String> = lines.iter().filter(|l| l.contains(" IP ")).collect();
    // Only UDP between the NAT's public address and b, on b's IKE ports.
    let clear = not_ipsec_between(&lines, nat_ip, b_ip);
    assert!(clear.is_empty(), "not IPsec on the public link: {clear:#?}");
    let b500 = format!("{B}.500");
    let b4500 = format!("{B}.4500");
    for l in &public {
        assert!(
            l.contains(&b500) || l.contains(&b4500),
            "a packet on the public link not to or from b's UDP 500/4500: {l}"
        );
        assert!(
            !l.contains("10.201."),
            "a's private address on the public link: {l}"
        );
    }
    let raw_esp: Vec<&&String> = public
        .iter()
        .filter(|l| l.contains(": ESP(") && !l.contains("UDP-encap: ESP("))
        .collect();
    assert!(raw_esp.is_empty(), "ESP outside UDP: {raw_esp:#?}");
    assert!(
        public.iter().any(|l| l.contains("UDP-encap: ESP(")),
        "no ESP in UDP: {lines:#?}"
    );
    // IKE started on 500 and moved to 4500 after NAT detection.
    assert!(
        public
            .iter()
            .any(|l| l.contains(&format!("> {b500}: isakmp"))),
        "no IKE_SA_INIT to b's port 500: {lines:#?}"
    );
    assert!(
        public
            .iter()
            .any(|l| l.contains(&format!("> {b4500}: NONESP-encap: isakmp"))),
        "IKE never moved to port 4500: {lines:#?}"
    );
    // The NAT remapped a's ports: nothing reached b from the NAT's 500 or 4500.
    let from_nat = |port: u16| format!("{NAT_OUTSIDE}.{port} >");
    assert!(
        !public
            .iter()
            .any(|l| l.contains(&from_nat(500)) || l.contains(&from_nat(4500))),
        "the NAT kept a's ports: {public:#?}"
    );

    for (d, name, peer) in [(&da, "a", format!("{B}:4500")), (&db, "b", String::new())] {
        let sas = d.wait_for_sas("one IKE SA with one CHILD_SA", |s| {
            s.len() == 1 && s[0].child_sas.len() == 1
        });
        let ike = &sas[0];
        assert!(ike.nat, "{name}: NAT not detected: {ike:#?}");
        assert!(ike.local.ends_with(":4500"), "{name}: {ike:#?}");
        if name == "a" {
            assert_eq!(ike.remote, peer, "{name}: {ike:#?}");
        } else {
            // b knows a only as the NAT's address and the port it mapped 4500 to.
            let remote: SocketAddr = ike.remote.parse().expect("remote");
            assert_eq!(remote.ip(), nat_ip, "{name}: {ike:#?}");
            assert_ne!(
                remote.port(),
                4500,
                "{name}: the NAT kept the port? {ike:#?}"
            );
        }
        let child = &ike.child_sas[0];
        assert!(
            child.udp_encap,
            "{name}: CHILD_SA without UDP encapsulation: {child:#?}"
        );
        assert_eq!(child.mode, "tunnel", "{name}");
        assert!(
            child.outbound.packets >= 5 && child.inbound.packets >= 5,
            "{name}: {child:#?}"
        );
    }
}
