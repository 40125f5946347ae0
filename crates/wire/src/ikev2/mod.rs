//! IKEv2 messages and payloads (RFC 7296), parsed and emitted without
//! cryptography and without allocation.
//!
//! Parsing is zero-copy: [`IkeHeader::parse`] checks a datagram's header,
//! [`Payloads`] walks the payload chain, and each payload type has a view
//! with `parse(body)` that checks the body completely, so the view's
//! accessors and iterators cannot fail afterwards. Emitting goes through
//! [`MessageBuilder`], which writes the header and any [`PayloadBody`] and
//! keeps Next Payload and the lengths right; payloads with nested lists
//! (SA, TS, CP) have a `...Spec` type describing what to write.
//!
//! Not here: the SK payload's cryptography (only its framing, [`sk`]), the
//! EAP payload's contents, and the RFC 7296 §3.13 semantics of selectors.

mod auth;
mod builder;
mod cert;
mod cp;
mod cursor;
mod delete;
mod header;
mod id;
mod ke;
mod nonce;
mod notify;
mod payload;
mod sa;
pub mod sk;
mod transform;
mod ts;
mod vendor;

pub use auth::{Auth, auth_method};
pub use builder::MessageBuilder;
pub use cert::{CA_HASH_LEN, Certificate, CertificateRequest, cert_encoding};
pub use cp::{
    ConfigAttribute, ConfigAttributes, Configuration, ConfigurationSpec,
    attribute_type as cfg_attribute, cfg_type,
};
pub use delete::Delete;
pub use header::{IKE_HEADER_LEN, IKE_MAJOR_VERSION, IkeHeader, exchange_type, flags};
pub use id::{Identification, id_type};
pub use ke::KeyExchange;
pub use nonce::{MAX_NONCE_LEN, MIN_NONCE_LEN, Nonce};
pub use notify::{Notify, notify_type};
pub use payload::{
    CRITICAL_FLAG, GenericPayloadHeader, PAYLOAD_HEADER_LEN, Payload, PayloadBody, Payloads,
    payload_type, validate_chain,
};
pub use sa::{
    Attribute, AttributeValue, Attributes, Proposal, ProposalSpec, Proposals, SecurityAssociation,
    SecurityAssociationSpec, Transform, TransformSpec, Transforms,
};
pub use sk::{Encrypted, EncryptedFragment, EncryptedRanges};
pub use transform::{
    attribute_type, encr, esn, integ, ke_method, prf, protocol_id, transform_type,
};
pub use ts::{
    AddressRange, Selectors, TrafficSelector, TrafficSelectors, TrafficSelectorsSpec, ts_type,
};
pub use vendor::VendorId;
