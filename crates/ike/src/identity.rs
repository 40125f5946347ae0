//! IKE identities (RFC 7296 §3.5): what IDi and IDr carry and what policy
//! matches the authenticated peer against.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use palisade_wire::ikev2::{Identification, id_type};

/// An identity as sent in IDi/IDr. Types other than addresses and names are
/// kept as opaque bytes and compared byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// ID_IPV4_ADDR.
    Ipv4(Ipv4Addr),
    /// ID_IPV6_ADDR.
    Ipv6(Ipv6Addr),
    /// ID_FQDN, e.g. `gw.example.com`.
    Fqdn(String),
    /// ID_RFC822_ADDR, e.g. `alice@example.com`.
    Rfc822(String),
    /// ID_DER_ASN1_DN: the DER encoding of an X.501 Name, as a
    /// certificate's subject carries it (RFC 4945 §3.1.5); matched byte
    /// for byte.
    DerAsn1Dn(Vec<u8>),
    /// Any other ID Type (ID_DER_ASN1_GN, ID_KEY_ID, ...) as raw data.
    Other {
        /// ID Type.
        id_type: u8,
        /// Identification Data.
        data: Vec<u8>,
    },
}

impl Identity {
    /// The address identity of `ip`: what is sent when policy names none.
    pub fn from_ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => Self::Ipv4(a),
            IpAddr::V6(a) => Self::Ipv6(a),
        }
    }

    /// The ID Type.
    pub fn id_type(&self) -> u8 {
        match self {
            Self::Ipv4(_) => id_type::ID_IPV4_ADDR,
            Self::Ipv6(_) => id_type::ID_IPV6_ADDR,
            Self::Fqdn(_) => id_type::ID_FQDN,
            Self::Rfc822(_) => id_type::ID_RFC822_ADDR,
            Self::DerAsn1Dn(_) => id_type::ID_DER_ASN1_DN,
            Self::Other { id_type, .. } => *id_type,
        }
    }

    /// Identification Data.
    pub fn data(&self) -> Vec<u8> {
        match self {
            Self::Ipv4(a) => a.octets().to_vec(),
            Self::Ipv6(a) => a.octets().to_vec(),
            Self::Fqdn(s) | Self::Rfc822(s) => s.as_bytes().to_vec(),
            Self::DerAsn1Dn(dn) | Self::Other { data: dn, .. } => dn.clone(),
        }
    }

    /// The ID payload body (ID Type, three reserved octets, data): what
    /// MACedIDFor[I|R] covers (RFC 7296 §2.15).
    pub fn body(&self) -> Vec<u8> {
        let mut out = vec![self.id_type(), 0, 0, 0];
        out.extend_from_slice(&self.data());
        out
    }

    /// The identity a received, already parsed ID payload carries. Names
    /// that are not UTF-8 are kept as opaque identities.
    pub fn from_wire(id: &Identification<'_>) -> Self {
        if let Some(a) = id.ipv4() {
            return Self::Ipv4(a);
        }
        if let Some(a) = id.ipv6() {
            return Self::Ipv6(a);
        }
        let text = || String::from_utf8(id.data.to_vec()).ok();
        match id.id_type {
            id_type::ID_FQDN => text().map(Self::Fqdn),
            id_type::ID_RFC822_ADDR => text().map(Self::Rfc822),
            id_type::ID_DER_ASN1_DN => Some(Self::DerAsn1Dn(id.data.to_vec())),
            _ => None,
        }
        .unwrap_or_else(|| Self::Other {
            id_type: id.id_type,
            data: id.data.to_vec(),
        })
    }
}

impl core::fmt::Display for Identity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Ipv4(a) => write!(f, "{a}"),
            Self::Ipv6(a) => write!(f, "{a}"),
            Self::Fqdn(s) | Self::Rfc822(s) => f.write_str(s),
            Self::DerAsn1Dn(dn) => {
                f.write_str("DN:")?;
                dn.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            Self::Other { id_type, data } => {
                write!(f, "type {id_type}:")?;
                data.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip_through_the_wire_form() {
        let ids = [
            Identity::Ipv4(Ipv4Addr::new(192, 0, 2, 1)),
            Identity::Ipv6("2001:db8::1".parse().expect("v6")),
            Identity::Fqdn("gw.example.com".into()),
            Identity::Rfc822("alice@example.com".into()),
            Identity::DerAsn1Dn(vec![0x30, 0x00]),
            Identity::Other {
                id_type: id_type::ID_KEY_ID,
                data: vec![1, 2, 3],
            },
        ];
        for id in ids {
            let body = id.body();
            let parsed = Identification::parse(&body).expect("parse");
            assert_eq!(Identity::from_wire(&parsed), id);
        }
    }

    #[test]
    fn a_name_that_is_not_utf8_stays_opaque() {
        let body = [id_type::ID_FQDN, 0, 0, 0, 0xFF, 0xFE];
        let parsed = Identification::parse(&body).expect("parse");
        assert_eq!(
            Identity::from_wire(&parsed),
            Identity::Other {
                id_type: id_type::ID_FQDN,
                data: vec![0xFF, 0xFE]
            }
        );
    }
}
