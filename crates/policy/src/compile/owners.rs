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
    let mut out = Vec::new();
    if let Some(p) = programs {
        if p.get_ref().is_empty() {
            return Err(src.error(
                p.span(),
                "expected program paths like \"/usr/sbin/sshd\"; an empty list would block every connection",
            ));
        }
        for program in p.get_ref() {
            out.push(program_condition(src, p, program)?);
        }
    }
    if let Some(u) = users {
        if u.get_ref().is_empty() {
            return Err(src.error(
                u.span(),
                "expected users like \"alice\", \"1000\" or \"@admins\"; an empty list would block every connection",
            ));
        }
        let allow = u
            .get_ref()
            .iter()
            .map(|name| principal(src, u, name))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(Condition::new(
            Field::AleUserId,
            MatchType::Equal,
            ConditionValue::Sd(SecurityDescriptor::allow(allow)),
        ));
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
    let mut out = Vec::new();
    if let Some(p) = programs {
        if p.get_ref().is_empty() {
            return Err(src.error(
                p.span(),
                "expected program paths like \"/usr/bin/curl\"; an empty list denies nothing (remove it)",
            ));
        }
        out.push(
            p.get_ref()
                .iter()
                .map(|program| program_condition(src, p, program))
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    if let Some(u) = users {
        if u.get_ref().is_empty() {
            return Err(src.error(
                u.span(),
                "expected users like \"nobody\", \"65534\" or \"@guests\"; an empty list denies nothing (remove it)",
            ));
        }
        let denied = u
            .get_ref()
            .iter()
            .map(|name| principal(src, u, name))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(vec![Condition::new(
            Field::AleUserId,
            MatchType::Equal,
            ConditionValue::Sd(SecurityDescriptor::allow(denied)),
        )]);
    }
    Ok(out)
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
