//! [`BotDownloader`]: the fetch layer's [`PartDownloader`] over one [`BotClient`].
//!
//! It keeps this bot's document locations (access hash and file reference are per bot) in a
//! small in-memory cache, looks a message up on a miss, and looks it up again when the fetch
//! layer says the reference expired. This is the minimal resolver the fetch path needs; the
//! full resolver (meta persisted in sled, `NotFound` for deleted messages, one lookup shared
//! by all bots' callers) is a later slice and should replace the cache here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use grammers_session::types::{PeerId, PeerKind};
use tgcdn_shared::FileRef;
use tgcdn_shared::chunk::PartRequest;

use super::{BotClient, DocumentLocation, TelegramError};
use crate::fetch::{BoxFuture, PartDownloader};

/// How long a location is trusted before it is looked up again even without an error.
const LOCATION_TTL: Duration = Duration::from_secs(30 * 60);

/// Downloads parts for one bot, resolving (chat, message) to this bot's document location.
pub struct BotDownloader {
    client: Arc<BotClient>,
    locations: moka::sync::Cache<FileRef, DocumentLocation>,
}

impl BotDownloader {
    pub fn new(client: Arc<BotClient>) -> Arc<Self> {
        Arc::new(Self {
            client,
            locations: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(LOCATION_TTL)
                .build(),
        })
    }

    pub fn client(&self) -> &Arc<BotClient> {
        &self.client
    }

    async fn location(
        &self,
        file: FileRef,
        refresh: bool,
        deadline: Instant,
    ) -> Result<DocumentLocation, TelegramError> {
        if !refresh && let Some(location) = self.locations.get(&file) {
            return Ok(location);
        }
        let channel_id = channel_bare_id(file.chat_id).ok_or(TelegramError::MessageNotFound)?;
        let info = self
            .client
            .fetch_document(channel_id, file.msg_id, deadline)
            .await?;
        self.locations.insert(file, info.location.clone());
        Ok(info.location)
    }
}

impl PartDownloader for BotDownloader {
    fn download_part(
        self: Arc<Self>,
        connection: usize,
        file: FileRef,
        part: PartRequest,
        refresh: bool,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<Bytes, TelegramError>> {
        Box::pin(async move {
            let location = self.location(file, refresh, deadline).await?;
            self.client
                .get_file_part(connection, &location, part.offset, part.limit, deadline)
                .await
        })
    }
}

/// The bare channel id of a Bot API chat id (`-100…`), or `None` for users and small groups.
pub fn channel_bare_id(chat_id: i64) -> Option<i64> {
    let peer = PeerId::from_bot_api_dialog_id(chat_id)?;
    match peer.kind() {
        PeerKind::Channel => peer.bare_id(),
        PeerKind::User | PeerKind::Chat => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_api_channel_ids_map_to_bare_ids() {
        assert_eq!(channel_bare_id(-1_001_234_567_890), Some(1_234_567_890));
        assert_eq!(channel_bare_id(-1_000_000_000_001), Some(1));
        assert_eq!(channel_bare_id(5), None);
        assert_eq!(channel_bare_id(-5), None);
        assert_eq!(channel_bare_id(0), None);
        assert_eq!(channel_bare_id(i64::MIN), None);
    }
}
