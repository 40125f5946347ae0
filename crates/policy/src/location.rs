//! From a byte offset in a policy file to what an administrator needs: the line and
//! column, and the path of the field there (`rules[2].remote`). The path is found by
//! walking the document's spanned tree, so serde's own errors (wrong type, unknown key)
//! get a path as well as the checks this crate makes.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// 1-based line and column (in characters) of byte `offset`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// The path of the innermost key or value at byte `offset`; empty if the document does
/// not parse or the offset is outside every entry.
pub fn field_path(text: &str, offset: usize) -> String {
    let Ok(root) = DeTable::parse(text) else {
        return String::new();
    };
    let mut path = String::new();
    walk_table(root.get_ref(), offset, &mut path);
    path
}

/// The path of the table or value spanning exactly `span`: serde reports a missing field
/// at the table that lacks it. Falls back to [`field_path`] at the span's start.
pub fn path_of_span(text: &str, span: std::ops::Range<usize>) -> String {
    let Ok(root) = DeTable::parse(text) else {
        return String::new();
    };
    if root.span() == span || (span.start == 0 && span.end >= text.trim_end().len()) {
        return String::new();
    }
    let mut path = String::new();
    if exact_table(root.get_ref(), &span, &mut path) {
        path
    } else {
        field_path(text, span.start)
    }
}

fn exact_table(table: &DeTable<'_>, span: &std::ops::Range<usize>, path: &mut String) -> bool {
    for (key, value) in table.iter() {
        let len = path.len();
        push_key(path, key.get_ref());
        if exact_value(value, span, path) {
            return true;
        }
        path.truncate(len);
    }
    false
}

fn exact_value(
    value: &Spanned<DeValue<'_>>,
    span: &std::ops::Range<usize>,
    path: &mut String,
) -> bool {
    if value.span() == *span {
        return true;
    }
    match value.get_ref() {
        DeValue::Table(t) => exact_table(t, span, path),
        DeValue::Array(a) => a.iter().enumerate().any(|(i, v)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let hit = exact_value(v, span, path);
            if !hit {
                path.truncate(len);
            }
            hit
        }),
        _ => false,
    }
}

fn walk_table(table: &DeTable<'_>, offset: usize, path: &mut String) {
    // A `[[rules]]` header's span covers only the header, so an entry is chosen by its
    // key or its value containing the offset, and the innermost match wins.
    for (key, value) in table.iter() {
        let in_key = key.span().contains(&offset);
        let in_value = contains(value, offset);
        if in_key || in_value {
            push_key(path, key.get_ref());
            if in_value {
                walk_value(value, offset, path);
            }
            return;
        }
    }
}

fn contains(value: &Spanned<DeValue<'_>>, offset: usize) -> bool {
    if value.span().contains(&offset) {
        return true;
    }
    // Tables built from `[a.b]` headers and arrays of tables span only their headers;
    // look inside.
    match value.get_ref() {
        DeValue::Table(t) => t
            .iter()
            .any(|(k, v)| k.span().contains(&offset) || contains(v, offset)),
        DeValue::Array(a) => a.iter().any(|v| contains(v, offset)),
        _ => false,
    }
}

fn walk_value(value: &Spanned<DeValue<'_>>, offset: usize, path: &mut String) {
    match value.get_ref() {
        DeValue::Table(t) => walk_table(t, offset, path),
        DeValue::Array(a) => {
            if let Some((i, v)) = a.iter().enumerate().find(|(_, v)| contains(v, offset)) {
                path.push_str(&format!("[{i}]"));
                walk_value(v, offset, path);
            }
        }
        _ => {}
    }
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        path.push_str(key);
    } else {
        path.push_str(&format!("{key:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_are_one_based() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 10), (2, 4));
    }

    #[test]
    fn paths_go_through_arrays_of_tables() {
        let text = "[[rules]]\nname = \"a\"\n[[rules]]\nname = \"b\"\nremote = [\"x\", \"y\"]\n";
        let at = text.find("\"y\"").unwrap_or(0);
        assert_eq!(field_path(text, at), "rules[1].remote[1]");
        let at = text.find("name = \"a\"").unwrap_or(0);
        assert_eq!(field_path(text, at), "rules[0].name");
    }
}
