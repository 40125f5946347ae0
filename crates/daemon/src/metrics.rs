//! The Prometheus text endpoint: the daemon's [`Stats`] in the text exposition format
//! (version 0.0.4), served on `GET /metrics` by a small HTTP/1.1 server.
//!
//! Off by default: the daemon starts [`serve`] only when `[metrics] listen` names an
//! address. The server is one thread that answers one connection at a time and closes
//! it: a scrape every few seconds needs no more, and one thread with a bounded request
//! and a deadline cannot be made to hold more than one socket and a few KiB.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use palisade_control::protocol::{SaCounters, Stats};

/// The Content-Type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The most bytes of request (line and headers) read; more is answered 431.
pub const MAX_REQUEST: usize = 8 * 1024;
/// How long a client has to send its whole request, and to take the response.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

/// Which way an SA carries traffic, for the `direction` label of the per-SA series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaDirection {
    /// The peer sends on it; we open.
    Inbound,
    /// We send on it.
    Outbound,
}

/// The metrics text for `stats` and the current SA counts. Per-SA series carry
/// `direction=""` (the same as no label, to Prometheus): [`Stats::sas`] names SAs by SPI
/// only; [`render_with_directions`] fills it in when the caller knows.
pub fn render(stats: &Stats, ike_sas: usize, child_sas: usize) -> String {
    render_with_directions(stats, ike_sas, child_sas, &|_| None)
}

/// [`render`], with `direction(spi)` giving each SA's direction label.
pub fn render_with_directions(
    stats: &Stats,
    ike_sas: usize,
    child_sas: usize,
    direction: &dyn Fn(u32) -> Option<SaDirection>,
) -> String {
    let mut m = Exposition::default();
    m.family(
        "palisade_ike_sas",
        "gauge",
        "Established IKE SAs.",
        &[(vec![], ike_sas as u64)],
    );
    m.family(
        "palisade_child_sas",
        "gauge",
        "Installed CHILD_SA pairs.",
        &[(vec![], child_sas as u64)],
    );
    let plain: [(&str, &str, u64); 13] = [
        (
            "palisade_tun_rx_packets_total",
            "Packets read from the TUN device.",
            stats.tun_rx,
        ),
        (
            "palisade_tun_tx_packets_total",
            "Packets written to the TUN device.",
            stats.tun_tx,
        ),
        (
            "palisade_esp_rx_packets_total",
            "ESP packets received on the raw socket.",
            stats.esp_rx,
        ),
        (
            "palisade_esp_tx_packets_total",
            "ESP packets sent on the raw socket.",
            stats.esp_tx,
        ),
        (
            "palisade_udp_rx_datagrams_total",
            "UDP datagrams received (IKE and ESP in UDP).",
            stats.udp_rx,
        ),
        (
            "palisade_udp_tx_datagrams_total",
            "UDP datagrams sent (IKE and ESP in UDP).",
            stats.udp_tx,
        ),
        (
            "palisade_acquire_queued_packets",
            "Packets held now while their SA is negotiated.",
            stats.queued,
        ),
        (
            "palisade_acquire_queue_drops_total",
            "Packets dropped because the queue of packets waiting for an SA was full.",
            stats.queue_drops,
        ),
        (
            "palisade_clear_permitted_packets_total",
            "Clear-text packets policy let through.",
            stats.clear_permitted,
        ),
        (
            "palisade_clear_blocked_packets_total",
            "Clear-text packets policy blocked.",
            stats.clear_blocked,
        ),
        (
            "palisade_handed_off_packets_total",
            "Packets read from the TUN by one worker and passed to the worker that owns their peer (or puts their datagram back together).",
            stats.handed_off,
        ),
        (
            "palisade_reassembled_datagrams_total",
            "IP datagrams put back together from fragments read from the TUN.",
            stats.reassembled,
        ),
        (
            "palisade_fragmented_packets_total",
            "Packets that left in IP fragments (reassembled datagrams longer than the TUN's MTU).",
            stats.fragmented,
        ),
    ];
    for (name, help, value) in plain {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        m.family(name, kind, help, &[(vec![], value)]);
    }
    m.family(
        "palisade_drops_total",
        "counter",
        "Packets dropped outside any one SA, by reason.",
        &by_label("reason", &stats.global_drops),
    );
    m.family(
        "palisade_kernel_drops_total",
        "counter",
        "Packets the kernel dropped before palisaded read them, by where: tun_queue (the \
         TUN's queue full), tun_write (writes to the TUN refused), socket_buffer (a receive \
         buffer of palisaded's sockets full).",
        &by_label("where", &stats.kernel_drops),
    );
    m.family(
        "palisade_ike_total",
        "counter",
        "IKE counters (messages, retransmissions, drops), by counter name.",
        &by_label("counter", &stats.ike),
    );
    let sa_labels = |spi: u32| {
        let dir = match direction(spi) {
            Some(SaDirection::Inbound) => "inbound",
            Some(SaDirection::Outbound) => "outbound",
            None => "",
        };
        vec![
            ("spi", format!("{spi:#010x}")),
            ("direction", dir.to_owned()),
        ]
    };
    let per_sa = |value: fn(&SaCounters) -> u64| -> Vec<Sample> {
        stats
            .sas
            .iter()
            .map(|(spi, c)| (sa_labels(*spi), value(c)))
            .collect()
    };
    m.family(
        "palisade_sa_packets_total",
        "counter",
        "Packets through an SA, by SPI and direction.",
        &per_sa(|c| c.packets),
    );
    m.family(
        "palisade_sa_bytes_total",
        "counter",
        "Bytes through an SA, by SPI and direction.",
        &per_sa(|c| c.bytes),
    );
    let sa_drops: Vec<Sample> = stats
        .sas
        .iter()
        .flat_map(|(spi, c)| {
            c.drops.iter().map(move |(reason, n)| {
                let mut labels = sa_labels(*spi);
                labels.push(("reason", reason.clone()));
                (labels, *n)
            })
        })
        .collect();
    m.family(
        "palisade_sa_drops_total",
        "counter",
        "Packets an SA dropped (replay, integrity, ...), by SPI, direction and reason.",
        &sa_drops,
    );
    m.text
}

/// One sample: its labels and its value.
type Sample = (Vec<(&'static str, String)>, u64);

fn by_label(label: &'static str, map: &std::collections::BTreeMap<String, u64>) -> Vec<Sample> {
    map.iter()
        .map(|(k, v)| (vec![(label, k.clone())], *v))
        .collect()
}

#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// HELP and TYPE, then the samples, together as the format asks of a family. A
    /// family with no samples still says what it would count.
    fn family(&mut self, name: &str, kind: &str, help: &str, samples: &[Sample]) {
        let t = &mut self.text;
        // Writing to a String cannot fail.
        let _ = writeln!(t, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(t, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            t.push_str(name);
            if !labels.is_empty() {
                t.push('{');
                for (i, (k, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        t.push(',');
                    }
                    let _ = write!(t, "{k}=\"{}\"", escape_label(v));
                }
                t.push('}');
            }
            let _ = writeln!(t, " {value}");
        }
    }
}

/// A label value as the text format writes it: backslash, double quote and line feed
/// escaped.
pub fn escape_label(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// HELP text escapes backslash and line feed (not the quote).
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Binds `addr` and serves `GET /metrics` with the text `source` returns, on one thread.
pub fn serve(
    addr: SocketAddr,
    source: Arc<dyn Fn() -> String + Send + Sync>,
) -> io::Result<JoinHandle<()>> {
    serve_listener(TcpListener::bind(addr)?, source)
}

/// [`serve`] on a listener already bound (tests bind port 0 and read the port back).
pub fn serve_listener(
    listener: TcpListener,
    source: Arc<dyn Fn() -> String + Send + Sync>,
) -> io::Result<JoinHandle<()>> {
    let local = listener.local_addr()?;
    if !local.ip().is_loopback() {
        tracing::warn!(
            %local,
            "metrics endpoint on a non-loopback address: it has no TLS and no authentication"
        );
    }
    std::thread::Builder::new()
        .name("metrics".to_owned())
        .spawn(move || {
            tracing::info!(%local, "metrics endpoint listening on http://{local}/metrics");
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => {
                        if let Err(e) = answer(s, &*source) {
                            tracing::debug!(error = %e, "metrics request");
                        }
                    }
                    // EMFILE and the like: wait instead of spinning on accept.
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics accept");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })
}

/// What the request asked for, or why it gets an error.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Metrics { head: bool },
    Status(u16, &'static str),
}

fn answer(mut stream: TcpStream, source: &(dyn Fn() -> String + Send + Sync)) -> io::Result<()> {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    stream.set_write_timeout(Some(REQUEST_DEADLINE))?;
    let request = match read_request(&mut stream, deadline)? {
        Some(r) => r,
        None => return Ok(()),
    };
    let result = match parse(&request) {
        Answer::Metrics { head } => {
            // A panic in the daemon's stats snapshot must not end the endpoint.
            match catch_unwind(AssertUnwindSafe(source)) {
                Ok(body) => respond(&mut stream, 200, "OK", CONTENT_TYPE, &body, head),
                Err(_) => respond(
                    &mut stream,
                    500,
                    "Internal Server Error",
                    "text/plain",
                    "collecting the metrics failed\n",
                    false,
                ),
            }
        }
        Answer::Status(code, reason) => respond(
            &mut stream,
            code,
            reason,
            "text/plain",
            &format!("{code} {reason}\n"),
            false,
        ),
    };
    linger(&mut stream, deadline);
    result
}

/// Closing with unread request bytes makes the kernel send a reset, which can destroy
/// the response before the client reads it (an oversized request is answered before it
/// is all read). So: end our side, then read what is left until the client closes, for
/// at most 64 KiB and until the deadline.
fn linger(stream: &mut TcpStream, deadline: Instant) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Reads up to the blank line that ends the headers: `Ok(None)` when the client closed
/// or was too slow (nothing to answer), the bytes otherwise; a request over
/// [`MAX_REQUEST`] comes back as such and is refused by [`parse`].
fn read_request(stream: &mut TcpStream, deadline: Instant) -> io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        stream.set_read_timeout(Some(left))?;
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        buf.extend_from_slice(&chunk[..n]);
        if find_end(&buf).is_some() || buf.len() > MAX_REQUEST {
            return Ok(Some(buf));
        }
    }
}

fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| buf.windows(2).position(|w| w == b"\n\n"))
}

fn parse(request: &[u8]) -> Answer {
    let Some(end) = find_end(request).filter(|&e| e <= MAX_REQUEST) else {
        return Answer::Status(431, "Request Header Fields Too Large");
    };
    let Ok(head) = std::str::from_utf8(&request[..end]) else {
        return Answer::Status(400, "Bad Request");
    };
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Answer::Status(400, "Bad Request");
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Answer::Status(400, "Bad Request");
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    match (method, path) {
        ("GET", "/metrics") => Answer::Metrics { head: false },
        ("HEAD", "/metrics") => Answer::Metrics { head: true },
        (_, "/metrics") => Answer::Status(405, "Method Not Allowed"),
        _ => Answer::Status(404, "Not Found"),
    }
}

fn respond(
    stream: &mut TcpStream,
    code: u16,
    reason: &str,
    content_type: &str,
    body: &str,
    head_only: bool,
) -> io::Result<()> {
    let allow = if code == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         {allow}Connection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        out.push_str(body);
    }
    stream.write_all(out.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_routed_by_method_and_path() {
        assert_eq!(
            parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Answer::Metrics { head: false }
        );
        assert_eq!(
            parse(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Answer::Metrics { head: false }
        );
        assert_eq!(
            parse(b"HEAD /metrics HTTP/1.1\r\n\r\n"),
            Answer::Metrics { head: true }
        );
        assert_eq!(
            parse(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Answer::Status(405, "Method Not Allowed")
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\n\r\n"),
            Answer::Status(404, "Not Found")
        );
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics SPDY/3\r\n\r\n",
            b"\xff\xfe /metrics HTTP/1.1\r\n\r\n",
            b"\r\n\r\n",
        ] {
            assert_eq!(parse(bad), Answer::Status(400, "Bad Request"), "{bad:?}");
        }
        assert_eq!(
            parse(&vec![b'a'; MAX_REQUEST + 1]),
            Answer::Status(431, "Request Header Fields Too Large")
        );
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(escape_help("x\\y\nz \""), "x\\\\y\\nz \"");
    }
}
