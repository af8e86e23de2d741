//! The connection driver: one accept loop per emulated DC, and per connection a reader
//! (frames → decrypt → session layer → API) and a single writer task that owns the
//! socket's write half, so answers produced by delayed per-request tasks are serialised.
//!
//! Faults applied here: latency (each delayed request answers from its own task, so one
//! slow answer never holds back the others), the bandwidth pacer, and the byte-count drop.
//! A client's bad input closes that connection only; the accept loop never stops for it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use grammers_tl_types::{self as tl, Identifiable};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tracing::{Instrument, debug, info_span, warn};

use crate::api::{self, Answer, Ctx};
use crate::content;
use crate::counters::Counters;
use crate::crypto::{self, ServerKey};
use crate::faults::{Faults, Pacer};
use crate::session::{self, MsgIdGen, MsgKind, SaltSchedule, SeqNo};
use crate::transport::{self, Decoder, Encoder, Mode};
use crate::world::World;

/// State shared by every DC and connection of one emulator.
pub(crate) struct Shared {
    pub world: World,
    pub faults: Faults,
    /// The clock `world` and `faults` age things by; tests move it forward.
    pub clock: crate::clock::Clock,
    pub counters: Counters,
    pub tracer: crate::trace::Tracer,
    pub keys: RwLock<HashMap<u64, ServerKey>>,
    pub dc_options: RwLock<Vec<(i32, SocketAddr)>>,
    pub salts: SaltSchedule,
    pub grammers_safe: bool,
    pub next_conn: AtomicU64,
}

impl Shared {
    fn key(&self, id: u64) -> Option<ServerKey> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    fn dc_options(&self) -> Vec<(i32, SocketAddr)> {
        self.dc_options
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Accepts connections for one DC until `shutdown` flips.
pub(crate) async fn serve_dc(
    listener: TcpListener,
    dc: i32,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let conn_id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
                shared
                    .counters
                    .update(|c| *c.connections_by_dc.entry(dc).or_default() += 1);
                let span = info_span!("tgemu_conn", dc, conn_id, %peer);
                let conn = Connection::new(dc, conn_id, shared.clone());
                let shutdown = shutdown.clone();
                tokio::spawn(conn.run(stream, shutdown).instrument(span));
            }
            Err(e) => {
                warn!(dc, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// What the writer sends: a bare message, or an answer inside `rpc_result`.
pub(crate) enum OutBody {
    Raw(Vec<u8>),
    RpcResult { req_msg_id: i64, answer: Answer },
}

pub(crate) struct Outbound {
    session_id: i64,
    kind: MsgKind,
    content_related: bool,
    body: OutBody,
}

/// Per-connection facts shared by the reader, the writer and delayed request tasks.
struct ConnState {
    dc: i32,
    conn_id: u64,
    /// The account the connection's key is signed in as on this DC (0 = none yet).
    user: AtomicI64,
    subscribed: AtomicBool,
}

impl ConnState {
    fn user(&self) -> Option<i64> {
        Some(self.user.load(Ordering::Relaxed)).filter(|&u| u != 0)
    }
}

struct Connection {
    shared: Arc<Shared>,
    state: Arc<ConnState>,
}

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("transport: {0}")]
    Transport(#[from] transport::TransportError),
    #[error("crypto: {0}")]
    Crypto(#[from] crypto::CryptoError),
    #[error("session: {0}")]
    Session(#[from] session::SessionError),
    #[error("unencrypted message: the emulator provisions keys and cannot run DH")]
    Unencrypted,
    #[error("closed by the server")]
    Closed,
}

impl Connection {
    fn new(dc: i32, conn_id: u64, shared: Arc<Shared>) -> Self {
        let state = Arc::new(ConnState {
            dc,
            conn_id,
            user: AtomicI64::new(0),
            subscribed: AtomicBool::new(false),
        });
        Self { shared, state }
    }

    async fn run(self, stream: TcpStream, shutdown: watch::Receiver<bool>) {
        // Small writes (acks, pongs) must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let result = self.read_loop(rd, wr, shutdown).await;
        if let Some(user) = self.state.user() {
            self.shared.world.unsubscribe(user, self.state.conn_id);
        }
        match result {
            Ok(()) | Err(ConnError::Closed) => debug!("connection closed"),
            Err(e) => debug!(error = %e, "connection dropped"),
        }
    }

    async fn read_loop(
        &self,
        mut rd: OwnedReadHalf,
        wr: OwnedWriteHalf,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), ConnError> {
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut chunk = vec![0u8; 64 * 1024];
        // Detect the transport from the first bytes (abridged announces itself in one).
        while buf.len() < 4 && buf.first() != Some(&0xef) {
            let n = tokio::select! {
                n = rd.read(&mut chunk) => n?,
                _ = shutdown.changed() => return Ok(()),
            };
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let mut first = [0u8; 4];
        let have = buf.len().min(4);
        first[..have].copy_from_slice(&buf[..have]);
        let (mode, tag) = Mode::detect(first)?;
        buf.drain(..tag);

        let (out_tx, out_rx) = mpsc::unbounded_channel::<Outbound>();
        let (push_tx, push_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let (closed_tx, closed_rx) = watch::channel(false);
        let mut reader = Reader {
            decoder: Decoder::new(mode),
            session: ReaderSession {
                key: None,
                session_id: None,
                push_tx,
            },
            out: out_tx,
            closed: closed_rx,
            writer: None,
            unstarted: Some((wr, out_rx, push_rx, closed_tx)),
            mode,
        };
        let outcome = self
            .frames(&mut reader, &mut rd, buf, chunk, &mut shutdown)
            .await;
        // On a clean EOF the writer drains what delayed requests still owe the client;
        // on bad input or shutdown the connection goes now.
        if (outcome.is_err() || *shutdown.borrow())
            && let Some(writer) = reader.writer.take()
        {
            writer.abort();
        }
        outcome
    }

    /// Reads and handles frames until EOF, bad input, shutdown or a writer-side close.
    async fn frames(
        &self,
        reader: &mut Reader,
        rd: &mut OwnedReadHalf,
        mut buf: Vec<u8>,
        mut chunk: Vec<u8>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), ConnError> {
        loop {
            while let Some(frame) = reader.decoder.decode(&buf)? {
                let payload = &mut buf[frame.payload.clone()];
                self.handle_frame(payload, &mut reader.session, &reader.out)?;
                reader.start_writer_once(self);
                buf.drain(..frame.consumed);
            }
            let n = tokio::select! {
                n = rd.read(&mut chunk) => n?,
                _ = shutdown.changed() => return Ok(()),
                _ = reader.closed.changed() => return Err(ConnError::Closed),
            };
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn handle_frame(
        &self,
        frame: &mut [u8],
        session: &mut ReaderSession,
        out: &mpsc::UnboundedSender<Outbound>,
    ) -> Result<(), ConnError> {
        let key_id = crypto::frame_key_id(frame).unwrap_or(0);
        if key_id == 0 {
            return Err(ConnError::Unencrypted);
        }
        let key = match &session.key {
            Some(k) if k.id == key_id => k.clone(),
            Some(_) => return Err(crypto::CryptoError::UnknownAuthKey(key_id).into()),
            None => {
                let k = self
                    .shared
                    .key(key_id)
                    .ok_or(crypto::CryptoError::UnknownAuthKey(key_id))?;
                session.key = Some(k.clone());
                k
            }
        };
        let plain = crypto::decrypt_from_client(&key, frame)?;
        let env = session::parse_plaintext(plain)?;
        let now = since_epoch();
        let send = |body: Vec<u8>, kind: MsgKind, content_related: bool| {
            let _ = out.send(Outbound {
                session_id: env.session_id,
                kind,
                content_related,
                body: OutBody::Raw(body),
            });
        };
        if session.session_id != Some(env.session_id) {
            session.session_id = Some(env.session_id);
            let unique_id = rand::thread_rng().r#gen::<i64>();
            send(
                session::new_session_created(
                    env.outer_msg_id,
                    unique_id,
                    self.shared.salts.current(now),
                ),
                MsgKind::ServerInitiated,
                true,
            );
        }
        if !self.shared.salts.is_valid(env.salt, now) {
            self.shared.counters.update(|c| c.bad_server_salts += 1);
            send(
                session::bad_server_salt(
                    env.outer_msg_id,
                    env.outer_seq_no,
                    self.shared.salts.current(now),
                ),
                MsgKind::Response,
                false,
            );
            return Ok(());
        }
        for msg in env.messages {
            if msg.gzipped {
                self.shared.counters.update(|c| c.gzipped_requests += 1);
            }
            match msg.constructor() {
                session::MSGS_ACK => {}
                session::PING | session::PING_DELAY_DISCONNECT => {
                    let ping_id = session::ping_id(&msg.body).unwrap_or(0);
                    send(session::pong(msg.msg_id, ping_id), MsgKind::Response, false);
                }
                session::GET_FUTURE_SALTS => {
                    let num = session::future_salts_num(&msg.body).unwrap_or(2);
                    send(
                        self.shared.salts.future_salts(msg.msg_id, num, now),
                        MsgKind::Response,
                        true,
                    );
                }
                session::DESTROY_SESSION => {
                    let mut body = tl::types::DestroySessionNone::CONSTRUCTOR_ID
                        .to_le_bytes()
                        .to_vec();
                    body.extend_from_slice(msg.body.get(4..12).unwrap_or(&[0; 8]));
                    let answer = Answer::Bytes(body);
                    let _ = out.send(Outbound {
                        session_id: env.session_id,
                        kind: MsgKind::Response,
                        content_related: true,
                        body: OutBody::RpcResult {
                            req_msg_id: msg.msg_id,
                            answer,
                        },
                    });
                }
                _ => self.request(
                    key.id,
                    env.session_id,
                    msg.msg_id,
                    msg.body,
                    &session.push_tx,
                    out,
                ),
            }
        }
        Ok(())
    }

    /// Answers one API request now, or from its own task after the injected latency.
    fn request(
        &self,
        key_id: u64,
        session_id: i64,
        req_msg_id: i64,
        body: Vec<u8>,
        push_tx: &mpsc::UnboundedSender<Vec<u8>>,
        out: &mpsc::UnboundedSender<Outbound>,
    ) {
        if self.shared.tracer.is_on() {
            let method = api::traced_method(&body);
            let (dc, conn_id) = (self.state.dc, self.state.conn_id);
            self.shared.tracer.received(dc, conn_id, req_msg_id, method);
        }
        let latency = self.shared.faults.latency(self.state.dc, self.state.user());
        let job = RequestJob {
            shared: self.shared.clone(),
            state: self.state.clone(),
            push_tx: push_tx.clone(),
            out: out.clone(),
            key_id,
            session_id,
            req_msg_id,
            body,
        };
        match latency {
            None => job.run(),
            Some(latency) => {
                let delay = latency.sample(rand::thread_rng().r#gen::<f64>());
                tokio::spawn(
                    async move {
                        tokio::time::sleep(delay).await;
                        job.run();
                    }
                    .in_current_span(),
                );
            }
        }
    }
}

type UnstartedWriter = (
    OwnedWriteHalf,
    mpsc::UnboundedReceiver<Outbound>,
    mpsc::UnboundedReceiver<Vec<u8>>,
    watch::Sender<bool>,
);

/// The reading side of one connection.
struct Reader {
    decoder: Decoder,
    session: ReaderSession,
    out: mpsc::UnboundedSender<Outbound>,
    /// Flips when the writer gives up (write error, injected drop).
    closed: watch::Receiver<bool>,
    writer: Option<tokio::task::JoinHandle<()>>,
    /// The writer needs the auth key, known only after the first frame.
    unstarted: Option<UnstartedWriter>,
    mode: Mode,
}

impl Reader {
    fn start_writer_once(&mut self, conn: &Connection) {
        let Some(key) = self.session.key.clone() else {
            return;
        };
        let Some((wr, out_rx, push_rx, closed_tx)) = self.unstarted.take() else {
            return;
        };
        let writer = Writer::new(self.mode, key, conn.shared.clone(), conn.state.clone());
        self.writer = Some(tokio::spawn(
            writer.run(wr, out_rx, push_rx, closed_tx).in_current_span(),
        ));
    }
}

struct ReaderSession {
    key: Option<ServerKey>,
    session_id: Option<i64>,
    push_tx: mpsc::UnboundedSender<Vec<u8>>,
}

struct RequestJob {
    shared: Arc<Shared>,
    state: Arc<ConnState>,
    push_tx: mpsc::UnboundedSender<Vec<u8>>,
    out: mpsc::UnboundedSender<Outbound>,
    key_id: u64,
    session_id: i64,
    req_msg_id: i64,
    body: Vec<u8>,
}

impl RequestJob {
    fn run(self) {
        let dc_options = self.shared.dc_options();
        let ctx = Ctx {
            dc: self.state.dc,
            key_id: self.key_id,
            world: &self.shared.world,
            faults: &self.shared.faults,
            counters: &self.shared.counters,
            dc_options: &dc_options,
            grammers_safe: self.shared.grammers_safe,
        };
        let answer = api::dispatch(&ctx, &self.body, rand::thread_rng().r#gen::<f64>());
        if let Some(user) = ctx.user() {
            self.state.user.store(user, Ordering::Relaxed);
            if !self.state.subscribed.swap(true, Ordering::Relaxed) {
                self.shared.world.subscribe(
                    user,
                    self.state.conn_id,
                    self.state.dc,
                    self.push_tx.clone(),
                );
            }
        }
        let _ = self.out.send(Outbound {
            session_id: self.session_id,
            kind: MsgKind::Response,
            content_related: true,
            body: OutBody::RpcResult {
                req_msg_id: self.req_msg_id,
                answer,
            },
        });
    }
}

/// Owns the write half: serialises, encrypts in one reused buffer, paces and writes.
struct Writer {
    encoder: Encoder,
    key: ServerKey,
    shared: Arc<Shared>,
    state: Arc<ConnState>,
    msg_ids: MsgIdGen,
    seq: SeqNo,
    buf: Vec<u8>,
    pacer: Option<Pacer>,
    origin: Instant,
    session_id: i64,
}

impl Writer {
    fn new(mode: Mode, key: ServerKey, shared: Arc<Shared>, state: Arc<ConnState>) -> Self {
        Self {
            encoder: Encoder::new(mode),
            key,
            shared,
            state,
            msg_ids: MsgIdGen::default(),
            seq: SeqNo::default(),
            buf: Vec::with_capacity(600 * 1024),
            pacer: None,
            origin: Instant::now(),
            session_id: 0,
        }
    }

    async fn run(
        mut self,
        mut wr: OwnedWriteHalf,
        mut out_rx: mpsc::UnboundedReceiver<Outbound>,
        mut push_rx: mpsc::UnboundedReceiver<Vec<u8>>,
        closed_tx: watch::Sender<bool>,
    ) {
        loop {
            let item = tokio::select! {
                biased;
                o = out_rx.recv() => match o {
                    Some(o) => o,
                    None => break,
                },
                Some(update) = push_rx.recv() => Outbound {
                    session_id: self.session_id,
                    kind: MsgKind::ServerInitiated,
                    content_related: true,
                    body: OutBody::Raw(update),
                },
            };
            self.session_id = item.session_id;
            if let Err(e) = self.send(&mut wr, item).await {
                debug!(error = %e, "writer stopped");
                break;
            }
        }
        let _ = wr.shutdown().await;
        let _ = closed_tx.send(true);
    }

    async fn send(&mut self, wr: &mut OwnedWriteHalf, item: Outbound) -> Result<(), ConnError> {
        let now = since_epoch();
        let answers = match &item.body {
            OutBody::RpcResult { req_msg_id, .. } => Some(*req_msg_id),
            OutBody::Raw(_) => None,
        };
        self.buf.clear();
        self.buf.resize(transport::MAX_HEADER + 24, 0);
        let msg_id = self.msg_ids.next(now, item.kind);
        let seq_no = self.seq.next(item.content_related);
        self.buf
            .extend_from_slice(&self.shared.salts.current(now).to_le_bytes());
        self.buf.extend_from_slice(&item.session_id.to_le_bytes());
        self.buf.extend_from_slice(&msg_id.to_le_bytes());
        self.buf.extend_from_slice(&seq_no.to_le_bytes());
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        let body_start = self.buf.len();
        self.write_body(item.body);
        let body_len = (self.buf.len() - body_start) as u32;
        self.buf[len_at..len_at + 4].copy_from_slice(&body_len.to_le_bytes());
        crypto::encrypt_for_client(
            &self.key,
            &mut self.buf,
            transport::MAX_HEADER,
            msg_id as u64,
        );
        let start = self.encoder.finish(&mut self.buf);
        let packet_len = self.buf.len() - start;

        let (dc, user) = (self.state.dc, self.state.user());
        self.shared.counters.bytes(dc, user, packet_len);
        if let Some(rate) = self.shared.faults.bandwidth(dc, user) {
            let now = self.origin.elapsed();
            let pacer = self.pacer.get_or_insert_with(|| Pacer::new(rate, now));
            if pacer.rate() != rate {
                *pacer = Pacer::new(rate, now);
            }
            let wait = pacer.take(packet_len, now);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        } else {
            self.pacer = None;
        }
        if let Some(allowed) = self.shared.faults.bytes_before_drop(dc, user, packet_len) {
            wr.write_all(&self.buf[start..start + allowed]).await?;
            return Err(ConnError::Closed);
        }
        wr.write_all(&self.buf[start..]).await?;
        if let Some(req_msg_id) = answers {
            self.shared.tracer.answered(self.state.conn_id, req_msg_id);
        }
        Ok(())
    }

    fn write_body(&mut self, body: OutBody) {
        match body {
            OutBody::Raw(bytes) => self.buf.extend_from_slice(&bytes),
            OutBody::RpcResult { req_msg_id, answer } => {
                self.buf
                    .extend_from_slice(&session::RPC_RESULT.to_le_bytes());
                self.buf.extend_from_slice(&req_msg_id.to_le_bytes());
                let mark = self.buf.len();
                match answer {
                    Answer::Bytes(bytes) => self.buf.extend_from_slice(&bytes),
                    Answer::Error { code, message } => {
                        self.buf
                            .extend_from_slice(&session::rpc_error(code, &message));
                    }
                    Answer::File(part) => {
                        if let Err(e) = self.write_file(&part) {
                            warn!(doc = part.doc_id, error = %e, "document read failed");
                            self.buf.truncate(mark);
                            self.buf
                                .extend_from_slice(&session::rpc_error(500, "INTERNAL"));
                        }
                    }
                }
            }
        }
    }

    /// `upload.file` serialised straight into the output buffer, content generated in place.
    fn write_file(&mut self, part: &api::FilePart) -> std::io::Result<()> {
        self.buf
            .extend_from_slice(&tl::types::upload::File::CONSTRUCTOR_ID.to_le_bytes());
        self.buf
            .extend_from_slice(&tl::types::storage::FilePartial::CONSTRUCTOR_ID.to_le_bytes());
        self.buf.extend_from_slice(&part.mtime.to_le_bytes());
        let pad = session::tl_bytes_header(&mut self.buf, part.len);
        let at = self.buf.len();
        self.buf.resize(at + part.len + pad, 0);
        content::read_into(
            &part.content,
            part.doc_id,
            part.offset,
            &mut self.buf[at..at + part.len],
        )
    }
}
