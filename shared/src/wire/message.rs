//! The requests an edge sends and the responses a core answers, and their field limits.
//!
//! These are plain data: the codec turns them into frames, the edge and core give them
//! meaning. Variant order is the on-wire tag, so variants are only ever appended.

use serde::{Deserialize, Serialize};

use super::PROTOCOL_VERSION;
use super::error::{FrameError, WireError};
use super::limits;
use crate::FileRef;

/// One request frame, written by the edge as the only thing on its side of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Must be the first stream on a connection; nothing else is served before it succeeds.
    Hello(Hello),
    /// Periodic load report; answered by [`Response::Ack`].
    Heartbeat(Heartbeat),
    /// File metadata; answered by [`Response::Meta`].
    Meta(FileRef),
    /// One aligned chunk; answered by [`Response::Chunk`] and the raw bytes.
    Chunk(ChunkRequest),
    /// A Stremio addon route; answered by [`Response::Addon`] and a JSON body.
    Addon(AddonRequest),
    /// File metadata and one of its chunks in one exchange (protocol 4), for an edge that
    /// has no metadata yet and a range that needs this chunk: answered by [`Response::Meta`]
    /// and then, on the same stream, by [`Response::Chunk`] and the raw bytes — or by a
    /// [`Response::Error`] in place of either (a chunk that failed after its meta).
    MetaChunk(ChunkRequest),
}

/// Number of [`Request`] variants this build knows: tags at or above are unknown.
pub(super) const REQUEST_KINDS: u32 = 6;

/// One response frame, written by the core before any payload bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The Hello was accepted; other requests may follow on new streams.
    Welcome(Welcome),
    /// A heartbeat was recorded.
    Ack,
    /// Metadata of the requested file.
    Meta(FileMeta),
    /// Followed on the stream by exactly `len` raw chunk bytes.
    Chunk(ChunkHeader),
    /// Followed on the stream by exactly `len` bytes of JSON.
    Addon(AddonHeader),
    /// The request failed; no payload follows.
    Error(WireError),
}

/// Number of [`Response`] variants this build knows.
pub(super) const RESPONSE_KINDS: u32 = 6;

/// A message the core sends unasked, alone on a unidirectional stream it opens to an
/// authenticated edge (one push per stream, then finish). Only ever core → edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Push {
    /// Every link to this file was revoked: drop its metadata and chunks, answer 410.
    Revoked(FileRef),
    /// The core may have revoked files this edge was not told about (its push queue
    /// overflowed): drop every cached metadata, so each file is asked for again.
    ForgetAll,
    /// This core's revocation of the file was undone (protocol 4): the edge stops refusing
    /// it on this core's word.
    Unrevoked(FileRef),
    /// Every file this core holds revoked, sent first on each connection (protocol 4) in
    /// parts of at most [`limits::MAX_REVOKED_PER_PUSH`] files, `last` on the final one.
    /// Once the last part is in, the edge's view of this core's revocations is exactly the
    /// list: it refuses these files whichever core serves them.
    RevokedList { files: Vec<FileRef>, last: bool },
}

/// Number of [`Push`] variants this build knows.
pub(super) const PUSH_KINDS: u32 = 4;

impl Push {
    /// Short name for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Push::Revoked(_) => "revoked",
            Push::ForgetAll => "forget_all",
            Push::Unrevoked(_) => "unrevoked",
            Push::RevokedList { .. } => "revoked_list",
        }
    }

    /// Field limits; the codec calls this on both sides.
    pub(super) fn validate(&self) -> Result<(), FrameError> {
        match self {
            Push::RevokedList { files, .. } if files.len() > limits::MAX_REVOKED_PER_PUSH => {
                Err(FrameError::FieldTooLong {
                    field: "files",
                    len: files.len(),
                    max: limits::MAX_REVOKED_PER_PUSH,
                })
            }
            _ => Ok(()),
        }
    }
}

/// An edge introducing itself. `auth_proof` is [`hello_proof`](super::hello_proof) over
/// the cluster secret, `edge_id` and the connection's exported keying material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol_version: u16,
    pub edge_id: String,
    pub region: String,
    /// Where viewers reach this edge (`https://fra.cdn.example`), used for links the core
    /// builds on the edge's behalf.
    pub public_base_url: String,
    pub auth_proof: [u8; 32],
}

impl Hello {
    /// The core's version check, as one place to get the error variant right.
    pub fn check_version(&self) -> Result<(), WireError> {
        if self.protocol_version == PROTOCOL_VERSION {
            Ok(())
        } else {
            Err(WireError::VersionMismatch {
                supported: PROTOCOL_VERSION,
            })
        }
    }
}

/// The core accepting an edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub core_version: String,
    /// How often the core wants a [`Heartbeat`]; it forgets edges silent for a few of these.
    pub heartbeat_interval_secs: u32,
    /// Telegram download connections the core fetches chunks on (its bots × connections
    /// per bot, protocol 4): how many chunks it can usefully have in flight, which an edge
    /// sizes its read-ahead windows from.
    pub download_connections: u32,
}

/// An edge's load report, kept by the core as its view of the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Viewer requests being served right now.
    pub in_flight: u32,
    /// Open viewer HTTP connections.
    pub open_connections: u32,
    /// Bytes held by the chunk cache, and its configured capacity.
    pub cache_bytes: u64,
    pub cache_capacity_bytes: u64,
    /// Chunk cache hit ratio since the previous heartbeat, in thousandths (0..=1000).
    pub cache_hit_ratio_permille: u16,
    /// Body bytes sent to viewers since the edge started (monotonic).
    pub bytes_served_total: u64,
    pub uptime_secs: u64,
}

/// Ask for chunk `index` of `file`: bytes `[index·CHUNK_SIZE, (index+1)·CHUNK_SIZE)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChunkRequest {
    pub file: FileRef,
    pub index: u64,
    /// Whether a viewer's response waits on this chunk (protocol 4): a core whose download
    /// connections are all busy serves queued demand chunks before queued read-ahead.
    pub class: ChunkClass,
}

/// Why the edge wants a chunk. Declaration order is the wire tag: only ever appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ChunkClass {
    /// A response is blocked on it (the chunk being sent, a seek's first chunk).
    #[default]
    Demand,
    /// Fetched ahead of the reader; nobody waits on it yet.
    ReadAhead,
}

impl ChunkClass {
    /// Short name for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkClass::Demand => "demand",
            ChunkClass::ReadAhead => "read_ahead",
        }
    }
}

/// A Stremio addon call forwarded from the edge, already validated and canonical there:
/// `path` is `/manifest.json` or `/{resource}/{type}/{id}.json` with the id percent-decoded
/// and no addon secret, `query` the route's extra (`search=…&skip=…&genre=…`, keys in that
/// order, values percent-encoded, empty when none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonRequest {
    pub path: String,
    pub query: String,
    /// The edge's public base URL as the viewer reached it, so stream URLs point back there.
    pub base_url: String,
}

/// What the edge needs to answer HEAD and build headers without touching chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    pub size: u64,
    pub mime: String,
    pub name: String,
    /// Stable across file-reference refreshes; the edge derives the ETag from it.
    pub unique_id: String,
    /// Message date, unix seconds (Last-Modified).
    pub date: u64,
    /// Telegram DC that stores the file.
    pub dc: u8,
}

/// Announces `len` raw chunk bytes right after this frame (`len` ≤ 1 MiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkHeader {
    pub len: u32,
}

/// Announces `len` bytes of addon JSON right after this frame (`len` ≤ 16 MiB), with how
/// long the answer may be reused: the edge caches it for `max_age_secs` and passes all three
/// on to viewers as `Cache-Control` (`max-age`, `stale-while-revalidate`, `stale-if-error`).
/// Zero `max_age_secs` means "do not cache".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AddonHeader {
    pub len: u32,
    pub max_age_secs: u32,
    pub stale_revalidate_secs: u32,
    pub stale_error_secs: u32,
}

impl Request {
    /// Short name for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Hello(_) => "hello",
            Request::Heartbeat(_) => "heartbeat",
            Request::Meta(_) => "meta",
            Request::Chunk(_) => "chunk",
            Request::Addon(_) => "addon",
            Request::MetaChunk(_) => "meta_chunk",
        }
    }

    /// Field limits; the codec calls this on both sides.
    pub(super) fn validate(&self) -> Result<(), FrameError> {
        match self {
            Request::Hello(h) => {
                check_str("edge_id", &h.edge_id, limits::MAX_NAME_ID)?;
                check_str("region", &h.region, limits::MAX_NAME_ID)?;
                check_str("public_base_url", &h.public_base_url, limits::MAX_URL)
            }
            Request::Heartbeat(_)
            | Request::Meta(_)
            | Request::Chunk(_)
            | Request::MetaChunk(_) => Ok(()),
            Request::Addon(a) => {
                check_str("path", &a.path, limits::MAX_PATH)?;
                check_str("query", &a.query, limits::MAX_QUERY)?;
                check_str("base_url", &a.base_url, limits::MAX_URL)
            }
        }
    }
}

impl Response {
    /// How many raw bytes follow this frame on the stream, for responses that carry a
    /// payload. A reader must read exactly this many, then expect the stream to finish.
    pub fn payload_len(&self) -> Option<u32> {
        match self {
            Response::Chunk(h) => Some(h.len),
            Response::Addon(h) => Some(h.len),
            Response::Welcome(_) | Response::Ack | Response::Meta(_) | Response::Error(_) => None,
        }
    }

    /// Short name for logs and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Response::Welcome(_) => "welcome",
            Response::Ack => "ack",
            Response::Meta(_) => "meta",
            Response::Chunk(_) => "chunk",
            Response::Addon(_) => "addon",
            Response::Error(_) => "error",
        }
    }

    pub(super) fn validate(&self) -> Result<(), FrameError> {
        match self {
            Response::Welcome(w) => check_str("core_version", &w.core_version, limits::MAX_VERSION),
            Response::Ack => Ok(()),
            Response::Meta(m) => {
                check_str("mime", &m.mime, limits::MAX_MIME)?;
                check_str("name", &m.name, limits::MAX_FILE_NAME)?;
                check_str("unique_id", &m.unique_id, limits::MAX_UNIQUE_ID)
            }
            Response::Chunk(h) => check_payload("chunk", h.len, limits::MAX_CHUNK_PAYLOAD),
            Response::Addon(h) => check_payload("addon", h.len, limits::MAX_ADDON_PAYLOAD),
            Response::Error(WireError::BadRequest(msg)) => {
                check_str("bad_request", msg, limits::MAX_ERROR_MESSAGE)
            }
            Response::Error(_) => Ok(()),
        }
    }
}

fn check_str(field: &'static str, value: &str, max: usize) -> Result<(), FrameError> {
    if value.len() > max {
        return Err(FrameError::FieldTooLong {
            field,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

fn check_payload(kind: &'static str, len: u32, max: u32) -> Result<(), FrameError> {
    if len > max {
        return Err(FrameError::PayloadTooLarge { kind, len, max });
    }
    Ok(())
}
