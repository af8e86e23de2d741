//! Plain event counters the download path bumps and the report reads: fetch outcomes,
//! resolver hits, chunk requests per DC, and the retry loops' failed attempts by class and
//! give-ups by reason.
//!
//! Owned by the [`crate::fetch::Fetcher`], the [`crate::resolve::Resolver`] and the
//! [`crate::quic::handler::Handler`]; read by [`crate::report`]. Relaxed atomics only: these
//! are statistics, nothing orders on them. No I/O, no locks held across anything.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What the single-flight fetcher did with each chunk request.
#[derive(Debug, Default)]
pub struct FetchCounters {
    cache_hits: AtomicU64,
    coalesced: AtomicU64,
    downloads: AtomicU64,
    failures: AtomicU64,
    retries: AtomicU64,
    cancelled: AtomicU64,
}

/// A reading of [`FetchCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchSnapshot {
    /// Answered from the second-tier cache.
    pub cache_hits: u64,
    /// Joined a download already running for the same chunk (single-flight).
    pub coalesced: u64,
    /// Downloads started.
    pub downloads: u64,
    /// Downloads that ended in an error.
    pub failures: u64,
    /// Failed attempts that the retry policy answered (another bot, a refresh, a wait).
    #[serde(default)]
    pub retries: u64,
    /// Downloads aborted because every caller went away (edge streams reset).
    #[serde(default)]
    pub cancelled: u64,
}

impl FetchCounters {
    pub fn cache_hit(&self) {
        bump(&self.cache_hits);
    }
    pub fn coalesced(&self) {
        bump(&self.coalesced);
    }
    pub fn download(&self) {
        bump(&self.downloads);
    }
    pub fn failure(&self) {
        bump(&self.failures);
    }
    pub fn retry(&self) {
        bump(&self.retries);
    }
    pub fn cancelled(&self) {
        bump(&self.cancelled);
    }
    pub fn snapshot(&self) -> FetchSnapshot {
        FetchSnapshot {
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            coalesced: self.coalesced.load(Ordering::Relaxed),
            downloads: self.downloads.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            cancelled: self.cancelled.load(Ordering::Relaxed),
        }
    }
}

/// Where the resolver found each file's meta.
#[derive(Debug, Default)]
pub struct ResolveCounters {
    memory_hits: AtomicU64,
    store_hits: AtomicU64,
    telegram_lookups: AtomicU64,
    negative_hits: AtomicU64,
}

/// A reading of [`ResolveCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveSnapshot {
    pub memory_hits: u64,
    /// Found in sled (after a restart, or evicted from memory).
    pub store_hits: u64,
    /// Asked Telegram (`channels.getMessages`).
    pub telegram_lookups: u64,
    /// Answered "no such file" from the negative cache, without Telegram.
    #[serde(default)]
    pub negative_hits: u64,
}

impl ResolveCounters {
    pub fn memory_hit(&self) {
        bump(&self.memory_hits);
    }
    pub fn store_hit(&self) {
        bump(&self.store_hits);
    }
    pub fn telegram_lookup(&self) {
        bump(&self.telegram_lookups);
    }
    pub fn negative_hit(&self) {
        bump(&self.negative_hits);
    }
    pub fn snapshot(&self) -> ResolveSnapshot {
        ResolveSnapshot {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            store_hits: self.store_hits.load(Ordering::Relaxed),
            telegram_lookups: self.telegram_lookups.load(Ordering::Relaxed),
            negative_hits: self.negative_hits.load(Ordering::Relaxed),
        }
    }
}

/// One retry loop's failed Telegram attempts by class (`flood_wait`, `connection`,
/// `internal`…) and its requests given up by reason (`unavailable`, `flood_wait`…), keyed by
/// the labels the ports give them. A lock per failure is cheap: failures are rare next to
/// the parts that succeed, and nothing is held across an await.
#[derive(Debug, Default)]
pub struct RetryCounters {
    failures: Mutex<BTreeMap<&'static str, u64>>,
    give_ups: Mutex<BTreeMap<&'static str, u64>>,
}

/// A reading of [`RetryCounters`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrySnapshot {
    /// Failed attempts by class, each answered by the retry policy.
    pub failures: BTreeMap<String, u64>,
    /// Requests given up by reason.
    pub give_ups: BTreeMap<String, u64>,
}

impl RetrySnapshot {
    /// Failed attempts of every class.
    pub fn total_failures(&self) -> u64 {
        self.failures.values().sum()
    }
}

impl RetryCounters {
    pub fn failed(&self, class: &'static str) {
        *lock(&self.failures).entry(class).or_default() += 1;
    }

    pub fn gave_up(&self, reason: &'static str) {
        *lock(&self.give_ups).entry(reason).or_default() += 1;
    }

    pub fn snapshot(&self) -> RetrySnapshot {
        let owned = |map: &Mutex<BTreeMap<&'static str, u64>>| {
            lock(map)
                .iter()
                .map(|(label, count)| ((*label).to_owned(), *count))
                .collect()
        };
        RetrySnapshot {
            failures: owned(&self.failures),
            give_ups: owned(&self.give_ups),
        }
    }
}

/// A poisoned map still holds valid counts: only increments happen under these locks.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Chunk requests per data centre (the DC the file lives on).
#[derive(Debug, Default)]
pub struct DcCounters {
    requests: Mutex<BTreeMap<i32, u64>>,
}

impl DcCounters {
    pub fn request(&self, dc: i32) {
        *lock(&self.requests).entry(dc).or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<i32, u64> {
        lock(&self.requests).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_count_what_they_are_told() {
        let fetch = FetchCounters::default();
        fetch.cache_hit();
        fetch.coalesced();
        fetch.coalesced();
        fetch.download();
        assert_eq!(
            fetch.snapshot(),
            FetchSnapshot {
                cache_hits: 1,
                coalesced: 2,
                downloads: 1,
                failures: 0,
                retries: 0,
                cancelled: 0,
            }
        );
        let dcs = DcCounters::default();
        dcs.request(4);
        dcs.request(4);
        dcs.request(2);
        assert_eq!(dcs.snapshot(), BTreeMap::from([(2, 1), (4, 2)]));
    }

    #[test]
    fn retries_are_counted_by_class_and_give_ups_by_reason() {
        let retries = RetryCounters::default();
        retries.failed("internal");
        retries.failed("flood_wait");
        retries.failed("internal");
        retries.gave_up("unavailable");
        let snapshot = retries.snapshot();
        assert_eq!(
            snapshot.failures,
            BTreeMap::from([("flood_wait".to_owned(), 1), ("internal".to_owned(), 2)])
        );
        assert_eq!(
            snapshot.give_ups,
            BTreeMap::from([("unavailable".to_owned(), 1)])
        );
        assert_eq!(snapshot.total_failures(), 3);
    }
}
