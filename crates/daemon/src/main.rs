//! palisaded: one daemon per host (docs/operations.md).
//!
//! Start order is fail-closed order: the firewall that drops clear text to and from
//! protected peers goes in first, then the TUN, sockets and routes, then the threads; the
//! control socket opens last, when the daemon can answer.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::{Context, Result, bail};
use clap::Parser;
use nix::sys::signal::{SigSet, Signal};
use palisade_control::EngineService;
use palisade_filter::{Engine, Store};
use palisade_ike::{Endpoint, EnginePolicy};
use palisaded::config::{Config, DEFAULT_CONFIG};
use palisaded::dataplane::{DataCommand, DataIo, DataSettings, Dataplane};
use palisaded::events::EventRing;
use palisaded::ipsec_callout::IpsecCallout;
use palisaded::keying::{Keying, KeyingInput};
use palisaded::keylog::KeyLog;
use palisaded::scopes::ScopeKeeper;
use palisaded::service::{Service, ServiceParts, apply_policy_file};
use palisaded::socket_owners::KernelSocketOwners;
use palisaded::stats::{DataStats, IkeStats};
use palisaded::sys::{
    self, EspSocket, Firewall, IkeSocket, KernelDrops, NfQueue, Notifier, PolicyRoutes, Tun,
};
use tracing::{info, warn};

/// How many net events the ring keeps.
const EVENT_RING: usize = 4096;

#[derive(Parser, Debug)]
#[command(name = "palisaded", version, about = "The Palisade IPsec daemon")]
struct Args {
    /// Configuration file (a missing default file means the defaults).
    #[arg(long, short, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Overrides `state_dir`.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Overrides `control_socket`.
    #[arg(long)]
    control_socket: Option<PathBuf>,
    /// Overrides `policy_file`.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Overrides `tun.name`.
    #[arg(long)]
    tun: Option<String>,
    /// Check the configuration (and the policy file) and exit.
    #[arg(long)]
    check: bool,
    /// Remove the fail-closed firewall rules and exit: protected traffic is then sent
    /// in clear while no daemon runs.
    #[arg(long)]
    remove_rules: bool,
    /// Install the fail-closed firewall for the stored policy (its persistent and
    /// boot-time filters) and exit: run early at boot (dist/palisaded-boot.service), so
    /// protected traffic is dropped, not sent in clear, until the daemon is ready.
    #[arg(long)]
    boot_rules: bool,
    /// Ask the running daemon (on `control_socket`) to re-read and apply its
    /// `policy_file`, wait for the answer and exit with it: what `systemctl reload` runs.
    /// A file that does not compile fails here, and the running policy stays.
    #[arg(long, conflicts_with_all = ["policy", "check", "remove_rules", "boot_rules"])]
    reload: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("palisaded: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let default = args.config == Path::new(DEFAULT_CONFIG);
    let mut config = Config::load(&args.config, default)?;
    if let Some(d) = args.state_dir {
        config.state_dir = d;
    }
    if let Some(s) = args.control_socket {
        config.control_socket = s;
    }
    if let Some(p) = args.policy {
        config.policy_file = Some(p);
    }
    if let Some(t) = args.tun {
        config.tun.name = t;
    }
    init_logging(&config.log);
    if args.reload {
        return reload(&config.control_socket);
    }
    let notifier = Notifier::from_env().unwrap_or_else(|e| {
        warn!(error = %e, "NOTIFY_SOCKET unusable: systemd is not told when palisaded is ready");
        Notifier::disabled()
    });

    if args.check {
        if let Some(p) = &config.policy_file {
            palisade_policy::compile_file(p).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        println!("configuration OK");
        return Ok(());
    }
    if args.remove_rules {
        Firewall::remove_all().context("removing the firewall rules")?;
        PolicyRoutes::remove_all().context("removing the policy routes")?;
        println!(
            "firewall rules and policy routes removed: protected traffic is no longer blocked while palisaded is down"
        );
        return Ok(());
    }

    // Signals are taken synchronously by the main thread; every thread spawned from
    // here on inherits the mask.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGHUP);
    signals.thread_block().context("blocking signals")?;

    let engine = open_engine(&config)?;
    let ike_ports = [config.ike.port, config.ike.natt_port];
    if args.boot_rules {
        let mut scopes = ScopeKeeper::new(engine, config.tun.name.clone(), ike_ports);
        scopes
            .install_firewall()
            .context("installing the fail-closed firewall rules")?;
        println!(
            "fail-closed firewall installed for {} protected prefixes; it holds until palisaded runs",
            scopes.prefixes().len()
        );
        return Ok(());
    }
    let events = Arc::new(EventRing::new(EVENT_RING));
    if let Some(path) = &config.policy_file {
        let _ = apply_policy_file(
            &EngineService::new(engine.clone()),
            &events,
            &palisade_filter::Caller::root(),
            &path.display().to_string(),
        );
    }

    let mut scopes = ScopeKeeper::new(engine.clone(), config.tun.name.clone(), ike_ports);
    scopes
        .install_firewall()
        .context("installing the fail-closed firewall rules")?;
    // Per worker: a TUN queue, a raw ESP socket and a NAT-T socket that the kernel gives
    // only the ESP of the worker's peers.
    let workers = config.dataplane.workers();
    let tuns = Tun::create_multi_queue_offload(&config.tun.name, config.tun.mtu, workers)
        .with_context(|| format!("creating the TUN device {}", config.tun.name))?;
    let esps = (0..workers)
        .map(|i| EspSocket::open_shard(sys::FWMARK, i, workers))
        .collect::<std::io::Result<Vec<_>>>()
        .context("opening the raw ESP sockets")?;
    let ike = IkeSocket::bind(config.ike.port, sys::FWMARK)
        .with_context(|| format!("binding UDP port {}", config.ike.port))?;
    let natts = IkeSocket::bind_sharded(config.ike.natt_port, sys::FWMARK, workers)
        .with_context(|| format!("binding UDP port {}", config.ike.natt_port))?;
    // IPv6 where the host has it: a host (or namespace) with IPv6 off runs on IPv4 alone.
    let v6 = (|| -> std::io::Result<_> {
        let esps = (0..workers)
            .map(|i| EspSocket::open_v6_shard(sys::FWMARK, i, workers))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok((
            esps,
            IkeSocket::bind_v6(config.ike.port, sys::FWMARK)?,
            IkeSocket::bind_v6_sharded(config.ike.natt_port, sys::FWMARK, workers)?,
        ))
    })();
    let (esp6s, ike6, natt6s) = match v6 {
        Ok((e, i, n)) => (e.into_iter().map(Some).collect(), Some(i), Some(n)),
        Err(e) => {
            warn!(error = %e, "no IPv6 sockets: IPv4 only");
            ((0..workers).map(|_| None).collect::<Vec<_>>(), None, None)
        }
    };
    // The kernel's drops before the data plane reads: every receive socket and the TUN.
    let kernel_drops = {
        let mut fds: Vec<BorrowedFd<'_>> = esps.iter().map(AsFd::as_fd).collect();
        fds.extend(natts.iter().map(AsFd::as_fd));
        fds.push(ike.as_fd());
        fds.extend(esp6s.iter().flatten().map(AsFd::as_fd));
        fds.extend(natt6s.iter().flatten().map(AsFd::as_fd));
        fds.extend(ike6.as_ref().map(AsFd::as_fd));
        KernelDrops::new(&config.tun.name, &fds)
            .inspect_err(|e| warn!(error = %e, "kernel drop counters unavailable"))
            .ok()
    };
    // Keying sends IKE on 4500 from the first worker's socket (any of the group would do).
    let natt = natts[0].try_clone()?;
    let natt6 = match &natt6s {
        Some(n) => Some(n[0].try_clone()?),
        None => None,
    };
    scopes
        .install_routes()
        .context("installing the policy routes")?;
    let scopes = Arc::new(Mutex::new(scopes));

    let data_stats = Arc::new(DataStats::default());
    let ike_stats = Arc::new(IkeStats::default());
    let ready = Arc::new(AtomicBool::new(false));
    let (keying_tx, keying_rx) = channel();
    // ALE_USER_ID and ALE_APP_ID: the kernel says who holds a flow's local socket.
    let owners = KernelSocketOwners::factory(std::time::Duration::from_millis(
        config.dataplane.program_search_ms,
    ));
    let callout = IpsecCallout::new(engine.clone()).with_socket_owners(owners);
    // Shared with the NFQUEUE thread: negotiation discovery's "once secured, never
    // clear" memory is written by the data plane and read there.
    let clear_callout = callout.share();
    let mut natt6s = natt6s.map(|v| v.into_iter().map(Some).collect::<Vec<_>>());
    let ios = tuns
        .into_iter()
        .zip(esps)
        .zip(natts)
        .zip(esp6s)
        .enumerate()
        .map(|(i, (((tun, esp), natt), esp6))| DataIo {
            tun,
            esp,
            natt,
            esp6,
            natt6: natt6s.as_mut().and_then(|v| v.get_mut(i)?.take()),
        })
        .collect();
    let (dataplane, data) = Dataplane::new(
        ios,
        callout,
        keying_tx.clone(),
        data_stats.clone(),
        events.clone(),
        ready.clone(),
        DataSettings {
            queue_per_peer: config.dataplane.queue_per_peer,
            ike_port: config.ike.port,
            sender_threads: config.dataplane.sender_threads,
            mtu: config.tun.mtu,
        },
    )?;

    // KeyLog::open warns in the log that key export is on.
    let keylog = match &config.key_export.file {
        Some(path) => {
            Some(KeyLog::open(path).with_context(|| format!("opening {}", path.display()))?)
        }
        None => None,
    };
    let mut sockets = BTreeMap::from([
        ((config.ike.port, false), ike.try_clone()?),
        ((config.ike.natt_port, false), natt),
    ]);
    if let (Some(i), Some(n)) = (&ike6, natt6) {
        sockets.insert((config.ike.port, true), i.try_clone()?);
        sockets.insert((config.ike.natt_port, true), n);
    }
    let keying_parts = (
        engine.clone(),
        sockets,
        config.ike.natt_port,
        data.clone(),
        events.clone(),
        keylog,
        ike_stats.clone(),
    );
    let endpoint_config = config.ike.endpoint_config();
    let mut threads = Vec::new();
    for (i, worker) in dataplane.into_iter().enumerate() {
        threads.push(spawn(&format!("dataplane-{i}"), move || worker.run())?);
    }
    // The IKE endpoint is not Send (its policy and random source are trait objects):
    // it is made on the thread that owns it.
    threads.push(spawn("keying", move || {
        let (engine, sockets, natt_port, data, events, keylog, stats) = keying_parts;
        let endpoint = Endpoint::new(endpoint_config, EnginePolicy::new(engine));
        Keying::new(endpoint, sockets, natt_port, data, events, keylog, stats).run(keying_rx)
    })?);
    for (family, socket) in [("ike-rx", Some(ike)), ("ike6-rx", ike6)] {
        let Some(socket) = socket else { continue };
        let tx = keying_tx.clone();
        let stats = ike_stats.clone();
        // Port 500 carries IKE only; its readers just hand datagrams on.
        spawn(family, move || {
            let mut buf = vec![0u8; 65536];
            loop {
                match socket.recv(&mut buf) {
                    Ok((n, remote, local)) => {
                        stats.received();
                        let msg = KeyingInput::Datagram {
                            bytes: buf[..n].to_vec(),
                            local,
                            remote,
                        };
                        if tx.send(msg).is_err() {
                            return;
                        }
                    }
                    Err(e) => warn!(error = %e, "IKE receive failed"),
                }
            }
        })?;
    }
    match NfQueue::open(sys::NFQUEUE_NUM) {
        Ok(queue) => {
            let stats = data_stats.clone();
            spawn("nfqueue", move || {
                palisaded::clear_inbound::run(queue, clear_callout, stats)
            })?;
        }
        Err(e) => warn!(
            error = %e,
            "NFQUEUE unavailable: clear-text packets from protected peers are all dropped (exemptions do not apply inbound)"
        ),
    }

    let service = Arc::new(Service::new(ServiceParts {
        engine: engine.clone(),
        events: events.clone(),
        data: data.clone(),
        keying: keying_tx.clone(),
        data_stats,
        ike_stats,
        kernel_drops,
        tun: config.tun.name.clone(),
        policy_file: config.policy_file.as_ref().map(|p| p.display().to_string()),
        ready,
        scopes: scopes.clone(),
    }));
    let listener = control_listener(&config.control_socket)?;
    palisade_control::server::serve(listener, service.clone());
    if let Some(addr) = config.metrics.listen {
        let s = service.clone();
        palisaded::metrics::serve(addr, Arc::new(move || s.metrics_text()))
            .with_context(|| format!("serving metrics on {addr}"))?;
        info!(%addr, "Prometheus metrics at http://{addr}/metrics");
    }
    info!(
        socket = %config.control_socket.display(),
        tun = %config.tun.name,
        "palisaded ready"
    );

    let status = format!("STATUS=protecting traffic through {}", config.tun.name);
    notify(&notifier, &format!("READY=1\n{status}"));
    if let Some(every) = sys::notify::watchdog_interval() {
        // Pings only while keying and every worker answer: a stuck thread lets the
        // watchdog expire, and systemd restarts the daemon (fail closed meanwhile).
        let (service, notifier) = (service.clone(), notifier.clone());
        spawn("watchdog", move || {
            loop {
                std::thread::sleep(every);
                if service.alive() {
                    notify(&notifier, "WATCHDOG=1");
                } else {
                    warn!("a daemon thread did not answer: no watchdog ping");
                }
            }
        })?;
    }

    // SIGHUP re-reads the policy file; SIGTERM and SIGINT stop.
    let signal = loop {
        let signal = signals.wait().context("waiting for signals")?;
        if signal != Signal::SIGHUP {
            break signal;
        }
        notify(&notifier, "RELOADING=1\nSTATUS=re-reading the policy file");
        // Logged and evented either way; `systemctl reload` runs `palisaded --reload`
        // instead, which waits for the same answer.
        let _ = service.reload_policy(&palisade_filter::Caller::root());
        notify(&notifier, &format!("READY=1\n{status}"));
    };
    info!(?signal, "stopping");
    notify(&notifier, "STOPPING=1\nSTATUS=stopping");
    let _ = keying_tx.send(KeyingInput::Shutdown);
    data.send(DataCommand::Shutdown);
    for t in threads {
        let _ = t.join();
    }
    if let Ok(mut s) = scopes.lock()
        && let Err(e) = s.remove_routes()
    {
        warn!(error = %e, "removing the policy routes");
    }
    let _ = std::fs::remove_file(&config.control_socket);
    info!(
        "stopped; the firewall rules stay, so protected traffic stays blocked until palisaded runs again"
    );
    Ok(())
}

/// The filtering engine over the store under `state_dir` (created if missing).
fn open_engine(config: &Config) -> Result<Engine> {
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("creating {}", config.state_dir.display()))?;
    let store_path = config.store_path();
    let store = Store::open(&store_path)
        .with_context(|| format!("opening the filter store {}", store_path.display()))?;
    Engine::open(store).context("loading the stored filters")
}

/// Tells systemd `state` (sys::notify); a failure only costs the notification.
fn notify(notifier: &Notifier, state: &str) {
    if let Err(e) = notifier.notify(state) {
        warn!(error = %e, state, "systemd notification not sent");
    }
}

/// `--reload`: the daemon answers with what changed, or why the file was refused.
fn reload(control_socket: &Path) -> Result<()> {
    let mut client = palisade_control::Client::connect(control_socket)
        .with_context(|| "is palisaded running? (--reload asks the running daemon)")?;
    match client.request(palisade_control::Request::PolicyReload)? {
        palisade_control::Response::PolicyChanges(p) => {
            let (added, changed, removed) = p.counts();
            println!(
                "policy {:?} reloaded: {added} added, {changed} changed, {removed} removed",
                p.policy
            );
            Ok(())
        }
        other => bail!("unexpected answer to policy_reload: {other:?}"),
    }
}

fn control_listener(path: &Path) -> Result<std::os::unix::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // A socket file left by a daemon that died; a live daemon answers on it.
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        bail!(
            "another palisaded answers on {}; stop it first",
            path.display()
        );
    }
    let _ = std::fs::remove_file(path);
    let listener = std::os::unix::net::UnixListener::bind(path)
        .with_context(|| format!("binding the control socket {}", path.display()))?;
    // Who may do what is the engine's access control; the file mode only keeps out
    // users who are not in the socket's group.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .with_context(|| format!("starting the {name} thread"))
}

fn init_logging(directive: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(directive))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
