//! The systemd units the project ships (dist/) start palisaded the way it understands:
//! every option their `ExecStart=` lines pass is one `palisaded --help` lists, and, where
//! `systemd-analyze` is installed, systemd itself parses the units without a complaint
//! (an unknown key or a bad value is only a warning to systemd, and the unit would run
//! without the sandboxing it meant). e2e_systemd.rs runs them under systemd as PID 1.

#[path = "../../../tests/support/netns.rs"]
mod netns;

use std::path::{Path, PathBuf};
use std::process::Command;

const INSTALLED: &str = "/usr/local/sbin/palisaded";

fn units() -> Vec<PathBuf> {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist");
    let mut units: Vec<PathBuf> = std::fs::read_dir(&dist)
        .expect("dist/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "service"))
        .collect();
    units.sort();
    assert!(units.len() >= 2, "palisaded and palisaded-boot: {units:?}");
    units
}

#[test]
fn exec_start_lines_pass_only_options_palisaded_knows() {
    let help = Command::new(env!("CARGO_BIN_EXE_palisaded"))
        .arg("--help")
        .output()
        .expect("palisaded --help");
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    for unit in units() {
        let text = std::fs::read_to_string(&unit).expect("unit");
        let exec: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("ExecStart="))
            .collect();
        assert_eq!(exec.len(), 1, "{}: one ExecStart", unit.display());
        let mut words = exec[0].split_whitespace();
        assert_eq!(words.next(), Some(INSTALLED), "{}", unit.display());
        for option in words.filter(|w| w.starts_with("--")) {
            assert!(
                help.contains(&format!("{option} ")) || help.contains(&format!("{option}\n")),
                "{}: palisaded has no {option}:\n{help}",
                unit.display()
            );
        }
    }
}

#[test]
fn systemd_parses_the_units_without_a_warning() {
    let Some(analyze) = netns::find_program("systemd-analyze") else {
        eprintln!("skipped: systemd-analyze not installed");
        return;
    };
    // systemd checks that ExecStart's program exists: point it at the one just built.
    let dir = std::env::temp_dir().join(format!("palisade-units-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut copies = Vec::new();
    for unit in units() {
        let text = std::fs::read_to_string(&unit).expect("unit");
        let copy = dir.join(unit.file_name().expect("name"));
        std::fs::write(
            &copy,
            text.replace(INSTALLED, env!("CARGO_BIN_EXE_palisaded")),
        )
        .expect("copy");
        copies.push(copy);
    }
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .args(&copies)
        .output()
        .expect("systemd-analyze verify");
    let _ = std::fs::remove_dir_all(&dir);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}
