//! A PKI made at test time with rcgen: roots, intermediates and end
//! entities with RSA or ECDSA keys, and the credentials an IKE policy
//! carries.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use palisade_crypto::{Certificate, SigningKey, TrustAnchors};
use palisade_ike::{Credentials, LocalCredential};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, RsaKeySize, SanType, date_time_ymd,
};

/// Key types of the test PKI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Rsa2048,
    Rsa4096,
    EcdsaP256,
    EcdsaP384,
}

impl Key {
    fn generate(self) -> KeyPair {
        match self {
            Key::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048),
            Key::Rsa4096 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_4096),
            Key::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            Key::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        }
        .expect("key generation")
    }
}

/// A UTC midnight as a wall-clock time.
pub fn at(year: i32, month: u8, day: u8) -> SystemTime {
    let secs = date_time_ymd(year, month, day).unix_timestamp();
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).expect("after 1970"))
}

/// Inside every validity period below.
pub fn today() -> SystemTime {
    at(2026, 6, 1)
}

/// A certification authority.
pub struct Ca {
    pub cert: Certificate,
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Palisade tests");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2040, 1, 1);
    params
}

impl Ca {
    /// A self-signed root.
    pub fn root(name: &str, key: Key) -> Self {
        let key = key.generate();
        let params = ca_params(name);
        let cert = params.self_signed(&key).expect("root");
        Self {
            cert: Certificate::from_der(cert.der()).expect("parses"),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// An intermediate CA under this one.
    pub fn intermediate(&self, name: &str, key: Key) -> Self {
        let key = key.generate();
        let params = ca_params(name);
        let cert = params.signed_by(&key, &self.issuer).expect("intermediate");
        Self {
            cert: Certificate::from_der(cert.der()).expect("parses"),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// An end entity with common name `cn` and the given alternative names,
    /// valid from 2025 to 2027, without extended key usage.
    pub fn end_entity(&self, cn: &str, sans: &[San], key: Key) -> EndEntity {
        self.end_entity_valid(cn, sans, key, (2025, 2027))
    }

    /// The same with validity from the start of `years.0` to the start of
    /// `years.1`.
    pub fn end_entity_valid(
        &self,
        cn: &str,
        sans: &[San],
        key: Key,
        years: (i32, i32),
    ) -> EndEntity {
        self.end_entity_with(cn, sans, key, years, Vec::new())
    }

    /// The same with an extended key usage extension listing `eku` (none
    /// if empty).
    pub fn end_entity_with(
        &self,
        cn: &str,
        sans: &[San],
        key: Key,
        years: (i32, i32),
        eku: Vec<ExtendedKeyUsagePurpose>,
    ) -> EndEntity {
        let key = key.generate();
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Palisade tests");
        params.subject_alt_names = sans
            .iter()
            .map(|san| match san {
                San::Ip(ip) => SanType::IpAddress(*ip),
                San::Dns(name) => SanType::DnsName((*name).try_into().expect("ia5")),
                San::Email(name) => SanType::Rfc822Name((*name).try_into().expect("ia5")),
            })
            .collect();
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = eku;
        params.not_before = date_time_ymd(years.0, 1, 1);
        params.not_after = date_time_ymd(years.1, 1, 1);
        let cert = params.signed_by(&key, &self.issuer).expect("end entity");
        EndEntity {
            cert: Certificate::from_der(cert.der()).expect("parses"),
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }
}

/// A subjectAltName entry.
#[derive(Debug, Clone, Copy)]
pub enum San<'a> {
    Ip(IpAddr),
    Dns(&'a str),
    Email(&'a str),
}

/// An end entity and its key.
pub struct EndEntity {
    pub cert: Certificate,
    pub pem: String,
    pub key_pem: String,
    pub key_der: Vec<u8>,
}

impl EndEntity {
    /// Our credential: this certificate, then `intermediates`.
    pub fn credential(&self, intermediates: &[&Ca]) -> LocalCredential {
        let mut chain = vec![self.cert.clone()];
        chain.extend(intermediates.iter().map(|ca| ca.cert.clone()));
        let key = SigningKey::from_pkcs8_der(&self.key_der).expect("key");
        LocalCredential::new(chain, key).expect("credential")
    }
}

/// Trust anchors from CA certificates.
pub fn anchors(cas: &[&Ca]) -> TrustAnchors {
    let mut anchors = TrustAnchors::new();
    for ca in cas {
        anchors.add(ca.cert.clone()).expect("anchor");
    }
    anchors
}

/// Credentials presenting `ee` with `intermediates` and trusting `roots`.
pub fn credentials(ee: &EndEntity, intermediates: &[&Ca], roots: &[&Ca]) -> Arc<Credentials> {
    Credentials::new(Some(ee.credential(intermediates)), anchors(roots))
}
