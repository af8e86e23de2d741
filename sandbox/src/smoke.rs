//! `--smoke`: proves the running sandbox serves what it claims, through the edge's HTTP
//! port like any viewer — a 100-byte Range of the bot's link (206, exact bytes), the whole
//! file (200, length and SHA-256), the bot's watch page (200), and every other seeded file
//! (SHA-256).
//!
//! Called by `main` after [`crate::Sandbox::start`]. The client is a bare hyper HTTP/1.1
//! connection per request to the edge's listen address (no proxy, no redirects); every
//! request runs under a deadline so a stuck edge fails the check instead of hanging it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

use crate::Sandbox;
use crate::error::SandboxError;

/// Longest a single smoke request may take (64 MiB through debug builds included).
const REQUEST_DEADLINE: Duration = Duration::from_secs(120);
const RANGE_LEN: u64 = 100;

/// What one GET returned.
struct Fetched {
    status: StatusCode,
    content_range: Option<String>,
    len: u64,
    sha256: String,
    /// The first bytes, for byte-exact comparisons of small bodies.
    head: Vec<u8>,
}

/// Runs the checks; the summary line on success.
pub async fn check(sandbox: &Sandbox) -> Result<String, SandboxError> {
    let seeded = sandbox.seeded();
    let addr = sandbox.edge_addr();
    let film = seeded.uploaded_file();
    let link = &seeded.bot_links.download;

    let ranged = get(addr, link, Some(format!("bytes=0-{}", RANGE_LEN - 1))).await?;
    let expected_head = sandbox.content(film.doc_id, 0, RANGE_LEN as usize);
    expect(
        ranged.status == StatusCode::PARTIAL_CONTENT,
        format!("Range request answered {}", ranged.status),
    )?;
    expect(
        ranged.content_range.as_deref() == Some(&format!("bytes 0-99/{}", film.size)),
        format!("Content-Range {:?}", ranged.content_range),
    )?;
    expect(
        ranged.head == expected_head,
        "the first 100 bytes differ from the document's".to_owned(),
    )?;

    let started = Instant::now();
    let full = get(addr, link, None).await?;
    let elapsed = started.elapsed();
    expect(
        full.status == StatusCode::OK,
        format!("full download answered {}", full.status),
    )?;
    expect(
        full.len == film.size && full.sha256 == film.sha256,
        format!(
            "full download: {} bytes sha256 {}, expected {} bytes sha256 {}",
            full.len, full.sha256, film.size, film.sha256
        ),
    )?;

    let watch = get(addr, &seeded.bot_links.watch, None).await?;
    expect(
        watch.status == StatusCode::OK && watch.len > 0,
        format!("the watch page answered {}", watch.status),
    )?;

    for other in seeded.files.iter().filter(|f| f.doc_id != film.doc_id) {
        let fetched = get(addr, &other.links.download, None).await?;
        expect(
            fetched.status == StatusCode::OK && fetched.sha256 == other.sha256,
            format!(
                "{}: answered {} with sha256 {}, expected {}",
                other.name, fetched.status, fetched.sha256, other.sha256
            ),
        )?;
    }
    let mib_per_sec = film.size as f64 / (1 << 20) as f64 / elapsed.as_secs_f64().max(1e-6);
    Ok(format!(
        "OK: {} ({} bytes) via the bot's link: Range 0-99 exact, full sha256 {} matches \
         ({:.1} MiB/s cold); {} more file(s) match",
        film.name,
        film.size,
        film.sha256,
        mib_per_sec,
        seeded.files.len() - 1
    ))
}

fn expect(condition: bool, failure: String) -> Result<(), SandboxError> {
    if condition {
        Ok(())
    } else {
        Err(SandboxError::Smoke(failure))
    }
}

/// GETs `url`'s path from the edge at `addr`, hashing the body as it streams.
async fn get(addr: SocketAddr, url: &str, range: Option<String>) -> Result<Fetched, SandboxError> {
    let smoke = |what: &str, error: &dyn std::fmt::Display| {
        SandboxError::Smoke(format!("GET {url}: {what}: {error}"))
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
                if head.len() < RANGE_LEN as usize {
                    let room = RANGE_LEN as usize - head.len();
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
