//! What a chunk buffer costs in memory, and how the edge binary makes that cost exact: every
//! buffer of [`MMAP_THRESHOLD`] or more (every full 1 MiB chunk) is its own anonymous
//! mapping, returned to the kernel when freed.
//!
//! glibc's default serves a chunk from a heap arena once its dynamic mmap threshold has risen
//! past 1 MiB (it does after the first such buffer is freed); evicted chunks then leave holes
//! that smaller allocations split, memory no weigher sees: fixing the threshold took the
//! `memory` bench's excess beyond counted chunk memory from 95.8 to 57.7 KiB per slow stream
//! (bench/README.md, "Memory"). A mapped chunk costs its length plus malloc's header rounded
//! up to a page: [`chunk_footprint`], which the cache's weigher counts. Not airtight: glibc
//! still serves a request from a free arena chunk big enough when there is one (the threshold
//! only decides how an arena grows), so some chunks still live in arenas.

/// Allocations at least this big get their own mapping (`M_MMAP_THRESHOLD`). Below a full
/// chunk (1 MiB) and far above what hyper, quinn or tokio allocate per operation.
pub const MMAP_THRESHOLD: usize = 512 * 1024;

/// glibc's header in front of an mmapped allocation (two `size_t`s).
const MALLOC_HEADER: usize = 16;
const PAGE: usize = 4096;

/// Bytes of memory a chunk buffer of `len` bytes occupies: a mapping of whole pages for a
/// buffer above the threshold (1 MiB + 4 KiB for a full chunk), the length itself below it
/// (heap slack for those is a few bytes).
pub fn chunk_footprint(len: usize) -> usize {
    if len >= MMAP_THRESHOLD {
        (len + MALLOC_HEADER).next_multiple_of(PAGE)
    } else {
        len
    }
}

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD`] (see the module docs). Call first in
/// `main`, before any thread starts. Elsewhere (musl, other allocators) it does nothing.
pub fn keep_chunks_out_of_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let threshold = i32::try_from(MMAP_THRESHOLD).unwrap_or(i32::MAX);
        // SAFETY: mallopt only sets an allocator parameter; it is called before any other
        // thread exists, and a refusal (0) leaves glibc's default in force.
        let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) };
        if set == 0 {
            tracing::warn!(
                "cannot set glibc's mmap threshold; chunk memory may exceed the cache's count"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_chunk_costs_one_page_more() {
        assert_eq!(chunk_footprint(1 << 20), (1 << 20) + PAGE);
        assert_eq!(chunk_footprint(MMAP_THRESHOLD), MMAP_THRESHOLD + PAGE);
        assert_eq!(chunk_footprint(MMAP_THRESHOLD + 1), MMAP_THRESHOLD + PAGE);
        assert_eq!(chunk_footprint(1000), 1000);
    }
}
