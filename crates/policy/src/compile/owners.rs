//! `programs` and `users`: a rule's connections limited to the local sockets of some
//! programs and users, as ALE_APP_ID and ALE_USER_ID conditions (spec §3: the ALE
//! layers' application and user); `denied_programs` and `denied_users`: the same
//! conditions on filters that block. Users and groups are named as on the host that
//! compiles the policy (the daemon's, for `policy apply`), where palisaded will compare
//! them with the owners of sockets.

use palisade_filter::{Condition, ConditionValue, Field, MatchType, Principal, SecurityDescriptor};
use toml::Spanned;

use super::Source;
use crate::error::Diagnostic;
use crate::principal::{self, Unknown, local_principal};

/// The conditions of `programs` (one per program: conditions on one field are ORed) and
/// `users` (one security descriptor granting them all). Empty lists are errors: they
/// would block every connection of the rule.
pub(crate) fn conditions(
    src: &Source<'_>,
    programs: Option<&Spanned<Vec<String>>>,
    users: Option<&Spanned<Vec<String>>>,
) -> Result<Vec<Condition>, Diagnostic> {
    const EMPTY: &str = "an empty list would block every connection";
    let mut out = Vec::new();
    if let Some(p) = programs {
        out.extend(program_conditions(src, p, "/usr/sbin/sshd", EMPTY)?);
    }
    if let Some(u) = users {
        out.push(users_condition(
            src,
            u,
            "\"alice\", \"1000\" or \"@admins\"",
            EMPTY,
        )?);
    }
    Ok(out)
}

/// The conditions of the BLOCK filters of `denied_programs` (one filter: conditions on
/// one field are ORed) and `denied_users` (another: a connection of a denied program
/// or of a denied user is blocked). Empty lists are errors: they would deny nothing.
pub(crate) fn denied(
    src: &Source<'_>,
    programs: Option<&Spanned<Vec<String>>>,
    users: Option<&Spanned<Vec<String>>>,
) -> Result<Vec<Vec<Condition>>, Diagnostic> {
    const EMPTY: &str = "an empty list denies nothing (remove it)";
    let mut out = Vec::new();
    if let Some(p) = programs {
        out.push(program_conditions(src, p, "/usr/bin/curl", EMPTY)?);
    }
    if let Some(u) = users {
        out.push(vec![users_condition(
            src,
            u,
            "\"nobody\", \"65534\" or \"@guests\"",
            EMPTY,
        )?]);
    }
    Ok(out)
}

/// One ALE_APP_ID condition per program of `list`; an empty list is an error whose
/// message shows `example` and says `empty`.
fn program_conditions(
    src: &Source<'_>,
    list: &Spanned<Vec<String>>,
    example: &str,
    empty: &str,
) -> Result<Vec<Condition>, Diagnostic> {
    if list.get_ref().is_empty() {
        return Err(src.error(
            list.span(),
            format!("expected program paths like \"{example}\"; {empty}"),
        ));
    }
    list.get_ref()
        .iter()
        .map(|program| program_condition(src, list, program))
        .collect()
}

/// One ALE_USER_ID condition whose security descriptor grants every user and group of
/// `list`; an empty list is an error whose message shows `examples` and says `empty`.
fn users_condition(
    src: &Source<'_>,
    list: &Spanned<Vec<String>>,
    examples: &str,
    empty: &str,
) -> Result<Condition, Diagnostic> {
    if list.get_ref().is_empty() {
        return Err(src.error(
            list.span(),
            format!("expected users like {examples}; {empty}"),
        ));
    }
    let principals = list
        .get_ref()
        .iter()
        .map(|name| principal(src, list, name))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Condition::new(
        Field::AleUserId,
        MatchType::Equal,
        ConditionValue::Sd(SecurityDescriptor::allow(principals)),
    ))
}

/// An absolute path, or a directory's programs with a trailing `*`.
fn program_condition(
    src: &Source<'_>,
    list: &Spanned<Vec<String>>,
    program: &str,
) -> Result<Condition, Diagnostic> {
    principal::program_condition(program).ok_or_else(|| {
        src.error(
            list.span(),
            format!(
                "program {:?}: expected {}",
                program.trim(),
                principal::PROGRAM_FORMS
            ),
        )
    })
}

/// A user (name or uid) or a group (`@name` or `@gid`) of this host.
fn principal(
    src: &Source<'_>,
    list: &Spanned<Vec<String>>,
    name: &str,
) -> Result<Principal, Diagnostic> {
    local_principal(name).map_err(|unknown| {
        let (what, name) = match unknown {
            Unknown::User(n) => ("user", n),
            Unknown::Group(n) => ("group", n),
        };
        src.error(
            list.span(),
            format!("{what} {name:?} is not known on this host; give a name, a number, or @group"),
        )
    })
}
