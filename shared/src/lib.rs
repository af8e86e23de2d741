//! tgcdn-shared: the pieces both the edge and the core must agree on, with no I/O.
//!
//! * [`token`] — signed link tokens (and the opt-in legacy format of the older bots);
//! * [`chunk`] — the 1 MiB chunk plan every cache and every Telegram request is keyed by;
//! * [`range`] — HTTP `Range` / `If-Range` evaluation against a file size;
//! * [`wire`] — the framed edge↔core messages carried on QUIC streams;
//! * [`config`] — `TGCDN_*` environment variables and TOML files into typed settings.
//!
//! Nothing here opens a socket, spawns a task or reads the clock: callers pass `now` in.
//! That keeps every codec testable by property tests and fuzzing, and keeps tokio, quinn and
//! hyper out of this crate's dependency tree (CI checks it).

pub mod chunk;
pub mod config;
pub mod range;
pub mod token;
pub mod wire;
