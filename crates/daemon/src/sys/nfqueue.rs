//! NFQUEUE: clear packets from protected peers that the firewall (firewall.rs) hands to
//! the daemon, one verdict each.
//!
//! A small client of nfnetlink_queue over a netlink socket (nix, no unsafe) rather than
//! the nfq crate: nfq offers no descriptor to poll alongside the other sockets, gives a
//! verdict only through the received message value, and asserts on malformed kernel
//! messages. The protocol is four messages: bind a queue, set the copy mode, receive a
//! packet, send a verdict (include/uapi/linux/netfilter/nfnetlink_queue.h).
//!
//! Not done: batch verdicts, GSO packets (`NFQA_CFG_F_GSO`), conntrack attributes.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send,
    setsockopt, socket, sockopt,
};

use super::error::SysError;

// netlink (include/uapi/linux/netlink.h).
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_MIN_TYPE: u16 = 0x10;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLA_TYPE_MASK: u16 = 0x3fff;

// nfnetlink_queue.
const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = NFNL_SUBSYS_QUEUE << 8;
const NFQNL_MSG_VERDICT: u16 = NFNL_SUBSYS_QUEUE << 8 | 1;
const NFQNL_MSG_CONFIG: u16 = NFNL_SUBSYS_QUEUE << 8 | 2;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_MARK: u16 = 3;
const NFQA_IFINDEX_INDEV: u16 = 5;
const NFQA_PAYLOAD: u16 = 10;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_PACKET: u8 = 2;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;

/// Room for one message: a whole 64 KiB packet plus its attributes.
const RECV_BUFFER: usize = 65536 + 4096;
/// Socket buffer, so that a burst waits in the kernel rather than being dropped there.
const SOCKET_BUFFER: usize = 1 << 20;

/// A packet waiting for its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedPacket {
    /// The kernel's id, to be given back with the verdict.
    pub id: u32,
    /// The whole IP packet, header included.
    pub packet: Vec<u8>,
    /// The netfilter hook (1 = input, 2 = forward for IPv4).
    pub hook: u8,
    /// The interface it came in on, when the kernel says.
    pub in_ifindex: Option<u32>,
    /// Its mark (the firewall's `QUEUE_MARK`).
    pub mark: u32,
}

/// One bound NFQUEUE.
#[derive(Debug)]
pub struct NfQueue {
    fd: OwnedFd,
    num: u16,
    seq: u32,
    buf: Vec<u8>,
    /// Packets that arrived while waiting for an acknowledgement.
    pending: VecDeque<QueuedPacket>,
}

impl NfQueue {
    /// Binds queue `num`, copying whole packets. Fails (EPERM) when another process has
    /// it, which usually means another palisaded is running.
    pub fn open(num: u16) -> Result<NfQueue, SysError> {
        let object = || format!("NFQUEUE {num}");
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )
        .map_err(|e| {
            SysError::syscall("socket(AF_NETLINK, NETLINK_NETFILTER)", object())(e.into())
        })?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))
            .map_err(|e| SysError::syscall("bind(AF_NETLINK)", object())(e.into()))?;
        // Best effort: without CAP_NET_ADMIN the smaller default still works.
        let _ = setsockopt(&fd, sockopt::RcvBufForce, &SOCKET_BUFFER)
            .or_else(|_| setsockopt(&fd, sockopt::RcvBuf, &SOCKET_BUFFER));
        let mut queue = NfQueue {
            fd,
            num,
            seq: 0,
            buf: vec![0; RECV_BUFFER],
            pending: VecDeque::new(),
        };
        // nfqnl_msg_config_cmd: command, pad, pf (unused since Linux 3.8).
        queue
            .configure(NFQA_CFG_CMD, &[NFQNL_CFG_CMD_BIND, 0, 0, 0])
            .map_err(|e| {
                // The kernel answers EPERM both when the queue belongs to another
                // socket and when the caller lacks CAP_NET_ADMIN.
                let object = if e.raw_os_error() == Some(nix::libc::EPERM) {
                    format!(
                        "{} (bound by another process, e.g. another palisaded, or no CAP_NET_ADMIN)",
                        object()
                    )
                } else {
                    object()
                };
                SysError::syscall("NFQNL_CFG_CMD_BIND", object)(e)
            })?;
        // nfqnl_msg_config_params: be32 copy_range, u8 copy_mode.
        let mut params = [0u8; 5];
        params[..4].copy_from_slice(&0xffffu32.to_be_bytes());
        params[4] = NFQNL_COPY_PACKET;
        queue
            .configure(NFQA_CFG_PARAMS, &params)
            .map_err(SysError::syscall("NFQA_CFG_PARAMS (copy packet)", object()))?;
        Ok(queue)
    }

    /// The queue number bound.
    pub fn num(&self) -> u16 {
        self.num
    }

    /// The next queued packet (blocks unless nonblocking; then an error whose
    /// [`SysError::kind`] is `WouldBlock` when there is none).
    pub fn recv(&mut self) -> Result<QueuedPacket, SysError> {
        loop {
            if let Some(p) = self.pending.pop_front() {
                return Ok(p);
            }
            self.receive_batch(None)
                .map_err(SysError::syscall("recv", format!("NFQUEUE {}", self.num)))?;
        }
    }

    /// Accepts (the packet continues through the stack) or drops packet `id`.
    pub fn verdict(&mut self, id: u32, accept: bool) -> Result<(), SysError> {
        let mut hdr = [0u8; 8];
        hdr[..4].copy_from_slice(&(if accept { NF_ACCEPT } else { NF_DROP }).to_be_bytes());
        hdr[4..].copy_from_slice(&id.to_be_bytes());
        // No ACK asked: a failed verdict still comes back as an error message, which the
        // next recv reports.
        self.send_message(NFQNL_MSG_VERDICT, 0, NFQA_VERDICT_HDR, &hdr)
            .map_err(SysError::syscall(
                "NFQNL_MSG_VERDICT",
                format!("NFQUEUE {} packet {id}", self.num),
            ))?;
        Ok(())
    }

    /// Nonblocking mode, for a loop that polls.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<(), SysError> {
        let flags = nix::fcntl::fcntl(&self.fd, nix::fcntl::FcntlArg::F_GETFL).map_err(|e| {
            SysError::syscall("fcntl(F_GETFL)", format!("NFQUEUE {}", self.num))(e.into())
        })?;
        let mut flags = nix::fcntl::OFlag::from_bits_retain(flags);
        flags.set(nix::fcntl::OFlag::O_NONBLOCK, nonblocking);
        nix::fcntl::fcntl(&self.fd, nix::fcntl::FcntlArg::F_SETFL(flags)).map_err(|e| {
            SysError::syscall("fcntl(F_SETFL)", format!("NFQUEUE {}", self.num))(e.into())
        })?;
        Ok(())
    }

    /// Sends a config message with an ACK requested and waits for it.
    fn configure(&mut self, attr: u16, value: &[u8]) -> io::Result<()> {
        let seq = self.send_message(NFQNL_MSG_CONFIG, NLM_F_ACK, attr, value)?;
        loop {
            if let Some(result) = self.receive_batch(Some(seq))? {
                return result;
            }
        }
    }

    /// One netlink message: header, nfgenmsg (AF_UNSPEC, version 0, queue number in
    /// network order), one attribute. Returns its sequence number.
    fn send_message(&mut self, kind: u16, flags: u16, attr: u16, value: &[u8]) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let attr_len = 4 + value.len();
        let len = NLMSG_HDRLEN + 4 + align4(attr_len);
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&u32::try_from(len).map_err(io::Error::other)?.to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&[0, 0]);
        msg.extend_from_slice(&self.num.to_be_bytes());
        msg.extend_from_slice(
            &u16::try_from(attr_len)
                .map_err(io::Error::other)?
                .to_ne_bytes(),
        );
        msg.extend_from_slice(&attr.to_ne_bytes());
        msg.extend_from_slice(value);
        msg.resize(len, 0);
        send(self.fd.as_raw_fd(), &msg, MsgFlags::empty())?;
        Ok(self.seq)
    }

    /// Reads one datagram of messages: packets go to `pending`; an error message (an
    /// acknowledgement when its code is 0) for `ack` is returned, any other error
    /// message is an error.
    fn receive_batch(&mut self, ack: Option<u32>) -> io::Result<Option<io::Result<()>>> {
        let n = recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::MSG_TRUNC)?;
        if n > self.buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "netlink message longer than the buffer",
            ));
        }
        let mut answer = None;
        let mut rest = &self.buf[..n];
        while rest.len() >= NLMSG_HDRLEN {
            let len = read_u32_ne(rest, 0) as usize;
            if len < NLMSG_HDRLEN || len > rest.len() {
                return Err(malformed("netlink message length"));
            }
            let kind = read_u16_ne(rest, 4);
            let seq = read_u32_ne(rest, 8);
            let body = &rest[NLMSG_HDRLEN..len];
            match kind {
                NLMSG_ERROR => {
                    let code = body
                        .get(..4)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    let code = code.ok_or_else(|| malformed("netlink error message"))?;
                    let result = if code == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(code.saturating_neg()))
                    };
                    if ack == Some(seq) {
                        answer = Some(result);
                    } else {
                        result?;
                    }
                }
                NFQNL_MSG_PACKET => self.pending.push_back(parse_packet(body)?),
                k if k < NLMSG_MIN_TYPE => {} // NOOP, DONE, OVERRUN: nothing for us.
                _ => {}
            }
            rest = rest.get(align4(len)..).unwrap_or(&[]);
        }
        Ok(answer)
    }
}

impl AsFd for NfQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The packet message parser, public only for the `nfqueue_message` fuzz target
/// (fuzz/fuzz_targets/nfqueue_message.rs): `body` is what follows the netlink header.
#[doc(hidden)]
pub fn parse_queued_packet(body: &[u8]) -> io::Result<QueuedPacket> {
    parse_packet(body)
}

/// A packet message after its netlink header: nfgenmsg, then attributes.
fn parse_packet(body: &[u8]) -> io::Result<QueuedPacket> {
    let mut attrs = body.get(4..).ok_or_else(|| malformed("nfgenmsg"))?;
    let mut id = None;
    let mut packet = None;
    let mut hook = 0;
    let mut in_ifindex = None;
    let mut mark = 0;
    while attrs.len() >= 4 {
        let len = usize::from(read_u16_ne(attrs, 0));
        let kind = read_u16_ne(attrs, 2) & NLA_TYPE_MASK;
        let value = attrs
            .get(4..len)
            .ok_or_else(|| malformed("attribute length"))?;
        let be32 = || {
            value
                .get(..4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| malformed("32-bit attribute"))
        };
        match kind {
            // nfqnl_msg_packet_hdr: be32 packet_id, be16 hw_protocol, u8 hook.
            NFQA_PACKET_HDR => {
                id = Some(be32()?);
                hook = *value.get(6).ok_or_else(|| malformed("packet header"))?;
            }
            NFQA_PAYLOAD => packet = Some(value.to_vec()),
            NFQA_MARK => mark = be32()?,
            NFQA_IFINDEX_INDEV => in_ifindex = Some(be32()?),
            _ => {}
        }
        attrs = attrs.get(align4(len)..).unwrap_or(&[]);
    }
    Ok(QueuedPacket {
        id: id.ok_or_else(|| malformed("packet without NFQA_PACKET_HDR"))?,
        packet: packet.ok_or_else(|| malformed("packet without NFQA_PAYLOAD"))?,
        hook,
        in_ifindex,
        mark,
    })
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed NFQUEUE message: {what}"),
    )
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Callers checked that `at + 4 <= buf.len()`.
fn read_u32_ne(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn read_u16_ne(buf: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([buf[at], buf[at + 1]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&u16::try_from(4 + value.len()).expect("small").to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(value);
        a.resize(align4(a.len()), 0);
        a
    }

    #[test]
    fn a_packet_message_parses_and_a_truncated_one_is_an_error() {
        let mut body = vec![0, 0, 0x50, 0x41];
        body.extend(attr(NFQA_PACKET_HDR, &[0, 0, 0, 42, 0x08, 0x00, 1]));
        body.extend(attr(NFQA_MARK, &0x5042u32.to_be_bytes()));
        body.extend(attr(NFQA_IFINDEX_INDEV, &7u32.to_be_bytes()));
        body.extend(attr(NFQA_PAYLOAD, &[0x45, 1, 2]));
        let p = parse_packet(&body).expect("parses");
        assert_eq!(
            p,
            QueuedPacket {
                id: 42,
                packet: vec![0x45, 1, 2],
                hook: 1,
                in_ifindex: Some(7),
                mark: 0x5042
            }
        );
        assert!(
            parse_packet(&body[..body.len() - 4]).is_err(),
            "payload cut"
        );
        assert!(parse_packet(&body[..4]).is_err(), "no header, no payload");
        let mut lying = body.clone();
        lying[4] = 0xff; // first attribute claims more than there is
        assert!(parse_packet(&lying).is_err());
    }
}
