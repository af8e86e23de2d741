//! tgcdn-tests: end-to-end tests and benchmarks that run the whole path — the Telegram DC
//! emulator (`tests/tgemu`, crate `tgcdn-tgemu`), the core, the QUIC link and the edge —
//! on loopback. The emulator is its own crate so that the core's tests can use it without
//! depending on this one.
//!
//! The library is the harness: [`stack`] brings up emulator + real `tgcdn-core` + real
//! `tgcdn-edge` processes, [`client`] is an exact, blocking HTTP/1.1 client. The tests are
//! in `tests/e2e.rs` (one binary, modules by topic).

pub mod client;
pub mod cluster;
pub mod stack;

pub use stack::{PostedFile, Stack, StackError, StackOptions, UserPhoto, UserUpload};

/// SHA-256 of `bytes` as lower-case hex (what `sha256sum` prints).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    stack::hex(&Sha256::digest(bytes))
}
