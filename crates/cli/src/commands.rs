//! Each command: build the request, send it, print the answer.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use palisade_control::{
    Client, DEFAULT_SOCKET, IkeSaView, NetEvent, PolicyChanges, Request, Response, Stats, Status,
};

use crate::failure::{EXIT_FAILED, EXIT_UNREACHABLE, Failure};
use crate::render::{Section, Table, cell, duration, object_section, utc};
use crate::{Cli, Command, ObjectCommand, PolicyCommand, SaCommand, objects};

/// The environment variable naming the control socket (the CLI's only).
pub const SOCKET_ENV: &str = "PALISADE_SOCKET";

struct Ctx {
    socket: PathBuf,
    json: bool,
}

impl Ctx {
    fn connect(&self) -> Result<Client, Failure> {
        Client::connect(&self.socket).map_err(|e| Failure::client(e, &self.socket))
    }

    /// Sends `request`; an error response is a failure.
    fn request(&self, request: Request) -> Result<Response, Failure> {
        self.connect()?
            .request(request)
            .map_err(|e| Failure::client(e, &self.socket))
    }

    /// Prints `response` as JSON (with `--json`) or as `human` renders it.
    fn print(&self, response: &Response, human: impl FnOnce() -> String) {
        let text = if self.json {
            let mut s = serde_json::to_string_pretty(response).unwrap_or_default();
            s.push('\n');
            s
        } else {
            human()
        };
        let mut out = std::io::stdout().lock();
        // A closed pipe (`palisade filter list | head`) is not an error worth a message.
        let _ = out.write_all(text.as_bytes());
    }
}

fn unexpected(request: &str, response: &Response) -> Failure {
    let kind = serde_json::to_value(response)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_default();
    Failure::new(
        format!("palisaded answered {request} with an unexpected {kind:?} response"),
        "use the palisade command of the same release as the running palisaded",
        EXIT_UNREACHABLE,
    )
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    let socket = cli
        .socket
        .or_else(|| {
            std::env::var_os(SOCKET_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    let ctx = Ctx {
        socket,
        json: cli.json,
    };
    match cli.command {
        Command::Status => status(&ctx),
        Command::Policy(p) => policy(&ctx, p),
        Command::Filter(c) => object(&ctx, Kind::Filter, c, objects::filter),
        Command::Sublayer(c) => object(&ctx, Kind::Sublayer, c, objects::sublayer),
        Command::Provider(c) => object(&ctx, Kind::Provider, c, objects::provider),
        Command::Context(c) => object(&ctx, Kind::Context, c, |_| {
            Err(Failure::usage(
                "a provider context is added from JSON",
                "give --file FILE (`palisade context show ID --json` prints one to start from)",
            ))
        }),
        Command::Sa(c) => sa(&ctx, c),
        Command::Events { follow, since } => events(&ctx, follow, since),
        Command::Stats => stats(&ctx),
        Command::Explain { layer, fields } => explain(&ctx, layer, &fields),
        Command::Lab(args) => crate::lab::lab(&args).map_err(|e| {
            Failure::new(
                format!("{e:#}"),
                "the lab removed what it created; run it again, or with --keep to look around",
                1,
            )
        }),
    }
}

fn status(ctx: &Ctx) -> Result<(), Failure> {
    let response = ctx.request(Request::Status)?;
    let Response::Status(s) = &response else {
        return Err(unexpected("status", &response));
    };
    ctx.print(&response, || render_status(s));
    Ok(())
}

fn render_status(s: &Status) -> String {
    let mut sec = Section::new(None);
    sec.line("palisaded", &s.version)
        .line("pid", s.pid)
        .line("uptime", duration(s.uptime_secs))
        .line(
            "ready",
            if s.ready {
                "yes"
            } else {
                "no (boot-time filters hold)"
            },
        )
        .line("tun", &s.tun)
        .line("policy file", s.policy_file.as_deref().unwrap_or("-"))
        .line("filters", s.filters)
        .line("IKE SAs", s.ike_sas)
        .line("CHILD_SAs", s.child_sas);
    sec.render()
}

fn read_policy(file: &Path) -> Result<(String, String), Failure> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| {
        Failure::new(
            format!("cannot read {name}: {e}"),
            "check the path; a policy file is TOML (docs/policy-format.md)",
            EXIT_FAILED,
        )
    })?;
    // Compile here first: a mistake is shown with its line and column without
    // contacting the daemon.
    palisade_policy::compile_str(&name, &text).map_err(|d| {
        Failure::new(
            d.to_string(),
            "fix the file at that line and column; docs/policy-format.md describes every field",
            EXIT_FAILED,
        )
    })?;
    Ok((name, text))
}

fn policy(ctx: &Ctx, command: PolicyCommand) -> Result<(), Failure> {
    let (request, what) = match command {
        PolicyCommand::Apply { file, dry_run } => {
            let (file, text) = read_policy(&file)?;
            (
                Request::PolicyApply {
                    file,
                    text,
                    dry_run,
                },
                "policy apply",
            )
        }
        PolicyCommand::Diff { file } => {
            let (file, text) = read_policy(&file)?;
            (Request::PolicyDiff { file, text }, "policy diff")
        }
        PolicyCommand::Reload => (Request::PolicyReload, "policy reload"),
        PolicyCommand::Export => {
            let response = ctx.request(Request::PolicyExport)?;
            let Response::Export(e) = &response else {
                return Err(unexpected("policy export", &response));
            };
            // The export is JSON either way; without --json, the objects alone.
            ctx.print(&response, || {
                let mut s = serde_json::to_string_pretty(e).unwrap_or_default();
                s.push('\n');
                s
            });
            return Ok(());
        }
    };
    let dry = matches!(request, Request::PolicyApply { dry_run: true, .. });
    let response = ctx.request(request)?;
    let Response::PolicyChanges(changes) = &response else {
        return Err(unexpected(what, &response));
    };
    ctx.print(&response, || render_changes(changes, dry));
    Ok(())
}

fn render_changes(p: &PolicyChanges, dry_run: bool) -> String {
    let (add, change, remove) = p.counts();
    let mut out = if p.changes.is_empty() {
        format!("policy {:?}: nothing to change\n", p.policy)
    } else if p.applied {
        format!(
            "applied policy {:?}: {add} added, {change} changed, {remove} removed\n",
            p.policy
        )
    } else {
        format!(
            "policy {:?}: {add} to add, {change} to change, {remove} to remove{}\n",
            p.policy,
            if dry_run {
                " (dry run: nothing changed)"
            } else {
                ""
            }
        )
    };
    if !p.changes.is_empty() {
        let mut t = Table::new(&["OP", "KIND", "NAME", "LAYER", "FIELDS"]);
        for c in &p.changes {
            t.row(vec![
                c.op.clone(),
                c.kind.clone(),
                c.name.clone(),
                c.layer.clone().unwrap_or_else(|| "-".into()),
                if c.fields.is_empty() {
                    "-".into()
                } else {
                    c.fields.join(",")
                },
            ]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }
    out
}

#[derive(Clone, Copy)]
enum Kind {
    Filter,
    Sublayer,
    Provider,
    Context,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Filter => "filter",
            Kind::Sublayer => "sublayer",
            Kind::Provider => "provider",
            Kind::Context => "provider context",
        }
    }

    fn list(self, layer: Option<String>) -> Result<Request, Failure> {
        match (self, layer) {
            (Kind::Filter, layer) => Ok(Request::FilterList { layer }),
            (_, Some(_)) => Err(Failure::usage(
                "--layer selects filters only",
                "leave it out, or list filters",
            )),
            (Kind::Sublayer, None) => Ok(Request::SublayerList),
            (Kind::Provider, None) => Ok(Request::ProviderList),
            (Kind::Context, None) => Ok(Request::ContextList),
        }
    }

    fn show(self, id: String) -> Request {
        match self {
            Kind::Filter => Request::FilterShow { id },
            Kind::Sublayer => Request::SublayerShow { id },
            Kind::Provider => Request::ProviderShow { id },
            Kind::Context => Request::ContextShow { id },
        }
    }

    fn add(self, object: serde_json::Value) -> Request {
        match self {
            Kind::Filter => Request::FilterAdd { filter: object },
            Kind::Sublayer => Request::SublayerAdd { sublayer: object },
            Kind::Provider => Request::ProviderAdd { provider: object },
            Kind::Context => Request::ContextAdd { context: object },
        }
    }

    fn delete(self, id: String) -> Request {
        match self {
            Kind::Filter => Request::FilterDelete { id },
            Kind::Sublayer => Request::SublayerDelete { id },
            Kind::Provider => Request::ProviderDelete { id },
            Kind::Context => Request::ContextDelete { id },
        }
    }

    fn table(self, objects: &[serde_json::Value]) -> String {
        let o = |r: &serde_json::Value, f: &str| cell(&r["object"][f]);
        let mut t = match self {
            Kind::Filter => Table::new(&["ID", "LAYER", "ACTION", "WEIGHT", "KEY", "NAME"]),
            Kind::Sublayer => Table::new(&["KEY", "WEIGHT", "PROVIDER", "NAME"]),
            Kind::Provider => Table::new(&["KEY", "FLAGS", "SERVICE", "NAME"]),
            Kind::Context => Table::new(&["ID", "TYPE", "KEY", "PROVIDER", "NAME"]),
        };
        for r in objects {
            t.row(match self {
                Kind::Filter => vec![
                    cell(&r["id"]),
                    o(r, "layer"),
                    action(&r["object"]["action"]),
                    weight(&r["object"]["weight"]),
                    o(r, "key"),
                    o(r, "name"),
                ],
                Kind::Sublayer => {
                    vec![o(r, "key"), o(r, "weight"), o(r, "provider"), o(r, "name")]
                }
                Kind::Provider => vec![
                    o(r, "key"),
                    o(r, "flags"),
                    o(r, "service_name"),
                    o(r, "name"),
                ],
                Kind::Context => vec![
                    cell(&r["id"]),
                    cell(&r["object"]["policy"]["type"]),
                    o(r, "key"),
                    o(r, "provider"),
                    o(r, "name"),
                ],
            });
        }
        if t.len() == 0 {
            format!("no {}s\n", self.noun())
        } else {
            t.render()
        }
    }
}

/// `block`, `permit`, or `callout_terminating <key>`.
fn action(v: &serde_json::Value) -> String {
    match v.as_object().and_then(|m| m.iter().next()) {
        Some((kind, key)) => format!("{kind} {}", cell(key)),
        None => cell(v),
    }
}

/// `auto`, `range 12` or the exact weight.
fn weight(v: &serde_json::Value) -> String {
    match v.as_object().and_then(|m| m.iter().next()) {
        Some((kind, n)) if kind == "exact" => cell(n),
        Some((kind, n)) => format!("{kind} {}", cell(n)),
        None => cell(v),
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value, Failure> {
    let name = path.display().to_string();
    let text = if name == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map(|_| s)
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| {
        Failure::new(
            format!("cannot read {name}: {e}"),
            "check the path",
            EXIT_FAILED,
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Failure::new(
            format!("{name}: not JSON: {e}"),
            "fix the JSON at that line and column",
            EXIT_FAILED,
        )
    })
}

fn object<F: Args>(
    ctx: &Ctx,
    kind: Kind,
    command: ObjectCommand<F>,
    from_flags: impl FnOnce(&F) -> Result<serde_json::Value, Failure>,
) -> Result<(), Failure> {
    match command {
        ObjectCommand::List { layer } => {
            let response = ctx.request(kind.list(layer)?)?;
            let Response::Objects { objects } = &response else {
                return Err(unexpected("list", &response));
            };
            ctx.print(&response, || kind.table(objects));
        }
        ObjectCommand::Show { id } => {
            let response = ctx.request(kind.show(id.clone()))?;
            let Response::Object { object } = &response else {
                return Err(unexpected("show", &response));
            };
            ctx.print(&response, || {
                let mut record = object.clone();
                let inner = record
                    .as_object_mut()
                    .and_then(|m| m.remove("object"))
                    .unwrap_or_default();
                let mut out = object_section(Some(&format!("{} {id}", kind.noun())), &inner);
                out.push_str(&object_section(Some("record"), &record));
                out
            });
        }
        ObjectCommand::Add { file, flags } => {
            let object = match file {
                Some(path) => read_json(&path)?,
                None => from_flags(&flags)?,
            };
            let response = ctx.request(kind.add(object))?;
            let Response::Added { key, id } = &response else {
                return Err(unexpected("add", &response));
            };
            ctx.print(&response, || match id {
                Some(id) => format!("added {} {id} (key {key})\n", kind.noun()),
                None => format!("added {} {key}\n", kind.noun()),
            });
        }
        ObjectCommand::Delete { id } => {
            let response = ctx.request(kind.delete(id.clone()))?;
            ctx.print(&response, || format!("deleted {} {id}\n", kind.noun()));
        }
    }
    Ok(())
}

fn sa(ctx: &Ctx, command: SaCommand) -> Result<(), Failure> {
    match command {
        SaCommand::List => {
            let response = ctx.request(Request::SaList)?;
            let Response::Sas { sas } = &response else {
                return Err(unexpected("sa list", &response));
            };
            ctx.print(&response, || render_sas(sas));
        }
        SaCommand::Show { id } => {
            let response = ctx.request(Request::SaShow { id })?;
            let Response::Sa(sa) = &response else {
                return Err(unexpected("sa show", &response));
            };
            ctx.print(&response, || render_sa(sa));
        }
        SaCommand::Delete { id } => {
            let response = ctx.request(Request::SaDelete { id: id.clone() })?;
            ctx.print(&response, || format!("deleted SA {id}\n"));
        }
    }
    Ok(())
}

pub(crate) fn render_sas(sas: &[IkeSaView]) -> String {
    if sas.is_empty() {
        return "no IKE SAs\n".into();
    }
    let mut ike = Table::new(&["ID", "STATE", "ROLE", "LOCAL", "REMOTE", "PEER", "AGE"]);
    let mut child = Table::new(&[
        "IKE",
        "SPI-IN",
        "SPI-OUT",
        "MODE",
        "SUITE",
        "LOCAL-TS",
        "REMOTE-TS",
        "IN",
        "OUT",
    ]);
    for sa in sas {
        ike.row(vec![
            sa.id.to_string(),
            sa.state.clone(),
            sa.role.clone(),
            sa.local.clone(),
            sa.remote.clone(),
            sa.peer_id.clone(),
            duration(sa.established_secs),
        ]);
        for c in &sa.child_sas {
            child.row(vec![
                sa.id.to_string(),
                format!("{:#010x}", c.inbound_spi),
                format!("{:#010x}", c.outbound_spi),
                c.mode.clone() + if c.udp_encap { "+udp" } else { "" },
                c.suite.clone(),
                c.local_ts.join(","),
                c.remote_ts.join(","),
                format!("{}p/{}B", c.inbound.packets, c.inbound.bytes),
                format!("{}p/{}B", c.outbound.packets, c.outbound.bytes),
            ]);
        }
    }
    let mut out = ike.render();
    if child.len() > 0 {
        out.push('\n');
        out.push_str(&child.render());
    }
    out
}

fn render_sa(sa: &IkeSaView) -> String {
    let mut s = Section::new(Some(&format!("IKE SA {}", sa.id)));
    s.line("state", &sa.state)
        .line("role", &sa.role)
        .line("local", format!("{} ({})", sa.local, sa.local_id))
        .line("remote", format!("{} ({})", sa.remote, sa.peer_id))
        .line("transforms", &sa.transforms)
        .line(
            "established",
            format!("{} ago", duration(sa.established_secs)),
        )
        .line("NAT", if sa.nat { "yes (ESP in UDP)" } else { "no" });
    let mut out = s.render();
    for c in &sa.child_sas {
        let drops = |d: &std::collections::BTreeMap<String, u64>| {
            if d.is_empty() {
                String::new()
            } else {
                let parts: Vec<String> = d.iter().map(|(k, v)| format!("{k} {v}")).collect();
                format!(", drops: {}", parts.join(", "))
            }
        };
        let mut s = Section::new(Some(&format!(
            "CHILD_SA {:#010x}/{:#010x}",
            c.inbound_spi, c.outbound_spi
        )));
        s.line("protocol", format!("{} {}", c.protocol, c.mode))
            .line("suite", &c.suite)
            .line("local ts", c.local_ts.join(", "))
            .line("remote ts", c.remote_ts.join(", "))
            .line("udp encap", if c.udp_encap { "yes" } else { "no" });
        if let Some(o) = &c.nat_original {
            // Transport mode across a NAT: what the peer's packets said before the NAT.
            s.line(
                "nat original",
                format!("from {} to {}", o.source, o.destination),
            );
        }
        s.line(
            "inbound",
            format!(
                "{} packets, {} bytes{}",
                c.inbound.packets,
                c.inbound.bytes,
                drops(&c.inbound.drops)
            ),
        )
        .line(
            "outbound",
            format!(
                "{} packets, {} bytes{}",
                c.outbound.packets,
                c.outbound.bytes,
                drops(&c.outbound.drops)
            ),
        )
        .line("lifetime", &c.lifetime)
        .line("age", duration(c.age_secs))
        .line("worker", c.worker);
        out.push('\n');
        out.push_str(&s.render());
    }
    out
}

fn stats(ctx: &Ctx) -> Result<(), Failure> {
    let response = ctx.request(Request::Stats)?;
    let Response::Stats(s) = &response else {
        return Err(unexpected("stats", &response));
    };
    ctx.print(&response, || render_stats(s));
    Ok(())
}

fn render_stats(s: &Stats) -> String {
    let mut g = Section::new(Some("packets"));
    g.line("tun rx/tx", format!("{} / {}", s.tun_rx, s.tun_tx))
        .line("esp rx/tx", format!("{} / {}", s.esp_rx, s.esp_tx))
        .line("udp rx/tx", format!("{} / {}", s.udp_rx, s.udp_tx))
        .line("queued", s.queued)
        .line("queue drops", s.queue_drops)
        .line("clear permitted", s.clear_permitted)
        .line("clear blocked", s.clear_blocked)
        .line("handed off", s.handed_off)
        .line("reassembled", s.reassembled)
        .line("fragmented", s.fragmented);
    let mut out = g.render();
    for (title, map) in [
        ("drops", &s.global_drops),
        ("kernel drops", &s.kernel_drops),
        ("ike", &s.ike),
    ] {
        out.push('\n');
        if map.is_empty() {
            out.push_str(&format!("{title}: none\n"));
            continue;
        }
        let mut sec = Section::new(Some(title));
        for (k, v) in map {
            sec.line(k, v);
        }
        out.push_str(&sec.render());
    }
    if !s.sas.is_empty() {
        let mut t = Table::new(&["SPI", "PACKETS", "BYTES", "DROPS"]);
        for (spi, c) in &s.sas {
            let drops: Vec<String> = c.drops.iter().map(|(k, v)| format!("{k}={v}")).collect();
            t.row(vec![
                format!("{spi:#010x}"),
                c.packets.to_string(),
                c.bytes.to_string(),
                if drops.is_empty() {
                    "-".into()
                } else {
                    drops.join(",")
                },
            ]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }
    out
}

fn event_line(e: &NetEvent) -> String {
    format!(
        "{}  #{:<6} {:<14} {}\n",
        utc(e.unix_ms),
        e.seq,
        e.kind,
        e.summary
    )
}

fn events(ctx: &Ctx, follow: bool, since: Option<u64>) -> Result<(), Failure> {
    if !follow {
        let response = ctx.request(Request::Events {
            follow: false,
            since,
        })?;
        let Response::Events { events } = &response else {
            return Err(unexpected("events", &response));
        };
        ctx.print(&response, || {
            if events.is_empty() {
                "no events\n".into()
            } else {
                events.iter().map(event_line).collect()
            }
        });
        return Ok(());
    }
    let stream = ctx
        .connect()?
        .follow_events(since)
        .map_err(|e| Failure::client(e, &ctx.socket))?;
    let mut out = std::io::stdout().lock();
    for event in stream {
        let event = event.map_err(|e| Failure::client(e, &ctx.socket))?;
        let line = if ctx.json {
            let mut s = serde_json::to_string(&Response::Event(event)).unwrap_or_default();
            s.push('\n');
            s
        } else {
            event_line(&event)
        };
        // The reader went away (`| head`): stop following.
        if out
            .write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return Ok(());
        }
    }
    Ok(())
}

fn explain(ctx: &Ctx, layer: String, fields: &[String]) -> Result<(), Failure> {
    let fields = fields
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| {
                    Failure::usage(
                        format!("{f:?} is not FIELD=VALUE"),
                        "for example: palisade explain outbound_transport_v4 ip_remote_address=192.0.2.1 ip_remote_port=443",
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let response = ctx.request(Request::Explain { layer, fields })?;
    let Response::Explain { text, .. } = &response else {
        return Err(unexpected("explain", &response));
    };
    ctx.print(&response, || {
        let mut t = text.clone();
        if !t.ends_with('\n') {
            t.push('\n');
        }
        t
    });
    Ok(())
}
