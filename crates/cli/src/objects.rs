//! Engine objects built from command-line flags, as the JSON the daemon takes.

use palisade_control::field_values::parse_field_values;
use palisade_filter::field::FieldType;
use palisade_filter::{
    Action, Condition, ConditionValue, Field, Filter, FilterFlags as EngineFilterFlags, Layer,
    MatchType, Principal, ProviderFlags as EngineProviderFlags, SecurityDescriptor,
    SublayerFlags as EngineSublayerFlags, Value, Weight,
};
use palisade_policy::principal::{PROGRAM_FORMS, Unknown, local_principal, program_condition};
use serde_json::json;

use crate::failure::Failure;
use crate::{FilterFlags, ProviderFlags, SublayerFlags};

/// A key flag as JSON: the UUID text (the daemon parses it), or null.
fn key(flag: &str, text: &Option<String>) -> Result<serde_json::Value, Failure> {
    match text.as_deref() {
        None => Ok(serde_json::Value::Null),
        Some(t) if is_uuid(t) => Ok(json!(t)),
        Some(t) => Err(Failure::usage(
            format!("--{flag} {t:?} is not a key"),
            format!("give the {flag}'s key (a UUID); `palisade {flag} list` shows them"),
        )),
    }
}

/// Whether `text` has a UUID's form (8-4-4-4-12 hex digits).
fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn json(value: &impl serde::Serialize) -> serde_json::Value {
    // The engine's types serialize to plain JSON; this cannot fail.
    serde_json::to_value(value).unwrap_or_default()
}

pub fn filter(flags: &FilterFlags) -> Result<serde_json::Value, Failure> {
    let layer_name = flags.layer.as_deref().ok_or_else(|| {
        Failure::usage(
            "a filter needs --layer (or --file)",
            "for example: palisade filter add --layer outbound_transport_v4 --action block --match ip_remote_port=23",
        )
    })?;
    let layer = Layer::from_name(layer_name).ok_or_else(|| {
        let names: Vec<String> = Layer::ALL
            .iter()
            .map(|l| l.name().to_ascii_lowercase())
            .collect();
        Failure::usage(
            format!("no layer {layer_name:?}"),
            format!("name one of: {}", names.join(", ")),
        )
    })?;
    let action = match flags
        .action
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("block") => Action::Block,
        Some("permit") => Action::Permit,
        Some(other) => {
            return Err(Failure::usage(
                format!("--action {other:?} is not an action"),
                "give block or permit; callout actions need --file",
            ));
        }
        None => {
            return Err(Failure::usage(
                "a filter needs --action",
                "give --action block or --action permit",
            ));
        }
    };
    let mut filter = Filter::new(layer, action);
    filter.name = flags.name.clone().unwrap_or_default();
    filter.description = flags.description.clone().unwrap_or_default();
    if let Some(w) = flags.weight {
        filter.weight = Weight::Exact(w);
    }
    if flags.persistent {
        filter.flags = EngineFilterFlags::PERSISTENT;
    }
    for m in &flags.matches {
        filter.conditions.push(condition(layer, m)?);
    }
    let mut value = json(&filter);
    value["sublayer"] = key("sublayer", &flags.sublayer)?;
    value["provider"] = key("provider", &flags.provider)?;
    Ok(value)
}

/// `FIELD=VALUE` (equal) or `FIELD=LOW-HIGH` (a range) of a number or address field;
/// `ale_app_id=PATH` (a program; `PATH*` for every program under a directory); a
/// principal of a security descriptor for the token fields (`ale_user_id=alice`, a uid,
/// or `@group`; a peer's name for `ale_remote_machine_id` and `ale_remote_user_id`).
fn condition(layer: Layer, text: &str) -> Result<Condition, Failure> {
    let Some((field, value)) = text.split_once('=') else {
        return Err(Failure::usage(
            format!("--match {text:?} is not FIELD=VALUE"),
            "for example --match ip_remote_port=23 or --match ip_remote_port=8000-8080",
        ));
    };
    if let Some(f) = Field::from_name(field.trim()).filter(|f| layer.has_field(*f)) {
        match f.field_type() {
            FieldType::Text if f == Field::AleAppId => {
                return program_condition(value).ok_or_else(|| {
                    Failure::usage(
                        format!("--match {text:?}: not a program"),
                        format!("ale_app_id takes {PROGRAM_FORMS}"),
                    )
                });
            }
            FieldType::Token => return principal_condition(f, value),
            _ => {}
        }
    }
    let scalar = |value: &str| -> Result<(Field, palisade_filter::Scalar), Failure> {
        let values =
            parse_field_values(layer, &[(field.to_owned(), value.to_owned())]).map_err(|e| {
                Failure::usage(
                    format!("--match {e}"),
                    format!("{} accepts {}", e.field, e.accepted),
                )
            })?;
        match values.iter().next() {
            Some((f, Value::Scalar(s))) => Ok((f, *s)),
            _ => Err(Failure::usage(
                format!("--match {field}: only number and address fields can be given as flags"),
                "write the filter as JSON and add it with --file",
            )),
        }
    };
    // A range's ends are separated by '-'; no address or number contains one.
    match value.split_once('-') {
        Some((low, high)) => {
            let (f, low) = scalar(low)?;
            let (_, high) = scalar(high)?;
            Ok(Condition::range(f, low, high))
        }
        None => {
            let (f, v) = scalar(value)?;
            Ok(Condition::equal(f, v))
        }
    }
}

/// A security descriptor that grants one principal: for ALE_USER_ID a local user (name
/// or uid) or group (`@name` or `@gid`), resolved on this host; for the remote identity
/// fields a peer's authenticated name.
fn principal_condition(field: Field, value: &str) -> Result<Condition, Failure> {
    let principal = if field != Field::AleUserId {
        Principal::Name(value.to_owned())
    } else {
        local_principal(value).map_err(|unknown| match unknown {
            Unknown::Group(group) => Failure::usage(
                format!("--match {field}: no group {group:?} on this host"),
                "give a group name or number after @, e.g. @wheel or @10",
            ),
            Unknown::User(user) => Failure::usage(
                format!("--match {field}: no user {user:?} on this host"),
                "give a user name or uid, or @group",
            ),
        })?
    };
    Ok(Condition::new(
        field,
        MatchType::Equal,
        ConditionValue::Sd(SecurityDescriptor::allow([principal])),
    ))
}

pub fn sublayer(flags: &SublayerFlags) -> Result<serde_json::Value, Failure> {
    let weight = flags.weight.ok_or_else(|| {
        Failure::usage(
            "a sublayer needs --weight (or --file)",
            "for example: palisade sublayer add --name mine --weight 100",
        )
    })?;
    let persistent = if flags.persistent {
        EngineSublayerFlags::PERSISTENT
    } else {
        EngineSublayerFlags::NONE
    };
    Ok(json!({
        "name": flags.name.clone().unwrap_or_default(),
        "description": flags.description.clone().unwrap_or_default(),
        "flags": persistent.0,
        "provider": key("provider", &flags.provider)?,
        "weight": weight,
    }))
}

pub fn provider(flags: &ProviderFlags) -> Result<serde_json::Value, Failure> {
    if flags.name.is_none() {
        return Err(Failure::usage(
            "a provider needs --name (or --file)",
            "for example: palisade provider add --name \"my service\"",
        ));
    }
    let persistent = if flags.persistent {
        EngineProviderFlags::PERSISTENT
    } else {
        EngineProviderFlags::NONE
    };
    Ok(json!({
        "name": flags.name.clone().unwrap_or_default(),
        "description": flags.description.clone().unwrap_or_default(),
        "flags": persistent.0,
        "service_name": flags.service_name,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sd(c: &Condition) -> &SecurityDescriptor {
        match &c.value {
            ConditionValue::Sd(sd) => sd,
            other => panic!("not a security descriptor: {other:?}"),
        }
    }

    #[test]
    fn programs_and_directories_of_programs() {
        let c = condition(Layer::AleAuthConnectV4, "ale_app_id=/usr/bin/x-y").expect("path");
        assert_eq!(c.match_type, MatchType::Equal, "a '-' is no range here");
        assert_eq!(c.value, ConditionValue::Text("/usr/bin/x-y".into()));
        let c = condition(Layer::AleAuthConnectV4, "ale_app_id=/opt/app/*").expect("prefix");
        assert_eq!(c.match_type, MatchType::Prefix);
        assert_eq!(c.value, ConditionValue::Text("/opt/app/".into()));
    }

    #[test]
    fn users_and_groups_by_name_or_number_and_peers_by_name() {
        let c = condition(Layer::AleAuthRecvAcceptV4, "ale_user_id=root").expect("root");
        assert_eq!(sd(&c).allow, [Principal::Uid(0)]);
        let c = condition(Layer::AleAuthRecvAcceptV4, "ale_user_id=1000").expect("uid");
        assert_eq!(sd(&c).allow, [Principal::Uid(1000)]);
        let c = condition(Layer::AleAuthRecvAcceptV4, "ale_user_id=@root").expect("group");
        assert_eq!(sd(&c).allow, [Principal::Gid(0)]);
        let c = condition(
            Layer::AleAuthRecvAcceptV4,
            "ale_remote_machine_id=db.example.com",
        )
        .expect("peer");
        assert_eq!(sd(&c).allow, [Principal::Name("db.example.com".into())]);
        let e = condition(Layer::AleAuthRecvAcceptV4, "ale_user_id=no-such-user-here")
            .expect_err("unknown user");
        assert!(format!("{e:?}").contains("no user"), "{e:?}");
    }

    #[test]
    fn fields_the_layer_lacks_are_still_refused() {
        assert!(condition(Layer::OutboundTransportV4, "ale_app_id=/usr/bin/curl").is_err());
        // As a policy file's `programs`: an absolute path, or a directory and `*`.
        assert!(condition(Layer::AleAuthConnectV4, "ale_app_id=curl").is_err());
        assert!(condition(Layer::AleAuthConnectV4, "ale_app_id=/opt/*/bin").is_err());
    }
}
