//! The HTTP server: accept loop, optional TLS termination, per-connection timeouts, per-IP
//! concurrency limit, routing and the one log line per request.
//!
//! Called by `main` (and by tests) through [`serve`] or [`serve_tls`]. One task per
//! connection, TLS handshake included; a failed connection is logged in its task and never
//! ends the accept loop. Handlers live in [`download`], [`watch`] and [`addon`]; statuses for
//! failures are chosen only in [`response`]; certificates and keys in [`tls`]. Nothing here
//! may panic on request data.

pub mod addon;
pub mod download;
pub mod headers;
mod limit;
pub mod response;
pub mod route;
mod scrape;
pub mod tls;
pub mod watch;

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::header::{
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tracing::Instrument;

use crate::body::{BodySummary, ChunkBody};
use crate::fetch::{ChunkSource, MetaSource};
use crate::metrics::EdgeMetrics;
use crate::readahead::WindowLimits;
use crate::tokens::{DEFAULT_TOKEN_CACHE_ENTRIES, TokenCheck};
use download::{DownloadFlags, PreparedBody};
use headers::FileHeaders;
pub use limit::{
    ConnectionLimiter, ConnectionPermit, ConnectionRefused, IdleTracker, IpLimiter, IpPermit,
    client_key,
};
use response::{EdgeBody, EdgeError, error_response};
use route::Route;
pub use scrape::serve_metrics;
use tgcdn_shared::token::TokenVerifier;
use tls::TlsIdentity;

/// Default `h2_max_streams`: a player needs a few streams; per-client requests are capped
/// at `per_ip_limit` anyway.
pub const DEFAULT_H2_MAX_STREAMS: u32 = 32;
/// Default `h2_send_buffer`: as much as HTTP/1's write queue ([`HTTP1_MAX_BUF`]).
pub const DEFAULT_H2_SEND_BUFFER: usize = 64 * 1024;
/// HTTP/2 receive windows, stream and connection: the edge reads no request body, so a
/// client may park no more than the protocol's initial 64 KiB per connection (hyper's
/// default would let it park 1 MiB).
const H2_RECEIVE_WINDOW: u32 = 65_535;

/// Default `max-age` of file responses: an hour, not a day, because a revoked file keeps
/// playing from browser and CDN caches for up to this long (edges drop it within a second).
pub const DEFAULT_CACHE_MAX_AGE_SECS: u64 = 3_600;

/// HTTP behaviour knobs (validated configuration).
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// A client must send a request's headers within this.
    pub header_read_timeout: Duration,
    /// A connection with no bytes moving either way for this long is closed. Keep it above
    /// the chunk deadline so a request waiting on a slow core is not cut.
    pub idle_timeout: Duration,
    /// Concurrent requests one client (IPv4 address, IPv6 /64) may have.
    pub per_ip_limit: usize,
    /// Open connections the edge accepts; more are closed at once.
    pub max_connections: usize,
    /// Open connections one client (IPv4 address, IPv6 /64) may have; not applied with
    /// `trust_forwarded_for` (every connection then comes from the proxy).
    pub max_connections_per_ip: usize,
    /// HTTP/2 PING interval; a PING not answered within `h2_keepalive_timeout` closes the
    /// connection (a dead peer is found long before `idle_timeout`). `None`: no PINGs.
    pub h2_keepalive_interval: Option<Duration>,
    pub h2_keepalive_timeout: Duration,
    /// Streams (requests) one HTTP/2 connection may have open at once; the peer is told in
    /// SETTINGS and a stream beyond it is refused (`RST_STREAM REFUSED_STREAM`).
    pub h2_max_streams: u32,
    /// Response bytes HTTP/2 queues per stream before hyper stops polling the body. A frame
    /// holding a chunk is counted by the in-flight budget; what this bounds is the queue of
    /// budget-less copies, so one connection pins at most `h2_max_streams` × this.
    pub h2_send_buffer: usize,
    /// Read-ahead bounds of one response body.
    pub readahead: WindowLimits,
    /// `Cache-Control: max-age` of file responses (capped by a link's expiry). Every link is
    /// revocable and a revocation cannot reach browser or CDN caches, so this bounds how
    /// long a revoked file may still play from them.
    pub cache_max_age_secs: u64,
    /// After shutdown is signalled, how long responses in flight may take to finish.
    pub drain_timeout: Duration,
    /// Take the client address for the per-IP limit from the last `X-Forwarded-For` entry
    /// (the one the trusted proxy in front added). Only for edges behind such a proxy:
    /// otherwise any client could pick its own address.
    pub trust_forwarded_for: bool,
    /// Verified link tokens remembered (one slot each); 0 verifies every request.
    pub token_cache_entries: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            per_ip_limit: 64,
            max_connections: 20_000,
            max_connections_per_ip: 256,
            h2_keepalive_interval: Some(Duration::from_secs(30)),
            h2_keepalive_timeout: Duration::from_secs(20),
            h2_max_streams: DEFAULT_H2_MAX_STREAMS,
            h2_send_buffer: DEFAULT_H2_SEND_BUFFER,
            readahead: WindowLimits::default(),
            cache_max_age_secs: DEFAULT_CACHE_MAX_AGE_SECS,
            drain_timeout: Duration::from_secs(10),
            trust_forwarded_for: false,
            token_cache_entries: DEFAULT_TOKEN_CACHE_ENTRIES,
        }
    }
}

/// Everything a request handler needs, shared by all connections.
pub struct AppState {
    pub verifier: TokenCheck,
    pub addon: addon::AddonEdge,
    pub chunks: ChunkSource,
    pub metas: MetaSource<FileHeaders>,
    pub metrics: EdgeMetrics,
    pub settings: HttpSettings,
    /// `Cache-Control` of a file response whose link never expires (most links).
    cache_control: Option<HeaderValue>,
    limiter: IpLimiter,
    connections: ConnectionLimiter,
    boundary_counter: AtomicU64,
}

impl AppState {
    pub fn new(
        verifier: TokenVerifier,
        chunks: ChunkSource,
        metas: MetaSource<FileHeaders>,
        metrics: EdgeMetrics,
        settings: HttpSettings,
        addon: addon::AddonEdge,
    ) -> Self {
        // Seed boundaries from the start time so two edges rarely share a sequence.
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        AppState {
            cache_control: headers::header_value(
                "cache-control",
                headers::cache_control(settings.cache_max_age_secs, None, 0),
            ),
            limiter: IpLimiter::new(settings.per_ip_limit),
            connections: ConnectionLimiter::new(
                settings.max_connections,
                (!settings.trust_forwarded_for).then_some(settings.max_connections_per_ip),
            ),
            verifier: TokenCheck::new(verifier, settings.token_cache_entries),
            addon,
            chunks,
            metas,
            metrics,
            settings,
            boundary_counter: AtomicU64::new(seed),
        }
    }

    /// A multipart boundary unlikely to appear in any file (nginx uses a counter too).
    pub fn next_boundary(&self) -> String {
        let n = self.boundary_counter.fetch_add(1, Ordering::Relaxed);
        format!("tgcdn{n:020}")
    }
}

/// Serves HTTP/1.1 and HTTP/2 (h2c) on `listener` until `shutdown` completes, then stops
/// accepting, asks every connection to finish its requests in flight (HTTP/1 keep-alive
/// ends, HTTP/2 sends GOAWAY) and returns once they have, or after `drain_timeout`.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) {
    accept_loop(listener, state, None, shutdown).await;
}

/// [`serve`] behind TLS: HTTP/1.1 and HTTP/2 negotiated by ALPN. Each handshake runs in its
/// connection's task under the header-read timeout, so a slow or garbage handshake costs
/// only that connection.
pub async fn serve_tls(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Arc<TlsIdentity>,
    shutdown: impl Future<Output = ()>,
) {
    accept_loop(listener, state, Some(tls), shutdown).await;
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<Arc<TlsIdentity>>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let accepted = Instant::now();
        // Refused before it costs a task: dropping the socket closes it.
        let permit = match state.connections.try_acquire(peer.ip()) {
            Ok(permit) => permit,
            Err(refused) => {
                state.metrics.connections_refused.inc();
                tracing::debug!(%peer, %refused, "connection refused");
                continue;
            }
        };
        let state = state.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        let span = tracing::debug_span!("connection", %peer);
        tokio::spawn(
            async move {
                let _permit = permit;
                let connection = Accepted {
                    stream,
                    peer,
                    at: accepted,
                };
                if let Err(error) = serve_connection(connection, state, tls, watcher).await {
                    tracing::debug!(%error, "connection ended with an error");
                }
            }
            .instrument(span),
        );
    }
    drain(graceful, state.settings.drain_timeout).await;
}

async fn drain(graceful: GracefulShutdown, timeout: Duration) {
    let open = graceful.count();
    tracing::info!(open, ?timeout, "draining connections");
    if tokio::time::timeout(timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain timed out; dropping the remaining connections");
    }
}

type ConnectionError = Box<dyn std::error::Error + Send + Sync>;

/// A TLS client that has not finished its handshake within the header-read timeout.
#[derive(Debug, thiserror::Error)]
#[error("TLS handshake not finished within {0:?}")]
struct HandshakeTimeout(Duration);

/// A connection just accepted.
struct Accepted {
    stream: TcpStream,
    peer: SocketAddr,
    at: Instant,
}

async fn serve_connection(
    Accepted { stream, peer, at }: Accepted,
    state: Arc<AppState>,
    tls: Option<Arc<TlsIdentity>>,
    watcher: Watcher,
) -> Result<(), ConnectionError> {
    // Small writes (headers) should not wait for Nagle; bodies are large frames anyway.
    let _ = stream.set_nodelay(true);
    let connections_open = state.metrics.connections_open.clone();
    connections_open.inc();
    let _open = scopeguard(move || {
        connections_open.dec();
    });
    let (io, idle) = IdleTracker::wrap(stream);
    // The handshake, the protocol detection and the HTTP/2 preface are all part of "sending
    // the first request's headers": one deadline from the accept covers them.
    let timeout = state.settings.header_read_timeout;
    let first_head_by = at + timeout;
    let Some(tls) = tls else {
        return serve_http(io, idle, peer, first_head_by, state, watcher).await;
    };
    let io = tokio::time::timeout_at(first_head_by.into(), tls.acceptor().accept(io))
        .await
        .map_err(|_| HandshakeTimeout(timeout))??;
    serve_http(io, idle, peer, first_head_by, state, watcher).await
}

/// Completes at `deadline` unless a request head has arrived by then (then never): the
/// cover for what hyper's HTTP/1 header timeout does not see, a silent socket waiting in
/// protocol detection and an HTTP/2 connection that never completes a HEADERS block.
async fn first_head_deadline(seen: &AtomicBool, deadline: Instant) {
    tokio::time::sleep_until(deadline.into()).await;
    if seen.load(Ordering::Relaxed) {
        std::future::pending::<()>().await;
    }
}

/// HTTP/1.1 or HTTP/2 (told apart by the client's first bytes) on an established byte
/// stream, until the client leaves, the connection idles out or shutdown drains it.
async fn serve_http<IO>(
    io: IO,
    idle: limit::IdleWatch,
    peer: SocketAddr,
    first_head_by: Instant,
    state: Arc<AppState>,
    watcher: Watcher,
) -> Result<(), ConnectionError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let settings = state.settings.clone();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        // What hyper queues per connection before it stops polling the body: a stalled
        // client then holds one frame and a few budget-less copies, not ~400 KB of them.
        .max_buf_size(HTTP1_MAX_BUF);
    // PINGs find a dead peer quickly; they are too small to count as activity for the idle
    // watchdog (see `limit::IDLE_NOISE_BYTES`), so they never keep an idle connection open.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(settings.h2_keepalive_interval)
        .keep_alive_timeout(settings.h2_keepalive_timeout)
        // What one connection can pin outside the in-flight budget: its streams' queues of
        // budget-less copies (hyper's defaults: 200 streams × 400 KB) and request bodies.
        .max_concurrent_streams(settings.h2_max_streams)
        .max_send_buf_size(settings.h2_send_buffer)
        .initial_stream_window_size(H2_RECEIVE_WINDOW)
        .initial_connection_window_size(H2_RECEIVE_WINDOW);
    let peer_ip = peer.ip();
    let head_seen = Arc::new(AtomicBool::new(false));
    let service = {
        let head_seen = head_seen.clone();
        service_fn(move |request| {
            head_seen.store(true, Ordering::Relaxed);
            let state = state.clone();
            async move { Ok::<_, Infallible>(handle(state, request, peer_ip).await) }
        })
    };
    let connection = watcher.watch(builder.serve_connection(TokioIo::new(io), service));
    tokio::select! {
        result = connection => result,
        () = idle.expired(settings.idle_timeout) => {
            tracing::debug!(%peer, "closing idle connection");
            Ok(())
        }
        () = first_head_deadline(&head_seen, first_head_by) => {
            tracing::debug!(%peer, "closing a connection that sent no request head in time");
            Ok(())
        }
    }
}

/// Status logged for a request whose client went away before a response existed (the
/// handler's future was dropped), as nginx does.
const CLIENT_CLOSED: u16 = 499;

/// hyper's HTTP/1 write queue per connection (it stops polling a body beyond it); also the
/// largest request head it reads, far above any real one.
const HTTP1_MAX_BUF: usize = 64 * 1024;

/// What one request's log line and metrics need; recorded exactly once, by `finish` or, if
/// hyper drops the request before that, by `Drop` (so gauges never drift).
struct RequestLog {
    /// Health probes log at debug: they would drown the access log.
    probe: bool,
    method: Method,
    /// Redacted only when a line is written (see [`route::RedactedPath`]).
    uri: http::Uri,
    route: &'static str,
    started: Instant,
    state: Arc<AppState>,
    _permit: Option<IpPermit>,
    recorded: bool,
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        if !self.recorded {
            let summary = BodySummary {
                error: Some("client closed before the response".to_owned()),
                ..BodySummary::default()
            };
            self.record(
                StatusCode::from_u16(CLIENT_CLOSED).unwrap_or(StatusCode::BAD_REQUEST),
                summary,
            );
        }
    }
}

impl RequestLog {
    fn finish(mut self, status: StatusCode, summary: BodySummary) {
        self.record(status, summary);
    }

    fn record(&mut self, status: StatusCode, summary: BodySummary) {
        self.recorded = true;
        let metrics = &self.state.metrics;
        metrics.count_request(status.as_u16());
        metrics.bytes_sent.inc_by(summary.bytes_sent);
        metrics.requests_in_flight.dec();
        macro_rules! access_log {
            ($level:expr) => {
                tracing::event!(
                    target: "tgcdn_edge::access",
                    $level,
                    method = %self.method,
                    path = %route::RedactedPath(self.uri.path()),
                    route = self.route,
                    status = status.as_u16(),
                    bytes = summary.bytes_sent,
                    cache = summary.cache_outcome(),
                    complete = summary.completed,
                    error = summary.error.as_deref().unwrap_or(""),
                    ms = self.started.elapsed().as_millis() as u64,
                )
            };
        }
        if self.probe {
            access_log!(tracing::Level::DEBUG);
        } else {
            access_log!(tracing::Level::INFO);
        }
    }
}

/// One request, start to finish. Never fails: errors become responses here.
pub async fn handle(
    state: Arc<AppState>,
    request: Request<Incoming>,
    peer: IpAddr,
) -> Response<EdgeBody> {
    let (parts, _body) = request.into_parts();
    let state = &state;
    let path = parts.uri.path();
    let route = route::route(&parts.method, path, parts.uri.query());
    let head = parts.method == Method::HEAD;
    state.metrics.requests_in_flight.inc();
    let probe = matches!(route, Route::Healthz | Route::Readyz);
    let client = if state.settings.trust_forwarded_for {
        forwarded_client(&parts.headers).unwrap_or(peer)
    } else {
        peer
    };
    // Probes are never refused for a busy address.
    let permit = if probe {
        None
    } else {
        state.limiter.try_acquire(client)
    };
    let refused = permit.is_none() && !probe;
    let log = RequestLog {
        probe,
        method: parts.method.clone(),
        uri: parts.uri.clone(),
        route: route.name(),
        started: Instant::now(),
        state: Arc::clone(state),
        _permit: permit,
        recorded: false,
    };
    let outcome = if refused {
        Err(EdgeError::TooManyRequests)
    } else {
        dispatch(state, &route, &parts.headers, client).await
    };
    let (mut response, prepared_body) = match outcome {
        Ok(parts) => parts,
        Err(error) => (error_response(&error, head), PreparedBody::Empty),
    };
    if let Route::Addon { .. } = route {
        addon::add_cors(response.headers_mut());
    }
    let status = response.status();
    match prepared_body {
        PreparedBody::Segments {
            file,
            file_size,
            segments,
            len: _,
        } => {
            let mut body = ChunkBody::new(
                state.chunks.clone(),
                file,
                file_size,
                segments,
                state
                    .settings
                    .readahead
                    .for_core(state.chunks.core_connections()),
                Box::new(|_| {}),
            )
            .for_client(client);
            // The head waits for the first chunk: a chunk the core cannot serve is an error
            // status here, not a 200 whose body stops before its first byte.
            match body.first_chunk().await {
                Ok(()) => {
                    body.set_on_finish(Box::new(move |summary| log.finish(status, summary)));
                    *response.body_mut() = EdgeBody::Chunks(Box::new(body));
                }
                Err(error) => {
                    drop(body);
                    let error = EdgeError::Upstream(error);
                    response = error_response(&error, head);
                    let bytes_sent = match response.body() {
                        EdgeBody::Full(Some(bytes)) => bytes.len() as u64,
                        _ => 0,
                    };
                    let summary = BodySummary {
                        bytes_sent,
                        completed: true,
                        error: Some(error.to_string()),
                        ..BodySummary::default()
                    };
                    log.finish(response.status(), summary);
                }
            }
        }
        PreparedBody::Fixed(bytes) => {
            let summary = BodySummary {
                bytes_sent: if head { 0 } else { bytes.len() as u64 },
                completed: true,
                ..BodySummary::default()
            };
            if !head {
                *response.body_mut() = EdgeBody::full(bytes);
            }
            log.finish(status, summary);
        }
        PreparedBody::Empty => {
            let bytes_sent = match response.body() {
                EdgeBody::Full(Some(bytes)) => bytes.len() as u64,
                _ => 0,
            };
            log.finish(
                status,
                BodySummary {
                    bytes_sent,
                    completed: true,
                    ..BodySummary::default()
                },
            );
        }
    }
    // Browsers must take every type as labelled: no file, error page or probe is ever
    // sniffed into HTML or script.
    response
        .headers_mut()
        .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Runs the handler for a route; the body is attached by the caller.
async fn dispatch(
    state: &AppState,
    route: &Route<'_>,
    request_headers: &http::HeaderMap,
    client: IpAddr,
) -> Result<(Response<EdgeBody>, PreparedBody), EdgeError> {
    match *route {
        Route::Download {
            token,
            head,
            download,
        } => {
            let flags = DownloadFlags {
                head,
                attachment: download,
            };
            let prepared = download::prepare(
                state,
                token,
                flags,
                request_headers,
                Some(client),
                unix_now(),
            )
            .await?;
            let mut response = Response::new(EdgeBody::Empty);
            *response.status_mut() = prepared.status;
            *response.headers_mut() = prepared.headers;
            Ok((response, prepared.body))
        }
        Route::Watch { token } => {
            let link = state.verifier.verify(token, unix_now())?;
            let meta = state.metas.meta(link.file()).await?;
            let page = watch::render(token, &meta.meta);
            let (mut response, body) =
                fixed(StatusCode::OK, "text/html; charset=utf-8", page.into());
            response.headers_mut().insert(
                CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(watch::content_security_policy()),
            );
            Ok((response, body))
        }
        Route::Addon { path, method } => Ok(state.addon.serve(method, path).await),
        Route::Healthz => Ok(fixed(StatusCode::OK, "text/plain", "ok\n".into())),
        Route::Readyz => {
            if state.chunks.upstream_ready() {
                Ok(fixed(StatusCode::OK, "text/plain", "ready\n".into()))
            } else {
                Err(EdgeError::NotReady)
            }
        }
        Route::MethodNotAllowed { allow } => Err(EdgeError::MethodNotAllowed { allow }),
        Route::NotFound => Err(EdgeError::NotFound),
    }
}

fn fixed(
    status: StatusCode,
    content_type: &'static str,
    bytes: bytes::Bytes,
) -> (Response<EdgeBody>, PreparedBody) {
    let mut response = Response::new(EdgeBody::Empty);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    (response, PreparedBody::Fixed(bytes))
}

/// The address the proxy in front of us saw: the last entry of the last `X-Forwarded-For`.
fn forwarded_client(headers: &http::HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?;
    last.to_str().ok()?.rsplit(',').next()?.trim().parse().ok()
}

/// Runs `f` when dropped: counts that must go down on every exit path.
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_client_is_the_last_hop() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(forwarded_client(&headers), None);
        headers.append(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 10.0.0.1"),
        );
        headers.append(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 2001:db8::7"),
        );
        assert_eq!(forwarded_client(&headers), "2001:db8::7".parse().ok());
        headers.append("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(forwarded_client(&headers), None);
    }
}
