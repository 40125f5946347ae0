//! The TUN device: the kernel routes protected traffic into it (route.rs), the data
//! plane reads those packets, and writes decapsulated ones back for the kernel to
//! deliver or forward.
//!
//! Layer 3, `IFF_NO_PI` (each read or write is exactly one IP packet, no 4-byte
//! protocol prefix) and `IFF_MULTI_QUEUE`, so that several data-plane threads can each
//! own a queue of one device.
//!
//! With offloads ([`Tun::create_offload`], `IFF_VNET_HDR` and `TUNSETOFFLOAD` with TSO,
//! as wireguard-go does) every read and write carries a virtio-net header: the kernel's
//! TCP hands over 64 KiB segmentation aggregates, which [`Tun::recv_batch`] splits into
//! MTU-sized segments, and [`Tun::send_batch`] coalesces consecutive TCP segments of a
//! flow back into aggregates (GRO), and UDP datagrams too where the kernel takes UDP
//! segmentation, so the kernel walks its stack once per aggregate, not once per
//! segment. Splitting ([`tun_gso::split`]) and coalescing ([`TunGro`]) are ours,
//! with wireguard-go's rules (which tun-rs ported) but without tun-rs's allocations and
//! per-segment overhead, and with a faster checksum sum.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use tun_rs::{DeviceBuilder, Layer, SyncDevice};

pub use tun_rs::{IDEAL_BATCH_SIZE, VIRTIO_NET_HDR_LEN, VirtioNetHdr};

use super::error::io_context;
use super::tun_gro::TunGro;
use super::tun_gso;

/// One queue of a TUN device. Dropping the last queue removes the device (it is not
/// persistent), and with it the `dev` routes that pointed into it: the blackhole routes
/// of route.rs take over, so traffic is dropped, not sent in clear.
pub struct Tun {
    device: SyncDevice,
    name: String,
}

impl Tun {
    /// Creates the device `name` (one queue), up, with `mtu`, reverse-path filtering off.
    pub fn create(name: &str, mtu: u16) -> io::Result<Tun> {
        let mut queues = Tun::create_multi_queue(name, mtu, 1)?;
        queues
            .pop()
            .ok_or_else(|| io::Error::other("TUN created with no queue"))
    }

    /// Creates the device with `queues` queues (at least one), one per data-plane thread.
    pub fn create_multi_queue(name: &str, mtu: u16, queues: usize) -> io::Result<Vec<Tun>> {
        Tun::build(name, mtu, queues, false)
    }

    /// Creates the device (one queue) with virtio-net offloads (TSO reads, GRO writes):
    /// only [`Tun::recv_batch`] and [`Tun::send_batch`] understand its framing.
    pub fn create_offload(name: &str, mtu: u16) -> io::Result<Tun> {
        let mut queues = Tun::create_multi_queue_offload(name, mtu, 1)?;
        queues
            .pop()
            .ok_or_else(|| io::Error::other("TUN created with no queue"))
    }

    /// [`Tun::create_multi_queue`] with the offloads of [`Tun::create_offload`].
    pub fn create_multi_queue_offload(name: &str, mtu: u16, queues: usize) -> io::Result<Vec<Tun>> {
        Tun::build(name, mtu, queues, true)
    }

    fn build(name: &str, mtu: u16, queues: usize, offload: bool) -> io::Result<Vec<Tun>> {
        let device = DeviceBuilder::new()
            .name(name)
            .layer(Layer::L3)
            .mtu(mtu)
            .packet_information(false)
            .multi_queue(true)
            .offload(offload)
            .enable(true)
            .build_sync()
            .map_err(io_context("open /dev/net/tun + TUNSETIFF (up, MTU)", name))?;
        // The kernel may have picked another name (a `%d` template), so ask it.
        let name = device.name().map_err(io_context("SIOCGIFNAME", name))?;
        disable_rp_filter(&name)?;
        let mut all = Vec::with_capacity(queues.max(1));
        for _ in 1..queues {
            let queue = device
                .try_clone()
                .map_err(io_context("TUNSETIFF (another queue)", &name))?;
            all.push(Tun {
                device: queue,
                name: name.clone(),
            });
        }
        all.insert(0, Tun { device, name });
        Ok(all)
    }

    /// The device's name as the kernel knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether reads and writes carry virtio-net headers ([`Tun::create_offload`]).
    pub fn offload(&self) -> bool {
        self.device.tcp_gso()
    }

    /// Whether the kernel takes UDP segmentation aggregates (`TUN_F_USO4/6`), which
    /// [`Tun::send_batch`] then writes.
    pub fn udp_offload(&self) -> bool {
        self.device.udp_gso()
    }

    /// Reads one packet, or one offload aggregate split into segments: segment `i` goes
    /// to `bufs[i][offset..][..sizes[i]]`; returns how many. `scratch` holds the raw read
    /// (a virtio-net header and up to 64 KiB); `bufs` must have room for the segments
    /// of one aggregate (at most [`IDEAL_BATCH_SIZE`] at the smallest MSS). A read that
    /// cannot be split is consumed and reported as `InvalidData` (a [`tun_gso::Refused`]).
    pub fn recv_batch<B: AsMut<[u8]>>(
        &self,
        scratch: &mut [u8],
        bufs: &mut [B],
        sizes: &mut [usize],
        offset: usize,
    ) -> io::Result<usize> {
        if !self.offload() {
            let (Some(buf), Some(size)) = (bufs.first_mut(), sizes.first_mut()) else {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "no buffer"));
            };
            let buf = buf.as_mut().get_mut(offset..).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "buffer shorter than offset")
            })?;
            *size = self.device.recv(buf)?;
            return Ok(1);
        }
        let n = self.device.recv(scratch)?;
        tun_gso::split(&scratch[..n], bufs, sizes, offset)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Writes the packets `bufs[i][offset..]`, coalescing TCP segments (and UDP datagrams,
    /// with [`Tun::udp_offload`]) of one flow where offloads are on (`offset` must then
    /// leave [`VIRTIO_NET_HDR_LEN`] bytes in front; an aggregate is one `writev` of the
    /// pieces where they lie). Returns the bytes written (virtio-net headers included).
    /// A failed write does not stop the others: the last error is returned after all
    /// were tried, as tun-rs did.
    pub fn send_batch(
        &self,
        gro: &mut TunGro,
        bufs: &mut [Vec<u8>],
        offset: usize,
    ) -> io::Result<usize> {
        let mut total = 0;
        let mut failed = None;
        let mut done = |r: io::Result<usize>| match r {
            Ok(n) => total += n,
            Err(e) => failed = Some(e),
        };
        if self.offload() {
            gro.coalesce(bufs, offset, self.udp_offload())?;
            // One write(2) or writev(2) per packet: SyncDevice adds nothing on Linux
            // (IFF_NO_PI).
            gro.for_each_write(bufs, offset, |iov| match iov {
                [one] => done(self.device.send(one)),
                _ => done(self.device.send_vectored(iov)),
            });
        } else {
            for buf in bufs.iter() {
                let packet = buf.get(offset..).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "buffer shorter than offset")
                })?;
                done(self.device.send(packet));
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }

    /// Reads one IP packet (blocks unless nonblocking; then `WouldBlock` when empty).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.device.recv(buf)
    }

    /// Writes one IP packet, for the kernel to deliver locally or forward.
    pub fn send(&self, packet: &[u8]) -> io::Result<usize> {
        self.device.send(packet)
    }

    /// Nonblocking mode, for a data-plane loop that polls several descriptors.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.device
            .set_nonblocking(nonblocking)
            .map_err(io_context("fcntl(O_NONBLOCK)", &self.name))
    }
}

impl std::fmt::Debug for Tun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tun")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl AsFd for Tun {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.device.as_fd()
    }
}

/// Decapsulated packets come in on the TUN with a source the main table may route out
/// of another interface; reverse-path filtering would drop those. The kernel applies the
/// larger of `conf/all/rp_filter` and the device's value, so this clears the device's
/// and a host with `all` set still filters.
fn disable_rp_filter(dev: &str) -> io::Result<()> {
    let path = format!("/proc/sys/net/ipv4/conf/{dev}/rp_filter");
    std::fs::write(&path, "0").map_err(io_context("write 0", &path))
}
