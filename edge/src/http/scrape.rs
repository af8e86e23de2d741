//! The metrics listener: `GET /metrics` (Prometheus text) on its own address, loopback by
//! default (`TGCDN_METRICS_LISTEN`), never on the public port.
//!
//! Started by `main` beside [`super::serve`]. HTTP/1.1 only, a handful of connections at a
//! time, each under the header-read and idle deadlines; anything but `/metrics` is 404. A
//! scrape only reads counters: it never runs cache maintenance or touches a request path.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::AppState;
use super::response::EdgeBody;

/// Scrapers connected at once; more are closed at accept. Prometheus uses one.
const MAX_CONNECTIONS: usize = 16;

/// Serves `/metrics` on `listener` until `shutdown` completes.
pub async fn serve_metrics(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "metrics connection refused: too many scrapers");
            continue;
        };
        let state = state.clone();
        let span = tracing::debug_span!("metrics", %peer);
        tokio::spawn(
            async move {
                let _slot = slot;
                let settings = &state.settings;
                let deadline = settings.header_read_timeout + settings.idle_timeout;
                let service = {
                    let state = state.clone();
                    service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(&state, &request)) }
                    })
                };
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(settings.header_read_timeout)
                    .serve_connection(TokioIo::new(stream), service);
                match tokio::time::timeout(deadline, connection).await {
                    Ok(Err(error)) => tracing::debug!(%error, "metrics connection failed"),
                    Err(_) => tracing::debug!("metrics connection timed out"),
                    Ok(Ok(())) => {}
                }
            }
            .instrument(span),
        );
    }
}

fn answer(state: &AppState, request: &Request<Incoming>) -> Response<EdgeBody> {
    let get = request.method() == Method::GET || request.method() == Method::HEAD;
    let (status, content_type, body) = if request.uri().path() != "/metrics" {
        (
            StatusCode::NOT_FOUND,
            "text/plain",
            "404 Not Found\n".into(),
        )
    } else if !get {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "405 Method Not Allowed\n".into(),
        )
    } else {
        (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            state
                .metrics
                .render_with_links(&state.chunks.upstream_links()),
        )
    };
    let mut response = Response::new(if request.method() == Method::HEAD {
        EdgeBody::Empty
    } else {
        EdgeBody::full(body)
    });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
