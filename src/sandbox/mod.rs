//! sandbox: not written yet.
