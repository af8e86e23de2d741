//! A tiny core stand-in on 127.0.0.1 that speaks the wire protocol: Hello with a
//! channel-bound proof, Meta, Chunk with raw payload, MetaChunk (both on one stream),
//! Heartbeat. Shared by the QUIC tests
//! and the QUIC bench (`#[path]`-included).
//!
//! Deliberately small and strict (it checks the Hello proof like the core must); it is not
//! the core. One file of `size` pattern bytes, its chunks built once so serving them costs
//! no more than writing `Bytes`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{Connection, Endpoint, RecvStream, SendStream};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tgcdn_edge::testing::pattern;
use tgcdn_edge::upstream::tls::cert_fingerprint;
use tgcdn_shared::FileRef;
use tgcdn_shared::chunk::{CHUNK_SIZE, chunk_count, chunk_len};
use tgcdn_shared::wire::{
    self, ChunkHeader, EXPORTER_CONTEXT, EXPORTER_LABEL, EXPORTER_LEN, FileMeta, LEN_PREFIX,
    Request, Response, Welcome, WireError,
};

pub const SECRET: &[u8] = b"cluster-secret-for-the-quic-test";
pub const FILE: FileRef = FileRef {
    chat_id: -1_009_999,
    msg_id: 5,
};
/// The download connections the stand-in's Welcome advertises.
pub const DOWNLOAD_CONNECTIONS: u32 = 3;

/// Behaviour switches and counters of the stand-in core.
#[derive(Default)]
pub struct CoreState {
    pub hellos: AtomicUsize,
    /// Chunks served, those sent after their meta included.
    pub chunks: AtomicUsize,
    /// MetaChunk requests answered.
    pub meta_chunks: AtomicUsize,
    pub metas: AtomicUsize,
    pub heartbeats: AtomicUsize,
    /// Close the connection instead of answering the next chunk request (a restart).
    pub drop_next_chunk: AtomicBool,
}

pub struct MiniCore {
    pub addr: SocketAddr,
    pub fingerprint: [u8; 32],
    pub state: Arc<CoreState>,
    _endpoint: Endpoint,
}

struct Served {
    size: u64,
    chunks: Vec<Bytes>,
    state: Arc<CoreState>,
}

/// Starts the stand-in serving [`FILE`] with `size` pattern bytes.
pub fn start(size: u64) -> MiniCore {
    let certified = rcgen::generate_simple_self_signed(vec!["tgcdn-core".to_owned()])
        .expect("self-signed certificate");
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let fingerprint = cert_fingerprint(cert.as_ref());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server certificate");
    tls.alpn_protocols = vec![wire::ALPN.to_vec()];
    let crypto = QuicServerConfig::try_from(tls).expect("QUIC TLS config");
    let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let endpoint =
        Endpoint::server(config, "127.0.0.1:0".parse().expect("addr")).expect("endpoint");
    let addr = endpoint.local_addr().expect("local addr");
    let state = Arc::new(CoreState::default());
    let served = Arc::new(Served {
        size,
        chunks: (0..chunk_count(size))
            .map(|index| {
                let start = index * CHUNK_SIZE;
                let len = chunk_len(size, index).unwrap_or(0);
                Bytes::from(pattern(start, start + len))
            })
            .collect(),
        state: state.clone(),
    });
    let accepting = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accepting.accept().await {
            let served = served.clone();
            tokio::spawn(async move {
                if let Ok(connection) = incoming.await {
                    serve_connection(connection, served).await;
                }
            });
        }
    });
    MiniCore {
        addr,
        fingerprint,
        state,
        _endpoint: endpoint,
    }
}

async fn serve_connection(connection: Connection, served: Arc<Served>) {
    let mut binding = [0u8; EXPORTER_LEN];
    if connection
        .export_keying_material(&mut binding, EXPORTER_LABEL, EXPORTER_CONTEXT)
        .is_err()
    {
        return;
    }
    let state = &served.state;
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
                        core_version: "mini".to_owned(),
                        heartbeat_interval_secs: 1,
                        download_connections: DOWNLOAD_CONNECTIONS,
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
            Request::Meta(file) if file == FILE => {
                state.metas.fetch_add(1, Ordering::SeqCst);
                Response::Meta(meta(&served))
            }
            Request::MetaChunk(chunk) if chunk.file == FILE => {
                state.meta_chunks.fetch_add(1, Ordering::SeqCst);
                state.chunks.fetch_add(1, Ordering::SeqCst);
                let mut frames = Vec::new();
                let _ = wire::encode_response(&Response::Meta(meta(&served)), &mut frames);
                let payload = served.chunks.get(chunk.index as usize).cloned();
                let second = match &payload {
                    Some(bytes) => Response::Chunk(ChunkHeader {
                        len: bytes.len() as u32,
                    }),
                    None => Response::Error(WireError::bad_request("chunk past the end")),
                };
                let _ = wire::encode_response(&second, &mut frames);
                let _ = send.write_all(&frames).await;
                if let Some(bytes) = payload {
                    let _ = send.write_chunk(bytes).await;
                }
                let _ = send.finish();
                continue;
            }
            Request::Chunk(chunk) if chunk.file == FILE => {
                if state.drop_next_chunk.swap(false, Ordering::SeqCst) {
                    connection.close(7u32.into(), b"core restarting");
                    return;
                }
                state.chunks.fetch_add(1, Ordering::SeqCst);
                match served.chunks.get(chunk.index as usize) {
                    Some(bytes) => {
                        let header = Response::Chunk(ChunkHeader {
                            len: bytes.len() as u32,
                        });
                        // One task per stream, so a slow chunk never blocks the next request.
                        let bytes = bytes.clone();
                        tokio::spawn(async move {
                            write_response(&mut send, &header, Some(bytes)).await;
                        });
                        continue;
                    }
                    None => Response::Error(WireError::bad_request("chunk past the end")),
                }
            }
            _ => Response::Error(WireError::NotFound),
        };
        write_response(&mut send, &response, None).await;
    }
}

fn meta(served: &Served) -> FileMeta {
    FileMeta {
        size: served.size,
        mime: "video/mp4".to_owned(),
        name: "clip.mp4".to_owned(),
        unique_id: "AgADclip".to_owned(),
        date: 1_700_000_000,
        dc: 4,
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

async fn write_response(send: &mut SendStream, response: &Response, payload: Option<Bytes>) {
    let mut frame = Vec::new();
    if wire::encode_response(response, &mut frame).is_err() {
        return;
    }
    let _ = send.write_all(&frame).await;
    if let Some(payload) = payload {
        let _ = send.write_chunk(payload).await;
    }
    let _ = send.finish();
}
