//! The back-fill: posts a catalogue channel had before tgcdn joined it (or while the core
//! was down before the channel was in the bot's update state). Bots cannot call
//! `messages.getHistory`, so the walk goes down message ids from the channel's newest one
//! with `channels.getMessages`, up to 200 ids per call.
//!
//! * [`Walk`] — pure: which id ranges are still to fetch, the next batch, what a newer top
//!   adds. Persisted per channel in sled tree `catalog_backfill` after every batch, so a
//!   restart resumes where the last finished batch ended and never asks for it again;
//! * [`ChannelReader`] — the port a bot implements (`telegram/channel.rs`), defined in
//!   `ports::channel`: the newest message id of a channel, and a batch of messages as
//!   [`IndexEvent`]s;
//! * [`Backfiller`] — the task: channels one at a time, a configurable pause between
//!   calls, FLOOD_WAIT slept as told; a bot that cannot read a channel is skipped for that
//!   channel only (the next reader is tried; with none left the channel's back-fill stops
//!   with a log line). Bot health is never touched here. [`BackfillHandle::reindex`] queues
//!   a full walk (the admin endpoint and `/reindex`).
//!
//! At start every channel is probed once: one that was never walked gets a full walk, one
//! whose newest id grew beyond what was walked gets that gap walked (posts that arrived
//! while no update state covered it). Re-walking posts is harmless: the sink is idempotent.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::index::{BackfillProgress, IndexEvent, IndexStats, Indexer, Source};
use crate::ports::BoxFuture;
use crate::ports::TelegramError;
pub use crate::ports::channel::{ChannelReader, MAX_BATCH};
use crate::store::{Store, StoreError, get, put};

/// Name of the tree: channel (Bot API id) → [`Walk`].
pub const TREE: &str = "catalog_backfill";
/// Transient failures (timeouts, lost connections) tolerated per call before the next
/// reader is tried.
const TRANSIENT_RETRIES: u32 = 3;
const TRANSIENT_PAUSE: Duration = Duration::from_secs(2);
/// Reindex requests waiting at most; more are refused as busy.
const REQUEST_QUEUE: usize = 16;

/// One channel's walk: id ranges still to fetch and what was covered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Walk {
    /// The highest message id a walk was ever planned from.
    pub covered_top: i32,
    /// Ranges still to fetch, newest first: `(floor, next)` = ids `next` down to `floor + 1`.
    pub pending: Vec<(i32, i32)>,
    pub batches: u64,
    pub posts: u64,
}

impl Walk {
    /// What a newest id of `top` adds: for a reindex every id up to it, otherwise the ids
    /// above what was already covered (nothing when the top did not grow).
    pub fn plan(mut self, top: i32, reindex: bool) -> Walk {
        if reindex {
            self.pending = vec![(0, top)];
            self.covered_top = self.covered_top.max(top);
        } else if top > self.covered_top {
            self.pending.insert(0, (self.covered_top, top));
            self.covered_top = top;
        }
        self.pending.retain(|(floor, next)| next > floor);
        self
    }

    /// The next ids to fetch, newest first, at most `max`.
    pub fn next_batch(&self, max: usize) -> Option<Vec<i32>> {
        let &(floor, next) = self.pending.first()?;
        let max = i32::try_from(max.clamp(1, MAX_BATCH)).unwrap_or(1);
        let lowest = (next - max + 1).max(floor + 1);
        Some((lowest..=next).rev().collect())
    }

    /// Records that every id down to `lowest` of the first range was fetched.
    pub fn advance(&mut self, lowest: i32, posts: u64) {
        if let Some(first) = self.pending.first_mut() {
            first.1 = first.1.min(lowest - 1);
            if first.1 <= first.0 {
                self.pending.remove(0);
            }
        }
        self.batches += 1;
        self.posts += posts;
    }

    /// Message ids still to fetch.
    pub fn remaining(&self) -> u64 {
        self.pending
            .iter()
            .map(|(floor, next)| u64::try_from(next - floor).unwrap_or(0))
            .sum()
    }

    pub fn next_id(&self) -> i32 {
        self.pending.first().map_or(0, |(_, next)| *next)
    }
}

/// Tunables of the back-fill.
#[derive(Debug, Clone)]
pub struct BackfillConfig {
    /// Ids per `channels.getMessages`, 1..=200.
    pub batch: usize,
    /// Pause between two calls, to stay under FLOOD_WAIT.
    pub pause: Duration,
    /// Deadline of one call.
    pub call_timeout: Duration,
}

impl Default for BackfillConfig {
    fn default() -> Self {
        Self {
            batch: MAX_BATCH,
            pause: Duration::from_millis(500),
            call_timeout: Duration::from_secs(20),
        }
    }
}

/// Why a re-index request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReindexError {
    #[error("channel {0} is not a catalogue channel")]
    UnknownChannel(i64),
    #[error("too many re-index requests are waiting; try again later")]
    Busy,
    #[error("the back-fill task has stopped")]
    Stopped,
}

/// Asks the running back-fill for a full walk and reads its progress. Cheap to clone.
#[derive(Clone)]
pub struct BackfillHandle {
    requests: mpsc::Sender<i64>,
    channels: Vec<i64>,
    stats: Arc<IndexStats>,
}

impl BackfillHandle {
    /// Queues a full walk of `channel`, or of every catalogue channel; returns the
    /// channels queued.
    pub fn reindex(&self, channel: Option<i64>) -> Result<Vec<i64>, ReindexError> {
        let channels = match channel {
            Some(channel) if !self.channels.contains(&channel) => {
                return Err(ReindexError::UnknownChannel(channel));
            }
            Some(channel) => vec![channel],
            None => self.channels.clone(),
        };
        for &channel in &channels {
            self.requests
                .try_send(channel)
                .map_err(|error| match error {
                    mpsc::error::TrySendError::Full(_) => ReindexError::Busy,
                    mpsc::error::TrySendError::Closed(_) => ReindexError::Stopped,
                })?;
        }
        Ok(channels)
    }

    pub fn progress(&self) -> BTreeMap<i64, BackfillProgress> {
        self.stats.progress()
    }
}

/// Why a channel's walk ended early.
enum Halt {
    /// The core is shutting down; the walk resumes at the next start.
    Shutdown,
    /// No reader can read the channel, or its walk cannot be saved: why.
    Stopped(String),
}

/// The back-fill task over a set of readers (tried in order for each channel).
pub struct Backfiller {
    readers: Vec<Arc<dyn ChannelReader>>,
    indexer: Arc<Indexer>,
    store: Store,
    tree: sled::Tree,
    config: BackfillConfig,
    requests: mpsc::Sender<i64>,
    receiver: mpsc::Receiver<i64>,
}

impl Backfiller {
    pub fn new(
        readers: Vec<Arc<dyn ChannelReader>>,
        indexer: Arc<Indexer>,
        store: Store,
        config: BackfillConfig,
    ) -> Result<Self, StoreError> {
        let (requests, receiver) = mpsc::channel(REQUEST_QUEUE);
        Ok(Self {
            readers,
            tree: store.tree(TREE)?,
            indexer,
            store,
            config,
            requests,
            receiver,
        })
    }

    /// The handle re-index requests go through; usable before [`Self::spawn`] (they wait).
    pub fn handle(&self) -> BackfillHandle {
        BackfillHandle {
            requests: self.requests.clone(),
            channels: self.indexer.channels().collect(),
            stats: Arc::clone(self.indexer.stats()),
        }
    }

    /// The persisted walk of `channel`, if it was ever planned.
    pub fn walk(&self, channel: i64) -> Result<Option<Walk>, StoreError> {
        get(&self.tree, TREE, &channel_key(channel))
    }

    /// Starts the task: first a probe (and the walk it calls for) of every catalogue
    /// channel, then re-index requests, until `stopped` turns true.
    pub fn spawn(self, stopped: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(
            self.run(stopped)
                .instrument(tracing::info_span!("backfill")),
        )
    }

    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        // Our own sender goes, so the loop ends once every handle is dropped too.
        let (closed, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.requests, closed));
        let mut requests = std::mem::replace(&mut self.receiver, mpsc::channel(1).1);
        let mut queue: VecDeque<(i64, bool)> =
            self.indexer.channels().map(|c| (c, false)).collect();
        for &(channel, _) in &queue {
            self.publish(
                channel,
                &self.walk(channel).ok().flatten().unwrap_or_default(),
                "pending",
            );
        }
        loop {
            while let Ok(channel) = requests.try_recv() {
                enqueue(&mut queue, channel);
            }
            let Some((channel, reindex)) = queue.pop_front() else {
                let request = tokio::select! {
                    request = requests.recv() => request,
                    _ = stopped.wait_for(|stop| *stop) => return,
                };
                match request {
                    Some(channel) => enqueue(&mut queue, channel),
                    // Nobody can ask any more; idle until the core stops.
                    None => {
                        let _ = stopped.wait_for(|stop| *stop).await;
                        return;
                    }
                }
                continue;
            };
            match self.run_channel(channel, reindex, &mut stopped).await {
                Ok(()) => {}
                Err(Halt::Shutdown) => return,
                Err(Halt::Stopped(why)) => {
                    tracing::error!(
                        channel,
                        %why,
                        "this catalogue channel's back-fill stopped (fix the cause, then /reindex)"
                    );
                    let walk = self.walk(channel).ok().flatten().unwrap_or_default();
                    self.publish(channel, &walk, &format!("stopped: {why}"));
                }
            }
        }
    }

    async fn run_channel(
        &self,
        channel: i64,
        reindex: bool,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<(), Halt> {
        let mut reader = 0;
        let walk = self.walk(channel).map_err(store_halt)?.unwrap_or_default();
        let top = self
            .call(channel, &mut reader, stopped, |r, deadline| {
                r.newest_message_id(channel, deadline)
            })
            .await?;
        let mut walk = walk.plan(top, reindex);
        self.save(channel, &walk).await?;
        if walk.pending.is_empty() {
            self.publish(channel, &walk, "done");
            return Ok(());
        }
        tracing::info!(
            channel,
            top,
            remaining = walk.remaining(),
            reindex,
            "back-fill started"
        );
        while let Some(ids) = walk.next_batch(self.config.batch) {
            self.publish(channel, &walk, "running");
            if *stopped.borrow() {
                return Err(Halt::Shutdown);
            }
            let lowest = ids.last().copied().unwrap_or(1);
            let events = self
                .call(channel, &mut reader, stopped, |r, deadline| {
                    r.read_messages(channel, ids.clone(), deadline)
                })
                .await?;
            let mut posts = 0;
            for event in events {
                let is_post = matches!(event, IndexEvent::Post(_));
                match self.indexer.apply(event, Source::Backfill) {
                    Ok(_) => posts += u64::from(is_post),
                    Err(error) => tracing::warn!(channel, %error, "storing a post failed"),
                }
            }
            walk.advance(lowest, posts);
            self.save(channel, &walk).await?;
            self.indexer
                .stats()
                .backfill_batches
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                channel,
                lowest,
                posts,
                remaining = walk.remaining(),
                "batch done"
            );
            if walk.batches % 10 == 0 {
                tracing::info!(
                    channel,
                    next_id = walk.next_id(),
                    remaining = walk.remaining(),
                    posts = walk.posts,
                    "back-fill progress"
                );
            }
            if !walk.pending.is_empty() && self.pause(self.config.pause, stopped).await {
                return Err(Halt::Shutdown);
            }
        }
        self.publish(channel, &walk, "done");
        tracing::info!(
            channel,
            batches = walk.batches,
            posts = walk.posts,
            "back-fill done"
        );
        Ok(())
    }

    /// One call through the current reader: FLOOD_WAIT slept and retried, transient errors
    /// retried a few times, a reader that cannot read the channel (or keeps failing)
    /// replaced by the next one for this channel only.
    async fn call<T>(
        &self,
        channel: i64,
        reader: &mut usize,
        stopped: &mut watch::Receiver<bool>,
        op: impl Fn(Arc<dyn ChannelReader>, Instant) -> BoxFuture<'static, Result<T, TelegramError>>,
    ) -> Result<T, Halt> {
        let mut transient = 0;
        let mut last_error = String::from("no bot configured");
        while let Some(current) = self.readers.get(*reader) {
            let deadline = Instant::now() + self.config.call_timeout;
            let error = match op(Arc::clone(current), deadline).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let bot_id = current.reader_id();
            match error {
                TelegramError::FloodWait { secs } => {
                    self.indexer
                        .stats()
                        .flood_waits
                        .fetch_add(1, Ordering::Relaxed);
                    self.indexer.stats().set_progress(channel, {
                        let mut progress = self.progress(channel);
                        progress.flood_waits += 1;
                        progress
                    });
                    tracing::warn!(
                        channel,
                        bot_id,
                        secs,
                        "FLOOD_WAIT during the back-fill; sleeping as told"
                    );
                    if self
                        .pause(Duration::from_secs(u64::from(secs)), stopped)
                        .await
                    {
                        return Err(Halt::Shutdown);
                    }
                    continue;
                }
                TelegramError::Timeout
                | TelegramError::ConnectionLost(_)
                | TelegramError::Internal(_)
                    if transient < TRANSIENT_RETRIES =>
                {
                    transient += 1;
                    tracing::warn!(channel, bot_id, %error, "back-fill call failed; retrying");
                    if self.pause(TRANSIENT_PAUSE, stopped).await {
                        return Err(Halt::Shutdown);
                    }
                    continue;
                }
                error => {
                    tracing::warn!(channel, bot_id, %error, "this bot cannot back-fill the channel; trying the next bot");
                    last_error = format!("bot {bot_id}: {error}");
                    transient = 0;
                    *reader += 1;
                }
            }
        }
        Err(Halt::Stopped(format!(
            "no bot can read the channel ({last_error})"
        )))
    }

    /// Sleeps `duration` unless the core stops first; returns whether it stopped.
    async fn pause(&self, duration: Duration, stopped: &mut watch::Receiver<bool>) -> bool {
        let woken = tokio::select! {
            () = tokio::time::sleep(duration) => false,
            _ = stopped.wait_for(|stop| *stop) => true,
        };
        woken || *stopped.borrow()
    }

    async fn save(&self, channel: i64, walk: &Walk) -> Result<(), Halt> {
        put(&self.tree, TREE, &channel_key(channel), walk).map_err(store_halt)?;
        self.store.flush().await.map_err(store_halt)
    }

    fn progress(&self, channel: i64) -> BackfillProgress {
        self.indexer
            .stats()
            .progress()
            .remove(&channel)
            .unwrap_or_default()
    }

    fn publish(&self, channel: i64, walk: &Walk, status: &str) {
        let flood_waits = self.progress(channel).flood_waits;
        self.indexer.stats().set_progress(
            channel,
            BackfillProgress {
                next_id: walk.next_id(),
                remaining: walk.remaining(),
                batches: walk.batches,
                posts: walk.posts,
                flood_waits,
                status: status.to_owned(),
            },
        );
    }
}

fn enqueue(queue: &mut VecDeque<(i64, bool)>, channel: i64) {
    match queue.iter_mut().find(|(queued, _)| *queued == channel) {
        Some(entry) => entry.1 = true,
        None => queue.push_back((channel, true)),
    }
}

/// A store failure ends this channel's walk: going on would repeat batches after a restart.
fn store_halt(error: StoreError) -> Halt {
    Halt::Stopped(format!("database: {error}"))
}

fn channel_key(channel: i64) -> [u8; 8] {
    ((channel as u64) ^ (1 << 63)).to_be_bytes()
}

#[cfg(test)]
#[path = "backfill_tests.rs"]
mod tests;
