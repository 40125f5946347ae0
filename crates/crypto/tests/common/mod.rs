//! Helpers shared by the known-answer tests.

#![allow(dead_code, clippy::unwrap_used)]

use palisade_crypto::{CryptoError, EspTransform};

/// Hex with whitespace allowed, so vectors can be typed in as the RFCs print them.
pub fn unhex(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).unwrap()
}

/// The sequence number a receiver would use for `packet`: the header's low
/// half with the high half it keeps itself.
pub fn receiver_seq(packet: &[u8], seq_hi: u32) -> u64 {
    let lo = u32::from_be_bytes(packet[4..8].try_into().unwrap());
    (u64::from(seq_hi) << 32) | u64::from(lo)
}

/// Seals `before` with the IV it carries, compares with `wire`, opens `wire`
/// back to `before`, and checks that flipping any single byte of `wire` makes
/// `open` fail with `Integrity` (the receiver re-deriving `seq` from the
/// tampered header, as it would).
pub fn check_vector(t: &EspTransform, before: &[u8], wire: &[u8], seq: u64, esn: bool) {
    let mut sealed = before.to_vec();
    t.seal_with_iv(&mut sealed, seq, esn).unwrap();
    assert_eq!(hex::encode(&sealed), hex::encode(wire));

    let mut opened = wire.to_vec();
    t.open(&mut opened, seq, esn).unwrap();
    let end = wire.len() - t.suite().icv_len();
    assert_eq!(hex::encode(&opened[..end]), hex::encode(&before[..end]));

    if t.suite().icv_len() == 0 {
        return;
    }
    for i in 0..wire.len() {
        for bit in [0x01u8, 0x80] {
            let mut tampered = wire.to_vec();
            tampered[i] ^= bit;
            let seq = receiver_seq(&tampered, (seq >> 32) as u32);
            assert_eq!(
                t.open(&mut tampered, seq, esn),
                Err(CryptoError::Integrity),
                "flip {bit:#x} at byte {i}"
            );
        }
    }
    // The wrong high half of the sequence number must not verify either.
    if esn {
        let mut copy = wire.to_vec();
        assert_eq!(
            t.open(&mut copy, seq ^ (1 << 32), esn),
            Err(CryptoError::Integrity)
        );
    }
}
