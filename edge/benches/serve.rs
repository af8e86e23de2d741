//! Throughput of the edge serving cached chunks, as a ratio to a bare hyper server sending
//! the same bytes from memory, measured in the same run on loopback.
//!
//! `cargo bench -p tgcdn-edge --bench serve`. The baseline is the least any HTTP server
//! must do (one `Bytes` frame per MiB, no token, range plan, cache or metrics); the ratio
//! shows what the edge's own work costs. Both servers get the same raw-TCP client, so client
//! overhead cancels out. Absolute numbers depend on the machine; compare ratios.
//!
//! Each figure alternates bare and edge runs `TRIALS` times and keeps the best of each, so a
//! burst of load from another process on this shared machine skews neither side alone.
//! `SERVE_BENCH_TRIALS` and `SERVE_BENCH_RANGES` (requests per connection) shrink the run,
//! e.g. for a short `valgrind --tool=callgrind` profile; `SERVE_BENCH_ONLY=ranges` skips the
//! full GETs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tgcdn_edge::app::{EdgeOptions, build_state};
use tgcdn_edge::http::serve;
use tgcdn_edge::testing::{MemoryUpstream, pattern, test_meta};
use tgcdn_shared::FileRef;
use tgcdn_shared::chunk::CHUNK_SIZE;
use tgcdn_shared::token::{Keyring, LinkKey, TokenVerifier};
use tokio::net::{TcpListener, TcpStream};

#[path = "common/bare.rs"]
mod bare;
#[path = "common/client.rs"]
mod client;
use bare::start_bare;
use client::request;

/// How long the client waits for a response head.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

const FILE: FileRef = FileRef {
    chat_id: -1_000_777,
    msg_id: 1,
};
const FILE_MIB: u64 = 64;
const ROUNDS: usize = 6;
const PARALLEL: usize = 8;
const TRIALS: usize = 5;
const RANGES_PER_CONNECTION: u64 = 2_000;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let size = FILE_MIB * CHUNK_SIZE;
    let keyring = Keyring::new(
        LinkKey::new(1, b"bench-link-secret-0123456789abcd").expect("key"),
        Vec::new(),
    )
    .expect("keyring");
    let token = keyring.sign(FILE, None);
    let upstream = Arc::new(
        MemoryUpstream::new().with_file(FILE, test_meta(size, "bench.mkv", "video/x-matroska")),
    );
    let options = EdgeOptions {
        cache_bytes: 2 * size,
        ..EdgeOptions::default()
    };
    let state = build_state(upstream, TokenVerifier::new(keyring), options);
    let edge_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let edge_addr = edge_listener.local_addr().expect("addr");
    tokio::spawn(serve(edge_listener, state, std::future::pending()));

    let chunks: Arc<Vec<Bytes>> = Arc::new(
        (0..FILE_MIB)
            .map(|i| Bytes::from(pattern(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE)))
            .collect(),
    );
    let bare_addr = start_bare(chunks, size).await;

    let edge_path = format!("/dl/{token}/bench.mkv");
    // Warm the edge cache; not measured.
    fetch(edge_addr, &mut vec![0u8; 256 * 1024], &edge_path, None).await;

    let trials = env_or("SERVE_BENCH_TRIALS", TRIALS).max(1);
    let per_connection = env_or("SERVE_BENCH_RANGES", RANGES_PER_CONNECTION).max(1);
    let ranges_only = std::env::var("SERVE_BENCH_ONLY").is_ok_and(|v| v == "ranges");
    println!(
        "file {FILE_MIB} MiB, loopback, best of {trials} alternating trials; full GET ({ROUNDS} rounds) and 64 KiB ranges"
    );
    if !ranges_only {
        for parallel in [1, PARALLEL] {
            let (mut bare, mut edge) = (0f64, 0f64);
            for _ in 0..trials {
                bare = bare.max(measure(bare_addr, "/file", parallel, None).await);
                edge = edge.max(measure(edge_addr, &edge_path, parallel, None).await);
            }
            println!(
                "full GET x{parallel:<2} bare hyper {bare:8.0} MiB/s  edge (cache hits) {edge:8.0} MiB/s  ratio {:.2}",
                edge / bare
            );
        }
    }
    let (mut bare, mut edge) = (0f64, 0f64);
    for _ in 0..trials {
        bare = bare.max(measure_ranges(bare_addr, "/file", size, per_connection).await);
        edge = edge.max(measure_ranges(edge_addr, &edge_path, size, per_connection).await);
    }
    println!(
        "64 KiB ranges x{PARALLEL} bare hyper {bare:8.0} req/s   edge (cache hits) {edge:8.0} req/s   ratio {:.2}",
        edge / bare
    );
}

async fn measure(addr: SocketAddr, path: &str, parallel: usize, range: Option<(u64, u64)>) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..parallel {
        let path = path.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut bytes = 0;
            let mut buffer = vec![0u8; 256 * 1024];
            for _ in 0..ROUNDS {
                bytes += fetch(addr, &mut buffer, &path, range).await;
            }
            bytes
        }));
    }
    let mut total = 0u64;
    for task in tasks {
        total += task.await.expect("task");
    }
    total as f64 / (1 << 20) as f64 / started.elapsed().as_secs_f64()
}

/// Requests per second for 64 KiB ranges at pseudo-random aligned offsets, keep-alive.
async fn measure_ranges(addr: SocketAddr, path: &str, size: u64, per_connection: u64) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..PARALLEL as u64 {
        let path = path.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut socket = TcpStream::connect(addr).await.expect("connect");
            let mut buffer = vec![0u8; 256 * 1024];
            let mut offset = worker * 7_919;
            for _ in 0..per_connection {
                offset = offset
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1)
                    % (size / 65_536);
                let start = offset * 65_536;
                let range = Some((start, start + 65_535));
                request(&mut socket, &mut buffer, &path, range, READ_TIMEOUT).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    (PARALLEL as u64 * per_connection) as f64 / started.elapsed().as_secs_f64()
}

/// One request on a new connection; returns the body length.
async fn fetch(addr: SocketAddr, buffer: &mut [u8], path: &str, range: Option<(u64, u64)>) -> u64 {
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    request(&mut socket, buffer, path, range, READ_TIMEOUT).await
}
