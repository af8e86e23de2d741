//! What the core's QUIC server costs over bare quinn when serving cached 1 MiB chunks.
//!
//! Both servers run in this process on 127.0.0.1 with the same TLS identity, transport
//! config and UDP socket settings; one client connection keeps `window` chunk streams in
//! flight. The baseline answers every stream with a header frame and one prebuilt 1 MiB
//! `Bytes`; the core answers through Hello, the handler, the resolver (meta from memory)
//! and the fetcher's second-tier cache (warmed first, so Telegram is not measured). Printed
//! as MiB/s and core/baseline. Run with
//! `cargo bench -p tgcdn-core --bench quic_chunks` (a release build; loopback, 2 cores).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quinn::crypto::rustls::QuicClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tgcdn_core::bots::BotPool;
use tgcdn_core::fetch::{BoxFuture, FetchConfig, Fetcher, PartDownloader};
use tgcdn_core::quic::handler::Handler;
use tgcdn_core::quic::{EdgeRegistry, QuicConfig, QuicServer, bind_socket, tls, transport_config};
use tgcdn_core::resolve::{DocumentSource, ResolveConfig, Resolver};
use tgcdn_core::store::Store;
use tgcdn_core::telegram::{DocumentInfo, DocumentLocation, FileKind, TelegramError};
use tgcdn_shared::FileRef;
use tgcdn_shared::chunk::PartRequest;
use tgcdn_shared::wire::{
    self, ALPN, ChunkClass, ChunkHeader, ChunkRequest, EXPORTER_CONTEXT, EXPORTER_LABEL,
    EXPORTER_LEN, Hello, Request, Response,
};

const MIB: u64 = 1 << 20;
const CHUNKS: u64 = 32;
const FILE: FileRef = FileRef {
    chat_id: -1_000_000_000_001,
    msg_id: 1,
};
const SECRET: &[u8] = b"benchmark cluster secret 0123456";

/// Telegram that always has the file, with zero bytes: only the cache is measured.
struct Memory;

impl DocumentSource for Memory {
    fn lookup_document(
        self: Arc<Self>,
        _file: FileRef,
        _deadline: Instant,
    ) -> BoxFuture<'static, Result<DocumentInfo, TelegramError>> {
        Box::pin(async {
            Ok(DocumentInfo {
                location: DocumentLocation {
                    id: 1,
                    access_hash: 1,
                    file_reference: vec![1],
                    dc_id: 2,
                    kind: FileKind::Document,
                },
                size: CHUNKS * MIB,
                mime_type: "video/mp4".into(),
                file_name: Some("bench.mp4".into()),
                date: 0,
            })
        })
    }
}

impl PartDownloader for Memory {
    fn download_part(
        self: Arc<Self>,
        _connection: usize,
        _file: FileRef,
        part: PartRequest,
        _refresh: bool,
        _deadline: Instant,
    ) -> BoxFuture<'static, Result<Bytes, TelegramError>> {
        Box::pin(async move { Ok(Bytes::from(vec![0x5a; part.limit as usize])) })
    }
}

#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

async fn client(addr: SocketAddr, config: &QuicConfig) -> quinn::Connection {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut crypto = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3 is supported by ring")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    crypto.alpn_protocols = vec![ALPN.to_vec()];
    let mut client = quinn::ClientConfig::new(Arc::new(
        QuicClientConfig::try_from(crypto).expect("TLS 1.3 suites"),
    ));
    // The edge side must raise its receive windows too: they are the receiver's.
    client.transport_config(Arc::new(transport_config(config)));
    let (socket, _) = bind_socket(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        config.socket_buffer_bytes,
    )
    .expect("bind client socket");
    let mut endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .expect("client endpoint");
    endpoint.set_default_client_config(client);
    endpoint
        .connect(addr, tls::SERVER_NAME)
        .expect("connect")
        .await
        .expect("handshake")
}

async fn call(connection: &quinn::Connection, request: &Request) -> usize {
    let mut frame = Vec::new();
    wire::encode_request(request, &mut frame).expect("encode");
    let (mut send, mut recv) = connection.open_bi().await.expect("open stream");
    send.write_all(&frame).await.expect("write request");
    send.finish().expect("finish");
    let mut received = 0;
    while let Some(chunk) = recv.read_chunk(usize::MAX, true).await.expect("read") {
        received += chunk.bytes.len();
    }
    received
}

/// MiB/s of `rounds` × `CHUNKS` chunk requests with `window` in flight.
async fn measure(connection: &quinn::Connection, window: usize, rounds: u64) -> f64 {
    let started = Instant::now();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(window));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..rounds * CHUNKS {
        let permit = Arc::clone(&semaphore).acquire_owned().await.expect("open");
        let connection = connection.clone();
        tasks.spawn(async move {
            let request = Request::Chunk(ChunkRequest {
                file: FILE,
                index: i % CHUNKS,
                class: ChunkClass::Demand,
            });
            let got = call(&connection, &request).await;
            drop(permit);
            assert!(got as u64 > MIB, "short chunk: {got}");
        });
    }
    while tasks.join_next().await.is_some() {}
    (rounds * CHUNKS) as f64 / started.elapsed().as_secs_f64()
}

async fn start_core(config: &QuicConfig) -> QuicServer {
    let store = Store::temporary().expect("store");
    let pool = Arc::new(BotPool::new(&[(1, 4)]));
    let resolver = Resolver::new(
        store.clone(),
        Arc::clone(&pool),
        vec![Arc::new(Memory) as Arc<dyn DocumentSource>],
        ResolveConfig::default(),
    );
    let fetcher = Fetcher::new(
        pool,
        vec![Arc::new(Memory) as Arc<dyn PartDownloader>],
        FetchConfig::default(),
    );
    let handler = Handler::new(
        resolver,
        fetcher,
        EdgeRegistry::new(store.clone()),
        SECRET.to_vec(),
        15,
    );
    let identity = tls::load_or_generate(&store, None).await.expect("identity");
    QuicServer::bind(config.clone(), identity, handler).expect("bind core")
}

async fn start_baseline(config: &QuicConfig) -> (quinn::Endpoint, SocketAddr) {
    let store = Store::temporary().expect("store");
    let identity = tls::load_or_generate(&store, None).await.expect("identity");
    let server = tls::quic_server_config(identity, transport_config(config)).expect("tls");
    let (socket, _) = bind_socket(config.listen, config.socket_buffer_bytes).expect("bind");
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .expect("baseline endpoint");
    let addr = endpoint.local_addr().expect("addr");
    let payload = Bytes::from(vec![0x5a; MIB as usize]);
    let accept = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accept.accept().await {
            let payload = payload.clone();
            tokio::spawn(async move {
                let Ok(connection) = incoming.await else {
                    return;
                };
                while let Ok((mut send, mut recv)) = connection.accept_bi().await {
                    let payload = payload.clone();
                    tokio::spawn(async move {
                        let _ = recv.read_to_end(64 * 1024).await;
                        let mut head = Vec::new();
                        let header = Response::Chunk(ChunkHeader { len: MIB as u32 });
                        wire::encode_response(&header, &mut head).expect("encode");
                        let _ = send
                            .write_all_chunks(&mut [Bytes::from(head), payload])
                            .await;
                        let _ = send.finish();
                    });
                }
            });
        }
    });
    (endpoint, addr)
}

async fn hello(connection: &quinn::Connection) {
    let mut binding = [0u8; EXPORTER_LEN];
    connection
        .export_keying_material(&mut binding, EXPORTER_LABEL, EXPORTER_CONTEXT)
        .expect("exporter");
    let hello = Request::Hello(Hello {
        protocol_version: wire::PROTOCOL_VERSION,
        edge_id: "bench".into(),
        region: "local".into(),
        public_base_url: "https://bench.example".into(),
        auth_proof: wire::hello_proof(SECRET, "bench", &binding),
    });
    call(connection, &hello).await;
}

#[tokio::main]
async fn main() {
    let config = QuicConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        idle_timeout: Duration::from_secs(30),
        ..QuicConfig::default()
    };
    let core = start_core(&config).await;
    let (_baseline, baseline_addr) = start_baseline(&config).await;
    let to_core = client(core.local_addr(), &config).await;
    hello(&to_core).await;
    let to_baseline = client(baseline_addr, &config).await;
    measure(&to_core, 8, 1).await; // warms the second-tier cache and both paths
    measure(&to_baseline, 8, 1).await;
    let (rcvbuf, sndbuf) = core.socket_buffers();
    println!(
        "quic_chunks: 1 MiB chunks, one connection, loopback; UDP buffers granted rcv {rcvbuf} snd {sndbuf}"
    );
    println!(
        "{:>8} {:>14} {:>14} {:>8}",
        "window", "bare quinn", "tgcdn core", "ratio"
    );
    for window in [1, 8, 32] {
        let rounds = if window == 1 { 4 } else { 16 };
        let base = measure(&to_baseline, window, rounds).await;
        let ours = measure(&to_core, window, rounds).await;
        println!(
            "{window:>8} {:>9.0} MiB/s {:>9.0} MiB/s {:>8.2}",
            base,
            ours,
            ours / base
        );
    }
}
