//! The edge's chunk cache: `(file, chunk index) → Bytes`, bounded in bytes, shared by every
//! stream, with one upstream fetch per missing chunk at a time.
//!
//! Called by [`crate::fetch::ChunkSource`] (which supplies the upstream fetch) for every
//! chunk a response body needs. It never decides *what* to fetch, never caches an error and
//! never lets a fetch depend on the viewer that started it.
//!
//! * moka's *sync* cache, so a hit is a plain function call (no future to build, box and
//!   poll); it holds no lock across an await, so it is safe on the runtime.
//! * A byte weigher and [`EvictionPolicy::lru`]: moka's default TinyLFU admission rejects
//!   never-seen keys when the cache is full, and the next chunks of a film being watched
//!   are exactly never-seen keys.
//! * Single flight: the first miss for a key spawns the fetch as its own task and publishes
//!   a shared handle to it; later misses for the key await that handle. Because the fetch is
//!   spawned (not run in the first caller's future, as moka's `get_with` would), a viewer
//!   that disconnects does not abandon a fetch other viewers wait on, and the chunk still
//!   lands in the cache for the next one.
//! * A fill nobody waits for is cancelled: each caller awaiting a fill holds a [`Waiter`]
//!   counted on its in-flight entry, and when the last one is dropped before the fill
//!   finishes (a viewer who hung up, read-ahead of a body that went away) the fill task is
//!   aborted, so its fetch slot and the core's work go to someone who still wants bytes.
//!   Without this, `Range: bytes=N-` and a hang-up costs a whole chunk from Telegram.
//! * Ordering that keeps it one fetch: the task inserts into moka *before* it removes its
//!   in-flight entry, and a new task first re-checks moka, so a caller that missed moka just
//!   before the insert finds the bytes instead of fetching again.
//! * Chunks responses hold are registered here ([`ChunkCache::hold`], a
//!   [`crate::budget::Holdings`] table): the eviction listener tells the table when an
//!   allocation it holds leaves the cache, so a chunk both cached and being sent is counted
//!   once (`tgcdn_edge_inflight_cached_bytes` is the overlap).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tgcdn_shared::FileRef;
use tokio::task::AbortHandle;
use tracing::Instrument;

use crate::alloc::chunk_footprint;
use crate::budget::{Hold, Holdings, InflightBudget, Lease};
use crate::upstream::UpstreamError;

/// A cache key: a chunk of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkKey {
    pub file: FileRef,
    pub index: u64,
}

/// A response's hold on a chunk (see [`ChunkCache::hold`]).
pub type ChunkHold = Hold<ChunkKey>;

/// How a chunk was obtained, for the per-request log line and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheOutcome {
    /// The bytes were in the cache.
    Hit,
    /// This call started the upstream fetch.
    Miss,
    /// A fetch for this chunk was already in flight; this call waited for it.
    Coalesced,
}

impl CacheOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Coalesced => "coalesced",
        }
    }
}

/// Counters the cache keeps; registered with Prometheus by [`crate::metrics`]. Clones share
/// the same atomics.
#[derive(Debug, Clone, Default)]
pub struct CacheCounters {
    pub hits: Counter,
    pub misses: Counter,
    pub coalesced: Counter,
    pub evictions: Counter,
    pub fetch_errors: Counter,
    pub in_flight: Gauge,
    /// Fills aborted because every caller waiting for them went away.
    pub cancelled: Counter,
}

type FetchResult = Result<Bytes, UpstreamError>;
type SharedFetch = Shared<BoxFuture<'static, FetchResult>>;

/// A fill in progress: the handle its waiters await, how many callers await it, and the
/// task to abort when that count drops to zero. `generation` tells this fill from a later
/// one for the same key, so a late waiter never uncounts a fill it did not join.
struct Flight {
    shared: SharedFetch,
    waiters: usize,
    generation: u64,
    task: AbortHandle,
}

#[derive(Default)]
struct Flights {
    by_key: HashMap<ChunkKey, Flight>,
    next_generation: u64,
}

/// The chunk cache. Cheap to clone; clones share the same entries.
#[derive(Clone)]
pub struct ChunkCache {
    entries: Cache<ChunkKey, Bytes>,
    in_flight: Arc<Mutex<Flights>>,
    holdings: Holdings<ChunkKey>,
    counters: CacheCounters,
    capacity_bytes: u64,
}

impl std::fmt::Debug for ChunkCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkCache")
            .field("capacity_bytes", &self.capacity_bytes)
            .field("weighted_size", &self.entries.weighted_size())
            .finish_non_exhaustive()
    }
}

impl ChunkCache {
    /// A cache holding at most `capacity_bytes` of chunk bytes (moka evicts lazily, so the
    /// bound holds after its pending maintenance has run).
    pub fn new(capacity_bytes: u64) -> Self {
        let counters = CacheCounters::default();
        let evictions = counters.evictions.clone();
        let holdings = Holdings::default();
        let listener_holdings = holdings.clone();
        let entries = Cache::builder()
            .max_capacity(capacity_bytes)
            .eviction_policy(EvictionPolicy::lru())
            .weigher(|_key: &ChunkKey, bytes: &Bytes| {
                // What the buffer occupies, not just its length (see `crate::alloc`).
                // Chunks are at most 1 MiB, far below u32::MAX; saturate rather than wrap.
                u32::try_from(chunk_footprint(bytes.len())).unwrap_or(u32::MAX)
            })
            .eviction_listener(move |key: Arc<ChunkKey>, bytes: Bytes, cause| {
                // Whatever the cause (size, invalidation, replacement), a response still
                // holding these bytes now holds the only copy.
                listener_holdings.uncached(*key, &bytes);
                if cause.was_evicted() {
                    evictions.inc();
                }
            })
            .build();
        ChunkCache {
            entries,
            in_flight: Arc::default(),
            holdings,
            counters,
            capacity_bytes,
        }
    }

    pub fn counters(&self) -> &CacheCounters {
        &self.counters
    }

    pub fn capacity_bytes(&self) -> u64 {
        self.capacity_bytes
    }

    /// Bytes currently accounted to entries (after moka's pending maintenance).
    pub fn weighted_size(&self) -> u64 {
        self.entries.weighted_size()
    }

    /// Runs moka's pending maintenance (evictions); tests and the metrics scrape use it.
    /// Async for callers' sake; the work itself is short and synchronous.
    pub async fn run_pending_tasks(&self) {
        self.entries.run_pending_tasks();
    }

    /// Drops every cached chunk of `file` (a revocation); returns how many. Walks the whole
    /// cache — at most capacity ÷ 1 MiB entries — which is fine for a rare operator action
    /// and needs no invalidation-closure machinery on the hot path. A fetch in flight still
    /// lands, but nothing serves a chunk without the file's metadata, which is gone too.
    pub fn drop_file(&self, file: FileRef) -> usize {
        let keys: Vec<ChunkKey> = self
            .entries
            .iter()
            .filter(|(key, _)| key.file == file)
            .map(|(key, _)| *key)
            .collect();
        for key in &keys {
            self.entries.invalidate(key);
        }
        keys.len()
    }

    /// Whether the chunk is cached now (no recency update).
    pub fn contains(&self, key: ChunkKey) -> bool {
        self.entries.contains_key(&key)
    }

    /// The table of chunks responses hold (its gauge is the cached share of them).
    pub fn holdings(&self) -> &Holdings<ChunkKey> {
        &self.holdings
    }

    /// A response's hold on `chunk` (the whole of chunk `key`, from this cache or a fetch
    /// that did not stay in it), shared with every other response holding the same bytes
    /// and covered by `lease` or a new one from `budget`; `None` when the budget is spent.
    /// While the cache keeps these very bytes, the hold counts them as cached too.
    pub fn hold(
        &self,
        key: ChunkKey,
        chunk: &Bytes,
        lease: Option<Lease>,
        budget: &InflightBudget,
    ) -> Option<ChunkHold> {
        self.holdings.hold(key, chunk, lease, budget, || {
            self.entries
                .get(&key)
                .is_some_and(|cached| cached.as_ptr() == chunk.as_ptr())
        })
    }

    /// The chunk if cached.
    pub async fn get(&self, key: ChunkKey) -> Option<Bytes> {
        self.entries.get(&key)
    }

    /// The chunk if cached, counted nowhere and with no recency update: for a body taking
    /// a chunk it already counted when it was read ahead.
    pub fn peek(&self, key: ChunkKey) -> Option<Bytes> {
        self.entries.get(&key)
    }

    /// The chunk if cached, counted as a hit: the synchronous fast path of
    /// [`Self::get_or_fetch`] for callers that can skip building a future on a hit.
    pub fn hit(&self, key: ChunkKey) -> Option<Bytes> {
        let bytes = self.entries.get(&key)?;
        self.counters.hits.inc();
        Some(bytes)
    }

    /// The chunk from the cache, or from `fetch` — started at most once per key at a time,
    /// on its own task, so it completes (and fills the cache) even if every caller goes
    /// away. Errors reach every waiter and are not cached.
    pub async fn get_or_fetch<F, Fut>(
        &self,
        key: ChunkKey,
        fetch: F,
    ) -> Result<(Bytes, CacheOutcome), UpstreamError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = FetchResult> + Send + 'static,
    {
        if let Some(bytes) = self.hit(key) {
            return Ok((bytes, CacheOutcome::Hit));
        }
        let (shared, outcome, _waiter) = self.join_or_start(key, fetch);
        match outcome {
            CacheOutcome::Coalesced => self.counters.coalesced.inc(),
            _ => self.counters.misses.inc(),
        };
        // `_waiter` lives until the fill has answered; dropped earlier (this future
        // cancelled), it may cancel the fill.
        shared.await.map(|bytes| (bytes, outcome))
    }

    /// Makes `fetch` — a chunk already on its way, asked for along with its file's metadata
    /// — the fill of `key`, as if a caller had missed it: callers from now on join it, and
    /// the bytes land in the cache. The fill holds its own claim until it ends (the bytes
    /// are on their way; reading them costs less than asking again). With the chunk cached
    /// or a fill for it running already, `fetch` is dropped unpolled.
    pub fn adopt<Fut>(&self, key: ChunkKey, fetch: Fut)
    where
        Fut: Future<Output = FetchResult> + Send + 'static,
    {
        if self.entries.contains_key(&key) {
            return;
        }
        let (shared, outcome, waiter) = self.join_or_start(key, || fetch);
        if outcome == CacheOutcome::Miss {
            self.counters.misses.inc();
        }
        tokio::spawn(async move {
            let _claim = waiter;
            let _ = shared.await;
        });
    }

    /// Fills in progress and callers awaiting them (tests, metrics).
    pub fn fills_in_progress(&self) -> (usize, usize) {
        let flights = self.flights();
        let waiters = flights.by_key.values().map(|flight| flight.waiters).sum();
        (flights.by_key.len(), waiters)
    }

    fn flights(&self) -> std::sync::MutexGuard<'_, Flights> {
        // The map is only touched for short, non-async sections; a poisoned lock means a
        // panic elsewhere mid-insert/remove, which leaves the map itself consistent.
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn join_or_start<F, Fut>(&self, key: ChunkKey, fetch: F) -> (SharedFetch, CacheOutcome, Waiter)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = FetchResult> + Send + 'static,
    {
        let mut flights = self.flights();
        if let Some(flight) = flights.by_key.get_mut(&key) {
            flight.waiters += 1;
            let waiter = Waiter {
                cache: self.clone(),
                key,
                generation: flight.generation,
            };
            return (flight.shared.clone(), CacheOutcome::Coalesced, waiter);
        }
        let generation = flights.next_generation;
        flights.next_generation += 1;
        let task =
            tokio::spawn(self.clone().fill(key, generation, fetch()).instrument(
                tracing::debug_span!("chunk_fetch", file = %key.file, index = key.index),
            ));
        let abort = task.abort_handle();
        let shared = async move {
            match task.await {
                Ok(result) => result,
                // Only a panic in the upstream implementation (or runtime shutdown) ends
                // the task without a result; waiters see it as an unreachable core.
                Err(join_error) => Err(UpstreamError::unreachable(format!(
                    "chunk fetch task failed: {join_error}"
                ))),
            }
        }
        .boxed()
        .shared();
        flights.by_key.insert(
            key,
            Flight {
                shared: shared.clone(),
                waiters: 1,
                generation,
                task: abort,
            },
        );
        let waiter = Waiter {
            cache: self.clone(),
            key,
            generation,
        };
        (shared, CacheOutcome::Miss, waiter)
    }

    /// The spawned half of a miss: fetch, insert on success, then retire the in-flight entry.
    async fn fill(
        self,
        key: ChunkKey,
        generation: u64,
        fetch: impl Future<Output = FetchResult>,
    ) -> FetchResult {
        // A guard, so an aborted fill leaves the gauge right too.
        let _counted = GaugeGuard::inc(&self.counters.in_flight);
        let result = match self.entries.get(&key) {
            // A fill for this key finished between our caller's miss and our start.
            Some(bytes) => Ok(bytes),
            None => fetch.await,
        };
        match &result {
            Ok(bytes) => self.entries.insert(key, bytes.clone()),
            Err(error) => {
                self.counters.fetch_errors.inc();
                tracing::debug!(%error, "chunk fetch failed");
            }
        }
        let mut flights = self.flights();
        if flights
            .by_key
            .get(&key)
            .is_some_and(|flight| flight.generation == generation)
        {
            flights.by_key.remove(&key);
        }
        result
    }

    /// A waiter of fill `generation` for `key` went away (answered or cancelled).
    fn leave(&self, key: ChunkKey, generation: u64) {
        let mut flights = self.flights();
        let Some(flight) = flights.by_key.get_mut(&key) else {
            return; // the fill has finished and retired its entry
        };
        if flight.generation != generation {
            return;
        }
        flight.waiters = flight.waiters.saturating_sub(1);
        if flight.waiters == 0 {
            // Nobody wants these bytes any more. Aborting a task that has just inserted
            // them is harmless: the insert happened before the entry was retired.
            if let Some(flight) = flights.by_key.remove(&key) {
                flight.task.abort();
                self.counters.cancelled.inc();
                tracing::debug!(file = %key.file, index = key.index, "chunk fill cancelled: no waiter left");
            }
        }
    }
}

/// One caller's interest in a fill; dropping it uncounts the caller, and the last one
/// dropped before the fill ends cancels it.
struct Waiter {
    cache: ChunkCache,
    key: ChunkKey,
    generation: u64,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.cache.leave(self.key, self.generation);
    }
}

/// Increments a gauge now and decrements it on drop, whichever way the holder ends.
struct GaugeGuard<'a>(&'a Gauge);

impl<'a> GaugeGuard<'a> {
    fn inc(gauge: &'a Gauge) -> Self {
        gauge.inc();
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::sync::Notify;

    use super::*;

    const FILE: FileRef = FileRef {
        chat_id: -1_001,
        msg_id: 7,
    };

    fn key(index: u64) -> ChunkKey {
        ChunkKey { file: FILE, index }
    }

    async fn within<T>(fut: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), fut)
            .await
            .expect("test step timed out")
    }

    #[tokio::test]
    async fn hundred_concurrent_misses_make_one_fetch() {
        let cache = ChunkCache::new(64 << 20);
        let calls = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let mut waiters = Vec::new();
        for _ in 0..100 {
            let cache = cache.clone();
            let calls = calls.clone();
            let release = release.clone();
            waiters.push(tokio::spawn(async move {
                cache
                    .get_or_fetch(key(3), move || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        release.notified().await;
                        Ok(Bytes::from_static(b"chunk three"))
                    })
                    .await
            }));
        }
        // Let every waiter register before the single fetch completes.
        within(async {
            while cache.counters().misses.get() + cache.counters().coalesced.get() < 100 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        release.notify_one();
        let mut outcomes = HashMap::new();
        for waiter in waiters {
            let (bytes, outcome) = within(waiter).await.unwrap().unwrap();
            assert_eq!(&bytes[..], b"chunk three");
            *outcomes.entry(outcome).or_insert(0) += 1;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(outcomes.get(&CacheOutcome::Miss), Some(&1));
        assert_eq!(outcomes.get(&CacheOutcome::Coalesced), Some(&99));
        let (_, outcome) = cache
            .get_or_fetch(key(3), || async { panic!("must be a hit") })
            .await
            .unwrap();
        assert_eq!(outcome, CacheOutcome::Hit);
    }

    #[tokio::test]
    async fn fetch_survives_the_first_caller_being_cancelled() {
        let cache = ChunkCache::new(64 << 20);
        let calls = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let first = {
            let (cache, calls, release) = (cache.clone(), calls.clone(), release.clone());
            tokio::spawn(async move {
                cache
                    .get_or_fetch(key(0), move || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        release.notified().await;
                        Ok(Bytes::from_static(b"survivor"))
                    })
                    .await
            })
        };
        within(async {
            while cache.counters().in_flight.get() == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        let second = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_fetch(key(0), || async { Ok(Bytes::from_static(b"second fetch")) })
                    .await
            })
        };
        within(async {
            while cache.counters().coalesced.get() == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        first.abort();
        assert!(within(first).await.unwrap_err().is_cancelled());
        release.notify_one();
        let (bytes, outcome) = within(second).await.unwrap().unwrap();
        assert_eq!(&bytes[..], b"survivor");
        assert_eq!(outcome, CacheOutcome::Coalesced);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(cache.contains(key(0)));
        assert_eq!(cache.counters().cancelled.get(), 0);
    }

    /// Sets a flag when dropped: tells a test the fetch future was dropped unfinished.
    struct DropFlag(Arc<AtomicUsize>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn fill_is_cancelled_when_its_only_waiter_goes_away() {
        let cache = ChunkCache::new(64 << 20);
        let dropped = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(Notify::new());
        let waiter = {
            let (cache, dropped, started) = (cache.clone(), dropped.clone(), started.clone());
            tokio::spawn(async move {
                cache
                    .get_or_fetch(key(5), move || async move {
                        let _flag = DropFlag(dropped);
                        started.notify_one();
                        std::future::pending::<FetchResult>().await
                    })
                    .await
            })
        };
        within(started.notified()).await;
        assert_eq!(cache.fills_in_progress(), (1, 1));
        waiter.abort();
        assert!(within(waiter).await.unwrap_err().is_cancelled());
        // The fetch future is dropped by the aborted task: await that, not a sleep.
        within(async {
            while dropped.load(Ordering::SeqCst) == 0 || cache.counters().in_flight.get() != 0 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert_eq!(cache.counters().cancelled.get(), 1);
        assert_eq!(cache.fills_in_progress(), (0, 0));
        // The next caller starts a fresh fill rather than joining the cancelled one.
        let (bytes, outcome) =
            within(cache.get_or_fetch(key(5), || async { Ok(Bytes::from_static(b"again")) }))
                .await
                .unwrap();
        assert_eq!((&bytes[..], outcome), (&b"again"[..], CacheOutcome::Miss));
        assert_eq!(cache.counters().cancelled.get(), 1);
    }

    #[tokio::test]
    async fn answered_waiters_never_cancel_a_later_fill() {
        let cache = ChunkCache::new(64 << 20);
        for round in 0..3 {
            let (bytes, _) = cache
                .get_or_fetch(key(6), || async { Ok(Bytes::from_static(b"six")) })
                .await
                .unwrap();
            assert_eq!(&bytes[..], b"six", "round {round}");
            cache.entries.invalidate(&key(6));
        }
        assert_eq!(cache.counters().cancelled.get(), 0);
        assert_eq!(cache.fills_in_progress(), (0, 0));
    }

    #[tokio::test]
    async fn errors_reach_waiters_and_are_not_cached() {
        let cache = ChunkCache::new(64 << 20);
        let result = cache
            .get_or_fetch(key(1), || async { Err(UpstreamError::Timeout) })
            .await;
        assert_eq!(result.unwrap_err(), UpstreamError::Timeout);
        assert!(!cache.contains(key(1)));
        let (bytes, outcome) = cache
            .get_or_fetch(key(1), || async { Ok(Bytes::from_static(b"later")) })
            .await
            .unwrap();
        assert_eq!((&bytes[..], outcome), (&b"later"[..], CacheOutcome::Miss));
        assert_eq!(cache.counters().fetch_errors.get(), 1);
    }

    #[tokio::test]
    async fn weight_bound_is_respected_and_evictions_counted() {
        const CHUNK: usize = 64 * 1024;
        let cache = ChunkCache::new(10 * CHUNK as u64);
        for index in 0..40 {
            cache
                .get_or_fetch(key(index), || async { Ok(Bytes::from(vec![0u8; CHUNK])) })
                .await
                .unwrap();
        }
        cache.run_pending_tasks().await;
        assert!(cache.weighted_size() <= cache.capacity_bytes());
        assert!(
            cache.weighted_size() >= 8 * CHUNK as u64,
            "LRU keeps new keys"
        );
        assert!(cache.counters().evictions.get() >= 30);
        // LRU: the newest chunk survives a full cache (TinyLFU would have rejected it).
        assert!(cache.contains(key(39)));
        assert!(!cache.contains(key(0)));
    }

    #[tokio::test]
    async fn eviction_moves_a_held_chunk_from_cached_to_in_flight_only() {
        const CHUNK: usize = 64 * 1024;
        let cache = ChunkCache::new(2 * CHUNK as u64);
        let budget = InflightBudget::new(64 << 20);
        let (held, _) = cache
            .get_or_fetch(key(0), || async { Ok(Bytes::from(vec![1u8; CHUNK])) })
            .await
            .unwrap();
        let hold = cache.hold(key(0), &held, None, &budget).unwrap();
        let cached = || cache.holdings().cached_bytes().get();
        assert_eq!((budget.held(), cached()), (CHUNK as u64, CHUNK as i64));
        // Two newer chunks push it out of a two-chunk cache: the listener uncounts it.
        for index in 1..=2 {
            cache
                .get_or_fetch(key(index), || async { Ok(Bytes::from(vec![2u8; CHUNK])) })
                .await
                .unwrap();
        }
        cache.run_pending_tasks().await;
        assert!(!cache.contains(key(0)));
        assert_eq!((budget.held(), cached()), (CHUNK as u64, 0));
        drop(hold);
        assert_eq!((budget.held(), cached()), (0, 0));
        // Invalidation (a revocation) uncounts too.
        let (again, _) = cache
            .get_or_fetch(key(2), || async { panic!("cached") })
            .await
            .unwrap();
        let hold = cache.hold(key(2), &again, None, &budget).unwrap();
        assert_eq!(cached(), CHUNK as i64);
        assert_eq!(cache.drop_file(FILE), 2);
        cache.run_pending_tasks().await;
        assert_eq!((budget.held(), cached()), (CHUNK as u64, 0));
        drop(hold);
    }
}
