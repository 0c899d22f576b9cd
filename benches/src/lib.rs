//! Benchmarks of resident-auth live in this package's `[[bench]]` targets; this library is
//! empty so that `cargo test --workspace` builds the package (and so the benches compile).
