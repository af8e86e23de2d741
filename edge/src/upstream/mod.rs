//! Where chunk misses, file metadata and Stremio addon answers come from: the [`Upstream`]
//! trait and its error.
//!
//! Three implementations exist: [`quic`] (a remote core over one long-lived QUIC
//! connection), [`pool`] (one or more such cores, each file sent to the core its rendezvous
//! ranking picks, failing over along the ranking; [`failover`] is its pure decision, and it
//! is what `main` runs) and the core's in-process implementation for one-box mode (in the
//! core crate, so the edge never links grammers or sled). The edge's cache and HTTP layers
//! only see `Arc<dyn Upstream>`.
//!
//! The trait returns boxed futures instead of using `async fn`: it must be object-safe so
//! one binary can choose the implementation at start-up without making every edge type
//! generic, and one allocation per 1 MiB chunk costs nothing measurable. It needs no
//! `async-trait` dependency.

pub mod failover;
pub mod pool;
pub mod quic;
pub mod tls;

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use tgcdn_shared::FileRef;

use tgcdn_shared::wire::{AddonHeader, AddonRequest, ChunkClass, FileMeta, WireError};

/// A boxed, `Send` future as every [`Upstream`] method returns it.
pub type UpstreamFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, UpstreamError>> + Send + 'a>>;

/// The source of file metadata and aligned 1 MiB chunks (`[index·2^20, (index+1)·2^20)`,
/// the last one shorter).
///
/// Implementations must be cheap to call concurrently: the edge calls `chunk` for many
/// chunks at once (bounded by its global fetch cap) and never twice at the same time for the
/// same `(file, index)` (the cache coalesces). A returned chunk must have exactly the
/// chunk's length; the edge checks it against `meta().size` and treats a mismatch as an
/// upstream protocol error.
pub trait Upstream: Send + Sync + 'static {
    /// Size, mime type, name, unique id and date of `file`.
    fn meta(&self, file: FileRef) -> UpstreamFuture<'_, FileMeta>;

    /// The bytes of chunk `index` of `file`, as demand.
    fn chunk(&self, file: FileRef, index: u64) -> UpstreamFuture<'_, Bytes>;

    /// The bytes of chunk `index` of `file`, asked for as `class`: a core whose download
    /// connections are all busy serves demand first. Without a core to tell, [`Self::chunk`].
    fn chunk_as(&self, file: FileRef, index: u64, class: ChunkClass) -> UpstreamFuture<'_, Bytes> {
        let _ = class;
        self.chunk(file, index)
    }

    /// The metadata of `file`, and chunk `index` of it on its way, as demand: one exchange
    /// with a remote core instead of two (the first range of a file the edge does not know
    /// yet). Answers once the meta is there; the chunk follows in [`MetaChunk::chunk`],
    /// which may fail where the meta did not, and whose length is the caller's to check. By
    /// default the meta alone (an upstream with no round trip to save).
    fn meta_chunk(&self, file: FileRef, index: u64) -> UpstreamFuture<'_, MetaChunk> {
        let _ = index;
        Box::pin(async move {
            let meta = self.meta(file).await?;
            Ok(MetaChunk { meta, chunk: None })
        })
    }

    /// How many Telegram download connections the core behind this upstream has (its
    /// Welcome), once known; the edge sizes read-ahead windows from it.
    fn core_connections(&self) -> Option<u32> {
        None
    }

    /// The core's answer to a validated, canonical addon request (see [`AddonRequest`]).
    /// Typed refusals (not found, addon disabled…) are `UpstreamError::Core`.
    fn addon(&self, request: AddonRequest) -> UpstreamFuture<'_, AddonReply>;

    /// Whether requests can be served right now (`/readyz`). Must not block.
    fn ready(&self) -> bool;

    /// The state of each core link behind this upstream, for `/metrics`; none for an
    /// upstream that is not a set of links (one-box mode's, a lone [`quic`] link). Must not
    /// block.
    fn links(&self) -> Vec<LinkStatus> {
        Vec::new()
    }
}

/// The chunk of a [`MetaChunk`], still arriving; dropping it withdraws the request.
pub type PendingChunk = Pin<Box<dyn Future<Output = Result<Bytes, UpstreamError>> + Send>>;

/// A file's metadata and one of its chunks, as [`Upstream::meta_chunk`] answers them.
pub struct MetaChunk {
    pub meta: FileMeta,
    /// `None` when the upstream did not fetch the chunk along.
    pub chunk: Option<PendingChunk>,
}

/// One core link as `/metrics` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStatus {
    /// The core's configured name.
    pub name: String,
    /// Connected and authenticated right now.
    pub up: bool,
    /// Requests sent to it so far.
    pub requests: u64,
    /// Of those, the ones that failed with a connection-level error (and moved on to the
    /// next core of their ranking, if any).
    pub failures: u64,
    /// Of those, the ones the core answered FLOOD_WAIT (and moved on likewise).
    pub floods: u64,
}

/// An addon answer as the core sent it: the header (JSON length and cache lifetimes) and
/// exactly `header.len` bytes of JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddonReply {
    pub header: AddonHeader,
    pub json: Bytes,
}

/// Why an upstream request failed. Cloneable so one failed fetch can be handed to every
/// viewer that waited on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// The core answered with a typed error (not found, revoked, flood wait…).
    #[error("core: {0}")]
    Core(#[from] WireError),
    /// The core cannot be reached right now (no connection, connection lost and retries
    /// exhausted).
    #[error("core unreachable: {reason}")]
    Unreachable { reason: String },
    /// The core's answer broke the protocol (bad frame, wrong chunk length).
    #[error("core protocol violation: {reason}")]
    Protocol { reason: String },
    /// The request did not finish within its deadline.
    #[error("core request timed out")]
    Timeout,
}

impl UpstreamError {
    pub fn unreachable(reason: impl std::fmt::Display) -> Self {
        UpstreamError::Unreachable {
            reason: reason.to_string(),
        }
    }

    pub fn protocol(reason: impl std::fmt::Display) -> Self {
        UpstreamError::Protocol {
            reason: reason.to_string(),
        }
    }

    /// Whether the same request may succeed if tried again soon.
    pub fn is_retryable(&self) -> bool {
        match self {
            UpstreamError::Core(e) => e.is_retryable(),
            UpstreamError::Unreachable { .. } | UpstreamError::Timeout => true,
            UpstreamError::Protocol { .. } => false,
        }
    }

    /// Short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Core(WireError::NotFound) => "not_found",
            UpstreamError::Core(WireError::Revoked) => "revoked",
            UpstreamError::Core(WireError::FloodWait { .. }) => "flood_wait",
            UpstreamError::Core(WireError::AddonDisabled) => "addon_disabled",
            UpstreamError::Core(_) => "core_error",
            UpstreamError::Unreachable { .. } => "unreachable",
            UpstreamError::Protocol { .. } => "protocol",
            UpstreamError::Timeout => "timeout",
        }
    }
}
