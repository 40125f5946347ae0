//! The control API's answers: the daemon's own requests (status, SAs, statistics, events)
//! here, the engine's (policy, filters, sublayers, providers, contexts, explain) through
//! palisade-control's `EngineService`, which opens an engine session as the caller.
//!
//! The daemon's own requests are guarded by the engine's access control list too (as WFP
//! guards IPsec SA queries with the engine's security descriptor): reading needs
//! READ_STATS, deleting an SA needs WRITE.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palisade_control::EngineService;
use palisade_control::ErrorCode;
use palisade_control::handler::Handler;
use palisade_control::protocol::{
    ChildSaView, IkeSaView, NatOriginal, NetEvent, Request, Response, SaCounters, Stats, Status,
};
use palisade_filter::policy::TrafficSelector;
use palisade_filter::{Caller, Engine, Rights};
use palisade_ike::IkeSaId;
use tracing::{info, warn};

use crate::dataplane::{ChildSnapshot, DataHandle, DataSnapshot};
use crate::events::EventRing;
use crate::keying::{IkeSaEntry, KeyingInput};
use crate::scopes::ScopeKeeper;
use crate::stats::{DataStats, IkeStats};
use crate::sys::KernelDrops;

/// What the control API reaches in the daemon.
pub struct Service {
    engine: Engine,
    engine_service: EngineService,
    events: Arc<EventRing>,
    data: DataHandle,
    keying: Mutex<Sender<KeyingInput>>,
    data_stats: Arc<DataStats>,
    ike_stats: Arc<IkeStats>,
    kernel_drops: Option<KernelDrops>,
    started: Instant,
    tun: String,
    policy_file: Option<String>,
    ready: Arc<AtomicBool>,
    scopes: Arc<Mutex<ScopeKeeper>>,
}

/// The parts the service is built from.
pub struct ServiceParts {
    /// The filtering engine.
    pub engine: Engine,
    /// The net-event ring.
    pub events: Arc<EventRing>,
    /// The data plane.
    pub data: DataHandle,
    /// The keying thread.
    pub keying: Sender<KeyingInput>,
    /// Data-plane counters.
    pub data_stats: Arc<DataStats>,
    /// IKE datagram counters.
    pub ike_stats: Arc<IkeStats>,
    /// Where the kernel's drops before the data plane are read, if it could be set up.
    pub kernel_drops: Option<KernelDrops>,
    /// The TUN device's name.
    pub tun: String,
    /// The policy file applied at start.
    pub policy_file: Option<String>,
    /// Whether the data plane runs.
    pub ready: Arc<AtomicBool>,
    /// Routes and firewall rules, refreshed when policy changes.
    pub scopes: Arc<Mutex<ScopeKeeper>>,
}

impl Service {
    /// The service over its parts.
    pub fn new(p: ServiceParts) -> Service {
        Service {
            engine_service: EngineService::new(p.engine.clone()),
            engine: p.engine,
            events: p.events,
            data: p.data,
            keying: Mutex::new(p.keying),
            data_stats: p.data_stats,
            ike_stats: p.ike_stats,
            kernel_drops: p.kernel_drops,
            started: Instant::now(),
            tun: p.tun,
            policy_file: p.policy_file,
            ready: p.ready,
            scopes: p.scopes,
        }
    }

    fn allowed(&self, caller: &Caller, wanted: Rights) -> Result<(), Response> {
        self.engine.check_access(caller, wanted).map_err(|e| {
            Response::error_hint(
                ErrorCode::AccessDenied,
                e.to_string(),
                "run the command as root, or have the engine's access control list grant \
                 your user or group this right",
            )
        })
    }

    fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> KeyingInput) -> Option<T> {
        let (tx, rx): (Sender<T>, Receiver<T>) = channel();
        let sent = self
            .keying
            .lock()
            .map(|k| k.send(make(tx)).is_ok())
            .unwrap_or(false);
        if !sent {
            return None;
        }
        rx.recv_timeout(Duration::from_secs(2)).ok()
    }

    /// Whether the keying thread and every data-plane worker answer (within 2 s each):
    /// what the systemd watchdog's ping stands for.
    pub fn alive(&self) -> bool {
        // A fence per worker and the cheapest keying query, not the SA lists `fetch`
        // copies out.
        self.data.responsive(Duration::from_secs(2)) && self.ask(KeyingInput::List).is_some()
    }

    /// The keying thread's IKE SAs and the data plane's snapshot: one round trip each.
    fn fetch(&self) -> Result<(Vec<IkeSaEntry>, DataSnapshot), Response> {
        let unavailable = || {
            Response::error_hint(
                ErrorCode::Internal,
                "the daemon's threads did not answer",
                "see the daemon's log (journalctl -u palisaded)",
            )
        };
        let ike = self.ask(KeyingInput::List).ok_or_else(unavailable)?;
        let data = self.data.snapshot().ok_or_else(unavailable)?;
        Ok((ike, data))
    }

    fn sa_views(&self) -> Result<Vec<IkeSaView>, Response> {
        self.fetch().map(|(ike, data)| views_of(&ike, &data))
    }

    fn stats(&self) -> Result<Stats, Response> {
        let data = self
            .data
            .snapshot()
            .ok_or_else(|| Response::error(ErrorCode::Internal, "the data plane did not answer"))?;
        Ok(self.stats_of(&data))
    }

    fn stats_of(&self, data: &DataSnapshot) -> Stats {
        let s = &self.data_stats;
        let get = DataStats::get;
        let mut global_drops: BTreeMap<String, u64> = data
            .drops
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| ((*r).to_owned(), *n))
            .collect();
        for (name, counter) in [
            ("queue_full", &s.queue_drops),
            ("handoff_full", &s.handoff_drops),
            ("acquire_failed", &s.acquire_failed_drops),
            ("wrong_sa", &s.wrong_sa),
            ("policy_blocked", &s.policy_blocked),
            ("owner_pending", &s.owner_pending),
            ("nat_checksum", &s.nat_checksum_drops),
            ("not_ip", &s.malformed),
            ("send_error", &s.send_errors),
        ] {
            let n = get(counter);
            if n > 0 {
                global_drops.insert(name.to_owned(), n);
            }
        }
        let (sent, received) = self.ike_stats.get();
        let mut sas = Vec::new();
        for c in &data.children {
            sas.push((c.entry.inbound_spi, counters(&c.inbound)));
            sas.push((c.entry.outbound_spi, counters(&c.outbound)));
        }
        Stats {
            global_drops,
            kernel_drops: self
                .kernel_drops
                .as_ref()
                .map(KernelDrops::read)
                .unwrap_or_default(),
            tun_rx: get(&s.tun_rx),
            tun_tx: get(&s.tun_tx),
            esp_rx: get(&s.esp_rx),
            esp_tx: get(&s.esp_tx),
            udp_rx: get(&s.udp_rx),
            udp_tx: sent,
            queued: get(&s.queued),
            queue_drops: get(&s.queue_drops),
            clear_permitted: get(&s.clear_permitted),
            clear_blocked: get(&s.clear_blocked),
            handed_off: get(&s.handed_off),
            reassembled: get(&s.reassembled),
            fragmented: get(&s.fragmented),
            ike: BTreeMap::from([
                ("datagrams_sent".to_owned(), sent),
                ("datagrams_received".to_owned(), received),
            ]),
            sas,
        }
    }

    /// Prometheus text for the metrics endpoint: one snapshot serves the counters and
    /// the SA counts.
    pub fn metrics_text(&self) -> String {
        use crate::metrics::SaDirection;
        let Ok((ike, data)) = self.fetch() else {
            return String::new();
        };
        let directions: HashMap<u32, SaDirection> = data
            .children
            .iter()
            .flat_map(|c| {
                [
                    (c.entry.inbound_spi, SaDirection::Inbound),
                    (c.entry.outbound_spi, SaDirection::Outbound),
                ]
            })
            .collect();
        crate::metrics::render_with_directions(
            &self.stats_of(&data),
            views_of(&ike, &data).len(),
            data.children.len(),
            &|spi| directions.get(&spi).copied(),
        )
    }

    fn delete_sa(&self, id: &str) -> Response {
        let not_found = || {
            Response::error_hint(
                ErrorCode::NotFound,
                format!("no SA `{id}`"),
                "`palisade sa list` shows the IKE SA ids and the CHILD_SA SPIs (0x...)",
            )
        };
        let done = if let Some(spi) = parse_spi(id) {
            self.ask(|tx| KeyingInput::DeleteChildSa(spi, tx))
        } else if let Ok(n) = id.parse::<u64>() {
            self.ask(|tx| KeyingInput::DeleteIkeSa(IkeSaId(n), tx))
        } else {
            return Response::error_hint(
                ErrorCode::InvalidRequest,
                format!("`{id}` is neither an IKE SA id nor an SPI"),
                "give an IKE SA id (a number) or a CHILD_SA SPI in hex (0x1234abcd)",
            );
        };
        match done {
            Some(true) => Response::Ok,
            _ => not_found(),
        }
    }

    /// Re-reads the configured `policy_file` and applies it with `caller`'s rights, as
    /// `policy_apply` would (all or nothing): the control API's `policy_reload`, which
    /// `systemctl reload` runs, and SIGHUP. A file that cannot be read or compiled is
    /// refused with a `policy_rejected` event, and the running policy stays.
    pub fn reload_policy(&self, caller: &Caller) -> Response {
        let Some(file) = &self.policy_file else {
            warn!("policy reload asked for, but no policy_file is configured");
            return Response::error_hint(
                ErrorCode::InvalidRequest,
                "no policy_file is configured: nothing to reload",
                "name one as `policy_file` in palisaded.toml (docs/operations.md), or run `palisade policy apply FILE`",
            );
        };
        let response = apply_policy_file(&self.engine_service, &self.events, caller, file);
        if !matches!(response, Response::Error { .. }) {
            self.policy_changed("policy_reload");
        }
        response
    }

    /// After the engine changed (a control request; `what` = "policy_reload": the policy
    /// file re-read): routes and firewall follow the new scopes.
    pub fn policy_changed(&self, what: &str) {
        match self.scopes.lock() {
            Ok(mut s) => {
                if let Err(e) = s.refresh() {
                    warn!(error = %e, "routes or firewall not updated after a policy change");
                }
            }
            Err(_) => warn!("scope keeper poisoned; routes not updated"),
        }
        info!(what, "policy changed");
        self.events.push(
            "policy_changed",
            format!("policy changed ({what})"),
            serde_json::json!({ "request": what }),
        );
    }
}

impl Handler for Service {
    fn handle(&self, caller: &Caller, request: Request) -> Response {
        let read = || self.allowed(caller, Rights::READ_STATS);
        match request {
            Request::Status => {
                if let Err(e) = self.allowed(caller, Rights::OPEN) {
                    return e;
                }
                let views = self.sa_views().unwrap_or_default();
                Response::Status(Status {
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    pid: std::process::id(),
                    uptime_secs: self.started.elapsed().as_secs(),
                    tun: self.tun.clone(),
                    policy_file: self.policy_file.clone(),
                    filters: filter_count(&self.engine),
                    ike_sas: views.iter().filter(|v| v.state == "established").count(),
                    child_sas: views.iter().map(|v| v.child_sas.len()).sum(),
                    ready: self.ready.load(Ordering::Acquire),
                })
            }
            Request::SaList => match read().and_then(|()| self.sa_views()) {
                Ok(sas) => Response::Sas { sas },
                Err(e) => e,
            },
            Request::SaShow { id } => {
                let views = match read().and_then(|()| self.sa_views()) {
                    Ok(v) => v,
                    Err(e) => return e,
                };
                let spi = parse_spi(&id);
                let found = views.into_iter().find(|v| {
                    Some(v.id) == id.parse().ok()
                        || v.child_sas
                            .iter()
                            .any(|c| Some(c.inbound_spi) == spi || Some(c.outbound_spi) == spi)
                });
                found.map(|v| Response::Sa(Box::new(v))).unwrap_or_else(|| {
                    Response::error_hint(
                        ErrorCode::NotFound,
                        format!("no SA `{id}`"),
                        "`palisade sa list` shows the IKE SA ids and CHILD_SA SPIs",
                    )
                })
            }
            Request::SaDelete { id } => match self.allowed(caller, Rights::WRITE) {
                Ok(()) => self.delete_sa(&id),
                Err(e) => e,
            },
            Request::PolicyReload => self.reload_policy(caller),
            Request::Stats => match read().and_then(|()| self.stats()) {
                Ok(s) => Response::Stats(Box::new(s)),
                Err(e) => e,
            },
            other => {
                let mutating = is_mutation(&other);
                let kind = other.kind();
                match self.engine_service.handle(caller, &other) {
                    Some(response) => {
                        if mutating && !matches!(response, Response::Error { .. }) {
                            self.policy_changed(kind);
                        }
                        response
                    }
                    None => Response::error(
                        ErrorCode::InvalidRequest,
                        format!("request `{kind}` is not handled by this daemon"),
                    ),
                }
            }
        }
    }

    fn events(
        &self,
        caller: &Caller,
        since: Option<u64>,
    ) -> Result<(Vec<NetEvent>, Receiver<NetEvent>), Response> {
        self.allowed(caller, Rights::READ_STATS)?;
        Ok(self.events.subscribe(since))
    }
}

/// Reads the policy file `file` and applies it as `policy_apply` would, with `caller`'s
/// rights: what palisaded does at start and at every reload. A file that cannot be read
/// or compiled is refused, logged with its file, line and field and recorded as a
/// `policy_rejected` event, and the policy in the engine stays.
pub fn apply_policy_file(
    engine: &EngineService,
    events: &EventRing,
    caller: &Caller,
    file: &str,
) -> Response {
    let response = match std::fs::read_to_string(file) {
        Ok(text) => {
            let apply = Request::PolicyApply {
                file: file.to_owned(),
                text,
                dry_run: false,
            };
            engine
                .handle(caller, &apply)
                .unwrap_or_else(|| Response::error(ErrorCode::Internal, "policy_apply unhandled"))
        }
        Err(e) => Response::error_hint(
            ErrorCode::PolicyError,
            format!("{file}: {e}"),
            "the daemon reads policy_file itself: check its path and that root can read it",
        ),
    };
    match &response {
        Response::Error { message, .. } => {
            warn!(
                file,
                "policy file not applied, the policy in force stays: {message}"
            );
            events.push(
                "policy_rejected",
                message.clone(),
                serde_json::json!({ "file": file }),
            );
        }
        _ => info!(file, "policy file applied"),
    }
    response
}

/// Filters over every layer, as the compiled snapshot holds them.
fn filter_count(engine: &Engine) -> usize {
    let snapshot = engine.snapshot();
    palisade_filter::Layer::ALL
        .iter()
        .map(|l| snapshot.layer(*l).filters.len())
        .sum()
}

/// The IKE SAs with their CHILD_SAs, for `sa list`.
fn views_of(ike: &[IkeSaEntry], data: &DataSnapshot) -> Vec<IkeSaView> {
    let mut views: Vec<IkeSaView> = ike.iter().map(ike_view).collect();
    for child in &data.children {
        let view = child_view(child);
        match views.iter_mut().find(|v| v.id == child.entry.ike_sa.0) {
            Some(v) => v.child_sas.push(view),
            // A pair whose IKE SA is gone from the list (being rekeyed or deleted).
            None => views.push(IkeSaView {
                id: child.entry.ike_sa.0,
                remote: child.entry.peer.to_string(),
                state: "deleting".into(),
                child_sas: vec![view],
                ..IkeSaView::default()
            }),
        }
    }
    views
}

fn is_mutation(r: &Request) -> bool {
    match r {
        Request::PolicyApply { dry_run, .. } => !dry_run,
        Request::FilterAdd { .. }
        | Request::FilterDelete { .. }
        | Request::SublayerAdd { .. }
        | Request::SublayerDelete { .. }
        | Request::ProviderAdd { .. }
        | Request::ProviderDelete { .. }
        | Request::ContextAdd { .. }
        | Request::ContextDelete { .. } => true,
        _ => false,
    }
}

/// `0x1234abcd` (an SPI), as `sa show|delete` take it.
fn parse_spi(id: &str) -> Option<u32> {
    let hex = id.strip_prefix("0x").or_else(|| id.strip_prefix("0X"))?;
    u32::from_str_radix(hex, 16).ok()
}

fn ike_view(e: &IkeSaEntry) -> IkeSaView {
    let i = &e.info;
    IkeSaView {
        id: i.id.0,
        role: format!("{:?}", i.role).to_lowercase(),
        local: i.local.to_string(),
        remote: i.remote.to_string(),
        state: "established".into(),
        local_id: i.local_id.to_string(),
        peer_id: i.peer_id.to_string(),
        transforms: transforms_text(&i.transforms),
        established_secs: e.established.elapsed().as_secs(),
        nat: i.nat.any(),
        child_sas: Vec::new(),
    }
}

fn child_view(c: &ChildSnapshot) -> ChildSaView {
    let e = &c.entry;
    let ts = |list: &[TrafficSelector]| list.iter().map(selector_text).collect();
    ChildSaView {
        inbound_spi: e.inbound_spi,
        outbound_spi: e.outbound_spi,
        protocol: if e.suite.starts_with("ah-") {
            "ah"
        } else {
            "esp"
        }
        .into(),
        mode: format!("{:?}", e.mode).to_lowercase(),
        suite: e.suite.clone(),
        local_ts: ts(&e.selectors.local),
        remote_ts: ts(&e.selectors.remote),
        udp_encap: e.udp_encap.is_some(),
        inbound: counters(&c.inbound),
        outbound: counters(&c.outbound),
        lifetime: lifetime_text(&e.lifetime),
        age_secs: c.age.as_secs(),
        worker: c.worker as u32,
        nat_original: e.nat_original.map(|o| NatOriginal {
            source: o.source.to_string(),
            destination: o.destination.to_string(),
        }),
    }
}

/// IANA names, `/`-separated: `AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE25519`.
fn transforms_text(t: &palisade_ike::IkeTransforms) -> String {
    use palisade_crypto::{EncrId, IntegId, KeId, PrfId};
    let encr = match t.encr {
        EncrId::AesGcm16 => format!("AES_GCM_16_{}", t.key_bits),
        EncrId::AesCbc => format!("AES_CBC_{}", t.key_bits),
        EncrId::ChaCha20Poly1305 => "CHACHA20_POLY1305".to_owned(),
        EncrId::NullAuthAesGmac => format!("NULL_AUTH_AES_GMAC_{}", t.key_bits),
        EncrId::Null => "NULL".to_owned(),
    };
    let prf = match t.prf {
        PrfId::HmacSha1 => "PRF_HMAC_SHA1",
        PrfId::HmacSha2_256 => "PRF_HMAC_SHA2_256",
        PrfId::HmacSha2_384 => "PRF_HMAC_SHA2_384",
        PrfId::HmacSha2_512 => "PRF_HMAC_SHA2_512",
    };
    let integ = match t.integ {
        IntegId::None => None,
        IntegId::HmacSha1_96 => Some("AUTH_HMAC_SHA1_96"),
        IntegId::AesGmac128 => Some("AUTH_AES_128_GMAC"),
        IntegId::AesGmac256 => Some("AUTH_AES_256_GMAC"),
        IntegId::HmacSha2_256_128 => Some("AUTH_HMAC_SHA2_256_128"),
        IntegId::HmacSha2_384_192 => Some("AUTH_HMAC_SHA2_384_192"),
        IntegId::HmacSha2_512_256 => Some("AUTH_HMAC_SHA2_512_256"),
    };
    let ke = |k: KeId| match k {
        KeId::Modp2048 => "MODP_2048",
        KeId::Modp3072 => "MODP_3072",
        KeId::Modp4096 => "MODP_4096",
        KeId::Ecp256 => "ECP_256",
        KeId::Ecp384 => "ECP_384",
        KeId::Ecp521 => "ECP_521",
        KeId::Curve25519 => "CURVE25519",
        KeId::MlKem768 => "ML_KEM_768",
    };
    let mut parts = vec![encr, prf.to_owned()];
    parts.extend(integ.map(str::to_owned));
    parts.push(ke(t.ke).to_owned());
    parts.extend(t.addke.iter().flatten().map(|k| ke(*k).to_owned()));
    parts.join("/")
}

/// `rekey 54m, expire 1h` (time), with bytes and packets when set.
fn lifetime_text(l: &palisade_esp::lifetime::Lifetime) -> String {
    let limits = |x: &palisade_esp::lifetime::LifetimeLimits| {
        let mut v = Vec::new();
        if let Some(t) = x.time {
            v.push(duration_text(t.as_secs()));
        }
        if let Some(b) = x.bytes {
            v.push(format!("{b} bytes"));
        }
        if let Some(p) = x.packets {
            v.push(format!("{p} packets"));
        }
        if v.is_empty() {
            "never".to_owned()
        } else {
            v.join(" or ")
        }
    };
    format!("rekey {}, expire {}", limits(&l.soft), limits(&l.hard))
}

fn duration_text(secs: u64) -> String {
    match secs {
        s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        s if s >= 3600 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s if s >= 60 => format!("{}m{}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

fn selector_text(ts: &TrafficSelector) -> String {
    let addrs = if ts.start_address == ts.end_address {
        ts.start_address.to_string()
    } else {
        format!("{}-{}", ts.start_address, ts.end_address)
    };
    let proto = match ts.protocol_id {
        0 => String::new(),
        p => format!(" proto {p}"),
    };
    let ports = if ts.port_start == 0 && ts.port_end == u16::MAX {
        String::new()
    } else if ts.port_start == ts.port_end {
        format!(" port {}", ts.port_start)
    } else {
        format!(" ports {}-{}", ts.port_start, ts.port_end)
    };
    format!("{addrs}{proto}{ports}")
}

fn counters(c: &palisade_esp::SaCounters) -> SaCounters {
    SaCounters {
        packets: c.packets,
        bytes: c.bytes,
        drops: c
            .drops
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (r.name().to_owned(), n))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_and_lifetimes_read_as_administrators_expect() {
        use palisade_crypto::{EncrId, IntegId, KeId, PrfId};
        let t = palisade_ike::IkeTransforms {
            encr: EncrId::AesGcm16,
            key_bits: 256,
            prf: PrfId::HmacSha2_256,
            integ: IntegId::None,
            ke: KeId::Curve25519,
            addke: [Some(KeId::MlKem768), None, None, None, None, None, None],
        };
        assert_eq!(
            transforms_text(&t),
            "AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE25519/ML_KEM_768"
        );
        let l = palisade_esp::lifetime::Lifetime {
            soft: palisade_esp::lifetime::LifetimeLimits {
                time: Some(std::time::Duration::from_secs(3240)),
                ..Default::default()
            },
            hard: palisade_esp::lifetime::LifetimeLimits {
                time: Some(std::time::Duration::from_secs(3600)),
                bytes: Some(1 << 30),
                packets: None,
            },
        };
        assert_eq!(
            lifetime_text(&l),
            "rekey 54m, expire 1h or 1073741824 bytes"
        );
        assert_eq!(
            lifetime_text(&Default::default()),
            "rekey never, expire never"
        );
    }
}
