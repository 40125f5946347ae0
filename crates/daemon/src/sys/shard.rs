//! Which data-plane worker owns the traffic of a peer: a function of the peer's address
//! that the kernel can compute too (classic BPF on the sockets, see below), so that ESP
//! from a peer reaches the worker that holds its SAs without passing through another.
//!
//! The function is the address's last 32-bit word, read in network byte order, modulo
//! the number of workers: for IPv4 the whole address, for IPv6 its last four octets.

use std::net::IpAddr;

use nix::libc;

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

// The kernel twins of `shard_of`: classic BPF that computes the same function from the
// packet, for the raw ESP sockets (a socket filter: keep or drop) and for the NAT-T
// sockets (a reuseport program: which socket of the group).
//
// Both load the source address relative to the network header (`SKF_NET_OFF`), because
// the packet's data does not start at the IP header everywhere: an IPv4 raw socket
// sees the IP header, an IPv6 raw socket starts at the ESP header, and a reuseport
// program runs with the UDP header already pulled. `BPF_LD|BPF_W|BPF_ABS` reads 32 bits
// in network byte order (the kernel converts to host order), which is how `shard_of`
// reads the word; a load beyond the packet ends the program with 0. `BPF_MOD` is in the
// classic BPF ALU since Linux 3.7.

/// A classic BPF instruction (`struct sock_filter` of linux/filter.h).
pub type BpfInsn = libc::sock_filter;

/// What a socket filter returns to keep the whole packet (the length to keep, capped at
/// the packet's); 0 drops it.
pub const BPF_ACCEPT: u32 = 0xffff_ffff;

/// `SKF_NET_OFF` (-0x100000) as the unsigned `k` of a load: offsets from the network
/// header instead of from the start of the packet's data.
const NET_OFF: u32 = libc::SKF_NET_OFF as u32;
/// Offset of the source address's last 32-bit word in the IPv4 header.
const V4_SOURCE_WORD: u32 = 12;
/// Offset of the source address's last 32-bit word in the IPv6 header (source at 8..24).
const V6_SOURCE_WORD: u32 = 20;

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const ALU_MOD_K: u16 = (libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K) as u16;
const JMP_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const RET_A: u16 = (libc::BPF_RET | libc::BPF_A) as u16;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> BpfInsn {
    BpfInsn { code, jt, jf, k }
}

fn source_word(v6: bool) -> u32 {
    NET_OFF.wrapping_add(if v6 { V6_SOURCE_WORD } else { V4_SOURCE_WORD })
}

/// The worker count as the `k` of `BPF_MOD`; `None` for a count the programs have no
/// use for (0 or 1: nothing to steer) or that does not fit.
fn modulus(workers: usize) -> Option<u32> {
    u32::try_from(workers).ok().filter(|w| *w >= 2)
}

/// The socket filter of worker `shard`'s raw ESP socket: keeps the packets whose source
/// address has `shard_of(src, workers) == shard`, drops the rest. `None` when `workers`
/// is below 2 (no filter needed) or `shard` is not below `workers`.
///
/// ```text
/// 0: ld  [SKF_NET_OFF + 12]   A = source address (IPv4), or its last word (IPv6: +20)
/// 1: mod #workers             A = A % workers, the owning worker
/// 2: jeq #shard, 3, 4         ours? go to 3, else to 4
/// 3: ret #0xffffffff          keep the whole packet
/// 4: ret #0                   drop it (another worker's socket keeps its own copy)
/// ```
pub fn esp_filter(v6: bool, shard: usize, workers: usize) -> Option<Vec<BpfInsn>> {
    let m = modulus(workers)?;
    let shard = u32::try_from(shard).ok().filter(|s| *s < m)?;
    Some(vec![
        insn(LD_W_ABS, 0, 0, source_word(v6)),
        insn(ALU_MOD_K, 0, 0, m),
        insn(JMP_JEQ_K, 0, 1, shard),
        insn(RET_K, 0, 0, BPF_ACCEPT),
        insn(RET_K, 0, 0, 0),
    ])
}

/// The reuseport program of the NAT-T socket group: returns the index in the group (the
/// order in which the sockets joined it) of the socket that owns the sender,
/// `shard_of(src, workers)`. `None` when `workers` is below 2.
///
/// ```text
/// 0: ld  [SKF_NET_OFF + 12]   A = source address (IPv4), or its last word (IPv6: +20)
/// 1: mod #workers             A = A % workers
/// 2: ret A                    the socket index
/// ```
pub fn reuseport_program(v6: bool, workers: usize) -> Option<Vec<BpfInsn>> {
    let m = modulus(workers)?;
    Some(vec![
        insn(LD_W_ABS, 0, 0, source_word(v6)),
        insn(ALU_MOD_K, 0, 0, m),
        insn(RET_A, 0, 0, 0),
    ])
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

    /// Runs the few classic BPF instructions the programs use, the way the kernel does
    /// (`net/core/filter.c`): `net` is the packet from its network header on, and the
    /// packet's data starts `data` bytes into it. A load outside the packet returns 0.
    fn run(prog: &[BpfInsn], net: &[u8], data: usize) -> u32 {
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                LD_W_ABS => {
                    let at = if i.k >= NET_OFF {
                        (i.k - NET_OFF) as usize
                    } else {
                        data + i.k as usize
                    };
                    let Some(w) = net.get(at..at + 4) else {
                        return 0;
                    };
                    a = u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
                }
                ALU_MOD_K => a %= i.k,
                JMP_JEQ_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                RET_K => return i.k,
                RET_A => return a,
                other => panic!("instruction {other:#x} not expected"),
            }
        }
    }

    /// A minimal IP header of `src`'s family (destination and the rest zero), as the
    /// kernel's network header sees it, with 8 bytes of ESP after it.
    fn header(src: IpAddr) -> Vec<u8> {
        let mut p = match src {
            IpAddr::V4(a) => {
                let mut p = vec![0x45u8; 20];
                p[12..16].copy_from_slice(&a.octets());
                p
            }
            IpAddr::V6(a) => {
                let mut p = vec![0x60u8; 40];
                p[8..24].copy_from_slice(&a.octets());
                p
            }
        };
        p.extend_from_slice(&[0xee; 8]);
        p
    }

    fn sources() -> Vec<IpAddr> {
        let mut out = Vec::new();
        for i in 0..300u32 {
            let x = i.wrapping_mul(2_654_435_761);
            out.push(IpAddr::from(std::net::Ipv4Addr::from(x)));
            let mut o = [0u8; 16];
            o[0] = 0x20;
            o[12..].copy_from_slice(&x.to_be_bytes());
            o[5] = i as u8;
            out.push(IpAddr::from(std::net::Ipv6Addr::from(o)));
        }
        out.push("255.255.255.255".parse().expect("addr"));
        out.push("::ffff:ffff".parse().expect("addr"));
        out
    }

    #[test]
    fn the_esp_filter_keeps_exactly_the_shards_packets() {
        for src in sources() {
            let v6 = src.is_ipv6();
            let net = header(src);
            // An IPv4 raw socket's data starts at the IP header, an IPv6 one's after it:
            // the network-relative load reads the same word either way.
            let data = if v6 { 40 } else { 0 };
            for workers in 2..=7 {
                let owner = shard_of(src, workers);
                for shard in 0..workers {
                    let prog = esp_filter(v6, shard, workers).expect("a filter");
                    let verdict = run(&prog, &net, data);
                    let want = if shard == owner { BPF_ACCEPT } else { 0 };
                    assert_eq!(verdict, want, "{src}, shard {shard} of {workers}");
                }
            }
        }
    }

    #[test]
    fn the_reuseport_program_returns_the_owners_index() {
        for src in sources() {
            let v6 = src.is_ipv6();
            let net = header(src);
            // UDP header pulled: data starts 8 bytes past the IP header.
            let data = if v6 { 48 } else { 28 };
            for workers in 2..=7 {
                let prog = reuseport_program(v6, workers).expect("a program");
                let index = run(&prog, &net, data) as usize;
                assert_eq!(index, shard_of(src, workers), "{src}, {workers} workers");
            }
        }
    }

    #[test]
    fn no_program_for_one_worker_or_a_shard_out_of_range() {
        assert!(esp_filter(false, 0, 1).is_none());
        assert!(esp_filter(false, 0, 0).is_none());
        assert!(esp_filter(true, 2, 2).is_none());
        assert!(reuseport_program(false, 1).is_none());
        assert!(reuseport_program(true, 0).is_none());
    }

    #[test]
    fn a_packet_too_short_for_the_source_is_dropped() {
        let prog = esp_filter(false, 0, 2).expect("a filter");
        assert_eq!(
            run(&prog, &[0; 14], 0),
            0,
            "word 0 is shard 0's, but it is not there"
        );
    }
}
