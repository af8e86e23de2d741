//! One-box mode: the edge library served from inside the core, calling the core's handler
//! directly instead of over QUIC.
//!
//! [`InProcessUpstream`] implements the edge's [`Upstream`] on the same [`Handler`] the QUIC
//! server uses, so a viewer of a one-box core gets exactly what a remote edge would: the same
//! resolver, the same single-flight fetcher, and failures turned into [`WireError`] by the
//! one map, [`handler::wire_error`]. [`OneBoxEdge`] is the embedded edge's configuration
//! (read with the edge's own `TGCDN_*` serving keys); [`run_one_box`] is the entry point for
//! programs that want a whole tgcdn in one process (the sandbox). Revocations reach the
//! embedded edge in-process ([`apply_revocations`]), exactly as a remote edge applies the
//! pushes it receives over QUIC. Nothing here knows
//! grammers or sled; the edge crate never depends on the core.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tgcdn_edge::app::EdgeOptions;
use tgcdn_edge::config::{EdgeConfigError, edge_options};
use tgcdn_edge::upstream::{AddonReply, Upstream, UpstreamError, UpstreamFuture};
use tgcdn_shared::FileRef;
use tgcdn_shared::config::Settings;
use tgcdn_shared::wire::{AddonRequest, ChunkRequest, FileMeta, Push};

use crate::bots::BotPool;
use crate::bots::select::Health;
use crate::config::Config;
use crate::quic::handler::{self, Handler};
use crate::runtime::{RunError, Running};

/// The embedded edge: where it listens and how it serves.
#[derive(Debug, Clone)]
pub struct OneBoxEdge {
    /// TCP address viewers connect to (`TGCDN_LISTEN`, default 0.0.0.0:8080).
    pub listen: SocketAddr,
    /// Cache size, read-ahead, HTTP limits: the edge's `TGCDN_*` serving settings.
    pub options: EdgeOptions,
    /// Accept the seed design's readable links too (`TGCDN_LEGACY_LINKS`).
    pub legacy_links: bool,
}

impl OneBoxEdge {
    /// Reads the edge's serving keys (`listen`, `cache_size`, `readahead_max`, …) exactly as
    /// a standalone edge would; the core link and token keys are the core's own.
    pub fn from_settings(settings: &Settings) -> Result<Self, EdgeConfigError> {
        Ok(OneBoxEdge {
            listen: settings.get_or("listen", SocketAddr::from(([0, 0, 0, 0], 8080)))?,
            options: edge_options(settings)?,
            legacy_links: settings.get_or("legacy_links", false)?,
        })
    }

    /// Defaults on `listen`: for programs that build the configuration themselves.
    pub fn on(listen: SocketAddr) -> Self {
        OneBoxEdge {
            listen,
            options: EdgeOptions::default(),
            legacy_links: false,
        }
    }
}

/// Starts a whole tgcdn in this process: the core as `config` says (bots, front-end, admin
/// listener, QUIC server unless `config.quic_enabled` is false) plus an HTTP edge serving
/// viewers on `edge.listen` from the in-process core. Stop it with [`Running::shutdown`];
/// [`Running::edge_addr`] tells where it listens (useful with port 0).
pub async fn run_one_box(mut config: Config, edge: OneBoxEdge) -> Result<Running, RunError> {
    config.one_box = Some(edge);
    Running::start(&config).await
}

/// Applies every revocation announced by the core to the embedded edge's caches, until the
/// core's announcer is gone; a lag (over the announcement queue) forgets every meta.
pub async fn apply_revocations(
    mut revoked: tokio::sync::broadcast::Receiver<FileRef>,
    state: Arc<tgcdn_edge::http::AppState>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let push = match revoked.recv().await {
            Ok(file) => Push::Revoked(file),
            Err(RecvError::Lagged(_)) => Push::ForgetAll,
            Err(RecvError::Closed) => return,
        };
        tgcdn_edge::push::apply(&state, &push).await;
    }
}

/// The core as an edge's upstream, without a network hop.
pub struct InProcessUpstream {
    handler: Arc<Handler>,
    pool: Arc<BotPool>,
}

impl InProcessUpstream {
    pub fn new(handler: Arc<Handler>, pool: Arc<BotPool>) -> Self {
        InProcessUpstream { handler, pool }
    }
}

fn upstream_error(error: &handler::ServeError) -> UpstreamError {
    UpstreamError::Core(handler::wire_error(error))
}

impl Upstream for InProcessUpstream {
    fn meta(&self, file: FileRef) -> UpstreamFuture<'_, FileMeta> {
        Box::pin(async move {
            self.handler
                .meta(file)
                .await
                .map_err(|error| upstream_error(&error))
        })
    }

    fn chunk(&self, file: FileRef, index: u64) -> UpstreamFuture<'_, Bytes> {
        Box::pin(async move {
            self.handler
                .chunk(ChunkRequest { file, index })
                .await
                .map_err(|error| upstream_error(&error))
        })
    }

    fn addon(&self, request: AddonRequest) -> UpstreamFuture<'_, AddonReply> {
        Box::pin(async move {
            self.handler
                .addon(&request)
                .map(|(header, json)| AddonReply { header, json })
                .map_err(|error| upstream_error(&error))
        })
    }

    /// Ready while at least one bot is healthy (a FLOOD_WAIT ends by itself).
    fn ready(&self) -> bool {
        self.pool
            .report(Instant::now())
            .iter()
            .any(|bot| bot.health == Health::Healthy)
    }
}
