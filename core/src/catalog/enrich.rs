//! Background enrichment of the catalogue: metadata from TMDB for titles that have none,
//! and the OpenSubtitles hash of every file, each with counters for `/metrics`.
//!
//! Both loops work through what [`Library`] says is pending, sleep on its notifier when
//! nothing is, and never hold the catalogue lock across a network call. Metadata: a match
//! attaches TMDB's data, no match attaches empty metadata (the item stays as parsed and is
//! not asked again), a transient failure (TMDB down, rate-limited) backs off and leaves the
//! item pending — so a catalogue built while TMDB was unreachable is enriched when it
//! returns. Hashes: the first and last chunk come through the fetcher (and so warm its
//! cache for the first viewer); a file that cannot be read is retried on the next pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tgcdn_catalog::hash::{HASH_BLOCK, opensubtitles_hash};
use tgcdn_shared::FileRef;
use tgcdn_shared::chunk::CHUNK_SIZE;
use tokio::sync::watch;

use super::library::{Library, Pending, Unhashed};
use super::tmdb::{Lookup, TmdbClient, TmdbError};
use crate::fetch::{FetchError, Fetcher};

/// First pause after a transient TMDB failure; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// How often pending work is looked at even without a notification (failed hashes,
/// failed lookups).
const RESCAN: Duration = Duration::from_secs(600);

/// Relaxed counters; `pending_*` are gauges set at each pass.
#[derive(Debug, Default)]
pub struct EnrichStats {
    pub matched: AtomicU64,
    pub unmatched: AtomicU64,
    pub lookup_failures: AtomicU64,
    pub pending_metadata: AtomicU64,
    pub hashed: AtomicU64,
    pub hash_failures: AtomicU64,
    pub pending_hashes: AtomicU64,
}

/// What one lookup pass ended with.
#[derive(Debug, PartialEq, Eq)]
enum Pass {
    /// Everything pending was looked at.
    Done,
    /// TMDB is unwell: wait this long before the next pass.
    Backoff(Duration),
    /// Lookups cannot work without an operator (no key, refused key).
    Disabled,
}

/// Runs metadata enrichment until `stop` turns true.
pub async fn run_metadata(
    library: Arc<Library>,
    tmdb: Arc<TmdbClient>,
    stats: Arc<EnrichStats>,
    mut stop: watch::Receiver<bool>,
) {
    let work = library.work();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let pause = match metadata_pass(&library, &tmdb, &stats).await {
            Pass::Done => {
                backoff = FIRST_BACKOFF;
                RESCAN
            }
            Pass::Backoff(hint) => {
                let pause = hint.max(backoff).min(MAX_BACKOFF);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                tracing::info!(?pause, "TMDB unavailable; metadata enrichment paused");
                pause
            }
            Pass::Disabled => return,
        };
        tokio::select! {
            _ = work.notified() => {}
            _ = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

async fn metadata_pass(library: &Library, tmdb: &TmdbClient, stats: &EnrichStats) -> Pass {
    let pending = library.pending_metadata();
    stats
        .pending_metadata
        .store(pending.len() as u64, Ordering::Relaxed);
    for title in pending {
        match tmdb.resolve(&lookup(&title)).await {
            Ok(found) => {
                let counter = if found.is_some() {
                    &stats.matched
                } else {
                    &stats.unmatched
                };
                // No match: empty metadata marks the lookup as done; the parsed name shows.
                if let Err(error) = library.attach_metadata(&title.id, found.unwrap_or_default()) {
                    tracing::warn!(id = %title.id, "cannot attach metadata: {error}");
                    continue;
                }
                counter.fetch_add(1, Ordering::Relaxed);
                stats.pending_metadata.fetch_sub(1, Ordering::Relaxed);
            }
            Err(TmdbError::NoApiKey) => return Pass::Disabled,
            Err(error @ TmdbError::Unauthorized { .. }) => {
                tracing::error!("metadata enrichment stopped: {error}");
                return Pass::Disabled;
            }
            Err(error) if error.is_transient() => {
                stats.lookup_failures.fetch_add(1, Ordering::Relaxed);
                let hint = match error {
                    TmdbError::Status { retry_after, .. } => retry_after,
                    _ => None,
                };
                return Pass::Backoff(hint.unwrap_or(Duration::ZERO));
            }
            Err(error) => {
                // One title's odd answer must not hold up the others: it stays pending and
                // is asked again at the next rescan.
                stats.lookup_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(id = %title.id, "metadata lookup failed: {error}");
            }
        }
    }
    Pass::Done
}

fn lookup(title: &Pending) -> Lookup {
    Lookup {
        kind: title.kind,
        title: title.name.clone(),
        year: title.year,
        seasons: title.seasons.clone(),
    }
}

/// Runs video-hash computation until `stop` turns true.
pub async fn run_hashes(
    library: Arc<Library>,
    fetcher: Arc<Fetcher>,
    stats: Arc<EnrichStats>,
    mut stop: watch::Receiver<bool>,
) {
    let work = library.work();
    loop {
        let pending = library.unhashed();
        stats
            .pending_hashes
            .store(pending.len() as u64, Ordering::Relaxed);
        for file in pending {
            if *stop.borrow() {
                return;
            }
            match video_hash(&fetcher, &file).await {
                Ok(hash) => {
                    if let Err(error) = library.set_video_hash(file.file, file.size, hash) {
                        tracing::warn!(file = %file.file, "cannot store the video hash: {error}");
                        continue;
                    }
                    stats.hashed.fetch_add(1, Ordering::Relaxed);
                    stats.pending_hashes.fetch_sub(1, Ordering::Relaxed);
                }
                Err(error) => {
                    stats.hash_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(file = %file.file, "video hash not computed: {error}");
                }
            }
        }
        tokio::select! {
            _ = work.notified() => {}
            _ = tokio::time::sleep(RESCAN) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

/// The OpenSubtitles hash of `file` from its first and last 64 KiB (one or two chunks at
/// each end).
async fn video_hash(fetcher: &Arc<Fetcher>, file: &Unhashed) -> Result<u64, FetchError> {
    let block = HASH_BLOCK as u64;
    let head = read(fetcher, file.file, file.size, 0, block.min(file.size)).await?;
    let tail_start = file.size.saturating_sub(block);
    let tail = read(
        fetcher,
        file.file,
        file.size,
        tail_start,
        file.size - tail_start,
    )
    .await?;
    opensubtitles_hash(file.size, &head, &tail)
        .map_err(|error| FetchError::Rejected(format!("video hash: {error}")))
}

/// Bytes `[start, start + len)` of a file of `size` bytes, through the chunk cache.
async fn read(
    fetcher: &Arc<Fetcher>,
    file: FileRef,
    size: u64,
    start: u64,
    len: u64,
) -> Result<Vec<u8>, FetchError> {
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    let end = start + len;
    let mut at = start;
    while at < end {
        let index = at / CHUNK_SIZE;
        let chunk = fetcher.chunk(file, size, index).await?;
        let chunk_start = index * CHUNK_SIZE;
        let from = usize::try_from(at - chunk_start).unwrap_or(usize::MAX);
        let to = usize::try_from(end.min(chunk_start + chunk.len() as u64) - chunk_start)
            .unwrap_or(usize::MAX);
        let piece = chunk
            .get(from..to)
            .ok_or_else(|| FetchError::Rejected(format!("chunk {index} is short")))?;
        if piece.is_empty() {
            return Err(FetchError::Rejected(format!("chunk {index} is short")));
        }
        out.extend_from_slice(piece);
        at += piece.len() as u64;
    }
    Ok(out)
}

/// The catalogue and its enrichment at one moment, as the admin report carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LibrarySnapshot {
    pub titles: u64,
    pub metadata_matched: u64,
    pub metadata_unmatched: u64,
    pub metadata_failures: u64,
    pub metadata_pending: u64,
    /// Whether lookups run at all (a TMDB key is configured).
    pub metadata_enabled: bool,
    pub hashed: u64,
    pub hash_failures: u64,
    pub hashes_pending: u64,
    pub tmdb_requests: u64,
    pub tmdb_cache_hits: u64,
    pub tmdb_retries: u64,
}

impl EnrichStats {
    /// The counters with the catalogue's size and TMDB's own counters.
    pub fn snapshot(&self, library: &Library, tmdb: Option<&TmdbClient>) -> LibrarySnapshot {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let tmdb_get = |pick: fn(&super::tmdb::TmdbStats) -> &AtomicU64| {
            tmdb.map_or(0, |tmdb| get(pick(tmdb.stats())))
        };
        LibrarySnapshot {
            titles: library.len() as u64,
            metadata_matched: get(&self.matched),
            metadata_unmatched: get(&self.unmatched),
            metadata_failures: get(&self.lookup_failures),
            metadata_pending: get(&self.pending_metadata),
            metadata_enabled: tmdb.is_some_and(TmdbClient::has_api_key),
            hashed: get(&self.hashed),
            hash_failures: get(&self.hash_failures),
            hashes_pending: get(&self.pending_hashes),
            tmdb_requests: tmdb_get(|s| &s.requests),
            tmdb_cache_hits: tmdb_get(|s| &s.cache_hits),
            tmdb_retries: tmdb_get(|s| &s.retries),
        }
    }
}
