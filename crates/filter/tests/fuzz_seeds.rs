//! The committed fuzz seeds for `filter_policy` decode and pass validation, so the fuzzer
//! starts from policies the engine accepts rather than from JSON it rejects.

use palisade_filter::*;

#[test]
fn filter_policy_seeds_are_valid_policies() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/seeds/filter_policy"
    );
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("seed directory") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("seed");
        let json = bytes.split(|b| *b == 0).next().expect("json part");
        let filters: Vec<Filter> =
            serde_json::from_slice(json).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let engine = Engine::new();
        let mut s = engine
            .open_session(Caller::root(), SessionOptions::default())
            .expect("session");
        for f in filters {
            s.add_filter(f)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        seen += 1;
    }
    assert!(seen >= 4, "only {seen} seeds");
}
