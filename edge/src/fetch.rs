//! The edge's view of file data: [`ChunkSource`] (cache + upstream + global fetch cap) and
//! [`MetaSource`] (a small cache of file metadata).
//!
//! Called by the download handler (metadata) and by [`crate::body`] (chunks); chunks go
//! through [`crate::cache`], whose misses run the fetch built here against
//! [`crate::upstream`]. This is where the protection of the core lives: at most
//! `fetch_cap` chunk fetches are in flight towards the core at once, edge-wide, however
//! many viewers read ahead, shared fairly between clients, demand before read-ahead
//! ([`crate::slots`]), and each chunk request tells the core its class so the core orders
//! its own queue the same way; every fetch has a deadline; a chunk of the wrong length is
//! refused, never cached.
//!
//! The first range of a file the edge has no metadata for costs one exchange, not two:
//! [`MetaSource::meta_with_chunk`] asks the core for the meta and the range's first chunk
//! together ([`Upstream::meta_chunk`]) under a demand fetch slot, and puts the chunk into
//! the cache as if the body had fetched it.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use moka::future::Cache;
use prometheus_client::metrics::histogram::Histogram;
use tgcdn_shared::FileRef;

use crate::budget::{DEFAULT_INFLIGHT_MAX, InflightBudget};
use crate::cache::{CacheOutcome, ChunkCache, ChunkKey};
use crate::revoked::{DEFAULT_REVOKED_MAX, RevokedFiles};
use crate::slots::{FetchSlots, FillClass, Slot};
use tgcdn_shared::chunk::chunk_len;

use crate::upstream::{LinkStatus, MetaChunk, PendingChunk, Upstream, UpstreamError};
use tgcdn_shared::wire::{ChunkClass, FileMeta, WireError};

/// How long one chunk fetch may take, waiting for a fetch permit included.
pub const CHUNK_DEADLINE: Duration = Duration::from_secs(60);
/// How long one metadata request may take; the core's lookup deadline is set under it
/// (`tgcdn_shared::deadline`).
pub const META_DEADLINE: Duration = tgcdn_shared::deadline::EDGE_META_TIMEOUT;
/// How long metadata stays cached. A revocation the core pushes drops it at once; this only
/// bounds how stale the metadata of a file can get otherwise.
pub const META_TTL: Duration = Duration::from_secs(300);
/// How long a "not found" or "revoked" answer is remembered, so a flood of requests for a
/// dead link reaches the core once per this period (short: a revoke may be undone).
pub const NEGATIVE_TTL: Duration = Duration::from_secs(10);

/// Upstream latency buckets in seconds (5 ms … ~20 s).
pub fn latency_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.005, 2.0, 13,
    ))
}

/// Chunks for response bodies: cached, coalesced, capped. Cheap to clone (one `Arc`: every
/// response body holds a clone).
#[derive(Clone)]
pub struct ChunkSource {
    inner: Arc<SourceInner>,
}

struct SourceInner {
    cache: ChunkCache,
    budget: InflightBudget,
    upstream: Arc<dyn Upstream>,
    slots: FetchSlots,
    latency: Histogram,
}

impl ChunkSource {
    /// `fetch_cap` bounds the chunk fetches in flight to the core across all streams (and
    /// for one client); the in-flight budget is the default one.
    pub fn new(
        cache: ChunkCache,
        upstream: Arc<dyn Upstream>,
        fetch_cap: usize,
        latency: Histogram,
    ) -> Self {
        let budget = InflightBudget::new(DEFAULT_INFLIGHT_MAX);
        ChunkSource::with_limits(
            cache,
            upstream,
            FetchSlots::new(fetch_cap, fetch_cap),
            budget,
            latency,
        )
    }

    /// Like [`Self::new`], with `slots` bounding fetches to the core (in all and per
    /// client) and `budget` the chunk bytes bodies hold.
    pub fn with_limits(
        cache: ChunkCache,
        upstream: Arc<dyn Upstream>,
        slots: FetchSlots,
        budget: InflightBudget,
        latency: Histogram,
    ) -> Self {
        ChunkSource {
            inner: Arc::new(SourceInner {
                cache,
                budget,
                upstream,
                slots,
                latency,
            }),
        }
    }

    pub fn cache(&self) -> &ChunkCache {
        &self.inner.cache
    }

    /// The bytes response bodies may hold outside the cache.
    pub fn budget(&self) -> &InflightBudget {
        &self.inner.budget
    }

    /// Fetch permits free right now (tests, metrics).
    pub fn free_fetch_permits(&self) -> usize {
        self.inner.slots.free()
    }

    /// The fetch slots (in all and per client).
    pub fn slots(&self) -> &FetchSlots {
        &self.inner.slots
    }

    /// Chunk `index` of `file` if it is cached (counted as a hit); never touches the
    /// upstream. Lets a body take a hit without building a fetch future.
    pub fn cached(&self, file: FileRef, index: u64) -> Option<Bytes> {
        self.inner.cache.hit(ChunkKey { file, index })
    }

    /// Chunk `index` of `file`, whose size is `file_size`, for no particular client.
    pub async fn chunk(
        &self,
        file: FileRef,
        file_size: u64,
        index: u64,
    ) -> Result<(Bytes, CacheOutcome), UpstreamError> {
        self.chunk_for(None, FillClass::Demand, file, file_size, index)
            .await
    }

    /// Chunk `index` of `file` for `client`: a fill this call starts takes a fetch slot
    /// as one of that client's `class` fills ([`crate::slots`]; a fill it joins keeps the
    /// slot of whoever started it).
    pub async fn chunk_for(
        &self,
        client: Option<IpAddr>,
        class: FillClass,
        file: FileRef,
        file_size: u64,
        index: u64,
    ) -> Result<(Bytes, CacheOutcome), UpstreamError> {
        let expected = chunk_len(file_size, index).ok_or_else(|| {
            UpstreamError::protocol(format!(
                "chunk {index} is past the end of {file_size} bytes"
            ))
        })?;
        let key = ChunkKey { file, index };
        let inner = &self.inner;
        if class == FillClass::Demand {
            // A fill queued as read-ahead that this response joins is now awaited.
            inner.slots.promote(key);
        }
        inner
            .cache
            .get_or_fetch(key, || {
                let upstream = inner.upstream.clone();
                let slots = inner.slots.clone();
                let latency = inner.latency.clone();
                async move {
                    tokio::time::timeout(CHUNK_DEADLINE, async move {
                        let _slot = slots
                            .acquire_fill(key, client, class)
                            .await
                            .map_err(|closed| UpstreamError::unreachable(closed.to_string()))?;
                        let started = Instant::now();
                        let bytes = upstream.chunk_as(file, index, wire_class(class)).await?;
                        latency.observe(started.elapsed().as_secs_f64());
                        check_len(bytes, expected, index)
                    })
                    .await
                    .unwrap_or(Err(UpstreamError::Timeout))
                }
            })
            .await
    }

    pub fn upstream_ready(&self) -> bool {
        self.inner.upstream.ready()
    }

    /// The upstream's core links, for `/metrics`.
    pub fn upstream_links(&self) -> Vec<LinkStatus> {
        self.inner.upstream.links()
    }

    /// The download connections the core advertised, once connected.
    pub fn core_connections(&self) -> Option<u32> {
        self.inner.upstream.core_connections()
    }

    /// Makes a chunk on its way with its file's metadata the cache's fill of that chunk
    /// (counted as the miss it is), holding `slot` until it lands, under the chunk
    /// deadline and length check of any fill. A chunk past the end is dropped unread.
    fn adopt(&self, key: ChunkKey, file_size: u64, slot: Slot, pending: PendingChunk) {
        let Some(expected) = chunk_len(file_size, key.index) else {
            return;
        };
        let latency = self.inner.latency.clone();
        let started = Instant::now();
        self.inner.cache.adopt(key, async move {
            let _slot = slot;
            let bytes = tokio::time::timeout(CHUNK_DEADLINE, pending)
                .await
                .unwrap_or(Err(UpstreamError::Timeout))?;
            latency.observe(started.elapsed().as_secs_f64());
            check_len(bytes, expected, key.index)
        });
    }
}

/// The core's name for an edge fill class.
fn wire_class(class: FillClass) -> ChunkClass {
    match class {
        FillClass::Demand => ChunkClass::Demand,
        FillClass::ReadAhead => ChunkClass::ReadAhead,
    }
}

fn check_len(bytes: Bytes, expected: u64, index: u64) -> Result<Bytes, UpstreamError> {
    if bytes.len() as u64 == expected {
        Ok(bytes)
    } else {
        Err(UpstreamError::protocol(format!(
            "chunk {index} has {} bytes, expected {expected}",
            bytes.len()
        )))
    }
}

/// File metadata, cached for [`META_TTL`] with concurrent misses coalesced. Of the errors,
/// only the core's "not found" and "revoked" are cached, for [`NEGATIVE_TTL`]. A file one
/// of the cores revoked ([`RevokedFiles`]) is refused before any of that. Cheap to clone.
///
/// What is cached per file is `T`, made once from the upstream's [`FileMeta`] by the
/// `derive` function given at construction: the HTTP layer keeps its ready-made response
/// headers there, so a request for a known file builds none of them again.
pub struct MetaSource<T = FileMeta> {
    metas: Cache<FileRef, Arc<T>>,
    missing: Cache<FileRef, WireError>,
    upstream: Arc<dyn Upstream>,
    latency: Histogram,
    derive: fn(FileRef, FileMeta) -> T,
    revoked: Arc<RevokedFiles>,
}

impl<T> Clone for MetaSource<T> {
    fn clone(&self) -> Self {
        MetaSource {
            metas: self.metas.clone(),
            missing: self.missing.clone(),
            upstream: self.upstream.clone(),
            latency: self.latency.clone(),
            derive: self.derive,
            revoked: self.revoked.clone(),
        }
    }
}

impl MetaSource<FileMeta> {
    /// A source caching the metadata as the upstream sent it.
    pub fn new(upstream: Arc<dyn Upstream>, latency: Histogram) -> Self {
        MetaSource::with_derive(upstream, latency, |_, meta| meta)
    }
}

impl<T: Send + Sync + 'static> MetaSource<T> {
    /// A source caching `derive(file, meta)` for each file.
    pub fn with_derive(
        upstream: Arc<dyn Upstream>,
        latency: Histogram,
        derive: fn(FileRef, FileMeta) -> T,
    ) -> Self {
        MetaSource {
            metas: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(META_TTL)
                .build(),
            missing: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(NEGATIVE_TTL)
                .build(),
            upstream,
            latency,
            derive,
            revoked: Arc::new(RevokedFiles::new(DEFAULT_REVOKED_MAX)),
        }
    }

    /// This source with `revoked` as its cores' revocation lists (one per edge).
    pub fn with_revoked(mut self, revoked: Arc<RevokedFiles>) -> Self {
        self.revoked = revoked;
        self
    }

    /// The cores' revocation lists this source refuses files by.
    pub fn revoked_files(&self) -> &RevokedFiles {
        &self.revoked
    }

    /// No core revokes `file` any more: forget the "revoked" answer cached for it, so the
    /// next request asks the core again.
    pub async fn freed(&self, file: FileRef) {
        self.missing.invalidate(&file).await;
    }

    /// The core revoked `file`: forget its metadata and answer "revoked" from the negative
    /// cache (then from the core, which keeps saying so) without serving another byte.
    pub async fn revoked(&self, file: FileRef) {
        self.missing.insert(file, WireError::Revoked).await;
        self.metas.invalidate(&file).await;
    }

    /// Forgets every cached metadata, so each file is asked for again: after a reconnection
    /// to the core, which may have revoked files meanwhile.
    pub fn forget_all(&self) {
        self.metas.invalidate_all();
    }

    pub async fn meta(&self, file: FileRef) -> Result<Arc<T>, UpstreamError> {
        let upstream = self.upstream.clone();
        self.lookup(file, async move {
            tokio::time::timeout(META_DEADLINE, upstream.meta(file))
                .await
                .unwrap_or(Err(UpstreamError::Timeout))
        })
        .await
    }

    /// [`Self::meta`] for a response that will start with chunk `index`: a miss asks the
    /// core for the meta and that chunk in one exchange, holding a demand slot of `chunks`
    /// for `client` as the chunk's fill would, and makes the chunk the cache's fill of it.
    /// With no slot free at once the meta is asked for alone (it must not wait behind
    /// chunks), and the body's demand fill queues as usual; so does a chunk that failed.
    pub async fn meta_with_chunk(
        &self,
        file: FileRef,
        index: u64,
        chunks: &ChunkSource,
        client: Option<IpAddr>,
    ) -> Result<Arc<T>, UpstreamError> {
        let upstream = self.upstream.clone();
        let chunks = chunks.clone();
        self.lookup(file, async move {
            // Granted at the first poll when free; dropped unanswered, the ticket is gone.
            let slot = chunks
                .slots()
                .acquire(client, FillClass::Demand)
                .now_or_never()
                .and_then(Result::ok);
            let Some(slot) = slot else {
                return tokio::time::timeout(META_DEADLINE, upstream.meta(file))
                    .await
                    .unwrap_or(Err(UpstreamError::Timeout));
            };
            let MetaChunk { meta, chunk } =
                tokio::time::timeout(META_DEADLINE, upstream.meta_chunk(file, index))
                    .await
                    .unwrap_or(Err(UpstreamError::Timeout))?;
            if let Some(pending) = chunk {
                chunks.adopt(ChunkKey { file, index }, meta.size, slot, pending);
            }
            Ok(meta)
        })
        .await
    }

    /// The cached value for `file`, else `fetch`'s meta derived and cached (concurrent
    /// misses share one fetch); "not found" and "revoked" are remembered for a while.
    async fn lookup(
        &self,
        file: FileRef,
        fetch: impl Future<Output = Result<FileMeta, UpstreamError>> + Send + 'static,
    ) -> Result<Arc<T>, UpstreamError> {
        // Whichever core serves the file, and whatever is cached of it.
        if self.revoked.contains(file) {
            return Err(UpstreamError::Core(WireError::Revoked));
        }
        // The common case first: a plain lookup builds no fill future.
        if let Some(known) = self.metas.get(&file).await {
            return Ok(known);
        }
        if let Some(error) = self.missing.get(&file).await {
            return Err(UpstreamError::Core(error));
        }
        let latency = self.latency.clone();
        let derive = self.derive;
        let result = self
            .metas
            .try_get_with(file, async move {
                let started = Instant::now();
                let meta = fetch.await?;
                latency.observe(started.elapsed().as_secs_f64());
                Ok(Arc::new(derive(file, meta)))
            })
            .await
            .map_err(|shared: Arc<UpstreamError>| (*shared).clone());
        if let Err(UpstreamError::Core(error @ (WireError::NotFound | WireError::Revoked))) =
            &result
        {
            self.missing.insert(file, error.clone()).await;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemoryUpstream;

    #[tokio::test]
    async fn a_revoked_file_is_refused_without_asking_the_core() {
        let file = FileRef {
            chat_id: -1_000_000_000_001,
            msg_id: 3,
        };
        let upstream = Arc::new(
            MemoryUpstream::new().with_file(file, crate::testing::test_meta(1000, "a", "b/c")),
        );
        let metas = MetaSource::new(
            Arc::clone(&upstream) as Arc<dyn Upstream>,
            latency_histogram(),
        );
        assert!(metas.meta(file).await.is_ok());
        metas.revoked(file).await;
        for _ in 0..10 {
            assert_eq!(
                metas.meta(file).await.map(|_| ()),
                Err(UpstreamError::Core(WireError::Revoked))
            );
        }
        assert_eq!(upstream.meta_calls(), 1);
    }

    #[tokio::test]
    async fn a_file_another_core_revoked_is_refused_whatever_is_cached() {
        let file = FileRef {
            chat_id: -1_000_000_000_001,
            msg_id: 4,
        };
        let upstream = Arc::new(
            MemoryUpstream::new().with_file(file, crate::testing::test_meta(1000, "a", "b/c")),
        );
        let metas = MetaSource::new(
            Arc::clone(&upstream) as Arc<dyn Upstream>,
            latency_histogram(),
        );
        assert!(metas.meta(file).await.is_ok());
        metas.revoked_files().revoke(1, file);
        assert_eq!(
            metas.meta(file).await.map(|_| ()),
            Err(UpstreamError::Core(WireError::Revoked))
        );
        metas.revoked_files().unrevoke(1, file);
        assert!(metas.meta(file).await.is_ok());
        assert_eq!(upstream.meta_calls(), 1);
    }

    #[tokio::test]
    async fn a_missing_file_reaches_the_core_once_per_negative_ttl() {
        let upstream = Arc::new(MemoryUpstream::new());
        let metas = MetaSource::new(
            Arc::clone(&upstream) as Arc<dyn Upstream>,
            latency_histogram(),
        );
        let dead = FileRef {
            chat_id: -1_000_000_000_001,
            msg_id: 9,
        };
        for _ in 0..100 {
            assert_eq!(
                metas.meta(dead).await.map(|_| ()),
                Err(UpstreamError::Core(WireError::NotFound))
            );
        }
        assert_eq!(upstream.meta_calls(), 1);
    }
}
