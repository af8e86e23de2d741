//! Temporary stand-ins for `tgcdn_shared::{wire, chunk}` types until those modules land on
//! `main`. Same names and fields as the shared crate's designs, so the switch is a change of
//! `use` lines. Nothing outside the edge may depend on this module; it is deleted on merge.

/// What the edge needs to answer HEAD and build headers (mirror of `shared::wire::FileMeta`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub size: u64,
    pub mime: String,
    pub name: String,
    pub unique_id: String,
    pub date: u64,
    pub dc: u8,
}

/// A typed failure reported by the core (mirror of `shared::wire::WireError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("file not found")]
    NotFound,
    #[error("file revoked")]
    Revoked,
    #[error("telegram flood wait, retry in {secs}s")]
    FloodWait { secs: u32 },
    #[error("upstream unavailable")]
    Unavailable,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("edge not authorised")]
    Unauthorized,
    #[error("protocol version mismatch, core supports {supported}")]
    VersionMismatch { supported: u16 },
    #[error("internal core error")]
    Internal,
}

impl WireError {
    pub fn http_status(&self) -> u16 {
        match self {
            WireError::NotFound => 404,
            WireError::Revoked => 410,
            WireError::FloodWait { .. } => 503,
            WireError::Unavailable => 502,
            WireError::BadRequest(_) => 400,
            WireError::Unauthorized | WireError::VersionMismatch { .. } => 502,
            WireError::Internal => 500,
        }
    }
    pub fn retry_after_secs(&self) -> Option<u32> {
        match self {
            WireError::FloodWait { secs } => Some(*secs),
            _ => None,
        }
    }
    pub fn is_retryable(&self) -> bool {
        matches!(self, WireError::FloodWait { .. } | WireError::Unavailable)
    }
}

pub const CHUNK_SIZE: u64 = 1 << 20;

/// Inclusive byte range (mirror of `shared::chunk::ByteRange`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn whole(file_size: u64) -> Option<Self> {
        (file_size > 0).then(|| ByteRange {
            start: 0,
            end: file_size - 1,
        })
    }
}

/// The bytes of one chunk a response sends: `[start, end)` within chunk `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSlice {
    pub index: u64,
    pub start: u64,
    pub end: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPlan {
    pub first: u64,
    pub last: u64,
    pub head_skip: u64,
    pub tail_keep: u64,
    range: ByteRange,
}

impl ChunkPlan {
    /// `None` when the range is empty or past the end (the shared version returns an error).
    pub fn new(file_size: u64, range: ByteRange) -> Option<Self> {
        if range.start > range.end || range.end >= file_size {
            return None;
        }
        Some(ChunkPlan {
            first: range.start / CHUNK_SIZE,
            last: range.end / CHUNK_SIZE,
            head_skip: range.start % CHUNK_SIZE,
            tail_keep: range.end % CHUNK_SIZE + 1,
            range,
        })
    }
    pub fn range(&self) -> ByteRange {
        self.range
    }
    pub fn chunk_count(&self) -> u64 {
        self.last - self.first + 1
    }
    pub fn slices(&self) -> impl Iterator<Item = ChunkSlice> + Send + 'static {
        let plan = *self;
        (plan.first..=plan.last).map(move |index| ChunkSlice {
            index,
            start: if index == plan.first {
                plan.head_skip
            } else {
                0
            },
            end: if index == plan.last {
                plan.tail_keep
            } else {
                CHUNK_SIZE
            },
        })
    }
}

pub fn chunk_len(file_size: u64, index: u64) -> Option<u64> {
    let start = index.checked_mul(CHUNK_SIZE)?;
    if start >= file_size {
        return None;
    }
    Some((file_size - start).min(CHUNK_SIZE))
}

// ---- shared::range stand-ins (simplified; the real ones are stricter) ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    Full,
    Single(ByteRange),
    Multi(Vec<ByteRange>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("unsatisfiable for {file_size}")]
    Unsatisfiable { file_size: u64 },
    #[error("too many ranges")]
    TooMany,
}

pub fn parse_range(header: &[u8], file_size: u64) -> Result<RangeRequest, RangeError> {
    let Ok(text) = std::str::from_utf8(header) else {
        return Ok(RangeRequest::Full);
    };
    let Some(list) = text.trim().strip_prefix("bytes=") else {
        return Ok(RangeRequest::Full);
    };
    let mut ranges = Vec::new();
    for spec in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((a, b)) = spec.split_once('-') else {
            return Ok(RangeRequest::Full);
        };
        let range = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
            (Some(start), Some(end)) if start <= end => {
                Some((start, end.min(file_size.saturating_sub(1))))
            }
            (Some(start), None) if b.is_empty() => Some((start, file_size.saturating_sub(1))),
            (None, Some(n)) if a.is_empty() && n > 0 => {
                Some((file_size.saturating_sub(n), file_size.saturating_sub(1)))
            }
            (None, Some(_)) if a.is_empty() => None,
            _ => return Ok(RangeRequest::Full),
        };
        if let Some((start, end)) = range.filter(|(start, _)| *start < file_size) {
            ranges.push(ByteRange { start, end });
        }
    }
    if ranges.len() > 16 {
        return Err(RangeError::TooMany);
    }
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<ByteRange> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end + 1 => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    match merged.len() {
        0 => Err(RangeError::Unsatisfiable { file_size }),
        1 => Ok(RangeRequest::Single(merged[0])),
        _ => Ok(RangeRequest::Multi(merged)),
    }
}

pub fn if_range_allows_partial(if_range: &str, etag: &str, last_modified_unix: u64) -> bool {
    let if_range = if_range.trim();
    if if_range.starts_with('"') {
        return if_range == etag;
    }
    parse_http_date(if_range) == Some(last_modified_unix)
}

pub fn if_none_match_matches(header: &str, etag: &str) -> bool {
    let bare = etag.trim_start_matches("W/");
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == bare)
}

pub fn content_range_value(range: ByteRange, file_size: u64) -> String {
    format!("bytes {}-{}/{}", range.start, range.end, file_size)
}

pub fn unsatisfied_content_range(file_size: u64) -> String {
    format!("bytes */{file_size}")
}

pub fn format_http_date(unix: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix))
}

pub fn parse_http_date(text: &str) -> Option<u64> {
    httpdate::parse_http_date(text)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

// ---- shared::token stand-ins: "f{chat}_{msg}" valid, "e…" expired, "k…" unknown key ----

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("bad signature")]
    BadSignature,
    #[error("unknown key")]
    UnknownKey { key_id: u8 },
    #[error("expired")]
    Expired { expired_at: u64 },
}

impl TokenError {
    pub fn http_status(&self) -> u16 {
        match self {
            TokenError::BadSignature => 404,
            TokenError::UnknownKey { .. } => 403,
            TokenError::Expired { .. } => 410,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    file: tgcdn_shared::FileRef,
    expires_at: Option<u64>,
}

impl VerifiedToken {
    pub fn file(&self) -> tgcdn_shared::FileRef {
        self.file
    }
    pub fn expires_at(&self) -> Option<u64> {
        self.expires_at
    }
}

#[derive(Debug, Clone, Default)]
pub struct TokenVerifier;

impl TokenVerifier {
    pub fn sign(file: tgcdn_shared::FileRef) -> String {
        format!("f{}_{}", file.chat_id, file.msg_id)
    }
    pub fn verify(&self, token: &str, _now_unix: u64) -> Result<VerifiedToken, TokenError> {
        let (kind, rest) = token.split_at_checked(1).ok_or(TokenError::BadSignature)?;
        let (chat, msg) = rest.split_once('_').ok_or(TokenError::BadSignature)?;
        let file = tgcdn_shared::FileRef {
            chat_id: chat.parse().map_err(|_| TokenError::BadSignature)?,
            msg_id: msg.parse().map_err(|_| TokenError::BadSignature)?,
        };
        match kind {
            "f" => Ok(VerifiedToken {
                file,
                expires_at: None,
            }),
            "e" => Err(TokenError::Expired { expired_at: 1 }),
            "k" => Err(TokenError::UnknownKey { key_id: 9 }),
            _ => Err(TokenError::BadSignature),
        }
    }
}
