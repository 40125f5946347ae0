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
/// If the peer's process is gone before its groups are read, the caller has only its
/// primary group: fewer rights, never more.
pub fn peer_caller(stream: &UnixStream) -> io::Result<Caller> {
    let cred = getsockopt(stream, PeerCredentials).map_err(io::Error::from)?;
    let mut gids = vec![cred.gid()];
    if cred.pid() > 0
        && let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", cred.pid()))
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
