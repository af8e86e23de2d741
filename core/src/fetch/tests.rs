//! Tests of [`super::Fetcher`] against a scripted fake Telegram: bytes, coalescing, cancelled
//! callers, flood waits, stale references, timeouts, and counters back at zero afterwards.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::bots::select::Health;

const MIB: u64 = 1 << 20;
const FILE: FileRef = FileRef {
    chat_id: -1_000_000_000_001,
    msg_id: 7,
};

fn byte_at(offset: u64) -> u8 {
    (offset.wrapping_mul(31) >> 3) as u8
}

fn content(offset: u64, len: usize) -> Bytes {
    (0..len as u64).map(|i| byte_at(offset + i)).collect()
}

/// What the fake does for one call.
#[derive(Clone)]
enum Step {
    Serve,
    Fail(TelegramError),
    Hang,
}

struct FakeBot {
    file_size: u64,
    script: Mutex<VecDeque<Step>>,
    calls: AtomicUsize,
    refreshes: AtomicUsize,
    delay: Duration,
    /// When set, each part waits for a permit here before it is served, so a test can
    /// hold a download in progress for as long as it needs.
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl FakeBot {
    fn new(file_size: u64, script: Vec<Step>) -> Arc<Self> {
        Arc::new(Self {
            file_size,
            script: Mutex::new(script.into()),
            calls: AtomicUsize::new(0),
            refreshes: AtomicUsize::new(0),
            delay: Duration::from_millis(20),
            gate: None,
        })
    }

    /// A bot whose parts are served only as the returned gate gets permits.
    fn gated(file_size: u64) -> (Arc<Self>, Arc<tokio::sync::Semaphore>) {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let bot = Arc::new(Self {
            file_size,
            script: Mutex::new(VecDeque::new()),
            calls: AtomicUsize::new(0),
            refreshes: AtomicUsize::new(0),
            delay: Duration::ZERO,
            gate: Some(Arc::clone(&gate)),
        });
        (bot, gate)
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl PartDownloader for FakeBot {
    fn download_part(
        self: Arc<Self>,
        _connection: usize,
        _file: FileRef,
        part: PartRequest,
        refresh: bool,
        _deadline: Instant,
    ) -> BoxFuture<'static, Result<Bytes, TelegramError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if refresh {
                self.refreshes.fetch_add(1, Ordering::SeqCst);
            }
            let step = self
                .script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Step::Serve);
            tokio::time::sleep(self.delay).await;
            if let Some(gate) = &self.gate {
                gate.acquire()
                    .await
                    .expect("the gate is never closed")
                    .forget();
            }
            match step {
                Step::Serve => {
                    let len = self
                        .file_size
                        .saturating_sub(part.offset)
                        .min(part.limit as u64);
                    Ok(content(part.offset, len as usize))
                }
                Step::Fail(error) => Err(error),
                Step::Hang => std::future::pending().await,
            }
        })
    }
}

fn fetcher(bots: &[Arc<FakeBot>], config: FetchConfig) -> Arc<Fetcher> {
    let ids: Vec<(i64, usize)> = (0..bots.len()).map(|i| (i as i64 + 1, 2)).collect();
    let downloaders = bots
        .iter()
        .map(|b| Arc::clone(b) as Arc<dyn PartDownloader>)
        .collect();
    Fetcher::new(Arc::new(BotPool::new(&ids)), downloaders, config)
}

fn quick() -> FetchConfig {
    FetchConfig {
        attempt_timeout: Duration::from_millis(300),
        total_timeout: Duration::from_secs(5),
        ..FetchConfig::default()
    }
}

fn assert_idle(fetcher: &Fetcher) {
    for report in fetcher.pool().report(Instant::now()) {
        assert_eq!(report.load.in_flight, 0, "bot {} still counted", report.id);
    }
}

/// A bound against hangs, never a pass/fail criterion: generous, because `.ci/stress` runs
/// these on a busy machine beside a CPU hog.
async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test future took too long")
}

#[tokio::test]
async fn chunks_are_byte_exact_including_the_short_last_one() {
    let size = 2 * MIB + 700 * 1024 + 5;
    let bot = FakeBot::new(size, vec![]);
    let fetcher = fetcher(&[Arc::clone(&bot)], quick());
    for index in 0..3 {
        let chunk = bounded(fetcher.chunk(FILE, size, index)).await.unwrap();
        let start = index * MIB;
        let len = (size - start).min(MIB) as usize;
        assert_eq!(chunk, content(start, len), "chunk {index}");
    }
    // Two halves for the full chunks, two for the last (700 KiB + 5 spans both halves).
    assert_eq!(bot.calls(), 6);
    assert_eq!(
        bounded(fetcher.chunk(FILE, size, 3)).await,
        Err(FetchError::NotFound)
    );
    assert_idle(&fetcher);
}

#[tokio::test]
async fn concurrent_requests_share_one_download_and_the_cache_answers_later() {
    let size = 4 * MIB;
    let bot = FakeBot::new(size, vec![]);
    let fetcher = fetcher(&[Arc::clone(&bot)], quick());
    let mut waiters = JoinSet::new();
    for _ in 0..10 {
        let fetcher = Arc::clone(&fetcher);
        waiters.spawn(async move { fetcher.chunk(FILE, size, 1).await });
    }
    while let Some(result) = bounded(waiters.join_next()).await {
        assert_eq!(result.unwrap().unwrap(), content(MIB, MIB as usize));
    }
    assert_eq!(bot.calls(), 2);
    bounded(fetcher.chunk(FILE, size, 1)).await.unwrap();
    assert_eq!(bot.calls(), 2, "the second-tier cache should answer");
}

#[tokio::test]
async fn a_cancelled_first_caller_does_not_abort_the_download_a_second_waits_for() {
    let size = 2 * MIB;
    let (bot, gate) = FakeBot::gated(size);
    // No attempt may time out while the gate holds it: a retry would count as a new call.
    let patient = FetchConfig {
        attempt_timeout: Duration::from_secs(8),
        total_timeout: Duration::from_secs(9),
        ..quick()
    };
    let fetcher = fetcher(&[Arc::clone(&bot)], patient);
    let spawn_chunk = || {
        let fetcher = Arc::clone(&fetcher);
        tokio::spawn(async move { fetcher.chunk(FILE, size, 0).await })
    };
    let first = spawn_chunk();
    // The download is in progress (and held there by the gate) once a part reached the bot.
    bounded(async {
        while bot.calls() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let second = spawn_chunk();
    bounded(async {
        while fetcher.counters().coalesced == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    first.abort();
    assert!(bounded(first).await.unwrap_err().is_cancelled());
    gate.add_permits(16);
    let chunk = bounded(second).await.unwrap().unwrap();
    assert_eq!(chunk, content(0, MIB as usize));
    assert_eq!(
        bot.calls(),
        2,
        "the download outlived its first caller and the second caller used it"
    );
    assert_eq!(fetcher.counters().cancelled, 0);
}

#[tokio::test]
async fn a_download_nobody_waits_for_stops_before_its_parts_are_requested() {
    let size = 4 * MIB;
    let (bot, gate) = FakeBot::gated(size);
    let patient = FetchConfig {
        attempt_timeout: Duration::from_secs(8),
        total_timeout: Duration::from_secs(9),
        // One part per connection (two with a chunk's two halves): chunks 0 and 1 fill both
        // connections of the bot, so chunk 2 waits for a slot.
        parts_per_connection: 1,
        cache_bytes: 0,
        ..quick()
    };
    let fetcher = fetcher(&[Arc::clone(&bot)], patient);
    let spawn_chunk = |index| {
        let fetcher = Arc::clone(&fetcher);
        tokio::spawn(async move { fetcher.chunk(FILE, size, index).await })
    };
    let held = [spawn_chunk(0), spawn_chunk(1)];
    bounded(async {
        while bot.calls() < 4 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let abandoned = spawn_chunk(2);
    bounded(async {
        while fetcher.counters().downloads < 3 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    abandoned.abort();
    assert!(bounded(abandoned).await.unwrap_err().is_cancelled());
    assert_eq!(fetcher.counters().cancelled, 1);
    gate.add_permits(16);
    for (index, fetch) in held.into_iter().enumerate() {
        let chunk = bounded(fetch).await.unwrap().unwrap();
        assert_eq!(chunk, content(index as u64 * MIB, MIB as usize));
    }
    // The slots chunk 2 waited for are free now; its parts must never be asked for.
    bounded(fetcher.chunk(FILE, size, 3)).await.unwrap();
    assert_eq!(bot.calls(), 6, "chunk 2 was downloaded after all");
    assert_idle(&fetcher);
}

#[tokio::test]
async fn a_download_in_progress_is_dropped_with_its_last_caller() {
    let size = 2 * MIB;
    let (bot, _gate) = FakeBot::gated(size);
    let fetcher = fetcher(&[Arc::clone(&bot)], quick());
    let only = {
        let fetcher = Arc::clone(&fetcher);
        tokio::spawn(async move { fetcher.chunk(FILE, size, 0).await })
    };
    bounded(async {
        while bot.calls() < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    only.abort();
    assert!(bounded(only).await.unwrap_err().is_cancelled());
    assert_eq!(fetcher.counters().cancelled, 1);
    // The aborted attempt gives its connection slots back.
    bounded(async {
        while fetcher
            .pool()
            .report(Instant::now())
            .iter()
            .any(|bot| bot.load.in_flight > 0)
        {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn flood_wait_moves_the_request_to_another_bot_at_once() {
    let size = MIB;
    let flooded = FakeBot::new(
        size,
        vec![Step::Fail(TelegramError::FloodWait { secs: 30 }); 2],
    );
    let spare = FakeBot::new(size, vec![]);
    let fetcher = fetcher(&[Arc::clone(&flooded), Arc::clone(&spare)], quick());
    // Equal load: rotation starts at bot 0, the flooded one.
    let started = Instant::now();
    let chunk = bounded(fetcher.chunk(FILE, size, 0)).await.unwrap();
    assert_eq!(chunk, content(0, MIB as usize));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no sleeping on FLOOD_WAIT"
    );
    assert!(flooded.calls() >= 1);
    assert_eq!(spare.calls(), 2);
    let report = fetcher.pool().report(Instant::now());
    assert!(report[0].flood_wait_secs.is_some());
    assert_idle(&fetcher);
}

#[tokio::test]
async fn every_bot_waiting_answers_flood_wait_with_the_soonest_end() {
    let size = MIB;
    let a = FakeBot::new(
        size,
        vec![Step::Fail(TelegramError::FloodWait { secs: 40 }); 2],
    );
    let b = FakeBot::new(
        size,
        vec![Step::Fail(TelegramError::FloodWait { secs: 12 }); 2],
    );
    let fetcher = fetcher(&[a, b], quick());
    match bounded(fetcher.chunk(FILE, size, 0)).await {
        Err(FetchError::FloodWait { secs }) => assert!((11..=12).contains(&secs), "{secs}"),
        other => panic!("expected FloodWait, got {other:?}"),
    }
    assert_idle(&fetcher);
}

#[tokio::test]
async fn an_expired_reference_is_refreshed_on_the_same_bot_once() {
    let size = MIB;
    let bot = FakeBot::new(size, vec![Step::Fail(TelegramError::FileReferenceExpired)]);
    let fetcher = fetcher(&[Arc::clone(&bot)], quick());
    let chunk = bounded(fetcher.chunk(FILE, size, 0)).await.unwrap();
    assert_eq!(chunk, content(0, MIB as usize));
    assert_eq!(
        bot.refreshes.load(Ordering::SeqCst),
        2,
        "both parts refreshed"
    );
}

#[tokio::test]
async fn missing_messages_are_not_found_without_retries() {
    let size = MIB;
    let a = FakeBot::new(size, vec![Step::Fail(TelegramError::MessageNotFound); 2]);
    let b = FakeBot::new(size, vec![]);
    let fetcher = fetcher(&[Arc::clone(&a), Arc::clone(&b)], quick());
    assert_eq!(
        bounded(fetcher.chunk(FILE, size, 0)).await,
        Err(FetchError::NotFound)
    );
    assert_eq!(b.calls(), 0);
}

#[tokio::test]
async fn a_hanging_bot_times_out_and_another_serves() {
    let size = MIB;
    let stuck = FakeBot::new(size, vec![Step::Hang, Step::Hang]);
    let spare = FakeBot::new(size, vec![]);
    let fetcher = fetcher(&[Arc::clone(&stuck), Arc::clone(&spare)], quick());
    let chunk = bounded(fetcher.chunk(FILE, size, 0)).await.unwrap();
    assert_eq!(chunk, content(0, MIB as usize));
    assert_idle(&fetcher);
}

#[tokio::test]
async fn a_revoked_bot_is_taken_out_of_rotation() {
    let size = MIB;
    let revoked = FakeBot::new(size, vec![Step::Fail(TelegramError::AccessTokenInvalid); 2]);
    let spare = FakeBot::new(size, vec![]);
    let fetcher = fetcher(&[Arc::clone(&revoked), Arc::clone(&spare)], quick());
    bounded(fetcher.chunk(FILE, size, 0)).await.unwrap();
    let report = fetcher.pool().report(Instant::now());
    assert!(matches!(report[0].health, Health::Unhealthy { .. }));
    assert_eq!(report[1].health, Health::Healthy);
}

#[tokio::test]
async fn a_private_channel_benches_the_bot_for_that_channel_only() {
    let size = MIB;
    let outsider = FakeBot::new(size, vec![Step::Fail(TelegramError::ChannelPrivate)]);
    let member = FakeBot::new(size, vec![]);
    let fetcher = fetcher(&[Arc::clone(&outsider), Arc::clone(&member)], quick());
    bounded(fetcher.chunk(FILE, size, 0)).await.unwrap();
    let report = fetcher.pool().report(Instant::now());
    assert_eq!(report[0].health, Health::Healthy);
    assert_eq!(report[0].denied_channels.len(), 1);
    assert_eq!(report[0].denied_channels[0].0, FILE.chat_id);
    assert!(report[1].denied_channels.is_empty());
}

#[tokio::test]
async fn bounded_attempts_end_in_unavailable() {
    let size = MIB;
    let broken = FakeBot::new(
        size,
        vec![Step::Fail(TelegramError::ConnectionLost("reset".into())); 64],
    );
    let fetcher = fetcher(&[Arc::clone(&broken)], quick());
    assert!(matches!(
        bounded(fetcher.chunk(FILE, size, 0)).await,
        Err(FetchError::Unavailable(_))
    ));
    assert!(broken.calls() <= 2 * quick().max_attempts as usize);
    assert_idle(&fetcher);
}

/// Serves every part after a delay and records, per connection, the most parts it ever had
/// in flight at once.
struct WindowedBot {
    file_size: u64,
    in_flight: [AtomicUsize; 2],
    peak: [AtomicUsize; 2],
    calls: [AtomicUsize; 2],
}

impl PartDownloader for WindowedBot {
    fn download_part(
        self: Arc<Self>,
        connection: usize,
        _file: FileRef,
        part: PartRequest,
        _refresh: bool,
        _deadline: Instant,
    ) -> BoxFuture<'static, Result<Bytes, TelegramError>> {
        Box::pin(async move {
            let now = self.in_flight[connection].fetch_add(1, Ordering::SeqCst) + 1;
            self.peak[connection].fetch_max(now, Ordering::SeqCst);
            self.calls[connection].fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(15)).await;
            self.in_flight[connection].fetch_sub(1, Ordering::SeqCst);
            let len = self
                .file_size
                .saturating_sub(part.offset)
                .min(part.limit as u64);
            Ok(content(part.offset, len as usize))
        })
    }
}

#[tokio::test]
async fn parts_spread_over_connections_and_never_exceed_the_window() {
    let size = 12 * MIB;
    let bot = Arc::new(WindowedBot {
        file_size: size,
        in_flight: Default::default(),
        peak: Default::default(),
        calls: Default::default(),
    });
    let pool = Arc::new(BotPool::new(&[(1, 2)]));
    let fetcher = Fetcher::new(
        pool,
        vec![Arc::clone(&bot) as Arc<dyn PartDownloader>],
        FetchConfig {
            parts_per_connection: 3,
            cache_bytes: 0,
            // The window is under test, not the deadlines: 12 MiB of debug-build byte
            // generation on a starved CPU can outlast quick()'s 5 s.
            attempt_timeout: Duration::from_secs(50),
            total_timeout: Duration::from_secs(50),
            ..quick()
        },
    );
    // Twelve chunks at once: 24 parts for a window of 2 connections × 3.
    let fetches: Vec<_> = (0..12)
        .map(|index| {
            let fetcher = Arc::clone(&fetcher);
            tokio::spawn(async move { (index, fetcher.chunk(FILE, size, index).await) })
        })
        .collect();
    for fetch in fetches {
        let (index, chunk) = bounded(fetch).await.unwrap();
        assert_eq!(
            chunk.unwrap(),
            content(index * MIB, MIB as usize),
            "chunk {index}"
        );
    }
    for connection in 0..2 {
        let peak = bot.peak[connection].load(Ordering::SeqCst);
        assert!(
            peak <= 3,
            "connection {connection} had {peak} parts in flight"
        );
        assert!(
            peak >= 2,
            "connection {connection} never had a window (peak {peak})"
        );
    }
    let calls: Vec<usize> = bot.calls.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert_eq!(calls.iter().sum::<usize>(), 24);
    assert!(calls.iter().all(|&c| c >= 8), "unbalanced: {calls:?}");
    assert_idle(&fetcher);
}
