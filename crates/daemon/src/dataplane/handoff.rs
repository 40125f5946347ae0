//! Packets a worker read from its TUN queue for a peer another worker owns
//! (`sys::shard_of`): the kernel spreads flows over the TUN's queues by their hash, not by
//! peer, while an SA's sequence numbers and counters must have one owner. Such packets
//! go to the owner in batches: one channel message and one wake-up per batch, copied
//! into buffers that circulate between each pair of workers (none allocated per batch).
//! When all of them are in flight, the reading worker adds one more to the pair's pool,
//! up to a bound; past it, it waits a little for the owner to give one back (the packets
//! it has not read yet wait in the TUN's queue meanwhile), and only an owner still that
//! far behind costs drops, counted.
//!
//! Order: a flow comes from one TUN queue, so its packets reach the owner in the order
//! they were read.

use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

/// Bytes of packets one batch carries.
const BATCH_BYTES: usize = 64 << 10;
/// Batches in circulation from one worker to another at first (1 MiB per pair of
/// workers): a batch goes out after every TUN read round, however few packets it holds,
/// so a burst of small reads needs many (with 4, a burst of 3,000 datagrams in
/// e2e_dataplane_stream lost 20-40 to `handoff_full`).
const BATCHES: usize = 16;
/// How many batches a pair's pool may grow to while an owner lags (16 MiB at most per
/// pair): an owner descheduled for a few milliseconds while the reader makes a batch of
/// every datagram took the 16 and a 5 ms wait, and dropped (1 in 3,000 datagrams in 1 of
/// several CI runs). A pool that grew stays that large; nothing grows per packet.
const MAX_BATCHES: usize = 256;
/// How long a worker waits for a batch to come back before it drops. Bounded: two
/// workers may each wait for the other, and a worker stalled here reads nothing else.
/// Without the wait, an owner descheduled for a few milliseconds on a busy machine cost
/// a burst of 3,000 datagrams in e2e_dataplane_stream 3-41 of them in 2 of 6 runs.
const RETURN_WAIT: Duration = Duration::from_millis(5);

/// Packets from one worker for another: `bytes` holds them back to back.
#[derive(Debug)]
pub(super) struct Handoff {
    origin: usize,
    bytes: Vec<u8>,
    lens: Vec<usize>,
}

impl Handoff {
    fn new(origin: usize) -> Handoff {
        Handoff {
            origin,
            bytes: Vec::with_capacity(BATCH_BYTES),
            lens: Vec::with_capacity(64),
        }
    }

    /// The packets, in the order they were handed over.
    pub fn packets(&self) -> impl Iterator<Item = &[u8]> {
        self.lens.iter().scan(0, |at, &len| {
            let p = &self.bytes[*at..*at + len];
            *at += len;
            Some(p)
        })
    }
}

/// A worker's link to another one.
struct Link {
    inbox: Sender<Handoff>,
    wake: Arc<UnixDatagram>,
    free: Receiver<Handoff>,
    filling: Option<Handoff>,
    /// This worker (the batches' origin), and how many batches the pool holds.
    origin: usize,
    batches: usize,
}

/// One worker's handoffs: to each other worker, and its own inbox.
pub(super) struct Handoffs {
    links: Vec<Option<Link>>,
    inbox: Receiver<Handoff>,
    /// Where emptied batches go back to, by origin.
    returns: Vec<Option<Sender<Handoff>>>,
}

impl Handoffs {
    /// The handoffs of `wakes.len()` workers, worker `i`'s at `i`; `wakes[i]` wakes
    /// worker `i`.
    pub fn mesh(wakes: &[Arc<UnixDatagram>]) -> Vec<Handoffs> {
        let n = wakes.len();
        let (inbox_tx, inboxes): (Vec<_>, Vec<_>) = (0..n).map(|_| channel()).unzip();
        // free[i][j]: batches from i to j, held by i, given back by j.
        let mut free_rx: Vec<Vec<Option<Receiver<Handoff>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let mut free_tx: Vec<Vec<Option<Sender<Handoff>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        for i in 0..n {
            for j in (0..n).filter(|&j| j != i) {
                let (tx, rx) = channel();
                for _ in 0..BATCHES {
                    let _ = tx.send(Handoff::new(i));
                }
                free_rx[i][j] = Some(rx);
                free_tx[j][i] = Some(tx);
            }
        }
        inboxes
            .into_iter()
            .enumerate()
            .map(|(i, inbox)| Handoffs {
                links: (0..n)
                    .map(|j| {
                        free_rx[i][j].take().map(|free| Link {
                            inbox: inbox_tx[j].clone(),
                            wake: wakes[j].clone(),
                            free,
                            filling: None,
                            origin: i,
                            batches: BATCHES,
                        })
                    })
                    .collect(),
                inbox,
                returns: std::mem::take(&mut free_tx[i]),
            })
            .collect()
    }

    /// Copies `packet` into the batch for worker `to`; false if it had to be dropped
    /// (the pool at [`MAX_BATCHES`] and no batch back within [`RETURN_WAIT`], or `to` is
    /// this worker or none).
    pub fn push(&mut self, to: usize, packet: &[u8]) -> bool {
        let Some(Some(link)) = self.links.get_mut(to) else {
            return false;
        };
        if link
            .filling
            .as_ref()
            .is_some_and(|h| h.bytes.len() + packet.len() > BATCH_BYTES)
        {
            Self::send(link);
        }
        if link.filling.is_none() {
            link.filling = match link.free.try_recv() {
                Ok(h) => Some(h),
                Err(_) if link.batches < MAX_BATCHES => {
                    link.batches += 1;
                    Some(Handoff::new(link.origin))
                }
                Err(_) => link.free.recv_timeout(RETURN_WAIT).ok(),
            };
        }
        let Some(h) = link.filling.as_mut() else {
            return false;
        };
        h.bytes.extend_from_slice(packet);
        h.lens.push(packet.len());
        true
    }

    /// Sends every batch being filled, and wakes their workers.
    pub fn flush(&mut self) {
        for link in self.links.iter_mut().flatten() {
            if link.filling.is_some() {
                Self::send(link);
            }
        }
    }

    fn send(link: &mut Link) {
        if let Some(h) = link.filling.take()
            && link.inbox.send(h).is_ok()
        {
            // A full wake-up socket already means a wake-up is pending.
            let _ = link.wake.send(&[2]);
        }
    }

    /// A batch handed to this worker, if any.
    pub fn recv(&self) -> Option<Handoff> {
        self.inbox.try_recv().ok()
    }

    /// Returns an emptied batch to the worker it came from.
    pub fn give_back(&self, mut h: Handoff) {
        h.bytes.clear();
        h.lens.clear();
        if let Some(Some(back)) = self.returns.get(h.origin) {
            let _ = back.send(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mesh(n: usize) -> (Vec<Handoffs>, Vec<UnixDatagram>) {
        let (wakes, woken): (Vec<_>, Vec<_>) = (0..n)
            .map(|_| {
                let (a, b) = UnixDatagram::pair().expect("pair");
                a.set_nonblocking(true).expect("nonblocking");
                b.set_nonblocking(true).expect("nonblocking");
                (Arc::new(a), b)
            })
            .unzip();
        (Handoffs::mesh(&wakes), woken)
    }

    #[test]
    fn packets_arrive_in_order_at_their_worker_and_wake_it() {
        let (mut h, woken) = mesh(3);
        // 150 packets of 1400 bytes: four batches' worth, all in flight at once.
        for k in 0..150u8 {
            assert!(h[0].push(2, &[k; 1400]));
        }
        assert!(h[0].push(1, b"to one"));
        assert!(!h[0].push(0, b"to itself"), "no link to oneself");
        assert!(!h[0].push(3, b"nobody"));
        h[0].flush();
        let mut sink = [0u8; 8];
        assert!(woken[2].recv(&mut sink).is_ok(), "worker 2 woken");
        assert!(woken[1].recv(&mut sink).is_ok(), "worker 1 woken");
        let mut got = Vec::new();
        while let Some(b) = h[2].recv() {
            got.extend(b.packets().map(|p| p.to_vec()));
            h[2].give_back(b);
        }
        assert_eq!(got.len(), 150);
        assert!(
            got.iter()
                .enumerate()
                .all(|(k, p)| p == &vec![k as u8; 1400])
        );
        let one = h[1].recv().expect("batch for 1");
        assert_eq!(one.packets().collect::<Vec<_>>(), vec![&b"to one"[..]]);
        assert!(h[1].recv().is_none());
    }

    #[test]
    fn a_worker_that_falls_behind_costs_drops_not_memory() {
        let (mut h, _woken) = mesh(2);
        let mut sent = 0;
        while h[0].push(1, &[7; 9000]) {
            sent += 1;
            assert!(sent < 10_000, "pushes must start failing");
        }
        // The pool grew to its bound: seven 9,000-byte packets fill a batch.
        assert!(sent >= MAX_BATCHES * 7, "{sent}");
        // Every batch is full or in flight; once worker 1 gives them back, pushes work.
        h[0].flush();
        while let Some(b) = h[1].recv() {
            h[1].give_back(b);
        }
        assert!(h[0].push(1, &[7; 9000]));
    }
}
