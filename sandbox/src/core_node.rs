//! The core, started in this process from a validated `tgcdn_core::config::Config`: the
//! same library calls, in the same order, as `tgcdn-core run` (`core/src/main.rs`) — sled
//! store, bot sessions pinned to the configured DCs with keys derived from the base key,
//! sign-in and storage-channel check, the download path, the QUIC server for edges and the
//! main bot's file-to-link front-end.
//!
//! Called by [`crate::Sandbox::start`]. It must stay a faithful copy of `run`'s wiring (the
//! sandbox exists to show the production path), so it adds no behaviour of its own; when
//! core grows a library entry point for one-box mode, this file shrinks to a call to it.
//! Never touches the emulator: it only knows DC addresses, like a real deployment.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tgcdn_core::app::download_path;
use tgcdn_core::bots::BotPool;
use tgcdn_core::config::{self, Config};
use tgcdn_core::frontend::commands::Access;
use tgcdn_core::frontend::{FrontEnd, FrontEndConfig};
use tgcdn_core::quic::handler::Handler;
use tgcdn_core::quic::{EdgeRegistry, QuicServer, tls};
use tgcdn_core::store::Store;
use tgcdn_core::telegram::download::channel_bare_id;
use tgcdn_core::telegram::{BotClient, BotConfig, SledSession, bot_id_from_token};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::SandboxError;

/// A running core.
pub struct CoreNode {
    server: QuicServer,
    store: Store,
    bots: Vec<Arc<BotClient>>,
    frontend: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl CoreNode {
    /// Opens the store, signs every bot in, and starts the QUIC server and the front-end.
    /// Unlike `tgcdn-core run`, an unusable bot is an error: in the sandbox every bot is
    /// scripted to work, so one that does not is a bug worth stopping for.
    pub async fn start(config: &Config) -> Result<CoreNode, SandboxError> {
        let store = Store::open(&config.data_dir).map_err(|source| SandboxError::Store {
            dir: config.data_dir.clone(),
            source,
        })?;
        let bots = start_bots(config, &store).await?;
        let path = download_path(
            store.clone(),
            &bots,
            config.resolve_config(),
            config.fetch_config(),
        );
        let identity = tls::load_or_generate(&store, None)
            .await
            .map_err(|error| SandboxError::core("loading the QUIC certificate", error))?;
        let handler = Handler::new(
            path.resolver,
            path.fetcher,
            EdgeRegistry::new(store.clone()),
            config.cluster_secret.bytes().to_vec(),
            config.quic.heartbeat_interval_secs,
        );
        let server = QuicServer::bind(config.quic.clone(), identity, handler)
            .map_err(|error| SandboxError::core("starting the QUIC server", error))?;
        let (stop, stopped) = watch::channel(false);
        let frontend = start_frontend(config, &bots[0], &path.pool, stopped)?;
        Ok(CoreNode {
            server,
            store,
            bots,
            frontend,
            stop,
        })
    }

    /// Where edges reach the QUIC server.
    pub fn quic_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// SHA-256 of the server certificate, as edges pin it.
    pub fn fingerprint(&self) -> &str {
        self.server.fingerprint()
    }

    /// The core's database (the sandbox forgets stale file metadata through it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops like `tgcdn-core run` on SIGTERM: the front-end finishes the message in hand,
    /// the endpoint closes, the database is flushed.
    pub async fn shutdown(self, grace: Duration) -> Result<(), SandboxError> {
        // Nobody listening only means the front-end already ended.
        let _ = self.stop.send(true);
        if tokio::time::timeout(grace, self.frontend).await.is_err() {
            tracing::warn!("the front-end did not stop within {grace:?}");
        }
        self.server.shutdown(grace).await;
        drop(self.bots);
        self.store
            .flush()
            .await
            .map_err(|error| SandboxError::core("flushing the database", error))
    }
}

/// Opens every configured bot (pool order) and checks each can sign in and read the
/// storage channel.
async fn start_bots(config: &Config, store: &Store) -> Result<Vec<Arc<BotClient>>, SandboxError> {
    let channel = channel_bare_id(config.storage_channel)
        .ok_or(SandboxError::NotAChannel(config.storage_channel))?;
    let mut bots = Vec::new();
    for (index, bot_config) in config.bot_configs().iter().enumerate() {
        // Only the main bot's updates are consumed (by the front-end), as in `run`.
        bots.push(Arc::new(
            open_bot(config, store, bot_config, index == 0).await?,
        ));
    }
    let mut checks = tokio::task::JoinSet::new();
    for bot in &bots {
        let bot = Arc::clone(bot);
        let deadline = Instant::now() + config.startup_timeout();
        checks.spawn(async move {
            let result = check_bot(&bot, channel, deadline).await;
            (bot.bot_id(), result)
        });
    }
    while let Some(joined) = checks.join_next().await {
        let (bot_id, result) =
            joined.map_err(|error| SandboxError::core("bot check task", error))?;
        result.map_err(|reason| SandboxError::Bot { bot_id, reason })?;
    }
    Ok(bots)
}

async fn open_bot(
    config: &Config,
    store: &Store,
    bot_config: &BotConfig,
    receives_updates: bool,
) -> Result<BotClient, SandboxError> {
    let bot_id = bot_id_from_token(&bot_config.token)
        .map_err(|error| SandboxError::core("bot token", error))?;
    let session = SledSession::open(store.sessions_tree().clone(), bot_id)
        .map_err(|error| SandboxError::core("opening a bot session", error))?;
    let auth_key = config
        .dc_auth_key
        .as_ref()
        .map(|base| config::bot_auth_key(base, bot_id));
    for pinned in &config.dc_addrs {
        session
            .provision_dc(pinned.dc, pinned.addr, auth_key)
            .await
            .map_err(|error| SandboxError::core("pinning a DC address", error))?;
    }
    let session = Arc::new(session);
    Ok(if receives_updates {
        BotClient::with_session_receiving_updates(session, bot_config)
    } else {
        BotClient::with_session(session, bot_config)
    })
}

async fn check_bot(bot: &BotClient, channel: i64, deadline: Instant) -> Result<(), String> {
    bot.sign_in_if_needed(deadline)
        .await
        .map_err(|error| format!("sign-in failed: {error}"))?;
    bot.check_channel_access(channel, deadline)
        .await
        .map_err(|error| format!("cannot read the storage channel: {error}"))
}

fn start_frontend(
    config: &Config,
    main_bot: &Arc<BotClient>,
    pool: &Arc<BotPool>,
    mut stopped: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, SandboxError> {
    let access = Access {
        allowed_users: None,
        admins: config.admins.iter().copied().collect(),
    };
    let frontend_config = FrontEndConfig {
        public_base: config.public_url.to_string(),
        storage_chat_id: config.storage_channel,
        access,
        bot_username: None,
    };
    let frontend = FrontEnd::new(
        Arc::clone(main_bot),
        Arc::new(config.keyring.clone()),
        frontend_config,
    )
    .map_err(|error| SandboxError::core("starting the front-end", error))?
    .with_pool(Arc::clone(pool));
    Ok(frontend.spawn_until(async move {
        // An error means the sender is gone, which is a stop too.
        let _ = stopped.wait_for(|stop| *stop).await;
    }))
}
