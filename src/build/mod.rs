//! build: not written yet.
