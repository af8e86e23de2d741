//! The edge under hostile traffic: content that could attack the edge's origin, connections
//! that never finish a request, connection caps, a public port without `/metrics`, floods
//! of forged tokens and a corpus of malformed requests. The real server on 127.0.0.1:0 in
//! front of the in-memory upstream, driven over raw TCP or a hyper client.
//!
//! Every network wait is under a deadline; tests that hammer the edge print their figures.
//!
//! The harness is here; the tests are split by what they attack: `content` (what a
//! response lets a browser do), `connections` (sockets that never finish, caps, the
//! metrics listener), `corpus` (forged tokens, malformed requests), `flood` (fetch slots
//! under many requests).

mod connections;
mod content;
mod corpus;
mod flood;
#[path = "../support/edge.rs"]
mod harness;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use tgcdn_edge::app::{EdgeOptions, build_state};
use tgcdn_edge::http::{HttpSettings, serve, serve_metrics};
use tgcdn_edge::testing::{MemoryUpstream, test_meta};
use tgcdn_shared::FileRef;
use tgcdn_shared::chunk::CHUNK_SIZE;
use tgcdn_shared::token::{Keyring, LinkKey, TokenVerifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use harness::TestEdge as Edge;

const STEP: Duration = Duration::from_secs(10);
const LINK_SECRET: &[u8] = b"edge-hostile-test-link-secret-01";

const FILM: FileRef = FileRef {
    chat_id: -1_001_234,
    msg_id: 42,
};
const SVG: FileRef = FileRef {
    chat_id: -1_001_234,
    msg_id: 43,
};
const PAGE: FileRef = FileRef {
    chat_id: -1_001_234,
    msg_id: 44,
};
const SCRIPT: FileRef = FileRef {
    chat_id: -1_001_234,
    msg_id: 45,
};
const FILM_SIZE: u64 = 2 * CHUNK_SIZE + 777;

fn keyring() -> Keyring {
    Keyring::new(LinkKey::new(1, LINK_SECRET).unwrap(), Vec::new()).unwrap()
}

fn token(file: FileRef) -> String {
    keyring().sign(file, None)
}

fn upstream() -> MemoryUpstream {
    MemoryUpstream::new()
        .with_file(FILM, test_meta(FILM_SIZE, "film.mp4", "video/mp4"))
        .with_file(SVG, test_meta(300, "cat.svg", "image/svg+xml"))
        // No usable type from Telegram: the name's guess decides.
        .with_file(PAGE, test_meta(300, "index.html", ""))
        .with_file(SCRIPT, test_meta(300, "x.js", "text/javascript"))
}

async fn start_with(upstream: MemoryUpstream, http: HttpSettings) -> Edge {
    let options = EdgeOptions {
        cache_bytes: 64 << 20,
        fetch_cap: 32,
        http,
        ..EdgeOptions::default()
    };
    Edge::start(upstream, keyring(), options, STEP).await
}

async fn start() -> Edge {
    start_with(upstream(), HttpSettings::default()).await
}

/// Reads until the server closes the connection; the time that took, or `None` if it was
/// still open after `limit`.
async fn time_until_closed(socket: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
    .map(|()| started.elapsed())
}

/// The client connection preface of HTTP/2 with prior knowledge.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
const H2_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// Polls `done` until it holds; fails the test after [`STEP`].
async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + STEP;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends raw bytes on a fresh connection and reads the answer until the server closes.
async fn raw_request(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(request).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(STEP, socket.read_to_end(&mut reply))
        .await
        .expect("the server never finished answering")
        .unwrap_or_default();
    reply
}
