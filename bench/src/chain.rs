//! The whole miss path on loopback: the Telegram DC emulator (its own thread and runtime,
//! so its crypto does not queue behind the core's tasks), the core's download path and QUIC
//! server in this process, and edges — in process ([`Chain::start_edge`]) or the real
//! `tgcdn-edge` binary pointed at [`Chain::core_addr`].
//!
//! Built by the TTFB, cold-viewer and memory benches. Bots sign in with keys the emulator
//! provisioned (no DH handshake); every file is a pseudo-random emulator document posted to
//! one storage channel. Dropping the chain stops the emulator thread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use tgcdn_core::app::download_path;
use tgcdn_core::fetch::{FetchConfig, Fetcher};
use tgcdn_core::quic::handler::Handler;
use tgcdn_core::quic::{EdgeRegistry, QuicConfig, QuicServer, tls};
use tgcdn_core::resolve::{ResolveConfig, Resolver};
use tgcdn_core::store::Store;
use tgcdn_core::telegram::{BotClient, BotConfig, SledSession};
use tgcdn_edge::app::{EdgeOptions, build_state};
use tgcdn_edge::http::{AppState, serve};
use tgcdn_edge::readahead::WindowLimits;
use tgcdn_edge::upstream::quic::{QuicSettings, QuicUpstream};
use tgcdn_edge::upstream::{AddonReply, Upstream, UpstreamFuture};
use tgcdn_shared::FileRef;
use tgcdn_shared::token::{Keyring, LinkKey, TokenVerifier};
use tgcdn_shared::wire::{AddonRequest, ChunkClass, FileMeta};
use tgemu::{Content, CountersSnapshot, Emulator, Faults, Latency, Scope, World};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// A QUIC upstream without its `MetaChunk`: the trait's default, the meta alone, so the
/// body fetches the first chunk in a second exchange.
struct TwoExchanges(Arc<QuicUpstream>);

impl Upstream for TwoExchanges {
    fn meta(&self, file: FileRef) -> UpstreamFuture<'_, FileMeta> {
        self.0.meta(file)
    }

    fn chunk(&self, file: FileRef, index: u64) -> UpstreamFuture<'_, Bytes> {
        self.0.chunk(file, index)
    }

    fn chunk_as(&self, file: FileRef, index: u64, class: ChunkClass) -> UpstreamFuture<'_, Bytes> {
        self.0.chunk_as(file, index, class)
    }

    fn core_connections(&self) -> Option<u32> {
        self.0.core_connections()
    }

    fn addon(&self, request: AddonRequest) -> UpstreamFuture<'_, AddonReply> {
        self.0.addon(request)
    }

    fn ready(&self) -> bool {
        self.0.ready()
    }
}

/// Shared by core and edges (hex in the edge binary's environment).
pub const CLUSTER_SECRET: &[u8] = b"tgcdn bench cluster secret 0123";
/// The link key edges verify with (id 1).
pub const LINK_SECRET: &[u8] = b"tgcdn bench link secret 456789ab";
/// The emulated DC that holds every bench document (the bots' home is DC 2, so downloads
/// go through an exported/imported authorisation as they do on Telegram).
const MEDIA_DC: i32 = 4;

/// How the core side is set up.
#[derive(Debug, Clone, Copy)]
pub struct ChainConfig {
    pub bots: usize,
    pub connections_per_bot: usize,
    /// The core's second-tier chunk cache.
    pub core_cache_bytes: u64,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            bots: 2,
            connections_per_bot: 4,
            core_cache_bytes: FetchConfig::default().cache_bytes,
        }
    }
}

/// The running emulator → core → QUIC chain.
pub struct Chain {
    world: World,
    faults: Faults,
    channel_id: i64,
    channel_api_id: i64,
    server: Option<QuicServer>,
    fingerprint: String,
    keyring: Keyring,
    fetcher: Arc<Fetcher>,
    resolver: Arc<Resolver>,
    _bots: Vec<Arc<BotClient>>,
    emulator: mpsc::UnboundedSender<oneshot::Sender<EmulatorReport>>,
    /// Emulated DCs and their addresses, for sessions made outside the core.
    dcs: Vec<(i32, SocketAddr)>,
    /// Keys provisioned for [`Chain::bare_grammers`], one per bare bot.
    spare_keys: Vec<[u8; 256]>,
}

/// One bare grammers bot: a client per connection (each its own `SenderPool`, all on the
/// bot's one auth key, as the core's `BotClient` does), signed in and authorised on the
/// media DC, with the document location of the file it was made for.
pub struct BareBot {
    pub clients: Vec<grammers_client::Client>,
    pub location: grammers_client::tl::enums::InputFileLocation,
    runners: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for BareBot {
    fn drop(&mut self) {
        for runner in &self.runners {
            runner.abort();
        }
    }
}

/// The emulator's counters and the CPU time its thread used so far.
#[derive(Debug, Clone)]
pub struct EmulatorReport {
    pub counters: CountersSnapshot,
    pub cpu: Duration,
}

/// What the emulator thread hands back once it serves.
struct EmulatorSide {
    world: World,
    faults: Faults,
    dcs: Vec<(i32, SocketAddr)>,
    keys: Vec<[u8; 256]>,
}

impl Chain {
    /// Starts the emulator, signs `config.bots` bots in and starts the core's QUIC server.
    pub async fn start(config: ChainConfig) -> Result<Chain> {
        // Twice the keys: the second half for bare grammers bots beside the core's.
        let (side, emulator) = spawn_emulator(config.bots * 2).await?;
        let channel = side.world.create_channel("bench storage");
        let store = Store::temporary()?;
        let mut bots = Vec::new();
        for (index, key) in side.keys.iter().take(config.bots).enumerate() {
            let bot_id = 100_001 + index as i64;
            let token = format!("{bot_id}:bench-token-{index}");
            let bot = side
                .world
                .register_bot(&token, &format!("bench{index}_bot"));
            side.world
                .add_channel_member(channel.channel_id, bot.user_id, true);
            let session = Arc::new(SledSession::open(store.sessions_tree().clone(), bot_id)?);
            for (dc, addr) in &side.dcs {
                let SocketAddr::V4(v4) = addr else {
                    return Err(anyhow!("the emulator listens on IPv4 loopback"));
                };
                session.provision_dc(*dc, *v4, Some(*key)).await?;
            }
            let client = BotClient::with_session(
                session,
                &BotConfig {
                    token,
                    api_id: 1,
                    api_hash: "bench".into(),
                    connections: config.connections_per_bot,
                },
            );
            client
                .sign_in_if_needed(Instant::now() + Duration::from_secs(20))
                .await
                .with_context(|| format!("signing bot {index} in"))?;
            bots.push(Arc::new(client));
        }
        let path = download_path(
            store.clone(),
            &bots,
            ResolveConfig::default(),
            FetchConfig {
                cache_bytes: config.core_cache_bytes,
                ..FetchConfig::default()
            },
        );
        let fetcher = Arc::clone(&path.fetcher);
        let resolver = Arc::clone(&path.resolver);
        let handler = Handler::new(
            path.resolver,
            path.fetcher,
            EdgeRegistry::new(store.clone()),
            CLUSTER_SECRET.to_vec(),
            15,
        );
        let identity = tls::load_or_generate(&store, None).await?;
        let quic = QuicConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..QuicConfig::default()
        };
        let server = QuicServer::bind(quic, identity, handler)?;
        let fingerprint = server.fingerprint().to_owned();
        let keyring = Keyring::new(LinkKey::new(1, LINK_SECRET)?, Vec::new())?;
        Ok(Chain {
            world: side.world,
            faults: side.faults,
            channel_id: channel.channel_id,
            channel_api_id: channel.bot_api_id(),
            server: Some(server),
            fingerprint,
            keyring,
            fetcher,
            resolver,
            _bots: bots,
            emulator,
            dcs: side.dcs.clone(),
            spare_keys: side.keys[config.bots..].to_vec(),
        })
    }

    /// The core's chunk fetcher, to measure the core without QUIC in front of it.
    pub fn fetcher(&self) -> &Arc<Fetcher> {
        &self.fetcher
    }

    /// The emulator's counters and thread CPU time, for telling which stage limits.
    pub async fn emulator_report(&self) -> Result<EmulatorReport> {
        let (reply, report) = oneshot::channel();
        self.emulator
            .send(reply)
            .map_err(|_| anyhow!("the emulator thread ended"))?;
        Ok(report.await?)
    }

    /// The emulator's fault knobs (latency, bandwidth per connection).
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Sets the emulator's added latency per answer and its per-connection bandwidth cap
    /// (0 = none) for every DC.
    pub fn set_telegram(&self, latency: Duration, bytes_per_sec: u64) {
        self.faults.set_latency(Scope::All, Latency::Fixed(latency));
        self.faults.set_bandwidth(Scope::All, bytes_per_sec);
    }

    /// Posts a new pseudo-random document of `size` bytes; returns its link path
    /// (`/dl/{token}/{name}`) and file reference.
    pub fn add_file(&self, size: u64, name: &str) -> (String, FileRef) {
        let doc =
            self.world
                .add_document(Content::pseudo(size), name, "video/x-matroska", MEDIA_DC);
        let msg_id = self.world.post_document(self.channel_id, doc.id, "");
        let file = FileRef {
            chat_id: self.channel_api_id,
            msg_id,
        };
        (
            format!("/dl/{}/{name}", self.keyring.sign(file, None)),
            file,
        )
    }

    /// Like [`Chain::add_file`], then readied as the core's bot readies a link it made
    /// before replying to the uploader (`Resolver::prepare_link`).
    pub async fn add_linked_file(&self, size: u64, name: &str) -> Result<(String, FileRef)> {
        let (path, file) = self.add_file(size, name);
        self.resolver
            .prepare_link(file)
            .await
            .map_err(|error| anyhow!("readying {file}: {error}"))?;
        Ok((path, file))
    }

    pub fn core_addr(&self) -> SocketAddr {
        self.server.as_ref().map_or(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            QuicServer::local_addr,
        )
    }

    /// The core certificate's SHA-256 as 64 hex digits (`TGCDN_CORE_CERT_SHA256`).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// A QUIC upstream connected to this core, as an edge builds it.
    pub async fn upstream(&self) -> Result<Arc<QuicUpstream>> {
        let settings = QuicSettings::new(
            self.core_addr().to_string(),
            parse_fingerprint(&self.fingerprint)?,
            CLUSTER_SECRET.to_vec(),
        );
        let upstream = Arc::new(QuicUpstream::start(settings)?);
        if !upstream.wait_ready(Duration::from_secs(10)).await {
            return Err(anyhow!("the core did not welcome the edge within 10 s"));
        }
        Ok(upstream)
    }

    /// An edge (library, this process) over a fresh QUIC connection to the core, with
    /// `readahead_max` chunks per response at most. Serves until the runtime stops.
    pub async fn start_edge(&self, readahead_max: usize) -> Result<(SocketAddr, Arc<AppState>)> {
        let upstream = self.upstream().await?;
        self.start_edge_over(upstream, readahead_max).await
    }

    /// [`Self::start_edge`] as a protocol-3 edge asks for a new file: `Meta`, then the
    /// chunk, two exchanges (the same-run baseline of `MetaChunk`).
    pub async fn start_edge_two_exchanges(
        &self,
        readahead_max: usize,
    ) -> Result<(SocketAddr, Arc<AppState>)> {
        let upstream = Arc::new(TwoExchanges(self.upstream().await?));
        self.start_edge_over(upstream, readahead_max).await
    }

    async fn start_edge_over(
        &self,
        upstream: Arc<dyn Upstream>,
        readahead_max: usize,
    ) -> Result<(SocketAddr, Arc<AppState>)> {
        let mut options = EdgeOptions {
            cache_bytes: 1 << 30,
            ..EdgeOptions::default()
        };
        options.http.readahead = WindowLimits::with_max(readahead_max);
        options.http.per_ip_limit = 4096;
        // Every bench client is 127.0.0.1.
        options.http.max_connections_per_ip = 4096;
        // BENCH_FETCH_PER_CLIENT: the edge's `fetch_per_client`, for measuring its trade-off
        // (a flooding address's hold on the core against one viewer's read-ahead).
        options.fetch_per_client =
            crate::env_or("BENCH_FETCH_PER_CLIENT", options.fetch_per_client as u64) as usize;
        // BENCH_FETCH_FAIR_SHARE: the least share a client keeps while others are active.
        options.fetch_fair_share =
            (crate::env_or("BENCH_FETCH_FAIR_SHARE", options.fetch_fair_share as u64) as usize)
                .min(options.fetch_per_client);
        let state = build_state(upstream, TokenVerifier::new(self.keyring.clone()), options);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(serve(listener, state.clone(), std::future::pending()));
        Ok((addr, state))
    }

    /// Bot `index` (below the chain's bot count) as plain grammers, no core: registered,
    /// a member of the storage channel, `connections` sender pools sharing its key, signed
    /// in and authorised on the media DC, holding the location of `file`'s document. The
    /// loop the core's CPU is compared with (MTProto crypto and framing, nothing else).
    pub async fn bare_grammers(
        &self,
        index: usize,
        connections: usize,
        file: FileRef,
    ) -> Result<BareBot> {
        use grammers_client::sender::{ConnectionParams, NoRetries, SenderPool};
        use grammers_client::session::SessionData;
        use grammers_client::session::storages::MemorySession;
        use grammers_client::session::types::DcOption;
        use grammers_client::tl;

        let key = *self
            .spare_keys
            .get(index)
            .ok_or_else(|| anyhow!("only {} bare bots", self.spare_keys.len()))?;
        let token = format!("{}:bare-token-{index}", 200_001 + index);
        let bot = self.world.register_bot(&token, &format!("bare{index}_bot"));
        self.world
            .add_channel_member(self.channel_id, bot.user_id, true);
        let mut data = SessionData {
            home_dc: 2,
            ..SessionData::default()
        };
        data.dc_options.clear();
        for &(id, addr) in &self.dcs {
            let SocketAddr::V4(ipv4) = addr else {
                return Err(anyhow!("the emulator listens on IPv4 loopback"));
            };
            let ipv6 =
                std::net::SocketAddrV6::new(std::net::Ipv6Addr::LOCALHOST, addr.port(), 0, 0);
            let auth_key = Some(key);
            data.dc_options.insert(
                id,
                DcOption {
                    id,
                    ipv4,
                    ipv6,
                    auth_key,
                },
            );
        }
        let mut clients = Vec::new();
        let mut runners = Vec::new();
        for _ in 0..connections.max(1) {
            // One session per pool: the key is shared, and nothing here persists.
            let session = Arc::new(MemorySession::from(clone_data(&data)));
            let params = ConnectionParams {
                retry_policy: Box::new(NoRetries),
                ..ConnectionParams::default()
            };
            let pool = SenderPool::with_configuration(session, 1, params);
            drop(pool.updates);
            runners.push(tokio::spawn(pool.runner.run()));
            clients.push(grammers_client::Client::new(pool.handle));
        }
        let main = &clients[0];
        main.bot_sign_in(&token, "bench").await?;
        let tl::enums::auth::ExportedAuthorization::Authorization(exported) = main
            .invoke(&tl::functions::auth::ExportAuthorization { dc_id: MEDIA_DC })
            .await?;
        let import = tl::functions::auth::ImportAuthorization {
            id: exported.id,
            bytes: exported.bytes,
        };
        main.invoke_in_dc(MEDIA_DC, &import).await?;
        let request = tl::functions::channels::GetMessages {
            channel: tl::types::InputChannel {
                channel_id: self.channel_id,
                access_hash: 0,
            }
            .into(),
            id: vec![tl::types::InputMessageId { id: file.msg_id }.into()],
        };
        let location = match main.invoke(&request).await? {
            tl::enums::messages::Messages::ChannelMessages(answer) => answer
                .messages
                .into_iter()
                .find_map(|message| match message {
                    tl::enums::Message::Message(message) => match message.media {
                        Some(tl::enums::MessageMedia::Document(media)) => media.document,
                        _ => None,
                    },
                    _ => None,
                }),
            _ => None,
        };
        let Some(tl::enums::Document::Document(document)) = location else {
            return Err(anyhow!("message {} holds no document", file.msg_id));
        };
        let location = tl::types::InputDocumentFileLocation {
            id: document.id,
            access_hash: document.access_hash,
            file_reference: document.file_reference,
            thumb_size: String::new(),
        }
        .into();
        Ok(BareBot {
            clients,
            location,
            runners,
        })
    }

    /// Stops the QUIC server (the emulator stops when the chain is dropped).
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown(Duration::from_secs(1)).await;
        }
    }
}

/// A copy of session data (grammers' `SessionData` is not `Clone`).
fn clone_data(
    data: &grammers_client::session::SessionData,
) -> grammers_client::session::SessionData {
    grammers_client::session::SessionData {
        home_dc: data.home_dc,
        dc_options: data.dc_options.clone(),
        ..grammers_client::session::SessionData::default()
    }
}

/// Hex (colons allowed) to the 32 bytes `QuicSettings` pins.
pub fn parse_fingerprint(hex: &str) -> Result<[u8; 32]> {
    let digits: Vec<u8> = hex.bytes().filter(|b| *b != b':').collect();
    let mut out = [0u8; 32];
    if digits.len() != 64 {
        return Err(anyhow!("fingerprint must be 64 hex digits"));
    }
    for (byte, pair) in out.iter_mut().zip(digits.chunks(2)) {
        let text = std::str::from_utf8(pair)?;
        *byte = u8::from_str_radix(text, 16)?;
    }
    Ok(out)
}

/// Hex of `bytes`, for `TGCDN_*` secrets.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// CPU time (user + system) of the calling thread, from `/proc/thread-self/stat` (clock
/// ticks at the usual 100 Hz); zero where that file is unreadable.
pub fn thread_cpu() -> Duration {
    proc_cpu("/proc/thread-self/stat")
}

/// CPU time (user + system) of this whole process.
pub fn process_cpu() -> Duration {
    proc_cpu("/proc/self/stat")
}

/// CPU time (user + system) another process, such as an edge binary, used so far.
pub fn process_cpu_of(pid: u32) -> Duration {
    proc_cpu(&format!("/proc/{pid}/stat"))
}

fn proc_cpu(path: &str) -> Duration {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces) start at state; utime and
    // stime are fields 14 and 15 of the whole line.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Runs the emulator on its own thread with a single-threaded runtime; it answers report
/// requests and stops when the returned sender is dropped.
async fn spawn_emulator(
    bots: usize,
) -> Result<(
    EmulatorSide,
    mpsc::UnboundedSender<oneshot::Sender<EmulatorReport>>,
)> {
    let (ready_tx, ready_rx) = oneshot::channel::<Result<EmulatorSide>>();
    let (report_tx, mut report_rx) = mpsc::unbounded_channel::<oneshot::Sender<EmulatorReport>>();
    std::thread::Builder::new()
        .name("tgemu".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready_tx.send(Err(error.into()));
                    return;
                }
            };
            runtime.block_on(async move {
                let emulator = match Emulator::builder()
                    .dcs(&[1, 2, MEDIA_DC])
                    .home_dc(2)
                    .start()
                    .await
                {
                    Ok(emulator) => emulator,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error.into()));
                        return;
                    }
                };
                let side = EmulatorSide {
                    world: emulator.world(),
                    faults: emulator.faults(),
                    dcs: emulator.dc_options(),
                    // One key per bot: a key belongs to the account that signs in with it.
                    keys: (0..bots).map(|_| emulator.provision_auth_key()).collect(),
                };
                let _ = ready_tx.send(Ok(side));
                // The chain being dropped closes the channel and ends the loop.
                while let Some(reply) = report_rx.recv().await {
                    let _ = reply.send(EmulatorReport {
                        counters: emulator.counters(),
                        cpu: thread_cpu(),
                    });
                }
                drop(emulator);
            });
        })?;
    let side = ready_rx.await.context("the emulator thread died")??;
    Ok((side, report_tx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_with_and_without_colons() {
        let plain = "00".repeat(31) + "ff";
        assert_eq!(parse_fingerprint(&plain).unwrap()[31], 0xff);
        let colons = vec!["ab"; 32].join(":");
        assert_eq!(parse_fingerprint(&colons).unwrap(), [0xab; 32]);
        assert!(parse_fingerprint("abc").is_err());
        assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
        assert_eq!(hex(&[1, 0xab]), "01ab");
    }

    #[test]
    fn cpu_time_is_readable_and_grows() {
        let before = process_cpu();
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(process_cpu() > before, "no CPU time measured");
    }
}
