//! The OpenSubtitles hash (the `videoHash` of a Stremio stream): the file size plus the
//! wrapping sum of the little-endian 64-bit words of the first and the last 64 KiB.
//!
//! Subtitle addons match on it, so it must be bit-exact; the core computes it once from the
//! first and last chunk of a file and stores it with the file. This module only does the
//! arithmetic on bytes it is handed: reading them is the caller's business.
//!
//! Small files: the reference implementation on the OpenSubtitles wiki (`hashFile` in Python)
//! refuses files under 128 KiB ("SizeError") and otherwise seeks to `max(0, size - 65536)` for
//! the tail. We extend it the way most clients do instead of refusing: the head is the first
//! `min(size, 64 KiB)` bytes, the tail the last `min(size, 64 KiB)` bytes (so the two overlap
//! between 64 and 128 KiB, and are the whole file below 64 KiB), and a final partial word is
//! zero-padded. For every file of 128 KiB or more the result equals the reference.

use thiserror::Error;

/// How many bytes of each end of the file the hash reads.
pub const HASH_BLOCK: usize = 64 * 1024;

/// Head/tail slices that cannot come from one file of the stated size.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HashError {
    #[error("head is {got} bytes; a file of {size} bytes needs {expected}")]
    HeadLength {
        size: u64,
        expected: usize,
        got: usize,
    },
    #[error("tail is {got} bytes; a file of {size} bytes needs {expected}")]
    TailLength {
        size: u64,
        expected: usize,
        got: usize,
    },
    /// Below 64 KiB head and tail are both the whole file, so they must be equal.
    #[error("a file of {size} bytes has one head and tail, but they differ")]
    HeadTailDiffer { size: u64 },
}

/// The OpenSubtitles hash of a file of `size` bytes whose first and last
/// `min(size, 64 KiB)` bytes are `head` and `tail`.
pub fn opensubtitles_hash(size: u64, head: &[u8], tail: &[u8]) -> Result<u64, HashError> {
    let expected = block_len(size);
    if head.len() != expected {
        return Err(HashError::HeadLength {
            size,
            expected,
            got: head.len(),
        });
    }
    if tail.len() != expected {
        return Err(HashError::TailLength {
            size,
            expected,
            got: tail.len(),
        });
    }
    if expected < HASH_BLOCK && head != tail {
        return Err(HashError::HeadTailDiffer { size });
    }
    Ok(size
        .wrapping_add(word_sum(head))
        .wrapping_add(word_sum(tail)))
}

/// The hash as Stremio and OpenSubtitles write it: 16 lowercase hex digits.
pub fn format_hash(hash: u64) -> String {
    format!("{hash:016x}")
}

fn block_len(size: u64) -> usize {
    // `min` with a usize constant, so the conversion cannot truncate.
    usize::try_from(size).map_or(HASH_BLOCK, |size| size.min(HASH_BLOCK))
}

/// Wrapping sum of the little-endian u64 words of `bytes`, the last one zero-padded.
fn word_sum(bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    let mut sum = words
        .by_ref()
        .map(|w| u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]))
        .fold(0u64, u64::wrapping_add);
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        sum = sum.wrapping_add(u64::from_le_bytes(last));
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A whole file, hashed the way the wiki's reference does it (size plus every signed
    /// 64-bit word of the first and last 64 KiB, masked to 64 bits), written independently
    /// of `word_sum`: byte by byte, with i128 arithmetic and an explicit mask.
    fn reference(file: &[u8]) -> u64 {
        let n = file.len().min(HASH_BLOCK);
        let mut acc: i128 = file.len() as i128;
        for part in [&file[..n], &file[file.len() - n..]] {
            let mut padded = part.to_vec();
            padded.resize(part.len().div_ceil(8) * 8, 0);
            for word in padded.chunks(8) {
                let mut v: i64 = 0;
                for (i, b) in word.iter().enumerate() {
                    v |= i64::from(*b) << (8 * i);
                }
                acc = (acc + i128::from(v)) & 0xFFFF_FFFF_FFFF_FFFF;
            }
        }
        acc as u64
    }

    fn ends(file: &[u8]) -> (&[u8], &[u8]) {
        let n = file.len().min(HASH_BLOCK);
        (&file[..n], &file[file.len() - n..])
    }

    #[test]
    fn zero_file_is_its_size() {
        let file = vec![0u8; 3 * HASH_BLOCK];
        let (h, t) = ends(&file);
        assert_eq!(opensubtitles_hash(file.len() as u64, h, t), Ok(196_608));
        assert_eq!(format_hash(196_608), "0000000000030000");
    }

    /// Python, as on the wiki: for a 131072-byte file of 0xff bytes
    /// `hash = 131072; for each of the 2*8192 words: hash = (hash - 1) & 0xFFFFFFFFFFFFFFFF`
    /// gives 131072 - 16384 = 114688 = 0x1c000.
    #[test]
    fn all_ones_file_matches_the_python_reference() {
        let file = vec![0xffu8; 2 * HASH_BLOCK];
        let (h, t) = ends(&file);
        let hash = opensubtitles_hash(file.len() as u64, h, t).unwrap();
        assert_eq!(format_hash(hash), "000000000001c000");
    }

    /// Words that carry across the 64-bit boundary: python3 -c
    /// "s=2**33; h=s; h=(h+0x0102030405060708*2*8192)&(2**64-1); print('%016x'%h)"
    /// for a file of 8 GiB whose ends repeat the bytes 08 07 06 05 04 03 02 01.
    #[test]
    fn repeated_word_wraps_like_python() {
        let block: Vec<u8> = [8u8, 7, 6, 5, 4, 3, 2, 1].repeat(HASH_BLOCK / 8);
        let hash = opensubtitles_hash(1 << 33, &block, &block).unwrap();
        let expected = (1u128 << 33) + 0x0102_0304_0506_0708u128 * 2 * 8192;
        assert_eq!(hash, (expected & 0xFFFF_FFFF_FFFF_FFFF) as u64);
        assert_eq!(format_hash(hash), "80c1014381c20000");
    }

    #[test]
    fn small_file_pads_the_last_word() {
        let file = [1u8, 0, 0, 0, 0, 0, 0, 0, 2];
        assert_eq!(opensubtitles_hash(9, &file, &file), Ok(9 + 2 * (1 + 2)));
        assert_eq!(opensubtitles_hash(0, &[], &[]), Ok(0));
    }

    #[test]
    fn inconsistent_input_is_a_typed_error() {
        let block = vec![0u8; HASH_BLOCK];
        assert_eq!(
            opensubtitles_hash(1 << 20, &block[..100], &block),
            Err(HashError::HeadLength {
                size: 1 << 20,
                expected: HASH_BLOCK,
                got: 100
            })
        );
        assert_eq!(
            opensubtitles_hash(1 << 20, &block, &[]),
            Err(HashError::TailLength {
                size: 1 << 20,
                expected: HASH_BLOCK,
                got: 0
            })
        );
        assert_eq!(
            opensubtitles_hash(3, &[1, 2, 3], &[1, 2, 4]),
            Err(HashError::HeadTailDiffer { size: 3 })
        );
        assert!(matches!(
            opensubtitles_hash(u64::MAX, &block, &block[1..]),
            Err(HashError::TailLength { .. })
        ));
    }

    #[test]
    fn format_is_sixteen_lowercase_digits() {
        assert_eq!(format_hash(0x8e24_5d96_79d3_1e12), "8e245d9679d31e12");
        assert_eq!(format_hash(u64::MAX), "ffffffffffffffff");
        assert_eq!(format_hash(1), "0000000000000001");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any file, small or large, hashes as the straightforward reference does.
        #[test]
        fn matches_reference(seed in any::<u64>(), len in 0usize..(3 * HASH_BLOCK)) {
            let mut x = seed | 1;
            let file: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let (h, t) = ends(&file);
            prop_assert_eq!(opensubtitles_hash(len as u64, h, t), Ok(reference(&file)));
        }

        #[test]
        fn never_panics(size in any::<u64>(), head in proptest::collection::vec(any::<u8>(), 0..64),
                        tail in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = opensubtitles_hash(size, &head, &tail);
        }
    }
}
