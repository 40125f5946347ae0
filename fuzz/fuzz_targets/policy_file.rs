//! Feeds arbitrary UTF-8 to the policy file parser and compiler (palisade-policy).
//!
//! Errors must be values: `parse_str` and `compile_str` return a diagnostic whose line
//! and column lie within the text. Beyond "no panic", what compiles must be what the
//! compiler promises: deterministic, accepted by a fresh engine as a whole (the
//! compiler finds every mistake before the engine sees it), and a no-op when applied
//! again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_filter::{Caller, Engine, SessionOptions};
use palisade_policy::Diagnostic;

const FILE: &str = "fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(d) = palisade_policy::parse_str(FILE, text) {
        check_diagnostic(&d, text);
    }
    let compiled = match palisade_policy::compile_str(FILE, text) {
        Ok(c) => c,
        Err(d) => {
            check_diagnostic(&d, text);
            return;
        }
    };
    assert_eq!(
        palisade_policy::compile_str(FILE, text).ok().as_ref(),
        Some(&compiled),
        "compiling twice gave different objects"
    );
    let engine = Engine::new();
    let mut session = engine
        .open_session(Caller::root(), SessionOptions::default())
        .expect("root session on a fresh engine");
    if let Err(e) = palisade_policy::apply(&engine, &mut session, &compiled) {
        panic!("the engine refused a compiled policy: {e}");
    }
    assert!(
        palisade_policy::diff(&engine, &compiled).is_empty(),
        "an applied policy still differs from the engine"
    );
    let again = palisade_policy::apply(&engine, &mut session, &compiled)
        .expect("re-applying an applied policy");
    assert!(again.is_empty(), "re-applying changed something: {again}");
    let _ = again.to_json();
});

fn check_diagnostic(d: &Diagnostic, text: &str) {
    let lines = text.split('\n').count();
    assert!(
        d.line <= lines,
        "diagnostic line {} past the text's {lines} lines: {d}",
        d.line
    );
    assert_eq!(d.file, FILE);
    let _ = d.to_string();
}
