//! The OpenSubtitles hash (the `videoHash` of a Stremio stream): the file size plus the
//! wrapping sum of the little-endian 64-bit words of the first and the last 64 KiB.
//!
//! Subtitle addons match on it, so it must be bit-exact; the core computes it once from the
//! first and last chunk of a file and stores it with the file.
