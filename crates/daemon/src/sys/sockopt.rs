//! Socket options nix does not wrap, and the link MTU towards a peer.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use nix::libc;
use nix::sys::socket::{getsockopt, setsockopt, sockopt};

/// The largest IP packet the kernel sends towards `peer` unfragmented: the MTU of the
/// route a packet marked `mark` (ours: past the policy routing into the TUN) takes,
/// lowered by what the kernel learned of the path. A connected UDP socket asks the
/// kernel; nothing is sent.
///
/// The raw ESP socket refuses a packet longer than its device's MTU (`EMSGSIZE`) rather
/// than fragment it, and a segmented UDP send of datagrams longer than the route's is
/// refused whole (`EINVAL`): the data plane cuts such packets itself.
pub fn path_mtu(peer: IpAddr, mark: u32) -> io::Result<usize> {
    let local: SocketAddr = match peer {
        IpAddr::V4(_) => ([0u8; 4], 0).into(),
        IpAddr::V6(_) => ([0u16; 8], 0).into(),
    };
    let socket = UdpSocket::bind(local)?;
    setsockopt(&socket, sockopt::Mark, &mark)?;
    // The discard port: only the route matters, and connect sends nothing.
    socket.connect(SocketAddr::new(peer, 9))?;
    let mtu = match peer {
        IpAddr::V4(_) => getsockopt(&socket, sockopt::IpMtu)?,
        IpAddr::V6(_) => get_int_option(&socket, libc::IPPROTO_IPV6, libc::IPV6_MTU)?,
    };
    usize::try_from(mtu).map_err(|_| io::Error::other("negative MTU"))
}

/// `setsockopt(2)` of an `int` option.
#[allow(unsafe_code)]
pub fn set_int_option(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is an open socket for the duration of the call; the value points to
    // a live `c_int` of `len` bytes, which the kernel only reads.
    let r =
        unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (&raw const value).cast(), len) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `getsockopt(2)` of an `int` option.
#[allow(unsafe_code)]
fn get_int_option(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is an open socket for the duration of the call; the kernel writes at
    // most `len` bytes to `value`, a live `c_int`, and the length back to `len`.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    if r == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}
