//! The edge's cache of addon answers: moka by bytes, each entry living as long as the core
//! said (`max_age_secs`, capped), concurrent misses of one key sharing one core call.
//!
//! Used by [`super::AddonEdge`] only. Keyed by the edge's base URL and the canonical path
//! and query, so answers built for one base URL (stream links point at it) are never served
//! under another. Answers the core refused as not found (or addon disabled) are cached for
//! [`NEGATIVE_TTL`] so a hammered missing page costs the core one call per few seconds;
//! every other failure is not cached. The number of core calls in flight is capped: a miss
//! beyond the cap fails at once as [`FetchError::Busy`] instead of queueing. What each
//! lookup cost is counted in [`AnswerCounters`], which `/metrics` exports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::Expiry;
use moka::future::Cache;
use tgcdn_shared::wire::{AddonHeader, AddonRequest, WireError};
use tokio::sync::Semaphore;

use crate::metrics::AnswerCounters;
use crate::upstream::{Upstream, UpstreamError};

/// Longest an answer stays on the edge whatever the core says.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a "not found" / "addon disabled" answer stays on the edge.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// What a cache entry is looked up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AnswerKey {
    pub base_url: Arc<str>,
    pub path: String,
    pub query: String,
}

/// One answer as stored: found (JSON and the core's lifetimes) or not found.
#[derive(Debug)]
pub struct Answer {
    /// `None`: the core said not found or addon disabled.
    pub found: Option<Found>,
    pub fetched_at: Instant,
    ttl: Duration,
}

#[derive(Debug)]
pub struct Found {
    pub json: Bytes,
    pub header: AddonHeader,
}

impl Answer {
    /// Seconds this answer may still be reused by a viewer, at `now`.
    pub fn remaining_secs(&self, now: Instant) -> u64 {
        // Whole seconds elapsed, as an `Age` header counts them: a fresh answer keeps its
        // full lifetime instead of losing a second to rounding.
        let age = now.saturating_duration_since(self.fetched_at).as_secs();
        self.ttl.as_secs().saturating_sub(age)
    }
}

/// Why an answer could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("too many addon requests in flight to the core")]
    Busy,
}

struct AnswerExpiry;

impl Expiry<AnswerKey, Arc<Answer>> for AnswerExpiry {
    fn expire_after_create(
        &self,
        _key: &AnswerKey,
        value: &Arc<Answer>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// See the module docs.
pub struct AnswerCache {
    cache: Cache<AnswerKey, Arc<Answer>>,
    upstream: Arc<dyn Upstream>,
    in_flight: Arc<Semaphore>,
    counters: AnswerCounters,
}

impl AnswerCache {
    /// `capacity_bytes` bounds JSON plus keys; `concurrency` bounds core calls in flight;
    /// every lookup is counted in `counters`.
    pub fn new(
        upstream: Arc<dyn Upstream>,
        capacity_bytes: u64,
        concurrency: usize,
        counters: AnswerCounters,
    ) -> Self {
        let cache = Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|key: &AnswerKey, answer: &Arc<Answer>| {
                let json = answer.found.as_ref().map_or(0, |found| found.json.len());
                // Keys and bookkeeping count too, so many tiny 404s cannot grow unbounded.
                let bytes = 128 + key.base_url.len() + key.path.len() + key.query.len() + json;
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .expire_after(AnswerExpiry)
            .build();
        AnswerCache {
            cache,
            upstream,
            in_flight: Arc::new(Semaphore::new(concurrency)),
            counters,
        }
    }

    /// The answer for `key`: from the cache, or from one core call shared by every
    /// concurrent request for the same key.
    pub async fn get(&self, key: AnswerKey) -> Result<Arc<Answer>, FetchError> {
        let fetch = fetch(
            Arc::clone(&self.upstream),
            Arc::clone(&self.in_flight),
            key.clone(),
        );
        match self.cache.entry(key).or_try_insert_with(fetch).await {
            // Fresh: this lookup's own core call filled the entry.
            Ok(entry) if entry.is_fresh() => {
                self.counters.misses.inc();
                Ok(entry.into_value())
            }
            Ok(entry) => {
                self.counters.hits.inc();
                Ok(entry.into_value())
            }
            Err(shared) => {
                let error = (*shared).clone();
                match error {
                    FetchError::Busy => self.counters.busy.inc(),
                    FetchError::Upstream(_) => self.counters.errors.inc(),
                };
                Err(error)
            }
        }
    }

    /// Entries and weighted bytes held (after pending maintenance), for tests and metrics.
    pub async fn usage(&self) -> (u64, u64) {
        self.cache.run_pending_tasks().await;
        (self.cache.entry_count(), self.cache.weighted_size())
    }
}

async fn fetch(
    upstream: Arc<dyn Upstream>,
    in_flight: Arc<Semaphore>,
    key: AnswerKey,
) -> Result<Arc<Answer>, FetchError> {
    let _permit = in_flight
        .try_acquire_owned()
        .map_err(|_| FetchError::Busy)?;
    let request = AddonRequest {
        path: key.path,
        query: key.query,
        base_url: key.base_url.to_string(),
    };
    let found = match upstream.addon(request).await {
        Ok(reply) => {
            if reply.json.len() != reply.header.len as usize {
                return Err(
                    UpstreamError::protocol("addon payload length differs from header").into(),
                );
            }
            Some(Found {
                json: reply.json,
                header: reply.header,
            })
        }
        Err(UpstreamError::Core(WireError::NotFound | WireError::AddonDisabled)) => None,
        Err(error) => return Err(error.into()),
    };
    let ttl = match &found {
        Some(found) => Duration::from_secs(found.header.max_age_secs.into()).min(MAX_TTL),
        None => NEGATIVE_TTL,
    };
    Ok(Arc::new(Answer {
        found,
        fetched_at: Instant::now(),
        ttl,
    }))
}
