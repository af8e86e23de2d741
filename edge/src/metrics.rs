//! Prometheus metrics of the edge and the text rendered at `/metrics` on the metrics
//! listener (`crate::http::serve_metrics`).
//!
//! Owned by the HTTP layer's shared state; the cache registers its own counters here so
//! there is one source of truth per number. Rendering never fails a request: an encoding
//! error (only possible on a formatter bug) renders what was written so far.

use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::budget::BudgetCounters;
use crate::cache::ChunkCache;
use crate::fetch::latency_histogram;
use crate::upstream::LinkStatus;

type StatusLabel = [(&'static str, String); 1];

/// Statuses a busy edge answers nearly every time. Their counters are resolved from the
/// family once and then kept, so counting one costs an atomic add instead of a label string,
/// a hash and a lock. Resolved on first use, so `/metrics` shows only statuses that happened.
const HOT_STATUSES: [u16; 6] = [200, 206, 304, 404, 416, 499];

fn hot_slot(status: u16) -> Option<usize> {
    HOT_STATUSES.iter().position(|&hot| hot == status)
}

/// What the addon's answer cache lookups cost, by outcome (see
/// `crate::http::addon::cache`). Cheap to clone (handles share atomics).
#[derive(Clone, Debug, Default)]
pub struct AnswerCounters {
    /// Answered from the cache, or by joining a core call another request started.
    pub hits: Counter,
    /// Answered by a core call this lookup made.
    pub misses: Counter,
    /// Lookups refused at once because the core-call cap was reached.
    pub busy: Counter,
    /// Lookups whose core call failed (nothing cached).
    pub errors: Counter,
}

/// Every metric the edge exports. Cheap to clone (handles share atomics).
#[derive(Clone)]
pub struct EdgeMetrics {
    requests: Family<StatusLabel, Counter>,
    hot_requests: Arc<[OnceLock<Counter>; HOT_STATUSES.len()]>,
    pub bytes_sent: Counter,
    pub requests_in_flight: Gauge,
    pub connections_open: Gauge,
    /// Connections closed at accept because a connection cap was reached.
    pub connections_refused: Counter,
    pub upstream_latency: Histogram,
    /// Messages the core pushed (revocations), applied.
    pub pushes_received: Counter,
    /// Files the cores' revocation lists hold (`crate::revoked`).
    pub revoked_files: Gauge,
    /// Revocations not kept because a core's list was full.
    pub revocations_refused: Counter,
    cache_bytes: Gauge,
    cache: ChunkCache,
    /// The addon answer cache's lookups.
    pub addon: AnswerCounters,
    budget: Option<BudgetCounters>,
}

impl EdgeMetrics {
    pub fn new(cache: ChunkCache) -> Self {
        EdgeMetrics {
            requests: Family::default(),
            hot_requests: Arc::default(),
            bytes_sent: Counter::default(),
            requests_in_flight: Gauge::default(),
            connections_open: Gauge::default(),
            connections_refused: Counter::default(),
            upstream_latency: latency_histogram(),
            pushes_received: Counter::default(),
            revoked_files: Gauge::default(),
            revocations_refused: Counter::default(),
            cache_bytes: Gauge::default(),
            cache,
            addon: AnswerCounters::default(),
            budget: None,
        }
    }

    /// Also reports the in-flight budget's counters.
    pub fn with_budget(mut self, counters: BudgetCounters) -> Self {
        self.budget = Some(counters);
        self
    }

    /// Counts one finished request by status code.
    pub fn count_request(&self, status: u16) {
        match hot_slot(status) {
            Some(slot) => self.hot_requests[slot]
                .get_or_init(|| self.status_counter(status))
                .inc(),
            None => self.status_counter(status).inc(),
        };
    }

    /// The family's counter for `status`; a clone shares the family's atomic.
    fn status_counter(&self, status: u16) -> Counter {
        self.requests
            .get_or_create(&[("status", status.to_string())])
            .clone()
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.render_with_links(&[])
    }

    /// [`Self::render`], plus one series per core link: up, requests, failures.
    pub fn render_with_links(&self, links: &[LinkStatus]) -> String {
        let mut registry = Registry::with_prefix("tgcdn_edge");
        register_links(&mut registry, links);
        registry.register(
            "http_requests",
            "Finished HTTP requests by status",
            self.requests.clone(),
        );
        registry.register(
            "http_body_bytes_sent",
            "Response body bytes produced",
            self.bytes_sent.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "Requests being served",
            self.requests_in_flight.clone(),
        );
        registry.register(
            "http_connections_open",
            "Open client connections",
            self.connections_open.clone(),
        );
        registry.register(
            "http_connections_refused",
            "Connections closed at accept by the total or per-client connection cap",
            self.connections_refused.clone(),
        );
        registry.register(
            "upstream_latency_seconds",
            "Latency of meta and chunk requests to the core",
            self.upstream_latency.clone(),
        );
        registry.register(
            "pushes_received",
            "Revocations and other messages the core pushed, applied",
            self.pushes_received.clone(),
        );
        registry.register(
            "revoked_files",
            "Files refused because a core revoked them, over every core's list",
            self.revoked_files.clone(),
        );
        registry.register(
            "revocations_refused",
            "Revocations not kept because a core's list was full (TGCDN_REVOKED_MAX)",
            self.revocations_refused.clone(),
        );
        let counters = self.cache.counters();
        registry.register("cache_hits", "Chunk cache hits", counters.hits.clone());
        registry.register(
            "cache_misses",
            "Chunk cache misses that started an upstream fetch",
            counters.misses.clone(),
        );
        registry.register(
            "cache_coalesced",
            "Chunk cache misses that joined a fetch already in flight",
            counters.coalesced.clone(),
        );
        registry.register(
            "cache_evictions",
            "Chunks evicted for size",
            counters.evictions.clone(),
        );
        registry.register(
            "cache_fetch_errors",
            "Chunk fetches that failed",
            counters.fetch_errors.clone(),
        );
        registry.register(
            "cache_fills_cancelled",
            "Chunk fills aborted because every request waiting for them went away",
            counters.cancelled.clone(),
        );
        registry.register(
            "cache_fetches_in_flight",
            "Chunk fetches to the core in flight",
            counters.in_flight.clone(),
        );
        // As moka last accounted it: a scrape runs no cache maintenance, so it may trail the
        // latest inserts and evictions by the few the cache has not processed yet.
        self.cache_bytes
            .set(i64::try_from(self.cache.weighted_size()).unwrap_or(i64::MAX));
        registry.register(
            "cache_bytes",
            "Bytes held by the chunk cache",
            self.cache_bytes.clone(),
        );
        let addon = &self.addon;
        registry.register(
            "addon_cache_hits",
            "Addon answers served from the edge cache (or a core call already in flight)",
            addon.hits.clone(),
        );
        registry.register(
            "addon_cache_misses",
            "Addon answers that took a core call",
            addon.misses.clone(),
        );
        registry.register(
            "addon_cache_busy",
            "Addon lookups refused because the core-call cap was reached",
            addon.busy.clone(),
        );
        registry.register(
            "addon_cache_errors",
            "Addon lookups whose core call failed",
            addon.errors.clone(),
        );
        if let Some(budget) = &self.budget {
            registry.register(
                "inflight_bytes",
                "Chunk bytes response bodies hold outside the cache (TGCDN_INFLIGHT_MAX bounds it)",
                budget.held.clone(),
            );
            registry.register(
                "inflight_held_bytes",
                "Of the in-flight bytes, those of chunks responses hold now, each allocation once (the rest is reserved for read-ahead still being fetched)",
                self.cache.holdings().held_bytes().clone(),
            );
            registry.register(
                "inflight_cached_bytes",
                "Of the held bytes, those of chunks the cache still holds too (the same memory): chunk memory = cache_bytes + inflight_held_bytes - this",
                self.cache.holdings().cached_bytes().clone(),
            );
            registry.register(
                "inflight_refused",
                "Chunk leases refused because the in-flight budget was spent",
                budget.refused.clone(),
            );
        }
        let mut text = String::new();
        if let Err(error) = encode(&mut text, &registry) {
            tracing::error!(%error, "metrics encoding failed");
        }
        text
    }
}

type CoreLabel = [(&'static str, String); 1];

/// The core links' series, made afresh from `links` at each scrape: the pool keeps its
/// counts in plain atomics, and a counter built from a monotonic count is one.
fn register_links(registry: &mut Registry, links: &[LinkStatus]) {
    let up: Family<CoreLabel, Gauge> = Family::default();
    let requests: Family<CoreLabel, Counter> = Family::default();
    let failures: Family<CoreLabel, Counter> = Family::default();
    let floods: Family<CoreLabel, Counter> = Family::default();
    for link in links {
        let label = [("core", link.name.clone())];
        up.get_or_create(&label).set(i64::from(link.up));
        requests.get_or_create(&label).inc_by(link.requests);
        failures.get_or_create(&label).inc_by(link.failures);
        floods.get_or_create(&label).inc_by(link.floods);
    }
    registry.register(
        "core_up",
        "Whether the link to this core is connected and authenticated (readiness: any is)",
        up,
    );
    registry.register(
        "core_requests",
        "Meta, chunk and addon requests sent to this core (failover attempts included)",
        requests,
    );
    registry.register(
        "core_failures",
        "Requests that failed on this core with a connection-level error and moved on to the next core of their ranking",
        failures,
    );
    registry.register(
        "core_floods",
        "Requests this core answered FLOOD_WAIT (every bot of it flooded) that moved on to the next core of their ranking",
        floods,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family() {
        let metrics = EdgeMetrics::new(ChunkCache::new(1 << 20));
        metrics.count_request(206);
        metrics.count_request(206);
        metrics.count_request(503);
        metrics.bytes_sent.inc_by(42);
        metrics.upstream_latency.observe(0.01);
        let text = metrics.render();
        for needle in [
            "tgcdn_edge_http_requests_total{status=\"206\"} 2",
            "tgcdn_edge_http_requests_total{status=\"503\"} 1",
            "tgcdn_edge_http_body_bytes_sent_total 42",
            "tgcdn_edge_cache_hits_total 0",
            "tgcdn_edge_cache_evictions_total 0",
            "tgcdn_edge_upstream_latency_seconds_count 1",
            "tgcdn_edge_cache_fetches_in_flight 0",
            "tgcdn_edge_addon_cache_hits_total 0",
            "tgcdn_edge_addon_cache_misses_total 0",
            "# EOF",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        assert!(!text.contains("status=\"200\""), "unseen statuses stay out");
    }

    #[test]
    fn renders_one_series_per_core_link() {
        let metrics = EdgeMetrics::new(ChunkCache::new(1 << 20));
        let link = |name: &str, up, requests, failures| LinkStatus {
            name: name.to_owned(),
            up,
            requests,
            failures,
            floods: failures + 1,
        };
        let text =
            metrics.render_with_links(&[link("core-a", true, 7, 0), link("core-b", false, 3, 2)]);
        for needle in [
            "tgcdn_edge_core_up{core=\"core-a\"} 1",
            "tgcdn_edge_core_up{core=\"core-b\"} 0",
            "tgcdn_edge_core_requests_total{core=\"core-a\"} 7",
            "tgcdn_edge_core_requests_total{core=\"core-b\"} 3",
            "tgcdn_edge_core_failures_total{core=\"core-b\"} 2",
            "tgcdn_edge_core_floods_total{core=\"core-b\"} 3",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
