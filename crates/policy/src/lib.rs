//! palisade-policy: the Palisade policy file (docs/policy-format.md), what it compiles to
//! in the filtering engine, and the difference between a compiled policy and what an
//! engine holds.
//!
//! ```
//! use palisade_filter::{Caller, Engine, SessionOptions};
//!
//! let text = r#"
//! [policy]
//! name = "lab"
//!
//! [auth_sets.psk]
//! method = "preshared_key"
//! key = "correct horse battery staple"
//!
//! [[rules]]
//! name = "peer"
//! remote = "192.0.2.2"
//! action = "require"
//! auth = "psk"
//! "#;
//! let compiled = palisade_policy::compile_str("lab.toml", text)?;
//! let engine = Engine::new();
//! let mut session = engine.open_session(Caller::root(), SessionOptions::default())?;
//! let diff = palisade_policy::apply(&engine, &mut session, &compiled)?;
//! assert!(!diff.is_empty());
//! assert!(palisade_policy::diff(&engine, &compiled).is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod address;
mod apply;
pub mod compile;
pub mod diff;
pub mod document;
mod error;
pub mod keys;
pub mod location;
mod parse;
pub mod principal;
pub mod traffic;

pub use apply::apply;
pub use compile::Compiled;
pub use diff::{Diff, diff, diff_catalog};
pub use error::{Diagnostic, PolicyFileError};
pub use keys::{PALISADE_PROVIDER, PALISADE_SUBLAYER};
pub use parse::{compile_file, compile_str, parse_str};
