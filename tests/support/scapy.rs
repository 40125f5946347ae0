//! Finding the Python that runs scapy, for the tests that check Palisade against scapy's
//! independent implementations. Include it with
//! `#[path = "../../../tests/support/scapy.rs"] mod scapy;`.

use std::process::Command;

/// The Python interpreter (`$PYTHON`, else `python3`) if it can import `modules`; `None`
/// when `PALISADE_SKIP_SCAPY` is set, which skips the test. A Python without the modules
/// fails the test: the test command installs them, so their absence is a broken setup,
/// not a reason to pass quietly.
pub fn python_or_skip(modules: &str, test: &str) -> Option<String> {
    if std::env::var_os("PALISADE_SKIP_SCAPY").is_some() {
        eprintln!("PALISADE_SKIP_SCAPY set: skipping {test}");
        return None;
    }
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", &format!("import {modules}")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{py} cannot import {modules}, which {test} needs (scripts/lib/deps.sh installs \
         them; PALISADE_SKIP_SCAPY=1 skips this test)"
    );
    Some(py)
}
