//! [`SandboxError`]: why the sandbox could not start or stop, one line each, naming the
//! step that failed. Produced by every module of this crate; `main` prints it with its
//! source chain (`{:#}`, so messages never repeat their source) and exits 1.

use std::net::SocketAddr;
use std::path::PathBuf;

/// A failed step of starting, seeding, checking or stopping the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot listen on {addr} (choose another address with {flag})")]
    Listen {
        addr: SocketAddr,
        flag: &'static str,
        source: std::io::Error,
    },
    #[error("starting the Telegram emulator")]
    Emulator(#[from] tgemu::EmulatorError),
    #[error("opening the database in {}", dir.display())]
    Store {
        dir: PathBuf,
        source: tgcdn_core::store::StoreError,
    },
    #[error("creating a temporary directory")]
    TempDir(#[source] std::io::Error),
    #[error("the generated core configuration is invalid")]
    CoreConfig(#[from] tgcdn_core::config::ConfigError),
    #[error("starting the core")]
    Run(#[source] tgcdn_core::runtime::RunError),
    #[error("core: {step}: {reason}")]
    Core { step: &'static str, reason: String },
    #[error("bot {bot_id} is unusable: {reason}")]
    Bot { bot_id: i64, reason: String },
    #[error("--file {}", path.display())]
    DemoFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the bot did not answer the demo upload within {0:?}")]
    NoReply(std::time::Duration),
    #[error("the bot's link does not point into the storage channel {channel}: {reply:?}")]
    UnexpectedCopy { channel: i64, reply: String },
    #[error("the world kept in {}", path.display())]
    Kept {
        path: PathBuf,
        #[source]
        source: crate::persist::PersistError,
    },
    #[error("the bot's reply has no {what} link: {reply:?}")]
    ReplyWithoutLink { what: &'static str, reply: String },
    #[error("{0}")]
    Http(String),
    #[error("the second region's edge: {0}")]
    RemoteEdge(String),
    #[error("smoke check: {0}")]
    Smoke(String),
}

impl SandboxError {
    /// A core step that failed with a library error (its message kept, its type not).
    pub(crate) fn core(step: &'static str, error: impl std::fmt::Display) -> Self {
        SandboxError::Core {
            step,
            reason: error.to_string(),
        }
    }
}
