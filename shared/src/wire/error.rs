//! The two error types of the wire: [`WireError`], a typed failure the core sends as a
//! response, and [`FrameError`], what goes wrong encoding or decoding a frame.
//!
//! `WireError` → HTTP status happens here, in one function, so the edge never re-derives
//! it. Neither type carries anything a hostile peer can make unbounded.

use serde::{Deserialize, Serialize};

use super::limits;

/// A request the core could not serve, sent as [`Response::Error`](super::Response::Error).
///
/// Variant order is the on-wire tag: append only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum WireError {
    #[error("file not found")]
    NotFound,
    /// The link or file was revoked by its owner or the operator.
    #[error("file revoked")]
    Revoked,
    /// Every bot able to serve this is under Telegram's FLOOD_WAIT for at least `secs`.
    #[error("telegram flood wait, retry in {secs}s")]
    FloodWait { secs: u32 },
    /// Telegram (or the core's path to it) is unavailable right now.
    #[error("upstream unavailable")]
    Unavailable,
    /// The request itself is wrong (chunk index past the end, bad addon path…).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The connection has no valid Hello, or the Hello's proof did not verify.
    #[error("edge not authorised")]
    Unauthorized,
    /// The edge spoke a protocol version the core does not serve.
    #[error("protocol version mismatch, core supports {supported}")]
    VersionMismatch { supported: u16 },
    #[error("internal core error")]
    Internal,
    /// The core serves no Stremio addon (no catalogue configured).
    #[error("addon not enabled")]
    AddonDisabled,
}

impl WireError {
    /// A `BadRequest` whose text is cut (on a char boundary) to what the wire accepts, so
    /// building an error never fails on its message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > limits::MAX_ERROR_MESSAGE {
            let mut cut = limits::MAX_ERROR_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        WireError::BadRequest(message)
    }

    /// The status the edge answers a viewer with. This is the only place it is decided.
    ///
    /// Failures of the edge↔core link itself (`Unauthorized`, `VersionMismatch`) are not
    /// the viewer's doing, so they are 502 rather than 401: a 401 would make browsers ask
    /// the viewer for credentials.
    pub fn http_status(&self) -> u16 {
        match self {
            WireError::NotFound | WireError::AddonDisabled => 404,
            WireError::Revoked => 410,
            WireError::FloodWait { .. } => 503,
            WireError::Unavailable => 502,
            WireError::BadRequest(_) => 400,
            WireError::Unauthorized | WireError::VersionMismatch { .. } => 502,
            WireError::Internal => 500,
        }
    }

    /// Seconds for a `Retry-After` header, where the core knows them.
    pub fn retry_after_secs(&self) -> Option<u32> {
        match self {
            WireError::FloodWait { secs } => Some(*secs),
            _ => None,
        }
    }

    /// Whether the same request may succeed later (after `retry_after_secs` if given).
    /// `Internal` is not: its cause is unknown and retrying it would only multiply load.
    pub fn is_retryable(&self) -> bool {
        matches!(self, WireError::FloodWait { .. } | WireError::Unavailable)
    }
}

/// Why a frame could not be encoded or decoded. Decoding never panics; it ends here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix (or an encoded body) exceeds the frame limit. Detected from the
    /// 4-byte prefix alone, before anything is allocated.
    #[error("frame body of {len} bytes exceeds the maximum of {max}")]
    TooLarge { len: u64, max: u32 },
    /// The frame's body is shorter than the message it starts.
    #[error("frame body ends inside a message")]
    Truncated,
    /// The body holds bytes after a complete message.
    #[error("{extra} trailing bytes after the message")]
    TrailingBytes { extra: usize },
    /// A message tag this build does not know: a newer peer or garbage.
    #[error("unknown {direction} message tag {tag}")]
    UnknownMessage { direction: &'static str, tag: u32 },
    /// A string field is longer than its limit.
    #[error("field `{field}` is {len} bytes, more than the maximum of {max}")]
    FieldTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    /// A response announces more payload bytes than that kind may carry.
    #[error("{kind} payload of {len} bytes exceeds the maximum of {max}")]
    PayloadTooLarge {
        kind: &'static str,
        len: u32,
        max: u32,
    },
    /// postcard rejected the body (its message inside).
    #[error("malformed frame body: {0}")]
    Malformed(String),
}

impl From<postcard::Error> for FrameError {
    fn from(err: postcard::Error) -> Self {
        match err {
            postcard::Error::DeserializeUnexpectedEnd => FrameError::Truncated,
            other => FrameError::Malformed(other.to_string()),
        }
    }
}
