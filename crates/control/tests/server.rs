//! The control server over a real Unix socket: hello and version, framing limits,
//! malformed input, the event stream, the connection bound, and a handler that panics.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use palisade_control::{
    Client, ClientError, ErrorCode, PROTOCOL_VERSION, Request, Response, ServerOptions,
};
use palisade_filter::Engine;
use support::{FakeDaemon, start, start_with};

/// A raw connection: the server's hello read, ours not sent yet.
struct Raw {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Raw {
    fn connect(path: &Path) -> Raw {
        let stream = UnixStream::connect(path).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let writer = stream.try_clone().expect("clone");
        let mut raw = Raw {
            reader: BufReader::new(stream),
            writer,
        };
        let hello: serde_json::Value =
            serde_json::from_str(&raw.line().expect("server hello")).expect("hello is JSON");
        assert_eq!(hello["protocol"], "palisade-control");
        assert_eq!(hello["version"], PROTOCOL_VERSION);
        raw
    }

    fn hello(path: &Path) -> Raw {
        let mut raw = Raw::connect(path);
        raw.send(r#"{"protocol":"palisade-control","version":1,"software":"test"}"#);
        raw
    }

    fn send(&mut self, line: &str) {
        self.writer.write_all(line.as_bytes()).expect("write");
        self.writer.write_all(b"\n").expect("write");
    }

    fn line(&mut self) -> Option<String> {
        let mut s = String::new();
        match self.reader.read_line(&mut s) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(s),
        }
    }

    fn response(&mut self) -> Response {
        let line = self.line().expect("a response line");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }
}

fn error_code(r: &Response) -> Option<ErrorCode> {
    match r {
        Response::Error { code, .. } => Some(*code),
        _ => None,
    }
}

#[test]
fn status_round_trip_through_the_client() -> Result<(), ClientError> {
    let srv = start(Engine::new());
    let mut client = Client::connect(&srv.socket)?;
    assert_eq!(client.server_hello().version, PROTOCOL_VERSION);
    match client.request(Request::Status)? {
        Response::Status(s) => {
            assert_eq!(s.tun, "pal0");
            assert!(s.ready);
        }
        other => panic!("{other:?}"),
    }
    // Several requests on one connection.
    match client.request(Request::Stats)? {
        Response::Stats(s) => assert_eq!(s.global_drops.get("no_sa"), Some(&3)),
        other => panic!("{other:?}"),
    }
    match client.request(Request::SaList)? {
        Response::Sas { sas } => assert_eq!(sas[0].child_sas[0].inbound_spi, 0xc0ffee01),
        other => panic!("{other:?}"),
    }
    match client.request(Request::SaShow { id: "nope".into() }) {
        Err(ClientError::Server { code, hint, .. }) => {
            assert_eq!(code, ErrorCode::NotFound);
            assert!(hint.is_some());
        }
        other => panic!("{other:?}"),
    }
    Ok(())
}

#[test]
fn missing_socket_is_a_connect_error_naming_the_path() {
    let dir = support::TempDir::new("nosock");
    let path = dir.0.join("absent.sock");
    match Client::connect(&path) {
        Err(ClientError::Connect { path: p, .. }) => assert!(p.ends_with("absent.sock")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn wrong_version_is_refused() {
    let srv = start(Engine::new());
    let mut raw = Raw::connect(&srv.socket);
    raw.send(r#"{"protocol":"palisade-control","version":99}"#);
    let r = raw.response();
    assert_eq!(error_code(&r), Some(ErrorCode::UnsupportedVersion), "{r:?}");
    assert!(raw.line().is_none(), "the server closes after refusing");
}

#[test]
fn a_first_line_that_is_not_a_hello_is_refused_with_the_expected_form() {
    let srv = start(Engine::new());
    let mut raw = Raw::connect(&srv.socket);
    raw.send(r#"{"type":"status"}"#);
    match raw.response() {
        Response::Error {
            code: ErrorCode::InvalidRequest,
            hint: Some(hint),
            ..
        } => assert!(hint.contains("\"version\":1"), "{hint}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_requests_get_errors_and_the_connection_survives() {
    let srv = start(Engine::new());
    let mut raw = Raw::hello(&srv.socket);
    for bad in [
        "{not json",
        r#"{"type":"teleport"}"#,
        r#"{"type":"filter_show"}"#,
        r#"[1,2,3]"#,
        r#"{"type":"explain","layer":"outbound_transport_v4","fields":"x"}"#,
    ] {
        raw.send(bad);
        let r = raw.response();
        assert_eq!(
            error_code(&r),
            Some(ErrorCode::InvalidRequest),
            "{bad}: {r:?}"
        );
        let Response::Error { hint, .. } = &r else {
            unreachable!()
        };
        assert!(hint.is_some(), "{bad}: no hint");
    }
    raw.send(r#"{"type":"teleport"}"#);
    match raw.response() {
        Response::Error { message, .. } => {
            assert!(message.starts_with("unknown request type"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // Not UTF-8.
    raw.writer.write_all(b"\xff\xfe\n").expect("write");
    assert_eq!(error_code(&raw.response()), Some(ErrorCode::InvalidRequest));
    // Blank lines are ignored; the connection still answers.
    raw.send("");
    raw.send(r#"{"type":"status"}"#);
    assert!(matches!(raw.response(), Response::Status(_)));
}

#[test]
fn oversized_line_is_refused_and_the_connection_survives() {
    let srv = start_with(
        Engine::new(),
        ServerOptions {
            max_request_line: 1024,
            ..ServerOptions::default()
        },
    );
    let mut raw = Raw::hello(&srv.socket);
    let big = format!(
        r#"{{"type":"policy_diff","file":"x","text":"{}"}}"#,
        "a".repeat(100_000)
    );
    raw.send(&big);
    assert_eq!(
        error_code(&raw.response()),
        Some(ErrorCode::RequestTooLarge)
    );
    raw.send(r#"{"type":"status"}"#);
    assert!(matches!(raw.response(), Response::Status(_)));
}

#[test]
fn events_without_follow_return_the_ring_after_since() -> Result<(), ClientError> {
    let srv = start(Engine::new());
    for i in 0..3 {
        srv.daemon.raise("drop", &format!("drop {i}"));
    }
    let mut client = Client::connect(&srv.socket)?;
    match client.request(Request::Events {
        follow: false,
        since: Some(1),
    })? {
        Response::Events { events } => {
            let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, vec![2, 3]);
        }
        other => panic!("{other:?}"),
    }
    Ok(())
}

#[test]
fn follow_streams_backlog_then_live_events_until_the_client_goes() -> Result<(), ClientError> {
    let srv = start_with(
        Engine::new(),
        ServerOptions {
            follow_poll: Duration::from_millis(50),
            ..ServerOptions::default()
        },
    );
    srv.daemon.raise("sa_installed", "first");
    let client = Client::connect(&srv.socket)?;
    let mut stream = client.follow_events(None)?;
    let first = stream.next().expect("backlog event")?;
    assert_eq!(first.summary, "first");
    // Once the server has registered the follower, a live event reaches it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while srv.daemon.followers() == 0 {
        assert!(Instant::now() < deadline, "follower never registered");
        std::thread::sleep(Duration::from_millis(10));
    }
    srv.daemon.raise("ike_failure", "second");
    let second = stream.next().expect("live event")?;
    assert_eq!((second.seq, second.kind.as_str()), (2, "ike_failure"));

    // The client goes away: the server notices and drops its receiver.
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        srv.daemon.raise("drop", "after the client left");
        if srv.daemon.followers() == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the stream outlived its client");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

#[test]
fn a_followed_stream_ends_when_the_daemon_stops_sending() -> Result<(), ClientError> {
    let srv = start(Engine::new());
    let mut stream = Client::connect(&srv.socket)?.follow_events(None)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while srv.daemon.followers() == 0 {
        assert!(Instant::now() < deadline, "follower never registered");
        std::thread::sleep(Duration::from_millis(10));
    }
    srv.daemon.raise("drop", "last");
    assert_eq!(stream.next().expect("an event")?.summary, "last");
    srv.daemon.stop_following();
    assert!(stream.next().is_none(), "the stream should end");
    assert!(stream.next().is_none());
    Ok(())
}

#[test]
fn connections_beyond_the_bound_are_told_busy() -> Result<(), ClientError> {
    let srv = start_with(
        Engine::new(),
        ServerOptions {
            max_connections: 1,
            ..ServerOptions::default()
        },
    );
    let mut first = Client::connect(&srv.socket)?;
    match Client::connect(&srv.socket) {
        Err(ClientError::Server { code, .. }) => assert_eq!(code, ErrorCode::Busy),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        first.request(Request::Status)?,
        Response::Status(_)
    ));
    drop(first);
    // The slot frees when the first connection's thread ends.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Client::connect(&srv.socket) {
            Ok(_) => break,
            Err(ClientError::Server {
                code: ErrorCode::Busy,
                ..
            }) => {
                assert!(Instant::now() < deadline, "slot never freed");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A handler that panics on `stats`.
struct Panicky(FakeDaemon);

impl palisade_control::Handler for Panicky {
    fn handle(&self, caller: &palisade_filter::Caller, request: Request) -> Response {
        if request == Request::Stats {
            panic!("boom");
        }
        self.0.handle(caller, request)
    }
    fn events(
        &self,
        caller: &palisade_filter::Caller,
        since: Option<u64>,
    ) -> Result<
        (
            Vec<palisade_control::NetEvent>,
            std::sync::mpsc::Receiver<palisade_control::NetEvent>,
        ),
        Response,
    > {
        self.0.events(caller, since)
    }
}

#[test]
fn a_panicking_handler_answers_internal_and_the_server_lives_on() -> Result<(), ClientError> {
    let dir = support::TempDir::new("panic");
    let socket = dir.0.join("control.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket)?;
    palisade_control::serve(
        listener,
        std::sync::Arc::new(Panicky(FakeDaemon::new(Engine::new()))),
    );
    let mut client = Client::connect(&socket)?;
    match client.call(Request::Stats)? {
        Response::Error { code, .. } => assert_eq!(code, ErrorCode::Internal),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        client.request(Request::Status)?,
        Response::Status(_)
    ));
    let mut other = Client::connect(&socket)?;
    assert!(matches!(
        other.request(Request::Status)?,
        Response::Status(_)
    ));
    Ok(())
}
