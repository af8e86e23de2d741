//! The one report of the core's state: bots (health, load, bytes, flood waits), DCs, edges,
//! fetch and resolver counters, and the catalogue indexer when one runs.
//!
//! [`Reporter::collect`] reads the live parts; everything after it is a pure function of
//! the [`CoreReport`] value: the bot's `/stats` extra lines ([`summary_lines`]), the admin
//! endpoint's JSON (serde), `/metrics` (in [`crate::admin`]) and the `tgcdn-core status`
//! table ([`table`]). So every view shows the same numbers. No I/O beyond reading the edge
//! registry.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::bots::select::Health;
use crate::bots::{BotPool, BotReport};
use crate::catalog::enrich::{EnrichStats, LibrarySnapshot};
use crate::catalog::index::{IndexSnapshot, IndexStats};
use crate::catalog::library::Library;
use crate::catalog::posts::PostStore;
use crate::catalog::tmdb::TmdbClient;
use crate::quic::handler::Handler;
use crate::quic::registry::EdgeView;
use crate::stats::{FetchSnapshot, ResolveSnapshot, RetrySnapshot};

/// One bot as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotRow {
    pub id: i64,
    pub healthy: bool,
    /// Why it is out of rotation, when it is.
    pub reason: Option<String>,
    /// Since how many seconds it is out, when it is.
    #[serde(default)]
    pub since_secs: Option<u64>,
    /// Seconds until it is probed again, when it is out.
    #[serde(default)]
    pub next_probe_secs: Option<u64>,
    /// Channels it cannot read (it still serves the others).
    #[serde(default)]
    pub denied_channels: Vec<DeniedChannelRow>,
    pub flood_wait_secs: Option<u64>,
    pub in_flight: usize,
    pub per_connection: Vec<usize>,
    pub requests: u64,
    pub bytes: u64,
    pub flood_waits: u64,
}

/// A channel one bot cannot read, and when that is checked again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeniedChannelRow {
    pub channel: i64,
    pub reason: String,
    pub since_secs: u64,
    pub next_probe_secs: u64,
}

/// Chunk requests for files on one DC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcRow {
    pub dc: i32,
    pub requests: u64,
}

/// One edge of the fleet, from its Hello and heartbeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeRow {
    pub id: String,
    pub region: String,
    pub public_url: String,
    pub last_heard_secs: u64,
    pub live: bool,
    pub in_flight: Option<u32>,
    pub cache_hit_permille: Option<u16>,
}

/// Everything the views show.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreReport {
    pub bots: Vec<BotRow>,
    pub dcs: Vec<DcRow>,
    pub edges: Vec<EdgeRow>,
    pub fetch: FetchSnapshot,
    pub resolve: ResolveSnapshot,
    /// The retry loops' failed attempts by class and give-ups by reason.
    #[serde(default)]
    pub retries: RetryReport,
    /// The catalogue indexer, when catalogue channels are configured.
    #[serde(default)]
    pub catalog: Option<IndexSnapshot>,
    /// The catalogue's titles and their enrichment, when catalogue channels are configured.
    #[serde(default)]
    pub library: Option<LibrarySnapshot>,
}

/// The two retry loops of the request path, each as [`RetrySnapshot`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryReport {
    /// Chunk downloads (`upload.getFile` parts across bots).
    pub fetch: RetrySnapshot,
    /// Message lookups (`channels.getMessages` across bots).
    pub lookup: RetrySnapshot,
}

impl CoreReport {
    /// Edges heard from recently.
    pub fn edges_live(&self) -> usize {
        self.edges.iter().filter(|edge| edge.live).count()
    }
}

/// Reads the live state into a [`CoreReport`].
#[derive(Clone)]
pub struct Reporter {
    pool: Arc<BotPool>,
    handler: Arc<Handler>,
    stale_after_secs: u64,
    catalog: Option<(Arc<IndexStats>, PostStore)>,
    library: Option<LibraryParts>,
}

/// What the report reads of the catalogue itself.
#[derive(Clone)]
struct LibraryParts {
    library: Arc<Library>,
    enrich: Arc<EnrichStats>,
    tmdb: Option<Arc<TmdbClient>>,
}

impl Reporter {
    pub fn new(pool: Arc<BotPool>, handler: Arc<Handler>, stale_after_secs: u64) -> Self {
        Reporter {
            pool,
            handler,
            stale_after_secs,
            catalog: None,
            library: None,
        }
    }

    /// Adds the catalogue's titles and enrichment counters to every report.
    pub fn with_library(
        mut self,
        library: Arc<Library>,
        enrich: Arc<EnrichStats>,
        tmdb: Option<Arc<TmdbClient>>,
    ) -> Self {
        self.library = Some(LibraryParts {
            library,
            enrich,
            tmdb,
        });
        self
    }

    /// Adds the catalogue indexer's counters and stored posts to every report.
    pub fn with_catalog(mut self, stats: Arc<IndexStats>, posts: PostStore) -> Self {
        self.catalog = Some((stats, posts));
        self
    }

    pub fn collect(&self) -> CoreReport {
        let edges = match self
            .handler
            .edges()
            .list(crate::clock::unix_now(), self.stale_after_secs)
        {
            Ok(edges) => edges,
            Err(error) => {
                tracing::warn!(%error, "cannot read the edge registry for the report");
                Vec::new()
            }
        };
        let mut report = build(
            self.pool.report(Instant::now()),
            self.handler.dc_requests().into_iter().collect(),
            edges,
            self.handler.fetcher().counters(),
            self.handler.resolver().counters(),
        );
        report.retries = RetryReport {
            fetch: self.handler.fetcher().retries(),
            lookup: self.handler.resolver().retries(),
        };
        report.catalog = self.catalog.as_ref().map(|(stats, posts)| IndexSnapshot {
            posts_stored: posts.len() as u64,
            ..stats.snapshot()
        });
        report.library = self
            .library
            .as_ref()
            .map(|parts| parts.enrich.snapshot(&parts.library, parts.tmdb.as_deref()));
        report
    }
}

/// The report from its parts (pure).
pub fn build(
    bots: Vec<BotReport>,
    dcs: Vec<(i32, u64)>,
    edges: Vec<EdgeView>,
    fetch: FetchSnapshot,
    resolve: ResolveSnapshot,
) -> CoreReport {
    CoreReport {
        bots: bots.into_iter().map(bot_row).collect(),
        dcs: dcs
            .into_iter()
            .map(|(dc, requests)| DcRow { dc, requests })
            .collect(),
        edges: edges
            .into_iter()
            .map(|edge| EdgeRow {
                in_flight: edge.load.as_ref().map(|load| load.in_flight),
                cache_hit_permille: edge.load.as_ref().map(|load| load.cache_hit_ratio_permille),
                id: edge.id,
                region: edge.region,
                public_url: edge.public_url,
                last_heard_secs: edge.last_heartbeat_age_secs,
                live: edge.live,
            })
            .collect(),
        fetch,
        resolve,
        retries: RetryReport::default(),
        catalog: None,
        library: None,
    }
}

fn bot_row(bot: BotReport) -> BotRow {
    let (healthy, reason) = match bot.health {
        Health::Healthy => (true, None),
        Health::Unhealthy { reason } => (false, Some(reason)),
    };
    BotRow {
        id: bot.id,
        healthy,
        reason,
        since_secs: bot.sickness.as_ref().map(|s| s.since_secs),
        next_probe_secs: bot.sickness.as_ref().map(|s| s.next_probe_secs),
        denied_channels: bot
            .denied_channels
            .into_iter()
            .map(|(channel, s)| DeniedChannelRow {
                channel,
                reason: s.reason,
                since_secs: s.since_secs,
                next_probe_secs: s.next_probe_secs,
            })
            .collect(),
        flood_wait_secs: bot.flood_wait_secs,
        in_flight: bot.load.in_flight,
        per_connection: bot.load.per_connection,
        requests: bot.load.started,
        bytes: bot.bytes,
        flood_waits: bot.flood_waits,
    }
}

/// One channel a bot cannot read, as every view words it.
pub fn denied_line(denied: &DeniedChannelRow) -> String {
    format!(
        "cannot read channel {}: {} (for {} s, next probe in {} s)",
        denied.channel, denied.reason, denied.since_secs, denied.next_probe_secs
    )
}

/// The `/stats` lines after the bot list: DCs, caches, edges.
pub fn summary_lines(report: &CoreReport) -> Vec<String> {
    let mut lines = Vec::new();
    if !report.dcs.is_empty() {
        let dcs: Vec<String> = report
            .dcs
            .iter()
            .map(|row| format!("dc{} {}", row.dc, row.requests))
            .collect();
        lines.push(format!("chunk requests by DC: {}", dcs.join(", ")));
    }
    let fetch = report.fetch;
    lines.push(format!(
        "chunks: {} downloads ({} failed), {} second-tier cache hits, {} coalesced",
        fetch.downloads, fetch.failures, fetch.cache_hits, fetch.coalesced
    ));
    let resolve = report.resolve;
    lines.push(format!(
        "meta: {} memory hits, {} database hits, {} Telegram lookups, {} known-missing",
        resolve.memory_hits, resolve.store_hits, resolve.telegram_lookups, resolve.negative_hits
    ));
    if let Some(line) = retry_line(&report.retries) {
        lines.push(line);
    }
    if let Some(catalog) = &report.catalog {
        lines.push(format!(
            "catalogue: {} posts stored ({} from updates, {} back-filled, {} removed)",
            catalog.posts_stored, catalog.live_posts, catalog.backfill_posts, catalog.removed
        ));
        for (channel, progress) in &catalog.channels {
            lines.push(format!(
                "back-fill {channel}: {}, {} ids left",
                progress.status, progress.remaining
            ));
        }
    }
    if let Some(library) = &report.library {
        let metadata = if library.metadata_enabled {
            format!(
                "{} matched, {} unmatched, {} pending",
                library.metadata_matched, library.metadata_unmatched, library.metadata_pending
            )
        } else {
            "off (no TMDB key)".to_owned()
        };
        lines.push(format!(
            "titles: {}; metadata: {metadata}; video hashes: {} done, {} pending",
            library.titles, library.hashed, library.hashes_pending
        ));
    }
    if report.edges.is_empty() {
        lines.push("edges: none yet".to_owned());
    }
    for edge in &report.edges {
        lines.push(format!(
            "edge {} ({}, {}): last heard {} s ago{}",
            edge.id,
            edge.region,
            edge.public_url,
            edge.last_heard_secs,
            if edge.live { "" } else { " — stale" }
        ));
    }
    lines
}

/// `retries: fetch connection 8, internal 4; lookup flood_wait 2; given up: fetch
/// unavailable 1`, or nothing when no Telegram call failed.
fn retry_line(retries: &RetryReport) -> Option<String> {
    let loops = [("fetch", &retries.fetch), ("lookup", &retries.lookup)];
    let part = |pick: fn(&RetrySnapshot) -> &std::collections::BTreeMap<String, u64>| {
        loops
            .iter()
            .filter(|(_, snapshot)| !pick(snapshot).is_empty())
            .map(|(path, snapshot)| {
                let counts: Vec<String> = pick(snapshot)
                    .iter()
                    .map(|(class, count)| format!("{class} {count}"))
                    .collect();
                format!("{path} {}", counts.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let (failures, give_ups) = (part(|s| &s.failures), part(|s| &s.give_ups));
    match (failures.is_empty(), give_ups.is_empty()) {
        (true, true) => None,
        (false, true) => Some(format!("retries: {failures}")),
        (true, false) => Some(format!("given up: {give_ups}")),
        (false, false) => Some(format!("retries: {failures}; given up: {give_ups}")),
    }
}

/// `tgcdn-core status`: fixed-width tables of bots, DCs and edges, then the counters.
pub fn table(report: &CoreReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:<9} {:>9} {:>12} {:>10} {:>14} {:>11}  NOTE",
        "BOT", "HEALTH", "IN_FLIGHT", "CONNECTIONS", "REQUESTS", "BYTES", "FLOOD_WAITS"
    );
    for bot in &report.bots {
        let note = match (&bot.reason, bot.flood_wait_secs) {
            (Some(reason), _) => format!(
                "{reason} (for {} s, next probe in {} s)",
                bot.since_secs.unwrap_or(0),
                bot.next_probe_secs.unwrap_or(0)
            ),
            (None, Some(secs)) => format!("flood wait {secs} s"),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<12} {:<9} {:>9} {:>12} {:>10} {:>14} {:>11}  {note}",
            bot.id,
            if bot.healthy { "healthy" } else { "UNHEALTHY" },
            bot.in_flight,
            format!("{:?}", bot.per_connection),
            bot.requests,
            bot.bytes,
            bot.flood_waits,
        );
        for denied in &bot.denied_channels {
            let _ = writeln!(out, "{:<12} {}", "", denied_line(denied));
        }
    }
    let _ = writeln!(out, "\n{:<6} {:>10}", "DC", "REQUESTS");
    for dc in &report.dcs {
        let _ = writeln!(out, "{:<6} {:>10}", dc.dc, dc.requests);
    }
    let _ = writeln!(
        out,
        "\n{:<24} {:<10} {:<6} {:>10}  PUBLIC_URL",
        "EDGE", "REGION", "LIVE", "LAST_HEARD"
    );
    for edge in &report.edges {
        let _ = writeln!(
            out,
            "{:<24} {:<10} {:<6} {:>9}s  {}",
            edge.id,
            edge.region,
            if edge.live { "yes" } else { "stale" },
            edge.last_heard_secs,
            edge.public_url
        );
    }
    let _ = writeln!(out);
    for line in summary_lines(report)
        .into_iter()
        .filter(|line| !line.starts_with("edge"))
    {
        let _ = writeln!(out, "{line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::load::LoadSnapshot;

    fn sample() -> CoreReport {
        let bot = |id, health, bytes| BotReport {
            id,
            health,
            sickness: None,
            denied_channels: Vec::new(),
            flood_wait_secs: None,
            load: LoadSnapshot {
                in_flight: 1,
                per_connection: vec![1, 0],
                started: 7,
            },
            bytes,
            flood_waits: 2,
        };
        build(
            vec![
                bot(1, Health::Healthy, 1 << 20),
                bot(
                    2,
                    Health::Unhealthy {
                        reason: "token revoked".into(),
                    },
                    0,
                ),
            ],
            vec![(2, 3), (4, 9)],
            Vec::new(),
            FetchSnapshot {
                cache_hits: 4,
                coalesced: 1,
                downloads: 12,
                failures: 0,
                retries: 0,
                cancelled: 0,
            },
            ResolveSnapshot::default(),
        )
    }

    #[test]
    fn a_denied_channel_and_the_next_probe_show_in_the_table() {
        let mut report = sample();
        report.bots[0].denied_channels.push(DeniedChannelRow {
            channel: -1_002,
            reason: "bot cannot read this channel".into(),
            since_secs: 12,
            next_probe_secs: 18,
        });
        report.bots[1].since_secs = Some(40);
        report.bots[1].next_probe_secs = Some(20);
        let table = table(&report);
        assert!(
            table.contains("cannot read channel -1002: bot cannot read this channel (for 12 s, next probe in 18 s)"),
            "{table}"
        );
        assert!(
            table.contains("token revoked (for 40 s, next probe in 20 s)"),
            "{table}"
        );
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<CoreReport>(&json).unwrap(), report);
    }

    #[test]
    fn the_report_survives_json_and_every_view_shows_the_same_numbers() {
        let mut report = sample();
        report.retries.fetch.failures =
            [("connection".to_owned(), 8), ("internal".to_owned(), 4)].into();
        report.retries.lookup.failures = [("flood_wait".to_owned(), 2)].into();
        report.retries.fetch.give_ups = [("unavailable".to_owned(), 1)].into();
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<CoreReport>(&json).unwrap(), report);
        let table = table(&report);
        assert!(table.contains("UNHEALTHY"), "{table}");
        assert!(table.contains("token revoked"), "{table}");
        assert!(table.contains("1048576"), "{table}");
        let lines = summary_lines(&report).join("\n");
        assert!(lines.contains("dc2 3, dc4 9"), "{lines}");
        assert!(
            lines.contains("4 second-tier cache hits, 1 coalesced"),
            "{lines}"
        );
        assert!(
            lines.contains(
                "retries: fetch connection 8, internal 4; lookup flood_wait 2; \
                 given up: fetch unavailable 1"
            ),
            "{lines}"
        );
        assert!(
            summary_lines(&sample())
                .iter()
                .all(|line| !line.contains("retries"))
        );
    }
}
