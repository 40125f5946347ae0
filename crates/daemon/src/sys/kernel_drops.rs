//! What the kernel dropped on palisaded's behalf: packets lost before the data plane saw
//! them, which no counter of ours can count. When the data plane falls behind, the
//! kernel drops what it cannot queue for it:
//! - `tun_queue`: packets routed into the TUN that found its queue full (the device's
//!   transmit drops in `/proc/net/dev`: the kernel transmits into a TUN, we read);
//! - `tun_write`: packets palisaded wrote to the TUN that the kernel refused (the
//!   device's receive drops);
//! - `socket_buffer`: ESP, ESP in UDP and IKE that found a receive buffer of ours full
//!   (the `drops` column of `/proc/net/{raw,raw6,udp,udp6}` for our sockets, found by
//!   inode). The classic BPF filters that give each worker its peers' raw ESP reject
//!   the others' without counting them there (`raw_rcv_skb`); a reuseport program only
//!   picks a socket.
//!
//! `/proc/net` is the reading thread's network namespace, which is the daemon's.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::os::fd::AsFd;

use nix::sys::stat::fstat;

/// The tables of `/proc/net` that list sockets of the kinds palisaded opens.
const SOCKET_TABLES: [&str; 4] = [
    "/proc/net/raw",
    "/proc/net/raw6",
    "/proc/net/udp",
    "/proc/net/udp6",
];

/// Where to read palisaded's kernel drops: the TUN's name and its sockets' inodes.
#[derive(Debug, Clone)]
pub struct KernelDrops {
    tun: String,
    inodes: HashSet<u64>,
}

impl KernelDrops {
    /// For the TUN `tun` and the sockets `sockets` (raw ESP, NAT-T, IKE).
    pub fn new<F: AsFd>(tun: &str, sockets: &[F]) -> io::Result<KernelDrops> {
        let inodes = sockets
            .iter()
            .map(|s| {
                fstat(s.as_fd())
                    .map(|st| st.st_ino)
                    .map_err(io::Error::from)
            })
            .collect::<io::Result<_>>()?;
        Ok(KernelDrops {
            tun: tun.to_owned(),
            inodes,
        })
    }

    /// The counters, by name (see the module's comment). A table that cannot be read (a
    /// kernel without IPv6) counts nothing.
    pub fn read(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        if let Some((rx, tx)) = fs::read_to_string("/proc/net/dev")
            .ok()
            .and_then(|text| device_drops(&text, &self.tun))
        {
            out.insert("tun_queue".to_owned(), tx);
            out.insert("tun_write".to_owned(), rx);
        }
        let sockets = SOCKET_TABLES
            .iter()
            .filter_map(|t| fs::read_to_string(t).ok())
            .map(|text| socket_drops(&text, &self.inodes))
            .fold(0, u64::saturating_add);
        out.insert("socket_buffer".to_owned(), sockets);
        out
    }
}

/// `dev`'s (receive, transmit) drops in `/proc/net/dev`'s text: per line `name:` then
/// eight receive counters (bytes, packets, errs, drop, ...) and eight transmit ones.
pub fn device_drops(text: &str, dev: &str) -> Option<(u64, u64)> {
    text.lines().find_map(|line| {
        let (name, counters) = line.split_once(':')?;
        if name.trim() != dev {
            return None;
        }
        let fields: Vec<u64> = counters
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        Some((*fields.get(3)?, *fields.get(11)?))
    })
}

/// The sum of the `drops` column (the last) over the sockets of `inodes` (the tenth
/// column) in a `/proc/net/{raw,udp}[6]` table.
pub fn socket_drops(text: &str, inodes: &HashSet<u64>) -> u64 {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let inode: u64 = fields.get(9)?.parse().ok()?;
            if !inodes.contains(&inode) {
                return None;
            }
            fields.last()?.parse::<u64>().ok()
        })
        .fold(0, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    const DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    2776      28    0    0    0     0          0         0     2776      28    0    0    0     0       0          0
  pal0: 1209600    1200    0    7    0     0          0         0 61440000    60000    0  4321    0     0       0          0
";

    #[test]
    fn reads_a_devices_receive_and_transmit_drops() {
        assert_eq!(device_drops(DEV, "pal0"), Some((7, 4321)));
        assert_eq!(device_drops(DEV, "lo"), Some((0, 0)));
        assert_eq!(device_drops(DEV, "pal1"), None);
        assert_eq!(
            device_drops("pal0: 1 2 3\n", "pal0"),
            None,
            "too few columns"
        );
    }

    #[test]
    fn counts_the_drops_of_our_sockets_only() {
        let udp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  102: 00000000:01F4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 55501 2 0000000000000000 12
  103: 00000000:1194 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 55502 2 0000000000000000 30
  104: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 66600 2 0000000000000000 999
";
        let ours = HashSet::from([55501, 55502]);
        assert_eq!(socket_drops(udp, &ours), 42);
        assert_eq!(socket_drops(udp, &HashSet::new()), 0);
    }

    /// The kernel's own count for a socket we stop reading: a small receive buffer
    /// overflows, and the drops show under the socket's inode.
    #[test]
    fn a_full_receive_buffer_shows_as_socket_drops() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let sock = socket2::SockRef::from(&rx);
        sock.set_recv_buffer_size(2048).expect("SO_RCVBUF");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = rx.local_addr().expect("address");
        let drops = KernelDrops::new("no-such-tun", &[&rx]).expect("inode");
        assert_eq!(drops.read().get("socket_buffer"), Some(&0));
        for _ in 0..200 {
            let _ = tx.send_to(&[0u8; 1000], to);
        }
        let read = drops.read();
        let n = read.get("socket_buffer").copied().unwrap_or(0);
        assert!(n > 0, "drops for fd {}: {read:?}", rx.as_raw_fd());
        assert!(n <= 200);
        assert!(!read.contains_key("tun_queue"), "no such device");
    }

    proptest! {
        /// Whatever the files hold (another kernel's columns, a cut read), the parsers
        /// answer without panicking, and a table without our inodes counts nothing.
        #[test]
        fn any_text_parses_without_panic(text in "[ -~\n:|]{0,400}", dev in "[a-z0-9]{1,6}") {
            let _ = device_drops(&text, &dev);
            prop_assert_eq!(socket_drops(&text, &HashSet::new()), 0);
            let _ = socket_drops(&text, &HashSet::from([0, 1, 2, 55501]));
        }

        #[test]
        fn huge_counts_saturate(a in any::<u64>(), b in any::<u64>()) {
            let line = |inode: u32, drops: u64| {
                format!("  1: 0:0 0:0 07 0:0 0:0 0 0 0 {inode} 2 0 {drops}\n")
            };
            let text = format!("header\n{}{}", line(7, a), line(8, b));
            prop_assert_eq!(socket_drops(&text, &HashSet::from([7, 8])), a.saturating_add(b));
        }
    }
}
