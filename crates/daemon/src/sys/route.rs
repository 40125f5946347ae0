//! Policy routing of protected traffic into the TUN.
//!
//! One rule per address family, `not fwmark FWMARK lookup ROUTE_TABLE` at
//! RULE_PRIORITY (before `main`), and in that table, for each protected prefix, a
//! `dev <tun>` route and a `blackhole` route of a worse metric. Packets palisaded sends
//! itself carry the mark and skip the table. When the TUN vanishes (the daemon died, or
//! is restarting) the kernel deletes its `dev` routes and the blackholes take over: the
//! traffic is dropped, never sent in clear through `main`. Rule and table are left in
//! place when the daemon exits for the same reason; [`PolicyRoutes::remove_all`] is the
//! explicit teardown.
//!
//! Done with the `ip` command rather than rtnetlink: the crate needs an async runtime
//! that nothing else on the data-plane side uses, and a failed `ip` line is an error an
//! operator can read and replay (command.rs). Changes are a handful of routes at
//! startup or on a policy change, so a process per change costs nothing that matters.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::command::run;
use super::error::SysError;
use super::{FWMARK, ROUTE_TABLE, RULE_PRIORITY};
use crate::net::IpNet;

/// Metric of the `dev <tun>` routes: the better one while the TUN exists.
pub const TUN_METRIC: u32 = 100;
/// Metric of the blackhole routes that stand in when the TUN is gone.
pub const BLACKHOLE_METRIC: u32 = 4000;

/// The installed rules and routes for one TUN device. Dropping it leaves them in place
/// (fail closed); [`PolicyRoutes::remove`] takes them away.
#[derive(Debug)]
pub struct PolicyRoutes {
    tun: String,
    prefixes: BTreeSet<IpNet>,
}

impl PolicyRoutes {
    /// Adds the rules (if missing) and makes the table hold exactly `prefixes` into
    /// `tun`. Whatever an earlier run left in the table is replaced in place, without a
    /// moment where a protected prefix has neither route.
    pub fn install(tun: &str, prefixes: &[IpNet]) -> Result<PolicyRoutes, SysError> {
        for family in ["-4", "-6"] {
            ensure_rule(family)?;
        }
        let mut routes = PolicyRoutes {
            tun: tun.to_owned(),
            prefixes: BTreeSet::new(),
        };
        routes.update(prefixes)?;
        Ok(routes)
    }

    /// Makes the table hold exactly `prefixes`: new ones get their blackhole first and
    /// their TUN route second, old ones are removed last.
    pub fn update(&mut self, prefixes: &[IpNet]) -> Result<(), SysError> {
        let wanted: BTreeSet<IpNet> = prefixes.iter().copied().collect();
        let table = ROUTE_TABLE.to_string();
        let mut batch = String::new();
        for p in &wanted {
            batch +=
                &format!("route replace blackhole {p} table {table} metric {BLACKHOLE_METRIC}\n");
            batch += &format!(
                "route replace {p} dev {} table {table} metric {TUN_METRIC}\n",
                self.tun
            );
        }
        for (p, metric) in installed_routes()? {
            if !wanted.contains(&p) {
                batch += &format!("route del {p} table {table} metric {metric}\n");
            }
        }
        if !batch.is_empty() {
            run("ip", &["-batch", "-"], Some(&batch))?;
        }
        self.prefixes = wanted;
        Ok(())
    }

    /// The prefixes routed into the TUN.
    pub fn prefixes(&self) -> impl Iterator<Item = &IpNet> {
        self.prefixes.iter()
    }

    /// Removes the rules and empties the table: protected traffic follows `main` again.
    pub fn remove(self) -> Result<(), SysError> {
        PolicyRoutes::remove_all()
    }

    /// The same without an installed instance, for `palisaded --remove-rules` after a
    /// crash. Succeeds when there is nothing to remove.
    pub fn remove_all() -> Result<(), SysError> {
        let table = ROUTE_TABLE.to_string();
        for family in ["-4", "-6"] {
            while rule_exists(family)? {
                run(
                    "ip",
                    &[
                        family,
                        "rule",
                        "del",
                        "priority",
                        &RULE_PRIORITY.to_string(),
                        "table",
                        &table,
                    ],
                    None,
                )?;
            }
            table_missing_is_empty(run(
                "ip",
                &[family, "route", "flush", "table", &table],
                None,
            ))?;
        }
        Ok(())
    }
}

/// Adds `not fwmark FWMARK lookup ROUTE_TABLE` for the family unless it is there.
/// Never deleted and re-added: between the two, protected traffic would go to `main`.
fn ensure_rule(family: &str) -> Result<(), SysError> {
    if rule_exists(family)? {
        return Ok(());
    }
    let (mark, table, prio) = (
        format!("{FWMARK:#x}"),
        ROUTE_TABLE.to_string(),
        RULE_PRIORITY.to_string(),
    );
    run(
        "ip",
        &[
            family, "rule", "add", "not", "fwmark", &mark, "table", &table, "priority", &prio,
        ],
        None,
    )?;
    Ok(())
}

fn rule_exists(family: &str) -> Result<bool, SysError> {
    let prio = RULE_PRIORITY.to_string();
    let out = run(
        "ip",
        &["-j", family, "rule", "show", "priority", &prio],
        None,
    )?;
    let table = ROUTE_TABLE.to_string();
    Ok(parse_json_list(&out, "ip rule show")?
        .iter()
        .any(|r| r.get("table").and_then(Value::as_str) == Some(table.as_str())))
}

/// What the table holds now, both families: each route's prefix and metric.
fn installed_routes() -> Result<Vec<(IpNet, u32)>, SysError> {
    let table = ROUTE_TABLE.to_string();
    let mut routes = Vec::new();
    for (family, default) in [
        ("-4", IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        ("-6", IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
    ] {
        let Some(out) = table_missing_is_empty(run(
            "ip",
            &["-j", family, "route", "show", "table", &table],
            None,
        ))?
        else {
            continue;
        };
        for r in parse_json_list(&out, "ip route show")? {
            let Some(dst) = r.get("dst").and_then(Value::as_str) else {
                continue;
            };
            let prefix = if dst == "default" {
                IpNet {
                    addr: default,
                    prefix_len: 0,
                }
            } else {
                dst.parse().map_err(|e| SysError::Protocol {
                    what: format!("ip route show table {table}"),
                    detail: format!("destination `{dst}`: {e}"),
                })?
            };
            let metric = r.get("metric").and_then(Value::as_u64).unwrap_or(0);
            routes.push((prefix, u32::try_from(metric).unwrap_or(u32::MAX)));
        }
    }
    Ok(routes)
}

/// The kernel creates a routing table with its first route and forgets it with the
/// last; asking about a table that does not exist is asking about an empty one.
fn table_missing_is_empty(result: Result<String, SysError>) -> Result<Option<String>, SysError> {
    match result {
        Ok(out) => Ok(Some(out)),
        Err(SysError::Command { stderr, .. }) if stderr.contains("table does not exist") => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `ip -j` prints a JSON array, or nothing at all for an empty table on some versions.
fn parse_json_list(out: &str, what: &str) -> Result<Vec<Value>, SysError> {
    if out.trim().is_empty() {
        return Ok(Vec::new());
    }
    match serde_json::from_str(out) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(_) | Err(_) => Err(SysError::Protocol {
            what: what.to_owned(),
            detail: format!("not a JSON array: {}", out.trim()),
        }),
    }
}
