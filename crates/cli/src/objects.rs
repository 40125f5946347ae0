//! Engine objects built from command-line flags, as the JSON the daemon takes.

use palisade_control::field_values::parse_field_values;
use palisade_filter::{
    Action, Condition, Field, Filter, FilterFlags as EngineFilterFlags, Layer,
    ProviderFlags as EngineProviderFlags, SublayerFlags as EngineSublayerFlags, Value, Weight,
};
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

/// `FIELD=VALUE` (equal) or `FIELD=LOW-HIGH` (a range) of a number or address field.
fn condition(layer: Layer, text: &str) -> Result<Condition, Failure> {
    let Some((field, value)) = text.split_once('=') else {
        return Err(Failure::usage(
            format!("--match {text:?} is not FIELD=VALUE"),
            "for example --match ip_remote_port=23 or --match ip_remote_port=8000-8080",
        ));
    };
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
