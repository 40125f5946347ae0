//! SA proposals (RFC 7296 §2.7, §3.3): what we offer, built from the WFP
//! policy types, and the choice between ours and the peer's.
//!
//! - As responder: the first of the peer's proposals we accept, in the
//!   peer's order; within it the first of our proposals it can satisfy.
//! - As initiator: the responder's answer must be exactly one proposal with
//!   one transform of each type, equal to one we offered under that number.
//!
//! Each policy proposal becomes one proposal on the wire with one transform
//! per type (plus both ESN values when [`EsnPolicy::Either`]). Policy
//! proposals this implementation cannot run (DES, 3DES, AES-192, MD5,
//! MODP groups until palisade-crypto has them, AH+ESP bundles) are left out
//! of the offer rather than failing the whole policy.

use palisade_crypto::{EncrId, EspSuite, IntegId, KeId, KeyLengths, prf::PrfId};
use palisade_filter::policy::{
    AuthTransform, CipherTransform, IkeCipher, IkeIntegrity, IpsecProposal, MainModeProposal,
    SaLifetime, SaTransform,
};
use palisade_wire::WireError;
use palisade_wire::ikev2::{
    MessageBuilder, Proposal, ProposalSpec, SecurityAssociation, SecurityAssociationSpec,
    TransformSpec, esn, integ, payload_type, protocol_id, transform_type,
};

/// The negotiated transforms of an IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IkeTransforms {
    /// Encryption.
    pub encr: EncrId,
    /// Key Length attribute in bits (256 for ChaCha20-Poly1305, sent without it).
    pub key_bits: u16,
    /// Pseudorandom function.
    pub prf: PrfId,
    /// Integrity; [`IntegId::None`] with an AEAD.
    pub integ: IntegId,
    /// Key exchange method.
    pub ke: KeId,
    /// Additional key exchanges (RFC 9370 §2.2.1): ADDKE1..ADDKE7 in
    /// order, `None` where the transform is absent or NONE. Each runs in
    /// its own IKE_INTERMEDIATE exchange (RFC 9242).
    pub addke: [Option<KeId>; ADDKE_TYPES],
}

/// How many Additional Key Exchange transform types there are (6 to 12).
pub const ADDKE_TYPES: usize = 7;

/// Transform type of ADDKE`n + 1`.
fn addke_type(n: usize) -> u8 {
    // n < ADDKE_TYPES = 7, so the sum stays within 6..=12.
    transform_type::ADDKE1.saturating_add(u8::try_from(n).unwrap_or(u8::MAX))
}

fn is_aead(encr: EncrId) -> bool {
    matches!(encr, EncrId::AesGcm16 | EncrId::ChaCha20Poly1305)
}

/// Key Length attributes go with AES, not with ChaCha20-Poly1305 (RFC 7634 §2)
/// or NULL.
fn key_length_attribute(encr: EncrId, bits: u16) -> Option<u16> {
    matches!(
        encr,
        EncrId::AesCbc | EncrId::AesGcm16 | EncrId::NullAuthAesGmac
    )
    .then_some(bits)
}

fn encr_matches(encr: EncrId, bits: u16, t: &TransformSpec) -> bool {
    t.transform_id == u16::from(encr)
        && match encr {
            EncrId::ChaCha20Poly1305 => matches!(t.key_length, None | Some(256)),
            EncrId::Null => t.key_length.is_none(),
            _ => t.key_length == Some(bits),
        }
}

impl IkeTransforms {
    /// The transforms of a main-mode policy proposal, if this
    /// implementation can run them.
    pub fn from_policy(p: &MainModeProposal) -> Option<Self> {
        let (encr, key_bits) = match p.cipher {
            IkeCipher::Aes128 => (EncrId::AesCbc, 128),
            IkeCipher::Aes256 => (EncrId::AesCbc, 256),
            IkeCipher::AesGcm128 => (EncrId::AesGcm16, 128),
            IkeCipher::AesGcm256 => (EncrId::AesGcm16, 256),
            IkeCipher::ChaCha20Poly1305 => (EncrId::ChaCha20Poly1305, 256),
            IkeCipher::Des | IkeCipher::TripleDes | IkeCipher::Aes192 => return None,
        };
        // In IKEv2 the policy's integrity names the PRF too.
        let (prf, hmac) = match p.integrity {
            IkeIntegrity::Sha1 => (PrfId::HmacSha1, IntegId::HmacSha1_96),
            IkeIntegrity::Sha256 => (PrfId::HmacSha2_256, IntegId::HmacSha2_256_128),
            IkeIntegrity::Sha384 => (PrfId::HmacSha2_384, IntegId::HmacSha2_384_192),
            IkeIntegrity::Sha512 => (PrfId::HmacSha2_512, IntegId::HmacSha2_512_256),
            IkeIntegrity::Md5 => return None,
        };
        let ke = KeId::try_from(p.dh_group.iana_id()).ok()?;
        Some(Self {
            encr,
            key_bits,
            prf,
            integ: if is_aead(encr) { IntegId::None } else { hmac },
            ke,
            addke: [None; ADDKE_TYPES],
        })
    }

    /// The additional key exchanges, in the order they run.
    pub fn additional_key_exchanges(&self) -> impl Iterator<Item = KeId> + '_ {
        self.addke.iter().flatten().copied()
    }

    /// Our offer with the additional key exchanges of RFC 9370: every
    /// proposal with them first, then (unless they are required) every
    /// proposal without them, so that a peer without RFC 9370 support
    /// picks a classic one. With no methods this is [`Self::offer`].
    pub fn offer_with_additional(
        proposals: &[MainModeProposal],
        additional: &crate::policy::AdditionalKeyExchanges,
    ) -> Vec<Self> {
        let classic = Self::offer(proposals);
        if additional.methods.is_empty() {
            return classic;
        }
        let mut addke = [None; ADDKE_TYPES];
        for (slot, method) in addke.iter_mut().zip(&additional.methods) {
            *slot = Some(*method);
        }
        let mut out: Vec<Self> = classic.iter().map(|t| Self { addke, ..*t }).collect();
        if !additional.required {
            out.extend(classic);
        }
        out
    }

    /// Our offer from a policy's proposals, in order, without duplicates.
    pub fn offer(proposals: &[MainModeProposal]) -> Vec<Self> {
        let mut out: Vec<Self> = Vec::new();
        for t in proposals.iter().filter_map(Self::from_policy) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    /// SK_e and SK_a lengths.
    pub fn key_lengths(&self) -> Result<KeyLengths, palisade_crypto::CryptoError> {
        KeyLengths::new(self.encr, self.key_bits, self.integ)
    }

    fn specs(&self) -> Vec<TransformSpec> {
        let mut out = vec![
            TransformSpec {
                transform_type: transform_type::ENCR,
                transform_id: self.encr.into(),
                key_length: key_length_attribute(self.encr, self.key_bits),
            },
            TransformSpec {
                transform_type: transform_type::PRF,
                transform_id: self.prf.into(),
                key_length: None,
            },
        ];
        if self.integ != IntegId::None {
            out.push(TransformSpec {
                transform_type: transform_type::INTEG,
                transform_id: self.integ.into(),
                key_length: None,
            });
        }
        out.push(TransformSpec {
            transform_type: transform_type::KE,
            transform_id: self.ke.into(),
            key_length: None,
        });
        for (n, method) in self.addke.iter().enumerate() {
            if let Some(method) = method {
                out.push(TransformSpec {
                    transform_type: addke_type(n),
                    transform_id: (*method).into(),
                    key_length: None,
                });
            }
        }
        out
    }

    /// Whether a proposal offering `by_type` transforms allows these.
    fn accepted_by(&self, by_type: &ByType) -> bool {
        by_type
            .encr
            .iter()
            .any(|t| encr_matches(self.encr, self.key_bits, t))
            && by_type.has(&by_type.prf, self.prf.into())
            && if self.integ == IntegId::None {
                by_type.integ.is_empty() || by_type.has(&by_type.integ, integ::NONE)
            } else {
                by_type.has(&by_type.integ, self.integ.into())
            }
            && by_type.has(&by_type.ke, self.ke.into())
            && self
                .addke
                .iter()
                .zip(&by_type.addke)
                .all(|(ours, peer)| match ours {
                    Some(method) => by_type.has(peer, (*method).into()),
                    // RFC 9370 §2.2.1: an absent ADDKE type, or NONE among its
                    // transforms, means the peer accepts going without.
                    None => peer.is_empty() || by_type.has(peer, ke_none::NONE),
                })
    }
}

/// The NONE transform of the ADDKE types (RFC 9370 §2.2.1).
mod ke_none {
    pub const NONE: u16 = 0;
}

/// The transforms of one received proposal, by type.
#[derive(Debug, Default)]
struct ByType {
    encr: Vec<TransformSpec>,
    prf: Vec<TransformSpec>,
    integ: Vec<TransformSpec>,
    ke: Vec<TransformSpec>,
    esn: Vec<TransformSpec>,
    /// ADDKE1..ADDKE7 (RFC 9370).
    addke: [Vec<TransformSpec>; ADDKE_TYPES],
    /// A transform of a type we do not know (RFC 7296 §3.3.6: reject the
    /// proposal) or with attributes we do not understand (reject the transform).
    unknown_type: bool,
}

impl ByType {
    fn of(p: &Proposal<'_>) -> Self {
        let mut out = Self::default();
        for t in p.transforms() {
            let Some(spec) = t.to_spec() else { continue };
            match spec.transform_type {
                transform_type::ENCR => out.encr.push(spec),
                transform_type::PRF => out.prf.push(spec),
                transform_type::INTEG => out.integ.push(spec),
                transform_type::KE => out.ke.push(spec),
                transform_type::ESN => out.esn.push(spec),
                t @ transform_type::ADDKE1..=transform_type::ADDKE7 => {
                    match out.addke.get_mut(usize::from(t - transform_type::ADDKE1)) {
                        Some(list) => list.push(spec),
                        None => out.unknown_type = true,
                    }
                }
                _ => out.unknown_type = true,
            }
        }
        out
    }

    /// Whether every ADDKE type is absent or lists NONE.
    fn allows_no_addke(&self) -> bool {
        self.addke
            .iter()
            .all(|l| l.is_empty() || self.has(l, ke_none::NONE))
    }

    fn has(&self, list: &[TransformSpec], id: u16) -> bool {
        list.iter().any(|t| t.transform_id == id)
    }

    /// One transform of each type, for checking a responder's answer.
    fn single(list: &[TransformSpec]) -> Option<Option<&TransformSpec>> {
        match list {
            [] => Some(None),
            [one] => Some(Some(one)),
            _ => None,
        }
    }
}

/// The responder's choice among the peer's IKE proposals: the proposal
/// number to echo and the transforms. `None` is NO_PROPOSAL_CHOSEN.
pub fn select_ike(
    ours: &[IkeTransforms],
    peer: &SecurityAssociation<'_>,
) -> Option<(u8, IkeTransforms)> {
    for p in peer.proposals() {
        if p.protocol_id != protocol_id::IKE || !p.spi.is_empty() {
            continue;
        }
        let by_type = ByType::of(&p);
        if by_type.unknown_type || !by_type.esn.is_empty() {
            continue;
        }
        if let Some(t) = ours.iter().find(|t| t.accepted_by(&by_type)) {
            return Some((p.proposal_num, *t));
        }
    }
    None
}

/// The initiator's check of the responder's IKE SA payload against what we
/// offered (numbered from 1 in `ours` order).
pub fn check_ike_response(
    ours: &[IkeTransforms],
    sa: &SecurityAssociation<'_>,
) -> Option<IkeTransforms> {
    let mut proposals = sa.proposals();
    let p = proposals.next()?;
    if proposals.next().is_some() || p.protocol_id != protocol_id::IKE {
        return None;
    }
    let offered = ours.get(usize::from(p.proposal_num).checked_sub(1)?)?;
    let by_type = ByType::of(&p);
    let ok = !by_type.unknown_type
        && by_type.esn.is_empty()
        && p.transforms().count() == offered.specs().len()
        && ByType::single(&by_type.encr)?.is_some()
        && ByType::single(&by_type.prf)?.is_some()
        && ByType::single(&by_type.integ)?.is_some() == (offered.integ != IntegId::None)
        && ByType::single(&by_type.ke)?.is_some()
        && offered
            .addke
            .iter()
            .zip(&by_type.addke)
            .all(|(ours, peer)| {
                ByType::single(peer).is_some_and(|one| one.is_some() == ours.is_some())
            })
        && offered.accepted_by(&by_type);
    ok.then_some(*offered)
}

/// What a CHILD_SA applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChildProtocol {
    /// ESP with a suite.
    Esp(EspSuite),
    /// AH with an HMAC.
    Ah(IntegId),
}

impl ChildProtocol {
    /// The protocol of a policy proposal, if this implementation runs it.
    pub fn from_policy(p: &IpsecProposal) -> Option<Self> {
        let [transform] = p.sa_transforms.as_slice() else {
            // AH+ESP bundles: TODO, not negotiated yet.
            return None;
        };
        let hmac = |a: AuthTransform| match a {
            AuthTransform::HmacSha1_96 => Some(IntegId::HmacSha1_96),
            AuthTransform::HmacSha256_128 => Some(IntegId::HmacSha2_256_128),
            AuthTransform::HmacSha384_192 => Some(IntegId::HmacSha2_384_192),
            AuthTransform::HmacSha512_256 => Some(IntegId::HmacSha2_512_256),
            _ => None,
        };
        let cipher = |c: CipherTransform| match c {
            CipherTransform::CbcAes128 => Some((EncrId::AesCbc, 128)),
            CipherTransform::CbcAes256 => Some((EncrId::AesCbc, 256)),
            CipherTransform::GcmAes128 => Some((EncrId::AesGcm16, 128)),
            CipherTransform::GcmAes256 => Some((EncrId::AesGcm16, 256)),
            CipherTransform::ChaCha20Poly1305 => Some((EncrId::ChaCha20Poly1305, 256)),
            CipherTransform::Null => Some((EncrId::Null, 0)),
            _ => None,
        };
        let suite = |encr: (EncrId, u16), integ: IntegId| {
            let s = EspSuite {
                encr: encr.0,
                key_bits: encr.1,
                integ,
            };
            s.validate().is_ok().then_some(Self::Esp(s))
        };
        match transform.canonical() {
            SaTransform::Ah(a) => hmac(a).map(Self::Ah),
            SaTransform::EspAuth(a) | SaTransform::EspAuthFw(a) => match a {
                AuthTransform::GmacAes128 => Some(Self::Esp(EspSuite::AES128_GMAC)),
                AuthTransform::GmacAes256 => Some(Self::Esp(EspSuite::AES256_GMAC)),
                a => suite((EncrId::Null, 0), hmac(a)?),
            },
            // CBC without integrity is refused: the SA layer would need
            // allow_unauthenticated, which policy cannot express safely.
            SaTransform::EspCipher(c) if c.is_aead() => suite(cipher(c)?, IntegId::None),
            SaTransform::EspCipher(_) => None,
            SaTransform::EspAuthAndCipher { auth, cipher: c } if !c.is_aead() => {
                suite(cipher(c)?, hmac(auth)?)
            }
            SaTransform::EspAuthAndCipher { .. } => None,
        }
    }

    fn protocol_id(&self) -> u8 {
        match self {
            Self::Esp(_) => protocol_id::ESP,
            Self::Ah(_) => protocol_id::AH,
        }
    }

    /// Per-direction key lengths for KEYMAT (RFC 7296 §2.17).
    pub fn key_lengths(&self) -> Result<KeyLengths, palisade_crypto::CryptoError> {
        match self {
            Self::Esp(suite) => KeyLengths::for_esp(suite),
            Self::Ah(i) => Ok(KeyLengths {
                encr: 0,
                integ: i.key_len(),
            }),
        }
    }

    fn specs(&self, esn_values: &[u16]) -> Vec<TransformSpec> {
        let mut out = Vec::new();
        let integ = match self {
            Self::Esp(s) => {
                out.push(TransformSpec {
                    transform_type: transform_type::ENCR,
                    transform_id: s.encr.into(),
                    key_length: key_length_attribute(s.encr, s.key_bits),
                });
                s.integ
            }
            Self::Ah(i) => *i,
        };
        if integ != IntegId::None {
            out.push(TransformSpec {
                transform_type: transform_type::INTEG,
                transform_id: integ.into(),
                key_length: None,
            });
        }
        out.extend(esn_values.iter().map(|&v| TransformSpec {
            transform_type: transform_type::ESN,
            transform_id: v,
            key_length: None,
        }));
        out
    }

    fn accepted_by(&self, by_type: &ByType) -> bool {
        let integ = match self {
            Self::Esp(s) => {
                if !by_type
                    .encr
                    .iter()
                    .any(|t| encr_matches(s.encr, s.key_bits, t))
                {
                    return false;
                }
                s.integ
            }
            Self::Ah(i) => {
                if !by_type.encr.is_empty() {
                    return false;
                }
                *i
            }
        };
        if integ == IntegId::None {
            by_type.integ.is_empty() || by_type.has(&by_type.integ, integ::NONE)
        } else {
            by_type.has(&by_type.integ, integ.into())
        }
    }
}

/// Extended Sequence Numbers (RFC 4303 §2.2.1): WFP's policy has no such
/// setting, so it is the endpoint's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EsnPolicy {
    /// 32-bit sequence numbers only.
    Off,
    /// 64-bit extended sequence numbers only.
    On,
    /// Either; offered as ESN first.
    #[default]
    Either,
}

impl EsnPolicy {
    fn values(self) -> &'static [u16] {
        match self {
            Self::Off => &[esn::NO_ESN],
            Self::On => &[esn::ESN],
            Self::Either => &[esn::ESN, esn::NO_ESN],
        }
    }

    /// The first value in the peer's list we allow; a proposal without
    /// ESN transforms is taken as 32-bit sequence numbers.
    fn choose(self, peer: &[TransformSpec]) -> Option<bool> {
        if peer.is_empty() {
            return self.values().contains(&esn::NO_ESN).then_some(false);
        }
        peer.iter()
            .map(|t| t.transform_id)
            .find(|v| self.values().contains(v))
            .map(|v| v == esn::ESN)
    }
}

/// A CHILD_SA proposal of ours: protocol and the policy lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChildOffer {
    /// ESP suite or AH.
    pub protocol: ChildProtocol,
    /// The policy's lifetime (lifetimes are local in IKEv2, never negotiated).
    pub lifetime: SaLifetime,
}

impl ChildOffer {
    /// Our offer from a quick-mode policy's proposals, in order.
    pub fn offer(proposals: &[IpsecProposal]) -> Vec<Self> {
        let mut out: Vec<Self> = Vec::new();
        for p in proposals {
            if let Some(protocol) = ChildProtocol::from_policy(p)
                && !out.iter().any(|o| o.protocol == protocol)
            {
                out.push(Self {
                    protocol,
                    lifetime: p.lifetime,
                });
            }
        }
        out
    }
}

/// The negotiated CHILD_SA transforms and the peer's SPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChildChoice {
    /// Proposal number (the responder echoes the initiator's).
    pub proposal_num: u8,
    /// The peer's inbound SPI: our outbound SPI.
    pub peer_spi: u32,
    /// ESP suite or AH.
    pub protocol: ChildProtocol,
    /// Extended sequence numbers.
    pub esn: bool,
    /// Our policy's lifetime for the chosen proposal.
    pub lifetime: SaLifetime,
}

/// The responder's choice among the peer's CHILD_SA proposals. KE
/// transforms are ignored: the first CHILD_SA takes its keys from the IKE
/// SA's exchange (RFC 7296 §1.2). `None` is NO_PROPOSAL_CHOSEN.
pub fn select_child(
    ours: &[ChildOffer],
    esn_policy: EsnPolicy,
    peer: &SecurityAssociation<'_>,
) -> Option<ChildChoice> {
    for p in peer.proposals() {
        if !matches!(p.protocol_id, protocol_id::ESP | protocol_id::AH) {
            continue;
        }
        let Some(peer_spi) = p.spi_u32() else {
            continue;
        };
        let by_type = ByType::of(&p);
        // CHILD_SAs with additional key exchanges (RFC 9370 §2.2.4) are
        // not negotiated yet: only proposals that allow going without.
        if by_type.unknown_type || !by_type.prf.is_empty() || !by_type.allows_no_addke() {
            continue;
        }
        let Some(esn) = esn_policy.choose(&by_type.esn) else {
            continue;
        };
        if let Some(o) = ours
            .iter()
            .find(|o| o.protocol.protocol_id() == p.protocol_id && o.protocol.accepted_by(&by_type))
        {
            return Some(ChildChoice {
                proposal_num: p.proposal_num,
                peer_spi,
                protocol: o.protocol,
                esn,
                lifetime: o.lifetime,
            });
        }
    }
    None
}

/// The initiator's check of the responder's CHILD_SA answer.
pub fn check_child_response(
    ours: &[ChildOffer],
    esn_policy: EsnPolicy,
    sa: &SecurityAssociation<'_>,
) -> Option<ChildChoice> {
    let mut proposals = sa.proposals();
    let p = proposals.next()?;
    if proposals.next().is_some() {
        return None;
    }
    let offered = ours.get(usize::from(p.proposal_num).checked_sub(1)?)?;
    let by_type = ByType::of(&p);
    let [esn_t] = by_type.esn.as_slice() else {
        return None;
    };
    let esn = esn_policy.choose(std::slice::from_ref(esn_t))?;
    let ok = p.protocol_id == offered.protocol.protocol_id()
        && !by_type.unknown_type
        && by_type.prf.is_empty()
        && by_type.ke.is_empty()
        && by_type.addke.iter().all(Vec::is_empty)
        && ByType::single(&by_type.encr)?.is_some()
            == matches!(offered.protocol, ChildProtocol::Esp(_))
        && ByType::single(&by_type.integ).is_some()
        && offered.protocol.accepted_by(&by_type);
    Some(ChildChoice {
        proposal_num: p.proposal_num,
        peer_spi: p.spi_u32()?,
        protocol: offered.protocol,
        esn,
        lifetime: offered.lifetime,
    })
    .filter(|_| ok)
}

/// One proposal to write, owning what [`ProposalSpec`] borrows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnedProposal {
    pub num: u8,
    pub protocol_id: u8,
    pub spi: Vec<u8>,
    pub transforms: Vec<TransformSpec>,
}

impl OwnedProposal {
    /// Our IKE offer, numbered from 1.
    pub fn ike_offer(ours: &[IkeTransforms]) -> Vec<Self> {
        ours.iter()
            .zip(1u8..)
            .map(|(t, num)| Self::ike(num, t))
            .collect()
    }

    /// One IKE proposal.
    pub fn ike(num: u8, t: &IkeTransforms) -> Self {
        Self {
            num,
            protocol_id: protocol_id::IKE,
            spi: Vec::new(),
            transforms: t.specs(),
        }
    }

    /// Our CHILD_SA offer with our inbound SPI, numbered from 1.
    pub fn child_offer(ours: &[ChildOffer], esn: EsnPolicy, spi: u32) -> Vec<Self> {
        ours.iter()
            .zip(1u8..)
            .map(|(o, num)| Self {
                num,
                protocol_id: o.protocol.protocol_id(),
                spi: spi.to_be_bytes().to_vec(),
                transforms: o.protocol.specs(esn.values()),
            })
            .collect()
    }

    /// The responder's one chosen CHILD_SA proposal with its inbound SPI.
    pub fn child_choice(c: &ChildChoice, spi: u32) -> Self {
        let esn = if c.esn { esn::ESN } else { esn::NO_ESN };
        Self {
            num: c.proposal_num,
            protocol_id: c.protocol.protocol_id(),
            spi: spi.to_be_bytes().to_vec(),
            transforms: c.protocol.specs(&[esn]),
        }
    }
}

/// Appends an SA payload with `proposals`.
pub(crate) fn push_sa(
    b: &mut MessageBuilder<'_>,
    proposals: &[OwnedProposal],
) -> Result<(), WireError> {
    let specs: Vec<ProposalSpec<'_>> = proposals
        .iter()
        .map(|p| ProposalSpec {
            proposal_num: p.num,
            protocol_id: p.protocol_id,
            spi: &p.spi,
            transforms: &p.transforms,
        })
        .collect();
    b.push(
        payload_type::SA,
        false,
        &SecurityAssociationSpec { proposals: &specs },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_filter::policy::DhGroup;

    fn sa_bytes(proposals: &[OwnedProposal]) -> Vec<u8> {
        let mut buf = vec![0u8; 2048];
        let mut b = MessageBuilder::chain(&mut buf);
        push_sa(&mut b, proposals).expect("push");
        let len = b.finish().expect("finish");
        buf.truncate(len);
        // Skip the generic payload header.
        buf.split_off(4)
    }

    fn mm(cipher: IkeCipher, integrity: IkeIntegrity, dh: DhGroup) -> IkeTransforms {
        IkeTransforms::from_policy(&MainModeProposal::new(cipher, integrity, dh))
            .expect("supported")
    }

    fn gcm_x25519() -> IkeTransforms {
        mm(
            IkeCipher::AesGcm128,
            IkeIntegrity::Sha256,
            DhGroup::Curve25519,
        )
    }
    fn cbc_p256() -> IkeTransforms {
        mm(IkeCipher::Aes256, IkeIntegrity::Sha256, DhGroup::Ecp256)
    }
    fn chacha_p384() -> IkeTransforms {
        mm(
            IkeCipher::ChaCha20Poly1305,
            IkeIntegrity::Sha384,
            DhGroup::Ecp384,
        )
    }

    #[test]
    fn policy_proposals_map_to_ikev2_transforms() {
        assert_eq!(
            gcm_x25519(),
            IkeTransforms {
                encr: EncrId::AesGcm16,
                key_bits: 128,
                prf: PrfId::HmacSha2_256,
                integ: IntegId::None,
                ke: KeId::Curve25519,
                addke: [None; ADDKE_TYPES],
            }
        );
        assert_eq!(cbc_p256().integ, IntegId::HmacSha2_256_128);
        for unsupported in [
            MainModeProposal::new(IkeCipher::TripleDes, IkeIntegrity::Sha256, DhGroup::Ecp256),
            MainModeProposal::new(IkeCipher::Aes128, IkeIntegrity::Md5, DhGroup::Ecp256),
            MainModeProposal::new(IkeCipher::Aes128, IkeIntegrity::Sha1, DhGroup::Group2),
        ] {
            assert_eq!(IkeTransforms::from_policy(&unsupported), None);
        }
    }

    #[test]
    fn ecp_521_is_ke_21_on_the_wire_and_selected_from_it() {
        let ours = mm(IkeCipher::AesGcm256, IkeIntegrity::Sha512, DhGroup::Ecp521);
        assert_eq!(ours.ke, KeId::Ecp521);
        assert_eq!(u16::from(ours.ke), 21);
        // The KE transform a peer proposes as 21 is ours, and only ours.
        let mut p = OwnedProposal::ike(1, &ours);
        for t in p.transforms.iter_mut() {
            if t.transform_type == transform_type::KE {
                assert_eq!(t.transform_id, 21);
            }
        }
        let bytes = sa_bytes(&[p.clone()]);
        let peer = SecurityAssociation::parse(&bytes).expect("sa");
        assert_eq!(select_ike(&[ours], &peer), Some((1, ours)));
        for t in p.transforms.iter_mut() {
            if t.transform_type == transform_type::KE {
                t.transform_id = 20;
            }
        }
        let bytes = sa_bytes(&[p]);
        let peer = SecurityAssociation::parse(&bytes).expect("sa");
        assert_eq!(select_ike(&[ours], &peer), None);
    }

    #[test]
    fn additional_key_exchanges_are_offered_chosen_and_checked() {
        use crate::policy::AdditionalKeyExchanges;
        let policy = [MainModeProposal::new(
            IkeCipher::AesGcm128,
            IkeIntegrity::Sha256,
            DhGroup::Curve25519,
        )];
        let optional = AdditionalKeyExchanges {
            methods: vec![KeId::MlKem768],
            required: false,
        };
        let hybrid = IkeTransforms {
            addke: [Some(KeId::MlKem768), None, None, None, None, None, None],
            ..gcm_x25519()
        };
        let offer = IkeTransforms::offer_with_additional(&policy, &optional);
        assert_eq!(offer, [hybrid, gcm_x25519()]);
        let required = AdditionalKeyExchanges {
            required: true,
            ..optional.clone()
        };
        assert_eq!(
            IkeTransforms::offer_with_additional(&policy, &required),
            [hybrid]
        );
        let peer = sa_bytes(&OwnedProposal::ike_offer(&offer));
        let peer = SecurityAssociation::parse(&peer).expect("sa");
        // A hybrid responder takes proposal 1, a classic one proposal 2.
        assert_eq!(select_ike(&[hybrid], &peer), Some((1, hybrid)));
        assert_eq!(select_ike(&[gcm_x25519()], &peer), Some((2, gcm_x25519())));
        // ADDKE1 = {ML-KEM-768, NONE} allows either.
        let mut either = OwnedProposal::ike(1, &hybrid);
        either.transforms.push(TransformSpec {
            transform_type: transform_type::ADDKE1,
            transform_id: 0,
            key_length: None,
        });
        let either = sa_bytes(&[either]);
        let either = SecurityAssociation::parse(&either).expect("sa");
        assert_eq!(
            select_ike(&[gcm_x25519()], &either),
            Some((1, gcm_x25519()))
        );
        assert_eq!(select_ike(&[hybrid], &either), Some((1, hybrid)));
        // A hybrid-only responder refuses a classic offer.
        let classic = sa_bytes(&OwnedProposal::ike_offer(&[gcm_x25519()]));
        let classic = SecurityAssociation::parse(&classic).expect("sa");
        assert_eq!(select_ike(&[hybrid], &classic), None);
        // The initiator accepts exactly what it offered under that number.
        let answer = |p: &[OwnedProposal]| {
            let b = sa_bytes(p);
            check_ike_response(&offer, &SecurityAssociation::parse(&b).expect("sa"))
        };
        assert_eq!(answer(&[OwnedProposal::ike(1, &hybrid)]), Some(hybrid));
        assert_eq!(
            answer(&[OwnedProposal::ike(2, &gcm_x25519())]),
            Some(gcm_x25519())
        );
        assert_eq!(answer(&[OwnedProposal::ike(1, &gcm_x25519())]), None);
        assert_eq!(answer(&[OwnedProposal::ike(2, &hybrid)]), None);
    }

    #[test]
    fn responder_takes_the_first_peer_proposal_it_accepts() {
        let peer = sa_bytes(&OwnedProposal::ike_offer(&[
            chacha_p384(),
            cbc_p256(),
            gcm_x25519(),
        ]));
        let peer = SecurityAssociation::parse(&peer).expect("sa");
        // Our preference order does not matter: the peer's does.
        assert_eq!(
            select_ike(&[gcm_x25519(), cbc_p256()], &peer),
            Some((2, cbc_p256()))
        );
        assert_eq!(select_ike(&[gcm_x25519()], &peer), Some((3, gcm_x25519())));
    }

    #[test]
    fn any_differing_transform_is_no_proposal_chosen() {
        let ours = [cbc_p256()];
        let variants = [
            IkeTransforms {
                key_bits: 128,
                ..cbc_p256()
            },
            IkeTransforms {
                prf: PrfId::HmacSha2_384,
                ..cbc_p256()
            },
            IkeTransforms {
                integ: IntegId::HmacSha1_96,
                ..cbc_p256()
            },
            IkeTransforms {
                ke: KeId::Ecp384,
                ..cbc_p256()
            },
            gcm_x25519(),
        ];
        for v in variants {
            let peer = sa_bytes(&OwnedProposal::ike_offer(&[v]));
            let peer = SecurityAssociation::parse(&peer).expect("sa");
            assert_eq!(select_ike(&ours, &peer), None, "{v:?}");
        }
    }

    #[test]
    fn a_proposal_with_several_transforms_per_type_is_matched_by_any() {
        let mut p = OwnedProposal::ike(1, &cbc_p256());
        p.transforms.insert(
            0,
            TransformSpec {
                transform_type: transform_type::ENCR,
                transform_id: 12,
                key_length: Some(128),
            },
        );
        p.transforms.push(TransformSpec {
            transform_type: transform_type::KE,
            transform_id: 31,
            key_length: None,
        });
        let peer = sa_bytes(&[p]);
        let peer = SecurityAssociation::parse(&peer).expect("sa");
        let ours = [mm(
            IkeCipher::Aes128,
            IkeIntegrity::Sha256,
            DhGroup::Curve25519,
        )];
        assert_eq!(select_ike(&ours, &peer), Some((1, ours[0])));
    }

    #[test]
    fn proposals_with_unknown_transform_types_or_other_protocols_are_skipped() {
        let mut odd = OwnedProposal::ike(1, &cbc_p256());
        odd.transforms.push(TransformSpec {
            transform_type: transform_type::ADDKE1,
            transform_id: 36,
            key_length: None,
        });
        let mut esp = OwnedProposal::ike(2, &cbc_p256());
        esp.protocol_id = protocol_id::ESP;
        esp.spi = vec![1, 2, 3, 4];
        let plain = OwnedProposal::ike(3, &cbc_p256());
        let peer = sa_bytes(&[odd.clone(), esp.clone()]);
        let peer = SecurityAssociation::parse(&peer).expect("sa");
        assert_eq!(select_ike(&[cbc_p256()], &peer), None);
        let peer = sa_bytes(&[odd, esp, plain]);
        let peer = SecurityAssociation::parse(&peer).expect("sa");
        assert_eq!(select_ike(&[cbc_p256()], &peer), Some((3, cbc_p256())));
    }

    #[test]
    fn initiator_accepts_only_one_offered_proposal_under_its_number() {
        let ours = [gcm_x25519(), cbc_p256()];
        let answer = |p: &[OwnedProposal]| {
            let b = sa_bytes(p);
            check_ike_response(&ours, &SecurityAssociation::parse(&b).expect("sa"))
        };
        assert_eq!(
            answer(&[OwnedProposal::ike(2, &cbc_p256())]),
            Some(cbc_p256())
        );
        assert_eq!(
            answer(&[OwnedProposal::ike(1, &cbc_p256())]),
            None,
            "wrong number"
        );
        assert_eq!(
            answer(&[OwnedProposal::ike(3, &cbc_p256())]),
            None,
            "never offered"
        );
        assert_eq!(
            answer(&[OwnedProposal::ike(1, &chacha_p384())]),
            None,
            "never offered"
        );
        assert_eq!(
            answer(&OwnedProposal::ike_offer(&ours)),
            None,
            "two proposals"
        );
        let mut two_ke = OwnedProposal::ike(2, &cbc_p256());
        two_ke.transforms.push(TransformSpec {
            transform_type: transform_type::KE,
            transform_id: 31,
            key_length: None,
        });
        assert_eq!(answer(&[two_ke]), None, "two KE transforms");
    }

    fn esp(s: EspSuite) -> ChildOffer {
        ChildOffer {
            protocol: ChildProtocol::Esp(s),
            lifetime: SaLifetime::default(),
        }
    }

    #[test]
    fn ipsec_policy_proposals_map_to_child_protocols() {
        assert_eq!(
            ChildProtocol::from_policy(&IpsecProposal::esp_aes128_gcm()),
            Some(ChildProtocol::Esp(EspSuite::AES128_GCM16))
        );
        assert_eq!(
            ChildProtocol::from_policy(&IpsecProposal::esp_aes128_cbc_sha256()),
            Some(ChildProtocol::Esp(EspSuite::AES128_CBC_SHA256_128))
        );
        assert_eq!(
            ChildProtocol::from_policy(&IpsecProposal::ah_sha256()),
            Some(ChildProtocol::Ah(IntegId::HmacSha2_256_128))
        );
        assert_eq!(
            ChildProtocol::from_policy(&IpsecProposal::esp_auth_sha256()),
            Some(ChildProtocol::Esp(EspSuite::NULL_SHA256_128))
        );
        // WFP's GCM spelling means the same as the AEAD alone.
        let wfp_gcm = IpsecProposal::new(SaTransform::EspAuthAndCipher {
            auth: AuthTransform::GmacAes128,
            cipher: CipherTransform::GcmAes128,
        });
        assert_eq!(
            ChildProtocol::from_policy(&wfp_gcm),
            Some(ChildProtocol::Esp(EspSuite::AES128_GCM16))
        );
        let cbc_alone = IpsecProposal::new(SaTransform::EspCipher(CipherTransform::CbcAes128));
        assert_eq!(ChildProtocol::from_policy(&cbc_alone), None);
        let mut bundle = IpsecProposal::ah_sha1();
        bundle
            .sa_transforms
            .push(SaTransform::EspCipher(CipherTransform::GcmAes128));
        assert_eq!(ChildProtocol::from_policy(&bundle), None);
    }

    #[test]
    fn child_selection_honours_esn_policy() {
        let ours = [esp(EspSuite::AES128_GCM16)];
        for (offered, ours_esn, expected) in [
            (EsnPolicy::Either, EsnPolicy::Either, Some(true)),
            (EsnPolicy::Either, EsnPolicy::Off, Some(false)),
            (EsnPolicy::Off, EsnPolicy::Either, Some(false)),
            (EsnPolicy::Off, EsnPolicy::On, None),
            (EsnPolicy::On, EsnPolicy::Off, None),
        ] {
            let b = sa_bytes(&OwnedProposal::child_offer(&ours, offered, 0x1234_5678));
            let sa = SecurityAssociation::parse(&b).expect("sa");
            let choice = select_child(&ours, ours_esn, &sa);
            assert_eq!(
                choice.map(|c| c.esn),
                expected,
                "{offered:?} vs {ours_esn:?}"
            );
            if let Some(c) = choice {
                assert_eq!(c.peer_spi, 0x1234_5678);
            }
        }
    }

    #[test]
    fn child_selection_matches_protocol_suite_and_ignores_ke() {
        let offer = [
            esp(EspSuite::AES256_GCM16),
            esp(EspSuite::AES256_CBC_SHA256_128),
            ChildOffer {
                protocol: ChildProtocol::Ah(IntegId::HmacSha2_256_128),
                lifetime: SaLifetime::default(),
            },
        ];
        let mut props = OwnedProposal::child_offer(&offer, EsnPolicy::Off, 0x1000);
        props[1].transforms.push(TransformSpec {
            transform_type: transform_type::KE,
            transform_id: 19,
            key_length: None,
        });
        let b = sa_bytes(&props);
        let sa = SecurityAssociation::parse(&b).expect("sa");
        let c = select_child(&[offer[1]], EsnPolicy::Either, &sa).expect("cbc");
        assert_eq!((c.proposal_num, c.protocol), (2, offer[1].protocol));
        let c = select_child(&[offer[2]], EsnPolicy::Either, &sa).expect("ah");
        assert_eq!((c.proposal_num, c.protocol), (3, offer[2].protocol));
        assert_eq!(
            select_child(&[esp(EspSuite::AES128_GCM16)], EsnPolicy::Either, &sa),
            None
        );
        assert_eq!(
            select_child(&[esp(EspSuite::CHACHA20_POLY1305)], EsnPolicy::Either, &sa),
            None
        );
    }

    #[test]
    fn initiator_checks_the_child_answer() {
        let ours = [
            esp(EspSuite::AES128_GCM16),
            esp(EspSuite::CHACHA20_POLY1305),
        ];
        let answer = |p: OwnedProposal| {
            let b = sa_bytes(&[p]);
            check_child_response(
                &ours,
                EsnPolicy::Either,
                &SecurityAssociation::parse(&b).expect("sa"),
            )
        };
        let good = ChildChoice {
            proposal_num: 2,
            peer_spi: 0xABCD,
            protocol: ours[1].protocol,
            esn: false,
            lifetime: SaLifetime::default(),
        };
        assert_eq!(
            answer(OwnedProposal::child_choice(&good, 0xABCD)),
            Some(good)
        );
        let wrong_num = ChildChoice {
            proposal_num: 1,
            ..good
        };
        assert_eq!(
            answer(OwnedProposal::child_choice(&wrong_num, 0xABCD)),
            None
        );
        let mut both_esn = OwnedProposal::child_choice(&good, 0xABCD);
        both_esn.transforms.push(TransformSpec {
            transform_type: transform_type::ESN,
            transform_id: 1,
            key_length: None,
        });
        assert_eq!(answer(both_esn), None);
        let mut short_spi = OwnedProposal::child_choice(&good, 0xABCD);
        short_spi.spi = vec![1, 2];
        assert_eq!(answer(short_spi), None);
    }
}
