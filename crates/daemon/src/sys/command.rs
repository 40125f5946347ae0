//! Running `ip`, `nft` and `iptables`: the routing and firewall setup is done the way
//! an operator would do it by hand (as wg-quick does), so that a failure can be
//! reported as the exact command line and the tool's own explanation, and reproduced.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::error::SysError;

/// `name` on `$PATH`, else in the sbin directories a non-login root shell or a
/// minimal systemd environment may lack.
fn find_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Runs `program args...`, with `stdin` fed to it when given, and returns its stdout.
/// On failure the error holds the command line (with the input as a here-document, so
/// it can be pasted into a shell) and the program's stderr.
pub(crate) fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, SysError> {
    let mut cmd = Command::new(find_program(program));
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawn_error = |error| SysError::Spawn {
        program: program.to_owned(),
        error,
    };
    let mut child = cmd.spawn().map_err(spawn_error)?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A write error means the program exited early; its status and stderr say why.
        let _ = pipe.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().map_err(spawn_error)?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let mut command = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(input) = stdin {
        command = format!("{command} <<'EOF'\n{}\nEOF", input.trim_end());
    }
    let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if stderr.is_empty() {
        stderr = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    }
    Err(SysError::Command {
        command,
        status: out.status,
        stderr,
    })
}
