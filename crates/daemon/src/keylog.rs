//! Key export for Wireshark/tshark: a file of decryption entries, one for each direction
//! of every CHILD_SA (`uat:esp_sa`) and one for each IKE SA (`uat:ikev2_decryption_table`).
//!
//! Off unless the configuration names a file: whoever reads the file can decrypt the
//! traffic of every SA in it, so opening it logs a warning. The file is created with mode
//! 0600 (and an existing one is set to 0600), entries are appended, never rewritten.
//!
//! Each line that is not a `#` comment is one tshark `-o` argument, in the form tshark
//! 4.0 reads on its command line (the same strings Wireshark keeps in its `esp_sa` and
//! `ikev2_decryption_table` UAT files after the `uat:NAME:` prefix):
//!
//! ```text
//! esp.enable_encryption_decode:TRUE
//! uat:esp_sa:"IPv4","192.0.2.1","192.0.2.2","0x6221546c","AES-GCM with 16 octet ICV [RFC4106]","0x<key+salt>","NULL",""
//! uat:ikev2_decryption_table:<SPIi>,<SPIr>,<SK_ei>,<SK_er>,"AES-GCM-128 with 16 octet ICV [RFC5282]",,,"NONE [RFC4306]"
//! ```
//!
//! The algorithm names are tshark's own spellings (it refuses any other). Suites tshark
//! 4.0 cannot decrypt (ChaCha20-Poly1305, ENCR_NULL_AUTH_AES_GMAC; AH needs no keys to be
//! read) get a comment line instead of an entry.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write as _};
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use palisade_esp::{Direction, EncrId, EspSuite, IntegId, SaTransform};
use palisade_ike::{ChildSa, IkeSaKeys};

/// The preference lines written once at the top of a new file: without the first,
/// tshark shows ESP payloads undecrypted even with matching SAs.
pub const PREFERENCES: &[&str] = &["esp.enable_encryption_decode:TRUE"];

/// The key export file could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyLogError {
    /// open, chmod or write failed.
    #[error("key export file {path}: {source}")]
    Io {
        /// The configured file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The path names something other than a regular file.
    #[error("key export file {0} exists and is not a regular file; name a file path")]
    NotAFile(PathBuf),
}

/// The open key export file.
#[derive(Debug)]
pub struct KeyLog {
    path: PathBuf,
    file: File,
}

impl KeyLog {
    /// Opens (creating with mode 0600) `path` for appending, sets an existing file to
    /// 0600, writes the preference lines into a new file, and warns in the log that key
    /// export is on. A symbolic link is refused (O_NOFOLLOW), so the keys cannot be
    /// redirected into a file someone else chose.
    pub fn open(path: &Path) -> Result<KeyLog, KeyLogError> {
        let io_err = |source| KeyLogError::Io {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(path)
            .map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            return Err(KeyLogError::NotAFile(path.to_owned()));
        }
        if meta.permissions().mode() & 0o777 != 0o600 {
            file.set_permissions(Permissions::from_mode(0o600))
                .map_err(io_err)?;
        }
        let mut log = KeyLog {
            path: path.to_owned(),
            file,
        };
        if meta.len() == 0 {
            let mut header = String::from(
                "# palisaded key export: each line that is not a comment is one tshark -o \
                 argument (docs/operations.md).\n\
                 # Whoever can read this file can decrypt the traffic of the SAs below.\n",
            );
            for p in PREFERENCES {
                header.push_str(p);
                header.push('\n');
            }
            log.append(&header)?;
        }
        tracing::warn!(
            file = %path.display(),
            "key export is ON: the keys of every IKE SA and CHILD_SA are written to this file \
             and anyone who can read it can decrypt the traffic; remove [key_export] from the \
             configuration when you are done debugging"
        );
        Ok(log)
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the `esp_sa` entries of both directions of `child`.
    pub fn log_child_sa(&mut self, child: &ChildSa) -> Result<(), KeyLogError> {
        let text = child_sa_lines(child);
        self.append(&text)
    }

    /// Appends the `ikev2_decryption_table` entry of an IKE SA.
    pub fn log_ike_sa(&mut self, keys: &IkeSaKeys) -> Result<(), KeyLogError> {
        let mut text = match ikev2_entry(keys) {
            Ok(entry) => entry,
            Err(why) => format!(
                "# IKE SA {:016x}_{:016x}: {why}",
                keys.initiator_spi, keys.responder_spi
            ),
        };
        text.push('\n');
        self.append(&text)
    }

    /// One write per call, so with O_APPEND a block of lines is never interleaved with
    /// another writer's.
    fn append(&mut self, text: &str) -> Result<(), KeyLogError> {
        self.file
            .write_all(text.as_bytes())
            .map_err(|source| KeyLogError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

/// The lines [`KeyLog::log_child_sa`] writes: a comment naming the pair, then an entry
/// per direction (or a comment saying why there is none).
pub fn child_sa_lines(child: &ChildSa) -> String {
    let mut text = format!(
        "# CHILD_SA of IKE SA {:#x}: inbound SPI {:#010x}, outbound SPI {:#010x}\n",
        child.ike_sa.0, child.inbound_spi, child.outbound_spi
    );
    match esp_sa_entries(child) {
        Ok(entries) => {
            for e in entries {
                text.push_str(&e);
                text.push('\n');
            }
        }
        Err(why) => {
            text.push_str("# ");
            text.push_str(why);
            text.push('\n');
        }
    }
    text
}

/// The `uat:esp_sa:` entries (8 fields, tshark 4.0) of both directions of a CHILD_SA:
/// inbound (peer to us) first. Addresses are the outer ones: the ESP packet's.
pub fn esp_sa_entries(child: &ChildSa) -> Result<[String; 2], &'static str> {
    let mut out: [String; 2] = Default::default();
    for (slot, sa) in out.iter_mut().zip(child.sa_configs()) {
        let suite = match sa.config.transform {
            SaTransform::Esp(suite) => suite,
            SaTransform::Ah(_) => return Err("AH: tshark reads AH without keys; no entry"),
        };
        let encr = esp_encryption_name(&suite).ok_or(
            "tshark 4.0 cannot decrypt this ESP suite (ChaCha20-Poly1305 and AES-GMAC are \
             not in its list); no entry",
        )?;
        let integ = esp_integrity_name(suite.integ)
            .ok_or("tshark 4.0 has no name for this ESP integrity algorithm; no entry")?;
        let split = suite.encr_key_len().min(sa.keymat.len());
        let (ekey, ikey) = sa.keymat.split_at(split);
        let (src, dst) = match sa.config.direction {
            Direction::Inbound => (sa.config.remote, sa.config.local),
            Direction::Outbound => (sa.config.local, sa.config.remote),
        };
        let family = match src {
            IpAddr::V4(_) => "IPv4",
            IpAddr::V6(_) => "IPv6",
        };
        let hex0x = |k: &[u8]| {
            if k.is_empty() {
                String::new()
            } else {
                format!("0x{}", hex(k))
            }
        };
        *slot = format!(
            "uat:esp_sa:\"{family}\",\"{src}\",\"{dst}\",\"{:#010x}\",\"{encr}\",\"{}\",\"{integ}\",\"{}\"",
            sa.config.spi,
            hex0x(ekey),
            hex0x(ikey),
        );
    }
    Ok(out)
}

/// The `uat:ikev2_decryption_table:` entry of an IKE SA: SPIs and keys as unquoted hex,
/// algorithm names quoted (tshark refuses quoted SPIs).
pub fn ikev2_entry(keys: &IkeSaKeys) -> Result<String, &'static str> {
    let t = keys.transforms;
    let encr = ike_encryption_name(t.encr, t.key_bits)
        .ok_or("tshark 4.0 cannot decrypt this IKE encryption algorithm; no entry")?;
    let integ = ike_integrity_name(t.integ)
        .ok_or("tshark 4.0 has no name for this IKE integrity algorithm; no entry")?;
    Ok(format!(
        "uat:ikev2_decryption_table:{:016x},{:016x},{},{},\"{encr}\",{},{},\"{integ}\"",
        keys.initiator_spi,
        keys.responder_spi,
        hex(keys.sk_ei()),
        hex(keys.sk_er()),
        hex(keys.sk_ai()),
        hex(keys.sk_ar()),
    ))
}

/// tshark 4.0's name for an ESP encryption algorithm (packet-ipsec.c). GCM's key
/// length follows from the key given (16 or 32 octets plus the 4-octet salt).
pub fn esp_encryption_name(suite: &EspSuite) -> Option<&'static str> {
    match suite.encr {
        EncrId::Null => Some("NULL"),
        EncrId::AesCbc => Some("AES-CBC [RFC3602]"),
        EncrId::AesGcm16 => Some("AES-GCM with 16 octet ICV [RFC4106]"),
        EncrId::NullAuthAesGmac | EncrId::ChaCha20Poly1305 => None,
    }
}

/// tshark 4.0's name for an ESP integrity algorithm (`NULL` with an AEAD).
pub fn esp_integrity_name(integ: IntegId) -> Option<&'static str> {
    match integ {
        IntegId::None => Some("NULL"),
        IntegId::HmacSha1_96 => Some("HMAC-SHA-1-96 [RFC2404]"),
        IntegId::HmacSha2_256_128 => Some("HMAC-SHA-256-128 [RFC4868]"),
        IntegId::HmacSha2_384_192 => Some("HMAC-SHA-384-192 [RFC4868]"),
        IntegId::HmacSha2_512_256 => Some("HMAC-SHA-512-256 [RFC4868]"),
        IntegId::AesGmac128 | IntegId::AesGmac256 => None,
    }
}

/// tshark 4.0's name for an IKEv2 encryption algorithm and key length
/// (packet-isakmp.c).
pub fn ike_encryption_name(encr: EncrId, key_bits: u16) -> Option<&'static str> {
    match (encr, key_bits) {
        (EncrId::AesCbc, 128) => Some("AES-CBC-128 [RFC3602]"),
        (EncrId::AesCbc, 192) => Some("AES-CBC-192 [RFC3602]"),
        (EncrId::AesCbc, 256) => Some("AES-CBC-256 [RFC3602]"),
        (EncrId::AesGcm16, 128) => Some("AES-GCM-128 with 16 octet ICV [RFC5282]"),
        (EncrId::AesGcm16, 192) => Some("AES-GCM-192 with 16 octet ICV [RFC5282]"),
        (EncrId::AesGcm16, 256) => Some("AES-GCM-256 with 16 octet ICV [RFC5282]"),
        (EncrId::Null, _) => Some("NULL [RFC2410]"),
        _ => None,
    }
}

/// tshark 4.0's name for an IKEv2 integrity algorithm (`NONE` with an AEAD).
pub fn ike_integrity_name(integ: IntegId) -> Option<&'static str> {
    match integ {
        IntegId::None => Some("NONE [RFC4306]"),
        IntegId::HmacSha1_96 => Some("HMAC_SHA1_96 [RFC2404]"),
        IntegId::HmacSha2_256_128 => Some("HMAC_SHA2_256_128 [RFC4868]"),
        IntegId::HmacSha2_384_192 => Some("HMAC_SHA2_384_192 [RFC4868]"),
        IntegId::HmacSha2_512_256 => Some("HMAC_SHA2_512_256 [RFC4868]"),
        IntegId::AesGmac128 | IntegId::AesGmac256 => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}
