//! Chunk arithmetic: the aligned 1 MiB chunk every cache and every Telegram request is keyed by.
//!
//! Telegram's `upload.getFile` never lets one request cross a 1 MiB boundary, so the whole system
//! works in chunks `k` covering bytes `[k·2^20, (k+1)·2^20)` of a file (the last one shorter).
//! This module owns the three pieces of maths built on that unit:
//!
//! * [`ChunkPlan`] — which chunks an HTTP byte range touches and which bytes of each to send
//!   (the edge's response body walks [`ChunkPlan::slices`]);
//! * [`chunk_parts`] / [`chunk_parts_ramp`] — the `getFile` requests that fetch one chunk (the
//!   core's download planner);
//! * [`is_legal_get_file`] — Telegram's rules for one `getFile` request, checked by both the
//!   planner's tests and the DC emulator.
//!
//! Pure functions over integers: no I/O, no allocation beyond the returned part lists, and no
//! panic on any input (sizes near `u64::MAX` give typed errors, never overflow).

use thiserror::Error;

/// Size of the unit of cache, wire and Telegram requests: 1 MiB.
pub const CHUNK_SIZE: u64 = 1 << 20;

/// Every `getFile` offset and limit is a multiple of this.
pub const GET_FILE_ALIGN: u32 = 4096;

/// The largest `getFile` limit Telegram accepts (one whole chunk).
pub const MAX_GET_FILE_LIMIT: u32 = 1 << 20;

/// The part size the core uses: grammers 0.11 cannot receive a 1 MiB part (a message body of
/// ≥ 1 044 448 bytes trips an assert in its sender), so a chunk is fetched as two 512 KiB parts.
pub const DEFAULT_PART_SIZE: u32 = 512 * 1024;

/// Why a chunk plan or a part plan could not be made. Every variant carries the offending input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ChunkError {
    #[error("byte range {start}-{end} is inverted (start after end)")]
    InvertedRange { start: u64, end: u64 },
    #[error("byte range {start}-{end} is not satisfiable for a file of {file_size} bytes")]
    RangeBeyondEof {
        start: u64,
        end: u64,
        file_size: u64,
    },
    #[error("chunk {index} is past the end of a file of {file_size} bytes")]
    ChunkBeyondEof { index: u64, file_size: u64 },
    #[error("getFile part size {part_size} is illegal (must be a 4 KiB multiple dividing 1 MiB)")]
    IllegalPartSize { part_size: u32 },
    #[error("first part {first_part} is larger than the steady part size {part_size}")]
    RampTooLarge { first_part: u32, part_size: u32 },
}

/// An inclusive byte range `start..=end`, the way HTTP writes them (`bytes=0-499` is 500 bytes).
///
/// Fields are public for pattern matching and literals; [`ByteRange::new`] is the checked way in,
/// and every consumer in this crate re-validates (`start <= end`) rather than trusting a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ByteRange {
    pub start: u64,
    /// Inclusive.
    pub end: u64,
}

impl ByteRange {
    /// A range `start..=end`; fails if `start > end`.
    pub fn new(start: u64, end: u64) -> Result<Self, ChunkError> {
        if start > end {
            return Err(ChunkError::InvertedRange { start, end });
        }
        Ok(Self { start, end })
    }

    /// The whole of a file of `file_size` bytes, or `None` for an empty file (which has no
    /// byte to name).
    pub fn whole(file_size: u64) -> Option<Self> {
        file_size.checked_sub(1).map(|end| Self { start: 0, end })
    }

    /// Number of bytes in the range. Saturates at `u64::MAX` for the one range that does not fit
    /// (`0..=u64::MAX`), which no file of this system can reach.
    // A byte range always holds at least one byte, so an `is_empty` would be constant `false`.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        (self.end.saturating_sub(self.start)).saturating_add(1)
    }

    /// Exclusive end, for code that thinks in half-open ranges. Saturates like [`Self::len`].
    pub fn end_exclusive(&self) -> u64 {
        self.end.saturating_add(1)
    }

    /// Whether `offset` lies inside the range.
    pub fn contains(&self, offset: u64) -> bool {
        self.start <= offset && offset <= self.end
    }
}

/// Number of chunks of a file of `file_size` bytes (0 for an empty file).
pub fn chunk_count(file_size: u64) -> u64 {
    file_size.div_ceil(CHUNK_SIZE)
}

/// Exact length of chunk `index` of a file of `file_size` bytes: [`CHUNK_SIZE`] except for the
/// last chunk; `None` past the end.
pub fn chunk_len(file_size: u64, index: u64) -> Option<u64> {
    if index >= chunk_count(file_size) {
        return None;
    }
    // index < chunk_count ≤ 2^44, so index * CHUNK_SIZE ≤ file_size and cannot overflow.
    let start = index * CHUNK_SIZE;
    Some((file_size - start).min(CHUNK_SIZE))
}

/// Index of the chunk holding byte `offset`.
pub fn chunk_index_of(offset: u64) -> u64 {
    offset / CHUNK_SIZE
}

/// File offset of the first byte of chunk `index`, or `None` if it overflows `u64`.
pub fn chunk_start(index: u64) -> Option<u64> {
    index.checked_mul(CHUNK_SIZE)
}

/// The bytes of one chunk that a response needs: `start..end` (half-open) inside chunk `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkSlice {
    pub index: u64,
    /// Offset inside the chunk of the first byte to send.
    pub start: u64,
    /// Exclusive offset inside the chunk; never more than the chunk's length.
    pub end: u64,
}

impl ChunkSlice {
    /// Bytes to send from this chunk (never 0 in a plan's slices).
    // Slices come from a plan and hold at least one byte; an `is_empty` would mislead.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Offset in the file of the slice's first byte.
    pub fn file_offset(&self) -> u64 {
        // A slice only exists inside a file of at most u64::MAX bytes: no overflow.
        self.index * CHUNK_SIZE + self.start
    }

    /// The slice as a `usize` range for indexing the chunk's bytes. Both ends are ≤ 1 MiB, which
    /// fits the `usize` of every 32- and 64-bit target, so the casts cannot truncate.
    pub fn as_usize_range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// Which chunks a satisfiable byte range of a file touches, and how much of the first and last
/// chunk to cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkPlan {
    /// Index of the first chunk touched.
    pub first: u64,
    /// Index of the last chunk touched (inclusive).
    pub last: u64,
    /// Bytes cut from the head of the first chunk.
    pub head_skip: u64,
    /// Bytes kept of the last chunk (from its head; ≥ 1).
    pub tail_keep: u64,
    file_size: u64,
    range: ByteRange,
}

impl ChunkPlan {
    /// Plans `range` over a file of `file_size` bytes. The range must be satisfiable, i.e.
    /// already clamped to the file (`end < file_size`), as [`crate::range::parse_range`] returns.
    pub fn new(file_size: u64, range: ByteRange) -> Result<Self, ChunkError> {
        let ByteRange { start, end } = range;
        if start > end {
            return Err(ChunkError::InvertedRange { start, end });
        }
        if end >= file_size {
            return Err(ChunkError::RangeBeyondEof {
                start,
                end,
                file_size,
            });
        }
        let first = chunk_index_of(start);
        let last = chunk_index_of(end);
        Ok(Self {
            first,
            last,
            head_skip: start - first * CHUNK_SIZE,
            tail_keep: end - last * CHUNK_SIZE + 1,
            file_size,
            range,
        })
    }

    /// The planned range.
    pub fn range(&self) -> ByteRange {
        self.range
    }

    /// Size of the file the plan was made for.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// Number of chunks the range touches (≥ 1).
    pub fn chunk_count(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Exact length of chunk `index` of the file (not of the slice sent from it); 0 past the end
    /// of the file.
    pub fn chunk_len(&self, index: u64) -> u64 {
        chunk_len(self.file_size, index).unwrap_or(0)
    }

    /// The slices to send, in file order; their lengths sum to the range's length.
    pub fn slices(&self) -> ChunkSlices {
        ChunkSlices {
            plan: *self,
            next: self.first,
            remaining: self.chunk_count(),
        }
    }

    fn slice(&self, index: u64) -> ChunkSlice {
        let start = if index == self.first {
            self.head_skip
        } else {
            0
        };
        let end = if index == self.last {
            self.tail_keep
        } else {
            self.chunk_len(index)
        };
        ChunkSlice { index, start, end }
    }
}

/// Iterator over a plan's [`ChunkSlice`]s; a named type so a response body can own it.
#[derive(Debug, Clone)]
pub struct ChunkSlices {
    plan: ChunkPlan,
    next: u64,
    remaining: u64,
}

impl Iterator for ChunkSlices {
    type Item = ChunkSlice;

    fn next(&mut self) -> Option<ChunkSlice> {
        if self.remaining == 0 {
            return None;
        }
        let slice = self.plan.slice(self.next);
        self.remaining -= 1;
        // `next` may pass `last` by one after the final slice; `last` < 2^44 so no overflow.
        self.next += 1;
        Some(slice)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match usize::try_from(self.remaining) {
            Ok(n) => (n, Some(n)),
            Err(_) => (usize::MAX, None),
        }
    }
}

/// One Telegram `upload.getFile` request: `limit` bytes from `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartRequest {
    pub offset: u64,
    pub limit: u32,
}

impl PartRequest {
    /// Whether Telegram accepts this request ([`is_legal_get_file`]).
    pub fn is_legal(&self) -> bool {
        is_legal_get_file(self.offset, self.limit)
    }
}

/// Telegram's rules for `upload.getFile`: offset and limit multiples of 4 KiB, limit dividing
/// 1 MiB (so at most 1 MiB, and never 0), and the request not crossing a 1 MiB boundary.
pub fn is_legal_get_file(offset: u64, limit: u32) -> bool {
    // GET_FILE_ALIGN is a power of two, so a mask tests divisibility (and stays within the
    // workspace's rust-version, which predates `is_multiple_of`).
    let unaligned = offset & u64::from(GET_FILE_ALIGN - 1) != 0;
    if unaligned || !is_legal_part_size(limit) {
        return false;
    }
    match offset.checked_add(u64::from(limit) - 1) {
        Some(last_byte) => chunk_index_of(offset) == chunk_index_of(last_byte),
        None => false,
    }
}

/// Whether `part_size` can be a `getFile` limit: a non-zero 4 KiB multiple dividing 1 MiB, i.e.
/// a power of two from 4 KiB to 1 MiB.
pub fn is_legal_part_size(part_size: u32) -> bool {
    // The divisors of 2^20 are exactly the powers of two up to it; being a multiple of 2^12 as
    // well leaves 2^12..=2^20. Zero is not a power of two, so it is rejected too.
    part_size.is_power_of_two() && (GET_FILE_ALIGN..=MAX_GET_FILE_LIMIT).contains(&part_size)
}

/// The `getFile` parts that fetch chunk `index` of a file of `file_size` bytes, `part_size` bytes
/// each, in offset order. Parts wholly past the end of the file are omitted; the last part may
/// reach past it (Telegram then returns fewer bytes), but never past the chunk.
pub fn chunk_parts(
    file_size: u64,
    index: u64,
    part_size: u32,
) -> Result<Vec<PartRequest>, ChunkError> {
    chunk_parts_ramp(file_size, index, part_size, part_size)
}

/// Like [`chunk_parts`], but the first part is `first_part` bytes and parts double up to
/// `part_size`, each aligned to its own size: `first_part = 128 KiB, part_size = 512 KiB` gives
/// 128K@0, 128K@128K, 256K@256K, 512K@512K. A cold seek gets its first bytes after a small
/// download, while the rest of the chunk still arrives in large parts.
pub fn chunk_parts_ramp(
    file_size: u64,
    index: u64,
    first_part: u32,
    part_size: u32,
) -> Result<Vec<PartRequest>, ChunkError> {
    for size in [first_part, part_size] {
        if !is_legal_part_size(size) {
            return Err(ChunkError::IllegalPartSize { part_size: size });
        }
    }
    if first_part > part_size {
        return Err(ChunkError::RampTooLarge {
            first_part,
            part_size,
        });
    }
    let len = chunk_len(file_size, index).ok_or(ChunkError::ChunkBeyondEof { index, file_size })?;
    let base = index * CHUNK_SIZE; // index is inside the file: no overflow (see `chunk_len`).

    let mut parts = Vec::new();
    let mut pos: u32 = 0; // offset inside the chunk; < 1 MiB whenever a part is added
    while u64::from(pos) < len {
        // Legal sizes are powers of two, and `pos` is a sum of earlier parts each at least
        // `first_part`, so its lowest set bit is ≥ `first_part`: the largest size aligned at
        // `pos` is that bit, capped at `part_size`. At 0 we start with `first_part`.
        let limit = if pos == 0 {
            first_part
        } else {
            (1u32 << pos.trailing_zeros()).min(part_size)
        };
        parts.push(PartRequest {
            offset: base + u64::from(pos),
            limit,
        });
        pos += limit; // ≤ 1 MiB: parts tile the chunk and never cross its end.
    }
    Ok(parts)
}

#[cfg(test)]
mod tests;
