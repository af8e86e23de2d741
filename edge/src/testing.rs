//! An in-memory [`Upstream`] with deterministic file bytes, for the edge's own tests and for
//! benches that need an edge without a core.
//!
//! Not used by the binary. It counts calls and can hold chunk (and addon) requests at a
//! gate, so tests can observe single flight, read-ahead depth and the fetch cap. It never
//! fails unless told. Addon answers are canned JSON per (path, query); others are not found.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tgcdn_shared::FileRef;
use tokio::sync::Semaphore;

use tgcdn_shared::chunk::{CHUNK_SIZE, chunk_len};

use crate::upstream::{AddonReply, MetaChunk, Upstream, UpstreamError, UpstreamFuture};
use tgcdn_shared::wire::{AddonHeader, AddonRequest, FileMeta, WireError};

/// The byte at `offset` of every test file: varies with the offset and is not periodic at
/// any power of two, so a slice from the wrong place never compares equal by accident.
pub fn pattern_byte(offset: u64) -> u8 {
    (offset.wrapping_mul(31) ^ (offset / 251)) as u8
}

/// The bytes `[start, end)` of a test file.
pub fn pattern(start: u64, end: u64) -> Vec<u8> {
    (start..end).map(pattern_byte).collect()
}

/// See the module docs.
#[derive(Default)]
pub struct MemoryUpstream {
    files: HashMap<FileRef, FileMeta>,
    gate: Option<Arc<Semaphore>>,
    meta_gate: Option<Arc<Semaphore>>,
    not_ready: AtomicBool,
    /// One more than the chunk index that answers `Unavailable` (0: none), so that
    /// `Default` fails nothing.
    failing_chunk_plus_one: AtomicU64,
    meta_calls: AtomicUsize,
    chunk_calls: AtomicUsize,
    meta_chunk_calls: AtomicUsize,
    /// Whether `meta_chunk` fetches the chunk along (else the meta alone, the default).
    meta_chunk: bool,
    /// What `core_connections` answers (0: unknown).
    core_connections: u32,
    /// Canned addon answers by (path, query).
    addon: HashMap<(String, String), AddonReply>,
    addon_gate: Option<Arc<Semaphore>>,
    addon_disabled: AtomicBool,
    addon_calls: AtomicUsize,
    addon_requests: Mutex<Vec<AddonRequest>>,
    chunks_in_flight: AtomicUsize,
    max_chunks_in_flight: AtomicUsize,
}

impl MemoryUpstream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes requests for chunk `index` fail with `WireError::Unavailable`.
    pub fn fail_chunk(&self, index: u64) {
        self.failing_chunk_plus_one
            .store(index.saturating_add(1), Ordering::SeqCst);
    }

    /// Adds a file of `size` pattern bytes.
    pub fn with_file(mut self, file: FileRef, meta: FileMeta) -> Self {
        self.files.insert(file, meta);
        self
    }

    /// Makes every chunk request wait for one permit of `gate` (never returned), so a test
    /// decides when chunks complete by adding permits.
    pub fn with_gate(mut self, gate: Arc<Semaphore>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Makes every metadata request wait for one permit of `gate`, like [`Self::with_gate`].
    pub fn with_meta_gate(mut self, gate: Arc<Semaphore>) -> Self {
        self.meta_gate = Some(gate);
        self
    }

    /// Answers the addon request (`path`, `query`) with `json`, cacheable `max_age_secs`.
    pub fn with_addon(mut self, path: &str, query: &str, json: &str, max_age_secs: u32) -> Self {
        let json = Bytes::copy_from_slice(json.as_bytes());
        let header = AddonHeader {
            len: json.len() as u32,
            max_age_secs,
            stale_revalidate_secs: 3600,
            stale_error_secs: 86_400,
        };
        self.addon.insert(
            (path.to_owned(), query.to_owned()),
            AddonReply { header, json },
        );
        self
    }

    /// Makes every addon request wait for one permit of `gate`, like [`Self::with_gate`].
    pub fn with_addon_gate(mut self, gate: Arc<Semaphore>) -> Self {
        self.addon_gate = Some(gate);
        self
    }

    /// Makes every addon request answer `AddonDisabled`, as a core without a catalogue.
    pub fn disable_addon(&self) {
        self.addon_disabled.store(true, Ordering::SeqCst);
    }

    pub fn addon_calls(&self) -> usize {
        self.addon_calls.load(Ordering::SeqCst)
    }

    /// Every addon request received, in order.
    pub fn addon_requests(&self) -> Vec<AddonRequest> {
        self.addon_requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn serve_addon(&self, request: AddonRequest) -> Result<AddonReply, UpstreamError> {
        self.addon_calls.fetch_add(1, Ordering::SeqCst);
        let key = (request.path.clone(), request.query.clone());
        self.addon_requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request);
        if let Some(gate) = &self.addon_gate {
            gate.acquire()
                .await
                .map_err(|_| UpstreamError::unreachable("gate closed"))?
                .forget();
        }
        if self.addon_disabled.load(Ordering::SeqCst) {
            return Err(WireError::AddonDisabled.into());
        }
        self.addon
            .get(&key)
            .cloned()
            .ok_or(UpstreamError::Core(WireError::NotFound))
    }

    pub fn set_ready(&self, ready: bool) {
        self.not_ready.store(!ready, Ordering::SeqCst);
    }

    /// Advertises `connections` download connections, as a core's Welcome does.
    pub fn with_core_connections(mut self, connections: u32) -> Self {
        self.core_connections = connections;
        self
    }

    /// Makes `meta_chunk` fetch the chunk along with the meta, as a remote core does (here
    /// before answering, so the gate holds the meta too).
    pub fn with_meta_chunk(mut self) -> Self {
        self.meta_chunk = true;
        self
    }

    /// `meta_chunk` calls so far (each also counts one meta and, in range, one chunk call).
    pub fn meta_chunk_calls(&self) -> usize {
        self.meta_chunk_calls.load(Ordering::SeqCst)
    }

    pub fn meta_calls(&self) -> usize {
        self.meta_calls.load(Ordering::SeqCst)
    }

    pub fn chunk_calls(&self) -> usize {
        self.chunk_calls.load(Ordering::SeqCst)
    }

    pub fn chunks_in_flight(&self) -> usize {
        self.chunks_in_flight.load(Ordering::SeqCst)
    }

    pub fn max_chunks_in_flight(&self) -> usize {
        self.max_chunks_in_flight.load(Ordering::SeqCst)
    }

    async fn serve_chunk(&self, file: FileRef, index: u64) -> Result<Bytes, UpstreamError> {
        self.chunk_calls.fetch_add(1, Ordering::SeqCst);
        let now = self.chunks_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_chunks_in_flight.fetch_max(now, Ordering::SeqCst);
        let _leave = InFlightGuard(&self.chunks_in_flight);
        if let Some(gate) = &self.gate {
            gate.acquire()
                .await
                .map_err(|_| UpstreamError::unreachable("gate closed"))?
                .forget();
        }
        if self.failing_chunk_plus_one.load(Ordering::SeqCst) == index.saturating_add(1) {
            return Err(WireError::Unavailable.into());
        }
        let meta = self.files.get(&file).ok_or(WireError::NotFound)?;
        let len = chunk_len(meta.size, index)
            .ok_or_else(|| WireError::BadRequest(format!("chunk {index} past the end")))?;
        let start = index * CHUNK_SIZE;
        Ok(Bytes::from(pattern(start, start + len)))
    }
}

struct InFlightGuard<'a>(&'a AtomicUsize);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Upstream for MemoryUpstream {
    fn meta(&self, file: FileRef) -> UpstreamFuture<'_, FileMeta> {
        Box::pin(async move {
            self.meta_calls.fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = &self.meta_gate {
                gate.acquire()
                    .await
                    .map_err(|_| UpstreamError::unreachable("gate closed"))?
                    .forget();
            }
            self.files
                .get(&file)
                .cloned()
                .ok_or(UpstreamError::Core(WireError::NotFound))
        })
    }

    fn chunk(&self, file: FileRef, index: u64) -> UpstreamFuture<'_, Bytes> {
        Box::pin(self.serve_chunk(file, index))
    }

    fn meta_chunk(&self, file: FileRef, index: u64) -> UpstreamFuture<'_, MetaChunk> {
        Box::pin(async move {
            self.meta_chunk_calls.fetch_add(1, Ordering::SeqCst);
            let meta = self.meta(file).await?;
            if !self.meta_chunk {
                return Ok(MetaChunk { meta, chunk: None });
            }
            let chunk = match chunk_len(meta.size, index) {
                Some(_) => self.serve_chunk(file, index).await,
                None => Err(WireError::bad_request("chunk past the end").into()),
            };
            Ok(MetaChunk {
                meta,
                chunk: Some(Box::pin(std::future::ready(chunk))),
            })
        })
    }

    fn core_connections(&self) -> Option<u32> {
        (self.core_connections > 0).then_some(self.core_connections)
    }

    fn addon(&self, request: AddonRequest) -> UpstreamFuture<'_, AddonReply> {
        Box::pin(self.serve_addon(request))
    }

    fn ready(&self) -> bool {
        !self.not_ready.load(Ordering::SeqCst)
    }
}

/// A [`FileMeta`] for a test file of `size` bytes.
pub fn test_meta(size: u64, name: &str, mime: &str) -> FileMeta {
    FileMeta {
        size,
        mime: mime.to_owned(),
        name: name.to_owned(),
        unique_id: format!("uid-{size}"),
        date: 1_700_000_000,
        dc: 2,
    }
}
