//! The addon relay from the core's side: addon requests over real QUIC (the edge's own
//! `QuicUpstream` against the core's `QuicServer`) and through the one-box
//! `InProcessUpstream` reach the `AddonService` port unchanged, answers come back with
//! their cache lifetimes, and every port error becomes the same wire error on both paths.
//! Then the whole chain: an HTTP edge in front of the QUIC link, its cache sparing the
//! core a second call; and a one-box core started with the port, against the emulator. The
//! port is a test catalogue; the catalogue itself is not here.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use support::{Deployment, bounded, http_get};
use tgcdn_core::addon::{AddonAnswer, AddonError, AddonService, CacheHints};
use tgcdn_core::bots::BotPool;
use tgcdn_core::config::OneBoxEdge;
use tgcdn_core::fetch::{FetchConfig, Fetcher};
use tgcdn_core::onebox::InProcessUpstream;
use tgcdn_core::quic::handler::Handler;
use tgcdn_core::quic::{EdgeRegistry, QuicConfig, QuicServer, tls};
use tgcdn_core::resolve::{ResolveConfig, Resolver};
use tgcdn_core::runtime::Running;
use tgcdn_core::store::Store;
use tgcdn_edge::app::{EdgeOptions, build_state};
use tgcdn_edge::http::addon::AddonSettings;
use tgcdn_edge::upstream::quic::{QuicSettings, QuicUpstream};
use tgcdn_edge::upstream::{Upstream, UpstreamError};
use tgcdn_shared::token::TokenVerifier;
use tgcdn_shared::wire::{AddonHeader, AddonRequest, WireError, limits};

const SECRET: &[u8] = b"cluster secret of the addon test";
const EDGE_URL: &str = "https://edge-7.cdn.example";
const MANIFEST: &str = r#"{"id":"org.tgcdn.test","version":"0.0.1"}"#;
const HINTS: CacheHints = CacheHints {
    max_age_secs: 600,
    stale_revalidate_secs: 60,
    stale_error_secs: 3600,
};

/// Answers by path; remembers every request it saw.
#[derive(Default)]
struct TestCatalogue {
    calls: AtomicUsize,
    seen: Mutex<Vec<AddonRequest>>,
}

impl AddonService for TestCatalogue {
    fn handle(&self, request: &AddonRequest) -> Result<AddonAnswer, AddonError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().unwrap().push(request.clone());
        let json = match request.path.as_str() {
            "/manifest.json" => Bytes::from_static(MANIFEST.as_bytes()),
            "/stream/movie/tt1.json" => Bytes::from(format!(
                r#"{{"streams":[{{"url":"{}/dl/x"}}]}}"#,
                request.base_url
            )),
            "/meta/movie/tt404.json" => return Err(AddonError::NotFound),
            "/catalog/movie/nope.json" => {
                return Err(AddonError::BadRequest("no such catalogue".into()));
            }
            "/stream/movie/tt502.json" => return Err(AddonError::Unavailable("tmdb down".into())),
            "/stream/movie/tt500.json" => return Err(AddonError::Internal("bug".into())),
            "/catalog/movie/huge.json" => {
                Bytes::from(vec![b' '; limits::MAX_ADDON_PAYLOAD as usize + 1])
            }
            _ => return Err(AddonError::NotFound),
        };
        Ok(AddonAnswer { json, cache: HINTS })
    }
}

/// A handler whose download path is never used: addon requests touch no bot.
fn handler(store: &Store, addon: Option<Arc<dyn AddonService>>) -> (Arc<Handler>, Arc<BotPool>) {
    let pool = Arc::new(BotPool::new(&[(1, 1)]));
    let resolver = Resolver::new(
        store.clone(),
        Arc::clone(&pool),
        Vec::new(),
        ResolveConfig::default(),
    );
    let fetcher = Fetcher::new(Arc::clone(&pool), Vec::new(), FetchConfig::default());
    let handler = Handler::with_addon(
        resolver,
        fetcher,
        EdgeRegistry::new(store.clone()),
        SECRET.to_vec(),
        15,
        addon,
    );
    (handler, pool)
}

async fn serve(store: &Store, handler: Arc<Handler>) -> QuicServer {
    let identity = tls::load_or_generate(store, None).await.unwrap();
    let config = QuicConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..QuicConfig::default()
    };
    QuicServer::bind(config, identity, handler).unwrap()
}

fn fingerprint(hex: &str) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    bytes
}

async fn edge_link(server: &QuicServer) -> QuicUpstream {
    let mut settings = QuicSettings::new(
        server.local_addr().to_string(),
        fingerprint(server.fingerprint()),
        SECRET.to_vec(),
    );
    settings.public_base_url = EDGE_URL.to_owned();
    let upstream = QuicUpstream::start(settings).unwrap();
    assert!(
        upstream
            .wait_ready(std::time::Duration::from_secs(10))
            .await
    );
    upstream
}

fn request(path: &str) -> AddonRequest {
    AddonRequest {
        path: path.to_owned(),
        query: "search=x&skip=100".to_owned(),
        base_url: EDGE_URL.to_owned(),
    }
}

/// The same expectations for any upstream: over QUIC and in-process alike.
async fn check_answers_and_errors(upstream: &dyn Upstream, catalogue: &TestCatalogue) {
    let reply = upstream.addon(request("/manifest.json")).await.unwrap();
    assert_eq!(reply.json, MANIFEST.as_bytes());
    assert_eq!(
        reply.header,
        AddonHeader {
            len: MANIFEST.len() as u32,
            max_age_secs: 600,
            stale_revalidate_secs: 60,
            stale_error_secs: 3600,
        }
    );
    let seen = catalogue.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        seen,
        request("/manifest.json"),
        "the port sees the request unchanged"
    );

    let stream = upstream
        .addon(request("/stream/movie/tt1.json"))
        .await
        .unwrap();
    let text = String::from_utf8(stream.json.to_vec()).unwrap();
    assert!(text.contains(&format!("{EDGE_URL}/dl/x")), "{text}");

    let cases = [
        ("/meta/movie/tt404.json", WireError::NotFound),
        (
            "/catalog/movie/nope.json",
            WireError::BadRequest("no such catalogue".into()),
        ),
        ("/stream/movie/tt502.json", WireError::Unavailable),
        ("/stream/movie/tt500.json", WireError::Internal),
        ("/catalog/movie/huge.json", WireError::Internal),
    ];
    for (path, wire) in cases {
        assert_eq!(
            upstream.addon(request(path)).await,
            Err(UpstreamError::Core(wire)),
            "{path}"
        );
    }
}

#[tokio::test]
async fn addon_requests_reach_the_port_over_quic_and_in_process_alike() {
    bounded(async {
        let store = Store::temporary().unwrap();
        let catalogue = Arc::new(TestCatalogue::default());
        let (handler, pool) = handler(&store, Some(catalogue.clone()));
        let server = serve(&store, Arc::clone(&handler)).await;
        let quic = edge_link(&server).await;
        check_answers_and_errors(&quic, &catalogue).await;
        let calls = catalogue.calls.load(Ordering::SeqCst);
        assert_eq!(calls, 7);
        let one_box = InProcessUpstream::new(handler, pool, -1_000_000_000_001);
        check_answers_and_errors(&one_box, &catalogue).await;
        assert_eq!(catalogue.calls.load(Ordering::SeqCst), 2 * calls);
        // A failed request does not hurt the connection: the next one is answered.
        assert!(quic.addon(request("/manifest.json")).await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn a_core_without_an_addon_says_so_on_both_paths() {
    bounded(async {
        let store = Store::temporary().unwrap();
        let (handler, pool) = handler(&store, None);
        let server = serve(&store, Arc::clone(&handler)).await;
        let quic = edge_link(&server).await;
        let disabled = Err(UpstreamError::Core(WireError::AddonDisabled));
        assert_eq!(quic.addon(request("/manifest.json")).await, disabled);
        let one_box = InProcessUpstream::new(handler, pool, -1_000_000_000_001);
        assert_eq!(one_box.addon(request("/manifest.json")).await, disabled);
    })
    .await;
}

#[tokio::test]
async fn an_edge_relays_addon_routes_to_the_core_and_caches_the_answers() {
    bounded(async {
        let store = Store::temporary().unwrap();
        let catalogue = Arc::new(TestCatalogue::default());
        let (handler, _pool) = handler(&store, Some(catalogue.clone()));
        let server = serve(&store, handler).await;
        let upstream = Arc::new(edge_link(&server).await);
        let options = EdgeOptions {
            addon: AddonSettings {
                base_url: Some(EDGE_URL.to_owned()),
                ..AddonSettings::default()
            },
            ..EdgeOptions::default()
        };
        let state = build_state(upstream, TokenVerifier::new(support::keyring()), options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(tgcdn_edge::http::serve(
            listener,
            state,
            std::future::pending(),
        ));

        for _ in 0..3 {
            let reply = http_get(
                addr,
                "/manifest.json",
                &[("X-Forwarded-Host", "evil.example")],
            )
            .await;
            assert_eq!(reply.status, 200);
            assert_eq!(reply.body, MANIFEST.as_bytes());
            assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
            assert_eq!(
                reply.header("cache-control"),
                Some("public, max-age=600, stale-while-revalidate=60, stale-if-error=3600")
            );
        }
        assert_eq!(
            catalogue.calls.load(Ordering::SeqCst),
            1,
            "repeats came from the edge"
        );
        let seen = catalogue.seen.lock().unwrap()[0].clone();
        assert_eq!(seen.base_url, EDGE_URL, "a forwarded host reached the core");

        let missing = http_get(addr, "/meta/movie/tt404.json", &[]).await;
        assert_eq!(missing.status, 404);
        let bad = http_get(addr, "/catalog/movie/nope.json", &[]).await;
        assert_eq!(bad.status, 400);
        let down = http_get(addr, "/stream/movie/tt502.json", &[]).await;
        assert_eq!(down.status, 502);
        for reply in [&missing, &bad, &down] {
            assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
        }
    })
    .await;
}

/// `Running` carries the port to its one-box edge, whose addon base URL is the core's own
/// public URL when the edge's settings give none.
#[tokio::test]
async fn a_one_box_core_serves_the_addon_through_its_port() {
    bounded(async {
        let deployment = Deployment::start().await;
        let dir = tempfile::tempdir().unwrap();
        deployment.provision(dir.path()).await;
        let mut config = deployment.config(dir.path(), &[]);
        config.quic_enabled = false;
        config.one_box = Some(OneBoxEdge::on("127.0.0.1:0".parse().unwrap()));
        let catalogue = Arc::new(TestCatalogue::default());
        let core = Running::start_with_addon(&config, Some(catalogue.clone()))
            .await
            .expect("starts");
        let addr = core.edge_addr().expect("one-box edge");
        let reply = http_get(addr, "/stream/movie/tt1.json", &[]).await;
        assert_eq!(reply.status, 200);
        let text = String::from_utf8(reply.body).unwrap();
        let public = config.public_url.to_string();
        assert!(text.contains(&format!("{public}/dl/x")), "{text}");
        assert_eq!(catalogue.calls.load(Ordering::SeqCst), 1);
        core.shutdown().await.expect("clean shutdown");
    })
    .await;
}
