//! Local users and groups as security-descriptor principals (ALE_USER_ID), named as on
//! the host that resolves them: a rule's `users`, and the CLI's `--match ale_user_id=`.

use nix::unistd::{Group, User};
use palisade_filter::Principal;

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
