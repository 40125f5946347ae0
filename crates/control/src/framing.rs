//! Line framing: one JSON value per line, with a bound on how much a line may hold.

use std::io::{self, BufRead, Write};

use serde::Serialize;

/// One line read from a peer.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line (without its newline).
    Text(String),
    /// A line longer than the bound; it was read and thrown away up to its newline.
    TooLong,
    /// The peer closed the connection.
    End,
}

/// Reads one line of at most `max` bytes. A longer line is consumed to its end without
/// being kept, so a client cannot make the server hold more than `max` bytes.
pub fn read_line(reader: &mut impl BufRead, max: usize) -> io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            // EOF: a last line without a newline still counts, a partial one over the
            // bound does not.
            return Ok(if too_long {
                Line::TooLong
            } else if line.is_empty() {
                Line::End
            } else {
                Line::Text(into_text(line)?)
            });
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !too_long {
            if line.len() + chunk.len() > max {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(buf.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Text(into_text(line)?)
            });
        }
    }
}

fn into_text(mut line: Vec<u8>) -> io::Result<String> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
}

/// Writes `value` as one JSON line and flushes it.
pub fn write_json(writer: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    let mut bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    bytes.push(b'\n');
    writer.write_all(&bytes)?;
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn lines(input: &[u8], max: usize) -> Vec<Line> {
        // A tiny buffer so lines cross fill_buf boundaries.
        let mut r = BufReader::with_capacity(3, input);
        let mut out = Vec::new();
        loop {
            match read_line(&mut r, max) {
                Ok(Line::End) => break,
                Ok(l) => out.push(l),
                Err(e) => panic!("{e}"),
            }
        }
        out
    }

    #[test]
    fn lines_split_and_bounded() {
        assert_eq!(
            lines(b"ab\r\ncdefgh\nij\n\nk", 4),
            vec![
                Line::Text("ab".into()),
                Line::TooLong,
                Line::Text("ij".into()),
                Line::Text(String::new()),
                Line::Text("k".into()),
            ]
        );
        assert_eq!(lines(b"abcd\n", 4), vec![Line::Text("abcd".into())]);
        assert_eq!(lines(b"abcdefgh", 4), vec![Line::TooLong]);
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut r = BufReader::new(&b"\xff\xfe\n"[..]);
        assert!(read_line(&mut r, 10).is_err());
    }
}
