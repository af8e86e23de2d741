//! The baseline HTTP server: a minimal hyper 1 server streaming the same 1 MiB `Bytes`
//! chunks from memory, one frame per chunk, ranges by `Bytes::slice`.
//!
//! It does the least any HTTP server must do (no token, range plan, cache or metrics), so
//! the edge's figure divided by this one is what the edge's own work costs. Started by the
//! cache-hit and TTFB benches; serves every path as the same file and accepts only
//! `Range: bytes=A-B`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream;
use http::{Response, StatusCode, header};
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::MIB;

type Body = StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// Starts the server on a loopback port; it runs until the runtime stops.
pub async fn start(chunks: Arc<Vec<Bytes>>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let size: u64 = chunks.iter().map(|chunk| chunk.len() as u64).sum();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let _ = socket.set_nodelay(true);
            let chunks = chunks.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let response = respond(&chunks, size, request.headers().get(header::RANGE));
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

fn respond(chunks: &[Bytes], size: u64, range: Option<&http::HeaderValue>) -> Response<Body> {
    let requested = range
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
    let (start, end, status) = match requested {
        Some((start, end)) if start <= end && end < size => {
            (start, end, StatusCode::PARTIAL_CONTENT)
        }
        _ => (0, size.saturating_sub(1), StatusCode::OK),
    };
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = if size == 0 {
        Vec::new()
    } else {
        (start / MIB..=end / MIB)
            .filter_map(|index| {
                let chunk = chunks.get(usize::try_from(index).ok()?)?;
                let from = start.saturating_sub(index * MIB) as usize;
                let to = ((end + 1 - index * MIB) as usize).min(chunk.len());
                Some(Ok(Frame::data(chunk.slice(from..to))))
            })
            .collect()
    };
    let mut response = Response::new(StreamBody::new(stream::iter(frames)));
    *response.status_mut() = status;
    let length = if size == 0 { 0 } else { end - start + 1 };
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, length.into());
    response
}
