//! Document bytes without RAM: a document is either a real file or a deterministic
//! pseudo-random function of (seed, offset).
//!
//! The generator is a counter-mode keystream: the 8-byte word at absolute word index `i`
//! is `mix(seed, i)`, so any slice can be produced in isolation (tests verify downloads
//! with [`fill`]) and a 2 GiB document costs nothing until a part is asked for. Callers:
//! the `upload.getFile` answer writer (straight into its reused output buffer) and tests.
//! Never allocates per call and never holds a file open.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Where a document's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Content {
    /// `size` bytes of [`fill`] with a seed derived from the document id.
    Pseudo { size: u64 },
    /// The bytes of a file on disk (its length at registration time is the size).
    File { path: PathBuf },
}

impl Content {
    /// A pseudo-random document of `size` bytes.
    pub fn pseudo(size: u64) -> Self {
        Content::Pseudo { size }
    }

    /// A document backed by a real file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Content::File { path: path.into() }
    }
}

/// splitmix64's finaliser: a cheap bijective mixer with good avalanche.
#[inline(always)]
fn mix(seed: u64, word_index: u64) -> u64 {
    let mut z = seed ^ word_index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Writes the pseudo-random bytes `[offset, offset + out.len())` of the document with
/// this `seed` into `out`. Deterministic: the same (seed, offset) always gives the same
/// bytes, whatever slice they are read through.
pub fn fill(seed: u64, offset: u64, out: &mut [u8]) {
    let mut pos = 0usize;
    let mut abs = offset;
    // Leading bytes up to the next word boundary.
    let lead = ((8 - (abs % 8)) % 8) as usize;
    if lead > 0 {
        let word = mix(seed, abs / 8).to_le_bytes();
        let start = (abs % 8) as usize;
        let take = lead.min(out.len());
        out[..take].copy_from_slice(&word[start..start + take]);
        pos += take;
        abs += take as u64;
    }
    let mut word_index = abs / 8;
    let mut chunks = out[pos..].chunks_exact_mut(8);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&mix(seed, word_index).to_le_bytes());
        word_index += 1;
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let word = mix(seed, word_index).to_le_bytes();
        let len = tail.len();
        tail.copy_from_slice(&word[..len]);
    }
}

/// The seed [`fill`] uses for a document id.
pub fn seed_for_document(doc_id: i64) -> u64 {
    mix(0x7467_656d_7520_2020, doc_id as u64)
}

/// Copies `[offset, offset + out.len())` of `content` (for document `doc_id`) into `out`.
/// `out` must not extend past the end of the document.
pub fn read_into(content: &Content, doc_id: i64, offset: u64, out: &mut [u8]) -> io::Result<()> {
    match content {
        Content::Pseudo { .. } => {
            fill(seed_for_document(doc_id), offset, out);
            Ok(())
        }
        Content::File { path } => File::open(path)?.read_exact_at(out, offset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_slice_matches_the_whole() {
        let mut whole = vec![0u8; 4096 + 13];
        fill(42, 0, &mut whole);
        for (start, len) in [
            (0, 1),
            (3, 5),
            (7, 9),
            (8, 8),
            (1000, 333),
            (4090, 19),
            (5, 0),
        ] {
            let mut part = vec![0u8; len];
            fill(42, start as u64, &mut part);
            assert_eq!(part, &whole[start..start + len], "slice {start}+{len}");
        }
    }

    #[test]
    fn seeds_and_offsets_differ() {
        let (mut a, mut b, mut c) = ([0u8; 64], [0u8; 64], [0u8; 64]);
        fill(1, 0, &mut a);
        fill(2, 0, &mut b);
        fill(1, 64, &mut c);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(seed_for_document(1), seed_for_document(2));
    }

    #[test]
    fn file_content_reads_the_file() {
        let path = std::env::temp_dir().join(format!("tgemu-content-{}", std::process::id()));
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let mut out = vec![0u8; 100];
        read_into(&Content::file(&path), 1, 4096, &mut out).unwrap();
        assert_eq!(out, &bytes[4096..4196]);
        let mut past = vec![0u8; 100];
        assert!(read_into(&Content::file(&path), 1, 9_950, &mut past).is_err());
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn far_offsets_need_no_memory() {
        let mut tail = [0u8; 16];
        fill(9, (2u64 << 30) - 16, &mut tail);
        assert_ne!(tail, [0u8; 16]);
    }
}
