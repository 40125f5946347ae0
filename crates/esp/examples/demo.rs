//! The data-plane demo behind `scripts/demo.sh`: two hosts' SADs, a tunnel-mode SA
//! pair with AES-128-GCM in UDP 4500, a few packets sealed and opened, a tampered and a
//! replayed packet refused and counted. The sealed packets are written to a pcap file
//! with their keys so that an independent implementation (scapy) can open them.
//!
//! Usage: demo OUT_DIR

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use palisade_esp::{
    Direction, DropReason, EspSuite, Mode, Packet, SaConfig, SaTransform, Sad, UdpEncap,
};
use palisade_wire::{Ipv4Header, UdpHeader, proto, udp_checksum_v4};

const HEAD: usize = 128;
const TAIL: usize = 128;

fn udp_packet(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Result<Vec<u8>> {
    let mut udp = vec![0u8; 8 + payload.len()];
    udp[8..].copy_from_slice(payload);
    UdpHeader {
        src_port: 40000,
        dst_port: 7,
        length: udp.len() as u16,
        checksum: 0,
    }
    .write(&mut udp)?;
    let sum = udp_checksum_v4(src, dst, &udp);
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    let mut p = vec![0u8; 20];
    Ipv4Header {
        dscp: 0,
        ecn: 0,
        total_len: (20 + udp.len()) as u16,
        identification: 7,
        dont_fragment: true,
        more_fragments: false,
        fragment_offset: 0,
        ttl: 64,
        protocol: proto::UDP,
        checksum: 0,
        src,
        dst,
        header_len: 20,
    }
    .write(&mut p)?;
    p.extend_from_slice(&udp);
    Ok(p)
}

fn describe(p: &[u8]) -> String {
    match Ipv4Header::parse(p) {
        Ok(h) => {
            let what = match h.protocol {
                proto::UDP
                    if p.len() >= h.header_len + 16
                        && p[h.header_len + 2..h.header_len + 4] == 4500u16.to_be_bytes() =>
                {
                    let esp = &p[h.header_len + 8..];
                    format!(
                        "UDP 4500 -> ESP spi=0x{:08x} seq={}",
                        u32::from_be_bytes([esp[0], esp[1], esp[2], esp[3]]),
                        u32::from_be_bytes([esp[4], esp[5], esp[6], esp[7]])
                    )
                }
                proto::UDP => format!(
                    "UDP payload {:?}",
                    String::from_utf8_lossy(&p[h.header_len + 8..])
                ),
                other => format!("protocol {other}"),
            };
            format!(
                "{} -> {} len {:4}  {}",
                IpAddr::from(h.src),
                IpAddr::from(h.dst),
                h.total_len,
                what
            )
        }
        Err(e) => format!("unparsable: {e}"),
    }
}

fn pcap(path: &PathBuf, packets: &[Vec<u8>]) -> Result<()> {
    let mut f =
        std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    // Classic pcap, LINKTYPE_RAW (101): packets start at the IP header.
    f.write_all(&0xa1b2c3d4u32.to_le_bytes())?;
    f.write_all(&2u16.to_le_bytes())?;
    f.write_all(&4u16.to_le_bytes())?;
    f.write_all(&[0u8; 8])?;
    f.write_all(&65535u32.to_le_bytes())?;
    f.write_all(&101u32.to_le_bytes())?;
    for (i, p) in packets.iter().enumerate() {
        f.write_all(&(i as u32).to_le_bytes())?;
        f.write_all(&0u32.to_le_bytes())?;
        f.write_all(&(p.len() as u32).to_le_bytes())?;
        f.write_all(&(p.len() as u32).to_le_bytes())?;
        f.write_all(p)?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).context("usage: demo OUT_DIR")?);
    std::fs::create_dir_all(&out)?;
    let now = Instant::now();
    let (gw_a, gw_b): (IpAddr, IpAddr) = ("192.0.2.1".parse()?, "198.51.100.2".parse()?);
    let suite = EspSuite::AES128_GCM16;
    // As unpredictable as an IKE-derived key would be.
    let mut keys = vec![0u8; suite.keymat_len()];
    aws_lc_rs::rand::fill(&mut keys).map_err(|_| anyhow::anyhow!("no randomness"))?;
    let spi = 0xc0ff_ee01;
    let cfg = |dir, local, remote| {
        let mut c = SaConfig::new(spi, dir, SaTransform::Esp(suite), local, remote);
        c.mode = Mode::Tunnel;
        c.udp_encap = Some(UdpEncap::default());
        c
    };
    let mut host_a = Sad::new();
    let mut host_b = Sad::new();
    let out_sa = host_a.install(cfg(Direction::Outbound, gw_a, gw_b), &keys, now)?;
    let in_sa = host_b.install(cfg(Direction::Inbound, gw_b, gw_a), &keys, now)?;
    println!(
        "SA 0x{spi:08x}: tunnel {gw_a} -> {gw_b}, {} (ESP in UDP 4500)\n",
        suite.name()
    );

    let mut wire = Vec::new();
    for msg in ["hello", "from the subnet behind A", "to the one behind B"] {
        let inner = udp_packet([10, 1, 0, 5], [10, 2, 0, 9], msg.as_bytes())?;
        let mut buf = vec![0u8; HEAD + inner.len() + TAIL];
        buf[HEAD..HEAD + inner.len()].copy_from_slice(&inner);
        let mut pkt = Packet::new(&mut buf, HEAD, inner.len());
        host_a.encapsulate(out_sa, &mut pkt, now)?;
        println!("A sends  {}", describe(&inner));
        println!("  wire   {}", describe(pkt.bytes()));
        let sealed = pkt.bytes().to_vec();
        let mut rbuf = vec![0u8; HEAD + sealed.len() + TAIL];
        rbuf[HEAD..HEAD + sealed.len()].copy_from_slice(&sealed);
        let mut rpkt = Packet::new(&mut rbuf, HEAD, sealed.len());
        host_b.decapsulate(&mut rpkt, now)?;
        println!("  B gets {}\n", describe(rpkt.bytes()));
        assert_eq!(rpkt.bytes(), &inner[..]);
        wire.push(sealed);
    }

    // An attacker on the path flips one bit of a fresh packet, and replays an old one.
    let inner = udp_packet([10, 1, 0, 5], [10, 2, 0, 9], b"pay 100 EUR")?;
    let mut buf = vec![0u8; HEAD + inner.len() + TAIL];
    buf[HEAD..HEAD + inner.len()].copy_from_slice(&inner);
    let mut pkt = Packet::new(&mut buf, HEAD, inner.len());
    host_a.encapsulate(out_sa, &mut pkt, now)?;
    let mut tampered = pkt.bytes().to_vec();
    let last = tampered.len() - 20;
    tampered[last] ^= 1;
    for (what, bytes) in [("tampered", &tampered), ("replayed", &wire[0])] {
        let mut buf = vec![0u8; HEAD + bytes.len() + TAIL];
        buf[HEAD..HEAD + bytes.len()].copy_from_slice(bytes);
        let mut pkt = Packet::new(&mut buf, HEAD, bytes.len());
        let r = host_b.decapsulate(&mut pkt, now);
        println!(
            "B refuses the {what} packet: {}",
            r.err().map(|e| e.to_string()).unwrap_or_default()
        );
    }
    let c = host_b.get(in_sa).context("inbound SA")?.counters();
    println!(
        "\nB's inbound SA: {} packets, {} bytes accepted; drops: integrity {}, replay {}",
        c.packets,
        c.bytes,
        c.drops.get(DropReason::Integrity),
        c.drops.get(DropReason::Replay)
    );

    pcap(&out.join("esp.pcap"), &wire)?;
    std::fs::write(
        out.join("sa.txt"),
        format!(
            "spi=0x{spi:08x}\nkey={}\nsrc={gw_a}\ndst={gw_b}\n",
            hex(&keys)
        ),
    )?;
    println!(
        "wrote {} and sa.txt (the SA's key) for an independent check",
        out.join("esp.pcap").display()
    );
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
