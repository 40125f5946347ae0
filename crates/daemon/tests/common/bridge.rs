//! Several hosts on one link: a bridge in one namespace and a veth pair from it to each
//! of the others, for tests with more than two peers.

// Each test binary uses what it needs of the shared support.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::netns::{Netns, run_checked};

static NEXT: AtomicU32 = AtomicU32::new(0);
/// `ip netns add` may race with itself on its first use (see netns.rs).
static CREATING: Mutex<()> = Mutex::new(());

/// A hub namespace with the bridge at `hub_addr`/24 and, linked to it, one namespace per
/// host address, in order. `kind` (two letters) keeps the names of one test apart from
/// another's: `pal-PID-KIND<n>-hub`, `...-h<i>`.
pub fn star(kind: &str, hub_addr: Ipv4Addr, hosts: &[Ipv4Addr]) -> (Netns, Vec<Netns>) {
    let pid = std::process::id();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let make = |tag: &str| Netns::create(format!("pal-{pid}-{kind}{n}-{tag}")).expect(tag);
    let (hub, nodes) = {
        let _creating = CREATING.lock().unwrap_or_else(|e| e.into_inner());
        let hub = make("hub");
        let nodes: Vec<Netns> = (0..hosts.len()).map(|i| make(&format!("h{i}"))).collect();
        (hub, nodes)
    };
    bridge(&hub, hub_addr);
    for (i, (node, addr)) in nodes.iter().zip(hosts).enumerate() {
        let dev = |end: &str| format!("p{kind}{pid:x}{n:x}{i}{end}");
        link(&hub, &dev("b"), node, &dev("h"), *addr);
    }
    (hub, nodes)
}

/// A host namespace behind the gateway `gw`, joined to it by a veth pair (`tag` keeps
/// two hosts of one gateway apart): the host, the gateway's device and the host's, not
/// yet addressed or up.
pub fn host_behind(gw: &Netns, tag: char) -> (Netns, String, String) {
    let host = Netns::create(format!("{}-h{tag}", gw.name())).expect("host namespace");
    let pid = std::process::id();
    let (g, h) = (format!("pg{pid:x}{tag}"), format!("ph{pid:x}{tag}"));
    let add = format!(
        "link add {g} netns {} type veth peer name {h} netns {}",
        gw.name(),
        host.name()
    );
    run_checked(std::process::Command::new("ip").args(add.split(' '))).expect("veth");
    (host, g, h)
}

/// Creates the bridge `br0` in `ns` with `addr`/24, up.
pub fn bridge(ns: &Netns, addr: Ipv4Addr) {
    ns.ip(&["link", "add", "br0", "type", "bridge"])
        .expect("bridge");
    ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", "br0"])
        .expect("bridge address");
    ns.ip(&["link", "set", "br0", "up"]).expect("bridge up");
}

/// A veth pair from the bridge `br0` in `g` to `peer`, which gets `addr`/24. Device
/// names must be unique on the host (both ends are created in the root namespace's
/// name space first).
pub fn link(g: &Netns, g_dev: &str, peer: &Netns, peer_dev: &str, addr: Ipv4Addr) {
    let add = format!(
        "link add {g_dev} netns {} type veth peer name {peer_dev} netns {}",
        g.name(),
        peer.name()
    );
    run_checked(std::process::Command::new("ip").args(add.split(' '))).expect("veth");
    g.ip(&["link", "set", g_dev, "master", "br0", "up"])
        .expect("enslave");
    peer.ip(&["addr", "add", &format!("{addr}/24"), "dev", peer_dev])
        .expect("addr");
    peer.ip(&["link", "set", peer_dev, "up"]).expect("up");
}
