//! Parser throughput (filled in with the parser).
fn main() {}
