//! What ALE_USER_ID and ALE_APP_ID cost per connection: the lookups palisaded makes, once
//! per new flow, where a filter at an ALE layer tests those fields (sys/sock_diag.rs).
//!
//! Ids:
//! - `owner/tcp-listener`: `SockDiag::owner` finding a TCP listener on 127.0.0.1 by the
//!   flow a connection to it would be (one netlink request and answer);
//! - `owner/none`: the same for a port nobody holds (the kernel's ENOENT);
//! - `program/scan`: `program_of_socket`, every process's open files read until the
//!   listener's turns up (what a socket never seen before costs at worst);
//! - `program/remembered`: `ProgramFinder::program` for the same socket again (every
//!   connection to a listener after the first);
//! - `groups`: `groups_of(0)`, the user database (once per user, then cached).
//!
//! The scan's cost grows with the processes and open files on the host: the bench prints
//! how many there were.

use std::hint::black_box;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::MetadataExt;

use criterion::{Criterion, criterion_group, criterion_main};
use palisaded::sys::SockDiag;
use palisaded::sys::sock_diag::{ProgramFinder, groups_of, program_of_socket};

fn bench(c: &mut Criterion) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    let local = listener.local_addr().expect("address");
    let remote: SocketAddr = "127.0.0.1:40000".parse().expect("address");
    let free: SocketAddr = {
        let l = TcpListener::bind("127.0.0.1:0").expect("another");
        l.local_addr().expect("address")
    };
    let mut diag = SockDiag::open().expect("NETLINK_SOCK_DIAG");
    let owner = diag
        .owner(6, local, remote)
        .expect("lookup")
        .expect("the listener");
    let processes = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .count();
    let fds: usize = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| std::fs::read_dir(e.path().join("fd")).ok())
        .map(|d| d.count())
        .sum();
    println!(
        "socket_owners: {processes} processes, {fds} open files readable; the listener is inode {} of uid {} (file uid {})",
        owner.inode,
        owner.uid,
        std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(0)
    );

    c.bench_function("owner/tcp-listener", |b| {
        b.iter(|| diag.owner(6, black_box(local), black_box(remote)))
    });
    c.bench_function("owner/none", |b| {
        b.iter(|| diag.owner(6, black_box(free), black_box(remote)))
    });
    c.bench_function("program/scan", |b| {
        b.iter(|| program_of_socket(black_box(owner.inode)))
    });
    let mut finder = ProgramFinder::default();
    assert!(finder.program(owner).is_some());
    c.bench_function("program/remembered", |b| {
        b.iter(|| finder.program(black_box(owner)))
    });
    c.bench_function("groups", |b| b.iter(|| groups_of(black_box(0))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
