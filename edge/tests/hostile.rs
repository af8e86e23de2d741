//! The edge under hostile traffic: content that could attack the edge's origin, connections
//! that never finish a request, connection caps, a public port without `/metrics`, floods
//! of forged tokens and a corpus of malformed requests. The real server on 127.0.0.1:0 in
//! front of the in-memory upstream, driven over raw TCP or a hyper client.
//!
//! Every network wait is under a deadline; tests that hammer the edge print their figures.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tgcdn_edge::app::{EdgeOptions, build_state};
use tgcdn_edge::http::{AppState, HttpSettings, serve, serve_metrics};
use tgcdn_edge::testing::{MemoryUpstream, test_meta};
use tgcdn_shared::FileRef;
use tgcdn_shared::chunk::CHUNK_SIZE;
use tgcdn_shared::token::{Keyring, LinkKey, TokenVerifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const STEP: Duration = Duration::from_secs(10);
const LINK_SECRET: &[u8] = b"edge-hostile-test-link-secret-01";

const FILM: FileRef = FileRef {
    chat_id: -1_001_234,
    msg_id: 42,
};
const SVG: FileRef = FileRef {
    chat_id: -1_001_234,
    msg_id: 43,
};
const PAGE: FileRef = FileRef {
    chat_id: -1_001_234,
    msg_id: 44,
};
const SCRIPT: FileRef = FileRef {
    chat_id: -1_001_234,
    msg_id: 45,
};
const FILM_SIZE: u64 = 2 * CHUNK_SIZE + 777;

fn keyring() -> Keyring {
    Keyring::new(LinkKey::new(1, LINK_SECRET).unwrap(), Vec::new()).unwrap()
}

fn token(file: FileRef) -> String {
    keyring().sign(file, None)
}

fn upstream() -> MemoryUpstream {
    MemoryUpstream::new()
        .with_file(FILM, test_meta(FILM_SIZE, "film.mp4", "video/mp4"))
        .with_file(SVG, test_meta(300, "cat.svg", "image/svg+xml"))
        // No usable type from Telegram: the name's guess decides.
        .with_file(PAGE, test_meta(300, "index.html", ""))
        .with_file(SCRIPT, test_meta(300, "x.js", "text/javascript"))
}

struct Edge {
    addr: SocketAddr,
    state: Arc<AppState>,
    upstream: Arc<MemoryUpstream>,
    client: Client<HttpConnector, Empty<Bytes>>,
    _stop: oneshot::Sender<()>,
}

async fn start_with(upstream: MemoryUpstream, http: HttpSettings) -> Edge {
    let upstream = Arc::new(upstream);
    let options = EdgeOptions {
        cache_bytes: 64 << 20,
        fetch_cap: 32,
        http,
        ..EdgeOptions::default()
    };
    let state = build_state(upstream.clone(), TokenVerifier::new(keyring()), options);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, state.clone(), async {
        let _ = stopped.await;
    }));
    Edge {
        addr,
        state,
        upstream,
        client: Client::builder(TokioExecutor::new()).build_http(),
        _stop: stop,
    }
}

async fn start() -> Edge {
    start_with(upstream(), HttpSettings::default()).await
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("missing header {name}"))
    }
}

impl Edge {
    async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Empty::new()).unwrap();
        tokio::time::timeout(STEP, async {
            let response = self.client.request(request).await.unwrap();
            let (parts, body) = response.into_parts();
            Reply {
                status: parts.status,
                headers: parts.headers,
                body: body.collect().await.unwrap().to_bytes(),
            }
        })
        .await
        .expect("request timed out")
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(Method::GET, path, headers).await
    }
}

#[tokio::test]
async fn every_response_says_nosniff() {
    let edge = start().await;
    let film = format!("/dl/{}/film.mp4", token(FILM));
    let watch = format!("/watch/{}", token(FILM));
    let etag = format!("\"uid-{FILM_SIZE}\"");
    type Case<'a> = (Method, String, Vec<(&'a str, &'a str)>, StatusCode);
    let cases: Vec<Case> = vec![
        (Method::GET, film.clone(), vec![], StatusCode::OK),
        (Method::HEAD, film.clone(), vec![], StatusCode::OK),
        (
            Method::GET,
            film.clone(),
            vec![("range", "bytes=0-0,5-5")],
            StatusCode::PARTIAL_CONTENT,
        ),
        (
            Method::GET,
            film.clone(),
            vec![("if-none-match", etag.as_str())],
            StatusCode::NOT_MODIFIED,
        ),
        (
            Method::GET,
            film.clone(),
            vec![("range", "bytes=999999999-")],
            StatusCode::RANGE_NOT_SATISFIABLE,
        ),
        (Method::GET, watch, vec![], StatusCode::OK),
        (
            Method::GET,
            "/dl/forged/x".into(),
            vec![],
            StatusCode::NOT_FOUND,
        ),
        (Method::GET, "/nope".into(), vec![], StatusCode::NOT_FOUND),
        (Method::POST, film, vec![], StatusCode::METHOD_NOT_ALLOWED),
        (Method::GET, "/healthz".into(), vec![], StatusCode::OK),
        (Method::GET, "/readyz".into(), vec![], StatusCode::OK),
    ];
    for (method, path, headers, status) in cases {
        let reply = edge.send(method.clone(), &path, &headers).await;
        assert_eq!(reply.status, status, "{method} {path}");
        assert_eq!(
            reply.header("x-content-type-options"),
            "nosniff",
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn browser_executable_files_are_sandboxed_attachments() {
    let edge = start().await;
    for (file, name, content_type) in [
        (SVG, "cat.svg", "image/svg+xml"),
        (PAGE, "index.html", "text/html"),
        (SCRIPT, "x.js", "text/javascript"),
    ] {
        // Even when asked for in place (no `?download`), and for ranges too.
        for range in [None, Some("bytes=0-9")] {
            let headers: Vec<(&str, &str)> = range.map(|r| ("range", r)).into_iter().collect();
            let reply = edge
                .get(&format!("/dl/{}/{name}", token(file)), &headers)
                .await;
            assert!(reply.status.is_success(), "{name}: {}", reply.status);
            assert_eq!(reply.header("content-type"), content_type);
            assert!(
                reply
                    .header("content-disposition")
                    .starts_with("attachment;"),
                "{name}: {}",
                reply.header("content-disposition")
            );
            assert_eq!(reply.header("content-security-policy"), "sandbox", "{name}");
            assert_eq!(reply.header("x-content-type-options"), "nosniff");
        }
    }
    // Media stays inline and unsandboxed, so players and the watch page keep working.
    let reply = edge
        .send(Method::HEAD, &format!("/dl/{}/film.mp4", token(FILM)), &[])
        .await;
    assert!(reply.header("content-disposition").starts_with("inline;"));
    assert!(reply.headers.get("content-security-policy").is_none());
}

#[tokio::test]
async fn watch_page_has_a_strict_policy_its_page_satisfies() {
    let edge = start().await;
    let reply = edge.get(&format!("/watch/{}", token(FILM)), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let policy = reply.header("content-security-policy").to_owned();
    let page = String::from_utf8(reply.body.to_vec()).unwrap();
    let directives: Vec<&str> = policy.split(';').map(str::trim).collect();
    assert!(directives.contains(&"default-src 'none'"), "{policy}");
    assert!(directives.contains(&"media-src 'self'"), "{policy}");
    assert!(directives.contains(&"frame-ancestors 'none'"), "{policy}");
    assert!(!policy.contains("unsafe"), "{policy}");
    assert!(
        !policy.contains("script-src"),
        "no script is allowed: {policy}"
    );
    // The player's source is a same-origin path, served by this edge.
    let src_at = page.find("<source src=\"").expect("a player") + "<source src=\"".len();
    let src = &page[src_at..src_at + page[src_at..].find('"').unwrap()];
    assert!(src.starts_with("/dl/"), "{src}");
    let media = edge.get(src, &[("range", "bytes=0-99")]).await;
    assert_eq!(media.status, StatusCode::PARTIAL_CONTENT);
    assert!(media.header("content-type").starts_with("video/"));
    // The page's one inline style is the one whose hash the policy allows (checked in the
    // unit tests); nothing else inline can run.
    assert!(!page.contains("<script"));
    assert_eq!(page.matches("<style>").count(), 1);
}

/// Reads until the server closes the connection; the time that took, or `None` if it was
/// still open after `limit`.
async fn time_until_closed(socket: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
    .map(|()| started.elapsed())
}

/// The client connection preface of HTTP/2 with prior knowledge.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
const H2_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// What a hostile connection sends before falling silent.
#[derive(Debug, Clone, Copy)]
enum Stall {
    Nothing,
    HalfHead,
    HalfPreface,
    PrefaceOnly,
    HalfHeadersFrame,
}

impl Stall {
    fn bytes(self) -> Vec<u8> {
        match self {
            Stall::Nothing => Vec::new(),
            Stall::HalfHead => b"GET /healthz HTTP/1.1\r\nHost: t\r\nRange: bytes=0-".to_vec(),
            Stall::HalfPreface => H2_PREFACE[..10].to_vec(),
            Stall::PrefaceOnly => [H2_PREFACE, H2_SETTINGS].concat(),
            // A HEADERS frame announcing 6 bytes of which only 2 arrive.
            Stall::HalfHeadersFrame => [
                H2_PREFACE,
                H2_SETTINGS,
                &[0, 0, 6, 1, 5, 0, 0, 0, 1, 0x82, 0x86],
            ]
            .concat(),
        }
    }
}

#[tokio::test]
async fn silent_and_half_request_connections_are_closed_while_a_viewer_is_served() {
    const EACH: usize = 500;
    let timeout = Duration::from_secs(1);
    let http = HttpSettings {
        header_read_timeout: timeout,
        idle_timeout: Duration::from_secs(60),
        max_connections: 4 * EACH,
        max_connections_per_ip: 4 * EACH,
        ..HttpSettings::default()
    };
    let edge = Arc::new(start_with(upstream(), http).await);
    // Half of them say nothing; the other half stall in each way a request can.
    let half = [
        Stall::HalfHead,
        Stall::HalfPreface,
        Stall::PrefaceOnly,
        Stall::HalfHeadersFrame,
    ];
    let stalls = (0..2 * EACH).map(|i| {
        if i < EACH {
            Stall::Nothing
        } else {
            half[i % half.len()]
        }
    });
    let opened = Instant::now();
    let mut hostile = Vec::new();
    for stall in stalls {
        let mut socket = TcpStream::connect(edge.addr).await.unwrap();
        socket.write_all(&stall.bytes()).await.unwrap();
        hostile.push(tokio::spawn(async move {
            (stall, time_until_closed(&mut socket, STEP).await)
        }));
    }
    let all_open = opened.elapsed();
    // A viewer keeps asking for bytes while the edge holds the hostile connections.
    let (done, mut finished) = oneshot::channel::<()>();
    let viewer = {
        let edge = edge.clone();
        tokio::spawn(async move {
            let path = format!("/dl/{}/film.mp4", token(FILM));
            let mut worst = Duration::ZERO;
            let mut served = 0;
            loop {
                let started = Instant::now();
                let reply = edge.get(&path, &[("range", "bytes=1000-200000")]).await;
                assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
                worst = worst.max(started.elapsed());
                served += 1;
                if finished.try_recv().is_ok() {
                    return (served, worst);
                }
            }
        })
    };
    let mut slowest = Duration::ZERO;
    for task in hostile {
        let (stall, closed) = task.await.unwrap();
        let closed = closed.unwrap_or_else(|| panic!("a {stall:?} connection stayed open"));
        slowest = slowest.max(closed);
    }
    done.send(()).unwrap();
    let (served, worst) = tokio::time::timeout(STEP, viewer).await.unwrap().unwrap();
    println!(
        "{} hostile connections opened in {all_open:?}, all closed within {slowest:?} \
         (header timeout {timeout:?}); viewer: {served} requests, worst latency {worst:?}",
        2 * EACH
    );
    // Each was closed by its deadline, counted from its accept (plus scheduling slack on a
    // loaded machine), not by the 60 s idle timeout.
    assert!(slowest < timeout + Duration::from_secs(3), "{slowest:?}");
    assert!(served > 0);
    assert!(worst < Duration::from_secs(2), "viewer waited {worst:?}");
    // Only the viewer's keep-alive connection is left (the gauge falls just after a close).
    let open = &edge.state.metrics.connections_open;
    wait_for("hostile connections to leave the gauge", || open.get() <= 1).await;
}

/// Polls `done` until it holds; fails the test after [`STEP`].
async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + STEP;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn h2_pings_close_a_connection_whose_peer_stopped_answering() {
    let http = HttpSettings {
        idle_timeout: Duration::from_secs(60),
        h2_keepalive_interval: Some(Duration::from_millis(200)),
        h2_keepalive_timeout: Duration::from_millis(200),
        ..HttpSettings::default()
    };
    let edge = start_with(upstream(), http).await;
    let mut socket = TcpStream::connect(edge.addr).await.unwrap();
    // One complete request (GET / with :authority t), then the peer answers nothing, not
    // even PINGs; it only reads.
    let headers = [
        0, 0, 6, 1, 5, 0, 0, 0, 1, 0x82, 0x86, 0x84, 0x41, 0x01, b't',
    ];
    socket
        .write_all(&[H2_PREFACE, H2_SETTINGS, &headers].concat())
        .await
        .unwrap();
    let closed = time_until_closed(&mut socket, STEP)
        .await
        .expect("a peer that answers no PING must be dropped long before the idle timeout");
    println!("unanswered PINGs closed the connection after {closed:?}");
    assert!(closed >= Duration::from_millis(200), "{closed:?}");
}

#[tokio::test]
async fn connections_beyond_the_caps_are_closed_at_once() {
    for (total, per_client) in [(100, 3), (3, 100)] {
        let http = HttpSettings {
            max_connections: total,
            max_connections_per_ip: per_client,
            ..HttpSettings::default()
        };
        let edge = start_with(upstream(), http).await;
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(TcpStream::connect(edge.addr).await.unwrap());
        }
        // The cap's worth of connections is accepted and waits for a request...
        for socket in &mut held {
            assert_eq!(
                time_until_closed(socket, Duration::from_millis(100)).await,
                None
            );
        }
        // ...the next one is closed without a request being read.
        let mut refused = TcpStream::connect(edge.addr).await.unwrap();
        let closed = time_until_closed(&mut refused, STEP).await;
        assert!(closed.is_some(), "total {total}, per client {per_client}");
        assert_eq!(edge.state.metrics.connections_refused.get(), 1);
        // A closed connection gives its place back.
        drop(held.pop());
        let deadline = Instant::now() + STEP;
        loop {
            let mut socket = TcpStream::connect(edge.addr).await.unwrap();
            socket
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut reply = Vec::new();
            let _ = tokio::time::timeout(STEP, socket.read_to_end(&mut reply)).await;
            if reply.starts_with(b"HTTP/1.1 200") {
                break;
            }
            assert!(Instant::now() < deadline, "the place never came back");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
async fn metrics_are_served_only_on_their_own_listener() {
    let edge = start().await;
    let film = format!("/dl/{}/film.mp4", token(FILM));
    edge.get(&film, &[("range", "bytes=0-0")]).await;
    // The public port knows nothing of /metrics.
    let public = edge.get("/metrics", &[]).await;
    assert_eq!(public.status, StatusCode::NOT_FOUND);
    assert!(!String::from_utf8_lossy(&public.body).contains("tgcdn_edge"));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_metrics(listener, edge.state.clone(), async {
        let _ = stopped.await;
    }));
    let reply = raw_request(
        metrics,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("tgcdn_edge_http_requests_total{status=\"206\"} 1"),
        "{text}"
    );
    // A scrape is not a request of the public port.
    assert!(
        text.contains("tgcdn_edge_http_requests_in_flight 0\n"),
        "{text}"
    );
    let other = raw_request(
        metrics,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(other.starts_with(b"HTTP/1.1 404"));
    stop.send(()).unwrap();
    tokio::time::timeout(STEP, server).await.unwrap().unwrap();
}

/// Sends raw bytes on a fresh connection and reads the answer until the server closes.
async fn raw_request(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(request).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(STEP, socket.read_to_end(&mut reply))
        .await
        .expect("the server never finished answering")
        .unwrap_or_default();
    reply
}

/// Panics anywhere in this test binary (a handler task included) since the hook was set.
static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            default(info);
        }));
    });
}

/// A small deterministic generator (xorshift): the same corpus every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A forged or damaged token: random text, or a real token with one edit.
fn hostile_token(rng: &mut Rng, real: &str) -> String {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const URL_SAFE: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-._~%";
    let mut token: Vec<u8> = real.bytes().collect();
    match rng.below(6) {
        0 => {
            let len = 1 + rng.below(120);
            return (0..len)
                .map(|_| char::from(BASE62[rng.below(62)]))
                .collect();
        }
        1 => {
            let len = 1 + rng.below(200);
            let text: String = (0..len)
                .map(|_| char::from(URL_SAFE[rng.below(URL_SAFE.len())]))
                .collect();
            // `%` must start an escape to stay a valid URI.
            return text.replace('%', "%25");
        }
        2 => {
            let at = rng.below(token.len());
            let mut with = BASE62[rng.below(62)];
            if with == token[at] {
                with = if with == b'0' { b'1' } else { b'0' };
            }
            token[at] = with;
        }
        3 => token.truncate(rng.below(token.len())),
        4 => token.push(BASE62[rng.below(62)]),
        _ => {
            let (a, b) = (rng.below(token.len()), rng.below(token.len()));
            token.swap(a, b);
            if token == real.as_bytes() {
                token.pop();
            }
        }
    }
    String::from_utf8(token).unwrap()
}

#[tokio::test]
async fn ten_thousand_forged_tokens_are_refused_without_upstream_work() {
    const TOKENS: usize = 10_000;
    const CLIENTS: usize = 8;
    let edge = Arc::new(start().await);
    let real = token(FILM);
    let started = Instant::now();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let edge = edge.clone();
        let real = real.clone();
        clients.push(tokio::spawn(async move {
            let mut rng = Rng(0x5eed_0000 + client as u64 * 7919);
            let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
            for _ in 0..TOKENS / CLIENTS {
                let forged = hostile_token(&mut rng, &real);
                assert_ne!(forged, real);
                let path = if rng.below(2) == 0 {
                    format!("/dl/{forged}/film.mp4")
                } else {
                    format!("/watch/{forged}")
                };
                let reply = edge.get(&path, &[("range", "bytes=0-")]).await;
                assert!(
                    reply.status.is_client_error(),
                    "{path}: {} (a forged token must be refused, never a 5xx)",
                    reply.status
                );
                *statuses.entry(reply.status.as_u16()).or_default() += 1;
            }
            statuses
        }));
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for client in clients {
        for (status, count) in tokio::time::timeout(Duration::from_secs(120), client)
            .await
            .expect("the flood took too long")
            .unwrap()
        {
            *statuses.entry(status).or_default() += count;
        }
    }
    println!(
        "{TOKENS} forged tokens refused in {:?}: statuses {statuses:?}; upstream meta calls {}, chunk calls {}",
        started.elapsed(),
        edge.upstream.meta_calls(),
        edge.upstream.chunk_calls()
    );
    assert_eq!(statuses.values().sum::<usize>(), TOKENS);
    assert_eq!(edge.upstream.meta_calls(), 0);
    assert_eq!(edge.upstream.chunk_calls(), 0);
    let text = edge.state.metrics.render();
    assert!(text.contains("tgcdn_edge_cache_misses_total 0\n"), "{text}");
    assert!(
        text.contains("tgcdn_edge_upstream_latency_seconds_count 0\n"),
        "{text}"
    );
}

/// Requests no client should send: overlong, NUL and control bytes, non-UTF-8, `..`,
/// lying or absurd Range and If-Range values, thousands of ranges.
fn malformed_corpus(film: &str) -> Vec<(String, Vec<u8>)> {
    let head = |request_line: &[u8], headers: &[&[u8]]| {
        let mut bytes = request_line.to_vec();
        bytes.extend_from_slice(b"\r\nHost: t\r\n");
        for header in headers {
            bytes.extend_from_slice(header);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"Connection: close\r\n\r\n");
        bytes
    };
    let get = |path: &[u8]| [b"GET ".as_slice(), path, b" HTTP/1.1"].concat();
    let film_get = get(film.as_bytes());
    let with_range = |value: &[u8]| head(&film_get, &[&[b"Range: ".as_slice(), value].concat()]);
    let many_ranges: String = (0..5_000)
        .map(|i| format!("{}-{}", i * 3, i * 3 + 1))
        .collect::<Vec<_>>()
        .join(",");
    let overlapping: String = (0..2_000).map(|_| "0-").collect::<Vec<_>>().join(",");
    let mut corpus: Vec<(String, Vec<u8>)> = vec![
        (
            "overlong path".into(),
            head(&get(&[b"/dl/".as_slice(), &[b'a'; 100_000]].concat()), &[]),
        ),
        (
            "overlong header".into(),
            head(
                &film_get,
                &[&[b"X-Big: ".as_slice(), &[b'x'; 200_000]].concat()],
            ),
        ),
        ("many headers".into(), {
            let headers: Vec<Vec<u8>> = (0..500)
                .map(|i| format!("X-H{i}: v").into_bytes())
                .collect();
            let refs: Vec<&[u8]> = headers.iter().map(Vec::as_slice).collect();
            head(&film_get, &refs)
        }),
        ("NUL in path".into(), head(&get(b"/dl/abc\0def/x"), &[])),
        (
            "NUL in header".into(),
            head(&film_get, &[b"Range: bytes=0-1\0"]),
        ),
        (
            "non-UTF-8 path".into(),
            head(&get(b"/dl/\xff\xfe\xfd/\xc3\x28"), &[]),
        ),
        (
            "percent-encoded non-UTF-8".into(),
            head(&get(b"/dl/%ff%fe/%c3%28"), &[]),
        ),
        (
            "dot segments".into(),
            head(&get(b"/dl/../../etc/passwd"), &[]),
        ),
        (
            "dot segments in name".into(),
            head(&get(format!("{film}/../../../etc/passwd").as_bytes()), &[]),
        ),
        (
            "encoded dot segments".into(),
            head(&get(b"/watch/%2e%2e/%2e%2e/metrics"), &[]),
        ),
        (
            "absolute-form target".into(),
            head(&get(b"http://evil.example/dl/x"), &[]),
        ),
        ("asterisk target".into(), head(b"OPTIONS * HTTP/1.1", &[])),
        (
            "unknown method".into(),
            head(
                &[b"BREW ".as_slice(), film.as_bytes(), b" HTTP/1.1"].concat(),
                &[],
            ),
        ),
        (
            "HTTP/0.9".into(),
            [b"GET ".as_slice(), film.as_bytes(), b"\r\n"].concat(),
        ),
        (
            "HTTP/3.7".into(),
            head(
                &[b"GET ".as_slice(), film.as_bytes(), b" HTTP/3.7"].concat(),
                &[],
            ),
        ),
        (
            "bare LF".into(),
            [
                b"GET ".as_slice(),
                film.as_bytes(),
                b" HTTP/1.1\nHost: t\n\n",
            ]
            .concat(),
        ),
        (
            "header without colon".into(),
            head(&film_get, &[b"Range bytes=0-1"]),
        ),
        (
            "obs-fold".into(),
            head(&film_get, &[b"Range: bytes=0-1,\r\n 5-6"]),
        ),
        (
            "duplicate Host and Content-Length".into(),
            head(
                &film_get,
                &[b"Host: u", b"Content-Length: 5", b"Content-Length: 7"],
            ),
        ),
        (
            "chunked body on GET".into(),
            head(&film_get, &[b"Transfer-Encoding: chunked"]),
        ),
        (
            "thousands of ranges".into(),
            with_range(format!("bytes={many_ranges}").as_bytes()),
        ),
        (
            "thousands of overlapping ranges".into(),
            with_range(format!("bytes={overlapping}").as_bytes()),
        ),
        (
            "range past u64".into(),
            with_range(b"bytes=99999999999999999999999-"),
        ),
        (
            "range end past u64".into(),
            with_range(b"bytes=0-99999999999999999999999"),
        ),
        (
            "suffix past u64".into(),
            with_range(b"bytes=-99999999999999999999999"),
        ),
        ("negative range".into(), with_range(b"bytes=-5-3")),
        ("reversed range".into(), with_range(b"bytes=9-3")),
        ("empty range".into(), with_range(b"bytes=")),
        ("other unit".into(), with_range(b"pages=1-2")),
        ("non-UTF-8 range".into(), with_range(b"bytes=\xff-\xfe")),
        (
            "overlong range".into(),
            with_range(&[b"bytes=".as_slice(), &[b'1'; 60_000]].concat()),
        ),
        (
            "range with spaces and junk".into(),
            with_range(b"bytes = 0 - 1 ,, , ;x"),
        ),
        (
            "if-range garbage".into(),
            head(
                &film_get,
                &[b"Range: bytes=0-1", b"If-Range: \xff\xfe garbage"],
            ),
        ),
        (
            "if-range weak etag".into(),
            head(&film_get, &[b"Range: bytes=0-1", b"If-Range: W/\"x\""]),
        ),
        (
            "if-range absurd date".into(),
            head(
                &film_get,
                &[
                    b"Range: bytes=0-1",
                    b"If-Range: Fri, 31 Dec 99999 23:59:59 GMT",
                ],
            ),
        ),
        (
            "if-none-match huge list".into(),
            head(
                &film_get,
                &[format!("If-None-Match: {}", vec!["\"a\""; 5_000].join(",")).as_bytes()],
            ),
        ),
        (
            "if-modified-since garbage".into(),
            head(&film_get, &[b"If-Modified-Since: \x01\x02"]),
        ),
        (
            "forwarded-for garbage".into(),
            head(&film_get, &[b"X-Forwarded-For: ::::, 999.1.1.1"]),
        ),
        (
            "h2 preface then garbage".into(),
            [H2_PREFACE, &[0xff; 64]].concat(),
        ),
        (
            "TLS hello on plain port".into(),
            vec![0x16, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3],
        ),
        ("random bytes".into(), {
            let mut rng = Rng(42);
            (0..4096).map(|_| rng.next() as u8).collect()
        }),
    ];
    // Every request once more as a pipelined second request after a good one.
    let good = head(b"GET /healthz HTTP/1.1", &[]).replace_suffix();
    let pipelined: Vec<(String, Vec<u8>)> = corpus
        .iter()
        .map(|(name, bytes)| {
            (
                format!("{name}, pipelined"),
                [good.as_slice(), bytes].concat(),
            )
        })
        .collect();
    corpus.extend(pipelined);
    corpus
}

/// `Connection: close` off a request, so another may follow on the connection.
trait KeepAlive {
    fn replace_suffix(self) -> Vec<u8>;
}

impl KeepAlive for Vec<u8> {
    fn replace_suffix(self) -> Vec<u8> {
        let text = String::from_utf8(self).unwrap();
        text.replace("Connection: close\r\n", "").into_bytes()
    }
}

#[tokio::test]
async fn malformed_requests_get_no_5xx_and_panic_nothing() {
    count_panics();
    // A request that is not complete (and never will be) is closed at the header deadline.
    let http = HttpSettings {
        header_read_timeout: Duration::from_secs(2),
        ..HttpSettings::default()
    };
    let edge = start_with(upstream(), http).await;
    let film = format!("/dl/{}/film.mp4", token(FILM));
    let corpus = malformed_corpus(&film);
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for (name, request) in &corpus {
        let mut socket = TcpStream::connect(edge.addr).await.unwrap();
        // The server may close before reading everything (a reset is an answer too).
        let _ = socket.write_all(request).await;
        let mut reply = Vec::new();
        let read = tokio::time::timeout(STEP, socket.read_to_end(&mut reply)).await;
        assert!(read.is_ok(), "{name}: the connection was never closed");
        // Every status line in the answer (a pipelined pair has two).
        let text = String::from_utf8_lossy(&reply);
        let mut answered = false;
        for line in text
            .split("\r\n")
            .filter(|line| line.starts_with("HTTP/1.1 "))
        {
            let code = &line[9..12.min(line.len())];
            assert!(!code.starts_with('5'), "{name}: {line}");
            answered = true;
            *statuses.entry(code.to_owned()).or_default() += 1;
        }
        if !answered {
            *statuses.entry("closed".to_owned()).or_default() += 1;
        }
    }
    println!("{} malformed requests: {statuses:?}", corpus.len());
    assert_eq!(PANICS.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Still serving, byte-exact.
    let reply = edge.get(&film, &[("range", "bytes=10-19")]).await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        reply.body.as_ref(),
        tgcdn_edge::testing::pattern(10, 20).as_slice()
    );
}

/// Opens a connection from `source` (any 127/8 address is loopback) and sends `head`.
async fn send_from(source: &str, edge: SocketAddr, head: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = tokio::time::timeout(STEP, socket.connect(edge))
        .await
        .expect("connect timed out")
        .unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

#[tokio::test]
async fn aborted_range_flood_from_one_address_neither_starves_nor_costs_another_viewer() {
    const ATTACKER: &str = "127.0.0.1";
    const VIEWER: &str = "127.0.0.2";
    const FLOOD: FileRef = FileRef {
        chat_id: -1_001_234,
        msg_id: 46,
    };
    const FLOOD_CHUNKS: u64 = 600;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let upstream = upstream()
        .with_file(
            FLOOD,
            test_meta(FLOOD_CHUNKS * CHUNK_SIZE, "flood.mkv", "video/x-matroska"),
        )
        .with_gate(gate.clone());
    let edge = start_with(upstream, HttpSettings::default()).await;
    let (chunks, slots) = (&edge.state.chunks, edge.state.chunks.slots());
    let attacker: std::net::IpAddr = ATTACKER.parse().unwrap();
    let viewer: std::net::IpAddr = VIEWER.parse().unwrap();
    let flood_head = |index: u64| {
        format!(
            "GET /dl/{}/flood.mkv HTTP/1.1\r\nHost: edge\r\nRange: bytes={}-\r\n\r\n",
            token(FLOOD),
            index * CHUNK_SIZE
        )
    };

    // As many requests as the address may have open, each reading from its own chunk.
    let mut open = Vec::new();
    for index in 0..64 {
        open.push(send_from(ATTACKER, edge.addr, &flood_head(index)).await);
    }
    wait_for("the attacker to fill its share of slots", || {
        slots.held_by(attacker) == slots.per_client()
    })
    .await;
    assert!(slots.per_client() < slots.capacity());

    // A viewer from elsewhere reaches the core at once, not behind the attacker's queue.
    let film = format!(
        "GET /dl/{}/film.mp4 HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n",
        token(FILM)
    );
    let mut watcher = send_from(VIEWER, edge.addr, &film).await;
    wait_for("the viewer's fetch to reach the core", || {
        slots.held_by(viewer) >= 1
    })
    .await;
    assert_eq!(slots.held_by(attacker), slots.per_client());
    assert_eq!(
        edge.upstream.chunks_in_flight(),
        slots.per_client() + slots.held_by(viewer)
    );

    // The attacker hangs up, and sends 436 more requests it abandons at once.
    drop(open);
    for index in 64..500 {
        drop(send_from(ATTACKER, edge.addr, &flood_head(index)).await);
    }
    wait_for("every abandoned fill to be cancelled", || {
        slots.held_by(attacker) == 0 && chunks.cache().fills_in_progress().0 <= 3
    })
    .await;
    let calls_when_attacker_left = edge.upstream.chunk_calls();
    let cancelled = chunks.cache().counters().cancelled.get();
    assert!(
        cancelled >= slots.per_client() as u64,
        "{cancelled} cancelled"
    );

    // The viewer's film arrives whole, and no abandoned chunk is fetched afterwards.
    gate.add_permits(1_000);
    let mut reply = Vec::new();
    tokio::time::timeout(STEP, watcher.read_to_end(&mut reply))
        .await
        .expect("the viewer was never served")
        .unwrap();
    let body_at = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    assert!(reply.starts_with(b"HTTP/1.1 200"));
    assert_eq!(
        &reply[body_at..],
        &tgcdn_edge::testing::pattern(0, FILM_SIZE)[..]
    );
    let after = edge.upstream.chunk_calls() - calls_when_attacker_left;
    assert!(after <= 3, "{after} chunk calls after the attacker left");
    println!(
        "aborted flood: 500 requests from one address, {cancelled} fills cancelled, \
         {calls_when_attacker_left} chunk calls reached the core (fetch slots {} per client of {})",
        slots.per_client(),
        slots.capacity()
    );
}

/// One client holds every fetch slot (nobody else waits, so it may); a second client's
/// read-ahead queues, then a third client's demand fill: the next free slots go to the
/// demand fills in order, the first client (over its fair share) gets none, and read-ahead
/// waits. A plain FIFO of slots gave the second slot to the queued read-ahead.
#[tokio::test]
async fn a_demand_fill_of_another_client_takes_the_next_free_slot() {
    const HOG: &str = "127.0.0.1";
    const READER: &str = "127.0.0.3";
    const VIEWER: &str = "127.0.0.2";
    const FLOOD: FileRef = FileRef {
        chat_id: -1_001_234,
        msg_id: 47,
    };
    const BIG: FileRef = FileRef {
        chat_id: -1_001_234,
        msg_id: 48,
    };
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let upstream = Arc::new(
        upstream()
            .with_file(
                FLOOD,
                test_meta(64 * CHUNK_SIZE, "flood.mkv", "video/x-matroska"),
            )
            .with_file(
                BIG,
                test_meta(8 * CHUNK_SIZE, "big.mkv", "video/x-matroska"),
            )
            .with_gate(gate.clone()),
    );
    let options = EdgeOptions {
        cache_bytes: 64 << 20,
        fetch_cap: 8,
        fetch_per_client: 8,
        fetch_fair_share: 4,
        ..EdgeOptions::default()
    };
    let state = build_state(upstream.clone(), TokenVerifier::new(keyring()), options);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, state.clone(), async {
        let _ = stopped.await;
    }));
    let slots = state.chunks.slots();
    let ip = |text: &str| -> std::net::IpAddr { text.parse().unwrap() };
    let head = |file: FileRef, name: &str, from: u64| {
        format!(
            "GET /dl/{}/{name} HTTP/1.1\r\nHost: edge\r\nRange: bytes={}-\r\n\r\n",
            token(file),
            from * CHUNK_SIZE
        )
    };

    // The hog alone: its requests' fills take every slot, the rest wait.
    let mut hog = Vec::new();
    for index in [0, 16, 32, 48] {
        hog.push(send_from(HOG, addr, &head(FLOOD, "flood.mkv", index)).await);
    }
    wait_for("the hog to hold every slot and queue more", || {
        slots.held_by(ip(HOG)) == 8 && slots.waiting() >= 8
    })
    .await;
    let hog_waiting = slots.waiting();

    // A reader's demand fill and its read-ahead queue, then a viewer's demand fill.
    let reader = send_from(READER, addr, &head(BIG, "big.mkv", 0)).await;
    wait_for("the reader's fills to queue", || {
        slots.waiting() == hog_waiting + 4
    })
    .await;
    let viewer = send_from(VIEWER, addr, &head(FILM, "film.mp4", 0)).await;
    wait_for("the viewer's fills to queue", || {
        slots.waiting() == hog_waiting + 4 + 3
    })
    .await;

    // One hog fill ends: the reader's demand fill (the older of the two) takes its slot.
    gate.add_permits(1);
    wait_for("the reader's demand fill to start", || {
        slots.held_by(ip(READER)) == 1
    })
    .await;
    // Another ends: the viewer's demand fill goes before the reader's read-ahead.
    gate.add_permits(1);
    wait_for("the viewer's demand fill to start", || {
        slots.held_by(ip(VIEWER)) == 1
    })
    .await;
    assert_eq!((slots.held_by(ip(HOG)), slots.held_by(ip(READER))), (6, 1));

    // Everyone hangs up; every slot comes back.
    drop((hog, reader, viewer));
    gate.add_permits(1_000);
    wait_for("every slot to come back", || slots.free() == 8).await;
}
