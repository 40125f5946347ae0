//! The blocking client the `palisade` command uses: connect, exchange hellos, then one
//! request and one response at a time, or a followed stream of net events.

use std::io::{BufReader, ErrorKind};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::error::{ClientError, ErrorCode};
use crate::framing::{Line, read_line, write_json};
use crate::protocol::{Hello, NetEvent, PROTOCOL_NAME, PROTOCOL_VERSION, Request, Response};

/// The longest response line the client reads: far above any real answer, but a bound
/// all the same.
const MAX_RESPONSE_LINE: usize = 256 << 20;

/// How long the client waits for the daemon's hello; a socket that is not palisaded's
/// should not hang the command.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to palisaded's control socket.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    server: Hello,
}

impl Client {
    /// Connects to the socket at `path` and exchanges hellos.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, ClientError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.display().to_string(),
            source,
        })?;
        let mut writer = stream.try_clone()?;
        stream.set_read_timeout(Some(HELLO_TIMEOUT))?;
        let mut reader = BufReader::new(stream);
        write_json(
            &mut writer,
            &Hello::new(format!("palisade {}", env!("CARGO_PKG_VERSION"))),
        )
        // A server that refuses the connection (busy) may close before reading our hello;
        // its reason is on the way, so read it instead of reporting a broken pipe.
        .or_else(|e| {
            if e.kind() == ErrorKind::BrokenPipe {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        let first = next_line(&mut reader)?;
        let server = match serde_json::from_str::<Hello>(&first) {
            Ok(hello) if hello.protocol == PROTOCOL_NAME => hello,
            _ => {
                return Err(match serde_json::from_str::<Response>(&first) {
                    Ok(response) => server_error(response),
                    Err(_) => ClientError::Malformed(format!(
                        "expected a {PROTOCOL_NAME} hello, got {}",
                        excerpt(&first)
                    )),
                });
            }
        };
        if server.version != PROTOCOL_VERSION {
            return Err(ClientError::Version {
                server: server.version,
                client: PROTOCOL_VERSION,
            });
        }
        reader.get_ref().set_read_timeout(None)?;
        Ok(Client {
            reader,
            writer,
            server,
        })
    }

    /// The daemon's hello.
    pub fn server_hello(&self) -> &Hello {
        &self.server
    }

    /// Sends `request` and returns the daemon's response, an error response included.
    /// `events` with `follow` is for [`Client::follow_events`].
    pub fn call(&mut self, request: Request) -> Result<Response, ClientError> {
        write_json(&mut self.writer, &request)?;
        let line = next_line(&mut self.reader)?;
        serde_json::from_str(&line)
            .map_err(|e| ClientError::Malformed(format!("{e} in response {}", excerpt(&line))))
    }

    /// As [`Client::call`], with an error response turned into [`ClientError::Server`].
    pub fn request(&mut self, request: Request) -> Result<Response, ClientError> {
        match self.call(request)? {
            error @ Response::Error { .. } => Err(server_error(error)),
            response => Ok(response),
        }
    }

    /// Follows the daemon's net events after `since` (all the ring holds without it):
    /// the ring's first, then live ones, until the daemon stops or the iterator is dropped.
    pub fn follow_events(mut self, since: Option<u64>) -> Result<EventStream, ClientError> {
        write_json(
            &mut self.writer,
            &Request::Events {
                follow: true,
                since,
            },
        )?;
        Ok(EventStream {
            reader: self.reader,
            _writer: self.writer,
            done: false,
        })
    }
}

/// Net events as the daemon sends them.
#[derive(Debug)]
pub struct EventStream {
    reader: BufReader<UnixStream>,
    // Dropping the stream closes the connection, which ends the daemon's side.
    _writer: UnixStream,
    done: bool,
}

impl Iterator for EventStream {
    type Item = Result<NetEvent, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let line = match read_line(&mut self.reader, MAX_RESPONSE_LINE) {
            Ok(Line::Text(line)) => line,
            Ok(Line::End) => {
                self.done = true;
                return None;
            }
            Ok(Line::TooLong) => {
                return Some(Err(ClientError::Malformed("an overlong event line".into())));
            }
            Err(e) => {
                self.done = true;
                return Some(Err(e.into()));
            }
        };
        Some(match serde_json::from_str::<Response>(&line) {
            Ok(Response::Event(event)) => Ok(event),
            Ok(error @ Response::Error { .. }) => {
                self.done = true;
                Err(server_error(error))
            }
            Ok(other) => Err(ClientError::Malformed(format!(
                "expected an event, got {}",
                excerpt(&serde_json::to_string(&other).unwrap_or_default())
            ))),
            Err(e) => Err(ClientError::Malformed(format!("{e} in {}", excerpt(&line)))),
        })
    }
}

fn next_line(reader: &mut BufReader<UnixStream>) -> Result<String, ClientError> {
    match read_line(reader, MAX_RESPONSE_LINE) {
        Ok(Line::Text(line)) => Ok(line),
        Ok(Line::End) => Err(ClientError::Closed),
        Ok(Line::TooLong) => Err(ClientError::Malformed("an overlong response line".into())),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Err(
            ClientError::Malformed("no hello from the socket's server within 10 s".into()),
        ),
        Err(e) => Err(e.into()),
    }
}

fn server_error(response: Response) -> ClientError {
    match response {
        Response::Error {
            code,
            message,
            hint,
        } => ClientError::Server {
            code,
            message,
            hint,
        },
        other => ClientError::Server {
            code: ErrorCode::Internal,
            message: format!("unexpected response {other:?}"),
            hint: None,
        },
    }
}

/// The start of a line, for error messages.
fn excerpt(line: &str) -> String {
    let mut s: String = line.chars().take(120).collect();
    if s.len() < line.len() {
        s.push_str("...");
    }
    format!("{s:?}")
}
