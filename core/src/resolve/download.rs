//! The fetch's [`PartDownloader`] for one bot: a `getFile` part needs this bot's document
//! location first, which is the resolver's (access hash and file reference are per bot and
//! expire). A part download asks the resolver for it and lets it refresh a stale reference
//! through the same bot and retry once ([`Resolver::with_location`]), then calls the bot's
//! [`BotClient`]. Nothing here caches; this is where `resolve` meets `telegram`.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tgcdn_shared::FileRef;
use tgcdn_shared::chunk::PartRequest;

use super::Resolver;
use crate::ports::{BoxFuture, PartDownloader, TelegramError};
use crate::telegram::BotClient;

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

    fn is_ready(&self, file: FileRef) -> bool {
        self.resolver.has_location(self.bot, file)
    }
}
