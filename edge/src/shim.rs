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
