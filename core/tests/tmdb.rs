//! The TMDB client against a local HTTP stub that answers with TMDB-shaped JSON: the one
//! external service a test may stand in for. Covers the lookups, the answer cache (also
//! across a reopen of the store), retries with `Retry-After`, and every way TMDB can refuse.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tgcdn_catalog::model::{EpisodeMeta, Kind};
use tgcdn_core::catalog::tmdb::retry::RetryPolicy;
use tgcdn_core::catalog::tmdb::{ApiKey, Lookup, TmdbClient, TmdbError, TmdbSettings};
use tgcdn_core::store::Store;

const KEY: &str = "0123456789abcdef0123456789abcdef";

/// A canned answer: status, optional `Retry-After`, body.
#[derive(Clone)]
struct Canned {
    status: u16,
    retry_after: Option<&'static str>,
    body: String,
}

fn ok(body: &str) -> Canned {
    Canned {
        status: 200,
        retry_after: None,
        body: body.to_owned(),
    }
}

fn status(status: u16, retry_after: Option<&'static str>) -> Canned {
    Canned {
        status,
        retry_after,
        body: r#"{"status_code": 25, "status_message": "stub"}"#.to_owned(),
    }
}

/// What the stub saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    query: HashMap<String, String>,
    authorization: Option<String>,
}

#[derive(Default)]
struct Script {
    /// Per path: answers given in order; the last one repeats. Unknown paths get 404.
    answers: HashMap<String, VecDeque<Canned>>,
    seen: Vec<Seen>,
}

#[derive(Clone, Default)]
struct Stub(Arc<Mutex<Script>>);

impl Stub {
    fn on(&self, path: &str, answers: impl IntoIterator<Item = Canned>) -> &Self {
        self.0
            .lock()
            .unwrap()
            .answers
            .insert(path.to_owned(), answers.into_iter().collect());
        self
    }

    fn seen(&self) -> Vec<Seen> {
        self.0.lock().unwrap().seen.clone()
    }

    fn answer(&self, request: &Request<Incoming>) -> Canned {
        let path = request.uri().path().to_owned();
        let query = request
            .uri()
            .query()
            .map(|query| {
                url_pairs(query)
                    .into_iter()
                    .collect::<HashMap<String, String>>()
            })
            .unwrap_or_default();
        let authorization = request
            .headers()
            .get("authorization")
            .map(|value| value.to_str().unwrap().to_owned());
        let mut script = self.0.lock().unwrap();
        script.seen.push(Seen {
            path: path.clone(),
            query,
            authorization,
        });
        match script.answers.get_mut(&path) {
            Some(queue) if queue.len() > 1 => queue.pop_front().unwrap(),
            Some(queue) => queue.front().cloned().unwrap(),
            None => status(404, None),
        }
    }

    /// Serves on an ephemeral loopback port until the test's runtime ends.
    async fn start(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stub = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let stub = stub.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let canned = stub.answer(&request);
                        async move {
                            let mut response = Response::builder().status(canned.status);
                            if let Some(value) = canned.retry_after {
                                response = response.header("retry-after", value);
                            }
                            Ok::<_, Infallible>(
                                response.body(Full::new(Bytes::from(canned.body))).unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }
}

/// `a=b&c=d` → pairs, percent-decoded (`+` is a space in form encoding).
fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let text = text.replace('+', " ");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn settings(addr: SocketAddr, key: Option<&str>) -> TmdbSettings {
    TmdbSettings {
        api_key: key.map(ApiKey::new),
        api_url: format!("http://{addr}/3"),
        image_url: "https://img.test/t/p".into(),
        timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(5),
        },
        ..TmdbSettings::default()
    }
}

fn movie(title: &str, year: Option<u16>) -> Lookup {
    Lookup {
        kind: Kind::Movie,
        title: title.into(),
        year,
        seasons: Vec::new(),
    }
}

const SEARCH_BLADE_RUNNER: &str = r#"{"page": 1, "total_results": 2, "results": [
    {"id": 78, "title": "Blade Runner", "original_title": "Blade Runner", "release_date": "1982-06-25", "popularity": 80.1},
    {"id": 335984, "title": "Blade Runner 2049", "original_title": "Blade Runner 2049", "release_date": "2017-10-04", "popularity": 60.3}
]}"#;

const MOVIE_335984: &str = r#"{"id": 335984, "imdb_id": "tt1856101", "title": "Blade Runner 2049",
    "release_date": "2017-10-04", "overview": "Thirty years after the events of the first film...",
    "poster_path": "/gajva2L0rPYkEWjzgFlBXCAVBE5.jpg", "backdrop_path": "/ilRyazdMJwN05exqhwK4tMKBYZs.jpg",
    "genres": [{"id": 878, "name": "Science Fiction"}, {"id": 18, "name": "Drama"}],
    "vote_average": 7.6, "runtime": 164, "external_ids": {"imdb_id": "tt1856101", "facebook_id": null}}"#;

const SEARCH_BREAKING_BAD: &str = r#"{"page": 1, "results": [
    {"id": 1396, "name": "Breaking Bad", "original_name": "Breaking Bad", "first_air_date": "2008-01-20"}
]}"#;

const TV_1396: &str = r#"{"id": 1396, "name": "Breaking Bad", "first_air_date": "2008-01-20",
    "overview": "Walter White...", "poster_path": "/ggFHVNu6YYI5L9pCfOacjizRGt.jpg",
    "backdrop_path": null, "genres": [{"id": 18, "name": "Drama"}], "vote_average": 8.9,
    "episode_run_time": [45, 47], "external_ids": {"imdb_id": "tt0903747"}}"#;

const SEASON_1396_1: &str = r#"{"season_number": 1, "episodes": [
    {"season_number": 1, "episode_number": 1, "name": "Pilot", "overview": "Diagnosed...", "air_date": "2008-01-20", "still_path": "/ydlY3iPfeOAvu8gVqrxPoMvzNCn.jpg"},
    {"season_number": 1, "episode_number": 2, "name": "Cat's in the Bag...", "overview": "", "air_date": "2008-01-27", "still_path": null}
]}"#;

const SEASON_1396_2: &str = r#"{"season_number": 2, "episodes": [
    {"season_number": 2, "episode_number": 1, "name": "Seven Thirty-Seven", "air_date": "2009-03-08"}
]}"#;

async fn blade_runner_stub() -> (Stub, SocketAddr) {
    let stub = Stub::default();
    stub.on("/3/search/movie", [ok(SEARCH_BLADE_RUNNER)])
        .on("/3/movie/335984", [ok(MOVIE_335984)]);
    let addr = stub.start().await;
    (stub, addr)
}

#[tokio::test]
async fn a_movie_resolves_to_ids_images_and_details() {
    let (stub, addr) = blade_runner_stub().await;
    let store = Store::temporary().unwrap();
    let client = TmdbClient::new(settings(addr, Some(KEY)), &store).unwrap();

    let meta = client
        .resolve(&movie("Blade Runner 2049", Some(2017)))
        .await
        .unwrap()
        .expect("a match");
    assert_eq!(meta.tmdb_id, Some(335984));
    assert_eq!(meta.imdb_id.as_deref(), Some("tt1856101"));
    assert_eq!(meta.name, "Blade Runner 2049");
    assert_eq!(meta.year, Some(2017));
    assert_eq!(
        meta.poster.as_deref(),
        Some("https://img.test/t/p/w500/gajva2L0rPYkEWjzgFlBXCAVBE5.jpg")
    );
    assert_eq!(
        meta.background.as_deref(),
        Some("https://img.test/t/p/original/ilRyazdMJwN05exqhwK4tMKBYZs.jpg")
    );
    assert_eq!(meta.genres, ["Science Fiction", "Drama"]);
    assert_eq!(meta.rating, Some(7.6));
    assert_eq!(meta.runtime_minutes, Some(164));
    assert_eq!(meta.released.as_deref(), Some("2017-10-04"));
    assert!(meta.episodes.is_empty());

    let seen = stub.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].query["query"], "Blade Runner 2049");
    assert_eq!(seen[0].query["year"], "2017");
    assert_eq!(seen[0].query["api_key"], KEY);
    assert_eq!(seen[0].query["language"], "en-US");
    assert_eq!(seen[1].query["append_to_response"], "external_ids");
    assert!(seen.iter().all(|s| s.authorization.is_none()));
}

#[tokio::test]
async fn a_series_resolves_with_the_episodes_of_the_wanted_seasons() {
    let stub = Stub::default();
    stub.on("/3/search/tv", [ok(SEARCH_BREAKING_BAD)])
        .on("/3/tv/1396", [ok(TV_1396)])
        .on("/3/tv/1396/season/1", [ok(SEASON_1396_1)])
        .on("/3/tv/1396/season/2", [ok(SEASON_1396_2)]);
    let addr = stub.start().await;
    let store = Store::temporary().unwrap();
    let client = TmdbClient::new(settings(addr, Some(KEY)), &store).unwrap();

    let lookup = Lookup {
        kind: Kind::Series,
        title: "Breaking Bad".into(),
        year: None,
        // Season 9 does not exist at TMDB: skipped, not an error. Duplicates ask once.
        seasons: vec![2, 1, 9, 1],
    };
    let meta = client.resolve(&lookup).await.unwrap().expect("a match");
    assert_eq!(meta.imdb_id.as_deref(), Some("tt0903747"));
    assert_eq!(meta.tmdb_id, Some(1396));
    assert_eq!(meta.year, Some(2008));
    assert_eq!(meta.runtime_minutes, Some(45));
    assert_eq!(meta.background, None);
    assert_eq!(
        meta.episodes,
        [
            EpisodeMeta {
                season: 1,
                episode: 1,
                title: Some("Pilot".into()),
                overview: Some("Diagnosed...".into()),
                released: Some("2008-01-20".into()),
                thumbnail: Some("https://img.test/t/p/w300/ydlY3iPfeOAvu8gVqrxPoMvzNCn.jpg".into()),
            },
            EpisodeMeta {
                season: 1,
                episode: 2,
                title: Some("Cat's in the Bag...".into()),
                overview: None,
                released: Some("2008-01-27".into()),
                thumbnail: None,
            },
            EpisodeMeta {
                season: 2,
                episode: 1,
                title: Some("Seven Thirty-Seven".into()),
                overview: None,
                released: Some("2009-03-08".into()),
                thumbnail: None,
            },
        ]
    );
    let season_calls: Vec<_> = stub
        .seen()
        .into_iter()
        .filter(|s| s.path.contains("/season/"))
        .map(|s| s.path)
        .collect();
    assert_eq!(
        season_calls,
        [
            "/3/tv/1396/season/1",
            "/3/tv/1396/season/2",
            "/3/tv/1396/season/9"
        ]
    );
}

#[tokio::test]
async fn answers_come_from_the_cache_even_after_a_reopen() {
    let (stub, addr) = blade_runner_stub().await;
    let dir = tempfile::tempdir().unwrap();
    let lookup = movie("Blade Runner 2049", Some(2017));
    {
        let store = Store::open(dir.path()).unwrap();
        let client = TmdbClient::new(settings(addr, Some(KEY)), &store).unwrap();
        let first = client.resolve(&lookup).await.unwrap();
        assert_eq!(stub.seen().len(), 2);
        let second = client.resolve(&lookup).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(stub.seen().len(), 2, "the second lookup must not call TMDB");
        assert_eq!(
            client
                .stats()
                .cache_hits
                .load(std::sync::atomic::Ordering::Relaxed),
            2
        );
        // The key is a credential: it must not be written to disk.
        let tree = store.tree("tmdb_cache").unwrap();
        assert_eq!(tree.len(), 2);
        for entry in tree.iter() {
            let (key, value) = entry.unwrap();
            assert!(!String::from_utf8_lossy(&key).contains(KEY));
            assert!(!String::from_utf8_lossy(&value).contains(KEY));
        }
        store.flush().await.unwrap();
    }
    let store = reopen(dir.path()).await;
    let client = TmdbClient::new(settings(addr, Some(KEY)), &store).unwrap();
    assert!(client.resolve(&lookup).await.unwrap().is_some());
    assert_eq!(stub.seen().len(), 2, "a restart must not call TMDB again");
}

/// sled's flusher may hold the lock for a moment after the last handle is dropped.
async fn reopen(path: &std::path::Path) -> Store {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(path) {
            Ok(store) => return store,
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("cannot reopen the store: {error}"),
        }
    }
}

#[tokio::test]
async fn rate_limits_are_waited_out_as_retry_after_says() {
    let stub = Stub::default();
    stub.on(
        "/3/search/movie",
        [status(429, Some("1")), ok(SEARCH_BLADE_RUNNER)],
    )
    .on("/3/movie/335984", [status(503, None), ok(MOVIE_335984)]);
    let addr = stub.start().await;
    let store = Store::temporary().unwrap();
    let client = TmdbClient::new(settings(addr, Some(KEY)), &store).unwrap();

    let started = Instant::now();
    let meta = client
        .resolve(&movie("Blade Runner 2049", Some(2017)))
        .await
        .unwrap();
    assert_eq!(meta.and_then(|m| m.tmdb_id), Some(335984));
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After: 1 was not honoured ({:?})",
        started.elapsed()
    );
    assert_eq!(stub.seen().len(), 4);
    assert_eq!(
        client
            .stats()
            .retries
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test]
async fn a_persistent_outage_ends_in_a_transient_error_after_the_attempts() {
    let stub = Stub::default();
    stub.on("/3/search/movie", [status(500, None)]);
    let addr = stub.start().await;
    let store = Store::temporary().unwrap();
    let client = TmdbClient::new(settings(addr, Some(KEY)), &store).unwrap();

    let error = client.resolve(&movie("Anything", None)).await.unwrap_err();
    assert!(
        matches!(error, TmdbError::Status { status: 500, .. }),
        "{error:?}"
    );
    assert!(error.is_transient());
    assert_eq!(stub.seen().len(), 3, "max_attempts is 3");
}

#[tokio::test]
async fn a_long_retry_after_gives_up_at_once_with_the_hint() {
    let stub = Stub::default();
    stub.on("/3/search/movie", [status(429, Some("3600"))]);
    let addr = stub.start().await;
    let store = Store::temporary().unwrap();
    let client = TmdbClient::new(settings(addr, Some(KEY)), &store).unwrap();

    let error = client.resolve(&movie("Anything", None)).await.unwrap_err();
    match error {
        TmdbError::Status {
            status: 429,
            retry_after,
            ..
        } => assert_eq!(retry_after, Some(Duration::from_secs(3600))),
        other => panic!("{other:?}"),
    }
    assert_eq!(stub.seen().len(), 1);
}

#[tokio::test]
async fn a_refused_key_is_permanent_and_not_retried() {
    let stub = Stub::default();
    stub.on("/3/search/movie", [status(401, None)]);
    let addr = stub.start().await;
    let store = Store::temporary().unwrap();
    let client = TmdbClient::new(settings(addr, Some(KEY)), &store).unwrap();

    let error = client.resolve(&movie("Anything", None)).await.unwrap_err();
    assert!(matches!(error, TmdbError::Unauthorized { status: 401 }));
    assert!(!error.is_transient());
    assert_eq!(stub.seen().len(), 1);
}

#[tokio::test]
async fn without_a_key_nothing_is_sent() {
    let (stub, addr) = blade_runner_stub().await;
    let store = Store::temporary().unwrap();
    let client = TmdbClient::new(settings(addr, None), &store).unwrap();
    assert!(!client.has_api_key());
    let error = client
        .resolve(&movie("Blade Runner 2049", Some(2017)))
        .await
        .unwrap_err();
    assert!(matches!(error, TmdbError::NoApiKey));
    assert!(stub.seen().is_empty());
}

#[tokio::test]
async fn an_unreachable_tmdb_is_a_transient_error_within_the_deadline() {
    // A port that was just free: nothing listens there.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let store = Store::temporary().unwrap();
    let client = TmdbClient::new(settings(addr, Some(KEY)), &store).unwrap();
    let error = tokio::time::timeout(
        Duration::from_secs(20),
        client.resolve(&movie("Anything", None)),
    )
    .await
    .expect("bounded by the deadline and the attempts")
    .unwrap_err();
    assert!(matches!(error, TmdbError::Transport { .. }), "{error:?}");
    assert!(error.is_transient());
}

#[tokio::test]
async fn no_close_hit_means_no_metadata() {
    let (stub, addr) = blade_runner_stub().await;
    let store = Store::temporary().unwrap();
    let client = TmdbClient::new(settings(addr, Some(KEY)), &store).unwrap();
    // A year far from both hits: asked with the year, then without it, judged with it.
    let found = client
        .resolve(&movie("Blade Runner", Some(1950)))
        .await
        .unwrap();
    assert_eq!(found, None);
    assert_eq!(stub.seen().len(), 2);
    assert!(!stub.seen()[1].query.contains_key("year"));
}

#[tokio::test]
async fn a_v4_token_is_sent_as_a_bearer_header_not_in_the_url() {
    let (stub, addr) = blade_runner_stub().await;
    let store = Store::temporary().unwrap();
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJ0ZXN0In0.c2lnbmF0dXJl";
    let client = TmdbClient::new(settings(addr, Some(token)), &store).unwrap();
    client
        .resolve(&movie("Blade Runner 2049", Some(2017)))
        .await
        .unwrap();
    for seen in stub.seen() {
        assert_eq!(
            seen.authorization.as_deref(),
            Some(format!("Bearer {token}").as_str())
        );
        assert!(!seen.query.contains_key("api_key"));
    }
}

#[tokio::test]
async fn a_malformed_answer_is_a_decode_error_not_a_panic() {
    let stub = Stub::default();
    stub.on("/3/search/movie", [ok("<html>gateway</html>")]);
    let addr = stub.start().await;
    let store = Store::temporary().unwrap();
    let client = TmdbClient::new(settings(addr, Some(KEY)), &store).unwrap();
    let error = client.resolve(&movie("Anything", None)).await.unwrap_err();
    assert!(matches!(error, TmdbError::Decode { .. }), "{error:?}");
    assert_eq!(
        store.tree("tmdb_cache").unwrap().len(),
        0,
        "a malformed answer must not be cached"
    );
}
