//! The sandbox's HTTP client: one bare hyper HTTP/1.1 connection per request to an edge's
//! listen address (no proxy, no redirects, no pooling), the body hashed as it streams and
//! its first bytes kept, under a deadline so a stuck edge fails a check instead of hanging
//! it.
//!
//! Used by [`crate::smoke`] and [`crate::tour`]; knows nothing of what it fetches.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

use crate::error::SandboxError;

/// Longest a single request may take (debug builds on a loaded machine included).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(120);
/// How many bytes of a body [`get`] keeps.
pub const HEAD_LEN: usize = 100;

/// What one GET returned.
pub struct Fetched {
    pub status: StatusCode,
    pub content_range: Option<String>,
    pub len: u64,
    pub sha256: String,
    /// The first bytes, for byte-exact comparisons of small bodies.
    pub head: Vec<u8>,
}

/// GETs `url`'s path from the edge at `addr`, hashing the body as it streams.
pub async fn get(
    addr: SocketAddr,
    url: &str,
    range: Option<String>,
) -> Result<Fetched, SandboxError> {
    get_keeping(addr, url, range, HEAD_LEN).await
}

/// [`get`], keeping the first `keep` bytes of the body in `head`.
pub async fn get_keeping(
    addr: SocketAddr,
    url: &str,
    range: Option<String>,
    keep: usize,
) -> Result<Fetched, SandboxError> {
    let smoke = |what: &str, error: &dyn std::fmt::Display| {
        SandboxError::Http(format!("GET {url}: {what}: {error}"))
    };
    let (authority, path) = split_url(url).ok_or_else(|| smoke("URL", &"not http://host/path"))?;
    let request = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| smoke("connect", &e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| smoke("handshake", &e))?;
        let driver = tokio::spawn(connection);
        let mut builder = Request::get(path).header(header::HOST, authority);
        if let Some(range) = range {
            builder = builder.header(header::RANGE, range);
        }
        let request = builder
            .body(Empty::<Bytes>::new())
            .map_err(|e| smoke("request", &e))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| smoke("response", &e))?;
        let status = response.status();
        let content_range = response
            .headers()
            .get(header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = response.into_body();
        let (mut hasher, mut len, mut head) = (Sha256::new(), 0u64, Vec::new());
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| smoke("body", &e))?;
            if let Ok(data) = frame.into_data() {
                hasher.update(&data);
                len += data.len() as u64;
                if head.len() < keep {
                    let room = keep - head.len();
                    head.extend_from_slice(&data[..room.min(data.len())]);
                }
            }
        }
        driver.abort();
        Ok(Fetched {
            status,
            content_range,
            len,
            sha256: crate::settings::hex(&hasher.finalize()),
            head,
        })
    };
    tokio::time::timeout(REQUEST_DEADLINE, request)
        .await
        .map_err(|_| {
            smoke(
                "deadline",
                &format!("no complete answer within {REQUEST_DEADLINE:?}"),
            )
        })?
}

/// `http://host:port/path` → (`host:port`, `/path`).
fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("http://")?;
    let slash = rest.find('/')?;
    Some((&rest[..slash], &rest[slash..]))
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split_into_authority_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/dl/t/a.mkv"),
            Some(("127.0.0.1:8080", "/dl/t/a.mkv"))
        );
        assert_eq!(split_url("https://x/y"), None);
        assert_eq!(split_url("http://host-only"), None);
    }
}
