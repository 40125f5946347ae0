//! Why a negotiation failed (the keying module's net events, spec §6.2)
//! and why a datagram was dropped (counted, never logged per packet).

use std::net::SocketAddr;

use crate::IkeSaId;
use crate::policy::PolicyOrigin;

/// Which side of the IKE SA we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We sent the first IKE_SA_INIT.
    Initiator,
    /// The peer did.
    Responder,
}

/// The exchange that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Policy lookup before anything was sent.
    Policy,
    /// IKE_SA_INIT.
    IkeSaInit,
    /// IKE_AUTH, the IKE SA part (authentication).
    IkeAuth,
    /// IKE_INTERMEDIATE (RFC 9242): an additional key exchange (RFC 9370).
    IkeIntermediate,
    /// The CHILD_SA carried by IKE_AUTH.
    ChildSa,
    /// An INFORMATIONAL exchange (delete, liveness).
    Informational,
    /// A CREATE_CHILD_SA exchange: a further CHILD_SA or a rekey.
    CreateChildSa,
}

/// Who detected the failure, as WFP's failure point (ME / PEER).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailurePoint {
    /// We refused or gave up.
    Local,
    /// The peer refused (an error notification arrived).
    Peer,
}

/// Why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum FailureReason {
    /// No main-mode or quick-mode policy for these addresses or this traffic.
    #[error("no policy")]
    NoPolicy,
    /// The policy has nothing this implementation can negotiate (only
    /// unsupported transforms, or no pre-shared key).
    #[error("policy has nothing negotiable: {0}")]
    UnsupportedPolicy(&'static str),
    /// No proposal was acceptable (NO_PROPOSAL_CHOSEN).
    #[error("no proposal chosen")]
    NoProposalChosen,
    /// The AUTH payload did not verify, or the identity is not the one
    /// policy requires (AUTHENTICATION_FAILED).
    #[error("authentication failed")]
    AuthenticationFailed,
    /// The traffic selectors are not acceptable (TS_UNACCEPTABLE).
    #[error("traffic selectors unacceptable")]
    TsUnacceptable,
    /// Transport mode was wanted and the peer did not agree, or the reverse.
    #[error("mode mismatch")]
    ModeMismatch,
    /// The peer never answered: retransmissions exhausted.
    #[error("peer did not respond")]
    PeerUnreachable,
    /// The responder's IKE_AUTH never came.
    #[error("half-open IKE SA timed out")]
    HalfOpenTimeout,
    /// The peer asked for a COOKIE (RFC 7296 §2.6). No longer raised since
    /// cookies are supported; see [`FailureReason::CookieRefused`].
    #[error("cookies are not supported")]
    CookieUnsupported,
    /// The responder kept answering with a fresh COOKIE (RFC 7296 §2.6)
    /// after we had returned one several times.
    #[error("responder kept demanding a cookie")]
    CookieRefused,
    /// Another error notification from the peer.
    #[error("peer sent error notification {0}")]
    PeerError(u16),
    /// The peer's message was well-formed but broke the protocol (missing
    /// payloads, a bad key exchange value, a group we did not offer).
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A cryptographic operation failed locally.
    #[error("cryptographic failure")]
    Crypto,
    /// The peer's certificate authentication was refused
    /// (AUTHENTICATION_FAILED): which check failed.
    #[error("certificate authentication failed: {0}")]
    Certificate(CertificateFailure),
    /// The IKE SA carries [`crate::EndpointConfig::max_child_sas_per_ike_sa`]
    /// CHILD_SAs already: a further one was not requested, or was refused
    /// with NO_ADDITIONAL_SAS.
    #[error("CHILD_SA limit of the IKE SA reached")]
    ChildSaLimit,
    /// The peer will take no more CHILD_SAs on this IKE SA
    /// (NO_ADDITIONAL_SAS, RFC 7296 §3.10.1).
    #[error("peer accepts no additional CHILD_SAs on this IKE SA")]
    NoAdditionalSas,
    /// The peer has as many IKE SAs with us as
    /// [`crate::EndpointConfig::max_ike_sas_per_peer`] allows: its IKE SA
    /// rekey was refused with TEMPORARY_FAILURE because the IKE SAs it
    /// replaced before were never deleted.
    #[error("IKE SA limit for the peer reached")]
    IkeSaLimit,
    /// A request of ours was dropped: the IKE SA already had
    /// [`crate::EndpointConfig::max_queued_requests_per_ike_sa`] waiting.
    #[error("too many requests queued on the IKE SA")]
    RequestQueueFull,
}

/// Which check of a peer's certificate authentication failed (RFC 7296
/// §2.15, RFC 4945 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum CertificateFailure {
    /// No X.509 CERT payload came with a signature AUTH.
    #[error("no certificate")]
    NoCertificate,
    /// A certificate that does not parse.
    #[error("malformed certificate")]
    Malformed,
    /// No path from the certificate to a configured trust anchor.
    #[error("untrusted: no path to a trust anchor")]
    Untrusted,
    /// A certificate on the path has expired.
    #[error("certificate expired")]
    Expired,
    /// A certificate on the path is not valid yet.
    #[error("certificate not yet valid")]
    NotYetValid,
    /// An extended key usage without id-kp-ipsecIKE.
    #[error("extended key usage does not allow IKE")]
    KeyUsage,
    /// Any other reason the path was refused (constraints, bad signature
    /// on a certificate, unsupported algorithm).
    #[error("certificate path rejected")]
    PathRejected,
    /// The certificate does not vouch for the peer's IDi/IDr.
    #[error("identity does not match the certificate")]
    IdentityMismatch,
    /// The AUTH signature does not verify with the certificate's key.
    #[error("bad AUTH signature")]
    BadSignature,
    /// An Auth Method or signature algorithm we do not accept, or
    /// signatures while policy has no trust anchors.
    #[error("unsupported authentication method")]
    UnsupportedMethod,
    /// The driver never gave the wall-clock time
    /// ([`crate::Endpoint::set_unix_time`]), so validity cannot be checked.
    #[error("wall-clock time unknown")]
    NoWallClock,
}

/// A failed negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// Our address.
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
    /// The IKE SA, if one existed.
    pub ike_sa: Option<IkeSaId>,
    /// Our role.
    pub role: Role,
    /// The exchange.
    pub stage: Stage,
    /// Who detected it.
    pub point: FailurePoint,
    /// Why.
    pub reason: FailureReason,
    /// The filters and provider contexts that supplied the policy.
    pub policy: PolicyInvolved,
}

/// The policy a negotiation used, as a net event names it (spec §6.2: the
/// filter ids of IKEEXT_MM_FAILURE and IKEEXT_QM_FAILURE). Each part is
/// `None` where the lookup had not happened yet, found nothing, or the
/// policy did not come from the filter engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyInvolved {
    /// The IKEEXT filter and main-mode provider context.
    pub main_mode: Option<PolicyOrigin>,
    /// The IPSEC filter and quick-mode provider context.
    pub quick_mode: Option<PolicyOrigin>,
}

/// Why a received datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Not a parseable IKEv2 message (header, payload chain, payload bodies).
    Malformed,
    /// An SPI we have no IKE SA for.
    UnknownSpi,
    /// The SK payload's ICV did not verify or the SK payload was malformed.
    Integrity,
    /// A retransmitted request answered from the cached response.
    Retransmission,
    /// A message ID outside the window, or a response to nothing outstanding.
    InvalidMessageId,
    /// A message that makes no sense in the IKE SA's state.
    Unexpected,
    /// An exchange type this implementation does not handle
    /// (IKE_INTERMEDIATE): answered with an error where a request.
    Unsupported,
    /// An IKE_SA_INIT request answered with a COOKIE instead of creating
    /// state, because too many IKE SAs are half-open (RFC 7296 §2.6).
    CookieRequired,
    /// An IKE_SA_INIT request from an address that already has the most
    /// half-open IKE SAs allowed per peer.
    HalfOpenLimit,
    /// An IKE_SA_INIT request from an address that already has the most
    /// IKE SAs allowed per peer ([`crate::EndpointConfig::max_ike_sas_per_peer`]).
    IkeSaLimit,
}

impl DropReason {
    /// Every reason, for iterating counters.
    pub const ALL: [Self; 10] = [
        Self::Malformed,
        Self::UnknownSpi,
        Self::Integrity,
        Self::Retransmission,
        Self::InvalidMessageId,
        Self::Unexpected,
        Self::Unsupported,
        Self::CookieRequired,
        Self::HalfOpenLimit,
        Self::IkeSaLimit,
    ];

    fn index(self) -> usize {
        match self {
            Self::Malformed => 0,
            Self::UnknownSpi => 1,
            Self::Integrity => 2,
            Self::Retransmission => 3,
            Self::InvalidMessageId => 4,
            Self::Unexpected => 5,
            Self::Unsupported => 6,
            Self::CookieRequired => 7,
            Self::HalfOpenLimit => 8,
            Self::IkeSaLimit => 9,
        }
    }
}

/// Counters of an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    drops: [u64; DropReason::ALL.len()],
    /// Requests we sent again after a timeout.
    pub retransmissions: u64,
    /// IKE fragments (RFC 7383) sent, first transmissions and resends.
    pub fragments_sent: u64,
    /// IKE fragments received that passed their integrity check.
    pub fragments_received: u64,
    /// IKE fragments dropped: integrity, numbering, reassembly limits,
    /// duplicates, or for no message in reassembly.
    pub fragments_dropped: u64,
    /// Messages put together from fragments.
    pub messages_reassembled: u64,
    /// Requests of ours dropped because too many were queued on their IKE
    /// SA ([`crate::EndpointConfig::max_queued_requests_per_ike_sa`]).
    pub requests_dropped: u64,
}

impl Counters {
    /// Datagrams dropped (or, for [`DropReason::Retransmission`], answered
    /// from cache) for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// All drops.
    pub fn total_dropped(&self) -> u64 {
        self.drops.iter().sum()
    }

    pub(crate) fn count(&mut self, reason: DropReason) {
        let slot = &mut self.drops[reason.index()];
        *slot = slot.saturating_add(1);
    }
}
