//! The UDP sockets of IKE (port 500) and of IKE plus ESP in UDP (port 4500, RFC 3948).
//!
//! Bound to the wildcard address so one socket serves every local address, with
//! `IP_PKTINFO` (`IPV6_RECVPKTINFO`): each received datagram says which local address it
//! was sent to, and each reply is sent from the address the peer used (an IKE SA is
//! bound to that pair, and a peer drops a reply from another address). Marked, so that
//! IKE and ESP in UDP to a protected peer skip the rule that routes protected traffic
//! into the TUN. One socket per family: the IPv6 one is `IPV6_V6ONLY`, so both can bind
//! the same port and IPv4 never shows up as mapped addresses.

use std::cell::RefCell;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::libc;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, MultiHeaders, RecvMsg, SockaddrIn, SockaddrIn6, SockaddrLike,
    recvmmsg, recvmsg, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::error::io_context;

mod offload;

pub use offload::{MAX_PAYLOAD, MAX_SEGMENTS};

thread_local! {
    /// Room for the packet-info control message of either family, per thread so that
    /// `recv` neither allocates nor needs `&mut self`; a heap buffer is aligned for
    /// `cmsghdr`, which a byte array on the stack need not be.
    static CMSG: RefCell<Vec<u8>> = RefCell::new(nix::cmsg_space!(libc::in6_pktinfo));
}

/// A marked UDP socket on `0.0.0.0:port` or `[::]:port` that reports and chooses local
/// addresses.
#[derive(Debug)]
pub struct IkeSocket {
    socket: UdpSocket,
    port: u16,
    v6: bool,
}

impl IkeSocket {
    /// Binds `0.0.0.0:port` with `SO_MARK` = `mark` and `IP_PKTINFO` on. Port 0 asks the
    /// kernel for one ([`IkeSocket::port`] says which).
    pub fn bind(port: u16, mark: u32) -> io::Result<IkeSocket> {
        let what = format!("UDP port {port}");
        let socket = IkeSocket::socket_v4(&what)?;
        let local = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
        IkeSocket::finish(socket, mark, local.into(), &what, false)
    }

    /// The unbound IPv4 socket of [`IkeSocket::bind`], with `IP_PKTINFO` on.
    fn socket_v4(what: &str) -> io::Result<Socket> {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
            .map_err(io_context("socket(AF_INET, SOCK_DGRAM)", what))?;
        setsockopt(&socket, sockopt::Ipv4PacketInfo, &true)
            .map_err(|e| io_context("setsockopt(IP_PKTINFO)", what)(e.into()))?;
        Ok(socket)
    }

    /// Binds `[::]:port`, IPv6 only, with `SO_MARK` = `mark` and `IPV6_RECVPKTINFO` on.
    pub fn bind_v6(port: u16, mark: u32) -> io::Result<IkeSocket> {
        let what = format!("UDP port {port} (IPv6)");
        let socket = IkeSocket::socket_v6(&what)?;
        let local = SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0);
        IkeSocket::finish(socket, mark, local.into(), &what, true)
    }

    /// The unbound IPv6 socket of [`IkeSocket::bind_v6`]: IPv6 only, `IPV6_RECVPKTINFO` on.
    fn socket_v6(what: &str) -> io::Result<Socket> {
        let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))
            .map_err(io_context("socket(AF_INET6, SOCK_DGRAM)", what))?;
        socket
            .set_only_v6(true)
            .map_err(io_context("setsockopt(IPV6_V6ONLY)", what))?;
        setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)
            .map_err(|e| io_context("setsockopt(IPV6_RECVPKTINFO)", what)(e.into()))?;
        Ok(socket)
    }

    /// `workers` sockets on `0.0.0.0:port`, each as [`IkeSocket::bind`] makes it, in one
    /// `SO_REUSEPORT` group whose classic BPF program ([`super::shard::reuseport_program`])
    /// hands each datagram to socket `shard_of(source, workers)` ([`super::shard_of`]):
    /// socket `i` of the result is worker `i`'s. Port 0: the first socket gets a port
    /// from the kernel and the others join it. One worker (or none): `[bind(port, mark)]`,
    /// without `SO_REUSEPORT`.
    ///
    /// The program returns an index into the group, whose order is the order the
    /// sockets joined it, i.e. were bound (`__reuseport_add_sock` appends); so the
    /// sockets are bound in worker order here. If a socket of the group is closed, the
    /// kernel moves the last one into its slot and indices shift: the group is meant to
    /// live and die as a whole. Sockets of another process (same user, `SO_REUSEPORT`)
    /// binding the same port would join the group too; a plain [`IkeSocket::bind`] of the
    /// port fails instead (`EADDRINUSE`).
    ///
    /// An index the group does not have is no error: the kernel (net/core/sock_reuseport.c)
    /// has `run_bpf_filter` return no socket when `index >= socks`, and
    /// `reuseport_select_sock` then falls back to its hash of the 4-tuple ("no bpf or
    /// invalid bpf result: fall back to hash usage"). That happens only while the group
    /// is being built: the program is attached to the first socket before its `bind`
    /// (allowed for an unbound `SO_REUSEPORT` socket: `reuseport_attach_prog` makes its
    /// group then), so from the first bind on each datagram goes to its owner if that
    /// socket is bound already, and by hash to one that is otherwise. Datagrams that
    /// arrive during those few system calls may reach another worker's socket. Having
    /// its group before `bind`, the first socket never joins one that already holds the
    /// port (the kernel counts that as a conflict): while an older group lingers, this
    /// fails with `EADDRINUSE` instead of mixing the two (seen in `tests/sys_shard.rs`).
    pub fn bind_sharded(port: u16, mark: u32, workers: usize) -> io::Result<Vec<IkeSocket>> {
        IkeSocket::sharded(port, mark, workers, false)
    }

    /// [`IkeSocket::bind_sharded`] on `[::]:port` (IPv6 only, as [`IkeSocket::bind_v6`]);
    /// the program reads the last word of the IPv6 source address. A separate group from
    /// the IPv4 one on the same port.
    pub fn bind_v6_sharded(port: u16, mark: u32, workers: usize) -> io::Result<Vec<IkeSocket>> {
        IkeSocket::sharded(port, mark, workers, true)
    }

    fn sharded(port: u16, mark: u32, workers: usize, v6: bool) -> io::Result<Vec<IkeSocket>> {
        let Some(mut program) = super::shard::reuseport_program(v6, workers) else {
            let one = if v6 {
                IkeSocket::bind_v6(port, mark)?
            } else {
                IkeSocket::bind(port, mark)?
            };
            return Ok(vec![one]);
        };
        let mut sockets: Vec<IkeSocket> = Vec::with_capacity(workers);
        let mut port = port;
        for i in 0..workers {
            let what = format!(
                "UDP port {port}{}, socket {i} of {workers}",
                if v6 { " (IPv6)" } else { "" }
            );
            let socket = if v6 {
                IkeSocket::socket_v6(&what)?
            } else {
                IkeSocket::socket_v4(&what)?
            };
            socket
                .set_reuse_port(true)
                .map_err(io_context("setsockopt(SO_REUSEPORT)", &what))?;
            if i == 0 {
                // The kernel copies the program during the call; `program` outlives it.
                let fprog = libc::sock_fprog {
                    len: program.len() as u16,
                    filter: program.as_mut_ptr(),
                };
                setsockopt(&socket, sockopt::AttachReusePortCbpf, &fprog).map_err(|e| {
                    io_context("setsockopt(SO_ATTACH_REUSEPORT_CBPF)", &what)(e.into())
                })?;
            }
            let local = if v6 {
                SocketAddr::from(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0))
            } else {
                SocketAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
            };
            let bound = IkeSocket::finish(socket, mark, local, &what, v6)?;
            port = bound.port;
            sockets.push(bound);
        }
        Ok(sockets)
    }

    fn finish(
        socket: Socket,
        mark: u32,
        local: SocketAddr,
        what: &str,
        v6: bool,
    ) -> io::Result<IkeSocket> {
        socket
            .set_mark(mark)
            .map_err(io_context("setsockopt(SO_MARK)", what))?;
        socket
            .bind(&SockAddr::from(local))
            .map_err(io_context("bind", what))?;
        let socket = UdpSocket::from(socket);
        let port = socket.local_addr()?.port();
        Ok(IkeSocket { socket, port, v6 })
    }

    /// The port bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Receives one datagram: its length, the remote address and the local address it
    /// was sent to. A datagram longer than `buf` is an error, not silently cut.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, SocketAddr)> {
        CMSG.with_borrow_mut(|cmsg| {
            let mut iov = [IoSliceMut::new(buf)];
            let (n, remote, local) = if self.v6 {
                let msg = self.recvmsg::<SockaddrIn6>(&mut iov, cmsg)?;
                let remote = msg.address.map(|a| {
                    SocketAddr::from(SocketAddrV6::new(a.ip(), a.port(), 0, a.scope_id()))
                });
                let local = msg.cmsgs()?.find_map(|c| match c {
                    ControlMessageOwned::Ipv6PacketInfo(info) => {
                        Some(Ipv6Addr::from(info.ipi6_addr.s6_addr).into())
                    }
                    _ => None,
                });
                (msg.bytes, remote, local)
            } else {
                let msg = self.recvmsg::<SockaddrIn>(&mut iov, cmsg)?;
                let remote = msg
                    .address
                    .map(|a| SocketAddr::from(SocketAddrV4::new(a.ip(), a.port())));
                let local = msg.cmsgs()?.find_map(|c| match c {
                    ControlMessageOwned::Ipv4PacketInfo(info) => {
                        Some(Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr)).into())
                    }
                    _ => None,
                });
                (msg.bytes, remote, local)
            };
            let remote =
                remote.ok_or_else(|| io::Error::other("recvmsg gave no source address"))?;
            let local: std::net::IpAddr =
                local.ok_or_else(|| io::Error::other("recvmsg gave no packet info"))?;
            Ok((n, remote, SocketAddr::from((local, self.port))))
        })
    }

    fn recvmsg<'a, S: SockaddrLike + 'a>(
        &self,
        iov: &'a mut [IoSliceMut<'_>],
        cmsg: &'a mut [u8],
    ) -> io::Result<RecvMsg<'a, 'a, S>> {
        let msg = recvmsg::<S>(self.socket.as_raw_fd(), iov, Some(cmsg), MsgFlags::empty())?;
        if msg.flags.contains(MsgFlags::MSG_TRUNC) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("UDP datagram on port {} longer than the buffer", self.port),
            ));
        }
        Ok(msg)
    }

    /// Sends `bytes` to `remote` from the local address `local` (its port must be this
    /// socket's, or 0); an unspecified `local` lets the kernel choose. Both addresses
    /// must be of the socket's family.
    pub fn send(&self, bytes: &[u8], local: SocketAddr, remote: SocketAddr) -> io::Result<usize> {
        if local.port() != self.port && local.port() != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "local port {} is not this socket's {}",
                    local.port(),
                    self.port
                ),
            ));
        }
        // One segment: a plain datagram (its length need not fit the segment size).
        let size = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        self.send_segments(&[IoSlice::new(bytes)], size, local.ip(), remote)
    }

    /// Nonblocking mode, for a loop that polls.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.socket.set_nonblocking(nonblocking)
    }

    /// Another handle on the same socket (e.g. the keying thread sends while the data
    /// plane receives on 4500).
    pub fn try_clone(&self) -> io::Result<IkeSocket> {
        Ok(IkeSocket {
            socket: self.socket.try_clone()?,
            port: self.port,
            v6: self.v6,
        })
    }
}

/// The `mmsghdr` arrays (with room for each datagram's packet info and GRO segment
/// size) of [`IkeSocket::recv_batch`].
///
/// Made anew after each receive that used them: nix's `recvmmsg` does not reset each
/// header's control length, which the kernel lowers to what a datagram's messages took,
/// so a later datagram with one more message (packet info alone, then packet info and a
/// GRO segment size) would find its control buffer cut (`MSG_CTRUNC`) and lose its packet
/// info. A few small allocations per system call, none per datagram.
#[derive(Debug)]
pub struct UdpBatch {
    v4: MultiHeaders<SockaddrIn>,
    v6: MultiHeaders<SockaddrIn6>,
    capacity: usize,
}

impl UdpBatch {
    /// Room for `capacity` datagrams per system call.
    pub fn new(capacity: usize) -> UdpBatch {
        let capacity = capacity.max(1);
        UdpBatch {
            v4: MultiHeaders::preallocate(capacity, Self::cmsg()),
            v6: MultiHeaders::preallocate(capacity, Self::cmsg()),
            capacity,
        }
    }

    /// Packet info of either family, and the segment size of a datagram UDP GRO coalesced.
    fn cmsg() -> Option<Vec<u8>> {
        Some(nix::cmsg_space!(libc::in6_pktinfo, libc::c_int))
    }

    /// Restores the control lengths the last receive lowered (see the type's comment).
    fn renew(&mut self, v6: bool) {
        if v6 {
            self.v6 = MultiHeaders::preallocate(self.capacity, Self::cmsg());
        } else {
            self.v4 = MultiHeaders::preallocate(self.capacity, Self::cmsg());
        }
    }
}

/// One datagram of a batch: its length, the remote address and the local address it
/// was sent to; with UDP GRO on (see `udp_offload.rs`), several datagrams of one flow
/// coalesced, each `segment` bytes long but the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    /// Bytes received.
    pub len: usize,
    /// The sender.
    pub remote: SocketAddr,
    /// The local address and port it was sent to.
    pub local: SocketAddr,
    /// Length of each coalesced datagram (the last may be shorter); `len` when the
    /// kernel coalesced nothing.
    pub segment: usize,
}

impl Datagram {
    /// Where each original datagram lies in the bytes received.
    pub fn segments(&self) -> impl Iterator<Item = std::ops::Range<usize>> + use<> {
        let (len, step) = (self.len, self.segment.max(1));
        (0..len).step_by(step).map(move |at| at..len.min(at + step))
    }
}

impl IkeSocket {
    /// Receives up to `bufs.len()` datagrams with one `recvmmsg(2)`, datagram `i` into
    /// `bufs[i][offset..]`; `got[i]` says what came, or `None` for a datagram longer than
    /// its buffer (refused, not cut) or without packet info. Returns how many slots were
    /// used; `WouldBlock` when there was nothing.
    pub fn recv_batch<B: AsMut<[u8]>>(
        &self,
        batch: &mut UdpBatch,
        bufs: &mut [B],
        offset: usize,
        got: &mut [Option<Datagram>],
    ) -> io::Result<usize> {
        let max = bufs.len().min(got.len()).min(batch.capacity);
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> = Vec::with_capacity(max);
        for b in bufs[..max].iter_mut() {
            let b = b.as_mut().get_mut(offset..).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "offset beyond the buffer")
            })?;
            iovs.push([IoSliceMut::new(b)]);
        }
        let fd = self.socket.as_raw_fd();
        let mut n = 0;
        if self.v6 {
            let results = recvmmsg(fd, &mut batch.v6, iovs.iter_mut(), MsgFlags::empty(), None)?;
            for (i, msg) in results.enumerate() {
                let remote = msg.address.map(|a| {
                    SocketAddr::from(SocketAddrV6::new(a.ip(), a.port(), 0, a.scope_id()))
                });
                let (mut local, mut segment) = (None, None);
                for c in msg.cmsgs().into_iter().flatten() {
                    match c {
                        ControlMessageOwned::Ipv6PacketInfo(info) => {
                            local = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr).into());
                        }
                        ControlMessageOwned::UdpGroSegments(s) => segment = Some(s),
                        _ => {}
                    }
                }
                got[i] = self.datagram(msg.bytes, msg.flags, remote, local, segment);
                n = i + 1;
            }
        } else {
            let results = recvmmsg(fd, &mut batch.v4, iovs.iter_mut(), MsgFlags::empty(), None)?;
            for (i, msg) in results.enumerate() {
                let remote = msg
                    .address
                    .map(|a| SocketAddr::from(SocketAddrV4::new(a.ip(), a.port())));
                let (mut local, mut segment) = (None, None);
                for c in msg.cmsgs().into_iter().flatten() {
                    match c {
                        ControlMessageOwned::Ipv4PacketInfo(info) => {
                            local = Some(Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr)).into());
                        }
                        ControlMessageOwned::UdpGroSegments(s) => segment = Some(s),
                        _ => {}
                    }
                }
                got[i] = self.datagram(msg.bytes, msg.flags, remote, local, segment);
                n = i + 1;
            }
        }
        batch.renew(self.v6);
        Ok(n)
    }

    fn datagram(
        &self,
        bytes: usize,
        flags: MsgFlags,
        remote: Option<SocketAddr>,
        local: Option<std::net::IpAddr>,
        segment: Option<i32>,
    ) -> Option<Datagram> {
        if flags.contains(MsgFlags::MSG_TRUNC) {
            return None;
        }
        let segment = segment
            .and_then(|s| usize::try_from(s).ok())
            .filter(|s| *s > 0)
            .map_or(bytes, |s| s.min(bytes));
        Some(Datagram {
            len: bytes,
            remote: remote?,
            local: SocketAddr::from((local?, self.port)),
            segment,
        })
    }
}

impl AsFd for IkeSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}
