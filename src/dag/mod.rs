//! dag: not written yet.
