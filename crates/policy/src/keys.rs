//! Deterministic keys. Every object a policy file compiles to has a GUID derived (UUID
//! v5) from the policy's name, the rule's name and the object's role, so compiling the
//! same file twice gives the same keys: re-applying it is a no-op, and a diff against
//! the engine pairs each object with the one it replaces.

use uuid::Uuid;

/// Palisade's provider (`FWPM_PROVIDER0`): every object a policy file compiles to
/// belongs to it, and the diff never touches another provider's objects.
pub const PALISADE_PROVIDER: Uuid = uuid::uuid!("7a1f0c52-3d4e-4b8a-9c6f-2e5d8b1a4c70");

/// Palisade's sublayer: the rules' filters arbitrate in it, by weight.
pub const PALISADE_SUBLAYER: Uuid = uuid::uuid!("7a1f0c52-3d4e-4b8a-9c6f-2e5d8b1a4c71");

/// The namespace of derived keys.
const NAMESPACE: Uuid = uuid::uuid!("7a1f0c52-3d4e-4b8a-9c6f-2e5d8b1a4c7f");

/// The key of the object playing `role` for `rule` of `policy`. The parts are joined
/// with a separator that cannot appear unescaped, so ("a/b", "c") and ("a", "b/c")
/// differ.
pub fn derive(policy: &str, rule: &str, role: &str) -> Uuid {
    let name = format!("{}\u{0}{}\u{0}{}", policy, rule, role);
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_distinct() {
        assert_eq!(derive("p", "r", "mm"), derive("p", "r", "mm"));
        assert_ne!(derive("p", "r", "mm"), derive("p", "r", "qm"));
        assert_ne!(derive("a/b", "c", "x"), derive("a", "b/c", "x"));
    }
}
