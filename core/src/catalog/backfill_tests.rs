//! The back-fill against scripted readers: batches walk down without repeats, a restart
//! resumes after the last finished batch, FLOOD_WAIT is slept and retried, a reader that
//! cannot read a channel hands it to the next one, and with none left the channel stops.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tgcdn_shared::FileRef;

use super::*;
use crate::catalog::index::{ChannelPost, IndexEvent};
use crate::catalog::posts::PostStore;

const CHANNEL: i64 = -1_000_000_000_777;

/// A channel of `top` messages where even ids carry a file; failures scripted per call.
struct Reader {
    id: i64,
    top: i32,
    calls: Mutex<Vec<Vec<i32>>>,
    /// Errors returned by the next calls, in order.
    failures: Mutex<Vec<TelegramError>>,
    /// Stop answering after this many read calls (simulates a kill mid-walk).
    limit: Option<usize>,
}

impl Reader {
    fn new(id: i64, top: i32) -> Arc<Self> {
        Arc::new(Self {
            id,
            top,
            calls: Mutex::default(),
            failures: Mutex::default(),
            limit: None,
        })
    }

    fn failing(self: Arc<Self>, errors: Vec<TelegramError>) -> Arc<Self> {
        *self.failures.lock().unwrap() = errors;
        self
    }

    fn calls(&self) -> Vec<Vec<i32>> {
        self.calls.lock().unwrap().clone()
    }

    fn next_failure(&self) -> Option<TelegramError> {
        let mut failures = self.failures.lock().unwrap();
        (!failures.is_empty()).then(|| failures.remove(0))
    }
}

impl ChannelReader for Reader {
    fn reader_id(&self) -> i64 {
        self.id
    }

    fn newest_message_id(
        self: Arc<Self>,
        _channel: i64,
        _deadline: Instant,
    ) -> BoxFuture<'static, Result<i32, TelegramError>> {
        Box::pin(async move {
            match self.next_failure() {
                Some(error) => Err(error),
                None => Ok(self.top),
            }
        })
    }

    fn read_messages(
        self: Arc<Self>,
        channel: i64,
        ids: Vec<i32>,
        _deadline: Instant,
    ) -> BoxFuture<'static, Result<Vec<IndexEvent>, TelegramError>> {
        Box::pin(async move {
            if let Some(error) = self.next_failure() {
                return Err(error);
            }
            if self.limit.is_some_and(|limit| self.calls().len() >= limit) {
                return std::future::pending().await;
            }
            self.calls.lock().unwrap().push(ids.clone());
            Ok(ids
                .into_iter()
                .map(|msg_id| {
                    let file = FileRef {
                        chat_id: channel,
                        msg_id,
                    };
                    if msg_id % 2 == 0 && msg_id <= self.top {
                        IndexEvent::Post(ChannelPost {
                            file,
                            file_name: Some(format!("Film.{msg_id}.mkv")),
                            caption: None,
                            size: 1,
                            mime: "video/x-matroska".into(),
                            date: 0,
                        })
                    } else {
                        IndexEvent::NotAPost(file)
                    }
                })
                .collect())
        })
    }
}

struct Setup {
    store: Store,
    posts: PostStore,
    indexer: Arc<Indexer>,
}

fn setup() -> Setup {
    let store = Store::temporary().unwrap();
    let posts = PostStore::open(&store).unwrap();
    let indexer = Arc::new(Indexer::new([CHANNEL], Arc::new(posts.clone())));
    Setup {
        store,
        posts,
        indexer,
    }
}

fn config(batch: usize) -> BackfillConfig {
    BackfillConfig {
        batch,
        pause: Duration::ZERO,
        call_timeout: Duration::from_secs(5),
    }
}

impl Setup {
    fn backfiller(&self, readers: Vec<Arc<dyn ChannelReader>>, batch: usize) -> Backfiller {
        Backfiller::new(
            readers,
            Arc::clone(&self.indexer),
            self.store.clone(),
            config(batch),
        )
        .unwrap()
    }

    /// Runs the task until `CHANNEL` reports a final status, then stops it.
    async fn run_until_settled(&self, backfiller: Backfiller) -> BackfillProgress {
        let (stop, stopped) = watch::channel(false);
        let task = backfiller.spawn(stopped);
        let progress = self.settled().await;
        let _ = stop.send(true);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        progress
    }

    async fn settled(&self) -> BackfillProgress {
        let started = Instant::now();
        loop {
            let progress = self.indexer.stats().progress().remove(&CHANNEL);
            if let Some(p) =
                progress.filter(|p| p.status == "done" || p.status.starts_with("stopped"))
            {
                return p;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "back-fill never settled"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[test]
fn walks_plan_batches_downwards_and_only_add_what_a_newer_top_brings() {
    let walk = Walk::default().plan(10, false);
    assert_eq!(walk.next_batch(4), Some(vec![10, 9, 8, 7]));
    let mut walk = walk;
    walk.advance(7, 2);
    assert_eq!(walk.next_batch(4), Some(vec![6, 5, 4, 3]));
    walk.advance(3, 2);
    assert_eq!(walk.next_batch(4), Some(vec![2, 1]));
    walk.advance(1, 1);
    assert_eq!(walk.next_batch(4), None);
    assert_eq!((walk.batches, walk.posts, walk.remaining()), (3, 5, 0));
    // The same top adds nothing; a higher one adds only the gap; a reindex adds everything.
    assert!(walk.clone().plan(10, false).pending.is_empty());
    assert_eq!(walk.clone().plan(13, false).pending, vec![(10, 13)]);
    assert_eq!(walk.clone().plan(13, true).pending, vec![(0, 13)]);
    // An empty channel needs nothing; a batch never exceeds Telegram's 200.
    assert!(Walk::default().plan(0, true).pending.is_empty());
    assert_eq!(
        Walk::default()
            .plan(1000, false)
            .next_batch(5000)
            .unwrap()
            .len(),
        200
    );
}

#[tokio::test]
async fn a_walk_indexes_every_post_once_and_a_restart_resumes_without_repeats() {
    let setup = setup();
    // First run: the reader hangs after 2 batches, as if the core were killed mid-walk.
    let first = Arc::new(Reader {
        limit: Some(2),
        ..Arc::into_inner(Reader::new(1, 23)).unwrap()
    });
    let (stop, stopped) = watch::channel(false);
    let task = setup.backfiller(vec![first.clone()], 5).spawn(stopped);
    // The progress names message 13 next once the second batch is saved.
    let started = Instant::now();
    while setup
        .indexer
        .stats()
        .progress()
        .get(&CHANNEL)
        .map(|p| p.next_id)
        != Some(13)
    {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = stop.send(true);
    task.abort();
    let _ = task.await;
    assert_eq!(
        first.calls(),
        vec![
            (19..=23).rev().collect::<Vec<_>>(),
            (14..=18).rev().collect()
        ]
    );

    let second = Reader::new(1, 23);
    let progress = setup
        .run_until_settled(setup.backfiller(vec![second.clone()], 5))
        .await;
    assert_eq!(progress.status, "done");
    assert_eq!(
        second.calls(),
        vec![
            (9..=13).rev().collect::<Vec<_>>(),
            (4..=8).rev().collect(),
            vec![3, 2, 1]
        ],
        "finished batches are not fetched again"
    );
    let ids: Vec<i32> = setup
        .posts
        .all()
        .unwrap()
        .iter()
        .map(|p| p.file.msg_id)
        .collect();
    assert_eq!(ids, (1..=23).filter(|id| id % 2 == 0).collect::<Vec<_>>());
    assert_eq!(progress.remaining, 0);

    // A third start with the same top walks nothing.
    let third = Reader::new(1, 23);
    setup
        .run_until_settled(setup.backfiller(vec![third.clone()], 5))
        .await;
    assert!(third.calls().is_empty());
}

#[tokio::test]
async fn flood_waits_are_slept_and_a_bot_that_cannot_read_hands_over_the_channel() {
    let setup = setup();
    let outsider = Reader::new(1, 6).failing(vec![TelegramError::ChannelPrivate]);
    let member = Reader::new(2, 6).failing(vec![
        // Its first call meets a flood wait (of 0 s, to keep the test short).
        TelegramError::FloodWait { secs: 0 },
    ]);
    let progress = setup
        .run_until_settled(setup.backfiller(vec![outsider.clone(), member.clone()], 200))
        .await;
    assert_eq!(progress.status, "done");
    assert_eq!(progress.flood_waits, 1);
    assert!(outsider.calls().is_empty());
    assert_eq!(member.calls(), vec![vec![6, 5, 4, 3, 2, 1]]);
    assert_eq!(setup.posts.len(), 3);
    assert_eq!(setup.indexer.stats().snapshot().flood_waits, 1);
}

#[tokio::test]
async fn with_no_bot_able_to_read_the_channel_its_back_fill_stops_with_the_reason() {
    let setup = setup();
    let outsider = Reader::new(9, 6).failing(vec![TelegramError::ChannelPrivate]);
    let progress = setup
        .run_until_settled(setup.backfiller(vec![outsider], 200))
        .await;
    assert!(progress.status.starts_with("stopped"), "{progress:?}");
    assert!(progress.status.contains("bot 9"), "{progress:?}");
    assert!(setup.posts.is_empty());
}

#[tokio::test]
async fn reindex_requests_walk_again_and_unknown_channels_are_refused() {
    let setup = setup();
    let reader = Reader::new(1, 4);
    let (stop, stopped) = watch::channel(false);
    let backfiller = setup.backfiller(vec![reader.clone()], 200);
    let handle = backfiller.handle();
    let task = backfiller.spawn(stopped);
    setup.settled().await;
    assert_eq!(reader.calls().len(), 1);
    assert_eq!(
        handle.reindex(Some(-100)),
        Err(ReindexError::UnknownChannel(-100))
    );
    assert_eq!(handle.reindex(None), Ok(vec![CHANNEL]));
    let started = Instant::now();
    while reader.calls().len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(reader.calls()[1], vec![4, 3, 2, 1]);
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    let _: BTreeMap<i64, BackfillProgress> = handle.progress();
}
