//! The edge's HTTP behaviour end to end: the real server on 127.0.0.1:0 in front of an
//! in-memory upstream with deterministic bytes, driven by a hyper client.
//!
//! Every network wait is under a timeout. The core is not involved (that is the e2e suite's
//! job); these tests pin down what the edge itself promises.

#[path = "support/edge.rs"]
mod harness;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tgcdn_edge::app::{EdgeOptions, build_state};
use tgcdn_edge::http::{HttpSettings, serve};
use tgcdn_edge::readahead::WindowLimits;
use tgcdn_edge::testing::{MemoryUpstream, pattern, test_meta};
use tgcdn_shared::FileRef;
use tgcdn_shared::chunk::CHUNK_SIZE;
use tgcdn_shared::token::{Keyring, LinkKey, TokenVerifier};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};

use harness::TestEdge as Edge;

const FILM: FileRef = FileRef {
    chat_id: -1_001_234,
    msg_id: 42,
};
const FILM_SIZE: u64 = 3 * CHUNK_SIZE + 777;
const FILM_DATE: &str = "Tue, 14 Nov 2023 22:13:20 GMT"; // test_meta's date
// Only a bound against hangs, never a pass/fail criterion: a debug build moving tens of MiB
// on a busy 2-core machine (`.ci/stress` runs beside a CPU hog) takes well over 10 s.
const STEP: Duration = Duration::from_secs(60);

const LINK_SECRET: &[u8] = b"edge-test-link-secret-0123456789";

fn keyring() -> Keyring {
    Keyring::new(LinkKey::new(1, LINK_SECRET).unwrap(), Vec::new()).unwrap()
}

fn token(file: FileRef) -> String {
    keyring().sign(file, None)
}

fn film_path() -> String {
    format!("/dl/{}/film.mp4", token(FILM))
}

async fn start_with(upstream: MemoryUpstream, http: HttpSettings) -> Edge {
    let options = EdgeOptions {
        cache_bytes: 64 << 20,
        fetch_cap: 32,
        http,
        ..EdgeOptions::default()
    };
    Edge::start(upstream, keyring(), options, STEP).await
}

async fn start() -> Edge {
    let upstream =
        MemoryUpstream::new().with_file(FILM, test_meta(FILM_SIZE, "Фильм 1.mp4", "video/mp4"));
    start_with(upstream, HttpSettings::default()).await
}

#[tokio::test]
async fn full_get_is_byte_exact_with_headers() {
    let edge = start().await;
    let reply = edge.get(&film_path(), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.len() as u64, FILM_SIZE);
    assert!(reply.body == pattern(0, FILM_SIZE), "body differs");
    assert_eq!(reply.header("content-length"), FILM_SIZE.to_string());
    assert_eq!(reply.header("accept-ranges"), "bytes");
    assert_eq!(reply.header("content-type"), "video/mp4");
    assert_eq!(reply.header("etag"), format!("\"uid-{FILM_SIZE}\""));
    assert_eq!(reply.header("last-modified"), FILM_DATE);
    assert_eq!(
        reply.header("cache-control"),
        "public, max-age=3600, immutable"
    );
    assert_eq!(
        reply.header("content-disposition"),
        "inline; filename=\"_____ 1.mp4\"; filename*=UTF-8''%D0%A4%D0%B8%D0%BB%D1%8C%D0%BC%201.mp4"
    );
    // A second viewer is served from the cache.
    let calls = edge.upstream.chunk_calls();
    assert_eq!(calls, 4);
    let again = edge.get(&film_path(), &[]).await;
    assert!(again.body == reply.body);
    assert_eq!(edge.upstream.chunk_calls(), calls);
    assert_eq!(edge.upstream.meta_calls(), 1, "meta is cached");
}

#[tokio::test]
async fn download_flag_makes_an_attachment() {
    let edge = start().await;
    let reply = edge
        .send(Method::HEAD, &format!("{}?download", film_path()), &[])
        .await;
    assert!(
        reply
            .header("content-disposition")
            .starts_with("attachment; ")
    );
}

#[tokio::test]
async fn single_range_is_206_with_content_range() {
    let edge = start().await;
    let (start, end) = (CHUNK_SIZE - 10, 2 * CHUNK_SIZE + 9);
    let range = format!("bytes={start}-{end}");
    let reply = edge.get(&film_path(), &[("range", &range)]).await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        reply.header("content-range"),
        format!("bytes {start}-{end}/{FILM_SIZE}")
    );
    assert_eq!(
        reply.header("content-length"),
        (end - start + 1).to_string()
    );
    assert!(reply.body == pattern(start, end + 1));
    // Suffix range: the last 100 bytes.
    let reply = edge.get(&film_path(), &[("range", "bytes=-100")]).await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert!(reply.body == pattern(FILM_SIZE - 100, FILM_SIZE));
}

#[tokio::test]
async fn the_first_range_of_a_new_file_brings_meta_and_chunk_in_one_exchange() {
    let upstream = MemoryUpstream::new()
        .with_file(FILM, test_meta(FILM_SIZE, "Фильм 1.mp4", "video/mp4"))
        .with_meta_chunk();
    let edge = start_with(upstream, HttpSettings::default()).await;
    let (start, end) = (2 * CHUNK_SIZE + 5, 2 * CHUNK_SIZE + 99);
    let range = format!("bytes={start}-{end}");
    let reply = edge.get(&film_path(), &[("range", &range)]).await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert!(reply.body == pattern(start, end + 1));
    // One combined exchange, and the body found its chunk in the cache.
    assert_eq!(edge.upstream.meta_chunk_calls(), 1);
    assert_eq!(edge.upstream.chunk_calls(), 1);
    // The meta is cached now: the next range fetches its chunk alone.
    let reply = edge.get(&film_path(), &[("range", "bytes=0-9")]).await;
    assert!(reply.body == pattern(0, 10));
    assert_eq!(edge.upstream.meta_chunk_calls(), 1);
    assert_eq!(edge.upstream.meta_calls(), 1);
    assert_eq!(edge.upstream.chunk_calls(), 2);
}

#[tokio::test]
async fn a_head_or_suffix_range_of_a_new_file_asks_for_the_meta_alone() {
    let edge = start().await;
    let reply = edge.send(Method::HEAD, &film_path(), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(edge.upstream.meta_chunk_calls(), 0);
    let edge = start().await;
    let reply = edge.get(&film_path(), &[("range", "bytes=-100")]).await;
    assert!(reply.body == pattern(FILM_SIZE - 100, FILM_SIZE));
    assert_eq!(edge.upstream.meta_chunk_calls(), 0);
}

#[tokio::test]
async fn multi_range_is_multipart_byteranges_like_nginx() {
    let edge = start().await;
    let reply = edge
        .get(&film_path(), &[("range", "bytes=0-9, 1048570-1048580,-5")])
        .await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    let content_type = reply.header("content-type");
    let boundary = content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .expect("multipart content type");
    let mut expected = Vec::new();
    for (start, end) in [
        (0, 9),
        (1_048_570, 1_048_580),
        (FILM_SIZE - 5, FILM_SIZE - 1),
    ] {
        expected.extend(
            format!(
                "\r\n--{boundary}\r\nContent-Type: video/mp4\r\nContent-Range: bytes {start}-{end}/{FILM_SIZE}\r\n\r\n"
            )
            .bytes(),
        );
        expected.extend(pattern(start, end + 1));
    }
    expected.extend(format!("\r\n--{boundary}--\r\n").bytes());
    assert_eq!(reply.header("content-length"), expected.len().to_string());
    assert!(reply.body == expected, "multipart body differs");
}

#[tokio::test]
async fn unsatisfiable_range_is_416() {
    let edge = start().await;
    let range = format!("bytes={FILM_SIZE}-");
    let reply = edge.get(&film_path(), &[("range", &range)]).await;
    assert_eq!(reply.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        reply.header("content-range"),
        format!("bytes */{FILM_SIZE}")
    );
    assert_eq!(edge.upstream.chunk_calls(), 0);
}

#[tokio::test]
async fn head_has_headers_and_no_body_and_fetches_no_chunk() {
    let edge = start().await;
    let reply = edge.send(Method::HEAD, &film_path(), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-length"), FILM_SIZE.to_string());
    assert!(reply.body.is_empty());
    let reply = edge
        .send(Method::HEAD, &film_path(), &[("range", "bytes=5-9")])
        .await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(reply.header("content-length"), "5");
    assert!(reply.body.is_empty());
    assert_eq!(edge.upstream.chunk_calls(), 0);
}

#[tokio::test]
async fn if_range_match_gives_206_and_mismatch_gives_200() {
    let edge = start().await;
    let etag = format!("\"uid-{FILM_SIZE}\"");
    let reply = edge
        .get(
            &film_path(),
            &[("range", "bytes=0-99"), ("if-range", &etag)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(reply.body.len(), 100);
    let reply = edge
        .get(
            &film_path(),
            &[("range", "bytes=0-99"), ("if-range", FILM_DATE)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    let reply = edge
        .get(
            &film_path(),
            &[("range", "bytes=0-99"), ("if-range", "\"stale\"")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.len() as u64, FILM_SIZE);
}

#[tokio::test]
async fn conditional_requests_get_304() {
    let edge = start().await;
    let etag = format!("\"uid-{FILM_SIZE}\"");
    let reply = edge.get(&film_path(), &[("if-none-match", &etag)]).await;
    assert_eq!(reply.status, StatusCode::NOT_MODIFIED);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("etag"), etag);
    let reply = edge
        .get(&film_path(), &[("if-modified-since", FILM_DATE)])
        .await;
    assert_eq!(reply.status, StatusCode::NOT_MODIFIED);
    let reply = edge
        .get(
            &film_path(),
            &[
                ("if-modified-since", "Mon, 13 Nov 2023 00:00:00 GMT"),
                ("range", "bytes=0-0"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(edge.upstream.chunk_calls(), 1);
}

#[tokio::test]
async fn bad_tokens_are_refused_without_contacting_upstream() {
    let edge = start().await;
    let expired = keyring().sign(FILM, Some(1_000));
    let other_key = LinkKey::new(9, b"another-secret-another-secret!!").unwrap();
    let unknown_key = Keyring::new(other_key, Vec::new())
        .unwrap()
        .sign(FILM, None);
    let forger = LinkKey::new(1, b"not-the-edge-secret-0123456789").unwrap();
    let tampered = Keyring::new(forger, Vec::new()).unwrap().sign(FILM, None);
    for (path, status) in [
        ("/dl/forged/film.mp4".to_owned(), StatusCode::NOT_FOUND),
        (format!("/dl/{expired}/x"), StatusCode::GONE),
        (format!("/dl/{unknown_key}/x"), StatusCode::FORBIDDEN),
        ("/watch/forged".to_owned(), StatusCode::NOT_FOUND),
        (format!("/dl/{tampered}/x"), StatusCode::NOT_FOUND),
    ] {
        let reply = edge.get(&path, &[("range", "bytes=0-10")]).await;
        assert_eq!(reply.status, status, "{path}");
    }
    assert_eq!(edge.upstream.meta_calls(), 0);
    assert_eq!(edge.upstream.chunk_calls(), 0);
}

#[tokio::test]
async fn unknown_file_is_404_from_upstream() {
    let edge = start().await;
    let missing = FileRef {
        chat_id: FILM.chat_id,
        msg_id: 7,
    };
    let reply = edge.get(&format!("/dl/{}/x", token(missing)), &[]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(edge.upstream.meta_calls(), 1);
}

#[tokio::test]
async fn read_ahead_keeps_several_chunks_in_flight() {
    const BIG: u64 = 48 * CHUNK_SIZE;
    let gate = Arc::new(Semaphore::new(0));
    let upstream = MemoryUpstream::new()
        .with_file(FILM, test_meta(BIG, "big.mkv", "video/x-matroska"))
        .with_gate(gate.clone());
    let http = HttpSettings {
        readahead: WindowLimits::with_max(8),
        ..HttpSettings::default()
    };
    let edge = start_with(upstream, http).await;
    let upstream = edge.upstream.clone();
    let path = film_path();
    let reader = tokio::spawn(async move { edge.get(&path, &[]).await });
    // A slow core: complete one chunk at a time; the eager client keeps up, so the window
    // grows and more chunks are requested at once.
    for _ in 0..16 {
        tokio::time::timeout(STEP, async {
            while upstream.chunks_in_flight() == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        gate.add_permits(1);
    }
    let deepest = upstream.max_chunks_in_flight();
    assert!((5..=8).contains(&deepest), "read-ahead depth {deepest}");
    gate.add_permits(1000);
    let reply = tokio::time::timeout(STEP, reader).await.unwrap().unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body == pattern(0, BIG));
}

#[tokio::test]
async fn read_ahead_stays_within_what_the_core_can_download() {
    const BIG: u64 = 48 * CHUNK_SIZE;
    let gate = Arc::new(Semaphore::new(0));
    // One download connection at the core: 4 chunks keep it busy.
    let upstream = MemoryUpstream::new()
        .with_file(FILM, test_meta(BIG, "big.mkv", "video/x-matroska"))
        .with_gate(gate.clone())
        .with_core_connections(1);
    let http = HttpSettings {
        readahead: WindowLimits::with_max(32),
        ..HttpSettings::default()
    };
    let edge = start_with(upstream, http).await;
    let upstream = edge.upstream.clone();
    let path = film_path();
    let reader = tokio::spawn(async move { edge.get(&path, &[]).await });
    // As in `read_ahead_keeps_several_chunks_in_flight`, whose window grows past 4.
    for _ in 0..16 {
        tokio::time::timeout(STEP, async {
            while upstream.chunks_in_flight() == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        gate.add_permits(1);
    }
    let deepest = upstream.max_chunks_in_flight();
    assert!((2..=4).contains(&deepest), "read-ahead depth {deepest}");
    gate.add_permits(1000);
    let reply = tokio::time::timeout(STEP, reader).await.unwrap().unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body == pattern(0, BIG));
}

#[tokio::test]
async fn probes_and_metrics() {
    let edge = start().await;
    edge.get(&film_path(), &[("range", "bytes=0-0")]).await;
    edge.get(&film_path(), &[("range", "bytes=1-1")]).await;
    let text = edge.scrape().await;
    for needle in [
        "tgcdn_edge_http_requests_total{status=\"206\"} 2",
        "tgcdn_edge_cache_hits_total 1",
        "tgcdn_edge_cache_misses_total 1",
        "tgcdn_edge_http_body_bytes_sent_total 2",
        "tgcdn_edge_upstream_latency_seconds_count",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    assert_eq!(edge.get("/healthz", &[]).await.status, StatusCode::OK);
    assert_eq!(edge.get("/readyz", &[]).await.status, StatusCode::OK);
    edge.upstream.set_ready(false);
    assert_eq!(
        edge.get("/readyz", &[]).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(edge.get("/nope", &[]).await.status, StatusCode::NOT_FOUND);
    // Metrics are only on their own listener.
    assert_eq!(
        edge.get("/metrics", &[]).await.status,
        StatusCode::NOT_FOUND
    );
    let reply = edge.send(Method::POST, &film_path(), &[]).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header("allow"), "GET, HEAD");
}

#[tokio::test]
async fn watch_page_embeds_a_player() {
    let edge = start().await;
    let reply = edge.get(&format!("/watch/{}", token(FILM)), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), "text/html; charset=utf-8");
    let page = String::from_utf8(reply.body.to_vec()).unwrap();
    assert!(page.contains("<video"));
    assert!(page.contains("Фильм 1.mp4"));
    assert!(page.contains(&format!("/dl/{}/", token(FILM))));
}

#[tokio::test]
async fn per_ip_limit_answers_429() {
    let gate = Arc::new(Semaphore::new(0));
    let upstream = MemoryUpstream::new()
        .with_file(FILM, test_meta(FILM_SIZE, "f.mp4", "video/mp4"))
        .with_gate(gate.clone());
    let http = HttpSettings {
        per_ip_limit: 1,
        ..HttpSettings::default()
    };
    let edge = Arc::new(start_with(upstream, http).await);
    let first = {
        let edge = edge.clone();
        tokio::spawn(async move { edge.get(&film_path(), &[]).await })
    };
    tokio::time::timeout(STEP, async {
        while edge.upstream.chunks_in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap();
    let refused = edge.get(&film_path(), &[]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(edge.get("/healthz", &[]).await.status, StatusCode::OK);
    gate.add_permits(100);
    let first = tokio::time::timeout(STEP, first).await.unwrap().unwrap();
    assert_eq!(first.status, StatusCode::OK);
    // The permit went back with the finished body.
    let reply = edge.get(&film_path(), &[("range", "bytes=0-0")]).await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
}

#[tokio::test]
async fn serves_h2c_with_prior_knowledge() {
    let edge = start().await;
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let request = Request::get(format!("{}{}", edge.base, film_path()))
        .header("range", "bytes=100-2097251")
        .body(Empty::new())
        .unwrap();
    let response = tokio::time::timeout(STEP, client.request(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    let body = tokio::time::timeout(STEP, response.into_body().collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert!(body == pattern(100, 2_097_252));
}

#[tokio::test]
async fn client_leaving_before_the_response_is_counted_once() {
    let meta_gate = Arc::new(Semaphore::new(0));
    let upstream = MemoryUpstream::new()
        .with_file(FILM, test_meta(FILM_SIZE, "f.mp4", "video/mp4"))
        .with_meta_gate(meta_gate.clone());
    let edge = start_with(upstream, HttpSettings::default()).await;
    let addr = edge.base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!("GET {} HTTP/1.1\r\nHost: t\r\n\r\n", film_path());
    tokio::io::AsyncWriteExt::write_all(&mut socket, request.as_bytes())
        .await
        .unwrap();
    tokio::time::timeout(STEP, async {
        while edge.upstream.meta_calls() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap();
    drop(socket);
    tokio::time::timeout(STEP, async {
        loop {
            let text = edge.scrape().await;
            if text.contains("tgcdn_edge_http_requests_total{status=\"499\"} 1")
                && text.contains("tgcdn_edge_http_requests_in_flight 0\n")
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the abandoned request was never recorded");
    meta_gate.add_permits(10);
}

/// Reads until the server closes the connection; returns how long that took.
async fn time_until_closed(socket: &mut tokio::net::TcpStream) -> Duration {
    let started = std::time::Instant::now();
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(STEP, async {
        loop {
            match tokio::io::AsyncReadExt::read(socket, &mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server never closed the connection");
    started.elapsed()
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed() {
    let http = HttpSettings {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(600),
        ..HttpSettings::default()
    };
    let edge = start_with(MemoryUpstream::new(), http).await;
    let addr = edge.base.trim_start_matches("http://").to_owned();

    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut slow, b"GET /healthz HTTP/1.1\r\nHost:")
        .await
        .unwrap();
    let waited = time_until_closed(&mut slow).await;
    assert!(
        waited >= Duration::from_millis(250),
        "closed after {waited:?}"
    );

    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut idle, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let waited = time_until_closed(&mut idle).await;
    assert!(
        waited >= Duration::from_millis(250),
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn shutdown_drains_responses_in_flight() {
    let gate = Arc::new(Semaphore::new(0));
    let upstream = Arc::new(
        MemoryUpstream::new()
            .with_file(FILM, test_meta(FILM_SIZE, "f.mp4", "video/mp4"))
            .with_gate(gate.clone()),
    );
    let state = build_state(
        upstream.clone(),
        TokenVerifier::new(keyring()),
        EdgeOptions::default(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let (seen, stop_seen) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async {
        let _ = stopped.await;
        // The server polled its shutdown signal to completion: it is shutting down now.
        let _ = seen.send(());
    }));
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    // The head waits for the first chunk: let exactly that one through (a range inside it
    // needs no other), so the whole-file response below has its head and waits for the rest.
    gate.add_permits(1);
    let first = Request::get(format!("http://{addr}{}", film_path()))
        .header("range", "bytes=0-99")
        .body(Empty::new())
        .unwrap();
    let first = tokio::time::timeout(STEP, client.request(first))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.status(), StatusCode::PARTIAL_CONTENT);
    tokio::time::timeout(STEP, first.into_body().collect())
        .await
        .unwrap()
        .unwrap();
    let request = Request::get(format!("http://{addr}{}", film_path()))
        .body(Empty::new())
        .unwrap();
    let response = tokio::time::timeout(STEP, client.request(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    stop.send(()).unwrap();
    tokio::time::timeout(STEP, stop_seen)
        .await
        .unwrap()
        .unwrap();
    // A server that did not wait for the body still being produced would have returned in
    // the same poll that saw the signal.
    assert!(
        !server.is_finished(),
        "shutdown did not wait for the response"
    );
    gate.add_permits(100);
    let body = tokio::time::timeout(STEP, response.into_body().collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert!(body == pattern(0, FILM_SIZE));
    tokio::time::timeout(STEP, server).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_chunk_failing_mid_body_aborts_the_response_instead_of_truncating_it() {
    let edge = start().await;
    edge.upstream.fail_chunk(2);
    let request = Request::get(format!("{}{}", edge.base, film_path()))
        .body(Empty::new())
        .unwrap();
    let response = tokio::time::timeout(STEP, edge.client.request(request))
        .await
        .unwrap()
        .unwrap();
    // Headers (and Content-Length) went out before chunk 2 was needed.
    assert_eq!(response.status(), StatusCode::OK);
    let body = tokio::time::timeout(STEP, response.into_body().collect())
        .await
        .unwrap();
    assert!(body.is_err(), "a short body must not look complete");
    // A request that does not touch the failing chunk is unaffected.
    let reply = edge.get(&film_path(), &[("range", "bytes=0-99")]).await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
}

#[tokio::test]
async fn a_first_chunk_the_core_cannot_serve_is_an_error_status_not_an_empty_200() {
    let edge = start().await;
    edge.upstream.fail_chunk(0);
    // The whole file and a range inside the failing chunk both start with it: the core's
    // "unavailable" is the status, where a 200 and its Content-Length used to go out first.
    for range in [None, Some("bytes=100-")] {
        let headers: Vec<(&str, &str)> = range.map(|r| ("range", r)).into_iter().collect();
        let reply = edge.get(&film_path(), &headers).await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{range:?}");
    }
    // A range starting past the failing chunk is served.
    let reply = edge
        .get(&film_path(), &[("range", "bytes=1048576-1048675")])
        .await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert!(reply.body == pattern(1_048_576, 1_048_676));
}
