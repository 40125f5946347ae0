//! Reading a policy file: TOML with spans, into the document model, then compiled.

use std::path::Path;

use crate::compile::{self, Compiled};
use crate::document::Document;
use crate::error::{Diagnostic, PolicyFileError};

/// Parses `text` (named `file` in errors) into the document model.
pub fn parse_str(file: &str, text: &str) -> Result<Document, Diagnostic> {
    toml::from_str::<Document>(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let mut d = Diagnostic::at(file, text, span.clone(), message(e.message()));
        if e.message().starts_with("missing field") {
            d.path = crate::location::path_of_span(text, span);
        }
        d
    })
}

/// serde's messages name Rust types; say it in the file's terms.
fn message(m: &str) -> String {
    let m = m.trim_end();
    m.replace("invalid type: ", "wrong type: found ")
        .replace("string \"", "the string \"")
        .replace(", expected", "; expected")
        .replace("expected u16", "expected an integer 0-65535")
        .replace("expected u32", "expected an integer 0-4294967295")
}

/// Parses and compiles `text`.
pub fn compile_str(file: &str, text: &str) -> Result<Compiled, Diagnostic> {
    let doc = parse_str(file, text)?;
    compile::compile(file, text, &doc)
}

/// Reads, parses and compiles the policy file at `path`.
pub fn compile_file(path: &Path) -> Result<Compiled, PolicyFileError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| PolicyFileError::Read {
        file: file.clone(),
        source,
    })?;
    Ok(compile_str(&file, &text)?)
}
