//! ignore: not written yet.
