//! Cross-check of the IKEv2 wire formats with an independent
//! implementation, scapy's `scapy.contrib.ikev2`: scapy builds IKE_SA_INIT,
//! IKE_AUTH-like and INFORMATIONAL messages that Palisade parses, and
//! dissects messages Palisade builds. Both sides reduce a message to the
//! same canonical description (see `tests/interop/ikev2_scapy.py`), so
//! equal strings mean equal field values.
//!
//! Needs python3 with scapy 2.5+ (scripts/lib/deps.sh installs it). Set
//! PALISADE_SKIP_SCAPY=1 to skip explicitly; a missing scapy is otherwise a
//! failure.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;

#[path = "../../../tests/support/scapy.rs"]
mod scapy;

use palisade_wire::ikev2::*;

fn to_hex(b: &[u8]) -> String {
    if b.is_empty() {
        return "-".into();
    }
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

fn from_hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The canonical description of `msg`, from Palisade's parse alone.
fn describe(msg: &[u8]) -> String {
    let h = IkeHeader::parse(msg).expect("header");
    let mut parts = vec![format!(
        "HDR {:016x} {:016x} {} {} {} {}",
        h.initiator_spi, h.responder_spi, h.exchange_type, h.flags, h.message_id, h.length
    )];
    for p in h.payloads(msg) {
        let p = p.expect("payload");
        let b = p.body;
        parts.push(match p.payload_type {
            payload_type::SA => {
                let sa = SecurityAssociation::parse(b).expect("sa");
                let props: Vec<String> = sa
                    .proposals()
                    .map(|p| {
                        let ts: Vec<String> = p
                            .transforms()
                            .map(|t| {
                                let kl = t.key_length().map_or("-".into(), |k| k.to_string());
                                format!("T{}/{}/{}", t.transform_type, t.transform_id, kl)
                            })
                            .collect();
                        format!(
                            "P{}/{}/{}/{}:{}",
                            p.proposal_num,
                            p.protocol_id,
                            to_hex(p.spi),
                            p.num_transforms,
                            ts.join(",")
                        )
                    })
                    .collect();
                format!("SA {}", props.join(" "))
            }
            payload_type::KE => {
                let ke = KeyExchange::parse(b).expect("ke");
                format!("KE {} {}", ke.dh_group, to_hex(ke.data))
            }
            payload_type::NONCE => {
                format!("NONCE {}", to_hex(Nonce::parse(b).expect("nonce").data))
            }
            payload_type::N => {
                let n = Notify::parse(b).expect("notify");
                format!(
                    "N {} {} {} {}",
                    n.protocol_id,
                    to_hex(n.spi),
                    n.notify_type,
                    to_hex(n.data)
                )
            }
            kind @ (payload_type::IDI | payload_type::IDR) => {
                let id = Identification::parse(b).expect("id");
                let tag = if kind == payload_type::IDI {
                    "IDI"
                } else {
                    "IDR"
                };
                format!("{tag} {} {}", id.id_type, to_hex(id.data))
            }
            payload_type::AUTH => {
                let a = Auth::parse(b).expect("auth");
                format!("AUTH {} {}", a.auth_method, to_hex(a.data))
            }
            kind @ (payload_type::TSI | payload_type::TSR) => {
                let ts = TrafficSelectors::parse(b).expect("ts");
                let tag = if kind == payload_type::TSI {
                    "TSI"
                } else {
                    "TSR"
                };
                let sel: Vec<String> = ts
                    .selectors()
                    .map(|s| match s {
                        TrafficSelector::Range(r) => format!(
                            "R{}/{}/{}-{}/{}-{}",
                            if r.start_address.is_ipv4() { 7 } else { 8 },
                            r.ip_protocol_id,
                            r.start_port,
                            r.end_port,
                            r.start_address,
                            r.end_address
                        ),
                        TrafficSelector::Other { ts_type, .. } => format!("O{ts_type}"),
                    })
                    .collect();
                format!("{tag} {} {}", ts.count, sel.join(" "))
            }
            payload_type::D => {
                let d = Delete::parse(b).expect("delete");
                let spis: Vec<String> = d.spis().map(to_hex).collect();
                let spis = if spis.is_empty() {
                    "-".into()
                } else {
                    spis.join(",")
                };
                format!(
                    "D {} {} {} {}",
                    d.protocol_id,
                    d.spi_size,
                    d.num_spis(),
                    spis
                )
            }
            payload_type::CP => {
                let cp = Configuration::parse(b).expect("cp");
                let attrs: Vec<String> = cp
                    .attributes()
                    .map(|a| format!("A{}:{}", a.attribute_type, to_hex(a.value)))
                    .collect();
                let attrs = if attrs.is_empty() {
                    "-".into()
                } else {
                    attrs.join(" ")
                };
                format!("CP {} {attrs}", cp.cfg_type)
            }
            payload_type::V => format!("V {}", to_hex(VendorId::parse(b).expect("v").data)),
            other => format!("? {other}"),
        });
    }
    parts.join(" | ")
}

const SPI_I: u64 = 0x0102_0304_0506_0708;
const SPI_R: u64 = 0xb1b2_b3b4_b5b6_b7b8;

fn header(exchange_type: u8, flags: u8, message_id: u32, responder_spi: u64) -> IkeHeader {
    IkeHeader {
        initiator_spi: SPI_I,
        responder_spi,
        next_payload: 0,
        major_version: IKE_MAJOR_VERSION,
        minor_version: 0,
        exchange_type,
        flags,
        message_id,
        length: 0,
    }
}

fn tf(transform_type: u8, transform_id: u16, key_length: Option<u16>) -> TransformSpec {
    TransformSpec {
        transform_type,
        transform_id,
        key_length,
    }
}

fn range(proto: u8, ports: (u16, u16), a: &str, b: &str) -> TrafficSelector<'static> {
    TrafficSelector::Range(AddressRange {
        ip_protocol_id: proto,
        start_port: ports.0,
        end_port: ports.1,
        start_address: a.parse::<IpAddr>().expect("addr"),
        end_address: b.parse::<IpAddr>().expect("addr"),
    })
}

fn build(h: IkeHeader, f: impl FnOnce(&mut MessageBuilder<'_>)) -> Vec<u8> {
    let mut out = vec![0u8; 2048];
    let mut b = MessageBuilder::new(&mut out, &h).expect("builder");
    f(&mut b);
    let len = b.finish().expect("finish");
    out.truncate(len);
    out
}

fn palisade_messages() -> Vec<(&'static str, Vec<u8>)> {
    use transform_type::*;
    let ike1 = [
        tf(ENCR, encr::ENCR_AES_CBC, Some(256)),
        tf(ENCR, encr::ENCR_AES_CBC, Some(128)),
        tf(PRF, prf::PRF_HMAC_SHA2_256, None),
        tf(PRF, prf::PRF_HMAC_SHA1, None),
        tf(INTEG, integ::AUTH_HMAC_SHA2_256_128, None),
        tf(INTEG, integ::AUTH_HMAC_SHA1_96, None),
        tf(KE, ke_method::MODP_2048, None),
    ];
    let ike2 = [
        tf(ENCR, encr::ENCR_AES_GCM_16, Some(256)),
        tf(ENCR, encr::ENCR_CHACHA20_POLY1305, None),
        tf(PRF, prf::PRF_HMAC_SHA2_512, None),
        tf(KE, ke_method::CURVE25519, None),
        tf(KE, ke_method::ECP_384, None),
        tf(ADDKE1, ke_method::ML_KEM_768, None),
    ];
    let props = [
        ProposalSpec {
            proposal_num: 1,
            protocol_id: protocol_id::IKE,
            spi: &[],
            transforms: &ike1,
        },
        ProposalSpec {
            proposal_num: 2,
            protocol_id: protocol_id::IKE,
            spi: &[],
            transforms: &ike2,
        },
    ];
    let ke_data: Vec<u8> = (0..=255).collect();
    let nonce: Vec<u8> = (0..32).map(|i| 0xA0 ^ i).collect();
    let init = build(
        header(exchange_type::IKE_SA_INIT, flags::INITIATOR, 0, 0),
        |b| {
            b.push(
                payload_type::SA,
                false,
                &SecurityAssociationSpec { proposals: &props },
            )
            .expect("sa");
            b.push(
                payload_type::KE,
                false,
                &KeyExchange {
                    dh_group: ke_method::MODP_2048,
                    data: &ke_data,
                },
            )
            .expect("ke");
            b.push(payload_type::NONCE, false, &Nonce { data: &nonce })
                .expect("nonce");
            for (t, d) in [
                (notify_type::NAT_DETECTION_SOURCE_IP, [0x33; 20]),
                (notify_type::NAT_DETECTION_DESTINATION_IP, [0x44; 20]),
            ] {
                b.push(payload_type::N, false, &Notify::new(t, &d))
                    .expect("n");
            }
            b.push(
                payload_type::N,
                false,
                &Notify::new(notify_type::SIGNATURE_HASH_ALGORITHMS, &[0, 2, 0, 3, 0, 4]),
            )
            .expect("n");
            b.push(payload_type::V, false, &VendorId { data: b"palisade" })
                .expect("v");
        },
    );

    let esp = [
        tf(ENCR, encr::ENCR_AES_GCM_16, Some(128)),
        tf(ESN, esn::ESN, None),
        tf(ESN, esn::NO_ESN, None),
    ];
    let esp_props = [ProposalSpec {
        proposal_num: 1,
        protocol_id: protocol_id::ESP,
        spi: &[0xC0, 0xFF, 0xEE, 0x10],
        transforms: &esp,
    }];
    let tsi = [
        range(0, (0, 65535), "10.1.0.0", "10.1.255.255"),
        range(58, (0, 65535), "fd00:1::", "fd00:1::ffff:ffff"),
    ];
    let tsr = [range(17, (500, 4500), "192.0.2.10", "192.0.2.20")];
    let cp = [
        ConfigAttribute {
            attribute_type: cfg_attribute::INTERNAL_IP4_ADDRESS,
            value: &[],
        },
        ConfigAttribute {
            attribute_type: cfg_attribute::INTERNAL_IP4_DNS,
            value: &[],
        },
    ];
    let auth = build(
        header(exchange_type::IKE_AUTH, flags::INITIATOR, 1, SPI_R),
        |b| {
            b.push(
                payload_type::IDI,
                false,
                &Identification {
                    id_type: id_type::ID_RFC822_ADDR,
                    data: b"carol@example.org",
                },
            )
            .expect("idi");
            b.push(
                payload_type::IDR,
                false,
                &Identification {
                    id_type: id_type::ID_IPV6_ADDR,
                    data: &"fd00::7"
                        .parse::<std::net::Ipv6Addr>()
                        .expect("v6")
                        .octets(),
                },
            )
            .expect("idr");
            b.push(
                payload_type::AUTH,
                false,
                &Auth {
                    auth_method: auth_method::DIGITAL_SIGNATURE,
                    data: &[0x77; 48],
                },
            )
            .expect("auth");
            b.push(
                payload_type::CP,
                false,
                &ConfigurationSpec {
                    cfg_type: cfg_type::CFG_REQUEST,
                    attributes: &cp,
                },
            )
            .expect("cp");
            b.push(
                payload_type::N,
                false,
                &Notify::new(notify_type::ESP_TFC_PADDING_NOT_SUPPORTED, &[]),
            )
            .expect("n");
            b.push(
                payload_type::SA,
                false,
                &SecurityAssociationSpec {
                    proposals: &esp_props,
                },
            )
            .expect("sa");
            b.push(
                payload_type::TSI,
                false,
                &TrafficSelectorsSpec { selectors: &tsi },
            )
            .expect("tsi");
            b.push(
                payload_type::TSR,
                false,
                &TrafficSelectorsSpec { selectors: &tsr },
            )
            .expect("tsr");
        },
    );

    let spis = [
        0xC0, 0xFF, 0xEE, 0x10, 0xC0, 0xFF, 0xEE, 0x11, 0xC0, 0xFF, 0xEE, 0x12,
    ];
    let delete = build(
        header(exchange_type::INFORMATIONAL, flags::RESPONSE, 5, SPI_R),
        |b| {
            b.push(
                payload_type::D,
                false,
                &Delete::new(protocol_id::ESP, &spis),
            )
            .expect("d");
            b.push(
                payload_type::N,
                false,
                &Notify {
                    protocol_id: protocol_id::ESP,
                    spi: &[0xC0, 0xFF, 0xEE, 0x13],
                    notify_type: notify_type::REKEY_SA,
                    data: &[],
                },
            )
            .expect("n");
        },
    );
    let delete_ike = build(
        header(exchange_type::INFORMATIONAL, flags::INITIATOR, 6, SPI_R),
        |b| {
            b.push(payload_type::D, false, &Delete::new(protocol_id::IKE, &[]))
                .expect("d");
        },
    );
    vec![
        ("ike_sa_init", init),
        ("ike_auth_plain", auth),
        ("informational_delete", delete),
        ("informational_delete_ike", delete_ike),
    ]
}

#[test]
fn scapy_and_palisade_agree() {
    let Some(py) = scapy::python_or_skip("scapy.contrib.ikev2", "the scapy IKEv2 cross-check")
    else {
        return;
    };
    let ours = palisade_messages();
    let dir = std::env::temp_dir().join(format!("palisade-ikev2-scapy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let input = dir.join("palisade.txt");
    let output = dir.join("scapy.txt");
    let lines: String = ours
        .iter()
        .map(|(name, bytes)| format!("{name}\t{}\n", to_hex(bytes)))
        .collect();
    std::fs::write(&input, lines).expect("write input");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/ikev2_scapy.py");
    let status = Command::new(&py)
        .arg(&script)
        .arg(&input)
        .arg(&output)
        .status()
        .expect("run scapy");
    assert!(status.success(), "ikev2_scapy.py failed");
    let result = std::fs::read_to_string(&output).expect("read output");
    let _ = std::fs::remove_dir_all(&dir);

    let mut built = 0;
    let mut dissected = 0;
    for line in result.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["BUILT", name, hex, desc] => {
                // scapy built it: Palisade parses it to the same values, and
                // re-emitting every payload body reproduces the bytes.
                let msg = from_hex(hex);
                assert_eq!(describe(&msg), *desc, "Palisade reads scapy's {name}");
                let h = IkeHeader::parse(&msg).expect("header");
                let rebuilt = build(h, |b| {
                    for p in h.payloads(&msg) {
                        let p = p.expect("payload");
                        b.push(p.payload_type, p.critical, p.body).expect("push");
                    }
                });
                assert_eq!(rebuilt, msg, "{name} rebuilt");
                built += 1;
            }
            ["DISSECTED", name, desc] => {
                let (_, msg) = ours.iter().find(|(n, _)| n == name).expect("known name");
                assert_eq!(*desc, describe(msg), "scapy reads Palisade's {name}");
                dissected += 1;
            }
            other => panic!("unexpected line from ikev2_scapy.py: {other:?}"),
        }
    }
    assert_eq!((built, dissected), (4, ours.len()));
}
