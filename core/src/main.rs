//! `tgcdn-core`: the command line and the glue that starts the core.
//!
//! `run` opens the sled store, starts every configured bot (signing in where the stored
//! session is not authorised; a bot whose token is revoked or that cannot read the storage
//! channel is kept out of rotation with the reason, the rest go on), wires the download
//! path, starts the main bot's file-to-link front-end and the QUIC server for edges, prints
//! the certificate fingerprint, then waits for SIGINT/SIGTERM: the front-end finishes the
//! message in hand, the endpoint closes, the database is flushed. `check-config` validates
//! the configuration and prints it with secrets masked. The only file that uses anyhow: the
//! library's typed errors become one chained message and an exit code here.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tgcdn_core::app::download_path;
use tgcdn_core::bots::BotPool;
use tgcdn_core::bots::select::Health;
use tgcdn_core::config::{self, Config};
use tgcdn_core::frontend::commands::Access;
use tgcdn_core::frontend::{FrontEnd, FrontEndConfig, StatsLines};
use tgcdn_core::quic::handler::Handler;
use tgcdn_core::quic::{EdgeRegistry, QuicServer, tls};
use tgcdn_core::store::Store;
use tgcdn_core::telegram::download::channel_bare_id;
use tgcdn_core::telegram::{BotClient, BotConfig, SledSession, bot_id_from_token};
use tgcdn_shared::config::Settings;

/// How long the front-end and the QUIC close may take at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// An edge silent this long is shown as stale (several missed heartbeats).
const EDGE_STALE_SECS: u64 = 60;

#[derive(Parser)]
#[command(
    name = "tgcdn-core",
    version,
    about = "The tgcdn core: Telegram bots, the sled store and the QUIC server edges fetch chunks from",
    after_help = config::help_text()
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the core (bots, QUIC server) until SIGINT/SIGTERM.
    Run,
    /// Validate the configuration and print it with secrets masked.
    CheckConfig,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs on stderr; stdout carries only what operators and scripts read (fingerprint,
    // address, check-config output).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let result = match cli.command {
        Command::Run => run().await,
        Command::CheckConfig => check_config(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config() -> Result<Config> {
    let settings = Settings::from_process_env().context("reading settings")?;
    for unknown in Config::unknown_keys(&settings) {
        tracing::warn!("unknown setting {unknown} (typo?)");
    }
    Config::from_settings(&settings).context("invalid configuration")
}

fn check_config() -> Result<()> {
    let config = load_config()?;
    print!("{}", config.describe());
    println!("configuration is valid");
    Ok(())
}

async fn run() -> Result<()> {
    let config = load_config()?;
    let store = Store::open(&config.data_dir)
        .with_context(|| format!("opening the database in {}", config.data_dir.display()))?;
    let (bots, failures) = start_bots(&config, &store).await?;
    let path = download_path(
        store.clone(),
        &bots,
        config.resolve_config(),
        config.fetch_config(),
    );
    let pool = Arc::clone(&path.pool);
    for (index, reason) in &failures {
        path.pool.set_health(
            *index,
            Health::Unhealthy {
                reason: reason.clone(),
            },
        );
    }
    if failures.len() == bots.len() {
        tracing::error!("no bot is usable: every request will answer Unavailable");
    }

    let pem = config
        .tls_pem
        .as_ref()
        .map(|(cert, key)| (cert.as_path(), key.as_path()));
    let identity = tls::load_or_generate(&store, pem)
        .await
        .context("loading the QUIC certificate")?;
    let handler = Handler::new(
        path.resolver,
        path.fetcher,
        EdgeRegistry::new(store.clone()),
        config.cluster_secret.bytes().to_vec(),
        config.quic.heartbeat_interval_secs,
    );
    let edges = handler.edges().clone();
    let server = QuicServer::bind(config.quic.clone(), identity, handler)
        .context("starting the QUIC server")?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let main_bot_usable = !failures.iter().any(|(index, _)| *index == 0);
    let frontend = if main_bot_usable {
        Some(start_frontend(&config, &bots[0], &pool, edges, stopped)?)
    } else {
        tracing::error!("the main bot is unusable: no file-to-link front-end");
        None
    };
    println!(
        "tgcdn-core {} serving edges on {} (QUIC, ALPN {})",
        env!("CARGO_PKG_VERSION"),
        server.local_addr(),
        String::from_utf8_lossy(tgcdn_shared::wire::ALPN)
    );
    println!(
        "certificate sha256 (edges pin it): {}",
        server.fingerprint()
    );
    let (rcvbuf, sndbuf) = server.socket_buffers();
    tracing::info!(
        rcvbuf,
        sndbuf,
        bots = bots.len(),
        unhealthy = failures.len(),
        "core running"
    );

    shutdown_signal().await?;
    tracing::info!("shutting down");
    // Nobody listening only means the front-end already ended.
    let _ = stop.send(true);
    if let Some(frontend) = frontend
        && tokio::time::timeout(SHUTDOWN_GRACE, frontend)
            .await
            .is_err()
    {
        tracing::warn!("the front-end did not stop within {SHUTDOWN_GRACE:?}");
    }
    server.shutdown(SHUTDOWN_GRACE).await;
    drop(bots);
    store.flush().await.context("flushing the database")?;
    Ok(())
}

/// Starts every bot; returns them (pool order) and the ones that cannot serve, with why.
async fn start_bots(
    config: &Config,
    store: &Store,
) -> Result<(Vec<Arc<BotClient>>, Vec<(usize, String)>)> {
    // Validated: the storage channel is a channel id.
    let channel = channel_bare_id(config.storage_channel).context("storage channel")?;
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
        let (index, result) = joined.context("bot check task")?;
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
) -> Result<BotClient> {
    let bot_id = bot_id_from_token(&bot_config.token).context("bot token")?;
    let session = SledSession::open(store.sessions_tree().clone(), bot_id)
        .with_context(|| format!("opening the session of bot {bot_id}"))?;
    let auth_key = config
        .dc_auth_key
        .as_ref()
        .map(|base| config::bot_auth_key(base, bot_id));
    for pinned in &config.dc_addrs {
        // Without a provisioned key, pinning again would drop the key this session made
        // with that DC (and its authorisation) at every start.
        let has_key = session
            .has_auth_key(pinned.dc)
            .with_context(|| format!("reading the session of bot {bot_id}"))?;
        if auth_key.is_none() && has_key {
            continue;
        }
        session
            .provision_dc(pinned.dc, pinned.addr, auth_key)
            .await
            .with_context(|| format!("pinning dc {} for bot {bot_id}", pinned.dc))?;
    }
    let session = Arc::new(session);
    Ok(if receives_updates {
        BotClient::with_session_receiving_updates(session, bot_config)
    } else {
        BotClient::with_session(session, bot_config)
    })
}

/// Starts the main bot's file-to-link loop; it stops once `stopped` turns true.
fn start_frontend(
    config: &Config,
    main_bot: &Arc<BotClient>,
    pool: &Arc<BotPool>,
    edges: EdgeRegistry,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let access = Access {
        allowed_users: (!config.allowed_users.is_empty())
            .then(|| config.allowed_users.iter().copied().collect()),
        admins: config.admins.iter().copied().collect(),
    };
    let frontend_config = FrontEndConfig {
        public_base: config.public_url.to_string(),
        storage_chat_id: config.storage_channel,
        access,
        bot_username: None,
    };
    let stats: StatsLines = Arc::new(move || edge_lines(&edges));
    let frontend = FrontEnd::new(
        Arc::clone(main_bot),
        Arc::new(config.keyring.clone()),
        frontend_config,
    )
    .context("starting the front-end")?
    .with_pool(Arc::clone(pool))
    .with_stats_lines(stats);
    Ok(frontend.spawn_until(async move {
        // An error means the sender is gone, which is a stop too.
        let _ = stopped.wait_for(|stop| *stop).await;
    }))
}

/// `/stats` lines about the edge fleet.
fn edge_lines(edges: &EdgeRegistry) -> Vec<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    match edges.list(now, EDGE_STALE_SECS) {
        Ok(list) if list.is_empty() => vec!["edges: none yet".to_owned()],
        Ok(list) => list
            .into_iter()
            .map(|edge| {
                format!(
                    "edge {} ({}, {}): last heard {} s ago{}",
                    edge.id,
                    edge.region,
                    edge.public_url,
                    edge.last_heartbeat_age_secs,
                    if edge.live { "" } else { " — stale" }
                )
            })
            .collect(),
        Err(error) => vec![format!("edges: cannot read the registry ({error})")],
    }
}

/// Signs in if needed and checks the storage channel; the error is the reason shown.
async fn check_bot(bot: &BotClient, channel: i64, deadline: Instant) -> Result<(), String> {
    match bot.sign_in_if_needed(deadline).await {
        Ok(true) => tracing::info!(bot_id = bot.bot_id(), "signed in"),
        Ok(false) => {}
        Err(error) => return Err(format!("sign-in failed: {error}")),
    }
    bot.check_channel_access(channel, deadline)
        .await
        .map_err(|error| format!("cannot read the storage channel: {error}"))
}

async fn shutdown_signal() -> Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
