//! The fail-closed firewall: nftables table `inet palisade` plus one iptables NFQUEUE
//! rule per hook and family.
//!
//! - Output (and forward): a packet to a protected prefix that is about to leave by
//!   another interface than the TUN, without palisaded's mark, would be protected
//!   traffic in clear (policy routing missing or bypassed): dropped and counted in the
//!   `leaked` counter.
//! - Input and forward: a packet from a protected prefix that did not come through the
//!   TUN (so it was not decapsulated) and is neither ESP, UDP to an IKE port nor IPv6
//!   neighbor discovery is clear
//!   text that policy may require to be protected. The daemon decides (ipsec_callout):
//!   nftables marks it with [`QUEUE_MARK`] and counts it in `queued`, and an iptables
//!   rule hands marked packets to NFQUEUE. The queue has no bypass flag, so with no
//!   daemon listening the kernel drops them: fail closed.
//!
//! Why two tools: this kernel lacks nft's `queue` expression, but the xt NFQUEUE target
//! works through iptables(-nft). The iptables rules are static (they match only the
//! mark), so everything that follows the policy lives in the nft table and is replaced
//! in one `nft -f` transaction. The nft chains hook at priority `filter - 10`, ahead of
//! iptables' filter chains at `filter`, so the mark is set before it is matched.
//!
//! Both stay in place when the daemon exits (fail closed); [`Firewall::remove_all`] is the
//! explicit teardown (`palisaded --remove-rules`).

use std::fmt::Write as _;

use serde_json::Value;

use super::FWMARK;
use super::command::run;
use super::error::SysError;
use crate::net::IpNet;

/// The nftables table (family `inet`: one table for IPv4 and IPv6).
pub const TABLE: &str = "palisade";
/// The mark nftables puts on clear packets for the iptables NFQUEUE rule. Set in the
/// input and forward hooks only, after routing, so it never steers a route.
pub const QUEUE_MARK: u32 = 0x5042;

/// What the firewall protects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallSpec {
    /// The TUN device: what arrives on it was decapsulated, what leaves by it is sealed.
    pub tun: String,
    /// Prefixes whose traffic policy protects (both directions).
    pub protected: Vec<IpNet>,
    /// The NFQUEUE number clear packets from protected prefixes are queued to.
    pub queue: u16,
    /// IKE's UDP ports (500 and 4500), which must reach the daemon in clear.
    pub ike_ports: [u16; 2],
}

/// The installed firewall. Dropping it leaves the rules in place (fail closed);
/// [`Firewall::remove`] takes them away.
#[derive(Debug)]
pub struct Firewall {
    spec: FirewallSpec,
}

impl Firewall {
    /// Installs or replaces the nft table (one transaction: no moment without rules)
    /// and adds the iptables NFQUEUE rules unless present. Counters survive a replace.
    pub fn install(spec: &FirewallSpec) -> Result<Firewall, SysError> {
        let ruleset = nft_ruleset(spec)?;
        run("nft", &["-f", "-"], Some(&ruleset))?;
        for rule in queue_rules(spec.queue) {
            if !run_iptables_check(&rule)? {
                run(rule.program, &rule.args(&["-I"]), None)?;
            }
        }
        Ok(Firewall { spec: spec.clone() })
    }

    /// The specification installed.
    pub fn spec(&self) -> &FirewallSpec {
        &self.spec
    }

    /// Packets dropped because they would have left in clear (the `leaked` counter).
    pub fn leaked_packets(&self) -> Result<u64, SysError> {
        counter_packets("leaked")
    }

    /// Clear packets from protected prefixes handed to the queue (the `queued` counter).
    pub fn queued_packets(&self) -> Result<u64, SysError> {
        counter_packets("queued")
    }

    /// Removes everything [`Firewall::install`] added: after this, nothing fails closed.
    pub fn remove(self) -> Result<(), SysError> {
        Firewall::remove_all()
    }

    /// Removes the nft table and every NFQUEUE rule on [`QUEUE_MARK`], whatever queue
    /// number an earlier run used. Succeeds when there is nothing to remove.
    pub fn remove_all() -> Result<(), SysError> {
        match run("nft", &["delete", "table", "inet", TABLE], None) {
            Ok(_) => {}
            Err(SysError::Command { stderr, .. }) if stderr.contains("No such file") => {}
            Err(e) => return Err(e),
        }
        for program in ["iptables", "ip6tables"] {
            for chain in ["INPUT", "FORWARD"] {
                // Listed and deleted by their own text, so an old queue number goes too.
                let listed = run(program, &["-w", "-S", chain], None)?;
                let mark = format!("--mark {QUEUE_MARK:#x}");
                for line in listed.lines().filter(|l| l.contains(&mark)) {
                    let Some(spec) = line.strip_prefix("-A ") else {
                        continue;
                    };
                    let mut args = vec!["-w", "-D"];
                    args.extend(spec.split_whitespace());
                    run(program, &args, None)?;
                }
            }
        }
        Ok(())
    }
}

/// An iptables rule that queues marked packets: `<program> -w <op> <chain> ...`.
struct QueueRule {
    program: &'static str,
    chain: &'static str,
    mark: String,
    queue: String,
}

impl QueueRule {
    fn args<'a>(&'a self, op: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["-w"];
        args.extend_from_slice(op);
        args.extend([
            self.chain,
            "-m",
            "mark",
            "--mark",
            &self.mark,
            "-j",
            "NFQUEUE",
            "--queue-num",
            &self.queue,
        ]);
        args
    }
}

fn queue_rules(queue: u16) -> Vec<QueueRule> {
    let mut rules = Vec::new();
    for program in ["iptables", "ip6tables"] {
        for chain in ["INPUT", "FORWARD"] {
            rules.push(QueueRule {
                program,
                chain,
                mark: format!("{QUEUE_MARK:#x}"),
                queue: queue.to_string(),
            });
        }
    }
    rules
}

/// `iptables -C`: exit 0 when the rule exists, 1 when it does not; anything else (no
/// such chain, no permission) is an error.
fn run_iptables_check(rule: &QueueRule) -> Result<bool, SysError> {
    match run(rule.program, &rule.args(&["-C"]), None) {
        Ok(_) => Ok(true),
        Err(SysError::Command { status, .. }) if status.code() == Some(1) => Ok(false),
        Err(e) => Err(e),
    }
}

/// ICMPv6 neighbor discovery (RFC 4861) with a protected peer on the link must pass in
/// clear both ways: without it the peer's address never resolves, and ESP and IKE to
/// it fail with the rest.
const NEIGHBOR_DISCOVERY: &str = "nd-router-solicit, nd-router-advert, nd-neighbor-solicit, \
     nd-neighbor-advert, nd-redirect";

/// The nft script that creates or replaces the table. `add` + `flush` first, so that
/// the same script works on a first install and on a replace, in one transaction;
/// the named counters are declared again, which keeps their values.
pub fn nft_ruleset(spec: &FirewallSpec) -> Result<String, SysError> {
    let tun = interface_name(&spec.tun)?;
    let [ike_a, ike_b] = spec.ike_ports;
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for p in &spec.protected {
        if p.is_ipv6() { &mut v6 } else { &mut v4 }.push(p.to_string());
    }
    let elements = |list: &[String]| {
        if list.is_empty() {
            String::new()
        } else {
            format!(" elements = {{ {} }};", list.join(", "))
        }
    };
    let mark = format!("{FWMARK:#x}");
    let queue_mark = format!("{QUEUE_MARK:#x}");
    let mut s = String::new();
    let t = format!("inet {TABLE}");
    let set = |family: &str| format!("{{ type {family}_addr; flags interval; auto-merge; }}");
    let _ = writeln!(s, "add table {t}");
    let _ = writeln!(s, "flush table {t}");
    let _ = writeln!(s, "add set {t} protected4 {}", set("ipv4"));
    let _ = writeln!(s, "add set {t} protected6 {}", set("ipv6"));
    let _ = writeln!(s, "flush set {t} protected4");
    let _ = writeln!(s, "flush set {t} protected6");
    let _ = writeln!(
        s,
        r#"table {t} {{
    counter leaked {{ }}
    counter queued {{ }}
    set protected4 {{ type ipv4_addr; flags interval; auto-merge;{e4} }}
    set protected6 {{ type ipv6_addr; flags interval; auto-merge;{e6} }}
    chain output {{
        type filter hook output priority filter - 10; policy accept;
        jump leak_check
    }}
    chain input {{
        type filter hook input priority filter - 10; policy accept;
        iifname "{tun}" accept
        ip saddr @protected4 jump from_protected
        ip6 saddr @protected6 jump from_protected
    }}
    chain forward {{
        type filter hook forward priority filter - 10; policy accept;
        jump leak_check
        iifname "{tun}" accept
        ip saddr @protected4 jump from_protected
        ip6 saddr @protected6 jump from_protected
    }}
    chain leak_check {{
        meta mark {mark} return
        oifname "{tun}" return
        icmpv6 type {{ {nd} }} return
        ip daddr @protected4 counter name leaked drop
        ip6 daddr @protected6 counter name leaked drop
    }}
    chain from_protected {{
        meta l4proto esp accept
        icmpv6 type {{ {nd} }} accept
        udp dport {{ {ike_a}, {ike_b} }} accept
        counter name queued meta mark set {queue_mark}
    }}
}}"#,
        nd = NEIGHBOR_DISCOVERY,
        e4 = elements(&v4),
        e6 = elements(&v6),
    );
    Ok(s)
}

/// The TUN's name goes into the nft script in quotes; only what Linux interface names
/// usually are is let through, so the name cannot change the script.
fn interface_name(name: &str) -> Result<&str, SysError> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(name)
    } else {
        Err(SysError::Invalid {
            what: "TUN device name".to_owned(),
            detail: format!("`{name}`: use 1 to 15 of A-Z a-z 0-9 _ . -"),
        })
    }
}

fn counter_packets(name: &str) -> Result<u64, SysError> {
    let out = run("nft", &["-j", "list", "counter", "inet", TABLE, name], None)?;
    let bad = |detail: &str| SysError::Protocol {
        what: format!("nft -j list counter inet {TABLE} {name}"),
        detail: detail.to_owned(),
    };
    let json: Value = serde_json::from_str(&out).map_err(|e| bad(&e.to_string()))?;
    json.get("nftables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|item| item.get("counter")?.get("packets")?.as_u64())
        .ok_or_else(|| bad("no counter in the output"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(tun: &str, protected: &[&str]) -> FirewallSpec {
        FirewallSpec {
            tun: tun.to_owned(),
            protected: protected
                .iter()
                .map(|p| p.parse().expect("prefix"))
                .collect(),
            queue: 7,
            ike_ports: [500, 4500],
        }
    }

    #[test]
    fn prefixes_go_to_their_family_set_and_empty_sets_have_no_elements() {
        let s = nft_ruleset(&spec("pal0", &["10.9.0.0/24", "2001:db8::/64", "10.1.2.3"]))
            .expect("ruleset");
        assert!(
            s.contains("auto-merge; elements = { 10.9.0.0/24, 10.1.2.3/32 }"),
            "{s}"
        );
        assert!(
            s.contains("auto-merge; elements = { 2001:db8::/64 }"),
            "{s}"
        );
        assert!(s.contains(r#"iifname "pal0" accept"#), "{s}");
        assert!(s.contains("udp dport { 500, 4500 } accept"), "{s}");
        let empty = nft_ruleset(&spec("pal0", &[])).expect("ruleset");
        assert!(!empty.contains("elements"), "{empty}");
    }

    #[test]
    fn a_device_name_cannot_change_the_script() {
        for bad in ["", "pal0\" accept", "a b", "sixteen-chars-xx", "pal0;"] {
            assert!(
                matches!(nft_ruleset(&spec(bad, &[])), Err(SysError::Invalid { .. })),
                "{bad:?}"
            );
        }
        assert!(nft_ruleset(&spec("pal-0.x_1", &[])).is_ok());
    }
}
