//! Key export for Wireshark (helper OPS writes this).
