//! The QUIC upstream against a tiny core stand-in on 127.0.0.1 that speaks the wire
//! protocol (`support/mini_core.rs`). Every wait is bounded.

#[path = "support/mini_core.rs"]
mod mini_core;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mini_core::{FILE, MiniCore, SECRET};
use tgcdn_edge::app::{EdgeOptions, build_state};
use tgcdn_edge::http::serve;
use tgcdn_edge::testing::pattern;
use tgcdn_edge::upstream::quic::{QuicSettings, QuicUpstream};
use tgcdn_edge::upstream::{Upstream, UpstreamError};
use tgcdn_shared::FileRef;
use tgcdn_shared::chunk::{CHUNK_SIZE, chunk_len};
use tgcdn_shared::token::{Keyring, LinkKey, TokenVerifier};
use tgcdn_shared::wire::WireError;

const SIZE: u64 = 2 * CHUNK_SIZE + 4321;
// Only a bound against hangs, never a pass/fail criterion: a debug build moving tens of MiB
// on a busy 2-core machine (`.ci/stress` runs beside a CPU hog) takes well over 10 s.
const STEP: Duration = Duration::from_secs(60);

fn start_core() -> MiniCore {
    mini_core::start(SIZE)
}

fn settings(core: &MiniCore) -> QuicSettings {
    let mut settings = QuicSettings::new(core.addr.to_string(), core.fingerprint, SECRET.to_vec());
    settings.connect_wait = Duration::from_secs(2);
    // No test here waits for a request to time out; this only has to outlast a slow run.
    settings.request_timeout = Duration::from_secs(30);
    settings.max_backoff = Duration::from_millis(200);
    settings
}

async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .expect("step timed out")
}

#[tokio::test]
async fn meta_and_chunks_round_trip() {
    let core = start_core();
    let upstream = QuicUpstream::start(settings(&core)).unwrap();
    assert!(within(upstream.wait_ready(STEP)).await);
    assert!(upstream.ready());
    let meta = within(upstream.meta(FILE)).await.unwrap();
    assert_eq!((meta.size, meta.name.as_str()), (SIZE, "clip.mp4"));
    for index in 0..3 {
        let bytes = within(upstream.chunk(FILE, index)).await.unwrap();
        let start = index * CHUNK_SIZE;
        let len = chunk_len(SIZE, index).unwrap();
        assert!(
            bytes == pattern(start, start + len),
            "chunk {index} differs"
        );
    }
    let missing = FileRef {
        chat_id: 1,
        msg_id: 1,
    };
    assert_eq!(
        within(upstream.meta(missing)).await.unwrap_err(),
        UpstreamError::Core(WireError::NotFound)
    );
    assert_eq!(core.state.hellos.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn many_chunks_in_parallel_share_one_connection() {
    let core = start_core();
    let upstream = Arc::new(QuicUpstream::start(settings(&core)).unwrap());
    let mut tasks = Vec::new();
    for round in 0..8u64 {
        let upstream = upstream.clone();
        tasks.push(tokio::spawn(async move {
            upstream.chunk(FILE, round % 3).await
        }));
    }
    for task in tasks {
        within(task).await.unwrap().unwrap();
    }
    assert_eq!(core.state.hellos.load(Ordering::SeqCst), 1);
    assert_eq!(core.state.chunks.load(Ordering::SeqCst), 8);
}

#[tokio::test]
async fn chunk_cut_by_a_core_restart_is_retried_on_a_new_connection() {
    let core = start_core();
    let upstream = QuicUpstream::start(settings(&core)).unwrap();
    assert!(within(upstream.wait_ready(STEP)).await);
    core.state.drop_next_chunk.store(true, Ordering::SeqCst);
    let bytes = within(upstream.chunk(FILE, 1)).await.unwrap();
    assert!(bytes == pattern(CHUNK_SIZE, 2 * CHUNK_SIZE));
    assert_eq!(
        core.state.hellos.load(Ordering::SeqCst),
        2,
        "reconnected once"
    );
}

#[tokio::test]
async fn wrong_pin_never_connects() {
    let core = start_core();
    let mut settings = settings(&core);
    settings.cert_sha256[0] ^= 1;
    settings.max_attempts = 1;
    let upstream = QuicUpstream::start(settings).unwrap();
    let error = within(upstream.chunk(FILE, 0)).await.unwrap_err();
    assert!(
        matches!(error, UpstreamError::Unreachable { .. }),
        "{error}"
    );
    assert!(!upstream.ready());
    assert_eq!(core.state.hellos.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn wrong_cluster_secret_is_refused() {
    let core = start_core();
    let mut settings = settings(&core);
    settings.cluster_secret = b"not-the-cluster-secret-at-all!!".to_vec();
    settings.max_attempts = 1;
    let upstream = QuicUpstream::start(settings).unwrap();
    assert!(!within(upstream.wait_ready(Duration::from_millis(500))).await);
    assert!(within(upstream.meta(FILE)).await.is_err());
    assert_eq!(core.state.hellos.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn heartbeats_flow() {
    let core = start_core();
    let upstream = QuicUpstream::start(settings(&core)).unwrap();
    assert!(within(upstream.wait_ready(STEP)).await);
    within(async {
        while core.state.heartbeats.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn edge_serves_http_through_the_quic_upstream() {
    let core = start_core();
    let upstream = Arc::new(QuicUpstream::start(settings(&core)).unwrap());
    let keyring = Keyring::new(
        LinkKey::new(1, b"quic-test-link-secret-0123456789").unwrap(),
        Vec::new(),
    )
    .unwrap();
    let token = keyring.sign(FILE, None);
    let state = build_state(
        upstream,
        TokenVerifier::new(keyring),
        EdgeOptions::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, state, std::future::pending()));
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::get(format!("http://{addr}/dl/{token}/clip.mp4"))
        .header("range", "bytes=1000-2100000")
        .body(Empty::new())
        .unwrap();
    let response = within(client.request(request)).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::PARTIAL_CONTENT);
    let body = within(response.into_body().collect())
        .await
        .unwrap()
        .to_bytes();
    assert!(body == pattern(1000, 2_100_001), "body differs");
    assert_eq!(core.state.hellos.load(Ordering::SeqCst), 1);
    assert_eq!(core.state.chunks.load(Ordering::SeqCst), 3);
    // The file was new: its meta came with its first chunk, in one exchange.
    assert_eq!(core.state.meta_chunks.load(Ordering::SeqCst), 1);
    assert_eq!(core.state.metas.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn meta_and_a_chunk_travel_in_one_exchange() {
    let core = start_core();
    let upstream = QuicUpstream::start(settings(&core)).unwrap();
    assert!(within(upstream.wait_ready(STEP)).await);
    let both = within(upstream.meta_chunk(FILE, 2)).await.unwrap();
    assert_eq!(both.meta.size, SIZE);
    let bytes = within(both.chunk.expect("a chunk on its way"))
        .await
        .unwrap();
    assert!(bytes == pattern(2 * CHUNK_SIZE, SIZE), "chunk differs");
    // A chunk the core refuses after the meta is the chunk's error, not the meta's.
    let past = within(upstream.meta_chunk(FILE, 3)).await.unwrap();
    assert_eq!(past.meta.size, SIZE);
    assert!(matches!(
        within(past.chunk.expect("an answer on its way")).await,
        Err(UpstreamError::Core(WireError::BadRequest(_)))
    ));
    assert_eq!(core.state.meta_chunks.load(Ordering::SeqCst), 2);
    assert_eq!(core.state.metas.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_core_s_download_connections_arrive_with_its_welcome() {
    let core = start_core();
    let upstream = QuicUpstream::start(settings(&core)).unwrap();
    assert_eq!(
        upstream.core_connections(),
        None,
        "before the first Welcome"
    );
    assert!(within(upstream.wait_ready(STEP)).await);
    assert_eq!(
        upstream.core_connections(),
        Some(mini_core::DOWNLOAD_CONNECTIONS)
    );
}

#[tokio::test]
async fn core_addressed_by_name_is_found() {
    let core = start_core();
    let mut settings = settings(&core);
    settings.addr = format!("localhost:{}", core.addr.port());
    // If `localhost` resolves to ::1 first (where nothing listens), that attempt times out
    // and the next one tries 127.0.0.1.
    settings.connect_wait = Duration::from_millis(500);
    let upstream = QuicUpstream::start(settings).unwrap();
    assert!(within(upstream.wait_ready(STEP)).await);
    let bytes = within(upstream.chunk(FILE, 2)).await.unwrap();
    assert_eq!(bytes.len() as u64, SIZE - 2 * CHUNK_SIZE);
}
