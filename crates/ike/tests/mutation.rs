//! Mutated messages never panic an endpoint, and a mutated protected
//! message never changes anything: after it, the genuine exchange
//! completes as if it had never arrived.

mod common;

use std::time::Duration;

use common::*;
use palisade_filter::policy::{DhGroup, IkeCipher, IkeIntegrity, IpsecProposal};
use proptest::prelude::*;

fn fresh(seed: u64) -> Net {
    let p = [mm(
        IkeCipher::Aes128,
        IkeIntegrity::Sha256,
        DhGroup::Curve25519,
    )];
    let qm = vec![IpsecProposal::esp_aes128_cbc_sha256()];
    Net::new(
        transport_policy(B, main_mode("k", &p), qm.clone()),
        transport_policy(A, main_mode("k", &p), qm),
        seed,
    )
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Truncate(usize),
    Append(Vec<u8>),
    Splice { at: usize, bytes: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        any::<usize>().prop_map(Mutation::Truncate),
        prop::collection::vec(any::<u8>(), 1..40).prop_map(Mutation::Append),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Splice { at, bytes }),
    ]
}

fn apply(m: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut v = m.to_vec();
    for mu in mutations {
        match mu {
            Mutation::Flip { at, mask } if !v.is_empty() => {
                let i = at % v.len();
                v[i] ^= mask;
            }
            Mutation::Truncate(n) => {
                let n = n % (v.len() + 1);
                v.truncate(n);
            }
            Mutation::Append(b) => v.extend_from_slice(b),
            Mutation::Splice { at, bytes } => {
                let i = at % (v.len() + 1);
                let end = (i + bytes.len()).min(v.len());
                v.splice(i..end, bytes.iter().copied());
            }
            Mutation::Flip { .. } => {}
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Message `index` of IKE_SA_INIT / IKE_AUTH (0: init request, 1: init
    /// response, 2: auth request, 3: auth response) is delivered mutated
    /// before the genuine one.
    #[test]
    fn mutated_messages_are_harmless(index in 0usize..4, mutations in prop::collection::vec(mutation(), 1..4), seed in 1u64..1000) {
        let mut net = fresh(seed);
        net.acquire();
        let mut delivered = 0;
        loop {
            let (from_a, tx) = match (net.a.poll_transmit(), net.b.poll_transmit()) {
                (Some(tx), None) => (true, tx),
                (None, Some(tx)) => (false, tx),
                (None, None) => break,
                (Some(_), Some(_)) => panic!("window of one: never both at once"),
            };
            let (to, local, remote) = if from_a { (&mut net.b, addr(B), addr(A)) } else { (&mut net.a, addr(A), addr(B)) };
            if delivered == index {
                let bad = apply(&tx.bytes, &mutations);
                to.handle_datagram(net.now, local, remote, &bad);
                let changed = bad != tx.bytes;
                if changed && index >= 2 {
                    // Protected: the mutation must have been dropped silently.
                    prop_assert!(to.poll_event().is_none());
                    prop_assert!(to.poll_transmit().is_none());
                }
                // Whatever the unprotected mutation did, nothing panicked;
                // drain what it caused before the genuine message.
                while to.poll_transmit().is_some() {}
                while to.poll_event().is_some() {}
            }
            to.handle_datagram(net.now, local, remote, &tx.bytes);
            delivered += 1;
        }
        net.run(Duration::from_secs(60));
        if index >= 2 {
            prop_assert_eq!(children(&net.events_a).len(), 1);
        }
    }

    /// Arbitrary bytes behind a valid-looking header of a live IKE SA.
    #[test]
    fn arbitrary_bodies_for_live_sas_are_harmless(body in prop::collection::vec(any::<u8>(), 0..300), exchange in 33u8..=44, flags in any::<u8>(), mid in 0u32..4) {
        let mut net = fresh(7);
        net.acquire();
        net.run(Duration::from_secs(5));
        let (spi_i, spi_r) = {
            let i = established(&net.events_b)[0];
            (i.initiator_spi, i.responder_spi)
        };
        let mut m = Vec::new();
        m.extend_from_slice(&spi_i.to_be_bytes());
        m.extend_from_slice(&spi_r.to_be_bytes());
        m.extend_from_slice(&[body.first().copied().unwrap_or(0), 0x20, exchange, flags]);
        m.extend_from_slice(&mid.to_be_bytes());
        m.extend_from_slice(&((28 + body.len()) as u32).to_be_bytes());
        m.extend_from_slice(&body);
        net.b.handle_datagram(net.now, addr(B), addr(A), &m);
        net.a.handle_datagram(net.now, addr(A), addr(B), &m);
        prop_assert!(net.a.poll_event().is_none());
        prop_assert!(net.b.poll_event().is_none());
        prop_assert_eq!(net.a.ike_sas().len(), 1);
        prop_assert_eq!(net.b.ike_sas().len(), 1);
    }
}
