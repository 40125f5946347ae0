//! Support shared by the end-to-end tests.
pub mod bridge;
pub mod daemon;
pub mod echo;
pub mod greeter;
pub mod nat;
