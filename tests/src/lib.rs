//! tgcdn-tests: end-to-end tests and benchmarks that run the whole path — the Telegram DC
//! emulator (`tests/tgemu`, crate `tgcdn-tgemu`), the core, the QUIC link and the edge —
//! on loopback. The emulator is its own crate so that the core's tests can use it without
//! depending on this one.
