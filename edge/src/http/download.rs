//! `GET`/`HEAD /dl/{token}/{name}`: token → metadata → [`crate::range`] plan → a prepared
//! response (status, headers and the body's segments).
//!
//! Called by [`super::handle`], which turns a [`Prepared`] into a hyper response and
//! attaches logging. The token is verified locally before anything touches the upstream, so
//! a forged or expired link costs no core round trip. Which status and which bytes is the
//! range phase's decision; this file only turns that plan into headers. Nothing here reads
//! a chunk; for a file whose metadata is not cached yet, it asks for the metadata together
//! with the chunk the body will most likely start with ([`range::first_chunk_hint`]), which
//! then waits in the cache.

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, LAST_MODIFIED,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tgcdn_shared::FileRef;
use tgcdn_shared::range::content_range_value;

use super::AppState;
use super::headers::{cache_control, header_value};
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
    client: Option<IpAddr>,
    now_unix: u64,
) -> Result<Prepared, EdgeError> {
    let link = state.verifier.verify(token, now_unix)?;
    let file = link.file();
    // A GET of a file not known yet brings its first chunk along with the metadata.
    let known = match range::first_chunk_hint(request_headers).filter(|_| !flags.head) {
        Some(index) => {
            state
                .metas
                .meta_with_chunk(file, index, &state.chunks, client)
                .await?
        }
        None => state.metas.meta(file).await?,
    };
    let meta = &known.meta;
    let validators = Validators {
        etag: &known.etag,
        last_modified: meta.date,
    };
    let plan = range::plan(
        request_headers,
        validators,
        meta.size,
        &known.content_type,
        || state.next_boundary(),
    )?;

    let mut headers = HeaderMap::with_capacity(10);
    put(&mut headers, ETAG, known.etag_value.as_ref());
    put(&mut headers, LAST_MODIFIED, known.last_modified.as_ref());
    match link.expires_at() {
        // The common case: one value for every link without an expiry.
        None => put(&mut headers, CACHE_CONTROL, state.cache_control.as_ref()),
        Some(_) => {
            let value = cache_control(
                state.settings.cache_max_age_secs,
                link.expires_at(),
                now_unix,
            );
            put(
                &mut headers,
                CACHE_CONTROL,
                header_value("cache-control", value).as_ref(),
            );
        }
    }
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let status = plan.status();
    if plan.layout == Layout::NotModified {
        return Ok(Prepared {
            status,
            headers,
            body: PreparedBody::Empty,
        });
    }

    put(
        &mut headers,
        CONTENT_DISPOSITION,
        known.disposition(flags.attachment),
    );
    if known.active {
        // Should a browser render it anyway (an old one ignoring the attachment, a
        // download opened from disk keeps no origin), it renders in an opaque origin with
        // scripts, forms and plugins off.
        headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    }
    match &plan.layout {
        Layout::NotModified | Layout::Full => {
            put(
                &mut headers,
                CONTENT_TYPE,
                known.content_type_value.as_ref(),
            );
        }
        Layout::Single(range) => {
            put(
                &mut headers,
                CONTENT_TYPE,
                known.content_type_value.as_ref(),
            );
            let value = content_range_value(*range, meta.size);
            put(
                &mut headers,
                CONTENT_RANGE,
                header_value("content-range", value).as_ref(),
            );
        }
        Layout::Multipart { boundary } => {
            let value = format!("multipart/byteranges; boundary={boundary}");
            put(
                &mut headers,
                CONTENT_TYPE,
                header_value("content-type", value).as_ref(),
            );
        }
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

/// Inserts a header whose value may have been dropped as unrepresentable.
fn put(headers: &mut HeaderMap, name: HeaderName, value: Option<&HeaderValue>) {
    if let Some(value) = value {
        headers.insert(name, value.clone());
    }
}
