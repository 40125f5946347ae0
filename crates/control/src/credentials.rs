//! Who is on the other end of the control socket: SO_PEERCRED's uid and gid, and the
//! supplementary groups, which SO_PEERCRED does not carry and the engine's access lists
//! name (an administrator group rather than root).

use std::io;
use std::os::unix::net::UnixStream;

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use palisade_filter::Caller;

/// The peer's credentials as a [`Caller`]: uid, primary gid first, then the
/// supplementary groups from `/proc/<pid>/status`.
///
/// If the peer's process is gone before its groups are read, or its pid now belongs to a
/// process of other credentials (SO_PEERGROUPS would close that window, but nix has no
/// safe wrapper for it), the caller has only its primary group: fewer rights, never more.
pub fn peer_caller(stream: &UnixStream) -> io::Result<Caller> {
    let cred = getsockopt(stream, PeerCredentials).map_err(io::Error::from)?;
    let mut gids = vec![cred.gid()];
    if cred.pid() > 0
        && let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", cred.pid()))
        && effective_id(&status, "Uid:") == Some(cred.uid())
        && effective_id(&status, "Gid:") == Some(cred.gid())
    {
        for gid in supplementary_groups(&status) {
            if !gids.contains(&gid) {
                gids.push(gid);
            }
        }
    }
    Ok(Caller {
        uid: cred.uid(),
        gids,
    })
}

/// The effective id (the second of real, effective, saved, filesystem) of a `Uid:` or
/// `Gid:` line of a `/proc/<pid>/status` file: what SO_PEERCRED reports.
fn effective_id(status: &str, line: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(line))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The `Groups:` line of a `/proc/<pid>/status` file.
fn supplementary_groups(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Groups:"))
        .map(|groups| {
            groups
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_line_parsed() {
        let status =
            "Name:\tbash\nUid:\t1000\t1000\t1000\t1000\nGroups:\t4 27 1000 \nVmPeak:\t1 kB\n";
        assert_eq!(supplementary_groups(status), vec![4, 27, 1000]);
        assert!(supplementary_groups("Groups:\n").is_empty());
        assert!(supplementary_groups("Name:\tx\n").is_empty());
    }

    #[test]
    fn effective_ids_parsed() {
        let status = "Uid:\t1000\t0\t0\t0\nGid:\t100\t101\t100\t100\n";
        assert_eq!(effective_id(status, "Uid:"), Some(0));
        assert_eq!(effective_id(status, "Gid:"), Some(101));
        assert_eq!(effective_id("Uid:\t1\n", "Uid:"), None);
        assert_eq!(effective_id("", "Gid:"), None);
    }

    #[test]
    fn own_credentials_through_a_socket_pair() -> io::Result<()> {
        let (a, _b) = UnixStream::pair()?;
        let caller = peer_caller(&a)?;
        assert_eq!(caller.uid, nix::unistd::getuid().as_raw());
        assert_eq!(caller.gids.first(), Some(&nix::unistd::getgid().as_raw()));
        for g in nix::unistd::getgroups().map_err(io::Error::from)? {
            assert!(caller.gids.contains(&g.as_raw()), "group {g} missing");
        }
        Ok(())
    }
}
