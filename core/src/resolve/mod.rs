//! The resolver: a [`FileRef`] (channel message) → what the file is ([`store::FileMeta`],
//! persisted) and where its bytes are for one bot ([`DocumentLocation`], in memory).
//!
//! Called by the QUIC handler (`Meta`, and the file size before every `Chunk`) and by
//! [`download::BotDownloader`] (the location of every `getFile`). Telegram is behind the
//! [`DocumentSource`] port (one per bot, implemented by `telegram::BotClient`), so this
//! module holds no grammers type and is tested with a fake.
//!
//! * Revocations are checked on every call, before any cache: an operator's revoke takes
//!   effect at once.
//! * Meta lives in sled's `file_meta` tree, fronted by a small moka cache that also makes
//!   concurrent first lookups of one file share a single `channels.getMessages`. A restart
//!   answers `Meta` for known files without Telegram.
//! * Locations are per bot (the access hash and file reference are) and expire (Telegram
//!   rotates file references): a moka cache with a TTL, one lookup per (bot, file) at a time.
//!   [`Resolver::with_location`] runs a Telegram call with the location and, on
//!   `FILE_REFERENCE_EXPIRED`, re-fetches the message through the same bot and retries once.
//! * A message that is gone or holds no file (document or photo) is `NotFound`; its meta is
//!   forgotten so the next `Meta` does not describe a file that cannot be served. The
//!   answer is remembered (bounded moka, `negative_ttl`), so a flood of requests for a dead
//!   link costs one `channels.getMessages`, not one each — otherwise an anonymous client
//!   could push every bot into FLOOD_WAIT with one link.
//!
//! Never does I/O other than through [`DocumentSource`] and the [`Store`].

pub mod download;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tgcdn_shared::FileRef;
use tgcdn_shared::wire;

use crate::bots::BotPool;
pub use crate::ports::DocumentSource;
use crate::ports::retry::{Action, Event, GiveUp, Retry, RetryPolicy};
use crate::ports::{DocumentInfo, DocumentLocation, TelegramError};
use crate::stats::{ResolveCounters, ResolveSnapshot, RetryCounters, RetrySnapshot};
use crate::store::{self, Store, StoreError};

/// Tunables of the resolver.
#[derive(Debug, Clone)]
pub struct ResolveConfig {
    /// How long a location is trusted without an error. Telegram does not document file
    /// reference lifetimes; an hour-old one is commonly stale, so stay well below.
    pub location_ttl: Duration,
    /// Locations kept per process (all bots together).
    pub max_locations: u64,
    /// Metas kept in memory in front of sled.
    pub max_cached_metas: u64,
    /// Deadline of a whole meta lookup, retries across bots included.
    pub lookup_timeout: Duration,
    /// How long a "no such file" answer is remembered (a message posted later under the
    /// same id is not: ids only grow, a deleted one is never reused).
    pub negative_ttl: Duration,
    /// "No such file" answers kept at most.
    pub max_negatives: u64,
}

impl Default for ResolveConfig {
    fn default() -> Self {
        Self {
            location_ttl: Duration::from_secs(20 * 60),
            max_locations: 200_000,
            max_cached_metas: 100_000,
            // Under the edge's wait for metadata (it was equal to it, 20 s).
            lookup_timeout: tgcdn_shared::deadline::CORE_LOOKUP_DEADLINE,
            negative_ttl: Duration::from_secs(60),
            max_negatives: 100_000,
        }
    }
}

/// How a message lookup retries: as the fetch, bounded by its deadline and attempts, not by
/// rounds — a lost connection or INTERNAL on the one free bot while the others wait out a
/// flood is worth another round — with bots all in flood wait waited for when the first is
/// free before the deadline and answered `FloodWait` with the soonest end otherwise.
const LOOKUP_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 12,
    max_rounds: u32::MAX,
    // `pick` has no in-flight cap, so a lookup is never saturated; any short poll will do.
    saturated_poll: Duration::from_millis(2),
    // As the fetch's: time for a cut connection to come back.
    round_pause: Duration::from_millis(100),
};

/// Why a file could not be resolved. Cloneable: concurrent callers of one lookup share it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    #[error("the link was revoked")]
    Revoked,
    #[error(transparent)]
    Lookup(#[from] GiveUp),
    #[error("database error")]
    Store(#[source] Arc<StoreError>),
}

impl ResolveError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Lookup(GiveUp::NotFound))
    }
}

impl From<StoreError> for ResolveError {
    fn from(error: StoreError) -> Self {
        ResolveError::Store(Arc::new(error))
    }
}

/// Resolves files for every bot of a pool.
pub struct Resolver {
    store: Store,
    pool: Arc<BotPool>,
    /// One per pool bot, same order.
    sources: Vec<Arc<dyn DocumentSource>>,
    config: ResolveConfig,
    metas: moka::future::Cache<FileRef, store::FileMeta>,
    /// Files known not to exist (deleted message, no document in it), for `negative_ttl`.
    missing: moka::future::Cache<FileRef, ()>,
    locations: moka::future::Cache<(usize, FileRef), DocumentLocation>,
    counters: ResolveCounters,
    /// The message lookups' retries (`channels.getMessages` across bots).
    retries: RetryCounters,
}

impl Resolver {
    /// `sources[i]` looks documents up for bot `i` of `pool`.
    pub fn new(
        store: Store,
        pool: Arc<BotPool>,
        sources: Vec<Arc<dyn DocumentSource>>,
        config: ResolveConfig,
    ) -> Arc<Self> {
        let metas = moka::future::Cache::builder()
            .max_capacity(config.max_cached_metas)
            .build();
        let locations = moka::future::Cache::builder()
            .max_capacity(config.max_locations)
            .time_to_live(config.location_ttl)
            .build();
        let missing = moka::future::Cache::builder()
            .max_capacity(config.max_negatives)
            .time_to_live(config.negative_ttl)
            .build();
        Arc::new(Self {
            store,
            pool,
            sources,
            config,
            metas,
            missing,
            locations,
            counters: ResolveCounters::default(),
            retries: RetryCounters::default(),
        })
    }

    /// Where meta answers came from so far.
    pub fn counters(&self) -> ResolveSnapshot {
        self.counters.snapshot()
    }

    /// Failed message lookups by class and lookups given up by reason so far.
    pub fn retries(&self) -> RetrySnapshot {
        self.retries.snapshot()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// What `file` is: from memory, else sled, else Telegram through the least busy bot.
    pub async fn meta(&self, file: FileRef) -> Result<store::FileMeta, ResolveError> {
        self.check_revoked(file)?;
        if let Some(meta) = self.metas.get(&file).await {
            self.counters.memory_hit();
            return Ok(meta);
        }
        if self.missing.contains_key(&file) {
            self.counters.negative_hit();
            return Err(GiveUp::NotFound.into());
        }
        self.metas
            .try_get_with(file, self.load_meta(file))
            .await
            .map_err(|shared| (*shared).clone())
    }

    /// Readies a link the core has just made (the front-end's copy into the storage
    /// channel) while the uploader waits for the reply: its meta, and the location of every
    /// bot that may serve it now (healthy, not in flood wait, can read the channel), so the
    /// first viewer's first range costs only its `getFile` calls instead of a
    /// `channels.getMessages` on whichever bot serves it. The bot that looked the meta up
    /// already holds its location; the others ask concurrently, one lookup each, counted
    /// as load on their pool entry. A bot whose lookup fails is only logged: its first
    /// chunk looks the location up as before.
    pub async fn prepare_link(
        self: &Arc<Self>,
        file: FileRef,
    ) -> Result<store::FileMeta, ResolveError> {
        let meta = self.meta(file).await?;
        let deadline = Instant::now() + self.config.lookup_timeout;
        let mut tried = vec![false; self.pool.len()];
        let mut lookups = tokio::task::JoinSet::new();
        while let Ok(picked) = self.pool.pick(Some(file.chat_id), Instant::now(), &tried) {
            tried[picked.bot] = true;
            let this = Arc::clone(self);
            lookups.spawn(async move {
                let result = this.location(picked.bot, file, deadline).await;
                drop(picked.guard);
                if let Err(error) = result {
                    tracing::debug!(%file, bot = picked.bot, %error, "warming a new link's location failed");
                }
            });
        }
        while lookups.join_next().await.is_some() {}
        Ok(meta)
    }

    /// This bot's location of `file`, looked up once per TTL.
    pub async fn location(
        &self,
        bot: usize,
        file: FileRef,
        deadline: Instant,
    ) -> Result<DocumentLocation, TelegramError> {
        self.locations
            .try_get_with((bot, file), self.lookup_location(bot, file, deadline))
            .await
            .map_err(|shared| (*shared).clone())
    }

    /// Whether `bot`'s location of `file` is known now (a part can be asked for without a
    /// `channels.getMessages` first). A location being looked up does not count.
    pub fn has_location(&self, bot: usize, file: FileRef) -> bool {
        self.locations.contains_key(&(bot, file))
    }

    /// A fresh location for `bot`. With `stale` given, a location that already differs from
    /// it (another caller refreshed first) is returned as is instead of asking again.
    pub async fn refresh_location(
        &self,
        bot: usize,
        file: FileRef,
        stale: Option<&DocumentLocation>,
        deadline: Instant,
    ) -> Result<DocumentLocation, TelegramError> {
        if let Some(stale) = stale
            && let Some(current) = self.locations.get(&(bot, file)).await
            && current != *stale
        {
            return Ok(current);
        }
        self.locations.invalidate(&(bot, file)).await;
        self.location(bot, file, deadline).await
    }

    /// Runs `call` with `bot`'s location of `file` (refreshed first when `refresh`); when
    /// the reference turns out to be stale, refreshes it through the same bot and retries
    /// once. A missing message forgets the file.
    pub async fn with_location<T, F, Fut>(
        &self,
        bot: usize,
        file: FileRef,
        refresh: bool,
        deadline: Instant,
        call: F,
    ) -> Result<T, TelegramError>
    where
        F: Fn(DocumentLocation) -> Fut,
        Fut: Future<Output = Result<T, TelegramError>>,
    {
        let result = self
            .with_location_once(bot, file, refresh, deadline, call)
            .await;
        if matches!(result, Err(TelegramError::MessageNotFound)) {
            self.forget(file).await;
        }
        result
    }

    async fn with_location_once<T, F, Fut>(
        &self,
        bot: usize,
        file: FileRef,
        refresh: bool,
        deadline: Instant,
        call: F,
    ) -> Result<T, TelegramError>
    where
        F: Fn(DocumentLocation) -> Fut,
        Fut: Future<Output = Result<T, TelegramError>>,
    {
        let location = if refresh {
            self.refresh_location(bot, file, None, deadline).await?
        } else {
            self.location(bot, file, deadline).await?
        };
        match call(location.clone()).await {
            Err(TelegramError::FileReferenceExpired) => {
                let fresh = self
                    .refresh_location(bot, file, Some(&location), deadline)
                    .await?;
                call(fresh).await
            }
            other => other,
        }
    }

    /// Drops everything known about `file` (its message is gone) and remembers that it is.
    pub async fn forget(&self, file: FileRef) {
        self.metas.invalidate(&file).await;
        self.forget_stored(file).await;
    }

    /// [`Self::forget`] without the meta cache, for use inside that cache's own loader.
    async fn forget_stored(&self, file: FileRef) {
        self.missing.insert(file, ()).await;
        for bot in 0..self.sources.len() {
            self.locations.invalidate(&(bot, file)).await;
        }
        if let Err(error) = self.store.remove_file_meta(file) {
            tracing::warn!(%file, %error, "cannot forget the meta of a deleted message");
        }
    }

    fn check_revoked(&self, file: FileRef) -> Result<(), ResolveError> {
        match self.store.revocation(file)? {
            Some(_) => Err(ResolveError::Revoked),
            None => Ok(()),
        }
    }

    async fn load_meta(&self, file: FileRef) -> Result<store::FileMeta, ResolveError> {
        if let Some(meta) = self.store.file_meta(file)? {
            self.counters.store_hit();
            return Ok(meta);
        }
        // Checked again here: a lookup that just failed may have finished between the
        // caller's check and this fill.
        if self.missing.contains_key(&file) {
            self.counters.negative_hit();
            return Err(GiveUp::NotFound.into());
        }
        self.counters.telegram_lookup();
        let deadline = Instant::now() + self.config.lookup_timeout;
        let info = self.lookup_on_any_bot(file, deadline).await?;
        Ok(meta_of(&info))
    }

    /// `channels.getMessages` on the least busy bot, moving to another on failures that are
    /// the bot's (flood wait, lost connection, no access), as the retry policy says.
    async fn lookup_on_any_bot(
        &self,
        file: FileRef,
        deadline: Instant,
    ) -> Result<DocumentInfo, ResolveError> {
        let mut retry = Retry::new(self.pool.len(), LOOKUP_RETRY, deadline);
        let mut action = retry.start(Instant::now());
        loop {
            match action {
                Action::GiveUp(reason) => {
                    self.retries.gave_up(reason.label());
                    if reason == GiveUp::NotFound {
                        self.forget_stored(file).await;
                    }
                    return Err(reason.into());
                }
                Action::SleepUntil(until) => {
                    tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
                    action = retry.on(Instant::now(), Event::Woke);
                    continue;
                }
                // A lookup has no reference to refresh: the same bot just asks again.
                Action::NextBot | Action::SameBot { .. } => {}
            }
            let now = Instant::now();
            let picked = match self.pool.pick(Some(file.chat_id), now, &retry.excluded()) {
                Ok(picked) => picked,
                Err(error) => {
                    action = retry.on(now, Event::NoBot(error));
                    continue;
                }
            };
            let bot = picked.bot;
            let result = self.fetch_info(bot, file, deadline).await;
            drop(picked.guard);
            let error = match result {
                Ok(info) => return Ok(info),
                Err(error) => error,
            };
            tracing::debug!(%file, bot, %error, "message lookup failed");
            self.retries.failed(error.class_label());
            let now = Instant::now();
            if let Some(penalty) = error.penalty() {
                self.pool.penalise(bot, file.chat_id, penalty, now);
            }
            action = retry.on(now, Event::Failed { bot, error: &error });
        }
    }

    async fn lookup_location(
        &self,
        bot: usize,
        file: FileRef,
        deadline: Instant,
    ) -> Result<DocumentLocation, TelegramError> {
        Ok(self.fetch_info(bot, file, deadline).await?.location)
    }

    /// One message lookup on `bot`; whatever it learns is kept (location for that bot, meta
    /// for everyone), so a meta lookup also warms the location and vice versa.
    async fn fetch_info(
        &self,
        bot: usize,
        file: FileRef,
        deadline: Instant,
    ) -> Result<DocumentInfo, TelegramError> {
        let source = self
            .sources
            .get(bot)
            .ok_or_else(|| TelegramError::Other(format!("no document source for bot {bot}")))?;
        let info = Arc::clone(source).lookup_document(file, deadline).await?;
        self.locations
            .insert((bot, file), info.location.clone())
            .await;
        let meta = meta_of(&info);
        if self.store.file_meta(file).ok().flatten().as_ref() != Some(&meta)
            && let Err(error) = self.store.put_file_meta(file, &meta)
        {
            // The meta can be looked up again; serving this request matters more.
            tracing::warn!(%file, %error, "cannot persist file meta");
        }
        Ok(info)
    }
}

/// The persisted part of a document lookup.
pub fn meta_of(info: &DocumentInfo) -> store::FileMeta {
    store::FileMeta {
        size: info.size,
        mime_type: info.mime_type.clone(),
        file_name: info.file_name.clone().unwrap_or_default(),
        dc_id: info.location.dc_id,
        document_id: info.location.id,
        date: info.date,
    }
}

/// What the edge is told about `file`, with every string cut to the wire's limits (a
/// Telegram file name may be longer than the wire accepts; the request must not fail on it).
pub fn wire_meta(file: FileRef, meta: &store::FileMeta) -> wire::FileMeta {
    use tgcdn_shared::wire::limits;
    let name = if meta.file_name.is_empty() {
        format!("file-{}", file.msg_id)
    } else {
        meta.file_name.clone()
    };
    let mime = if meta.mime_type.is_empty() {
        "application/octet-stream".to_owned()
    } else {
        meta.mime_type.clone()
    };
    wire::FileMeta {
        size: meta.size,
        mime: truncate_to(mime, limits::MAX_MIME),
        name: truncate_to(name, limits::MAX_FILE_NAME),
        // The document id names the bytes, not the message: the same file reposted keeps
        // its ETag, a replaced file gets a new one.
        unique_id: format!("{:016x}", meta.document_id as u64),
        date: u64::try_from(meta.date).unwrap_or(0),
        dc: u8::try_from(meta.dc_id).unwrap_or(0),
    }
}

fn truncate_to(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests;
