//! Feeds arbitrary bytes to every IKEv2 parser in palisade-wire: the IKE
//! header and payload chain, each payload body view, and the SK/SKF
//! framing. Any panic is a bug: these parsers see unauthenticated datagrams
//! from anyone on UDP 500/4500. What parses is re-emitted and must parse
//! back to the same values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_wire::ikev2::sk::{strip_padding, write_padding};
use palisade_wire::ikev2::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = IkeHeader::parse(data) {
        let mut out = [0u8; IKE_HEADER_LEN];
        h.write(&mut out).expect("header re-emits");
        assert_eq!(IkeHeader::parse_unchecked(&out), Ok(h));
        chain(
            h.next_payload,
            data.get(IKE_HEADER_LEN..).unwrap_or_default(),
        );
    }
    // A bare chain (the plaintext of SK): first byte is the first type.
    if let Some((&first, rest)) = data.split_first() {
        chain(first, rest);
        body(first, rest);
    }
    for kind in [33u8, 34, 35, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 53] {
        body(kind, data);
    }
    if let Ok(inner) = strip_padding(data) {
        assert!(inner.len() < data.len());
    }
});

/// Walks a chain and, when it is valid, rebuilds it with the builder from
/// the raw bodies and checks the bytes come out the same (up to the
/// reserved flag bits, which the builder writes as zero).
fn chain(first: u8, buf: &[u8]) {
    let mut payloads = Vec::new();
    let mut ok = true;
    for p in Payloads::new(first, buf) {
        match p {
            Ok(p) => {
                body(p.payload_type, p.body);
                payloads.push(p);
            }
            Err(_) => {
                ok = false;
                break;
            }
        }
    }
    if !ok {
        return;
    }
    let mut out = vec![0u8; buf.len()];
    let mut b = MessageBuilder::chain(&mut out);
    // The encrypted body is filled after `finish`, as the crypto layer
    // would: it is always last.
    let mut sealed = None;
    for p in &payloads {
        if payload_type::is_encrypted(p.payload_type) {
            let r = b
                .push_encrypted(p.payload_type, p.next_payload, p.body.len())
                .expect("encrypted re-emits");
            sealed = Some((r, p.body));
        } else {
            b.push(p.payload_type, p.critical, p.body)
                .expect("payload re-emits");
        }
    }
    let len = b.finish().expect("finish");
    assert_eq!(len, buf.len());
    if let Some((r, sk)) = sealed {
        out[r].copy_from_slice(sk);
    }
    let again: Vec<_> = Payloads::new(first, &out[..len])
        .collect::<Result<_, _>>()
        .expect("rebuilt chain parses");
    // push_encrypted always writes the critical bit clear, which RFC 7296
    // §3.2 allows for a type every receiver understands.
    let expected: Vec<Payload<'_>> = payloads
        .iter()
        .map(|p| Payload {
            critical: p.critical && !payload_type::is_encrypted(p.payload_type),
            ..*p
        })
        .collect();
    assert_eq!(again, expected);
}

fn body(kind: u8, body: &[u8]) {
    let mut out = vec![0u8; body.len() + 16];
    match kind {
        payload_type::SA => {
            let Ok(sa) = SecurityAssociation::parse(body) else {
                return;
            };
            let props: Vec<_> = sa.proposals().collect();
            assert!(!props.is_empty());
            let specs: Option<Vec<Vec<TransformSpec>>> = props
                .iter()
                .map(|p| {
                    assert_eq!(p.transforms().count(), usize::from(p.num_transforms));
                    p.transforms().map(|t| t.to_spec()).collect()
                })
                .collect();
            let Some(specs) = specs else { return };
            let ps: Vec<ProposalSpec<'_>> = props
                .iter()
                .zip(&specs)
                .map(|(p, t)| ProposalSpec {
                    proposal_num: p.proposal_num,
                    protocol_id: p.protocol_id,
                    spi: p.spi,
                    transforms: t,
                })
                .collect();
            let spec = SecurityAssociationSpec { proposals: &ps };
            let n = spec.write_body(&mut out).expect("sa re-emits");
            let again = SecurityAssociation::parse(&out[..n]).expect("sa reparses");
            let again: Vec<_> = again.proposals().collect();
            assert_eq!(again.len(), props.len());
            for (a, p) in again.iter().zip(&props) {
                assert_eq!(
                    (a.proposal_num, a.protocol_id, a.spi),
                    (p.proposal_num, p.protocol_id, p.spi)
                );
                assert!(
                    a.transforms()
                        .map(|t| t.to_spec())
                        .eq(p.transforms().map(|t| t.to_spec()))
                );
            }
        }
        payload_type::KE => {
            let Ok(v) = KeyExchange::parse(body) else {
                return;
            };
            let n = v.write_body(&mut out).expect("re-emit");
            assert_eq!(KeyExchange::parse(&out[..n]), Ok(v));
        }
        payload_type::IDI | payload_type::IDR => {
            let Ok(v) = Identification::parse(body) else {
                return;
            };
            let _ = (v.ipv4(), v.ipv6());
            let n = v.write_body(&mut out).expect("re-emit");
            assert_eq!(Identification::parse(&out[..n]), Ok(v));
        }
        payload_type::CERT => {
            let Ok(v) = Certificate::parse(body) else {
                return;
            };
            let n = v.write_body(&mut out).expect("re-emit");
            assert_eq!(Certificate::parse(&out[..n]), Ok(v));
        }
        payload_type::CERTREQ => {
            let Ok(v) = CertificateRequest::parse(body) else {
                return;
            };
            let _ = v.ca_hashes().map(Iterator::count);
            let n = v.write_body(&mut out).expect("re-emit");
            assert_eq!(CertificateRequest::parse(&out[..n]), Ok(v));
        }
        payload_type::AUTH => {
            let Ok(v) = Auth::parse(body) else { return };
            let n = v.write_body(&mut out).expect("re-emit");
            assert_eq!(Auth::parse(&out[..n]), Ok(v));
        }
        payload_type::NONCE => {
            let Ok(v) = Nonce::parse(body) else { return };
            let n = v.write_body(&mut out).expect("re-emit");
            assert_eq!(Nonce::parse(&out[..n]), Ok(v));
        }
        payload_type::N => {
            let Ok(v) = Notify::parse(body) else { return };
            let _ = (
                v.spi_u32(),
                v.invalid_ke_group(),
                v.hash_algorithms().count(),
            );
            let n = v.write_body(&mut out).expect("re-emit");
            assert_eq!(Notify::parse(&out[..n]), Ok(v));
        }
        payload_type::D => {
            let Ok(v) = Delete::parse(body) else { return };
            assert_eq!(v.spis().count(), v.num_spis());
            let _ = v.spis_u32().count();
            let n = v.write_body(&mut out).expect("re-emit");
            assert_eq!(Delete::parse(&out[..n]), Ok(v));
        }
        payload_type::V => {
            let Ok(v) = VendorId::parse(body) else { return };
            let n = v.write_body(&mut out).expect("re-emit");
            assert_eq!(VendorId::parse(&out[..n]), Ok(v));
        }
        payload_type::TSI | payload_type::TSR => {
            let Ok(v) = TrafficSelectors::parse(body) else {
                return;
            };
            let sel: Vec<_> = v.selectors().collect();
            assert_eq!(sel.len(), usize::from(v.count));
            let spec = TrafficSelectorsSpec { selectors: &sel };
            let n = spec.write_body(&mut out).expect("ts re-emits");
            let again = TrafficSelectors::parse(&out[..n]).expect("ts reparses");
            assert!(again.selectors().eq(sel.iter().copied()));
        }
        payload_type::SK => {
            for (iv, icv) in [(0, 16), (8, 16), (16, 12), (16, 32)] {
                if let Ok(e) = Encrypted::split(body, iv, icv) {
                    assert_eq!(e.iv.len() + e.ciphertext.len() + e.icv.len(), body.len());
                    let _ = strip_padding(e.ciphertext);
                }
            }
        }
        payload_type::SKF => {
            let Ok(f) = EncryptedFragment::parse(body, 8, 16) else {
                return;
            };
            assert!(f.fragment_number >= 1 && f.fragment_number <= f.total_fragments);
            EncryptedFragment::write_prefix(&mut out, f.fragment_number, f.total_fragments)
                .expect("prefix re-emits");
            assert_eq!(out.get(..4), body.get(..4));
        }
        payload_type::CP => {
            let Ok(v) = Configuration::parse(body) else {
                return;
            };
            let attrs: Vec<_> = v.attributes().collect();
            let spec = ConfigurationSpec {
                cfg_type: v.cfg_type,
                attributes: &attrs,
            };
            let n = spec.write_body(&mut out).expect("cp re-emits");
            let again = Configuration::parse(&out[..n]).expect("cp reparses");
            assert!(again.attributes().eq(attrs.iter().copied()));
        }
        _ => {
            if let Some(&pad) = body.first() {
                let mut p = vec![0u8; usize::from(pad) + 1];
                write_padding(&mut p, pad).expect("padding fits");
                assert_eq!(strip_padding(&p), Ok(&[][..]));
            }
        }
    }
}
