//! Manager benches (filled in below).
fn main() {}
