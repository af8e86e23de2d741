//! Tests of the chunk maths: boundary cases by hand, then property tests against a synthetic file
//! whose byte `i` is a hash of `i` (computed on demand, never allocated whole).

use super::*;
use proptest::prelude::*;

const KIB: u32 = 1024;
const MIB: u64 = CHUNK_SIZE;
const GIB4: u64 = 4 << 30;

/// Byte `i` of the synthetic file: the top byte of splitmix64(i), so neighbouring offsets differ
/// and a slice taken from the wrong place almost surely mismatches within a few bytes.
fn file_byte(i: u64) -> u8 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as u8
}

/// What a cache would hold for chunk `index`: `chunk_len` bytes of the file, read lazily.
/// `get` returns `None` past the chunk's end, so a slice overrunning its chunk fails the test
/// instead of quietly reading the next chunk's bytes.
struct SyntheticChunk {
    base: u64,
    len: u64,
}

impl SyntheticChunk {
    fn fetch(file_size: u64, index: u64) -> Self {
        let len = chunk_len(file_size, index).expect("plan named a chunk past EOF");
        Self {
            base: index * CHUNK_SIZE,
            len,
        }
    }

    fn get(&self, offset: u64) -> Option<u8> {
        (offset < self.len).then(|| file_byte(self.base + offset))
    }
}

fn plan(size: u64, start: u64, end: u64) -> ChunkPlan {
    ChunkPlan::new(size, ByteRange::new(start, end).unwrap()).unwrap()
}

fn slices(size: u64, start: u64, end: u64) -> Vec<(u64, u64, u64)> {
    plan(size, start, end)
        .slices()
        .map(|s| (s.index, s.start, s.end))
        .collect()
}

/// Checks every structural property of a plan's slices and returns their total length.
fn check_plan_structure(size: u64, range: ByteRange) -> u64 {
    let plan = ChunkPlan::new(size, range).unwrap();
    let mut expected_offset = range.start;
    let mut total = 0;
    let mut count = 0;
    for slice in plan.slices() {
        assert!(slice.start < slice.end, "empty slice {slice:?}");
        assert!(
            slice.end <= plan.chunk_len(slice.index),
            "overruns chunk {slice:?}"
        );
        assert_eq!(
            slice.file_offset(),
            expected_offset,
            "gap or overlap at {slice:?}"
        );
        expected_offset += slice.len();
        total += slice.len();
        count += 1;
    }
    assert_eq!(expected_offset, range.end + 1);
    assert_eq!(count, plan.chunk_count());
    assert_eq!(plan.slices().count() as u64, plan.chunk_count());
    total
}

/// Checks that the parts tile the chunk exactly up to EOF and each one is legal.
fn check_parts_tile(size: u64, index: u64, parts: &[PartRequest]) {
    let len = chunk_len(size, index).unwrap();
    let mut pos = index * CHUNK_SIZE;
    for part in parts {
        assert!(part.is_legal(), "illegal part {part:?}");
        assert_eq!(part.offset, pos, "parts do not tile: {parts:?}");
        assert!(part.offset < size, "part wholly past EOF: {part:?}");
        pos += u64::from(part.limit);
    }
    let chunk_end = index * CHUNK_SIZE + len;
    assert!(pos >= chunk_end, "parts stop short of EOF: {parts:?}");
    assert!(
        pos <= index * CHUNK_SIZE + CHUNK_SIZE,
        "parts leave the chunk"
    );
}

#[test]
fn chunk_count_at_boundaries() {
    assert_eq!(chunk_count(0), 0);
    assert_eq!(chunk_count(1), 1);
    assert_eq!(chunk_count(MIB - 1), 1);
    assert_eq!(chunk_count(MIB), 1);
    assert_eq!(chunk_count(MIB + 1), 2);
    assert_eq!(chunk_count(GIB4), 4096);
    assert_eq!(chunk_count(GIB4 + 1), 4097);
    assert_eq!(chunk_count(u64::MAX), 1 << 44);
}

#[test]
fn chunk_len_at_boundaries() {
    assert_eq!(chunk_len(0, 0), None);
    assert_eq!(chunk_len(1, 0), Some(1));
    assert_eq!(chunk_len(1, 1), None);
    assert_eq!(chunk_len(MIB - 1, 0), Some(MIB - 1));
    assert_eq!(chunk_len(MIB, 0), Some(MIB));
    assert_eq!(chunk_len(MIB, 1), None);
    assert_eq!(chunk_len(MIB + 1, 0), Some(MIB));
    assert_eq!(chunk_len(MIB + 1, 1), Some(1));
    assert_eq!(chunk_len(GIB4, 4095), Some(MIB));
    assert_eq!(chunk_len(GIB4, 4096), None);
    assert_eq!(chunk_len(u64::MAX, (1 << 44) - 1), Some(MIB - 1));
    assert_eq!(chunk_len(u64::MAX, u64::MAX), None);
}

#[test]
fn byte_range_validation_and_len() {
    assert_eq!(
        ByteRange::new(5, 2),
        Err(ChunkError::InvertedRange { start: 5, end: 2 })
    );
    assert_eq!(ByteRange::new(3, 3).unwrap().len(), 1);
    assert_eq!(ByteRange::new(0, 499).unwrap().len(), 500);
    assert_eq!(ByteRange::new(0, u64::MAX).unwrap().len(), u64::MAX);
    assert_eq!(ByteRange::whole(0), None);
    assert_eq!(ByteRange::whole(10), Some(ByteRange { start: 0, end: 9 }));
    assert!(ByteRange { start: 2, end: 4 }.contains(4));
    assert!(!ByteRange { start: 2, end: 4 }.contains(5));
}

#[test]
fn plan_rejects_bad_ranges() {
    let inverted = ByteRange { start: 9, end: 1 };
    assert_eq!(
        ChunkPlan::new(100, inverted),
        Err(ChunkError::InvertedRange { start: 9, end: 1 })
    );
    let past = ByteRange { start: 0, end: 100 };
    assert_eq!(
        ChunkPlan::new(100, past),
        Err(ChunkError::RangeBeyondEof {
            start: 0,
            end: 100,
            file_size: 100
        })
    );
    // An empty file has no satisfiable range at all.
    let first = ByteRange { start: 0, end: 0 };
    assert!(matches!(
        ChunkPlan::new(0, first),
        Err(ChunkError::RangeBeyondEof { .. })
    ));
}

#[test]
fn plan_of_tiny_files() {
    assert_eq!(slices(1, 0, 0), vec![(0, 0, 1)]);
    assert_eq!(slices(MIB - 1, 0, MIB - 2), vec![(0, 0, MIB - 1)]);
    assert_eq!(slices(MIB, 0, MIB - 1), vec![(0, 0, MIB)]);
    assert_eq!(slices(MIB + 1, 0, MIB), vec![(0, 0, MIB), (1, 0, 1)]);
    assert_eq!(slices(MIB + 1, MIB, MIB), vec![(1, 0, 1)]);
}

#[test]
fn plan_ranges_ending_on_boundaries() {
    let size = 3 * MIB + 17;
    // Ends on the last byte of chunk 0, starts on the first of chunk 1, spans exactly one chunk.
    assert_eq!(slices(size, 0, MIB - 1), vec![(0, 0, MIB)]);
    assert_eq!(slices(size, MIB, 2 * MIB - 1), vec![(1, 0, MIB)]);
    assert_eq!(
        slices(size, MIB - 1, MIB),
        vec![(0, MIB - 1, MIB), (1, 0, 1)]
    );
    assert_eq!(
        slices(size, 5, 2 * MIB),
        vec![(0, 5, MIB), (1, 0, MIB), (2, 0, 1)]
    );
    assert_eq!(slices(size, 3 * MIB, size - 1), vec![(3, 0, 17)]);
    let p = plan(size, MIB - 1, 3 * MIB + 3);
    assert_eq!(
        (p.first, p.last, p.head_skip, p.tail_keep),
        (0, 3, MIB - 1, 4)
    );
    assert_eq!(p.chunk_count(), 4);
    assert_eq!(p.chunk_len(3), 17);
    assert_eq!(p.chunk_len(4), 0);
}

#[test]
fn plan_of_4gib_file() {
    let last_byte = GIB4 - 1;
    assert_eq!(
        slices(GIB4, last_byte, last_byte),
        vec![(4095, MIB - 1, MIB)]
    );
    let whole = plan(GIB4, 0, last_byte);
    assert_eq!(whole.chunk_count(), 4096);
    assert_eq!(
        check_plan_structure(GIB4, ByteRange::whole(GIB4).unwrap()),
        GIB4
    );
    // A file just over 4 GiB has a one-byte final chunk.
    assert_eq!(slices(GIB4 + 1, GIB4, GIB4), vec![(4096, 0, 1)]);
}

#[test]
fn plan_near_u64_max_does_not_overflow() {
    let size = u64::MAX;
    let range = ByteRange::new(size - 3 * MIB, size - 1).unwrap();
    assert_eq!(check_plan_structure(size, range), 3 * MIB);
}

#[test]
fn part_rules() {
    assert!(is_legal_get_file(0, 4096));
    assert!(is_legal_get_file(0, 1 << 20));
    assert!(is_legal_get_file(MIB - 4096, 4096));
    assert!(is_legal_get_file(512 * 1024, 512 * 1024));
    assert!(!is_legal_get_file(0, 0));
    assert!(!is_legal_get_file(1, 4096), "unaligned offset");
    assert!(!is_legal_get_file(0, 4095), "unaligned limit");
    assert!(!is_legal_get_file(0, 3 * 4096), "limit not dividing 1 MiB");
    assert!(!is_legal_get_file(0, 2 << 20), "limit above 1 MiB");
    assert!(
        !is_legal_get_file(MIB - 4096, 8192),
        "crosses a 1 MiB boundary"
    );
    assert!(
        !is_legal_get_file(768 * 1024, 512 * 1024),
        "crosses a 1 MiB boundary"
    );
    assert!(
        is_legal_get_file(256 * 1024, 512 * 1024),
        "unaligned to its size but legal"
    );
    assert!(!is_legal_get_file(u64::MAX - 4095, 1 << 20), "overflows");
    assert!(is_legal_get_file(u64::MAX - 4095, 4096));
}

#[test]
fn default_parts_are_two_halves() {
    let size = 3 * MIB;
    let parts = chunk_parts(size, 1, DEFAULT_PART_SIZE).unwrap();
    assert_eq!(
        parts,
        vec![
            PartRequest {
                offset: MIB,
                limit: 512 * KIB
            },
            PartRequest {
                offset: MIB + 512 * 1024,
                limit: 512 * KIB
            },
        ]
    );
}

#[test]
fn parts_of_a_short_last_chunk_stop_at_eof() {
    // 100 bytes into chunk 2: one part, reaching past EOF but not past the chunk.
    let size = 2 * MIB + 100;
    let parts = chunk_parts(size, 2, DEFAULT_PART_SIZE).unwrap();
    assert_eq!(
        parts,
        vec![PartRequest {
            offset: 2 * MIB,
            limit: 512 * KIB
        }]
    );
    // Exactly one half: the second half would be wholly past EOF.
    let size = MIB + 512 * 1024;
    assert_eq!(chunk_parts(size, 1, DEFAULT_PART_SIZE).unwrap().len(), 1);
    assert_eq!(
        chunk_parts(size + 1, 1, DEFAULT_PART_SIZE).unwrap().len(),
        2
    );
    assert_eq!(chunk_parts(1, 0, 4096).unwrap().len(), 1);
    assert_eq!(chunk_parts(MIB, 0, 4096).unwrap().len(), 256);
}

#[test]
fn parts_errors() {
    assert_eq!(
        chunk_parts(0, 0, DEFAULT_PART_SIZE),
        Err(ChunkError::ChunkBeyondEof {
            index: 0,
            file_size: 0
        })
    );
    assert_eq!(
        chunk_parts(MIB, 1, DEFAULT_PART_SIZE),
        Err(ChunkError::ChunkBeyondEof {
            index: 1,
            file_size: MIB
        })
    );
    for bad in [0, 1000, 4095, 12 * 1024, 2 << 20] {
        assert_eq!(
            chunk_parts(MIB, 0, bad),
            Err(ChunkError::IllegalPartSize { part_size: bad })
        );
    }
    assert_eq!(
        chunk_parts_ramp(MIB, 0, 256 * KIB, 128 * KIB),
        Err(ChunkError::RampTooLarge {
            first_part: 256 * KIB,
            part_size: 128 * KIB
        })
    );
}

#[test]
fn ramp_from_the_brief() {
    let parts = chunk_parts_ramp(10 * MIB, 3, 128 * KIB, 512 * KIB).unwrap();
    let got: Vec<(u64, u32)> = parts
        .iter()
        .map(|p| (p.offset - 3 * MIB, p.limit / KIB))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, 128),
            (128 * 1024, 128),
            (256 * 1024, 256),
            (512 * 1024, 512)
        ]
    );
}

#[test]
fn ramp_caps_at_part_size_and_stops_at_eof() {
    let parts = chunk_parts_ramp(10 * MIB, 0, 4 * KIB, 256 * KIB).unwrap();
    let limits: Vec<u32> = parts.iter().map(|p| p.limit / KIB).collect();
    assert_eq!(limits, vec![4, 4, 8, 16, 32, 64, 128, 256, 256, 256]);
    check_parts_tile(10 * MIB, 0, &parts);
    // A 200 KiB file: 128K@0 then 128K@128K reaching past EOF; no 256K part.
    let parts = chunk_parts_ramp(200 * 1024, 0, 128 * KIB, 512 * KIB).unwrap();
    assert_eq!(parts.len(), 2);
    check_parts_tile(200 * 1024, 0, &parts);
}

/// File sizes up to 4 GiB, biased to chunk boundaries where off-by-ones live.
fn file_size() -> impl Strategy<Value = u64> {
    prop_oneof![
        1..=GIB4,
        1..=4 * MIB,
        (1..=4096u64, -2i64..=2).prop_map(|(k, d)| (k * MIB).saturating_add_signed(d).max(1)),
    ]
}

/// An offset within a file of `size`, biased to chunk boundaries.
fn offset_in(size: u64) -> impl Strategy<Value = u64> {
    let chunks = chunk_count(size);
    prop_oneof![
        0..size,
        (0..chunks, -2i64..=2)
            .prop_map(move |(k, d)| { (k * MIB).saturating_add_signed(d).min(size - 1) }),
    ]
}

/// A satisfiable range of at most `max_len` bytes in a file of some size.
fn sized_range(max_len: u64) -> impl Strategy<Value = (u64, ByteRange)> {
    file_size().prop_flat_map(move |size| {
        (Just(size), offset_in(size), 0..max_len).prop_map(|(size, start, extra)| {
            let end = start.saturating_add(extra).min(size - 1);
            (size, ByteRange { start, end })
        })
    })
}

fn part_size() -> impl Strategy<Value = u32> {
    (0u32..=8).prop_map(|shift| 4096 << shift)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Concatenated slices of lazily fetched chunks equal the requested bytes, byte for byte.
    #[test]
    fn slices_reassemble_the_range((size, range) in sized_range(2 * MIB + 8192)) {
        let plan = ChunkPlan::new(size, range).unwrap();
        let mut expected = range.start;
        for slice in plan.slices() {
            let chunk = SyntheticChunk::fetch(size, slice.index);
            for offset in slice.start..slice.end {
                prop_assert_eq!(chunk.get(offset), Some(file_byte(expected)));
                expected += 1;
            }
        }
        prop_assert_eq!(expected, range.end + 1);
    }

    /// For ranges of any length the slices are contiguous, inside their chunks, and sum to the
    /// range (which, with the byte test above, covers long ranges without reading them).
    #[test]
    fn slice_lengths_sum_to_range((size, range) in sized_range(GIB4)) {
        prop_assert_eq!(check_plan_structure(size, range), range.len());
    }

    #[test]
    fn parts_are_legal_and_tile_the_chunk(
        size in file_size(),
        pick in any::<u64>(),
        part in part_size(),
    ) {
        let index = pick % chunk_count(size);
        let parts = chunk_parts(size, index, part).unwrap();
        check_parts_tile(size, index, &parts);
        prop_assert!(parts.iter().all(|p| p.limit == part));
    }

    #[test]
    fn ramp_parts_are_legal_and_tile_the_chunk(
        size in file_size(),
        pick in any::<u64>(),
        (first, part) in (part_size(), part_size()).prop_map(|(a, b)| (a.min(b), a.max(b))),
    ) {
        let index = pick % chunk_count(size);
        let parts = chunk_parts_ramp(size, index, first, part).unwrap();
        check_parts_tile(size, index, &parts);
        prop_assert_eq!(parts[0].limit, first);
        prop_assert!(parts.iter().all(|p| p.limit <= part));
        // Sizes never shrink along the chunk.
        prop_assert!(parts.windows(2).all(|w| w[0].limit <= w[1].limit));
    }

    #[test]
    fn legality_never_panics(offset in any::<u64>(), limit in any::<u32>()) {
        let legal = is_legal_get_file(offset, limit);
        if legal {
            prop_assert!(limit.is_power_of_two() && (4096..=1 << 20).contains(&limit));
            prop_assert_eq!(offset % 4096, 0);
            prop_assert_eq!(offset / MIB, (offset + u64::from(limit) - 1) / MIB);
        }
    }
}

/// The power-of-two formulation equals Telegram's rules as written, for every limit that could
/// possibly pass (and a margin beyond).
#[test]
#[allow(clippy::manual_is_multiple_of)] // spelled exactly as Telegram documents the rules
fn part_size_rule_matches_the_written_rules() {
    for limit in 0..=(2u32 << 20) {
        let written =
            limit != 0 && limit % 4096 == 0 && limit <= 1 << 20 && (1u32 << 20) % limit == 0;
        assert_eq!(is_legal_part_size(limit), written, "limit {limit}");
    }
}
