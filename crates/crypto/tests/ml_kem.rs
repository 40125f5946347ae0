//! ML-KEM-768 as IKEv2 key exchange method 36: the initiator's
//! encapsulation key, the responder's ciphertext, one shared secret.
//!
//! No full known-answer test: aws-lc-rs 1.19 has no deterministic ML-KEM
//! key generation or encapsulation (no seed or randomness input), so a
//! FIPS 203 / ACVP vector cannot be replayed through the public API.
//! Instead our responder encapsulates to a fixed, independently made key
//! pair (RFC 9935's example, as aws-lc's `p_kem_test.cc` carries it) and
//! that pair's decapsulation key must recover the same secret.

#![allow(clippy::unwrap_used)]

use palisade_crypto::key_exchange::ml_kem::{
    CIPHERTEXT_LEN, ENCAPSULATION_KEY_LEN, SHARED_SECRET_LEN,
};
use palisade_crypto::{CryptoError, KeId, KeyExchange};

#[test]
fn method_36_and_its_lengths() {
    assert_eq!(KeId::try_from(36).ok(), Some(KeId::MlKem768));
    assert_eq!(u16::from(KeId::MlKem768), 36);
    assert!(KeId::MlKem768.is_kem());
    assert!(!KeId::Curve25519.is_kem());
    assert_eq!(KeId::MlKem768.public_len(), 1184);
    assert_eq!(KeId::MlKem768.responder_public_len(), 1088);
    assert_eq!(KeId::MlKem768.shared_secret_len(), 32);
    assert_eq!(
        (ENCAPSULATION_KEY_LEN, CIPHERTEXT_LEN, SHARED_SECRET_LEN),
        (1184, 1088, 32)
    );
}

#[test]
fn initiator_and_responder_agree() {
    let initiator = KeyExchange::generate(KeId::MlKem768).unwrap();
    assert_eq!(initiator.public_value().len(), 1184);
    let (responder, secret_r) =
        KeyExchange::respond(KeId::MlKem768, initiator.public_value()).unwrap();
    assert_eq!(responder.public_value().len(), 1088);
    let secret_i = initiator.shared_secret(responder.public_value()).unwrap();
    assert_eq!(secret_i.as_ref(), secret_r.as_ref());
    assert_eq!(secret_i.as_ref().len(), 32);
    // Fresh randomness each time.
    let (again, secret_again) =
        KeyExchange::respond(KeId::MlKem768, initiator.public_value()).unwrap();
    assert_ne!(again.public_value(), responder.public_value());
    assert_ne!(secret_again.as_ref(), secret_r.as_ref());
}

#[test]
fn an_altered_ciphertext_gives_another_secret() {
    // Implicit rejection (FIPS 203 §6.3): no error, a different secret,
    // which IKE_AUTH then refuses.
    let initiator = KeyExchange::generate(KeId::MlKem768).unwrap();
    let (responder, secret_r) =
        KeyExchange::respond(KeId::MlKem768, initiator.public_value()).unwrap();
    let mut ct = responder.public_value().to_vec();
    ct[100] ^= 1;
    let secret_i = initiator.shared_secret(&ct).unwrap();
    assert_ne!(secret_i.as_ref(), secret_r.as_ref());
}

#[test]
fn wrong_lengths_are_refused() {
    let initiator = KeyExchange::generate(KeId::MlKem768).unwrap();
    let ek = initiator.public_value();
    for bad in [&ek[..1183], &[ek, &[0u8][..]].concat()[..], &[][..]] {
        assert_eq!(
            KeyExchange::respond(KeId::MlKem768, bad).err(),
            Some(CryptoError::BadKeyExchange)
        );
    }
    let (responder, _) = KeyExchange::respond(KeId::MlKem768, ek).unwrap();
    let ct = responder.public_value();
    for bad in [&ct[..1087], &[ct, &[0u8][..]].concat()[..], ek] {
        assert_eq!(
            initiator.shared_secret(bad).err(),
            Some(CryptoError::BadKeyExchange)
        );
    }
    // The responder's side holds no secret to compute again.
    assert_eq!(
        responder.shared_secret(ek).err(),
        Some(CryptoError::BadKeyExchange)
    );
    // No private key import for a KEM.
    assert_eq!(
        KeyExchange::from_private_key(KeId::MlKem768, &[1u8; 32]).err(),
        Some(CryptoError::BadKeyExchange)
    );
}

#[test]
fn an_encapsulation_key_out_of_range_is_refused() {
    // FIPS 203 §7.2 modulus check: coefficients are 12-bit values below
    // q = 3329; all-ones encodes 4095.
    let bad = [0xffu8; 1184];
    assert_eq!(
        KeyExchange::respond(KeId::MlKem768, &bad).err(),
        Some(CryptoError::BadKeyExchange)
    );
}

#[test]
fn respond_works_for_diffie_hellman_too() {
    let initiator = KeyExchange::generate(KeId::Curve25519).unwrap();
    let (responder, secret_r) =
        KeyExchange::respond(KeId::Curve25519, initiator.public_value()).unwrap();
    let secret_i = initiator.shared_secret(responder.public_value()).unwrap();
    assert_eq!(secret_i.as_ref(), secret_r.as_ref());
}

/// RFC 9935 (ML-KEM in X.509) Appendix C's example ML-KEM-768 key pair,
/// taken from aws-lc's `crypto/evp_extra/p_kem_test.cc`: the encapsulation
/// key (the SubjectPublicKeyInfo's BIT STRING) and the expanded
/// decapsulation key (the PKCS #8 "expandedKey" OCTET STRING, which holds
/// the encapsulation key at octets 1152..2336).
const RFC9935_EK: &str = "\
    298aa10d423c8dda069d02bc59e6cdf03a096b8b3da4cab9b80ca4a14907672ccef1ec4faf234a0bc5b7e9d473f2b313\
    3b3b26a1d175cb67a7805919699c02f76531b99c5f89180704bb4ca4535c5b8972679c660a07c5e514b87009c862eb8f\
    5157695efb3fc40a9def6b81c1cc02a249ae4f094ad0d9bd3485c1c1c68080520a7c8c632032cee738154e5c5176c07d\
    a56024776a430fe76eacf665a3f7b832102215bc82f10939c8355704336a8fac1d81e4bb0485aa5d7c74d6b59bbe5c5e\
    972a0d8bac411b55b5d5557cd680a1a8f71b4eb86bc48c9a0509731a54bd9d7290b27963e4372dc9b199cfdcac0b01ac\
    d28a62395112e4c43648d622c48c8234d01440e8cc376c927f23a5afc9ac0474c662274e424525c8552ece3b3fe26516\
    de901bc7d515bde89558e626c95c80b93342f8010004f39e6c6c94871c5e344cab3966c835f9a96a59afd31c40286b38\
    b1c1a78470bab947518934453ce86736a919f1f5a6d510a86f5454fc3980cb5c765bd2bd5f7b36b1410d6635c8ceb47c\
    4dda0d76a28eac939c71c3024804866c71626658442163c2c22117e50acefce6378a985652302a4ef0c2ce0cc716b779\
    6e2b6b2e3777dfa1ac3da259a31b5a9b530f8cb638a81a62ac301849abaf95a7301bda30068909bfdb7e67dbccbb38a5\
    551a25b1a3a0f685748ad5753d8880f0016c627486166384c5571fe2365900364d038311e2d875db366686932b5ec602\
    430a369e87a6ef5c338786657825bd4c057aceb923eb0935e6905e63b4ced7f80857a773dd64b150d26612ea9ac12052\
    db2017bf1843ccb4b3281b690dc728adfa85c00281b8e3c09287335f856b4fc2892f69a2f57921ada01914c40988662d\
    57769662a786351b9b66493dab79594d986de2100d65ba0ff4ea58b81538d24a4435a258fac25404aa7f41f658b13850\
    65e158dcb60115732720f40459aaac15e406953a90ac52997d1ccd070060efc65db9e653354467fad56ec713c86e7540\
    c423acf2669f52fa6f4ac6888d871ef3e847c029a8aafbb92e17b24aa079b1f419ba6175b442afb11909d4a56b70a033\
    5b28739218aa7c9348e2c3c2f3eb3d15a41e6417c0dd94bfeb21419b311a7bb13a180bbe833218a9a6b17447cc85f225\
    859587a73077049acbcfd44d0f025438e15d1538270d586e1bf83192a9459cf63c0e972f85297679831ecf121509851c\
    b8340f6f107b0fa1a0efd1b36a8189bc085c4f5cb784e553f41b918f80397ce1956f785bee377ca9aa8be6998ada30c2\
    6b7c3d8c6b55254cc96203b20c42aee0ac4e1ebb408e49a9e3f879d0ab0785eb7025425d1305a2299c015e120d163b0e\
    19494ce57253d0246d182745cb8197ab7438b3c1bb7972bec5a306eba3567855c014699fef65ae54c770a0d85c18400c\
    f642aedc660777ba4b138502bd5a7812f621f84a48296b98dd4322b6f15828b8a8f0e00a8ba44a53c3a8b143571b0740\
    abd567daf1cde9c79c204b6d5e259d1766a31bbbcb4e6a05cf4502176b301c1c2f41247750157bcec85e809b30a4d60d\
    7747cdd0f5b99aa8c826987517793aaa8080a0b124a8558df72bbe37b75f4edbb6be8216d6c633fb2b2280e25113d869\
    5e43481c3eeb397eb192505229b67a201ea893c3e2cb32da8bc342fa4dea0578";
const RFC9935_DK: &str = "\
    27d2a77f33756f61208ef113abe82595873d4abc730e5b5d679529bf6a4ceb6383427231a8612f41550515acba52e48e\
    ad8b942833bbe6865d13d14a79d2c5c3e07f0a056d8de7aadfcaba058c493c80b37cab8c562753bb3ba6b6ec8297f885\
    eaa7540d530015a84406e55b1366b577e236ce58a26d8a1eb5a44d542323c2167d9bf4a47f985699ca05bae43b8dec61\
    7f02380a3890afd4b8c7ec7ede26553a025f3ce5bc5d7a62130304235cb1ad4836b566b5b863bd9bdb45a2844a7047b6\
    c8d383e448525e040b4dc8a2b48c6c37c96d62d43f3fd88e2881c40a205c9e248f652b592781a779f86880f2a147b678\
    63f391cc1a5a908c0095e07212291e2ef8a36eb9a9c0c6073225b34703a4af049382c47573da68fde9245ad444e31b1f\
    bdb521f1f61f37bc0cef292067e670d28a1ffd904f6f1190a996918a13037a6cabf3c373bf8296cd37ab33ba7746809c\
    c3f8ade1b3639bd57bfcc69650aaaf1de198fc4c0463299e52c461780cc428fc5d04a5c51850cba6c2a5274340675793\
    dda09be44c29e6395c65f85d2a0a7c6df411e6911b1f2cb6c351cd2e875f51b638be776097e93e2f2b2f83da0beef4aa\
    85ba9e763ab64502a0ca5222e9eab5b3b7088ed52060e8c8269b943a71ab0ae1c5b1b687d2e019cf8036bcf9bf6e7bac\
    3aaa36e41660faa4540f2648cd93a189ec5c2dea70bacaaa4ffc906f90810ea1b67bf24f2c78cf6ba881aaea61c0652b\
    ff95b1bae4426d1773b9cc2ca82c21e38c636e3b1c523244986b0be8a83f5dd5cf2d54762fb3c5ebf59b8e885302b1ce\
    47033edf760f4e029be40b6d566b19dd758acd5c7412878131244f90172c53f26663c21d905301d48baf91c917cc7779\
    e9d8802cc10d89a3705099a2ad3a3a8896743c1144698093be257dacb66dc785228b912c8d965d14aa28342c3ac4a93f\
    efa532b20945ddc1020139c14d638b908c4ddde9a0645b95b2e4414d40bb79f04413830f15a873c28bb7059c27410020\
    15f20408f058e715b0bf995b5380b7dd325a056ab97e659a2be0cdf6c33731c683a634b771e8c92a139aee4bb0e49c70\
    77321d42fc199f7c1f298ca625d223a5c263a03cc48159b7812665b78637e4e18720b2c29a6b99f42766a4cbc4dc508b\
    a94ba83b89c3a5c78f8bb26bbd9b79beb8c8182490f5793ee5b96013b74b7e169e29d162f1315464ea7d72436d89b755\
    161192c81cc2dd1c8b8bba795ef426ee1cc01c37aaa37b2cff8b0a378b47cbd0b4d49398cfc2712959699fa0bd8cd846\
    66acc61f541b84fa96b9c854e4e75e9144addb44b8566a57dfbb545ce423c03346f2b2c1a91780d152a8de1a4d4c9cac\
    de7392c996888cc2399c02c38b3353adf8acab283924da00a05b76e738c72c930d6cba09ae168990faa1fef2226e7808\
    61d416eff402f4f759fc648ab1f97100109087f96e4b148d2cb31e4805314ea0cd95fb023eac0d989474ba4201d7b41d\
    26f5394b217eea5b34b71a8b37931c0e594271e0b7c733257240233e7ba735603e425a87dee77079e37cb28a21764594\
    ce5350d8da2b62a07174943032ec89c98809c73b6423d30c1d283a766a64d89703c3d629b497828d48320c346210797a\
    298aa10d423c8dda069d02bc59e6cdf03a096b8b3da4cab9b80ca4a14907672ccef1ec4faf234a0bc5b7e9d473f2b313\
    3b3b26a1d175cb67a7805919699c02f76531b99c5f89180704bb4ca4535c5b8972679c660a07c5e514b87009c862eb8f\
    5157695efb3fc40a9def6b81c1cc02a249ae4f094ad0d9bd3485c1c1c68080520a7c8c632032cee738154e5c5176c07d\
    a56024776a430fe76eacf665a3f7b832102215bc82f10939c8355704336a8fac1d81e4bb0485aa5d7c74d6b59bbe5c5e\
    972a0d8bac411b55b5d5557cd680a1a8f71b4eb86bc48c9a0509731a54bd9d7290b27963e4372dc9b199cfdcac0b01ac\
    d28a62395112e4c43648d622c48c8234d01440e8cc376c927f23a5afc9ac0474c662274e424525c8552ece3b3fe26516\
    de901bc7d515bde89558e626c95c80b93342f8010004f39e6c6c94871c5e344cab3966c835f9a96a59afd31c40286b38\
    b1c1a78470bab947518934453ce86736a919f1f5a6d510a86f5454fc3980cb5c765bd2bd5f7b36b1410d6635c8ceb47c\
    4dda0d76a28eac939c71c3024804866c71626658442163c2c22117e50acefce6378a985652302a4ef0c2ce0cc716b779\
    6e2b6b2e3777dfa1ac3da259a31b5a9b530f8cb638a81a62ac301849abaf95a7301bda30068909bfdb7e67dbccbb38a5\
    551a25b1a3a0f685748ad5753d8880f0016c627486166384c5571fe2365900364d038311e2d875db366686932b5ec602\
    430a369e87a6ef5c338786657825bd4c057aceb923eb0935e6905e63b4ced7f80857a773dd64b150d26612ea9ac12052\
    db2017bf1843ccb4b3281b690dc728adfa85c00281b8e3c09287335f856b4fc2892f69a2f57921ada01914c40988662d\
    57769662a786351b9b66493dab79594d986de2100d65ba0ff4ea58b81538d24a4435a258fac25404aa7f41f658b13850\
    65e158dcb60115732720f40459aaac15e406953a90ac52997d1ccd070060efc65db9e653354467fad56ec713c86e7540\
    c423acf2669f52fa6f4ac6888d871ef3e847c029a8aafbb92e17b24aa079b1f419ba6175b442afb11909d4a56b70a033\
    5b28739218aa7c9348e2c3c2f3eb3d15a41e6417c0dd94bfeb21419b311a7bb13a180bbe833218a9a6b17447cc85f225\
    859587a73077049acbcfd44d0f025438e15d1538270d586e1bf83192a9459cf63c0e972f85297679831ecf121509851c\
    b8340f6f107b0fa1a0efd1b36a8189bc085c4f5cb784e553f41b918f80397ce1956f785bee377ca9aa8be6998ada30c2\
    6b7c3d8c6b55254cc96203b20c42aee0ac4e1ebb408e49a9e3f879d0ab0785eb7025425d1305a2299c015e120d163b0e\
    19494ce57253d0246d182745cb8197ab7438b3c1bb7972bec5a306eba3567855c014699fef65ae54c770a0d85c18400c\
    f642aedc660777ba4b138502bd5a7812f621f84a48296b98dd4322b6f15828b8a8f0e00a8ba44a53c3a8b143571b0740\
    abd567daf1cde9c79c204b6d5e259d1766a31bbbcb4e6a05cf4502176b301c1c2f41247750157bcec85e809b30a4d60d\
    7747cdd0f5b99aa8c826987517793aaa8080a0b124a8558df72bbe37b75f4edbb6be8216d6c633fb2b2280e25113d869\
    5e43481c3eeb397eb192505229b67a201ea893c3e2cb32da8bc342fa4dea0578a24e16d8f8f9383a95b77050f4d9fd2f\
    5733eec1d63ef3c23ebf9918173669a7202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";

#[test]
fn the_responder_encapsulates_to_an_independent_key_pair() {
    use aws_lc_rs::kem::{Ciphertext, DecapsulationKey, ML_KEM_768};
    let ek = hex::decode(RFC9935_EK).unwrap();
    let dk = hex::decode(RFC9935_DK).unwrap();
    assert_eq!((ek.len(), dk.len()), (1184, 2400));
    assert_eq!(&dk[1152..2336], &ek[..]);
    // Our modulus check accepts the real key; the ciphertext opens with
    // the example's decapsulation key to our secret.
    let (responder, secret) = KeyExchange::respond(KeId::MlKem768, &ek).unwrap();
    let key = DecapsulationKey::new(&ML_KEM_768, &dk).unwrap();
    let theirs = key
        .decapsulate(Ciphertext::from(responder.public_value()))
        .unwrap();
    assert_eq!(theirs.as_ref(), secret.as_ref());
    // One coefficient raised to q = 3329 (0xd01) is refused.
    let mut bad = ek.clone();
    bad[0] = 0x01;
    bad[1] = (bad[1] & 0xf0) | 0x0d;
    assert_eq!(
        KeyExchange::respond(KeId::MlKem768, &bad).err(),
        Some(CryptoError::BadKeyExchange)
    );
    bad[0] = 0x00; // 3328 = 0xd00 is the largest allowed
    assert!(KeyExchange::respond(KeId::MlKem768, &bad).is_ok());
}
