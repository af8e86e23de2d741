//! [`QuicUpstream`]: the edge's client of a remote core over one long-lived QUIC connection.
//!
//! Created once by `main`; used through the [`Upstream`] trait by the cache and metadata
//! sources. A supervisor task owns the connection: it connects (certificate pinned, see
//! [`super::tls`]), proves the cluster secret in a `Hello` bound to this TLS session, sends
//! heartbeats, and reconnects with exponential backoff when the connection dies. Requests
//! never connect themselves: each waits (boundedly) for the supervisor's current connection
//! and opens one bidirectional stream, so a slow chunk never blocks another. A request cut
//! by a lost connection (a core restart) is retried on the next connection, a bounded number
//! of times within its deadline; typed core errors are never retried here (the core already
//! routes around FLOOD_WAIT).
//!
//! The core also pushes: once authenticated, it opens a unidirectional stream per
//! [`Push`] (a revocation). The supervisor reads them, one frame per stream under a
//! deadline, and hands each to the push sink `main` set ([`QuicUpstream::set_push_sink`]).
//! After a *re*connection the sink first gets `ForgetAll`: revocations made while the
//! edge was away were never pushed, so no cached metadata is trusted across a gap. The
//! core's first pushes on each connection are its whole revocation list; until its last
//! part is in (or [`LIST_GRACE`] passed), [`QuicUpstream::revocations_known`] is false, so
//! a pool of cores sends no file to any core before each core that is up has said what it
//! revoked.
//!
//! Addon answers are read the same way (one stream each, under the same deadline and
//! retries): the JSON length is checked against the wire limit when the header decodes, and
//! the stream must end right after it.
//!
//! Chunk payloads are read with `read_chunk` straight into one buffer of the announced
//! length: quinn hands out packet-sized pieces, and the cache needs one contiguous `Bytes`
//! per chunk (so `Bytes::slice` can serve any range), so exactly one copy is made, with no
//! intermediate `Vec` or re-serialisation.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{
    Connection, ConnectionError, Endpoint, ReadError, ReadExactError, RecvStream, WriteError,
};
use tgcdn_shared::FileRef;
use tgcdn_shared::wire::{
    self, AddonRequest, ChunkClass, ChunkRequest, EXPORTER_CONTEXT, EXPORTER_LABEL, EXPORTER_LEN,
    FileMeta, FrameError, Heartbeat, Hello, LEN_PREFIX, PROTOCOL_VERSION, Push, Request, Response,
    Welcome,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::tls::PinnedCertVerifier;
use super::{AddonReply, MetaChunk, PendingChunk, Upstream, UpstreamError, UpstreamFuture};

/// How to reach and authenticate to the core, and the client's time limits.
#[derive(Clone)]
pub struct QuicSettings {
    /// `host:port` of the core; a name is resolved again on every connection attempt, so a
    /// core that moves to a new address is found after its restart.
    pub addr: String,
    /// TLS server name (SNI); the certificate is checked by pin, not by name.
    pub server_name: String,
    pub cert_sha256: [u8; 32],
    pub cluster_secret: Vec<u8>,
    pub edge_id: String,
    pub region: String,
    pub public_base_url: String,
    /// Longest wait for a connection before a request fails as unreachable.
    pub connect_wait: Duration,
    /// Deadline of one request attempt; by default the one the core's own deadline is set
    /// under (`tgcdn_shared::deadline`), so the core's answer arrives first.
    pub request_timeout: Duration,
    /// Attempts per request when the connection is lost under it.
    pub max_attempts: u32,
    /// Longest pause between reconnection attempts.
    pub max_backoff: Duration,
    /// A connection silent this long is dead (QUIC idle timeout; keep-alives are sent every
    /// second, or a third of it when shorter). Bounds how long a vanished core holds the requests sent to it.
    pub idle_timeout: Duration,
}

impl QuicSettings {
    /// Settings with the default time limits.
    pub fn new(addr: impl Into<String>, cert_sha256: [u8; 32], cluster_secret: Vec<u8>) -> Self {
        QuicSettings {
            addr: addr.into(),
            server_name: "tgcdn-core".to_owned(),
            cert_sha256,
            cluster_secret,
            edge_id: format!("edge-{}", std::process::id()),
            region: "default".to_owned(),
            public_base_url: "http://localhost".to_owned(),
            connect_wait: Duration::from_secs(5),
            request_timeout: tgcdn_shared::deadline::EDGE_REQUEST_TIMEOUT,
            max_attempts: 3,
            max_backoff: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for QuicSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicSettings")
            .field("addr", &self.addr)
            .field("server_name", &self.server_name)
            .field("edge_id", &self.edge_id)
            .finish_non_exhaustive()
    }
}

/// What the edge reports in each heartbeat; set by `main` from its metrics.
pub type LoadReport = Arc<dyn Fn() -> Heartbeat + Send + Sync>;

/// Where pushed messages go; set by `main` to [`crate::push::apply`] on its state.
pub type PushSink =
    Arc<dyn Fn(Push) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// How often the edge speaks on an otherwise quiet connection (see `client_config`).
const KEEP_ALIVE: Duration = Duration::from_secs(1);

/// How long the core may take to deliver one push frame on its stream.
const PUSH_READ_DEADLINE: Duration = Duration::from_secs(5);

/// How long after connecting the core's revocation list may take before the link is used
/// without it (a core that cannot read its store sends none; it still refuses its own).
pub const LIST_GRACE: Duration = Duration::from_secs(5);

/// Why the QUIC client could not be created.
#[derive(Debug, thiserror::Error)]
pub enum QuicSetupError {
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("QUIC client configuration: {0}")]
    Quic(String),
    #[error("cannot bind the QUIC client socket: {0}")]
    Bind(#[from] std::io::Error),
}

struct Shared {
    endpoint: Endpoint,
    client_config: quinn::ClientConfig,
    settings: QuicSettings,
    current: watch::Sender<Option<Connection>>,
    ready: AtomicBool,
    /// The core's revocation list arrived on this connection (or its grace passed).
    revocations_known: AtomicBool,
    /// Connections made so far; a failover decision taken on one is void on the next.
    connections: AtomicU64,
    /// The core's download connections from its last Welcome; 0 before the first.
    core_connections: AtomicU32,
    connect_attempts: AtomicUsize,
    load: Mutex<Option<LoadReport>>,
    pushes: Mutex<Option<PushSink>>,
    started: Instant,
}

/// See the module docs. Dropping it stops the supervisor and closes the connection.
pub struct QuicUpstream {
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Drop for QuicUpstream {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl QuicUpstream {
    /// Creates the client and starts connecting in the background; returns at once (so the
    /// edge serves `/healthz` before the core answers). Must run inside a tokio runtime.
    pub fn start(settings: QuicSettings) -> Result<Self, QuicSetupError> {
        let client_config = client_config(&settings)?;
        let endpoint = Endpoint::new(
            quinn::EndpointConfig::default(),
            None,
            udp_socket()?,
            Arc::new(quinn::TokioRuntime),
        )?;
        let shared = Arc::new(Shared {
            endpoint,
            client_config,
            settings,
            current: watch::Sender::new(None),
            ready: AtomicBool::new(false),
            revocations_known: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            core_connections: AtomicU32::new(0),
            connect_attempts: AtomicUsize::new(0),
            load: Mutex::new(None),
            pushes: Mutex::new(None),
            started: Instant::now(),
        });
        let stop = CancellationToken::new();
        let span = tracing::info_span!("core_link", core = %shared.settings.addr);
        tokio::spawn(supervise(shared.clone(), stop.clone()).instrument(span));
        Ok(QuicUpstream { shared, stop })
    }

    /// Sets what heartbeats report.
    pub fn set_load_report(&self, report: LoadReport) {
        *self
            .shared
            .load
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(report);
    }

    /// Sets where the core's pushes (revocations) go.
    pub fn set_push_sink(&self, sink: PushSink) {
        *self
            .shared
            .pushes
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(sink);
    }

    /// How many connections the supervisor has made so far (0 before the first); with
    /// [`Upstream::ready`], what a pool of cores decides failover on.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Whether the core's revocation list has arrived on the current connection (or the
    /// link has waited [`LIST_GRACE`] for it).
    pub fn revocations_known(&self) -> bool {
        self.shared.revocations_known.load(Ordering::SeqCst)
    }

    /// Waits until connected (or `wait` passes); for start-up logs and tests.
    pub async fn wait_ready(&self, wait: Duration) -> bool {
        current_connection(&self.shared, wait).await.is_ok()
    }

    async fn with_retries<T, F, Fut>(&self, what: &str, attempt: F) -> Result<T, UpstreamError>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        let settings = &self.shared.settings;
        let mut tries = 0;
        loop {
            tries += 1;
            let result = tokio::time::timeout(settings.request_timeout, async {
                let connection = current_connection(&self.shared, settings.connect_wait).await?;
                attempt(connection).await
            })
            .await
            .unwrap_or(Err(UpstreamError::Timeout));
            match result {
                Err(UpstreamError::Unreachable { reason }) if tries < settings.max_attempts => {
                    tracing::debug!(what, tries, %reason, "retrying on the next connection");
                }
                other => return other,
            }
        }
    }
}

impl Upstream for QuicUpstream {
    fn meta(&self, file: FileRef) -> UpstreamFuture<'_, FileMeta> {
        Box::pin(self.with_retries("meta", move |connection| async move {
            let (response, _recv) = exchange(&connection, &Request::Meta(file)).await?;
            match response {
                Response::Meta(meta) => Ok(meta),
                other => Err(unexpected(&other)),
            }
        }))
    }

    fn chunk(&self, file: FileRef, index: u64) -> UpstreamFuture<'_, Bytes> {
        self.chunk_as(file, index, ChunkClass::Demand)
    }

    fn chunk_as(&self, file: FileRef, index: u64, class: ChunkClass) -> UpstreamFuture<'_, Bytes> {
        let request = Request::Chunk(ChunkRequest { file, index, class });
        Box::pin(self.with_retries("chunk", move |connection| {
            let request = request.clone();
            async move {
                let (response, mut recv) = exchange(&connection, &request).await?;
                match response {
                    Response::Chunk(header) => read_payload(&mut recv, header.len as usize).await,
                    other => Err(unexpected(&other)),
                }
            }
        }))
    }

    /// One stream: the `Meta` frame, then the chunk header and bytes (or an error frame).
    fn meta_chunk(&self, file: FileRef, index: u64) -> UpstreamFuture<'_, MetaChunk> {
        let request = Request::MetaChunk(ChunkRequest {
            file,
            index,
            class: ChunkClass::Demand,
        });
        Box::pin(self.with_retries("meta_chunk", move |connection| {
            let request = request.clone();
            async move {
                let (response, mut recv) = exchange(&connection, &request).await?;
                let Response::Meta(meta) = response else {
                    return Err(unexpected(&response));
                };
                // The core writes the meta before it fetches the chunk. A chunk lost with
                // the connection is the chunk's failure only: the body asks for it again.
                let chunk: PendingChunk = Box::pin(async move {
                    match read_response(&mut recv).await? {
                        Response::Chunk(header) => {
                            read_payload(&mut recv, header.len as usize).await
                        }
                        Response::Error(error) => Err(UpstreamError::Core(error)),
                        other => Err(unexpected(&other)),
                    }
                });
                Ok(MetaChunk {
                    meta,
                    chunk: Some(chunk),
                })
            }
        }))
    }

    fn core_connections(&self) -> Option<u32> {
        match self.shared.core_connections.load(Ordering::Relaxed) {
            0 => None,
            known => Some(known),
        }
    }

    fn addon(&self, request: AddonRequest) -> UpstreamFuture<'_, AddonReply> {
        let request = Request::Addon(request);
        Box::pin(self.with_retries("addon", move |connection| {
            let request = request.clone();
            async move {
                let (response, mut recv) = exchange(&connection, &request).await?;
                let Response::Addon(header) = response else {
                    return Err(unexpected(&response));
                };
                // `decode_response` refused a length above the wire's addon limit.
                let json = read_payload(&mut recv, header.len as usize).await?;
                expect_end(&mut recv).await?;
                Ok(AddonReply { header, json })
            }
        }))
    }

    fn ready(&self) -> bool {
        self.shared.ready.load(Ordering::SeqCst)
    }
}

/// The stream must finish after a payload: trailing bytes mean the core and edge disagree
/// about the frame, and the answer is not trusted.
async fn expect_end(recv: &mut RecvStream) -> Result<(), UpstreamError> {
    match recv.read_chunk(1, true).await.map_err(read_error)? {
        None => Ok(()),
        Some(_) => Err(UpstreamError::protocol("bytes after the addon payload")),
    }
}

/// UDP socket buffers asked for; the kernel caps them at `net.core.rmem_max`/`wmem_max`.
const UDP_BUFFER_BYTES: usize = 8 << 20;

/// The client's UDP socket: dual-stack where the host has IPv6 (quinn maps IPv4 cores to
/// v4-mapped addresses), IPv4 otherwise; with large buffers, because at hundreds of MiB/s the
/// 208 KiB default overflows and every dropped datagram costs a retransmission round trip.
fn udp_socket() -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let dual_stack =
        Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).and_then(|socket| {
            socket.set_only_v6(false)?;
            socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)).into())?;
            Ok(socket)
        });
    let socket = match dual_stack {
        Ok(socket) => socket,
        Err(error) => {
            tracing::debug!(%error, "no dual-stack UDP socket; using IPv4");
            let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
            socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)).into())?;
            socket
        }
    };
    // Best effort: a smaller buffer than asked for still works, just less well.
    if let Err(error) = socket.set_recv_buffer_size(UDP_BUFFER_BYTES) {
        tracing::debug!(%error, "cannot raise SO_RCVBUF");
    }
    if let Err(error) = socket.set_send_buffer_size(UDP_BUFFER_BYTES) {
        tracing::debug!(%error, "cannot raise SO_SNDBUF");
    }
    tracing::debug!(
        recv = socket.recv_buffer_size().unwrap_or(0),
        send = socket.send_buffer_size().unwrap_or(0),
        "QUIC client socket buffers"
    );
    Ok(socket.into())
}

fn client_config(settings: &QuicSettings) -> Result<quinn::ClientConfig, QuicSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinnedCertVerifier::new(settings.cert_sha256, provider.clone());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![wire::ALPN.to_vec()];
    let crypto =
        QuicClientConfig::try_from(tls).map_err(|e| QuicSetupError::Quic(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    // A whole chunk (plus its frame) fits in one stream's window, so a stream never waits
    // for the reader to make room; the connection window bounds what all streams buffer.
    transport.stream_receive_window(quinn::VarInt::from_u32(4 << 20));
    transport.receive_window(quinn::VarInt::from_u32(64 << 20));
    // An edge waiting for chunks sends nothing: after a core restart, the first packet it
    // sends is what draws the new core's stateless reset (see the core's `quic/reset.rs`),
    // so the keep-alive interval is how long fills stall after the core is back. One small
    // packet a second (it was 5 s, and 20 viewers' downloads stood still that long), more
    // often only if the idle timeout is under 3 s.
    transport.keep_alive_interval(Some(KEEP_ALIVE.min(settings.idle_timeout / 3)));
    let idle = quinn::IdleTimeout::try_from(settings.idle_timeout)
        .map_err(|e| QuicSetupError::Quic(e.to_string()))?;
    transport.max_idle_timeout(Some(idle));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// Keeps one authenticated connection up until `stop`.
async fn supervise(shared: Arc<Shared>, stop: CancellationToken) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(100);
    let mut backoff = FIRST_BACKOFF;
    let mut connected_before = false;
    loop {
        let attempt = tokio::select! {
            attempt = connect(&shared) => attempt,
            () = stop.cancelled() => return,
        };
        match attempt {
            Ok((connection, welcome)) => {
                tracing::info!(
                    core_version = %welcome.core_version,
                    download_connections = welcome.download_connections,
                    "connected to core"
                );
                shared
                    .core_connections
                    .store(welcome.download_connections, Ordering::Relaxed);
                backoff = FIRST_BACKOFF;
                if connected_before {
                    deliver(&shared, Push::ForgetAll).await;
                }
                connected_before = true;
                shared.revocations_known.store(false, Ordering::SeqCst);
                shared.connections.fetch_add(1, Ordering::SeqCst);
                shared.current.send_replace(Some(connection.clone()));
                shared.ready.store(true, Ordering::SeqCst);
                let interval = Duration::from_secs(welcome.heartbeat_interval_secs.max(1).into());
                let reason = tokio::select! {
                    reason = connection.closed() => reason.to_string(),
                    reason = heartbeats(&shared, &connection, interval) => reason,
                    reason = pushes(&shared, &connection) => reason,
                    reason = list_grace(&shared) => reason,
                    () = stop.cancelled() => {
                        connection.close(0u32.into(), b"edge shutting down");
                        shared.ready.store(false, Ordering::SeqCst);
                        return;
                    }
                };
                shared.ready.store(false, Ordering::SeqCst);
                shared.current.send_replace(None);
                tracing::warn!(%reason, "connection to core lost; reconnecting");
            }
            Err(error) => tracing::warn!(%error, ?backoff, "cannot connect to core"),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(shared.settings.max_backoff);
    }
}

/// The address for this connection attempt. A name with several addresses (say `::1` and
/// `127.0.0.1`) is tried one address per attempt in turn, so an unreachable first address
/// costs one attempt, not every attempt.
async fn resolve(shared: &Shared) -> Result<SocketAddr, UpstreamError> {
    let target = &shared.settings.addr;
    let resolved = tokio::time::timeout(
        shared.settings.connect_wait,
        tokio::net::lookup_host(target.as_str()),
    )
    .await
    .map_err(|_| UpstreamError::unreachable(format!("resolving {target} timed out")))?
    .map_err(|error| UpstreamError::unreachable(format!("cannot resolve {target}: {error}")))?;
    let addrs: Vec<SocketAddr> = resolved.collect();
    let attempt = shared.connect_attempts.fetch_add(1, Ordering::Relaxed);
    addrs
        .get(attempt % addrs.len().max(1))
        .copied()
        .ok_or_else(|| UpstreamError::unreachable(format!("{target} has no address")))
}

/// One connection attempt: QUIC handshake, then `Hello` on the first stream.
async fn connect(shared: &Shared) -> Result<(Connection, Welcome), UpstreamError> {
    let settings = &shared.settings;
    let addr = resolve(shared).await?;
    let connecting = shared
        .endpoint
        .connect_with(shared.client_config.clone(), addr, &settings.server_name)
        .map_err(UpstreamError::unreachable)?;
    let connection = tokio::time::timeout(settings.connect_wait, connecting)
        .await
        .map_err(|_| UpstreamError::unreachable("QUIC handshake timed out"))?
        .map_err(UpstreamError::unreachable)?;
    let mut binding = [0u8; EXPORTER_LEN];
    connection
        .export_keying_material(&mut binding, EXPORTER_LABEL, EXPORTER_CONTEXT)
        .map_err(|_| UpstreamError::protocol("TLS exporter unavailable"))?;
    let hello = Request::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        edge_id: settings.edge_id.clone(),
        region: settings.region.clone(),
        public_base_url: settings.public_base_url.clone(),
        auth_proof: wire::hello_proof(&settings.cluster_secret, &settings.edge_id, &binding),
    });
    let exchanged = tokio::time::timeout(settings.connect_wait, exchange(&connection, &hello))
        .await
        .unwrap_or(Err(UpstreamError::Timeout));
    match exchanged {
        Ok((Response::Welcome(welcome), _)) => Ok((connection, welcome)),
        Ok((other, _)) => {
            connection.close(0u32.into(), b"hello refused");
            Err(unexpected(&other))
        }
        Err(error) => {
            connection.close(0u32.into(), b"hello failed");
            Err(error)
        }
    }
}

/// Sends heartbeats until one fails; returns why.
async fn heartbeats(shared: &Shared, connection: &Connection, interval: Duration) -> String {
    loop {
        tokio::time::sleep(interval).await;
        let report = shared
            .load
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut beat = report.map(|report| report()).unwrap_or_default();
        beat.uptime_secs = shared.started.elapsed().as_secs();
        let sent = tokio::time::timeout(
            shared.settings.request_timeout,
            exchange(connection, &Request::Heartbeat(beat)),
        )
        .await
        .unwrap_or(Err(UpstreamError::Timeout));
        match sent {
            Ok((Response::Ack, _)) => {}
            Ok((other, _)) => tracing::debug!(kind = other.kind(), "odd heartbeat answer"),
            // A lost connection is noticed by `closed()`; anything else is only logged.
            Err(UpstreamError::Unreachable { reason }) => return reason,
            Err(error) => tracing::debug!(%error, "heartbeat failed"),
        }
    }
}

/// Reads the core's pushes, one unidirectional stream each, until the connection ends;
/// returns why. A bad push is logged and skipped: the connection itself is fine.
async fn pushes(shared: &Shared, connection: &Connection) -> String {
    loop {
        let mut recv = match connection.accept_uni().await {
            Ok(recv) => recv,
            Err(error) => return error.to_string(),
        };
        let read = tokio::time::timeout(
            PUSH_READ_DEADLINE,
            recv.read_to_end(LEN_PREFIX + wire::MAX_FRAME_LEN as usize),
        )
        .await;
        let frame = match read {
            Ok(Ok(frame)) => frame,
            Ok(Err(error)) => {
                tracing::warn!(%error, "unreadable push");
                continue;
            }
            Err(_) => {
                tracing::warn!("push not delivered within {PUSH_READ_DEADLINE:?}");
                continue;
            }
        };
        match wire::decode_push(&frame) {
            Ok(Some((push, consumed))) if consumed == frame.len() => {
                let list_complete = matches!(push, Push::RevokedList { last: true, .. });
                deliver(shared, push).await;
                if list_complete {
                    shared.revocations_known.store(true, Ordering::SeqCst);
                }
            }
            Ok(_) => tracing::warn!(len = frame.len(), "push frame did not decode whole"),
            Err(error) => tracing::warn!(%error, "malformed push"),
        }
    }
}

/// Gives the core [`LIST_GRACE`] to send its revocation list, then uses the link anyway;
/// never ends.
async fn list_grace(shared: &Shared) -> String {
    tokio::time::sleep(LIST_GRACE).await;
    if !shared.revocations_known.swap(true, Ordering::SeqCst) {
        tracing::warn!("the core sent no revocation list in {LIST_GRACE:?}; using it without");
    }
    std::future::pending().await
}

async fn deliver(shared: &Shared, push: Push) {
    let sink = shared
        .pushes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    match sink {
        Some(sink) => sink(push).await,
        None => tracing::debug!(kind = push.kind(), "push ignored: no sink set"),
    }
}

/// Waits for the supervisor's live connection.
async fn current_connection(shared: &Shared, wait: Duration) -> Result<Connection, UpstreamError> {
    let mut receiver = shared.current.subscribe();
    let found = tokio::time::timeout(
        wait,
        receiver.wait_for(|current| {
            current
                .as_ref()
                .is_some_and(|connection| connection.close_reason().is_none())
        }),
    )
    .await;
    match found {
        Ok(Ok(current)) => current
            .clone()
            .ok_or_else(|| UpstreamError::unreachable("no connection to core")),
        _ => Err(UpstreamError::unreachable("no connection to core")),
    }
}

/// One request on its own stream: write the frame, finish, read the response frame.
async fn exchange(
    connection: &Connection,
    request: &Request,
) -> Result<(Response, RecvStream), UpstreamError> {
    let mut frame = Vec::new();
    wire::encode_request(request, &mut frame).map_err(frame_error)?;
    let (mut send, mut recv) = connection.open_bi().await.map_err(connection_error)?;
    send.write_all(&frame).await.map_err(write_error)?;
    // Finishing only fails if the stream is already closed, which the read reports.
    let _ = send.finish();
    let response = read_response(&mut recv).await?;
    if let Response::Error(error) = response {
        return Err(UpstreamError::Core(error));
    }
    Ok((response, recv))
}

async fn read_response(recv: &mut RecvStream) -> Result<Response, UpstreamError> {
    let mut prefix = [0u8; LEN_PREFIX];
    recv.read_exact(&mut prefix)
        .await
        .map_err(read_exact_error)?;
    let total = wire::frame_len(&prefix)
        .map_err(frame_error)?
        .ok_or_else(|| UpstreamError::protocol("short frame prefix"))?;
    let mut frame = vec![0u8; total];
    frame[..LEN_PREFIX].copy_from_slice(&prefix);
    recv.read_exact(&mut frame[LEN_PREFIX..])
        .await
        .map_err(read_exact_error)?;
    match wire::decode_response(&frame).map_err(frame_error)? {
        Some((response, consumed)) if consumed == total => Ok(response),
        _ => Err(UpstreamError::protocol(
            "response frame did not decode whole",
        )),
    }
}

/// Reads exactly `len` payload bytes into one buffer (see the module docs on copies).
async fn read_payload(recv: &mut RecvStream, len: usize) -> Result<Bytes, UpstreamError> {
    let first = match recv.read_chunk(len, true).await.map_err(read_error)? {
        Some(chunk) => chunk.bytes,
        None if len == 0 => return Ok(Bytes::new()),
        None => return Err(UpstreamError::protocol("stream ended before the payload")),
    };
    if first.len() == len {
        return Ok(first);
    }
    let mut buffer = BytesMut::with_capacity(len);
    buffer.extend_from_slice(&first);
    while buffer.len() < len {
        match recv
            .read_chunk(len - buffer.len(), true)
            .await
            .map_err(read_error)?
        {
            Some(chunk) => buffer.extend_from_slice(&chunk.bytes),
            None => {
                return Err(UpstreamError::protocol(format!(
                    "payload ended after {} of {len} bytes",
                    buffer.len()
                )));
            }
        }
    }
    Ok(buffer.freeze())
}

fn unexpected(response: &Response) -> UpstreamError {
    UpstreamError::protocol(format!("unexpected {} response", response.kind()))
}

fn frame_error(error: FrameError) -> UpstreamError {
    UpstreamError::protocol(error)
}

/// A lost connection is retryable on the next one; that is what `Unreachable` means here.
fn connection_error(error: ConnectionError) -> UpstreamError {
    UpstreamError::unreachable(error)
}

fn write_error(error: WriteError) -> UpstreamError {
    match error {
        WriteError::ConnectionLost(error) => connection_error(error),
        other => UpstreamError::unreachable(other),
    }
}

fn read_error(error: ReadError) -> UpstreamError {
    match error {
        ReadError::ConnectionLost(error) => connection_error(error),
        // The core resets a stream when it abandons a request (e.g. shutting down).
        ReadError::Reset(code) => UpstreamError::unreachable(format!("stream reset ({code})")),
        other => UpstreamError::protocol(other),
    }
}

fn read_exact_error(error: ReadExactError) -> UpstreamError {
    match error {
        ReadExactError::FinishedEarly(read) => {
            UpstreamError::protocol(format!("stream ended after {read} bytes of a frame"))
        }
        ReadExactError::ReadError(error) => read_error(error),
    }
}
