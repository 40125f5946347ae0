//! What policy protects, made real in the kernel: the prefixes routed into the TUN and
//! the fail-closed firewall rules, kept in step with the filters.
//!
//! The firewall goes in before the routes and the TUN, and stays when the daemon stops
//! or dies: traffic that policy protects is dropped, never sent in clear, until the
//! daemon is back (`palisaded --remove-rules` takes the rules away on purpose).

use palisade_filter::Engine;
use tracing::info;

use crate::ipsec_callout::IpsecCallout;
use crate::net::IpNet;
use crate::sys::{Firewall, FirewallSpec, NFQUEUE_NUM, PolicyRoutes, SysError};

/// Routes and firewall for the current policy.
pub struct ScopeKeeper {
    callout: IpsecCallout,
    tun: String,
    ike_ports: [u16; 2],
    routes: Option<PolicyRoutes>,
    firewall: Option<Firewall>,
    current: Vec<IpNet>,
}

impl ScopeKeeper {
    /// A keeper for `engine`'s policy with the TUN device `tun`.
    pub fn new(engine: Engine, tun: String, ike_ports: [u16; 2]) -> ScopeKeeper {
        ScopeKeeper {
            callout: IpsecCallout::new(engine),
            tun,
            ike_ports,
            routes: None,
            firewall: None,
            current: Vec::new(),
        }
    }

    /// The prefixes policy protects now.
    pub fn prefixes(&self) -> Vec<IpNet> {
        let mut p = self.callout.scopes().route_prefixes;
        p.sort();
        p.dedup();
        p
    }

    /// Installs the fail-closed firewall for the current policy (before the TUN exists).
    pub fn install_firewall(&mut self) -> Result<(), SysError> {
        let protected = self.prefixes();
        self.firewall = Some(Firewall::install(&self.spec(&protected))?);
        self.current = protected;
        Ok(())
    }

    /// Installs the policy routes into the TUN (which must exist).
    pub fn install_routes(&mut self) -> Result<(), SysError> {
        let protected = self.prefixes();
        self.routes = Some(PolicyRoutes::install(&self.tun, &protected)?);
        self.current = protected;
        Ok(())
    }

    /// Brings routes and firewall in step with the policy, if it changed what it protects.
    pub fn refresh(&mut self) -> Result<(), SysError> {
        let protected = self.prefixes();
        if protected == self.current {
            return Ok(());
        }
        info!(
            prefixes = ?protected.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "protected prefixes changed"
        );
        // Firewall first: a prefix newly protected is never briefly routed in clear.
        self.firewall = Some(Firewall::install(&self.spec(&protected))?);
        if let Some(r) = &mut self.routes {
            r.update(&protected)?;
        }
        self.current = protected;
        Ok(())
    }

    /// Removes the routes (the firewall stays: fail closed).
    pub fn remove_routes(&mut self) -> Result<(), SysError> {
        match self.routes.take() {
            Some(r) => r.remove(),
            None => Ok(()),
        }
    }

    fn spec(&self, protected: &[IpNet]) -> FirewallSpec {
        FirewallSpec {
            tun: self.tun.clone(),
            protected: protected.to_vec(),
            queue: NFQUEUE_NUM,
            ike_ports: self.ike_ports,
        }
    }
}
