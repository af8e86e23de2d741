//! Pieces the tgcdn chain benchmarks share: a raw HTTP/1.1 client that times the first body
//! byte, the bare hyper baseline server, the emulator → core → QUIC → edge chain built in
//! process, the external processes (nginx, the `tgcdn-edge` binary), small statistics and
//! the crowd bench's deterministic sampling.
//!
//! Used only by the bench binaries in `bench/benches/` (run by `bash bench/run`). Nothing
//! here is part of the product; it must never be linked by core or edge.

pub mod bare;
pub mod chain;
pub mod client;
pub mod external;
pub mod sample;
pub mod stats;

/// One MiB, the chunk unit of the whole system.
pub const MIB: u64 = 1 << 20;

/// Whether this bench binary was started by `cargo bench` (which passes `--bench`). Under
/// `cargo test --all-targets` the binaries are built and started without it: they print a
/// note and exit, so the slow chains never run inside the test suite.
pub fn started_by_cargo_bench() -> bool {
    let wanted = std::env::args().any(|arg| arg == "--bench");
    if !wanted {
        println!("benchmark skipped: run it with `cargo bench -p tgcdn-bench --bench <name>`");
    }
    wanted
}

/// The main of every bench binary: skip unless started by `cargo bench`, else run `bench`
/// on a multi-threaded runtime.
pub fn run_bench<F: std::future::Future<Output = ()>>(bench: impl FnOnce() -> F) {
    if !started_by_cargo_bench() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a bench cannot run without a tokio runtime");
    runtime.block_on(bench());
}

/// A numeric knob of a bench from the environment (`BENCH_*`), or its default.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}
