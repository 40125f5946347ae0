//! Feeds arbitrary bytes to palisaded's NFQUEUE packet-message parser
//! (crates/daemon/src/sys/nfqueue.rs), as the kernel's message body after the netlink
//! header: nfgenmsg, then attributes.
//!
//! Malformed messages must be errors, never panics; a message that parses carries the
//! payload attribute's bytes exactly, and parsing is a pure function of the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisaded::sys::nfqueue::parse_queued_packet;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = parse_queued_packet(data) else {
        return;
    };
    assert!(
        p.packet.len() + 8 <= data.len(),
        "payload longer than the message"
    );
    assert_eq!(parse_queued_packet(data).ok().as_ref(), Some(&p));
    // Flow extraction is what the daemon does next with a queued packet.
    let _ = palisaded::ipsec_callout::Flow::inbound(&p.packet);
});
