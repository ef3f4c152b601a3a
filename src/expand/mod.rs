//! Word expansion: not written yet.
