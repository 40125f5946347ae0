//! Which data-plane worker owns the traffic of a peer: a function of the peer's address
//! that the kernel can compute too (classic BPF on the sockets, see below), so that ESP
//! from a peer reaches the worker that holds its SAs without passing through another.
//!
//! The function is the address's last 32-bit word, read in network byte order, modulo
//! the number of workers: for IPv4 the whole address, for IPv6 its last four octets.

use std::net::IpAddr;

/// The worker (in `0..workers`) that owns traffic with `peer`; 0 when there is one.
pub fn shard_of(peer: IpAddr, workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    let word = match peer {
        IpAddr::V4(a) => u32::from_be_bytes(a.octets()),
        IpAddr::V6(a) => {
            let o = a.octets();
            u32::from_be_bytes([o[12], o[13], o[14], o[15]])
        }
    };
    (word % workers as u32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_word_modulo_the_workers() {
        let v4 = |s: &str| s.parse::<IpAddr>().expect("addr");
        assert_eq!(shard_of(v4("10.0.0.1"), 1), 0);
        assert_eq!(shard_of(v4("10.0.0.1"), 2), 1);
        assert_eq!(shard_of(v4("10.0.0.2"), 2), 0);
        assert_eq!(shard_of(v4("10.0.0.7"), 4), 3);
        assert_eq!(shard_of(v4("2001:db8::5"), 2), 1);
        assert_eq!(shard_of(v4("2001:db8::1:4"), 4), 0);
        assert_eq!(shard_of(v4("10.0.0.1"), 0), 0, "no workers reads as one");
    }
}
