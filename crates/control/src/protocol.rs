//! The control protocol: newline-delimited JSON over a Unix stream socket.
//!
//! Each side's first line is a [`Hello`] carrying [`PROTOCOL_VERSION`]; then the client
//! sends one [`Request`] per line and reads one [`Response`] per line (an
//! `events` request with `follow: true` answers with a stream of [`Response::Event`] lines
//! until the client goes away). docs/control-api.md describes every message.
//!
//! Versioning: adding a request type, a response type or an optional field keeps the
//! version (old peers ignore unknown fields, and an unknown request type is answered with
//! `invalid_request`); removing or renaming anything, or changing what a field means,
//! bumps it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The protocol's name in the hello, so a peer that is not a palisade control endpoint
/// is told apart from one of another version.
pub const PROTOCOL_NAME: &str = "palisade-control";

/// The longest request line the server reads, in bytes (a policy file travels inside a
/// request; 4 MiB is far beyond any hand-written policy and bounds a hostile client).
pub const MAX_REQUEST_LINE: usize = 4 << 20;

/// The first line from each side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`PROTOCOL_NAME`].
    pub protocol: String,
    /// The sender's [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The sending program and its version, for logs (`palisade 0.1.0`).
    #[serde(default)]
    pub software: String,
}

impl Hello {
    /// This build's hello, naming `software`.
    pub fn new(software: impl Into<String>) -> Hello {
        Hello {
            protocol: PROTOCOL_NAME.to_owned(),
            version: PROTOCOL_VERSION,
            software: software.into(),
        }
    }
}

/// A request from a client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// The daemon's state: [`Response::Status`].
    Status,
    /// Compile `text` (named `file` in diagnostics) and make the engine's Palisade objects
    /// exactly the compiled ones, all or nothing; with `dry_run`, only say what would
    /// change. [`Response::PolicyChanges`].
    PolicyApply {
        /// The file name, as diagnostics show it.
        file: String,
        /// The policy file's text.
        text: String,
        /// Compute the changes without applying them.
        #[serde(default)]
        dry_run: bool,
    },
    /// What applying `text` would change. [`Response::PolicyChanges`].
    PolicyDiff {
        /// The file name, as diagnostics show it.
        file: String,
        /// The policy file's text.
        text: String,
    },
    /// Re-read the daemon's configured `policy_file` and apply it as
    /// [`Request::PolicyApply`] would, with the caller's rights; what `systemctl reload`
    /// runs, so that it waits and fails when the file does not compile.
    /// [`Response::PolicyChanges`].
    PolicyReload,
    /// The Palisade provider's objects the engine holds. [`Response::Export`].
    PolicyExport,
    /// Filters, optionally of one layer (a layer name such as `outbound_transport_v4`).
    /// [`Response::Objects`].
    FilterList {
        /// Only this layer's filters.
        #[serde(default)]
        layer: Option<String>,
    },
    /// One filter by id (the engine's 64-bit filter id) or key (UUID). [`Response::Object`].
    FilterShow {
        /// Id or key.
        id: String,
    },
    /// Add a filter (palisade-filter's `Filter` as JSON). [`Response::Added`].
    FilterAdd {
        /// The filter.
        filter: serde_json::Value,
    },
    /// Delete a filter by id or key. [`Response::Ok`].
    FilterDelete {
        /// Id or key.
        id: String,
    },
    /// Every sublayer. [`Response::Objects`].
    SublayerList,
    /// One sublayer by key. [`Response::Object`].
    SublayerShow {
        /// Key.
        id: String,
    },
    /// Add a sublayer (palisade-filter's `Sublayer` as JSON). [`Response::Added`].
    SublayerAdd {
        /// The sublayer.
        sublayer: serde_json::Value,
    },
    /// Delete a sublayer by key. [`Response::Ok`].
    SublayerDelete {
        /// Key.
        id: String,
    },
    /// Every provider. [`Response::Objects`].
    ProviderList,
    /// One provider by key. [`Response::Object`].
    ProviderShow {
        /// Key.
        id: String,
    },
    /// Add a provider (palisade-filter's `Provider` as JSON). [`Response::Added`].
    ProviderAdd {
        /// The provider.
        provider: serde_json::Value,
    },
    /// Delete a provider by key. [`Response::Ok`].
    ProviderDelete {
        /// Key.
        id: String,
    },
    /// Every provider context. [`Response::Objects`].
    ContextList,
    /// One provider context by id or key. [`Response::Object`].
    ContextShow {
        /// Id or key.
        id: String,
    },
    /// Add a provider context (palisade-filter's `ProviderContext` as JSON).
    /// [`Response::Added`].
    ContextAdd {
        /// The provider context.
        context: serde_json::Value,
    },
    /// Delete a provider context by id or key. [`Response::Ok`].
    ContextDelete {
        /// Id or key.
        id: String,
    },
    /// Every IKE SA with its CHILD_SAs. [`Response::Sas`].
    SaList,
    /// One IKE SA by id, or the IKE SA holding a CHILD_SA by one of its SPIs
    /// (`0x` hex or decimal). [`Response::Sa`].
    SaShow {
        /// IKE SA id or CHILD_SA SPI.
        id: String,
    },
    /// Delete an IKE SA (with its CHILD_SAs) or one CHILD_SA, named as for `sa_show`.
    /// [`Response::Ok`].
    SaDelete {
        /// IKE SA id or CHILD_SA SPI.
        id: String,
    },
    /// Global and per-SA counters. [`Response::Stats`].
    Stats,
    /// Net events after sequence number `since` (all the ring holds without it):
    /// [`Response::Events`]; with `follow`, one [`Response::Event`] line per event, the
    /// ring's then live ones, until the client closes the connection.
    Events {
        /// Keep streaming.
        #[serde(default)]
        follow: bool,
        /// Only events with a larger sequence number.
        #[serde(default)]
        since: Option<u64>,
    },
    /// The engine's classification trace at `layer` for these field values
    /// (`[["ip_remote_address", "192.0.2.1"], ["ip_remote_port", "443"]]`).
    /// [`Response::Explain`].
    Explain {
        /// The layer's name.
        layer: String,
        /// Field name and value pairs.
        fields: Vec<(String, String)>,
    },
}

impl Request {
    /// The request's `type` tag, for logs and error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::PolicyApply { .. } => "policy_apply",
            Request::PolicyDiff { .. } => "policy_diff",
            Request::PolicyReload => "policy_reload",
            Request::PolicyExport => "policy_export",
            Request::FilterList { .. } => "filter_list",
            Request::FilterShow { .. } => "filter_show",
            Request::FilterAdd { .. } => "filter_add",
            Request::FilterDelete { .. } => "filter_delete",
            Request::SublayerList => "sublayer_list",
            Request::SublayerShow { .. } => "sublayer_show",
            Request::SublayerAdd { .. } => "sublayer_add",
            Request::SublayerDelete { .. } => "sublayer_delete",
            Request::ProviderList => "provider_list",
            Request::ProviderShow { .. } => "provider_show",
            Request::ProviderAdd { .. } => "provider_add",
            Request::ProviderDelete { .. } => "provider_delete",
            Request::ContextList => "context_list",
            Request::ContextShow { .. } => "context_show",
            Request::ContextAdd { .. } => "context_add",
            Request::ContextDelete { .. } => "context_delete",
            Request::SaList => "sa_list",
            Request::SaShow { .. } => "sa_show",
            Request::SaDelete { .. } => "sa_delete",
            Request::Stats => "stats",
            Request::Events { .. } => "events",
            Request::Explain { .. } => "explain",
        }
    }
}

/// A response to one request (or one line of an event stream).
///
/// Variants holding a struct are written with the struct's fields next to `type`
/// (`{"type":"status","version":"0.1.0",...}`); the others name their payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// Done; nothing to report.
    Ok,
    /// The request failed.
    Error {
        /// What kind of failure, for programs.
        code: ErrorCode,
        /// What failed, for people.
        message: String,
        /// What to do about it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
    },
    /// The daemon's state.
    Status(Status),
    /// What a policy apply changed (or, dry run and diff, would change).
    PolicyChanges(PolicyChanges),
    /// The Palisade provider's objects.
    Export(Export),
    /// Objects of one kind, each as palisade-filter's type in JSON.
    Objects {
        /// The objects.
        objects: Vec<serde_json::Value>,
    },
    /// One object, as palisade-filter's type in JSON.
    Object {
        /// The object.
        object: serde_json::Value,
    },
    /// An object was added.
    Added {
        /// Its key (UUID).
        key: String,
        /// The filter id the engine assigned (filters and provider contexts).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// IKE SAs.
    Sas {
        /// The IKE SAs, each with its CHILD_SAs.
        sas: Vec<IkeSaView>,
    },
    /// One IKE SA (boxed, as [`Response::Stats`], to keep every response small).
    Sa(Box<IkeSaView>),
    /// Counters.
    Stats(Box<Stats>),
    /// Net events (the answer to `events` without `follow`).
    Events {
        /// Oldest first.
        events: Vec<NetEvent>,
    },
    /// One net event of a followed stream.
    Event(NetEvent),
    /// A classification trace.
    Explain {
        /// palisade-filter's `Explanation` as JSON.
        trace: serde_json::Value,
        /// The same, as the engine formats it for people.
        text: String,
    },
}

impl Response {
    /// An error response.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Response {
        Response::Error {
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// An error response with a hint saying what to do.
    pub fn error_hint(
        code: ErrorCode,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Response {
        Response::Error {
            code,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

/// The daemon's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// palisaded's version.
    pub version: String,
    /// Its process id.
    pub pid: u32,
    /// Seconds since it started.
    pub uptime_secs: u64,
    /// The TUN device's name.
    pub tun: String,
    /// The policy file it loaded at start, if any.
    pub policy_file: Option<String>,
    /// Filters in the engine.
    pub filters: usize,
    /// Established IKE SAs.
    pub ike_sas: usize,
    /// Installed CHILD_SAs.
    pub child_sas: usize,
    /// Whether the data plane is up (until then boot-time filters hold).
    pub ready: bool,
}

/// What a policy apply changed, or would change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyChanges {
    /// The policy's name.
    pub policy: String,
    /// Whether the changes were made (false for a diff or a dry run).
    pub applied: bool,
    /// The changes: providers, then sublayers, provider contexts and filters.
    pub changes: Vec<PolicyChange>,
}

impl PolicyChanges {
    /// How many objects are added, changed and removed.
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |op: &str| self.changes.iter().filter(|c| c.op == op).count();
        (count("add"), count("change"), count("remove"))
    }
}

/// One object's change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyChange {
    /// `add`, `change` or `remove`.
    pub op: String,
    /// `provider`, `sublayer`, `provider_context` or `filter`.
    pub kind: String,
    /// The object's key.
    pub key: String,
    /// Its name.
    pub name: String,
    /// A filter's layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// For a change, the fields that differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

/// The Palisade provider's objects as the engine holds them (palisade-filter's types
/// as JSON): what `policy export` prints.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Export {
    /// The provider (null before any policy was applied).
    pub provider: Option<serde_json::Value>,
    /// Its sublayers.
    pub sublayers: Vec<serde_json::Value>,
    /// Its provider contexts.
    pub contexts: Vec<serde_json::Value>,
    /// Its filters.
    pub filters: Vec<serde_json::Value>,
}

/// An IKE SA as `sa list` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IkeSaView {
    /// The daemon's id for it.
    pub id: u64,
    /// `initiator` or `responder`.
    pub role: String,
    /// Our IKE endpoint (`address:port`).
    pub local: String,
    /// The peer's IKE endpoint.
    pub remote: String,
    /// `connecting`, `established`, `rekeying`, `deleting`.
    pub state: String,
    /// Our identity.
    pub local_id: String,
    /// The peer's identity.
    pub peer_id: String,
    /// The IKE SA's transforms (`AES_GCM_16_256/PRF_HMAC_SHA2_256/ECP_256`).
    pub transforms: String,
    /// Seconds since it was established.
    pub established_secs: u64,
    /// Whether a NAT was detected (ESP in UDP).
    pub nat: bool,
    /// Its CHILD_SAs.
    pub child_sas: Vec<ChildSaView>,
}

/// A CHILD_SA (an inbound and outbound ESP SA pair).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChildSaView {
    /// The inbound SA's SPI.
    pub inbound_spi: u32,
    /// The outbound SA's SPI.
    pub outbound_spi: u32,
    /// `esp`.
    pub protocol: String,
    /// `transport` or `tunnel`.
    pub mode: String,
    /// The ESP transforms (`AES_GCM_16_256`).
    pub suite: String,
    /// Our traffic selectors.
    pub local_ts: Vec<String>,
    /// The peer's traffic selectors.
    pub remote_ts: Vec<String>,
    /// ESP in UDP.
    pub udp_encap: bool,
    /// The inbound SA's counters.
    pub inbound: SaCounters,
    /// The outbound SA's counters.
    pub outbound: SaCounters,
    /// Its lifetime, as configured (`rekey 1h, expire 1h10m`).
    pub lifetime: String,
    /// Seconds since it was installed.
    pub age_secs: u64,
    /// The data-plane worker (thread) that holds it.
    pub worker: u32,
    /// Transport mode across a NAT: the addresses the peer built its packets with, against
    /// which the data plane restores their TCP and UDP checksums (RFC 3948 §3.1.2).
    /// Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_original: Option<NatOriginal>,
}

/// The addresses a peer across a NAT put in its transport-mode packets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NatOriginal {
    /// Its own address (behind a NAT: its private one).
    pub source: String,
    /// Ours as it knows it (when we are behind a NAT: the NAT's public one).
    pub destination: String,
}

/// One SA's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SaCounters {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// Drops by reason (`replay`, `integrity`, ...).
    pub drops: BTreeMap<String, u64>,
}

/// The daemon's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Drops not tied to one SA, by reason.
    pub global_drops: BTreeMap<String, u64>,
    /// Packets the kernel dropped before palisaded could read them, by where:
    /// `tun_queue` (the TUN's queue full), `tun_write` (writes to the TUN refused),
    /// `socket_buffer` (a receive buffer of palisaded's sockets full). Empty from a
    /// daemon that could not read them.
    pub kernel_drops: BTreeMap<String, u64>,
    /// Packets read from the TUN.
    pub tun_rx: u64,
    /// Packets written to the TUN.
    pub tun_tx: u64,
    /// ESP packets received on the raw socket.
    pub esp_rx: u64,
    /// ESP packets sent on the raw socket.
    pub esp_tx: u64,
    /// UDP datagrams received (IKE and ESP in UDP).
    pub udp_rx: u64,
    /// UDP datagrams sent.
    pub udp_tx: u64,
    /// Packets waiting for an SA now.
    pub queued: u64,
    /// Packets dropped because the acquire queue was full.
    pub queue_drops: u64,
    /// Clear-text packets policy let through.
    pub clear_permitted: u64,
    /// Clear-text packets policy blocked.
    pub clear_blocked: u64,
    /// Packets one worker read from the TUN and passed to the worker that owns their
    /// peer's SAs (the TUN spreads flows over its queues by their hash, not by peer), or
    /// a fragment to the worker that puts its datagram back together.
    pub handed_off: u64,
    /// IP datagrams put back together from the fragments the host's stack cut for the
    /// TUN, to be judged and protected whole.
    pub reassembled: u64,
    /// Packets that left in IP fragments: reassembled datagrams longer than the TUN's
    /// MTU once protected.
    pub fragmented: u64,
    /// IKE counters by name.
    pub ike: BTreeMap<String, u64>,
    /// Per SA (by SPI) counters.
    pub sas: Vec<(u32, SaCounters)>,
}

/// A net event (spec §6.2): an IKE failure, a drop, an SA installed or deleted, ...
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetEvent {
    /// Sequence number, increasing by one per event since the daemon started.
    pub seq: u64,
    /// When, in milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// `ike_failure`, `drop`, `sa_installed`, `sa_deleted`, `policy_applied`, ...
    pub kind: String,
    /// One line for people.
    pub summary: String,
    /// The details, for programs.
    pub detail: serde_json::Value,
}
