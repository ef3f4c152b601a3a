//! explain: not written yet.
