//! `GET`/`HEAD /dl/{token}/{name}`: token → metadata → conditional headers → range → a
//! prepared response (status, headers and the body's segments).
//!
//! Called by [`super::handle`], which turns a [`Prepared`] into a hyper response and
//! attaches logging. The order of checks is the point: the token is verified locally before
//! anything touches the upstream, so a forged or expired link costs no core round trip;
//! `If-None-Match` beats `If-Modified-Since` (RFC 9110 §13.2.2); `If-Range` decides whether
//! `Range` counts at all. Nothing here reads a chunk.

use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED, RANGE,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tgcdn_shared::FileRef;

use super::AppState;
use super::headers::{cache_control, content_disposition, content_type, etag, is_inline_media};
use super::response::EdgeError;
use crate::body::Segment;
use tgcdn_shared::chunk::{ByteRange, ChunkPlan};
use tgcdn_shared::range::{
    RangeError, RangeRequest, content_range_value, format_http_date, if_none_match_matches,
    if_range_allows_partial, parse_http_date, parse_range,
};

use tgcdn_shared::wire::FileMeta;

/// A response decided but not yet streamed.
#[derive(Debug)]
pub struct Prepared {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: PreparedBody,
}

/// What the response body will be.
#[derive(Debug)]
pub enum PreparedBody {
    Empty,
    Fixed(Bytes),
    /// File bytes (and multipart framing) in order; `len` is the exact total.
    Segments {
        file: FileRef,
        file_size: u64,
        segments: Vec<Segment>,
        len: u64,
    },
}

/// Flags from the route.
#[derive(Debug, Clone, Copy)]
pub struct DownloadFlags {
    pub head: bool,
    pub attachment: bool,
}

pub async fn prepare(
    state: &AppState,
    token: &str,
    flags: DownloadFlags,
    request_headers: &HeaderMap,
    now_unix: u64,
) -> Result<Prepared, EdgeError> {
    let link = state.verifier.verify(token, now_unix)?;
    let meta = state.metas.meta(link.file()).await?;
    let file = link.file();
    let tag = etag(
        &meta.unique_id,
        &format!("{}-{}-{}", file.chat_id, file.msg_id, meta.size),
    );
    let mime = content_type(&meta.mime, &meta.name);

    let mut headers = HeaderMap::new();
    put(&mut headers, ETAG, &tag);
    put(&mut headers, LAST_MODIFIED, &format_http_date(meta.date));
    put(
        &mut headers,
        CACHE_CONTROL,
        &cache_control(
            state.settings.cache_max_age_secs,
            link.expires_at(),
            now_unix,
        ),
    );
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));

    if is_not_modified(request_headers, &tag, meta.date) {
        return Ok(Prepared {
            status: StatusCode::NOT_MODIFIED,
            headers,
            body: PreparedBody::Empty,
        });
    }

    let attachment = flags.attachment || !is_inline_media(&mime);
    put(
        &mut headers,
        CONTENT_DISPOSITION,
        &content_disposition(&meta.name, attachment),
    );
    let range = effective_range(request_headers, &tag, &meta)?;
    let (status, segments, len) = match range {
        RangeRequest::Full => {
            put(&mut headers, CONTENT_TYPE, &mime);
            let segments = match ByteRange::whole(meta.size) {
                Some(whole) => slices(meta.size, whole)?,
                None => Vec::new(),
            };
            (StatusCode::OK, segments, meta.size)
        }
        RangeRequest::Single(range) => {
            put(&mut headers, CONTENT_TYPE, &mime);
            put(
                &mut headers,
                CONTENT_RANGE,
                &content_range_value(range, meta.size),
            );
            let len = range.end - range.start + 1;
            (StatusCode::PARTIAL_CONTENT, slices(meta.size, range)?, len)
        }
        RangeRequest::Multi(ranges) => {
            let boundary = state.next_boundary();
            put(
                &mut headers,
                CONTENT_TYPE,
                &format!("multipart/byteranges; boundary={boundary}"),
            );
            let (segments, len) = multipart(&ranges, meta.size, &mime, &boundary)?;
            (StatusCode::PARTIAL_CONTENT, segments, len)
        }
    };
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    let body = if flags.head || len == 0 {
        PreparedBody::Empty
    } else {
        PreparedBody::Segments {
            file,
            file_size: meta.size,
            segments,
            len,
        }
    };
    Ok(Prepared {
        status,
        headers,
        body,
    })
}

/// `If-None-Match` when present, else `If-Modified-Since` (RFC 9110 §13.2.2).
fn is_not_modified(request: &HeaderMap, tag: &str, last_modified: u64) -> bool {
    if let Some(value) = request.get(IF_NONE_MATCH) {
        return value
            .to_str()
            .is_ok_and(|value| if_none_match_matches(value, tag));
    }
    request
        .get(IF_MODIFIED_SINCE)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_http_date)
        .is_some_and(|since| last_modified <= since)
}

/// The `Range` to honour: none without the header or when `If-Range` does not match.
fn effective_range(
    request: &HeaderMap,
    tag: &str,
    meta: &FileMeta,
) -> Result<RangeRequest, RangeError> {
    let Some(range) = request.get(RANGE) else {
        return Ok(RangeRequest::Full);
    };
    if let Some(if_range) = request.get(IF_RANGE) {
        let matches = if_range
            .to_str()
            .is_ok_and(|value| if_range_allows_partial(value, tag, meta.date));
        if !matches {
            return Ok(RangeRequest::Full);
        }
    }
    parse_range(range.as_bytes(), meta.size)
}

fn slices(file_size: u64, range: ByteRange) -> Result<Vec<Segment>, EdgeError> {
    // parse_range only returns ranges clamped to the file, so this fails only on a bug;
    // answer it as unsatisfiable rather than panic.
    let plan =
        ChunkPlan::new(file_size, range).map_err(|_| RangeError::Unsatisfiable { file_size })?;
    Ok(plan.slices().map(Segment::Slice).collect())
}

/// A `multipart/byteranges` body like nginx writes it: each part is `CRLF--boundary CRLF`,
/// its `Content-Type` and `Content-Range`, a blank line and the bytes; the body ends with
/// `CRLF--boundary--CRLF`. Returns the segments and their exact total length.
pub fn multipart(
    ranges: &[ByteRange],
    file_size: u64,
    content_type: &str,
    boundary: &str,
) -> Result<(Vec<Segment>, u64), EdgeError> {
    let mut segments = Vec::new();
    let mut len = 0u64;
    for &range in ranges {
        let head = format!(
            "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: {}\r\n\r\n",
            content_range_value(range, file_size)
        );
        len += head.len() as u64 + (range.end - range.start + 1);
        segments.push(Segment::Fixed(Bytes::from(head)));
        segments.extend(slices(file_size, range)?);
    }
    let tail = format!("\r\n--{boundary}--\r\n");
    len += tail.len() as u64;
    segments.push(Segment::Fixed(Bytes::from(tail)));
    Ok((segments, len))
}

/// Inserts a header built from text that may, in theory, hold bytes a header cannot; such a
/// value is dropped (and logged) rather than failing the request.
fn put(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    match HeaderValue::from_str(value) {
        Ok(value) => {
            headers.insert(name, value);
        }
        Err(_) => tracing::warn!(header = %name, "dropped an unrepresentable header value"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_length_is_exact() {
        let ranges = [
            ByteRange { start: 0, end: 9 },
            ByteRange {
                start: 100,
                end: 199,
            },
        ];
        let (segments, len) = multipart(&ranges, 1000, "video/mp4", "B0").unwrap();
        let total: u64 = segments
            .iter()
            .map(|s| match s {
                Segment::Fixed(b) => b.len() as u64,
                Segment::Slice(s) => s.end - s.start,
            })
            .sum();
        assert_eq!(total, len);
        let Segment::Fixed(head) = &segments[0] else {
            panic!("first segment is a part header")
        };
        assert_eq!(
            &head[..],
            b"\r\n--B0\r\nContent-Type: video/mp4\r\nContent-Range: bytes 0-9/1000\r\n\r\n"
        );
        let Some(Segment::Fixed(tail)) = segments.last() else {
            panic!("last segment is the closing boundary")
        };
        assert_eq!(&tail[..], b"\r\n--B0--\r\n");
    }

    #[test]
    fn conditional_precedence() {
        let mut request = HeaderMap::new();
        request.insert(
            IF_MODIFIED_SINCE,
            HeaderValue::from_static("Tue, 14 Nov 2023 22:13:20 GMT"),
        );
        assert!(is_not_modified(&request, "\"t\"", 1_700_000_000));
        assert!(!is_not_modified(&request, "\"t\"", 1_700_000_001));
        // If-None-Match present: If-Modified-Since is ignored.
        request.insert(IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert!(!is_not_modified(&request, "\"t\"", 1_700_000_000));
        request.insert(IF_NONE_MATCH, HeaderValue::from_static("\"x\", \"t\""));
        assert!(is_not_modified(&request, "\"t\"", 1_700_000_000));
    }
}
