//! Wiring: builds the shared state (cache, sources, metrics, HTTP settings) from an
//! upstream and options; [`crate::http::serve`] then runs it on a listener.
//!
//! Called by `main` and by tests and by the core's one-box mode, which passes its own
//! in-process [`Upstream`]. Holds no logic of its own beyond putting the parts together.

use std::sync::Arc;

use crate::cache::ChunkCache;
use crate::fetch::{ChunkSource, MetaSource};
use crate::http::addon::{AddonEdge, AddonSettings};
use crate::http::headers::FileHeaders;
use crate::http::{AppState, HttpSettings};
use crate::metrics::EdgeMetrics;
use crate::upstream::Upstream;
use tgcdn_shared::token::TokenVerifier;

/// Sizes of the edge's shared resources.
#[derive(Debug, Clone)]
pub struct EdgeOptions {
    /// Chunk cache capacity in bytes.
    pub cache_bytes: u64,
    /// Chunk fetches in flight to the upstream, edge-wide.
    pub fetch_cap: usize,
    pub http: HttpSettings,
    /// The Stremio addon routes: base URL, secret, answer cache.
    pub addon: AddonSettings,
}

impl Default for EdgeOptions {
    fn default() -> Self {
        EdgeOptions {
            cache_bytes: 256 << 20,
            fetch_cap: 64,
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
    let metrics = EdgeMetrics::new(cache.clone());
    let addon = AddonEdge::new(upstream.clone(), options.addon, metrics.addon.clone());
    let chunks = ChunkSource::new(
        cache,
        upstream.clone(),
        options.fetch_cap,
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
