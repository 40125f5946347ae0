//! palisaded's configuration file (TOML), with a default for every setting so that an
//! empty file, or none, is a working daemon.
//!
//! ```toml
//! state_dir = "/var/lib/palisade"          # the filter store (filters.redb) lives here
//! control_socket = "/run/palisade/control.sock"
//! policy_file = "/etc/palisade/policy.toml" # applied at start; optional
//! log = "info"
//!
//! [tun]
//! name = "pal0"
//! mtu = 1400
//!
//! [ike]
//! port = 500
//! natt_port = 4500
//! force_udp_encapsulation = false  # ESP in UDP on natt_port even without a NAT
//! dpd_delay = 30             # seconds of silence before a liveness check; 0 = off
//! retransmit_timeout_ms = 500  # first wait for an answer, doubled after each resend
//! retransmit_tries = 5       # resends before the peer counts as unreachable
//! retransmit_limit = 60      # seconds after which a request is given up in any case
//!
//! [dataplane]
//! queue_per_peer = 64        # packets held while an SA is negotiated
//! workers = 0                # data-plane threads; 0 = one per CPU (at most 16)
//! sender_threads = false     # each worker sends through a thread of its own
//! program_search_ms = 2      # a worker's search of /proc for a socket's program
//!
//! [metrics]
//! listen = "127.0.0.1:9477"  # Prometheus text endpoint; absent = off
//!
//! [key_export]
//! file = "/var/lib/palisade/wireshark-keys.txt"  # absent = off
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::sys;

/// Where the configuration file is looked for when none is named.
pub const DEFAULT_CONFIG: &str = "/etc/palisade/palisaded.toml";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory of the filter store and other state.
    pub state_dir: PathBuf,
    /// The control API's Unix socket.
    pub control_socket: PathBuf,
    /// A policy file applied at start (after the stored filters load). A file with an
    /// error is reported and the stored policy stays.
    pub policy_file: Option<PathBuf>,
    /// `tracing` filter directive (`info`, `debug`, `palisaded=debug,palisade_ike=info`).
    pub log: String,
    /// The TUN device.
    pub tun: TunConfig,
    /// IKE.
    pub ike: IkeConfig,
    /// The data plane.
    pub dataplane: DataplaneConfig,
    /// The Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// Key export for Wireshark.
    pub key_export: KeyExportConfig,
}

/// The TUN device protected traffic is routed into.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TunConfig {
    /// Device name.
    pub name: String,
    /// MTU: what fits in the path MTU after ESP's headers (1500 - 100 leaves room for
    /// an outer IPv6 header, UDP, ESP, IV, padding and ICV).
    pub mtu: u16,
}

/// IKE ports and behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IkeConfig {
    /// IKE (RFC 7296 §2).
    pub port: u16,
    /// IKE and ESP in UDP after NAT detection (RFC 3948).
    pub natt_port: u16,
    /// ESP in UDP on `natt_port` even where no NAT is detected (strongSwan's `encap =
    /// yes`): for paths that pass only UDP, and for the data plane's UDP batching. The
    /// peer is told we are behind a NAT; it needs nothing configured.
    pub force_udp_encapsulation: bool,
    /// Seconds without anything authentic from a peer (IKE or ESP) before its IKE SA
    /// gets a liveness check (RFC 7296 §2.4); when that goes unanswered through its
    /// retransmissions, the IKE SA and its CHILD_SAs are deleted. 0 turns it off.
    pub dpd_delay: u64,
    /// Milliseconds before our first retransmission of an unanswered request; each
    /// further wait is twice the one before (RFC 7296 §2.1).
    pub retransmit_timeout_ms: u64,
    /// Retransmissions before the peer counts as unreachable and the IKE SA (or the
    /// negotiation) is given up: with the defaults, 0.5 + 1 + 2 + 4 + 8 + 16 s, about
    /// 31 s after the first send. What dead peer detection takes to give up, too.
    pub retransmit_tries: u32,
    /// Seconds after the first send when a request is given up even with
    /// retransmissions left (a main-mode policy's `retransmit_duration_secs` replaces
    /// it for its IKE SAs).
    pub retransmit_limit: u64,
}

impl IkeConfig {
    /// The settings the IKE endpoint takes from here; the rest are its defaults.
    pub fn endpoint_config(&self) -> palisade_ike::EndpointConfig {
        use std::time::Duration;
        palisade_ike::EndpointConfig {
            force_udp_encapsulation: self.force_udp_encapsulation,
            dpd_delay: (self.dpd_delay != 0).then(|| Duration::from_secs(self.dpd_delay)),
            retransmit: palisade_ike::RetransmitConfig {
                initial_timeout: Duration::from_millis(self.retransmit_timeout_ms),
                max_retransmits: self.retransmit_tries,
                max_duration: Duration::from_secs(self.retransmit_limit),
            },
            ..palisade_ike::EndpointConfig::default()
        }
    }
}

/// Data-plane limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataplaneConfig {
    /// Packets held per peer while its SA is negotiated; more are dropped and counted.
    pub queue_per_peer: usize,
    /// Data-plane workers, each with its TUN queue and sockets and the SAs of some peers;
    /// 0 is one per CPU the daemon may run on, at most [`AUTO_WORKERS_MAX`].
    pub workers: usize,
    /// Whether each worker hands its sends (the kernel's per-packet work for raw ESP, the
    /// TUN writes) to a thread of its own instead of making them itself: a pipeline for
    /// one busy tunnel where cores outnumber busy workers, one more thread per worker
    /// competing for the cores otherwise.
    pub sender_threads: bool,
    /// How long a worker searches /proc for the program of a connection's socket
    /// (ALE_APP_ID, a rule's `programs`) before it hands the search to a thread of its
    /// own and holds the connection start (`owner_pending`); 0 hands every search over.
    pub program_search_ms: u64,
}

/// The most workers `workers = 0` chooses.
pub const AUTO_WORKERS_MAX: usize = 16;
/// The most workers a configuration may ask for.
pub const WORKERS_MAX: usize = 64;

impl DataplaneConfig {
    /// How many workers to run: the setting, or one per CPU.
    pub fn workers(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(AUTO_WORKERS_MAX),
            n => n,
        }
    }
}

/// The Prometheus text endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address to serve `GET /metrics` on; off when absent.
    pub listen: Option<SocketAddr>,
}

/// Key export for Wireshark.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyExportConfig {
    /// File to append decryption entries to; off when absent.
    pub file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            state_dir: PathBuf::from("/var/lib/palisade"),
            control_socket: PathBuf::from("/run/palisade/control.sock"),
            policy_file: None,
            log: "info".to_owned(),
            tun: TunConfig::default(),
            ike: IkeConfig::default(),
            dataplane: DataplaneConfig::default(),
            metrics: MetricsConfig::default(),
            key_export: KeyExportConfig::default(),
        }
    }
}

impl Default for TunConfig {
    fn default() -> Self {
        TunConfig {
            name: sys::DEFAULT_TUN.to_owned(),
            mtu: 1400,
        }
    }
}

impl Default for IkeConfig {
    fn default() -> Self {
        IkeConfig {
            port: 500,
            natt_port: 4500,
            force_udp_encapsulation: false,
            // strongSwan's default.
            dpd_delay: 30,
            retransmit_timeout_ms: 500,
            retransmit_tries: 5,
            retransmit_limit: 60,
        }
    }
}

impl Default for DataplaneConfig {
    fn default() -> Self {
        DataplaneConfig {
            queue_per_peer: 64,
            workers: 0,
            sender_threads: false,
            program_search_ms: 2,
        }
    }
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not readable.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid: toml's message names the line, column and key.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Parsed, but a value makes no sense.
    #[error("{path}: {field}: {message}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Reads `path`; with `optional`, a missing file is the defaults.
    pub fn load(path: &Path, optional: bool) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(path, &text),
            Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses the text of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|s| palisade_policy::location::line_column(text, s.start))
                .unwrap_or((0, 0));
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                column,
                message: e.message().to_owned(),
            }
        })?;
        config.check(path)?;
        Ok(config)
    }

    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |field, message: &str| ConfigError::Value {
            path: path.to_owned(),
            field,
            message: message.to_owned(),
        };
        let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if self.tun.name.is_empty()
            || self.tun.name.len() > 15
            || !self.tun.name.chars().all(name_ok)
            || self.tun.name == "."
            || self.tun.name == ".."
        {
            return Err(bad(
                "tun.name",
                "a device name has 1 to 15 characters: letters, digits, '-', '_' or '.'",
            ));
        }
        if !(576..=9000).contains(&self.tun.mtu) {
            return Err(bad("tun.mtu", "between 576 and 9000"));
        }
        if self.ike.port == 0 || self.ike.natt_port == 0 || self.ike.port == self.ike.natt_port {
            return Err(bad(
                "ike",
                "port and natt_port are two different, non-zero ports",
            ));
        }
        // Above a day the check would never matter; it also keeps Instant arithmetic far
        // from overflowing.
        if self.ike.dpd_delay > 86_400 {
            return Err(bad(
                "ike.dpd_delay",
                "at most 86400 seconds (0 turns dead peer detection off)",
            ));
        }
        if !(50..=60_000).contains(&self.ike.retransmit_timeout_ms) {
            return Err(bad(
                "ike.retransmit_timeout_ms",
                "50 to 60000 milliseconds (the wait before the first retransmission)",
            ));
        }
        if self.ike.retransmit_tries > 20 {
            return Err(bad(
                "ike.retransmit_tries",
                "at most 20 (the waits double each time: 20 is days at any timeout)",
            ));
        }
        if !(1..=3600).contains(&self.ike.retransmit_limit) {
            return Err(bad("ike.retransmit_limit", "1 to 3600 seconds"));
        }
        if self.dataplane.workers > WORKERS_MAX {
            return Err(bad("dataplane.workers", "at most 64 (0 runs one per CPU)"));
        }
        // Longer, and one worker's every flow would wait behind one lookup.
        if self.dataplane.program_search_ms > 100 {
            return Err(bad(
                "dataplane.program_search_ms",
                "at most 100 milliseconds (0 hands every search to its own thread)",
            ));
        }
        if self.dataplane.queue_per_peer == 0 {
            return Err(bad(
                "dataplane.queue_per_peer",
                "at least 1 (the packet that starts a negotiation is queued)",
            ));
        }
        Ok(())
    }

    /// The filter store.
    pub fn store_path(&self) -> PathBuf {
        self.state_dir.join("filters.redb")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        let c = Config::parse(Path::new("x.toml"), "").expect("empty");
        assert_eq!(c, Config::default());
        assert_eq!(
            c.store_path(),
            PathBuf::from("/var/lib/palisade/filters.redb")
        );
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = Config::parse(
            Path::new("p.toml"),
            "log = \"debug\"\n[tun]\nmtu = \"big\"\n",
        )
        .expect_err("bad type");
        let s = e.to_string();
        assert!(s.starts_with("p.toml:3:"), "{s}");
        let e = Config::parse(Path::new("p.toml"), "[tun]\nnmae = \"x\"\n").expect_err("typo");
        assert!(e.to_string().contains("nmae"), "{e}");
        let e = Config::parse(Path::new("p.toml"), "[tun]\nmtu = 100\n").expect_err("range");
        assert_eq!(e.to_string(), "p.toml: tun.mtu: between 576 and 9000");
        for name in ["a/b", "pal\\u0000", "..", "sixteen-chars-xx", ""] {
            let e = Config::parse(Path::new("p.toml"), &format!("[tun]\nname = \"{name}\"\n"))
                .expect_err(name);
            assert!(e.to_string().contains("tun.name"), "{name}: {e}");
        }
    }

    #[test]
    fn settings_are_read() {
        let c = Config::parse(
            Path::new("p.toml"),
            "state_dir = \"/tmp/s\"\npolicy_file = \"/etc/p.toml\"\n[metrics]\nlisten = \"127.0.0.1:9477\"\n[tun]\nname = \"pal9\"\n",
        )
        .expect("valid");
        assert_eq!(c.state_dir, PathBuf::from("/tmp/s"));
        assert_eq!(c.tun.name, "pal9");
        assert_eq!(
            c.metrics.listen,
            Some("127.0.0.1:9477".parse().expect("addr"))
        );
    }

    #[test]
    fn workers_are_one_per_cpu_unless_set() {
        let auto = Config::default().dataplane.workers();
        assert!((1..=AUTO_WORKERS_MAX).contains(&auto), "{auto}");
        let c = Config::parse(Path::new("p.toml"), "[dataplane]\nworkers = 3\n").expect("valid");
        assert_eq!(c.dataplane.workers(), 3);
        let e = Config::parse(Path::new("p.toml"), "[dataplane]\nworkers = 65\n")
            .expect_err("too many");
        assert_eq!(
            e.to_string(),
            "p.toml: dataplane.workers: at most 64 (0 runs one per CPU)"
        );
    }

    #[test]
    fn program_search_is_bounded() {
        assert_eq!(Config::default().dataplane.program_search_ms, 2);
        let c = Config::parse(
            Path::new("p.toml"),
            "[dataplane]
program_search_ms = 0
",
        )
        .expect("valid");
        assert_eq!(c.dataplane.program_search_ms, 0);
        let e = Config::parse(
            Path::new("p.toml"),
            "[dataplane]
program_search_ms = 101
",
        )
        .expect_err("too long");
        assert!(
            e.to_string()
                .starts_with("p.toml: dataplane.program_search_ms: at most 100"),
            "{e}"
        );
    }

    #[test]
    fn ike_settings_reach_the_endpoint() {
        let d = Config::default().ike.endpoint_config();
        assert!(!d.force_udp_encapsulation);
        assert_eq!(d.dpd_delay, Some(std::time::Duration::from_secs(30)));
        let c = Config::parse(
            Path::new("p.toml"),
            "[ike]\nforce_udp_encapsulation = true\ndpd_delay = 0\n",
        )
        .expect("valid");
        let e = c.ike.endpoint_config();
        assert!(e.force_udp_encapsulation);
        assert_eq!(e.dpd_delay, None, "0 is off");
        let c = Config::parse(Path::new("p.toml"), "[ike]\ndpd_delay = 5\n").expect("valid");
        assert_eq!(
            c.ike.endpoint_config().dpd_delay,
            Some(std::time::Duration::from_secs(5))
        );
        let e = Config::parse(Path::new("p.toml"), "[ike]\ndpd_delay = 100000\n")
            .expect_err("too long");
        assert!(e.to_string().contains("ike.dpd_delay"), "{e}");
        let e =
            Config::parse(Path::new("p.toml"), "[ike]\ndpd_delay = -1\n").expect_err("negative");
        assert!(e.to_string().starts_with("p.toml:2:"), "{e}");
    }

    #[test]
    fn retransmission_settings_reach_the_endpoint_and_are_bounded() {
        use std::time::Duration;
        let d = Config::default().ike.endpoint_config().retransmit;
        assert_eq!(
            d,
            palisade_ike::RetransmitConfig::default(),
            "the defaults agree"
        );
        let c = Config::parse(
            Path::new("p.toml"),
            "[ike]\nretransmit_timeout_ms = 200\nretransmit_tries = 2\nretransmit_limit = 5\n",
        )
        .expect("valid");
        let r = c.ike.endpoint_config().retransmit;
        assert_eq!(r.initial_timeout, Duration::from_millis(200));
        assert_eq!(r.max_retransmits, 2);
        assert_eq!(r.max_duration, Duration::from_secs(5));
        for (text, field) in [
            ("retransmit_timeout_ms = 10", "ike.retransmit_timeout_ms"),
            ("retransmit_tries = 21", "ike.retransmit_tries"),
            ("retransmit_limit = 0", "ike.retransmit_limit"),
        ] {
            let e =
                Config::parse(Path::new("p.toml"), &format!("[ike]\n{text}\n")).expect_err(text);
            assert!(e.to_string().contains(field), "{e}");
        }
    }
}
