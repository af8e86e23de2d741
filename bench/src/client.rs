//! A minimal HTTP/1.1 client on raw tokio TCP: one `GET` (optionally with a byte range),
//! body read by `Content-Length` and dropped, with the time to the first body byte.
//!
//! Used by the TTFB and cold-viewer benches, where every server gets the same client so its
//! cost cancels out of the ratios. Every read has a timeout; a response without
//! `Content-Length`, a closed connection or a status other than 200/206 is an error.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any single read may wait.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// What one request took.
#[derive(Debug, Clone, Copy)]
pub struct Fetched {
    /// From sending the request to the first body byte (or the end of headers for an
    /// empty body).
    pub first_byte: Duration,
    /// From sending the request to the last body byte.
    pub total: Duration,
    pub body_bytes: u64,
}

/// `GET path` on a new connection to `addr`; `range` is inclusive.
pub async fn get(addr: SocketAddr, path: &str, range: Option<(u64, u64)>) -> Result<Fetched> {
    let mut socket = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    socket.set_nodelay(true)?;
    get_on(&mut socket, path, range).await
}

/// `GET path` on an open keep-alive connection.
pub async fn get_on(
    socket: &mut TcpStream,
    path: &str,
    range: Option<(u64, u64)>,
) -> Result<Fetched> {
    let range = range
        .map(|(first, last)| format!("Range: bytes={first}-{last}\r\n"))
        .unwrap_or_default();
    let head = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n{range}\r\n");
    let started = Instant::now();
    socket.write_all(head.as_bytes()).await?;
    let mut buffer = vec![0u8; 256 * 1024];
    let mut filled = 0;
    let (header_end, length) = loop {
        if filled == buffer.len() {
            bail!("response headers larger than {} bytes", buffer.len());
        }
        let n = read(socket, &mut buffer[filled..]).await?;
        filled += n;
        if let Some(end) = buffer[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
            break (end + 4, parse_head(&buffer[..end])?);
        }
    };
    let mut first_byte = (filled > header_end || length == 0).then(|| started.elapsed());
    let mut remaining = length.saturating_sub((filled - header_end) as u64);
    while remaining > 0 {
        let n = read(socket, &mut buffer).await? as u64;
        first_byte.get_or_insert_with(|| started.elapsed());
        remaining -= n.min(remaining);
    }
    Ok(Fetched {
        first_byte: first_byte.unwrap_or_default(),
        total: started.elapsed(),
        body_bytes: length,
    })
}

async fn read(socket: &mut TcpStream, into: &mut [u8]) -> Result<usize> {
    let n = tokio::time::timeout(READ_TIMEOUT, socket.read(into))
        .await
        .context("read timed out")??;
    if n == 0 {
        bail!("connection closed before the response ended");
    }
    Ok(n)
}

/// The body length of a 200/206 response head.
fn parse_head(head: &[u8]) -> Result<u64> {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let status = text.split(' ').nth(1).unwrap_or("");
    if status != "200" && status != "206" {
        bail!(
            "unexpected response: {}",
            text.lines().next().unwrap_or_default()
        );
    }
    text.lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<u64>().ok())
        .context("response without Content-Length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_parsing() {
        assert_eq!(
            parse_head(b"HTTP/1.1 206 Partial Content\r\nContent-Length: 42").unwrap(),
            42
        );
        assert!(parse_head(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked").is_err());
    }
}
