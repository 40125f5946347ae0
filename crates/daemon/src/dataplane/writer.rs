//! Sending what a worker prepared: IPsec packets to the raw and NAT-T sockets,
//! decapsulated packets to the TUN. By default the worker sends itself
//! ([`Writer::inline`]); with `dataplane.sender_threads` a thread of its own does
//! ([`Writer::spawn`]), so that the kernel's per-packet work on send (routing, netfilter,
//! the link and, between two namespaces, the receiving stack) runs beside the reading,
//! classifying and crypto instead of after it, at the price of a thread per worker.
//!
//! With a thread, one writer and FIFO channels: batches leave in the order they were made, so packets
//! of one SA stay in order. Buffers travel with the batches and come back through the
//! `free` channels: a fixed set allocated once, and a data-plane thread that runs ahead
//! of the writer waits for a set (backpressure) instead of allocating.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;

use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::os::fd::AsFd;
use tracing::{debug, warn};

use crate::stats::DataStats;
use crate::sys::TunGro;
use crate::sys::{EspBatch, EspSocket, GSO_MAX_SEGMENTS, IkeSocket, Tun};

use super::gso::{Group, udp_datagram};

/// IPsec (or clear, policy permitting) packets to send: `bufs[slot][range]`, whole IP
/// packets, per family; those in `udp4`/`udp6` are ESP in UDP and leave through the NAT-T
/// socket (segmented), the others through the raw socket.
pub(super) struct EspJob {
    pub bufs: Vec<Vec<u8>>,
    pub tx4: Vec<(usize, Range<usize>)>,
    pub tx6: Vec<(usize, Range<usize>)>,
    pub udp4: Vec<(usize, Range<usize>)>,
    pub udp6: Vec<(usize, Range<usize>)>,
}

/// Decapsulated packets for the TUN: `bufs[..n]`, each behind `offset` bytes.
pub(super) struct TunJob {
    pub bufs: Vec<Vec<u8>>,
    pub n: usize,
}

pub(super) enum Job {
    Esp(EspJob),
    Tun(TunJob),
}

/// The sockets and device the writer sends on.
pub(super) struct WriterIo {
    pub esp: EspSocket,
    pub esp6: Option<EspSocket>,
    /// The NAT-T sockets, for ESP in UDP.
    pub natt: IkeSocket,
    pub natt6: Option<IkeSocket>,
    pub tun: Arc<Tun>,
    /// Where packets sit in a TUN buffer (room for the virtio-net header before).
    pub tun_offset: usize,
    /// Packets per `sendmmsg(2)`.
    pub batch: usize,
}

/// The data-plane thread's end: a sending thread, or the sending done in place.
pub(super) enum Writer {
    Thread {
        jobs: Option<SyncSender<Job>>,
        esp_free: Receiver<EspJob>,
        tun_free: Receiver<TunJob>,
        thread: Option<JoinHandle<()>>,
    },
    Inline {
        sending: Box<Sending>,
        esp_free: Vec<EspJob>,
        tun_free: Vec<TunJob>,
    },
}

impl Writer {
    /// Sends in place, on the data-plane thread, with `esp_pool` and `tun_pool` as the
    /// buffer sets (one of each is enough).
    pub fn inline(
        io: WriterIo,
        stats: Arc<DataStats>,
        esp_pool: Vec<EspJob>,
        tun_pool: Vec<TunJob>,
    ) -> Writer {
        Writer::Inline {
            sending: Box::new(Sending::new(io, stats)),
            esp_free: esp_pool,
            tun_free: tun_pool,
        }
    }

    /// Starts the thread with `esp_pool` and `tun_pool` as the buffer sets in circulation.
    pub fn spawn(
        io: WriterIo,
        stats: Arc<DataStats>,
        esp_pool: Vec<EspJob>,
        tun_pool: Vec<TunJob>,
    ) -> io::Result<Writer> {
        let (jobs_tx, jobs) = sync_channel(esp_pool.len() + tun_pool.len());
        let (esp_back, esp_free) = channel();
        let (tun_back, tun_free) = channel();
        for j in esp_pool {
            let _ = esp_back.send(j);
        }
        for j in tun_pool {
            let _ = tun_back.send(j);
        }
        let thread = std::thread::Builder::new()
            .name("dataplane-tx".into())
            .spawn(move || run(Sending::new(io, stats), jobs, esp_back, tun_back))?;
        Ok(Writer::Thread {
            jobs: Some(jobs_tx),
            esp_free,
            tun_free,
            thread: Some(thread),
        })
    }

    /// A free set of IPsec buffers (waits for the writer to finish one); `None` if the
    /// writer is gone.
    pub fn esp_buffers(&mut self) -> Option<EspJob> {
        match self {
            Writer::Thread { esp_free, .. } => esp_free.recv().ok(),
            Writer::Inline { esp_free, .. } => esp_free.pop(),
        }
    }

    /// A free set of TUN buffers, as [`Writer::esp_buffers`].
    pub fn tun_buffers(&mut self) -> Option<TunJob> {
        match self {
            Writer::Thread { tun_free, .. } => tun_free.recv().ok(),
            Writer::Inline { tun_free, .. } => tun_free.pop(),
        }
    }

    /// Hands a set over for sending (an empty one just comes back).
    pub fn send_esp(&mut self, mut job: EspJob) {
        match self {
            Writer::Thread { jobs, .. } => {
                if let Some(jobs) = jobs {
                    let _ = jobs.send(Job::Esp(job));
                }
            }
            Writer::Inline {
                sending, esp_free, ..
            } => {
                sending.esp(&mut job);
                esp_free.push(job);
            }
        }
    }

    /// Hands a set of TUN packets over for writing.
    pub fn send_tun(&mut self, mut job: TunJob) {
        match self {
            Writer::Thread { jobs, .. } => {
                if let Some(jobs) = jobs {
                    let _ = jobs.send(Job::Tun(job));
                }
            }
            Writer::Inline {
                sending, tun_free, ..
            } => {
                sending.tun(&mut job);
                tun_free.push(job);
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Writer::Thread { jobs, thread, .. } = self {
            // The writer finishes what it has, sees the channel closed, and ends.
            *jobs = None;
            if let Some(t) = thread.take() {
                let _ = t.join();
            }
        }
    }
}

fn run(
    mut sending: Sending,
    jobs: Receiver<Job>,
    esp_back: Sender<EspJob>,
    tun_back: Sender<TunJob>,
) {
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Esp(mut job) => {
                sending.esp(&mut job);
                let _ = esp_back.send(job);
            }
            Job::Tun(mut job) => {
                sending.tun(&mut job);
                let _ = tun_back.send(job);
            }
        }
    }
}

thread_local! {
    /// The `mmsghdr` arrays of the raw sockets' batches, per sending thread: they hold raw
    /// pointers and are not `Send`, and the sending state moves to its thread.
    static BATCH: RefCell<Option<EspBatch>> = const { RefCell::new(None) };
}

/// What sending needs besides the buffers.
pub(super) struct Sending {
    io: WriterIo,
    stats: Arc<DataStats>,
    gro: TunGro,
    /// Until the kernel refuses segmentation once; then ESP in UDP goes out whole
    /// through the raw socket, as it can on any kernel.
    gso: bool,
}

impl Sending {
    fn new(io: WriterIo, stats: Arc<DataStats>) -> Sending {
        Sending {
            io,
            stats,
            gro: TunGro::new(),
            gso: true,
        }
    }

    /// Sends a set of IPsec packets and empties its queues.
    fn esp(&mut self, job: &mut EspJob) {
        BATCH.with_borrow_mut(|batch| {
            let batch = batch.get_or_insert_with(|| EspBatch::new(self.io.batch));
            self.esp_with(batch, job);
        });
    }

    fn esp_with(&mut self, batch: &mut EspBatch, job: &mut EspJob) {
        let io = &self.io;
        // ESP in UDP: segmented sends; what they did not take (all of it once the
        // kernel refused segmentation) goes whole through the raw socket.
        for (socket, raw, queue) in [
            (Some(&io.natt), Some(&io.esp), &mut job.udp4),
            (io.natt6.as_ref(), io.esp6.as_ref(), &mut job.udp6),
        ] {
            if queue.is_empty() {
                continue;
            }
            let sent = match socket {
                Some(s) if self.gso => send_segmented(s, &job.bufs, queue, &mut self.gso),
                _ => 0,
            };
            self.stats.esp_tx.fetch_add(sent as u64, Ordering::Relaxed);
            send_raw(&self.stats, raw, batch, &job.bufs, &queue[sent..]);
            queue.clear();
        }
        for (raw, queue) in [
            (Some(&io.esp), &mut job.tx4),
            (io.esp6.as_ref(), &mut job.tx6),
        ] {
            send_raw(&self.stats, raw, batch, &job.bufs, queue);
            queue.clear();
        }
    }

    /// Writes a set of decapsulated packets to the TUN.
    fn tun(&mut self, job: &mut TunJob) {
        let n = std::mem::take(&mut job.n);
        if n == 0 {
            return;
        }
        let io = &self.io;
        match io
            .tun
            .send_batch(&mut self.gro, &mut job.bufs[..n], io.tun_offset)
        {
            Ok(_) => {
                self.stats.tun_tx.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => {
                DataStats::bump(&self.stats.send_errors);
                debug!(error = %e, "TUN write failed");
            }
        }
    }
}

/// Sends whole IP packets through a raw socket (none: counted as failed) and counts.
fn send_raw(
    stats: &DataStats,
    raw: Option<&EspSocket>,
    batch: &mut EspBatch,
    bufs: &[Vec<u8>],
    packets: &[(usize, Range<usize>)],
) {
    if packets.is_empty() {
        return;
    }
    let o = match raw {
        Some(r) => r.send_batch(batch, bufs, packets),
        None => crate::sys::SendOutcome {
            failed: packets.len(),
            ..Default::default()
        },
    };
    stats.esp_tx.fetch_add(o.sent as u64, Ordering::Relaxed);
    if o.failed > 0 {
        stats
            .send_errors
            .fetch_add(o.failed as u64, Ordering::Relaxed);
        debug!(failed = o.failed, error = ?o.last_error, "send failed");
    }
}

/// Sends the ESP-in-UDP packets of `queue` through `socket`, each run to one peer in as
/// few segmented sends as the kernel allows. Returns how many packets from the front it
/// sent; stops early, with `gso` cleared, if the kernel refuses segmentation, and skips
/// (counting them as sent is wrong, so it stops there too) on any other error.
fn send_segmented(
    socket: &IkeSocket,
    bufs: &[Vec<u8>],
    queue: &[(usize, Range<usize>)],
    gso: &mut bool,
) -> usize {
    let packet = |i: usize| {
        let (slot, range) = &queue[i];
        bufs.get(*slot)
            .and_then(|b| b.get(range.clone()))
            .unwrap_or(&[])
    };
    let mut iov = [IoSlice::new(&[]); GSO_MAX_SEGMENTS];
    let mut at = 0;
    while at < queue.len() {
        let p = packet(at);
        let Some(first) = udp_datagram(p) else {
            // Not UDP after all: the raw socket sends it and what follows, as built.
            return at;
        };
        // Each packet's headers read once, as it joins (the one that ends a group is
        // read again as the next group's first).
        let mut group = Group::start(first.payload.len());
        iov[0] = IoSlice::new(&p[first.payload.clone()]);
        let mut next = at + 1;
        while next < queue.len() {
            let p = packet(next);
            match udp_datagram(p) {
                Some(d)
                    if d.local == first.local
                        && d.remote == first.remote
                        && group.admit(d.payload.len()) =>
                {
                    iov[group.len() - 1] = IoSlice::new(&p[d.payload]);
                    next += 1;
                }
                _ => break,
            }
        }
        let n = group.len();
        // At most a datagram's length: the SAD builds packets of at most 64 KiB.
        let size = group.size() as u16;
        match socket.send_segments(&iov[..n], size, first.local, first.remote) {
            Ok(_) => at = next,
            // The socket is the data plane's, non-blocking: wait for room, then again.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLOUT)];
                if !matches!(poll(&mut fds, PollTimeout::from(100u8)), Ok(1..)) {
                    return at;
                }
            }
            Err(e) => {
                if n > 1 && matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL)) {
                    warn!(error = %e, "UDP segmentation refused; ESP in UDP goes out unsegmented");
                    *gso = false;
                } else {
                    debug!(error = %e, "ESP-in-UDP send failed");
                }
                return at;
            }
        }
    }
    at
}
