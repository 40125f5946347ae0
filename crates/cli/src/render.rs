//! Human output: aligned tables and `name: value` sections, and times as UTC.

use std::fmt::Write as _;

/// A table with a header row; columns are padded to their widest cell.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// How many rows besides the header.
    pub fn len(&self) -> usize {
        self.rows.len() - 1
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `name: value` lines with the values aligned.
pub struct Section {
    title: Option<String>,
    lines: Vec<(String, String)>,
}

impl Section {
    pub fn new(title: Option<&str>) -> Section {
        Section {
            title: title.map(str::to_owned),
            lines: Vec::new(),
        }
    }

    pub fn line(&mut self, name: &str, value: impl ToString) -> &mut Section {
        self.lines.push((name.to_owned(), value.to_string()));
        self
    }

    pub fn render(&self) -> String {
        let width = self
            .lines
            .iter()
            .map(|(n, _)| n.chars().count() + 1)
            .max()
            .unwrap_or(0);
        let indent = if self.title.is_some() { "  " } else { "" };
        let mut out = String::new();
        if let Some(t) = &self.title {
            out.push_str(t);
            out.push('\n');
        }
        for (name, value) in &self.lines {
            let label = format!("{name}:");
            let _ = writeln!(out, "{indent}{label:<width$} {value}");
        }
        out
    }
}

/// A JSON value as one short cell: strings bare, null as `-`, the rest compact JSON.
pub fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "-".into(),
        serde_json::Value::String(s) if s.is_empty() => "-".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A JSON object as a section: one line per scalar, nested objects and arrays flattened
/// into dotted paths (`policy.ike_proposals[0].cipher`); filter conditions as the engine
/// writes them (`IP_REMOTE_PORT == 23`).
pub fn object_section(title: Option<&str>, v: &serde_json::Value) -> String {
    let mut s = Section::new(title);
    if let Some(map) = v.as_object() {
        for (k, v) in map {
            flatten(&mut s, k, v);
        }
    }
    s.render()
}

fn flatten(s: &mut Section, path: &str, v: &serde_json::Value) {
    match v {
        serde_json::Value::Object(map) if !map.is_empty() => {
            if let Ok(c) = serde_json::from_value::<palisade_filter::Condition>(v.clone()) {
                s.line(path, c);
                return;
            }
            for (k, v) in map {
                flatten(s, &format!("{path}.{k}"), v);
            }
        }
        serde_json::Value::Array(items) if items.iter().any(|i| i.is_object()) => {
            for (i, item) in items.iter().enumerate() {
                flatten(s, &format!("{path}[{i}]"), item);
            }
        }
        serde_json::Value::Array(items) if items.is_empty() => {
            s.line(path, "-");
        }
        serde_json::Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(cell).collect();
            s.line(path, parts.join(", "));
        }
        other => {
            s.line(path, cell(other));
        }
    }
}

/// Seconds as `1d 2h 3m 4s`, leaving out the leading zero units.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (n, unit) in [(d, "d"), (h, "h"), (m, "m")] {
        if n > 0 || !out.is_empty() {
            let _ = write!(out, "{n}{unit} ");
        }
    }
    let _ = write!(out, "{s}s");
    out
}

/// Milliseconds since the Unix epoch as `2026-11-27T10:00:00.123Z`.
pub fn utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        unix_ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let mut t = Table::new(&["ID", "NAME"]);
        t.row(vec!["1".into(), "a".into()]);
        t.row(vec!["1234".into(), "b c".into()]);
        assert_eq!(t.render(), "ID    NAME\n1     a\n1234  b c\n");
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn sections_align() {
        let mut s = Section::new(Some("daemon"));
        s.line("pid", 1).line("uptime", "2s");
        assert_eq!(s.render(), "daemon\n  pid:    1\n  uptime: 2s\n");
    }

    #[test]
    fn objects_flatten() {
        let v = serde_json::json!({
            "name": "x",
            "policy": { "type": "ikev2_mm", "methods": [{ "key": "<redacted>" }] },
            "conditions": [{ "field": "ip_remote_port", "match": "equal", "value": { "scalar": { "u16": 23 } } }],
            "tags": [],
        });
        let out = object_section(Some("t"), &v);
        assert!(out.contains("  policy.type:           ikev2_mm\n"), "{out}");
        assert!(out.contains("policy.methods[0].key: <redacted>"), "{out}");
        assert!(
            out.contains("conditions[0]:         IP_REMOTE_PORT == 23"),
            "{out}"
        );
        assert!(out.contains("tags:                  -"), "{out}");
    }

    #[test]
    fn times() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(utc(1_764_237_600_000), "2025-11-27T10:00:00.000Z");
        assert_eq!(duration(3661), "1h 1m 1s");
        assert_eq!(duration(86_400), "1d 0h 0m 0s");
        assert_eq!(duration(5), "5s");
    }
}
