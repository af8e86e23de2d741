//! Wiring: builds the shared state (cache, sources, metrics, HTTP settings) from an
//! upstream and options; [`crate::http::serve`] then runs it on a listener.
//!
//! Called by `main` and by tests and by the core's one-box mode, which passes its own
//! in-process [`Upstream`], and by the sandbox's second edge, which runs what `main` runs.
//! Holds no logic of its own beyond putting the parts together.

use std::sync::{Arc, Mutex};

use tgcdn_shared::wire::Heartbeat;

use crate::budget::{DEFAULT_INFLIGHT_MAX, InflightBudget};
use crate::cache::ChunkCache;
use crate::fetch::{ChunkSource, MetaSource};
use crate::http::addon::{AddonEdge, AddonSettings};
use crate::http::headers::FileHeaders;
use crate::http::{AppState, HttpSettings};
use crate::metrics::EdgeMetrics;
use crate::slots::FetchSlots;
use crate::upstream::Upstream;
use crate::upstream::quic::LoadReport;
use tgcdn_shared::token::TokenVerifier;

/// Sizes of the edge's shared resources.
#[derive(Debug, Clone)]
pub struct EdgeOptions {
    /// Chunk cache capacity in bytes.
    pub cache_bytes: u64,
    /// Chunk fetches in flight to the upstream, edge-wide.
    pub fetch_cap: usize,
    /// Of `fetch_cap`, the most fetches one client's requests may have in flight.
    pub fetch_per_client: usize,
    /// The least share of the fetch slots a client keeps while other clients are active.
    pub fetch_fair_share: usize,
    /// Bytes of chunks response bodies may hold outside the cache, edge-wide.
    pub inflight_max: u64,
    pub http: HttpSettings,
    /// The Stremio addon routes: base URL, secret, answer cache.
    pub addon: AddonSettings,
}

impl Default for EdgeOptions {
    fn default() -> Self {
        EdgeOptions {
            cache_bytes: 256 << 20,
            fetch_cap: 64,
            fetch_per_client: 16,
            fetch_fair_share: crate::slots::DEFAULT_FAIR_SHARE,
            inflight_max: DEFAULT_INFLIGHT_MAX,
            http: HttpSettings::default(),
            addon: AddonSettings::default(),
        }
    }
}

/// The state every request shares.
pub fn build_state(
    upstream: Arc<dyn Upstream>,
    verifier: TokenVerifier,
    options: EdgeOptions,
) -> Arc<AppState> {
    let cache = ChunkCache::new(options.cache_bytes);
    let budget = InflightBudget::new(options.inflight_max);
    let metrics = EdgeMetrics::new(cache.clone()).with_budget(budget.counters().clone());
    let addon = AddonEdge::new(upstream.clone(), options.addon, metrics.addon.clone());
    let chunks = ChunkSource::with_limits(
        cache,
        upstream.clone(),
        FetchSlots::with_fair_share(
            options.fetch_cap,
            options.fetch_per_client,
            options.fetch_fair_share,
        ),
        budget,
        metrics.upstream_latency.clone(),
    );
    let metas =
        MetaSource::with_derive(upstream, metrics.upstream_latency.clone(), FileHeaders::new);
    Arc::new(AppState::new(
        verifier,
        chunks,
        metas,
        metrics,
        options.http,
        addon,
    ))
}

/// What heartbeats tell the core about this edge's load: requests and connections now, the
/// cache's fill, and its hit ratio since the previous heartbeat.
///
/// Holds the state weakly: the state holds the upstream, and the upstream this report, so a
/// strong reference would keep the QUIC client's supervisor alive after the edge stopped.
pub fn load_report(state: &Arc<AppState>) -> LoadReport {
    let state = Arc::downgrade(state);
    let previous = Mutex::new((0u64, 0u64));
    Arc::new(move || {
        let Some(state) = state.upgrade() else {
            return Heartbeat::default();
        };
        let cache = state.chunks.cache();
        let counters = cache.counters();
        let (hits, lookups) = (
            counters.hits.get(),
            counters.hits.get() + counters.misses.get() + counters.coalesced.get(),
        );
        let mut last = previous
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (new_hits, new_lookups) = (hits - last.0.min(hits), lookups - last.1.min(lookups));
        *last = (hits, lookups);
        let ratio = (new_hits * 1000).checked_div(new_lookups).unwrap_or(0);
        Heartbeat {
            in_flight: u32::try_from(state.metrics.requests_in_flight.get()).unwrap_or(0),
            open_connections: u32::try_from(state.metrics.connections_open.get()).unwrap_or(0),
            cache_bytes: cache.weighted_size(),
            cache_capacity_bytes: cache.capacity_bytes(),
            cache_hit_ratio_permille: u16::try_from(ratio).unwrap_or(1000),
            bytes_served_total: state.metrics.bytes_sent.get(),
            uptime_secs: 0,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemoryUpstream;
    use tgcdn_shared::token::{Keyring, LinkKey};

    /// The QUIC client keeps its load report, and the state keeps the client: a report that
    /// held the state would make a cycle, and a stopped edge's client would reconnect forever.
    #[test]
    fn the_load_report_does_not_keep_the_state_alive() {
        let keyring = Keyring::new(LinkKey::new(1, [7u8; 32]).unwrap(), Vec::new()).unwrap();
        let state = build_state(
            Arc::new(MemoryUpstream::new()),
            TokenVerifier::new(keyring),
            EdgeOptions::default(),
        );
        let report = load_report(&state);
        assert_eq!(report().cache_capacity_bytes, 256 << 20);
        let weak = Arc::downgrade(&state);
        drop(state);
        assert!(weak.upgrade().is_none());
        assert_eq!(report(), Heartbeat::default());
    }
}
