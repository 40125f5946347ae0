//! Key export for Wireshark: the entries name every suite as tshark spells it, the file
//! is private and appended to, and tshark (when installed) decrypts ESP in transport and
//! tunnel mode and IKE_AUTH with the entries written.
//!
//! The CHILD_SAs and IKE SAs come from two palisade-ike endpoints negotiating in memory,
//! so the keys are real ones.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use palisade_esp::{Mode, Packet, Sad};
use palisade_filter::policy::{
    AuthTransform, AuthenticationMethod, CipherTransform, DhGroup, IkeCipher, IkeIntegrity,
    IpsecProposal, IpsecTransportPolicy, IpsecTunnelPolicy, MainModePolicy, MainModeProposal,
    SaTransform, TrafficSelector, TunnelEndpoints,
};
use palisade_ike::{
    Acquire, ChildSa, Endpoint, EndpointConfig, EsnPolicy, Event, IkePolicy, IkeSaInfo, IkeSaKeys,
    QuickModePolicy, StaticPolicy,
};
use palisaded::keylog::{self, KeyLog, PREFERENCES};

const A: &str = "192.0.2.1:500";
const B: &str = "192.0.2.2:500";

// The spellings /work/shared/interop/charon_keys.py uses, seen decrypting with tshark 4.0.
const CHARON_ESP_GCM: &str = "AES-GCM with 16 octet ICV [RFC4106]";
const CHARON_ESP_CBC: &str = "AES-CBC [RFC3602]";
const CHARON_ESP_SHA256: &str = "HMAC-SHA-256-128 [RFC4868]";
const CHARON_ESP_NO_INTEG: &str = "NULL";
const CHARON_IKE_GCM128: &str = "AES-GCM-128 with 16 octet ICV [RFC5282]";
const CHARON_IKE_CBC128: &str = "AES-CBC-128 [RFC3602]";
const CHARON_IKE_SHA256: &str = "HMAC_SHA2_256_128 [RFC4868]";
const CHARON_IKE_NO_INTEG: &str = "NONE [RFC4306]";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip address")
}

fn main_mode(proposal: MainModeProposal) -> IkePolicy {
    IkePolicy::new(MainModePolicy::new(
        [AuthenticationMethod::preshared_key("key export test")],
        vec![proposal],
    ))
}

/// Both sides' policy: one peer, transport mode, the given proposals.
fn transport(mm: MainModeProposal, qm: IpsecProposal) -> (StaticPolicy, StaticPolicy) {
    let side = |peer: &str| {
        StaticPolicy::new().with_peer(
            Some(addr(peer).ip()),
            main_mode(mm),
            Some(QuickModePolicy::Transport(IpsecTransportPolicy::new(vec![
                qm.clone(),
            ]))),
        )
    };
    (side(B), side(A))
}

/// Both sides' policy: a tunnel between A and B for 10.1/16 <-> 10.2/16.
fn tunnel(mm: MainModeProposal, qm: IpsecProposal) -> (StaticPolicy, StaticPolicy) {
    let range = |a: &str, b: &str| TrafficSelector::range(ip(a), ip(b));
    let side = |me: &str, peer: &str, ours: TrafficSelector, theirs: TrafficSelector| {
        StaticPolicy::new()
            .with_peer(
                Some(addr(peer).ip()),
                main_mode(mm),
                Some(QuickModePolicy::Tunnel(IpsecTunnelPolicy::new(
                    TunnelEndpoints::new(addr(me).ip(), addr(peer).ip()),
                    vec![qm.clone()],
                ))),
            )
            .with_selectors(vec![ours], vec![theirs])
    };
    let net1 = range("10.1.0.0", "10.1.255.255");
    let net2 = range("10.2.0.0", "10.2.255.255");
    (side(A, B, net1, net2), side(B, A, net2, net1))
}

/// One negotiation, A initiating, over a lossless in-memory network.
struct Negotiation {
    a: Endpoint,
    b: Endpoint,
    events_a: Vec<Event>,
    events_b: Vec<Event>,
    /// Every datagram: source, destination, IKE message.
    datagrams: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
}

impl Negotiation {
    fn run(policies: (StaticPolicy, StaticPolicy)) -> Negotiation {
        Self::run_with(policies, EndpointConfig::default())
    }

    fn run_with(
        (policy_a, policy_b): (StaticPolicy, StaticPolicy),
        config: EndpointConfig,
    ) -> Negotiation {
        let now = Instant::now();
        let mut n = Negotiation {
            a: Endpoint::new(config, policy_a),
            b: Endpoint::new(config, policy_b),
            events_a: Vec::new(),
            events_b: Vec::new(),
            datagrams: Vec::new(),
        };
        n.a.handle_acquire(
            now,
            Acquire {
                local: addr(A),
                remote: addr(B),
                traffic: None,
            },
        );
        for _ in 0..32 {
            let mut moved = false;
            while let Some(tx) = n.a.poll_transmit() {
                n.b.handle_datagram(now, tx.remote, tx.local, &tx.bytes);
                n.datagrams.push((tx.local, tx.remote, tx.bytes));
                moved = true;
            }
            while let Some(tx) = n.b.poll_transmit() {
                n.a.handle_datagram(now, tx.remote, tx.local, &tx.bytes);
                n.datagrams.push((tx.local, tx.remote, tx.bytes));
                moved = true;
            }
            if !moved {
                break;
            }
        }
        while let Some(e) = n.a.poll_event() {
            n.events_a.push(e);
        }
        while let Some(e) = n.b.poll_event() {
            n.events_b.push(e);
        }
        n
    }

    fn child(events: &[Event]) -> &ChildSa {
        events
            .iter()
            .find_map(|e| match e {
                Event::ChildSaInstalled(c) => Some(&**c),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no CHILD_SA: {events:?}"))
    }

    fn ike(events: &[Event]) -> &IkeSaInfo {
        events
            .iter()
            .find_map(|e| match e {
                Event::IkeSaEstablished(i) => Some(i),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no IKE SA: {events:?}"))
    }

    fn keys_a(&self) -> IkeSaKeys {
        let id = Self::ike(&self.events_a).id;
        self.a
            .ike_sa_keys(id)
            .expect("keys of an established IKE SA")
    }

    fn keys_b(&self) -> IkeSaKeys {
        let id = Self::ike(&self.events_b).id;
        self.b
            .ike_sa_keys(id)
            .expect("keys of an established IKE SA")
    }
}

/// The quoted fields of a `uat:esp_sa:` entry.
fn esp_fields(entry: &str) -> Vec<String> {
    let body = entry.strip_prefix("uat:esp_sa:").expect("esp_sa entry");
    body.split(',')
        .map(|f| {
            f.strip_prefix('"')
                .and_then(|f| f.strip_suffix('"'))
                .unwrap_or_else(|| panic!("unquoted field {f:?} in {entry}"))
                .to_owned()
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn esp_entries_name_each_suite_as_tshark_spells_it() {
    let gcm = || MainModeProposal::new(IkeCipher::AesGcm128, IkeIntegrity::Sha256, DhGroup::Ecp256);
    let cbc = |c, a| IpsecProposal::new(SaTransform::EspAuthAndCipher { auth: a, cipher: c });
    let cases = [
        (
            IpsecProposal::esp_aes128_gcm(),
            CHARON_ESP_GCM,
            CHARON_ESP_NO_INTEG,
            20,
            0,
        ),
        (
            IpsecProposal::esp_aes256_gcm(),
            CHARON_ESP_GCM,
            CHARON_ESP_NO_INTEG,
            36,
            0,
        ),
        (
            IpsecProposal::esp_aes128_cbc_sha256(),
            CHARON_ESP_CBC,
            CHARON_ESP_SHA256,
            16,
            32,
        ),
        (
            cbc(CipherTransform::CbcAes128, AuthTransform::HmacSha1_96),
            CHARON_ESP_CBC,
            "HMAC-SHA-1-96 [RFC2404]",
            16,
            20,
        ),
        (
            cbc(CipherTransform::CbcAes256, AuthTransform::HmacSha384_192),
            CHARON_ESP_CBC,
            "HMAC-SHA-384-192 [RFC4868]",
            32,
            48,
        ),
        (
            cbc(CipherTransform::CbcAes256, AuthTransform::HmacSha512_256),
            CHARON_ESP_CBC,
            "HMAC-SHA-512-256 [RFC4868]",
            32,
            64,
        ),
        (
            IpsecProposal::esp_auth_sha256(),
            "NULL",
            CHARON_ESP_SHA256,
            0,
            32,
        ),
    ];
    for (qm, encr, integ, encr_len, integ_len) in cases {
        let n = Negotiation::run(transport(gcm(), qm.clone()));
        let (ca, cb) = (
            Negotiation::child(&n.events_a),
            Negotiation::child(&n.events_b),
        );
        let [a_in, a_out] = keylog::esp_sa_entries(ca).expect("entries");
        let [b_in, b_out] = keylog::esp_sa_entries(cb).expect("entries");
        // What one side sends with, the other opens with: the same entry from both.
        assert_eq!(a_out, b_in, "{qm:?}");
        assert_eq!(a_in, b_out, "{qm:?}");
        let f = esp_fields(&a_out);
        assert_eq!(f.len(), 8, "tshark 4.0 takes 8 fields: {a_out}");
        assert_eq!(f[0], "IPv4");
        assert_eq!((f[1].as_str(), f[2].as_str()), ("192.0.2.1", "192.0.2.2"));
        assert_eq!(f[3], format!("{:#010x}", ca.outbound_spi));
        assert_eq!((f[4].as_str(), f[6].as_str()), (encr, integ), "{qm:?}");
        let key_hex = |k: &str| k.strip_prefix("0x").map_or(0, |h| h.len() / 2);
        assert_eq!(
            (key_hex(&f[5]), key_hex(&f[7])),
            (encr_len, integ_len),
            "{a_out}"
        );
        if encr_len == 0 {
            assert_eq!(f[5], "", "no key for NULL encryption");
        }
        let fi = esp_fields(&a_in);
        assert_eq!((fi[1].as_str(), fi[2].as_str()), ("192.0.2.2", "192.0.2.1"));
        assert_eq!(fi[3], format!("{:#010x}", ca.inbound_spi));
        assert_ne!(
            (&fi[5], &fi[7]),
            (&f[5], &f[7]),
            "each direction has its own keys"
        );
    }
}

#[test]
fn suites_tshark_cannot_decrypt_get_a_comment_not_an_entry() {
    let mm = MainModeProposal::new(
        IkeCipher::ChaCha20Poly1305,
        IkeIntegrity::Sha256,
        DhGroup::Curve25519,
    );
    let n = Negotiation::run(transport(mm, IpsecProposal::esp_chacha20_poly1305()));
    let child = Negotiation::child(&n.events_a);
    assert!(keylog::esp_sa_entries(child).is_err());
    let lines = keylog::child_sa_lines(child);
    assert!(lines.lines().all(|l| l.starts_with('#')), "{lines}");
    assert!(keylog::ikev2_entry(&n.keys_a()).is_err(), "ChaCha20 IKE SA");

    let mm = MainModeProposal::new(IkeCipher::Aes128, IkeIntegrity::Sha256, DhGroup::Ecp256);
    let n = Negotiation::run(transport(mm, IpsecProposal::ah_sha256()));
    let child = Negotiation::child(&n.events_a);
    assert!(keylog::esp_sa_entries(child).is_err(), "AH");
}

#[test]
fn ike_entries_name_each_transform_as_tshark_spells_it() {
    let cases = [
        (
            IkeCipher::AesGcm128,
            IkeIntegrity::Sha256,
            CHARON_IKE_GCM128,
            CHARON_IKE_NO_INTEG,
            20,
            0,
        ),
        (
            IkeCipher::AesGcm256,
            IkeIntegrity::Sha384,
            "AES-GCM-256 with 16 octet ICV [RFC5282]",
            CHARON_IKE_NO_INTEG,
            36,
            0,
        ),
        (
            IkeCipher::Aes128,
            IkeIntegrity::Sha256,
            CHARON_IKE_CBC128,
            CHARON_IKE_SHA256,
            16,
            32,
        ),
        (
            IkeCipher::Aes128,
            IkeIntegrity::Sha1,
            CHARON_IKE_CBC128,
            "HMAC_SHA1_96 [RFC2404]",
            16,
            20,
        ),
        (
            IkeCipher::Aes256,
            IkeIntegrity::Sha384,
            "AES-CBC-256 [RFC3602]",
            "HMAC_SHA2_384_192 [RFC4868]",
            32,
            48,
        ),
        (
            IkeCipher::Aes256,
            IkeIntegrity::Sha512,
            "AES-CBC-256 [RFC3602]",
            "HMAC_SHA2_512_256 [RFC4868]",
            32,
            64,
        ),
    ];
    for (cipher, integrity, encr, integ, encr_len, integ_len) in cases {
        let mm = MainModeProposal::new(cipher, integrity, DhGroup::Ecp256);
        let n = Negotiation::run(transport(mm, IpsecProposal::esp_aes128_gcm()));
        let (ka, kb) = (n.keys_a(), n.keys_b());
        let entry = keylog::ikev2_entry(&ka).expect("entry");
        assert_eq!(
            entry,
            keylog::ikev2_entry(&kb).expect("entry"),
            "both roles agree"
        );
        let info = Negotiation::ike(&n.events_a);
        let body = entry
            .strip_prefix("uat:ikev2_decryption_table:")
            .expect("prefix");
        let f: Vec<&str> = body.split(',').collect();
        assert_eq!(f.len(), 8, "{entry}");
        assert_eq!(
            f[0],
            format!("{:016x}", info.initiator_spi),
            "SPIs unquoted"
        );
        assert_eq!(f[1], format!("{:016x}", info.responder_spi));
        assert_eq!((f[2].len() / 2, f[3].len() / 2), (encr_len, encr_len));
        assert_eq!((f[5].len() / 2, f[6].len() / 2), (integ_len, integ_len));
        assert_eq!(f[4], format!("\"{encr}\""), "{cipher:?}");
        assert_eq!(f[7], format!("\"{integ}\""), "{integrity:?}");
        assert_eq!(f[2], hex(ka.sk_ei()));
        assert_ne!(f[2], f[3]);
        let debug = format!("{ka:?}");
        assert!(
            !debug.contains(&hex(ka.sk_ei())) && !debug.contains(&hex(ka.sk_er())),
            "Debug shows no keys: {debug}"
        );
    }
}

/// A directory of this test's own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "palisade-keylog-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_file_is_private_appended_and_never_a_link() {
    let dir = TempDir::new("file");
    let path = dir.0.join("keys.txt");
    let mm = MainModeProposal::new(IkeCipher::AesGcm128, IkeIntegrity::Sha256, DhGroup::Ecp256);
    let n = Negotiation::run(transport(mm, IpsecProposal::esp_aes128_gcm()));
    {
        let mut log = KeyLog::open(&path).expect("open");
        assert_eq!(log.path(), path);
        assert_eq!(mode(&path), 0o600, "created 0600");
        log.log_child_sa(Negotiation::child(&n.events_a))
            .expect("child");
        log.log_ike_sa(&n.keys_a()).expect("ike");
    }
    {
        let mut log = KeyLog::open(&path).expect("reopen");
        log.log_child_sa(Negotiation::child(&n.events_b))
            .expect("child");
    }
    let text = std::fs::read_to_string(&path).expect("read");
    let entries: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    for p in PREFERENCES {
        assert_eq!(
            entries.iter().filter(|l| *l == p).count(),
            1,
            "once: {text}"
        );
    }
    assert_eq!(
        entries
            .iter()
            .filter(|l| l.starts_with("uat:esp_sa:"))
            .count(),
        4
    );
    assert_eq!(
        entries
            .iter()
            .filter(|l| l.starts_with("uat:ikev2_decryption_table:"))
            .count(),
        1
    );

    // A file left readable by someone is made private when opened.
    let loose = dir.0.join("loose.txt");
    std::fs::write(&loose, "# old\n").expect("write");
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    KeyLog::open(&loose).expect("open loose");
    assert_eq!(mode(&loose), 0o600);
    assert!(
        !std::fs::read_to_string(&loose)
            .expect("read")
            .contains(PREFERENCES[0]),
        "a file with content is appended to, not given a second header"
    );

    // A link could point the keys anywhere.
    let link = dir.0.join("link.txt");
    std::os::unix::fs::symlink(&path, &link).expect("symlink");
    assert!(KeyLog::open(&link).is_err(), "symlink refused");
    assert!(KeyLog::open(&dir.0).is_err(), "a directory refused");
}

// ---- tshark ----

fn tshark() -> bool {
    let found = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIP: tshark is not installed (apt-get install tshark)");
    }
    found
}

/// The `-o` arguments a key file gives tshark: every line that is not a comment.
fn tshark_options(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .expect("key file")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .flat_map(|l| ["-o".to_owned(), l.to_owned()])
        .collect()
}

/// A pcap file of raw IP packets (LINKTYPE_RAW).
fn write_pcap(path: &Path, packets: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&101u32.to_le_bytes());
    for (i, p) in packets.iter().enumerate() {
        let len = u32::try_from(p.len()).expect("packet length");
        out.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        out.extend_from_slice(&(u32::try_from(i).expect("index") * 1000).to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(p);
    }
    std::fs::write(path, out).expect("write pcap");
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).expect("length");
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, protocol, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let sum = checksum(&p);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An ICMP echo request with a recognisable payload.
fn icmp_echo(src: &str, dst: &str, seq: u16) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0, 0x50, 0x41];
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(b"palisade key export test payload");
    let sum = checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let v4 = |s: &str| s.parse::<Ipv4Addr>().expect("ipv4");
    ipv4(v4(src), v4(dst), 1, &icmp)
}

/// Seals `inner` with the outbound SA of `child`.
fn seal(child: &ChildSa, inner: &[u8]) -> Vec<u8> {
    let now = Instant::now();
    let mut sad = Sad::new();
    let [_, out] = child.sa_configs();
    let handle = sad.install(out.config, out.keymat, now).expect("install");
    const ROOM: usize = 256;
    let mut buf = vec![0u8; ROOM + inner.len() + 512];
    buf[ROOM..ROOM + inner.len()].copy_from_slice(inner);
    let mut p = Packet::new(&mut buf, ROOM, inner.len());
    sad.encapsulate(handle, &mut p, now).expect("encapsulate");
    p.bytes().to_vec()
}

fn run_tshark(pcap: &Path, options: &[String], fields: &[&str], filter: &str) -> String {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(pcap).args(options);
    cmd.args(["-Y", filter, "-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark failed: {stderr}");
    assert!(
        !stderr.contains("Invalid -o flag"),
        "tshark refused an entry: {stderr}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn tshark_decrypts_esp_in_transport_and_tunnel_mode_with_the_entries() {
    if !tshark() {
        return;
    }
    // Without ESN tshark 4.0 also checks every ICV, which proves the integrity keys.
    let icv = esp_capture(EsnPolicy::Off);
    for row in &icv {
        assert_eq!(
            (row[1].as_str(), row[2].as_str()),
            ("1", "0"),
            "ICV good: {icv:?}"
        );
    }
    // With ESN (the default) the payloads still decrypt; tshark 4.0's 8-field entry has
    // no ESN flag, so its ICV check would fail (docs/operations.md says so).
    esp_capture(EsnPolicy::Either);
}

/// Negotiates a transport-mode AES-GCM and a tunnel-mode AES-CBC+HMAC-SHA256 CHILD_SA,
/// seals an ICMP echo each way on each, and has tshark decrypt them with the key file;
/// returns tshark's ICV verdicts (frame, good, bad) with the authentication check on.
fn esp_capture(esn: EsnPolicy) -> Vec<Vec<String>> {
    let dir = TempDir::new("esp");
    let keys = dir.0.join("keys.txt");
    let gcm = MainModeProposal::new(IkeCipher::AesGcm128, IkeIntegrity::Sha256, DhGroup::Ecp256);
    let config = EndpointConfig {
        esn,
        ..EndpointConfig::default()
    };
    let t = Negotiation::run_with(transport(gcm, IpsecProposal::esp_aes128_gcm()), config);
    let u = Negotiation::run_with(tunnel(gcm, IpsecProposal::esp_aes128_cbc_sha256()), config);
    let (ta, tb) = (
        Negotiation::child(&t.events_a),
        Negotiation::child(&t.events_b),
    );
    let (ua, ub) = (
        Negotiation::child(&u.events_a),
        Negotiation::child(&u.events_b),
    );
    assert_eq!((ta.mode, ua.mode), (Mode::Transport, Mode::Tunnel));
    assert_eq!(
        (ta.esn, ua.esn),
        (esn != EsnPolicy::Off, esn != EsnPolicy::Off)
    );
    {
        let mut log = KeyLog::open(&keys).expect("open");
        log.log_child_sa(ta).expect("transport SA");
        log.log_child_sa(ua).expect("tunnel SA");
    }
    let packets = vec![
        seal(ta, &icmp_echo("192.0.2.1", "192.0.2.2", 1)),
        seal(tb, &icmp_echo("192.0.2.2", "192.0.2.1", 2)),
        seal(ua, &icmp_echo("10.1.0.1", "10.2.0.1", 3)),
        seal(ub, &icmp_echo("10.2.0.1", "10.1.0.1", 4)),
    ];
    let pcap = dir.0.join("esp.pcap");
    write_pcap(&pcap, &packets);

    let fields = ["frame.number", "esp.spi", "icmp.seq", "ip.dst"];
    let blind = run_tshark(&pcap, &[], &fields, "icmp");
    assert_eq!(blind.trim(), "", "without keys no ICMP is visible");
    let seen = run_tshark(&pcap, &tshark_options(&keys), &fields, "icmp");
    let rows: Vec<Vec<&str>> = seen.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 4, "every packet decrypted ({esn:?}):\n{seen}");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(
            row[2],
            (i + 1).to_string(),
            "ICMP sequence of frame {}",
            i + 1
        );
    }
    // Tunnel mode: the inner header's destination follows the outer one.
    assert!(rows[2][3].ends_with("10.2.0.1"), "{:?}", rows[2]);
    assert!(rows[3][3].ends_with("10.1.0.1"), "{:?}", rows[3]);

    let mut checked = tshark_options(&keys);
    checked.extend([
        "-o".to_owned(),
        "esp.enable_authentication_check:TRUE".to_owned(),
    ]);
    let icv = run_tshark(
        &pcap,
        &checked,
        &["frame.number", "esp.icv_good", "esp.icv_bad"],
        "esp",
    );
    let icv: Vec<Vec<String>> = icv
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect();
    assert_eq!(icv.len(), 4, "{icv:?}");
    icv
}

/// The datagrams as IPv4/UDP packets (checksum 0: allowed for UDP over IPv4).
fn udp_packets(datagrams: &[(SocketAddr, SocketAddr, Vec<u8>)]) -> Vec<Vec<u8>> {
    datagrams
        .iter()
        .map(|(src, dst, bytes)| {
            let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip(), dst.ip()) else {
                panic!("IPv4 test addresses");
            };
            let len = u16::try_from(8 + bytes.len()).expect("length");
            let mut udp = Vec::new();
            udp.extend_from_slice(&src.port().to_be_bytes());
            udp.extend_from_slice(&dst.port().to_be_bytes());
            udp.extend_from_slice(&len.to_be_bytes());
            udp.extend_from_slice(&[0, 0]);
            udp.extend_from_slice(bytes);
            ipv4(s, d, 17, &udp)
        })
        .collect()
}

#[test]
fn tshark_decrypts_ike_auth_with_the_entry() {
    if !tshark() {
        return;
    }
    for (cipher, integrity) in [
        (IkeCipher::AesGcm128, IkeIntegrity::Sha256),
        (IkeCipher::Aes256, IkeIntegrity::Sha256),
    ] {
        let dir = TempDir::new("ike");
        let keys = dir.0.join("keys.txt");
        let mm = MainModeProposal::new(cipher, integrity, DhGroup::Ecp256);
        let n = Negotiation::run(transport(mm, IpsecProposal::esp_aes128_gcm()));
        assert_eq!(n.datagrams.len(), 4, "IKE_SA_INIT and IKE_AUTH");
        {
            let mut log = KeyLog::open(&keys).expect("open");
            log.log_ike_sa(&n.keys_a()).expect("IKE SA");
        }
        let pcap = dir.0.join("ike.pcap");
        write_pcap(&pcap, &udp_packets(&n.datagrams));
        let fields = ["frame.number", "isakmp.id.type", "isakmp.id.data.ipv4_addr"];
        let filter = "isakmp.id.type";
        let blind = run_tshark(&pcap, &[], &fields, filter);
        assert_eq!(blind.trim(), "", "without keys no ID payload is visible");
        let seen = run_tshark(&pcap, &tshark_options(&keys), &fields, filter);
        let rows: Vec<Vec<&str>> = seen.lines().map(|l| l.split('\t').collect()).collect();
        assert_eq!(rows.len(), 2, "IDi and IDr decrypted ({cipher:?}):\n{seen}");
        // Frame 3 is the IKE_AUTH request (IDi = A), frame 4 the response (IDr = B).
        assert_eq!((rows[0][0], rows[0][2]), ("3", "192.0.2.1"), "{seen}");
        assert_eq!((rows[1][0], rows[1][2]), ("4", "192.0.2.2"), "{seen}");

        // With an HMAC, tshark checks SK_ai/SK_ar: no "incorrect" with the keys written,
        // and "incorrect" on both messages when SK_ai and SK_ar are flipped.
        if !cipher.is_aead() {
            let bad_icd = "isakmp.ikev2.integrity_checksum";
            let good = run_tshark(&pcap, &tshark_options(&keys), &["frame.number"], bad_icd);
            assert_eq!(good.trim(), "", "integrity keys correct");
            let flipped: Vec<String> = tshark_options(&keys)
                .into_iter()
                .map(|o| match o.strip_prefix("uat:ikev2_decryption_table:") {
                    Some(body) => {
                        let mut f: Vec<&str> = body.split(',').collect();
                        f.swap(5, 6);
                        format!("uat:ikev2_decryption_table:{}", f.join(","))
                    }
                    None => o,
                })
                .collect();
            let bad = run_tshark(&pcap, &flipped, &["frame.number"], bad_icd);
            assert_eq!(bad.lines().count(), 2, "the check can fail: {bad}");
        }
    }
}
