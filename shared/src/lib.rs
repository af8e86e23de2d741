//! tgcdn-shared: the pieces both the edge and the core must agree on, with no I/O.
//!
//! * [`token`] — signed link tokens (and the opt-in legacy format of the older bots);
//! * [`chunk`] — the 1 MiB chunk plan every cache and every Telegram request is keyed by;
//! * [`range`] — HTTP `Range` / `If-Range` evaluation against a file size;
//! * [`wire`] — the framed edge↔core messages carried on QUIC streams;
//! * [`config`] — `TGCDN_*` environment variables and TOML files into typed settings;
//! * [`rendezvous`] — which of several cores serves a file (rendezvous hashing);
//! * [`deadline`] — the edge's wait for an answer and the core's deadline, tied together.
//!
//! Nothing here opens a socket, spawns a task or reads the clock: callers pass `now` in.
//! That keeps every codec testable by property tests and fuzzing, and keeps tokio, quinn and
//! hyper out of this crate's dependency tree (CI checks it).

pub mod chunk;
pub mod config;
pub mod deadline;
pub mod range;
pub mod rendezvous;
pub mod token;
pub mod wire;

use serde::{Deserialize, Serialize};

/// The Telegram message that holds a file: what a link token names and what every
/// edge↔core request is about. Chunks of a file are keyed by `(FileRef, chunk index)`.
///
/// `chat_id` uses the Bot API convention (`-100…` for channels), which is what operators
/// paste into configs and what the older bots' links carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileRef {
    pub chat_id: i64,
    pub msg_id: i32,
}

impl std::fmt::Display for FileRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.chat_id, self.msg_id)
    }
}
