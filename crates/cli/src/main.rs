//! palisade: the administrator's command for palisaded. It talks to the daemon's control
//! socket (docs/control-api.md); docs/cli.md describes every command.
#![forbid(unsafe_code)]

mod commands;
mod failure;
mod lab;
mod objects;
mod render;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Inspect and change palisaded's IPsec policy, SAs and events.
#[derive(Debug, Parser)]
#[command(name = "palisade", version, about, propagate_version = true)]
struct Cli {
    /// The daemon's control socket [default: $PALISADE_SOCKET, else /run/palisade/control.sock]
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print the daemon's answer as JSON instead of tables
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The daemon's state: version, uptime, TUN device, policy, SA counts
    Status,
    /// Apply, compare or export the policy
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The engine's filters
    #[command(subcommand)]
    Filter(ObjectCommand<FilterFlags>),
    /// The engine's sublayers
    #[command(subcommand)]
    Sublayer(ObjectCommand<SublayerFlags>),
    /// The engine's providers
    #[command(subcommand)]
    Provider(ObjectCommand<ProviderFlags>),
    /// The engine's provider contexts (main-mode and quick-mode policies)
    #[command(subcommand)]
    Context(ObjectCommand<ContextFlags>),
    /// IKE SAs and their CHILD_SAs
    #[command(subcommand)]
    Sa(SaCommand),
    /// Net events: IKE failures, drops, SAs installed and deleted
    Events {
        /// Keep printing new events until interrupted
        #[arg(long, short)]
        follow: bool,
        /// Only events after this sequence number
        #[arg(long, value_name = "SEQ")]
        since: Option<u64>,
    },
    /// Packet, drop and IKE counters, global and per SA
    Stats,
    /// How the engine classifies the given field values at a layer, filter by filter
    Explain {
        /// The layer (outbound_transport_v4, ikeext_v4, ...)
        layer: String,
        /// Field values (ip_remote_address=192.0.2.1 ip_remote_port=443 ip_protocol=tcp)
        #[arg(value_name = "FIELD=VALUE")]
        fields: Vec<String>,
    },
    /// A live demonstration: two hosts in network namespaces, palisaded on each with a
    /// transport-mode policy, traffic between them, and what crossed the link (root)
    Lab(lab::LabArgs),
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Make the daemon's policy exactly the file's (all or nothing)
    Apply {
        /// The policy file (docs/policy-format.md)
        file: PathBuf,
        /// Only show what would change
        #[arg(long)]
        dry_run: bool,
    },
    /// Show what applying the file would change
    Diff {
        /// The policy file
        file: PathBuf,
    },
    /// Make the daemon re-read and apply its configured policy_file (what `systemctl
    /// reload palisaded` runs): fails, and changes nothing, if the file does not compile
    Reload,
    /// Print the policy objects the engine holds, as JSON
    Export,
}

#[derive(Debug, Subcommand)]
enum ObjectCommand<F: Args> {
    /// List them
    List {
        /// Only filters of this layer (filters only)
        #[arg(long)]
        layer: Option<String>,
    },
    /// Show one, by id, key or name
    Show {
        /// Runtime id (filters, contexts), key (UUID) or name
        id: String,
    },
    /// Add one, from a JSON file or from flags
    Add {
        /// The object as palisade-filter's JSON (`-` for standard input); what `show --json` prints is accepted
        #[arg(long, value_name = "JSON")]
        file: Option<PathBuf>,
        #[command(flatten)]
        flags: F,
    },
    /// Delete one, by id, key or name
    Delete {
        /// Runtime id (filters, contexts), key (UUID) or name
        id: String,
    },
}

/// A filter from flags.
#[derive(Debug, Args)]
struct FilterFlags {
    /// The layer (outbound_transport_v4, ...)
    #[arg(long, conflicts_with = "file")]
    layer: Option<String>,
    /// block or permit
    #[arg(long, conflicts_with = "file")]
    action: Option<String>,
    /// A name for administrators
    #[arg(long, conflicts_with = "file")]
    name: Option<String>,
    /// A description
    #[arg(long, conflicts_with = "file")]
    description: Option<String>,
    /// The sublayer's key (default: the universal sublayer)
    #[arg(long, conflicts_with = "file")]
    sublayer: Option<String>,
    /// The provider's key
    #[arg(long, conflicts_with = "file")]
    provider: Option<String>,
    /// An exact weight (default: automatic, from the conditions)
    #[arg(long, conflicts_with = "file")]
    weight: Option<u64>,
    /// A condition: FIELD=VALUE or FIELD=LOW-HIGH (repeat; conditions on one field are ORed)
    #[arg(long = "match", value_name = "FIELD=VALUE", conflicts_with = "file")]
    matches: Vec<String>,
    /// Keep it across daemon restarts (stored)
    #[arg(long, conflicts_with = "file")]
    persistent: bool,
}

/// A sublayer from flags.
#[derive(Debug, Args)]
struct SublayerFlags {
    /// A name for administrators
    #[arg(long, conflicts_with = "file")]
    name: Option<String>,
    /// A description
    #[arg(long, conflicts_with = "file")]
    description: Option<String>,
    /// Its weight among the sublayers (heavier decides first)
    #[arg(long, conflicts_with = "file")]
    weight: Option<u16>,
    /// The provider's key
    #[arg(long, conflicts_with = "file")]
    provider: Option<String>,
    /// Keep it across daemon restarts (stored)
    #[arg(long, conflicts_with = "file")]
    persistent: bool,
}

/// A provider from flags.
#[derive(Debug, Args)]
struct ProviderFlags {
    /// A name for administrators
    #[arg(long, conflicts_with = "file")]
    name: Option<String>,
    /// A description
    #[arg(long, conflicts_with = "file")]
    description: Option<String>,
    /// The systemd unit that owns the provider's policy
    #[arg(long, conflicts_with = "file")]
    service_name: Option<String>,
    /// Keep it across daemon restarts (stored)
    #[arg(long, conflicts_with = "file")]
    persistent: bool,
}

/// Provider contexts are added from JSON only: their policies are too rich for flags.
#[derive(Debug, Args)]
struct ContextFlags {}

#[derive(Debug, Subcommand)]
enum SaCommand {
    /// List IKE SAs with their CHILD_SAs
    List,
    /// Show one IKE SA, by id or by one of its CHILD_SAs' SPIs
    Show {
        /// IKE SA id, or SPI (0x hex or decimal)
        id: String,
    },
    /// Delete an IKE SA (with its CHILD_SAs) or one CHILD_SA
    Delete {
        /// IKE SA id, or SPI (0x hex or decimal)
        id: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
