//! Feeds arbitrary bytes to palisaded's socket-diagnostics reply parser
//! (crates/daemon/src/sys/sock_diag.rs), as a netlink message from the kernel, with the
//! request number taken from the message itself or not.
//!
//! Malformed replies must be errors, never panics; an owner comes only from a message
//! long enough to hold an `inet_diag_msg`, and parsing is a pure function of its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisaded::sys::sock_diag::{Reply, parse_reply};

fuzz_target!(|data: &[u8]| {
    let seq = data
        .get(8..12)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_ne_bytes)
        .unwrap_or(0);
    for s in [seq, seq.wrapping_add(1)] {
        let first = parse_reply(data, s);
        if let Ok(Reply::Owner(_)) = first {
            assert!(data.len() >= 16 + 72, "an owner from a short message");
        }
        let again = parse_reply(data, s);
        assert_eq!(
            first.as_ref().ok(),
            again.as_ref().ok(),
            "parsing is a pure function"
        );
    }
});
