//! Test support for the control API: a temporary socket directory and a fake daemon
//! (an engine served by `EngineService`, canned SAs and stats, an event ring) behind the
//! real server. The CLI's tests include this file too.
#![allow(dead_code)]

use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use palisade_control::{
    ChildSaView, EngineService, ErrorCode, Handler, IkeSaView, NatOriginal, NetEvent, Request,
    Response, SaCounters, ServerOptions, Stats, Status, serve_with,
};
use palisade_filter::{Caller, Engine};

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "palisade-control-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A daemon without a data plane.
pub struct FakeDaemon {
    pub service: EngineService,
    ring: Mutex<Vec<NetEvent>>,
    followers: Mutex<Vec<Sender<NetEvent>>>,
    next_seq: AtomicU64,
    pub deleted_sas: Mutex<Vec<String>>,
}

impl FakeDaemon {
    pub fn new(engine: Engine) -> FakeDaemon {
        FakeDaemon {
            service: EngineService::new(engine),
            ring: Mutex::new(Vec::new()),
            followers: Mutex::new(Vec::new()),
            next_seq: AtomicU64::new(1),
            deleted_sas: Mutex::new(Vec::new()),
        }
    }

    /// Raises an event: into the ring and to every follower still listening.
    pub fn raise(&self, kind: &str, summary: &str) -> NetEvent {
        let event = NetEvent {
            seq: self.next_seq.fetch_add(1, Ordering::SeqCst),
            unix_ms: 1_764_000_000_000,
            kind: kind.into(),
            summary: summary.into(),
            detail: serde_json::json!({ "summary": summary }),
        };
        self.ring.lock().expect("ring").push(event.clone());
        self.followers
            .lock()
            .expect("followers")
            .retain(|tx| tx.send(event.clone()).is_ok());
        event
    }

    /// Ends every followed stream, as a daemon that stops does.
    pub fn stop_following(&self) {
        self.followers.lock().expect("followers").clear();
    }

    /// Followers whose stream is still open (after the last `raise`).
    pub fn followers(&self) -> usize {
        self.followers.lock().expect("followers").len()
    }

    pub fn sa() -> IkeSaView {
        IkeSaView {
            id: 7,
            role: "initiator".into(),
            local: "192.0.2.1:500".into(),
            remote: "192.0.2.2:500".into(),
            state: "established".into(),
            local_id: "192.0.2.1".into(),
            peer_id: "192.0.2.2".into(),
            transforms: "AES_GCM_16_256/PRF_HMAC_SHA2_256/ECP_256".into(),
            established_secs: 42,
            nat: false,
            child_sas: vec![ChildSaView {
                inbound_spi: 0xc0ffee01,
                outbound_spi: 0xc0ffee02,
                protocol: "esp".into(),
                mode: "transport".into(),
                suite: "AES_GCM_16_256".into(),
                local_ts: vec!["192.0.2.1/32".into()],
                remote_ts: vec!["192.0.2.2/32".into()],
                udp_encap: false,
                inbound: SaCounters {
                    packets: 10,
                    bytes: 1000,
                    drops: [("replay".to_string(), 1)].into(),
                },
                outbound: SaCounters {
                    packets: 11,
                    bytes: 1100,
                    drops: Default::default(),
                },
                lifetime: "rekey 1h".into(),
                age_secs: 40,
                worker: 1,
                nat_original: Some(NatOriginal {
                    source: "10.0.0.2".into(),
                    destination: "192.0.2.1".into(),
                }),
            }],
        }
    }
}

impl Handler for FakeDaemon {
    fn handle(&self, caller: &Caller, request: Request) -> Response {
        if let Some(response) = self.service.handle(caller, &request) {
            return response;
        }
        match request {
            Request::Status => Response::Status(Status {
                version: "0.1.0".into(),
                pid: 4242,
                uptime_secs: 3661,
                tun: "pal0".into(),
                policy_file: Some("/etc/palisade/policy.toml".into()),
                filters: self.service.engine().snapshot().catalog.filter_count(),
                ike_sas: 1,
                child_sas: 1,
                ready: true,
            }),
            // As palisaded does, with POLICY as its policy_file.
            Request::PolicyReload => self
                .service
                .handle(
                    caller,
                    &Request::PolicyApply {
                        file: "/etc/palisade/policy.toml".into(),
                        text: POLICY.into(),
                        dry_run: false,
                    },
                )
                .unwrap_or_else(|| Response::error(ErrorCode::Internal, "policy_apply unhandled")),
            Request::SaList => Response::Sas {
                sas: vec![FakeDaemon::sa()],
            },
            Request::SaShow { id } if id == "7" || id == "0xc0ffee01" => {
                Response::Sa(Box::new(FakeDaemon::sa()))
            }
            Request::SaDelete { id } if id == "7" => {
                self.deleted_sas.lock().expect("deleted").push(id);
                Response::Ok
            }
            Request::SaShow { id } | Request::SaDelete { id } => Response::error_hint(
                ErrorCode::NotFound,
                format!("no SA {id:?}"),
                "`palisade sa list` shows the SAs",
            ),
            Request::Stats => Response::Stats(Box::new(Stats {
                esp_rx: 5,
                esp_tx: 6,
                global_drops: [("no_sa".to_string(), 3)].into(),
                sas: vec![(0xc0ffee01, SaCounters::default())],
                ..Stats::default()
            })),
            other => Response::error(
                ErrorCode::Unsupported,
                format!("{} is not faked", other.kind()),
            ),
        }
    }

    fn events(
        &self,
        _caller: &Caller,
        since: Option<u64>,
    ) -> Result<(Vec<NetEvent>, Receiver<NetEvent>), Response> {
        // Backlog and registration under one lock order so nothing falls between them.
        let mut followers = self.followers.lock().expect("followers");
        let backlog = self
            .ring
            .lock()
            .expect("ring")
            .iter()
            .filter(|e| since.is_none_or(|s| e.seq > s))
            .cloned()
            .collect();
        let (tx, rx) = channel();
        followers.push(tx);
        Ok((backlog, rx))
    }
}

/// A server for `daemon` on a socket in a new directory.
pub struct Running {
    pub dir: TempDir,
    pub socket: PathBuf,
    pub daemon: Arc<FakeDaemon>,
}

pub fn start(engine: Engine) -> Running {
    start_with(engine, ServerOptions::default())
}

pub fn start_with(engine: Engine, options: ServerOptions) -> Running {
    let dir = TempDir::new("srv");
    let socket = dir.0.join("control.sock");
    let listener = UnixListener::bind(&socket).expect("bind the control socket");
    let daemon = Arc::new(FakeDaemon::new(engine));
    serve_with(listener, daemon.clone(), options);
    Running {
        dir,
        socket,
        daemon,
    }
}

/// A policy the tests apply: one peer, pre-shared key.
pub const POLICY: &str = r#"
[policy]
name = "lab"

[auth_sets.psk]
method = "preshared_key"
key = "correct horse battery staple"

[[rules]]
name = "peer"
remote = "192.0.2.2"
action = "require"
auth = "psk"
"#;
