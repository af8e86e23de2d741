//! `tgcdn-core`: the command line and the glue that starts the core.
//!
//! `run` starts the core through [`tgcdn_core::runtime::Running`] (bots, front-end, QUIC
//! server, with `--with-edge` the one-box HTTP edge), prints where it listens and the
//! certificate fingerprint, then waits for SIGINT/SIGTERM and shuts it down in order.
//! `status` prints the running core's report, read from its admin endpoint; `reindex` asks
//! it (through the same endpoint) to walk the catalogue channels again; `link mint|inspect|
//! revoke|unrevoke` manage links through it too (a revocation reaches every connected edge
//! at once). Each sends `TGCDN_ADMIN_TOKEN` as a bearer token when set. `check-config` validates
//! the configuration and prints it with secrets masked. The only file that uses anyhow: the
//! library's typed errors become one chained message and an exit code here.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tgcdn_core::admin::AdminClient;
use tgcdn_core::admin::links::{LinkRequest, MintRequest, parse_expiry};
use tgcdn_core::config::OneBoxEdge;
use tgcdn_core::config::{self, Config};
use tgcdn_core::runtime::Running;
use tgcdn_core::signals::StopSignals;
use tgcdn_shared::config::Settings;

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
    Run {
        /// One-box mode: also serve viewers over HTTP from this process (same as
        /// TGCDN_WITH_EDGE=true; the edge's TGCDN_LISTEN, TGCDN_CACHE_SIZE… apply).
        #[arg(long)]
        with_edge: bool,
    },
    /// Validate the configuration and print it with secrets masked.
    CheckConfig,
    /// Print the running core's bots, DCs, edges and cache counters (read from its admin
    /// endpoint: the running core holds the database lock).
    Status {
        /// Admin endpoint base URL; default from TGCDN_ADMIN_LISTEN, else 127.0.0.1:9180.
        #[arg(long)]
        admin: Option<String>,
    },
    /// Ask the running core to walk the catalogue channels again (all, or one) and print
    /// the back-fill's progress (through its admin endpoint).
    Reindex {
        /// One catalogue channel (Bot API id, -100…); default every one.
        #[arg(long, allow_hyphen_values = true)]
        channel: Option<i64>,
        /// Admin endpoint base URL; default from TGCDN_ADMIN_LISTEN, else 127.0.0.1:9180.
        #[arg(long)]
        admin: Option<String>,
    },
    /// Mint, inspect, revoke or unrevoke links on the running core (through its admin
    /// endpoint). Revoking a link revokes the file: every link to that message answers 410.
    Link {
        #[command(subcommand)]
        action: LinkCommand,
        /// Admin endpoint base URL; default from TGCDN_ADMIN_LISTEN, else 127.0.0.1:9180.
        #[arg(long, global = true)]
        admin: Option<String>,
    },
}

#[derive(Subcommand)]
enum LinkCommand {
    /// Sign a link to a message of a channel, optionally expiring.
    Mint {
        /// Channel (Bot API id, -100…).
        #[arg(long, allow_hyphen_values = true)]
        chat: i64,
        /// Message id in that channel.
        #[arg(long)]
        msg: i32,
        /// Lifetime such as 7d, 12h or 30m; default never expires.
        #[arg(long)]
        expires: Option<String>,
        /// The file name shown at the end of the link.
        #[arg(long)]
        name: Option<String>,
    },
    /// Print what a link points at, when it expires and whether it is revoked.
    Inspect { link: String },
    /// Revoke the file a link points at (every link to it), at every edge within a second.
    Revoke {
        link: String,
        /// Kept with the revocation.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Make a revoked file servable again.
    Unrevoke { link: String },
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
        Command::Run { with_edge } => run(with_edge).await,
        Command::CheckConfig => check_config(),
        Command::Status { admin } => status(admin).await,
        Command::Reindex { channel, admin } => reindex(channel, admin).await,
        Command::Link { action, admin } => link(action, admin).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config() -> Result<(Config, Settings)> {
    let settings = Settings::from_process_env().context("reading settings")?;
    for unknown in Config::unknown_keys(&settings) {
        tracing::warn!("unknown setting {unknown} (typo?)");
    }
    let config = Config::from_settings(&settings).context("invalid configuration")?;
    Ok((config, settings))
}

fn check_config() -> Result<()> {
    let (config, _) = load_config()?;
    print!("{}", config.describe());
    println!("configuration is valid");
    Ok(())
}

/// `--admin`, else `http://` + TGCDN_ADMIN_LISTEN, else the default admin address.
fn admin_base(admin: Option<String>) -> Result<String> {
    Ok(match admin {
        Some(base) => base,
        None => {
            let settings = Settings::from_process_env().context("reading settings")?;
            let addr: std::net::SocketAddr = settings
                .get_default(config::SETTINGS, "admin_listen")
                .context("TGCDN_ADMIN_LISTEN")?;
            format!("http://{addr}")
        }
    })
}

/// The admin client for `--admin` (or the configured address), with TGCDN_ADMIN_TOKEN.
fn admin_client(admin: Option<String>) -> Result<(String, AdminClient)> {
    let base = admin_base(admin)?;
    let settings = Settings::from_process_env().context("reading settings")?;
    let token: Option<String> = settings.get("admin_token").context("TGCDN_ADMIN_TOKEN")?;
    Ok((base.clone(), AdminClient::new(base, token)))
}

async fn link(action: LinkCommand, admin: Option<String>) -> Result<()> {
    let (base, client) = admin_client(admin)?;
    let request = |link: String, reason: Option<String>| LinkRequest { link, reason };
    let info = match action {
        LinkCommand::Mint {
            chat,
            msg,
            expires,
            name,
        } => {
            let expires_in_secs = match expires {
                Some(text) => Some(
                    parse_expiry(&text)
                        .with_context(|| format!("--expires {text:?}: use 7d, 12h, 30m…"))?
                        .as_secs(),
                ),
                None => None,
            };
            let mint = MintRequest {
                chat_id: chat,
                msg_id: msg,
                expires_in_secs,
                name,
            };
            client.mint(&mint).await
        }
        LinkCommand::Inspect { link } => client.link_action("inspect", &request(link, None)).await,
        LinkCommand::Revoke { link, reason } => {
            client.link_action("revoke", &request(link, reason)).await
        }
        LinkCommand::Unrevoke { link } => {
            client.link_action("unrevoke", &request(link, None)).await
        }
    }
    .with_context(|| format!("asking the core at {base}"))?;
    print!("{}", info.lines());
    Ok(())
}

async fn reindex(channel: Option<i64>, admin: Option<String>) -> Result<()> {
    let (base, client) = admin_client(admin)?;
    let answer = client
        .reindex(channel)
        .await
        .with_context(|| format!("asking the core at {base}"))?;
    println!("re-index queued for {} channel(s)", answer.queued.len());
    for (channel, progress) in &answer.progress {
        println!(
            "{channel}: {}, {} ids left, {} posts found, {} batches, {} flood waits",
            progress.status,
            progress.remaining,
            progress.posts,
            progress.batches,
            progress.flood_waits
        );
    }
    Ok(())
}

async fn status(admin: Option<String>) -> Result<()> {
    let (base, client) = admin_client(admin)?;
    let report = client
        .report()
        .await
        .with_context(|| format!("asking the core at {base}"))?;
    print!("{}", tgcdn_core::report::table(&report));
    Ok(())
}

async fn run(with_edge: bool) -> Result<()> {
    let (mut config, settings) = load_config()?;
    if with_edge && config.one_box.is_none() {
        config.one_box =
            Some(OneBoxEdge::from_settings(&settings).context("one-box edge settings")?);
    }
    let core = Running::start(&config).await?;
    // Before the lines below: see `tgcdn_core::signals`.
    let stop = StopSignals::install().context("installing the SIGINT/SIGTERM handlers")?;
    if let (Some(addr), Some(fingerprint)) = (core.quic_addr(), core.fingerprint()) {
        println!(
            "tgcdn-core {} serving edges on {addr} (QUIC, ALPN {})",
            env!("CARGO_PKG_VERSION"),
            String::from_utf8_lossy(tgcdn_shared::wire::ALPN)
        );
        println!("certificate sha256 (edges pin it): {fingerprint}");
    }
    println!("admin endpoint on http://{}", core.admin_addr());
    if let Some(addr) = core.edge_addr() {
        println!("serving viewers on http://{addr} (one-box edge)");
    }
    let (rcvbuf, sndbuf) = core.socket_buffers().unwrap_or_default();
    tracing::info!(
        rcvbuf,
        sndbuf,
        bots = core.bot_count(),
        unhealthy = core.unhealthy_bots(),
        "core running"
    );

    stop.wait().await;
    tracing::info!("shutting down");
    core.shutdown().await?;
    Ok(())
}
