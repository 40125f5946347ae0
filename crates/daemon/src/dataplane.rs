//! The data-plane workers: each owns the SAs of some peers (`sys::shard_of`) and moves
//! packets between its queue of the TUN device and its IPsec sockets, asking the IPsec
//! callouts what policy wants for each flow.
//!
//! One thread per worker, one `poll(2)` over its TUN queue, its raw ESP socket, its NAT-T
//! socket and a wake-up socket for commands; a worker's SAD is never shared, so no lock
//! is taken per packet and packets of one SA stay in order. The kernel delivers ESP from
//! a peer to the sockets of the worker that owns the peer (the sockets' BPF programs
//! compute `shard_of` too); the TUN spreads flows over its queues by their hash, so a
//! packet read for another worker's peer is handed to it (`handoff.rs`).
//!
//! Packets move in batches through buffers the data plane allocates once: a TUN read
//! (with offloads, a TSO aggregate split into segments) fills slots that are classified
//! and encapsulated in place and leave with one `sendmmsg(2)` (ESP in UDP: segmented
//! sends, gso.rs); ESP comes in with `recvmmsg(2)` (in UDP: coalesced by GRO), is opened
//! in place, and the inner packets go to the TUN in one batch whose TCP segments are
//! coalesced (GRO) where the TUN has offloads. The sending is writer.rs's, in the worker
//! or, configured so, on a thread of its own that owns no SA: the SAD stays the
//! worker's alone.

use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use palisade_esp::fragmentation::{Fragments, fragment_in_place};
use palisade_esp::reassembly::{Pushed, Reassembly, ReassemblyDrop, ReassemblyLimits};
use palisade_esp::transport_nat;
use palisade_esp::{
    DfPolicy, Direction, DropReason, EspError, LifetimeEvent, MAX_HEADROOM, MAX_TAILROOM, Packet,
    Sad,
};
use palisade_ike::{Acquire, ChildSa, Expiry};
use palisade_wire::IPV6_HEADER_LEN;
use serde_json::json;
use tracing::{debug, info, warn};

use crate::events::EventRing;
use crate::ipsec_callout::{Flow, Inbound, IpsecCallout, Outbound, Protection, reason};
use crate::keying::KeyingInput;
use crate::sa_table::{ChildEntry, SaTable};
use crate::stats::DataStats;
use crate::sys::tun::{IDEAL_BATCH_SIZE, VIRTIO_NET_HDR_LEN};
use crate::sys::{Datagram, EspBatch, EspSocket, IkeSocket, Tun, UdpBatch, esp_socket, shard_of};

mod activity;
mod gso;
mod handoff;
mod writer;

use activity::ActivityReports;
use handoff::Handoffs;
use writer::{EspJob, TunJob, Writer, WriterIo};

/// Largest packet the TUN gives whole (jumbo frames are not expected on it).
const MAX_PACKET: usize = 9216;
/// Largest datagram put back together from fragments: IPv6's without a jumbogram (a
/// payload of 65,535 bytes behind its header); IPv4's total length stops at 65,535.
const MAX_DATAGRAM: usize = IPV6_HEADER_LEN + 65_535;
/// A buffer for a packet of `len` bytes: room to grow it into its IPsec form in place,
/// and to cut that into fragments.
const fn slot_len(len: usize) -> usize {
    MAX_HEADROOM + len + MAX_TAILROOM + 256 + frag_room(len)
}
/// Room after a packet of `len` bytes for the headers of the fragments it leaves in: at
/// the smallest TUN MTU (576), each fragment carries at least 512 bytes and adds at most
/// 64 (an IPv4 header with options, or IPv6's and its Fragment header).
const fn frag_room(len: usize) -> usize {
    (len / 512 + 2) * 64
}
/// One buffer: any packet the TUN gives. A datagram put back together from fragments
/// may be longer; the buffer it lands in grows for it (`reassemble`) and shrinks back
/// when its batch is used again (`reclaim`).
const SLOT: usize = slot_len(MAX_PACKET);
/// Slots one TUN read may fill: the segments of one TSO aggregate at the smallest MSS.
const READ_ROOM: usize = IDEAL_BATCH_SIZE;
/// TUN -> IPsec slots: TUN reads fill them until fewer than `READ_ROOM` are free, then
/// the batch is sent.
const OUT_SLOTS: usize = 2 * READ_ROOM;
/// IPsec -> TUN slots, one `recvmmsg(2)`.
const IN_SLOTS: usize = 64;
/// An IPsec -> TUN slot: the longest IP packet, which the kernel may have put back
/// together from fragments (see [`Slots`] for what is resident).
const IN_SLOT: usize = MAX_DATAGRAM;
/// NAT-T slots, one `recvmmsg(2)`: each holds what UDP GRO may coalesce (64 KiB).
const NATT_SLOTS: usize = 16;
/// Receive queue of the NAT-T sockets, as deep as the raw ESP socket's.
const NATT_QUEUE: usize = 8 << 20;
/// A NAT-T slot: headroom for the IP and UDP headers put back in front of each segment,
/// and the largest datagram.
const NATT_SLOT: usize = MAX_HEADROOM + 65_535;
/// Batches per source before the others get a turn.
const ROUNDS: usize = 4;
/// Where decapsulated packets sit in a TUN write buffer: behind the virtio-net header.
const TUN_TX_OFFSET: usize = VIRTIO_NET_HDR_LEN;
/// A TUN write buffer: one packet (GRO writes a flow's segments from where they lie; it
/// was 64 KiB more when it appended them to the first, 14 MiB per worker in all).
const TUN_TX_CAPACITY: usize = TUN_TX_OFFSET + MAX_PACKET;
/// Buffer sets per direction in circulation between the two threads: one being
/// filled, one being sent, one ready.
const SETS: usize = 3;
/// Negotiation discovery: how long clear traffic to a peer goes without a new acquire.
const ND_RETRY: Duration = Duration::from_secs(10);
/// How long a deleted pair's inbound SA still opens packets. A rekey's DELETE comes on
/// the IKE socket and overtakes the ESP the peer sent on the old SA just before it
/// switched, still in the raw socket's deep queue (thousands of packets at full rate):
/// without this, each rekey drops them all as unknown SPIs and TCP backs off. The SA's
/// keys stay as good as they were; a hard-expired SA is refused by the SAD anyway.
const INBOUND_GRACE: Duration = Duration::from_secs(2);

/// What other threads ask of the data plane.
pub enum DataCommand {
    /// Install a negotiated CHILD_SA pair and send what waited for it.
    Install(Box<ChildSa>),
    /// Remove the pair one of whose SPIs is `spi`.
    Delete {
        /// Either SPI.
        spi: u32,
    },
    /// The negotiation with this peer failed: drop what waited for it.
    PeerFailed(IpAddr),
    /// Report the SAs and counters.
    Snapshot(Sender<DataSnapshot>),
    /// Answer once every command sent before this one has been carried out.
    Fence(Sender<()>),
    /// Stop.
    Shutdown,
}

/// The data plane's view for `sa list` and `stats`.
#[derive(Debug, Clone, Default)]
pub struct DataSnapshot {
    /// Each pair with its two SAs' counters.
    pub children: Vec<ChildSnapshot>,
    /// Drops over all SAs by reason (the SAD's global counters).
    pub drops: Vec<(&'static str, u64)>,
}

/// One pair.
#[derive(Debug, Clone)]
pub struct ChildSnapshot {
    /// The pair.
    pub entry: ChildEntry,
    /// Inbound counters.
    pub inbound: palisade_esp::SaCounters,
    /// Outbound counters.
    pub outbound: palisade_esp::SaCounters,
    /// Seconds since installation.
    pub age: Duration,
    /// The worker that holds it.
    pub worker: usize,
}

/// Sends commands to the data-plane workers and wakes them.
#[derive(Clone)]
pub struct DataHandle {
    workers: Arc<[WorkerLink]>,
}

struct WorkerLink {
    tx: Sender<DataCommand>,
    wake: Arc<UnixDatagram>,
    /// Set with each command: a draining worker looks at it between rounds.
    pending: Arc<AtomicBool>,
}

impl DataHandle {
    /// Queues `cmd` for the worker it concerns (every worker for `Delete`, `Snapshot` and
    /// `Fence`, which then get one answer per worker, and `Shutdown`; [`DataHandle::fence`]
    /// asks only the owners of some peers); a stopped data plane ignores it.
    pub fn send(&self, cmd: DataCommand) {
        let n = self.workers.len();
        match cmd {
            DataCommand::Install(child) => {
                self.to(shard_of(child.remote, n), DataCommand::Install(child));
            }
            DataCommand::PeerFailed(peer) => {
                self.to(shard_of(peer, n), DataCommand::PeerFailed(peer));
            }
            // Only the worker holding the pair acts on it.
            DataCommand::Delete { spi } => self.to_all(|| DataCommand::Delete { spi }),
            DataCommand::Snapshot(reply) => self.to_all(|| DataCommand::Snapshot(reply.clone())),
            DataCommand::Fence(reply) => self.to_all(|| DataCommand::Fence(reply.clone())),
            DataCommand::Shutdown => self.to_all(|| DataCommand::Shutdown),
        }
    }

    /// Queues a command made by `make` for every worker.
    fn to_all(&self, make: impl Fn() -> DataCommand) {
        for w in 0..self.workers.len() {
            self.to(w, make());
        }
    }

    fn to(&self, worker: usize, cmd: DataCommand) {
        let Some(w) = self.workers.get(worker) else {
            return;
        };
        if w.tx.send(cmd).is_ok() {
            w.pending.store(true, Ordering::Release);
            // A full wake socket already means a wake-up is pending.
            let _ = w.wake.send(&[1]);
        }
    }

    /// Waits until the workers that own `peers` have carried out the commands sent
    /// before, at most `timeout`; false if one did not answer in time. The keying thread
    /// fences SA installs before it sends the IKE message that lets the peer use them.
    /// (Blocking: handing the wait to the keying loop as a message was measured slower,
    /// 5-10 % fewer IKE setups per second, each answer costing a loop turn.)
    pub fn fence(&self, peers: &[IpAddr], timeout: Duration) -> bool {
        let n = self.workers.len();
        let mut owners: Vec<usize> = peers.iter().map(|p| shard_of(*p, n)).collect();
        owners.sort_unstable();
        owners.dedup();
        self.fence_workers(&owners, timeout)
    }

    /// Whether every worker answers within `timeout` (the systemd watchdog's check).
    pub fn responsive(&self, timeout: Duration) -> bool {
        let all: Vec<usize> = (0..self.workers.len()).collect();
        self.fence_workers(&all, timeout)
    }

    fn fence_workers(&self, owners: &[usize], timeout: Duration) -> bool {
        let (tx, rx) = channel();
        for &w in owners {
            self.to(w, DataCommand::Fence(tx.clone()));
        }
        let deadline = Instant::now() + timeout;
        owners.iter().all(|_| {
            rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .is_ok()
        })
    }

    /// The SAs and counters of all workers, or `None` if one does not answer in time.
    pub fn snapshot(&self) -> Option<DataSnapshot> {
        let (tx, rx) = channel();
        self.send(DataCommand::Snapshot(tx));
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut all = DataSnapshot::default();
        for _ in 0..self.workers.len() {
            let part = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .ok()?;
            all.children.extend(part.children);
            for (reason, n) in part.drops {
                match all.drops.iter_mut().find(|(r, _)| *r == reason) {
                    Some((_, total)) => *total += n,
                    None => all.drops.push((reason, n)),
                }
            }
        }
        Some(all)
    }
}

/// The data plane's settings.
#[derive(Debug, Clone, Copy)]
pub struct DataSettings {
    /// Packets held per peer while its SA is negotiated.
    pub queue_per_peer: usize,
    /// The IKE port acquires name.
    pub ike_port: u16,
    /// Whether each worker sends through a thread of its own (`dataplane.sender_threads`).
    pub sender_threads: bool,
    /// The TUN's MTU (`tun.mtu`): the kernel cuts longer datagrams into fragments for
    /// it, and a datagram put back together leaves in fragments no longer than this.
    pub mtu: u16,
}

/// The OS objects one data-plane worker runs on.
pub struct DataIo {
    /// Protected traffic from the kernel, decapsulated traffic to it: the worker's queue.
    pub tun: Tun,
    /// Raw ESP in (from the worker's peers), all IPsec out.
    pub esp: EspSocket,
    /// The NAT-T port (the worker's socket of the port's group): ESP in UDP in, IKE to be
    /// passed on.
    pub natt: IkeSocket,
    /// The IPv6 raw ESP socket, where the host has IPv6.
    pub esp6: Option<EspSocket>,
    /// The IPv6 NAT-T socket, where the host has IPv6.
    pub natt6: Option<IkeSocket>,
}

/// What makes a data plane one worker among several.
struct Worker {
    index: usize,
    workers: usize,
    handoffs: Handoffs,
    commands: Receiver<DataCommand>,
    wake: UnixDatagram,
    pending: Arc<AtomicBool>,
}

/// One worker's state.
pub struct Dataplane {
    /// This worker's number, and how many there are.
    index: usize,
    workers: usize,
    /// Packets for other workers' peers, and theirs for ours.
    handoffs: Handoffs,
    /// Packets held for negotiation, as last added to `DataStats::queued`.
    held_reported: u64,
    /// Shared with the writer (it writes on this queue: another queue of its own would
    /// also get a share of the reads).
    tun: Arc<Tun>,
    esp: EspSocket,
    natt: IkeSocket,
    esp6: Option<EspSocket>,
    natt6: Option<IkeSocket>,
    writer: Writer,
    sad: Sad,
    table: SaTable,
    callout: IpsecCallout,
    commands: Receiver<DataCommand>,
    wake: UnixDatagram,
    /// Commands were sent since this worker last looked ([`Dataplane::between_rounds`]).
    commands_pending: Arc<AtomicBool>,
    /// A command said stop while the worker was draining.
    stopping: bool,
    keying: Sender<KeyingInput>,
    stats: Arc<DataStats>,
    events: Arc<EventRing>,
    ready: Arc<AtomicBool>,
    ike_port: u16,
    /// One packet: held packets' buffer.
    buf: Vec<u8>,
    /// Lengths of the packets in the TUN -> IPsec slots.
    out_sizes: Vec<usize>,
    /// A raw TUN read: virtio-net header and up to 64 KiB.
    tun_scratch: Vec<u8>,
    /// IPsec -> TUN slots and lengths.
    inb: Slots,
    inb_lens: Vec<usize>,
    /// NAT-T slots, and what each received.
    natt_inb: Slots,
    natt_got: Vec<Option<Datagram>>,
    /// Decapsulated packets being gathered for the writer.
    tun_tx: Option<TunJob>,
    lifetime_events: Vec<LifetimeEvent>,
    /// Negotiation discovery: when each peer was last asked for an SA.
    nd_acquired: HashMap<IpAddr, Instant>,
    /// Peers whose ESP arrived on SAs we do not hold, and when we last negotiated anew.
    stale_acquired: HashMap<IpAddr, Instant>,
    /// Deleted pairs whose inbound SA opens late packets until the deadline.
    retiring: Vec<(Instant, ChildEntry)>,
    /// Traffic reported to the keying thread: ESP in UDP sent, ESP received.
    sent_activity: ActivityReports,
    received_activity: ActivityReports,
    /// The TUN's MTU, which reassembled datagrams leave in fragments of.
    mtu: usize,
    /// Datagrams being put back together from the fragments the TUN gave, and where a
    /// complete one is written.
    reassembly: Reassembly,
    reassembled: Vec<u8>,
    /// Identifications of the fragments this worker makes: a count (of the datagrams
    /// it cut) hashed with keys drawn at start, so that they do not repeat soon and are
    /// not sequential, hence hard to predict off the path (RFC 7739).
    fragment_ids: ahash::RandomState,
    datagrams_cut: u64,
}

impl Dataplane {
    /// One worker per element of `ios` (worker `i` on `ios[i]`, whose sockets must receive
    /// what comes from the peers `shard_of(peer, ios.len()) == i`), and the handle that
    /// commands them. Run each on its own thread.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ios: Vec<DataIo>,
        callout: IpsecCallout,
        keying: Sender<KeyingInput>,
        stats: Arc<DataStats>,
        events: Arc<EventRing>,
        ready: Arc<AtomicBool>,
        settings: DataSettings,
    ) -> io::Result<(Vec<Dataplane>, DataHandle)> {
        let workers = ios.len();
        if workers == 0 {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                "a data plane needs at least one worker",
            ));
        }
        let mut wakes = Vec::with_capacity(workers);
        let mut links = Vec::with_capacity(workers);
        let mut ends = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, commands) = channel();
            let (wake_tx, wake) = UnixDatagram::pair()?;
            wake_tx.set_nonblocking(true)?;
            wake.set_nonblocking(true)?;
            let wake_tx = Arc::new(wake_tx);
            wakes.push(wake_tx.clone());
            let pending = Arc::new(AtomicBool::new(false));
            links.push(WorkerLink {
                tx,
                wake: wake_tx,
                pending: pending.clone(),
            });
            ends.push((commands, wake, pending));
        }
        let handoffs = Handoffs::mesh(&wakes);
        let mut planes = Vec::with_capacity(workers);
        for (index, ((io, (commands, wake, pending)), handoffs)) in
            ios.into_iter().zip(ends).zip(handoffs).enumerate()
        {
            // One callout per worker, sharing the memory of secured flows.
            let callout = callout.share();
            planes.push(Dataplane::worker(
                io,
                Worker {
                    index,
                    workers,
                    handoffs,
                    commands,
                    wake,
                    pending,
                },
                callout,
                keying.clone(),
                stats.clone(),
                events.clone(),
                ready.clone(),
                settings,
            )?);
        }
        let handle = DataHandle {
            workers: links.into(),
        };
        Ok((planes, handle))
    }

    #[allow(clippy::too_many_arguments)]
    fn worker(
        io: DataIo,
        worker: Worker,
        callout: IpsecCallout,
        keying: Sender<KeyingInput>,
        stats: Arc<DataStats>,
        events: Arc<EventRing>,
        ready: Arc<AtomicBool>,
        settings: DataSettings,
    ) -> io::Result<Dataplane> {
        let DataSettings {
            queue_per_peer,
            ike_port,
            sender_threads,
            mtu,
        } = settings;
        // One poll(2) serves all three: each is drained until it would block.
        io.tun.set_nonblocking(true)?;
        io.esp.set_nonblocking(true)?;
        io.natt.set_nonblocking(true)?;
        if let Some(s) = &io.esp6 {
            s.set_nonblocking(true)?;
        }
        if let Some(s) = &io.natt6 {
            s.set_nonblocking(true)?;
        }
        // Coalesced ESP in UDP costs one receive per 64 KiB instead of one per packet;
        // without it (older kernels) each datagram comes on its own, which also works.
        for s in std::iter::once(&io.natt).chain(io.natt6.as_ref()) {
            if let Err(e) = s.enable_gro() {
                warn!(error = %e, "UDP GRO unavailable on the NAT-T socket");
            }
            if let Err(e) = s.set_receive_queue(NATT_QUEUE) {
                warn!(error = %e, "the NAT-T socket keeps its default receive queue");
            }
            if let Err(e) = s.clear_df() {
                warn!(error = %e, "ESP in UDP keeps DF: a narrower path drops it");
            }
        }
        let DataIo {
            tun,
            esp,
            natt,
            esp6,
            natt6,
        } = io;
        let tun = Arc::new(tun);
        let esp_pool = (0..SETS)
            .map(|_| EspJob {
                bufs: vec![vec![0; SLOT]; OUT_SLOTS],
                tx4: Vec::with_capacity(OUT_SLOTS),
                tx6: Vec::with_capacity(OUT_SLOTS),
                udp4: Vec::with_capacity(OUT_SLOTS),
                udp6: Vec::with_capacity(OUT_SLOTS),
            })
            .collect();
        let tun_pool = (0..SETS)
            .map(|_| TunJob {
                bufs: (0..IN_SLOTS)
                    .map(|_| Vec::with_capacity(TUN_TX_CAPACITY))
                    .collect(),
                n: 0,
            })
            .collect();
        let writer_io = WriterIo {
            esp: esp.try_clone()?,
            esp6: esp6.as_ref().map(EspSocket::try_clone).transpose()?,
            natt: natt.try_clone()?,
            natt6: natt6.as_ref().map(IkeSocket::try_clone).transpose()?,
            tun: tun.clone(),
            tun_offset: TUN_TX_OFFSET,
            batch: OUT_SLOTS,
        };
        let writer = if sender_threads {
            Writer::spawn(writer_io, stats.clone(), esp_pool, tun_pool)?
        } else {
            Writer::inline(writer_io, stats.clone(), esp_pool, tun_pool)
        };
        let Worker {
            index,
            workers,
            handoffs,
            commands,
            wake,
            pending,
        } = worker;
        Ok(Dataplane {
            index,
            workers,
            handoffs,
            held_reported: 0,
            tun,
            esp,
            natt,
            esp6,
            natt6,
            writer,
            sad: Sad::new(),
            table: SaTable::new(queue_per_peer),
            callout,
            commands,
            wake,
            commands_pending: pending,
            stopping: false,
            keying,
            stats,
            events,
            ready,
            ike_port,
            mtu: usize::from(mtu),
            reassembly: Reassembly::new(ReassemblyLimits {
                max_len: MAX_DATAGRAM,
                ..ReassemblyLimits::default()
            }),
            reassembled: vec![0; MAX_DATAGRAM],
            fragment_ids: ahash::RandomState::new(),
            datagrams_cut: 0,
            buf: vec![0; SLOT],
            out_sizes: vec![0; OUT_SLOTS],
            tun_scratch: vec![0; VIRTIO_NET_HDR_LEN + 65_535 + 256],
            inb: Slots::new(IN_SLOTS, IN_SLOT),
            inb_lens: vec![0; IN_SLOTS],
            natt_inb: Slots::new(NATT_SLOTS, NATT_SLOT),
            natt_got: vec![None; NATT_SLOTS],
            tun_tx: None,
            lifetime_events: Vec::new(),
            nd_acquired: HashMap::new(),
            stale_acquired: HashMap::new(),
            retiring: Vec::new(),
            sent_activity: ActivityReports::default(),
            received_activity: ActivityReports::default(),
        })
    }

    /// Runs until `Shutdown` or until every handle is gone.
    pub fn run(mut self) {
        self.ready.store(true, Ordering::Release);
        info!(
            tun = self.tun.name(),
            offload = self.tun.offload(),
            "data plane running"
        );
        // Here, not in the struct: the mmsghdr arrays hold raw pointers (not `Send`), and
        // the data plane is built on another thread than the one it runs on.
        let mut batch = EspBatch::new(IN_SLOTS);
        let mut udp = UdpBatch::new(NATT_SLOTS);
        loop {
            let timeout = self
                .sad
                .next_deadline()
                .map_or(Duration::from_secs(1), |d| {
                    d.saturating_duration_since(Instant::now())
                })
                .min(Duration::from_secs(1));
            // A fixed array, no allocation per wake-up: an absent IPv6 socket polls the
            // wake-up socket in its place and is never read; the wake-up socket is last.
            let mut ready = [false; SOURCES.len()];
            let wake = {
                let wake_fd = self.wake.as_fd();
                let pollfd = |fd| PollFd::new(fd, PollFlags::POLLIN);
                let [s0, s1, s2, s3, s4] = SOURCES.map(|s| self.fd(s).unwrap_or(wake_fd));
                let mut fds = [
                    pollfd(s0),
                    pollfd(s1),
                    pollfd(s2),
                    pollfd(s3),
                    pollfd(s4),
                    pollfd(wake_fd),
                ];
                let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
                match poll(&mut fds, ms) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        warn!(error = %e, "poll failed; data plane stops");
                        break;
                    }
                }
                let is_ready = |f: &PollFd| {
                    f.revents()
                        .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLERR))
                };
                for (i, s) in SOURCES.iter().enumerate() {
                    ready[i] = self.fd(*s).is_some() && is_ready(&fds[i]);
                }
                is_ready(&fds[SOURCES.len()])
            };
            if wake {
                if !self.commands() {
                    break;
                }
                self.take_handoffs();
            }
            for (source, ready) in SOURCES.into_iter().zip(ready) {
                if ready && !self.stopping {
                    self.drain(source, &mut batch, &mut udp);
                }
            }
            if self.stopping {
                break;
            }
            self.lifetimes();
            self.retire();
            self.reassembly.expire(Instant::now());
        }
        self.ready.store(false, Ordering::Release);
        info!("data plane stopped");
    }

    /// Adds this worker's change in held packets to the global gauge.
    fn report_held(&mut self) {
        let held = self.table.held() as u64;
        if held >= self.held_reported {
            let up = held - self.held_reported;
            self.stats.queued.fetch_add(up, Ordering::Relaxed);
        } else {
            let down = self.held_reported - held;
            self.stats.queued.fetch_sub(down, Ordering::Relaxed);
        }
        self.held_reported = held;
    }

    /// Packets other workers read for this worker's peers: sent as if read here.
    fn take_handoffs(&mut self) {
        while let Some(batch) = self.handoffs.recv() {
            let now = Instant::now();
            let mut job: Option<EspJob> = None;
            let mut k = 0;
            for packet in batch.packets() {
                if job.is_none() {
                    job = self.writer.esp_buffers();
                    if let Some(j) = job.as_mut() {
                        reclaim(&mut j.bufs);
                    }
                    k = 0;
                }
                let Some(j) = job.as_mut() else {
                    DataStats::bump(&self.stats.send_errors);
                    continue;
                };
                let n = place(&mut j.bufs[k], MAX_HEADROOM, packet);
                if let Some((range, via)) = self.outbound(&mut j.bufs[k], MAX_HEADROOM, n, now) {
                    queue_out(j, k, range, via);
                }
                k += 1;
                if k == OUT_SLOTS
                    && let Some(full) = job.take()
                {
                    self.writer.send_esp(full);
                }
            }
            if let Some(j) = job {
                self.writer.send_esp(j);
            }
            self.handoffs.give_back(batch);
        }
    }

    fn fd(&self, source: Source) -> Option<std::os::fd::BorrowedFd<'_>> {
        match source {
            Source::Tun => Some(self.tun.as_fd()),
            Source::Esp => Some(self.esp.as_fd()),
            Source::Natt => Some(self.natt.as_fd()),
            Source::Esp6 => self.esp6.as_ref().map(|s| s.as_fd()),
            Source::Natt6 => self.natt6.as_ref().map(|s| s.as_fd()),
        }
    }

    /// Runs the commands that came in during a drain, which can take milliseconds under
    /// load: an SA install must not wait that long, or the peer's first packets on the
    /// new SA arrive before it. Also sends what other workers handed over meanwhile,
    /// which would otherwise fill their handoff batches. False once a command said stop.
    fn between_rounds(&mut self) -> bool {
        if self.commands_pending.load(Ordering::Acquire) && !self.commands() {
            self.stopping = true;
        }
        self.take_handoffs();
        !self.stopping
    }

    /// Runs the queued commands; false on `Shutdown` or when all handles are gone.
    fn commands(&mut self) -> bool {
        // Cleared before the queue is read: a command sent meanwhile sets it again.
        self.commands_pending.store(false, Ordering::Release);
        let mut sink = [0u8; 64];
        while self.wake.recv(&mut sink).is_ok() {}
        loop {
            match self.commands.try_recv() {
                Ok(DataCommand::Install(child)) => self.install(&child),
                Ok(DataCommand::Delete { spi }) => self.delete(spi),
                Ok(DataCommand::PeerFailed(peer)) => {
                    let n = self.table.drop_held(peer) as u64;
                    self.stats
                        .acquire_failed_drops
                        .fetch_add(n, Ordering::Relaxed);
                    self.report_held();
                }
                Ok(DataCommand::Snapshot(reply)) => {
                    let _ = reply.send(self.snapshot());
                }
                Ok(DataCommand::Fence(reply)) => {
                    let _ = reply.send(());
                }
                Ok(DataCommand::Shutdown) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    fn install(&mut self, child: &ChildSa) {
        let now = Instant::now();
        let [inbound, mut outbound] = child.sa_configs();
        // No inner host hears of a narrower path from us (no ICMP "fragmentation
        // needed" back into the TUN), so DF on what we send would let such a path drop
        // it silently: every IPv4 packet leaves with DF clear, for that path to
        // fragment (WFP's CLEAR_DF_ON_TUNNEL, in transport mode too).
        outbound.config.df = DfPolicy::Clear;
        let inbound = match self.sad.install(inbound.config, inbound.keymat, now) {
            Ok(h) => h,
            Err(e) => {
                warn!(error = %e, "inbound SA refused by the SAD");
                return;
            }
        };
        let outbound = match self.sad.install(outbound.config, outbound.keymat, now) {
            Ok(h) => h,
            Err(e) => {
                warn!(error = %e, "outbound SA refused by the SAD");
                let _ = self.sad.remove(inbound);
                return;
            }
        };
        let mut entry = SaTable::entry_for(child, inbound, outbound, now);
        entry.link_mtu = match crate::sys::sockopt::path_mtu(child.remote, crate::sys::FWMARK) {
            Ok(mtu) => mtu,
            Err(e) => {
                warn!(peer = %child.remote, error = %e, "no MTU for the link to the peer; ESP leaves whole");
                usize::MAX
            }
        };
        self.table.insert(entry);
        // What waited for this peer goes out now (or waits again if it needs another SA).
        let mut buf = std::mem::take(&mut self.buf);
        for packet in self.table.take_held(child.remote) {
            let n = place(&mut buf, MAX_HEADROOM, &packet);
            // ESP in UDP too goes out whole through the raw socket: a few packets.
            match self.outbound(&mut buf, MAX_HEADROOM, n, now) {
                Some((_, Via::Fragments(f))) => {
                    for r in f.ranges() {
                        self.send_ip(&buf[r]);
                    }
                }
                Some((range, _)) => self.send_ip(&buf[range]),
                None => {}
            }
        }
        reclaim(std::slice::from_mut(&mut buf));
        self.buf = buf;
        self.report_held();
    }

    fn delete(&mut self, spi: u32) {
        if let Some(entry) = self.table.remove(spi) {
            let _ = self.sad.remove(entry.outbound);
            debug!(
                inbound_spi = format_args!("{:#010x}", entry.inbound_spi),
                "SA pair removed (the inbound SA after a grace period)"
            );
            let now = Instant::now();
            self.retiring.push((now + INBOUND_GRACE, entry));
            // Rekeys and deletes are when IKE SAs go away: forget theirs.
            self.sent_activity.prune(now);
            self.received_activity.prune(now);
        }
    }

    /// Removes the inbound SAs of deleted pairs whose grace period is over.
    fn retire(&mut self) {
        if self.retiring.is_empty() {
            return;
        }
        let now = Instant::now();
        let sad = &mut self.sad;
        self.retiring.retain(|(deadline, entry)| {
            let keep = *deadline > now;
            if !keep {
                let _ = sad.remove(entry.inbound);
            }
            keep
        });
    }

    fn snapshot(&self) -> DataSnapshot {
        let now = Instant::now();
        let counters = |h| self.sad.get(h).map(|sa| *sa.counters()).unwrap_or_default();
        DataSnapshot {
            children: self
                .table
                .iter()
                .map(|e| ChildSnapshot {
                    entry: e.clone(),
                    inbound: counters(e.inbound),
                    outbound: counters(e.outbound),
                    age: now.saturating_duration_since(e.installed),
                    worker: self.index,
                })
                .collect(),
            drops: self
                .sad
                .drops()
                .iter()
                .map(|(r, n)| (r.name(), n))
                .chain(self.reassembly.drops().map(|(r, n)| (r.name(), n)))
                .collect(),
        }
    }

    fn drain(&mut self, source: Source, batch: &mut EspBatch, udp: &mut UdpBatch) {
        match source {
            Source::Tun => self.drain_tun(),
            Source::Esp => self.drain_esp(false, batch),
            Source::Esp6 => self.drain_esp(true, batch),
            Source::Natt => self.drain_natt(false, udp),
            Source::Natt6 => self.drain_natt(true, udp),
        }
    }

    /// TUN reads fill a set of slots; the batch is classified, encapsulated and handed
    /// to the writer.
    fn drain_tun(&mut self) {
        let mut sizes = std::mem::take(&mut self.out_sizes);
        let mut scratch = std::mem::take(&mut self.tun_scratch);
        for _ in 0..ROUNDS {
            let Some(mut job) = self.writer.esp_buffers() else {
                break;
            };
            reclaim(&mut job.bufs);
            let mut filled = 0;
            let mut empty = false;
            while filled + READ_ROOM <= OUT_SLOTS {
                let room = filled..filled + READ_ROOM;
                match self.tun.recv_batch(
                    &mut scratch,
                    &mut job.bufs[room.clone()],
                    &mut sizes[room],
                    MAX_HEADROOM,
                ) {
                    Ok(k) => {
                        self.stats.tun_rx.fetch_add(k as u64, Ordering::Relaxed);
                        // One clock read per read: the segments of an aggregate came
                        // together.
                        let now = Instant::now();
                        for (i, &n) in sizes.iter().enumerate().skip(filled).take(k) {
                            if let Some((range, via)) =
                                self.outbound(&mut job.bufs[i], MAX_HEADROOM, n, now)
                            {
                                queue_out(&mut job, i, range, via);
                            }
                        }
                        filled += k;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        empty = true;
                        break;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        // The read took the packet (an aggregate that could not be
                        // split, or a device error): count it, let the others run.
                        DataStats::bump(&self.stats.malformed);
                        debug!(error = %e, "TUN read failed");
                        empty = true;
                        break;
                    }
                }
            }
            self.writer.send_esp(job);
            self.handoffs.flush();
            if empty || !self.between_rounds() {
                break;
            }
        }
        self.out_sizes = sizes;
        self.tun_scratch = scratch;
    }

    /// `recvmmsg` batches of ESP, opened in place, the inner packets written to the TUN.
    fn drain_esp(&mut self, v6: bool, batch: &mut EspBatch) {
        let mut slots = std::mem::take(&mut self.inb);
        let mut inb = slots.views();
        let mut lens = std::mem::take(&mut self.inb_lens);
        self.drain_rounds(v6, "ESP", |dp| {
            let socket = if v6 { dp.esp6.as_ref() } else { Some(&dp.esp) };
            let k = match socket?.recv_batch(batch, &mut inb, &mut lens) {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            dp.stats.esp_rx.fetch_add(k as u64, Ordering::Relaxed);
            let now = Instant::now();
            for i in 0..k {
                if lens[i] == 0 {
                    DataStats::bump(&dp.stats.malformed);
                    continue;
                }
                dp.inbound(inb[i], 0, lens[i], now);
            }
            Some(Ok(k == inb.len()))
        });
        drop(inb);
        self.inb = slots;
        self.inb_lens = lens;
    }

    /// `recvmmsg` batches of NAT-T datagrams: ESP in UDP opened like raw ESP, IKE passed
    /// to the keying thread.
    fn drain_natt(&mut self, v6: bool, udp: &mut UdpBatch) {
        let mut slots = std::mem::take(&mut self.natt_inb);
        let mut inb = slots.views();
        let mut got = std::mem::take(&mut self.natt_got);
        self.drain_rounds(v6, "NAT-T", |dp| {
            let socket = if v6 {
                dp.natt6.as_ref()
            } else {
                Some(&dp.natt)
            };
            let k = match socket?.recv_batch(udp, &mut inb, MAX_HEADROOM, &mut got) {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            // Datagrams, not receives: one coalesced by GRO counts as the ones it holds.
            let datagrams: usize = got[..k]
                .iter()
                .flatten()
                .map(|d| d.segments().count())
                .sum();
            dp.stats
                .udp_rx
                .fetch_add(datagrams as u64, Ordering::Relaxed);
            let now = Instant::now();
            for i in 0..k {
                let Some(d) = got[i] else {
                    DataStats::bump(&dp.stats.malformed);
                    continue;
                };
                // In order: putting back the headers of one segment overwrites the end
                // of the one before, which is opened and copied out by then.
                for seg in d.segments() {
                    let start = MAX_HEADROOM + seg.start;
                    let (remote, local) = (d.remote, d.local);
                    dp.natt_datagram(inb[i], start, seg.len(), remote, local, now);
                }
            }
            Some(Ok(k == inb.len()))
        });
        drop(inb);
        self.natt_inb = slots;
        self.natt_got = got;
    }

    /// Up to [`ROUNDS`] rounds of `round` (one receive from a `what` socket and the
    /// handling of what came: `None` if there is no such socket, else whether the receive
    /// filled every slot), each followed by the TUN write of what it opened. Stops at a
    /// short receive (the socket is drained), an error, or commands waiting.
    fn drain_rounds(
        &mut self,
        v6: bool,
        what: &str,
        mut round: impl FnMut(&mut Self) -> Option<io::Result<bool>>,
    ) {
        for _ in 0..ROUNDS {
            let full = match round(self) {
                None => break,
                Some(Ok(full)) => full,
                Some(Err(e)) if e.kind() == ErrorKind::WouldBlock => break,
                Some(Err(e)) if e.kind() == ErrorKind::Interrupted => continue,
                Some(Err(e)) => {
                    warn!(v6, error = %e, "{what} receive failed");
                    break;
                }
            };
            self.flush_tun();
            if !full || !self.between_rounds() {
                break;
            }
        }
    }

    /// Hands the decapsulated packets gathered so far to the writer.
    fn flush_tun(&mut self) {
        if let Some(job) = self.tun_tx.take() {
            self.writer.send_tun(job);
        }
    }

    /// Gathers a decapsulated packet for the next TUN write.
    fn queue_for_tun(&mut self, packet: &[u8]) {
        if self.tun_tx.as_ref().is_some_and(|j| j.n == j.bufs.len()) {
            self.flush_tun();
        }
        if self.tun_tx.is_none() {
            self.tun_tx = self.writer.tun_buffers();
        }
        let Some(job) = self.tun_tx.as_mut() else {
            DataStats::bump(&self.stats.send_errors);
            return;
        };
        let b = &mut job.bufs[job.n];
        b.clear();
        // What a datagram longer than a TUN packet (put back together by the kernel
        // before it was opened) grew the buffer to is not kept.
        b.shrink_to(TUN_TX_CAPACITY);
        b.resize(TUN_TX_OFFSET, 0);
        b.extend_from_slice(packet);
        job.n += 1;
    }

    /// A packet from the TUN at `buf[start..][..n]`: what to send (the packet as it is,
    /// or its IPsec form, in `buf`) and how, or `None` (dropped, held, or failed; counted).
    /// A fragment waits for the rest of its datagram, which is then judged and protected
    /// whole (policy may name ports only the first fragment shows, and transport mode
    /// protects whole datagrams only, RFC 4303 §3.3.4) and leaves in fragments if it is
    /// longer than the link to the peer (in clear: than the TUN's MTU).
    fn outbound(
        &mut self,
        buf: &mut Vec<u8>,
        start: usize,
        n: usize,
        now: Instant,
    ) -> Option<(Range<usize>, Via)> {
        let mut n = n;
        if Reassembly::is_fragment(&buf[start..start + n]) {
            n = self.reassemble(buf, start, n, now)?;
        }
        self.outbound_whole(buf, start, n, now)
    }

    /// Gathers the fragment at `buf[start..][..n]`; once its datagram is complete, puts
    /// the datagram there and returns its length. The fragments of a datagram meet at
    /// the worker its destination shards to: the TUN may spread them over its queues.
    fn reassemble(
        &mut self,
        buf: &mut Vec<u8>,
        start: usize,
        n: usize,
        now: Instant,
    ) -> Option<usize> {
        let packet = &buf[start..start + n];
        let owner =
            esp_socket::destination(packet).map_or(self.index, |d| shard_of(d, self.workers));
        if owner != self.index {
            self.hand_off(owner, packet);
            return None;
        }
        match self.reassembly.push(packet, now, &mut self.reassembled) {
            Ok(Pushed::Held) => None,
            Ok(Pushed::Complete(len)) => {
                place(buf, start, &self.reassembled[..len]);
                DataStats::bump(&self.stats.reassembled);
                Some(len)
            }
            Err(e) => {
                // Counted by the reassembly, by reason; a datagram lost (not one stray
                // fragment) is a net event too, bounded by the ring as the others.
                if matches!(e, ReassemblyDrop::TooLong | ReassemblyDrop::Overlap) {
                    self.events.push(
                        "drop",
                        format!("datagram from the TUN dropped: {e}"),
                        json!({ "reason": e.name() }),
                    );
                }
                debug!(error = %e, "fragment from the TUN dropped");
                None
            }
        }
    }

    /// Passes `packet` to worker `owner`, counting it or its drop.
    fn hand_off(&mut self, owner: usize, packet: &[u8]) {
        let counter = if self.handoffs.push(owner, packet) {
            &self.stats.handed_off
        } else {
            &self.stats.handoff_drops
        };
        DataStats::bump(counter);
    }

    /// A packet that leaves as it came (policy permits it in clear): whole, or, a
    /// datagram put back together (here or by the worker that handed it over) longer
    /// than the TUN's MTU, cut to that MTU again, as the host's stack had cut it.
    fn clear(&mut self, buf: &mut [u8], range: Range<usize>) -> Option<(Range<usize>, Via)> {
        DataStats::bump(&self.stats.clear_permitted);
        if range.len() <= self.mtu {
            return Some((range, Via::Ip));
        }
        self.fragment(buf, range, self.mtu)
    }

    /// Cuts the packet at `buf[range]` into fragments of at most `mtu` bytes, in place:
    /// the raw socket refuses packets longer than its device's MTU.
    fn fragment(
        &mut self,
        buf: &mut [u8],
        range: Range<usize>,
        mtu: usize,
    ) -> Option<(Range<usize>, Via)> {
        self.datagrams_cut += 1;
        let id = self.fragment_ids.hash_one(self.datagrams_cut) as u32;
        match fragment_in_place(buf, range.clone(), mtu, id) {
            Ok(f) => {
                DataStats::bump(&self.stats.fragmented);
                Some((range, Via::Fragments(f)))
            }
            Err(e) => {
                DataStats::bump(&self.stats.send_errors);
                debug!(error = %e, "could not fragment a reassembled datagram");
                None
            }
        }
    }

    /// [`Dataplane::outbound`] for a whole datagram.
    fn outbound_whole(
        &mut self,
        buf: &mut [u8],
        start: usize,
        n: usize,
        now: Instant,
    ) -> Option<(Range<usize>, Via)> {
        if ipv6_link_scoped(&buf[start..start + n]) {
            return None;
        }
        let Some(flow) = Flow::outbound(&buf[start..start + n]) else {
            DataStats::bump(&self.stats.malformed);
            return None;
        };
        match self.callout.outbound(&flow) {
            Outbound::Clear => self.clear(buf, start..start + n),
            Outbound::Block { .. } => {
                DataStats::bump(&self.stats.clear_blocked);
                None
            }
            Outbound::Pending => {
                DataStats::bump(&self.stats.owner_pending);
                None
            }
            Outbound::Protect(p) => {
                let owner = shard_of(p.peer, self.workers);
                if owner != self.index {
                    self.hand_off(owner, &buf[start..start + n]);
                    return None;
                }
                let Some(entry) = self.table.select(p.peer, &flow) else {
                    if p.clear_fallback {
                        // Negotiation discovery: clear while IKE is tried, at most one
                        // acquire per peer per ND_RETRY.
                        let due = self
                            .nd_acquired
                            .get(&p.peer)
                            .is_none_or(|t| now.duration_since(*t) > ND_RETRY);
                        if due {
                            self.nd_acquired.insert(p.peer, now);
                            self.acquire(&p);
                        }
                        return self.clear(buf, start..start + n);
                    }
                    match self.table.hold(p.peer, &buf[start..start + n]) {
                        Ok(true) => self.acquire(&p),
                        Ok(false) => {}
                        Err(_) => DataStats::bump(&self.stats.queue_drops),
                    }
                    self.report_held();
                    return None;
                };
                let (handle, spi, ike_sa, udp, link_mtu) = (
                    entry.outbound,
                    entry.outbound_spi,
                    entry.ike_sa,
                    entry.udp_encap.is_some(),
                    entry.link_mtu,
                );
                let mut pkt = Packet::new(buf, start, n);
                match self.sad.encapsulate(handle, &mut pkt, now) {
                    Ok(enc) => {
                        let range = pkt.range();
                        if enc.soft_expired {
                            let _ = self.keying.send(KeyingInput::Expiry {
                                spi,
                                expiry: Expiry::Soft,
                            });
                        }
                        if udp && self.sent_activity.due(ike_sa, now) {
                            let _ = self.keying.send(KeyingInput::Activity(ike_sa));
                        }
                        // Longer than the link to the peer takes whole (a datagram put
                        // back together, or a TUN MTU too large for the link): cut here,
                        // the outer header being ours, and sent through the raw socket.
                        if range.len() > link_mtu {
                            self.fragment(buf, range, link_mtu)
                        } else if udp {
                            Some((range, Via::Udp))
                        } else {
                            Some((range, Via::Ip))
                        }
                    }
                    Err(e) => {
                        self.encap_failed(spi, e);
                        None
                    }
                }
            }
        }
    }

    /// Asks keying for an SA for the protected flow `p` describes.
    fn acquire(&self, p: &Protection) {
        let _ = self.keying.send(KeyingInput::Acquire(Acquire {
            local: SocketAddr::new(p.local, self.ike_port),
            remote: SocketAddr::new(p.peer, self.ike_port),
            traffic: Some(p.traffic),
        }));
    }

    fn encap_failed(&mut self, spi: u32, e: EspError) {
        // The SAD counted it; a hard expiry also tells IKE, which deletes the pair.
        match e {
            EspError::LifetimeExpired => {
                let _ = self.keying.send(KeyingInput::Expiry {
                    spi,
                    expiry: Expiry::Hard,
                });
            }
            // A whole datagram lost that nothing else reports: the sender's stack sent
            // it (in fragments) without error.
            EspError::TooLong => self.events.push(
                "drop",
                format!("datagram too long to protect on SA {spi:#010x}: {e}"),
                json!({ "reason": DropReason::TooLong.name(), "spi": spi }),
            ),
            _ => {}
        }
        debug!(spi = format_args!("{spi:#010x}"), error = %e, "encapsulation failed");
    }

    /// An IPsec packet at `buf[start..][..n]` (outer header included); what policy
    /// lets through is queued for the TUN.
    fn inbound(&mut self, buf: &mut [u8], start: usize, n: usize, now: Instant) {
        let mut pkt = Packet::new(buf, start, n);
        let opened = match self.sad.decapsulate(&mut pkt, now) {
            Ok(d) => d,
            Err(e) => {
                if matches!(e, EspError::UnknownSpi(_))
                    && let Some(outer) = Flow::inbound(&buf[start..start + n])
                {
                    self.unknown_spi_from(outer.remote, outer.local, now);
                }
                self.decap_failed(e);
                return;
            }
        };
        let range = pkt.range();
        if opened.opened.soft_expired
            && let Some(entry) = self.table.by_inbound(opened.sa)
        {
            let _ = self.keying.send(KeyingInput::Expiry {
                spi: entry.inbound_spi,
                expiry: Expiry::Soft,
            });
        }
        let inner = &buf[range.clone()];
        let entry = self.table.by_inbound(opened.sa).or_else(|| {
            self.retiring
                .iter()
                .map(|(_, e)| e)
                .find(|e| e.inbound == opened.sa)
        });
        // Authentic ESP: the peer is alive (dead peer detection waits), and holds this
        // pair.
        if let Some(e) = entry
            && self.received_activity.due(e.ike_sa, now)
        {
            let _ = self.keying.send(KeyingInput::InboundActivity(e.ike_sa));
        }
        let deferred = entry.is_some_and(|e| e.outbound_deferred);
        let nat_original = entry.and_then(|e| e.nat_original);
        let verdict = match (Flow::inbound(inner), entry.map(|e| &e.selectors)) {
            (Some(flow), Some(sel)) => self.callout.inbound_protected(&flow, sel),
            _ => Inbound::Block {
                filter_id: None,
                reason: "not an IP packet inside ESP",
            },
        };
        if deferred {
            self.table.peer_uses(opened.sa);
        }
        match verdict {
            Inbound::Permit => {
                // Transport mode across a NAT: the peer's TCP/UDP checksum covers the
                // addresses it used, not the ones the NAT left (RFC 3948 §3.1.2), and
                // an ICMP error quotes our packet with the addresses the peer saw.
                if let Some(original) = nat_original
                    && let Err(e) = transport_nat::restore(&mut buf[range.clone()], &original)
                {
                    DataStats::bump(&self.stats.nat_checksum_drops);
                    debug!(error = %e, "decapsulated packet dropped: checksum not fixed up");
                    return;
                }
                self.queue_for_tun(&buf[range]);
            }
            Inbound::Block { reason: why, .. } => {
                let counter = match why {
                    reason::BLOCKED_BY_FILTER | reason::CONNECTION_BLOCKED => {
                        &self.stats.policy_blocked
                    }
                    reason::PROGRAM_PENDING => &self.stats.owner_pending,
                    _ => &self.stats.wrong_sa,
                };
                DataStats::bump(counter);
                debug!(reason = why, "decapsulated packet refused");
            }
        }
    }

    /// ESP from `src` on an SPI we do not know, and no pair with `src` at all: the peer
    /// holds SAs we lost (we restarted). Negotiating anew replaces them on its side
    /// (the new pair is the newest, and INITIAL_CONTACT drops the old IKE SA); without
    /// it, the peer would keep sending into the void until its SAs expire. Only for
    /// peers policy names, and at most once per ND_RETRY per peer.
    fn unknown_spi_from(&mut self, src: IpAddr, dst: IpAddr, now: Instant) {
        if self.table.iter().any(|c| c.peer == src) {
            return;
        }
        let due = self
            .stale_acquired
            .get(&src)
            .is_none_or(|t| now.duration_since(*t) > ND_RETRY);
        if !due || !self.callout.scopes().peers.contains(&src) {
            return;
        }
        self.stale_acquired.insert(src, now);
        info!(peer = %src, "ESP on SAs this host does not hold: negotiating anew");
        let _ = self.keying.send(KeyingInput::Acquire(Acquire {
            local: SocketAddr::new(dst, self.ike_port),
            remote: SocketAddr::new(src, self.ike_port),
            traffic: None,
        }));
    }

    fn decap_failed(&mut self, e: EspError) {
        // Counted by reason in the SAD; integrity failures and replays also become net
        // events (rate-limited by the ring's size, not per packet logging).
        if matches!(e, EspError::Integrity | EspError::Replay) {
            self.events.push(
                "drop",
                format!("inbound IPsec packet dropped: {e}"),
                json!({ "reason": e.reason().name() }),
            );
        }
        debug!(error = %e, "decapsulation failed");
    }

    /// A datagram on the NAT-T port at `buf[start..][..n]` (with at least 48 bytes
    /// before it to write headers into): IKE (non-ESP marker), a NAT keepalive, or ESP in
    /// UDP (RFC 3948 §2).
    fn natt_datagram(
        &mut self,
        buf: &mut [u8],
        start: usize,
        n: usize,
        remote: SocketAddr,
        local: SocketAddr,
        now: Instant,
    ) {
        let payload = &buf[start..start + n];
        if n == 1 && payload[0] == 0xff {
            return;
        }
        if n >= 4 && payload[..4] == [0, 0, 0, 0] {
            let _ = self.keying.send(KeyingInput::Datagram {
                bytes: payload[4..].to_vec(),
                local,
                remote,
            });
            return;
        }
        // The SAD opens whole packets: put back the IP and UDP headers the socket took.
        let udp_len = n + 8;
        let hdr = match (remote.ip(), local.ip()) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let hdr = start - 28;
                let h = &mut buf[hdr..start - 8];
                h.fill(0);
                h[0] = 0x45;
                h[2..4].copy_from_slice(&((udp_len + 20) as u16).to_be_bytes());
                h[8] = 64;
                h[9] = 17;
                h[12..16].copy_from_slice(&src.octets());
                h[16..20].copy_from_slice(&dst.octets());
                hdr
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let hdr = start - 48;
                let h = &mut buf[hdr..start - 8];
                h.fill(0);
                h[0] = 0x60;
                h[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
                h[6] = 17;
                h[7] = 64;
                h[8..24].copy_from_slice(&src.octets());
                h[24..40].copy_from_slice(&dst.octets());
                hdr
            }
            _ => {
                DataStats::bump(&self.stats.malformed);
                return;
            }
        };
        let u = &mut buf[start - 8..start];
        u[0..2].copy_from_slice(&remote.port().to_be_bytes());
        u[2..4].copy_from_slice(&local.port().to_be_bytes());
        u[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        u[6..8].fill(0);
        self.inbound(buf, hdr, start + n - hdr, now);
    }

    /// Sends one IP packet as it is (marked, so it leaves).
    fn send_ip(&self, packet: &[u8]) {
        let socket = match packet.first().map(|b| b >> 4) {
            Some(6) => self.esp6.as_ref(),
            _ => Some(&self.esp),
        };
        let Some(socket) = socket else {
            DataStats::bump(&self.stats.send_errors);
            debug!("an IPv6 packet to send, and no IPv6 socket");
            return;
        };
        match socket.send(packet) {
            Ok(_) => DataStats::bump(&self.stats.esp_tx),
            Err(e) => {
                DataStats::bump(&self.stats.send_errors);
                debug!(error = %e, "send failed");
            }
        }
    }

    fn lifetimes(&mut self) {
        let now = Instant::now();
        if self.sad.next_deadline().is_none_or(|d| d > now) {
            return;
        }
        self.lifetime_events.clear();
        self.sad.poll_lifetimes(now, &mut self.lifetime_events);
        for ev in std::mem::take(&mut self.lifetime_events) {
            let Some(entry) = self.table.by_handle(ev.sa) else {
                continue;
            };
            let expiry = match ev.expiry {
                palisade_esp::lifetime::Expiry::HardExpired => Expiry::Hard,
                _ => Expiry::Soft,
            };
            // IKE rekeys (soft) or deletes (hard) the pair; either SPI names it.
            let spi = match self.sad.get(ev.sa).map(|sa| sa.config().direction) {
                Some(Direction::Inbound) => entry.inbound_spi,
                _ => entry.outbound_spi,
            };
            let _ = self.keying.send(KeyingInput::Expiry { spi, expiry });
        }
    }
}

/// An IPv6 packet the kernel sent on the TUN for the TUN's own link: router
/// solicitations, MLD reports, duplicate address detection (the device has a link-local
/// address once up). It means nothing beyond that link, and re-sending it in clear
/// would route link-scoped multicast back into the TUN: a loop that keeps a core busy.
fn ipv6_link_scoped(packet: &[u8]) -> bool {
    let (Some(&v), Some(src), Some(dst)) = (packet.first(), packet.get(8..10), packet.get(24..26))
    else {
        return false;
    };
    let link_local = |a: &[u8]| a[0] == 0xfe && a[1] & 0xc0 == 0x80;
    v >> 4 == 6 && (dst[0] == 0xff || link_local(dst) || link_local(src))
}

/// Every source the data plane polls, in poll order.
const SOURCES: [Source; 5] = [
    Source::Tun,
    Source::Esp,
    Source::Natt,
    Source::Esp6,
    Source::Natt6,
];

/// Receive buffers of the longest IP packet each, in one zeroed allocation: large
/// enough that the allocator maps fresh pages for it (glibc: over its mmap threshold),
/// so only the pages packets reach become resident, where a slot per allocation (or
/// `vec![v; n]`, which copies `v`) could make every byte resident.
#[derive(Default)]
struct Slots {
    mem: Box<[u8]>,
    len: usize,
}

impl Slots {
    fn new(count: usize, len: usize) -> Slots {
        Slots {
            mem: vec![0; count * len].into_boxed_slice(),
            len,
        }
    }

    /// One slice per slot, for one drain.
    fn views(&mut self) -> Vec<&mut [u8]> {
        self.mem.chunks_mut(self.len.max(1)).collect()
    }
}

/// Copies `packet` into `buf` at `start` (behind at least the headroom), growing `buf`
/// if the packet is longer than a slot is made for (a datagram put back together from
/// fragments) until [`reclaim`]; returns its length.
fn place(buf: &mut Vec<u8>, start: usize, packet: &[u8]) -> usize {
    let n = packet.len();
    // `slot_len` counts the headroom in front; `start` stands in for it.
    let room = start + slot_len(n) - MAX_HEADROOM;
    if buf.len() < room {
        buf.resize(room, 0);
    }
    buf[start..start + n].copy_from_slice(packet);
    n
}

/// Gives back what slots grew for datagrams longer than a slot (`reassemble`), before
/// they are filled again: the memory of a burst of long datagrams is not kept.
fn reclaim(bufs: &mut [Vec<u8>]) {
    for b in bufs.iter_mut().filter(|b| b.len() > SLOT) {
        b.truncate(SLOT);
        b.shrink_to_fit();
    }
}

/// Puts the packet `job.bufs[slot][range]` on the send queue its route and family say.
fn queue_out(job: &mut EspJob, slot: usize, range: Range<usize>, via: Via) {
    let v6 = job.bufs[slot].get(range.start).is_some_and(|b| b >> 4 == 6);
    match (via, v6) {
        (Via::Ip, false) => job.tx4.push((slot, range)),
        (Via::Ip, true) => job.tx6.push((slot, range)),
        (Via::Udp, false) => job.udp4.push((slot, range)),
        (Via::Udp, true) => job.udp6.push((slot, range)),
        (Via::Fragments(f), false) => job.tx4.extend(f.ranges().map(|r| (slot, r))),
        (Via::Fragments(f), true) => job.tx6.extend(f.ranges().map(|r| (slot, r))),
    }
}

/// How a packet from the TUN leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// A whole IP packet on the raw socket (ESP, or clear text policy permits).
    Ip,
    /// ESP in UDP: the UDP payload on the NAT-T socket, segmented.
    Udp,
    /// IP fragments on the raw socket (ESP in UDP too, its UDP header in the first).
    Fragments(Fragments),
}

#[derive(Debug, Clone, Copy)]
enum Source {
    Tun,
    Esp,
    Natt,
    Esp6,
    Natt6,
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::ipv6_link_scoped;

    fn v6(src: &str, dst: &str) -> Vec<u8> {
        let mut p = vec![0u8; 48];
        p[0] = 0x60;
        p[6] = 58;
        p[8..24].copy_from_slice(&src.parse::<Ipv6Addr>().expect("src").octets());
        p[24..40].copy_from_slice(&dst.parse::<Ipv6Addr>().expect("dst").octets());
        p
    }

    #[test]
    fn link_scoped_ipv6_from_the_tun_is_recognised() {
        // A router solicitation, an MLD report, DAD (unspecified source), link-local.
        assert!(ipv6_link_scoped(&v6("fe80::1", "ff02::2")));
        assert!(ipv6_link_scoped(&v6("fe80::1", "ff02::16")));
        assert!(ipv6_link_scoped(&v6("::", "ff02::1:ff00:1")));
        assert!(ipv6_link_scoped(&v6("fe80::1", "fe80::2")));
        assert!(ipv6_link_scoped(&v6("febf::1", "2001:db8::2")));
    }

    #[test]
    fn routable_traffic_is_not_link_scoped() {
        assert!(!ipv6_link_scoped(&v6("2001:db8::1", "2001:db8::2")));
        assert!(!ipv6_link_scoped(&v6("fd00::1", "fec0::2")));
        // IPv4 with bytes that would read as link-scoped at the IPv6 offsets.
        let mut v4 = v6("fe80::1", "ff02::2");
        v4[0] = 0x45;
        assert!(!ipv6_link_scoped(&v4));
        assert!(!ipv6_link_scoped(&[0x60; 20]), "too short to say");
    }
}
