//! Errors: a diagnostic names the file, line, column and field path of what to fix; an
//! apply error says whether the engine refused the change (and then nothing changed).

use std::fmt;
use std::ops::Range;

use palisade_filter::EngineError;

use crate::location;

/// One thing wrong with a policy file, where it is and what is expected instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as the administrator named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The field path, `rules[2].remote[0]`; empty for the document itself.
    pub path: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic at byte `span` of `text`; the field path is found from the span.
    pub(crate) fn at(
        file: &str,
        text: &str,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = location::line_column(text, span.start);
        Diagnostic {
            file: file.to_owned(),
            line,
            column,
            path: location::field_path(text, span.start),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// Why a policy could not be loaded or applied.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is malformed or inconsistent.
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
    /// The engine refused the change; the transaction was aborted and the engine's
    /// policy is as it was.
    #[error("the engine refused the policy (nothing was changed): {0}")]
    Engine(#[from] EngineError),
    /// The engine refused one of the policy's objects; the transaction was aborted and
    /// the engine's policy is as it was.
    #[error("the engine refused {object} (nothing was changed): {source}")]
    Refused {
        /// The object, by kind and name (`filter "db01: ikeext-v4"`).
        object: String,
        /// Why.
        source: EngineError,
    },
}

impl From<Diagnostic> for PolicyFileError {
    fn from(d: Diagnostic) -> Self {
        PolicyFileError::Invalid(Box::new(d))
    }
}
