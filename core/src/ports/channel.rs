//! The catalogue's port to Telegram: what a channel post is to the catalogue
//! ([`ChannelPost`], [`IndexEvent`]) and what the back-fill needs from a bot
//! ([`ChannelReader`]). Plain values and one trait, no grammers type, so `telegram/`
//! (which produces the events and implements the reader) and `catalog/` (which consumes
//! them) both depend on this leaf and never on each other.

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tgcdn_shared::FileRef;

use super::{BoxFuture, TelegramError};

/// Telegram's limit of ids per `channels.getMessages`.
pub const MAX_BATCH: usize = 200;

/// A channel post that carries a file (a video or any document). Photos and text-only
/// posts are not posts for the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelPost {
    /// The channel (Bot API id, `-100…`) and message: what a tgcdn link names.
    pub file: FileRef,
    /// The document's file name attribute, as uploaded.
    pub file_name: Option<String>,
    /// The post's text, when not empty.
    pub caption: Option<String>,
    pub size: u64,
    pub mime: String,
    /// Message date, seconds since the Unix epoch.
    pub date: u64,
}

/// One change to the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexEvent {
    /// A post with a file, new or edited: stored, replacing what was there.
    Post(ChannelPost),
    /// A message that exists but carries no file (text, photo, or an edit that removed the
    /// file): whatever was stored for it goes.
    NotAPost(FileRef),
    /// Messages deleted from a channel (Bot API id).
    Deleted { channel: i64, msg_ids: Vec<i32> },
}

impl IndexEvent {
    /// The channel (Bot API id) the event is about.
    pub fn channel(&self) -> i64 {
        match self {
            Self::Post(post) => post.file.chat_id,
            Self::NotAPost(file) => file.chat_id,
            Self::Deleted { channel, .. } => *channel,
        }
    }
}

/// What the back-fill needs from a bot.
pub trait ChannelReader: Send + Sync + 'static {
    /// The bot's id, for logs.
    fn reader_id(&self) -> i64;
    /// The newest message id of `channel` (Bot API id); 0 for an empty channel.
    fn newest_message_id(
        self: Arc<Self>,
        channel: i64,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<i32, TelegramError>>;
    /// Messages `ids` of `channel`: one event per id, [`IndexEvent::NotAPost`] for a
    /// missing message or one without a file.
    fn read_messages(
        self: Arc<Self>,
        channel: i64,
        ids: Vec<i32>,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<Vec<IndexEvent>, TelegramError>>;
}
