//! The bot front-end (file-to-link): a user sends the main bot a file, the bot copies it into
//! the storage channel, signs a link token for the stored message and answers at once with a
//! download link and a watch link. Also `/start`, `/help` and the admins' `/stats` and
//! `/reindex`. The same update feed carries the catalogue channels' posts, edits and
//! deletions: they go to the catalogue indexer in line (a store write, no Telegram call),
//! and the update state is committed after them.
//!
//! * [`commands`] — pure: message → [`commands::Intent`], the allow-list and admin check,
//!   every reply's text;
//! * [`links`] — pure: link building and file-name sanitising;
//! * [`ratelimit`] — pure: a message budget per user (token bucket, bounded table);
//! * this file — [`FrontEnd`], the update-loop task over the main bot's update feed
//!   (`telegram::chat`), which the core's `main.rs` spawns.
//!
//! One update at a time, in order; a user over their budget gets one polite "slow down" and
//! is then skipped until it refills, so one flooding user costs no Telegram calls. A failure handling one message (Telegram error, even a
//! panic) is logged and the loop goes on; it never ends the task. After each message the
//! feed's state is committed to the bot's sled session, so a restarted core catches up
//! through `getDifference` on what arrived while it was down and does not answer twice what
//! it had already answered. This module holds no grammers type: Telegram calls go through
//! `BotClient` methods.

pub mod commands;
pub mod links;
pub mod ratelimit;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tgcdn_shared::FileRef;
use tgcdn_shared::token::Keyring;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::bots::BotPool;
use crate::catalog::backfill::BackfillHandle;
use crate::catalog::index::{IndexEvent, Indexer, Source};
use crate::resolve::Resolver;
use crate::telegram::chat::{Incoming, IncomingMedia, IncomingMessage, MediaKind, UpdateFeed};
use crate::telegram::download::channel_bare_id;
use crate::telegram::{BotClient, TelegramError};
use commands::{Access, Decision, Intent, StatsView};
use ratelimit::{RateConfig, RateLimiter, Verdict};

/// Time to open the update feed (its first `getState`/`getDifference` included).
const FEED_TIMEOUT: Duration = Duration::from_secs(30);
/// Time to handle one message: copy, sign, reply.
const HANDLE_TIMEOUT: Duration = Duration::from_secs(30);
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after the feed fails, so a dead connection does not spin the loop.
const FEED_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Extra `/stats` lines from the rest of the core (edges, caches…), computed on demand.
pub type StatsLines = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// What the front-end needs from the configuration.
#[derive(Debug, Clone)]
pub struct FrontEndConfig {
    /// Base URL of the public links, e.g. `https://cdn.example.com` (no trailing `/dl`).
    pub public_base: String,
    /// The storage channel's Bot API id (`-100…`); tokens name messages in it.
    pub storage_chat_id: i64,
    /// Who may use the bot (`None`: everyone) and who may see `/stats`.
    pub access: Access,
    /// The main bot's username, so `/help@other_bot` in a group is not taken for ours.
    pub bot_username: Option<String>,
}

/// Why the front-end cannot start.
#[derive(Debug, thiserror::Error)]
pub enum FrontEndError {
    #[error("storage chat {0} is not a channel id of the form -100…")]
    NotAChannel(i64),
}

/// The file-to-link front-end of the main bot.
pub struct FrontEnd {
    bot: Arc<BotClient>,
    keyring: Arc<Keyring>,
    config: FrontEndConfig,
    storage_channel: i64,
    pool: Option<Arc<BotPool>>,
    stats_lines: Option<StatsLines>,
    resolver: Option<Arc<Resolver>>,
    rate: RateConfig,
    catalog: Option<CatalogLink>,
}

/// The indexer and back-fill the front-end talks to.
struct CatalogLink {
    indexer: Arc<Indexer>,
    backfill: Option<BackfillHandle>,
}

impl FrontEnd {
    /// A front-end for `bot`, which must have been started with
    /// `BotClient::start_receiving_updates` (or `with_session_receiving_updates`).
    pub fn new(
        bot: Arc<BotClient>,
        keyring: Arc<Keyring>,
        config: FrontEndConfig,
    ) -> Result<Self, FrontEndError> {
        let storage_channel = channel_bare_id(config.storage_chat_id)
            .ok_or(FrontEndError::NotAChannel(config.storage_chat_id))?;
        Ok(Self {
            bot,
            keyring,
            config,
            storage_channel,
            pool: None,
            stats_lines: None,
            resolver: None,
            rate: RateConfig::default(),
            catalog: None,
        })
    }

    /// The download pool whose bots `/stats` lists.
    pub fn with_pool(mut self, pool: Arc<BotPool>) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Resolve each stored copy before replying and flush its meta to disk, so that a link
    /// the bot acknowledged answers `Meta` from sled even if the core dies right after;
    /// every serving bot's location is looked up too, so the first range skips that.
    pub fn with_resolver(mut self, resolver: Arc<Resolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// Replaces the per-user message budget (tests use a small one).
    pub fn with_rate_limit(mut self, rate: RateConfig) -> Self {
        self.rate = rate;
        self
    }

    /// Catalogue channels: their posts, edits and deletions go to `indexer` (in line, before
    /// the update state is committed); `/reindex` asks `backfill`.
    pub fn with_catalog(mut self, indexer: Arc<Indexer>, backfill: Option<BackfillHandle>) -> Self {
        self.catalog = Some(CatalogLink { indexer, backfill });
        self
    }

    /// Extra `/stats` lines (e.g. the edge fleet), computed when an admin asks.
    pub fn with_stats_lines(mut self, lines: StatsLines) -> Self {
        self.stats_lines = Some(lines);
        self
    }

    /// Starts the update loop. It runs until aborted (or until the update feed cannot be
    /// opened, which it logs); a restart resumes where the last handled message left off.
    pub fn spawn(self) -> JoinHandle<()> {
        self.spawn_until(std::future::pending())
    }

    /// Like [`Self::spawn`], and stops cleanly once `shutdown` completes: the message being
    /// handled is finished and committed first, so nothing is answered twice after a restart.
    pub fn spawn_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<()> {
        let span = tracing::info_span!("frontend", bot_id = self.bot.bot_id());
        tokio::spawn(Arc::new(self).run(shutdown).instrument(span))
    }

    async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut feed = match self.bot.update_feed(Instant::now() + FEED_TIMEOUT).await {
            Ok(feed) => feed,
            Err(error) => {
                tracing::error!(%error, "cannot read the main bot's updates; front-end stopped");
                return;
            }
        };
        tracing::info!("front-end listening");
        let mut limiter = RateLimiter::new(self.rate);
        loop {
            let next = tokio::select! {
                () = &mut shutdown => {
                    tracing::info!("front-end stopped");
                    return;
                }
                next = feed.next() => next,
            };
            let message = match next {
                Ok(Incoming::Message(message)) => message,
                Ok(Incoming::Channel(event)) => {
                    if self.index(event) {
                        self.commit(&feed).await;
                    }
                    continue;
                }
                Ok(Incoming::Other) => continue,
                Err(error) => {
                    tracing::warn!(%error, "reading updates failed");
                    tokio::time::sleep(FEED_ERROR_PAUSE).await;
                    continue;
                }
            };
            // Own task: a panic on one message is reported and the loop goes on. The guard
            // aborts it if this loop is aborted mid-message: the state is not committed
            // then, so the restarted front-end answers it instead of both answering.
            let this = Arc::clone(&self);
            let msg_id = message.msg_id;
            let handling = match limiter.check(message.user_id, Instant::now()) {
                Verdict::Allow => tokio::spawn(async move { this.handle(message).await }),
                Verdict::SlowDown { retry_after_secs } => tokio::spawn(async move {
                    let text = commands::slow_down_text(retry_after_secs);
                    this.send_reply(&message, &text, Instant::now() + HANDLE_TIMEOUT)
                        .await;
                }),
                Verdict::Ignore => {
                    tracing::debug!(user_id = message.user_id, msg_id, "over budget: skipped");
                    tokio::spawn(async {})
                }
            };
            let mut task = AbortOnDrop(handling);
            if let Err(error) = (&mut task.0).await {
                tracing::error!(msg_id, %error, "handling a message failed");
            }
            self.commit(&feed).await;
        }
    }

    async fn commit(&self, feed: &UpdateFeed) {
        if let Err(error) = feed.commit(Instant::now() + COMMIT_TIMEOUT).await {
            tracing::warn!(%error, "saving the update state failed");
        }
    }

    /// Hands a channel event to the indexer, in line: a store write, so the commit after it
    /// covers the post. Returns whether it was a catalogue channel's event (to commit).
    fn index(&self, event: IndexEvent) -> bool {
        let Some(catalog) = &self.catalog else {
            return false;
        };
        let channel = event.channel();
        match catalog.indexer.apply(event, Source::Updates) {
            Ok(applied) => applied,
            Err(error) => {
                tracing::warn!(channel, %error, "indexing a channel post failed");
                false
            }
        }
    }

    async fn handle(&self, message: IncomingMessage) {
        let deadline = Instant::now() + HANDLE_TIMEOUT;
        let reply = self.reply_to(&message, deadline).await;
        self.send_reply(&message, &reply, deadline).await;
    }

    async fn send_reply(&self, message: &IncomingMessage, text: &str, deadline: Instant) {
        if let Err(error) = self
            .bot
            .send_text(message.user_id, text, Some(message.msg_id), deadline)
            .await
        {
            tracing::warn!(user_id = message.user_id, msg_id = message.msg_id, %error, "reply failed");
        }
    }

    async fn reply_to(&self, message: &IncomingMessage, deadline: Instant) -> String {
        let intent = commands::parse(
            &message.text,
            message.media.is_some(),
            self.config.bot_username.as_deref(),
        );
        match self.config.access.decide(message.user_id, intent) {
            Decision::Allow => {}
            Decision::NotAllowed => return commands::not_allowed_text(),
            Decision::AdminOnly => return commands::admin_only_text(),
        }
        match intent {
            Intent::Start => commands::start_text(),
            Intent::Help => commands::help_text(),
            Intent::Unknown => commands::unknown_text(),
            Intent::Stats => commands::stats_text(&self.stats()),
            Intent::Reindex => self.reindex(&message.text),
            Intent::Upload => {
                if let Some(refusal) = message
                    .media
                    .as_ref()
                    .and_then(|media| commands::unservable_upload_text(media.kind))
                {
                    return refusal;
                }
                self.upload_reply(message, deadline).await
            }
        }
    }

    async fn upload_reply(&self, message: &IncomingMessage, deadline: Instant) -> String {
        match self.store(message, deadline).await {
            Ok(reply) => reply,
            Err(error) => {
                tracing::warn!(user_id = message.user_id, msg_id = message.msg_id, %error, "storing a file failed");
                commands::upload_failed_text()
            }
        }
    }

    /// Copies the file into the storage channel and formats the links to the copy.
    async fn store(
        &self,
        message: &IncomingMessage,
        deadline: Instant,
    ) -> Result<String, TelegramError> {
        let stored = self
            .bot
            .copy_to_channel(message, self.storage_channel, deadline)
            .await?;
        let file = FileRef {
            chat_id: self.config.storage_chat_id,
            msg_id: stored,
        };
        self.persist_meta(file).await;
        let token = self.keyring.sign(file, None);
        let (name, size) = match &message.media {
            Some(media) => (file_name(media, stored), media.size),
            None => (links::default_file_name("file", stored, None), None),
        };
        tracing::info!(user_id = message.user_id, stored, "file stored");
        Ok(commands::link_reply(
            &name,
            size,
            &links::download_link(&self.config.public_base, &token, &name),
            &links::watch_link(&self.config.public_base, &token),
        ))
    }

    /// Best effort: a failure only means the first viewer's `Meta` asks Telegram.
    async fn persist_meta(&self, file: FileRef) {
        let Some(resolver) = &self.resolver else {
            return;
        };
        if let Err(error) = resolver.prepare_link(file).await {
            tracing::warn!(%file, %error, "the stored copy did not resolve yet");
            return;
        }
        if let Err(error) = resolver.store().flush().await {
            tracing::warn!(%error, "flushing the stored copy's meta failed");
        }
    }

    /// `/reindex [channel]`: queues a full back-fill and answers with the progress so far.
    fn reindex(&self, text: &str) -> String {
        let Some(backfill) = self.catalog.as_ref().and_then(|c| c.backfill.as_ref()) else {
            return commands::reindex_off_text();
        };
        let queued = match commands::reindex_channel(text) {
            Ok(channel) => backfill.reindex(channel).map_err(|error| error.to_string()),
            Err(why) => Err(why),
        };
        commands::reindex_text(&queued, &backfill.progress())
    }

    fn stats(&self) -> StatsView {
        let mut view = StatsView {
            bots: self
                .pool
                .as_ref()
                .map(|pool| pool.report(Instant::now()))
                .unwrap_or_default(),
            extra: self.stats_lines.as_ref().map(|f| f()).unwrap_or_default(),
            ..StatsView::default()
        };
        match self.bot.dc_summary() {
            Ok(dcs) => {
                view.home_dc = Some(dcs.home);
                view.media_dcs = dcs.media_authorized;
            }
            Err(error) => tracing::warn!(%error, "reading the DC summary failed"),
        }
        view
    }
}

/// Aborts a spawned task when dropped (a dropped `JoinHandle` only detaches it).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The user's file name made link-safe, or a default named after the kind and message.
fn file_name(media: &IncomingMedia, stored_msg_id: i32) -> String {
    media
        .file_name
        .as_deref()
        .and_then(links::sanitize_file_name)
        .unwrap_or_else(|| {
            let prefix = match media.kind {
                MediaKind::Document => "file",
                MediaKind::Video => "video",
                MediaKind::Audio => "audio",
                MediaKind::Photo => "photo",
            };
            links::default_file_name(prefix, stored_msg_id, media.mime_type.as_deref())
        })
}
