//! Known-answer tests for the IKEv2 PRFs, prf+ and the IKEv2 KDF.
//!
//! # Sources
//!
//! NIST CAVP SP 800-135 "IKEv2 KDF" component test vectors (`kdf/ikev2.txt`:
//! g^ir, g^ir (new), Ni, Nr, SPIi, SPIr -> SKEYSEED, DKM, DKM(Child SA),
//! DKM(Child SA D-H), SKEYSEED(Rekey)), as vendored by two independent
//! implementations (the NIST file itself was not available offline):
//!
//! - libreswan (github.com/libreswan/libreswan): the `hmac_sha1_kdf_tests`
//!   table ("CAVP: IKEv2 key derivation with HMAC-SHA1") of its PRF self-test
//!   source in `lib/libswan/` (SKEYSEED, DKM, SKEYSEED(Rekey)), and the
//!   expected output in the comment of its `libreswan-ikev2-cavs` CAVS test
//!   program (Stephan Mueller and Andrew Cagney, 2015), which adds
//!   DKM(Child SA) and DKM(Child SA D-H) for the same SHA-1 case.
//! - NSS (hg.mozilla.org/projects/nss, mirrored on GitHub as nss-dev/nss):
//!   `gtests/common/testvectors/ike-sha1-vectors.h`, `ike-sha256-vectors.h`
//!   and `ike-sha384-vectors.h`, entries marked "these vectors are from this
//!   NIST samples" (ikeGxy = SKEYSEED, ikePlus = DKM, ikeV2Rekey =
//!   SKEYSEED(Rekey)); its "self-generated" entries are not used.
//!
//! The exact commits of those copies were not recorded by the search index
//! used to find them; the values agree between the two projects for the
//! SHA-1 case they share.
//!
//! RFC 4231 §4 (HMAC-SHA-256/384/512) outputs are reused from this crate's
//! `hmac_vectors.rs` (typed in from RFC 4868 §2.7.1, which repeats them), and
//! RFC 2202 §3 for HMAC-SHA-1.

#![allow(clippy::unwrap_used)]

use palisade_crypto::ikev2_kdf::{self, encr_key_material_len};
use palisade_crypto::{
    ChildSaKeys, CryptoError, EncrId, EspSuite, IkeSaKeys, IntegId, KeyLengths, Prf, PrfId,
};

fn unhex(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).unwrap()
}

fn spi(s: &str) -> [u8; 8] {
    unhex(s).try_into().unwrap()
}

// ---------------------------------------------------------------------------
// PRFs
// ---------------------------------------------------------------------------

#[test]
fn prf_ids_and_lengths() {
    for (iana, id, len) in [
        (2u16, PrfId::HmacSha1, 20),
        (5, PrfId::HmacSha2_256, 32),
        (6, PrfId::HmacSha2_384, 48),
        (7, PrfId::HmacSha2_512, 64),
    ] {
        assert_eq!(PrfId::try_from(iana).unwrap(), id);
        assert_eq!(u16::from(id), iana);
        let prf = Prf::from_iana(iana).unwrap();
        assert_eq!(prf.output_len(), len);
        assert_eq!(prf.preferred_key_len(), len);
        assert_eq!(prf.prf(b"k", b"d").as_ref().len(), len);
        assert_eq!(prf.prf_plus_max_len(), 255 * len);
    }
    // PRF_HMAC_MD5 (1), PRF_HMAC_TIGER (3), PRF_AES128_XCBC (4), PRF_AES128_CMAC (8).
    for unknown in [0u16, 1, 3, 4, 8, 9, 0xffff] {
        assert_eq!(
            PrfId::try_from(unknown).unwrap_err(),
            CryptoError::UnknownTransform(unknown)
        );
    }
}

#[test]
fn prf_rfc4231_and_rfc2202() {
    let sha256 = Prf::new(PrfId::HmacSha2_256);
    let sha384 = Prf::new(PrfId::HmacSha2_384);
    let sha512 = Prf::new(PrfId::HmacSha2_512);
    let sha1 = Prf::new(PrfId::HmacSha1);
    /// key, data, HMAC-SHA-256, HMAC-SHA-384, HMAC-SHA-512
    type Case = (Vec<u8>, Vec<u8>, &'static str, &'static str, &'static str);
    let cases: [Case; 4] = [
        (
            vec![0x0b; 20],
            b"Hi There".to_vec(),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c
             faea9ea9076ede7f4af152e8b2fa9cb6",
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde
             daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
        ),
        (
            b"Jefe".to_vec(),
            b"what do ya want for nothing?".to_vec(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e
             8e2240ca5e69e2c78b3239ecfab21649",
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
        ),
        (
            vec![0xaa; 20],
            vec![0xdd; 50],
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b
             2a5ab39dc13814b94e3ab6e101a34f27",
            "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39
             bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
        ),
        (
            // Key longer than the block size: hashed first (RFC 2104 §2).
            vec![0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6
             0c2ef6ab4030fe8296248df163f44952",
            "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352
             6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
        ),
    ];
    for (key, data, h256, h384, h512) in &cases {
        assert_eq!(sha256.prf(key, data).as_ref(), unhex(h256));
        assert_eq!(sha384.prf(key, data).as_ref(), unhex(h384));
        assert_eq!(sha512.prf(key, data).as_ref(), unhex(h512));
        // Split input gives the same output.
        let (a, b) = data.split_at(data.len() / 2);
        assert_eq!(sha256.prf_parts(key, &[a, b]).as_ref(), unhex(h256));
    }
    // RFC 2202 §3, test cases 1 and 2.
    assert_eq!(
        sha1.prf(&[0x0b; 20], b"Hi There").as_ref(),
        unhex("b617318655057264e28bc0b6fb378c8ef146be00")
    );
    assert_eq!(
        sha1.prf(b"Jefe", b"what do ya want for nothing?").as_ref(),
        unhex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
    );
}

#[test]
fn prf_output_debug_hides_bytes() {
    let out = Prf::new(PrfId::HmacSha2_256).prf(&[0x0b; 20], b"Hi There");
    let shown = format!("{out:?}");
    assert!(!shown.contains("b0344c61"), "{shown}");
    assert!(!shown.to_lowercase().contains("176"), "{shown}"); // 0xb0 = 176
}

// ---------------------------------------------------------------------------
// prf+
// ---------------------------------------------------------------------------

/// prf+ written out from RFC 7296 §2.13 with plain `prf` calls.
fn reference_prf_plus(prf: Prf, key: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut t: Vec<u8> = Vec::new();
    let mut i: u8 = 1;
    while out.len() < len {
        let mut input = t.clone();
        input.extend_from_slice(seed);
        input.push(i);
        t = prf.prf(key, &input).as_ref().to_vec();
        out.extend_from_slice(&t);
        i = i.wrapping_add(1);
    }
    out.truncate(len);
    out
}

#[test]
fn prf_plus_matches_reference() {
    for id in [
        PrfId::HmacSha1,
        PrfId::HmacSha2_256,
        PrfId::HmacSha2_384,
        PrfId::HmacSha2_512,
    ] {
        let prf = Prf::new(id);
        let key = b"prf+ reference key";
        let seed = b"Ni | Nr | SPIi | SPIr";
        let n = prf.output_len();
        for len in [0, 1, n - 1, n, n + 1, 3 * n + 7, 255 * n] {
            let expected = reference_prf_plus(prf, key, seed, len);
            let got = prf.prf_plus(key, &[seed], len).unwrap();
            assert_eq!(got.as_ref(), expected, "{id:?} len {len}");
            // Seed given in pieces.
            let (a, b) = seed.split_at(5);
            let got = prf.prf_plus(key, &[a, &[], b], len).unwrap();
            assert_eq!(got.as_ref(), expected, "{id:?} len {len} split");
            let mut buf = vec![0u8; len];
            prf.prf_plus_into(key, &[seed], &mut buf).unwrap();
            assert_eq!(buf, expected);
        }
    }
}

#[test]
fn prf_plus_limit_is_255_blocks() {
    let prf = Prf::new(PrfId::HmacSha2_256);
    let max = 255 * 32;
    assert!(prf.prf_plus(b"k", &[b"s"], max).is_ok());
    assert_eq!(
        prf.prf_plus(b"k", &[b"s"], max + 1).unwrap_err(),
        CryptoError::PrfPlusTooLong {
            requested: max + 1,
            max
        }
    );
    let mut buf = vec![0x5a; max + 1];
    assert!(prf.prf_plus_into(b"k", &[b"s"], &mut buf).is_err());
    assert!(buf.iter().all(|&b| b == 0x5a), "output untouched on error");
}

// ---------------------------------------------------------------------------
// NIST CAVP SP 800-135 IKEv2 KDF
// ---------------------------------------------------------------------------

/// One CAVP case. Optional fields are those the vendored copies include.
struct Cavp {
    prf: PrfId,
    ni: &'static str,
    nr: &'static str,
    g_ir: &'static str,
    g_ir_new: &'static str,
    spi_i: &'static str,
    spi_r: &'static str,
    skeyseed: &'static str,
    dkm: &'static str,
    dkm_child: &'static str,
    dkm_child_dh: &'static str,
    skeyseed_rekey: &'static str,
}

/// [SHA-1] Ni/Nr 64 bits, g^ir 256 bits, DKM 1056 bits: libreswan (both
/// sources above) and NSS `ike-sha1-vectors.h` entries 6, 7, 8.
const SHA1_CASE: Cavp = Cavp {
    prf: PrfId::HmacSha1,
    ni: "32b50d5f4a3763f3",
    nr: "9206a04b26564cb1",
    g_ir: "4b2c1f971981a8ad8d0abeafabf38cf75fc8349c148142465ed9c8b516b8be52",
    g_ir_new: "863f3c9d06efd39d2b907b97f8699e5dd5251ef64a2a176f36ee40c87d4f9330",
    spi_i: "34c9e7c188868785",
    spi_r: "3ff77d760d2b2199",
    skeyseed: "a9a7b222b59f8f48645f28a1db5b5f5d7479cba7",
    dkm: "a14293677cc80ff8f9cc0eee30d895da9d8f405666e30ef0dfcb63c634a46002\
          a2a63080e514a062768b76606f9fa5e992204fc5a670bde3f10d6b027113936a\
          5c55b648a194ae587b0088d52204b702c979fa280870d2ed41efa9c549fd1119\
          8af1670b143d384bd275c5f594cf266b05ebadca855e4249520a441a81157435\
          a7a56cc4",
    dkm_child: "8059e3ee8810e6c3a91bc8bcd2a7a41151b8d0e6ae239c7b38093ad85ef4c581\
                1a8e7b5d1cdabd9560b2d5e092d1f24e2d4b85eccdf0ad0dc9abd94b51ee7181\
                4ca6dbc8bb51b6309f5b9545c7eb35cf5580b1e521a8fe20754a2d883ba0c2cf\
                285f524aea6545b33106bc03e614296d319d41d4b50b3f510b1c0a22f3e66499\
                4d234cb4",
    dkm_child_dh: "bb43244c1860ad65ee1e211ffe8bb3661750c8f89cb9f547df7f4fa61d373016\
                   28190e38c66232eab4b3ab14c400a5197dd3730ed4820a8a10394d51e1c04000\
                   52f63ebd36b0e7ef53aaed31eba4a5080d7d4b5666023a8bbb5ffb7857240f9a\
                   05884d1b7d2f933708450b7b3288f1fc863ab49fa901227cffc06e27899c7054\
                   d56fd74c",
    skeyseed_rekey: "63e81194946ebd05df7df5ebf5d8750056bf1f1d",
};

/// [SHA-256] NSS `ike-sha256-vectors.h` entries 6 (SKEYSEED), 7
/// (SKEYSEED(Rekey), with SK_d the first 32 bytes of DKM), 8 (DKM, 132
/// bytes). No child-SA values in that copy.
const SHA256_CASE: Cavp = Cavp {
    prf: PrfId::HmacSha2_256,
    ni: "3f302be1abcb28e1",
    nr: "8c332ee006064c9b",
    g_ir: "0f4d257d7a58fc4545c7d7a88119eee5d5c9690c5b4c989171d3abbfd99d1d29",
    g_ir_new: "25f3b12d6f282739256e39bf54eda53b60ffcf379bb7bcc90c27b4c4c578616c",
    spi_i: "40dac39e1e1a8640",
    spi_r: "8619a1cf9a6e4c07",
    skeyseed: "5f00d1bd2c58ec224b1e6b71fa0f19a1faa7a193952c444411b47c1a9d8ba6fe",
    dkm: concat!(
        "0b137d669b0947d7d026d593f0305ad401ff0c471357d695778a9c7f4b4869ece98aca531",
        "188d16041b3bb936d2dbb3b4993a6e768a809160de45d0283f273a6cdf6854379e31be72b",
        "8d3d1fa990cf9c5b015ca9f918a7df6253c958114a09d4e1c19bdcd4db14b29d98db1a74a",
        "d405c588662c14a04d0d36aa4ab55e90f8986d12d4aad",
    ),
    dkm_child: "",
    dkm_child_dh: "",
    skeyseed_rekey: "2d63f6debc92048b4fef3889c4c99ca67d6496e0fac14a2bca9a2d6566ff2398",
};

/// [SHA-384] NSS `ike-sha384-vectors.h` entries 6, 7, 8 (as for SHA-256).
const SHA384_CASE: Cavp = Cavp {
    prf: PrfId::HmacSha2_384,
    ni: "fd1b572a8e735591",
    nr: "6013b0ef88dacd3d",
    g_ir: "d3288cd87565101e88fe3bad918f31939d8dd26ff1071f8b2d7f447524e58d7c",
    g_ir_new: "3358f620539473aee8d07e779764c4c6a9aabddc79a28e136b3bac021dbde44a",
    spi_i: "2116ad07ce61f749",
    spi_r: "24880e55f11a65b7",
    skeyseed: concat!(
        "69fe7a1ac94adaeb711295f5fe004b1a8d6a0b65d05692758ce8ad2f7a45f59d7d0b596f5",
        "1f7dfcf3330061888f6a94f",
    ),
    dkm: concat!(
        "4f904c2025c90c817ea5ff9b662a6fdb445a73b57cdf09eacd379b95e1f03cacb04cd6dee",
        "da4f952191dd9bc1f7a9502471a648d74dc06d38112de48a42501f6b1a3ad55c2099cd9a6",
        "48e5f17e5bf3e34bf9b5953decb768a34f875fe2b78dca0c2fcca81ec1a412006dfaed38f",
        "a06882e61f4c148105fb8e231fdb33c4d484c001721d4",
    ),
    dkm_child: "",
    dkm_child_dh: "",
    skeyseed_rekey: concat!(
        "e0548c1682e13bce454026b3b1bdf42985b24e4e7408095a7c529de38c3d1fcb04c9fe686",
        "8042a34c9614c6c99e3fcea",
    ),
};

fn check_cavp(case: &Cavp) {
    let prf = Prf::new(case.prf);
    let ni = unhex(case.ni);
    let nr = unhex(case.nr);
    let g_ir = unhex(case.g_ir);
    let g_ir_new = unhex(case.g_ir_new);
    let spi_i = spi(case.spi_i);
    let spi_r = spi(case.spi_r);
    let dkm = unhex(case.dkm);

    // SKEYSEED = prf(Ni | Nr, g^ir)
    let skeyseed = ikev2_kdf::skeyseed(prf, &ni, &nr, &g_ir);
    assert_eq!(
        skeyseed.as_ref(),
        unhex(case.skeyseed),
        "{:?} SKEYSEED",
        case.prf
    );

    // DKM = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
    let got = prf
        .prf_plus(skeyseed.as_ref(), &[&ni, &nr, &spi_i, &spi_r], dkm.len())
        .unwrap();
    assert_eq!(got.as_ref(), dkm, "{:?} DKM", case.prf);

    // The same DKM split into the seven IKE SA keys: pick lengths adding up
    // to the DKM length (3 * prf key + 2 * encr + 2 * integ) where it is long
    // enough; otherwise (SHA-384: 132 < 3 * 48) compare the DKM as a prefix.
    let n = prf.preferred_key_len();
    let rest = dkm.len().saturating_sub(3 * n);
    let lengths = KeyLengths {
        encr: rest / 4,
        integ: rest / 2 - rest / 4,
    };
    assert!(3 * n + 2 * lengths.encr + 2 * lengths.integ >= dkm.len());
    let keys = IkeSaKeys::derive(prf, skeyseed.as_ref(), lengths, &ni, &nr, spi_i, spi_r).unwrap();
    let joined = [
        keys.sk_d(),
        keys.sk_ai(),
        keys.sk_ar(),
        keys.sk_ei(),
        keys.sk_er(),
        keys.sk_pi(),
        keys.sk_pr(),
    ]
    .concat();
    assert_eq!(&joined[..dkm.len()], dkm, "{:?} SK_* split", case.prf);
    assert_eq!(keys.sk_d().len(), n);
    assert_eq!(keys.sk_ei().len(), lengths.encr);
    assert_eq!(keys.sk_ai().len(), lengths.integ);

    // SKEYSEED(Rekey) = prf(SK_d (old), g^ir (new) | Ni | Nr)
    let rekey = ikev2_kdf::rekey_skeyseed(prf, keys.sk_d(), &g_ir_new, &ni, &nr);
    assert_eq!(
        rekey.as_ref(),
        unhex(case.skeyseed_rekey),
        "{:?} SKEYSEED(Rekey)",
        case.prf
    );

    // Child SA DKM (same length as the IKE DKM in CAVP), split in halves.
    let half = dkm.len() / 2;
    let child_lengths = KeyLengths {
        encr: half / 3,
        integ: half - half / 3,
    };
    for (g, expected, what) in [
        (None, case.dkm_child, "DKM(Child SA)"),
        (Some(&g_ir_new[..]), case.dkm_child_dh, "DKM(Child SA D-H)"),
    ] {
        if expected.is_empty() {
            continue;
        }
        let expected = unhex(expected);
        let direct = match g {
            Some(g) => prf.prf_plus(keys.sk_d(), &[g, &ni, &nr], expected.len()),
            None => prf.prf_plus(keys.sk_d(), &[&ni, &nr], expected.len()),
        }
        .unwrap();
        assert_eq!(direct.as_ref(), expected, "{:?} {what}", case.prf);

        let child = ChildSaKeys::derive(prf, keys.sk_d(), g, &ni, &nr, child_lengths).unwrap();
        let i2r = child.initiator_to_responder();
        let r2i = child.responder_to_initiator();
        let joined = [i2r.encr, i2r.integ, r2i.encr, r2i.integ].concat();
        assert_eq!(joined, expected, "{:?} {what} split", case.prf);
        assert_eq!(i2r.encr.len(), child_lengths.encr);
        assert_eq!(r2i.integ.len(), child_lengths.integ);
    }
}

#[test]
fn cavp_ikev2_kdf_sha1() {
    check_cavp(&SHA1_CASE);
}

#[test]
fn cavp_ikev2_kdf_sha256() {
    check_cavp(&SHA256_CASE);
}

#[test]
fn cavp_ikev2_kdf_sha384() {
    check_cavp(&SHA384_CASE);
}

/// SKEYSEED-only CAVP cases (NSS "ikeGxy" entries 1), including SHA-256's
/// with long nonces and g^ir.
#[test]
fn cavp_skeyseed_only() {
    let cases: [(PrfId, &str, &str, &str, &str); 3] = [
        (
            PrfId::HmacSha1,
            "8ba4cbc73c0187301dc19a975823854dbd641c597f637f8d053a83b9514673eb",
            "69a62284195f1680",
            "80c94ba25c8abda5",
            "707197817fb2d90cf54d1842606bdea59b9f4823",
        ),
        (
            PrfId::HmacSha2_256,
            "a1ff3dc6cf9b4c04709943cb4ca1f1789bcf360b03f1d027de3ae8ee039e9155",
            concat!(
                "b1dee62505b47b223bae14ce7a5b757402ad1587511618d09f94950d47f1d8d4ce86aca12",
                "d78db9854d86019ad735757ae79d8932ac0c7db842c85060150ca875ea5d47e3cfcb2a059",
                "22ebb7959d49b9797a2289676ee79a1d9a18b790f87e4771ddaf4be3376057a553162f68f",
                "e429aca73b07234543801ba2122b1bde82251770d05df813cf556a11ca4dc43ffcb85a97d",
                "bed16e2fda6985e07e31be6364899e63c507c7c616e5eb7765a53560f76772de43918ba07",
                "badfe85244dcdcd917cb065afb60e3b7e68b54dd94bfc7c31c8b752892781ed3cc4b7f28f",
                "bc0ab9af908f5ae1f09f893f80100a7b3135993161b51fbba3bbb24b9f88c6147de82cd6f",
                "0",
            ),
            concat!(
                "f0acfef2ad1f7add0eaafda78c1cf1097d9fc91cb04a7c145069ac426fd164cbe661b1dd2",
                "df0fb84e19512181f0d8ea50b7860845f332757a8e56d2a3b7be436b5718a2d49baa996a4",
                "616684a208c2d611cd65e605dca6e3d3f116859b4410fe13679696bb2e23c08a40c7e1316",
                "d54b4c9c0286701c221151b3642cb4112ca1a53e0e597a7e29c634caed86ca3c31973d37b",
                "4c346134fd6784cd99913feedf3d29d89a0a02a5a750f02f5738109dcc670bb27701fb59f",
                "78e83b76860c3fec079a1fc8c937ddb58ae7500422b7e49ce63759c65b6bc439381d56bcc",
                "159edede894b073841036ebfa050a5b3e7c876a3f18def26b1768a263ac66c9d83b680eb5",
                "e",
            ),
            "750c5c94b9c2ec20b68033e024dadf0fa87e8b48c6561b21c72478451a06583d",
        ),
        (
            PrfId::HmacSha2_384,
            "1724dbd893523764bfef8c6fa927856fccfb77ae254358cce29c2769a32915c1",
            "cec89d845add83ef",
            "cebd43ab71d17db9",
            concat!(
                "6e4514610bf82d0ab7bf0260096f6146a153c712071abb633ced813c572156c783e36874a",
                "65a64690ca701d40d56ea18",
            ),
        ),
    ];
    for (id, g_ir, ni, nr, expected) in cases {
        let got = ikev2_kdf::skeyseed(Prf::new(id), &unhex(ni), &unhex(nr), &unhex(g_ir));
        assert_eq!(got.as_ref(), unhex(expected), "{id:?}");
    }
}

// ---------------------------------------------------------------------------
// Key lengths and layout
// ---------------------------------------------------------------------------

#[test]
fn key_lengths_from_transforms() {
    // AES-GCM: key + 4-byte salt (RFC 4106 §8.1, RFC 5282 §7.1), no integrity.
    assert_eq!(
        KeyLengths::new(EncrId::AesGcm16, 128, IntegId::None).unwrap(),
        KeyLengths { encr: 20, integ: 0 }
    );
    assert_eq!(
        KeyLengths::new(EncrId::AesGcm16, 256, IntegId::None).unwrap(),
        KeyLengths { encr: 36, integ: 0 }
    );
    // ChaCha20-Poly1305: 32-byte key + 4-byte salt (RFC 7634 §4).
    for bits in [0, 256] {
        assert_eq!(
            KeyLengths::new(EncrId::ChaCha20Poly1305, bits, IntegId::None).unwrap(),
            KeyLengths { encr: 36, integ: 0 }
        );
    }
    assert_eq!(
        KeyLengths::new(EncrId::AesCbc, 256, IntegId::HmacSha2_256_128).unwrap(),
        KeyLengths {
            encr: 32,
            integ: 32
        }
    );
    assert_eq!(
        KeyLengths::new(EncrId::AesCbc, 128, IntegId::HmacSha1_96).unwrap(),
        KeyLengths {
            encr: 16,
            integ: 20
        }
    );
    assert!(KeyLengths::new(EncrId::AesGcm16, 128, IntegId::HmacSha1_96).is_err());
    assert!(KeyLengths::new(EncrId::AesCbc, 128, IntegId::None).is_err());
    assert!(KeyLengths::new(EncrId::AesCbc, 100, IntegId::HmacSha1_96).is_err());
    assert!(KeyLengths::new(EncrId::ChaCha20Poly1305, 128, IntegId::None).is_err());
    assert_eq!(encr_key_material_len(EncrId::Null, 0).unwrap(), 0);

    // ESP suites agree with the crate's ESP layer.
    for suite in [
        EspSuite::AES128_GCM16,
        EspSuite::AES256_GCM16,
        EspSuite::CHACHA20_POLY1305,
        EspSuite::AES128_CBC_SHA256_128,
    ] {
        let l = KeyLengths::for_esp(&suite).unwrap();
        assert_eq!(l.encr + l.integ, suite.keymat_len());
    }
}

#[test]
fn ike_sa_keys_layout_with_aead() {
    // AES-256-GCM with PRF_HMAC_SHA2_256: SK_a* empty, SK_e* 36 bytes.
    let prf = Prf::new(PrfId::HmacSha2_256);
    let lengths = KeyLengths::new(EncrId::AesGcm16, 256, IntegId::None).unwrap();
    let (ni, nr) = ([1u8; 32], [2u8; 32]);
    let (spi_i, spi_r) = ([3u8; 8], [4u8; 8]);
    let seed = ikev2_kdf::skeyseed(prf, &ni, &nr, b"shared secret");
    let keys = IkeSaKeys::derive(prf, seed.as_ref(), lengths, &ni, &nr, spi_i, spi_r).unwrap();
    let total = 32 * 3 + 36 * 2;
    let expected = reference_prf_plus(
        prf,
        seed.as_ref(),
        &[&ni[..], &nr, &spi_i, &spi_r].concat(),
        total,
    );
    assert_eq!(keys.sk_d(), &expected[0..32]);
    assert!(keys.sk_ai().is_empty() && keys.sk_ar().is_empty());
    assert_eq!(keys.sk_ei(), &expected[32..68]);
    assert_eq!(keys.sk_er(), &expected[68..104]);
    assert_eq!(keys.sk_pi(), &expected[104..136]);
    assert_eq!(keys.sk_pr(), &expected[136..168]);

    let shown = format!("{keys:?}");
    assert!(!shown.contains(&hex::encode(&expected[..4])), "{shown}");
}

#[test]
fn child_sa_keys_order_and_pfs() {
    // AES-128-CBC + HMAC-SHA2-256-128: per direction 16-byte encr then
    // 32-byte integ, initiator-to-responder first (RFC 7296 §2.17).
    let prf = Prf::new(PrfId::HmacSha2_512);
    let sk_d = [7u8; 64];
    let (ni, nr) = ([8u8; 16], [9u8; 16]);
    let lengths = KeyLengths::for_esp(&EspSuite::AES128_CBC_SHA256_128).unwrap();
    let keys = ChildSaKeys::derive(prf, &sk_d, None, &ni, &nr, lengths).unwrap();
    let km = reference_prf_plus(prf, &sk_d, &[&ni[..], &nr].concat(), 96);
    assert_eq!(keys.initiator_to_responder().encr, &km[0..16]);
    assert_eq!(keys.initiator_to_responder().integ, &km[16..48]);
    assert_eq!(keys.responder_to_initiator().encr, &km[48..64]);
    assert_eq!(keys.responder_to_initiator().integ, &km[64..96]);

    let g = [0x42u8; 32];
    let pfs = ChildSaKeys::derive(prf, &sk_d, Some(&g), &ni, &nr, lengths).unwrap();
    let km = reference_prf_plus(prf, &sk_d, &[&g[..], &ni, &nr].concat(), 96);
    assert_eq!(pfs.initiator_to_responder().encr, &km[0..16]);
    assert_eq!(pfs.responder_to_initiator().integ, &km[64..96]);

    let shown = format!("{pfs:?} {:?}", pfs.initiator_to_responder());
    assert!(!shown.contains(&hex::encode(&km[..4])), "{shown}");
}

#[test]
fn child_sa_keys_too_long_is_an_error() {
    let prf = Prf::new(PrfId::HmacSha1);
    let lengths = KeyLengths {
        encr: 2000,
        integ: 600,
    };
    assert!(matches!(
        ChildSaKeys::derive(prf, &[0; 20], None, b"n", b"n", lengths).unwrap_err(),
        CryptoError::PrfPlusTooLong { .. }
    ));
}

// ---------------------------------------------------------------------------
// Key exchange (RFC 5903 ECP groups, RFC 8031 Curve25519)
// ---------------------------------------------------------------------------

mod key_exchange {
    use super::unhex;
    use palisade_crypto::ikev2_kdf;
    use palisade_crypto::{CryptoError, KeId, KeyExchange, Prf, PrfId};

    /// RFC 5903 §8.1 (group 19), §8.2 (group 20) and §8.3 (group 21): i, g^i = x | y, r,
    /// g^r = x | y, and g^ir = the x coordinate. Values as transcribed in
    /// several public test suites that agree (e.g. a Perl test of
    /// Math::EllipticCurve::Prime and an IKEv2 implementation's Go tests).
    struct Rfc5903 {
        id: KeId,
        i: &'static str,
        gi: &'static str,
        r: &'static str,
        gr: &'static str,
        gir: &'static str,
    }

    const RFC5903: [Rfc5903; 3] = [
        Rfc5903 {
            id: KeId::Ecp256,
            i: "C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433",
            gi: "DAD0B653 94221CF9 B051E1FE CA5787D0 98DFE637 FC90B9EF 945D0C37 72581180
                 5271A046 1CDB8252 D61F1C45 6FA3E59A B1F45B33 ACCF5F58 389E0577 B8990BB3",
            r: "C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53",
            gr: "D12DFB52 89C8D4F8 1208B702 70398C34 2296970A 0BCCB74C 736FC755 4494BF63
                 56FBF3CA 366CC23E 8157854C 13C58D6A AC23F046 ADA30F83 53E74F33 039872AB",
            gir: "D6840F6B 42F6EDAF D13116E0 E1256520 2FEF8E9E CE7DCE03 812464D0 4B9442DE",
        },
        Rfc5903 {
            id: KeId::Ecp384,
            i: "099f3c7034d4a2c699884d73a375a67f7624ef7c6b3c0f160647b67414dce655
                e35b538041e649ee3faef896783ab194",
            gi: "667842d7d180ac2cde6f74f37551f55755c7645c20ef73e31634fe72b4c55ee6
                 de3ac808acb4bdb4c88732aee95f41aa
                 9482ed1fc0eeb9cafc4984625ccfc23f65032149e0e144ada024181535a0f38e
                 eb9fcff3c2c947dae69b4c634573a81c",
            r: "41cb0779b4bdb85d47846725fbec3c9430fab46cc8dc5060855cc9bda0aa2942
                e0308312916b8ed2960e4bd55a7448fc",
            gr: "e558dbef53eecde3d3fccfc1aea08a89a987475d12fd950d83cfa41732bc509d
                 0d1ac43a0336def96fda41d0774a3571
                 dcfbec7aacf3196472169e838430367f66eebe3c6e70c416dd5f0c68759dd1ff
                 f83fa40142209dff5eaad96db9e6386c",
            gir: "11187331c279962d93d604243fd592cb9d0a926f422e47187521287e7156c5c4
                  d603135569b9e9d09cf5d4a270f59746",
        },
        // 66-octet scalars and coordinates: the leading zero bits of each
        // 521-bit value are part of the fixed-length encoding (RFC 5903 §7).
        Rfc5903 {
            id: KeId::Ecp521,
            i: "0037ADE9 319A89F4 DABDB3EF 411AACCC A5123C61 ACAB57B5 393DCE47 608172A0
                95AA85A3 0FE1C295 2C6771D9 37BA9777 F5957B26 39BAB072 462F68C2 7A57382D
                4A52",
            gi: "0015417E 84DBF28C 0AD3C278 713349DC 7DF153C8 97A1891B D98BAB43 57C9ECBE
                 E1E3BF42 E00B8E38 0AEAE57C 2D107564 94188594 2AF5A7F4 601723C4 195D176C
                 ED3E
                 017CAE20 B6641D2E EB695786 D8C94614 6239D099 E18E1D5A 514C739D 7CB4A10A
                 D8A78801 5AC405D7 799DC75E 7B7D5B6C F2261A6A 7F150743 8BF01BEB 6CA3926F
                 9582",
            r: "0145BA99 A847AF43 793FDD0E 872E7CDF A16BE30F DC780F97 BCCC3F07 8380201E
                9C677D60 0B343757 A3BDBF2A 3163E4C2 F869CCA7 458AA4A4 EFFC311F 5CB15168
                5EB9",
            gr: "00D0B397 5AC4B799 F5BEA16D 5E13E9AF 971D5E9B 984C9F39 728B5E57 39735A21
                 9B97C356 436ADC6E 95BB0352 F6BE64A6 C2912D4E F2D0433C ED2B6171 640012D9
                 460F
                 015C6822 6383956E 3BD066E7 97B623C2 7CE0EAC2 F551A10C 2C724D98 52077B87
                 220B6536 C5C408A1 D2AEBB8E 86D678AE 49CB5709 1F473229 6579AB44 FCD17F0F
                 C56A",
            gir: "01144C7D 79AE6956 BC8EDB8E 7C787C45 21CB086F A64407F9 7894E5E6 B2D79B04
                  D1427E73 CA4BAA24 0A347868 59810C06 B3C715A3 A8CC3151 F2BEE417 996D19F3
                  DDEA",
        },
    ];

    #[test]
    fn rfc5903_vectors() {
        for v in &RFC5903 {
            let i = KeyExchange::from_private_key(v.id, &unhex(v.i)).unwrap();
            let r = KeyExchange::from_private_key(v.id, &unhex(v.r)).unwrap();
            assert_eq!(i.public_value(), unhex(v.gi), "{:?} g^i", v.id);
            assert_eq!(r.public_value(), unhex(v.gr), "{:?} g^r", v.id);
            assert_eq!(
                i.shared_secret(&unhex(v.gr)).unwrap().as_ref(),
                unhex(v.gir),
                "{:?} g^ir (initiator)",
                v.id
            );
            assert_eq!(
                r.shared_secret(&unhex(v.gi)).unwrap().as_ref(),
                unhex(v.gir),
                "{:?} g^ir (responder)",
                v.id
            );
        }
    }

    /// RFC 7748 §6.1 X25519 vectors: the KE data of RFC 8031 is the X25519
    /// public value as is.
    #[test]
    fn rfc7748_curve25519_vectors() {
        let a = KeyExchange::from_private_key(
            KeId::Curve25519,
            &unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
        )
        .unwrap();
        let b = KeyExchange::from_private_key(
            KeId::Curve25519,
            &unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
        )
        .unwrap();
        let a_pub = unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let b_pub = unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let k = unhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        assert_eq!(a.public_value(), a_pub);
        assert_eq!(b.public_value(), b_pub);
        assert_eq!(a.shared_secret(&b_pub).unwrap().as_ref(), k);
        assert_eq!(b.shared_secret(&a_pub).unwrap().as_ref(), k);
    }

    #[test]
    fn generated_sides_agree_and_derive_the_same_keys() {
        for id in [KeId::Ecp256, KeId::Ecp384, KeId::Ecp521, KeId::Curve25519] {
            assert_eq!(KeId::try_from(u16::from(id)).unwrap(), id);
            let i = KeyExchange::generate(id).unwrap();
            let r = KeyExchange::generate(id).unwrap();
            assert_eq!(i.public_value().len(), id.public_len());
            assert_ne!(i.public_value(), r.public_value());
            let gi = i.shared_secret(r.public_value()).unwrap();
            let gr = r.shared_secret(i.public_value()).unwrap();
            assert_eq!(gi.as_ref(), gr.as_ref());
            assert_eq!(gi.len(), id.shared_secret_len());

            let prf = Prf::new(PrfId::HmacSha2_256);
            let (ni, nr) = ([0x11u8; 32], [0x22u8; 32]);
            let a = ikev2_kdf::skeyseed(prf, &ni, &nr, gi.as_ref());
            let b = ikev2_kdf::skeyseed(prf, &ni, &nr, gr.as_ref());
            assert_eq!(a.as_ref(), b.as_ref());
            assert!(!format!("{i:?}").contains(&hex::encode(&gi.as_ref()[..4])));
        }
    }

    #[test]
    fn bad_peer_values_are_errors() {
        for id in [KeId::Ecp256, KeId::Ecp384, KeId::Ecp521, KeId::Curve25519] {
            let me = KeyExchange::generate(id).unwrap();
            let good = KeyExchange::generate(id).unwrap().public_value().to_vec();
            // Wrong lengths, including a SEC1-prefixed point.
            for len in [0, 1, id.public_len() - 1, id.public_len() + 1] {
                assert_eq!(
                    me.shared_secret(&vec![4u8; len]).unwrap_err(),
                    CryptoError::BadKeyExchange,
                    "{id:?} len {len}"
                );
            }
            if id != KeId::Curve25519 {
                let mut sec1 = vec![0x04];
                sec1.extend_from_slice(&good);
                assert!(me.shared_secret(&sec1).is_err());
                // Not on the curve.
                let mut off = good.clone();
                let last = off.len() - 1;
                off[last] ^= 1;
                assert_eq!(
                    me.shared_secret(&off).unwrap_err(),
                    CryptoError::BadKeyExchange
                );
                // The point at infinity / all zeros.
                assert!(me.shared_secret(&vec![0u8; id.public_len()]).is_err());
            } else {
                // Low-order point u = 0 gives an all-zero secret (RFC 8031 §2.1).
                assert_eq!(
                    me.shared_secret(&[0u8; 32]).unwrap_err(),
                    CryptoError::BadKeyExchange
                );
                // u = 1 is also of small order.
                let mut one = [0u8; 32];
                one[0] = 1;
                assert!(me.shared_secret(&one).is_err());
            }
        }
        for unknown in [0u16, 2, 13, 17, 22, 32, 0xffff] {
            assert_eq!(
                KeId::try_from(unknown).unwrap_err(),
                CryptoError::UnknownTransform(unknown)
            );
        }
        // Private keys of the wrong length.
        assert!(KeyExchange::from_private_key(KeId::Ecp256, &[1u8; 31]).is_err());
        // A 521-bit scalar is 66 octets, not 65 (the bits rounded down) or 64.
        assert!(KeyExchange::from_private_key(KeId::Ecp521, &[1u8; 65]).is_err());
        assert!(KeyExchange::from_private_key(KeId::Ecp521, &[1u8; 64]).is_err());
        assert!(KeyExchange::from_private_key(KeId::Curve25519, &[1u8; 33]).is_err());
    }
}

#[test]
fn zero_private_scalar_is_rejected() {
    assert_eq!(
        palisade_crypto::KeyExchange::from_private_key(palisade_crypto::KeId::Ecp256, &[0u8; 32])
            .unwrap_err(),
        CryptoError::BadKeyExchange
    );
}
