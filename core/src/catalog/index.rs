//! What the indexer knows of a channel post, the events that change the catalogue, the
//! [`CatalogSink`] port that stores them, and the [`Indexer`] that applies the events of the
//! configured catalogue channels (`TGCDN_CATALOG_CHANNELS`) to it.
//!
//! Events come from two places: the main bot's update feed (new, edited and deleted channel
//! posts, live or caught up after a restart — `frontend/mod.rs` hands them over) and the
//! back-fill (`backfill.rs`). Applying one is a synchronous store write, so the update loop
//! applies it in line and commits its update state after, never losing a post to a crash.
//! Pure apart from the sink it is given; no grammers type, no Telegram call.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tgcdn_shared::FileRef;

pub use crate::ports::channel::{ChannelPost, IndexEvent};

/// Why the catalogue store could not apply an event.
#[derive(Debug, thiserror::Error)]
#[error("catalogue store: {0}")]
pub struct SinkError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// The port the catalogue store implements. Both calls are idempotent: storing the same
/// post twice or removing an unknown one changes nothing.
pub trait CatalogSink: Send + Sync {
    fn upsert(&self, post: ChannelPost) -> Result<(), SinkError>;
    fn remove(&self, file: FileRef) -> Result<(), SinkError>;
}

/// Where one channel's back-fill stands, for `/metrics`, `/reindex` and the logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillProgress {
    /// The next message id to fetch (0 when nothing is pending).
    pub next_id: i32,
    /// Message ids still to fetch.
    pub remaining: u64,
    pub batches: u64,
    pub posts: u64,
    pub flood_waits: u64,
    /// `pending`, `running`, `done` or `stopped: <why>`.
    pub status: String,
}

/// Counters of the indexer, relaxed atomics plus a small map per channel.
#[derive(Debug, Default)]
pub struct IndexStats {
    /// Posts stored or updated from live (or caught-up) updates.
    pub live_posts: AtomicU64,
    /// Posts removed (deleted, or no longer carrying a file).
    pub removed: AtomicU64,
    /// Posts stored by the back-fill.
    pub backfill_posts: AtomicU64,
    /// `channels.getMessages` batches the back-fill finished.
    pub backfill_batches: AtomicU64,
    pub flood_waits: AtomicU64,
    /// Events the sink refused (logged).
    pub errors: AtomicU64,
    progress: Mutex<BTreeMap<i64, BackfillProgress>>,
}

impl IndexStats {
    pub fn set_progress(&self, channel: i64, progress: BackfillProgress) {
        self.lock().insert(channel, progress);
    }

    /// Every channel's back-fill, by channel id.
    pub fn progress(&self) -> BTreeMap<i64, BackfillProgress> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i64, BackfillProgress>> {
        // Plain data: a panic elsewhere cannot leave it inconsistent.
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> IndexSnapshot {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        IndexSnapshot {
            posts_stored: 0,
            live_posts: get(&self.live_posts),
            removed: get(&self.removed),
            backfill_posts: get(&self.backfill_posts),
            backfill_batches: get(&self.backfill_batches),
            flood_waits: get(&self.flood_waits),
            errors: get(&self.errors),
            channels: self.progress(),
        }
    }
}

/// [`IndexStats`] at one moment, as the admin report carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexSnapshot {
    /// Posts in the store (filled in by the reporter).
    pub posts_stored: u64,
    pub live_posts: u64,
    pub removed: u64,
    pub backfill_posts: u64,
    pub backfill_batches: u64,
    pub flood_waits: u64,
    pub errors: u64,
    /// Back-fill per channel (Bot API id).
    pub channels: BTreeMap<i64, BackfillProgress>,
}

/// Applies the events of the catalogue channels to the sink; ignores every other channel.
pub struct Indexer {
    channels: BTreeSet<i64>,
    sink: Arc<dyn CatalogSink>,
    stats: Arc<IndexStats>,
}

/// Where an event came from, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Updates,
    Backfill,
}

impl Indexer {
    /// `channels` in Bot API form (`-100…`).
    pub fn new(channels: impl IntoIterator<Item = i64>, sink: Arc<dyn CatalogSink>) -> Self {
        Self {
            channels: channels.into_iter().collect(),
            sink,
            stats: Arc::new(IndexStats::default()),
        }
    }

    pub fn channels(&self) -> impl Iterator<Item = i64> + '_ {
        self.channels.iter().copied()
    }

    /// Whether `channel` (Bot API id) is catalogued.
    pub fn wants(&self, channel: i64) -> bool {
        self.channels.contains(&channel)
    }

    pub fn stats(&self) -> &Arc<IndexStats> {
        &self.stats
    }

    /// Applies `event` if its channel is catalogued; returns whether it was. A store error
    /// is counted and returned.
    pub fn apply(&self, event: IndexEvent, source: Source) -> Result<bool, SinkError> {
        if !self.wants(event.channel()) {
            return Ok(false);
        }
        let result = self.apply_to_sink(event, source);
        if result.is_err() {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        result.map(|()| true)
    }

    fn apply_to_sink(&self, event: IndexEvent, source: Source) -> Result<(), SinkError> {
        match event {
            IndexEvent::Post(post) => {
                self.sink.upsert(post)?;
                let counter = match source {
                    Source::Updates => &self.stats.live_posts,
                    Source::Backfill => &self.stats.backfill_posts,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            IndexEvent::NotAPost(file) => self.sink.remove(file)?,
            IndexEvent::Deleted { channel, msg_ids } => {
                for msg_id in msg_ids {
                    self.sink.remove(FileRef {
                        chat_id: channel,
                        msg_id,
                    })?;
                    self.stats.removed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<BTreeMap<FileRef, ChannelPost>>);

    impl CatalogSink for Recorder {
        fn upsert(&self, post: ChannelPost) -> Result<(), SinkError> {
            self.0.lock().unwrap().insert(post.file, post);
            Ok(())
        }
        fn remove(&self, file: FileRef) -> Result<(), SinkError> {
            self.0.lock().unwrap().remove(&file);
            Ok(())
        }
    }

    fn post(channel: i64, msg_id: i32, caption: &str) -> ChannelPost {
        ChannelPost {
            file: FileRef {
                chat_id: channel,
                msg_id,
            },
            file_name: Some("Film.2020.1080p.mkv".into()),
            caption: Some(caption.into()),
            size: 5,
            mime: "video/x-matroska".into(),
            date: 1,
        }
    }

    #[test]
    fn only_catalogue_channels_reach_the_sink_and_events_are_idempotent() {
        let sink = Arc::new(Recorder::default());
        let indexer = Indexer::new([-1001], sink.clone());
        assert!(
            !indexer
                .apply(IndexEvent::Post(post(-1002, 1, "x")), Source::Updates)
                .unwrap()
        );
        assert!(
            indexer
                .apply(IndexEvent::Post(post(-1001, 1, "a")), Source::Updates)
                .unwrap()
        );
        indexer
            .apply(IndexEvent::Post(post(-1001, 1, "a")), Source::Backfill)
            .unwrap();
        indexer
            .apply(IndexEvent::Post(post(-1001, 2, "b")), Source::Updates)
            .unwrap();
        assert_eq!(sink.0.lock().unwrap().len(), 2);
        indexer
            .apply(IndexEvent::Post(post(-1001, 1, "edited")), Source::Updates)
            .unwrap();
        let file = post(-1001, 1, "").file;
        assert_eq!(
            sink.0.lock().unwrap()[&file].caption.as_deref(),
            Some("edited")
        );
        indexer
            .apply(
                IndexEvent::Deleted {
                    channel: -1001,
                    msg_ids: vec![1, 7],
                },
                Source::Updates,
            )
            .unwrap();
        indexer
            .apply(
                IndexEvent::NotAPost(post(-1001, 2, "").file),
                Source::Updates,
            )
            .unwrap();
        assert!(sink.0.lock().unwrap().is_empty());
        let stats = indexer.stats().snapshot();
        assert_eq!(
            (stats.live_posts, stats.backfill_posts, stats.removed),
            (3, 1, 2)
        );
    }
}
