//! A TCP service for the tests about who holds a socket (ALE_USER_ID, ALE_APP_ID):
//! python3, run as a given user, greets every connection on some ports with `hello`;
//! bash connects and reads the greeting.

// Only some e2e test binaries use it.
#![allow(dead_code)]

use std::net::IpAddr;
use std::process::{Child, Command, Output, Stdio};

use crate::netns::Netns;

/// The system's python3: a user's (pyenv under /root) is not open to other users.
pub const PYTHON: &str = "/usr/bin/python3";

/// A running greeter, killed on drop.
pub struct Greeter(Child);

impl Greeter {
    /// Runs the greeter on `ports` of `addr` through `prefix` (the command that enters
    /// the namespaces, e.g. `ip netns exec NS`), as `uid`; returns once it listens.
    pub fn start(mut prefix: Command, uid: u32, addr: IpAddr, ports: &[u16]) -> Greeter {
        let script = format!(
            "import socket,threading,time\n\
             def serve(s):\n    \
             while True:\n        c,_=s.accept(); c.sendall(b'hello'); c.close()\n\
             for p in {ports:?}:\n    \
             s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n    \
             s.bind(('{addr}',p)); s.listen()\n    \
             threading.Thread(target=serve,args=(s,),daemon=True).start()\n\
             print('ready',flush=True)\n\
             time.sleep(600)\n"
        );
        let id = uid.to_string();
        let mut child = prefix
            .args(["setpriv", "--reuid", &id, "--regid", &id, "--clear-groups"])
            .args([PYTHON, "-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("greeter");
        let mut out = child.stdout.take().expect("stdout");
        let mut line = [0u8; 6];
        std::io::Read::read_exact(&mut out, &mut line).expect("greeter ready");
        Greeter(child)
    }

    /// [`Greeter::start`] inside the network namespace `ns`.
    pub fn in_netns(ns: &Netns, uid: u32, addr: IpAddr, ports: &[u16]) -> Greeter {
        let mut prefix = Command::new(crate::netns::find_program("ip").unwrap_or("ip".into()));
        prefix.args(["netns", "exec", ns.name()]);
        Greeter::start(prefix, uid, addr, ports)
    }
}

impl Drop for Greeter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP connection from `ns` to `to:port` by bash (`/dev/tcp`), reading the greeting.
pub fn bash_connect(ns: &Netns, to: IpAddr, port: u16) -> Output {
    ns.command("timeout")
        .args([
            "4",
            "bash",
            "-c",
            &format!("exec 3<>/dev/tcp/{to}/{port}; head -c 5 <&3"),
        ])
        .output()
        .expect("bash")
}

/// Whether a connection's output is the greeting.
pub fn greeted(out: &Output) -> bool {
    out.status.success() && out.stdout == b"hello"
}
