//! MODP key exchange (RFC 3526 groups 14, 15, 16) against an independent
//! computation: Python's `pow(g, x, p)` at test time, with p built by Python
//! from RFC 3526's definition (2^n - 2^(n-64) - 1 + 2^64 * ([2^(n-130) pi] + k),
//! pi by Machin's formula), so aws-lc's primes are checked too. Tests that need
//! Python print a note and pass vacuously when `python3` is missing.

use std::process::Command;

use palisade_crypto::{CryptoError, KeId, KeyExchange};

const MODP: [KeId; 3] = [KeId::Modp2048, KeId::Modp3072, KeId::Modp4096];

const PYTHON: &str = r#"
import sys
def pi_scaled(bits):
    guard = 64
    one = 1 << (bits + guard)
    def arctan_inv(x):
        total = term = one // x
        x2, n, sign = x * x, 1, -1
        while term:
            term //= x2
            total += sign * (term // (2 * n + 1))
            sign, n = -sign, n + 1
        return total
    return (16 * arctan_inv(5) - 4 * arctan_inv(239)) >> guard
n, k = {14: (2048, 124476), 15: (3072, 1690314), 16: (4096, 240904)}[int(sys.argv[1])]
p = 2**n - 2**(n - 64) - 1 + 2**64 * (pi_scaled(n - 130) + k)
assert pow(2, p - 1, p) == 1 and pow(3, (p - 1) // 2 - 1, (p - 1) // 2) == 1
size = n // 8
hx = lambda v: v.to_bytes(size, "big").hex()
print(hx(p))
xa, xb = int(sys.argv[2], 16), int(sys.argv[3], 16)
ya, yb = pow(2, xa, p), pow(2, xb, p)
print(hx(ya)); print(hx(yb)); print(hx(pow(yb, xa, p)))
"#;

/// What Python computes for a group and two private exponents.
struct Reference {
    p: Vec<u8>,
    public_a: Vec<u8>,
    public_b: Vec<u8>,
    shared: Vec<u8>,
}

fn python_reference(id: KeId, xa: &[u8], xb: &[u8]) -> Option<Reference> {
    let out = match Command::new("python3")
        .args([
            "-c",
            PYTHON,
            &u16::from(id).to_string(),
            &hex::encode(xa),
            &hex::encode(xb),
        ])
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("SKIPPED: python3 is not available ({e}); no independent MODP reference");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("python output is ASCII");
    let mut lines = text
        .lines()
        .map(|l| hex::decode(l).expect("hex from python"));
    let mut next = || lines.next().expect("four lines from python");
    Some(Reference {
        p: next(),
        public_a: next(),
        public_b: next(),
        shared: next(),
    })
}

fn prime(id: KeId) -> Option<Vec<u8>> {
    python_reference(id, &[2], &[3]).map(|r| r.p)
}

#[test]
fn two_parties_agree_in_every_modp_group() {
    for (id, len) in MODP.into_iter().zip([256, 384, 512]) {
        assert_eq!(KeId::try_from(u16::from(id)).expect("known id"), id);
        assert_eq!(id.public_len(), len);
        assert_eq!(id.shared_secret_len(), len);
        let i = KeyExchange::generate(id).expect("generate");
        let r = KeyExchange::generate(id).expect("generate");
        assert_eq!(i.public_value().len(), len);
        assert_eq!(r.public_value().len(), len);
        assert_ne!(i.public_value(), r.public_value());
        let si = i.shared_secret(r.public_value()).expect("initiator's g^ir");
        let sr = r.shared_secret(i.public_value()).expect("responder's g^ir");
        assert_eq!(si.len(), len);
        assert_eq!(si.as_ref(), sr.as_ref(), "{id:?}");
    }
    assert_eq!(u16::from(KeId::Modp2048), 14);
    assert_eq!(u16::from(KeId::Modp3072), 15);
    assert_eq!(u16::from(KeId::Modp4096), 16);
}

#[test]
fn known_answers_match_python_pow() {
    let xa = hex::decode(
        "5a7c1f0e93b24d68a1c3e5f7092b4d6f8a0c2e4f6183a5c7e9f0b2d4f6a8c0e2f4a6b8cad0e2f4a6",
    )
    .expect("hex");
    let xb = hex::decode(
        "01d3f5a7b9c1e3f50719b3d5f7092b4d6f8193a5c7e9fb1d3f5a7b9cbdeff0123456789abcdef012\
         456789abcdef0123",
    )
    .expect("hex");
    for id in MODP {
        let Some(reference) = python_reference(id, &xa, &xb) else {
            return;
        };
        assert_eq!(
            &reference.p[..8],
            &[0xff; 8],
            "RFC 3526 primes start with 64 one bits"
        );
        let a = KeyExchange::from_private_key(id, &xa).expect("a");
        let b = KeyExchange::from_private_key(id, &xb).expect("b");
        assert_eq!(
            a.public_value(),
            reference.public_a.as_slice(),
            "{id:?} g^xa"
        );
        assert_eq!(
            b.public_value(),
            reference.public_b.as_slice(),
            "{id:?} g^xb"
        );
        let s = a.shared_secret(b.public_value()).expect("shared");
        assert_eq!(s.as_ref(), reference.shared.as_slice(), "{id:?} g^xaxb");
        let s = b.shared_secret(a.public_value()).expect("shared");
        assert_eq!(s.as_ref(), reference.shared.as_slice(), "{id:?} g^xbxa");
    }
}

/// Small exponents give values far shorter than p: the public value and the
/// secret must come out left-padded (RFC 7296 §3.4, §2.14), not truncated.
#[test]
fn short_values_are_left_padded() {
    for id in MODP {
        let len = id.public_len();
        let a = KeyExchange::from_private_key(id, &[8]).expect("x = 8");
        let b = KeyExchange::from_private_key(id, &[0, 16]).expect("x = 16, leading zero");
        let mut expected = vec![0u8; len];
        expected[len - 2] = 1; // 2^8
        assert_eq!(a.public_value(), expected.as_slice());
        let mut expected = vec![0u8; len];
        expected[len - 3] = 1; // 2^16
        assert_eq!(b.public_value(), expected.as_slice());
        let mut expected = vec![0u8; len];
        expected[len - 17] = 1; // 2^128
        let s = a.shared_secret(b.public_value()).expect("shared");
        assert_eq!(s.as_ref(), expected.as_slice());
        if let Some(reference) = python_reference(id, &[8], &[0, 16]) {
            assert_eq!(s.as_ref(), reference.shared.as_slice());
        }
    }
}

#[test]
fn degenerate_and_malformed_peer_values_are_rejected() {
    for id in MODP {
        let len = id.public_len();
        let me = KeyExchange::generate(id).expect("generate");
        let good = KeyExchange::generate(id)
            .expect("generate")
            .public_value()
            .to_vec();
        let mut one = vec![0u8; len];
        one[len - 1] = 1;
        let mut bad = vec![vec![0u8; len], one, vec![0xff; len]];
        bad.push(good[1..].to_vec()); // too short
        bad.push([&[0u8][..], &good].concat()); // too long, even with a zero in front
        bad.push(Vec::new());
        if let Some(p) = prime(id) {
            let mut p_minus_1 = p.clone();
            *p_minus_1.last_mut().expect("non-empty") -= 1; // p is odd
            bad.extend([p_minus_1, p.clone()]);
            let mut p_minus_2 = p.clone();
            *p_minus_2.last_mut().expect("non-empty") -= 2;
            // p - 2 is the largest value allowed, and is accepted.
            me.shared_secret(&p_minus_2)
                .expect("p - 2 is a valid public value");
        }
        for (n, peer) in bad.iter().enumerate() {
            assert_eq!(
                me.shared_secret(peer).map(|_| ()),
                Err(CryptoError::BadKeyExchange),
                "{id:?} bad value #{n}"
            );
        }
        // A refusal leaves the key usable.
        me.shared_secret(&good).expect("good value after bad ones");
    }
}

#[test]
fn private_keys_out_of_range_are_rejected() {
    for id in MODP {
        let len = id.public_len();
        assert_eq!(
            KeyExchange::from_private_key(id, &[]).map(|_| ()),
            Err(CryptoError::BadKeyLength {
                expected: len,
                got: 0
            })
        );
        assert_eq!(
            KeyExchange::from_private_key(id, &vec![1u8; len + 1]).map(|_| ()),
            Err(CryptoError::BadKeyLength {
                expected: len,
                got: len + 1
            })
        );
        assert_eq!(
            KeyExchange::from_private_key(id, &[0, 0]).map(|_| ()),
            Err(CryptoError::BadKeyExchange)
        );
        assert_eq!(
            KeyExchange::from_private_key(id, &vec![0xff; len]).map(|_| ()),
            Err(CryptoError::BadKeyExchange),
            "x > p"
        );
        if let Some(p) = prime(id) {
            assert_eq!(
                KeyExchange::from_private_key(id, &p).map(|_| ()),
                Err(CryptoError::BadKeyExchange),
                "x = p"
            );
        }
    }
}

#[test]
fn key_exchange_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<KeyExchange>();
}
