//! Quick-mode checks: proposals, transforms, flags, tunnel endpoints and selectors.

use std::net::IpAddr;

use super::super::extended_mode::ExtendedModePolicy;
use super::super::keying::KeyingModule;
use super::super::proposal::{CipherTransform, IpsecProposal, SaTransform};
use super::super::quick_mode::*;
use super::main_mode::em_policy;
use super::{Check, PolicyError, exclusive, field, known_flags, not_available};

impl IpsecProposal {
    /// Checks: non-zero lifetime seconds, one ESP or AH transform or AH plus one ESP
    /// transform, and each transform usable (see [`SaTransform::validate`]).
    pub fn validate(&self) -> Result<(), PolicyError> {
        qm_proposal(self, "")
    }
}

fn qm_proposals(proposals: &[IpsecProposal], path: &str) -> Check {
    if proposals.is_empty() {
        return Err(PolicyError::Empty {
            path: path.to_owned(),
        });
    }
    proposals
        .iter()
        .enumerate()
        .try_for_each(|(i, p)| qm_proposal(p, &format!("{path}[{i}]")))
}

fn qm_proposal(proposal: &IpsecProposal, path: &str) -> Check {
    if proposal.lifetime.seconds == 0 {
        return Err(PolicyError::Zero {
            path: field(path, "lifetime.seconds"),
        });
    }
    let transforms = &proposal.sa_transforms;
    let transforms_path = field(path, "sa_transforms");
    let ah_count = transforms.iter().filter(|t| t.is_ah()).count();
    let shape_ok = match transforms.len() {
        0 => {
            return Err(PolicyError::Empty {
                path: transforms_path,
            });
        }
        1 => true,
        2 => ah_count == 1,
        _ => false,
    };
    if !shape_ok {
        let reason = "an SA bundle is one transform, or AH plus one ESP transform";
        return Err(PolicyError::InvalidTransform {
            path: transforms_path,
            reason,
        });
    }
    transforms
        .iter()
        .enumerate()
        .try_for_each(|(i, t)| sa_transform(*t, &format!("{transforms_path}[{i}]")))
}

impl SaTransform {
    /// Checks one transform. Rejected: ESP with the NULL cipher and no integrity (no
    /// protection at all, RFC 4303 §3.2); an AEAD cipher beside any integrity transform
    /// except, for GCM, the GMAC of the same key size that WFP itself uses; and GMAC beside
    /// a non-GCM cipher, a combination IKE has no way to negotiate. ESP with a CBC cipher
    /// and no integrity stays accepted because WFP accepts it.
    pub fn validate(&self) -> Result<(), PolicyError> {
        sa_transform(*self, "")
    }
}

fn sa_transform(transform: SaTransform, path: &str) -> Check {
    let path = path.to_owned();
    match transform {
        SaTransform::EspCipher(CipherTransform::Null) => Err(PolicyError::InvalidTransform {
            path,
            reason: "ESP with the NULL cipher needs integrity; use esp_auth",
        }),
        SaTransform::EspAuthAndCipher { auth, cipher } if cipher.is_aead() => {
            if cipher.matching_gmac() == Some(auth) {
                Ok(())
            } else {
                Err(PolicyError::AeadWithSeparateIntegrity { path, cipher, auth })
            }
        }
        SaTransform::EspAuthAndCipher { auth, .. } if auth.is_gmac() => {
            Err(PolicyError::InvalidTransform {
                path,
                reason: "GMAC is used alone or with the GCM cipher of the same key size",
            })
        }
        _ => Ok(()),
    }
}

fn ipsec_flags(flags: u32, module: KeyingModule, tunnel: bool) -> Check {
    let known = IPSEC_POLICY_FLAGS.iter().fold(0, |acc, (bit, _)| acc | bit);
    known_flags("flags", flags, known)?;
    exclusive(
        "flags",
        flags,
        (IPSEC_POLICY_FLAG_ND_SECURE, "ND_SECURE"),
        (IPSEC_POLICY_FLAG_ND_BOUNDARY, "ND_BOUNDARY"),
    )?;
    let misplaced = if tunnel { 0 } else { flags & TUNNEL_ONLY_FLAGS };
    if let Some((_, flag)) = IPSEC_POLICY_FLAGS
        .iter()
        .find(|(bit, _)| misplaced & bit != 0)
    {
        return Err(PolicyError::FlagNotApplicable {
            path: "flags".into(),
            flag,
            scope: "on tunnel policies",
        });
    }
    if flags & IPSEC_POLICY_FLAG_KEY_MANAGER_ALLOW_DICTATE_KEY != 0
        && module != KeyingModule::Authip
    {
        return Err(PolicyError::FlagNotApplicable {
            path: "flags".into(),
            flag: "KEY_MANAGER_ALLOW_DICTATE_KEY",
            scope: "for AuthIP",
        });
    }
    Ok(())
}

fn qm_em_policy(em: Option<&ExtendedModePolicy>, module: KeyingModule) -> Check {
    match em {
        Some(_) if module != KeyingModule::Authip => {
            Err(not_available("em_policy".into(), "extended mode", module))
        }
        Some(em) => em_policy(em, "em_policy"),
        None => Ok(()),
    }
}

impl IpsecTransportPolicy {
    /// Checks the policy for use by `module`: at least one valid proposal, defined flags,
    /// not both ND_SECURE and ND_BOUNDARY, no tunnel-only flags, KEY_MANAGER_ALLOW_DICTATE_KEY
    /// and `em_policy` only for AuthIP.
    pub fn validate(&self, module: KeyingModule) -> Result<(), PolicyError> {
        qm_proposals(&self.ipsec_proposals, "ipsec_proposals")?;
        ipsec_flags(self.flags, module, false)?;
        qm_em_policy(self.em_policy.as_ref(), module)
    }
}

impl IpsecTunnelPolicy {
    /// Checks the policy for use by `module`: as for transport (tunnel flags allowed), plus
    /// usable endpoints of one family and well-formed traffic selectors.
    pub fn validate(&self, module: KeyingModule) -> Result<(), PolicyError> {
        ipsec_flags(self.flags, module, true)?;
        qm_proposals(&self.ipsec_proposals, "ipsec_proposals")?;
        self.tunnel_endpoints.validate()?;
        qm_em_policy(self.em_policy.as_ref(), module)?;
        for (i, policy) in self.traffic_selector_policies.iter().enumerate() {
            let path = format!("traffic_selector_policies[{i}]");
            traffic_selectors(
                &policy.local_traffic_selectors,
                &field(&path, "local_traffic_selectors"),
            )?;
            traffic_selectors(
                &policy.remote_traffic_selectors,
                &field(&path, "remote_traffic_selectors"),
            )?;
        }
        Ok(())
    }
}

impl TunnelEndpoints {
    /// Checks: both addresses of one family, neither unspecified, multicast nor broadcast,
    /// and not the same address. Paths are under `tunnel_endpoints`.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let (local, remote) = (self.local_address, self.remote_address);
        if local.is_ipv4() != remote.is_ipv4() {
            let path = "tunnel_endpoints".into();
            return Err(PolicyError::MixedAddressFamilies {
                path,
                first: local,
                second: remote,
            });
        }
        for (name, address) in [("local_address", local), ("remote_address", remote)] {
            let reason = if address.is_unspecified() {
                "unspecified"
            } else if address.is_multicast() {
                "multicast"
            } else if matches!(address, IpAddr::V4(v4) if v4.is_broadcast()) {
                "broadcast"
            } else {
                continue;
            };
            let path = format!("tunnel_endpoints.{name}");
            return Err(PolicyError::InvalidAddress {
                path,
                address,
                reason,
            });
        }
        if local == remote {
            let path = "tunnel_endpoints.remote_address".into();
            return Err(PolicyError::InvalidAddress {
                path,
                address: remote,
                reason: "also the local address",
            });
        }
        Ok(())
    }
}

fn traffic_selectors(selectors: &[TrafficSelector], path: &str) -> Check {
    if selectors.is_empty() {
        return Err(PolicyError::Empty {
            path: path.to_owned(),
        });
    }
    for (i, selector) in selectors.iter().enumerate() {
        let path = format!("{path}[{i}]");
        let (start, end) = (selector.start_address, selector.end_address);
        if start.is_ipv4() != end.is_ipv4() {
            return Err(PolicyError::MixedAddressFamilies {
                path,
                first: start,
                second: end,
            });
        }
        if start > end {
            let reason = "start_address is above end_address";
            return Err(PolicyError::Invalid {
                path: field(&path, "end_address"),
                reason,
            });
        }
        if selector.port_start > selector.port_end {
            let reason = "port_start is above port_end";
            return Err(PolicyError::Invalid {
                path: field(&path, "port_end"),
                reason,
            });
        }
    }
    Ok(())
}
