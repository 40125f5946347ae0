//! Socket owners from the kernel (sys/sock_diag.rs), in a namespace of the test's own:
//! a listener and a bound UDP socket of another user, found by the flows that would
//! reach them, with the program that holds them; a port nobody holds finds nothing. The
//! callouts' lookup (socket_owners.rs) hands a search that outlasts its budget to the
//! searching thread and says so until the answer is there.
//! Root only (namespaces, a process of another user).

#[path = "../../../tests/support/netns.rs"]
mod netns;
mod sys_common;

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netns::{VethPair, root_or_skip};
use palisade_filter::Family;
use palisaded::ipsec_callout::{Flow, SocketOwners};
use palisaded::socket_owners::{KernelSocketOwners, Searches};
use palisaded::sys::sock_diag::{ProgramFinder, groups_of, program_of_socket};
use palisaded::sys::{SockDiag, SocketOwner};
use sys_common::{V6_A, V6_B};

const NOBODY: u32 = 65_534;

/// A python3 of user `nobody` inside `pair.a` holding a TCP listener and a UDP socket,
/// killed on drop.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sockets_are_found_with_their_owner_and_program() {
    if !root_or_skip("sockets_are_found_with_their_owner_and_program") {
        return;
    }
    // The system's python3: a user's (pyenv under /root) is not open to `nobody`.
    let python = std::path::PathBuf::from("/usr/bin/python3");
    if !python.exists() {
        eprintln!("skipped: /usr/bin/python3 not installed");
        return;
    }
    let pair = VethPair::new().expect("namespaces");
    let a = VethPair::ADDR_A;
    sys_common::enable_ipv6(&pair.a, V6_A);
    // Also a dual-stack listener on [::], as many servers bind: IPv4 connections reach
    // it too.
    let script = format!(
        "import socket,sys,time\n\
         t=socket.socket(); t.bind(('{a}',7001)); t.listen()\n\
         u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.bind(('0.0.0.0',7002))\n\
         d=socket.socket(socket.AF_INET6); d.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,0)\n\
         d.bind(('::',7004)); d.listen()\n\
         print('ready',flush=True); time.sleep(60)\n"
    );
    let mut child = pair
        .a
        .command("setpriv")
        .args([
            "--reuid",
            &NOBODY.to_string(),
            "--regid",
            &NOBODY.to_string(),
            "--clear-groups",
        ])
        .arg(&python)
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 as nobody");
    let mut out = child.stdout.take().expect("stdout");
    let holder = Holder(child);
    let mut line = [0u8; 6];
    std::io::Read::read_exact(&mut out, &mut line).expect("ready line");
    assert_eq!(&line, b"ready\n");

    let found = pair
        .a
        .run(|| {
            let mut diag = SockDiag::open().expect("sock_diag");
            let local = |port| SocketAddr::from((a, port));
            let peer = SocketAddr::from((VethPair::ADDR_B, 40_000));
            let v6 = |port| SocketAddr::from((V6_A, port));
            let peer6 = SocketAddr::from((V6_B, 40_000));
            (
                diag.owner(6, local(7001), peer).expect("tcp lookup"),
                diag.owner(17, local(7002), peer).expect("udp lookup"),
                diag.owner(6, local(7003), peer).expect("free port"),
                diag.owner(1, local(7001), peer).expect("not tcp or udp"),
                diag.owner(6, v6(7004), peer6).expect("tcp over IPv6"),
                diag.owner(6, local(7004), peer)
                    .expect("IPv4 to a dual-stack listener"),
                diag.owner(6, local(7004), peer6).expect("mixed families"),
            )
        })
        .expect("in the namespace");
    let (tcp, udp, free, icmp, dual6, dual4, mixed) = found;
    let dual6 = dual6.expect("the dual-stack listener over IPv6");
    assert_eq!(dual4, Some(dual6), "the same socket over IPv4");
    assert_eq!(dual6.uid, NOBODY);
    assert_eq!(mixed, None);
    let tcp = tcp.expect("the listener");
    let udp = udp.expect("the UDP socket");
    assert_eq!((tcp.uid, udp.uid), (NOBODY, NOBODY));
    assert_ne!(tcp.inode, udp.inode);
    assert_eq!(free, None);
    assert_eq!(icmp, None);

    // /proc names the program behind each socket: python3, whatever it links to.
    let python = std::fs::canonicalize(&python).expect("python3's real path");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let program = program_of_socket(tcp.inode);
        if program.as_deref() == Some(python.as_path()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "program of the listener: {program:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        program_of_socket(udp.inode).as_deref(),
        Some(python.as_path())
    );
    // The data path's finder: the same answers (the second socket of the same process
    // found among the recent processes first), and a socket's program remembered, as a
    // listener's is for every connection it accepts.
    let mut finder = ProgramFinder::default();
    assert_eq!(finder.program(tcp).as_deref(), Some(python.as_path()));
    assert_eq!(finder.program(udp).as_deref(), Some(python.as_path()));

    // The callouts' lookup with no time to search: the program is pending (and the
    // search handed over) until the searching thread has it; with time, found at once.
    let python_text = python.to_string_lossy().into_owned();
    let (first, later, waited, patient) = pair
        .a
        .run(|| {
            let flow = |protocol, port| Flow {
                family: Family::V4,
                local: IpAddr::V4(a),
                remote: IpAddr::V4(VethPair::ADDR_B),
                protocol,
                local_port: port,
                remote_port: 40_000,
                tcp_syn: protocol == 6,
                later_fragment: false,
            };
            let searches = Searches::new();
            let mut hurried = KernelSocketOwners::open(Arc::clone(&searches), Duration::ZERO);
            let first = hurried.lookup(&flow(6, 7001), true);
            let started = Instant::now();
            let mut later = hurried.lookup(&flow(6, 7001), true);
            while later.as_ref().is_some_and(|o| o.pending)
                && started.elapsed() < Duration::from_secs(5)
            {
                std::thread::sleep(Duration::from_millis(10));
                later = hurried.lookup(&flow(6, 7001), true);
            }
            let mut patient = KernelSocketOwners::open(Searches::new(), Duration::from_secs(5));
            (
                first,
                later,
                started.elapsed(),
                patient.lookup(&flow(17, 7002), true),
            )
        })
        .expect("in the namespace");
    let first = first.expect("the listener's owner");
    assert_eq!((first.uid, first.pending), (NOBODY, true));
    assert_eq!(first.program, None);
    let later = later.expect("the listener's owner");
    assert!(!later.pending, "still pending after {waited:?}");
    assert_eq!(later.program.as_deref(), Some(python_text.as_str()));
    let patient = patient.expect("the UDP socket's owner");
    assert_eq!(
        (patient.program.as_deref(), patient.pending),
        (Some(python_text.as_str()), false)
    );
    drop(holder);
    assert_eq!(program_of_socket(tcp.inode), None, "gone with its process");
    assert_eq!(finder.program(tcp).as_deref(), Some(python.as_path()));
    let unknown = SocketOwner {
        uid: NOBODY,
        inode: u32::MAX,
    };
    assert_eq!(finder.program(unknown), None);

    assert!(groups_of(0).contains(&0), "root's groups");
    assert_eq!(
        groups_of(NOBODY).first(),
        Some(&65_534),
        "nobody's primary group"
    );
    assert!(
        groups_of(4_000_000_000).is_empty(),
        "a user the database does not know"
    );
}
