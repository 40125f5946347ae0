//! Golden tests of error messages: each malformed file under tests/malformed is rejected
//! with file:line:column, the field path and what is expected, exactly as in
//! tests/malformed/expected.txt (one line per file, sorted by file name).

use std::path::PathBuf;

use palisade_policy::{Diagnostic, compile_str};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/malformed")
}

fn error_of(name: &str) -> Diagnostic {
    let text = std::fs::read_to_string(dir().join(name)).expect("malformed file");
    match compile_str(name, &text) {
        Ok(_) => panic!("{name} compiled"),
        Err(e) => e,
    }
}

#[test]
fn every_malformed_file_gives_its_golden_message() {
    let expected = std::fs::read_to_string(dir().join("expected.txt")).expect("expected.txt");
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    files.sort();
    let got: Vec<String> = files.iter().map(|f| error_of(f).to_string()).collect();
    let want: Vec<&str> = expected.lines().collect();
    assert_eq!(got.len(), want.len(), "one golden line per malformed file");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g, w);
    }
}

/// The parts the brief names, asserted field by field for the main cases.
#[test]
fn errors_name_line_column_and_field_path() {
    let cases: &[(&str, usize, usize, &str, &str)] = &[
        (
            "wrong-type.toml",
            8,
            12,
            "rules[0].protocol",
            "expected any, tcp",
        ),
        (
            "wrong-type-number.toml",
            3,
            19,
            "policy.sublayer_weight",
            "expected an integer",
        ),
        (
            "unknown-key.toml",
            6,
            1,
            "rules[0].remot",
            "unknown field `remot`",
        ),
        (
            "bad-prefix.toml",
            14,
            10,
            "rules[2].remote",
            "a prefix like 10.0.0.0/8 or a range 10.0.0.1-10.0.0.9",
        ),
        (
            "host-bits.toml",
            6,
            10,
            "rules[0].remote",
            "did you mean 10.0.0.0/8",
        ),
        (
            "undefined-reference.toml",
            13,
            19,
            "rules[0].ipsec_proposals",
            "\"fast\" is not defined",
        ),
        (
            "undefined-auth.toml",
            11,
            8,
            "rules[0].auth",
            "\"kerberos\" is not defined",
        ),
        (
            "duplicate-rule.toml",
            10,
            8,
            "rules[1].name",
            "already used by rules[0]",
        ),
        (
            "missing-psk.toml",
            5,
            10,
            "auth_sets.psk.method",
            "needs key =",
        ),
        (
            "tunnel-without-endpoints.toml",
            13,
            8,
            "rules[0].mode",
            "needs tunnel =",
        ),
        (
            "missing-auth.toml",
            7,
            10,
            "rules[0].action",
            "needs auth =",
        ),
        (
            "missing-rule-action.toml",
            8,
            1,
            "rules[1]",
            "missing field `action`",
        ),
        (
            "bad-cipher.toml",
            5,
            25,
            "ike_proposal_sets.old.proposals[0].cipher",
            "unknown variant `aes_512`",
        ),
        (
            "bad-port.toml",
            7,
            20,
            "rules[0].local_ports[1]",
            "first port is above its last",
        ),
        (
            "ports-without-protocol.toml",
            6,
            17,
            "rules[0].remote_ports[0]",
            "protocol = \"tcp\"",
        ),
        (
            "weak-encryption.toml",
            16,
            19,
            "rules[0].ipsec_proposals",
            "no ESP cipher",
        ),
    ];
    for (file, line, column, path, message) in cases {
        let e = error_of(file);
        assert_eq!(e.file, *file);
        assert_eq!((e.line, e.column), (*line, *column), "{e}");
        assert_eq!(e.path, *path, "{e}");
        assert!(e.message.contains(message), "{e}");
    }
}
