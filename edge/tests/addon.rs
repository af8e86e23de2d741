//! The Stremio addon routes end to end: the real edge on 127.0.0.1:0 in front of the
//! in-memory upstream's canned addon answers, driven by a hyper client.
//!
//! Pins what the edge promises for the addon: every route shape relayed in canonical form
//! with the configured base URL (never the request's Host), CORS on every response, the
//! secret prefix (a wrong one costs the core nothing), garbage refused without a core call
//! and never with a 5xx, answers cached for the core's max-age with one core call per key,
//! and the edge-wide cap on core calls. Every wait is bounded.

#[path = "support/edge.rs"]
mod harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use tgcdn_edge::app::EdgeOptions;
use tgcdn_edge::http::addon::{AddonSecret, AddonSettings};
use tgcdn_edge::testing::MemoryUpstream;
use tgcdn_shared::config::FromSetting;
use tgcdn_shared::token::{Keyring, LinkKey};
use tokio::sync::Semaphore;

use harness::{Reply, TestEdge as Edge};

const STEP: Duration = Duration::from_secs(10);
const BASE_URL: &str = "https://fra.cdn.example";
const SECRET: &str = "friends-only-0123456789";
const MANIFEST: &str = r#"{"id":"org.tgcdn.addon","version":"1.0.0"}"#;
const TOP: &str = r#"{"metas":[{"id":"tt0083658","type":"movie","name":"Blade Runner"}]}"#;

fn upstream() -> MemoryUpstream {
    MemoryUpstream::new()
        .with_addon("/manifest.json", "", MANIFEST, 3600)
        .with_addon("/catalog/movie/top.json", "", TOP, 300)
        .with_addon(
            "/catalog/movie/top.json",
            "search=blade%20runner&skip=100",
            r#"{"metas":[]}"#,
            60,
        )
        .with_addon(
            "/meta/series/tt0903747.json",
            "",
            r#"{"meta":{"id":"tt0903747"}}"#,
            60,
        )
        .with_addon(
            "/stream/series/tt0903747:1:2.json",
            "",
            r#"{"streams":[]}"#,
            60,
        )
}

fn settings(secret: Option<&str>) -> AddonSettings {
    AddonSettings {
        base_url: Some(BASE_URL.to_owned()),
        secret: secret.map(|s| AddonSecret::from_text(s).expect("valid secret")),
        ..AddonSettings::default()
    }
}

async fn start_with(upstream: MemoryUpstream, addon: AddonSettings) -> Edge {
    let options = EdgeOptions {
        cache_bytes: 16 << 20,
        addon,
        ..EdgeOptions::default()
    };
    let keyring = Keyring::new(
        LinkKey::new(1, b"addon-test-link-secret-012345678").unwrap(),
        vec![],
    )
    .unwrap();
    Edge::start(upstream, keyring, options, STEP).await
}

async fn start(secret: Option<&str>) -> Edge {
    start_with(upstream(), settings(secret)).await
}

fn assert_cors(reply: &Reply, what: &str) {
    assert_eq!(
        reply
            .headers
            .get("access-control-allow-origin")
            .map(|v| v.as_bytes()),
        Some(&b"*"[..]),
        "{what}: no CORS"
    );
    assert!(
        reply.headers.contains_key("access-control-allow-methods"),
        "{what}"
    );
    assert!(
        reply.headers.contains_key("access-control-allow-headers"),
        "{what}"
    );
}

#[tokio::test]
async fn every_route_shape_reaches_the_core_in_canonical_form() {
    let edge = start(None).await;
    let cases = [
        ("/manifest.json", "/manifest.json", "", MANIFEST),
        (
            "/catalog/movie/top.json",
            "/catalog/movie/top.json",
            "",
            TOP,
        ),
        (
            "/catalog/movie/top/skip=100&search=blade+runner.json",
            "/catalog/movie/top.json",
            "search=blade%20runner&skip=100",
            r#"{"metas":[]}"#,
        ),
        (
            "/meta/series/tt0903747.json",
            "/meta/series/tt0903747.json",
            "",
            r#"{"meta":{"id":"tt0903747"}}"#,
        ),
        (
            "/stream/series/tt0903747%3A1%3A2.json",
            "/stream/series/tt0903747:1:2.json",
            "",
            r#"{"streams":[]}"#,
        ),
    ];
    for (i, (url, path, query, json)) in cases.iter().enumerate() {
        let reply = edge
            .send(
                Method::GET,
                url,
                &[("host", "evil.example"), ("x-forwarded-proto", "gopher")],
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{url}");
        assert_eq!(reply.body, json.as_bytes(), "{url}");
        assert_eq!(
            reply.header("content-type"),
            "application/json; charset=utf-8"
        );
        assert_eq!(reply.header("content-length"), json.len().to_string());
        assert_cors(&reply, url);
        let sent = &edge.upstream.addon_requests()[i];
        assert_eq!(
            (sent.path.as_str(), sent.query.as_str()),
            (*path, *query),
            "{url}"
        );
        // A forged Host never reaches the links the core builds.
        assert_eq!(sent.base_url, BASE_URL);
    }
    let manifest = edge.get("/manifest.json", &[]).await;
    assert_eq!(
        manifest.header("cache-control"),
        "public, max-age=3600, stale-while-revalidate=3600, stale-if-error=86400"
    );
    let head = edge
        .send(Method::HEAD, "/catalog/movie/top.json", &[])
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), TOP.len().to_string());
    assert_eq!(
        edge.upstream.addon_calls(),
        cases.len(),
        "repeats came from the cache"
    );
}

#[tokio::test]
async fn preflight_and_errors_carry_cors() {
    let edge = start(None).await;
    let preflight = edge
        .send(
            Method::OPTIONS,
            "/catalog/movie/top.json",
            &[
                ("origin", "https://web.stremio.com"),
                ("access-control-request-method", "GET"),
            ],
        )
        .await;
    assert_eq!(preflight.status, StatusCode::NO_CONTENT);
    assert_cors(&preflight, "preflight");
    assert_eq!(preflight.header("access-control-max-age"), "86400");

    let missing = edge.get("/meta/movie/tt0000001.json", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_cors(&missing, "core 404");
    assert_eq!(missing.header("cache-control"), "no-store");

    let bad = edge.get("/catalog/movie/top/skip=7.json", &[]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_cors(&bad, "400");

    let post = edge.send(Method::POST, "/manifest.json", &[]).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.header("allow"), "GET, HEAD, OPTIONS");
    assert_cors(&post, "405");
    // Only the missing meta reached the core.
    assert_eq!(edge.upstream.addon_calls(), 1);
}

#[tokio::test]
async fn secret_prefix_gates_the_addon_at_no_cost_to_the_core() {
    let edge = start(Some(SECRET)).await;
    for path in [
        "/manifest.json".to_owned(),
        "/catalog/movie/top.json".to_owned(),
        "/friends-only-0123456788/manifest.json".to_owned(),
        "/friends-only-012345678/manifest.json".to_owned(),
        format!("/{SECRET}x/manifest.json"),
        format!("/x/{SECRET}/manifest.json"),
        format!("/{}/manifest.json", SECRET.to_uppercase()),
    ] {
        let reply = edge.get(&path, &[]).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_cors(&reply, &path);
        let preflight = edge.send(Method::OPTIONS, &path, &[]).await;
        assert_eq!(preflight.status, StatusCode::NOT_FOUND, "OPTIONS {path}");
    }
    assert_eq!(
        edge.upstream.addon_calls(),
        0,
        "a wrong secret cost the core a call"
    );
    let manifest = edge.get(&format!("/{SECRET}/manifest.json"), &[]).await;
    assert_eq!(manifest.status, StatusCode::OK);
    assert_eq!(manifest.body, MANIFEST.as_bytes());
    let top = edge
        .get(&format!("/{SECRET}/catalog/movie/top.json"), &[])
        .await;
    assert_eq!(top.body, TOP.as_bytes());
    let sent = edge.upstream.addon_requests();
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter().all(|r| !r.path.contains(SECRET)),
        "secret sent on"
    );
}

#[tokio::test]
async fn garbage_is_refused_without_a_core_call_and_never_5xx() {
    let edge = start(None).await;
    let long_id = format!("/meta/movie/tt{}.json", "1".repeat(2000));
    let long_search = format!("/catalog/movie/top/search={}.json", "a".repeat(600));
    let paths = [
        "/.json",
        "/manifest.json.json",
        "/subtitles/movie/tt1.json",
        "/catalog/anime/top.json",
        "/catalog/movie/../../etc/passwd.json",
        "/catalog/movie/%2e%2e.json",
        "/meta/movie/tt1%00.json",
        "/meta/movie/%FF%FE.json",
        "/stream/movie/tt1:1:1.json",
        "/stream/series/tt1:1:1:1.json",
        "/stream/movie/kitsu:1.json",
        "/catalog/movie/top/skip=99999999999999999999.json",
        "/catalog/movie/top/skip=100&skip=100.json",
        "/catalog/movie/top/genre=%0D%0ASet-Cookie:x.json",
        "/catalog/movie/top/evil=1.json",
        "/meta/movie/tt1/skip=100.json",
        "/a/b/c/d/e/f.json",
        "//manifest.json",
        long_id.as_str(),
        long_search.as_str(),
    ];
    for path in paths {
        let reply = edge.get(path, &[]).await;
        assert!(
            reply.status == StatusCode::NOT_FOUND || reply.status == StatusCode::BAD_REQUEST,
            "{path}: {}",
            reply.status
        );
        assert!(reply.body.len() < 64, "{path}: long error body");
        assert_cors(&reply, path);
    }
    assert_eq!(edge.upstream.addon_calls(), 0);
}

#[tokio::test]
async fn a_popular_page_costs_one_core_call_even_when_requested_at_once() {
    let gate = Arc::new(Semaphore::new(0));
    let edge = Arc::new(
        start_with(
            upstream().with_addon_gate(Arc::clone(&gate)),
            settings(None),
        )
        .await,
    );
    const VIEWERS: usize = 10;
    let mut tasks = Vec::new();
    for _ in 0..VIEWERS {
        let edge = Arc::clone(&edge);
        tasks.push(tokio::spawn(async move {
            edge.get("/catalog/movie/top.json", &[]).await
        }));
    }
    // Wait until every viewer's request is inside the edge (scrapes are not counted).
    let deadline = Instant::now() + STEP;
    loop {
        let text = edge.scrape().await;
        if text.contains(&format!("tgcdn_edge_http_requests_in_flight {VIEWERS}\n")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "viewers never all arrived: {text}"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(
        edge.upstream.addon_calls(),
        1,
        "concurrent misses were not coalesced"
    );
    gate.add_permits(1);
    for task in tasks {
        let reply = tokio::time::timeout(STEP, task).await.unwrap().unwrap();
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, TOP.as_bytes());
    }
    for _ in 0..20 {
        assert_eq!(
            edge.get("/catalog/movie/top.json", &[]).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(edge.upstream.addon_calls(), 1);
    let text = edge.scrape().await;
    for line in [
        "tgcdn_edge_addon_cache_misses_total 1\n".to_string(),
        format!("tgcdn_edge_addon_cache_hits_total {}\n", VIEWERS - 1 + 20),
        "tgcdn_edge_addon_cache_errors_total 0\n".to_string(),
    ] {
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
    }
}

#[tokio::test]
async fn answers_live_as_long_as_the_core_says() {
    let upstream = upstream().with_addon("/meta/movie/tt1.json", "", r#"{"meta":{}}"#, 1);
    let edge = start_with(upstream, settings(None)).await;
    // The core was asked after `before`, so the answer may not expire before `before + 1s`.
    let before = Instant::now();
    let first = edge.get("/meta/movie/tt1.json", &[]).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(
        first
            .header("cache-control")
            .starts_with("public, max-age=1,")
    );
    // Within the second the answer comes from the edge; after it, from the core again.
    let deadline = before + STEP;
    loop {
        assert_eq!(
            edge.get("/meta/movie/tt1.json", &[]).await.status,
            StatusCode::OK
        );
        if edge.upstream.addon_calls() == 2 {
            let done = Instant::now();
            assert!(done >= before + Duration::from_secs(1), "refetched early");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "answer outlived its max-age of 1s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_core_without_addon_is_404_and_briefly_remembered() {
    let edge = start(None).await;
    edge.upstream.disable_addon();
    for _ in 0..5 {
        let reply = edge.get("/manifest.json", &[]).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_cors(&reply, "disabled");
    }
    assert_eq!(
        edge.upstream.addon_calls(),
        1,
        "404s are cached for a few seconds"
    );
}

#[tokio::test]
async fn no_base_url_means_no_addon() {
    let edge = start_with(upstream(), AddonSettings::default()).await;
    assert_eq!(
        edge.get("/manifest.json", &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(edge.upstream.addon_calls(), 0);
}

#[tokio::test]
async fn core_calls_in_flight_are_capped() {
    let gate = Arc::new(Semaphore::new(0));
    let addon = AddonSettings {
        concurrency: 1,
        ..settings(None)
    };
    let edge = Arc::new(start_with(upstream().with_addon_gate(Arc::clone(&gate)), addon).await);
    let held = {
        let edge = Arc::clone(&edge);
        tokio::spawn(async move { edge.get("/manifest.json", &[]).await })
    };
    let deadline = Instant::now() + STEP;
    while edge.upstream.addon_calls() == 0 {
        assert!(
            Instant::now() < deadline,
            "first call never reached the core"
        );
        tokio::task::yield_now().await;
    }
    let refused = edge.get("/catalog/movie/top.json", &[]).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.header("retry-after"), "1");
    assert_cors(&refused, "503");
    assert_eq!(edge.upstream.addon_calls(), 1);
    gate.add_permits(2);
    let held = tokio::time::timeout(STEP, held).await.unwrap().unwrap();
    assert_eq!(held.status, StatusCode::OK);
    // The refusal was not cached: the page is served once the core has room.
    let retried = edge.get("/catalog/movie/top.json", &[]).await;
    assert_eq!(retried.status, StatusCode::OK);
    assert_eq!(edge.upstream.addon_calls(), 2);
    let text = edge.scrape().await;
    for line in [
        "tgcdn_edge_addon_cache_busy_total 1\n",
        "tgcdn_edge_addon_cache_misses_total 2\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}
