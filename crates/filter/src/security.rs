//! Access control (spec §5): each object, each object type's container and the engine
//! have an access list; rights are `FWPM_ACTRL_*` plus the standard delete and
//! write-access-list rights, checked against the caller's uid and gids.

use serde::{Deserialize, Serialize};

use crate::condition::Principal;
use crate::value::Token;

/// A set of rights.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rights(pub u32);

impl Rights {
    /// Add objects to a container (`FWPM_ACTRL_ADD`).
    pub const ADD: Rights = Rights(0x1);
    /// Reference an object from another (`FWPM_ACTRL_ADD_LINK`).
    pub const ADD_LINK: Rights = Rights(0x2);
    /// Begin a read-only transaction (`FWPM_ACTRL_BEGIN_READ_TXN`).
    pub const BEGIN_READ_TXN: Rights = Rights(0x4);
    /// Begin a read-write transaction (`FWPM_ACTRL_BEGIN_WRITE_TXN`).
    pub const BEGIN_WRITE_TXN: Rights = Rights(0x8);
    /// Classify (`FWPM_ACTRL_CLASSIFY`).
    pub const CLASSIFY: Rights = Rights(0x10);
    /// Enumerate a container (`FWPM_ACTRL_ENUM`).
    pub const ENUM: Rights = Rights(0x20);
    /// Open a session to the engine (`FWPM_ACTRL_OPEN`).
    pub const OPEN: Rights = Rights(0x40);
    /// Read an object (`FWPM_ACTRL_READ`).
    pub const READ: Rights = Rights(0x80);
    /// Read statistics (`FWPM_ACTRL_READ_STATS`).
    pub const READ_STATS: Rights = Rights(0x100);
    /// Subscribe to changes (`FWPM_ACTRL_SUBSCRIBE`).
    pub const SUBSCRIBE: Rights = Rights(0x200);
    /// Change an object (`FWPM_ACTRL_WRITE`).
    pub const WRITE: Rights = Rights(0x400);
    /// Delete an object (the standard `DELETE` right).
    pub const DELETE: Rights = Rights(0x10000);
    /// Read an access list (the standard `READ_CONTROL` right).
    pub const READ_CONTROL: Rights = Rights(0x20000);
    /// Replace an access list (the standard `WRITE_DAC` right).
    pub const WRITE_DAC: Rights = Rights(0x40000);
    /// Every right.
    pub const ALL: Rights = Rights(0x707ff);
    /// No right.
    pub const NONE: Rights = Rights(0);

    /// Whether every right of `other` is in `self`.
    pub fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    const NAMES: &'static [(&'static str, u32)] = &[
        ("ADD", 0x1),
        ("ADD_LINK", 0x2),
        ("BEGIN_READ_TXN", 0x4),
        ("BEGIN_WRITE_TXN", 0x8),
        ("CLASSIFY", 0x10),
        ("ENUM", 0x20),
        ("OPEN", 0x40),
        ("READ", 0x80),
        ("READ_STATS", 0x100),
        ("SUBSCRIBE", 0x200),
        ("WRITE", 0x400),
        ("DELETE", 0x10000),
        ("READ_CONTROL", 0x20000),
        ("WRITE_DAC", 0x40000),
    ];
}

impl std::ops::BitOr for Rights {
    type Output = Rights;
    fn bitor(self, rhs: Rights) -> Rights {
        Rights(self.0 | rhs.0)
    }
}

impl std::fmt::Debug for Rights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for Rights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = Rights::NAMES
            .iter()
            .filter(|(_, v)| self.0 & v != 0)
            .map(|(n, _)| *n)
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join("|"))
        }
    }
}

/// Who is calling: a local user, as the control socket's peer credentials say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The user id.
    pub uid: u32,
    /// The primary and supplementary group ids.
    pub gids: Vec<u32>,
}

impl Caller {
    /// root.
    pub fn root() -> Caller {
        Caller {
            uid: 0,
            gids: vec![0],
        }
    }

    /// A user with these groups.
    pub fn user(uid: u32, gids: impl Into<Vec<u32>>) -> Caller {
        Caller {
            uid,
            gids: gids.into(),
        }
    }

    fn token(&self) -> Token {
        Token::user(self.uid, self.gids.clone())
    }
}

/// One access-control entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ace {
    /// Whether the entry grants (`true`) or refuses the rights.
    pub allow: bool,
    /// Whom it names.
    pub principal: Principal,
    /// The rights.
    pub rights: Rights,
}

/// An access list: entries checked in order, refusals first within one list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Acl(pub Vec<Ace>);

impl Acl {
    /// The engine's default list (spec §5, on Linux): root has every right, everyone may
    /// open a session, enumerate, read and classify.
    pub fn engine_default() -> Acl {
        Acl(vec![
            Ace {
                allow: true,
                principal: Principal::Uid(0),
                rights: Rights::ALL,
            },
            Ace {
                allow: true,
                principal: Principal::Everyone,
                rights: Rights::OPEN
                    | Rights::CLASSIFY
                    | Rights::ENUM
                    | Rights::READ
                    | Rights::BEGIN_READ_TXN
                    | Rights::SUBSCRIBE
                    | Rights::READ_STATS,
            },
        ])
    }

    /// Grants `rights` to `principal`.
    pub fn allow(mut self, principal: Principal, rights: Rights) -> Acl {
        self.0.push(Ace {
            allow: true,
            principal,
            rights,
        });
        self
    }

    /// Refuses `rights` to `principal`.
    pub fn deny(mut self, principal: Principal, rights: Rights) -> Acl {
        self.0.push(Ace {
            allow: false,
            principal,
            rights,
        });
        self
    }
}

fn names(p: &Principal, t: &Token) -> bool {
    let sd = crate::condition::SecurityDescriptor {
        allow: vec![p.clone()],
        deny: Vec::new(),
    };
    sd.grants(t)
}

/// Checks `wanted` for `caller` against lists from the most specific (the object's) to
/// the least (the engine's): like Windows DACL inheritance, a more specific list's entries
/// come first, and within one list refusals come before grants. An object's owner holds
/// every right on it.
pub fn access_check(
    caller: &Caller,
    owner: Option<u32>,
    lists: &[&Acl],
    wanted: Rights,
) -> Result<(), Rights> {
    if owner == Some(caller.uid) {
        return Ok(());
    }
    let token = caller.token();
    let mut granted = 0u32;
    for acl in lists {
        for pass_allow in [false, true] {
            for ace in acl.0.iter().filter(|a| a.allow == pass_allow) {
                if !names(&ace.principal, &token) {
                    continue;
                }
                let pending = wanted.0 & !granted;
                if ace.allow {
                    granted |= ace.rights.0 & pending;
                    if granted & wanted.0 == wanted.0 {
                        return Ok(());
                    }
                } else if ace.rights.0 & pending != 0 {
                    return Err(Rights(ace.rights.0 & pending));
                }
            }
        }
    }
    Err(Rights(wanted.0 & !granted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_let_everyone_read_and_root_write() {
        let engine = Acl::engine_default();
        let user = Caller::user(1000, [1000]);
        assert!(access_check(&user, None, &[&engine], Rights::OPEN | Rights::CLASSIFY).is_ok());
        assert_eq!(
            access_check(&user, None, &[&engine], Rights::ADD),
            Err(Rights::ADD)
        );
        assert!(access_check(&Caller::root(), None, &[&engine], Rights::ALL).is_ok());
        assert!(access_check(&user, Some(1000), &[&engine], Rights::DELETE).is_ok());
    }

    #[test]
    fn specific_lists_come_first() {
        let engine = Acl::engine_default();
        let container = Acl::default().allow(Principal::Gid(50), Rights::ADD);
        let object = Acl::default().deny(Principal::Uid(1000), Rights::READ);
        let user = Caller::user(1000, [50]);
        assert!(access_check(&user, None, &[&container, &engine], Rights::ADD).is_ok());
        assert_eq!(
            access_check(&user, None, &[&object, &container, &engine], Rights::READ),
            Err(Rights::READ)
        );
        let other = Caller::user(1001, [1001]);
        assert!(access_check(&other, None, &[&object, &container, &engine], Rights::READ).is_ok());
    }
}
