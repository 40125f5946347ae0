//! The IPsec callouts of the data plane (helper CALLOUT writes this).
