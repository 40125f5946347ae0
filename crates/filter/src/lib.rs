//! palisade-filter: the filtering engine, Palisade's counterpart of WFP's base filtering
//! engine (BFE).
//!
//! Filters at named layers carry the whole policy (see `../shared/spec/wfp-model.md`):
//! main-mode policy at IKEEXT, quick-mode policy at IPSEC, IPsec callouts at the transport
//! layers, connection authorization at the ALE layers. The engine is sans-IO: it takes
//! objects, transactions and field values, and returns decisions; the daemon owns sockets
//! and the clock, and opens the [`store::Store`] file the engine persists to.
//!
//! ```
//! use palisade_filter::*;
//! use std::net::Ipv4Addr;
//!
//! let engine = Engine::new();
//! let mut session = engine.open_session(Caller::root(), SessionOptions::default())?;
//! let mut txn = session.begin(TxnKind::Write)?;
//! txn.add_filter(
//!     Filter::new(Layer::OutboundTransportV4, Action::Block)
//!         .name("no telnet")
//!         .condition(Condition::equal(Field::IpRemotePort, Scalar::U16(23))),
//! )?;
//! txn.commit()?;
//!
//! let values = FieldValues::new()
//!     .with(Field::IpRemoteAddress, Scalar::V4(Ipv4Addr::new(192, 0, 2, 1)))
//!     .with(Field::IpRemotePort, Scalar::U16(23));
//! let verdict = engine.classify(Layer::OutboundTransportV4, &values, &mut NoCallouts);
//! assert_eq!(verdict.decision, Decision::Block);
//! println!("{}", engine.explain(Layer::OutboundTransportV4, &values, &mut NoCallouts));
//! # Ok::<(), EngineError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod arbitrate;
pub mod builtin;
pub mod catalog;
pub mod classify;
pub mod compiled;
pub mod condition;
mod engine;
pub mod enumerate;
mod error;
pub mod explain;
pub mod field;
pub mod filter;
pub mod flags;
pub mod guids;
mod index;
pub mod layer;
pub mod objects;
mod persist;
pub mod policy;
pub mod security;
pub mod store;
pub mod subscription;
pub mod value;
pub mod weight;

pub use catalog::{Catalog, Change, ChangeType, Lifetime, Record, SessionId};
pub use classify::{
    CalloutAction, CalloutCall, CalloutInvoked, CalloutVerdict, Callouts, Classification, Decider,
    Decision, NoCallouts, Veto,
};
pub use condition::{Condition, ConditionValue, MatchType, Principal, SecurityDescriptor};
pub use engine::{
    DEFAULT_TXN_WAIT, Engine, Session, SessionOptions, Snapshot, Transaction, TxnKind,
};
pub use enumerate::{ActionKind, EnumType, FilterTemplate};
pub use error::EngineError;
pub use explain::Explanation;
pub use field::Field;
pub use filter::{Action, Filter, FilterContext};
pub use flags::{CalloutFlags, FilterFlags, ProviderContextFlags, ProviderFlags, SublayerFlags};
pub use layer::{Family, Layer};
pub use objects::{Callout, Provider, ProviderContext, Sublayer};
pub use security::{Ace, Acl, Caller, Rights};
pub use store::{ObjectKind, Store};
pub use subscription::{Subscription, SubscriptionTemplate};
pub use value::{FieldValues, Scalar, Token, Value};
pub use weight::Weight;
