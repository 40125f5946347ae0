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
//! IPv6 ([`EspSocket::open_v6`]) differs on receive: an IPv6 raw socket hands over the
//! payload without the IPv6 header, so the header is rebuilt from the source address,
//! `IPV6_PKTINFO` (destination) and `IPV6_HOPLIMIT`. Extension headers the packet had
//! are not rebuilt (the kernel has processed them); flow label and traffic class read
//! as zero.

use std::cell::RefCell;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::libc;
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrIn, SockaddrIn6,
    SockaddrLike, recv, recvmmsg, recvmsg, sendmmsg, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, SockAddr, SockFilter, Socket, Type};

use super::error::io_context;

/// IANA protocol number of ESP (RFC 4303).
const IPPROTO_ESP: i32 = 50;
/// `IPPROTO_RAW`: send-only, header included.
const IPPROTO_RAW: i32 = 255;
/// The fixed IPv6 header (RFC 8200).
const IPV6_HEADER: usize = 40;

thread_local! {
    /// Room for `IPV6_PKTINFO` and `IPV6_HOPLIMIT`, per thread so that `recv` neither
    /// allocates nor needs `&mut self`, and aligned for `cmsghdr` (a heap buffer).
    static CMSG_V6: RefCell<Vec<u8>> =
        RefCell::new(nix::cmsg_space!(libc::in6_pktinfo, libc::c_int));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

/// The raw ESP receive socket and the raw IP send socket, both marked.
#[derive(Debug)]
pub struct EspSocket {
    rx: Socket,
    tx: Socket,
    family: Family,
}

impl EspSocket {
    /// Opens both sockets, each with `SO_MARK` = `mark` (normally [`super::FWMARK`]).
    pub fn open(mark: u32) -> io::Result<EspSocket> {
        let rx = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_ESP))).map_err(
            io_context("socket(AF_INET, SOCK_RAW, IPPROTO_ESP)", "ESP receive"),
        )?;
        rx.set_mark(mark)
            .map_err(io_context("setsockopt(SO_MARK)", "ESP receive socket"))?;
        deep_receive_queue(&rx)?;
        let tx = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_RAW))).map_err(
            io_context("socket(AF_INET, SOCK_RAW, IPPROTO_RAW)", "IP send"),
        )?;
        tx.set_mark(mark)
            .map_err(io_context("setsockopt(SO_MARK)", "IP send socket"))?;
        // Implied by IPPROTO_RAW; said explicitly so that the socket does not depend on it.
        tx.set_header_included_v4(true)
            .map_err(io_context("setsockopt(IP_HDRINCL)", "IP send socket"))?;
        Ok(EspSocket {
            rx,
            tx,
            family: Family::V4,
        })
    }

    /// The IPv6 pair: `IPPROTO_ESP` with `IPV6_RECVPKTINFO` and `IPV6_RECVHOPLIMIT` for
    /// receive, `IPPROTO_RAW` with `IPV6_HDRINCL` for send.
    pub fn open_v6(mark: u32) -> io::Result<EspSocket> {
        let what = "IPv6 ESP receive socket";
        let rx = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(IPPROTO_ESP)))
            .map_err(io_context("socket(AF_INET6, SOCK_RAW, IPPROTO_ESP)", what))?;
        rx.set_mark(mark)
            .map_err(io_context("setsockopt(SO_MARK)", what))?;
        deep_receive_queue(&rx)?;
        setsockopt(&rx, sockopt::Ipv6RecvPacketInfo, &true)
            .map_err(|e| io_context("setsockopt(IPV6_RECVPKTINFO)", what)(e.into()))?;
        setsockopt(&rx, sockopt::Ipv6RecvHopLimit, &true)
            .map_err(|e| io_context("setsockopt(IPV6_RECVHOPLIMIT)", what)(e.into()))?;
        let what = "IPv6 send socket";
        let tx = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(IPPROTO_RAW)))
            .map_err(io_context("socket(AF_INET6, SOCK_RAW, IPPROTO_RAW)", what))?;
        tx.set_mark(mark)
            .map_err(io_context("setsockopt(SO_MARK)", what))?;
        tx.set_header_included_v6(true)
            .map_err(io_context("setsockopt(IPV6_HDRINCL)", what))?;
        Ok(EspSocket {
            rx,
            tx,
            family: Family::V6,
        })
    }

    /// Receives one ESP packet, IP header included (rebuilt for IPv6, see the module
    /// comment); `buf` must have room for the header too.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self.family {
            Family::V4 => {
                // MSG_TRUNC makes the kernel return the real length, so a cut packet is
                // seen (and refused) rather than decrypted as garbage.
                let n = recv(self.rx.as_raw_fd(), buf, MsgFlags::MSG_TRUNC)?;
                if n > buf.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("ESP packet of {n} bytes longer than the buffer"),
                    ));
                }
                Ok(n)
            }
            Family::V6 => self.recv_v6(buf),
        }
    }

    /// Sends one whole IP packet of the socket's family (ESP or any other protocol), to
    /// the destination in its header. For IPv4 the kernel fills in the header checksum,
    /// the total length and a zero ID; an IPv6 header goes out as it is.
    pub fn send(&self, packet: &[u8]) -> io::Result<usize> {
        let dst = match self.family {
            Family::V4 => ipv4_destination(packet).map(|d| SockAddr::from(SocketAddrV4::new(d, 0))),
            Family::V6 => {
                ipv6_destination(packet).map(|d| SockAddr::from(SocketAddrV6::new(d, 0, 0, 0)))
            }
        };
        let dst = dst.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not an {:?} packet", self.family),
            )
        })?;
        self.tx.send_to(packet, &dst)
    }

    fn recv_v6(&self, buf: &mut [u8]) -> io::Result<usize> {
        let (header, payload) = buf.split_at_mut_checked(IPV6_HEADER).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer shorter than an IPv6 header",
            )
        })?;
        CMSG_V6.with_borrow_mut(|cmsg| {
            let mut iov = [IoSliceMut::new(payload)];
            let msg = recvmsg::<SockaddrIn6>(
                self.rx.as_raw_fd(),
                &mut iov,
                Some(cmsg.as_mut_slice()),
                MsgFlags::empty(),
            )?;
            if msg.flags.contains(MsgFlags::MSG_TRUNC) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "IPv6 ESP packet longer than the buffer",
                ));
            }
            let src = msg
                .address
                .map(|a| a.ip())
                .ok_or_else(|| io::Error::other("recvmsg gave no source address"))?;
            let mut dst = None;
            let mut hop_limit = 0;
            for c in msg.cmsgs()? {
                match c {
                    ControlMessageOwned::Ipv6PacketInfo(info) => {
                        dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                    }
                    ControlMessageOwned::Ipv6HopLimit(h) => {
                        hop_limit = u8::try_from(h).unwrap_or(0)
                    }
                    _ => {}
                }
            }
            let dst = dst.ok_or_else(|| io::Error::other("recvmsg gave no IPV6_PKTINFO"))?;
            let len = u16::try_from(msg.bytes)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "IPv6 jumbogram"))?;
            ipv6_header(header, len, hop_limit, src, dst);
            Ok(IPV6_HEADER + msg.bytes)
        })
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
            family: self.family,
        })
    }
}

/// Most packets [`EspSocket::open_shard`] discards after attaching its filter: about
/// what the 8 MiB receive queue holds at the smallest ESP packets' memory cost, so that
/// the drain ends even while matching packets keep coming.
const DRAIN_MAX: usize = (8 << 20) / 512;

impl EspSocket {
    /// [`EspSocket::open`] for data-plane worker `shard` of `workers`: the receive socket
    /// keeps only ESP from peers that worker owns ([`super::shard_of`]), in the kernel.
    /// Every raw ESP socket gets its own copy of every ESP packet; with one socket per
    /// worker, each drops the copies of the others' peers. One worker (or none): no
    /// filter, the same as `open`. `shard` must be below `workers`.
    ///
    /// The filter is [`super::shard::esp_filter`]. A raw socket receives from the moment
    /// it exists (`socket(2)` puts it in the kernel's raw table; there is no `bind` to
    /// wait for), and a filter judges packets as they are queued, not as they are read:
    /// what arrived between `socket(2)` and `SO_ATTACH_FILTER` sits in the queue
    /// unfiltered. The queue is therefore drained right after the filter is attached,
    /// so that the first packet read has passed it. The drain may also throw away a few
    /// packets that did belong to this worker (queued before, or just after, the
    /// filter); at start-up that is ordinary loss. (A packet whose filter check ran
    /// before the attach but whose queueing, on another CPU, ended only after the drain
    /// found the queue empty would still slip through; a window far shorter than the
    /// drain's system calls, but not zero: the data plane must treat an ESP packet it
    /// holds no SA for as it does today.)
    pub fn open_shard(mark: u32, shard: usize, workers: usize) -> io::Result<EspSocket> {
        let socket = EspSocket::open(mark)?;
        socket.steer(shard, workers)?;
        Ok(socket)
    }

    /// [`EspSocket::open_v6`] for worker `shard` of `workers`, as [`EspSocket::open_shard`]
    /// (the filter reads the last word of the IPv6 source address).
    pub fn open_v6_shard(mark: u32, shard: usize, workers: usize) -> io::Result<EspSocket> {
        let socket = EspSocket::open_v6(mark)?;
        socket.steer(shard, workers)?;
        Ok(socket)
    }

    /// Attaches the shard filter to the receive socket, then drains its queue (see
    /// [`EspSocket::open_shard`]).
    fn steer(&self, shard: usize, workers: usize) -> io::Result<()> {
        if shard >= workers.max(1) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("worker {shard} of {workers}"),
            ));
        }
        let Some(program) = super::shard::esp_filter(self.family == Family::V6, shard, workers)
        else {
            return Ok(());
        };
        let program: Vec<SockFilter> = program
            .iter()
            .map(|i| SockFilter::new(i.code, i.jt, i.jf, i.k))
            .collect();
        self.rx.attach_filter(&program).map_err(io_context(
            "setsockopt(SO_ATTACH_FILTER)",
            "ESP receive socket",
        ))?;
        let mut byte = [0u8; 1];
        let mut drained = 0;
        while drained < DRAIN_MAX {
            // MSG_TRUNC: a packet is consumed whole whatever the buffer; MSG_DONTWAIT:
            // the socket stays blocking for its owner.
            match recv(
                self.rx.as_raw_fd(),
                &mut byte,
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC,
            ) {
                Ok(_) => drained += 1,
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => break,
                Err(e) => {
                    return Err(io_context("recv (drain)", "ESP receive socket")(e.into()));
                }
            }
        }
        Ok(())
    }
}

/// The `mmsghdr` arrays of [`EspSocket::recv_batch`] and [`EspSocket::send_batch`],
/// allocated once per data-plane thread so that a batch costs no allocation of them.
#[derive(Debug)]
pub struct EspBatch {
    recv: MultiHeaders<SockaddrIn>,
    send: MultiHeaders<SockaddrIn>,
    dst: Vec<Option<SockaddrIn>>,
    recv6: MultiHeaders<SockaddrIn6>,
    send6: MultiHeaders<SockaddrIn6>,
    dst6: Vec<Option<SockaddrIn6>>,
    /// What each IPv6 packet of the last receive said: its payload length (0: cut),
    /// source, destination and hop limit; its header is written once the buffers are
    /// free again.
    got6: Vec<Option<(u16, Ipv6Addr, Ipv6Addr, u8)>>,
    capacity: usize,
}

impl EspBatch {
    /// Room for `capacity` packets per system call.
    pub fn new(capacity: usize) -> EspBatch {
        let capacity = capacity.max(1);
        EspBatch {
            recv: MultiHeaders::preallocate(capacity, None),
            send: MultiHeaders::preallocate(capacity, None),
            dst: Vec::with_capacity(capacity),
            recv6: MultiHeaders::preallocate(capacity, Self::cmsg6()),
            send6: MultiHeaders::preallocate(capacity, None),
            dst6: Vec::with_capacity(capacity),
            got6: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// `IPV6_PKTINFO` and `IPV6_HOPLIMIT` of each packet.
    fn cmsg6() -> Option<Vec<u8>> {
        Some(nix::cmsg_space!(libc::in6_pktinfo, libc::c_int))
    }
}

/// What [`EspSocket::send_batch`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendOutcome {
    /// Packets the kernel took.
    pub sent: usize,
    /// Packets refused (not of the socket's family, or an error from the kernel).
    pub failed: usize,
    /// The last error, if any.
    pub last_error: Option<Errno>,
}

impl EspSocket {
    /// Receives up to `bufs.len()` ESP packets with one `recvmmsg(2)`: packet `i` is
    /// `bufs[i][..lens[i]]`, IP header included (rebuilt for IPv6, see the module
    /// comment). A packet longer than its buffer gets `lens[i] == 0` (refused, not cut).
    /// Returns how many slots were used; `WouldBlock` when there was nothing.
    pub fn recv_batch<B: AsMut<[u8]>>(
        &self,
        batch: &mut EspBatch,
        bufs: &mut [B],
        lens: &mut [usize],
    ) -> io::Result<usize> {
        let max = bufs.len().min(lens.len()).min(batch.capacity);
        if max == 0 {
            return Ok(0);
        }
        if self.family == Family::V6 {
            return self.recv_batch_v6(batch, &mut bufs[..max], lens);
        }
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> = bufs[..max]
            .iter_mut()
            .map(|b| [IoSliceMut::new(b.as_mut())])
            .collect();
        let caps: Vec<usize> = iovs.iter().map(|v| v[0].len()).collect();
        // MSG_TRUNC: the real length comes back, so a cut packet is seen and refused.
        let results = recvmmsg(
            self.rx.as_raw_fd(),
            &mut batch.recv,
            iovs.iter_mut(),
            MsgFlags::MSG_TRUNC,
            None,
        )?;
        let mut n = 0;
        for (i, msg) in results.enumerate() {
            let cut = msg.flags.contains(MsgFlags::MSG_TRUNC) || msg.bytes > caps[i];
            lens[i] = if cut { 0 } else { msg.bytes };
            n = i + 1;
        }
        Ok(n)
    }

    /// [`EspSocket::recv_batch`] for IPv6: the payloads land behind room for the header,
    /// which is written from each packet's source address and control messages.
    fn recv_batch_v6<B: AsMut<[u8]>>(
        &self,
        batch: &mut EspBatch,
        bufs: &mut [B],
        lens: &mut [usize],
    ) -> io::Result<usize> {
        if bufs.iter_mut().any(|b| b.as_mut().len() < IPV6_HEADER) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer shorter than an IPv6 header",
            ));
        }
        batch.got6.clear();
        {
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> = bufs
                .iter_mut()
                .map(|b| [IoSliceMut::new(&mut b.as_mut()[IPV6_HEADER..])])
                .collect();
            let caps: Vec<usize> = iovs.iter().map(|v| v[0].len()).collect();
            let results = recvmmsg(
                self.rx.as_raw_fd(),
                &mut batch.recv6,
                iovs.iter_mut(),
                MsgFlags::MSG_TRUNC,
                None,
            )?;
            for (i, msg) in results.enumerate() {
                let cut = msg.flags.contains(MsgFlags::MSG_TRUNC) || msg.bytes > caps[i];
                let (mut dst, mut hop_limit) = (None, 0);
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        match c {
                            ControlMessageOwned::Ipv6PacketInfo(info) => {
                                dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                            }
                            ControlMessageOwned::Ipv6HopLimit(h) => {
                                hop_limit = u8::try_from(h).unwrap_or(0);
                            }
                            _ => {}
                        }
                    }
                }
                let src = msg.address.map(|a| a.ip());
                let len = u16::try_from(msg.bytes).ok().filter(|_| !cut);
                batch.got6.push(match (len, src, dst) {
                    (Some(len), Some(src), Some(dst)) => Some((len, src, dst, hop_limit)),
                    // Cut, a jumbogram, or without its addresses: refused.
                    _ => None,
                });
            }
        }
        // nix's recvmmsg leaves each header's control length as the kernel lowered it,
        // and the next receive would lose control messages (MSG_CTRUNC): new headers.
        batch.recv6 = MultiHeaders::preallocate(batch.capacity, EspBatch::cmsg6());
        for (i, got) in batch.got6.iter().enumerate() {
            lens[i] = match *got {
                Some((len, src, dst, hop_limit)) => {
                    ipv6_header(
                        &mut bufs[i].as_mut()[..IPV6_HEADER],
                        len,
                        hop_limit,
                        src,
                        dst,
                    );
                    IPV6_HEADER + usize::from(len)
                }
                None => 0,
            };
        }
        Ok(batch.got6.len())
    }

    /// Sends the whole IP packets `bufs[slot][range]` with `sendmmsg(2)`, each to the
    /// destination in its header, in order.
    pub fn send_batch<B: AsRef<[u8]>>(
        &self,
        batch: &mut EspBatch,
        bufs: &[B],
        packets: &[(usize, Range<usize>)],
    ) -> SendOutcome {
        let packet = |(slot, range): &(usize, Range<usize>)| {
            bufs.get(*slot)
                .and_then(|b| b.as_ref().get(range.clone()))
                .unwrap_or(&[])
        };
        let fd = self.tx.as_raw_fd();
        match self.family {
            Family::V4 => send_mmsg(
                fd,
                (&mut batch.send, &mut batch.dst, batch.capacity),
                packets.iter().map(packet),
                |p| ipv4_destination(p).map(|d| SockaddrIn::from(SocketAddrV4::new(d, 0))),
            ),
            Family::V6 => send_mmsg(
                fd,
                (&mut batch.send6, &mut batch.dst6, batch.capacity),
                packets.iter().map(packet),
                |p| ipv6_destination(p).map(|d| SockaddrIn6::from(SocketAddrV6::new(d, 0, 0, 0))),
            ),
        }
    }
}

/// `sendmmsg(2)` of `packets` in chunks of the headers' capacity, each to the address
/// `destination` reads from it; a packet without one is counted as failed, as is one the
/// kernel refuses (and skipped: the rest still go).
fn send_mmsg<'a, S: SockaddrLike + Copy>(
    fd: std::os::fd::RawFd,
    (headers, dst, capacity): (&mut MultiHeaders<S>, &mut Vec<Option<S>>, usize),
    packets: impl Iterator<Item = &'a [u8]>,
    destination: impl Fn(&[u8]) -> Option<S>,
) -> SendOutcome {
    let mut out = SendOutcome::default();
    let mut iovs: Vec<[IoSlice<'a>; 1]> = Vec::with_capacity(capacity);
    let mut packets = packets.peekable();
    while packets.peek().is_some() {
        dst.clear();
        iovs.clear();
        for bytes in packets.by_ref().take(capacity) {
            match destination(bytes) {
                Some(d) => {
                    dst.push(Some(d));
                    iovs.push([IoSlice::new(bytes)]);
                }
                None => {
                    out.failed += 1;
                    out.last_error = Some(Errno::EINVAL);
                }
            }
        }
        let mut done = 0;
        while done < iovs.len() {
            // sendmmsg stops at the first packet the kernel refuses and reports the
            // ones before it; the refused one is counted and skipped.
            match sendmmsg(
                fd,
                headers,
                &iovs[done..],
                &dst[done..],
                [] as [ControlMessage<'_>; 0],
                MsgFlags::empty(),
            ) {
                Ok(r) => {
                    let n = r.count();
                    if n == 0 {
                        out.failed += 1;
                        done += 1;
                    }
                    out.sent += n;
                    done += n;
                }
                Err(Errno::EINTR) => {}
                Err(e) => {
                    out.failed += 1;
                    out.last_error = Some(e);
                    done += 1;
                }
            }
        }
    }
    out
}

/// The receive side, for poll(2).
impl AsFd for EspSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.rx.as_fd()
    }
}

/// Writes the fixed IPv6 header of an ESP packet of `payload_len` bytes into `header`
/// (40 bytes): what an IPv6 raw socket keeps back (see the module comment).
fn ipv6_header(header: &mut [u8], payload_len: u16, hop_limit: u8, src: Ipv6Addr, dst: Ipv6Addr) {
    header.fill(0);
    header[0] = 0x60;
    header[4..6].copy_from_slice(&payload_len.to_be_bytes());
    header[6] = IPPROTO_ESP as u8;
    header[7] = hop_limit;
    header[8..24].copy_from_slice(&src.octets());
    header[24..40].copy_from_slice(&dst.octets());
}

/// The destination address in an IPv4 or IPv6 packet's header.
pub(crate) fn destination(packet: &[u8]) -> Option<std::net::IpAddr> {
    ipv4_destination(packet)
        .map(std::net::IpAddr::from)
        .or_else(|| ipv6_destination(packet).map(std::net::IpAddr::from))
}

fn ipv4_destination(packet: &[u8]) -> Option<Ipv4Addr> {
    let version = packet.first()? >> 4;
    let dst: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
    (version == 4).then_some(Ipv4Addr::from(dst))
}

fn ipv6_destination(packet: &[u8]) -> Option<Ipv6Addr> {
    let version = packet.first()? >> 4;
    let dst: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
    (version == 6).then_some(Ipv6Addr::from(dst))
}

/// Receive queue of the raw ESP socket. This kernel answers ESP that finds the queue
/// full with ICMP "protocol unreachable" (seen in the tunnel-mode end-to-end test under
/// a TCP burst): clear text on the wire, and the peer may take it for a dead SA. A deep
/// queue rides out bursts; root may exceed `net.core.rmem_max` (SO_RCVBUFFORCE).
fn deep_receive_queue(rx: &Socket) -> io::Result<()> {
    const QUEUE: usize = 8 << 20;
    if setsockopt(rx, sockopt::RcvBufForce, &QUEUE).is_ok() {
        return Ok(());
    }
    rx.set_recv_buffer_size(QUEUE)
        .map_err(io_context("setsockopt(SO_RCVBUF)", "ESP receive socket"))
}
