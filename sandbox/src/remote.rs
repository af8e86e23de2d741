//! The second region: an edge that reaches the core over QUIC exactly as a remote
//! `tgcdn-edge` does. Its configuration goes through the edge binary's reader
//! ([`crate::settings::edge_config`]), and its QUIC client (certificate pinned, cluster
//! secret proved in `Hello`, heartbeats with its load), its chunk cache and its HTTP server
//! are built by the same library calls the binary's `main` makes. Only the process is
//! shared: it runs on the sandbox's runtime, on its own listener, with its own cache.
//!
//! Started by [`crate::Sandbox::start`] once the core's QUIC server is up; stopped before
//! the core, as an operator drains edges before upgrading the core.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tgcdn_edge::app::{build_state, load_report};
use tgcdn_edge::cache::CacheCounters;
use tgcdn_edge::http::{AppState, serve};
use tgcdn_edge::upstream::quic::QuicUpstream;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::SandboxError;
use crate::settings::{CoreAddress, Secrets, edge_config};

/// The second region's name, in the core's fleet view and in the banner.
pub const REGION: &str = "region-b";
/// How long the edge may take to connect to the core (handshake, `Hello`, `Welcome`).
const CONNECT_WAIT: Duration = Duration::from_secs(30);

/// A running edge of the second region.
pub struct RemoteEdge {
    addr: SocketAddr,
    public_base: String,
    state: Arc<AppState>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
}

/// The cache's lookups so far: a hit was served from this edge's memory, a miss was
/// fetched from the core, a coalesced lookup waited on another request's fetch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheLookups {
    pub hits: u64,
    pub misses: u64,
    pub coalesced: u64,
}

impl CacheLookups {
    fn of(counters: &CacheCounters) -> Self {
        CacheLookups {
            hits: counters.hits.get(),
            misses: counters.misses.get(),
            coalesced: counters.coalesced.get(),
        }
    }

    /// The lookups between `earlier` and `self`.
    pub fn since(self, earlier: CacheLookups) -> CacheLookups {
        CacheLookups {
            hits: self.hits.saturating_sub(earlier.hits),
            misses: self.misses.saturating_sub(earlier.misses),
            coalesced: self.coalesced.saturating_sub(earlier.coalesced),
        }
    }

    /// Every lookup was answered from the cache.
    pub fn all_hits(self) -> bool {
        self.hits > 0 && self.misses == 0 && self.coalesced == 0
    }
}

impl RemoteEdge {
    /// Starts serving on `listener` (bound by the caller before anything else started, so a
    /// busy port is reported first) and returns once the QUIC link to the core is up.
    pub async fn start(
        listener: TcpListener,
        public_base: String,
        secrets: &Secrets,
        core: &CoreAddress<'_>,
    ) -> Result<RemoteEdge, SandboxError> {
        let addr = listener
            .local_addr()
            .map_err(|error| SandboxError::RemoteEdge(format!("listener: {error}")))?;
        let config = edge_config(secrets, core, addr, &public_base, REGION)?;
        let upstream = Arc::new(
            QuicUpstream::start(config.quic_settings())
                .map_err(|error| SandboxError::RemoteEdge(format!("QUIC client: {error}")))?,
        );
        let state = build_state(upstream.clone(), config.verifier, config.options);
        upstream.set_load_report(load_report(&state));
        if !upstream.wait_ready(CONNECT_WAIT).await {
            return Err(SandboxError::RemoteEdge(format!(
                "no QUIC connection to the core at {} within {CONNECT_WAIT:?}",
                core.quic
            )));
        }
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(serve(listener, state.clone(), async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
        tracing::info!(listen = %addr, region = REGION, core = %core.quic, "remote edge serving");
        Ok(RemoteEdge {
            addr,
            public_base,
            state,
            stop,
            server,
        })
    }

    /// Where it accepts HTTP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL of its links.
    pub fn public_base(&self) -> &str {
        &self.public_base
    }

    /// Its chunk cache's lookups so far.
    pub fn cache_lookups(&self) -> CacheLookups {
        CacheLookups::of(self.state.chunks.cache().counters())
    }

    /// Stops accepting, lets responses in flight finish (within the drain timeout) and
    /// closes the QUIC link.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.server.await {
            tracing::warn!(%error, "the remote edge's server task failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CacheLookups;

    #[test]
    fn only_lookups_without_a_fetch_are_all_hits() {
        let before = CacheLookups {
            hits: 1,
            misses: 2,
            coalesced: 0,
        };
        let hit = CacheLookups { hits: 3, ..before };
        assert!(hit.since(before).all_hits());
        let missed = CacheLookups { misses: 3, ..hit };
        assert!(!missed.since(before).all_hits());
        let waited = CacheLookups {
            coalesced: 1,
            ..hit
        };
        assert!(!waited.since(before).all_hits());
        assert!(!before.since(before).all_hits(), "no lookup at all");
    }
}
