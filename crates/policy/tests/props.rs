//! Property: on an engine holding policy A, applying B leaves exactly B's objects
//! (Palisade's provider's), whatever A and B are among generated policies.

mod common;

use common::*;
use palisade_filter::{Caller, Engine};
use palisade_policy::{Compiled, PALISADE_PROVIDER, apply, diff};
use proptest::prelude::*;

/// A rule from a few templates, varied in address, action and proposals.
fn rule() -> impl Strategy<Value = String> {
    (0u8..6, 1u8..4, prop::bool::ANY).prop_map(|(template, host, gcm256)| {
        let remote = format!("192.0.2.{}", host);
        let ipsec = if gcm256 { "gcm256" } else { "gcm128" };
        match template {
            0 => format!("remote = \"{remote}\"\naction = \"require\"\nauth = \"psk\"\nipsec_proposals = \"{ipsec}\"\n"),
            1 => format!("remote = \"{remote}\"\naction = \"request\"\nauth = \"psk\"\n"),
            2 => format!("remote = \"{remote}\"\nprotocol = \"icmp\"\naction = \"exempt\"\n"),
            3 => format!("remote = \"10.{host}.0.0/16\"\naction = \"block\"\n"),
            4 => format!("local = \"10.1.0.0/16\"\nremote = \"10.2.{host}.0/24\"\naction = \"require\"\nmode = \"tunnel\"\ntunnel = {{ local = \"198.51.100.1\", remote = \"203.0.113.{host}\" }}\nauth = \"psk\"\n"),
            _ => format!("remote = \"2001:db8::{host}\"\nprotocol = \"tcp\"\nlocal_ports = [5555]\naction = \"request\"\ninbound = \"require\"\nrequire_encryption = {gcm256}\nauth = \"psk\"\n"),
        }
    })
}

fn policy() -> impl Strategy<Value = String> {
    (prop::collection::vec(rule(), 0..4), prop::bool::ANY).prop_map(|(rules, exemptions)| {
        let mut text = format!(
            "[policy]\nname = \"generated\"\nike_exemptions = {exemptions}\n\n[auth_sets.psk]\nmethod = \"preshared_key\"\nkey = \"k\"\n\n\
             [ipsec_proposal_sets.gcm128]\nproposals = [{{ esp = \"gcm_aes_128\" }}]\n\n\
             [ipsec_proposal_sets.gcm256]\nproposals = [{{ esp = \"gcm_aes_256\" }}]\n"
        );
        for (i, r) in rules.iter().enumerate() {
            // Names by position: the same name with another template in B is a change.
            text.push_str(&format!("\n[[rules]]\nname = \"r{i}\"\n{r}"));
        }
        text
    })
}

fn held(engine: &Engine) -> (Vec<String>, Vec<String>) {
    let s = engine.snapshot();
    let mut filters: Vec<String> = s
        .catalog
        .enum_filters(&Caller::root(), &Default::default())
        .iter()
        .filter(|f| f.object.provider == Some(PALISADE_PROVIDER))
        .map(|f| format!("{:?}", f.object))
        .collect();
    filters.sort();
    let mut contexts: Vec<String> = s
        .catalog
        .provider_contexts()
        .filter(|c| c.object.provider == Some(PALISADE_PROVIDER))
        .map(|c| format!("{:?}", c.object))
        .collect();
    contexts.sort();
    (filters, contexts)
}

fn wanted(c: &Compiled) -> (Vec<String>, Vec<String>) {
    let mut filters: Vec<String> = c.filters.iter().map(|f| format!("{f:?}")).collect();
    filters.sort();
    let mut contexts: Vec<String> = c.contexts.iter().map(|c| format!("{c:?}")).collect();
    contexts.sort();
    (filters, contexts)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn applying_b_over_a_leaves_exactly_b(a in policy(), b in policy()) {
        let a = compile("a.toml", &a);
        let b = compile("b.toml", &b);
        let engine = Engine::new();
        let mut s = session(&engine);
        apply(&engine, &mut s, &a).expect("apply A");
        prop_assert_eq!(held(&engine), wanted(&a));
        let d = diff(&engine, &b);
        let applied_diff = apply(&engine, &mut s, &b).expect("apply B");
        prop_assert_eq!(applied_diff, d);
        prop_assert_eq!(held(&engine), wanted(&b));
        prop_assert!(diff(&engine, &b).is_empty());
    }
}
