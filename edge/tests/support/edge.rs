//! One edge on 127.0.0.1:0 (its public port and its metrics listener) in front of the
//! in-memory upstream, and a hyper client to drive it: the harness of the HTTP, addon and
//! hostile tests (`#[path]`-included, so each test binary compiles its own copy).
//!
//! Every request is bounded by the `step` the test file chose (a debug build moving tens of
//! MiB on a busy machine needs more than a header check does).

#![allow(dead_code)]

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
use tgcdn_edge::http::{AppState, serve, serve_metrics};
use tgcdn_edge::testing::MemoryUpstream;
use tgcdn_shared::token::{Keyring, TokenVerifier};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running edge; stops serving when dropped.
pub struct TestEdge {
    pub addr: SocketAddr,
    /// `http://{addr}`.
    pub base: String,
    /// The metrics listener (off the public port).
    pub metrics_base: String,
    pub state: Arc<AppState>,
    pub upstream: Arc<MemoryUpstream>,
    step: Duration,
    /// For requests a test builds itself.
    pub client: Client<HttpConnector, Empty<Bytes>>,
    _stop: oneshot::Sender<()>,
}

/// A whole response.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The value of header `name`; the test fails if it is missing or not text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("missing header {name}"))
    }
}

impl TestEdge {
    /// An edge built from `options`, verifying links with `keyring`, each request bounded
    /// by `step`.
    pub async fn start(
        upstream: MemoryUpstream,
        keyring: Keyring,
        options: EdgeOptions,
        step: Duration,
    ) -> TestEdge {
        let upstream = Arc::new(upstream);
        let state = build_state(upstream.clone(), TokenVerifier::new(keyring), options);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics_base = format!("http://{}", metrics.local_addr().unwrap());
        tokio::spawn(serve_metrics(
            metrics,
            state.clone(),
            std::future::pending(),
        ));
        tokio::spawn(serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        TestEdge {
            addr,
            base: format!("http://{addr}"),
            metrics_base,
            state,
            upstream,
            step,
            client: Client::builder(TokioExecutor::new()).build_http(),
            _stop: stop,
        }
    }

    pub async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Empty::new()).unwrap();
        tokio::time::timeout(self.step, async {
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

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(Method::GET, path, headers).await
    }

    /// The metrics listener's `/metrics` text.
    pub async fn scrape(&self) -> String {
        let request = Request::get(format!("{}/metrics", self.metrics_base))
            .body(Empty::new())
            .unwrap();
        let body = tokio::time::timeout(self.step, async {
            let response = self.client.request(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.into_body().collect().await.unwrap().to_bytes()
        })
        .await
        .expect("scrape timed out");
        String::from_utf8(body.to_vec()).unwrap()
    }
}
