//! The syntax of a `Range` value (RFC 9110 §14.1–14.2), before any file size is known.
//!
//! Owned by [`super::parse_range`], which resolves the specs against a size. This layer only
//! says "valid list of byte-range specs", "invalid" (ignore the header) or "too many"; it never
//! allocates more than [`super::MAX_RANGES`] specs, whatever the input's length.
//!
//! Why not `http-range-header`: it rejects trailing whitespace while accepting leading, refuses
//! more than two overlapping ranges instead of letting us coalesce them, answers an empty file's
//! suffix range with an empty list, and folds syntax errors and refusals into one error type we
//! would have to pick apart again. What remained to reuse was a tokenizer of forty lines.

use super::MAX_RANGES;
use crate::chunk::ByteRange;

/// One `range-spec`, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RangeSpec {
    /// `first-last`, with `first <= last` (checked while parsing).
    Bounded(u64, u64),
    /// `first-`: to the end of the file.
    From(u64),
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

impl RangeSpec {
    /// The bytes this spec selects in a non-empty file of `file_size`, or `None` if it selects
    /// nothing (starts at or past EOF, or a `-0` suffix).
    pub(super) fn clamp_to(self, file_size: u64) -> Option<ByteRange> {
        let last_byte = file_size.checked_sub(1)?;
        let (start, end) = match self {
            RangeSpec::Bounded(first, last) => (first, last.min(last_byte)),
            RangeSpec::From(first) => (first, last_byte),
            RangeSpec::Suffix(0) => return None,
            RangeSpec::Suffix(n) => (file_size - n.min(file_size), last_byte),
        };
        (start <= last_byte).then_some(ByteRange { start, end })
    }
}

/// Why a `Range` value yields no specs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SyntaxError {
    /// Not a valid `bytes` ranges-specifier: the RFC says to ignore the header.
    Invalid,
    /// Valid, but more than [`MAX_RANGES`] specs.
    TooMany,
}

/// Parses `range-unit "=" range-set`, accepting only the `bytes` unit (case-insensitively).
pub(super) fn range_specs(value: &[u8]) -> Result<Vec<RangeSpec>, SyntaxError> {
    let value = trim_ows(value);
    let eq = value
        .iter()
        .position(|&b| b == b'=')
        .ok_or(SyntaxError::Invalid)?;
    let (unit, set) = (&value[..eq], &value[eq + 1..]);
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return Err(SyntaxError::Invalid);
    }
    let mut specs = Vec::new();
    let mut count = 0usize;
    // `1#range-spec`: elements separated by `OWS "," OWS`; empty elements are allowed
    // (RFC 9110 §5.6.1) but at least one must be present.
    for element in set.split(|&b| b == b',') {
        let element = trim_ows(element);
        if element.is_empty() {
            continue;
        }
        let spec = range_spec(element)?;
        count += 1;
        // Keep validating past the limit so that garbage is ignored rather than refused.
        if count <= MAX_RANGES {
            specs.push(spec);
        }
    }
    match count {
        0 => Err(SyntaxError::Invalid),
        n if n > MAX_RANGES => Err(SyntaxError::TooMany),
        _ => Ok(specs),
    }
}

/// Parses one non-empty `int-range` or `suffix-range`; anything else (including an
/// `other-range`) is invalid for the bytes unit.
fn range_spec(element: &[u8]) -> Result<RangeSpec, SyntaxError> {
    let dash = element
        .iter()
        .position(|&b| b == b'-')
        .ok_or(SyntaxError::Invalid)?;
    let (first, last) = (&element[..dash], &element[dash + 1..]);
    match (first.is_empty(), last.is_empty()) {
        (true, true) => Err(SyntaxError::Invalid),
        (true, false) => Ok(RangeSpec::Suffix(number(last)?)),
        (false, true) => Ok(RangeSpec::From(number(first)?)),
        (false, false) => {
            let (first, last) = (number(first)?, number(last)?);
            // RFC 9110 §14.1.1: last-pos < first-pos makes the range-spec invalid.
            if last < first {
                return Err(SyntaxError::Invalid);
            }
            Ok(RangeSpec::Bounded(first, last))
        }
    }
}

/// `1*DIGIT` as a u64, saturating: a position beyond u64::MAX is past any file's end anyway, and
/// saturating keeps parsing linear without a digit limit.
fn number(digits: &[u8]) -> Result<u64, SyntaxError> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(SyntaxError::Invalid);
    }
    Ok(digits.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// Strips optional whitespace (SP / HTAB) from both ends.
pub(super) fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}
