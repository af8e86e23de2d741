//! The bare hyper baseline both edge benches compare against: the same chunks served by
//! hyper with nothing in front (no token, no cache lookup, no limits), the Range header
//! read naively. TCP_NODELAY on, as the edge sets it on every connection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream;
use http::{Response, header};
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tgcdn_shared::chunk::CHUNK_SIZE;
use tokio::net::TcpListener;

/// The baseline: the whole file or one range from memory, one frame per chunk.
pub async fn start_bare(chunks: Arc<Vec<Bytes>>, size: u64) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let _ = socket.set_nodelay(true);
            let chunks = chunks.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let chunks = chunks.clone();
                    async move {
                        let (start, end) = request
                            .headers()
                            .get(header::RANGE)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.strip_prefix("bytes="))
                            .and_then(|v| v.split_once('-'))
                            .and_then(|(a, b)| {
                                Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?))
                            })
                            .unwrap_or((0, size - 1));
                        let frames: Vec<Result<Frame<Bytes>, Infallible>> = (start / CHUNK_SIZE
                            ..=end / CHUNK_SIZE)
                            .map(|i| {
                                let chunk = &chunks[i as usize];
                                let from = start.saturating_sub(i * CHUNK_SIZE) as usize;
                                let to = ((end + 1 - i * CHUNK_SIZE) as usize).min(chunk.len());
                                Ok(Frame::data(chunk.slice(from..to)))
                            })
                            .collect();
                        let mut response = Response::new(StreamBody::new(stream::iter(frames)));
                        response
                            .headers_mut()
                            .insert(header::CONTENT_LENGTH, (end - start + 1).into());
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    addr
}
