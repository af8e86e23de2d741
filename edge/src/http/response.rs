//! Response bodies and the one place an error becomes an HTTP status.
//!
//! Every handler returns `Result<_, EdgeError>`; [`error_response`] is the only code that
//! chooses a status, headers and text for a failure. Error pages are short plain text and
//! never echo request data (a token or a header could carry markup).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};

use crate::body::{ChunkBody, ChunkFrame};
use tgcdn_shared::range::{RangeError, unsatisfied_content_range};

use crate::upstream::UpstreamError;
use tgcdn_shared::token::TokenError;

/// Why a request was not served as asked.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("link token rejected: {0}")]
    Token(#[from] TokenError),
    #[error("upstream: {0}")]
    Upstream(#[from] UpstreamError),
    #[error("range: {0}")]
    Range(#[from] RangeError),
    #[error("no such route")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("too many concurrent requests from this address")]
    TooManyRequests,
    #[error("upstream not ready")]
    NotReady,
    /// A request this edge refuses as malformed (an addon id or extra); never sent on.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// An edge-wide cap on calls to the core is reached; retry shortly.
    #[error("too many requests to the core in flight")]
    Busy,
}

/// The body types the edge sends. An enum rather than a boxed trait object: no allocation
/// per response, and `size_hint` stays exact so hyper never falls back to chunked.
pub enum EdgeBody {
    Empty,
    Full(Option<Bytes>),
    Chunks(Box<ChunkBody>),
}

impl EdgeBody {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        EdgeBody::Full(Some(bytes.into()))
    }
}

impl Body for EdgeBody {
    type Data = ChunkFrame;
    type Error = UpstreamError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<ChunkFrame>, UpstreamError>>> {
        match self.get_mut() {
            EdgeBody::Empty => Poll::Ready(None),
            EdgeBody::Full(bytes) => {
                Poll::Ready(bytes.take().map(|b| Ok(Frame::data(ChunkFrame::from(b)))))
            }
            EdgeBody::Chunks(body) => Pin::new(body.as_mut()).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            EdgeBody::Empty => true,
            EdgeBody::Full(bytes) => bytes.is_none(),
            EdgeBody::Chunks(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            EdgeBody::Empty => SizeHint::with_exact(0),
            EdgeBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            EdgeBody::Chunks(body) => body.size_hint(),
        }
    }
}

/// The status for an error: the only place this is decided.
pub fn error_status(error: &EdgeError) -> StatusCode {
    let code = match error {
        EdgeError::Token(e) => e.http_status(),
        EdgeError::Upstream(UpstreamError::Core(e)) => e.http_status(),
        EdgeError::Upstream(UpstreamError::Unreachable { .. }) => 502,
        EdgeError::Upstream(UpstreamError::Protocol { .. }) => 502,
        EdgeError::Upstream(UpstreamError::Timeout) => 504,
        EdgeError::Range(RangeError::Unsatisfiable { .. }) => 416,
        // Refusing an abusive multi-range header: the request as written will not be served.
        EdgeError::Range(RangeError::TooMany) => 416,
        EdgeError::NotFound => 404,
        EdgeError::MethodNotAllowed { .. } => 405,
        EdgeError::TooManyRequests => 429,
        EdgeError::NotReady | EdgeError::Busy => 503,
        EdgeError::BadRequest(_) => 400,
    };
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The complete response for an error (status, headers, a short text body). `head`
/// responses carry the same headers and no body.
pub fn error_response(error: &EdgeError, head: bool) -> Response<EdgeBody> {
    let status = error_status(error);
    let text = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let mut response = Response::new(if head {
        EdgeBody::Empty
    } else {
        EdgeBody::full(text.clone())
    });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(text.len()));
    match error {
        EdgeError::Range(RangeError::Unsatisfiable { file_size }) => {
            if let Ok(value) = HeaderValue::from_str(&unsatisfied_content_range(*file_size)) {
                headers.insert(CONTENT_RANGE, value);
            }
        }
        EdgeError::MethodNotAllowed { allow } => {
            headers.insert(ALLOW, HeaderValue::from_static(allow));
        }
        EdgeError::Upstream(UpstreamError::Core(core)) => {
            if let Some(secs) = core.retry_after_secs() {
                headers.insert(RETRY_AFTER, HeaderValue::from(secs));
            }
        }
        EdgeError::TooManyRequests | EdgeError::Busy => {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tgcdn_shared::wire::WireError;

    #[test]
    fn statuses() {
        let cases: Vec<(EdgeError, u16)> = vec![
            (TokenError::BadSignature.into(), 404),
            (TokenError::Expired { expired_at: 1 }.into(), 410),
            (TokenError::UnknownKey { key_id: 3 }.into(), 403),
            (UpstreamError::Core(WireError::NotFound).into(), 404),
            (UpstreamError::Core(WireError::Revoked).into(), 410),
            (
                UpstreamError::Core(WireError::FloodWait { secs: 7 }).into(),
                503,
            ),
            (UpstreamError::Timeout.into(), 504),
            (UpstreamError::unreachable("x").into(), 502),
            (RangeError::Unsatisfiable { file_size: 5 }.into(), 416),
            (EdgeError::TooManyRequests, 429),
            (EdgeError::NotFound, 404),
            (EdgeError::BadRequest("x"), 400),
            (EdgeError::Busy, 503),
            (UpstreamError::Core(WireError::AddonDisabled).into(), 404),
        ];
        for (error, status) in cases {
            assert_eq!(error_status(&error).as_u16(), status, "{error}");
        }
    }

    #[test]
    fn error_headers() {
        let response = error_response(&RangeError::Unsatisfiable { file_size: 99 }.into(), false);
        assert_eq!(response.headers()[CONTENT_RANGE], "bytes */99");
        let response = error_response(
            &UpstreamError::Core(WireError::FloodWait { secs: 7 }).into(),
            true,
        );
        assert_eq!(response.headers()[RETRY_AFTER], "7");
        assert!(response.body().is_end_stream());
        let response = error_response(&EdgeError::MethodNotAllowed { allow: "GET, HEAD" }, false);
        assert_eq!(response.headers()[ALLOW], "GET, HEAD");
    }
}
