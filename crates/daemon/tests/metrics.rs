//! The Prometheus text exposition of the daemon's statistics, parsed back line by line,
//! and the `/metrics` server answered over raw TCP on 127.0.0.1, bad requests included.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use palisade_control::protocol::{SaCounters, Stats};
use palisaded::metrics::{self, SaDirection};

/// A sample parsed back: metric name, labels (unescaped), value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text format strictly enough to catch what a Prometheus server would
/// refuse: HELP and TYPE before a family's samples, each family once, names and label
/// names from the allowed alphabet, label values quoted with only `\\`, `\"` and `\n`
/// escapes.
fn parse(text: &str) -> (Vec<Sample>, HashMap<String, String>) {
    assert!(text.ends_with('\n'), "the exposition ends with a line feed");
    let mut samples = Vec::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helped: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let mut finished: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _) = rest.split_once(' ').expect("HELP name text");
            assert!(!helped.contains(&name.to_owned()), "second HELP for {name}");
            if let Some(c) = current.take() {
                finished.push(c);
            }
            assert!(!finished.contains(&name.to_owned()), "{name} split in two");
            helped.push(name.to_owned());
            current = Some(name.to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert_eq!(Some(name), current.as_deref(), "TYPE follows its HELP");
            assert!(matches!(kind, "counter" | "gauge"), "{kind}");
            assert!(types.insert(name.to_owned(), kind.to_owned()).is_none());
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment {line:?}");
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let name = &line[..name_end];
        assert!(valid_name(name), "metric name {name:?}");
        assert_eq!(Some(name), current.as_deref(), "sample under its family");
        assert!(types.contains_key(name), "TYPE before samples of {name}");
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(r) = rest.strip_prefix('{') {
            rest = r;
            loop {
                let eq = rest.find('=').expect("label =");
                let label = &rest[..eq];
                assert!(valid_name(label) && !label.contains(':'), "label {label:?}");
                rest = rest[eq + 1..].strip_prefix('"').expect("quoted value");
                let mut value = String::new();
                let mut chars = rest.char_indices();
                let end = loop {
                    match chars.next().expect("closing quote") {
                        (i, '"') => break i,
                        (_, '\\') => match chars.next().expect("escape").1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            c => panic!("bad escape \\{c}"),
                        },
                        (_, '\n') => panic!("raw line feed"),
                        (_, c) => value.push(c),
                    }
                };
                assert!(labels.insert(label.to_owned(), value).is_none());
                rest = &rest[end + 1..];
                if let Some(r) = rest.strip_prefix(',') {
                    rest = r;
                } else {
                    rest = rest.strip_prefix('}').expect("closing brace");
                    break;
                }
            }
        }
        let value = rest.strip_prefix(' ').expect("space before value");
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value: value.parse().unwrap_or_else(|_| panic!("value {value:?}")),
        });
    }
    (samples, types)
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn stats() -> Stats {
    let mut drops = BTreeMap::new();
    drops.insert("replay".to_owned(), 3);
    drops.insert("integrity".to_owned(), 1);
    let mut weird = BTreeMap::new();
    weird.insert("no_sa".to_owned(), 5);
    weird.insert("odd \"reason\" with \\ and\nline".to_owned(), 2);
    let mut ike = BTreeMap::new();
    ike.insert("retransmits".to_owned(), 4);
    Stats {
        global_drops: weird,
        kernel_drops: BTreeMap::from([
            ("tun_queue".to_owned(), 8),
            ("tun_write".to_owned(), 0),
            ("socket_buffer".to_owned(), 9),
        ]),
        tun_rx: 100,
        tun_tx: 90,
        esp_rx: 80,
        esp_tx: 70,
        udp_rx: 6,
        udp_tx: 7,
        queued: 2,
        queue_drops: 1,
        clear_permitted: 11,
        clear_blocked: 12,
        handed_off: 15,
        reassembled: 13,
        fragmented: 14,
        ike,
        sas: vec![
            (
                0xc0ffee01,
                SaCounters {
                    packets: 10,
                    bytes: 1000,
                    drops,
                },
            ),
            (
                0x0000_0102,
                SaCounters {
                    packets: 20,
                    bytes: 2000,
                    drops: BTreeMap::new(),
                },
            ),
        ],
    }
}

fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> &'a Sample {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .unwrap_or_else(|| panic!("no {name} {labels:?}"))
}

#[test]
fn render_writes_every_counter_with_help_type_and_escaped_labels() {
    let text = metrics::render(&stats(), 3, 5);
    let (samples, types) = parse(&text);
    let value = |name: &str, labels: &[(&str, &str)]| find(&samples, name, labels).value;
    assert_eq!(value("palisade_ike_sas", &[]), 3.0);
    assert_eq!(value("palisade_child_sas", &[]), 5.0);
    assert_eq!(types["palisade_ike_sas"], "gauge");
    for (name, v) in [
        ("palisade_tun_rx_packets_total", 100.0),
        ("palisade_tun_tx_packets_total", 90.0),
        ("palisade_esp_rx_packets_total", 80.0),
        ("palisade_esp_tx_packets_total", 70.0),
        ("palisade_udp_rx_datagrams_total", 6.0),
        ("palisade_udp_tx_datagrams_total", 7.0),
        ("palisade_acquire_queue_drops_total", 1.0),
        ("palisade_clear_permitted_packets_total", 11.0),
        ("palisade_clear_blocked_packets_total", 12.0),
        ("palisade_reassembled_datagrams_total", 13.0),
        ("palisade_fragmented_packets_total", 14.0),
        ("palisade_handed_off_packets_total", 15.0),
    ] {
        assert_eq!(value(name, &[]), v, "{name}");
        assert_eq!(types[name], "counter", "{name}");
    }
    assert_eq!(value("palisade_acquire_queued_packets", &[]), 2.0);
    assert_eq!(types["palisade_acquire_queued_packets"], "gauge");
    // Every counter is named *_total, every *_total is a counter.
    for (name, kind) in &types {
        assert_eq!(
            name.ends_with("_total"),
            kind == "counter",
            "{name}: {kind}"
        );
        assert!(name.starts_with("palisade_"), "{name}");
    }

    assert_eq!(value("palisade_drops_total", &[("reason", "no_sa")]), 5.0);
    // The label value comes back unchanged through the format's escapes.
    let odd = "odd \"reason\" with \\ and\nline";
    assert_eq!(value("palisade_drops_total", &[("reason", odd)]), 2.0);
    assert!(
        text.contains(r#"reason="odd \"reason\" with \\ and\nline""#),
        "{text}"
    );
    assert_eq!(
        value("palisade_ike_total", &[("counter", "retransmits")]),
        4.0
    );
    let kernel = |place| value("palisade_kernel_drops_total", &[("where", place)]);
    assert_eq!(kernel("tun_queue"), 8.0);
    assert_eq!(kernel("tun_write"), 0.0);
    assert_eq!(kernel("socket_buffer"), 9.0);

    let sa = |spi| [("spi", spi), ("direction", "")];
    assert_eq!(value("palisade_sa_packets_total", &sa("0xc0ffee01")), 10.0);
    assert_eq!(value("palisade_sa_bytes_total", &sa("0xc0ffee01")), 1000.0);
    assert_eq!(value("palisade_sa_packets_total", &sa("0x00000102")), 20.0);
    let drop = |reason| [("spi", "0xc0ffee01"), ("direction", ""), ("reason", reason)];
    assert_eq!(value("palisade_sa_drops_total", &drop("replay")), 3.0);
    assert_eq!(value("palisade_sa_drops_total", &drop("integrity")), 1.0);
    assert_eq!(
        samples
            .iter()
            .filter(|s| s.name == "palisade_sa_drops_total")
            .count(),
        2,
        "the SA without drops has no drop series"
    );
}

#[test]
fn directions_label_the_per_sa_series_when_known() {
    let text = metrics::render_with_directions(&stats(), 0, 0, &|spi| match spi {
        0xc0ffee01 => Some(SaDirection::Inbound),
        0x0000_0102 => Some(SaDirection::Outbound),
        _ => None,
    });
    let (samples, _) = parse(&text);
    let v = |spi, dir| {
        find(
            &samples,
            "palisade_sa_packets_total",
            &[("spi", spi), ("direction", dir)],
        )
        .value
    };
    assert_eq!(v("0xc0ffee01", "inbound"), 10.0);
    assert_eq!(v("0x00000102", "outbound"), 20.0);
}

#[test]
fn empty_stats_still_describe_every_family() {
    let text = metrics::render(&Stats::default(), 0, 0);
    let (samples, types) = parse(&text);
    for family in [
        "palisade_drops_total",
        "palisade_kernel_drops_total",
        "palisade_ike_total",
        "palisade_sa_packets_total",
        "palisade_sa_bytes_total",
        "palisade_sa_drops_total",
    ] {
        assert!(types.contains_key(family), "{family}");
        assert!(!samples.iter().any(|s| s.name == family), "{family}");
    }
    assert_eq!(
        find(&samples, "palisade_tun_rx_packets_total", &[]).value,
        0.0
    );
}

// ---- the server ----

fn server(source: Arc<dyn Fn() -> String + Send + Sync>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    metrics::serve_listener(listener, source).expect("serve");
    addr
}

/// Sends `request` raw and reads the whole response (the server closes after one).
fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // The server may answer (431) and close before it has read everything we send.
    let _ = s.write_all(request);
    let _ = s.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8(out).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("status line: {head}"));
    (status, head.to_owned(), body.to_owned())
}

#[test]
fn get_metrics_is_answered_with_the_text_format() {
    let scrapes = Arc::new(AtomicU64::new(0));
    let counter = scrapes.clone();
    let addr = server(Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        metrics::render(&stats(), 1, 2)
    }));
    let (status, head, body) = exchange(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n",
    );
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{head}"
    );
    assert_eq!(body, metrics::render(&stats(), 1, 2));
    parse(&body);

    let (status, head, body) = exchange(addr, b"HEAD /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(status, 200, "{head}");
    assert!(body.is_empty(), "HEAD has no body");
    assert_eq!(scrapes.load(Ordering::SeqCst), 2);
}

#[test]
fn bad_requests_get_errors_and_the_server_keeps_answering() {
    let addr = server(Arc::new(|| metrics::render(&Stats::default(), 0, 0)));
    let cases: [(&[u8], u16); 8] = [
        (b"GET / HTTP/1.1\r\n\r\n", 404),
        (b"GET /metrics/x HTTP/1.1\r\n\r\n", 404),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
        (b"DELETE /metrics HTTP/1.1\r\n\r\n", 405),
        (b"GET /metrics\r\n\r\n", 400),
        (b"\x00\xff\xfe\x01 garbage \x80\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\n", 400), // closed before the blank line
        (b"GET /metrics HTTP/1.1\r\nX: y\r\n\r\n", 200),
    ];
    for (request, expected) in cases {
        if expected == 400 && !request.ends_with(b"\r\n\r\n") {
            // An incomplete request is not answered at all: the connection just closes.
            let mut s = TcpStream::connect(addr).expect("connect");
            s.write_all(request).expect("write");
            s.shutdown(Shutdown::Write).expect("shutdown");
            let mut out = Vec::new();
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let _ = s.read_to_end(&mut out);
            assert!(out.is_empty(), "{:?}", String::from_utf8_lossy(&out));
            continue;
        }
        let (status, head, _) = exchange(addr, request);
        assert_eq!(
            status,
            expected,
            "{:?}: {head}",
            String::from_utf8_lossy(request)
        );
        if expected == 405 {
            assert!(head.contains("Allow: GET, HEAD"), "{head}");
        }
    }
    // Larger than the limit, with or without an end of headers.
    let mut big = b"GET /metrics HTTP/1.1\r\nX-Filler: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', metrics::MAX_REQUEST));
    let (status, _, _) = exchange(addr, &big);
    assert_eq!(status, 431);
    big.extend_from_slice(b"\r\n\r\n");
    let (status, _, _) = exchange(addr, &big);
    assert_eq!(status, 431);
    let (status, _, _) = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, 200, "still serving after bad requests");
}

#[test]
fn a_silent_client_is_dropped_at_the_deadline() {
    let addr = server(Arc::new(|| metrics::render(&Stats::default(), 0, 0)));
    let start = Instant::now();
    let mut idle = TcpStream::connect(addr).expect("connect");
    idle.set_read_timeout(Some(metrics::REQUEST_DEADLINE * 3))
        .expect("timeout");
    let mut out = Vec::new();
    let n = idle.read_to_end(&mut out).expect("closed by the server");
    assert_eq!(n, 0, "nothing sent to a client that asked nothing");
    let waited = start.elapsed();
    assert!(
        waited >= metrics::REQUEST_DEADLINE - Duration::from_millis(100)
            && waited < metrics::REQUEST_DEADLINE * 2,
        "{waited:?}"
    );
    let (status, _, _) = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, 200);
}

#[test]
fn a_panicking_source_is_a_500_not_a_dead_endpoint() {
    let calls = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    let addr = server(Arc::new(move || {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("stats snapshot failed");
        }
        "palisade_up 1\n".to_owned()
    }));
    let (status, _, _) = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, 500);
    let (status, _, body) = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!((status, body.as_str()), (200, "palisade_up 1\n"));
}
