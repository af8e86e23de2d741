//! The client both edge benches measure with: one raw HTTP/1.1 GET on a keep-alive
//! connection, the body read by Content-Length and dropped.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one GET (`range` inclusive) and reads the response body by its Content-Length into
/// `buffer` (reused across requests, so the client's own cost stays small next to the
/// servers'); returns the body length. Each read of the head waits `read_timeout` at most.
pub async fn request(
    socket: &mut TcpStream,
    buffer: &mut [u8],
    path: &str,
    range: Option<(u64, u64)>,
    read_timeout: Duration,
) -> u64 {
    let range = range
        .map(|(a, b)| format!("Range: bytes={a}-{b}\r\n"))
        .unwrap_or_default();
    let head = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n{range}\r\n");
    socket.write_all(head.as_bytes()).await.expect("write");
    let mut filled = 0;
    let (header_end, length) = loop {
        let n = tokio::time::timeout(read_timeout, socket.read(&mut buffer[filled..]))
            .await
            .expect("read timed out")
            .expect("read");
        assert!(n > 0, "connection closed in headers");
        filled += n;
        if let Some(end) = buffer[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .expect("content-length");
            break (end + 4, length);
        }
    };
    let mut remaining = length - (filled - header_end) as u64;
    while remaining > 0 {
        let n = socket.read(buffer).await.expect("read") as u64;
        assert!(n > 0, "connection closed in body");
        remaining -= n.min(remaining);
    }
    length
}
