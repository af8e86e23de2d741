//! One-box mode: the edge library served from inside the core, calling the core's handler
//! directly instead of over QUIC.
//!
//! [`InProcessUpstream`] implements the edge's [`Upstream`] on the same [`Handler`] the QUIC
//! server uses, so a viewer of a one-box core gets exactly what a remote edge would: the same
//! resolver, the same single-flight fetcher, and failures turned into [`WireError`] by the
//! one map, [`handler::wire_error`]. The embedded edge's settings are
//! [`crate::config::OneBoxEdge`] and `runtime` starts it ([`crate::runtime::run_one_box`] is
//! the entry point for programs that want a whole tgcdn in one process, the sandbox); this
//! module is below both, so it imports neither. Revocations reach the embedded edge
//! in-process ([`apply_revocations`]), exactly as a remote edge applies the pushes it
//! receives over QUIC. Nothing here knows grammers or sled; the edge crate never depends on
//! the core.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tgcdn_edge::upstream::{AddonReply, Upstream, UpstreamError, UpstreamFuture};
use tgcdn_shared::FileRef;
use tgcdn_shared::wire::{AddonRequest, ChunkClass, ChunkRequest, FileMeta, Push};

use crate::bots::BotPool;
use crate::quic::handler::{self, Handler};

/// Applies every revocation change announced by the core to the embedded edge's caches,
/// until the core's announcer is gone; a lag (over the announcement queue) forgets every
/// meta. The core checks its own revocations on every request, so the embedded edge needs
/// no list: it only drops what it cached.
pub async fn apply_revocations(
    mut changes: tokio::sync::broadcast::Receiver<crate::revoke::Change>,
    state: Arc<tgcdn_edge::http::AppState>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let push = match changes.recv().await {
            Ok(change) => change.push(),
            Err(RecvError::Lagged(_)) => Push::ForgetAll,
            Err(RecvError::Closed) => return,
        };
        tgcdn_edge::push::apply(&state, ONE_BOX_CORE, &push).await;
    }
}

/// The one-box edge's only core, as [`tgcdn_edge::push::apply`] names cores.
const ONE_BOX_CORE: usize = 0;

/// The core as an edge's upstream, without a network hop.
pub struct InProcessUpstream {
    handler: Arc<Handler>,
    pool: Arc<BotPool>,
    /// The channel links point into (Bot API id); readiness is about serving it.
    storage_channel: i64,
}

impl InProcessUpstream {
    pub fn new(handler: Arc<Handler>, pool: Arc<BotPool>, storage_channel: i64) -> Self {
        InProcessUpstream {
            handler,
            pool,
            storage_channel,
        }
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
        self.chunk_as(file, index, ChunkClass::Demand)
    }

    fn chunk_as(&self, file: FileRef, index: u64, class: ChunkClass) -> UpstreamFuture<'_, Bytes> {
        Box::pin(async move {
            self.handler
                .chunk(ChunkRequest { file, index, class })
                .await
                .map_err(|error| upstream_error(&error))
        })
    }

    /// Everything is local: the advertised figure is this core's own.
    fn core_connections(&self) -> Option<u32> {
        u32::try_from(self.handler.fetcher().pool().connections()).ok()
    }

    fn addon(&self, request: AddonRequest) -> UpstreamFuture<'_, AddonReply> {
        Box::pin(async move {
            self.handler
                .addon(&request)
                .map(|(header, json)| AddonReply { header, json })
                .map_err(|error| upstream_error(&error))
        })
    }

    /// Ready while at least one bot can serve the storage channel (a FLOOD_WAIT ends by
    /// itself; a bot denied only some other channel still serves links).
    fn ready(&self) -> bool {
        self.pool
            .report(Instant::now())
            .iter()
            .any(|bot| bot.serves(self.storage_channel))
    }
}
