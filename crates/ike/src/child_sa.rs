//! A negotiated CHILD_SA: everything palisade-esp needs to install both
//! directions, and the conversion to [`SaConfig`] plus key bytes.

use std::net::IpAddr;
use std::time::Duration;

use palisade_esp::lifetime::{Lifetime, LifetimeLimits};
use palisade_esp::transport_nat::OriginalAddresses;
use palisade_esp::{Direction, Mode, SaConfig, SaTransform, UdpEncap};
use palisade_filter::policy::{SaLifetime, TrafficSelector};
use zeroize::Zeroizing;

use crate::IkeSaId;
use crate::identity::Identity;
use crate::proposal::ChildProtocol;

/// A CHILD_SA pair ready for the SAD. `Debug` leaves the keys out, and
/// there is no `PartialEq`: keys are not compared in variable time.
#[derive(Clone)]
pub struct ChildSa {
    /// The IKE SA that negotiated it.
    pub ike_sa: IkeSaId,
    /// ESP suite or AH.
    pub protocol: ChildProtocol,
    /// Transport or tunnel.
    pub mode: Mode,
    /// Our address (outer address in tunnel mode).
    pub local: IpAddr,
    /// The peer's address.
    pub remote: IpAddr,
    /// The SPI we chose: the peer sends to it, we open with it.
    pub inbound_spi: u32,
    /// The SPI the peer chose: we send with it.
    pub outbound_spi: u32,
    /// Extended sequence numbers.
    pub esn: bool,
    /// Lifetime from our policy (IKEv2 does not negotiate lifetimes).
    pub lifetime: Lifetime,
    /// ESP in UDP (RFC 3948) on the IKE SA's ports, when NAT detection
    /// found a NAT (or a peer that pretends so to force encapsulation).
    pub udp_encap: Option<UdpEncap>,
    /// Our side's traffic, as narrowed.
    pub local_selectors: Vec<TrafficSelector>,
    /// The peer's side's traffic, as narrowed.
    pub remote_selectors: Vec<TrafficSelector>,
    /// Transport mode across a NAT (RFC 7296 §2.23.1): the addresses the peer put in
    /// the pseudo-headers of what it sends on this CHILD_SA, which differ from what we
    /// see (the selectors above are the addresses we see). The data plane fixes up the
    /// TCP/UDP checksums of what it decapsulates with them (RFC 3948 §3.1.2).
    pub nat_original: Option<OriginalAddresses>,
    /// The authenticated peer identity of the IKE SA.
    pub peer_id: Identity,
    /// We answered the peer's rekey with this pair. The peer installs it only when our
    /// response reaches it, so ESP we sent on it at once could arrive first and be
    /// dropped: the data plane should keep sending on the pair this one replaces until
    /// the peer's ESP arrives on this one or the old pair is deleted (strongSwan holds
    /// back its outbound SA the same way).
    pub outbound_deferred: bool,
    /// KEYMAT for what we receive: encryption key then integrity key.
    pub(crate) inbound_keys: Zeroizing<Vec<u8>>,
    /// KEYMAT for what we send.
    pub(crate) outbound_keys: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for ChildSa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChildSa")
            .field("ike_sa", &self.ike_sa)
            .field("protocol", &self.protocol)
            .field("mode", &self.mode)
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("inbound_spi", &format_args!("{:#010x}", self.inbound_spi))
            .field("outbound_spi", &format_args!("{:#010x}", self.outbound_spi))
            .field("esn", &self.esn)
            .field("udp_encap", &self.udp_encap)
            .field("nat_original", &self.nat_original)
            .field("peer_id", &self.peer_id)
            .field("outbound_deferred", &self.outbound_deferred)
            .finish_non_exhaustive()
    }
}

/// One direction to install: `Sad::install(config, keymat, now)`.
#[derive(Clone)]
pub struct SaInstall<'a> {
    /// The SA without keys.
    pub config: SaConfig,
    /// KEYMAT laid out as `EspSuite::keymat_len` expects.
    pub keymat: &'a [u8],
}

impl core::fmt::Debug for SaInstall<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SaInstall")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ChildSa {
    /// The inbound and outbound SAs for palisade-esp.
    pub fn sa_configs(&self) -> [SaInstall<'_>; 2] {
        let transform = match self.protocol {
            ChildProtocol::Esp(suite) => SaTransform::Esp(suite),
            ChildProtocol::Ah(integ) => SaTransform::Ah(integ),
        };
        let config = |spi, direction| {
            let mut c = SaConfig::new(spi, direction, transform, self.local, self.remote);
            c.mode = self.mode;
            c.esn = self.esn;
            c.lifetime = self.lifetime;
            c.udp_encap = self.udp_encap;
            c
        };
        [
            SaInstall {
                config: config(self.inbound_spi, Direction::Inbound),
                keymat: &self.inbound_keys,
            },
            SaInstall {
                config: config(self.outbound_spi, Direction::Outbound),
                keymat: &self.outbound_keys,
            },
        ]
    }
}

/// The SA lifetime for a policy's `IPSEC_SA_LIFETIME0`: the policy values
/// are the hard limits and the soft limits (when a rekey would start) come
/// at 90 %, so a future CREATE_CHILD_SA rekey has time to finish.
pub fn lifetime(policy: &SaLifetime) -> Lifetime {
    // At least one below the hard limit, or none when the limit is 1.
    let soft = |v: u64| v.checked_sub((v / 10).max(1)).filter(|&s| s > 0);
    let nonzero = |v: u32| (v != 0).then_some(u64::from(v));
    let bytes = nonzero(policy.kilobytes).map(|k| k * 1024);
    let packets = nonzero(policy.packets);
    let secs = nonzero(policy.seconds);
    Lifetime {
        soft: LifetimeLimits {
            bytes: bytes.and_then(soft),
            packets: packets.and_then(soft),
            time: secs.and_then(soft).map(Duration::from_secs),
        },
        hard: LifetimeLimits {
            bytes,
            packets,
            time: secs.map(Duration::from_secs),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_hard_at_the_policy_value_and_soft_at_ninety_percent() {
        let l = lifetime(&SaLifetime {
            seconds: 3600,
            kilobytes: 1000,
            packets: 0,
        });
        assert_eq!(l.hard.time, Some(Duration::from_secs(3600)));
        assert_eq!(l.soft.time, Some(Duration::from_secs(3240)));
        assert_eq!(l.hard.bytes, Some(1_024_000));
        assert_eq!(l.soft.bytes, Some(921_600));
        assert_eq!(l.hard.packets, None);
        assert!(l.validate().is_ok());
    }
}
