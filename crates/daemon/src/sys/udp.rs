//! The UDP sockets of IKE (port 500) and of IKE plus ESP in UDP (port 4500, RFC 3948).
//!
//! Bound to the wildcard address so one socket serves every local address, with
//! `IP_PKTINFO`: each received datagram says which local address it was sent to, and
//! each reply is sent from the address the peer used (an IKE SA is bound to that pair,
//! and a peer drops a reply from another address). Marked, so that IKE and ESP in UDP
//! to a protected peer skip the rule that routes protected traffic into the TUN.
//!
//! IPv4 only for now; an IPv6 twin needs `IPV6_RECVPKTINFO` the same way.

use std::cell::RefCell;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::libc;
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, recvmsg, sendmsg, setsockopt,
    sockopt,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::error::io_context;

thread_local! {
    /// Room for the `IP_PKTINFO` control message, per thread so that `recv` neither
    /// allocates nor needs `&mut self`; a heap buffer is aligned for `cmsghdr`, which a
    /// byte array on the stack need not be.
    static CMSG: RefCell<Vec<u8>> = RefCell::new(nix::cmsg_space!(libc::in_pktinfo));
}

/// A marked UDP socket on `0.0.0.0:port` that reports and chooses local addresses.
#[derive(Debug)]
pub struct IkeSocket {
    socket: UdpSocket,
    port: u16,
}

impl IkeSocket {
    /// Binds `0.0.0.0:port` with `SO_MARK` = `mark` and `IP_PKTINFO` on.
    pub fn bind(port: u16, mark: u32) -> io::Result<IkeSocket> {
        let what = format!("UDP port {port}");
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
            .map_err(io_context("socket(AF_INET, SOCK_DGRAM)", &what))?;
        socket
            .set_mark(mark)
            .map_err(io_context("setsockopt(SO_MARK)", &what))?;
        setsockopt(&socket, sockopt::Ipv4PacketInfo, &true)
            .map_err(|e| io_context("setsockopt(IP_PKTINFO)", &what)(e.into()))?;
        let local = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
        socket
            .bind(&SockAddr::from(local))
            .map_err(io_context("bind", &what))?;
        let socket = UdpSocket::from(socket);
        // Port 0 asks the kernel for one (tests); the driver needs the real number.
        let port = socket.local_addr()?.port();
        Ok(IkeSocket { socket, port })
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
            let msg = recvmsg::<SockaddrIn>(
                self.socket.as_raw_fd(),
                &mut iov,
                Some(cmsg.as_mut_slice()),
                MsgFlags::empty(),
            )?;
            if msg.flags.contains(MsgFlags::MSG_TRUNC) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("UDP datagram on port {} longer than the buffer", self.port),
                ));
            }
            let remote = msg
                .address
                .map(|a| SocketAddr::from(SocketAddrV4::new(a.ip(), a.port())))
                .ok_or_else(|| io::Error::other("recvmsg gave no source address"))?;
            let local = msg
                .cmsgs()?
                .find_map(|c| match c {
                    ControlMessageOwned::Ipv4PacketInfo(info) => {
                        Some(Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr)))
                    }
                    _ => None,
                })
                .ok_or_else(|| io::Error::other("recvmsg gave no IP_PKTINFO"))?;
            Ok((msg.bytes, remote, SocketAddr::from((local, self.port))))
        })
    }

    /// Sends `bytes` to `remote` from the local address `local` (its port must be this
    /// socket's, or 0); an unspecified `local` lets the kernel choose.
    pub fn send(&self, bytes: &[u8], local: SocketAddr, remote: SocketAddr) -> io::Result<usize> {
        let (SocketAddr::V4(local), SocketAddr::V4(remote)) = (local, remote) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the IKE socket is IPv4 only",
            ));
        };
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
        let info = libc::in_pktinfo {
            ipi_ifindex: 0,
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from(*local.ip()).to_be(),
            },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        let cmsgs = [ControlMessage::Ipv4PacketInfo(&info)];
        let cmsgs: &[ControlMessage] = if local.ip().is_unspecified() {
            &[]
        } else {
            &cmsgs
        };
        let sent = sendmsg(
            self.socket.as_raw_fd(),
            &[IoSlice::new(bytes)],
            cmsgs,
            MsgFlags::empty(),
            Some(&SockaddrIn::from(remote)),
        )?;
        Ok(sent)
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
        })
    }
}

impl AsFd for IkeSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}
