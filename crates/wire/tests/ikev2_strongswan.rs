//! IKE_SA_INIT on the wire against strongSwan: Palisade's builder writes the request, a
//! UDP socket in one network namespace sends it to charon in another, and Palisade's
//! parser reads what charon answers. No state machine is involved: this checks the wire
//! formats (and, with palisade-crypto, the key schedule) against an independent
//! implementation, and proves the namespace harness the IKE tests build on.
//!
//! Needs root and strongSwan (charon-systemd, swanctl; scripts/lib/deps.sh installs them).
//! Not root, or PALISADE_SKIP_STRONGSWAN=1: skipped with a printed reason. strongSwan
//! missing: a failure.

#[path = "../../../tests/support/netns.rs"]
mod netns;
#[path = "../../../tests/support/strongswan.rs"]
mod strongswan;

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use netns::VethPair;
use palisade_crypto::ikev2_kdf::{IkeSaKeys, KeyLengths, skeyseed};
use palisade_crypto::key_exchange::KeyExchange as KeyPair;
use palisade_crypto::{EncrId, IntegId, KeId, Prf, PrfId};
use palisade_wire::ikev2::*;
use strongswan::{Charon, Config};

const IKE_PORT: u16 = 500;
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(5);
const PSK: &str = "palisade-psk-0123456789";

// IANA values that no Palisade proposal will ever use, so palisade-wire does not name
// them; here they make a proposal strongSwan must refuse.
const PRF_HMAC_MD5: u16 = 1;
const AUTH_HMAC_MD5_96: u16 = 1;
const MODP_768: u16 = 1;

/// The namespaces, or `None` when the test is skipped.
fn lab(test: &str) -> Option<VethPair> {
    if !strongswan::available_or_skip(test) {
        return None;
    }
    Some(VethPair::new().expect("create namespaces and veth pair"))
}

/// charon in `b` as the responder, with one P-256 and one Curve25519 IKE proposal.
fn start_responder(pair: &VethPair) -> Charon<'_> {
    let mut config = Config::psk(VethPair::ADDR_B.into(), VethPair::ADDR_A.into(), PSK);
    config.proposals = "aes128gcm16-prfsha256-ecp256,aes128gcm16-prfsha256-x25519".into();
    // Level 4 makes charon log the IKE SA keys it derives.
    config.log_level = 4;
    Charon::start(&pair.b, &config).expect("start charon")
}

fn transform(transform_type: u8, transform_id: u16, key_length: Option<u16>) -> TransformSpec {
    TransformSpec {
        transform_type,
        transform_id,
        key_length,
    }
}

/// ENCR_AES_GCM_16 with a 128-bit key, PRF_HMAC_SHA2_256 and the KE method `group`.
fn aes_gcm_proposal(group: u16) -> [TransformSpec; 3] {
    [
        transform(transform_type::ENCR, encr::ENCR_AES_GCM_16, Some(128)),
        transform(transform_type::PRF, prf::PRF_HMAC_SHA2_256, None),
        transform(transform_type::KE, group, None),
    ]
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b).expect("random bytes");
    b
}

/// The NAT_DETECTION_*_IP data: SHA-1(SPIi | SPIr | IP | port) (RFC 7296 §2.23).
fn natd_hash(spi_i: u64, spi_r: u64, addr: SocketAddrV4) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&spi_i.to_be_bytes());
    ctx.update(&spi_r.to_be_bytes());
    ctx.update(&addr.ip().octets());
    ctx.update(&addr.port().to_be_bytes());
    ctx.finish().as_ref().to_vec()
}

/// What an IKE_SA_INIT request carries, apart from the addresses.
struct Request<'a> {
    spi_i: u64,
    transforms: &'a [TransformSpec],
    ke_group: u16,
    ke_data: &'a [u8],
    nonce: &'a [u8],
}

/// The initiator's end: a socket on `a`'s address, port 500, inside `a`.
struct Initiator {
    socket: UdpSocket,
    local: SocketAddrV4,
    peer: SocketAddrV4,
}

impl Initiator {
    fn new(pair: &VethPair) -> Self {
        let local = SocketAddrV4::new(VethPair::ADDR_A, IKE_PORT);
        let socket = pair
            .a
            .udp_socket(local.into())
            .expect("bind the initiator's socket in namespace a");
        socket
            .set_read_timeout(Some(RECEIVE_TIMEOUT))
            .expect("set timeout");
        Self {
            socket,
            local,
            peer: SocketAddrV4::new(VethPair::ADDR_B, IKE_PORT),
        }
    }

    /// HDR, SAi1, KEi, Ni, N(NAT_DETECTION_SOURCE_IP), N(NAT_DETECTION_DESTINATION_IP).
    fn ike_sa_init(&self, r: &Request<'_>) -> Vec<u8> {
        let header = IkeHeader {
            initiator_spi: r.spi_i,
            responder_spi: 0,
            next_payload: 0,
            major_version: IKE_MAJOR_VERSION,
            minor_version: 0,
            exchange_type: exchange_type::IKE_SA_INIT,
            flags: flags::INITIATOR,
            message_id: 0,
            length: 0,
        };
        let proposals = [ProposalSpec {
            proposal_num: 1,
            protocol_id: protocol_id::IKE,
            spi: &[],
            transforms: r.transforms,
        }];
        let natd_source = natd_hash(r.spi_i, 0, self.local);
        let natd_destination = natd_hash(r.spi_i, 0, self.peer);
        let mut buf = vec![0u8; 1024];
        let mut b = MessageBuilder::new(&mut buf, &header).expect("header");
        let sa = SecurityAssociationSpec {
            proposals: &proposals,
        };
        b.push(payload_type::SA, false, &sa).expect("SA");
        let ke = KeyExchange {
            dh_group: r.ke_group,
            data: r.ke_data,
        };
        b.push(payload_type::KE, false, &ke).expect("KE");
        b.push(payload_type::NONCE, false, &Nonce { data: r.nonce })
            .expect("Nonce");
        for (kind, data) in [
            (notify_type::NAT_DETECTION_SOURCE_IP, &natd_source),
            (notify_type::NAT_DETECTION_DESTINATION_IP, &natd_destination),
        ] {
            b.push(payload_type::N, false, &Notify::new(kind, data))
                .expect("Notify");
        }
        let len = b.finish().expect("finish");
        buf.truncate(len);
        buf
    }

    /// HDR(IKE_AUTH, message 1), SK{noise}: an SK payload of the right shape for
    /// AES-GCM-16 (8-byte IV, one 16-byte block, 16-byte ICV) that decrypts to nothing.
    fn ike_auth_noise(&self, spi_i: u64, spi_r: u64) -> Vec<u8> {
        let header = IkeHeader {
            initiator_spi: spi_i,
            responder_spi: spi_r,
            next_payload: 0,
            major_version: IKE_MAJOR_VERSION,
            minor_version: 0,
            exchange_type: exchange_type::IKE_AUTH,
            flags: flags::INITIATOR,
            message_id: 1,
            length: 0,
        };
        let mut buf = vec![0u8; 256];
        let mut b = MessageBuilder::new(&mut buf, &header).expect("header");
        let body = b
            .push_encrypted(payload_type::SK, payload_type::IDI, 8 + 16 + 16)
            .expect("SK");
        let len = b.finish().expect("finish");
        let noise: [u8; 40] = random();
        buf.get_mut(body).expect("SK body").copy_from_slice(&noise);
        buf.truncate(len);
        buf
    }

    /// Sends `request` and returns charon's answer; after a silent timeout the request
    /// is sent once more, as an initiator would retransmit it.
    fn exchange(&self, request: &[u8], charon: &Charon<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; 4096];
        for _attempt in 0..2 {
            self.socket
                .send_to(request, self.peer)
                .expect("send IKE_SA_INIT");
            loop {
                match self.socket.recv_from(&mut buf) {
                    Ok((n, from)) if from == SocketAddr::V4(self.peer) => {
                        buf.truncate(n);
                        return buf;
                    }
                    Ok((_, from)) => eprintln!("ignoring a datagram from {from}"),
                    Err(e) if is_timeout(&e) => break,
                    Err(e) => panic!("receive: {e}"),
                }
            }
        }
        panic!(
            "no answer from charon after two tries of {RECEIVE_TIMEOUT:?}; its log:\n{}",
            charon.log()
        );
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// An IKE_SA_INIT response taken apart with Palisade's parser.
struct Response<'a> {
    header: IkeHeader,
    sa: Option<SecurityAssociation<'a>>,
    ke: Option<KeyExchange<'a>>,
    nonce: Option<Nonce<'a>>,
    notifies: Vec<Notify<'a>>,
}

impl<'a> Response<'a> {
    fn parse(msg: &'a [u8]) -> Self {
        let header = IkeHeader::parse(msg).expect("IKE header");
        let mut r = Self {
            header,
            sa: None,
            ke: None,
            nonce: None,
            notifies: Vec::new(),
        };
        for p in header.payloads(msg) {
            let p = p.expect("payload chain");
            match p.payload_type {
                payload_type::SA => {
                    assert!(r.sa.is_none(), "two SA payloads");
                    r.sa = Some(SecurityAssociation::parse(p.body).expect("SA payload"));
                }
                payload_type::KE => {
                    assert!(r.ke.is_none(), "two KE payloads");
                    r.ke = Some(KeyExchange::parse(p.body).expect("KE payload"));
                }
                payload_type::NONCE => {
                    assert!(r.nonce.is_none(), "two Nonce payloads");
                    r.nonce = Some(Nonce::parse(p.body).expect("Nonce payload"));
                }
                payload_type::N => r.notifies.push(Notify::parse(p.body).expect("Notify")),
                // Vendor IDs, CERTREQ: not what these tests look at.
                _ => {}
            }
        }
        r
    }

    fn notify(&self, kind: u16) -> Option<&Notify<'a>> {
        self.notifies.iter().find(|n| n.notify_type == kind)
    }

    /// The checks every answer to our IKE_SA_INIT passes, whatever it says.
    fn assert_answers(&self, spi_i: u64) {
        assert_eq!(self.header.exchange_type, exchange_type::IKE_SA_INIT);
        assert!(self.header.is_response(), "Response flag");
        assert!(
            !self.header.is_initiator(),
            "Initiator flag on a responder's message"
        );
        assert_eq!(self.header.initiator_spi, spi_i, "our SPI echoed");
        assert_eq!(self.header.message_id, 0);
    }

    /// The single error notification of a refusal, with nothing negotiated.
    fn assert_refused_with(&self, kind: u16) -> &Notify<'a> {
        assert!(
            self.sa.is_none() && self.ke.is_none() && self.nonce.is_none(),
            "a refusal carries no SA, KE or Nonce"
        );
        let errors: Vec<u16> = self
            .notifies
            .iter()
            .map(|n| n.notify_type)
            .filter(|&t| notify_type::is_error(t))
            .collect();
        assert_eq!(errors, [kind], "error notifications");
        self.notify(kind).expect("the error notification")
    }
}

/// Transforms in a canonical order: RFC 7296 does not fix their order within a proposal.
fn sorted(mut t: Vec<TransformSpec>) -> Vec<TransformSpec> {
    t.sort_by_key(|t| (t.transform_type, t.transform_id, t.key_length));
    t
}

/// Our side of an accepted IKE_SA_INIT: the key pair, SPI and nonce we sent, and
/// charon's answer.
struct Offer {
    key_pair: KeyPair,
    spi_i: u64,
    ni: [u8; 32],
    transforms: [TransformSpec; 3],
    answer: Vec<u8>,
}

/// Offers AES-GCM-16/128, PRF_HMAC_SHA2_256 and ECP-256 with a P-256 KE payload.
fn offer_p256(initiator: &Initiator, charon: &Charon<'_>) -> Offer {
    let key_pair = KeyPair::generate(KeId::Ecp256).expect("P-256 key pair");
    let spi_i = u64::from_be_bytes(random());
    let ni: [u8; 32] = random();
    let transforms = aes_gcm_proposal(ke_method::ECP_256);
    let request = initiator.ike_sa_init(&Request {
        spi_i,
        transforms: &transforms,
        ke_group: ke_method::ECP_256,
        ke_data: key_pair.public_value(),
        nonce: &ni,
    });
    let answer = initiator.exchange(&request, charon);
    Offer {
        key_pair,
        spi_i,
        ni,
        transforms,
        answer,
    }
}

#[test]
fn ike_sa_init_accepted_by_strongswan() {
    let Some(pair) = lab("ike_sa_init_accepted_by_strongswan") else {
        return;
    };
    let charon = start_responder(&pair);
    let initiator = Initiator::new(&pair);

    let offer = offer_p256(&initiator, &charon);
    let spi_i = offer.spi_i;
    let r = Response::parse(&offer.answer);

    r.assert_answers(spi_i);
    let spi_r = r.header.responder_spi;
    assert_ne!(spi_r, 0, "responder SPI");
    assert!(
        r.notifies
            .iter()
            .all(|n| !notify_type::is_error(n.notify_type))
    );

    let sa = r.sa.expect("SA payload");
    let proposals: Vec<Proposal<'_>> = sa.proposals().collect();
    assert_eq!(proposals.len(), 1, "exactly one proposal chosen");
    let chosen = proposals.first().expect("proposal");
    assert_eq!(chosen.proposal_num, 1, "the number of the proposal we sent");
    assert_eq!(chosen.protocol_id, protocol_id::IKE);
    assert!(
        chosen.spi.is_empty(),
        "no SPI in an initial IKE_SA_INIT proposal"
    );
    let got: Vec<TransformSpec> = chosen
        .transforms()
        .map(|t| t.to_spec().expect("transform without odd attributes"))
        .collect();
    assert_eq!(sorted(got), sorted(offer.transforms.to_vec()));

    let ke = r.ke.expect("KE payload");
    assert_eq!(ke.dh_group, ke_method::ECP_256);
    assert_eq!(ke.data.len(), 64, "P-256 x | y");
    // Only a point on the curve gives a shared secret.
    offer
        .key_pair
        .shared_secret(ke.data)
        .expect("charon's KE is a P-256 point");
    assert!(r.nonce.is_some(), "Nonce payload");

    // charon hashed our address and port with both SPIs exactly as we would. (Its own
    // NAT_DETECTION_SOURCE_IP is faked on purpose: kernel-libipsec needs UDP
    // encapsulation, so charon pretends to be behind a NAT.)
    let natd = r
        .notify(notify_type::NAT_DETECTION_DESTINATION_IP)
        .expect("NAT_DETECTION_DESTINATION_IP");
    assert_eq!(
        natd.data,
        natd_hash(spi_i, spi_r, initiator.local).as_slice()
    );
    assert!(r.notify(notify_type::NAT_DETECTION_SOURCE_IP).is_some());

    // charon keeps the half-open IKE SA under the SPIs we saw on the wire.
    let sas = charon.list_sas().expect("swanctl --list-sas");
    assert!(
        sas.contains(&format!("initiator-spi={spi_i:016x}"))
            && sas.contains(&format!("responder-spi={spi_r:016x}")),
        "charon's SAs: {sas}"
    );
}

#[test]
fn ike_sa_init_keys_match_strongswans() {
    let Some(pair) = lab("ike_sa_init_keys_match_strongswans") else {
        return;
    };
    let charon = start_responder(&pair);
    let initiator = Initiator::new(&pair);

    let offer = offer_p256(&initiator, &charon);
    let spi_i = offer.spi_i;
    let r = Response::parse(&offer.answer);
    r.assert_answers(spi_i);
    let ke = r.ke.expect("KE payload");
    let nr = r.nonce.expect("Nonce payload").data;

    let ni = &offer.ni;
    let g_ir = offer.key_pair.shared_secret(ke.data).expect("g^ir");
    let prf = Prf::new(PrfId::HmacSha2_256);
    let seed = skeyseed(prf, ni, nr, g_ir.as_ref());
    let lengths = KeyLengths::new(EncrId::AesGcm16, 128, IntegId::None).expect("lengths");
    let keys = IkeSaKeys::derive(
        prf,
        seed.as_ref(),
        lengths,
        ni,
        nr,
        spi_i.to_be_bytes(),
        r.header.responder_spi.to_be_bytes(),
    )
    .expect("IKE SA keys");

    // charon (5.9) derives the IKE SA keys only when the next request arrives, so send
    // an IKE_AUTH whose SK payload is noise: charon derives and logs the keys (level 4),
    // then drops the message because its ICV does not verify.
    let probe = initiator.ike_auth_noise(spi_i, r.header.responder_spi);
    initiator
        .socket
        .send_to(&probe, initiator.peer)
        .expect("send IKE_AUTH");
    // SK_pr is logged last; a dump still being written reads as absent.
    let deadline = Instant::now() + RECEIVE_TIMEOUT;
    while charon.logged_bytes("Sk_pr secret").is_none() {
        assert!(Instant::now() < deadline, "charon logged no IKE SA keys");
        std::thread::sleep(Duration::from_millis(20));
    }

    // charon logs each key it derived at level 4; it must have derived the same ones.
    for (label, ours) in [
        ("Sk_d secret", keys.sk_d()),
        ("Sk_ei secret", keys.sk_ei()),
        ("Sk_er secret", keys.sk_er()),
        ("Sk_pi secret", keys.sk_pi()),
        ("Sk_pr secret", keys.sk_pr()),
    ] {
        let theirs = charon
            .logged_bytes(label)
            .unwrap_or_else(|| panic!("charon logged no {label}"));
        assert_eq!(ours, theirs.as_slice(), "{label}");
    }
    assert_eq!(keys.sk_ei().len(), 20, "AES-128 key and GCM salt");
    assert!(
        keys.sk_ai().is_empty() && keys.sk_ar().is_empty(),
        "AEAD: no SK_a"
    );
}

#[test]
fn wrong_ke_group_gets_invalid_ke_payload() {
    let Some(pair) = lab("wrong_ke_group_gets_invalid_ke_payload") else {
        return;
    };
    let charon = start_responder(&pair);
    let initiator = Initiator::new(&pair);

    // The SA offers only Curve25519, but the KE payload is for P-256.
    let ours = KeyPair::generate(KeId::Ecp256).expect("P-256 key pair");
    let spi_i = u64::from_be_bytes(random());
    let ni: [u8; 32] = random();
    let request = initiator.ike_sa_init(&Request {
        spi_i,
        transforms: &aes_gcm_proposal(ke_method::CURVE25519),
        ke_group: ke_method::ECP_256,
        ke_data: ours.public_value(),
        nonce: &ni,
    });
    let answer = initiator.exchange(&request, &charon);
    let r = Response::parse(&answer);

    r.assert_answers(spi_i);
    let n = r.assert_refused_with(notify_type::INVALID_KE_PAYLOAD);
    assert_eq!(n.invalid_ke_group(), Some(ke_method::CURVE25519));
    assert_eq!(n.protocol_id, 0);
    assert!(n.spi.is_empty());
}

#[test]
fn unacceptable_proposal_gets_no_proposal_chosen() {
    let Some(pair) = lab("unacceptable_proposal_gets_no_proposal_chosen") else {
        return;
    };
    let charon = start_responder(&pair);
    let initiator = Initiator::new(&pair);

    let transforms = [
        transform(transform_type::ENCR, encr::ENCR_AES_CBC, Some(128)),
        transform(transform_type::PRF, PRF_HMAC_MD5, None),
        transform(transform_type::INTEG, AUTH_HMAC_MD5_96, None),
        transform(transform_type::KE, MODP_768, None),
    ];
    // charon refuses the proposal before it looks at the key exchange data, so a
    // 768-bit value of the right length stands in for a real MODP-768 public value.
    let ke_data = [0x5a; 96];
    let spi_i = u64::from_be_bytes(random());
    let ni: [u8; 32] = random();
    let request = initiator.ike_sa_init(&Request {
        spi_i,
        transforms: &transforms,
        ke_group: MODP_768,
        ke_data: &ke_data,
        nonce: &ni,
    });
    let answer = initiator.exchange(&request, &charon);
    let r = Response::parse(&answer);

    r.assert_answers(spi_i);
    let n = r.assert_refused_with(notify_type::NO_PROPOSAL_CHOSEN);
    assert!(n.data.is_empty(), "NO_PROPOSAL_CHOSEN carries no data");
}
