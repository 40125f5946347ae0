//! UDP segmentation offload (GSO) on send and receive coalescing (GRO) for ESP in UDP.
//!
//! Without them every ESP packet costs a trip through the kernel's UDP, IP, netfilter
//! and link code on each side: three quarters of the sender's time at full rate. With
//! `UDP_SEGMENT` one `sendmsg(2)` hands the kernel up to 64 KiB of equal-sized datagrams
//! that travel as one buffer as far as the device (a veth passes it whole), and with
//! `UDP_GRO` the receiving socket takes such a buffer whole, or coalesces what a NIC
//! delivered, and says the segment size in a control message.

use std::io::{self, IoSlice};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use nix::libc;
use nix::sys::socket::{
    ControlMessage, MsgFlags, SockaddrIn, SockaddrIn6, sendmsg, setsockopt, sockopt,
};

use super::IkeSocket;

/// The most datagrams one `UDP_SEGMENT` send may carry (`UDP_MAX_SEGMENTS` was 64 before
/// Linux 5.11 and 128 since; the lower bound works everywhere).
pub const MAX_SEGMENTS: usize = 64;
/// The most payload one send may carry: an IP datagram's limit less the IPv4 and UDP
/// headers (IPv6's payload length excludes its header, but the smaller figure suits both).
pub const MAX_PAYLOAD: usize = 65_535 - 20 - 8;

impl IkeSocket {
    /// Turns on receive coalescing (`UDP_GRO`): from then on a received datagram may be
    /// several, see [`super::Datagram::segment`], so receive buffers must hold 64 KiB.
    pub fn enable_gro(&self) -> io::Result<()> {
        setsockopt(&self.socket, sockopt::UdpGroSegment, &true).map_err(io::Error::from)
    }

    /// IPv4: sends without DF, and cuts segmented sends by the device's MTU instead of
    /// the path's (`IP_PMTUDISC_OMIT`). The data plane tells no inner host of a
    /// narrower path, so with DF such a path would drop ESP in UDP silently; and once the
    /// kernel knew the narrower MTU, every segmented send of full-sized packets would be
    /// refused (`EINVAL`). Without DF, routers on a narrow path fragment the datagrams
    /// and the peer's kernel puts them back together. No-op on the IPv6 socket:
    /// routers never fragment IPv6, and the kernel fragments at the source there.
    pub fn clear_df(&self) -> io::Result<()> {
        if self.v6 {
            return Ok(());
        }
        crate::sys::sockopt::set_int_option(
            &self.socket,
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_OMIT,
        )
    }

    /// Makes the receive queue `bytes` deep (root may exceed `net.core.rmem_max`): the
    /// default (about 208 KiB) holds three coalesced 64 KiB buffers, and a burst beyond
    /// that is dropped by the kernel, which TCP inside sees as loss.
    pub fn set_receive_queue(&self, bytes: usize) -> io::Result<()> {
        if setsockopt(&self.socket, sockopt::RcvBufForce, &bytes).is_ok() {
            return Ok(());
        }
        setsockopt(&self.socket, sockopt::RcvBuf, &bytes).map_err(io::Error::from)
    }

    /// Sends `segments` to `remote` from `local` (unspecified: the kernel chooses) as
    /// separate datagrams in one `sendmsg(2)`: every segment but the last must be
    /// `segment_size` bytes, the last no longer, at most [`MAX_SEGMENTS`] of them and
    /// [`MAX_PAYLOAD`] bytes in all. One segment goes as a plain datagram.
    ///
    /// The kernel refuses segmentation (`EIO`, `EINVAL`) where the route or device cannot
    /// do it (no checksum offload, an XFRM policy on the route); the caller then sends
    /// the datagrams another way.
    pub fn send_segments(
        &self,
        segments: &[IoSlice<'_>],
        segment_size: u16,
        local: IpAddr,
        remote: SocketAddr,
    ) -> io::Result<usize> {
        let fd = self.socket.as_raw_fd();
        let gso = segments.len() > 1;
        let sent = match (self.v6, local, remote) {
            (false, IpAddr::V4(local), SocketAddr::V4(remote)) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(local).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                let all = [
                    ControlMessage::UdpGsoSegments(&segment_size),
                    ControlMessage::Ipv4PacketInfo(&info),
                ];
                let cmsgs = pick(&all, gso, !local.is_unspecified());
                sendmsg(
                    fd,
                    segments,
                    cmsgs,
                    MsgFlags::empty(),
                    Some(&SockaddrIn::from(remote)),
                )?
            }
            (true, IpAddr::V6(local), SocketAddr::V6(remote)) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: local.octets(),
                    },
                    ipi6_ifindex: 0,
                };
                let all = [
                    ControlMessage::UdpGsoSegments(&segment_size),
                    ControlMessage::Ipv6PacketInfo(&info),
                ];
                let cmsgs = pick(&all, gso, !local.is_unspecified());
                sendmsg(
                    fd,
                    segments,
                    cmsgs,
                    MsgFlags::empty(),
                    Some(&SockaddrIn6::from(remote)),
                )?
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{local} -> {remote} on the IPv{} UDP socket",
                        if self.v6 { 6 } else { 4 }
                    ),
                ));
            }
        };
        Ok(sent)
    }
}

/// The control messages of a send: `[segment size, packet info]`, each only when needed.
fn pick<'a, 'b>(
    all: &'a [ControlMessage<'b>; 2],
    gso: bool,
    info: bool,
) -> &'a [ControlMessage<'b>] {
    match (gso, info) {
        (true, true) => all,
        (true, false) => &all[..1],
        (false, true) => &all[1..],
        (false, false) => &[],
    }
}
