//! Tests of [`super::Resolver`] against scripted fake bots and a temporary sled store:
//! persistence across restarts, revocations, deleted messages, per-bot locations, stale
//! references refreshed once, flood waits moved to another bot, shared lookups.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::ports::{BoxFuture, FileKind};
use crate::store::Revocation;

const FILE: FileRef = FileRef {
    chat_id: -1_000_000_000_001,
    msg_id: 7,
};

/// A bot whose lookups follow a script; the file reference counts lookups so a refreshed
/// location is recognisable.
struct FakeSource {
    script: Mutex<VecDeque<Result<(), TelegramError>>>,
    calls: AtomicUsize,
    access_hash: i64,
}

impl FakeSource {
    fn new(access_hash: i64, script: Vec<Result<(), TelegramError>>) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(script.into()),
            calls: AtomicUsize::new(0),
            access_hash,
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn info(access_hash: i64, generation: usize) -> DocumentInfo {
    DocumentInfo {
        location: DocumentLocation {
            id: 0xabc,
            access_hash,
            file_reference: vec![generation as u8],
            dc_id: 4,
            kind: FileKind::Document,
        },
        size: 3 << 20,
        mime_type: "video/mp4".into(),
        file_name: Some("film.mp4".into()),
        date: 1_700_000_000,
    }
}

impl DocumentSource for FakeSource {
    fn lookup_document(
        self: Arc<Self>,
        _file: FileRef,
        _deadline: Instant,
    ) -> BoxFuture<'static, Result<DocumentInfo, TelegramError>> {
        Box::pin(async move {
            let generation = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            let step = self.script.lock().unwrap().pop_front().unwrap_or(Ok(()));
            // Long enough for concurrent callers to pile onto one lookup.
            tokio::time::sleep(Duration::from_millis(20)).await;
            step.map(|()| info(self.access_hash, generation))
        })
    }
}

fn resolver(store: &Store, sources: &[Arc<FakeSource>]) -> Arc<Resolver> {
    let ids: Vec<(i64, usize)> = (0..sources.len()).map(|i| (i as i64 + 1, 1)).collect();
    let sources = sources
        .iter()
        .map(|s| Arc::clone(s) as Arc<dyn DocumentSource>)
        .collect();
    Resolver::new(
        store.clone(),
        Arc::new(BotPool::new(&ids)),
        sources,
        ResolveConfig {
            lookup_timeout: Duration::from_secs(5),
            ..ResolveConfig::default()
        },
    )
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("test future took too long")
}

#[tokio::test]
async fn meta_is_persisted_and_a_restart_answers_without_telegram() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let bot = FakeSource::new(1, vec![]);
        let resolver = resolver(&store, &[Arc::clone(&bot)]);
        let meta = bounded(resolver.meta(FILE)).await.unwrap();
        assert_eq!(meta, meta_of(&info(1, 1)));
        bounded(resolver.meta(FILE)).await.unwrap();
        assert_eq!(bot.calls(), 1);
        store.flush().await.unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let down = FakeSource::new(1, vec![Err(TelegramError::Timeout); 8]);
    let resolver = resolver(&store, &[Arc::clone(&down)]);
    let meta = bounded(resolver.meta(FILE)).await.unwrap();
    assert_eq!(meta.size, 3 << 20);
    assert_eq!(down.calls(), 0, "a known file must not need Telegram");
}

#[tokio::test]
async fn concurrent_first_lookups_share_one_call() {
    let store = Store::temporary().unwrap();
    let bot = FakeSource::new(1, vec![]);
    let resolver = resolver(&store, &[Arc::clone(&bot)]);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let resolver = Arc::clone(&resolver);
        tasks.spawn(async move { resolver.meta(FILE).await });
    }
    while let Some(joined) = bounded(tasks.join_next()).await {
        joined.unwrap().unwrap();
    }
    assert_eq!(bot.calls(), 1);
}

#[tokio::test]
async fn revoked_files_are_refused_before_any_lookup_and_even_when_cached() {
    let store = Store::temporary().unwrap();
    let bot = FakeSource::new(1, vec![]);
    let resolver = resolver(&store, &[Arc::clone(&bot)]);
    bounded(resolver.meta(FILE)).await.unwrap();
    let revocation = Revocation {
        revoked_at_unix: 1,
        reason: "dmca".into(),
    };
    store.revoke_durable(FILE, &revocation).await.unwrap();
    assert!(matches!(
        bounded(resolver.meta(FILE)).await,
        Err(ResolveError::Revoked)
    ));
    let other = FileRef { msg_id: 8, ..FILE };
    store.revoke_durable(other, &revocation).await.unwrap();
    assert!(matches!(
        bounded(resolver.meta(other)).await,
        Err(ResolveError::Revoked)
    ));
    assert_eq!(bot.calls(), 1);
}

#[tokio::test]
async fn a_deleted_message_is_not_found_and_forgotten() {
    let store = Store::temporary().unwrap();
    let bot = FakeSource::new(1, vec![Err(TelegramError::MessageNotFound)]);
    let resolver = resolver(&store, &[Arc::clone(&bot)]);
    assert!(matches!(
        bounded(resolver.meta(FILE)).await,
        Err(ResolveError::Lookup(GiveUp::NotFound))
    ));
    assert_eq!(store.file_meta(FILE).unwrap(), None);

    // Another file known, then its message disappears while a chunk is fetched: its meta
    // is forgotten and the next `Meta` answers NotFound without asking Telegram.
    let other = FileRef { msg_id: 8, ..FILE };
    bounded(resolver.meta(other)).await.unwrap();
    assert!(store.file_meta(other).unwrap().is_some());
    let gone = bounded(
        resolver.with_location(0, other, false, deadline(), |_| async {
            Err::<(), _>(TelegramError::MessageNotFound)
        }),
    )
    .await;
    assert_eq!(gone, Err(TelegramError::MessageNotFound));
    assert_eq!(store.file_meta(other).unwrap(), None);
    let calls = bot.calls();
    assert!(matches!(
        bounded(resolver.meta(other)).await,
        Err(ResolveError::Lookup(GiveUp::NotFound))
    ));
    assert_eq!(bot.calls(), calls);
}

#[tokio::test]
async fn flood_wait_moves_the_lookup_to_another_bot() {
    let store = Store::temporary().unwrap();
    let flooded = FakeSource::new(1, vec![Err(TelegramError::FloodWait { secs: 30 })]);
    let spare = FakeSource::new(2, vec![]);
    let resolver = resolver(&store, &[Arc::clone(&flooded), Arc::clone(&spare)]);
    bounded(resolver.meta(FILE)).await.unwrap();
    assert_eq!(flooded.calls() + spare.calls(), 1 + flooded.calls());
    assert_eq!(spare.calls(), 1);
    // Every bot waiting: the caller learns how long.
    let other = FileRef { msg_id: 9, ..FILE };
    let store2 = Store::temporary().unwrap();
    let both = [
        FakeSource::new(1, vec![Err(TelegramError::FloodWait { secs: 40 })]),
        FakeSource::new(2, vec![Err(TelegramError::FloodWait { secs: 12 })]),
    ];
    let resolver = self::resolver(&store2, &both);
    assert!(matches!(
        bounded(resolver.meta(other)).await,
        Err(ResolveError::Lookup(GiveUp::FloodWait { secs: 12 }))
    ));
}

#[tokio::test]
async fn locations_are_per_bot_and_cached() {
    let store = Store::temporary().unwrap();
    let a = FakeSource::new(111, vec![]);
    let b = FakeSource::new(222, vec![]);
    let resolver = resolver(&store, &[Arc::clone(&a), Arc::clone(&b)]);
    let la = bounded(resolver.location(0, FILE, deadline()))
        .await
        .unwrap();
    let lb = bounded(resolver.location(1, FILE, deadline()))
        .await
        .unwrap();
    assert_eq!((la.access_hash, lb.access_hash), (111, 222));
    bounded(resolver.location(0, FILE, deadline()))
        .await
        .unwrap();
    assert_eq!((a.calls(), b.calls()), (1, 1));
    // A location lookup also taught the resolver the meta.
    bounded(resolver.meta(FILE)).await.unwrap();
    assert_eq!(a.calls() + b.calls(), 2);
}

#[tokio::test]
async fn an_expired_reference_is_refreshed_through_the_same_bot_and_retried_once() {
    let store = Store::temporary().unwrap();
    let a = FakeSource::new(1, vec![]);
    let b = FakeSource::new(2, vec![]);
    let resolver = resolver(&store, &[Arc::clone(&a), Arc::clone(&b)]);
    let seen = Mutex::new(Vec::new());
    let result = bounded(
        resolver.with_location(0, FILE, false, deadline(), |location| {
            seen.lock().unwrap().push(location.file_reference.clone());
            let stale = location.file_reference == [1];
            async move {
                if stale {
                    Err(TelegramError::FileReferenceExpired)
                } else {
                    Ok(location.file_reference)
                }
            }
        }),
    )
    .await;
    assert_eq!(result, Ok(vec![2]));
    assert_eq!(*seen.lock().unwrap(), vec![vec![1], vec![2]]);
    assert_eq!((a.calls(), b.calls()), (2, 0));

    // Still stale after the refresh: the error goes back to the fetch layer, no loop.
    let calls = AtomicUsize::new(0);
    let result = bounded(resolver.with_location(0, FILE, false, deadline(), |_| {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Err::<(), _>(TelegramError::FileReferenceExpired) }
    }))
    .await;
    assert_eq!(result, Err(TelegramError::FileReferenceExpired));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_refresh_already_done_by_another_caller_is_reused() {
    let store = Store::temporary().unwrap();
    let a = FakeSource::new(1, vec![]);
    let resolver = resolver(&store, &[Arc::clone(&a)]);
    let first = bounded(resolver.location(0, FILE, deadline()))
        .await
        .unwrap();
    let fresh = bounded(resolver.refresh_location(0, FILE, Some(&first), deadline()))
        .await
        .unwrap();
    assert_ne!(fresh, first);
    // A second caller that also saw `first` fail does not ask Telegram again.
    let again = bounded(resolver.refresh_location(0, FILE, Some(&first), deadline()))
        .await
        .unwrap();
    assert_eq!(again, fresh);
    assert_eq!(a.calls(), 2);
}

#[test]
fn wire_meta_fits_the_wire_limits_and_has_fallbacks() {
    let file = FileRef {
        chat_id: -100,
        msg_id: 42,
    };
    let long = store::FileMeta {
        size: 5,
        mime_type: String::new(),
        file_name: "é".repeat(4000),
        dc_id: 2,
        document_id: -1,
        date: -5,
    };
    let meta = wire_meta(file, &long);
    assert!(meta.name.len() <= wire::limits::MAX_FILE_NAME);
    assert!(meta.name.chars().all(|c| c == 'é'));
    assert_eq!(meta.mime, "application/octet-stream");
    assert_eq!(meta.unique_id, "ffffffffffffffff");
    assert_eq!((meta.date, meta.dc), (0, 2));
    let mut buf = Vec::new();
    wire::encode_response(&wire::Response::Meta(meta), &mut buf).unwrap();
    let unnamed = store::FileMeta {
        file_name: String::new(),
        ..long
    };
    assert_eq!(wire_meta(file, &unnamed).name, "file-42");
}

#[tokio::test]
async fn a_missing_file_is_remembered_for_the_negative_ttl() {
    let store = Store::temporary().unwrap();
    let bot = FakeSource::new(1, vec![Err(TelegramError::MessageNotFound)]);
    let resolver = resolver(&store, &[Arc::clone(&bot)]);
    for _ in 0..50 {
        assert!(matches!(
            resolver.meta(FILE).await,
            Err(ResolveError::Lookup(GiveUp::NotFound))
        ));
    }
    assert_eq!(bot.calls(), 1);
    assert_eq!(resolver.counters().negative_hits, 49);
}

#[tokio::test]
async fn a_new_link_is_ready_on_every_serving_bot_before_the_reply() {
    let store = Store::temporary().unwrap();
    let bots = [
        FakeSource::new(1, vec![]),
        FakeSource::new(2, vec![]),
        FakeSource::new(3, vec![]),
    ];
    let resolver = resolver(&store, &bots);
    // A bot in flood wait is left alone: a lookup would only prolong its wait.
    resolver.pool.mark_flood_wait(2, Instant::now(), 60);
    let meta = bounded(resolver.prepare_link(FILE)).await.unwrap();
    assert_eq!(meta.size, 3 << 20);
    let calls: Vec<usize> = bots.iter().map(|bot| bot.calls()).collect();
    assert_eq!(calls, [1, 1, 0], "one lookup per serving bot, none twice");
    // The first chunk on either serving bot finds its location without Telegram.
    for bot in 0..2 {
        let hash =
            bounded(
                resolver.with_location(bot, FILE, false, deadline(), |location| async move {
                    Ok::<_, TelegramError>(location.access_hash)
                }),
            )
            .await
            .unwrap();
        assert_eq!(hash, bot as i64 + 1);
    }
    assert_eq!(
        bots.iter().map(|bot| bot.calls()).collect::<Vec<_>>(),
        [1, 1, 0]
    );
}
