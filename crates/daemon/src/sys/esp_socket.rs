//! Raw ESP (IP protocol 50) for a kernel without ESP modules: the kernel hands every
//! ESP packet addressed to this host to raw sockets, and sends whole IP packets we build.
//!
//! Two sockets, because one cannot do both well: an `IPPROTO_ESP` raw socket receives
//! ESP with its IPv4 header (the SAD needs the outer addresses), while sending through it
//! would make the kernel prepend its own header; an `IPPROTO_RAW` socket (which implies
//! `IP_HDRINCL`) sends the packet exactly as built, so the same socket also re-sends
//! clear packets the policy lets through, whatever their protocol. `IPPROTO_RAW` sockets
//! never receive. Both carry the mark, so what we send skips the policy rule that would
//! route it back into the TUN.
//!
//! IPv4 only: IPv6 raw sockets hand over the payload without the IPv6 header, which
//! would have to be rebuilt from `IPV6_RECVPKTINFO`; not done yet.

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, BorrowedFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::error::io_context;

/// IANA protocol number of ESP (RFC 4303).
const IPPROTO_ESP: i32 = 50;
/// `IPPROTO_RAW`: send-only, header included.
const IPPROTO_RAW: i32 = 255;

/// The raw ESP receive socket and the raw IP send socket, both marked.
#[derive(Debug)]
pub struct EspSocket {
    rx: Socket,
    tx: Socket,
}

impl EspSocket {
    /// Opens both sockets, each with `SO_MARK` = `mark` (normally [`super::FWMARK`]).
    pub fn open(mark: u32) -> io::Result<EspSocket> {
        let rx = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_ESP))).map_err(
            io_context("socket(AF_INET, SOCK_RAW, IPPROTO_ESP)", "ESP receive"),
        )?;
        rx.set_mark(mark)
            .map_err(io_context("setsockopt(SO_MARK)", "ESP receive socket"))?;
        let tx = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_RAW))).map_err(
            io_context("socket(AF_INET, SOCK_RAW, IPPROTO_RAW)", "IP send"),
        )?;
        tx.set_mark(mark)
            .map_err(io_context("setsockopt(SO_MARK)", "IP send socket"))?;
        // Implied by IPPROTO_RAW; said explicitly so that the socket does not depend on it.
        tx.set_header_included_v4(true)
            .map_err(io_context("setsockopt(IP_HDRINCL)", "IP send socket"))?;
        Ok(EspSocket { rx, tx })
    }

    /// Receives one ESP packet, IPv4 header included.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.rx).read(buf)
    }

    /// Sends one whole IPv4 packet (ESP or any other), to the destination in its header.
    /// The kernel fills in the header checksum, the total length and a zero ID.
    pub fn send(&self, packet: &[u8]) -> io::Result<usize> {
        let dst = ipv4_destination(packet)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an IPv4 packet"))?;
        self.tx
            .send_to(packet, &SockAddr::from(SocketAddrV4::new(dst, 0)))
    }

    /// Nonblocking receive, for a loop that polls the receive side through [`AsFd`].
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.rx
            .set_nonblocking(nonblocking)
            .map_err(io_context("fcntl(O_NONBLOCK)", "ESP receive socket"))
    }

    /// Another handle on the same two sockets, for a second thread.
    pub fn try_clone(&self) -> io::Result<EspSocket> {
        Ok(EspSocket {
            rx: self.rx.try_clone()?,
            tx: self.tx.try_clone()?,
        })
    }
}

/// The receive side, for poll(2).
impl AsFd for EspSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.rx.as_fd()
    }
}

fn ipv4_destination(packet: &[u8]) -> Option<Ipv4Addr> {
    let version = packet.first()? >> 4;
    let dst: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
    (version == 4).then_some(Ipv4Addr::from(dst))
}
