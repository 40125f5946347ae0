//! Palisade to strongSwan (charon with kernel-libipsec, the reference peer) in tunnel
//! mode with ESP in UDP, each side initiating; ping and a TCP transfer, and a CHILD_SA
//! rekey in the middle of a transfer that must not stall it; UDP datagrams longer than
//! the MTU both ways. Root only; skipped
//! otherwise (and without charon, which the test command installs).

#[path = "../../../tests/support/netns.rs"]
mod netns;
#[path = "../../../tests/support/strongswan.rs"]
mod strongswan;

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::daemon::{Capture, Daemon, charon_suite_policy, veth_of};
use common::echo::{ROUNDS, SIZES, echo_all, echo_server};
use netns::{VethPair, root_or_skip};
use strongswan::{Charon, Config};

const SECRET: &str = "e2e strongswan secret";

/// Host-to-host tunnel mode between the two veth addresses, the suite charon offers.
fn palisade_policy() -> String {
    let (a, b) = (VethPair::ADDR_A, VethPair::ADDR_B);
    charon_suite_policy(
        "e2e-strongswan",
        SECRET,
        &format!(
            r#"name = "charon"
local = "{a}"
remote = "{b}"
action = "require"
mode = "tunnel"
tunnel = {{ local = "{a}", remote = "{b}" }}"#
        ),
    )
}

fn charon_config() -> Config {
    let (a, b) = (IpAddr::V4(VethPair::ADDR_A), IpAddr::V4(VethPair::ADDR_B));
    let mut c = Config::psk(b, a, SECRET);
    // Pretend a NAT: both sides move to port 4500 and ESP goes in UDP (RFC 3948).
    c.extra_connection = "    encap = yes".into();
    c
}

/// Sends `len` bytes over TCP from a to b while `during` runs; returns what arrived.
fn transfer(pair: &VethPair, len: usize, during: impl FnOnce()) -> usize {
    let listen: SocketAddr = (VethPair::ADDR_B, 5201).into();
    let listener = pair
        .b
        .run(|| TcpListener::bind(listen))
        .expect("ns")
        .expect("bind");
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut buf = vec![0u8; 65536];
        let mut got = 0;
        loop {
            match s.read(&mut buf) {
                Ok(0) => return got,
                Ok(n) => got += n,
                Err(e) => panic!("server read: {e} after {got} bytes"),
            }
        }
    });
    let mut client = pair
        .a
        .run(|| TcpStream::connect_timeout(&listen, Duration::from_secs(10)))
        .expect("ns")
        .expect("connect");
    client
        .set_write_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let writer = std::thread::spawn(move || {
        let chunk = vec![0x33u8; 16384];
        let mut sent = 0;
        while sent < len {
            let n = chunk.len().min(len - sent);
            client.write_all(&chunk[..n]).expect("write");
            sent += n;
            // Slow enough that the transfer spans the rekey.
            if sent % (1 << 20) == 0 {
                std::thread::sleep(Duration::from_millis(40));
            }
        }
    });
    during();
    writer.join().expect("writer");
    server.join().expect("server")
}

fn ping(pair_ns: &netns::Netns, to: IpAddr, logs: &dyn Fn() -> String) {
    let out = pair_ns
        .command("ping")
        .args(["-c", "4", "-i", "0.2", "-W", "3", &to.to_string()])
        .output()
        .expect("ping");
    assert!(
        out.status.success(),
        "ping {to} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        logs()
    );
}

#[test]
fn palisade_initiates_to_strongswan_in_udp_and_survives_a_rekey_mid_transfer() {
    if !root_or_skip("palisade_initiates_to_strongswan")
        || !strongswan::available_or_skip("palisade_initiates_to_strongswan")
    {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let charon = Charon::start(&pair.b, &charon_config()).expect("charon");
    let a = Daemon::start(&pair.a, "a", &palisade_policy()).expect("palisaded");
    let capture =
        Capture::start(&pair.a, &veth_of(&pair.a), a.dir().join("wire.pcap")).expect("tcpdump");
    let logs = || {
        format!(
            "--- palisaded ---\n{}\n--- charon ---\n{}",
            a.log(),
            charon.log()
        )
    };
    ping(&pair.a, IpAddr::V4(VethPair::ADDR_B), &logs);
    let sas = a.wait_for_sas("a CHILD_SA in UDP", |s| {
        s.iter().any(|i| i.child_sas.iter().any(|c| c.udp_encap))
    });
    let first = sas[0].child_sas[0].inbound_spi;
    assert_eq!(sas[0].child_sas[0].mode, "tunnel");

    let moved = transfer(&pair, 24 << 20, || {
        std::thread::sleep(Duration::from_millis(300));
        charon
            .swanctl(&["--rekey", "--child", "pal"])
            .unwrap_or_else(|e| panic!("rekey: {e}\n{}", logs()));
    });
    assert_eq!(
        moved,
        24 << 20,
        "the transfer lost bytes across the rekey\n{}",
        logs()
    );
    let sas = a.wait_for_sas("the rekeyed CHILD_SA alone", |s| {
        s.iter()
            .flat_map(|i| &i.child_sas)
            .all(|c| c.inbound_spi != first)
            && s.iter().any(|i| !i.child_sas.is_empty())
    });
    let now = &sas.iter().flat_map(|i| &i.child_sas).next().expect("child");
    assert!(
        now.inbound.packets > 0,
        "nothing arrived on the new SA: {now:?}"
    );

    let lines = capture.finish();
    let (ga, gb) = (VethPair::ADDR_A.to_string(), VethPair::ADDR_B.to_string());
    let between: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(&ga) && l.contains(&gb))
        .collect();
    assert!(
        between.iter().any(|l| l.contains(".4500: UDP-encap: ESP")),
        "no ESP in UDP seen: {:#?}",
        &between[..between.len().min(20)]
    );
    let clear: Vec<&&String> = between
        .iter()
        .filter(|l| !(l.contains(".500: isakmp") || l.contains(".4500: ")))
        .collect();
    assert!(clear.is_empty(), "clear text between the hosts: {clear:#?}");
}

#[test]
fn strongswan_initiates_to_palisade_in_udp() {
    if !root_or_skip("strongswan_initiates_to_palisade")
        || !strongswan::available_or_skip("strongswan_initiates_to_palisade")
    {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let a = Daemon::start(&pair.a, "a", &palisade_policy()).expect("palisaded");
    let charon = Charon::start(&pair.b, &charon_config()).expect("charon");
    let logs = || {
        format!(
            "--- palisaded ---\n{}\n--- charon ---\n{}",
            a.log(),
            charon.log()
        )
    };
    let started = Instant::now();
    charon
        .swanctl(&["--initiate", "--child", "pal", "--timeout", "20"])
        .unwrap_or_else(|e| panic!("initiate: {e}\n{}", logs()));
    let sas = a.wait_for_sas("the CHILD_SA charon negotiated", |s| {
        s.iter()
            .any(|i| i.role == "responder" && i.child_sas.iter().any(|c| c.udp_encap))
    });
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(sas[0].child_sas[0].mode, "tunnel");
    // Traffic both ways on charon's SA: b pings a, and a TCP transfer from a to b.
    ping(&pair.b, IpAddr::V4(VethPair::ADDR_A), &logs);
    assert_eq!(transfer(&pair, 4 << 20, || {}), 4 << 20);
    let sas = a.sas();
    let c = &sas[0].child_sas[0];
    assert!(c.inbound.packets >= 4 && c.outbound.packets >= 4, "{c:?}");
}

/// Datagrams longer than the TUN's MTU, both ways through the tunnel: palisaded puts the
/// fragments its host's stack made back together and sends each datagram as one ESP
/// packet in UDP, cut to the MTU, which charon's kernel reassembles; charon carries the
/// fragments its host makes one per ESP packet, which palisaded opens one by one and its
/// host's stack reassembles. Every echo must be the datagram sent.
#[test]
fn datagrams_longer_than_the_mtu_cross_to_strongswan_and_back() {
    if !root_or_skip("datagrams_longer_than_the_mtu_cross_to_strongswan")
        || !strongswan::available_or_skip("datagrams_longer_than_the_mtu_cross_to_strongswan")
    {
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let charon = Charon::start(&pair.b, &charon_config()).expect("charon");
    let a = Daemon::start(&pair.a, "a", &palisade_policy()).expect("palisaded");
    let logs = || {
        format!(
            "{:?}\n--- palisaded ---\n{}\n--- charon ---\n{}",
            a.stats(),
            a.log(),
            charon.log()
        )
    };
    let (a_ip, b_ip) = (IpAddr::V4(VethPair::ADDR_A), IpAddr::V4(VethPair::ADDR_B));
    let server = echo_server(&pair.b, SocketAddr::new(b_ip, 5312));
    echo_all(&pair.a, a_ip, SocketAddr::new(b_ip, 5312), &logs);
    drop(server);
    let datagrams = (ROUNDS * SIZES.len()) as u64;
    let s = a.stats();
    assert!(
        s.reassembled >= datagrams && s.fragmented >= datagrams,
        "{s:?}"
    );
    let sas = a.sas();
    let c = &sas[0].child_sas[0];
    assert!(c.udp_encap && c.mode == "tunnel", "{c:?}");
    // Charon's side: one ESP packet per fragment of each echo.
    assert!(c.inbound.packets >= 2 * datagrams, "{c:?}");
}
