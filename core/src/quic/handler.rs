//! What the core answers to each wire request, without the stream I/O around it.
//!
//! Called by the connection task in [`super`] with a decoded [`Request`]; returns a
//! [`Reply`] that the caller writes onto the stream (a frame, or a chunk header followed by
//! the chunk's `Bytes` as fetched — never re-serialised; an addon header followed by the
//! JSON the [`AddonService`] port answered). [`Handler::hello`] is the gate:
//! it checks the protocol version and the edge's proof against the connection's exported
//! keying material before anything else, and touches neither Telegram nor the fetcher.
//! Every failure becomes a [`WireError`] in [`wire_error`], the one place that decides it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tgcdn_shared::FileRef;
use tgcdn_shared::chunk::chunk_count;
use tgcdn_shared::deadline::CORE_REQUEST_DEADLINE;
use tgcdn_shared::wire::{
    AddonHeader, AddonRequest, ChunkHeader, ChunkRequest, FileMeta, FrameError, Hello, Request,
    Response, Welcome, WireError, limits, verify_hello_proof,
};

use super::registry::EdgeRegistry;
use crate::addon::{AddonError, AddonService};
use crate::clock::unix_now;
use crate::fetch::{FetchError, Fetcher, GiveUp};
use crate::resolve::{ResolveError, Resolver, wire_meta};
use crate::revoke::Revocations;
use crate::stats::DcCounters;
use crate::store::StoreError;

/// What goes back on a stream.
#[derive(Debug)]
pub enum Reply {
    /// One response frame and nothing after it.
    Frame(Response),
    /// A `Chunk` header frame, then these bytes.
    Chunk(Bytes),
    /// An `Addon` header frame (its `len` is the JSON's), then the JSON.
    Addon(AddonHeader, Bytes),
    /// A `Meta` frame, written at once so the edge can plan its response; then this chunk
    /// (fetched by the caller with [`Handler::chunk`]) as [`Reply::Chunk`] writes it, or an
    /// `Error` frame when it fails.
    MetaChunk(FileMeta, ChunkRequest),
}

/// Why a request was not served. Mapped to the wire in [`wire_error`] only.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the edge has not said a valid Hello on this connection")]
    NotAuthenticated,
    #[error("hello proof does not verify for edge {edge_id:?}")]
    BadProof { edge_id: String },
    #[error("edge speaks protocol version {got}")]
    Version { got: u16 },
    #[error("hello sent twice on one connection")]
    HelloTwice,
    #[error("cannot export keying material from the TLS session")]
    NoChannelBinding,
    #[error("malformed request frame: {0}")]
    Malformed(#[from] FrameError),
    #[error("chunk {index} is past the end of {file} ({chunks} chunks)")]
    ChunkOutOfRange {
        file: FileRef,
        index: u64,
        chunks: u64,
    },
    #[error("addon not enabled")]
    AddonDisabled,
    #[error(transparent)]
    Addon(#[from] AddonError),
    #[error("addon answer of {len} bytes exceeds the wire limit")]
    OversizedAddon { len: usize },
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("edge registry")]
    Registry(#[from] StoreError),
    #[error("chunk of {len} bytes does not fit a chunk header")]
    OversizedChunk { len: usize },
    #[error("not served within the core's request deadline of {0:?}")]
    Deadline(Duration),
}

/// The wire form of the retry policy's reasons, for lookups and chunk fetches alike.
fn give_up_wire(reason: &GiveUp) -> WireError {
    match reason {
        GiveUp::NotFound => WireError::NotFound,
        GiveUp::FloodWait { secs } => WireError::FloodWait {
            secs: saturate_secs(*secs),
        },
        GiveUp::Unavailable(_) => WireError::Unavailable,
        // Retrying cannot help (a request Telegram refuses, an unknown failure).
        GiveUp::Rejected(_) => WireError::Internal,
    }
}

/// The wire form of every failure: the only place a [`ServeError`] becomes a [`WireError`].
pub fn wire_error(error: &ServeError) -> WireError {
    match error {
        ServeError::NotAuthenticated
        | ServeError::BadProof { .. }
        | ServeError::NoChannelBinding => WireError::Unauthorized,
        ServeError::Version { .. } => WireError::VersionMismatch {
            supported: tgcdn_shared::wire::PROTOCOL_VERSION,
        },
        ServeError::HelloTwice | ServeError::Malformed(_) | ServeError::ChunkOutOfRange { .. } => {
            WireError::bad_request(error.to_string())
        }
        ServeError::AddonDisabled => WireError::AddonDisabled,
        ServeError::Addon(addon) => match addon {
            AddonError::NotFound => WireError::NotFound,
            AddonError::BadRequest(message) => WireError::bad_request(message.as_str()),
            AddonError::Unavailable(_) => WireError::Unavailable,
            AddonError::Internal(_) => WireError::Internal,
        },
        ServeError::Resolve(resolve) => match resolve {
            ResolveError::Revoked => WireError::Revoked,
            ResolveError::Lookup(reason) => give_up_wire(reason),
            ResolveError::Store(_) => WireError::Internal,
        },
        ServeError::Fetch(reason) => give_up_wire(reason),
        // The edge is still waiting (see `tgcdn_shared::deadline`) and gets the reason.
        ServeError::Deadline(_) => WireError::Unavailable,
        ServeError::Registry(_)
        | ServeError::OversizedChunk { .. }
        | ServeError::OversizedAddon { .. } => WireError::Internal,
    }
}

/// Runs one edge request under `deadline` — the core's request deadline, which the edge's
/// wait is set above —, so lookup and fetch together answer in time, whatever each one's
/// own deadline. A `MetaChunk`'s chunk runs under its own, as the edge waits on it anew.
pub(super) async fn within<T>(
    deadline: Duration,
    work: impl std::future::Future<Output = Result<T, ServeError>>,
) -> Result<T, ServeError> {
    tokio::time::timeout(deadline, work)
        .await
        .unwrap_or(Err(ServeError::Deadline(deadline)))
}

fn saturate_secs(secs: u64) -> u32 {
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// The shared state every connection serves from.
pub struct Handler {
    resolver: Arc<Resolver>,
    fetcher: Arc<Fetcher>,
    edges: EdgeRegistry,
    cluster_secret: Vec<u8>,
    heartbeat_interval_secs: u32,
    dc_requests: DcCounters,
    /// The Stremio addon port; `None` answers every addon request `AddonDisabled`.
    addon: Option<Arc<dyn AddonService>>,
    /// Over the resolver's store, so whoever serves through this handler hears every
    /// revocation made through it.
    revocations: Arc<Revocations>,
}

impl Handler {
    /// A handler without an addon.
    pub fn new(
        resolver: Arc<Resolver>,
        fetcher: Arc<Fetcher>,
        edges: EdgeRegistry,
        cluster_secret: Vec<u8>,
        heartbeat_interval_secs: u32,
    ) -> Arc<Self> {
        Self::with_addon(
            resolver,
            fetcher,
            edges,
            cluster_secret,
            heartbeat_interval_secs,
            None,
        )
    }

    /// A handler answering addon requests through `addon` (if any).
    pub fn with_addon(
        resolver: Arc<Resolver>,
        fetcher: Arc<Fetcher>,
        edges: EdgeRegistry,
        cluster_secret: Vec<u8>,
        heartbeat_interval_secs: u32,
        addon: Option<Arc<dyn AddonService>>,
    ) -> Arc<Self> {
        let revocations = Arc::new(Revocations::new(resolver.store().clone()));
        Arc::new(Self {
            revocations,
            resolver,
            fetcher,
            edges,
            cluster_secret,
            heartbeat_interval_secs,
            dc_requests: DcCounters::default(),
            addon,
        })
    }

    pub fn edges(&self) -> &EdgeRegistry {
        &self.edges
    }

    /// Revoking files, and the announcements the QUIC server pushes to edges.
    pub fn revocations(&self) -> &Arc<Revocations> {
        &self.revocations
    }

    pub fn resolver(&self) -> &Arc<Resolver> {
        &self.resolver
    }

    pub fn fetcher(&self) -> &Arc<Fetcher> {
        &self.fetcher
    }

    /// Chunk requests served so far, per DC of the file.
    pub fn dc_requests(&self) -> std::collections::BTreeMap<i32, u64> {
        self.dc_requests.snapshot()
    }

    /// Checks the first request of a connection. `binding` is the connection's exported
    /// keying material (`EXPORTER_LABEL`, `EXPORTER_CONTEXT`, `EXPORTER_LEN` bytes).
    /// Returns the authenticated edge id and the answer.
    pub fn hello(
        &self,
        request: &Request,
        binding: &[u8],
    ) -> Result<(String, Welcome), ServeError> {
        let Request::Hello(hello) = request else {
            return Err(ServeError::NotAuthenticated);
        };
        self.check_hello(hello, binding)?;
        self.edges.record_hello(hello, unix_now())?;
        let connections = self.fetcher.pool().connections();
        let welcome = Welcome {
            core_version: env!("CARGO_PKG_VERSION").to_owned(),
            heartbeat_interval_secs: self.heartbeat_interval_secs,
            download_connections: u32::try_from(connections).unwrap_or(u32::MAX),
        };
        Ok((hello.edge_id.clone(), welcome))
    }

    fn check_hello(&self, hello: &Hello, binding: &[u8]) -> Result<(), ServeError> {
        hello.check_version().map_err(|_| ServeError::Version {
            got: hello.protocol_version,
        })?;
        if verify_hello_proof(
            &self.cluster_secret,
            &hello.edge_id,
            binding,
            &hello.auth_proof,
        ) {
            Ok(())
        } else {
            Err(ServeError::BadProof {
                edge_id: hello.edge_id.clone(),
            })
        }
    }

    /// Serves one request of an authenticated edge.
    pub async fn serve(&self, edge_id: &str, request: Request) -> Result<Reply, ServeError> {
        match request {
            Request::Hello(_) => Err(ServeError::HelloTwice),
            Request::Heartbeat(heartbeat) => {
                self.edges
                    .record_heartbeat(edge_id, heartbeat, unix_now())?;
                Ok(Reply::Frame(Response::Ack))
            }
            Request::Meta(file) => Ok(Reply::Frame(Response::Meta(
                within(CORE_REQUEST_DEADLINE, self.meta(file)).await?,
            ))),
            Request::Chunk(chunk) => Ok(Reply::Chunk(
                within(CORE_REQUEST_DEADLINE, self.chunk(chunk)).await?,
            )),
            Request::MetaChunk(chunk) => Ok(Reply::MetaChunk(
                within(CORE_REQUEST_DEADLINE, self.meta(chunk.file)).await?,
                chunk,
            )),
            Request::Addon(request) => {
                let (header, json) = self.addon(&request)?;
                Ok(Reply::Addon(header, json))
            }
        }
    }

    /// The answer to an addon request: its header frame and JSON. Also the one-box edge's
    /// in-process path, so both serve exactly the same thing.
    pub fn addon(&self, request: &AddonRequest) -> Result<(AddonHeader, Bytes), ServeError> {
        let service = self.addon.as_ref().ok_or(ServeError::AddonDisabled)?;
        let answer = service.handle(request)?;
        let len = u32::try_from(answer.json.len())
            .ok()
            .filter(|len| *len <= limits::MAX_ADDON_PAYLOAD)
            .ok_or(ServeError::OversizedAddon {
                len: answer.json.len(),
            })?;
        let header = AddonHeader {
            len,
            max_age_secs: answer.cache.max_age_secs,
            stale_revalidate_secs: answer.cache.stale_revalidate_secs,
            stale_error_secs: answer.cache.stale_error_secs,
        };
        Ok((header, answer.json))
    }

    /// The `Meta` answer for `file`. Also the one-box edge's in-process path, so both
    /// serve exactly the same thing.
    pub async fn meta(&self, file: FileRef) -> Result<FileMeta, ServeError> {
        let meta = self.resolver.meta(file).await?;
        Ok(wire_meta(file, &meta))
    }

    /// The bytes of one chunk, index checked against the file's size, fetched as the
    /// request's class. Also the one-box edge's in-process path.
    pub async fn chunk(&self, request: ChunkRequest) -> Result<Bytes, ServeError> {
        let ChunkRequest { file, index, class } = request;
        let meta = self.resolver.meta(file).await?;
        let chunks = chunk_count(meta.size);
        if index >= chunks {
            return Err(ServeError::ChunkOutOfRange {
                file,
                index,
                chunks,
            });
        }
        self.dc_requests.request(meta.dc_id);
        match self.fetcher.chunk_as(file, meta.size, index, class).await {
            Ok(bytes) => Ok(bytes),
            Err(FetchError::NotFound) => {
                // The index was in range, so the message itself is gone.
                self.resolver.forget(file).await;
                Err(FetchError::NotFound.into())
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// The header frame announcing `bytes`.
pub fn chunk_header(bytes: &Bytes) -> Result<Response, ServeError> {
    let len =
        u32::try_from(bytes.len()).map_err(|_| ServeError::OversizedChunk { len: bytes.len() })?;
    Ok(Response::Chunk(ChunkHeader { len }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_wire_form() {
        let file = FileRef {
            chat_id: -100,
            msg_id: 1,
        };
        let cases: Vec<(ServeError, WireError)> = vec![
            (ServeError::NotAuthenticated, WireError::Unauthorized),
            (
                ServeError::BadProof {
                    edge_id: "x".into(),
                },
                WireError::Unauthorized,
            ),
            (
                ServeError::Version { got: 9 },
                WireError::VersionMismatch {
                    supported: tgcdn_shared::wire::PROTOCOL_VERSION,
                },
            ),
            (ServeError::AddonDisabled, WireError::AddonDisabled),
            (AddonError::NotFound.into(), WireError::NotFound),
            (
                AddonError::BadRequest("no such catalogue".into()).into(),
                WireError::BadRequest("no such catalogue".into()),
            ),
            (
                AddonError::Unavailable("db".into()).into(),
                WireError::Unavailable,
            ),
            (AddonError::Internal("x".into()).into(), WireError::Internal),
            (
                ServeError::OversizedAddon { len: usize::MAX },
                WireError::Internal,
            ),
            (
                ResolveError::from(GiveUp::NotFound).into(),
                WireError::NotFound,
            ),
            (ResolveError::Revoked.into(), WireError::Revoked),
            (
                ResolveError::from(GiveUp::FloodWait { secs: u64::MAX }).into(),
                WireError::FloodWait { secs: u32::MAX },
            ),
            (
                FetchError::FloodWait { secs: 7 }.into(),
                WireError::FloodWait { secs: 7 },
            ),
            (
                FetchError::Unavailable("x".into()).into(),
                WireError::Unavailable,
            ),
            (FetchError::Rejected("x".into()).into(), WireError::Internal),
            (
                ServeError::Deadline(CORE_REQUEST_DEADLINE),
                WireError::Unavailable,
            ),
        ];
        for (error, wire) in cases {
            assert_eq!(wire_error(&error), wire, "{error}");
        }
        let out_of_range = ServeError::ChunkOutOfRange {
            file,
            index: 5,
            chunks: 3,
        };
        assert!(matches!(
            wire_error(&out_of_range),
            WireError::BadRequest(_)
        ));
    }

    #[tokio::test]
    async fn a_request_past_the_deadline_is_answered_with_a_reason() {
        let never = std::future::pending::<Result<(), ServeError>>();
        let error = within(Duration::ZERO, never).await.unwrap_err();
        assert!(matches!(error, ServeError::Deadline(_)), "{error}");
        assert_eq!(wire_error(&error), WireError::Unavailable);
        assert_eq!(within(Duration::ZERO, async { Ok(7) }).await.unwrap(), 7);
    }

    #[test]
    fn the_core_gives_up_before_the_edge_stops_waiting() {
        use tgcdn_shared::deadline::{ANSWER_MARGIN, EDGE_META_TIMEOUT, EDGE_REQUEST_TIMEOUT};
        let fetch = crate::fetch::FetchConfig::default();
        let lookup = crate::resolve::ResolveConfig::default().lookup_timeout;
        for own in [fetch.total_timeout, fetch.attempt_timeout, lookup] {
            assert!(own <= CORE_REQUEST_DEADLINE, "{own:?}");
        }
        assert!(CORE_REQUEST_DEADLINE + ANSWER_MARGIN <= EDGE_REQUEST_TIMEOUT);
        assert!(lookup + ANSWER_MARGIN <= EDGE_META_TIMEOUT);
    }
}
