//! The checks an administrator's tool makes before a policy reaches the engine.
//!
//! Some of what is rejected here WFP would store and leave to the keying module to fail at
//! negotiation time; Palisade rejects it when the policy is added. Every error names the
//! offending field by its serde path (`ike_proposals[1].dh_group`), relative to the policy
//! (which is also where its fields sit in a provider-context table).
//!
//! What is deliberately *not* checked: whether files exist (the engine is sans-IO; the
//! daemon reads them), weak but valid algorithms (DES, MD5, group 1 are WFP values and
//! stay accepted), and values whose meaning is unpublished (traffic-selector flags).

mod main_mode;
mod quick_mode;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::context::ProviderContextPolicy;
use super::keying::{KEYING_POLICY_KNOWN_FLAGS, KeyingModule, KeyingPolicy};
use super::proposal::{AuthTransform, CipherTransform};

/// Why a policy was rejected. Every variant carries `path`, the serde path of the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A list or string that needs at least one element is empty.
    #[error("{path}: must not be empty")]
    Empty {
        /// Field path.
        path: String,
    },
    /// A lifetime or similar count is 0.
    #[error("{path}: must not be 0")]
    Zero {
        /// Field path.
        path: String,
    },
    /// Flag bits that no `*_FLAG_*` constant defines (a typo, or a newer Windows value).
    #[error("{path}: undefined flag bits {bits:#x}")]
    UnknownFlags {
        /// Field path.
        path: String,
        /// The undefined bits.
        bits: u32,
    },
    /// Two flags that contradict each other.
    #[error("{path}: {first} and {second} cannot both be set")]
    ConflictingFlags {
        /// Field path.
        path: String,
        /// One flag's WFP name.
        first: &'static str,
        /// The other's.
        second: &'static str,
    },
    /// A flag that means nothing where it is set.
    #[error("{path}: {flag} is only valid {scope}")]
    FlagNotApplicable {
        /// Field path.
        path: String,
        /// The flag's WFP name.
        flag: &'static str,
        /// Where it is valid.
        scope: &'static str,
    },
    /// An authentication method the keying module cannot negotiate.
    #[error("{path}: {method} authentication is not available for {module}")]
    AuthMethodNotAllowed {
        /// Field path.
        path: String,
        /// The method's WFP name.
        method: &'static str,
        /// The keying module.
        module: KeyingModule,
    },
    /// An algorithm or feature the keying module does not have.
    #[error("{path}: {feature} is not available for {module}")]
    NotAvailableForModule {
        /// Field path.
        path: String,
        /// What was asked for.
        feature: &'static str,
        /// The keying module.
        module: KeyingModule,
    },
    /// An AEAD cipher combined with an integrity transform other than WFP's matching GMAC.
    #[error(
        "{path}: {} carries its own integrity check and cannot be combined with {}; \
         use esp_cipher alone",
        cipher.name(), auth.name()
    )]
    AeadWithSeparateIntegrity {
        /// Field path.
        path: String,
        /// The AEAD cipher.
        cipher: CipherTransform,
        /// The integrity transform beside it.
        auth: AuthTransform,
    },
    /// A transform or set of transforms that no SA can be built from.
    #[error("{path}: {reason}")]
    InvalidTransform {
        /// Field path.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two addresses that must share an IP family do not.
    #[error("{path}: {first} and {second} are of different IP families")]
    MixedAddressFamilies {
        /// Field path.
        path: String,
        /// First address.
        first: IpAddr,
        /// Second address.
        second: IpAddr,
    },
    /// An address that cannot serve where it is used.
    #[error("{path}: {address} is {reason}")]
    InvalidAddress {
        /// Field path.
        path: String,
        /// The address.
        address: IpAddr,
        /// What it is (`unspecified`, `multicast`, …).
        reason: &'static str,
    },
    /// A file path that is not absolute; the daemon does not run where the file was written.
    #[error("{path}: {} is not an absolute path", file.display())]
    RelativePath {
        /// Field path.
        path: String,
        /// The path given.
        file: PathBuf,
    },
    /// A keying module listed twice in a keying policy.
    #[error("{path}: {module} is listed more than once")]
    DuplicateKeyingModule {
        /// Field path.
        path: String,
        /// The module.
        module: KeyingModule,
    },
    /// Any other invalid value.
    #[error("{path}: {reason}")]
    Invalid {
        /// Field path.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
}

impl PolicyError {
    /// The serde path of the offending field.
    pub fn path(&self) -> &str {
        match self {
            Self::Empty { path }
            | Self::Zero { path }
            | Self::UnknownFlags { path, .. }
            | Self::ConflictingFlags { path, .. }
            | Self::FlagNotApplicable { path, .. }
            | Self::AuthMethodNotAllowed { path, .. }
            | Self::NotAvailableForModule { path, .. }
            | Self::AeadWithSeparateIntegrity { path, .. }
            | Self::InvalidTransform { path, .. }
            | Self::MixedAddressFamilies { path, .. }
            | Self::InvalidAddress { path, .. }
            | Self::RelativePath { path, .. }
            | Self::DuplicateKeyingModule { path, .. }
            | Self::Invalid { path, .. } => path,
        }
    }
}

/// What the private checks return.
pub(super) type Check = Result<(), PolicyError>;

pub(super) fn field(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

pub(super) fn known_flags(path: &str, flags: u32, known: u32) -> Check {
    match flags & !known {
        0 => Ok(()),
        bits => Err(PolicyError::UnknownFlags {
            path: path.to_owned(),
            bits,
        }),
    }
}

pub(super) fn exclusive(
    path: &str,
    flags: u32,
    first: (u32, &'static str),
    second: (u32, &'static str),
) -> Check {
    if flags & first.0 != 0 && flags & second.0 != 0 {
        return Err(PolicyError::ConflictingFlags {
            path: path.to_owned(),
            first: first.1,
            second: second.1,
        });
    }
    Ok(())
}

pub(super) fn absolute(path: String, file: &Path) -> Check {
    if file.is_absolute() {
        Ok(())
    } else {
        Err(PolicyError::RelativePath {
            path,
            file: file.to_owned(),
        })
    }
}

pub(super) fn not_available(
    path: String,
    feature: &'static str,
    module: KeyingModule,
) -> PolicyError {
    PolicyError::NotAvailableForModule {
        path,
        feature,
        module,
    }
}

impl ProviderContextPolicy {
    /// Checks the policy against the rules for its context type.
    pub fn validate(&self) -> Result<(), PolicyError> {
        match self {
            Self::Keying(policy) => policy.validate(),
            Self::MainMode { module, policy } => policy.validate(*module),
            Self::Transport { module, policy } => policy.validate(*module),
            Self::Tunnel { module, policy } => policy.validate(*module),
            Self::General(_) => Ok(()),
        }
    }
}

impl KeyingPolicy {
    /// Checks: at least one module, no module twice, only defined flags.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.keying_modules.is_empty() {
            return Err(PolicyError::Empty {
                path: "keying_modules".into(),
            });
        }
        for (i, module) in self.keying_modules.iter().enumerate() {
            if self.keying_modules[..i].contains(module) {
                let path = format!("keying_modules[{i}]");
                return Err(PolicyError::DuplicateKeyingModule {
                    path,
                    module: *module,
                });
            }
        }
        known_flags("flags", self.flags, KEYING_POLICY_KNOWN_FLAGS)
    }
}
