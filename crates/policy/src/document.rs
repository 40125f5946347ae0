//! The policy file's document model, as written by administrators. Values that later
//! checks may reject keep their spans, so an error points at them.
//!
//! Every table rejects unknown keys: a misspelt key is an error, never a silent default.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use palisade_filter::policy::{AuthTransform, CipherTransform};
use palisade_filter::policy::{DhGroup, IkeCipher, IkeIntegrity, KeyingModule, PfsGroup};

/// A whole policy file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// What the policy is.
    pub policy: PolicyHeader,
    /// Authentication sets by name.
    #[serde(default)]
    pub auth_sets: BTreeMap<String, Spanned<AuthSet>>,
    /// Main-mode (IKE SA) proposal sets by name.
    #[serde(default)]
    pub ike_proposal_sets: BTreeMap<String, Spanned<IkeProposalSet>>,
    /// Quick-mode (IPsec SA) proposal sets by name.
    #[serde(default)]
    pub ipsec_proposal_sets: BTreeMap<String, Spanned<IpsecProposalSet>>,
    /// Connection security rules, in order.
    #[serde(default)]
    pub rules: Vec<Spanned<Rule>>,
}

/// `[policy]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyHeader {
    /// The policy's name: every object's key is derived from it.
    pub name: Spanned<String>,
    /// For administrators.
    #[serde(default)]
    pub description: String,
    /// Which keying module negotiates the rules' SAs.
    #[serde(default = "default_module")]
    pub keying_module: KeyingModule,
    /// Whether to add the IKE exemptions of spec §4.4 (UDP 500 and 4500) when a rule
    /// negotiates.
    #[serde(default = "yes")]
    pub ike_exemptions: bool,
    /// The weight of Palisade's sublayer among the sublayers.
    #[serde(default = "default_sublayer_weight")]
    pub sublayer_weight: u16,
}

fn default_module() -> KeyingModule {
    KeyingModule::Ikev2
}

fn yes() -> bool {
    true
}

/// Above the universal sublayer (0x8000) so that connection security decides before
/// general firewall filters, below the built-in IPsec tunnel sublayers.
pub const DEFAULT_SUBLAYER_WEIGHT: u16 = 0x8000 + 0x0800;

fn default_sublayer_weight() -> u16 {
    DEFAULT_SUBLAYER_WEIGHT
}

/// `[auth_sets.NAME]`: one authentication method.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSet {
    /// `preshared_key` or `certificate`.
    pub method: Spanned<AuthMethodName>,
    /// The pre-shared key (method `preshared_key`).
    #[serde(default)]
    pub key: Option<Spanned<String>>,
    /// Trust anchors, PEM files the peer's certificate must chain to (method
    /// `certificate`).
    #[serde(default)]
    pub ca: Vec<Spanned<PathBuf>>,
    /// Our certificate chain, a PEM file (method `certificate`).
    #[serde(default)]
    pub certificate: Option<Spanned<PathBuf>>,
    /// Our private key, a PEM file (method `certificate`).
    #[serde(default)]
    pub private_key: Option<Spanned<PathBuf>>,
    /// The certificate's key type.
    #[serde(default)]
    pub signature: CertificateKind,
}

/// An authentication method's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethodName {
    /// `IKEEXT_PRESHARED_KEY`.
    PresharedKey,
    /// `IKEEXT_CERTIFICATE*`.
    Certificate,
}

/// Which `IKEEXT_CERTIFICATE*` method.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateKind {
    /// RSA.
    #[default]
    Rsa,
    /// ECDSA over P-256.
    EcdsaP256,
    /// ECDSA over P-384.
    EcdsaP384,
}

/// `[ike_proposal_sets.NAME]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IkeProposalSet {
    /// In order of preference.
    pub proposals: Spanned<Vec<IkeProposal>>,
}

/// One main-mode proposal (`IKEEXT_PROPOSAL0`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IkeProposal {
    /// Cipher.
    pub cipher: IkeCipher,
    /// Integrity (and PRF).
    pub integrity: IkeIntegrity,
    /// Key exchange group.
    pub dh_group: DhGroup,
    /// IKE SA lifetime.
    #[serde(default = "default_mm_lifetime")]
    pub lifetime_seconds: u32,
    /// Child SAs per IKE SA before rekeying it; 0 = unlimited.
    #[serde(default)]
    pub quick_mode_limit: u32,
}

fn default_mm_lifetime() -> u32 {
    palisade_filter::policy::DEFAULT_MM_LIFETIME_SECONDS
}

/// `[ipsec_proposal_sets.NAME]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpsecProposalSet {
    /// In order of preference.
    pub proposals: Spanned<Vec<Spanned<IpsecProposal>>>,
}

/// One quick-mode proposal (`IPSEC_PROPOSAL0`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpsecProposal {
    /// ESP cipher (an AEAD alone, or CBC with `esp_integrity`).
    #[serde(default)]
    pub esp: Option<CipherTransform>,
    /// ESP integrity.
    #[serde(default)]
    pub esp_integrity: Option<AuthTransform>,
    /// AH integrity.
    #[serde(default)]
    pub ah: Option<AuthTransform>,
    /// Perfect forward secrecy group.
    #[serde(default)]
    pub pfs: PfsGroup,
    /// SA lifetime in seconds.
    #[serde(default = "default_qm_seconds")]
    pub lifetime_seconds: u32,
    /// SA lifetime in KiB; 0 = none.
    #[serde(default = "default_qm_kilobytes")]
    pub lifetime_kilobytes: u32,
}

fn default_qm_seconds() -> u32 {
    palisade_filter::policy::DEFAULT_QM_LIFETIME_SECONDS
}

fn default_qm_kilobytes() -> u32 {
    palisade_filter::policy::DEFAULT_QM_LIFETIME_KILOBYTES
}

/// `[[rules]]`: one connection security rule.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique in the file; the rule's objects' keys are derived from it.
    pub name: Spanned<String>,
    /// For administrators.
    #[serde(default)]
    pub description: String,
    /// Local addresses: `any`, or a list of addresses, prefixes and ranges.
    #[serde(default)]
    pub local: Option<Spanned<OneOrMany>>,
    /// Remote addresses, as `local`.
    #[serde(default)]
    pub remote: Option<Spanned<OneOrMany>>,
    /// `any`, `tcp`, `udp`, `icmp`, `icmpv6`, or a protocol number.
    #[serde(default)]
    pub protocol: Option<Spanned<Protocol>>,
    /// Local ports (TCP and UDP): numbers and `"low-high"` ranges.
    #[serde(default)]
    pub local_ports: Vec<Spanned<Port>>,
    /// Remote ports, as `local_ports`.
    #[serde(default)]
    pub remote_ports: Vec<Spanned<Port>>,
    /// What to do with the traffic.
    pub action: Spanned<RuleAction>,
    /// With `request`: `require` makes inbound connections arrive secured (negotiation
    /// discovery in the secure ring); the default `request` lets both directions fall
    /// back to clear (boundary zone).
    #[serde(default)]
    pub inbound: Option<Spanned<RuleAction>>,
    /// `transport` (default) or `tunnel`.
    #[serde(default)]
    pub mode: Option<Spanned<Mode>>,
    /// The tunnel's outer addresses (mode `tunnel`).
    #[serde(default)]
    pub tunnel: Option<Spanned<Tunnel>>,
    /// Authentication sets, tried in order.
    #[serde(default)]
    pub auth: Option<Spanned<OneOrMany>>,
    /// The main-mode proposal set; Palisade's defaults when absent.
    #[serde(default)]
    pub ike_proposals: Option<Spanned<String>>,
    /// The quick-mode proposal set; Palisade's defaults when absent.
    #[serde(default)]
    pub ipsec_proposals: Option<Spanned<String>>,
    /// Guaranteed encryption: matching connections are allowed only over SAs that
    /// encrypt.
    #[serde(default)]
    pub require_encryption: Option<Spanned<bool>>,
    /// Remote identity authorization: only peers that authenticated with one of these
    /// identities may connect in; other inbound connections that match are blocked.
    #[serde(default)]
    pub authorized_peers: Option<Spanned<Vec<String>>>,
    /// Only connections whose local socket a process of one of these programs holds
    /// (their executable's path; `"/dir/*"` for every program under a directory): others
    /// that match are blocked, starting (ALE_AUTH_CONNECT) and accepted (ALE_AUTH_RECV_ACCEPT)
    /// alike.
    #[serde(default)]
    pub programs: Option<Spanned<Vec<String>>>,
    /// Only connections whose local socket one of these users owns: names or uids, and
    /// `"@group"` for a group's members; resolved on the host that compiles the policy.
    #[serde(default)]
    pub users: Option<Spanned<Vec<String>>>,
    /// Connections whose local socket a process of one of these programs holds are
    /// blocked (as `programs`' entries); the rule's others pass.
    #[serde(default)]
    pub denied_programs: Option<Spanned<Vec<String>>>,
    /// Connections whose local socket one of these users owns are blocked (as `users`'
    /// entries); the rule's others pass.
    #[serde(default)]
    pub denied_users: Option<Spanned<Vec<String>>>,
}

/// A string or a list of strings.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged, expecting = "expected a string or a list of strings")]
pub enum OneOrMany {
    /// One.
    One(String),
    /// Many.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The strings. (Inside an untagged enum values lose their spans, so errors point
    /// at the whole list and name the element.)
    pub fn items(&self) -> Vec<&String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v.iter().collect(),
        }
    }
}

/// A protocol: a name or a number.
#[derive(Clone, Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "expected any, tcp, udp, icmp, icmpv6 or a protocol number 0-255"
)]
pub enum Protocol {
    /// A name.
    Name(String),
    /// A number.
    Number(i64),
}

/// A port or a range.
#[derive(Clone, Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "expected a port number or a range like \"1024-2047\""
)]
pub enum Port {
    /// One port.
    Number(i64),
    /// `"low-high"`.
    Range(String),
}

/// A rule's action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Traffic must be protected; clear traffic is dropped (transport or tunnel mode).
    Require,
    /// Protection is negotiated; traffic flows clear while negotiating and if it fails
    /// (negotiation discovery).
    Request,
    /// No IPsec: permitted clear, above every IPsec rule.
    Exempt,
    /// Dropped.
    Block,
}

/// A rule's mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Host to host.
    #[default]
    Transport,
    /// Gateway to gateway.
    Tunnel,
}

/// `tunnel = { local = "…", remote = "…" }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tunnel {
    /// Our outer address.
    pub local: Spanned<String>,
    /// The peer gateway's outer address.
    pub remote: Spanned<String>,
}
