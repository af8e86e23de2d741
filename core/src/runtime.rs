//! A running core: everything `tgcdn-core run` starts, as a library value so the binary,
//! the one-box entry point ([`run_one_box`]) and tests start it the same way.
//!
//! [`Running::start`] opens the sled store, starts every configured bot (signing in where
//! the stored session is not authorised; a bot whose token is revoked or that cannot read
//! the storage channel is kept out of rotation with the reason — and re-probed in the
//! background until it recovers — the rest go on), wires the download path, starts the
//! main bot's file-to-link front-end (which also feeds the catalogue indexer the catalogue
//! channels' posts), the catalogue back-fill and enrichment, the QUIC server for edges
//! (unless disabled), the embedded HTTP edge in one-box mode and the admin listener.
//! [`Running::shutdown`] stops them in the order that loses nothing: the front-end finishes
//! the message in hand, the HTTP edge and the QUIC server drain their requests in flight,
//! the database is flushed. Never reads the process environment or installs signals.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::addon::AddonService;
use crate::app::download_path;
use crate::bots::BotPool;
use crate::bots::select::Health;
use crate::catalog::backfill::{BackfillHandle, Backfiller, ChannelReader};
use crate::catalog::enrich::{self, EnrichStats};
use crate::catalog::index::Indexer;
use crate::catalog::library::{Library, LibraryError};
use crate::catalog::posts::PostStore;
use crate::catalog::tmdb::TmdbClient;
use crate::config::OneBoxEdge;
use crate::config::{self, Config};
use crate::fetch::Fetcher;
use crate::frontend::commands::Access;
use crate::frontend::{FrontEnd, FrontEndConfig, FrontEndError, StatsLines};
use crate::health::Prober;
use crate::onebox::InProcessUpstream;
use crate::quic::handler::Handler;
use crate::quic::{EdgeRegistry, QuicError, QuicServer, tls};
use crate::report::{Reporter, summary_lines};
use crate::resolve::Resolver;
use crate::store::{Store, StoreError};
use crate::telegram::download::channel_bare_id;
use crate::telegram::{BotClient, BotConfig, SledSession, bot_id_from_token};
use tgcdn_catalog::addon::AddonInfo;

/// An edge silent this long is shown as stale (several missed heartbeats).
pub const EDGE_STALE_SECS: u64 = 60;

/// Why the core could not start or stop cleanly; each names what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("opening the database in {path}")]
    Store {
        path: String,
        #[source]
        source: StoreError,
    },
    #[error("setting up bot {what}")]
    Bot {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("loading the QUIC certificate")]
    Tls(#[source] tls::TlsError),
    #[error("starting the QUIC server")]
    Quic(#[source] QuicError),
    #[error("starting the front-end")]
    FrontEnd(#[source] FrontEndError),
    #[error("listening for {what} on {addr}")]
    Listen {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("flushing the database")]
    Flush(#[source] StoreError),
    #[error("opening the catalogue")]
    Catalog(#[source] LibraryError),
    #[error("the runtime shut down while {0}")]
    Interrupted(&'static str),
}

fn bot_error(
    what: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> RunError {
    RunError::Bot {
        what: what.into(),
        source: Box::new(source),
    }
}

/// A started core. Dropping it without [`Running::shutdown`] leaves its tasks running until
/// the runtime ends.
pub struct Running {
    store: Store,
    bots: Vec<Arc<BotClient>>,
    pool: Arc<BotPool>,
    quic: Option<QuicServer>,
    edge: Option<(SocketAddr, JoinHandle<()>)>,
    frontend: Option<JoinHandle<()>>,
    admin: (SocketAddr, JoinHandle<()>),
    /// The background prober that puts recovered bots back in rotation.
    probes: JoinHandle<()>,
    catalog: Option<RunningCatalog>,
    stop: watch::Sender<bool>,
    unhealthy: usize,
    grace: Duration,
}

impl Running {
    /// Starts everything `config` asks for, without a Stremio addon. Returns once every bot
    /// was checked and every listener is bound, so the addresses below are final.
    pub async fn start(config: &Config) -> Result<Running, RunError> {
        Self::start_with_addon(config, None).await
    }

    /// [`Running::start`] with addon requests (from edges and the one-box edge) answered by
    /// `addon`; `None` answers them "addon not enabled".
    pub async fn start_with_addon(
        config: &Config,
        addon: Option<Arc<dyn AddonService>>,
    ) -> Result<Running, RunError> {
        let store = open_store(&config.data_dir).await?;
        let (bots, failures) = start_bots(config, &store).await?;
        let path = download_path(
            store.clone(),
            &bots,
            config.resolve_config(),
            config.fetch_config(),
        );
        let pool = Arc::clone(&path.pool);
        let now = Instant::now();
        for (index, failure) in &failures {
            match failure {
                StartFailure::SignIn(reason) => pool.set_health(
                    *index,
                    Health::Unhealthy {
                        reason: reason.clone(),
                    },
                    now,
                ),
                StartFailure::Channel(reason) => {
                    pool.deny_channel(*index, config.storage_channel, reason, now);
                }
            }
        }
        if failures.len() == bots.len() {
            tracing::error!("no bot is usable: every request will answer Unavailable");
        }
        let catalog = start_catalog(config, &store, &bots)?;
        // An addon passed in wins (tests); otherwise the catalogue answers, when there is one.
        let addon = addon.or_else(|| {
            catalog
                .as_ref()
                .map(|catalog| Arc::clone(&catalog.library) as Arc<dyn AddonService>)
        });
        let handler = Handler::with_addon(
            path.resolver,
            path.fetcher,
            EdgeRegistry::new(store.clone()),
            config.cluster_secret.bytes().to_vec(),
            config.quic.heartbeat_interval_secs,
            addon,
        );
        let mut reporter = Reporter::new(Arc::clone(&pool), Arc::clone(&handler), EDGE_STALE_SECS);
        if let Some(catalog) = &catalog {
            reporter = reporter
                .with_catalog(
                    Arc::clone(catalog.indexer.stats()),
                    catalog.library.posts().clone(),
                )
                .with_library(
                    Arc::clone(&catalog.library),
                    Arc::clone(&catalog.enrich),
                    catalog.tmdb.clone(),
                );
        }
        // Every listener is bound before anything is spawned, so a failure here leaves
        // nothing running behind the error.
        let admin_listener = bind_listener("the admin endpoint", config.admin_listen).await?;
        let admin_addr = local_addr("the admin endpoint", &admin_listener, config.admin_listen)?;
        let edge_listener = match &config.one_box {
            Some(edge) => Some(bind_listener("viewers (one-box edge)", edge.listen).await?),
            None => None,
        };
        let quic = if config.quic_enabled {
            let pem = config
                .tls_pem
                .as_ref()
                .map(|(cert, key)| (cert.as_path(), key.as_path()));
            let identity = tls::load_or_generate(&store, pem)
                .await
                .map_err(RunError::Tls)?;
            let server = QuicServer::bind(config.quic.clone(), identity, Arc::clone(&handler))
                .map_err(RunError::Quic)?;
            Some(server)
        } else {
            None
        };
        let main_bot_usable = !failures.iter().any(|(index, _)| *index == 0);
        let frontend = if main_bot_usable {
            let username = main_bot_username(&bots[0], config.startup_timeout()).await;
            match frontend(
                config,
                username,
                &bots[0],
                &pool,
                Arc::clone(handler.resolver()),
                Arc::clone(handler.revocations()),
                &reporter,
            ) {
                Ok(frontend) => Some(match &catalog {
                    Some(catalog) => frontend
                        .with_catalog(Arc::clone(&catalog.indexer), Some(catalog.handle.clone())),
                    None => frontend,
                }),
                Err(error) => {
                    if let Some(quic) = quic {
                        quic.shutdown(Duration::ZERO).await;
                    }
                    return Err(error);
                }
            }
        } else {
            tracing::error!("the main bot is unusable: no file-to-link front-end");
            None
        };

        let (stop, stopped) = watch::channel(false);
        let probers = bots
            .iter()
            .map(|bot| Arc::clone(bot) as Arc<dyn Prober>)
            .collect();
        let probes = tokio::spawn(crate::health::run(
            Arc::clone(&pool),
            probers,
            stopped.clone(),
        ));
        let admin_state = crate::admin::AdminState {
            reporter,
            backfill: catalog.as_ref().map(|catalog| catalog.handle.clone()),
            links: Some(crate::admin::links::LinkAdmin {
                keyring: config.keyring.clone(),
                revocations: Arc::clone(handler.revocations()),
                public_base: config.public_url.to_string(),
                target: Arc::new(Arc::clone(handler.resolver())),
            }),
            access: crate::admin::access::AdminAccess::new(config.admin_token.clone()),
        };
        let admin = tokio::spawn(crate::admin::serve_with(
            admin_listener,
            Arc::new(admin_state),
            stopped.clone(),
        ));
        let catalog =
            catalog.map(|catalog| catalog.spawn(Arc::clone(handler.fetcher()), stopped.clone()));
        tokio::spawn(prune_edges(
            handler.edges().clone(),
            config.edge_retention,
            stopped.clone(),
        ));
        let edge = match (edge_listener, &config.one_box) {
            (Some(listener), Some(edge)) => Some(serve_edge(
                listener,
                config,
                edge,
                &handler,
                &pool,
                stopped.clone(),
            )?),
            _ => None,
        };
        let frontend = frontend.map(|frontend| {
            let mut stopped = stopped;
            frontend.spawn_until(async move {
                // An error means the sender is gone, which is a stop too.
                let _ = stopped.wait_for(|stop| *stop).await;
            })
        });
        Ok(Running {
            store,
            bots,
            pool,
            quic,
            edge,
            frontend,
            admin: (admin_addr, admin),
            probes,
            catalog,
            stop,
            unhealthy: failures.len(),
            grace: SHUTDOWN_GRACE,
        })
    }

    /// The QUIC server's address, unless QUIC is disabled.
    pub fn quic_addr(&self) -> Option<SocketAddr> {
        self.quic.as_ref().map(QuicServer::local_addr)
    }

    /// The SHA-256 fingerprint edges pin, unless QUIC is disabled.
    pub fn fingerprint(&self) -> Option<&str> {
        self.quic.as_ref().map(QuicServer::fingerprint)
    }

    /// The granted UDP socket buffer sizes, unless QUIC is disabled.
    pub fn socket_buffers(&self) -> Option<(usize, usize)> {
        self.quic.as_ref().map(QuicServer::socket_buffers)
    }

    /// Where the one-box edge serves viewers, in one-box mode.
    pub fn edge_addr(&self) -> Option<SocketAddr> {
        self.edge.as_ref().map(|(addr, _)| *addr)
    }

    /// Where `/metrics` and `/admin/*` are served.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.0
    }

    /// The catalogue's stored posts, when catalogue channels are configured.
    pub fn catalog_posts(&self) -> Option<&PostStore> {
        self.catalog.as_ref().map(|catalog| catalog.library.posts())
    }

    /// The catalogue (titles, addon answers), when catalogue channels are configured.
    pub fn library(&self) -> Option<&Arc<Library>> {
        self.catalog.as_ref().map(|catalog| &catalog.library)
    }

    /// The catalogue back-fill (re-index requests, progress), when configured.
    pub fn backfill(&self) -> Option<&BackfillHandle> {
        self.catalog.as_ref().map(|catalog| &catalog.handle)
    }

    pub fn pool(&self) -> &Arc<BotPool> {
        &self.pool
    }

    pub fn bot_count(&self) -> usize {
        self.bots.len()
    }

    pub fn unhealthy_bots(&self) -> usize {
        self.unhealthy
    }

    /// Stops everything, each step bounded by the grace period, and flushes the database.
    pub async fn shutdown(self) -> Result<(), RunError> {
        let grace = self.grace;
        // Nobody listening only means every task already ended.
        let _ = self.stop.send(true);
        if let Some(frontend) = self.frontend
            && tokio::time::timeout(grace, frontend).await.is_err()
        {
            tracing::warn!("the front-end did not stop within {grace:?}");
        }
        if let Some((_, edge)) = self.edge {
            // The edge drains on its own clock (TGCDN_DRAIN_TIMEOUT); this bounds it too.
            if tokio::time::timeout(grace * 3, edge).await.is_err() {
                tracing::warn!("the HTTP edge did not drain in time");
            }
        }
        if let Some(quic) = self.quic {
            quic.shutdown(grace).await;
        }
        // The admin loop saw the stop signal; it ends at its next select.
        if tokio::time::timeout(grace, self.admin.1).await.is_err() {
            tracing::warn!("the admin listener did not stop within {grace:?}");
        }
        // A probe in flight only reads; it may be cut short.
        self.probes.abort();
        let _ = self.probes.await;
        if let Some(catalog) = self.catalog {
            // The back-fill stops between batches; a call in flight is bounded by its own
            // deadline, and an aborted batch is simply fetched again at the next start.
            // Enrichment is idempotent: an interrupted lookup or hash is redone next time.
            for mut task in [catalog.task].into_iter().chain(catalog.enrichment) {
                if tokio::time::timeout(grace, &mut task).await.is_err() {
                    tracing::warn!("a catalogue task did not stop within {grace:?}");
                    task.abort();
                }
            }
        }
        drop(self.bots);
        self.store.flush().await.map_err(RunError::Flush)
    }
}

/// The catalogue before its back-fill and enrichment are spawned.
struct CatalogParts {
    indexer: Arc<Indexer>,
    library: Arc<Library>,
    tmdb: Option<Arc<TmdbClient>>,
    enrich: Arc<EnrichStats>,
    video_hashes: bool,
    backfiller: Backfiller,
    handle: BackfillHandle,
}

impl CatalogParts {
    fn spawn(self, fetcher: Arc<Fetcher>, stopped: watch::Receiver<bool>) -> RunningCatalog {
        let mut enrichment = Vec::new();
        if self.video_hashes {
            enrichment.push(tokio::spawn(enrich::run_hashes(
                Arc::clone(&self.library),
                fetcher,
                Arc::clone(&self.enrich),
                stopped.clone(),
            )));
        }
        if let Some(tmdb) = self.tmdb.filter(|tmdb| tmdb.has_api_key()) {
            enrichment.push(tokio::spawn(enrich::run_metadata(
                Arc::clone(&self.library),
                tmdb,
                Arc::clone(&self.enrich),
                stopped.clone(),
            )));
        }
        RunningCatalog {
            library: self.library,
            handle: self.handle,
            task: self.backfiller.spawn(stopped),
            enrichment,
        }
    }
}

/// The catalogue of a running core.
struct RunningCatalog {
    library: Arc<Library>,
    handle: BackfillHandle,
    task: JoinHandle<()>,
    enrichment: Vec<JoinHandle<()>>,
}

/// The indexer over `catalog_posts` and its back-fill, when catalogue channels are set.
/// The back-fill reads through the download-only bots first, so its calls (and any flood
/// wait they draw) stay off the main bot, which answers users; the main bot comes last.
fn start_catalog(
    config: &Config,
    store: &Store,
    bots: &[Arc<BotClient>],
) -> Result<Option<CatalogParts>, RunError> {
    if config.catalog.channels.is_empty() {
        return Ok(None);
    }
    let store_error = |source| RunError::Store {
        path: config.data_dir.display().to_string(),
        source,
    };
    let posts = PostStore::open(store).map_err(store_error)?;
    let library = Library::open(store, posts, config.keyring.clone(), AddonInfo::default())
        .map_err(RunError::Catalog)?;
    let library = Arc::new(library);
    let tmdb = TmdbClient::new(config.catalog.tmdb.clone(), store)
        .map_err(|error| RunError::Catalog(error.into()))?;
    let indexer = Arc::new(Indexer::new(
        config.catalog.channels.iter().copied(),
        Arc::clone(&library) as Arc<dyn crate::catalog::index::CatalogSink>,
    ));
    let readers = bots
        .iter()
        .skip(1)
        .chain(bots.first())
        .map(|bot| Arc::clone(bot) as Arc<dyn ChannelReader>)
        .collect();
    let backfiller = Backfiller::new(
        readers,
        Arc::clone(&indexer),
        store.clone(),
        config.catalog.backfill.clone(),
    )
    .map_err(store_error)?;
    let handle = backfiller.handle();
    tracing::info!(
        channels = ?config.catalog.channels,
        posts = library.posts().len(),
        titles = library.len(),
        metadata = if tmdb.has_api_key() { "tmdb" } else { "parsed names only" },
        "catalogue on"
    );
    Ok(Some(CatalogParts {
        indexer,
        library,
        tmdb: Some(Arc::new(tmdb)),
        enrich: Arc::new(EnrichStats::default()),
        video_hashes: config.catalog.video_hashes,
        backfiller,
        handle,
    }))
}

/// Opens the database off the async threads: `Store::open` blocks while another handle in
/// this process (a core that just shut down, whose last tasks are still ending) holds the
/// lock, and on a single-threaded runtime those tasks could never end while it blocks.
async fn open_store(data_dir: &Path) -> Result<Store, RunError> {
    let dir = data_dir.to_owned();
    let opened = tokio::task::spawn_blocking(move || Store::open(&dir)).await;
    let result = match opened {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => return Err(RunError::Interrupted("opening the database")),
    };
    result.map_err(|source| RunError::Store {
        path: data_dir.display().to_string(),
        source,
    })
}

/// How long the front-end, the edge and the QUIC close may each take at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

async fn bind_listener(
    what: &'static str,
    addr: SocketAddr,
) -> Result<tokio::net::TcpListener, RunError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Listen { what, addr, source })
}

fn local_addr(
    what: &'static str,
    listener: &tokio::net::TcpListener,
    addr: SocketAddr,
) -> Result<SocketAddr, RunError> {
    listener
        .local_addr()
        .map_err(|source| RunError::Listen { what, addr, source })
}

/// Serves the one-box edge on `listener` until `stopped` turns true.
fn serve_edge(
    listener: tokio::net::TcpListener,
    config: &Config,
    edge: &OneBoxEdge,
    handler: &Arc<Handler>,
    pool: &Arc<BotPool>,
    mut stopped: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), RunError> {
    let addr = local_addr("viewers (one-box edge)", &listener, edge.listen)?;
    let upstream = Arc::new(InProcessUpstream::new(
        Arc::clone(handler),
        Arc::clone(pool),
        config.storage_channel,
    ));
    let verifier = tgcdn_shared::token::TokenVerifier::new(config.keyring.clone())
        .with_legacy(edge.legacy_links);
    let mut options = edge.options.clone();
    // Stream URLs in addon answers point at this edge: the core's own public URL.
    options
        .addon
        .base_url
        .get_or_insert_with(|| config.public_url.to_string());
    let state = tgcdn_edge::app::build_state(upstream, verifier, options);
    tokio::spawn(crate::onebox::apply_revocations(
        handler.revocations().subscribe(),
        Arc::clone(&state),
    ));
    let task = tokio::spawn(tgcdn_edge::http::serve(listener, state, async move {
        // An error means the sender is gone, which is a stop too.
        let _ = stopped.wait_for(|stop| *stop).await;
    }));
    Ok((addr, task))
}

/// Why a bot could not serve at start: it is out for everything, or for the storage channel.
enum StartFailure {
    SignIn(String),
    Channel(String),
}

impl std::fmt::Display for StartFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SignIn(reason) | Self::Channel(reason) => f.write_str(reason),
        }
    }
}

/// Starts every bot; returns them (pool order) and the ones that cannot serve, with why.
async fn start_bots(
    config: &Config,
    store: &Store,
) -> Result<(Vec<Arc<BotClient>>, Vec<(usize, StartFailure)>), RunError> {
    // Validated: the storage channel is a channel id.
    let channel = channel_bare_id(config.storage_channel).unwrap_or_default();
    let mut bots = Vec::new();
    for (index, bot_config) in config.bot_configs().iter().enumerate() {
        // Only the main bot's updates are consumed (by the front-end).
        let receives_updates = index == 0;
        bots.push(Arc::new(
            open_bot(config, store, bot_config, receives_updates).await?,
        ));
    }
    let mut checks = tokio::task::JoinSet::new();
    for (index, bot) in bots.iter().enumerate() {
        let bot = Arc::clone(bot);
        let deadline = Instant::now() + config.startup_timeout();
        checks.spawn(async move { (index, check_bot(&bot, channel, deadline).await) });
    }
    let mut failures = Vec::new();
    while let Some(joined) = checks.join_next().await {
        let (index, result) = joined.map_err(|error| bot_error("check task", error))?;
        if let Err(reason) = result {
            tracing::warn!(bot_id = bots[index].bot_id(), %reason, "bot unusable");
            failures.push((index, reason));
        }
    }
    Ok((bots, failures))
}

async fn open_bot(
    config: &Config,
    store: &Store,
    bot_config: &BotConfig,
    receives_updates: bool,
) -> Result<BotClient, RunError> {
    let bot_id = bot_id_from_token(&bot_config.token).map_err(|e| bot_error("token", e))?;
    let session = SledSession::open(store.sessions_tree().clone(), bot_id)
        .map_err(|e| bot_error(format!("{bot_id}: opening its session"), e))?;
    let auth_key = config
        .dc_auth_key
        .as_ref()
        .map(|base| config::bot_auth_key(base, bot_id));
    for pinned in &config.dc_addrs {
        // Without a provisioned key, pinning again would drop the key this session made
        // with that DC (and its authorisation) at every start.
        let has_key = session
            .has_auth_key(pinned.dc)
            .map_err(|e| bot_error(format!("{bot_id}: reading its session"), e))?;
        if auth_key.is_none() && has_key {
            continue;
        }
        session
            .provision_dc(pinned.dc, pinned.addr, auth_key)
            .await
            .map_err(|e| bot_error(format!("{bot_id}: pinning dc {}", pinned.dc), e))?;
    }
    let session = Arc::new(session);
    Ok(if receives_updates {
        BotClient::with_session_receiving_updates(session, bot_config)
    } else {
        BotClient::with_session(session, bot_config)
    })
}

/// The main bot's file-to-link loop, ready to spawn.
fn frontend(
    config: &Config,
    bot_username: Option<String>,
    main_bot: &Arc<BotClient>,
    pool: &Arc<BotPool>,
    resolver: Arc<Resolver>,
    revocations: Arc<crate::revoke::Revocations>,
    reporter: &Reporter,
) -> Result<FrontEnd, RunError> {
    let access = Access {
        allowed_users: (!config.allowed_users.is_empty())
            .then(|| config.allowed_users.iter().copied().collect()),
        admins: config.admins.iter().copied().collect(),
    };
    let frontend_config = FrontEndConfig {
        public_base: config.public_url.to_string(),
        storage_chat_id: config.storage_channel,
        access,
        bot_username,
    };
    // The same report the admin endpoint serves; the bot list comes from the same pool.
    let reporter = reporter.clone();
    let stats: StatsLines = Arc::new(move || summary_lines(&reporter.collect()));
    Ok(FrontEnd::new(
        Arc::clone(main_bot),
        Arc::new(config.keyring.clone()),
        frontend_config,
    )
    .map_err(RunError::FrontEnd)?
    .with_pool(Arc::clone(pool))
    .with_resolver(resolver)
    .with_concurrency(config.frontend_concurrency)
    .with_revocations(revocations)
    .with_link_expiry(config.link_expiry)
    .with_stats_lines(stats))
}

/// The main bot's username, so `/command@other_bot` is not taken for ours. Without it
/// (Telegram did not answer) every addressed command is taken as ours, as before.
async fn main_bot_username(bot: &BotClient, timeout: Duration) -> Option<String> {
    match bot.username(Instant::now() + timeout).await {
        Ok(username) => username,
        Err(error) => {
            tracing::warn!(%error, "cannot read the main bot's username; @-addressed commands are all taken as ours");
            None
        }
    }
}

/// Starts a whole tgcdn in this process: the core as `config` says (bots, front-end, admin
/// listener, QUIC server unless `config.quic_enabled` is false) plus an HTTP edge serving
/// viewers on `edge.listen` from the in-process core. Stop it with [`Running::shutdown`];
/// [`Running::edge_addr`] tells where it listens (useful with port 0).
pub async fn run_one_box(mut config: Config, edge: OneBoxEdge) -> Result<Running, RunError> {
    config.one_box = Some(edge);
    Running::start(&config).await
}

/// Forgets edges silent past `retention`, checked at start and then every tenth of it (at
/// most hourly), until `stopped`.
async fn prune_edges(
    registry: EdgeRegistry,
    retention: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let every = (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    loop {
        match registry.prune(crate::clock::unix_now(), retention.as_secs()) {
            Ok(pruned) if !pruned.is_empty() => tracing::info!(?pruned, "forgot silent edges"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot prune the edges tree"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}

/// Signs in if needed and checks the storage channel; the error says which failed and why.
async fn check_bot(bot: &BotClient, channel: i64, deadline: Instant) -> Result<(), StartFailure> {
    match bot.sign_in_if_needed(deadline).await {
        Ok(true) => tracing::info!(bot_id = bot.bot_id(), "signed in"),
        Ok(false) => {}
        Err(error) => return Err(StartFailure::SignIn(format!("sign-in failed: {error}"))),
    }
    bot.check_channel_access(channel, deadline)
        .await
        .map_err(|error| StartFailure::Channel(format!("cannot read the storage channel: {error}")))
}
