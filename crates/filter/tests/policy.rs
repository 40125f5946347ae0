//! Provider-context policy structures: serde shape, round trips and validation rules.

use std::fmt::Debug;
use std::net::IpAddr;
use std::path::PathBuf;

use palisade_filter::policy::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use uuid::Uuid;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) -> TestResult {
    let text = serde_json::to_string(value)?;
    let back: T = serde_json::from_str(&text)?;
    assert_eq!(&back, value, "round trip through {text}");
    Ok(())
}

fn ip(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|e| panic!("bad test address {text}: {e}"))
}

fn path(text: &str) -> PathBuf {
    PathBuf::from(text)
}

fn cert_method() -> AuthenticationMethod {
    AuthenticationMethod::certificate(
        [path("/etc/palisade/ca.pem")],
        path("/etc/palisade/host.pem"),
        path("/etc/palisade/host.key"),
    )
}

fn cert_auth() -> CertificateAuthentication {
    match cert_method() {
        AuthenticationMethod::Certificate(cert) => cert,
        other => panic!("certificate() built {other:?}"),
    }
}

fn every_auth_method() -> Vec<AuthenticationMethod> {
    use AuthenticationMethod as M;
    vec![
        M::preshared_key("s3cret"),
        M::PresharedKey(PresharedKeyAuthentication {
            key: SecretBytes::new(vec![0x00, 0xff, 0x80]),
            flags: IKEEXT_PSK_FLAG_LOCAL_AUTH_ONLY,
        }),
        cert_method(),
        M::Kerberos(KerberosAuthentication {
            flags: IKEEXT_KERB_AUTH_FORCE_PROXY_ON_INITIATOR,
            proxy_server: Some("kdcproxy.example.org".into()),
        }),
        M::Anonymous,
        M::Ssl(CertificateAuthentication {
            inbound_roots: CertRootConfig::TrustedRootStore { path: None },
            outbound_roots: CertRootConfig::EnterpriseStore {
                path: path("/etc/palisade/enterprise"),
            },
            local_certificate: None,
            local_key: None,
            flags: IKEEXT_CERT_AUTH_FLAG_SSL_ONE_WAY,
        }),
        M::NtlmV2(NtlmV2Authentication {
            flags: IKEEXT_NTLM_V2_AUTH_DONT_ACCEPT_EXPLICIT_CREDENTIALS,
        }),
        M::Ipv6Cga(CgaAuthentication {
            key: path("/etc/palisade/cga.key"),
            modifier: [7; 16],
            collision_count: 1,
        }),
        M::CertificateEcdsaP256(cert_auth()),
        M::CertificateEcdsaP384(CertificateAuthentication {
            inbound_roots: CertRootConfig::ExplicitTrustList {
                roots: vec![CertRoot {
                    path: path("/etc/palisade/sub.pem"),
                    flags: IKEEXT_CERT_FLAG_INTERMEDIATE_CA,
                }],
            },
            ..cert_auth()
        }),
        M::SslEcdsaP256(cert_auth()),
        M::SslEcdsaP384(cert_auth()),
        M::Eap(EapAuthentication {
            flags: IKEEXT_EAP_FLAG_REMOTE_AUTH_ONLY,
        }),
    ]
}

fn tunnel_policy() -> IpsecTunnelPolicy {
    IpsecTunnelPolicy::new(
        TunnelEndpoints::new(ip("192.0.2.1"), ip("198.51.100.7")),
        [IpsecProposal::esp_aes256_gcm().with_pfs(PfsGroup::Mm)],
    )
    .with_flags(IPSEC_POLICY_FLAG_SITE_TO_SITE_TUNNEL)
    .with_traffic_selectors(
        [TrafficSelector::range(ip("10.1.0.0"), ip("10.1.255.255"))],
        [TrafficSelector {
            protocol_id: 6,
            port_start: 443,
            port_end: 443,
            ..TrafficSelector::range(ip("10.2.0.0"), ip("10.2.0.255"))
        }],
    )
}

// ---------------------------------------------------------------------------------------
// Provider context types and keying modules

#[test]
fn context_type_numbers_and_names_follow_wfp() {
    let expected = [
        "IPSEC_KEYING",
        "IKE_QM_TRANSPORT",
        "IKE_QM_TUNNEL",
        "AUTHIP_QM_TRANSPORT",
        "AUTHIP_QM_TUNNEL",
        "IKE_MM",
        "AUTHIP_MM",
        "CLASSIFY_OPTIONS",
        "GENERAL",
        "IKEV2_QM_TUNNEL",
        "IKEV2_MM",
        "IPSEC_DOSP",
        "IKEV2_QM_TRANSPORT",
        "NETWORK_CONNECTION_POLICY",
    ];
    for (value, name) in (0u32..).zip(expected) {
        let ty = ProviderContextType::from_u32(value).unwrap_or_else(|| panic!("no type {value}"));
        assert_eq!(ty.as_u32(), value);
        assert_eq!(ty.name(), name);
        assert_eq!(ty.to_string(), name);
        assert_eq!(
            serde_json::to_value(ty).ok(),
            Some(json!(name.to_lowercase()))
        );
    }
    assert_eq!(ProviderContextType::from_u32(14), None);
    assert_eq!(ProviderContextType::from_u32(u32::MAX), None);
}

#[test]
fn context_types_map_to_modules() {
    use KeyingModule::*;
    use ProviderContextType as T;
    for module in KeyingModule::ALL {
        assert_eq!(T::main_mode(module).keying_module(), Some(module));
        assert_eq!(T::qm_transport(module).keying_module(), Some(module));
        assert_eq!(T::qm_tunnel(module).keying_module(), Some(module));
    }
    assert_eq!(T::qm_transport(Ikev2), T::Ikev2QmTransport);
    assert_eq!(T::qm_tunnel(Authip), T::AuthipQmTunnel);
    assert_eq!(T::main_mode(Ike), T::IkeMm);
    assert_eq!(T::General.keying_module(), None);
    assert_eq!(T::IpsecKeying.keying_module(), None);
}

#[test]
fn keying_module_guids_are_wfps() {
    let expected = [
        (KeyingModule::Ike, "a9bbf787-82a8-45bb-a400-5d7e5952c7a9"),
        (KeyingModule::Authip, "11e3dae0-dd26-4590-857d-ab4b28d1a095"),
        (KeyingModule::Ikev2, "041792cc-8f07-419d-a394-716968cb1647"),
    ];
    for (module, guid) in expected {
        assert_eq!(module.guid().to_string(), guid);
        assert_eq!(KeyingModule::from_guid(module.guid()), Some(module));
    }
    assert_eq!(FWPM_KEYING_MODULE_IKEV2, KeyingModule::Ikev2.guid());
    assert_eq!(KeyingModule::from_guid(Uuid::nil()), None);
    assert_eq!(KeyingModule::Authip.to_string(), "AUTHIP");
}

// ---------------------------------------------------------------------------------------
// Serde shape

#[test]
fn main_mode_context_serde_shape() -> TestResult {
    let context = ProviderContextPolicy::MainMode {
        module: KeyingModule::Ikev2,
        policy: MainModePolicy::new(
            [AuthenticationMethod::preshared_key("s3cret")],
            [MainModeProposal::new(
                IkeCipher::AesGcm256,
                IkeIntegrity::Sha256,
                DhGroup::Curve25519,
            )],
        ),
    };
    let expected = json!({
        "type": "ikev2_mm",
        "soft_expiration_time": 0,
        "authentication_methods": [{ "type": "preshared_key", "key": "s3cret", "flags": 0 }],
        "initiator_impersonation_type": "none",
        "ike_proposals": [{
            "cipher": "aes_gcm_256_16icv",
            "integrity": "sha_256",
            "max_lifetime_seconds": 28800,
            "dh_group": "curve25519",
            "quick_mode_limit": 0
        }],
        "flags": 0,
        "max_dynamic_filters": 0,
        "retransmit_duration_secs": 0
    });
    assert_eq!(serde_json::to_value(&context)?, expected);
    assert_eq!(
        serde_json::from_value::<ProviderContextPolicy>(expected)?,
        context
    );
    Ok(())
}

#[test]
fn transport_context_serde_shape() -> TestResult {
    let context = ProviderContextPolicy::Transport {
        module: KeyingModule::Authip,
        policy: IpsecTransportPolicy::new([
            IpsecProposal::esp_aes128_gcm(),
            IpsecProposal::ah_sha256(),
        ])
        .with_flags(IPSEC_POLICY_FLAG_ND_SECURE)
        .with_em_policy(ExtendedModePolicy::kerberos_socket_principal()),
    };
    let expected = json!({
        "type": "authip_qm_transport",
        "ipsec_proposals": [
            {
                "lifetime": { "seconds": 3600, "kilobytes": 100000, "packets": 0 },
                "sa_transforms": [{ "esp_cipher": "gcm_aes_128" }],
                "pfs_group": "none"
            },
            {
                "lifetime": { "seconds": 3600, "kilobytes": 100000, "packets": 0 },
                "sa_transforms": [{ "ah": "hmac_sha_256_128" }],
                "pfs_group": "none"
            }
        ],
        "flags": 2,
        "nd_allow_clear_timeout_seconds": 0,
        "sa_idle_timeout": { "idle_timeout_seconds": 300, "idle_timeout_seconds_fail_over": 60 },
        "em_policy": {
            "authentication_methods": [{ "type": "kerberos", "flags": 0 }],
            "initiator_impersonation_type": "socket_principal"
        }
    });
    assert_eq!(serde_json::to_value(&context)?, expected);
    assert_eq!(
        serde_json::from_value::<ProviderContextPolicy>(expected)?,
        context
    );
    Ok(())
}

#[test]
fn minimal_policies_take_defaults() -> TestResult {
    let mm: ProviderContextPolicy = serde_json::from_value(json!({
        "type": "ike_mm",
        "authentication_methods": [{ "type": "preshared_key", "key": "k" }],
        "ike_proposals": [{ "cipher": "aes_128", "integrity": "sha1",
                            "max_lifetime_seconds": 3600, "dh_group": "group_2048" }]
    }))?;
    let ProviderContextPolicy::MainMode {
        module: KeyingModule::Ike,
        policy,
    } = &mm
    else {
        panic!("parsed {mm:?}");
    };
    assert_eq!(policy.flags, 0);
    assert_eq!(policy.initiator_impersonation_type, ImpersonationType::None);
    assert_eq!(policy.ike_proposals[0].dh_group, DhGroup::Group14);
    assert_eq!(policy.ike_proposals[0].quick_mode_limit, 0);
    mm.validate()?;

    let qm: IpsecTransportPolicy = serde_json::from_value(json!({
        "ipsec_proposals": [{ "lifetime": { "seconds": 600 },
                              "sa_transforms": [{ "esp_auth_and_cipher":
                                  { "auth": "hmac_sha_1_96", "cipher": "cbc_aes_256" } }] }]
    }))?;
    assert_eq!(
        qm.ipsec_proposals[0].lifetime,
        SaLifetime {
            seconds: 600,
            kilobytes: 0,
            packets: 0
        }
    );
    assert_eq!(qm.ipsec_proposals[0].pfs_group, PfsGroup::None);
    assert_eq!(qm.sa_idle_timeout, SaIdleTimeout::default());
    assert_eq!(qm.em_policy, None);
    qm.validate(KeyingModule::Ikev2)?;

    let selector: TrafficSelector = serde_json::from_value(
        json!({ "start_address": "10.0.0.0", "end_address": "10.0.0.255" }),
    )?;
    assert_eq!(
        (selector.protocol_id, selector.port_start, selector.port_end),
        (0, 0, u16::MAX)
    );
    Ok(())
}

#[test]
fn aliases_accept_wfp_and_iana_spellings() -> TestResult {
    let groups: Vec<DhGroup> =
        serde_json::from_value(json!(["group_19", "group_20", "group_31", "group_2048"]))?;
    assert_eq!(
        groups,
        [
            DhGroup::Ecp256,
            DhGroup::Ecp384,
            DhGroup::Curve25519,
            DhGroup::Group14
        ]
    );
    let pfs: Vec<PfsGroup> = serde_json::from_value(json!(["group_19", "mm", "none", "group_31"]))?;
    assert_eq!(
        pfs,
        [
            PfsGroup::Ecp256,
            PfsGroup::Mm,
            PfsGroup::None,
            PfsGroup::Curve25519
        ]
    );
    // WFP names the GMAC auth transforms GCM_AES_*; both spellings read as GMAC.
    let auth: Vec<AuthTransform> = serde_json::from_value(json!(["gcm_aes_128", "gmac_aes_256"]))?;
    assert_eq!(auth, [AuthTransform::GmacAes128, AuthTransform::GmacAes256]);
    assert_eq!(
        serde_json::to_value(AuthTransform::GmacAes128)?,
        json!("gmac_aes_128")
    );
    assert_eq!(serde_json::to_value(IkeCipher::TripleDes)?, json!("3des"));
    assert_eq!(
        serde_json::to_value(CipherTransform::Cbc3Des)?,
        json!("cbc_3des")
    );
    Ok(())
}

#[test]
fn unknown_fields_are_rejected() {
    let base = json!({
        "type": "ikev2_mm",
        "authentication_methods": [{ "type": "preshared_key", "key": "k" }],
        "ike_proposals": [{ "cipher": "aes_128", "integrity": "sha_256",
                            "max_lifetime_seconds": 3600, "dh_group": "ecp_256" }]
    });
    assert!(serde_json::from_value::<ProviderContextPolicy>(base.clone()).is_ok());

    let mut typo = base.clone();
    typo["max_dynamic_filter"] = json!(3);
    assert!(
        serde_json::from_value::<ProviderContextPolicy>(typo).is_err(),
        "top-level typo"
    );

    let mut nested = base.clone();
    nested["ike_proposals"][0]["dh-group"] = json!("ecp_256");
    assert!(
        serde_json::from_value::<ProviderContextPolicy>(nested).is_err(),
        "proposal typo"
    );

    let mut in_method = base.clone();
    in_method["authentication_methods"][0]["psk"] = json!("k");
    assert!(
        serde_json::from_value::<ProviderContextPolicy>(in_method).is_err(),
        "auth method typo"
    );

    let mut bad_value = base.clone();
    bad_value["ike_proposals"][0]["cipher"] = json!("aes128");
    assert!(
        serde_json::from_value::<ProviderContextPolicy>(bad_value).is_err(),
        "unknown cipher"
    );

    for ty in [
        "classify_options",
        "ipsec_dosp",
        "network_connection_policy",
        "ikev3_mm",
    ] {
        let mut other = base.clone();
        other["type"] = json!(ty);
        assert!(
            serde_json::from_value::<ProviderContextPolicy>(other).is_err(),
            "{ty} accepted"
        );
    }

    let transform = json!({ "esp_auth_and_cipher": { "auth": "hmac_sha_1_96", "cipher": "cbc_aes_128", "x": 1 } });
    assert!(
        serde_json::from_value::<SaTransform>(transform).is_err(),
        "transform typo"
    );
    let root = json!({ "store": "explicit_trust_list", "roots": [], "extra": true });
    assert!(
        serde_json::from_value::<CertRootConfig>(root).is_err(),
        "root config typo"
    );
    let general = json!({ "type": "general", "data": [1], "more": 2 });
    assert!(
        serde_json::from_value::<ProviderContextPolicy>(general).is_err(),
        "general typo"
    );
}

// ---------------------------------------------------------------------------------------
// Round trips

#[test]
fn every_context_variant_round_trips() -> TestResult {
    let mut contexts = vec![
        ProviderContextPolicy::Keying(KeyingPolicy::new([
            KeyingModule::Authip,
            KeyingModule::Ikev2,
        ])),
        ProviderContextPolicy::General(vec![0, 1, 2, 254, 255]),
    ];
    for module in KeyingModule::ALL {
        let methods: Vec<_> = every_auth_method()
            .into_iter()
            .filter(|m| m.is_allowed_for(module))
            .collect();
        contexts.push(ProviderContextPolicy::MainMode {
            module,
            policy: MainModePolicy {
                flags: IKEEXT_POLICY_FLAG_DISABLE_DIAGNOSTICS,
                ..MainModePolicy::new(methods, MainModeProposal::ikev1_defaults())
            },
        });
        contexts.push(ProviderContextPolicy::Transport {
            module,
            policy: IpsecTransportPolicy::new([IpsecProposal::esp_aes128_cbc_sha256()]),
        });
        contexts.push(ProviderContextPolicy::Tunnel {
            module,
            policy: tunnel_policy(),
        });
    }
    for context in &contexts {
        round_trip(context)?;
        let value = serde_json::to_value(context)?;
        assert_eq!(
            value["type"],
            json!(context.context_type().name().to_lowercase())
        );
    }
    Ok(())
}

#[test]
fn every_auth_method_round_trips() -> TestResult {
    for method in every_auth_method() {
        round_trip(&method)?;
        let value = serde_json::to_value(&method)?;
        assert_eq!(value["type"], json!(method.name().to_lowercase()));
    }
    round_trip(&ExtendedModePolicy::kerberos_socket_principal())
}

#[test]
fn every_algorithm_value_round_trips() -> TestResult {
    use AuthTransform as A;
    use CipherTransform as C;
    for cipher in [
        IkeCipher::Des,
        IkeCipher::TripleDes,
        IkeCipher::Aes128,
        IkeCipher::Aes192,
        IkeCipher::Aes256,
        IkeCipher::AesGcm128,
        IkeCipher::AesGcm256,
        IkeCipher::ChaCha20Poly1305,
    ] {
        round_trip(&cipher)?;
    }
    for integrity in [
        IkeIntegrity::Md5,
        IkeIntegrity::Sha1,
        IkeIntegrity::Sha256,
        IkeIntegrity::Sha384,
        IkeIntegrity::Sha512,
    ] {
        round_trip(&integrity)?;
    }
    let groups = [
        DhGroup::None,
        DhGroup::Group1,
        DhGroup::Group2,
        DhGroup::Group14,
        DhGroup::Group15,
        DhGroup::Group16,
        DhGroup::Ecp256,
        DhGroup::Ecp384,
        DhGroup::Group24,
        DhGroup::Curve25519,
    ];
    let iana: Vec<u16> = groups.iter().map(|g| g.iana_id()).collect();
    assert_eq!(iana, [0, 1, 2, 14, 15, 16, 19, 20, 24, 31]);
    for group in groups {
        round_trip(&group)?;
        // PFS groups share the DH group names.
        let pfs: PfsGroup = serde_json::from_value(serde_json::to_value(group)?)?;
        assert_eq!(
            pfs.resolve(DhGroup::Ecp384),
            if group == DhGroup::None {
                None
            } else {
                Some(group)
            }
        );
    }
    assert_eq!(PfsGroup::Mm.resolve(DhGroup::Ecp384), Some(DhGroup::Ecp384));
    assert_eq!(PfsGroup::Mm.resolve(DhGroup::None), None);
    round_trip(&PfsGroup::Mm)?;

    let auths = [
        A::HmacMd5_96,
        A::HmacSha1_96,
        A::HmacSha256_128,
        A::HmacSha384_192,
        A::HmacSha512_256,
        A::GmacAes128,
        A::GmacAes192,
        A::GmacAes256,
    ];
    let ciphers = [
        C::CbcDes,
        C::Cbc3Des,
        C::CbcAes128,
        C::CbcAes192,
        C::CbcAes256,
        C::GcmAes128,
        C::GcmAes192,
        C::GcmAes256,
        C::ChaCha20Poly1305,
        C::Null,
    ];
    let mut transforms = Vec::new();
    for auth in auths {
        transforms.extend([
            SaTransform::Ah(auth),
            SaTransform::EspAuth(auth),
            SaTransform::EspAuthFw(auth),
        ]);
        transforms.extend(ciphers.map(|cipher| SaTransform::EspAuthAndCipher { auth, cipher }));
    }
    transforms.extend(ciphers.map(SaTransform::EspCipher));
    for transform in transforms {
        round_trip(&transform)?;
        round_trip(&IpsecProposal::new(transform).with_pfs(PfsGroup::Group24))?;
    }
    Ok(())
}

#[test]
fn binary_preshared_keys_round_trip_as_hex() -> TestResult {
    let binary = SecretBytes::new(vec![0x00, 0xde, 0xad, 0xbe, 0xef, 0xff]);
    assert_eq!(
        serde_json::to_value(&binary)?,
        json!({ "hex": "00deadbeefff" })
    );
    round_trip(&binary)?;
    let upper: SecretBytes = serde_json::from_value(json!({ "hex": "00DEADBEEFFF" }))?;
    assert_eq!(upper, binary);
    let text: SecretBytes = serde_json::from_value(json!("plain words"))?;
    assert_eq!(text.expose(), b"plain words");
    assert!(serde_json::from_value::<SecretBytes>(json!({ "hex": "abc" })).is_err());
    assert!(serde_json::from_value::<SecretBytes>(json!({ "hex": "zz" })).is_err());
    assert!(serde_json::from_value::<SecretBytes>(json!({ "hex": "00", "x": 1 })).is_err());
    Ok(())
}

#[test]
fn debug_never_shows_the_preshared_key() {
    let key = "correct horse battery staple";
    let context = ProviderContextPolicy::MainMode {
        module: KeyingModule::Ikev2,
        policy: MainModePolicy::ikev2_default_psk(key),
    };
    for text in [format!("{context:?}"), format!("{context:#?}")] {
        assert!(!text.contains(key), "{text}");
        assert!(!text.contains("horse"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
    let hex = SecretBytes::new(vec![0xab; 4]);
    assert_eq!(format!("{hex:?}"), "<redacted>");
}

// ---------------------------------------------------------------------------------------
// Constructors

#[test]
fn constructors_build_valid_policies() -> TestResult {
    MainModePolicy::ikev2_default_psk("k").validate(KeyingModule::Ikev2)?;
    MainModePolicy::ikev2_default_certificate([path("/ca.pem")], path("/me.pem"), path("/me.key"))
        .validate(KeyingModule::Ikev2)?;
    MainModePolicy::ike_default_psk("k").validate(KeyingModule::Ike)?;
    MainModePolicy::authip_kerberos().validate(KeyingModule::Authip)?;
    ExtendedModePolicy::kerberos_socket_principal().validate()?;
    KeyingPolicy::ikev2_only().validate()?;
    for proposal in [
        IpsecProposal::esp_aes128_gcm(),
        IpsecProposal::esp_aes256_gcm(),
        IpsecProposal::esp_chacha20_poly1305(),
        IpsecProposal::esp_aes128_cbc_sha256(),
        IpsecProposal::esp_auth_sha256(),
        IpsecProposal::ah_sha1(),
        IpsecProposal::ah_sha256(),
    ] {
        proposal.validate()?;
        for module in KeyingModule::ALL {
            IpsecTransportPolicy::new([proposal.clone()]).validate(module)?;
        }
    }
    for module in KeyingModule::ALL {
        tunnel_policy().validate(module)?;
    }
    // The AuthIP-only pieces are valid for AuthIP.
    ProviderContextPolicy::Transport {
        module: KeyingModule::Authip,
        policy: IpsecTransportPolicy::new([IpsecProposal::ah_sha1()])
            .with_flags(
                IPSEC_POLICY_FLAG_ND_SECURE | IPSEC_POLICY_FLAG_KEY_MANAGER_ALLOW_DICTATE_KEY,
            )
            .with_em_policy(ExtendedModePolicy::kerberos_socket_principal()),
    }
    .validate()?;
    ProviderContextPolicy::General(Vec::new()).validate()?;
    Ok(())
}

#[test]
fn gcm_forms_share_one_canonical_transform() {
    let wfp = SaTransform::EspAuthAndCipher {
        auth: AuthTransform::GmacAes256,
        cipher: CipherTransform::GcmAes256,
    };
    assert_eq!(
        wfp.canonical(),
        SaTransform::EspCipher(CipherTransform::GcmAes256)
    );
    let cbc = SaTransform::EspAuthAndCipher {
        auth: AuthTransform::HmacSha256_128,
        cipher: CipherTransform::CbcAes128,
    };
    assert_eq!(cbc.canonical(), cbc);
    assert_eq!(wfp.name(), "ESP_AUTH_AND_CIPHER");
}

// ---------------------------------------------------------------------------------------
// Validation

fn expect_err<T: Debug>(result: Result<T, PolicyError>) -> PolicyError {
    match result {
        Ok(value) => panic!("expected a PolicyError, got Ok({value:?})"),
        Err(error) => error,
    }
}

#[test]
fn main_mode_needs_methods_and_proposals() {
    let mut policy = MainModePolicy::ikev2_default_psk("k");
    policy.ike_proposals.clear();
    assert_eq!(
        expect_err(policy.validate(KeyingModule::Ikev2)),
        PolicyError::Empty {
            path: "ike_proposals".into()
        }
    );

    let mut policy = MainModePolicy::ikev2_default_psk("k");
    policy.authentication_methods.clear();
    assert_eq!(
        expect_err(policy.validate(KeyingModule::Ikev2)),
        PolicyError::Empty {
            path: "authentication_methods".into()
        }
    );

    let policy = MainModePolicy::ikev2_default_psk("");
    assert_eq!(
        expect_err(policy.validate(KeyingModule::Ikev2)),
        PolicyError::Empty {
            path: "authentication_methods[0].key".into()
        }
    );

    let policy = MainModePolicy {
        soft_expiration_time: 60,
        ..MainModePolicy::ikev2_default_psk("k")
    };
    assert_eq!(
        expect_err(policy.validate(KeyingModule::Ikev2)).path(),
        "soft_expiration_time"
    );
}

#[test]
fn main_mode_proposal_checks_name_the_field() {
    let mut policy = MainModePolicy::ikev2_default_psk("k");
    policy.ike_proposals[1].max_lifetime_seconds = 0;
    let error = expect_err(policy.validate(KeyingModule::Ikev2));
    assert_eq!(
        error,
        PolicyError::Zero {
            path: "ike_proposals[1].max_lifetime_seconds".into()
        }
    );
    assert_eq!(
        error.to_string(),
        "ike_proposals[1].max_lifetime_seconds: must not be 0"
    );

    // DH group NONE is AuthIP's alone.
    let mut policy = MainModePolicy::ikev2_default_psk("k");
    policy.ike_proposals[1].dh_group = DhGroup::None;
    let error = expect_err(policy.validate(KeyingModule::Ikev2));
    assert!(
        matches!(
            error,
            PolicyError::NotAvailableForModule {
                module: KeyingModule::Ikev2,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.path(), "ike_proposals[1].dh_group");
    let mut authip = MainModePolicy::authip_kerberos();
    authip.ike_proposals[0].dh_group = DhGroup::None;
    assert_eq!(authip.validate(KeyingModule::Authip), Ok(()));

    // AEAD ciphers and Curve25519 are IKEv2's alone.
    let policy = MainModePolicy::new(
        [AuthenticationMethod::preshared_key("k")],
        [MainModeProposal::new(
            IkeCipher::AesGcm128,
            IkeIntegrity::Sha256,
            DhGroup::Ecp256,
        )],
    );
    assert_eq!(policy.validate(KeyingModule::Ikev2), Ok(()));
    assert_eq!(
        expect_err(policy.validate(KeyingModule::Ike)).path(),
        "ike_proposals[0].cipher"
    );
    let policy = MainModePolicy::new(
        [AuthenticationMethod::preshared_key("k")],
        [MainModeProposal::new(
            IkeCipher::Aes128,
            IkeIntegrity::Sha256,
            DhGroup::Curve25519,
        )],
    );
    assert_eq!(
        expect_err(policy.validate(KeyingModule::Ike)).path(),
        "ike_proposals[0].dh_group"
    );
}

#[test]
fn auth_methods_follow_the_module_table() {
    use KeyingModule::{Authip, Ike, Ikev2};
    let cases: [(&str, &[KeyingModule]); 12] = [
        ("PRESHARED_KEY", &[Ike, Ikev2]),
        ("CERTIFICATE", &[Ike, Ikev2]),
        ("KERBEROS", &[Ike, Authip, Ikev2]),
        ("ANONYMOUS", &[Authip]),
        ("SSL", &[Authip]),
        ("NTLM_V2", &[Authip]),
        ("IPV6_CGA", &[Ike]),
        ("CERTIFICATE_ECDSA_P256", &[Ike, Ikev2]),
        ("CERTIFICATE_ECDSA_P384", &[Ike, Ikev2]),
        ("SSL_ECDSA_P256", &[Authip]),
        ("SSL_ECDSA_P384", &[Authip]),
        ("EAP", &[Ikev2]),
    ];
    // every_auth_method() lists PRESHARED_KEY twice; the plain one is first.
    let mut methods = every_auth_method();
    methods.remove(1);
    assert_eq!(methods.len(), cases.len());
    for (method, (name, allowed)) in methods.into_iter().zip(cases) {
        assert_eq!(method.name(), name);
        for module in KeyingModule::ALL {
            let result = MainModePolicy::new([method.clone()], MainModeProposal::ikev1_defaults())
                .validate(module);
            if allowed.contains(&module) {
                assert_eq!(result, Ok(()), "{name} for {module}");
            } else {
                let expected = PolicyError::AuthMethodNotAllowed {
                    path: "authentication_methods[0]".into(),
                    method: name,
                    module,
                };
                assert_eq!(result, Err(expected), "{name} for {module}");
            }
        }
    }
}

#[test]
fn auth_method_details_are_checked() {
    let one_way = |flags| {
        AuthenticationMethod::PresharedKey(PresharedKeyAuthentication {
            key: "k".into(),
            flags,
        })
    };
    let mm = |method: AuthenticationMethod| {
        MainModePolicy::new([method], MainModeProposal::ikev2_defaults())
    };
    assert_eq!(
        mm(one_way(IKEEXT_PSK_FLAG_LOCAL_AUTH_ONLY)).validate(KeyingModule::Ikev2),
        Ok(())
    );
    let error =
        expect_err(mm(one_way(IKEEXT_PSK_FLAG_LOCAL_AUTH_ONLY)).validate(KeyingModule::Ike));
    assert!(
        matches!(
            error,
            PolicyError::FlagNotApplicable {
                flag: "LOCAL_AUTH_ONLY",
                ..
            }
        ),
        "{error:?}"
    );
    let error = expect_err(mm(one_way(0x3)).validate(KeyingModule::Ikev2));
    assert!(
        matches!(error, PolicyError::ConflictingFlags { .. }),
        "{error:?}"
    );
    assert_eq!(error.path(), "authentication_methods[0].flags");
    let error = expect_err(mm(one_way(0x8)).validate(KeyingModule::Ikev2));
    assert_eq!(
        error,
        PolicyError::UnknownFlags {
            path: "authentication_methods[0].flags".into(),
            bits: 0x8
        }
    );

    let with_cert = |edit: &dyn Fn(&mut CertificateAuthentication)| {
        let mut cert = cert_auth();
        edit(&mut cert);
        mm(AuthenticationMethod::Certificate(cert)).validate(KeyingModule::Ikev2)
    };
    let error = expect_err(with_cert(&|c| {
        c.inbound_roots = CertRootConfig::explicit([path("ca.pem")])
    }));
    assert!(
        matches!(error, PolicyError::RelativePath { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.path(),
        "authentication_methods[0].inbound_roots.roots[0].path"
    );
    let error = expect_err(with_cert(&|c| {
        c.inbound_roots = CertRootConfig::explicit([])
    }));
    assert_eq!(
        error.path(),
        "authentication_methods[0].inbound_roots.roots"
    );
    let error = expect_err(with_cert(&|c| {
        c.inbound_roots = CertRootConfig::Unspecified
    }));
    assert_eq!(error.path(), "authentication_methods[0].inbound_roots");
    let error = expect_err(with_cert(&|c| c.local_key = None));
    assert_eq!(error.path(), "authentication_methods[0].local_key");
    let error = expect_err(with_cert(&|c| c.local_certificate = Some(path("host.pem"))));
    assert_eq!(error.path(), "authentication_methods[0].local_certificate");
    let error = expect_err(with_cert(&|c| {
        c.flags = IKEEXT_CERT_AUTH_FLAG_DISABLE_CRL_CHECK | IKEEXT_CERT_AUTH_ENABLE_CRL_CHECK_STRONG
    }));
    assert!(
        matches!(error, PolicyError::ConflictingFlags { .. }),
        "{error:?}"
    );
    let error = expect_err(with_cert(&|c| {
        c.outbound_roots = CertRootConfig::TrustedRootStore {
            path: Some(path("certs")),
        }
    }));
    assert_eq!(
        error.path(),
        "authentication_methods[0].outbound_roots.path"
    );
    let error = expect_err(with_cert(&|c| c.local_certificate = None));
    assert_eq!(error.path(), "authentication_methods[0].local_certificate");

    let cga = |collision_count| {
        AuthenticationMethod::Ipv6Cga(CgaAuthentication {
            key: path("/k.pem"),
            modifier: [0; 16],
            collision_count,
        })
    };
    let ike = |method| MainModePolicy::new([method], MainModeProposal::ikev1_defaults());
    assert_eq!(ike(cga(2)).validate(KeyingModule::Ike), Ok(()));
    assert_eq!(
        expect_err(ike(cga(3)).validate(KeyingModule::Ike)).path(),
        "authentication_methods[0].collision_count"
    );
}

#[test]
fn authip_only_main_mode_settings() {
    let policy = MainModePolicy {
        flags: IKEEXT_POLICY_FLAG_ENABLE_OPTIONAL_DH,
        initiator_impersonation_type: ImpersonationType::SocketPrincipal,
        ..MainModePolicy::authip_kerberos()
    };
    assert_eq!(policy.validate(KeyingModule::Authip), Ok(()));
    let error = expect_err(policy.validate(KeyingModule::Ike));
    assert_eq!(error.path(), "initiator_impersonation_type");

    let policy = MainModePolicy {
        flags: IKEEXT_POLICY_FLAG_ENABLE_OPTIONAL_DH,
        ..MainModePolicy::ikev2_default_psk("k")
    };
    let error = expect_err(policy.validate(KeyingModule::Ikev2));
    assert!(
        matches!(
            error,
            PolicyError::FlagNotApplicable {
                flag: "ENABLE_OPTIONAL_DH",
                ..
            }
        ),
        "{error:?}"
    );

    let policy = MainModePolicy {
        flags: 0x30,
        ..MainModePolicy::ikev2_default_psk("k")
    };
    assert_eq!(
        expect_err(policy.validate(KeyingModule::Ikev2)),
        PolicyError::UnknownFlags {
            path: "flags".into(),
            bits: 0x30
        }
    );
}

#[test]
fn extended_mode_is_authip_only() {
    let em = ExtendedModePolicy::new([AuthenticationMethod::preshared_key("k")]);
    let error = expect_err(em.validate());
    assert!(
        matches!(
            error,
            PolicyError::AuthMethodNotAllowed {
                module: KeyingModule::Authip,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.path(), "authentication_methods[0]");
    assert_eq!(
        expect_err(ExtendedModePolicy::new([]).validate()).path(),
        "authentication_methods"
    );

    let transport = IpsecTransportPolicy::new([IpsecProposal::esp_aes128_gcm()])
        .with_em_policy(ExtendedModePolicy::kerberos_socket_principal());
    assert_eq!(transport.validate(KeyingModule::Authip), Ok(()));
    assert_eq!(
        expect_err(transport.validate(KeyingModule::Ikev2)).path(),
        "em_policy"
    );
    let bad_em = IpsecTransportPolicy::new([IpsecProposal::esp_aes128_gcm()]).with_em_policy(em);
    assert_eq!(
        expect_err(bad_em.validate(KeyingModule::Authip)).path(),
        "em_policy.authentication_methods[0]"
    );
}

#[test]
fn quick_mode_proposal_checks() {
    let transport = |proposals: Vec<IpsecProposal>| {
        IpsecTransportPolicy::new(proposals).validate(KeyingModule::Ikev2)
    };
    assert_eq!(expect_err(transport(vec![])).path(), "ipsec_proposals");

    let mut zero = IpsecProposal::esp_aes128_gcm();
    zero.lifetime.seconds = 0;
    assert_eq!(
        expect_err(transport(vec![IpsecProposal::ah_sha1(), zero])),
        PolicyError::Zero {
            path: "ipsec_proposals[1].lifetime.seconds".into()
        }
    );
    let mut volume_only_unlimited = IpsecProposal::esp_aes128_gcm();
    volume_only_unlimited.lifetime.kilobytes = 0;
    assert_eq!(transport(vec![volume_only_unlimited]), Ok(()));

    let mut empty = IpsecProposal::esp_aes128_gcm();
    empty.sa_transforms.clear();
    assert_eq!(
        expect_err(transport(vec![empty])).path(),
        "ipsec_proposals[0].sa_transforms"
    );

    let ah = SaTransform::Ah(AuthTransform::HmacSha256_128);
    let esp = SaTransform::EspCipher(CipherTransform::GcmAes128);
    let bundle = |transforms: Vec<SaTransform>| {
        let mut proposal = IpsecProposal::esp_aes128_gcm();
        proposal.sa_transforms = transforms;
        proposal.validate()
    };
    assert_eq!(bundle(vec![ah, esp]), Ok(()));
    assert_eq!(bundle(vec![esp, ah]), Ok(()));
    for bad in [vec![esp, esp], vec![ah, ah], vec![ah, esp, esp]] {
        let error = expect_err(bundle(bad));
        assert!(
            matches!(error, PolicyError::InvalidTransform { .. }),
            "{error:?}"
        );
        assert_eq!(error.path(), "sa_transforms");
    }
}

#[test]
fn aead_ciphers_carry_their_own_integrity() {
    use AuthTransform as A;
    use CipherTransform as C;
    let check = |transform: SaTransform| {
        let mut proposal = IpsecProposal::esp_aes128_gcm();
        proposal.sa_transforms = vec![transform];
        IpsecTransportPolicy::new([IpsecProposal::ah_sha1(), proposal])
            .validate(KeyingModule::Ikev2)
    };
    // WFP's own GCM form: GCM cipher with the GMAC of the same size.
    for (auth, cipher) in [
        (A::GmacAes128, C::GcmAes128),
        (A::GmacAes192, C::GcmAes192),
        (A::GmacAes256, C::GcmAes256),
    ] {
        assert_eq!(
            check(SaTransform::EspAuthAndCipher { auth, cipher }),
            Ok(())
        );
        assert_eq!(check(SaTransform::EspCipher(cipher)), Ok(()));
    }
    for (auth, cipher) in [
        (A::HmacSha256_128, C::GcmAes128),
        (A::GmacAes256, C::GcmAes128),
        (A::HmacSha1_96, C::ChaCha20Poly1305),
        (A::GmacAes128, C::ChaCha20Poly1305),
    ] {
        let error = expect_err(check(SaTransform::EspAuthAndCipher { auth, cipher }));
        assert_eq!(
            error,
            PolicyError::AeadWithSeparateIntegrity {
                path: "ipsec_proposals[1].sa_transforms[0]".into(),
                cipher,
                auth
            }
        );
        assert!(
            error.to_string().contains("carries its own integrity"),
            "{error}"
        );
    }
    assert_eq!(check(SaTransform::EspCipher(C::ChaCha20Poly1305)), Ok(()));
    // GMAC beside CBC or NULL cannot be negotiated.
    for cipher in [C::CbcAes128, C::Null] {
        let error = expect_err(check(SaTransform::EspAuthAndCipher {
            auth: A::GmacAes128,
            cipher,
        }));
        assert!(
            matches!(error, PolicyError::InvalidTransform { .. }),
            "{error:?}"
        );
    }
    // ESP that protects nothing.
    let error = expect_err(check(SaTransform::EspCipher(C::Null)));
    assert_eq!(error.path(), "ipsec_proposals[1].sa_transforms[0]");
    // Accepted as WFP accepts them: NULL cipher with HMAC, CBC without integrity, GMAC alone.
    assert_eq!(
        check(SaTransform::EspAuthAndCipher {
            auth: A::HmacSha256_128,
            cipher: C::Null
        }),
        Ok(())
    );
    assert_eq!(check(SaTransform::EspCipher(C::CbcAes256)), Ok(()));
    assert_eq!(check(SaTransform::EspAuth(A::GmacAes128)), Ok(()));
    assert_eq!(check(SaTransform::Ah(A::GmacAes256)), Ok(()));
}

#[test]
fn quick_mode_flag_checks() {
    let transport = |flags| {
        IpsecTransportPolicy::new([IpsecProposal::esp_aes128_gcm()])
            .with_flags(flags)
            .validate(KeyingModule::Ikev2)
    };
    assert_eq!(
        transport(IPSEC_POLICY_FLAG_ND_SECURE | IPSEC_POLICY_FLAG_NAT_ENCAP_ALLOW_PEER_BEHIND_NAT),
        Ok(())
    );
    assert_eq!(
        expect_err(transport(
            IPSEC_POLICY_FLAG_ND_SECURE | IPSEC_POLICY_FLAG_ND_BOUNDARY
        )),
        PolicyError::ConflictingFlags {
            path: "flags".into(),
            first: "ND_SECURE",
            second: "ND_BOUNDARY"
        }
    );
    let error = expect_err(transport(IPSEC_POLICY_FLAG_SITE_TO_SITE_TUNNEL));
    assert!(
        matches!(
            error,
            PolicyError::FlagNotApplicable {
                flag: "SITE_TO_SITE_TUNNEL",
                ..
            }
        ),
        "{error:?}"
    );
    let error = expect_err(transport(IPSEC_POLICY_FLAG_KEY_MANAGER_ALLOW_DICTATE_KEY));
    assert!(matches!(
        error,
        PolicyError::FlagNotApplicable {
            flag: "KEY_MANAGER_ALLOW_DICTATE_KEY",
            ..
        }
    ));
    assert_eq!(
        expect_err(transport(0x1 | 0x8000)),
        PolicyError::UnknownFlags {
            path: "flags".into(),
            bits: 0x8001
        }
    );

    let tunnel = tunnel_policy()
        .with_flags(IPSEC_POLICY_FLAG_CLEAR_DF_ON_TUNNEL | IPSEC_POLICY_FLAG_TUNNEL_BYPASS_ICMPV6);
    assert_eq!(tunnel.validate(KeyingModule::Ikev2), Ok(()));
    let tunnel =
        tunnel_policy().with_flags(IPSEC_POLICY_FLAG_ND_BOUNDARY | IPSEC_POLICY_FLAG_ND_SECURE);
    assert_eq!(
        expect_err(tunnel.validate(KeyingModule::Ikev2)).path(),
        "flags"
    );
}

#[test]
fn tunnel_endpoint_checks() {
    let with = |local: &str, remote: &str| {
        let mut policy = tunnel_policy();
        policy.tunnel_endpoints = TunnelEndpoints::new(ip(local), ip(remote));
        policy.validate(KeyingModule::Ikev2)
    };
    assert_eq!(with("2001:db8::1", "2001:db8::2"), Ok(()));
    assert_eq!(
        expect_err(with("192.0.2.1", "2001:db8::2")),
        PolicyError::MixedAddressFamilies {
            path: "tunnel_endpoints".into(),
            first: ip("192.0.2.1"),
            second: ip("2001:db8::2"),
        }
    );
    assert_eq!(
        expect_err(with("0.0.0.0", "192.0.2.2")).path(),
        "tunnel_endpoints.local_address"
    );
    assert_eq!(
        expect_err(with("192.0.2.1", "224.0.0.5")).path(),
        "tunnel_endpoints.remote_address"
    );
    assert_eq!(
        expect_err(with("192.0.2.1", "255.255.255.255")).path(),
        "tunnel_endpoints.remote_address"
    );
    assert_eq!(
        expect_err(with("::", "2001:db8::2")).path(),
        "tunnel_endpoints.local_address"
    );
    let error = expect_err(with("192.0.2.1", "192.0.2.1"));
    assert!(
        matches!(error, PolicyError::InvalidAddress { .. }),
        "{error:?}"
    );
}

#[test]
fn traffic_selector_checks() {
    let with = |selector: TrafficSelector| {
        tunnel_policy()
            .with_traffic_selectors(
                [selector],
                [TrafficSelector::range(ip("10.9.0.0"), ip("10.9.0.255"))],
            )
            .validate(KeyingModule::Ikev2)
    };
    assert_eq!(
        with(TrafficSelector::range(ip("10.3.0.0"), ip("10.3.0.0"))),
        Ok(())
    );
    let error = expect_err(with(TrafficSelector::range(ip("10.3.0.9"), ip("10.3.0.1"))));
    assert_eq!(
        error.path(),
        "traffic_selector_policies[1].local_traffic_selectors[0].end_address"
    );
    let error = expect_err(with(TrafficSelector::range(
        ip("10.3.0.0"),
        ip("2001:db8::1"),
    )));
    assert!(
        matches!(error, PolicyError::MixedAddressFamilies { .. }),
        "{error:?}"
    );
    let ports = TrafficSelector {
        port_start: 2000,
        port_end: 1000,
        ..TrafficSelector::range(ip("10.3.0.0"), ip("10.3.0.9"))
    };
    assert_eq!(
        expect_err(with(ports)).path(),
        "traffic_selector_policies[1].local_traffic_selectors[0].port_end"
    );
    let empty = tunnel_policy().with_traffic_selectors(
        [],
        [TrafficSelector::range(ip("10.9.0.0"), ip("10.9.0.255"))],
    );
    assert_eq!(
        expect_err(empty.validate(KeyingModule::Ikev2)),
        PolicyError::Empty {
            path: "traffic_selector_policies[1].local_traffic_selectors".into()
        }
    );
}

#[test]
fn keying_policy_checks() {
    assert_eq!(
        expect_err(KeyingPolicy::new([]).validate()),
        PolicyError::Empty {
            path: "keying_modules".into()
        }
    );
    assert_eq!(
        expect_err(
            KeyingPolicy::new([KeyingModule::Ikev2, KeyingModule::Ike, KeyingModule::Ikev2])
                .validate()
        ),
        PolicyError::DuplicateKeyingModule {
            path: "keying_modules[2]".into(),
            module: KeyingModule::Ikev2
        }
    );
    let terminating = KeyingPolicy {
        flags: IPSEC_KEYING_POLICY_FLAG_TERMINATING_MATCH,
        ..KeyingPolicy::ikev2_only()
    };
    assert_eq!(terminating.validate(), Ok(()));
    let unknown = KeyingPolicy {
        flags: 0x2,
        ..KeyingPolicy::ikev2_only()
    };
    assert_eq!(
        expect_err(unknown.validate()),
        PolicyError::UnknownFlags {
            path: "flags".into(),
            bits: 0x2
        }
    );
}

#[test]
fn context_validation_uses_the_context_module() {
    let psk = MainModePolicy::ikev2_default_psk("k");
    let ok = ProviderContextPolicy::MainMode {
        module: KeyingModule::Ikev2,
        policy: psk.clone(),
    };
    assert_eq!(ok.context_type(), ProviderContextType::Ikev2Mm);
    assert_eq!(ok.validate(), Ok(()));
    // The same policy under AuthIP: pre-shared keys are not an AuthIP method.
    let authip = ProviderContextPolicy::MainMode {
        module: KeyingModule::Authip,
        policy: psk,
    };
    assert_eq!(authip.context_type(), ProviderContextType::AuthipMm);
    assert!(matches!(
        expect_err(authip.validate()),
        PolicyError::AuthMethodNotAllowed { .. }
    ));

    let tunnel = ProviderContextPolicy::Tunnel {
        module: KeyingModule::Ike,
        policy: tunnel_policy(),
    };
    assert_eq!(tunnel.context_type(), ProviderContextType::IkeQmTunnel);
    assert_eq!(tunnel.keying_module(), Some(KeyingModule::Ike));
    let keying = ProviderContextPolicy::Keying(KeyingPolicy::ikev2_only());
    assert_eq!(keying.context_type(), ProviderContextType::IpsecKeying);
    assert_eq!(keying.keying_module(), None);
    assert_eq!(
        ProviderContextPolicy::General(vec![1]).context_type(),
        ProviderContextType::General
    );
}
