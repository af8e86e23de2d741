//! Fuzz target: hostile `Range`, `If-Range` and `If-None-Match` values against a file size
//! taken from the input.
//!
//! Beyond "never panics": every range served lies inside the file, multi-range answers are
//! ascending and disjoint and within the range and amplification limits, and an empty file
//! never yields a byte range.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tgcdn_shared::range::{
    MAX_AMPLIFICATION, MAX_RANGES, RangeRequest, if_none_match_matches,
    if_range_allows_partial, parse_http_date, parse_range,
};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (size, header) = data.split_at(8);
    let mut size_bytes = [0u8; 8];
    size_bytes.copy_from_slice(size);
    // Sizes up to 2^48: Telegram files are far smaller, the arithmetic is what matters.
    let file_size = u64::from_le_bytes(size_bytes) >> 16;
    match parse_range(header, file_size) {
        Ok(RangeRequest::Full) | Err(_) => {}
        Ok(RangeRequest::Single(range)) => {
            assert!(file_size > 0);
            assert!(range.start <= range.end && range.end < file_size, "{range:?}");
        }
        Ok(RangeRequest::Multi(ranges)) => {
            assert!(ranges.len() >= 2 && ranges.len() <= MAX_RANGES);
            let mut total = 0u64;
            for pair in ranges.windows(2) {
                assert!(pair[0].end + 1 < pair[1].start, "{pair:?}");
            }
            for range in &ranges {
                assert!(range.start <= range.end && range.end < file_size);
                total += range.end - range.start + 1;
            }
            assert!(total <= MAX_AMPLIFICATION * file_size);
        }
    }
    if let Ok(text) = std::str::from_utf8(header) {
        let _ = if_range_allows_partial(text, "\"etag\"", file_size);
        let _ = if_none_match_matches(text, "\"etag\"");
        let _ = parse_http_date(text);
    }
});
