//! strongSwan's charon as the reference IKEv2 peer, run inside a test's network
//! namespace the way /work/shared/interop/strongswan-netns.md §2 describes: charon-systemd
//! with its own strongswan.conf and swanctl.conf in a temporary directory, a private /run
//! bind-mounted inside `ip netns exec`'s own mount namespace, its own VICI socket, and a
//! file log. Include it next to netns.rs:
//!
//! ```ignore
//! #[path = "../../../tests/support/netns.rs"]
//! mod netns;
//! #[path = "../../../tests/support/strongswan.rs"]
//! mod strongswan;
//! ```
//!
//! A missing charon-systemd or swanctl fails the test (the test command installs them
//! through scripts/lib/deps.sh); PALISADE_SKIP_STRONGSWAN=1 skips it, and so does not
//! being root.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::netns::{Netns, find_program, root_or_skip, run_checked};

const CHARON: &str = "/usr/sbin/charon-systemd";
/// How long charon gets to answer on its VICI socket after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long charon gets to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

/// Whether a strongSwan test can run: `false` (with the reason printed) when
/// PALISADE_SKIP_STRONGSWAN is set or when not root; panics when strongSwan is missing.
pub fn available_or_skip(test: &str) -> bool {
    if std::env::var_os("PALISADE_SKIP_STRONGSWAN").is_some() {
        eprintln!("PALISADE_SKIP_STRONGSWAN set: skipping {test}");
        return false;
    }
    if !root_or_skip(test) {
        return false;
    }
    let swanctl = find_program("swanctl");
    assert!(
        Path::new(CHARON).is_file() && swanctl.is_some(),
        "{test} needs strongSwan's {CHARON} and swanctl (scripts/lib/deps.sh installs \
         charon-systemd, libcharon-extra-plugins and libstrongswan-standard-plugins; \
         PALISADE_SKIP_STRONGSWAN=1 skips this test)"
    );
    true
}

/// How the peer authenticates and is authenticated.
#[derive(Debug, Clone)]
pub enum Auth {
    /// A pre-shared key, with the identities both ends use (`id` in swanctl.conf).
    Psk {
        /// The shared secret.
        secret: String,
        /// charon's own identity.
        local_id: String,
        /// The identity charon expects of the peer under test.
        remote_id: String,
    },
}

/// One swanctl connection (with one child) and the charon settings around it.
#[derive(Debug, Clone)]
pub struct Config {
    /// charon's address (`local_addrs`).
    pub local_addr: IpAddr,
    /// The peer's address (`remote_addrs`).
    pub remote_addr: IpAddr,
    /// IKE proposals in swanctl syntax, comma separated (`aes128gcm16-prfsha256-ecp256`).
    pub proposals: String,
    /// The child's ESP proposals in swanctl syntax.
    pub esp_proposals: String,
    /// Authentication of both ends.
    pub auth: Auth,
    /// The child's local traffic selectors (`local_ts`).
    pub local_ts: String,
    /// The child's remote traffic selectors (`remote_ts`).
    pub remote_ts: String,
    /// `tunnel` or `transport` (kernel-libipsec only does tunnel mode).
    pub mode: String,
    /// charon's file log level for ike, cfg, chd, knl and esp; 4 logs the derived keys.
    pub log_level: u8,
    /// Lines added inside the connection (e.g. `local { certs = ... }` blocks later).
    pub extra_connection: String,
    /// Lines added at the top level of swanctl.conf (e.g. `authorities`, more secrets).
    pub extra: String,
}

impl Config {
    /// A host-to-host PSK connection from `local` to `remote`, with the recipe's
    /// proposals and the addresses as identities and traffic selectors.
    pub fn psk(local: IpAddr, remote: IpAddr, secret: &str) -> Self {
        Self {
            local_addr: local,
            remote_addr: remote,
            proposals: "aes128gcm16-prfsha256-ecp256".into(),
            esp_proposals: "aes128gcm16".into(),
            auth: Auth::Psk {
                secret: secret.into(),
                local_id: local.to_string(),
                remote_id: remote.to_string(),
            },
            local_ts: format!("{local}/32"),
            remote_ts: format!("{remote}/32"),
            mode: "tunnel".into(),
            log_level: 2,
            extra_connection: String::new(),
            extra: String::new(),
        }
    }

    fn strongswan_conf(&self, dir: &Path) -> String {
        let d = dir.display();
        let l = self.log_level;
        // The plugin list is explicit (load_modular = no): kernel-libipsec must come
        // before kernel-netlink, and plugins with fixed socket paths stay out. The fwmark
        // pair keeps charon's own packets out of the tunnel of a host-to-host TS.
        format!(
            r#"charon-systemd {{
  journal {{ default = -1 }}
}}
charon {{
  filelog {{
    charonlog {{
      path = {d}/charon.log
      append = no
      time_format = %b %e %T
      ike_name = yes
      flush_line = yes
      default = 1
      ike = {l}
      cfg = {l}
      chd = {l}
      knl = {l}
      esp = {l}
      net = 1
      enc = 1
    }}
  }}
  load_modular = no
  load = random nonce openssl kdf pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici
  routing_table = 220
  routing_table_prio = 220
  plugins {{
    vici {{ socket = unix://{d}/charon.vici }}
    kernel-libipsec {{ allow_peer_ts = yes }}
    socket-default {{ fwmark = 0x42 }}
    kernel-netlink {{ fwmark = !0x42 }}
  }}
}}
swanctl {{
  socket = unix://{d}/charon.vici
  load = pem pkcs1 x509 pubkey openssl random nonce
}}
"#
        )
    }

    fn swanctl_conf(&self) -> String {
        let Auth::Psk {
            secret,
            local_id,
            remote_id,
        } = &self.auth;
        let mut s = format!(
            r#"connections {{
  pal {{
    version = 2
    local_addrs = {}
    remote_addrs = {}
    proposals = {}
    dpd_delay = 0
    local {{
      auth = psk
      id = {local_id}
    }}
    remote {{
      auth = psk
      id = {remote_id}
    }}
    children {{
      pal {{
        mode = {}
        local_ts = {}
        remote_ts = {}
        esp_proposals = {}
        start_action = none
      }}
    }}
{}
  }}
}}
secrets {{
  ike-pal {{
    id-local = {local_id}
    id-remote = {remote_id}
    secret = "{secret}"
  }}
}}
"#,
            self.local_addr,
            self.remote_addr,
            self.proposals,
            self.mode,
            self.local_ts,
            self.remote_ts,
            self.esp_proposals,
            self.extra_connection,
        );
        let _ = writeln!(s, "{}", self.extra);
        s
    }
}

/// A private directory under the system's temp dir, removed on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> io::Result<Self> {
        let pid = std::process::id();
        loop {
            let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("pal-strongswan-{pid}-{n}"));
            // A directory left by an earlier process with the same pid is not ours.
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Self(path)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A running charon in a namespace. Dropping it stops charon (SIGTERM, then SIGKILL after
/// a timeout), reaps it and removes its directory; if the test is panicking, the end of
/// charon's log is printed first.
#[derive(Debug)]
pub struct Charon<'n> {
    ns: &'n Netns,
    child: Child,
    dir: TempDir,
}

impl<'n> Charon<'n> {
    /// Writes the configuration, starts charon in `ns`, waits until it answers on its
    /// VICI socket and loads the connection and secrets. Borrowing `ns` makes charon
    /// stop before its namespace is deleted.
    pub fn start(ns: &'n Netns, config: &Config) -> io::Result<Self> {
        let dir = TempDir::new()?;
        let swanctl_dir = dir.0.join("swanctl");
        // Subdirectories swanctl complains about when they are missing.
        for sub in [
            "x509", "x509ca", "x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey", "private",
            "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12",
        ] {
            fs::create_dir_all(swanctl_dir.join(sub))?;
        }
        fs::write(
            dir.0.join("strongswan.conf"),
            config.strongswan_conf(&dir.0),
        )?;
        fs::write(swanctl_dir.join("swanctl.conf"), config.swanctl_conf())?;
        let run = dir.0.join("run");
        fs::create_dir(&run)?;
        let stdout = fs::File::create(dir.0.join("stdout.log"))?;
        // `ip netns exec` gives its child a mount namespace of its own, so the bind
        // mount over /run (charon's fixed socket and pid paths) stays inside it; sh then
        // execs charon, so the child's pid is charon's.
        let child = ns
            .command("sh")
            .args(["-c", r#"mount --bind "$1" /run && exec "$2""#, "sh"])
            .arg(&run)
            .arg(CHARON)
            .env("STRONGSWAN_CONF", dir.0.join("strongswan.conf"))
            .stdin(Stdio::null())
            .stdout(stdout.try_clone()?)
            .stderr(stdout)
            .spawn()?;
        let mut charon = Self { ns, child, dir };
        charon.wait_ready()?;
        charon.swanctl(&["--load-all", "--noprompt"])?;
        Ok(charon)
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "charon exited ({status}) during start:\n{}{}",
                    fs::read_to_string(self.dir.0.join("stdout.log")).unwrap_or_default(),
                    self.log()
                )));
            }
            if self.dir.0.join("charon.vici").exists() && self.swanctl(&["--stats"]).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "charon did not answer on VICI within {START_TIMEOUT:?}:\n{}",
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The namespace charon runs in.
    pub fn netns(&self) -> &Netns {
        self.ns
    }

    /// charon's directory: configuration, log, VICI socket.
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// Runs `swanctl <args>` against this charon and returns its standard output; a
    /// non-zero exit is an error carrying swanctl's output.
    pub fn swanctl(&self, args: &[&str]) -> io::Result<String> {
        let program = find_program("swanctl").unwrap_or_else(|| PathBuf::from("swanctl"));
        // VICI is a Unix socket found by path, so swanctl needs no namespace of its own.
        run_checked(
            Command::new(program)
                .args(args)
                .env("STRONGSWAN_CONF", self.dir.0.join("strongswan.conf"))
                .env("SWANCTL_DIR", self.dir.0.join("swanctl")),
        )
    }

    /// `swanctl --list-sas --raw`: every IKE SA (including half-open ones) and its
    /// children, in VICI's key=value form (`initiator-spi=...`, `state=...`).
    pub fn list_sas(&self) -> io::Result<String> {
        self.swanctl(&["--list-sas", "--raw"])
    }

    /// The text of charon's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.0.join("charon.log")).unwrap_or_default()
    }

    /// Waits up to `timeout` for `text` to appear in charon's log; whether it did.
    pub fn wait_for_log(&self, text: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(text) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last hexdump charon logged under `label` (`Sk_ei secret`, `SKEYSEED`...), read
    /// back from the log; charon logs keys only at [`Config::log_level`] 4.
    pub fn logged_bytes(&self, label: &str) -> Option<Vec<u8>> {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let marker = format!(" {label} => ");
        let start = lines.iter().rposition(|l| l.contains(&marker))?;
        let head = lines.get(start)?;
        let after = head.split(&marker).nth(1)?;
        let len: usize = after.split_whitespace().next()?.parse().ok()?;
        // Hexdump lines look like "...[IKE] <pal|1>    0: 2B 0A ... 16 bytes ...  ascii".
        let mut bytes = Vec::with_capacity(len);
        for line in lines.get(start + 1..)? {
            if bytes.len() >= len {
                break;
            }
            let Some((_, data)) = line.split_once(": ") else {
                break;
            };
            let hex = data.split("  ").next().unwrap_or_default();
            for pair in hex.split_whitespace() {
                bytes.push(u8::from_str_radix(pair, 16).ok()?);
            }
        }
        bytes.truncate(len);
        (bytes.len() == len).then_some(bytes)
    }

    fn stop(&mut self) -> io::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        // The child is not reaped yet, so its pid cannot have been reused.
        let pid = i32::try_from(self.child.id()).map_err(io::Error::other)?;
        kill(Pid::from_raw(pid), Signal::SIGTERM).map_err(io::Error::from)?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("charon did not exit within {STOP_TIMEOUT:?} of SIGTERM: killing it");
        self.child.kill()?;
        self.child.wait().map(drop)
    }
}

impl Drop for Charon<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines
                .get(lines.len().saturating_sub(80)..)
                .unwrap_or_default();
            eprintln!(
                "--- end of charon's log ({}) ---\n{}",
                self.ns.name(),
                tail.join("\n")
            );
        }
        if let Err(e) = self.stop() {
            eprintln!("charon in {}: stop failed: {e}", self.ns.name());
        }
    }
}
