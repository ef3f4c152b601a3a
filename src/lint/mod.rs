//! lint: not written yet.
