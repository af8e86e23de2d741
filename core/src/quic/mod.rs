//! The QUIC server edges connect to: endpoint, accept loop, one task per connection and one
//! per stream.
//!
//! * [`tls`] — the pinned self-signed identity and the rustls (ring) / quinn server config;
//! * [`handler`] — wire request → resolve/fetch → reply, and the one error → wire map;
//! * [`registry`] — the edges' Hello and heartbeat records, for the admin command;
//! * [`admission`] — pure: which anonymous peers may start a handshake (cap, token bucket,
//!   Retry under load) and the rate limit of the refusal log line;
//! * this file — [`QuicServer`]: binds a UDP socket with raised buffers, accepts forever
//!   (a bad peer ends its own task, never the loop), admits peers through [`admission`],
//!   gives an anonymous peer one stream and a small receive window, gates each connection
//!   on a `Hello` in its first stream (under a deadline, before any Telegram work; refused →
//!   error frame, connection closed), then serves one request per bidirectional stream: read one frame
//!   (bounded by the frame limit, under a deadline), answer, finish; a stream the edge
//!   stops before its answer drops the work (and so its claim on the chunk's download,
//!   which [`crate::fetch`] aborts when nobody else waits for it). Chunks go out as a
//!   header frame plus the fetched `Bytes` in one `write_all_chunks`. Each authenticated
//!   connection also gets a pusher task that first sends the core's whole revocation list
//!   (in bounded parts) and then opens one unidirectional stream per revocation or
//!   unrevocation ([`wire::Push`]), so every connected edge refuses what this core
//!   revoked, whichever core serves the file.
//!
//! Shutdown drains ([`QuicServer::shutdown`]): no new connection or stream, replies in
//! progress delivered (up to a grace period), then the endpoint closes.
//!
//! Transport settings are sized for a long edge↔core path ([`QuicConfig`]): at 150 ms and
//! 100 MiB/s 15 MiB must be in flight, so windows are ≥ 16 MiB per connection.

pub mod admission;
mod drain;
pub mod handler;
pub mod registry;
mod reset;
pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use quinn::{Connection, Endpoint, RecvStream, SendStream, VarInt};
use tgcdn_shared::deadline::CORE_REQUEST_DEADLINE;
use tgcdn_shared::wire::{
    self, EXPORTER_CONTEXT, EXPORTER_LABEL, EXPORTER_LEN, FrameError, LEN_PREFIX, Request,
    Response, WireError,
};
use tokio::task::JoinHandle;
use tracing::Instrument;

use admission::{Admission, AdmissionLimits, Admit, LogLimiter};
use drain::Drain;
use handler::{Handler, Reply, ServeError, chunk_header, wire_error};
pub use registry::{EdgeRegistry, EdgeView};

/// Application close codes the core uses on a connection.
pub mod close_code {
    /// The core is shutting down.
    pub const SHUTDOWN: u32 = 0;
    /// The first stream did not carry a valid Hello.
    pub const UNAUTHORIZED: u32 = 1;
    /// No Hello arrived within the deadline.
    pub const HELLO_TIMEOUT: u32 = 2;
}

/// Stream error code sent when the core gives up on a stream (deadline passed).
const STREAM_ABANDONED: u32 = 1;

/// Tunables of the endpoint.
#[derive(Debug, Clone)]
pub struct QuicConfig {
    pub listen: SocketAddr,
    /// From connection accepted to Hello answered.
    pub hello_timeout: Duration,
    /// From stream accepted to its request frame read.
    pub request_timeout: Duration,
    /// Writing one reply (a slow edge that stops reading must not hold a chunk forever).
    pub write_timeout: Duration,
    /// A connection silent this long is closed (edges keep theirs alive with heartbeats).
    pub idle_timeout: Duration,
    pub keep_alive_interval: Duration,
    /// Concurrent bidirectional streams an edge may open: its chunks in flight.
    pub max_concurrent_streams: u32,
    /// Per-stream receive window (requests are small; chunks flow the other way).
    pub stream_receive_window: u64,
    /// Connection receive window.
    pub receive_window: u64,
    /// Bytes the core may have unacknowledged per connection: its chunk throughput at a
    /// long round trip.
    pub send_window: u64,
    /// SO_RCVBUF / SO_SNDBUF asked for (the kernel caps it at `net.core.rmem_max` / `wmem_max`).
    pub socket_buffer_bytes: usize,
    /// What `Welcome` tells edges.
    pub heartbeat_interval_secs: u32,
    /// Who may start a handshake before proving anything.
    pub admission: AdmissionLimits,
    /// Connection receive window before Hello (raised to `receive_window` after): an
    /// anonymous peer can make the core buffer no more than this.
    pub preauth_receive_window: u64,
}

impl Default for QuicConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 4433)),
            hello_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            keep_alive_interval: Duration::from_secs(15),
            max_concurrent_streams: 512,
            stream_receive_window: 2 << 20,
            receive_window: 32 << 20,
            send_window: 32 << 20,
            socket_buffer_bytes: 8 << 20,
            heartbeat_interval_secs: 15,
            admission: AdmissionLimits::default(),
            preauth_receive_window: 64 << 10,
        }
    }
}

/// quinn's transport parameters from [`QuicConfig`].
pub fn transport_config(config: &QuicConfig) -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(VarInt::from_u32(config.max_concurrent_streams))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .stream_receive_window(varint(config.stream_receive_window))
        .receive_window(varint(config.receive_window))
        .send_window(config.send_window)
        .keep_alive_interval(Some(config.keep_alive_interval))
        // An idle timeout beyond QUIC's range (~2^62 ms) cannot be configured; none then.
        .max_idle_timeout(quinn::IdleTimeout::try_from(config.idle_timeout).ok());
    transport
}

/// The server's transport parameters, as an anonymous peer sees them: one bidirectional
/// stream (its Hello) and a small connection receive window, so a peer without a Hello can
/// make the core hold one stream and buffer little. [`raise_limits`] grants the full
/// [`transport_config`] values once the Hello is accepted.
fn preauth_transport_config(config: &QuicConfig) -> quinn::TransportConfig {
    let mut transport = transport_config(config);
    transport
        .max_concurrent_bidi_streams(VarInt::from_u32(1))
        .receive_window(varint(
            config.preauth_receive_window.min(config.receive_window),
        ));
    transport
}

/// An authenticated edge's limits: its chunk streams and the full window.
fn raise_limits(connection: &Connection, config: &QuicConfig) {
    connection.set_max_concurrent_bi_streams(VarInt::from_u32(config.max_concurrent_streams));
    connection.set_receive_window(varint(config.receive_window));
}

fn varint(value: u64) -> VarInt {
    VarInt::from_u64(value).unwrap_or(VarInt::MAX)
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    #[error("cannot bind the QUIC socket on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// A running QUIC server.
pub struct QuicServer {
    endpoint: Endpoint,
    local_addr: SocketAddr,
    fingerprint: String,
    socket_buffers: (usize, usize),
    accept: JoinHandle<()>,
    drain: Arc<Drain>,
    gate: Arc<Gate>,
}

/// What anonymous peers have cost so far (for tests and the operator).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmissionCounts {
    pub accepted: u64,
    pub retried: u64,
    pub refused: u64,
    /// Connections accepted that have not had their Hello judged yet.
    pub unauthenticated: usize,
}

/// Admission state shared by the accept loop and the connection tasks.
struct Gate {
    admission: Mutex<Admission>,
    unauthenticated: AtomicUsize,
    accepted: AtomicU64,
    retried: AtomicU64,
    refused: AtomicU64,
    /// "edge refused" is a warning an attacker could otherwise print at line rate.
    refusal_log: Mutex<LogLimiter>,
}

impl Gate {
    fn new(limits: AdmissionLimits) -> Self {
        Gate {
            admission: Mutex::new(Admission::new(limits, Instant::now())),
            unauthenticated: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            refusal_log: Mutex::new(LogLimiter::new(10, Duration::from_secs(60))),
        }
    }

    /// Decides for `incoming` and acts: a guard counting it as unauthenticated if accepted.
    fn admit(self: &Arc<Self>, incoming: quinn::Incoming) -> Option<(quinn::Incoming, Preauth)> {
        let pending = self.unauthenticated.load(Ordering::Relaxed);
        let verdict = self
            .admission
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .decide(pending, incoming.remote_address_validated(), Instant::now());
        match verdict {
            Admit::Accept => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
                self.unauthenticated.fetch_add(1, Ordering::Relaxed);
                let guard = Preauth(Some(Arc::clone(self)));
                Some((incoming, guard))
            }
            Admit::Retry if incoming.may_retry() => {
                self.retried.fetch_add(1, Ordering::Relaxed);
                if let Err(error) = incoming.retry() {
                    error.into_incoming().refuse();
                }
                None
            }
            Admit::Retry | Admit::Refuse => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                incoming.refuse();
                None
            }
        }
    }

    fn log_refusal(&self, error: &ServeError, kind: &str) {
        let allowed = self
            .refusal_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .allow(Instant::now());
        if let Some(suppressed) = allowed {
            tracing::warn!(%error, kind, suppressed, "edge refused");
        }
    }

    fn counts(&self) -> AdmissionCounts {
        AdmissionCounts {
            accepted: self.accepted.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            unauthenticated: self.unauthenticated.load(Ordering::Relaxed),
        }
    }
}

/// A connection counted as unauthenticated until its Hello is judged (or it ends).
struct Preauth(Option<Arc<Gate>>);

impl Preauth {
    fn judged(mut self) {
        self.release();
    }

    fn release(&mut self) {
        if let Some(gate) = self.0.take() {
            gate.unauthenticated.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Preauth {
    fn drop(&mut self) {
        self.release();
    }
}

impl QuicServer {
    /// Binds `config.listen` and starts accepting edges in a background task.
    pub fn bind(
        config: QuicConfig,
        identity: tls::Identity,
        handler: Arc<Handler>,
    ) -> Result<Self, QuicError> {
        let fingerprint = identity.fingerprint();
        // Stable across restarts: edges learn at once that their old connection is gone.
        let endpoint_config = reset::endpoint_config(identity.key.secret_der());
        let server_config = tls::quic_server_config(identity, preauth_transport_config(&config))?;
        let bind_error = |source| QuicError::Bind {
            addr: config.listen,
            source,
        };
        let (socket, socket_buffers) =
            bind_socket(config.listen, config.socket_buffer_bytes).map_err(bind_error)?;
        let endpoint = Endpoint::new(
            endpoint_config,
            Some(server_config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(bind_error)?;
        let local_addr = endpoint.local_addr().map_err(bind_error)?;
        let drain = Drain::new();
        let gate = Arc::new(Gate::new(config.admission));
        let accept = tokio::spawn(
            accept_loop(
                endpoint.clone(),
                handler,
                Arc::new(config),
                Arc::clone(&drain),
                Arc::clone(&gate),
            )
            .instrument(tracing::info_span!("quic", %local_addr)),
        );
        Ok(Self {
            endpoint,
            local_addr,
            fingerprint,
            socket_buffers,
            accept,
            drain,
            gate,
        })
    }

    /// What anonymous peers have cost so far.
    pub fn admission_counts(&self) -> AdmissionCounts {
        self.gate.counts()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// SHA-256 of the certificate, as edges pin it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// (SO_RCVBUF, SO_SNDBUF) the kernel granted.
    pub fn socket_buffers(&self) -> (usize, usize) {
        self.socket_buffers
    }

    /// Request streams being answered right now.
    pub fn streams_in_flight(&self) -> usize {
        self.drain.streams_in_flight()
    }

    /// Drains, then closes: new connections are refused and no new stream is accepted,
    /// streams in progress get up to `grace` to deliver their replies, then every
    /// connection is closed and the close given the rest of `grace` to reach the edges.
    pub async fn shutdown(self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        self.drain.start();
        let in_flight = self.drain.streams_in_flight();
        if in_flight > 0 {
            tracing::info!(in_flight, ?grace, "draining QUIC streams");
        }
        if tokio::time::timeout_at(deadline, self.drain.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.drain.streams_in_flight(),
                "QUIC streams still running after {grace:?}; closing anyway"
            );
        }
        self.endpoint.close(
            VarInt::from_u32(close_code::SHUTDOWN),
            b"core shutting down",
        );
        // At least a moment for the CONNECTION_CLOSE even when draining used the grace up.
        let close_deadline = deadline.max(tokio::time::Instant::now() + Duration::from_millis(200));
        if tokio::time::timeout_at(close_deadline, self.endpoint.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!("QUIC connections did not close within {grace:?}");
        }
        self.accept.abort();
    }
}

/// A UDP socket with raised buffers: quinn's default socket (~208 KiB) overflows and drops
/// packets at a few hundred MiB/s. Returns the sizes the kernel actually granted. Public so
/// benchmarks can give a baseline endpoint the same socket.
pub fn bind_socket(
    addr: SocketAddr,
    buffer_bytes: usize,
) -> std::io::Result<(std::net::UdpSocket, (usize, usize))> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // Dual-stack where the platform allows; an IPv6-only socket still works.
        let _ = socket.set_only_v6(false);
    }
    // Best effort: a capped or refused size leaves a working (slower) socket.
    if let Err(error) = socket.set_recv_buffer_size(buffer_bytes) {
        tracing::warn!(%error, "cannot raise SO_RCVBUF");
    }
    if let Err(error) = socket.set_send_buffer_size(buffer_bytes) {
        tracing::warn!(%error, "cannot raise SO_SNDBUF");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let granted = (socket.recv_buffer_size()?, socket.send_buffer_size()?);
    if granted.0 < buffer_bytes || granted.1 < buffer_bytes {
        tracing::info!(
            asked = buffer_bytes,
            rcvbuf = granted.0,
            sndbuf = granted.1,
            "UDP buffers capped by the kernel (raise net.core.rmem_max / wmem_max)"
        );
    }
    Ok((socket.into(), granted))
}

async fn accept_loop(
    endpoint: Endpoint,
    handler: Arc<Handler>,
    config: Arc<QuicConfig>,
    drain: Arc<Drain>,
    gate: Arc<Gate>,
) {
    while let Some(incoming) = endpoint.accept().await {
        if drain.is_draining() {
            // Refused at once, so the edge moves on instead of waiting for a handshake.
            incoming.refuse();
            continue;
        }
        let Some((incoming, preauth)) = gate.admit(incoming) else {
            continue;
        };
        let remote = incoming.remote_address();
        let span = tracing::info_span!("edge", %remote, edge = tracing::field::Empty);
        tokio::spawn(
            serve_connection(
                incoming,
                preauth,
                Arc::clone(&handler),
                Arc::clone(&config),
                Arc::clone(&drain),
                Arc::clone(&gate),
            )
            .instrument(span),
        );
    }
    tracing::info!("QUIC endpoint closed");
}

async fn serve_connection(
    incoming: quinn::Incoming,
    preauth: Preauth,
    handler: Arc<Handler>,
    config: Arc<QuicConfig>,
    drain: Arc<Drain>,
    gate: Arc<Gate>,
) {
    // One deadline for the handshake and the Hello: an anonymous peer holds its place
    // among the unauthenticated no longer than that.
    let deadline = tokio::time::Instant::now() + config.hello_timeout;
    let connection = match tokio::time::timeout_at(deadline, incoming).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => {
            tracing::debug!(%error, "handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!("handshake not finished before the hello deadline");
            return;
        }
    };
    let verdict = tokio::time::timeout_at(
        deadline,
        authenticate(&connection, &handler, &config, &gate),
    )
    .await;
    preauth.judged();
    let edge_id = match verdict {
        Ok(Some(edge_id)) => edge_id,
        Ok(None) => {
            connection.close(VarInt::from_u32(close_code::UNAUTHORIZED), b"unauthorized");
            return;
        }
        Err(_) => {
            tracing::info!("no hello before the deadline");
            connection.close(
                VarInt::from_u32(close_code::HELLO_TIMEOUT),
                b"hello timeout",
            );
            return;
        }
    };
    tracing::Span::current().record("edge", edge_id.as_str());
    tracing::info!("edge connected");
    // Subscribed before the list is read, so a change made meanwhile is in the list, in
    // the changes pushed after it, or both (each push is idempotent at the edge).
    let changes = handler.revocations().subscribe();
    tokio::spawn(
        push_revocations(
            connection.clone(),
            Arc::clone(handler.revocations()),
            changes,
            config.write_timeout,
        )
        .instrument(tracing::debug_span!("pushes")),
    );
    let edge_id: Arc<str> = Arc::from(edge_id);
    loop {
        // Streams already accepted keep the connection open until they are answered.
        let accepted = tokio::select! {
            accepted = connection.accept_bi() => accepted,
            () = drain.started() => return,
        };
        let (send, recv) = match accepted {
            Ok(streams) => streams,
            Err(error) => {
                log_connection_end(&error);
                return;
            }
        };
        let guard = drain.stream();
        let stream = tracing::debug_span!("stream", id = %send.id());
        tokio::spawn(
            serve_stream(
                send,
                recv,
                Arc::clone(&handler),
                Arc::clone(&edge_id),
                Arc::clone(&config),
                guard,
            )
            .instrument(stream),
        );
    }
}

/// Sends this core's revocation list to one edge, then every change, one unidirectional
/// stream each, until the connection ends. A pusher that fell behind the announcements
/// sends the whole list again (after `ForgetAll`, which drops the edge's cached metas).
async fn push_revocations(
    connection: Connection,
    revocations: Arc<crate::revoke::Revocations>,
    mut changes: tokio::sync::broadcast::Receiver<crate::revoke::Change>,
    write_timeout: Duration,
) {
    use tokio::sync::broadcast::error::RecvError;
    let mut pending = list_pushes(&revocations);
    loop {
        for push in pending.drain(..) {
            match tokio::time::timeout(write_timeout, send_push(&connection, &push)).await {
                Ok(Ok(())) => tracing::debug!(kind = push.kind(), "pushed"),
                Ok(Err(error)) => {
                    tracing::debug!(%error, "push not delivered");
                    if connection.close_reason().is_some() {
                        return;
                    }
                }
                Err(_) => tracing::warn!(kind = push.kind(), "push timed out"),
            }
        }
        tokio::select! {
            received = changes.recv() => match received {
                Ok(change) => pending.push(change.push()),
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "revocations fell behind; sending the edge the whole list");
                    pending.push(wire::Push::ForgetAll);
                    pending.extend(list_pushes(&revocations));
                }
                Err(RecvError::Closed) => return,
            },
            _ = connection.closed() => return,
        }
    }
}

/// The revocation list as pushes of bounded parts, the last one marked (an empty list is
/// one empty last part: the edge learns this core revoked nothing). A list the store cannot
/// read is not sent: the edge keeps what it last heard from this core.
fn list_pushes(revocations: &crate::revoke::Revocations) -> Vec<wire::Push> {
    match revocations.files() {
        Ok(files) => revocation_list(&files),
        Err(error) => {
            tracing::error!(%error, "cannot read the revocations to send the edge");
            Vec::new()
        }
    }
}

/// `files` as [`wire::Push::RevokedList`] parts of at most
/// [`wire::limits::MAX_REVOKED_PER_PUSH`] files, the last one marked.
fn revocation_list(files: &[tgcdn_shared::FileRef]) -> Vec<wire::Push> {
    let parts: Vec<&[tgcdn_shared::FileRef]> = if files.is_empty() {
        vec![&[]]
    } else {
        files.chunks(wire::limits::MAX_REVOKED_PER_PUSH).collect()
    };
    let count = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(index, part)| wire::Push::RevokedList {
            files: part.to_vec(),
            last: index + 1 == count,
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
enum PushError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Connection(#[from] quinn::ConnectionError),
    #[error(transparent)]
    Write(#[from] quinn::WriteError),
}

async fn send_push(connection: &Connection, push: &wire::Push) -> Result<(), PushError> {
    let mut frame = Vec::with_capacity(16);
    wire::encode_push(push, &mut frame)?;
    let mut send = connection.open_uni().await?;
    send.write_all(&frame).await?;
    // Finishing only fails on a stream the edge already stopped.
    let _ = send.finish();
    Ok(())
}

fn log_connection_end(error: &quinn::ConnectionError) {
    use quinn::ConnectionError::*;
    match error {
        ApplicationClosed(_) | LocallyClosed => tracing::info!("edge disconnected"),
        TimedOut => tracing::info!("edge connection timed out"),
        other => tracing::warn!(error = %other, "edge connection lost"),
    }
}

/// Reads the first stream's request and lets the handler judge it. Answers on the stream
/// either way; `None` means the connection must be closed.
async fn authenticate(
    connection: &Connection,
    handler: &Handler,
    config: &QuicConfig,
    gate: &Gate,
) -> Option<String> {
    let (mut send, mut recv) = match connection.accept_bi().await {
        Ok(streams) => streams,
        Err(error) => {
            tracing::debug!(%error, "connection ended before hello");
            return None;
        }
    };
    let request = match read_request(&mut recv).await {
        Ok(request) => request,
        Err(ReadRequestError::Frame(error)) => {
            tracing::info!(%error, "malformed first request");
            answer_refusal(&mut send, &ServeError::NotAuthenticated).await;
            return None;
        }
        Err(ReadRequestError::Stream(error)) => {
            tracing::debug!(%error, "hello stream failed");
            return None;
        }
    };
    let mut binding = [0u8; EXPORTER_LEN];
    let verdict = connection
        .export_keying_material(&mut binding, EXPORTER_LABEL, EXPORTER_CONTEXT)
        .map_err(|_| ServeError::NoChannelBinding)
        .and_then(|()| handler.hello(&request, &binding));
    match verdict {
        Ok((edge_id, welcome)) => {
            // Before the Welcome, so the new stream credit travels with or ahead of it.
            raise_limits(connection, config);
            let written = tokio::time::timeout(
                config.write_timeout,
                write_reply(&mut send, Ok(Reply::Frame(Response::Welcome(welcome)))),
            )
            .await;
            matches!(written, Ok(Ok(_))).then_some(edge_id)
        }
        Err(error) => {
            gate.log_refusal(&error, request.kind());
            answer_refusal(&mut send, &error).await;
            None
        }
    }
}

/// Writes the refusal and waits (briefly) until the edge has it, since closing the
/// connection right away would discard it.
async fn answer_refusal(send: &mut SendStream, error: &ServeError) {
    let bounded = async {
        let _ = write_error(send, wire_error(error)).await;
        let _ = send.stopped().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), bounded).await;
}

async fn serve_stream(
    mut send: SendStream,
    mut recv: RecvStream,
    handler: Arc<Handler>,
    edge_id: Arc<str>,
    config: Arc<QuicConfig>,
    // Held until the reply is acknowledged, so a draining server waits for it.
    _guard: drain::StreamGuard,
) {
    let started = Instant::now();
    let (kind, reply) =
        match tokio::time::timeout(config.request_timeout, read_request(&mut recv)).await {
            Ok(Ok(request)) => {
                let kind = request.kind();
                // An edge that gives up on a request (its fill was cancelled, its viewer left)
                // stops the stream; dropping the work with it withdraws this stream's claim on
                // the chunk, and the download stops if nobody else waits for it.
                tokio::select! {
                    reply = handler.serve(&edge_id, request) => (kind, reply),
                    stopped = send.stopped() => {
                        tracing::debug!(kind, ?stopped, "edge abandoned the request");
                        return;
                    }
                }
            }
            Ok(Err(ReadRequestError::Frame(error))) => {
                // Nothing more on this stream is worth reading.
                let _ = recv.stop(VarInt::from_u32(STREAM_ABANDONED));
                ("malformed", Err(ServeError::Malformed(error)))
            }
            Ok(Err(ReadRequestError::Stream(error))) => {
                tracing::debug!(%error, "request stream failed");
                return;
            }
            Err(_) => {
                tracing::debug!("no request before the deadline");
                let _ = send.reset(VarInt::from_u32(STREAM_ABANDONED));
                let _ = recv.stop(VarInt::from_u32(STREAM_ABANDONED));
                return;
            }
        };
    let reply = match reply {
        Ok(Reply::MetaChunk(meta, request)) => {
            match send_meta_first(&mut send, &handler, meta, request, &config).await {
                Some(chunk) => chunk.map(Reply::Chunk),
                None => return,
            }
        }
        other => other,
    };
    if let Err(error) = &reply {
        tracing::debug!(kind, %error, "request failed");
    }
    match tokio::time::timeout(config.write_timeout, write_reply(&mut send, reply)).await {
        Ok(Ok(bytes)) => {
            // Written is not delivered: wait (bounded) for the edge's acknowledgement, so
            // the stream counts as in flight until then and a shutdown cannot cut it.
            let _ = tokio::time::timeout(config.write_timeout, send.stopped()).await;
            tracing::trace!(kind, bytes, elapsed = ?started.elapsed(), "served");
        }
        Ok(Err(error)) => tracing::debug!(kind, %error, "reply not delivered"),
        Err(_) => {
            tracing::debug!(kind, "reply write timed out");
            let _ = send.reset(VarInt::from_u32(STREAM_ABANDONED));
        }
    }
}

/// The first half of a `MetaChunk` answer: the `Meta` frame goes out at once, so the edge
/// plans its response (and other requests for the file proceed) while the chunk downloads;
/// then the chunk, which the caller writes as a `Chunk` reply. `None` when the stream is
/// gone (the edge stopped it, or the write failed): nothing more to write.
async fn send_meta_first(
    send: &mut SendStream,
    handler: &Handler,
    meta: wire::FileMeta,
    request: wire::ChunkRequest,
    config: &QuicConfig,
) -> Option<Result<Bytes, ServeError>> {
    let mut frame = Vec::with_capacity(256);
    if let Err(error) = wire::encode_response(&Response::Meta(meta), &mut frame) {
        tracing::error!(%error, "cannot encode a meta response");
        let _ = write_error(send, WireError::Internal).await;
        return None;
    }
    match tokio::time::timeout(config.write_timeout, send.write_all(&frame)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::debug!(%error, "meta of a meta_chunk not delivered");
            return None;
        }
        Err(_) => {
            let _ = send.reset(VarInt::from_u32(STREAM_ABANDONED));
            return None;
        }
    }
    tokio::select! {
        chunk = handler::within(CORE_REQUEST_DEADLINE, handler.chunk(request)) => Some(chunk),
        stopped = send.stopped() => {
            tracing::debug!(?stopped, "edge abandoned the chunk of a meta_chunk");
            None
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ReadRequestError {
    /// The bytes are not one valid request frame: answerable.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The stream itself failed (reset, connection lost): nobody to answer.
    #[error(transparent)]
    Stream(quinn::ReadError),
}

/// Reads exactly one request frame: the 4-byte prefix, then the body it announces (checked
/// against the frame limit before anything is allocated).
async fn read_request(recv: &mut RecvStream) -> Result<Request, ReadRequestError> {
    let mut prefix = [0u8; LEN_PREFIX];
    read_exact(recv, &mut prefix).await?;
    // `frame_len` has four bytes, so it is never `None` here.
    let total = wire::frame_len(&prefix)?.ok_or(FrameError::Truncated)?;
    let mut frame = vec![0u8; total];
    frame[..LEN_PREFIX].copy_from_slice(&prefix);
    read_exact(recv, &mut frame[LEN_PREFIX..]).await?;
    match wire::decode_request(&frame)? {
        Some((request, consumed)) if consumed == total => Ok(request),
        Some((_, consumed)) => Err(FrameError::TrailingBytes {
            extra: total - consumed,
        }
        .into()),
        None => Err(FrameError::Truncated.into()),
    }
}

async fn read_exact(recv: &mut RecvStream, buf: &mut [u8]) -> Result<(), ReadRequestError> {
    match recv.read_exact(buf).await {
        Ok(()) => Ok(()),
        Err(quinn::ReadExactError::FinishedEarly(_)) => Err(FrameError::Truncated.into()),
        Err(quinn::ReadExactError::ReadError(error)) => Err(ReadRequestError::Stream(error)),
    }
}

/// Writes the reply (header frame, then chunk or addon bytes untouched) and finishes the
/// stream.
/// Returns the bytes written.
async fn write_reply(
    send: &mut SendStream,
    reply: Result<Reply, ServeError>,
) -> Result<usize, quinn::WriteError> {
    let (response, payload) = match reply {
        Ok(Reply::Frame(response)) => (response, None),
        Ok(Reply::Chunk(bytes)) => match chunk_header(&bytes) {
            Ok(header) => (header, Some(bytes)),
            Err(error) => (Response::Error(wire_error(&error)), None),
        },
        Ok(Reply::Addon(header, json)) => (Response::Addon(header), Some(json)),
        // `serve_stream` writes these in two steps; answered here only by mistake.
        Ok(Reply::MetaChunk(..)) => (Response::Error(WireError::Internal), None),
        Err(error) => (Response::Error(wire_error(&error)), None),
    };
    let mut frame = Vec::with_capacity(64);
    if let Err(error) = wire::encode_response(&response, &mut frame) {
        tracing::error!(%error, kind = response.kind(), "cannot encode a response");
        return write_error(send, WireError::Internal).await;
    }
    let written = frame.len() + payload.as_ref().map_or(0, Bytes::len);
    let mut chunks = [Bytes::from(frame), payload.unwrap_or_default()];
    send.write_all_chunks(&mut chunks).await?;
    // Finishing an already reset stream only means the edge went away.
    let _ = send.finish();
    Ok(written)
}

async fn write_error(send: &mut SendStream, error: WireError) -> Result<usize, quinn::WriteError> {
    let mut frame = Vec::with_capacity(32);
    // Only a `BadRequest` has a field with a limit, and `WireError::bad_request` keeps it.
    if wire::encode_response(&Response::Error(error), &mut frame).is_err() {
        frame.clear();
        let _ = wire::encode_response(&Response::Error(WireError::Internal), &mut frame);
    }
    send.write_all(&frame).await?;
    let _ = send.finish();
    Ok(frame.len())
}

#[cfg(test)]
mod tests {
    use tgcdn_shared::FileRef;
    use tgcdn_shared::wire::{Push, limits::MAX_REVOKED_PER_PUSH};

    use super::revocation_list;

    #[test]
    fn a_revocation_list_goes_out_in_bounded_parts_the_last_marked() {
        let empty = revocation_list(&[]);
        assert_eq!(
            empty,
            vec![Push::RevokedList {
                files: Vec::new(),
                last: true
            }]
        );
        let files: Vec<FileRef> = (0..=MAX_REVOKED_PER_PUSH as i32 * 2)
            .map(|msg_id| FileRef {
                chat_id: -100,
                msg_id,
            })
            .collect();
        let parts = revocation_list(&files);
        assert_eq!(parts.len(), 3);
        let mut sent = Vec::new();
        for (index, part) in parts.into_iter().enumerate() {
            let Push::RevokedList { files, last } = part else {
                panic!("not a list part");
            };
            assert!(files.len() <= MAX_REVOKED_PER_PUSH);
            assert_eq!(last, index == 2);
            sent.extend(files);
        }
        assert_eq!(sent, files);
    }
}
