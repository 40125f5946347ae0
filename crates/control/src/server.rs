//! The control socket's server: a thread per connection (a bounded number of them), the
//! peer's credentials as the caller, the hello, then one request and one response per
//! line. Nothing a client sends can panic the daemon or stop the server: malformed input
//! is answered with an error response that says what was expected.

use std::io::{self, BufReader, ErrorKind, Read};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::thread::JoinHandle;
use std::time::Duration;

use palisade_filter::Caller;

use crate::credentials::peer_caller;
use crate::error::ErrorCode;
use crate::framing::{Line, read_line, write_json};
use crate::handler::Handler;
use crate::protocol::{
    Hello, MAX_REQUEST_LINE, PROTOCOL_NAME, PROTOCOL_VERSION, Request, Response,
};

/// How the server bounds its clients.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Connections served at once; one more is told `busy` and closed.
    pub max_connections: usize,
    /// The longest request line, in bytes.
    pub max_request_line: usize,
    /// How long a client may take to send its hello.
    pub hello_timeout: Duration,
    /// How long a connection may sit idle between requests (not while following events).
    pub idle_timeout: Duration,
    /// How often a followed event stream checks whether its client is still there.
    pub follow_poll: Duration,
    /// The software named in the server's hello.
    pub software: String,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_connections: 32,
            max_request_line: MAX_REQUEST_LINE,
            hello_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(600),
            follow_poll: Duration::from_millis(500),
            software: format!("palisaded {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Serves `listener` with the default options on a new thread.
pub fn serve(listener: UnixListener, handler: Arc<dyn Handler + Send + Sync>) -> JoinHandle<()> {
    serve_with(listener, handler, ServerOptions::default())
}

/// Serves `listener` on a new thread: each accepted connection gets its own thread.
pub fn serve_with(
    listener: UnixListener,
    handler: Arc<dyn Handler + Send + Sync>,
    options: ServerOptions,
) -> JoinHandle<()> {
    let options = Arc::new(options);
    std::thread::Builder::new()
        .name("control-accept".into())
        .spawn(move || accept_loop(listener, handler, options))
        // Spawning fails only when the process is out of threads or memory at start-up.
        .unwrap_or_else(|e| panic!("cannot start the control server thread: {e}"))
}

fn accept_loop(
    listener: UnixListener,
    handler: Arc<dyn Handler + Send + Sync>,
    options: Arc<ServerOptions>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                // Out of descriptors and the like: transient; back off instead of spinning.
                tracing::warn!(error = %e, "control socket: accept failed");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= options.max_connections {
            active.fetch_sub(1, Ordering::SeqCst);
            let mut stream = stream;
            let _ = write_json(
                &mut stream,
                &Response::error_hint(
                    ErrorCode::Busy,
                    format!(
                        "the daemon serves {} control connections already",
                        options.max_connections
                    ),
                    "try again when another client (an `events --follow`?) has finished",
                ),
            );
            continue;
        }
        let guard = ActiveGuard(active.clone());
        let handler = handler.clone();
        let opts = options.clone();
        let spawned = std::thread::Builder::new()
            .name("control-conn".into())
            .spawn(move || {
                let _guard = guard;
                if let Err(e) = connection(stream, &*handler, &opts) {
                    tracing::debug!(error = %e, "control connection ended");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "control socket: cannot start a connection thread");
        }
    }
}

/// Counts a connection until its thread ends (or fails to start).
struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn connection(
    stream: UnixStream,
    handler: &dyn Handler,
    options: &ServerOptions,
) -> io::Result<()> {
    let caller = peer_caller(&stream)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream.try_clone()?);
    write_json(&mut writer, &Hello::new(options.software.clone()))?;

    stream.set_read_timeout(Some(options.hello_timeout))?;
    match read_line(&mut reader, options.max_request_line) {
        Ok(Line::Text(text)) => {
            if let Err(refusal) = check_hello(&text) {
                write_json(&mut writer, &refusal)?;
                return Ok(());
            }
        }
        Ok(Line::End) => return Ok(()),
        Ok(Line::TooLong) | Err(_) => {
            let _ = write_json(&mut writer, &hello_expected("no hello line"));
            return Ok(());
        }
    }
    tracing::debug!(uid = caller.uid, gids = ?caller.gids, "control client connected");

    stream.set_read_timeout(Some(options.idle_timeout))?;
    loop {
        let text = match read_line(&mut reader, options.max_request_line) {
            Ok(Line::Text(text)) => text,
            Ok(Line::End) => return Ok(()),
            Ok(Line::TooLong) => {
                write_json(
                    &mut writer,
                    &Response::error_hint(
                        ErrorCode::RequestTooLarge,
                        format!(
                            "the request line is longer than {} bytes",
                            options.max_request_line
                        ),
                        "send one request per line; a policy file this large is not supported",
                    ),
                )?;
                continue;
            }
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                write_json(
                    &mut writer,
                    &Response::error_hint(
                        ErrorCode::InvalidRequest,
                        "the request line is not UTF-8",
                        "send requests as UTF-8 JSON, one per line",
                    ),
                )?;
                continue;
            }
            Err(e) => return Err(e),
        };
        if text.trim().is_empty() {
            continue;
        }
        let request = match parse_request(&text) {
            Ok(request) => request,
            Err(refusal) => {
                write_json(&mut writer, &refusal)?;
                continue;
            }
        };
        tracing::debug!(
            uid = caller.uid,
            request = request.kind(),
            "control request"
        );
        match request {
            Request::Events { follow, since } => {
                let (backlog, live) = match handler.events(&caller, since) {
                    Ok(events) => events,
                    Err(refusal) => {
                        write_json(&mut writer, &refusal)?;
                        continue;
                    }
                };
                if !follow {
                    write_json(&mut writer, &Response::Events { events: backlog })?;
                    continue;
                }
                for event in backlog {
                    write_json(&mut writer, &Response::Event(event))?;
                }
                stream.set_read_timeout(None)?;
                loop {
                    match live.recv_timeout(options.follow_poll) {
                        Ok(event) => write_json(&mut writer, &Response::Event(event))?,
                        Err(RecvTimeoutError::Timeout) => {
                            if client_gone(&stream)? {
                                return Ok(());
                            }
                        }
                        // The daemon is shutting down: the stream ends.
                        Err(RecvTimeoutError::Disconnected) => return Ok(()),
                    }
                }
            }
            request => {
                let response = answer(handler, &caller, request);
                write_json(&mut writer, &response)?;
            }
        }
    }
}

/// The handler's response; a handler that panics answers `internal` rather than taking
/// the connection (or the daemon) down.
fn answer(handler: &dyn Handler, caller: &Caller, request: Request) -> Response {
    let kind = request.kind();
    match catch_unwind(AssertUnwindSafe(|| handler.handle(caller, request))) {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(request = kind, "control request handler panicked");
            Response::error_hint(
                ErrorCode::Internal,
                format!("the daemon failed while answering {kind}"),
                "this is a bug in palisaded; its log has the details",
            )
        }
    }
}

/// Whether a followed stream's client has closed its end. Anything it sends meanwhile is
/// read and ignored.
fn client_gone(stream: &UnixStream) -> io::Result<bool> {
    stream.set_nonblocking(true)?;
    let mut buf = [0u8; 256];
    let gone = loop {
        match (&*stream).read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break true,
        }
    };
    stream.set_nonblocking(false)?;
    Ok(gone)
}

fn hello_expected(what: &str) -> Response {
    Response::error_hint(
        ErrorCode::InvalidRequest,
        format!("expected a hello as the first line: {what}"),
        format!(
            "send {{\"protocol\":\"{PROTOCOL_NAME}\",\"version\":{PROTOCOL_VERSION}}} first (docs/control-api.md)"
        ),
    )
}

/// Accepts the client's hello, or says why not.
fn check_hello(text: &str) -> Result<(), Response> {
    let hello: Hello = serde_json::from_str(text).map_err(|e| hello_expected(&e.to_string()))?;
    if hello.protocol != PROTOCOL_NAME {
        return Err(hello_expected(&format!(
            "protocol {:?} is not {PROTOCOL_NAME:?}",
            hello.protocol
        )));
    }
    if hello.version != PROTOCOL_VERSION {
        return Err(Response::error_hint(
            ErrorCode::UnsupportedVersion,
            format!(
                "the client speaks control protocol version {}, this daemon version {PROTOCOL_VERSION}",
                hello.version
            ),
            "use the palisade command of the same release as palisaded",
        ));
    }
    Ok(())
}

/// Parses one request line, or says what is wrong with it.
fn parse_request(text: &str) -> Result<Request, Response> {
    serde_json::from_str(text).map_err(|e| {
        // Tell an unknown request type (a newer client) apart from broken JSON.
        let kind = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned));
        match kind {
            Some(kind) if e.to_string().starts_with("unknown variant") => Response::error_hint(
                ErrorCode::InvalidRequest,
                format!("unknown request type {kind:?}"),
                format!(
                    "this daemon speaks control protocol version {PROTOCOL_VERSION}; see docs/control-api.md for its requests"
                ),
            ),
            _ => Response::error_hint(
                ErrorCode::InvalidRequest,
                format!("malformed request: {e}"),
                "send one JSON object per line with a \"type\" field (docs/control-api.md)",
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: &Response) -> Option<ErrorCode> {
        match r {
            Response::Error { code, .. } => Some(*code),
            _ => None,
        }
    }

    #[test]
    fn requests_parse_or_say_why_not() {
        assert_eq!(parse_request(r#"{"type":"status"}"#), Ok(Request::Status));
        assert_eq!(
            parse_request(r#"{"type":"events","follow":true}"#),
            Ok(Request::Events {
                follow: true,
                since: None
            })
        );
        let unknown = parse_request(r#"{"type":"teleport"}"#).err();
        assert!(
            matches!(&unknown, Some(Response::Error { message, .. }) if message.contains("teleport")),
            "{unknown:?}"
        );
        let broken = parse_request("{\"type\":").err();
        assert_eq!(
            broken.as_ref().and_then(code),
            Some(ErrorCode::InvalidRequest)
        );
        let missing = parse_request(r#"{"type":"filter_show"}"#).err();
        assert!(
            matches!(&missing, Some(Response::Error { message, .. }) if message.contains("id")),
            "{missing:?}"
        );
    }

    #[test]
    fn hello_checked() {
        assert!(check_hello(r#"{"protocol":"palisade-control","version":1}"#).is_ok());
        let other = check_hello(r#"{"protocol":"palisade-control","version":2}"#).err();
        assert_eq!(
            other.as_ref().and_then(code),
            Some(ErrorCode::UnsupportedVersion)
        );
        let wrong = check_hello(r#"{"protocol":"http","version":1}"#).err();
        assert_eq!(
            wrong.as_ref().and_then(code),
            Some(ErrorCode::InvalidRequest)
        );
        let junk = check_hello("GET / HTTP/1.1").err();
        assert_eq!(
            junk.as_ref().and_then(code),
            Some(ErrorCode::InvalidRequest)
        );
    }
}
