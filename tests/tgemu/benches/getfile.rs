//! getFile throughput bench (filled in by a later commit).

fn main() {}
