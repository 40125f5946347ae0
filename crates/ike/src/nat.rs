//! NAT detection (RFC 7296 §2.23): NAT_DETECTION_SOURCE_IP and
//! NAT_DETECTION_DESTINATION_IP carry SHA-1(SPIi | SPIr | IP | Port).
//! Forcing ESP in UDP, our source hash is random instead (see
//! [`NatDetection::forced_encapsulation`]).

use std::net::{IpAddr, SocketAddr};

use aws_lc_rs::digest;

/// Length of the hash in the notification data.
pub const NAT_HASH_LEN: usize = 20;

/// SHA-1(SPIi | SPIr | IP | Port), with SPIr zero in the first IKE_SA_INIT.
pub fn nat_hash(spi_i: u64, spi_r: u64, addr: SocketAddr) -> [u8; NAT_HASH_LEN] {
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&spi_i.to_be_bytes());
    ctx.update(&spi_r.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(a) => ctx.update(&a.octets()),
        IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(&addr.port().to_be_bytes());
    let mut out = [0u8; NAT_HASH_LEN];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// What the NAT detection notifications of a received IKE_SA_INIT say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NatDetection {
    /// No NAT_DETECTION_DESTINATION_IP matched our address and port: we are
    /// behind a NAT.
    pub local_behind_nat: bool,
    /// No NAT_DETECTION_SOURCE_IP matched the peer's address and port.
    pub remote_behind_nat: bool,
    /// We force ESP in UDP without a NAT
    /// ([`crate::EndpointConfig::force_udp_encapsulation`]): our
    /// NAT_DETECTION_SOURCE_IP was a random value, so the peer takes us to
    /// be behind a NAT, and we act as if we were (port 4500, ESP in UDP),
    /// without keepalives (strongSwan's COND_NAT_FAKE). Set only when the
    /// peer sent both notifications.
    pub forced_encapsulation: bool,
}

impl NatDetection {
    /// Compares the received hashes with those of the addresses the
    /// datagram actually travelled between. Without any notification the
    /// peer does not do NAT detection and nothing is concluded.
    pub fn check<'a>(
        spi_i: u64,
        spi_r: u64,
        local: SocketAddr,
        remote: SocketAddr,
        source_hashes: impl Iterator<Item = &'a [u8]>,
        destination_hashes: impl Iterator<Item = &'a [u8]>,
    ) -> Self {
        Self::check_forcing(
            false,
            spi_i,
            spi_r,
            local,
            remote,
            source_hashes,
            destination_hashes,
        )
    }

    /// [`NatDetection::check`], then forced encapsulation if `force` and
    /// the peer does NAT detection at all (sent both notifications): a
    /// peer that does not would expect neither port 4500 nor ESP in UDP.
    pub fn check_forcing<'a>(
        force: bool,
        spi_i: u64,
        spi_r: u64,
        local: SocketAddr,
        remote: SocketAddr,
        source_hashes: impl Iterator<Item = &'a [u8]>,
        destination_hashes: impl Iterator<Item = &'a [u8]>,
    ) -> Self {
        let src = nat_hash(spi_i, spi_r, remote);
        let dst = nat_hash(spi_i, spi_r, local);
        let mut source_seen = false;
        let mut source_match = false;
        for h in source_hashes {
            source_seen = true;
            source_match |= h == src;
        }
        let mut dest_seen = false;
        let mut dest_match = false;
        for h in destination_hashes {
            dest_seen = true;
            dest_match |= h == dst;
        }
        Self {
            local_behind_nat: dest_seen && !dest_match,
            remote_behind_nat: source_seen && !source_match,
            forced_encapsulation: force && source_seen && dest_seen,
        }
    }

    /// Whether IKE moves to port 4500 and CHILD_SAs use ESP in UDP: either
    /// side is behind a NAT, or we force it.
    pub fn any(&self) -> bool {
        self.local_behind_nat || self.remote_behind_nat || self.forced_encapsulation
    }

    /// Whether we must send NAT keepalives (RFC 3948 §2.3, RFC 7296
    /// §2.23): only the side behind the NAT can keep its mapping open; a
    /// peer merely talking to a NATed host has no mapping to keep.
    pub fn sends_keepalives(&self) -> bool {
        self.local_behind_nat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha1_of_spis_address_and_port() {
        // Independent: SHA-1 of the concatenation computed in one piece.
        let addr: SocketAddr = "192.0.2.1:500".parse().expect("addr");
        let mut input = Vec::new();
        input.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        input.extend_from_slice(&[0; 8]);
        input.extend_from_slice(&[192, 0, 2, 1, 0x01, 0xF4]);
        let expected = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
        assert_eq!(
            &nat_hash(0x0102_0304_0506_0708, 0, addr)[..],
            expected.as_ref()
        );
    }

    #[test]
    fn mismatches_reveal_which_side_is_translated() {
        let me: SocketAddr = "10.0.0.2:500".parse().expect("addr");
        let peer: SocketAddr = "198.51.100.1:500".parse().expect("addr");
        let public: SocketAddr = "203.0.113.9:4500".parse().expect("addr");
        let src = nat_hash(1, 2, peer);
        let dst_seen_by_peer = nat_hash(1, 2, public);
        let d = NatDetection::check(
            1,
            2,
            me,
            peer,
            [&src[..]].into_iter(),
            [&dst_seen_by_peer[..]].into_iter(),
        );
        assert_eq!(
            d,
            NatDetection {
                local_behind_nat: true,
                remote_behind_nat: false,
                forced_encapsulation: false,
            }
        );
        let dst = nat_hash(1, 2, me);
        let d = NatDetection::check(
            1,
            2,
            me,
            peer,
            [&src[..]].into_iter(),
            [&dst[..]].into_iter(),
        );
        assert!(!d.any());
        let d = NatDetection::check(1, 2, me, peer, std::iter::empty(), std::iter::empty());
        assert!(!d.any());
    }

    #[test]
    fn only_the_side_behind_the_nat_sends_keepalives() {
        for (local_behind_nat, remote_behind_nat, sends) in [
            (true, false, true),
            (true, true, true),
            (false, true, false),
            (false, false, false),
        ] {
            for forced_encapsulation in [false, true] {
                let d = NatDetection {
                    local_behind_nat,
                    remote_behind_nat,
                    forced_encapsulation,
                };
                assert_eq!(d.sends_keepalives(), sends, "{d:?}");
            }
        }
    }

    #[test]
    fn forcing_needs_a_peer_that_does_nat_detection() {
        let me: SocketAddr = "10.0.0.2:500".parse().expect("addr");
        let peer: SocketAddr = "10.0.0.1:500".parse().expect("addr");
        let (src, dst) = (nat_hash(1, 2, peer), nat_hash(1, 2, me));
        let both = |force| {
            NatDetection::check_forcing(
                force,
                1,
                2,
                me,
                peer,
                [&src[..]].into_iter(),
                [&dst[..]].into_iter(),
            )
        };
        let forced = both(true);
        assert!(forced.forced_encapsulation && forced.any());
        assert!(!forced.local_behind_nat && !forced.remote_behind_nat);
        assert!(!forced.sends_keepalives());
        assert!(!both(false).any());
        let silent = NatDetection::check_forcing(
            true,
            1,
            2,
            me,
            peer,
            std::iter::empty(),
            std::iter::empty(),
        );
        assert!(!silent.any());
    }
}
