//! Flag sets of the objects (`FWPM_*_FLAG_*`), as transparent `u32` newtypes.

use serde::{Deserialize, Serialize};

macro_rules! flag_set {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $flag:ident = $value:expr,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u32);

        impl $name {
            $($(#[$fdoc])* pub const $flag: $name = $name($value);)*
            /// No flag.
            pub const NONE: $name = $name(0);
            const NAMES: &'static [(&'static str, u32)] = &[$((stringify!($flag), $value),)*];

            /// Whether every flag of `other` is set.
            #[inline]
            pub fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }

            /// `self` with `other`'s flags added.
            pub fn with(self, other: $name) -> $name {
                $name(self.0 | other.0)
            }

            /// `self` without `other`'s flags.
            pub fn without(self, other: $name) -> $name {
                $name(self.0 & !other.0)
            }

            /// Bits that name no flag.
            pub fn unknown_bits(self) -> u32 {
                self.0 & !Self::NAMES.iter().fold(0, |a, (_, v)| a | v)
            }
        }

        impl std::ops::BitOr for $name {
            type Output = $name;
            fn bitor(self, rhs: $name) -> $name {
                self.with(rhs)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(self, f)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut first = true;
                for (name, value) in Self::NAMES {
                    if self.0 & value != 0 {
                        if !first {
                            f.write_str("|")?;
                        }
                        f.write_str(name)?;
                        first = false;
                    }
                }
                let unknown = self.unknown_bits();
                if unknown != 0 {
                    if !first {
                        f.write_str("|")?;
                    }
                    write!(f, "{unknown:#x}")?;
                    first = false;
                }
                if first {
                    f.write_str("0")?;
                }
                Ok(())
            }
        }
    };
}

flag_set! {
    /// `FWPM_FILTER_FLAG_*`.
    FilterFlags {
        /// Survives engine restarts (stored).
        PERSISTENT = 0x1,
        /// Enforced from boot until the engine is up; not with PERSISTENT.
        BOOTTIME = 0x2,
        /// The filter references a provider context.
        HAS_PROVIDER_CONTEXT = 0x4,
        /// The filter's action is hard: lower sublayers cannot override it.
        CLEAR_ACTION_RIGHT = 0x8,
        /// A callout filter whose callout is not registered permits instead of blocking.
        PERMIT_IF_CALLOUT_UNREGISTERED = 0x10,
        /// The filter is loaded but not enforced (output only).
        DISABLED = 0x20,
        /// A hint that the filter should be indexed; every filter is.
        INDEXED = 0x40,
        /// The IPsec callout must not start negotiations for this filter's traffic.
        IPSEC_NO_ACQUIRE_INITIATE = 0x800,
    }
}

flag_set! {
    /// `FWPM_PROVIDER_FLAG_*`.
    ProviderFlags {
        /// Survives engine restarts.
        PERSISTENT = 0x1,
        /// The provider's objects were not loaded (output only).
        DISABLED = 0x10,
    }
}

flag_set! {
    /// `FWPM_SUBLAYER_FLAG_*`.
    SublayerFlags {
        /// Survives engine restarts.
        PERSISTENT = 0x1,
    }
}

flag_set! {
    /// `FWPM_CALLOUT_FLAG_*`.
    CalloutFlags {
        /// Survives engine restarts.
        PERSISTENT = 0x10000,
        /// The callout reads its filter's provider context.
        USES_PROVIDER_CONTEXT = 0x20000,
        /// A classify function is registered for the callout (output only).
        REGISTERED = 0x40000,
    }
}

flag_set! {
    /// `FWPM_PROVIDER_CONTEXT_FLAG_*`.
    ProviderContextFlags {
        /// Survives engine restarts.
        PERSISTENT = 0x1,
    }
}
