//! The Telegram ends of the fetch path: [`BotDownloader`] is the fetch layer's
//! [`PartDownloader`] for one bot, and [`BotClient`] is the resolver's [`DocumentSource`]
//! and the health prober's [`Prober`].
//!
//! Locations (access hash and file reference are per bot and expire) are the resolver's:
//! a part download asks it for this bot's location and lets it refresh a stale reference
//! through the same bot and retry once (`Resolver::with_location`). Nothing here caches.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use grammers_session::types::{PeerId, PeerKind};
use tgcdn_shared::FileRef;
use tgcdn_shared::chunk::PartRequest;

use super::{BotClient, DocumentInfo, TelegramError};
use crate::bots::health::ProbeTarget;
use crate::fetch::{BoxFuture, PartDownloader};
use crate::health::Prober;
use crate::resolve::{DocumentSource, Resolver};

/// Downloads parts for bot `bot` of the pool, with locations from the shared resolver.
pub struct BotDownloader {
    bot: usize,
    client: Arc<BotClient>,
    resolver: Arc<Resolver>,
}

impl BotDownloader {
    /// `bot` is the client's index in the pool the resolver and fetcher share.
    pub fn new(bot: usize, client: Arc<BotClient>, resolver: Arc<Resolver>) -> Arc<Self> {
        Arc::new(Self {
            bot,
            client,
            resolver,
        })
    }

    pub fn client(&self) -> &Arc<BotClient> {
        &self.client
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
            let client = &self.client;
            self.resolver
                .with_location(self.bot, file, refresh, deadline, |location| async move {
                    client
                        .get_file_part(connection, &location, part.offset, part.limit, deadline)
                        .await
                })
                .await
        })
    }
}

impl DocumentSource for BotClient {
    fn lookup_document(
        self: Arc<Self>,
        file: FileRef,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<DocumentInfo, TelegramError>> {
        Box::pin(async move {
            let channel_id = channel_bare_id(file.chat_id).ok_or(TelegramError::MessageNotFound)?;
            self.fetch_document(channel_id, file.msg_id, deadline).await
        })
    }
}

impl Prober for BotClient {
    /// The bot-wide check signs in again if the session lost its authorisation (a revoked
    /// token fails here); the channel check reads message 1 of the channel.
    fn probe(
        self: Arc<Self>,
        target: ProbeTarget,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async move {
            match target {
                ProbeTarget::Bot => self
                    .sign_in_if_needed(deadline)
                    .await
                    .map(|_| ())
                    .map_err(|error| format!("sign-in failed: {error}")),
                ProbeTarget::Channel(chat_id) => {
                    let channel = channel_bare_id(chat_id)
                        .ok_or_else(|| format!("{chat_id} is not a channel"))?;
                    self.check_channel_access(channel, deadline)
                        .await
                        .map_err(|error| format!("cannot read the channel: {error}"))
                }
            }
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
