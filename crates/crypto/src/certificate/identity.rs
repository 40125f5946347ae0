//! Whether a certificate vouches for an IKE identity (RFC 4945 §3.1, §5.1.3.2):
//! IP and name identities against subjectAltName entries, DN identities
//! against the subject's DER bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Certificate, CertificateError, SubjectAltName};

/// The contents of an IKE Identification payload that a certificate can
/// vouch for, by ID Type (RFC 7296 §3.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IkeIdentity {
    /// ID_IPV4_ADDR (1).
    Ipv4Addr(Ipv4Addr),
    /// ID_FQDN (2).
    Fqdn(String),
    /// ID_RFC822_ADDR (3).
    Rfc822Addr(String),
    /// ID_IPV6_ADDR (5).
    Ipv6Addr(Ipv6Addr),
    /// ID_DER_ASN1_DN (9): the DER encoding of a Name.
    DerAsn1Dn(Vec<u8>),
}

impl IkeIdentity {
    /// The identity in an Identification payload's ID Type and data.
    /// ID_DER_ASN1_GN, ID_KEY_ID and unknown types are
    /// [`CertificateError::UnsupportedIdentity`], as are addresses of the
    /// wrong length and names that are not UTF-8.
    pub fn from_payload(id_type: u8, data: &[u8]) -> Result<Self, CertificateError> {
        let bad = CertificateError::UnsupportedIdentity(id_type);
        Ok(match id_type {
            1 => Self::Ipv4Addr(Ipv4Addr::from(<[u8; 4]>::try_from(data).map_err(|_| bad)?)),
            2 => Self::Fqdn(String::from_utf8(data.to_vec()).map_err(|_| bad)?),
            3 => Self::Rfc822Addr(String::from_utf8(data.to_vec()).map_err(|_| bad)?),
            5 => Self::Ipv6Addr(Ipv6Addr::from(<[u8; 16]>::try_from(data).map_err(|_| bad)?)),
            9 => Self::DerAsn1Dn(data.to_vec()),
            _ => return Err(bad),
        })
    }

    /// The ID Type.
    pub fn id_type(&self) -> u8 {
        match self {
            Self::Ipv4Addr(_) => 1,
            Self::Fqdn(_) => 2,
            Self::Rfc822Addr(_) => 3,
            Self::Ipv6Addr(_) => 5,
            Self::DerAsn1Dn(_) => 9,
        }
    }
}

/// Names compare ASCII-case-insensitively except the local part of an
/// e-mail address, which RFC 5321 §2.4 leaves case-sensitive. A trailing
/// dot on an FQDN is ignored. No wildcards: strongSwan only honours them
/// when configured, and we have no such configuration yet.
pub(super) fn matches(cert: &Certificate, identity: &IkeIdentity) -> bool {
    let sans = cert.subject_alt_names().iter();
    match identity {
        IkeIdentity::Ipv4Addr(addr) => sans
            .into_iter()
            .any(|san| *san == SubjectAltName::Ip(IpAddr::V4(*addr))),
        IkeIdentity::Ipv6Addr(addr) => sans
            .into_iter()
            .any(|san| *san == SubjectAltName::Ip(IpAddr::V6(*addr))),
        IkeIdentity::Fqdn(fqdn) => sans.into_iter().any(|san| match san {
            SubjectAltName::Dns(dns) => same_domain(dns, fqdn),
            _ => false,
        }),
        IkeIdentity::Rfc822Addr(addr) => sans.into_iter().any(|san| match san {
            SubjectAltName::Rfc822(name) => same_mailbox(name, addr),
            _ => false,
        }),
        IkeIdentity::DerAsn1Dn(dn) => cert.subject_der() == dn.as_slice(),
    }
}

fn same_domain(a: &str, b: &str) -> bool {
    let a = a.strip_suffix('.').unwrap_or(a);
    let b = b.strip_suffix('.').unwrap_or(b);
    !a.is_empty() && a.eq_ignore_ascii_case(b)
}

fn same_mailbox(a: &str, b: &str) -> bool {
    match (a.rsplit_once('@'), b.rsplit_once('@')) {
        (Some((local_a, domain_a)), Some((local_b, domain_b))) => {
            local_a == local_b && same_domain(domain_a, domain_b)
        }
        // An rfc822Name may be a bare domain or host (RFC 5280 §4.2.1.6 for
        // constraints); as an identity only whole addresses match.
        _ => false,
    }
}
