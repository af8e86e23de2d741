//! `tgcdn-sandbox`: the command line. Parses flags, sets up logging on stderr, starts the
//! [`Sandbox`], prints the banner (or runs `--smoke`), waits for Ctrl-C/SIGTERM and shuts
//! down. The only anyhow user in the crate: a failure becomes one `error: …` line and
//! exit code 1.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use tgcdn_core::signals::StopSignals;
use tgcdn_sandbox::config_file::{self, FileOptions};
use tgcdn_sandbox::world::NetworkFaults;
use tgcdn_sandbox::{DEFAULT_LISTEN, DEFAULT_REMOTE_LISTEN, Options, Sandbox, banner, smoke};

/// Logs when `RUST_LOG` is unset: the sandbox, core and edge at info (edge access lines
/// included), the emulator and grammers only when something is wrong.
const DEFAULT_LOG_FILTER: &str = "warn,tgcdn_sandbox=info,tgcdn_core=info,tgcdn_edge=info";

#[derive(Parser)]
#[command(
    name = "tgcdn-sandbox",
    version,
    about = "tgcdn on this machine with no Telegram account: an emulated Telegram, the real core and edge, and demo files to stream",
    after_help = "Logs go to stderr (RUST_LOG overrides the default filter); links and commands to stdout."
)]
struct Cli {
    /// Read these settings from a TOML file too, one key per flag (listen, remote_listen,
    /// data_dir, files, latency_ms, bandwidth, smoke); flags win, --file adds to `files`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// HTTP address of the first region's edge (the core's own, in its process)
    /// [default: 127.0.0.1:8080].
    #[arg(long, env = "TGCDN_SANDBOX_LISTEN")]
    listen: Option<SocketAddr>,
    /// HTTP address of the second region's edge (talks to the core over QUIC)
    /// [default: 127.0.0.1:8081].
    #[arg(long, env = "TGCDN_SANDBOX_REMOTE_LISTEN")]
    remote_listen: Option<SocketAddr>,
    /// Keep the core's database and the emulated Telegram here (DIR/core, DIR/world.state,
    /// DIR/files) instead of a temporary directory: the next run with it continues the world.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Also post this file to the storage channel, served from disk (repeatable).
    #[arg(long = "file", value_name = "PATH")]
    files: Vec<PathBuf>,
    /// Emulated Telegram round-trip latency added to every request, in milliseconds.
    #[arg(long, value_name = "MS")]
    latency_ms: Option<u64>,
    /// Emulated bandwidth per Telegram connection, e.g. 20MiB (per second).
    #[arg(long, value_name = "BYTES", value_parser = parse_bandwidth)]
    bandwidth: Option<u64>,
    /// Start, download one link over HTTP, verify its bytes, print OK and exit.
    #[arg(long)]
    smoke: bool,
}

fn parse_bandwidth(text: &str) -> Result<u64, String> {
    config_file::parse_bandwidth(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER)),
        )
        .init();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
        .and_then(|runtime| runtime.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let file = match &cli.config {
        Some(path) => FileOptions::read(path)?,
        None => FileOptions::default(),
    };
    // Checked when the file was read.
    let file_bandwidth = file
        .bandwidth
        .as_deref()
        .map(parse_bandwidth)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let options = Options {
        listen: cli.listen.or(file.listen).unwrap_or(DEFAULT_LISTEN),
        remote_listen: cli
            .remote_listen
            .or(file.remote_listen)
            .unwrap_or(DEFAULT_REMOTE_LISTEN),
        data_dir: cli.data_dir.or(file.data_dir),
        files: file.files.into_iter().chain(cli.files).collect(),
        faults: NetworkFaults {
            latency: cli
                .latency_ms
                .or(file.latency_ms)
                .map(Duration::from_millis),
            bandwidth: cli.bandwidth.or(file_bandwidth),
        },
    };
    let smoke_run = cli.smoke || file.smoke;
    let sandbox = Sandbox::start(options).await?;
    if smoke_run {
        let outcome = smoke::check(&sandbox).await;
        sandbox.shutdown().await?;
        println!("{}", outcome?);
        return Ok(());
    }
    // Before the banner: see `tgcdn_core::signals`.
    let stop = StopSignals::install().context("installing the SIGINT/SIGTERM handlers")?;
    print!("{}", banner::render(&sandbox));
    stop.wait().await;
    eprintln!("stopping…");
    sandbox.shutdown().await?;
    Ok(())
}
