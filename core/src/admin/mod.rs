//! The admin HTTP listener and its client: `/metrics` (Prometheus text), `/admin/bots`,
//! `/admin/edges`, `/admin/dcs` and `/admin/report` (JSON), all rendered from one
//! [`CoreReport`] per request; `POST /admin/reindex[?channel=ID]`, which queues a
//! catalogue back-fill (`tgcdn-core reindex` calls it through [`request_reindex`]); and
//! `POST /admin/links/{mint,inspect,revoke,unrevoke}` ([`links`], `tgcdn-core link …`).
//!
//! Started by [`crate::runtime::Running`] on `TGCDN_ADMIN_LISTEN` (loopback by default).
//! Every request but `GET /metrics` (counters only; probes and Prometheus scrape it) passes
//! [`access`] first: a bearer token when one is configured (required beyond loopback), else
//! a loopback `Host` (against DNS rebinding). [`fetch_report`] is
//! what `tgcdn-core status` uses — the running core holds the sled lock, so the command
//! cannot open the database itself. HTTP/1.1 only, one task per connection, every read and
//! write under a deadline, request bodies bounded; an error ends that connection, never the
//! accept loop.

pub mod access;
pub mod links;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::catalog::backfill::{BackfillHandle, ReindexError};
use crate::catalog::enrich::LibrarySnapshot;
use crate::catalog::index::{BackfillProgress, IndexSnapshot};
use crate::report::{CoreReport, Reporter, RetryReport};
use crate::revoke::LinkInfo;
use access::AdminAccess;
use links::{LinkAdmin, LinkRequest, MintRequest};

/// How long one admin request may take end to end, and the client's overall deadline.
const ADMIN_DEADLINE: Duration = Duration::from_secs(5);

/// Everything the admin routes answer from.
pub struct AdminState {
    pub reporter: Reporter,
    /// The catalogue back-fill, for `/admin/reindex`; `None` without a catalogue.
    pub backfill: Option<BackfillHandle>,
    /// The link routes; `None` answers them 404.
    pub links: Option<LinkAdmin>,
    pub access: AdminAccess,
}

/// Serves the report routes only (no re-index, no links), loopback names only.
pub async fn serve(listener: TcpListener, reporter: Reporter, stopped: watch::Receiver<bool>) {
    let state = AdminState {
        reporter,
        backfill: None,
        links: None,
        access: AdminAccess::default(),
    };
    serve_with(listener, Arc::new(state), stopped).await;
}

/// Serves every admin route `state` enables until `stopped` turns true.
pub async fn serve_with(
    listener: TcpListener,
    state: Arc<AdminState>,
    mut stopped: watch::Receiver<bool>,
) {
    // The guard `wait_for` returns is not Send: drop it inside this future.
    let stop = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(request, &state).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(ADMIN_DEADLINE, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%peer, %error, "admin connection failed"),
                Err(_) => tracing::debug!(%peer, "admin connection timed out"),
            }
        });
    }
}

/// Access check, then the route.
async fn handle(
    request: Request<hyper::body::Incoming>,
    state: &AdminState,
) -> Response<Full<Bytes>> {
    let header = |name| {
        request
            .headers()
            .get(name)
            .and_then(|value: &hyper::header::HeaderValue| value.to_str().ok())
    };
    // Probes and Prometheus scrape /metrics without credentials; it holds counters only,
    // nothing that revokes, re-indexes or names the fleet.
    let open = request.uri().path() == "/metrics" && request.method() == hyper::Method::GET;
    if open {
        return route(&request, &state.reporter, state.backfill.as_ref());
    }
    if let Err(denied) = state.access.check(
        header(hyper::header::HOST),
        header(hyper::header::AUTHORIZATION),
    ) {
        return text(denied.status(), format!("{denied}\n"));
    }
    if let Some(action) = request.uri().path().strip_prefix("/admin/links/") {
        let action = action.to_owned();
        return link_route(request, &action, state.links.as_ref()).await;
    }
    route(&request, &state.reporter, state.backfill.as_ref())
}

/// `POST /admin/links/{action}` with a JSON body of at most [`links::MAX_BODY`] bytes.
async fn link_route(
    request: Request<hyper::body::Incoming>,
    action: &str,
    links: Option<&LinkAdmin>,
) -> Response<Full<Bytes>> {
    let Some(links) = links else {
        return text(
            StatusCode::NOT_FOUND,
            "link routes not enabled\n".to_owned(),
        );
    };
    if request.method() != hyper::Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "POST only\n".to_owned());
    }
    let body = match Limited::new(request.into_body(), links::MAX_BODY)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body over {} bytes or unreadable\n", links::MAX_BODY),
            );
        }
    };
    let now = crate::clock::unix_now().max(0).unsigned_abs();
    match links::answer(links, action, &body, now).await {
        (status, Ok(info)) => match serde_json::to_vec(&info) {
            Ok(json) => respond(status, "application/json", json),
            Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
        },
        (status, Err(message)) => text(status, message),
    }
}

fn route<B>(
    request: &Request<B>,
    reporter: &Reporter,
    backfill: Option<&BackfillHandle>,
) -> Response<Full<Bytes>> {
    if request.uri().path() == "/admin/reindex" {
        return reindex(request, backfill);
    }
    if request.method() != hyper::Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".to_owned());
    }
    let report = reporter.collect();
    let json = match request.uri().path() {
        "/metrics" => {
            return match prometheus_text(&report) {
                Ok(body) => respond(StatusCode::OK, PROMETHEUS_TYPE, body),
                Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
            };
        }
        "/admin/report" => serde_json::to_vec(&report),
        "/admin/bots" => serde_json::to_vec(&report.bots),
        "/admin/edges" => serde_json::to_vec(&report.edges),
        "/admin/dcs" => serde_json::to_vec(&report.dcs),
        _ => return text(StatusCode::NOT_FOUND, "not found\n".to_owned()),
    };
    match json {
        Ok(body) => respond(StatusCode::OK, "application/json", body),
        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
    }
}

/// `POST /admin/reindex[?channel=ID]`: 202 with the channels queued, 404 without a
/// catalogue, 400 for a malformed or unknown channel, 503 when requests pile up.
fn reindex<B>(request: &Request<B>, backfill: Option<&BackfillHandle>) -> Response<Full<Bytes>> {
    if request.method() != hyper::Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "POST only\n".to_owned());
    }
    let Some(backfill) = backfill else {
        return text(
            StatusCode::NOT_FOUND,
            "no catalogue channels are configured (TGCDN_CATALOG_CHANNELS)\n".to_owned(),
        );
    };
    let channel = match reindex_query(request.uri().query()) {
        Ok(channel) => channel,
        Err(why) => return text(StatusCode::BAD_REQUEST, format!("{why}\n")),
    };
    match backfill.reindex(channel) {
        Ok(channels) => {
            let body = serde_json::to_vec(&ReindexAnswer {
                queued: channels,
                progress: backfill.progress(),
            });
            match body {
                Ok(body) => respond(StatusCode::ACCEPTED, "application/json", body),
                Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
            }
        }
        Err(error @ ReindexError::UnknownChannel(_)) => {
            text(StatusCode::BAD_REQUEST, format!("{error}\n"))
        }
        Err(error) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{error}\n")),
    }
}

/// `channel=ID` from the query string, if given (the only parameter there is).
fn reindex_query(query: Option<&str>) -> Result<Option<i64>, String> {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return Ok(None);
    };
    match query.split_once('=') {
        Some(("channel", value)) => value
            .parse()
            .map(Some)
            .map_err(|_| format!("channel {value:?} is not a channel id")),
        _ => Err(format!("unknown parameters {query:?} (only channel=ID)")),
    }
}

/// What `POST /admin/reindex` answers and `tgcdn-core reindex` prints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReindexAnswer {
    pub queued: Vec<i64>,
    pub progress: BTreeMap<i64, BackfillProgress>,
}

const PROMETHEUS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", body.into_bytes())
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BotLabel {
    bot: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DcLabel {
    dc: String,
}

/// A retry loop (`fetch` or `lookup`) and a failure class or give-up reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RetryLabel {
    path: &'static str,
    class: String,
}

/// `tgcdn_core_retries_total{path, class}` (failed attempts the retry policy answered) and
/// `tgcdn_core_give_ups_total{path, class}` (requests it gave up, by reason).
fn retry_metrics(registry: &mut Registry, retries: &RetryReport) {
    let failures = Family::<RetryLabel, Counter>::default();
    registry.register(
        "retries",
        "failed Telegram attempts retried, by loop and failure class",
        failures.clone(),
    );
    let give_ups = Family::<RetryLabel, Counter>::default();
    registry.register(
        "give_ups",
        "requests the retry policy gave up, by loop and reason",
        give_ups.clone(),
    );
    for (path, snapshot) in [("fetch", &retries.fetch), ("lookup", &retries.lookup)] {
        for (family, counts) in [
            (&failures, &snapshot.failures),
            (&give_ups, &snapshot.give_ups),
        ] {
            for (class, count) in counts {
                family
                    .get_or_create(&RetryLabel {
                        path,
                        class: class.clone(),
                    })
                    .inc_by(*count);
            }
        }
    }
}

/// The report as Prometheus/OpenMetrics text. Counters are read from monotonic sources, so
/// a fresh registry per scrape is exact.
pub fn prometheus_text(report: &CoreReport) -> Result<Vec<u8>, std::fmt::Error> {
    let mut registry = Registry::with_prefix("tgcdn_core");
    let in_flight = bot_family::<Gauge>(
        &mut registry,
        "bot_in_flight",
        "chunk requests in flight per bot",
    );
    let healthy = bot_family::<Gauge>(
        &mut registry,
        "bot_healthy",
        "1 when the bot is in rotation",
    );
    let flood_wait = bot_family::<Gauge>(
        &mut registry,
        "bot_flood_wait_seconds",
        "seconds of FLOOD_WAIT left",
    );
    let requests = bot_family::<Counter>(
        &mut registry,
        "bot_requests",
        "chunk requests started per bot",
    );
    let bytes = bot_family::<Counter>(&mut registry, "bot_bytes", "bytes downloaded per bot");
    let flood_waits = bot_family::<Counter>(
        &mut registry,
        "bot_flood_waits",
        "FLOOD_WAIT answers per bot",
    );
    for bot in &report.bots {
        let label = BotLabel {
            bot: bot.id.to_string(),
        };
        let set = |family: &Family<BotLabel, Gauge>, value: u64| {
            family
                .get_or_create(&label)
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        };
        let add = |family: &Family<BotLabel, Counter>, value: u64| {
            family.get_or_create(&label).inc_by(value);
        };
        set(&in_flight, bot.in_flight as u64);
        set(&healthy, u64::from(bot.healthy));
        set(&flood_wait, bot.flood_wait_secs.unwrap_or(0));
        add(&requests, bot.requests);
        add(&bytes, bot.bytes);
        add(&flood_waits, bot.flood_waits);
    }
    let dc_requests = Family::<DcLabel, Counter>::default();
    registry.register(
        "dc_requests",
        "chunk requests per DC of the file",
        dc_requests.clone(),
    );
    for dc in &report.dcs {
        dc_requests
            .get_or_create(&DcLabel {
                dc: dc.dc.to_string(),
            })
            .inc_by(dc.requests);
    }
    let plain = |registry: &mut Registry, name: &str, help: &str, value: u64| {
        let counter = Counter::<u64>::default();
        counter.inc_by(value);
        registry.register(name, help, counter);
    };
    let fetch = report.fetch;
    plain(
        &mut registry,
        "fetch_downloads",
        "chunk downloads started",
        fetch.downloads,
    );
    plain(
        &mut registry,
        "fetch_failures",
        "chunk downloads that failed",
        fetch.failures,
    );
    plain(
        &mut registry,
        "fetch_coalesced",
        "chunk requests that joined a download in flight",
        fetch.coalesced,
    );
    plain(
        &mut registry,
        "chunk_cache_hits",
        "chunks served from the second-tier cache",
        fetch.cache_hits,
    );
    let resolve = report.resolve;
    plain(
        &mut registry,
        "resolve_memory_hits",
        "meta answered from memory",
        resolve.memory_hits,
    );
    plain(
        &mut registry,
        "resolve_store_hits",
        "meta answered from the database",
        resolve.store_hits,
    );
    plain(
        &mut registry,
        "resolve_telegram_lookups",
        "meta looked up on Telegram",
        resolve.telegram_lookups,
    );
    plain(
        &mut registry,
        "resolve_negative_hits",
        "\"no such file\" answered from the negative cache",
        resolve.negative_hits,
    );
    retry_metrics(&mut registry, &report.retries);
    let edges = Gauge::<i64>::default();
    edges.set(i64::try_from(report.edges_live()).unwrap_or(i64::MAX));
    registry.register("edges_connected", "edges heard from recently", edges);
    if let Some(catalog) = &report.catalog {
        catalog_metrics(&mut registry, catalog);
    }
    if let Some(library) = &report.library {
        library_metrics(&mut registry, library);
    }
    let mut out = String::new();
    encode(&mut out, &registry)?;
    Ok(out.into_bytes())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabel {
    channel: String,
}

/// A gauge holding `value` (saturated at `i64::MAX`), for a snapshot's registry.
fn gauge(value: u64) -> Gauge<i64> {
    let gauge = Gauge::<i64>::default();
    gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
    gauge
}

/// A counter at `value`, for a snapshot's registry.
fn counter(value: u64) -> Counter<u64> {
    let counter = Counter::<u64>::default();
    counter.inc_by(value);
    counter
}

/// The catalogue indexer's counters and each channel's back-fill position.
fn catalog_metrics(registry: &mut Registry, catalog: &IndexSnapshot) {
    registry.register(
        "catalog_posts",
        "catalogue posts stored",
        gauge(catalog.posts_stored),
    );
    registry.register(
        "catalog_posts_from_updates",
        "posts indexed from channel updates",
        counter(catalog.live_posts),
    );
    registry.register(
        "catalog_posts_backfilled",
        "posts indexed by the back-fill",
        counter(catalog.backfill_posts),
    );
    registry.register(
        "catalog_posts_removed",
        "posts removed after a deletion",
        counter(catalog.removed),
    );
    registry.register(
        "catalog_backfill_batches",
        "channels.getMessages batches the back-fill finished",
        counter(catalog.backfill_batches),
    );
    registry.register(
        "catalog_backfill_flood_waits",
        "FLOOD_WAIT answers the back-fill slept through",
        counter(catalog.flood_waits),
    );
    let per_channel = |registry: &mut Registry, name: &str, help: &str| {
        let family = Family::<ChannelLabel, Gauge>::default();
        registry.register(name, help, family.clone());
        family
    };
    let remaining = per_channel(
        registry,
        "catalog_backfill_remaining",
        "message ids the back-fill still has to fetch",
    );
    let next_id = per_channel(
        registry,
        "catalog_backfill_next_id",
        "the next message id the back-fill fetches (0 when idle)",
    );
    let done = per_channel(
        registry,
        "catalog_backfill_done",
        "1 when the channel's back-fill has nothing left",
    );
    for (channel, progress) in &catalog.channels {
        let label = ChannelLabel {
            channel: channel.to_string(),
        };
        let set = |family: &Family<ChannelLabel, Gauge>, value: i64| {
            family.get_or_create(&label).set(value);
        };
        set(
            &remaining,
            i64::try_from(progress.remaining).unwrap_or(i64::MAX),
        );
        set(&next_id, i64::from(progress.next_id));
        set(&done, i64::from(progress.status == "done"));
    }
}

/// The catalogue's size and its enrichment's progress (TMDB lookups, video hashes).
fn library_metrics(registry: &mut Registry, library: &LibrarySnapshot) {
    let gauges = [
        (
            "catalog_titles",
            "titles in the Stremio catalogue",
            library.titles,
        ),
        (
            "catalog_metadata_pending",
            "titles waiting for a metadata lookup",
            library.metadata_pending,
        ),
        (
            "catalog_metadata_enabled",
            "1 when a TMDB key is configured",
            u64::from(library.metadata_enabled),
        ),
        (
            "catalog_hashes_pending",
            "files whose video hash is still to compute",
            library.hashes_pending,
        ),
    ];
    for (name, help, value) in gauges {
        registry.register(name, help, gauge(value));
    }
    let counters = [
        (
            "catalog_metadata_matched",
            "titles TMDB matched",
            library.metadata_matched,
        ),
        (
            "catalog_metadata_unmatched",
            "titles TMDB had nothing close enough for",
            library.metadata_unmatched,
        ),
        (
            "catalog_metadata_failures",
            "metadata lookups that failed (retried later)",
            library.metadata_failures,
        ),
        ("catalog_hashes", "video hashes computed", library.hashed),
        (
            "catalog_hash_failures",
            "video hashes that could not be computed (retried later)",
            library.hash_failures,
        ),
        (
            "tmdb_requests",
            "HTTP requests sent to TMDB",
            library.tmdb_requests,
        ),
        (
            "tmdb_cache_hits",
            "TMDB answers served from the sled cache",
            library.tmdb_cache_hits,
        ),
        (
            "tmdb_retries",
            "TMDB requests retried",
            library.tmdb_retries,
        ),
    ];
    for (name, help, value) in counters {
        registry.register(name, help, counter(value));
    }
}

/// A per-bot metric family, registered.
fn bot_family<M>(registry: &mut Registry, name: &str, help: &str) -> Family<BotLabel, M>
where
    M: prometheus_client::metrics::TypedMetric
        + prometheus_client::encoding::EncodeMetric
        + Default
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let family = Family::<BotLabel, M>::default();
    registry.register(name, help, family.clone());
    family
}

/// Why `tgcdn-core status` could not read the admin endpoint.
#[derive(Debug, thiserror::Error)]
pub enum AdminClientError {
    #[error("admin URL {0:?} is not http://host:port")]
    BadUrl(String),
    #[error("connecting to {addr}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("the admin endpoint answered {0}")]
    Status(StatusCode),
    #[error("the core refused ({status}): {reason}")]
    Refused { status: StatusCode, reason: String },
    #[error("the admin endpoint did not answer within {ADMIN_DEADLINE:?}")]
    Timeout,
    #[error("reading the report")]
    Json(#[from] serde_json::Error),
}

/// The running core's report from `base` (`http://127.0.0.1:9180`), without a token.
pub async fn fetch_report(base: &str) -> Result<CoreReport, AdminClientError> {
    AdminClient::new(base, None).report().await
}

/// [`AdminClient::reindex`] without a token.
pub async fn request_reindex(
    base: &str,
    channel: Option<i64>,
) -> Result<ReindexAnswer, AdminClientError> {
    AdminClient::new(base, None).reindex(channel).await
}

/// What the `tgcdn-core` commands use to reach a running core's admin endpoint.
#[derive(Clone)]
pub struct AdminClient {
    base: String,
    /// Sent as `Authorization: Bearer …` when set (`TGCDN_ADMIN_TOKEN`).
    token: Option<String>,
}

impl AdminClient {
    /// `base` is `http://host:port`.
    pub fn new(base: impl Into<String>, token: Option<String>) -> Self {
        AdminClient {
            base: base.into(),
            token,
        }
    }

    /// The core's report: what `tgcdn-core status` prints.
    pub async fn report(&self) -> Result<CoreReport, AdminClientError> {
        let (status, body) = self.call(hyper::Method::GET, "/admin/report", None).await?;
        if status != StatusCode::OK {
            return Err(AdminClientError::Status(status));
        }
        Ok(serde_json::from_slice(&body)?)
    }

    /// Asks the core to re-index `channel` (or every catalogue channel): what
    /// `tgcdn-core reindex` does. A refusal comes back as `Refused` with the core's reason.
    pub async fn reindex(&self, channel: Option<i64>) -> Result<ReindexAnswer, AdminClientError> {
        let path = match channel {
            Some(channel) => format!("/admin/reindex?channel={channel}"),
            None => "/admin/reindex".to_owned(),
        };
        let (status, body) = self.call(hyper::Method::POST, &path, None).await?;
        expect(status, StatusCode::ACCEPTED, &body)?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// Mints a link: `tgcdn-core link mint`.
    pub async fn mint(&self, request: &MintRequest) -> Result<LinkInfo, AdminClientError> {
        self.link("mint", serde_json::to_vec(request)?).await
    }

    /// `action` is `inspect`, `revoke` or `unrevoke`: `tgcdn-core link …`.
    pub async fn link_action(
        &self,
        action: &str,
        request: &LinkRequest,
    ) -> Result<LinkInfo, AdminClientError> {
        self.link(action, serde_json::to_vec(request)?).await
    }

    async fn link(&self, action: &str, body: Vec<u8>) -> Result<LinkInfo, AdminClientError> {
        let path = format!("/admin/links/{action}");
        let (status, body) = self.call(hyper::Method::POST, &path, Some(body)).await?;
        expect(status, StatusCode::OK, &body)?;
        Ok(serde_json::from_slice(&body)?)
    }

    async fn call(
        &self,
        method: hyper::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), AdminClientError> {
        tokio::time::timeout(
            ADMIN_DEADLINE,
            call(&self.base, self.token.as_deref(), method, path, body),
        )
        .await
        .map_err(|_| AdminClientError::Timeout)?
    }
}

/// `Refused` with the core's reason unless the status is `wanted`.
fn expect(status: StatusCode, wanted: StatusCode, body: &[u8]) -> Result<(), AdminClientError> {
    if status == wanted {
        return Ok(());
    }
    Err(AdminClientError::Refused {
        status,
        reason: String::from_utf8_lossy(body).trim().to_owned(),
    })
}

/// One request to the admin endpoint: its status and whole body.
async fn call(
    base: &str,
    token: Option<&str>,
    method: hyper::Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<(StatusCode, Bytes), AdminClientError> {
    let authority = base
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|rest| !rest.is_empty() && !rest.contains('/'))
        .ok_or_else(|| AdminClientError::BadUrl(base.to_owned()))?;
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|source| AdminClientError::Connect {
            addr: authority.to_owned(),
            source,
        })?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, authority);
    if let Some(token) = token {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|_| AdminClientError::BadUrl(base.to_owned()))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    driver.abort();
    Ok((status, body))
}

/// Binds the admin listener (a port of 0 picks one).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
