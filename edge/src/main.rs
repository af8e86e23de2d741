//! `tgcdn-edge`: command line and glue. Reads `TGCDN_*` settings, starts the QUIC links to
//! the cores (one, or a pool) in the background, and serves HTTP (or HTTPS) until SIGINT/SIGTERM; SIGHUP
//! reloads the TLS certificate and key.
//!
//! The work lives in the library; this file only wires it and turns failures into an exit
//! code. Serving starts before the core answers (`/readyz` says when it has), so a
//! container platform sees the port open within milliseconds. `/metrics` is served on its
//! own listener (`TGCDN_METRICS_LISTEN`, loopback by default), never on the public port.

use std::sync::Arc;

use anyhow::Context;
use tgcdn_edge::app::{build_state, load_report};
use tgcdn_edge::config::{EdgeConfig, settings_help};
use tgcdn_edge::http::tls::TlsIdentity;
use tgcdn_edge::http::{serve, serve_metrics, serve_tls};
use tgcdn_edge::signals::StopSignals;
use tgcdn_edge::upstream::pool::CorePool;
use tgcdn_shared::config::Settings;
use tokio::net::TcpListener;
use tokio::sync::watch;

fn cli() -> clap::Command {
    clap::Command::new("tgcdn-edge")
        .version(env!("CARGO_PKG_VERSION"))
        .about("tgcdn edge: serves /dl/{token}/{name} with Range support from a chunk cache, fetching misses from the core over QUIC")
        .after_help(settings_help())
        .arg(
            clap::Arg::new("check-config")
                .long("check-config")
                .action(clap::ArgAction::SetTrue)
                .help("Validate the configuration, print every setting in force (secrets masked) and exit"),
        )
}

fn main() -> anyhow::Result<()> {
    // Before any thread: see `tgcdn_edge::alloc`.
    tgcdn_edge::alloc::keep_chunks_out_of_the_heap();
    let matches = cli().get_matches();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let settings = Settings::from_process_env()?;
    for key in EdgeConfig::unknown_keys(&settings) {
        tracing::warn!(key, "unknown setting ignored");
    }
    let config = EdgeConfig::from_settings(&settings)?;
    if matches.get_flag("check-config") {
        print!("{}", settings.describe(tgcdn_edge::config::SETTINGS));
        println!("configuration is valid");
        return Ok(());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?
        .block_on(run(config))
}

async fn run(config: EdgeConfig) -> anyhow::Result<()> {
    // First, so no signal after the `serving` line below finds the default action.
    let signals = StopSignals::install().context("cannot install the SIGINT/SIGTERM handlers")?;
    let upstream =
        Arc::new(CorePool::start(config.pool_settings()).context("cannot set up the QUIC client")?);
    let state = build_state(upstream.clone(), config.verifier, config.options);
    upstream.set_load_report(load_report(&state));
    let push_state = state.clone();
    upstream.set_push_sink(Arc::new(move |core, push| {
        let state = push_state.clone();
        Box::pin(async move { tgcdn_edge::push::apply(&state, core, &push).await })
    }));

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let metrics_listener = TcpListener::bind(config.metrics_listen)
        .await
        .with_context(|| format!("cannot listen on {} for metrics", config.metrics_listen))?;
    // One signal stops both listeners. (No tokio-util here: the e2e crate builds this file.)
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        signals.wait().await;
        let _ = stop.send(true);
    });
    let stopping = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    tokio::spawn(serve_metrics(metrics_listener, state.clone(), stopping()));
    tracing::info!(
        listen = %config.listen,
        metrics = %config.metrics_listen,
        tls = config.tls.is_some(),
        cores = %upstream.names().join(","),
        edge_id = %config.edge_id,
        region = %config.region,
        "serving"
    );
    match config.tls {
        Some(tls) => {
            tokio::spawn(reload_on_hangup(tls.clone()));
            serve_tls(listener, state, tls, stopping()).await;
        }
        None => serve(listener, state, stopping()).await,
    }
    tracing::info!("stopped");
    Ok(())
}

/// Re-reads the certificate and key on every SIGHUP (after a renewal); a bad pair is logged
/// and the previous one kept, so a botched renewal never takes the edge down.
async fn reload_on_hangup(tls: Arc<TlsIdentity>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot watch SIGHUP; TLS reload disabled");
                return;
            }
        };
        while hangup.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => {
                    tracing::info!(cert = %tls.files().cert.display(), "TLS identity reloaded")
                }
                Err(error) => {
                    tracing::error!(%error, "TLS reload failed; keeping the previous identity")
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tls;
    }
}
