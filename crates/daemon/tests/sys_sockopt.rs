//! The link MTU towards a peer (`sys::sockopt::path_mtu`): the MTU of the route that a
//! packet with the data plane's mark takes, for IPv4 and IPv6, as the kernel states it.
//! Root only (network namespaces); skipped otherwise.

#[path = "../../../tests/support/netns.rs"]
mod netns;
mod sys_common;

use std::net::IpAddr;

use netns::{VethPair, root_or_skip};
use palisaded::sys::FWMARK;
use palisaded::sys::sockopt::path_mtu;
use sys_common::{V6_A, V6_B, enable_ipv6};

#[test]
fn path_mtu_is_the_route_s_and_the_device_s() {
    if !root_or_skip("path_mtu_is_the_route_s_and_the_device_s") {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    enable_ipv6(&pair.a, V6_A);
    enable_ipv6(&pair.b, V6_B);
    let mtu = |peer: IpAddr| {
        pair.a
            .run(|| path_mtu(peer, FWMARK))
            .expect("namespace")
            .expect("path MTU")
    };
    // The veth's own MTU.
    assert_eq!(mtu(VethPair::ADDR_B.into()), 1500);
    assert_eq!(mtu(V6_B.into()), 1500);
    // A route of its own MTU towards one peer, as a narrower link would have.
    pair.a
        .ip(&[
            "route",
            "add",
            "192.0.2.7/32",
            "via",
            &VethPair::ADDR_B.to_string(),
            "mtu",
            "1280",
        ])
        .expect("route");
    assert_eq!(mtu("192.0.2.7".parse().expect("address")), 1280);
    pair.a
        .ip(&[
            "-6",
            "route",
            "add",
            "2001:db8::7/128",
            "via",
            &V6_B.to_string(),
            "mtu",
            "1300",
        ])
        .expect("route");
    assert_eq!(mtu("2001:db8::7".parse().expect("address")), 1300);
    // The device's MTU when it is the narrower.
    let links = pair
        .a
        .ip(&["-o", "link", "show", "type", "veth"])
        .expect("ip link");
    let dev = links
        .split(':')
        .nth(1)
        .and_then(|s| s.trim().split('@').next())
        .expect("a's veth");
    pair.a
        .ip(&["link", "set", dev, "mtu", "1400"])
        .expect("mtu");
    assert_eq!(mtu(VethPair::ADDR_B.into()), 1400);
}
