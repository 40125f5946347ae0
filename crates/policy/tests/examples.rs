//! Every example policy parses, compiles, applies to an engine, and re-applies as a no-op.

use std::path::PathBuf;

use palisade_filter::{Caller, Engine, SessionOptions};
use palisade_policy::{apply, compile_file, diff};

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/policies")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_compiles_applies_and_reapplies_as_a_no_op() {
    let files = examples();
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        let compiled = compile_file(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(!compiled.filters.is_empty(), "{}", file.display());
        let engine = Engine::new();
        let mut session = engine
            .open_session(Caller::root(), SessionOptions::default())
            .expect("session");
        let first = apply(&engine, &mut session, &compiled)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let (added, changed, removed) = first.counts();
        assert_eq!(
            (added, changed, removed),
            (2 + compiled.contexts.len() + compiled.filters.len(), 0, 0),
            "{}",
            file.display()
        );
        let again = apply(&engine, &mut session, &compiled).expect("re-apply");
        assert!(again.is_empty(), "{}: {again}", file.display());
        assert!(diff(&engine, &compiled).is_empty());
        // Compiling twice gives the same keys.
        assert_eq!(compile_file(&file).expect("again"), compiled);
    }
}
