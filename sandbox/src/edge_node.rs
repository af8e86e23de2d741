//! The edge, started in this process from a validated `tgcdn_edge::config::EdgeConfig`,
//! wired as `tgcdn-edge` wires it: a [`QuicUpstream`] to the core (certificate pinned,
//! cluster secret proved), the shared state from `app::build_state`, and `http::serve` on
//! a listener the sandbox bound first (so a busy port fails before anything else starts).
//!
//! Called by [`crate::Sandbox::start`]. Adds no behaviour of its own: the point is that
//! what the viewer's `curl` reaches is the production edge.

use std::sync::Arc;
use std::time::Duration;

use tgcdn_edge::app::build_state;
use tgcdn_edge::config::EdgeConfig;
use tgcdn_edge::http::serve;
use tgcdn_edge::upstream::quic::{QuicSettings, QuicUpstream};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::SandboxError;

/// How long the edge may take to connect to the core and say Hello at start.
const READY_WAIT: Duration = Duration::from_secs(10);

/// A running edge.
pub struct EdgeNode {
    serving: JoinHandle<()>,
    stop: watch::Sender<bool>,
    upstream: Arc<QuicUpstream>,
}

impl EdgeNode {
    /// Connects to the core, then serves HTTP on `listener` until [`EdgeNode::shutdown`].
    pub async fn start(config: EdgeConfig, listener: TcpListener) -> Result<Self, SandboxError> {
        let mut quic = QuicSettings::new(
            config.core.addr.clone(),
            config.core.cert_sha256,
            config.core.cluster_secret.bytes().to_vec(),
        );
        quic.server_name = config.core.server_name.clone();
        quic.edge_id = config.edge_id.clone();
        quic.region = config.region.clone();
        quic.public_base_url = config.public_url.as_str().to_owned();
        let upstream = Arc::new(
            QuicUpstream::start(quic)
                .map_err(|error| SandboxError::edge("setting up the QUIC client", error))?,
        );
        if !upstream.wait_ready(READY_WAIT).await {
            return Err(SandboxError::edge(
                "connecting to the core",
                format!("no Welcome within {READY_WAIT:?}"),
            ));
        }
        let state = build_state(upstream.clone(), config.verifier, config.options);
        let (stop, mut stopped) = watch::channel(false);
        let serving = tokio::spawn(serve(listener, state, async move {
            // An error means the sender is gone, which is a stop too.
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
        Ok(EdgeNode {
            serving,
            stop,
            upstream,
        })
    }

    /// Stops accepting, lets responses in flight drain (the configured drain timeout), then
    /// closes the QUIC link.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(grace, self.serving).await.is_err() {
            tracing::warn!("the edge did not drain within {grace:?}");
        }
        drop(self.upstream);
    }
}
