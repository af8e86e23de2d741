//! The QUIC upstream against a tiny core stand-in on 127.0.0.1 that speaks the wire
//! protocol: Hello with a channel-bound proof, Meta, Chunk with raw payload, Heartbeat.
//!
//! The stand-in is deliberately small and strict (it checks the proof like the core must);
//! it is not the core. Every wait is bounded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{Connection, Endpoint, RecvStream, SendStream};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tgcdn_edge::app::{EdgeOptions, build_state};
use tgcdn_edge::http::serve;
use tgcdn_edge::testing::pattern;
use tgcdn_edge::upstream::quic::{QuicSettings, QuicUpstream};
use tgcdn_edge::upstream::tls::cert_fingerprint;
use tgcdn_edge::upstream::{Upstream, UpstreamError};
use tgcdn_shared::FileRef;
use tgcdn_shared::chunk::{CHUNK_SIZE, chunk_len};
use tgcdn_shared::token::{Keyring, LinkKey, TokenVerifier};
use tgcdn_shared::wire::{
    self, ChunkHeader, EXPORTER_CONTEXT, EXPORTER_LABEL, EXPORTER_LEN, FileMeta, LEN_PREFIX,
    Request, Response, Welcome, WireError,
};

const SECRET: &[u8] = b"cluster-secret-for-the-quic-test";
const FILE: FileRef = FileRef {
    chat_id: -1_009_999,
    msg_id: 5,
};
const SIZE: u64 = 2 * CHUNK_SIZE + 4321;
const STEP: Duration = Duration::from_secs(10);

/// Behaviour switches and counters of the stand-in core.
#[derive(Default)]
struct CoreState {
    hellos: AtomicUsize,
    chunks: AtomicUsize,
    heartbeats: AtomicUsize,
    /// Close the connection instead of answering the next chunk request (a restart).
    drop_next_chunk: AtomicBool,
}

struct TestCore {
    addr: SocketAddr,
    fingerprint: [u8; 32],
    state: Arc<CoreState>,
    _endpoint: Endpoint,
}

fn start_core() -> TestCore {
    let certified = rcgen::generate_simple_self_signed(vec!["tgcdn-core".to_owned()]).unwrap();
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let fingerprint = cert_fingerprint(cert.as_ref());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    tls.alpn_protocols = vec![wire::ALPN.to_vec()];
    let config =
        quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls).unwrap()));
    let endpoint = Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let state = Arc::new(CoreState::default());
    let accepting = endpoint.clone();
    let core_state = state.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accepting.accept().await {
            let state = core_state.clone();
            tokio::spawn(async move {
                if let Ok(connection) = incoming.await {
                    serve_connection(connection, state).await;
                }
            });
        }
    });
    TestCore {
        addr,
        fingerprint,
        state,
        _endpoint: endpoint,
    }
}

async fn serve_connection(connection: Connection, state: Arc<CoreState>) {
    let mut binding = [0u8; EXPORTER_LEN];
    connection
        .export_keying_material(&mut binding, EXPORTER_LABEL, EXPORTER_CONTEXT)
        .unwrap();
    let mut authenticated = false;
    while let Ok((mut send, mut recv)) = connection.accept_bi().await {
        let Some(request) = read_request(&mut recv).await else {
            return;
        };
        let response = match request {
            Request::Hello(hello) => {
                if wire::verify_hello_proof(SECRET, &hello.edge_id, &binding, &hello.auth_proof) {
                    authenticated = true;
                    state.hellos.fetch_add(1, Ordering::SeqCst);
                    Response::Welcome(Welcome {
                        core_version: "test".to_owned(),
                        heartbeat_interval_secs: 1,
                    })
                } else {
                    Response::Error(WireError::Unauthorized)
                }
            }
            _ if !authenticated => Response::Error(WireError::Unauthorized),
            Request::Heartbeat(_) => {
                state.heartbeats.fetch_add(1, Ordering::SeqCst);
                Response::Ack
            }
            Request::Meta(file) if file == FILE => Response::Meta(FileMeta {
                size: SIZE,
                mime: "video/mp4".to_owned(),
                name: "clip.mp4".to_owned(),
                unique_id: "AgADclip".to_owned(),
                date: 1_700_000_000,
                dc: 4,
            }),
            Request::Chunk(chunk) if chunk.file == FILE => {
                if state.drop_next_chunk.swap(false, Ordering::SeqCst) {
                    connection.close(7u32.into(), b"core restarting");
                    return;
                }
                state.chunks.fetch_add(1, Ordering::SeqCst);
                match chunk_len(SIZE, chunk.index) {
                    Some(len) => {
                        let start = chunk.index * CHUNK_SIZE;
                        let payload = pattern(start, start + len);
                        write_response(
                            &mut send,
                            &Response::Chunk(ChunkHeader { len: len as u32 }),
                            &payload,
                        )
                        .await;
                        continue;
                    }
                    None => Response::Error(WireError::bad_request("chunk past the end")),
                }
            }
            _ => Response::Error(WireError::NotFound),
        };
        write_response(&mut send, &response, &[]).await;
    }
}

async fn read_request(recv: &mut RecvStream) -> Option<Request> {
    let mut prefix = [0u8; LEN_PREFIX];
    recv.read_exact(&mut prefix).await.ok()?;
    let total = wire::frame_len(&prefix).ok()??;
    let mut frame = vec![0u8; total];
    frame[..LEN_PREFIX].copy_from_slice(&prefix);
    recv.read_exact(&mut frame[LEN_PREFIX..]).await.ok()?;
    wire::decode_request(&frame)
        .ok()?
        .map(|(request, _)| request)
}

async fn write_response(send: &mut SendStream, response: &Response, payload: &[u8]) {
    let mut frame = Vec::new();
    wire::encode_response(response, &mut frame).unwrap();
    let _ = send.write_all(&frame).await;
    let _ = send.write_all(payload).await;
    let _ = send.finish();
}

fn settings(core: &TestCore) -> QuicSettings {
    let mut settings = QuicSettings::new(core.addr, core.fingerprint, SECRET.to_vec());
    settings.connect_wait = Duration::from_secs(2);
    settings.request_timeout = Duration::from_secs(5);
    settings.max_backoff = Duration::from_millis(200);
    settings
}

async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .expect("step timed out")
}

#[tokio::test]
async fn meta_and_chunks_round_trip() {
    let core = start_core();
    let upstream = QuicUpstream::start(settings(&core)).unwrap();
    assert!(within(upstream.wait_ready(STEP)).await);
    assert!(upstream.ready());
    let meta = within(upstream.meta(FILE)).await.unwrap();
    assert_eq!((meta.size, meta.name.as_str()), (SIZE, "clip.mp4"));
    for index in 0..3 {
        let bytes = within(upstream.chunk(FILE, index)).await.unwrap();
        let start = index * CHUNK_SIZE;
        let len = chunk_len(SIZE, index).unwrap();
        assert!(
            bytes == pattern(start, start + len),
            "chunk {index} differs"
        );
    }
    let missing = FileRef {
        chat_id: 1,
        msg_id: 1,
    };
    assert_eq!(
        within(upstream.meta(missing)).await.unwrap_err(),
        UpstreamError::Core(WireError::NotFound)
    );
    assert_eq!(core.state.hellos.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn many_chunks_in_parallel_share_one_connection() {
    let core = start_core();
    let upstream = Arc::new(QuicUpstream::start(settings(&core)).unwrap());
    let mut tasks = Vec::new();
    for round in 0..8u64 {
        let upstream = upstream.clone();
        tasks.push(tokio::spawn(async move {
            upstream.chunk(FILE, round % 3).await
        }));
    }
    for task in tasks {
        within(task).await.unwrap().unwrap();
    }
    assert_eq!(core.state.hellos.load(Ordering::SeqCst), 1);
    assert_eq!(core.state.chunks.load(Ordering::SeqCst), 8);
}

#[tokio::test]
async fn chunk_cut_by_a_core_restart_is_retried_on_a_new_connection() {
    let core = start_core();
    let upstream = QuicUpstream::start(settings(&core)).unwrap();
    assert!(within(upstream.wait_ready(STEP)).await);
    core.state.drop_next_chunk.store(true, Ordering::SeqCst);
    let bytes = within(upstream.chunk(FILE, 1)).await.unwrap();
    assert!(bytes == pattern(CHUNK_SIZE, 2 * CHUNK_SIZE));
    assert_eq!(
        core.state.hellos.load(Ordering::SeqCst),
        2,
        "reconnected once"
    );
}

#[tokio::test]
async fn wrong_pin_never_connects() {
    let core = start_core();
    let mut settings = settings(&core);
    settings.cert_sha256[0] ^= 1;
    settings.max_attempts = 1;
    let upstream = QuicUpstream::start(settings).unwrap();
    let error = within(upstream.chunk(FILE, 0)).await.unwrap_err();
    assert!(
        matches!(error, UpstreamError::Unreachable { .. }),
        "{error}"
    );
    assert!(!upstream.ready());
    assert_eq!(core.state.hellos.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn wrong_cluster_secret_is_refused() {
    let core = start_core();
    let mut settings = settings(&core);
    settings.cluster_secret = b"not-the-cluster-secret-at-all!!".to_vec();
    settings.max_attempts = 1;
    let upstream = QuicUpstream::start(settings).unwrap();
    assert!(!within(upstream.wait_ready(Duration::from_millis(500))).await);
    assert!(within(upstream.meta(FILE)).await.is_err());
    assert_eq!(core.state.hellos.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn heartbeats_flow() {
    let core = start_core();
    let upstream = QuicUpstream::start(settings(&core)).unwrap();
    assert!(within(upstream.wait_ready(STEP)).await);
    within(async {
        while core.state.heartbeats.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn edge_serves_http_through_the_quic_upstream() {
    let core = start_core();
    let upstream = Arc::new(QuicUpstream::start(settings(&core)).unwrap());
    let keyring = Keyring::new(
        LinkKey::new(1, b"quic-test-link-secret-0123456789").unwrap(),
        Vec::new(),
    )
    .unwrap();
    let token = keyring.sign(FILE, None);
    let state = build_state(
        upstream,
        TokenVerifier::new(keyring),
        EdgeOptions::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, state, std::future::pending()));
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::get(format!("http://{addr}/dl/{token}/clip.mp4"))
        .header("range", "bytes=1000-2100000")
        .body(Empty::new())
        .unwrap();
    let response = within(client.request(request)).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::PARTIAL_CONTENT);
    let body = within(response.into_body().collect())
        .await
        .unwrap()
        .to_bytes();
    assert!(body == pattern(1000, 2_100_001), "body differs");
    assert_eq!(core.state.hellos.load(Ordering::SeqCst), 1);
    assert_eq!(core.state.chunks.load(Ordering::SeqCst), 3);
}
