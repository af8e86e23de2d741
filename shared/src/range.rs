//! HTTP range requests: `Range` (RFC 9110 §14) and the conditional headers around it, evaluated
//! against a file size as pure functions.
//!
//! The edge calls [`parse_range`] once per request and turns the outcome into a status: 200 for
//! [`RangeRequest::Full`], 206 for `Single`/`Multi` (each range then planned with
//! [`crate::chunk::ChunkPlan`]), 416 with [`unsatisfied_content_range`] for any [`RangeError`].
//! [`if_range_allows_partial`] decides beforehand whether the `Range` header counts at all, and
//! [`if_none_match_matches`] whether a 304 answers the request. This module never sees a socket,
//! a header map or the clock, and never panics on hostile header bytes.
//!
//! # How a `Range` value is judged
//! * **Syntax** (`bytes=a-b`, `a-`, `-n`, comma lists with optional whitespace and empty
//!   elements, unit compared case-insensitively). A value that is not valid syntax, names another
//!   unit, or holds an inverted range (`5-2`) is ignored as RFC 9110 §14.2 directs → `Full`. One
//!   bad member spoils the whole value: a client that writes garbage gets the whole file rather
//!   than a guess.
//! * **Count**: more than [`MAX_RANGES`] members → [`RangeError::TooMany`] (checked only once the
//!   value is known to be valid syntax, so garbage is still ignored rather than refused).
//! * **Satisfiability**: members starting at or after EOF and zero-length suffixes (`-0`) are
//!   dropped; the rest are clamped to the file (`0-999999` and a suffix longer than the file both
//!   mean "to the end" / "all of it"). Nothing left → [`RangeError::Unsatisfiable`].
//! * **Amplification**: several ranges whose clamped lengths add up to more than
//!   [`MAX_AMPLIFICATION`] times the file (`0-,0-,0-` …) are refused with `TooMany` rather than
//!   served; no honest player asks for the same bytes three times.
//! * **Coalescing**: overlapping or adjacent ranges are merged (RFC 9110 §14.2 allows it), and
//!   the result is kept in ascending order. Ascending because the body then walks the file
//!   forward, touching each 1 MiB chunk at most once and in the order the read-ahead and the
//!   cache expect, and because multipart parts carry their own `Content-Range`, so clients never
//!   depend on the order they asked in (§14.6). A list that merges into one range is `Single`.
//! * **Empty file**: no `int-range` is satisfiable, so `bytes=0-` and friends → `Unsatisfiable`.
//!   RFC 9110 §14.1.1 calls a non-zero suffix (`-500`) satisfiable even then, but a 206 cannot
//!   express zero bytes (`Content-Range` has no empty form), so that case is answered `Full`
//!   (200, empty body), which §14.2 allows since a server may always ignore `Range`.

mod conditional;
mod parse;

pub use conditional::{
    content_range_value, format_http_date, if_none_match_matches, if_range_allows_partial,
    parse_http_date, unsatisfied_content_range,
};

use crate::chunk::ByteRange;
use parse::{RangeSpec, SyntaxError};
use thiserror::Error;

/// Most ranges one `Range` header may ask for. Real players send one; multi-range clients
/// (PDF viewers, download managers) a handful.
pub const MAX_RANGES: usize = 16;

/// Several ranges may together ask for at most this many times the file's size.
pub const MAX_AMPLIFICATION: u64 = 2;
// `resolve`'s one-range path relies on it: a range clamped to the file is never refused.
const _: () = assert!(MAX_AMPLIFICATION >= 1);

/// What to serve for a request's `Range` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// The whole file with 200: no header, or one the RFC says to ignore.
    Full,
    /// One range, served as 206 with `Content-Range`.
    Single(ByteRange),
    /// Two or more disjoint, non-adjacent ranges in ascending order, served as 206
    /// `multipart/byteranges`.
    Multi(Vec<ByteRange>),
}

/// A `Range` header that is answered with 416.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RangeError {
    /// No requested range overlaps the file; the 416 carries `Content-Range: bytes */SIZE`.
    #[error("no requested range is satisfiable for a file of {file_size} bytes")]
    Unsatisfiable { file_size: u64 },
    /// More than [`MAX_RANGES`] ranges, or more than [`MAX_AMPLIFICATION`] times the file in
    /// total: refused rather than amplified.
    #[error(
        "range request refused: more than {MAX_RANGES} ranges or over {MAX_AMPLIFICATION}x the file"
    )]
    TooMany,
}

/// Evaluates a `Range` header value against a file of `file_size` bytes; see the module doc for
/// every rule. A request without the header should not call this (it would get `Full` anyway).
pub fn parse_range(header: &[u8], file_size: u64) -> Result<RangeRequest, RangeError> {
    let specs = match parse::range_specs(header) {
        Ok(specs) => specs,
        Err(SyntaxError::Invalid) => return Ok(RangeRequest::Full),
        Err(SyntaxError::TooMany) => return Err(RangeError::TooMany),
    };
    resolve(&specs, file_size)
}

fn resolve(specs: &[RangeSpec], file_size: u64) -> Result<RangeRequest, RangeError> {
    if file_size == 0 {
        let nonzero_suffix = specs
            .iter()
            .any(|spec| matches!(spec, RangeSpec::Suffix(n) if *n > 0));
        return if nonzero_suffix {
            Ok(RangeRequest::Full)
        } else {
            Err(RangeError::Unsatisfiable { file_size })
        };
    }
    if let [spec] = specs {
        // The common request, one range: nothing to collect, sort or merge, and a range
        // clamped to the file cannot exceed MAX_AMPLIFICATION (>= 1) times it.
        return spec
            .clamp_to(file_size)
            .map(RangeRequest::Single)
            .ok_or(RangeError::Unsatisfiable { file_size });
    }
    let mut ranges: Vec<ByteRange> = specs
        .iter()
        .filter_map(|spec| spec.clamp_to(file_size))
        .collect();
    if ranges.is_empty() {
        return Err(RangeError::Unsatisfiable { file_size });
    }
    let requested = ranges
        .iter()
        .fold(0u64, |sum, range| sum.saturating_add(range.len()));
    if requested > file_size.saturating_mul(MAX_AMPLIFICATION) {
        return Err(RangeError::TooMany);
    }
    coalesce(&mut ranges);
    Ok(match ranges.as_slice() {
        [single] => RangeRequest::Single(*single),
        _ => RangeRequest::Multi(ranges),
    })
}

/// Sorts ranges and merges those that overlap or touch, leaving disjoint ranges with gaps.
fn coalesce(ranges: &mut Vec<ByteRange>) {
    ranges.sort_unstable();
    let mut merged: Vec<ByteRange> = Vec::with_capacity(ranges.len());
    for &range in ranges.iter() {
        match merged.last_mut() {
            // `end + 1` saturates: ranges are clamped below u64::MAX, so it never matters.
            Some(last) if range.start <= last.end.saturating_add(1) => {
                last.end = last.end.max(range.end);
            }
            _ => merged.push(range),
        }
    }
    *ranges = merged;
}

#[cfg(test)]
mod tests;
