//! Wiring: builds the shared state (cache, sources, metrics, HTTP settings) from an
//! upstream and options; [`crate::http::serve`] then runs it on a listener.
//!
//! Called by `main` and by tests and by the core's one-box mode, which passes its own
//! in-process [`Upstream`]. Holds no logic of its own beyond putting the parts together.

use std::sync::Arc;

use crate::budget::{DEFAULT_INFLIGHT_MAX, InflightBudget};
use crate::cache::ChunkCache;
use crate::fetch::{ChunkSource, MetaSource};
use crate::http::addon::{AddonEdge, AddonSettings};
use crate::http::headers::FileHeaders;
use crate::http::{AppState, HttpSettings};
use crate::metrics::EdgeMetrics;
use crate::slots::FetchSlots;
use crate::upstream::Upstream;
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
    let addon = AddonEdge::new(upstream.clone(), options.addon);
    let cache = ChunkCache::new(options.cache_bytes);
    let budget = InflightBudget::new(options.inflight_max);
    let metrics = EdgeMetrics::new(cache.clone()).with_budget(budget.counters().clone());
    let chunks = ChunkSource::with_limits(
        cache,
        upstream.clone(),
        FetchSlots::new(options.fetch_cap, options.fetch_per_client),
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
