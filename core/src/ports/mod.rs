//! The ports of the request path: what `fetch`, `resolve` and `health` need from Telegram,
//! as traits and plain values with no grammers type, plus the one retry policy they share.
//!
//! A leaf: it imports only `bots` (the pure pool types a failure's penalty names), so the
//! request path reads `quic → fetch → resolve → telegram` one way. `telegram/` implements
//! these traits; tests implement them with scripted fakes.
//!
//! * [`PartDownloader`] — `getFile` parts for one bot;
//! * [`DocumentSource`] — a channel message's file (document or photo) as one bot sees it;
//! * [`Prober`] — the background check that puts a recovered bot back in rotation;
//! * [`channel`] — the catalogue's side: channel posts as events and the back-fill's
//!   [`channel::ChannelReader`];
//! * [`TelegramError`] / [`RetryClass`] — a failure and what to do about it;
//! * [`retry`] — the pure cross-bot retry policy.

pub mod channel;
pub mod error;
pub mod retry;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tgcdn_shared::FileRef;
use tgcdn_shared::chunk::PartRequest;

pub use error::{RetryClass, TelegramError};

use crate::bots::health::ProbeTarget;

/// A boxed future that can move between threads (the traits below are object safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a message's file's bytes are, as one bot sees them (`access_hash` and
/// `file_reference` are per bot; the reference expires). The file is a document or one
/// size of a photo; `telegram/` turns this into the matching `InputFileLocation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentLocation {
    pub id: i64,
    pub access_hash: i64,
    pub file_reference: Vec<u8>,
    pub dc_id: i32,
    pub kind: FileKind,
}

/// Which kind of file a [`DocumentLocation`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    Document,
    /// One size of a photo, by Telegram's type letter (`y`, `w`…): the served one is the
    /// largest.
    PhotoSize(String),
}

/// A message's file (a document, or a photo's largest size): its location for this bot and
/// what the edge needs to describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentInfo {
    pub location: DocumentLocation,
    pub size: u64,
    pub mime_type: String,
    pub file_name: Option<String>,
    /// Message date, seconds since the Unix epoch.
    pub date: i64,
}

/// Downloads `getFile` parts for one bot. `refresh` asks it to re-fetch the message first
/// because the previous attempt's file reference expired.
pub trait PartDownloader: Send + Sync + 'static {
    fn download_part(
        self: Arc<Self>,
        connection: usize,
        file: FileRef,
        part: PartRequest,
        refresh: bool,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<Bytes, TelegramError>>;

    /// Whether a part of `file` can be requested at once, without a lookup first (this
    /// bot's location of it is known). The fetch prefers such a bot; the default says yes.
    fn is_ready(&self, _file: FileRef) -> bool {
        true
    }
}

/// Looks a channel message's file (document or photo) up as one bot sees it.
pub trait DocumentSource: Send + Sync + 'static {
    fn lookup_document(
        self: Arc<Self>,
        file: FileRef,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<DocumentInfo, TelegramError>>;
}

/// Checks whether one bot can serve `target` again; the error is the reason shown.
pub trait Prober: Send + Sync + 'static {
    fn probe(
        self: Arc<Self>,
        target: ProbeTarget,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<(), String>>;
}
