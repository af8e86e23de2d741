//! Chunk throughput of `QuicUpstream` against a wire-speaking stand-in core on loopback, as
//! a ratio to a bare quinn client fetching the same chunks from the same server in the same
//! run (same frames, but payload read and dropped piece by piece: no contiguous copy, no
//! retries, no deadlines).
//!
//! `cargo bench -p tgcdn-edge --bench quic`. Both clients run in this process on the same
//! 2-core machine as the server, so absolute numbers are low and noisy; compare ratios.

#[path = "../tests/support/mini_core.rs"]
mod mini_core;

use std::sync::Arc;
use std::time::Instant;

use quinn::crypto::rustls::QuicClientConfig;
use tgcdn_edge::upstream::Upstream;
use tgcdn_edge::upstream::quic::{QuicSettings, QuicUpstream};
use tgcdn_edge::upstream::tls::PinnedCertVerifier;
use tgcdn_shared::chunk::CHUNK_SIZE;
use tgcdn_shared::wire::{self, ChunkRequest, Hello, LEN_PREFIX, Request, Response};

const CHUNKS: u64 = 64;
const ROUNDS: u64 = 4;
const REPEATS: usize = 3;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let core = mini_core::start(CHUNKS * CHUNK_SIZE);
    let raw = raw_connection(&core).await;
    let upstream = Arc::new(
        QuicUpstream::start(QuicSettings::new(
            core.addr.to_string(),
            core.fingerprint,
            mini_core::SECRET.to_vec(),
        ))
        .expect("client"),
    );
    assert!(upstream.wait_ready(std::time::Duration::from_secs(5)).await);
    println!(
        "{CHUNKS} x 1 MiB chunks, {ROUNDS} rounds, best of {REPEATS}, loopback, client and server in one process"
    );
    for parallel in [1u64, 8] {
        // Alternate the two clients and keep each one's best run: the machine is shared,
        // and a single pass mostly measures whoever else was busy at the time.
        let (mut bare, mut edge) = (0f64, 0f64);
        for _ in 0..REPEATS {
            let raw = raw.clone();
            bare = bare.max(
                measure(parallel, move |index| {
                    let raw = raw.clone();
                    async move { raw_chunk(&raw, index).await }
                })
                .await,
            );
            let upstream = upstream.clone();
            edge = edge.max(
                measure(parallel, move |index| {
                    let upstream = upstream.clone();
                    async move {
                        upstream
                            .chunk(mini_core::FILE, index)
                            .await
                            .expect("chunk")
                            .len()
                    }
                })
                .await,
            );
        }
        println!(
            "x{parallel:<2} in flight: bare quinn {bare:7.0} MiB/s  QuicUpstream {edge:7.0} MiB/s  ratio {:.2}",
            edge / bare
        );
    }
}

async fn measure<F, Fut>(parallel: u64, fetch: F) -> f64
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = usize> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..parallel {
        let fetch = fetch.clone();
        tasks.push(tokio::spawn(async move {
            let mut bytes = 0;
            let mut index = worker;
            while index < CHUNKS * ROUNDS {
                bytes += fetch(index % CHUNKS).await;
                index += parallel;
            }
            bytes
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("task");
    }
    total as f64 / (1 << 20) as f64 / started.elapsed().as_secs_f64()
}

async fn raw_connection(core: &mini_core::MiniCore) -> quinn::Connection {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinnedCertVerifier::new(core.fingerprint, provider.clone());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![wire::ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(tls).expect("QUIC TLS");
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("endpoint");
    let connection = endpoint
        .connect_with(
            quinn::ClientConfig::new(Arc::new(crypto)),
            core.addr,
            "tgcdn-core",
        )
        .expect("connect")
        .await
        .expect("handshake");
    let mut binding = [0u8; wire::EXPORTER_LEN];
    connection
        .export_keying_material(&mut binding, wire::EXPORTER_LABEL, wire::EXPORTER_CONTEXT)
        .expect("exporter");
    let hello = Request::Hello(Hello {
        protocol_version: wire::PROTOCOL_VERSION,
        edge_id: "bench".to_owned(),
        region: "bench".to_owned(),
        public_base_url: "http://bench".to_owned(),
        auth_proof: wire::hello_proof(mini_core::SECRET, "bench", &binding),
    });
    let (response, _) = request(&connection, &hello).await;
    assert!(matches!(response, Response::Welcome(_)), "hello refused");
    connection
}

async fn request(
    connection: &quinn::Connection,
    request: &Request,
) -> (Response, quinn::RecvStream) {
    let mut frame = Vec::new();
    wire::encode_request(request, &mut frame).expect("encode");
    let (mut send, mut recv) = connection.open_bi().await.expect("open");
    send.write_all(&frame).await.expect("write");
    send.finish().expect("finish");
    let mut prefix = [0u8; LEN_PREFIX];
    recv.read_exact(&mut prefix).await.expect("prefix");
    let total = wire::frame_len(&prefix).expect("frame").expect("len");
    let mut frame = vec![0u8; total];
    frame[..LEN_PREFIX].copy_from_slice(&prefix);
    recv.read_exact(&mut frame[LEN_PREFIX..])
        .await
        .expect("frame");
    let (response, _) = wire::decode_response(&frame)
        .expect("decode")
        .expect("whole");
    (response, recv)
}

async fn raw_chunk(connection: &quinn::Connection, index: u64) -> usize {
    let chunk = Request::Chunk(ChunkRequest {
        file: mini_core::FILE,
        index,
        class: tgcdn_shared::wire::ChunkClass::Demand,
    });
    let (response, mut recv) = request(connection, &chunk).await;
    let Response::Chunk(header) = response else {
        panic!("unexpected response");
    };
    let mut read = 0;
    while read < header.len as usize {
        match recv.read_chunk(usize::MAX, true).await.expect("read") {
            Some(piece) => read += piece.bytes.len(),
            None => break,
        }
    }
    read
}
