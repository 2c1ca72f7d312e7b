//! Benchmarks for the provenance crates live in `benches/`; this library is empty.
