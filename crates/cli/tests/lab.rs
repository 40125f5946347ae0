//! `palisade lab`, the README's demo, run as a user would: it must finish, and what it
//! shows must be what happened (the datagram longer than the MTU back whole, nothing but
//! IKE and ESP on the link). Root only (network namespaces); skipped otherwise. Needs
//! palisaded built next to palisade, as a workspace test run leaves it.

use std::path::Path;
use std::process::Command;

#[test]
fn the_lab_runs_and_shows_only_ike_and_esp_on_the_link() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: skipping the lab (network namespaces need root)");
        return;
    }
    let palisade = Path::new(env!("CARGO_BIN_EXE_palisade"));
    let palisaded = palisade.with_file_name("palisaded");
    assert!(
        palisaded.is_file(),
        "{} is missing: build it first (cargo build -p palisaded), as `cargo test --workspace` does",
        palisaded.display()
    );
    let out = Command::new(palisade)
        .args(["lab", "--bytes", "1048576"])
        .output()
        .expect("run palisade lab");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "palisade lab failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for shown in [
        "1048576 bytes in",
        "the datagram came back whole; palisaded on web: 1 datagram(s) reassembled, 1 sent in fragments",
        "later fragments of ESP",
        ", 0 anything else",
        "cleaning up",
    ] {
        assert!(stdout.contains(shown), "{shown:?} not in:\n{stdout}");
    }
}
