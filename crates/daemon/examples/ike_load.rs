//! ike_load: an IKEv2 initiator that measures how many IKE_SA + CHILD_SA setups per
//! second a responder completes (benches/ike_setups.sh runs it against palisaded and
//! against charon).
//!
//! It keeps `--concurrency` negotiations in flight against `--responder`, each from a
//! fresh source address (127.1.0.1, 127.1.0.2, ... on loopback, which owns all of
//! 127.0.0.0/8), so that no per-peer bound of the responder (half-open or established
//! IKE SAs per address, cookies per address) caps the rate; every completed CHILD_SA
//! starts the next negotiation. Established SAs are left to the responder (no Delete),
//! so the responder's work per setup is IKE_SA_INIT plus IKE_AUTH and nothing else.
//!
//! One wildcard UDP socket on an ephemeral port sends from any of those addresses
//! (IP_PKTINFO). The endpoints believe they use ports 500 and 4500; since the source
//! port the responder sees is another one, both ends detect a NAT, IKE moves to the
//! responder's port 4500 for IKE_AUTH and the CHILD_SAs are ESP in UDP, which is what
//! charon with kernel-libipsec demands anyway (it fakes a NAT to force it).
//!
//! Setups are spread over endpoints of at most `--per-endpoint` IKE SAs each, dropped
//! when all their negotiations ended: an endpoint's timers are computed over all of its
//! IKE SAs, and thousands of established ones would make the generator, not the
//! responder, the bottleneck.
//!
//! ```sh
//! ike_load --responder 127.0.0.1 --psk SECRET --mode tunnel --seconds 10 --concurrency 32
//! ```
//! prints one line: `setups=N seconds=S rate=R/s failures=F ... p50_ms=.. p99_ms=..`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use palisade_filter::policy::{
    AuthenticationMethod, DhGroup, IkeCipher, IkeIntegrity, IpsecProposal, IpsecTransportPolicy,
    IpsecTunnelPolicy, MainModePolicy, MainModeProposal, TunnelEndpoints,
};
use palisade_ike::traffic_selector::host;
use palisade_ike::{
    Acquire, ChildPolicy, Endpoint, EndpointConfig, Event, IkePolicy, PolicyLookup, Traffic,
};
use palisade_wire::{NAT_T_PORT, NON_ESP_MARKER};
use palisaded::sys::IkeSocket;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// Transport mode between the two addresses.
    Transport,
    /// Host-to-host tunnel mode (charon's kernel-libipsec does only this).
    Tunnel,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Group {
    /// ECP-256 (group 19).
    Ecp256,
    /// Curve25519 (group 31).
    Curve25519,
}

/// IKE_SA + CHILD_SA setups per second against a responder.
#[derive(Debug, Parser)]
struct Args {
    /// The responder's address (IKE on its port 500, then 4500).
    #[arg(long, default_value = "127.0.0.1")]
    responder: Ipv4Addr,
    /// The pre-shared key.
    #[arg(long)]
    psk: String,
    /// The CHILD_SA's mode.
    #[arg(long, value_enum, default_value = "tunnel")]
    mode: Mode,
    /// The IKE SA's key exchange (cipher AES-GCM-128, PRF HMAC-SHA-256; ESP AES-GCM-128).
    #[arg(long, value_enum, default_value = "ecp256")]
    group: Group,
    /// How long to start new negotiations, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Negotiations in flight at any time.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// The first source address; each negotiation takes the next one.
    #[arg(long, default_value = "127.1.0.1")]
    first_source: Ipv4Addr,
    /// IKE SAs per initiator endpoint before a fresh one takes over.
    #[arg(long, default_value_t = 64)]
    per_endpoint: usize,
}

/// The initiator's policy: one PSK main mode for the responder, and a CHILD_SA for the
/// two hosts' traffic, whatever our source address.
struct LoadPolicy {
    ike: IkePolicy,
    mode: Mode,
}

impl PolicyLookup for LoadPolicy {
    fn main_mode(&self, _local: IpAddr, _remote: IpAddr) -> Option<IkePolicy> {
        Some(self.ike.clone())
    }

    fn quick_mode(&self, local: IpAddr, remote: IpAddr, _traffic: &Traffic) -> Option<ChildPolicy> {
        let esp = vec![IpsecProposal::esp_aes128_gcm()];
        Some(match self.mode {
            Mode::Transport => {
                ChildPolicy::transport(IpsecTransportPolicy::new(esp), local, remote)
            }
            Mode::Tunnel => ChildPolicy::tunnel(
                IpsecTunnelPolicy::new(TunnelEndpoints::new(local, remote), esp),
                vec![host(local)],
                vec![host(remote)],
            ),
        })
    }
}

/// One initiator endpoint and how many of its negotiations are still running.
struct Generation {
    endpoint: Endpoint,
    started: usize,
    running: usize,
}

#[derive(Default)]
struct Tally {
    completed: u64,
    failed: u64,
    failures: HashMap<String, u64>,
    latencies: Vec<Duration>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.concurrency == 0 || args.per_endpoint == 0 {
        bail!("--concurrency and --per-endpoint must be at least 1");
    }
    let group = match args.group {
        Group::Ecp256 => DhGroup::Ecp256,
        Group::Curve25519 => DhGroup::Curve25519,
    };
    let ike = IkePolicy::new(MainModePolicy::new(
        [AuthenticationMethod::preshared_key(
            args.psk.as_bytes().to_vec(),
        )],
        [MainModeProposal::new(
            IkeCipher::AesGcm128,
            IkeIntegrity::Sha256,
            group,
        )],
    ));
    let config = EndpointConfig {
        // Every IKE SA of the generator has the same peer, the responder.
        max_ike_sas_per_peer: usize::MAX,
        max_half_open_per_peer: usize::MAX,
        nat_keepalive_interval: None,
        ..EndpointConfig::default()
    };
    let new_endpoint = || {
        Endpoint::new(
            config,
            LoadPolicy {
                ike: ike.clone(),
                mode: args.mode,
            },
        )
    };

    let socket = IkeSocket::bind(0, 0).context("UDP socket")?;
    socket.set_nonblocking(true)?;
    let port = socket.port();
    let responder = SocketAddr::from((args.responder, 500));

    let mut generations: HashMap<u64, Generation> = HashMap::new();
    let mut current = 0u64;
    // Source address -> (generation, when its negotiation started).
    let mut running: HashMap<Ipv4Addr, (u64, Instant)> = HashMap::new();
    let mut next_source = u32::from(args.first_source);
    let mut tally = Tally::default();
    let mut buf = vec![0u8; 65536];
    let start = Instant::now();
    let stop_starting = start + Duration::from_secs_f64(args.seconds);
    // Negotiations still running when starting stops get this long to finish; they
    // are not counted (the rate is over the starting window only).
    let drain_until = stop_starting + Duration::from_secs(2);

    loop {
        let now = Instant::now();
        // Top up the negotiations in flight.
        while now < stop_starting && running.len() < args.concurrency {
            let source = Ipv4Addr::from(next_source);
            next_source = next_source.wrapping_add(1);
            if source.octets()[0] != 127 {
                bail!("ran out of 127.0.0.0/8 source addresses");
            }
            let g = generations.entry(current).or_insert_with(|| Generation {
                endpoint: new_endpoint(),
                started: 0,
                running: 0,
            });
            g.started += 1;
            g.running += 1;
            g.endpoint.handle_acquire(
                now,
                Acquire {
                    local: SocketAddr::from((source, 500)),
                    remote: responder,
                    traffic: None,
                },
            );
            running.insert(source, (current, now));
            if g.started >= args.per_endpoint {
                current += 1;
            }
        }
        // Send, collect events.
        for (&id, g) in &mut generations {
            while let Some(tx) = g.endpoint.poll_transmit() {
                let local = SocketAddr::from((tx.local.ip(), port));
                let result = if tx.local.port() == NAT_T_PORT && !tx.is_nat_keepalive() {
                    let mut m = Vec::with_capacity(4 + tx.bytes.len());
                    m.extend_from_slice(&NON_ESP_MARKER);
                    m.extend_from_slice(&tx.bytes);
                    socket.send(&m, local, tx.remote)
                } else {
                    socket.send(&tx.bytes, local, tx.remote)
                };
                if let Err(e) = result {
                    eprintln!("send {} -> {}: {e}", tx.local, tx.remote);
                }
            }
            while let Some(event) = g.endpoint.poll_event() {
                let (source, failure) = match event {
                    Event::ChildSaInstalled(c) => (c.local, None),
                    Event::Failure(f) => (f.local.ip(), Some(format!("{:?}", f.reason))),
                    _ => continue,
                };
                let IpAddr::V4(source) = source else { continue };
                let Some((gen_id, started)) = running.remove(&source) else {
                    continue;
                };
                debug_assert_eq!(gen_id, id);
                g.running = g.running.saturating_sub(1);
                match failure {
                    None if now <= stop_starting => {
                        tally.completed += 1;
                        tally.latencies.push(now.saturating_duration_since(started));
                    }
                    None => {}
                    Some(reason) => {
                        tally.failed += 1;
                        *tally.failures.entry(reason).or_default() += 1;
                    }
                }
            }
        }
        // Endpoints whose negotiations all ended (and that take no new ones) go.
        generations.retain(|&id, g| id == current || g.running > 0);

        let now = Instant::now();
        if now >= drain_until || (now >= stop_starting && running.is_empty()) {
            break;
        }
        let deadline = generations
            .values()
            .filter_map(|g| g.endpoint.poll_timeout())
            .min()
            .unwrap_or(now + Duration::from_millis(100))
            .min(now + Duration::from_millis(100))
            .min(if now < stop_starting {
                stop_starting
            } else {
                drain_until
            });
        let wait = deadline.saturating_duration_since(now);
        let millis = u16::try_from(wait.as_millis().max(1)).unwrap_or(100);
        let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::from(millis)).context("poll")?;

        loop {
            let (n, remote, local) = match socket.recv(&mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e).context("recv"),
            };
            let IpAddr::V4(dst) = local.ip() else {
                continue;
            };
            let Some(&(gen_id, _)) = running.get(&dst) else {
                continue;
            };
            let Some(g) = generations.get_mut(&gen_id) else {
                continue;
            };
            let now = Instant::now();
            let datagram = buf.get(..n).unwrap_or_default();
            if remote.port() == NAT_T_PORT {
                match datagram.split_first_chunk::<4>() {
                    Some((marker, message)) if *marker == NON_ESP_MARKER => {
                        g.endpoint.handle_datagram(
                            now,
                            SocketAddr::from((dst, NAT_T_PORT)),
                            remote,
                            message,
                        );
                    }
                    // ESP or a keepalive: nothing for IKE.
                    _ => {}
                }
            } else {
                g.endpoint
                    .handle_datagram(now, SocketAddr::from((dst, 500)), remote, datagram);
            }
        }
        let now = Instant::now();
        for g in generations.values_mut() {
            if g.endpoint.poll_timeout().is_some_and(|t| t <= now) {
                g.endpoint.handle_timeout(now);
            }
        }
    }

    let window = args.seconds;
    tally.latencies.sort();
    let pct = |p: f64| {
        let l = &tally.latencies;
        if l.is_empty() {
            return 0.0;
        }
        let i = ((l.len() - 1) as f64 * p).round() as usize;
        l.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let mut failures: Vec<String> = tally
        .failures
        .iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect();
    failures.sort();
    println!(
        "setups={} seconds={window} rate={:.1}/s failed={} unfinished={} concurrency={} \
         p50_ms={:.1} p99_ms={:.1} failures=[{}]",
        tally.completed,
        tally.completed as f64 / window,
        tally.failed,
        running.len(),
        args.concurrency,
        pct(0.5),
        pct(0.99),
        failures.join(",")
    );
    Ok(())
}
