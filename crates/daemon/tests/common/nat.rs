//! A host behind a masquerading NAT and a public host, in three network namespaces,
//! for the NAT end-to-end tests:
//!
//! ```text
//!   a 10.201.0.1 ---- 10.201.0.2 nat 10.202.0.1 ---- 10.202.0.2 b
//!                      (masquerade of 10.201.0.0/24 out of the public link,
//!                       source ports remapped)
//! ```

// Each e2e test binary uses a different part of this module.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::common::daemon::not_ipsec_between;
use crate::netns::{Netns, run_checked};

pub const A: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
pub const NAT_INSIDE: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 2);
pub const NAT_OUTSIDE: Ipv4Addr = Ipv4Addr::new(10, 202, 0, 1);
pub const B: Ipv4Addr = Ipv4Addr::new(10, 202, 0, 2);

/// The NAT maps the private host's ports into this range, so neither IKE's nor ESP in
/// UDP's source port survives the crossing.
pub const NAT_PORTS: &str = "20000-29999";

static NEXT: AtomicU32 = AtomicU32::new(0);
/// `ip netns add` may race with itself on its first use (see netns.rs).
static CREATING: Mutex<()> = Mutex::new(());

/// The three namespaces; dropped (and so removed) in reverse order of creation.
pub struct Topology {
    pub a: Netns,
    pub nat: Netns,
    pub b: Netns,
    /// The router's device on the public link (towards `b`).
    pub public_dev: String,
    /// `b`'s device.
    pub b_dev: String,
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
    /// The router masquerades `a`'s network.
    pub fn new() -> Topology {
        Topology::build(true)
    }

    /// The router only forwards: `b` reaches `a`'s address through it, and `mtu` is the
    /// public link's (both ends), where a narrower link on the path would be.
    pub fn routed(mtu: u16) -> Topology {
        let t = Topology::build(false);
        let b_dev = t.b_dev.clone();
        for (ns, dev) in [(&t.nat, &t.public_dev), (&t.b, &b_dev)] {
            ns.ip(&["link", "set", dev, "mtu", &mtu.to_string()])
                .expect("mtu");
        }
        t.b.ip(&[
            "route",
            "add",
            "10.201.0.0/24",
            "via",
            &NAT_OUTSIDE.to_string(),
        ])
        .expect("b's route to a");
        t
    }

    fn build(masquerade: bool) -> Topology {
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let (a, nat, b) = {
            let _creating = CREATING.lock().unwrap_or_else(|e| e.into_inner());
            // `pal-<pid>-...`: netns.rs removes them if this process dies unwinding nothing.
            let make = |tag: &str| Netns::create(format!("pal-{pid}-nat{n}-{tag}")).expect(tag);
            (make("a"), make("r"), make("b"))
        };
        let dev = |tag: &str| format!("pn{pid:x}{n:x}{tag}");
        let (public_dev, b_dev) = (dev("rb"), dev("b"));
        link(&a, &dev("a"), A, &nat, &dev("ra"), NAT_INSIDE);
        link(&nat, &public_dev, NAT_OUTSIDE, &b, &b_dev, B);
        a.ip(&["route", "add", "default", "via", &NAT_INSIDE.to_string()])
            .expect("a's default route");
        nat.run(|| std::fs::write("/proc/sys/net/ipv4/ip_forward", "1"))
            .expect("ns")
            .expect("forwarding");
        let t = Topology {
            a,
            nat,
            b,
            public_dev,
            b_dev,
        };
        if masquerade {
            t.masquerade();
        }
        t
    }

    /// The NAT: `a`'s network masqueraded out of the public link.
    fn masquerade(&self) {
        let public_dev = &self.public_dev;
        let ruleset = format!(
            "table ip nat {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
             oifname \"{public_dev}\" ip saddr 10.201.0.0/24 meta l4proto {{ tcp, udp }} masquerade to :{NAT_PORTS}\n    \
             oifname \"{public_dev}\" ip saddr 10.201.0.0/24 masquerade\n  }}\n}}\n"
        );
        let mut nft = self.nat.command("nft");
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
    }
}

/// The IP packets of a capture on the public link (lines of `Capture::finish`), once
/// checked: nothing but IPsec between the NAT's address and b, every packet to or from
/// b's UDP 500 or 4500, none with a's private address, and ESP in UDP only (some of it).
pub fn public_link_packets(lines: &[String]) -> Vec<&String> {
    let clear = not_ipsec_between(lines, IpAddr::V4(NAT_OUTSIDE), IpAddr::V4(B));
    assert!(clear.is_empty(), "not IPsec on the public link: {clear:#?}");
    let public: Vec<&String> = lines.iter().filter(|l| l.contains(" IP ")).collect();
    let (b500, b4500) = (format!("{B}.500"), format!("{B}.4500"));
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
    public
}
