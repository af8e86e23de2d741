//! The range phase: request headers + a file's size and validators → a [`ResponsePlan`]
//! (which status, which bytes in which order, the multipart layout, the exact length).
//!
//! Called by the download handler in `http::download` once the token is verified and the
//! metadata is known; the plan's [`Segment`]s are then streamed by [`crate::body`]. Pure:
//! no I/O, no clock, no chunk read, no header *building* — the handler turns the plan into
//! response headers. The order of checks is the point: `If-None-Match` beats
//! `If-Modified-Since` (RFC 9110 §13.2.2); `If-Range` decides whether `Range` counts at all;
//! an unsatisfiable or abusive `Range` is a typed [`RangeError`], never a panic.
//! [`first_chunk_hint`] guesses, before the metadata is known, which chunk a body will
//! start with, so the first range of a new file can fetch it together with the metadata.

use bytes::Bytes;
use http::header::{IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, RANGE};
use http::{HeaderMap, StatusCode};
use tgcdn_shared::chunk::{ByteRange, CHUNK_SIZE, ChunkPlan, ChunkSlice};
use tgcdn_shared::range::{
    RangeError, RangeRequest, content_range_value, if_none_match_matches, if_range_allows_partial,
    parse_http_date, parse_range,
};

/// One piece of the response body, in order.
#[derive(Debug, Clone)]
pub enum Segment {
    /// Bytes known up front (multipart boundaries and part headers).
    Fixed(Bytes),
    /// Bytes `[start, end)` of a chunk.
    Slice(ChunkSlice),
}

impl Segment {
    /// Bytes this segment contributes to the body.
    pub fn len(&self) -> u64 {
        match self {
            Segment::Fixed(bytes) => bytes.len() as u64,
            Segment::Slice(slice) => slice.end.saturating_sub(slice.start),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What identifies this version of the file, for conditional requests.
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    /// The strong entity tag, quotes included.
    pub etag: &'a str,
    /// `Last-Modified` as Unix seconds.
    pub last_modified: u64,
}

/// The shape of the response the plan describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// `304`: the client's copy is current; no body.
    NotModified,
    /// `200` with the whole file.
    Full,
    /// `206` with one range (`Content-Range` names it).
    Single(ByteRange),
    /// `206` `multipart/byteranges` with this boundary.
    Multipart { boundary: String },
}

/// A response decided by the range phase, before any byte is read.
#[derive(Debug, Clone)]
pub struct ResponsePlan {
    pub layout: Layout,
    /// The body in order: chunk slices and, for multipart, the framing between them.
    pub spans: Vec<Segment>,
    /// The exact body length (`Content-Length`); 0 for `304`.
    pub content_length: u64,
}

impl ResponsePlan {
    pub fn status(&self) -> StatusCode {
        match self.layout {
            Layout::NotModified => StatusCode::NOT_MODIFIED,
            Layout::Full => StatusCode::OK,
            Layout::Single(_) | Layout::Multipart { .. } => StatusCode::PARTIAL_CONTENT,
        }
    }
}

/// Plans the response to a `GET`/`HEAD` of a file of `file_size` bytes. `content_type` is
/// only used inside multipart part headers; `boundary` is called only for a multipart plan.
pub fn plan(
    request: &HeaderMap,
    validators: Validators<'_>,
    file_size: u64,
    content_type: &str,
    boundary: impl FnOnce() -> String,
) -> Result<ResponsePlan, RangeError> {
    if is_not_modified(request, validators) {
        return Ok(ResponsePlan {
            layout: Layout::NotModified,
            spans: Vec::new(),
            content_length: 0,
        });
    }
    match effective_range(request, validators, file_size)? {
        RangeRequest::Full => {
            let spans = match ByteRange::whole(file_size) {
                Some(whole) => slices(file_size, whole)?,
                None => Vec::new(),
            };
            Ok(ResponsePlan {
                layout: Layout::Full,
                spans,
                content_length: file_size,
            })
        }
        RangeRequest::Single(range) => Ok(ResponsePlan {
            layout: Layout::Single(range),
            spans: slices(file_size, range)?,
            content_length: range.end - range.start + 1,
        }),
        RangeRequest::Multi(ranges) => {
            let boundary = boundary();
            let (spans, content_length) = multipart(&ranges, file_size, content_type, &boundary)?;
            Ok(ResponsePlan {
                layout: Layout::Multipart { boundary },
                spans,
                content_length,
            })
        }
    }
}

/// The chunk a `GET`'s body most likely starts with, known before the file's size: 0
/// without `Range`, the first range's chunk for `bytes=N-…`. `None` where no guess is
/// worth a chunk: a conditional request (likely a 304) or a suffix range (`bytes=-N`, which
/// needs the size). A wrong guess costs one cached chunk, never a wrong answer: the plan is
/// made afterwards from the real headers.
pub fn first_chunk_hint(request: &HeaderMap) -> Option<u64> {
    if request.contains_key(IF_NONE_MATCH) || request.contains_key(IF_MODIFIED_SINCE) {
        return None;
    }
    let Some(range) = request.get(RANGE) else {
        return Some(0);
    };
    let specs = range.to_str().ok()?.trim().strip_prefix("bytes=")?;
    let first = specs.split(',').next()?.trim();
    let (start, _) = first.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    Some(start / CHUNK_SIZE)
}

/// `If-None-Match` when present, else `If-Modified-Since` (RFC 9110 §13.2.2).
fn is_not_modified(request: &HeaderMap, validators: Validators<'_>) -> bool {
    if let Some(value) = request.get(IF_NONE_MATCH) {
        return value
            .to_str()
            .is_ok_and(|value| if_none_match_matches(value, validators.etag));
    }
    request
        .get(IF_MODIFIED_SINCE)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_http_date)
        .is_some_and(|since| validators.last_modified <= since)
}

/// The `Range` to honour: none without the header or when `If-Range` does not match.
fn effective_range(
    request: &HeaderMap,
    validators: Validators<'_>,
    file_size: u64,
) -> Result<RangeRequest, RangeError> {
    let Some(range) = request.get(RANGE) else {
        return Ok(RangeRequest::Full);
    };
    if let Some(if_range) = request.get(IF_RANGE) {
        let matches = if_range.to_str().is_ok_and(|value| {
            if_range_allows_partial(value, validators.etag, validators.last_modified)
        });
        if !matches {
            return Ok(RangeRequest::Full);
        }
    }
    parse_range(range.as_bytes(), file_size)
}

fn slices(file_size: u64, range: ByteRange) -> Result<Vec<Segment>, RangeError> {
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
) -> Result<(Vec<Segment>, u64), RangeError> {
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

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    const TAG: &str = "\"t\"";
    const DATE: u64 = 1_700_000_000;
    const DATE_TEXT: &str = "Tue, 14 Nov 2023 22:13:20 GMT";

    fn validators() -> Validators<'static> {
        Validators {
            etag: TAG,
            last_modified: DATE,
        }
    }

    fn headers(pairs: &[(http::HeaderName, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_static(value));
        }
        map
    }

    fn plan_for(request: &HeaderMap, size: u64) -> Result<ResponsePlan, RangeError> {
        plan(request, validators(), size, "video/mp4", || "B0".to_owned())
    }

    fn total(spans: &[Segment]) -> u64 {
        spans.iter().map(Segment::len).sum()
    }

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
        assert_eq!(total(&segments), len);
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
        let mut request = headers(&[(IF_MODIFIED_SINCE, DATE_TEXT)]);
        assert!(is_not_modified(&request, validators()));
        let newer = Validators {
            last_modified: DATE + 1,
            ..validators()
        };
        assert!(!is_not_modified(&request, newer));
        // If-None-Match present: If-Modified-Since is ignored.
        request.insert(IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert!(!is_not_modified(&request, validators()));
        request.insert(IF_NONE_MATCH, HeaderValue::from_static("\"x\", \"t\""));
        assert!(is_not_modified(&request, validators()));
    }

    #[test]
    fn no_range_is_the_whole_file_in_chunk_slices() {
        let size = 2 * CHUNK_SIZE + 5;
        let plan = plan_for(&HeaderMap::new(), size).unwrap();
        assert_eq!(plan.layout, Layout::Full);
        assert_eq!(plan.status(), StatusCode::OK);
        assert_eq!(plan.content_length, size);
        assert_eq!(total(&plan.spans), size);
        assert_eq!(plan.spans.len(), 3);
    }

    #[test]
    fn empty_file_has_no_spans() {
        let plan = plan_for(&HeaderMap::new(), 0).unwrap();
        assert_eq!((plan.layout, plan.content_length), (Layout::Full, 0));
        assert!(plan.spans.is_empty());
    }

    #[test]
    fn single_range_across_a_chunk_boundary() {
        let request = headers(&[(RANGE, "bytes=1048570-1048579")]);
        let plan = plan_for(&request, 3 * CHUNK_SIZE).unwrap();
        assert_eq!(
            plan.layout,
            Layout::Single(ByteRange {
                start: CHUNK_SIZE - 6,
                end: CHUNK_SIZE + 3
            })
        );
        assert_eq!(plan.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(plan.content_length, 10);
        assert_eq!(plan.spans.len(), 2);
        assert_eq!(total(&plan.spans), 10);
    }

    #[test]
    fn if_range_mismatch_serves_the_whole_file() {
        let request = headers(&[(RANGE, "bytes=0-9"), (IF_RANGE, "\"stale\"")]);
        assert_eq!(plan_for(&request, 100).unwrap().layout, Layout::Full);
        let request = headers(&[(RANGE, "bytes=0-9"), (IF_RANGE, TAG)]);
        assert!(matches!(
            plan_for(&request, 100).unwrap().layout,
            Layout::Single(_)
        ));
    }

    #[test]
    fn not_modified_wins_over_range() {
        let request = headers(&[(RANGE, "bytes=0-9"), (IF_NONE_MATCH, TAG)]);
        let plan = plan_for(&request, 100).unwrap();
        assert_eq!(plan.status(), StatusCode::NOT_MODIFIED);
        assert!(plan.spans.is_empty());
    }

    #[test]
    fn multi_range_asks_for_a_boundary_once() {
        let request = headers(&[(RANGE, "bytes=0-0,-1")]);
        let mut asked = 0;
        let plan = plan(&request, validators(), 100, "text/plain", || {
            asked += 1;
            "XY".to_owned()
        })
        .unwrap();
        assert_eq!(asked, 1);
        assert_eq!(
            plan.layout,
            Layout::Multipart {
                boundary: "XY".to_owned()
            }
        );
        assert_eq!(total(&plan.spans), plan.content_length);
    }

    #[test]
    fn unsatisfiable_range_is_a_typed_error() {
        let request = headers(&[(RANGE, "bytes=500-")]);
        assert_eq!(
            plan_for(&request, 100).unwrap_err(),
            RangeError::Unsatisfiable { file_size: 100 }
        );
    }

    #[test]
    fn the_first_chunk_is_guessed_only_where_it_is_safe() {
        let hint = |pairs: &[(http::header::HeaderName, &str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(name.clone(), value.parse().unwrap());
            }
            first_chunk_hint(&headers)
        };
        assert_eq!(hint(&[]), Some(0));
        assert_eq!(hint(&[(RANGE, "bytes=0-")]), Some(0));
        assert_eq!(hint(&[(RANGE, "bytes=1048575-1048576")]), Some(0));
        assert_eq!(hint(&[(RANGE, "bytes= 3145728-, 0-1")]), Some(3));
        assert_eq!(hint(&[(RANGE, "bytes=-500")]), None);
        assert_eq!(hint(&[(RANGE, "items=0-1")]), None);
        assert_eq!(hint(&[(RANGE, "bytes=x-1")]), None);
        assert_eq!(hint(&[(IF_NONE_MATCH, "\"a\"")]), None);
        assert_eq!(
            hint(&[(IF_MODIFIED_SINCE, "Wed, 21 Oct 2015 07:28:00 GMT")]),
            None
        );
        // If-Range may turn the answer into a whole 200; the range's chunk is still likely.
        assert_eq!(
            hint(&[(RANGE, "bytes=2097152-"), (IF_RANGE, "\"a\"")]),
            Some(2)
        );
    }
}
