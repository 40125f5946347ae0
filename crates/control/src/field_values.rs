//! `FIELD=VALUE` text as a classification's field values, for `explain`: each field's
//! value parsed by the field's type, with errors that name the field and the forms it
//! accepts.

use std::fmt;
use std::net::IpAddr;

use palisade_filter::field::FieldType;
use palisade_filter::{Family, Field, FieldValues, Layer, Scalar, Token, Value};
use uuid::Uuid;

/// Why a field value was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldValueError {
    /// The field as the caller wrote it.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// What would be accepted instead.
    pub accepted: String,
}

impl fmt::Display for FieldValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldValueError {}

/// IP protocol names accepted for `IP_PROTOCOL`, besides numbers.
const PROTOCOLS: &[(&str, u8)] = &[
    ("icmp", 1),
    ("igmp", 2),
    ("tcp", 6),
    ("udp", 17),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("icmpv6", 58),
    ("ipv6-icmp", 58),
    ("sctp", 132),
];

/// The field values `pairs` give at `layer`. A field the layer does not offer, a field
/// given twice, and a value that does not parse are errors.
pub fn parse_field_values(
    layer: Layer,
    pairs: &[(String, String)],
) -> Result<FieldValues, FieldValueError> {
    let mut values = FieldValues::new();
    for (name, text) in pairs {
        let field = Field::from_name(name.trim()).ok_or_else(|| FieldValueError {
            field: name.clone(),
            message: "no such field".into(),
            accepted: format!("a field of {layer}: {}", field_names(layer)),
        })?;
        if !layer.has_field(field) {
            return Err(FieldValueError {
                field: name.clone(),
                message: format!("layer {layer} has no field {field}"),
                accepted: format!("a field of {layer}: {}", field_names(layer)),
            });
        }
        if values.get(field).is_some() {
            return Err(FieldValueError {
                field: name.clone(),
                message: "given twice".into(),
                accepted: "one value per field".into(),
            });
        }
        let value = parse_value(layer, field, text.trim()).map_err(|accepted| FieldValueError {
            field: name.clone(),
            message: format!("{text:?} is not a valid value"),
            accepted,
        })?;
        values.set(field, value);
    }
    Ok(values)
}

fn field_names(layer: Layer) -> String {
    let names: Vec<String> = layer
        .fields()
        .iter()
        .map(|f| f.name().to_ascii_lowercase())
        .collect();
    names.join(", ")
}

/// The value, or the forms accepted for the field.
fn parse_value(layer: Layer, field: Field, text: &str) -> Result<Value, String> {
    match field.field_type() {
        FieldType::Address => {
            let accepted = match layer.family() {
                Some(Family::V4) => "an IPv4 address (192.0.2.1)",
                Some(Family::V6) => "an IPv6 address (2001:db8::1)",
                None => "an IP address",
            };
            let addr: IpAddr = text.parse().map_err(|_| accepted.to_owned())?;
            match (addr, layer.family()) {
                (IpAddr::V4(a), Some(Family::V4) | None) => Ok(Scalar::V4(a).into()),
                (IpAddr::V6(a), Some(Family::V6) | None) => Ok(Scalar::V6(a).into()),
                _ => Err(accepted.to_owned()),
            }
        }
        FieldType::U8 if field == Field::IpProtocol => PROTOCOLS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(text))
            .map(|(_, p)| *p)
            .or_else(|| number(text).and_then(|n| u8::try_from(n).ok()))
            .map(|p| Scalar::U8(p).into())
            .ok_or_else(|| {
                let names: Vec<&str> = PROTOCOLS.iter().map(|(n, _)| *n).collect();
                format!("a protocol number 0-255 or one of {}", names.join(", "))
            }),
        FieldType::U8 => unsigned(text, "0-255", |n| u8::try_from(n).ok().map(Scalar::U8)),
        FieldType::U16 => unsigned(text, "0-65535", |n| u16::try_from(n).ok().map(Scalar::U16)),
        FieldType::U32 => unsigned(text, "0-4294967295", |n| {
            u32::try_from(n).ok().map(Scalar::U32)
        }),
        FieldType::U64 => unsigned(text, "a 64-bit number", |n| Some(Scalar::U64(n))),
        FieldType::Text => Ok(Value::Text(text.to_owned())),
        FieldType::Guid => Uuid::parse_str(text)
            .map(|g| Scalar::Guid(g).into())
            .map_err(|_| "a GUID (0a1b2c3d-0000-4000-8000-000000000000)".to_owned()),
        FieldType::Token if field == Field::AleUserId => user_token(text)
            .ok_or_else(|| "a local user: UID or UID:GID,GID,... (1000:1000,27)".to_owned()),
        FieldType::Token => {
            let names: Vec<&str> = text
                .split('|')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .collect();
            if names.is_empty() {
                Err("a peer identity, several separated by | (host.example.com|CN=host)".into())
            } else {
                Ok(Value::Token(Token::peer(names)))
            }
        }
    }
}

/// A decimal or `0x` hexadecimal number.
fn number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

fn unsigned(
    text: &str,
    range: &str,
    fit: impl FnOnce(u64) -> Option<Scalar>,
) -> Result<Value, String> {
    number(text)
        .and_then(fit)
        .map(Value::Scalar)
        .ok_or_else(|| format!("a number {range}, decimal or 0x hexadecimal"))
}

/// `UID` or `UID:GID,GID,...`.
fn user_token(text: &str) -> Option<Value> {
    let (uid, gids) = match text.split_once(':') {
        Some((uid, gids)) => (uid, gids),
        None => (text, ""),
    };
    let uid = uid.trim().parse().ok()?;
    let gids = gids
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|g| g.parse().ok())
        .collect::<Option<Vec<u32>>>()?;
    Some(Value::Token(Token::user(uid, gids)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn values_by_field_type() -> Result<(), FieldValueError> {
        let v = parse_field_values(
            Layer::OutboundTransportV4,
            &pairs(&[
                ("ip_remote_address", "192.0.2.1"),
                ("IP_REMOTE_PORT", "0x1bb"),
                ("ip_protocol", "TCP"),
            ]),
        )?;
        assert_eq!(
            v.get(Field::IpRemoteAddress),
            Some(&Value::Scalar(Scalar::V4(Ipv4Addr::new(192, 0, 2, 1))))
        );
        assert_eq!(
            v.get(Field::IpRemotePort),
            Some(&Value::Scalar(Scalar::U16(443)))
        );
        assert_eq!(
            v.get(Field::IpProtocol),
            Some(&Value::Scalar(Scalar::U8(6)))
        );
        Ok(())
    }

    #[test]
    fn errors_name_the_field_and_the_accepted_forms() {
        let e = parse_field_values(
            Layer::OutboundTransportV4,
            &pairs(&[("ip_remote_address", "2001:db8::1")]),
        )
        .err();
        assert!(
            matches!(&e, Some(e) if e.field == "ip_remote_address" && e.accepted.contains("IPv4")),
            "{e:?}"
        );
        let e = parse_field_values(
            Layer::OutboundTransportV4,
            &pairs(&[("ip_remote_port", "70000")]),
        )
        .err();
        assert!(
            matches!(&e, Some(e) if e.accepted.contains("0-65535")),
            "{e:?}"
        );
        let e = parse_field_values(Layer::OutboundTransportV4, &pairs(&[("nonsense", "1")])).err();
        assert!(
            matches!(&e, Some(e) if e.message == "no such field" && e.accepted.contains("ip_remote_address")),
            "{e:?}"
        );
        let e = parse_field_values(
            Layer::OutboundTransportV4,
            &pairs(&[("ip_protocol", "6"), ("ip_protocol", "17")]),
        )
        .err();
        assert!(matches!(&e, Some(e) if e.message == "given twice"), "{e:?}");
    }

    #[test]
    fn tokens() {
        assert_eq!(
            user_token("1000:1000, 27"),
            Some(Value::Token(Token::user(1000, vec![1000, 27])))
        );
        assert_eq!(user_token("0"), Some(Value::Token(Token::user(0, vec![]))));
        assert_eq!(user_token("root"), None);
        assert_eq!(user_token("1:x"), None);
    }
}
