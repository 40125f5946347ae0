//! systemd's service notifications (sd_notify(3)), spoken without libsystemd: one
//! datagram of `KEY=value` lines to the socket named by `$NOTIFY_SOCKET`.
//!
//! Why: with `Type=notify` (dist/palisaded.service) systemd counts palisaded started only
//! when it says `READY=1`, after its firewall, routes and sockets are in place and the
//! control socket answers, so units ordered after it find it working; `RELOADING=1` and
//! `STOPPING=1` show in `systemctl status` while the policy is re-read or the daemon
//! stops; with `WatchdogSec=`, `WATCHDOG=1` says the daemon's threads still answer, and
//! systemd restarts a daemon that stops saying it. Without `$NOTIFY_SOCKET` (run by
//! hand) every call does nothing.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where notifications go, read once from the environment.
#[derive(Debug, Clone)]
pub struct Notifier {
    target: Option<SocketAddr>,
}

impl Notifier {
    /// The socket `$NOTIFY_SOCKET` names: a path, or an abstract address written with a
    /// leading `@`. Absent or empty: notifications are off.
    pub fn from_env() -> io::Result<Notifier> {
        match std::env::var_os("NOTIFY_SOCKET") {
            Some(name) if !name.is_empty() => Notifier::to(&name.to_string_lossy()),
            _ => Ok(Notifier { target: None }),
        }
    }

    /// Notifications to the socket `name` (`@` for an abstract address).
    pub fn to(name: &str) -> io::Result<Notifier> {
        let target = match name.strip_prefix('@') {
            Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes())?,
            None => SocketAddr::from_pathname(name)?,
        };
        Ok(Notifier {
            target: Some(target),
        })
    }

    /// Notifications off.
    pub fn disabled() -> Notifier {
        Notifier { target: None }
    }

    /// Whether a service manager listens (`$NOTIFY_SOCKET` was set).
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends `state`, newline-separated `KEY=value` assignments (`READY=1`,
    /// `STATUS=...`). A fresh unbound socket per message: messages are rare, and the
    /// sender's credentials, which systemd checks against the main PID, are ours.
    pub fn notify(&self, state: &str) -> io::Result<()> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        let socket = UnixDatagram::unbound()?;
        socket.send_to_addr(state.as_bytes(), target)?;
        Ok(())
    }
}

/// How often to send `WATCHDOG=1`: a third of the `$WATCHDOG_USEC` systemd gives
/// (`WatchdogSec=`), when `$WATCHDOG_PID` is absent or names this process; `None` when
/// there is no watchdog.
pub fn watchdog_interval() -> Option<Duration> {
    watchdog_interval_of(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

fn watchdog_interval_of(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(me)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok().filter(|u| *u > 0)?;
    Some(Duration::from_micros(usec / 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("palisade-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("notify");
        let listener = UnixDatagram::bind(&path).expect("bind");
        let n = Notifier::to(path.to_str().expect("utf-8")).expect("notifier");
        assert!(n.enabled());
        n.notify("READY=1\nSTATUS=ready").expect("send");
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=ready");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn messages_reach_an_abstract_socket() {
        let name = format!("palisade-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
        let listener = UnixDatagram::bind_addr(&addr).expect("bind");
        let n = Notifier::to(&format!("@{name}")).expect("notifier");
        n.notify("STOPPING=1").expect("send");
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..len], b"STOPPING=1");
    }

    #[test]
    fn the_watchdog_is_pinged_thrice_per_period_and_only_by_its_process() {
        let third = Some(Duration::from_secs(10));
        assert_eq!(watchdog_interval_of(Some("30000000"), None, 7), third);
        assert_eq!(watchdog_interval_of(Some("30000000"), Some("7"), 7), third);
        assert_eq!(watchdog_interval_of(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval_of(None, None, 7), None);
        assert_eq!(watchdog_interval_of(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval_of(Some("soon"), None, 7), None);
    }

    #[test]
    fn without_a_socket_nothing_is_sent() {
        let n = Notifier::disabled();
        assert!(!n.enabled());
        n.notify("READY=1").expect("a no-op");
    }
}
