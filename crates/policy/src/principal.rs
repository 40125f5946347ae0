//! Who holds a local socket, as the ALE layers' conditions name it: users and groups as
//! security-descriptor principals (ALE_USER_ID), named as on the host that resolves them,
//! and programs by path (ALE_APP_ID). A rule's `users` and `programs`, and the CLI's
//! `--match ale_user_id=` and `--match ale_app_id=`, read them the same way.

use nix::unistd::{Group, User};
use palisade_filter::{Condition, ConditionValue, Field, MatchType, Principal};

/// What [`program_condition`] accepts, for error messages.
pub const PROGRAM_FORMS: &str =
    "an absolute path (\"/usr/sbin/sshd\"), or a directory followed by * (\"/opt/app/*\")";

/// An ALE_APP_ID condition: a program's absolute path, or with a trailing `*` every
/// program under a directory. `None` for anything else (a relative path, a `*` inside).
pub fn program_condition(text: &str) -> Option<Condition> {
    let text = text.trim();
    let (path, match_type) = match text.strip_suffix('*') {
        Some(dir) => (dir, MatchType::Prefix),
        None => (text, MatchType::Equal),
    };
    if !path.starts_with('/') || path.contains('*') {
        return None;
    }
    Some(Condition::new(
        Field::AleAppId,
        match_type,
        ConditionValue::Text(path.to_owned()),
    ))
}

/// A name the user database does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unknown {
    /// No such user.
    User(String),
    /// No such group (named after the `@`).
    Group(String),
}

/// A user (a name or uid) or, after `@`, a group (a name or gid) of this host.
pub fn local_principal(text: &str) -> Result<Principal, Unknown> {
    let text = text.trim();
    if let Some(group) = text.strip_prefix('@') {
        if let Ok(gid) = group.parse::<u32>() {
            return Ok(Principal::Gid(gid));
        }
        return match Group::from_name(group) {
            Ok(Some(g)) => Ok(Principal::Gid(g.gid.as_raw())),
            _ => Err(Unknown::Group(group.to_owned())),
        };
    }
    if let Ok(uid) = text.parse::<u32>() {
        return Ok(Principal::Uid(uid));
    }
    match User::from_name(text) {
        Ok(Some(u)) => Ok(Principal::Uid(u.uid.as_raw())),
        _ => Err(Unknown::User(text.to_owned())),
    }
}
