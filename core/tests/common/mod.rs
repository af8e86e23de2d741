//! What an edge does to talk to the core, for the integration tests: pin the certificate,
//! say Hello with a proof bound to the connection, one request per stream.
#![allow(dead_code)] // each test binary uses its own subset

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quinn::crypto::rustls::QuicClientConfig;
use tgcdn_core::app::DownloadPath;
use tgcdn_core::quic::handler::Handler;
use tgcdn_core::quic::{EdgeRegistry, QuicConfig, QuicServer, tls};
use tgcdn_core::store::Store;
use tgcdn_edge::upstream::tls::PinnedCertVerifier;
use tgcdn_shared::wire::{
    self, ALPN, EXPORTER_CONTEXT, EXPORTER_LABEL, EXPORTER_LEN, Hello, Request, Response,
};

pub const MIB: u64 = 1 << 20;

/// The pinned fingerprint as bytes, from the lowercase hex the core prints.
fn fingerprint_bytes(hex: &str) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    assert_eq!(hex.len(), 64, "fingerprint {hex:?} is not 64 hex digits");
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex fingerprint");
    }
    bytes
}

/// The core's QUIC server on 127.0.0.1 over a download path, as `tgcdn-core run` starts it.
pub async fn serve_quic(store: &Store, path: DownloadPath, cluster_secret: &[u8]) -> QuicServer {
    let handler = Handler::new(
        path.resolver,
        path.fetcher,
        EdgeRegistry::new(store.clone()),
        cluster_secret.to_vec(),
        15,
    );
    let identity = tls::load_or_generate(store, None).await.unwrap();
    let config = QuicConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..QuicConfig::default()
    };
    QuicServer::bind(config, identity, handler).unwrap()
}

pub async fn connect(addr: SocketAddr, fingerprint: &str) -> Result<quinn::Connection, String> {
    connect_with_alpn(addr, fingerprint, ALPN).await
}

/// [`connect`] offering `alpn` (an older protocol version, say).
pub async fn connect_with_alpn(
    addr: SocketAddr,
    fingerprint: &str,
    alpn: &[u8],
) -> Result<quinn::Connection, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // The edge's own verifier: these tests connect exactly as an edge does.
    let verifier = PinnedCertVerifier::new(fingerprint_bytes(fingerprint), Arc::clone(&provider));
    let mut crypto = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    crypto.alpn_protocols = vec![alpn.to_vec()];
    let client = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(crypto).unwrap()));
    let mut endpoint = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    endpoint.set_default_client_config(client);
    let connecting = endpoint.connect(addr, tls::SERVER_NAME).unwrap();
    bounded(connecting).await.map_err(|e| e.to_string())
}

/// One request on its own stream; the response and its payload, or why the stream failed.
pub async fn call(
    connection: &quinn::Connection,
    request: &Request,
) -> Result<(Response, Bytes), String> {
    let mut frame = Vec::new();
    wire::encode_request(request, &mut frame).unwrap();
    call_raw(connection, &frame).await
}

pub async fn call_raw(
    connection: &quinn::Connection,
    frame: &[u8],
) -> Result<(Response, Bytes), String> {
    bounded(async {
        let (mut send, mut recv) = connection.open_bi().await.map_err(|e| e.to_string())?;
        send.write_all(frame).await.map_err(|e| e.to_string())?;
        send.finish().map_err(|e| e.to_string())?;
        let all = recv
            .read_to_end(2 * MIB as usize)
            .await
            .map_err(|e| e.to_string())?;
        let (response, consumed) = wire::decode_response(&all)
            .map_err(|e| e.to_string())?
            .ok_or("truncated response")?;
        let payload = Bytes::copy_from_slice(&all[consumed..]);
        let expected = response.payload_len().unwrap_or(0) as usize;
        if payload.len() != expected {
            return Err(format!(
                "payload {} bytes, header said {expected}",
                payload.len()
            ));
        }
        Ok((response, payload))
    })
    .await
}

pub fn hello_for(connection: &quinn::Connection, edge_id: &str, secret: &[u8]) -> Request {
    let mut binding = [0u8; EXPORTER_LEN];
    connection
        .export_keying_material(&mut binding, EXPORTER_LABEL, EXPORTER_CONTEXT)
        .unwrap();
    Request::Hello(Hello {
        protocol_version: wire::PROTOCOL_VERSION,
        edge_id: edge_id.into(),
        region: "test".into(),
        public_base_url: "https://edge.example".into(),
        auth_proof: wire::hello_proof(secret, edge_id, &binding),
    })
}

/// A bound against hangs, never a pass/fail criterion. Generous: each of 64 concurrent 1 MiB
/// calls lasts about as long as all of them, and a debug build moving 64 MiB over QUIC on a
/// busy 2-core machine beside a CPU hog (`.ci/stress`) took over a minute.
pub async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(180), f)
        .await
        .expect("test step took too long")
}
