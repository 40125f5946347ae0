//! AES-GCM (RFC 4106) and AES-GMAC (RFC 4543) ESP packets from
//! draft-mcgrew-gcm-test-01, "Test Cases for the use of GCM and GMAC in IPsec
//! ESP", §4.
//!
//! The draft's own text was not retrievable here; the values were typed in
//! from two independent transcriptions of it that agree with each other (a
//! GPL AES-GCM bench `testcases` file giving key, SPI, sequence number, nonce,
//! plaintext and ctext+tag per case, and OpenBSD's regress/sys/crypto/gmac
//! table, page by page, giving key+salt, IV, AAD and tag). The 192-bit key
//! case is left out because Palisade offers 128 and 256 only. The draft
//! splits the 12-byte nonce as salt (4, from KEYMAT) || IV (8, on the wire).

#![allow(clippy::unwrap_used)]

mod common;

use common::{check_vector, unhex};
use palisade_crypto::{CryptoError, EspSuite, EspTransform};

struct Case {
    key: &'static str,
    spi: &'static str,
    /// 4 bytes, or 8 (high half first) for an extended sequence number.
    seq: &'static str,
    /// salt (4) || IV (8).
    nonce: &'static str,
    /// ESP payload with padding, pad length and next header.
    plaintext: &'static str,
    ctext_tag: &'static str,
}

const CASES: &[Case] = &[
    // Page 6: AES-128, 64-bit sequence number.
    Case {
        key: "4c80cdefbb5d10da906ac73c3613a634",
        spi: "00004321",
        seq: "8765432100000000",
        nonce: "2e443b684956ed7e3b244cfe",
        plaintext: "45000048699a000080114db7c0a80102 c0a801010a9bf15638d3010000010000
                    00000000045f736970045f7564700373 69700963796265726369747902646b00
                    0021000101020201",
        ctext_tag: "fecf537e729d5b07dc30df528dd22b76 8d1b98736696a6fd348509fa13ceac34
                    cfa2436f14a3f3cf65925bf1f4a13c5d 15b21e1884f5ff6247aeabb786b93bce
                    61bc17d768fd9732459018148f6cbe72 2fd04796562dfdb4",
    },
    // Page 7: AES-128.
    Case {
        key: "feffe9928665731c6d6a8f9467308308",
        spi: "0000a5f8",
        seq: "0000000a",
        nonce: "cafebabefacedbaddecaf888",
        plaintext: "4500003e698f000080114dccc0a80102 c0a801010a980035002a2343b2d00100
                    00010000000000000373697009637962 65726369747902646b00000100010001",
        ctext_tag: "deb22cd9b07c72c16e3a65beeb8df304 a5a5897d33ae530f1ba76d5d114d2a5c
                    3de81827c10e9a4f51330d0eec416642 cfbb85a5b47e48a4ec3b9ba95d918bd1
                    83b70d3aa8bc6ee4c309e9d85a41ad4a",
    },
    // Page 8: AES-256.
    Case {
        key: "abbccddef00112233445566778899aab abbccddef00112233445566778899aab",
        spi: "4a2cbfe3",
        seq: "00000002",
        nonce: "112233440102030405060708",
        plaintext: "4500003069a6400080062690c0a80102 9389155e0a9e008b2dc57ee000000000
                    7002400020bf0000020405b401010402 01020201",
        ctext_tag: "ff425c9b724599df7a3bcd510194e00d 6a78107f1b0b1cbf06efae9d65a5d763
                    748a637985771d347f0545659f14e99d ef842d8eb335f4eecfdbf831824b4c49
                    15956c96",
    },
    // Page 9: AES-128, all-zero key and nonce.
    Case {
        key: "00000000000000000000000000000000",
        spi: "00000000",
        seq: "00000001",
        nonce: "000000000000000000000000",
        plaintext: "4500003c99c500008001cb7a40679318 010101010800075c0200440061626364
                    65666768696a6b6c6d6e6f7071727374 75767761626364656667686901020201",
        ctext_tag: "4688daf2f973a392732909c331d56d60 f694abaa414b5e7ff5fdcdfff5e9a284
                    456476492719ffb64de7d9dca1e1d894 bc3bd57873ed4d181d19d4d5c8c18af3
                    f821d496eeb096e98ad2b69e4799c71d",
    },
    // Page 10: AES-128, 64-bit sequence number.
    Case {
        key: "3de09874b388e6491988d0c3607eae1f",
        spi: "42f67e3f",
        seq: "1010101010101010",
        nonce: "57690e434e280000a2fca1a3",
        plaintext: "4500003c99c300008001cb7c40679318 010101010800085c0200430061626364
                    65666768696a6b6c6d6e6f7071727374 75767761626364656667686901020201",
        ctext_tag: "fba2caa4853cf9f0f22cb10d86dd83b0 fec75691cf1a04b00d1138ec9c357917
                    65acbd8701ad79845bf9fe3fba487bc9 1755e6662b4c8d0d1f5e22739530320a
                    e0d731cc978ecafaeae88f00e80d6e48",
    },
    // Page 11: AES-128, 64-bit sequence number, short packet.
    Case {
        key: "3de09874b388e6491988d0c3607eae1f",
        spi: "42f67e3f",
        seq: "1010101010101010",
        nonce: "57690e434e280000a2fca1a3",
        plaintext: "4500001c42a200008001441f406793b6 e00000020a00f5ff01020201",
        ctext_tag: "fba2ca845e5df9f0f22c3e6e86dd831e 1fc65792cd1af9130e1379ed369f071f
                    35e034be95f112e4e7d05d35",
    },
    // Page 12: AES-128, 64-bit sequence number.
    Case {
        key: "abbccddef00112233445566778899aab",
        spi: "00000100",
        seq: "0000000000000001",
        nonce: "decaf888cafedebaceface74",
        plaintext: "4500004933ba00007f119106c3fb1d10 c2b1d326c02831ce0035dd7b800302d5
                    00004e20001e8c18d75b81dc91baa047 6b91b924b280389d92c963bac046ec95
                    9b6266c04722b14923010101",
        ctext_tag: "18a6fd42f72cbf4ab2a2ea901f73d814 e3e7f243d95412e1c349c1d2fbec168f
                    9190feebaf2cb01984e65863965d7472 b79da345e0e780191f0d2f0e0f496c22
                    6f2127b27db35724e7845d68651f57e6 5f354f75ff17015769623436",
    },
    // Page 13: AES-256, 64-bit sequence number.
    Case {
        key: "abbccddef00112233445566778899aab abbccddef00112233445566778899aab",
        spi: "17405e67",
        seq: "156f3126dd0db99b",
        nonce: "73616c74616e640169766563",
        plaintext: "45080028732c00004006e9f90a010612 0a01038f06b88023dd6bafbecb712602
                    50101f646d540001",
        ctext_tag: "f2d69ecdbd5a0d5b8d5ef38bad4da58d 1f278fde98ef67549d524a3018d9a57f
                    f4d3a31ce673119e451626c2415771e3 b7eebca614c89b35",
    },
    // Page 14: AES-128, 64-bit sequence number.
    Case {
        key: "3de09874b388e6491988d0c3607eae1f",
        spi: "42f67e3f",
        seq: "1010101010101010",
        nonce: "57690e434e280000a2fca1a3",
        plaintext: "45000049333e00007f119182c3fb1d10 c2b1d326c02831ce0035cb458003025b
                    000001e0001e8c18d65759d52284a035 2c71475c8880391c764d6e5ee0496b32
                    5ae270c03899493915010101",
        ctext_tag: "fba2cad12fc1f9f00d3cebf305410db8 3d7784b607323d220f24b0a97d541828
                    00cadb0f68d99ef0e0c0c89ae9bea888 4e52d65bc1afd0740f742444747b5b39
                    ab533163aad4550ee5160975cdb608c5 769189609763b8e18caa81e2",
    },
    // Page 15: AES-256, 64-bit sequence number.
    Case {
        key: "abbccddef00112233445566778899aab abbccddef00112233445566778899aab",
        spi: "17405e67",
        seq: "156f3126dd0db99b",
        nonce: "73616c74616e640169766563",
        plaintext: "636973636f0172756c65730174686501 6e6574776501646566696e6501746865
                    746563686e6f6c6f6769657301746861 7477696c6c01646566696e65746f6d6f
                    72726f7701020201",
        ctext_tag: "d4b7ed86a1777f2ea13d6973d324c69e 7b43f826fb56831226508bebd2dceb18
                    d0a6df10e5487df074113e14c641024e 3e6773d91a62ee429b043a10e3efe6b0
                    12a49363412364f8c0cac587f249e56b 11e24f30e44ccc76",
    },
    // Page 16: AES-128, the smallest possible payload (just the trailer).
    Case {
        key: "7d773d00c144c525ac619d18c84a3f47",
        spi: "335467ae",
        seq: "ffffffff",
        nonce: "d966426743457e9182443bc6",
        plaintext: "01020201",
        ctext_tag: "437f866bcb3f699fe9b0822bac961c45 04bef270",
    },
    // Page 16: AES-128, 64-bit sequence number.
    Case {
        key: "abbccddef00112233445566778899aab",
        spi: "00000100",
        seq: "0000000000000001",
        nonce: "decaf888cafedebaceface74",
        plaintext: "746f016265016f72016e6f7401746f01 62650001",
        ctext_tag: "29c9fc69a197d038ccdd14e2ddfcaa05 43332164412503524303ed3c6c5f2838
                    43af8c3e",
    },
    // Page 17: AES-256, 64-bit sequence number with every bit set.
    Case {
        key: "6c6567616c697a656d6172696a75616e 61616e64646f69746265666f72656961",
        spi: "796b6963",
        seq: "ffffffffffffffff",
        nonce: "7475726e333021696765746d",
        plaintext: "45000030da3a00008001df3bc0a80005 c0a800010800c6cd0200070061626364
                    65666768696a6b6c6d6e6f7071727374 01020201",
        ctext_tag: "f97ab2aa356d8edce17644ac8c78e25d d24dedbb29ebf1b64a274b39b49c3a86
                    4cd3d78ca4ae68a32b42458fb57dbe82 1dcc63b9d0937ba2945f669368661a32
                    9fb4c053",
    },
];

/// Builds the transform, the plaintext packet and the expected wire packet.
fn prepare(
    suite_128: EspSuite,
    suite_256: EspSuite,
    case: &Case,
) -> (EspTransform, Vec<u8>, Vec<u8>, u64, bool) {
    let key = unhex(case.key);
    let nonce = unhex(case.nonce);
    let (salt, iv) = nonce.split_at(4);
    let suite = if key.len() == 16 {
        suite_128
    } else {
        suite_256
    };
    let t = EspTransform::new(suite, &[key.as_slice(), salt].concat()).unwrap();

    let seq_bytes = unhex(case.seq);
    let esn = seq_bytes.len() == 8;
    let seq = seq_bytes
        .iter()
        .fold(0u64, |acc, b| acc << 8 | u64::from(*b));
    let header = [
        unhex(case.spi),
        (seq as u32).to_be_bytes().to_vec(),
        iv.to_vec(),
    ]
    .concat();

    let before = [header.clone(), unhex(case.plaintext), vec![0; 16]].concat();
    let wire = [header, unhex(case.ctext_tag)].concat();
    (t, before, wire, seq, esn)
}

#[test]
fn draft_mcgrew_gcm_test_01_aes_gcm() {
    let mut seen = (false, false, false);
    for case in CASES {
        let (t, before, wire, seq, esn) =
            prepare(EspSuite::AES128_GCM16, EspSuite::AES256_GCM16, case);
        seen.0 |= t.suite() == EspSuite::AES128_GCM16;
        seen.1 |= t.suite() == EspSuite::AES256_GCM16;
        seen.2 |= esn;
        check_vector(&t, &before, &wire, seq, esn);
    }
    assert_eq!(seen, (true, true, true), "128-bit, 256-bit and ESN cases");
}

/// Page 18: ENCR_NULL_AUTH_AES_GMAC. The AAD is SPI, sequence number, IV and
/// the whole payload; nothing is encrypted (RFC 4543 §3.3). The plaintext
/// payload is the draft's AAD minus its 16 header and IV bytes.
#[test]
fn draft_mcgrew_gcm_test_01_aes_gmac() {
    let keymat = unhex("4c80cdefbb5d10da906ac73c3613a634 22433c64");
    let t = EspTransform::new(EspSuite::AES128_GMAC, &keymat).unwrap();
    let header = unhex("00004321 00000007 0000000000000000");
    let payload = unhex(
        "45000030da3a00008001df3bc0a80005 c0a800010800c6cd0200070061626364
         65666768696a6b6c6d6e6f7071727374 01020201",
    );
    let icv = unhex("f2a9a836e155106aa8dcd618e4099aaa");
    let before = [header.clone(), payload.clone(), vec![0; 16]].concat();
    let wire = [header, payload, icv].concat();
    check_vector(&t, &before, &wire, 7, false);

    // seal() picks IV = sequence number, which for seq 0 is this case's IV.
    let mut zero_seq = before.clone();
    zero_seq[4..8].copy_from_slice(&[0; 4]);
    let mut sealed = zero_seq.clone();
    t.seal(&mut sealed, 0, false).unwrap();
    assert_eq!(sealed[8..16], [0; 8]);
    assert_ne!(sealed[sealed.len() - 16..], wire[wire.len() - 16..]);
}

/// Pages 19 and 20 list the AAD, IV, ciphertext and tag but no plaintext in
/// the transcription used; they must still open, and resealing what they
/// open to must give the same bytes back.
#[test]
fn draft_mcgrew_gcm_test_01_open_only_cases() {
    let cases = [
        (
            "3de09874b388e6491988d0c3607eae1f 57690e43",
            "3f7ef642 10101010 10101010",
            "4e280000a2fca1a3",
            "fba2caa8c6c5f9f0f22ca54a061210ad 3f6e5791cf1aca210d117cec9c357917
             65acbd8701ad79845bf9fe3fba487bc9 63219306
             84eecadb56912546e7a95c9740d7cb05",
        ),
        (
            "4c80cdefbb5d10da906ac73c3613a634 22433c64",
            "00004321 87654321 00000007",
            "4855ec7d3a234bfd",
            "74752e8aeb5d873cd7c0f4acc36c4bff 84b7d7b98f0ca8b6acda6894bc619069
             ef9cbc28fe1b56a7c4e0d58c86cd2bc0",
        ),
    ];
    for (keymat, aad, iv, ctext_tag) in cases {
        let t = EspTransform::new(EspSuite::AES128_GCM16, &unhex(keymat)).unwrap();
        let aad = unhex(aad);
        let seq = u64::from_be_bytes(aad[4..12].try_into().unwrap());
        let wire = [&aad[..4], &aad[8..12], &unhex(iv), &unhex(ctext_tag)].concat();
        let mut opened = wire.clone();
        t.open(&mut opened, seq, true).unwrap();
        let mut resealed = opened.clone();
        t.seal_with_iv(&mut resealed, seq, true).unwrap();
        assert_eq!(resealed, wire);
        // A receiver without ESN would not accept it.
        assert_eq!(
            t.open(&mut wire.clone(), seq, false),
            Err(CryptoError::Integrity)
        );
    }
}
