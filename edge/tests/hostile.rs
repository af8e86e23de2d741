//! The edge under hostile traffic: content that could attack the edge's origin, connections
//! that never finish a request, connection caps, a public port without `/metrics`, floods
//! of forged tokens and a corpus of malformed requests. The real server on 127.0.0.1:0 in
//! front of the in-memory upstream, driven over raw TCP or a hyper client.
//!
//! Every network wait is under a deadline; tests that hammer the edge print their figures.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tgcdn_edge::app::{EdgeOptions, build_state};
use tgcdn_edge::http::{HttpSettings, serve};
use tgcdn_edge::testing::{MemoryUpstream, test_meta};
use tgcdn_shared::FileRef;
use tgcdn_shared::chunk::CHUNK_SIZE;
use tgcdn_shared::token::{Keyring, LinkKey, TokenVerifier};
use tokio::net::TcpListener;
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
    client: Client<HttpConnector, Empty<Bytes>>,
    _stop: oneshot::Sender<()>,
}

async fn start_with(upstream: MemoryUpstream, http: HttpSettings) -> Edge {
    let upstream = Arc::new(upstream);
    let options = EdgeOptions {
        cache_bytes: 64 << 20,
        fetch_cap: 32,
        http,
    };
    let state = build_state(upstream.clone(), TokenVerifier::new(keyring()), options);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, state, async {
        let _ = stopped.await;
    }));
    Edge {
        addr,
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
