//! TLS termination on the edge's listener: the real server on 127.0.0.1:0 with an rcgen
//! certificate written to a temp dir, in front of the in-memory upstream, driven by a rustls
//! client that trusts exactly that certificate. Also the `TGCDN_TLS_*` configuration errors
//! and the SIGHUP reload path (`TlsIdentity::reload`).
//!
//! Every network wait is under a timeout.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tgcdn_edge::app::{EdgeOptions, build_state};
use tgcdn_edge::config::EdgeConfig;
use tgcdn_edge::http::tls::{TlsFiles, TlsIdentity};
use tgcdn_edge::http::{HttpSettings, serve_tls};
use tgcdn_edge::testing::{MemoryUpstream, pattern, test_meta};
use tgcdn_shared::FileRef;
use tgcdn_shared::chunk::CHUNK_SIZE;
use tgcdn_shared::config::Settings;
use tgcdn_shared::token::{Keyring, LinkKey, TokenVerifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const FILM: FileRef = FileRef {
    chat_id: -1_001_234,
    msg_id: 42,
};
const FILM_SIZE: u64 = 2 * CHUNK_SIZE + 333;
const STEP: Duration = Duration::from_secs(10);
const LINK_SECRET: &[u8] = b"edge-tls-test-link-secret-012345";

fn keyring() -> Keyring {
    Keyring::new(LinkKey::new(1, LINK_SECRET).unwrap(), Vec::new()).unwrap()
}

fn film_path() -> String {
    format!("/dl/{}/film.mp4", keyring().sign(FILM, None))
}

/// A self-signed certificate for `localhost`, written as PEM files into `dir`.
struct Identity {
    files: TlsFiles,
    der: CertificateDer<'static>,
}

fn write_identity(dir: &Path, name: &str) -> Identity {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let files = TlsFiles {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&files.cert, generated.cert.pem()).unwrap();
    std::fs::write(&files.key, generated.key_pair.serialize_pem()).unwrap();
    Identity {
        files,
        der: generated.cert.der().clone(),
    }
}

struct Edge {
    addr: SocketAddr,
    identity: Identity,
    tls: Arc<TlsIdentity>,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

async fn start_with(http: HttpSettings) -> Edge {
    let dir = tempfile::tempdir().unwrap();
    let identity = write_identity(dir.path(), "edge");
    let tls = Arc::new(TlsIdentity::load(identity.files.clone()).unwrap());
    let upstream =
        MemoryUpstream::new().with_file(FILM, test_meta(FILM_SIZE, "f.mp4", "video/mp4"));
    let options = EdgeOptions {
        cache_bytes: 64 << 20,
        fetch_cap: 32,
        http,
        ..EdgeOptions::default()
    };
    let state = build_state(Arc::new(upstream), TokenVerifier::new(keyring()), options);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve_tls(listener, state, tls.clone(), async {
        let _ = stopped.await;
    }));
    Edge {
        addr,
        identity,
        tls,
        _dir: dir,
        _stop: stop,
    }
}

async fn start() -> Edge {
    start_with(HttpSettings::default()).await
}

fn client_config(trusted: &[&CertificateDer<'static>], alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in trusted {
        roots.add((*cert).clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

async fn connect_with(addr: SocketAddr, config: Arc<ClientConfig>) -> TlsStream<TcpStream> {
    tokio::time::timeout(STEP, async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        TlsConnector::from(config).connect(name, tcp).await.unwrap()
    })
    .await
    .expect("TLS connect timed out")
}

async fn connect(edge: &Edge, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    connect_with(edge.addr, client_config(&[&edge.identity.der], alpn)).await
}

struct Reply {
    status: StatusCode,
    version: Version,
    headers: http::HeaderMap,
    body: Bytes,
}

async fn collect(response: http::Response<hyper::body::Incoming>) -> Reply {
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body: tokio::time::timeout(STEP, body.collect())
            .await
            .expect("body timed out")
            .unwrap()
            .to_bytes(),
    }
}

/// An HTTP/1.1 client on one TLS connection.
async fn http1(
    stream: TlsStream<TcpStream>,
) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

async fn get1(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    path: &str,
    range: Option<&str>,
) -> Reply {
    let mut request = Request::get(path).header("host", "localhost");
    if let Some(range) = range {
        request = request.header("range", range);
    }
    let request = request.body(Empty::new()).unwrap();
    let response = tokio::time::timeout(STEP, sender.send_request(request))
        .await
        .expect("request timed out")
        .unwrap();
    collect(response).await
}

/// One HTTP/1.1 GET on a fresh connection.
async fn get_once(edge: &Edge, path: &str) -> Reply {
    let mut sender = http1(connect(edge, &[b"http/1.1"]).await).await;
    get1(&mut sender, path, None).await
}

/// Reads until the server closes; returns what it sent. Fails the test if it never closes.
async fn read_until_closed(socket: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(STEP, async {
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .expect("the server never closed the connection");
    received
}

#[tokio::test]
async fn http1_over_tls_get_and_range() {
    let edge = start().await;
    let stream = connect(&edge, &[b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut sender = http1(stream).await;
    let full = get1(&mut sender, &film_path(), None).await;
    assert_eq!(full.status, StatusCode::OK);
    assert_eq!(full.version, Version::HTTP_11);
    assert_eq!(full.body.len() as u64, FILM_SIZE);
    assert!(full.body == pattern(0, FILM_SIZE), "body differs");
    // Same connection, kept alive across the TLS session.
    let range = get1(&mut sender, &film_path(), Some("bytes=1048000-1048999")).await;
    assert_eq!(range.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        range.headers.get("content-range").unwrap(),
        &format!("bytes 1048000-1048999/{FILM_SIZE}")
    );
    assert!(range.body == pattern(1_048_000, 1_049_000));
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn() {
    let edge = start().await;
    // A browser offers both; the edge picks h2.
    let stream = connect(&edge, &[b"h2", b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = Request::get(format!("https://localhost{}", film_path()))
        .header("range", "bytes=100-2097251")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = tokio::time::timeout(STEP, sender.send_request(request))
        .await
        .unwrap()
        .unwrap();
    let reply = collect(response).await;
    assert_eq!(reply.version, Version::HTTP_2);
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert!(reply.body == pattern(100, 2_097_252), "body differs");
}

#[tokio::test]
async fn plain_http_on_the_tls_port_is_closed_and_serving_goes_on() {
    let edge = start().await;
    let mut socket = TcpStream::connect(edge.addr).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let received = read_until_closed(&mut socket).await;
    assert!(
        !received.starts_with(b"HTTP/"),
        "plain HTTP was answered on the TLS port"
    );
    let reply = get_once(&edge, "/healthz").await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn garbage_client_hello_closes_only_that_connection() {
    let edge = start().await;
    let mut established = http1(connect(&edge, &[b"http/1.1"]).await).await;
    assert_eq!(
        get1(&mut established, "/healthz", None).await.status,
        StatusCode::OK
    );
    let mut socket = TcpStream::connect(edge.addr).await.unwrap();
    // A handshake record header announcing a ClientHello, then bytes that are not one.
    let mut hello = vec![0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c];
    hello.extend(std::iter::repeat_n(0xa5, 0x3c));
    socket.write_all(&hello).await.unwrap();
    read_until_closed(&mut socket).await;
    // The connection opened before and a new one both still work.
    let reply = get1(&mut established, &film_path(), Some("bytes=0-9")).await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert!(reply.body == pattern(0, 10));
    assert_eq!(get_once(&edge, "/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn silent_handshake_times_out_without_blocking_others() {
    let header_read_timeout = Duration::from_millis(400);
    let edge = start_with(HttpSettings {
        header_read_timeout,
        ..HttpSettings::default()
    })
    .await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(edge.addr).await.unwrap();
    // Others are served while the silent client holds its connection open.
    assert_eq!(get_once(&edge, "/healthz").await.status, StatusCode::OK);
    read_until_closed(&mut silent).await;
    assert!(
        started.elapsed() >= header_read_timeout - Duration::from_millis(50),
        "closed before the timeout: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn reload_swaps_the_identity_for_new_connections_only() {
    let edge = start().await;
    let dir = tempfile::tempdir().unwrap();
    let renewed = write_identity(dir.path(), "renewed");
    let trusts_both = client_config(&[&edge.identity.der, &renewed.der], &[b"http/1.1"]);
    let mut before = http1(connect_with(edge.addr, trusts_both.clone()).await).await;

    // A botched renewal (key of another certificate) is refused and changes nothing.
    std::fs::copy(&renewed.files.key, &edge.identity.files.key).unwrap();
    assert!(edge.tls.reload().is_err());
    let stream = connect_with(edge.addr, trusts_both.clone()).await;
    assert_eq!(peer_cert(&stream), edge.identity.der);

    std::fs::copy(&renewed.files.cert, &edge.identity.files.cert).unwrap();
    edge.tls.reload().unwrap();
    let stream = connect_with(edge.addr, trusts_both).await;
    assert_eq!(peer_cert(&stream), renewed.der);
    // The connection made before the reload carries on.
    assert_eq!(
        get1(&mut before, "/healthz", None).await.status,
        StatusCode::OK
    );
}

fn peer_cert(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

#[tokio::test]
async fn sec1_ec_key_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let files = TlsFiles {
        cert: dir.path().join("edge.crt"),
        key: dir.path().join("edge.key"),
    };
    std::fs::write(&files.cert, generated.cert.pem()).unwrap();
    let sec1 = pkcs8_to_sec1(&generated.key_pair.serialize_der());
    let pem = format!(
        "-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n",
        base64(&sec1)
    );
    std::fs::write(&files.key, pem).unwrap();
    let parsed = PrivateKeyDer::from_pem_file(&files.key).unwrap();
    assert!(matches!(parsed, PrivateKeyDer::Sec1(_)));
    TlsIdentity::load(files).expect("SEC1 key refused");
}

/// The SEC1 `ECPrivateKey` that a PKCS#8 EC key wraps (its third element, an OCTET STRING),
/// so the SEC1 path is covered without an openssl binary.
fn pkcs8_to_sec1(pkcs8: &[u8]) -> Vec<u8> {
    fn tlv(der: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = der[0];
        let (len, header) = match der[1] {
            short if short < 0x80 => (usize::from(short), 2),
            long => {
                let count = usize::from(long & 0x7f);
                let len = der[2..2 + count]
                    .iter()
                    .fold(0, |acc, b| acc << 8 | usize::from(*b));
                (len, 2 + count)
            }
        };
        (tag, &der[header..header + len], &der[header + len..])
    }
    let (_, info, _) = tlv(pkcs8);
    let (_, _version, rest) = tlv(info);
    let (_, _algorithm, rest) = tlv(rest);
    let (tag, key, _) = tlv(rest);
    assert_eq!(tag, 0x04, "not an OCTET STRING");
    key.to_vec()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---- configuration ----

const FINGERPRINT: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn config_with(tls: &[(&str, &str)]) -> Result<EdgeConfig, String> {
    let mut pairs = vec![
        ("TGCDN_PUBLIC_URL", "https://fra.cdn.example"),
        ("TGCDN_CORE_ADDR", "10.1.2.3:7443"),
        ("TGCDN_CORE_CERT_SHA256", FINGERPRINT),
        ("TGCDN_CLUSTER_SECRET", "0123456789abcdef0123456789abcdef"),
        ("TGCDN_LINK_KEYS", "1:0123456789abcdef0123456789abcdef"),
    ];
    pairs.extend_from_slice(tls);
    let settings = Settings::from_env_and_file(
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())),
        None,
    )
    .unwrap();
    EdgeConfig::from_settings(&settings).map_err(|error| error.to_string())
}

/// The error is one line that starts with the variable to fix.
fn assert_error_names(result: Result<EdgeConfig, String>, variable: &str) -> String {
    let error = result.expect_err("configuration accepted");
    assert!(error.starts_with(variable), "{error}");
    assert!(!error.contains('\n'), "{error}");
    error
}

#[test]
fn tls_settings_are_both_or_neither() {
    let dir = tempfile::tempdir().unwrap();
    let identity = write_identity(dir.path(), "edge");
    let cert = identity.files.cert.to_str().unwrap();
    let key = identity.files.key.to_str().unwrap();

    assert!(config_with(&[]).unwrap().tls.is_none());
    assert!(
        config_with(&[("TGCDN_TLS_CERT", ""), ("TGCDN_TLS_KEY", "")])
            .unwrap()
            .tls
            .is_none()
    );
    let config = config_with(&[("TGCDN_TLS_CERT", cert), ("TGCDN_TLS_KEY", key)]).unwrap();
    assert_eq!(config.tls.unwrap().files(), &identity.files);

    assert_error_names(config_with(&[("TGCDN_TLS_CERT", cert)]), "TGCDN_TLS_KEY");
    assert_error_names(config_with(&[("TGCDN_TLS_KEY", key)]), "TGCDN_TLS_CERT");
}

#[test]
fn bad_tls_files_name_their_variable() {
    let dir = tempfile::tempdir().unwrap();
    let identity = write_identity(dir.path(), "edge");
    let other = write_identity(dir.path(), "other");
    let cert = identity.files.cert.to_str().unwrap();
    let key = identity.files.key.to_str().unwrap();
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a pem file\n").unwrap();
    let garbage = garbage.to_str().unwrap();
    let truncated = dir.path().join("truncated.pem");
    let key_pem = std::fs::read_to_string(&identity.files.key).unwrap();
    std::fs::write(&truncated, &key_pem[..key_pem.len() / 2]).unwrap();
    let truncated = truncated.to_str().unwrap();

    let error = assert_error_names(
        config_with(&[("TGCDN_TLS_CERT", missing), ("TGCDN_TLS_KEY", key)]),
        "TGCDN_TLS_CERT",
    );
    assert!(error.contains("missing.pem"), "{error}");
    assert_error_names(
        config_with(&[("TGCDN_TLS_CERT", garbage), ("TGCDN_TLS_KEY", key)]),
        "TGCDN_TLS_CERT",
    );
    assert_error_names(
        config_with(&[("TGCDN_TLS_CERT", cert), ("TGCDN_TLS_KEY", missing)]),
        "TGCDN_TLS_KEY",
    );
    // The certificate file given as the key: no key in it.
    let error = assert_error_names(
        config_with(&[("TGCDN_TLS_CERT", cert), ("TGCDN_TLS_KEY", cert)]),
        "TGCDN_TLS_KEY",
    );
    assert!(error.contains("no PEM private key"), "{error}");
    assert_error_names(
        config_with(&[("TGCDN_TLS_CERT", cert), ("TGCDN_TLS_KEY", truncated)]),
        "TGCDN_TLS_KEY",
    );
    // A real key, but not this certificate's.
    let error = assert_error_names(
        config_with(&[
            ("TGCDN_TLS_CERT", cert),
            ("TGCDN_TLS_KEY", other.files.key.to_str().unwrap()),
        ]),
        "TGCDN_TLS_KEY",
    );
    assert!(!error.contains("PRIVATE KEY-----"), "key echoed: {error}");
}
