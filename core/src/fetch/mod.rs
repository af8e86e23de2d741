//! Chunk fetch: one Telegram download per (file, chunk) at a time, spread across the bot pool.
//!
//! [`Fetcher::chunk`] answers from a small moka second-tier cache, else joins the download
//! already running for that chunk, else starts one. The download runs in its own task, so a
//! first caller that goes away (an edge stream reset) does not abort it for the others; when
//! the *last* caller goes away the task is aborted, so a chunk nobody waits for any more
//! costs no further `getFile` (parts not yet requested never are; an attempt in progress is
//! dropped). A download picks the least-loaded eligible bot ([`crate::bots::BotPool::pick_parts`];
//! one that already holds the file's location counts as less loaded),
//! requests all the chunk's `getFile` parts (two 512 KiB halves) together — each on that
//! bot's least-busy connection, so the halves use two connections when that spreads the
//! load — and is complete when every part has arrived with the expected length. Each
//! connection carries at most `parts_per_connection` parts; a fetch finding every window full
//! waits for a slot, so many chunks in flight form a sliding window per connection. While a
//! demand chunk (a viewer's response waits on it) waits for a slot, read-ahead chunks do not
//! take one ([`priority`]), so a seek is not queued behind other clients' read-ahead; a
//! read-ahead download that a demand caller joins becomes demand.
//!
//! Failures go through the shared retry policy ([`crate::ports::retry`]): FLOOD_WAIT marks
//! the bot and the request moves to another bot at once; a stale file reference is refreshed
//! on the same bot once; lost connections and server errors try another bot; a missing
//! message is `NotFound`; the rest give up. Attempts are bounded and every call has a
//! deadline. When every bot waits the caller gets `FloodWait { secs }`.
//!
//! The Telegram side is behind the [`PartDownloader`] port (implemented by
//! `resolve::download::BotDownloader`), so this module has no grammers type and its logic is
//! tested with a fake.

mod priority;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tgcdn_shared::FileRef;
use tgcdn_shared::chunk::{PartRequest, chunk_parts};
use tgcdn_shared::wire::ChunkClass;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};

use crate::bots::BotPool;
use crate::bots::select::SelectError;
use crate::ports::TelegramError;
pub use crate::ports::retry::GiveUp;
use crate::ports::retry::{Action, Event, Retry, RetryPolicy};
pub use crate::ports::{BoxFuture, PartDownloader};
use crate::stats::{FetchCounters, FetchSnapshot, RetryCounters, RetrySnapshot};

/// Tunables of the fetch path.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// `getFile` part size; 512 KiB is the most grammers 0.11 can receive.
    pub part_size: u32,
    /// Deadline of one attempt (all parts of a chunk on one bot).
    pub attempt_timeout: Duration,
    /// Deadline of the whole fetch, retries included.
    pub total_timeout: Duration,
    /// Attempts across bots before giving up.
    pub max_attempts: u32,
    /// Bytes the second-tier cache may hold.
    pub cache_bytes: u64,
    /// `getFile` parts in flight per download connection at most: chunk fetches beyond it
    /// wait for a part to finish (a sliding window per connection), so no connection takes
    /// more than its share and Telegram does not answer FLOOD_WAIT for one hot connection.
    pub parts_per_connection: usize,
    /// Whether demand chunks take freed slots before read-ahead ([`priority`]); off, every
    /// waiting fetch tries alike (the same-run baseline of the benches).
    pub demand_first: bool,
    /// A read-ahead fetch waiting this long for a slot counts as demand.
    pub promote_after: Duration,
}

impl FetchConfig {
    /// Attempts and the deadline bound the fetch; rounds over the bots do not: a round of
    /// lost connections or flood waits uses no attempt, and the pause before each round
    /// (doubling to 1.6 s) keeps those few within the deadline.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            max_rounds: u32::MAX,
            saturated_poll: SATURATED_POLL,
            round_pause: ROUND_PAUSE,
        }
    }
}

/// How often a fetch waiting for a free connection slot looks again.
const SATURATED_POLL: Duration = Duration::from_millis(2);
/// The pause before trying the bots again once each has failed: long enough for grammers
/// to reconnect a cut connection, short next to a viewer's patience.
const ROUND_PAUSE: Duration = Duration::from_millis(100);

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            part_size: 512 * 1024,
            attempt_timeout: Duration::from_secs(15),
            // Under the edge's wait for the answer (it was 40 s against the edge's 30 s, so
            // a long retry reached the viewer as an edge timeout instead of the core's
            // reason); the QUIC handler bounds lookup and fetch together by the same.
            total_timeout: tgcdn_shared::deadline::CORE_REQUEST_DEADLINE,
            // Transient failures come in bursts (a cut connection fails every part on it, a
            // flood wait renews): four attempts gave up on chunks that a later round on a
            // free bot would have served. With the doubling pauses between rounds, twelve
            // attempts on one bot span about 13 s; the total deadline still bounds it.
            max_attempts: 12,
            cache_bytes: 64 * 1024 * 1024,
            parts_per_connection: 8,
            demand_first: true,
            // Several chunk round trips: its reader has most likely caught up with it.
            promote_after: Duration::from_secs(2),
        }
    }
}

/// Why a chunk could not be fetched: the retry policy's reason for giving up.
pub type FetchError = GiveUp;

/// A chunk of a file: the unit of cache, wire and download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkKey {
    pub file: FileRef,
    pub index: u64,
}

type Outcome = Option<Result<Bytes, FetchError>>;

/// A download in flight: its outcome, the callers still waiting for it, and its task.
struct Flight {
    /// Tells this download from a later one of the same chunk.
    id: u64,
    /// Set once any caller waits on it as demand; read by the download while it queues.
    demand: Arc<AtomicBool>,
    outcome: watch::Receiver<Outcome>,
    waiters: usize,
    task: AbortHandle,
}

/// One caller's claim on a [`Flight`]; dropped unanswered, it may cancel the download.
struct Waiter {
    fetcher: Arc<Fetcher>,
    key: ChunkKey,
    id: u64,
    outcome: watch::Receiver<Outcome>,
}

impl Waiter {
    async fn wait(mut self) -> Result<Bytes, FetchError> {
        match self.outcome.wait_for(Option::is_some).await {
            Ok(done) => done
                .clone()
                .unwrap_or_else(|| Err(FetchError::Unavailable("download vanished".into()))),
            Err(_) => Err(FetchError::Unavailable("download task failed".into())),
        }
    }
}

impl Drop for Waiter {
    /// The last waiter of an unfinished download aborts it: an edge that reset its stream
    /// must not keep a bot busy with a chunk nobody will read. A finished download has left
    /// the map already (or is about to, with the same id), so this is then a no-op.
    fn drop(&mut self) {
        let mut in_flight = self.fetcher.lock_in_flight();
        let Some(flight) = in_flight.get_mut(&self.key) else {
            return;
        };
        if flight.id != self.id {
            return;
        }
        flight.waiters = flight.waiters.saturating_sub(1);
        if flight.waiters == 0 {
            flight.task.abort();
            in_flight.remove(&self.key);
            self.fetcher.counters.cancelled();
        }
    }
}

/// The single-flight chunk fetcher over a bot pool.
pub struct Fetcher {
    pool: Arc<BotPool>,
    /// One per pool bot, same order.
    downloaders: Vec<Arc<dyn PartDownloader>>,
    config: FetchConfig,
    cache: moka::sync::Cache<ChunkKey, Bytes>,
    in_flight: Mutex<HashMap<ChunkKey, Flight>>,
    next_flight: AtomicU64,
    queue: Mutex<priority::Queue>,
    counters: FetchCounters,
    retries: RetryCounters,
}

impl Fetcher {
    /// `downloaders[i]` downloads for bot `i` of `pool`.
    pub fn new(
        pool: Arc<BotPool>,
        downloaders: Vec<Arc<dyn PartDownloader>>,
        config: FetchConfig,
    ) -> Arc<Self> {
        let cache = moka::sync::Cache::builder()
            .max_capacity(config.cache_bytes)
            .weigher(|_key: &ChunkKey, value: &Bytes| -> u32 {
                u32::try_from(value.len()).unwrap_or(u32::MAX)
            })
            // TinyLFU would refuse the next chunks of a film (first seen) once full.
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .build();
        let queue = priority::Queue::new(config.demand_first, config.promote_after);
        Arc::new(Self {
            pool,
            downloaders,
            queue: Mutex::new(queue),
            config,
            cache,
            in_flight: Mutex::new(HashMap::new()),
            next_flight: AtomicU64::new(0),
            counters: FetchCounters::default(),
            retries: RetryCounters::default(),
        })
    }

    pub fn pool(&self) -> &Arc<BotPool> {
        &self.pool
    }

    /// Cache hits, coalesced waits, downloads and failures so far.
    pub fn counters(&self) -> FetchSnapshot {
        self.counters.snapshot()
    }

    /// Failed attempts by class and downloads given up by reason so far.
    pub fn retries(&self) -> RetrySnapshot {
        self.retries.snapshot()
    }

    /// Downloads waiting for a connection slot now: (demand, read-ahead).
    pub fn waiting(&self) -> (usize, usize) {
        self.lock_queue().counts(Instant::now())
    }

    /// Chunk `index` of `file`, which is `file_size` bytes long, as demand. Dropping the
    /// future before it answers withdraws this caller; the download stops when no caller is
    /// left.
    pub async fn chunk(
        self: &Arc<Self>,
        file: FileRef,
        file_size: u64,
        index: u64,
    ) -> Result<Bytes, FetchError> {
        self.chunk_as(file, file_size, index, ChunkClass::Demand)
            .await
    }

    /// [`Self::chunk`] for a caller that wants it as `class`.
    pub async fn chunk_as(
        self: &Arc<Self>,
        file: FileRef,
        file_size: u64,
        index: u64,
        class: ChunkClass,
    ) -> Result<Bytes, FetchError> {
        let key = ChunkKey { file, index };
        match self.join_or_start(key, file_size, class) {
            Ok(bytes) => Ok(bytes),
            Err(waiter) => waiter.wait().await,
        }
    }

    /// A cache hit, or a claim on the (possibly just started) download.
    fn join_or_start(
        self: &Arc<Self>,
        key: ChunkKey,
        file_size: u64,
        class: ChunkClass,
    ) -> Result<Bytes, Waiter> {
        let mut in_flight = self.lock_in_flight();
        // Checked under the lock: a finishing download fills the cache before it leaves the
        // map, so a caller sees one or the other, never neither.
        if let Some(bytes) = self.cache.get(&key) {
            self.counters.cache_hit();
            return Ok(bytes);
        }
        let waiter = |id, outcome| Waiter {
            fetcher: Arc::clone(self),
            key,
            id,
            outcome,
        };
        let demand = class == ChunkClass::Demand;
        if let Some(flight) = in_flight.get_mut(&key) {
            self.counters.coalesced();
            flight.waiters += 1;
            if demand {
                flight.demand.store(true, Ordering::Relaxed);
            }
            return Err(waiter(flight.id, flight.outcome.clone()));
        }
        self.counters.download();
        let id = self.next_flight.fetch_add(1, Ordering::Relaxed);
        let (sender, outcome) = watch::channel(None);
        let this = Arc::clone(self);
        let flight_demand = Arc::new(AtomicBool::new(demand));
        let wants = Arc::clone(&flight_demand);
        // Spawned under the lock, so the flight is in the map, abort handle included, before
        // any waiter can drop; the task itself needs the lock only after the download.
        let task = tokio::spawn(async move {
            let result = this.download(key, file_size, &wants).await;
            match &result {
                Ok(bytes) => this.cache.insert(key, bytes.clone()),
                Err(_) => this.counters.failure(),
            }
            let mut in_flight = this.lock_in_flight();
            // A cancelled flight may have been replaced by a new one for the same chunk.
            if in_flight.get(&key).is_some_and(|flight| flight.id == id) {
                in_flight.remove(&key);
            }
            drop(in_flight);
            // Nobody waiting is fine: the cache still holds the chunk.
            let _ = sender.send(Some(result));
        });
        in_flight.insert(
            key,
            Flight {
                id,
                demand: flight_demand,
                outcome: outcome.clone(),
                waiters: 1,
                task: task.abort_handle(),
            },
        );
        Err(waiter(id, outcome))
    }

    fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<ChunkKey, Flight>> {
        // Only inserts and removes happen under this lock; a poisoned map is still consistent.
        self.in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, priority::Queue> {
        // Every update is a single map insert or remove; a poisoned queue is consistent.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn download(
        &self,
        key: ChunkKey,
        file_size: u64,
        demand: &AtomicBool,
    ) -> Result<Bytes, FetchError> {
        let parts = chunk_parts(file_size, key.index, self.config.part_size)
            .map_err(|_| FetchError::NotFound)?;
        let expected = expected_lengths(&parts, file_size);
        let total_deadline = Instant::now() + self.config.total_timeout;
        let mut retry = Retry::new(self.pool.len(), self.config.retry_policy(), total_deadline);
        let mut action = retry.start(Instant::now());
        let mut place = QueuePlace::new(self);
        loop {
            let refresh = match action {
                Action::GiveUp(reason) => {
                    self.retries.gave_up(reason.label());
                    return Err(reason);
                }
                Action::SleepUntil(until) => {
                    tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
                    action = retry.on(Instant::now(), Event::Woke);
                    continue;
                }
                Action::NextBot => false,
                Action::SameBot { refresh, .. } => refresh,
            };
            let now = Instant::now();
            let class = if demand.load(Ordering::Relaxed) {
                ChunkClass::Demand
            } else {
                ChunkClass::ReadAhead
            };
            if !place.may_pick(class, now) {
                // Held back for a waiting demand chunk: wait as if every window were full.
                place.wait(class, now);
                action = retry.on(now, Event::NoBot(SelectError::Saturated));
                continue;
            }
            let cap = self.config.parts_per_connection.max(parts.len());
            // A bot that already holds the file's location saves a round trip.
            let ready: Vec<bool> = self
                .downloaders
                .iter()
                .map(|d| d.is_ready(key.file))
                .collect();
            let picked = match self.pool.pick_parts(
                key.file.chat_id,
                now,
                &retry.excluded(),
                &ready,
                parts.len(),
                cap,
            ) {
                Ok(picked) => picked,
                Err(error) => {
                    if error == SelectError::Saturated {
                        place.wait(class, now);
                    }
                    action = retry.on(now, Event::NoBot(error));
                    continue;
                }
            };
            place.leave();
            let bot = picked.bot;
            let deadline = (now + self.config.attempt_timeout).min(total_deadline);
            let attempt = self.attempt(
                bot,
                &picked.connections,
                key.file,
                &parts,
                &expected,
                refresh,
                deadline,
            );
            // The downloader is expected to honour the deadline; this holds even if it doesn't.
            let result = tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), attempt)
                .await
                .unwrap_or(Err(TelegramError::Timeout));
            drop(picked.guards);
            let error = match result {
                Ok(bytes) => {
                    self.pool.record_bytes(bot, bytes.len());
                    return Ok(bytes);
                }
                Err(error) => error,
            };
            tracing::debug!(file = %key.file, index = key.index, bot, %error, "chunk attempt failed");
            self.counters.retry();
            self.retries.failed(error.class_label());
            let now = Instant::now();
            if let Some(penalty) = error.penalty() {
                self.pool.penalise(bot, key.file.chat_id, penalty, now);
            }
            action = retry.on(now, Event::Failed { bot, error: &error });
        }
    }

    /// All parts of the chunk on one bot, requested together, part `i` on `connections[i]`.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        bot: usize,
        connections: &[usize],
        file: FileRef,
        parts: &[PartRequest],
        expected: &[usize],
        refresh: bool,
        deadline: Instant,
    ) -> Result<Bytes, TelegramError> {
        let downloader = self
            .downloaders
            .get(bot)
            .ok_or_else(|| TelegramError::Other(format!("no downloader for bot {bot}")))?;
        let mut tasks = JoinSet::new();
        for (i, (part, &connection)) in parts.iter().zip(connections).enumerate() {
            let call =
                Arc::clone(downloader).download_part(connection, file, *part, refresh, deadline);
            tasks.spawn(async move { (i, call.await) });
        }
        let mut received: Vec<Option<Bytes>> = vec![None; parts.len()];
        while let Some(joined) = tasks.join_next().await {
            let (i, result) =
                joined.map_err(|e| TelegramError::Internal(format!("part task: {e}")))?;
            // The first failure ends the attempt; dropping `tasks` aborts the other parts.
            let bytes = result?;
            if bytes.len() != expected[i] {
                return Err(TelegramError::Internal(format!(
                    "part at {} has {} bytes, expected {}",
                    parts[i].offset,
                    bytes.len(),
                    expected[i]
                )));
            }
            received[i] = Some(bytes);
        }
        let mut chunk = BytesMut::with_capacity(expected.iter().sum());
        for part in received.into_iter().flatten() {
            chunk.extend_from_slice(&part);
        }
        Ok(chunk.freeze())
    }
}

/// One download's place in the fetcher's [`priority::Queue`] while it waits for a slot;
/// dropped (the download finished, failed or was aborted), it leaves the queue.
struct QueuePlace<'a> {
    fetcher: &'a Fetcher,
    ticket: Option<(priority::Ticket, ChunkClass)>,
}

impl<'a> QueuePlace<'a> {
    fn new(fetcher: &'a Fetcher) -> Self {
        QueuePlace {
            fetcher,
            ticket: None,
        }
    }

    fn may_pick(&self, class: ChunkClass, now: Instant) -> bool {
        let ticket = self.ticket.map(|(ticket, _)| ticket);
        self.fetcher.lock_queue().may_pick(class, ticket, now)
    }

    /// Waits as `class` from `now`, or keeps its place when it waits as `class` already; a
    /// read-ahead download a demand caller joined queues again as demand.
    fn wait(&mut self, class: ChunkClass, now: Instant) {
        if self.ticket.is_some_and(|(_, waits_as)| waits_as == class) {
            return;
        }
        self.leave();
        let ticket = self.fetcher.lock_queue().wait(class, now);
        self.ticket = Some((ticket, class));
    }

    fn leave(&mut self) {
        if let Some((ticket, _)) = self.ticket.take() {
            self.fetcher.lock_queue().leave(ticket);
        }
    }
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}

/// What each part must hold: its limit, or less for the part that reaches the end of file.
fn expected_lengths(parts: &[PartRequest], file_size: u64) -> Vec<usize> {
    parts
        .iter()
        .map(|part| {
            let left = file_size.saturating_sub(part.offset);
            // A part is at most 512 KiB, so this fits a usize on every supported target.
            left.min(u64::from(part.limit)) as usize
        })
        .collect()
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
