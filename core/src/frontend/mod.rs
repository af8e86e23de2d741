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
//! * [`dispatch`] — pure: which user's message runs next, bounded slots and queue;
//! * this file — [`FrontEnd`], the update-loop task over the main bot's update feed
//!   (`telegram::chat`), which the core's `main.rs` spawns.
//!
//! Messages of different users are handled concurrently (up to `frontend_concurrency`), one
//! user's in order ([`dispatch`]); a user over their budget gets one polite "slow down" and
//! is then skipped until it refills, so one flooding user costs no Telegram calls and holds
//! one slot, not all. A failure handling one message (Telegram error, even a panic) is
//! logged and the loop goes on; it never ends the task. The feed's state is committed to
//! the bot's sled session whenever every message read so far has been answered (and at a
//! clean stop, after answering them), so a restarted core catches up through
//! `getDifference` on what arrived while it was down and never loses a message; a crash
//! while messages are in hand answers those again. This module holds no grammers type: Telegram calls go through
//! `BotClient` methods.

pub mod commands;
pub mod dispatch;
pub use crate::links;
pub mod ratelimit;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tgcdn_shared::FileRef;
use tgcdn_shared::token::Keyring;
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use crate::bots::BotPool;
use crate::catalog::backfill::BackfillHandle;
use crate::catalog::index::{IndexEvent, Indexer, Source};
use crate::resolve::Resolver;
use crate::revoke::Revocations;
use crate::telegram::chat::{Incoming, IncomingMedia, IncomingMessage, MediaKind, UpdateFeed};
use crate::telegram::download::channel_bare_id;
use crate::telegram::{BotClient, TelegramError};
use commands::{Access, Decision, Intent, StatsView};
use dispatch::Dispatch;
use ratelimit::{RateConfig, RateLimiter, Verdict};

/// Time to open the update feed (its first `getState`/`getDifference` included).
const FEED_TIMEOUT: Duration = Duration::from_secs(30);
/// Time to handle one message: copy, sign, reply.
const HANDLE_TIMEOUT: Duration = Duration::from_secs(30);
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages of different users handled at once, unless configured.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Messages read ahead per slot while every slot is busy; beyond it the loop stops reading.
const WAITING_PER_SLOT: usize = 16;
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

fn unix_now() -> u64 {
    crate::clock::unix_now().max(0).unsigned_abs()
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
    concurrency: usize,
    catalog: Option<CatalogLink>,
    /// Lifetime of the links handed out; `None` never expire.
    link_expiry: Option<Duration>,
    /// `/revoke`; `None` answers that revoking is not available here.
    revocations: Option<Arc<Revocations>>,
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
            concurrency: DEFAULT_CONCURRENCY,
            catalog: None,
            link_expiry: None,
            revocations: None,
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

    /// Links handed out from now on expire this long after they are made.
    pub fn with_link_expiry(mut self, expiry: Option<Duration>) -> Self {
        self.link_expiry = expiry;
        self
    }

    /// Lets admins revoke files with `/revoke <link>`.
    pub fn with_revocations(mut self, revocations: Arc<Revocations>) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// Replaces the per-user message budget (tests use a small one).
    pub fn with_rate_limit(mut self, rate: RateConfig) -> Self {
        self.rate = rate;
        self
    }

    /// Messages of different users handled at once (one user's stay in order).
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
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
        let mut work = Work::new(self.concurrency);
        let mut uncommitted = false;
        loop {
            // Only here is every update received so far handled, so only here may the state
            // be saved: a message still in hand would be lost to a crash otherwise.
            if uncommitted && work.dispatch.idle() {
                self.commit(&feed).await;
                uncommitted = false;
            }
            let next = {
                // Never dropped mid-way except at shutdown: grammers' `next` is not
                // cancel-safe once it has taken updates off the connection.
                let mut reading = std::pin::pin!(feed.next());
                loop {
                    tokio::select! {
                        () = &mut shutdown => break None,
                        Some(done) = work.tasks.join_next_with_id(), if !work.tasks.is_empty() => {
                            work.finished(done);
                            work.start(&self);
                        }
                        next = &mut reading, if work.dispatch.has_room() => break Some(next),
                    }
                }
            };
            let Some(next) = next else {
                // Messages taken are answered, then the state saved: nothing twice, nothing lost.
                work.drain(&self).await;
                self.commit(&feed).await;
                tracing::info!("front-end stopped");
                return;
            };
            let message = match next {
                Ok(Incoming::Message(message)) => message,
                Ok(Incoming::Channel(event)) => {
                    uncommitted |= self.index(event);
                    continue;
                }
                Ok(Incoming::Other) => continue,
                Err(error) => {
                    tracing::warn!(%error, "reading updates failed");
                    tokio::time::sleep(FEED_ERROR_PAUSE).await;
                    continue;
                }
            };
            uncommitted = true;
            match limiter.check(message.user_id, Instant::now()) {
                Verdict::Allow => work.dispatch.push(message.user_id, Job::Handle(message)),
                Verdict::SlowDown { retry_after_secs } => work
                    .dispatch
                    .push(message.user_id, Job::SlowDown(message, retry_after_secs)),
                Verdict::Ignore => {
                    tracing::debug!(
                        user_id = message.user_id,
                        msg_id = message.msg_id,
                        "over budget: skipped"
                    );
                }
            }
            work.start(&self);
        }
    }

    /// One message's work, in its own task: a panic on one message is reported and the
    /// loop goes on.
    async fn run_job(self: Arc<Self>, job: Job) {
        match job {
            Job::Handle(message) => self.handle(message).await,
            Job::SlowDown(message, retry_after_secs) => {
                let text = commands::slow_down_text(retry_after_secs);
                self.send_reply(&message, &text, Instant::now() + HANDLE_TIMEOUT)
                    .await;
            }
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
            Intent::Revoke => self.revoke(message).await,
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
        let expires_at = self
            .link_expiry
            .map(|expiry| unix_now().saturating_add(expiry.as_secs()));
        let token = self.keyring.sign(file, expires_at);
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

    /// `/revoke <link>` from an admin: the file is revoked durably and pushed to the edges.
    async fn revoke(&self, message: &IncomingMessage) -> String {
        let Some(revocations) = &self.revocations else {
            return commands::revoke_text(&Err("revoking is not set up on this server".into()));
        };
        let link = match commands::revoke_argument(&message.text) {
            Ok(link) => link,
            Err(usage) => return usage,
        };
        let now = unix_now();
        let result = match crate::revoke::inspect(&self.keyring, revocations, link, now) {
            Ok(info) => {
                let file = FileRef {
                    chat_id: info.chat_id,
                    msg_id: info.msg_id,
                };
                let reason = format!("revoked by admin {} with /revoke", message.user_id);
                let now = i64::try_from(now).unwrap_or(i64::MAX);
                match revocations.revoke(file, &reason, now).await {
                    Ok(_) => Ok(info),
                    Err(error) => Err(format!("the revocation could not be stored ({error})")),
                }
            }
            Err(error) => Err(error.to_string()),
        };
        commands::revoke_text(&result)
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
/// What a message asks of the front-end once the rate limit has had its say.
enum Job {
    Handle(IncomingMessage),
    SlowDown(IncomingMessage, u64),
}

/// Messages in hand: the pure [`Dispatch`] and the tasks running its jobs. Dropping it (the
/// update loop aborted) aborts them; their updates were not committed, so a restarted
/// front-end answers them instead of both answering.
struct Work {
    dispatch: Dispatch<Job>,
    tasks: JoinSet<()>,
    owners: HashMap<tokio::task::Id, i64>,
}

impl Work {
    fn new(concurrency: usize) -> Self {
        Self {
            dispatch: Dispatch::new(concurrency, concurrency.saturating_mul(WAITING_PER_SLOT)),
            tasks: JoinSet::new(),
            owners: HashMap::new(),
        }
    }

    fn start(&mut self, frontend: &Arc<FrontEnd>) {
        while let Some((user, job)) = self.dispatch.start_next() {
            let this = Arc::clone(frontend);
            let task = self.tasks.spawn(this.run_job(job).in_current_span());
            self.owners.insert(task.id(), user);
        }
    }

    fn finished(&mut self, done: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let id = match done {
            Ok((id, ())) => id,
            Err(error) => {
                tracing::error!(%error, "handling a message failed");
                error.id()
            }
        };
        if let Some(user) = self.owners.remove(&id) {
            self.dispatch.finished(user);
        }
    }

    /// Runs every message taken to its end (each under its own deadline).
    async fn drain(&mut self, frontend: &Arc<FrontEnd>) {
        while let Some(done) = self.tasks.join_next_with_id().await {
            self.finished(done);
            self.start(frontend);
        }
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
                MediaKind::Other => "file",
            };
            links::default_file_name(prefix, stored_msg_id, media.mime_type.as_deref())
        })
}
