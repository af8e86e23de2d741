//! Upper bounds on every variable-sized part of a wire message.
//!
//! Shared by the encoder (refuse to send what the peer would refuse) and the decoder
//! (refuse what a hostile peer sends). The sum of all string limits of one message stays far
//! below [`MAX_FRAME_LEN`](super::MAX_FRAME_LEN), so a message whose fields are within
//! limits always fits in a frame.

/// Largest chunk payload a [`ChunkHeader`](super::ChunkHeader) may announce: one aligned
/// Telegram chunk (1 MiB). Equal to `chunk::CHUNK_SIZE`; kept here as a literal so the
/// wire format does not change if the chunk planner's constant is ever tuned.
pub const MAX_CHUNK_PAYLOAD: u32 = 1 << 20;

// A chunk on the wire is exactly a chunk of the plan: the two constants must never drift.
const _: () = assert!(MAX_CHUNK_PAYLOAD as u64 == crate::chunk::CHUNK_SIZE);

/// Largest addon JSON body an [`AddonHeader`](super::AddonHeader) may announce (16 MiB): a
/// whole Stremio catalogue page with posters' URLs fits many times over.
pub const MAX_ADDON_PAYLOAD: u32 = 16 << 20;

/// Edge id and region names (`fra-1`, `eu-central`).
pub const MAX_NAME_ID: usize = 128;
/// URLs: the edge's public base URL, the base URL an addon call answers for.
pub const MAX_URL: usize = 2048;
/// Addon request path (`/catalog/movie/top/skip=100.json`).
pub const MAX_PATH: usize = 4096;
/// Addon request query string.
pub const MAX_QUERY: usize = 8192;
/// MIME type of a file (RFC 6838 caps type and subtype at 127 bytes each).
pub const MAX_MIME: usize = 255;
/// File name as Telegram reports it.
pub const MAX_FILE_NAME: usize = 1024;
/// Telegram's `file_unique_id`-style identifier used for the ETag.
pub const MAX_UNIQUE_ID: usize = 128;
/// Core version string in `Welcome`.
pub const MAX_VERSION: usize = 64;
/// Human-readable text of a `BadRequest` error.
pub const MAX_ERROR_MESSAGE: usize = 1024;
/// Files in one [`Push::RevokedList`](super::Push::RevokedList) part: at most 15 bytes each
/// (two zigzag varints), 30 KiB a frame.
pub const MAX_REVOKED_PER_PUSH: usize = 2048;
