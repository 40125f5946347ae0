//! Who owns the local socket of a flow: the kernel's socket diagnostics
//! (`NETLINK_SOCK_DIAG`, sock_diag(7)) for the socket's user and inode, /proc for the
//! process holding it and the program it runs. That is what ALE_USER_ID and ALE_APP_ID
//! are at the ALE layers (spec §3): WFP knows the socket a packet belongs to, a packet
//! read from the TUN or from NFQUEUE does not carry it, so the daemon asks.
//!
//! One exact lookup per question (`SOCK_DIAG_BY_FAMILY` without `NLM_F_DUMP`): the
//! kernel finds the socket as it would deliver to it, so an inbound connection start
//! finds the listening or bound socket, an outbound one the connecting socket. The
//! program is found by scanning /proc for the socket's inode: costly, so only when a
//! filter asks for it, once per flow (the callouts cache decisions per flow).

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto,
    setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;

/// `SOCK_DIAG_BY_FAMILY` (linux/sock_diag.h).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLMSG_ERROR` (linux/netlink.h).
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_HDRLEN: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, extensions, pad, states, sockid.
const REQ_LEN: usize = 8 + SOCKID_LEN;
/// `struct inet_diag_sockid`: ports, two 16-byte addresses, interface, cookie.
const SOCKID_LEN: usize = 48;
/// `struct inet_diag_msg` up to and including `idiag_inode`.
const MSG_LEN: usize = 4 + SOCKID_LEN + 20;
/// Offsets of `idiag_uid` and `idiag_inode` in `struct inet_diag_msg`.
const UID_AT: usize = 4 + SOCKID_LEN + 12;
const INODE_AT: usize = UID_AT + 4;
/// How long a lookup may wait for the kernel: it answers at once, so this only bounds
/// what a wedged netlink socket could cost the data-plane thread.
const TIMEOUT: Duration = Duration::from_millis(100);

/// The local socket of a flow: its owner and its inode (the key to its process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOwner {
    /// The user that created the socket.
    pub uid: u32,
    /// The socket's inode (`socket:[inode]` in /proc/PID/fd).
    pub inode: u32,
}

/// A `NETLINK_SOCK_DIAG` socket of the daemon's network namespace.
#[derive(Debug)]
pub struct SockDiag {
    fd: OwnedFd,
    seq: u32,
}

impl SockDiag {
    /// Opens the netlink socket.
    pub fn open() -> io::Result<SockDiag> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkSockDiag,
        )?;
        let timeout = TimeVal::new(0, TIMEOUT.as_micros() as _);
        setsockopt(&fd, sockopt::ReceiveTimeout, &timeout)?;
        Ok(SockDiag { fd, seq: 0 })
    }

    /// The local TCP or UDP socket that a packet between `local` and `remote` belongs
    /// to, as the kernel would deliver it: `None` when there is none (or for another
    /// protocol, or mixed families).
    pub fn owner(
        &mut self,
        protocol: u8,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> io::Result<Option<SocketOwner>> {
        let Some(request) = self.request(protocol, local, remote) else {
            return Ok(None);
        };
        sendto(
            self.fd.as_raw_fd(),
            &request,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        let mut buf = [0u8; 512];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
            match parse_reply(&buf[..n], self.seq)? {
                Reply::Owner(o) => return Ok(Some(o)),
                Reply::NotFound => return Ok(None),
                // An answer to an earlier question that timed out.
                Reply::Stale => continue,
            }
        }
    }

    fn request(
        &mut self,
        protocol: u8,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Option<[u8; NLMSG_HDRLEN + REQ_LEN]> {
        if !matches!(protocol, PROTO_TCP | PROTO_UDP) {
            return None;
        }
        let family = match (local.ip(), remote.ip()) {
            (IpAddr::V4(_), IpAddr::V4(_)) => libc_af(false),
            (IpAddr::V6(_), IpAddr::V6(_)) => libc_af(true),
            _ => return None,
        };
        self.seq = self.seq.wrapping_add(1);
        let mut m = Request::default();
        m.extend_from_slice(&((NLMSG_HDRLEN + REQ_LEN) as u32).to_ne_bytes());
        m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        m.extend_from_slice(&self.seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        // inet_diag_req_v2: every state, no extensions.
        m.extend_from_slice(&[family, protocol, 0, 0]);
        m.extend_from_slice(&u32::MAX.to_ne_bytes());
        // The sockid's "src" is the socket's side for TCP; UDP's lookup takes the
        // packet's source first ("swapped for historical reasons", udp_diag.c).
        let (src, dst) = if protocol == PROTO_TCP {
            (local, remote)
        } else {
            (remote, local)
        };
        m.extend_from_slice(&src.port().to_be_bytes());
        m.extend_from_slice(&dst.port().to_be_bytes());
        m.extend_from_slice(&address(src.ip()));
        m.extend_from_slice(&address(dst.ip()));
        m.extend_from_slice(&0u32.to_ne_bytes()); // any interface
        // INET_DIAG_NOCOOKIE: look up by address, not by a cookie.
        m.extend_from_slice(&u32::MAX.to_ne_bytes());
        m.extend_from_slice(&u32::MAX.to_ne_bytes());
        debug_assert_eq!(m.len, m.bytes.len(), "the request is filled");
        Some(m.bytes)
    }
}

/// A request being written, on the stack: a lookup per new flow allocates nothing.
struct Request {
    bytes: [u8; NLMSG_HDRLEN + REQ_LEN],
    len: usize,
}

impl Default for Request {
    fn default() -> Self {
        Request {
            bytes: [0; NLMSG_HDRLEN + REQ_LEN],
            len: 0,
        }
    }
}

impl Request {
    /// Appends `b` (the request's layout is fixed: it never runs past the end).
    fn extend_from_slice(&mut self, b: &[u8]) {
        self.bytes[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }
}

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

fn libc_af(v6: bool) -> u8 {
    if v6 {
        nix::libc::AF_INET6 as u8
    } else {
        nix::libc::AF_INET as u8
    }
}

/// An address as `__be32[4]`: IPv4 in the first word.
fn address(ip: IpAddr) -> [u8; 16] {
    let mut a = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => a[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => a = v6.octets(),
    }
    a
}

/// What one netlink message answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// The socket and its owner.
    Owner(SocketOwner),
    /// No such socket.
    NotFound,
    /// An answer to another request (an earlier one that timed out).
    Stale,
}

/// The kernel's answer to the request numbered `seq`: a netlink header and an
/// `inet_diag_msg`, or an `nlmsgerr`. Anything shorter or of another type is an error.
pub fn parse_reply(buf: &[u8], seq: u32) -> io::Result<Reply> {
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "malformed sock_diag reply");
    let word = |at: usize| -> io::Result<u32> {
        buf.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
            .ok_or_else(malformed)
    };
    let kind = buf
        .get(4..6)
        .and_then(|b| b.try_into().ok())
        .map(u16::from_ne_bytes)
        .ok_or_else(malformed)?;
    if word(8)? != seq {
        return Ok(Reply::Stale);
    }
    match kind {
        NLMSG_ERROR => {
            // struct nlmsgerr: 0 (an acknowledgement, no socket) or a negative errno;
            // ENOENT is "no such socket". Anything else is not from the kernel.
            match (word(NLMSG_HDRLEN)? as i32).checked_neg() {
                Some(0) => Ok(Reply::NotFound),
                Some(nix::libc::ENOENT) => Ok(Reply::NotFound),
                Some(errno) if errno > 0 => Err(io::Error::from_raw_os_error(errno)),
                _ => Err(malformed()),
            }
        }
        SOCK_DIAG_BY_FAMILY => {
            if buf.len() < NLMSG_HDRLEN + MSG_LEN {
                return Err(malformed());
            }
            Ok(Reply::Owner(SocketOwner {
                uid: word(NLMSG_HDRLEN + UID_AT)?,
                inode: word(NLMSG_HDRLEN + INODE_AT)?,
            }))
        }
        _ => Err(malformed()),
    }
}

/// The program of the process that holds the socket `inode`: the target of
/// /proc/PID/exe of the first process (in /proc's order) with `socket:[inode]` among its
/// open files. `None` when no process holds it (any more) or /proc does not say.
pub fn program_of_socket(inode: u32) -> Option<PathBuf> {
    let (denied, link) = (Cell::new(false), socket_link(inode));
    let pid = pids().find(|&pid| holds(pid, &link, &denied))?;
    exe(pid)
}

/// Finds programs of sockets for the data path, where a scan of every process's open
/// files (milliseconds on a busy host) would stall a worker: the program of a socket
/// seen before (a listener, which every inbound connection finds) is remembered, the
/// processes that held the last sockets (a client making many connections) are looked
/// at first, then the processes of the socket's user, and only then the rest.
#[derive(Debug, Default)]
pub struct ProgramFinder {
    by_inode: HashMap<u32, PathBuf>,
    recent: VecDeque<u32>,
    /// Whether the last search met a process whose open files it may not read.
    denied: bool,
}

/// Sockets whose program is remembered; past it the memory starts again.
const REMEMBERED_SOCKETS: usize = 4096;
/// Processes looked at first.
const RECENT_PROCESSES: usize = 8;

/// What a search with a deadline ([`ProgramFinder::program_within`]) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Search {
    /// The program of the process holding the socket.
    Found(PathBuf),
    /// No process holds it (any more), or /proc does not say.
    Absent,
    /// The deadline passed first.
    Unfinished,
}

impl ProgramFinder {
    /// The program holding `owner`'s socket, as [`program_of_socket`].
    pub fn program(&mut self, owner: SocketOwner) -> Option<PathBuf> {
        match self.search(owner, None) {
            Search::Found(p) => Some(p),
            Search::Absent | Search::Unfinished => None,
        }
    }

    /// [`ProgramFinder::program`], giving up at `deadline`: a worker's search, which
    /// must not hold up its packets for a scan of a host with many open files.
    pub fn program_within(&mut self, owner: SocketOwner, deadline: Instant) -> Search {
        self.search(owner, Some(deadline))
    }

    fn search(&mut self, owner: SocketOwner, deadline: Option<Instant>) -> Search {
        if let Some(p) = self.by_inode.get(&owner.inode) {
            return Search::Found(p.clone());
        }
        let denied = Cell::new(false);
        let late = Cell::new(false);
        let link = socket_link(owner.inode);
        let holds = |pid: u32| {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                late.set(true);
            }
            !late.get() && holds(pid, &link, &denied)
        };
        let found = self
            .recent
            .iter()
            .copied()
            .find(|&pid| holds(pid))
            .or_else(|| {
                if late.get() {
                    return None;
                }
                // The socket's user's processes first (the socket is usually theirs), then
                // the others (one passed it on); /proc is listed once.
                let (theirs, others): (Vec<u32>, Vec<u32>) =
                    pids().partition(|&pid| process_uid(pid) == Some(owner.uid));
                theirs.into_iter().chain(others).find(|&pid| holds(pid))
            });
        self.denied = denied.get();
        let Some(pid) = found else {
            return if late.get() {
                Search::Unfinished
            } else {
                Search::Absent
            };
        };
        let Some(program) = exe(pid) else {
            return Search::Absent;
        };
        self.recent.retain(|&p| p != pid);
        self.recent.push_front(pid);
        self.recent.truncate(RECENT_PROCESSES);
        if self.by_inode.len() >= REMEMBERED_SOCKETS {
            self.by_inode.clear();
        }
        self.by_inode.insert(owner.inode, program.clone());
        Search::Found(program)
    }

    /// Whether the last search that found nothing could not read some process's open
    /// files (without CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE, those of other users).
    pub fn denied(&self) -> bool {
        self.denied
    }
}

/// The pids in /proc.
fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}

/// What /proc/PID/fd/N links to for the socket `inode`.
fn socket_link(inode: u32) -> String {
    format!("socket:[{inode}]")
}

/// Whether process `pid` has the socket whose link is `wanted` ([`socket_link`]) open;
/// notes in `denied` when its open files may not be read.
fn holds(pid: u32, wanted: &str, denied: &Cell<bool>) -> bool {
    let fds = match std::fs::read_dir(format!("/proc/{pid}/fd")) {
        Ok(fds) => fds,
        Err(e) => {
            if e.kind() == io::ErrorKind::PermissionDenied {
                denied.set(true);
            }
            return false;
        }
    };
    fds.flatten().any(|fd| match std::fs::read_link(fd.path()) {
        Ok(target) => target.as_os_str() == wanted,
        Err(e) => {
            if e.kind() == io::ErrorKind::PermissionDenied {
                denied.set(true);
            }
            false
        }
    })
}

/// The owner of /proc/PID: the process's effective user.
fn process_uid(pid: u32) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}"))
        .ok()
        .map(|m| m.uid())
}

fn exe(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// The groups of `uid` (its primary group first), from the user database; none when the
/// database does not know the user (a group condition then does not grant it).
pub fn groups_of(uid: u32) -> Vec<u32> {
    use nix::unistd::{Uid, User, getgrouplist};
    let Ok(Some(user)) = User::from_uid(Uid::from_raw(uid)) else {
        return Vec::new();
    };
    let Ok(name) = std::ffi::CString::new(user.name.as_bytes()) else {
        return vec![user.gid.as_raw()];
    };
    match getgrouplist(&name, user.gid) {
        Ok(groups) => groups.into_iter().map(|g| g.as_raw()).collect(),
        Err(_) => vec![user.gid.as_raw()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&0u16.to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn an_answer_gives_the_uid_and_inode() {
        let mut msg = vec![0u8; MSG_LEN];
        msg[UID_AT..UID_AT + 4].copy_from_slice(&1000u32.to_ne_bytes());
        msg[INODE_AT..INODE_AT + 4].copy_from_slice(&4242u32.to_ne_bytes());
        assert_eq!(
            parse_reply(&reply(SOCK_DIAG_BY_FAMILY, 7, &msg), 7).expect("parsed"),
            Reply::Owner(SocketOwner {
                uid: 1000,
                inode: 4242
            })
        );
        assert_eq!(
            parse_reply(&reply(SOCK_DIAG_BY_FAMILY, 6, &msg), 7).expect("parsed"),
            Reply::Stale
        );
    }

    #[test]
    fn no_socket_is_none_and_other_errors_are_errors() {
        let enoent = (-nix::libc::ENOENT).to_ne_bytes();
        assert_eq!(
            parse_reply(&reply(NLMSG_ERROR, 1, &enoent), 1).expect("parsed"),
            Reply::NotFound
        );
        let eperm = (-nix::libc::EPERM).to_ne_bytes();
        assert!(parse_reply(&reply(NLMSG_ERROR, 1, &eperm), 1).is_err());
        // Found by fuzzing: the most negative number has no positive errno.
        for bad in [i32::MIN, 5] {
            assert!(parse_reply(&reply(NLMSG_ERROR, 1, &bad.to_ne_bytes()), 1).is_err());
        }
    }

    #[test]
    fn short_or_unknown_replies_are_refused() {
        assert!(parse_reply(&[0u8; 6], 0).is_err());
        assert!(parse_reply(&reply(SOCK_DIAG_BY_FAMILY, 1, &[0u8; 10]), 1).is_err());
        assert!(parse_reply(&reply(99, 1, &[0u8; 80]), 1).is_err());
    }
}
