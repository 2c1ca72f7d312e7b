//! The `provenance` command.
fn main() {}
