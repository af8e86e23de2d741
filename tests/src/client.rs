//! A deliberately small blocking HTTP/1.1 client for the end-to-end tests: it sends exactly
//! the request line and headers it is given (no hidden `Range`, `Accept-Encoding` or
//! retries) and hands back the raw status, headers and body bytes, so conformance tests can
//! check what the edge really wrote.
//!
//! Used by the e2e tests, and by benches or the sandbox that want a byte-exact view of a
//! response. Every read and write is under a timeout; a malformed answer is an `io::Error`,
//! never a panic. It speaks `http://` to loopback only (no TLS, no proxies).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Longest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// A response head: status and headers in the order received.
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every header of that name.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// `Content-Length` as a number, if present and numeric.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.trim().parse().ok()
    }
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct Response {
    pub head: Head,
    pub body: Vec<u8>,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.head.status
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }
}

/// `http://host:port/path?query` → (address, request target).
pub fn split_url(url: &str) -> io::Result<(SocketAddr, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| invalid(format!("not an http:// URL: {url}")))?;
    let (authority, target) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| invalid(format!("{authority} resolves to nothing")))?;
    Ok((addr, target.to_owned()))
}

/// Sends one request on a fresh connection (`Connection: close`) and reads the head; the
/// returned reader yields the body (read it to EOF; `Content-Length` says how much to
/// expect). `timeout` bounds every single read and write.
pub fn open(
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> io::Result<(Head, BufReader<TcpStream>)> {
    let (addr, target) = split_url(url)?;
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    (&stream).write_all(request.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let head = read_head(&mut reader)?;
    Ok((head, reader))
}

/// One request, the whole body read (chunked transfer coding undone). A body shorter than
/// `Content-Length` is an error: that is how an aborted response shows.
pub fn request(
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> io::Result<Response> {
    let (head, mut reader) = open(url, method, headers, timeout)?;
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let body = if method.eq_ignore_ascii_case("HEAD") || matches!(head.status, 204 | 304) {
        Vec::new()
    } else if chunked {
        read_chunked(&mut reader)?
    } else {
        let mut body = Vec::new();
        reader.read_to_end(&mut body)?;
        if let Some(expected) = head.content_length()
            && body.len() as u64 != expected
        {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("body of {} bytes, Content-Length {expected}", body.len()),
            ));
        }
        body
    };
    Ok(Response { head, body })
}

/// `GET` with extra headers and a 30 s per-read timeout.
pub fn get(url: &str, headers: &[(&str, &str)]) -> io::Result<Response> {
    request(url, "GET", headers, Duration::from_secs(30))
}

fn read_head(reader: &mut impl BufRead) -> io::Result<Head> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside the response head",
            ));
        }
        total += n;
        if total > MAX_HEAD {
            return Err(invalid("response head too long".to_owned()));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let status_line = lines
        .first()
        .ok_or_else(|| invalid("empty response head".to_owned()))?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let headers = lines[1..]
        .iter()
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect::<io::Result<_>>()?;
    Ok(Head { status, headers })
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size_text = size_line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_line:?}")))?;
        if size == 0 {
            // Trailers, then the final blank line.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
    }
}

/// The parts of a `multipart/byteranges` body: each part's `Content-Range` value and bytes.
pub fn multipart_parts(content_type: &str, body: &[u8]) -> io::Result<Vec<(String, Vec<u8>)>> {
    let boundary = content_type
        .split(';')
        .find_map(|param| param.trim().strip_prefix("boundary="))
        .ok_or_else(|| invalid(format!("no boundary in {content_type:?}")))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    let first = find(rest, delimiter.as_bytes())
        .ok_or_else(|| invalid("no boundary in the body".to_owned()))?;
    rest = &rest[first + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        let head_end = find(rest, b"\r\n\r\n")
            .ok_or_else(|| invalid("part without a blank line".to_owned()))?;
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        let content_range = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("content-range")
                    .then(|| value.trim().to_owned())
            })
            .ok_or_else(|| invalid(format!("part without Content-Range: {head:?}")))?;
        let data = &rest[head_end + 4..];
        let next = find(data, format!("\r\n{delimiter}").as_bytes())
            .ok_or_else(|| invalid("part without a closing boundary".to_owned()))?;
        parts.push((content_range, data[..next].to_vec()));
        rest = &data[next + 2 + delimiter.len()..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_bodies_split_into_parts() {
        let body = b"\r\n--B0\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\nab\r\n--B0\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-7/10\r\n\r\nfgh\r\n--B0--\r\n";
        let parts = multipart_parts("multipart/byteranges; boundary=B0", body).unwrap();
        assert_eq!(
            parts,
            vec![
                ("bytes 0-1/10".to_owned(), b"ab".to_vec()),
                ("bytes 5-7/10".to_owned(), b"fgh".to_vec()),
            ]
        );
    }

    #[test]
    fn heads_parse_and_reject_garbage() {
        let mut ok = &b"HTTP/1.1 206 Partial Content\r\nContent-Length: 3\r\nX: a:b\r\n\r\n"[..];
        let head = read_head(&mut ok).unwrap();
        assert_eq!(head.status, 206);
        assert_eq!(head.content_length(), Some(3));
        assert_eq!(head.header("x"), Some("a:b"));
        let mut bad = &b"SSH-2.0\r\n\r\n"[..];
        assert!(read_head(&mut bad).is_err());
    }

    #[test]
    fn urls_split_into_address_and_target() {
        let (addr, target) = split_url("http://127.0.0.1:8080/dl/t/n.mp4?download").unwrap();
        assert_eq!(addr.port(), 8080);
        assert_eq!(target, "/dl/t/n.mp4?download");
        assert!(split_url("https://127.0.0.1/").is_err());
    }
}
