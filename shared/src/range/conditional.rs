//! Conditional request headers and the header values of a range response: `If-Range`,
//! `If-None-Match`, HTTP-dates, `Content-Range`.
//!
//! Called by the edge's response phase with the file's ETag (strong, quoted) and Last-Modified
//! (unix seconds, from the Telegram message date). Files behind a link never change, so these are
//! cheap validators, but players (and CDNs in front of the edge) send them on every seek. Never
//! reads the clock; unparsable input means "condition not met", never a panic.

use super::parse::trim_ows;
use crate::chunk::ByteRange;
use std::time::{Duration, UNIX_EPOCH};

/// Latest second an HTTP-date can name (Fri, 31 Dec 9999 23:59:59 GMT); `httpdate` panics
/// beyond it, so later times are clamped here.
const MAX_HTTP_DATE: u64 = 253_402_300_799;
const MAX_HTTP_DATE_TEXT: &str = "Fri, 31 Dec 9999 23:59:59 GMT";

/// Whether a request's `If-Range` lets its `Range` apply (RFC 9110 §13.1.5). `false` means:
/// ignore `Range` and serve the full file with 200.
///
/// * An entity tag must match `etag` strongly: same opaque tag, neither weak (`W/"…"` never
///   matches).
/// * An HTTP-date must equal `last_modified_unix` to the second. It counts as a strong validator
///   because a link's file never changes after its message is posted.
/// * Anything else (garbage, a list, a malformed tag or date) → `false`.
pub fn if_range_allows_partial(if_range: &str, etag: &str, last_modified_unix: u64) -> bool {
    let value = trim_ows(if_range.as_bytes());
    // §13.1.5: a DQUOTE (or the weak prefix) in the first three characters marks an entity tag.
    if value.starts_with(b"\"") || value.starts_with(b"W/") {
        return match entity_tag(value) {
            Some((tag, [])) => !tag.weak && Some(tag) == strong_tag(etag),
            _ => false,
        };
    }
    // The value is ASCII whenever it parses as a date; anything else fails to parse.
    match std::str::from_utf8(value) {
        Ok(text) => parse_http_date(text) == Some(last_modified_unix),
        Err(_) => false,
    }
}

/// Whether `If-None-Match` matches the file, i.e. the answer is 304 (RFC 9110 §13.1.2): `*`, or
/// a comma-separated list of entity tags one of which equals `etag` under weak comparison
/// (`W/` ignored on both sides). A malformed list is ignored (`false`, serve normally).
pub fn if_none_match_matches(header: &str, etag: &str) -> bool {
    let value = trim_ows(header.as_bytes());
    if value == b"*" {
        return true;
    }
    let Some(ours) = entity_tag(etag.as_bytes()).map(|(tag, _)| tag.opaque) else {
        return false;
    };
    let mut rest = value;
    // The whole list must parse before a match counts: a malformed header is ignored.
    let mut matched = false;
    loop {
        rest = skip_separators(rest);
        if rest.is_empty() {
            return matched;
        }
        let Some((tag, after)) = entity_tag(rest) else {
            return false;
        };
        matched |= tag.opaque == ours;
        rest = trim_ows(after);
        if !rest.is_empty() && !rest.starts_with(b",") {
            return false;
        }
    }
}

/// `Content-Range` of a 206 part: `bytes START-END/SIZE`.
///
/// Built on every range response; written digit by digit because `format!` with three
/// integers cost more instructions than the rest of the range plan together.
pub fn content_range_value(range: ByteRange, file_size: u64) -> String {
    let mut value = String::with_capacity(6 + 3 * 20 + 2);
    value.push_str("bytes ");
    push_decimal(&mut value, range.start);
    value.push('-');
    push_decimal(&mut value, range.end);
    value.push('/');
    push_decimal(&mut value, file_size);
    value
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // ASCII digits only, so always UTF-8; one `push_str` instead of a push per character.
    if let Ok(text) = std::str::from_utf8(&digits[at..]) {
        out.push_str(text);
    }
}

/// `Content-Range` of a 416: `bytes */SIZE`.
pub fn unsatisfied_content_range(file_size: u64) -> String {
    format!("bytes */{file_size}")
}

/// Formats unix seconds as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), clamping times past
/// the year 9999 (which HTTP-dates cannot name) to its last second.
pub fn format_http_date(unix: u64) -> String {
    let secs = unix.min(MAX_HTTP_DATE);
    match UNIX_EPOCH.checked_add(Duration::from_secs(secs)) {
        Some(time) => httpdate::fmt_http_date(time),
        // Only on a platform whose SystemTime cannot reach year 9999; say the latest date.
        None => MAX_HTTP_DATE_TEXT.to_owned(),
    }
}

/// Parses any of the three HTTP-date forms into unix seconds; `None` if it is not one.
pub fn parse_http_date(text: &str) -> Option<u64> {
    let time = httpdate::parse_http_date(text.trim_matches([' ', '\t'])).ok()?;
    time.duration_since(UNIX_EPOCH)
        .ok()
        .map(|since| since.as_secs())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EntityTag<'a> {
    weak: bool,
    /// The quoted opaque tag, quotes included.
    opaque: &'a [u8],
}

/// Our own ETag as a strong tag, or `None` if the caller's value is weak or malformed (then
/// nothing can match it strongly).
fn strong_tag(etag: &str) -> Option<EntityTag<'_>> {
    match entity_tag(etag.as_bytes()) {
        Some((tag, [])) if !tag.weak => Some(tag),
        _ => None,
    }
}

/// Parses one `entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE` at the start of `bytes`, returning it
/// and the bytes after it.
fn entity_tag(bytes: &[u8]) -> Option<(EntityTag<'_>, &[u8])> {
    let (weak, quoted) = match bytes.strip_prefix(b"W/") {
        Some(rest) => (true, rest),
        None => (false, bytes),
    };
    let inner = quoted.strip_prefix(b"\"")?;
    let close = inner.iter().position(|&b| b == b'"')?;
    // etagc = %x21 / %x23-7E / obs-text: no controls, no space, no DQUOTE (found above).
    if !inner[..close].iter().all(|&b| b == 0x21 || b >= 0x23) || inner[..close].contains(&0x7f) {
        return None;
    }
    let opaque = &quoted[..close + 2];
    Some((EntityTag { weak, opaque }, &quoted[close + 2..]))
}

/// Skips optional whitespace and empty list elements (RFC 9110 §5.6.1).
fn skip_separators(mut bytes: &[u8]) -> &[u8] {
    while let Some((&first, rest)) = bytes.split_first() {
        if matches!(first, b' ' | b'\t' | b',') {
            bytes = rest;
        } else {
            break;
        }
    }
    bytes
}
