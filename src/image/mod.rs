//! image: not written yet.
