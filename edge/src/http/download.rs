//! `GET`/`HEAD /dl/{token}/{name}`: token → metadata → [`crate::range`] plan → a prepared
//! response (status, headers and the body's segments).
//!
//! Called by [`super::handle`], which turns a [`Prepared`] into a hyper response and
//! attaches logging. The token is verified locally before anything touches the upstream, so
//! a forged or expired link costs no core round trip. Which status and which bytes is the
//! range phase's decision; this file only turns that plan into headers. Nothing here reads
//! a chunk.

use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, LAST_MODIFIED,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tgcdn_shared::FileRef;
use tgcdn_shared::range::{content_range_value, format_http_date};

use super::AppState;
use super::headers::{cache_control, content_disposition, content_type, etag, is_inline_media};
use super::response::EdgeError;
use crate::range::{self, Layout, Segment, Validators};

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
    let validators = Validators {
        etag: &tag,
        last_modified: meta.date,
    };
    let plan = range::plan(request_headers, validators, meta.size, &mime, || {
        state.next_boundary()
    })?;

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
    let status = plan.status();
    if plan.layout == Layout::NotModified {
        return Ok(Prepared {
            status,
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
    match &plan.layout {
        Layout::NotModified | Layout::Full => put(&mut headers, CONTENT_TYPE, &mime),
        Layout::Single(range) => {
            put(&mut headers, CONTENT_TYPE, &mime);
            put(
                &mut headers,
                CONTENT_RANGE,
                &content_range_value(*range, meta.size),
            );
        }
        Layout::Multipart { boundary } => put(
            &mut headers,
            CONTENT_TYPE,
            &format!("multipart/byteranges; boundary={boundary}"),
        ),
    }
    let len = plan.content_length;
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    let body = if flags.head || len == 0 {
        PreparedBody::Empty
    } else {
        PreparedBody::Segments {
            file,
            file_size: meta.size,
            segments: plan.spans,
            len,
        }
    };
    Ok(Prepared {
        status,
        headers,
        body,
    })
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
