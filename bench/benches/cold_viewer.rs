//! One viewer, cold cache: a sequential `GET` of a whole file through emulator → core →
//! QUIC → edge, the emulator adding 50 ms per `getFile` answer and pacing each connection at
//! 20 MiB/s. The edge with its default read-ahead against the same edge with read-ahead off
//! (`TGCDN_READAHEAD_MAX=1`) and against the seed baseline: the seed's algorithm, one 1 MiB
//! chunk at a time end to end on a core with one bot and one connection (so both 512 KiB
//! halves travel together on the same connection and the next chunk starts only after it
//! arrived), driven straight over QUIC, printed beside its analytic bound
//! 1 MiB / (RTT + 1 MiB ÷ 20 MiB/s). The seed gets its own chain: on the main one the core
//! would spread the halves over two rested connections and the baseline would swing between
//! one and two round trips per chunk from run to run.
//!
//! To tell which stage limits, the same chunks are also fetched straight from the core over
//! QUIC with a sliding window of 16 and 32 in flight (the core's capacity without the edge),
//! and through an edge capped at the old default read-ahead of 16.
//!
//! `cargo bench -p tgcdn-bench --bench cold_viewer` (env BENCH_COLD_MIB default 128,
//! BENCH_SEED_MIB default 32, BENCH_ROUNDS default 2, BENCH_BOTS default 2,
//! BENCH_CONNECTIONS default 4). Every run
//! reads a file never fetched before, so every chunk is a miss at the edge and the core.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tgcdn_bench::chain::{Chain, ChainConfig, process_cpu};
use tgcdn_bench::env_or;
use tgcdn_bench::stats::mib_per_sec;
use tgcdn_bench::{MIB, client};
use tgcdn_edge::readahead::WindowLimits;
use tgcdn_edge::upstream::Upstream;
use tgcdn_edge::upstream::quic::QuicUpstream;
use tgcdn_shared::FileRef;

const LATENCY: Duration = Duration::from_millis(50);
const BANDWIDTH: u64 = 20 * MIB;

fn main() {
    tgcdn_bench::run_bench(run);
}

/// The seed design's ceiling in MiB/s: one 1 MiB chunk per round trip, each taking the
/// added latency plus its transfer time at `bytes_per_sec`.
fn seed_bound(latency: Duration, bytes_per_sec: u64) -> f64 {
    let transfer = MIB as f64 / bytes_per_sec as f64;
    1.0 / (latency.as_secs_f64() + transfer)
}

/// MiB/s of chunks `0..chunks` of `file` fetched straight from the core with `window`
/// requests in flight (a new one starts as soon as any finishes).
async fn direct(upstream: &Arc<QuicUpstream>, file: FileRef, chunks: u64, window: usize) -> f64 {
    let started = Instant::now();
    let bytes: u64 = futures_util::stream::iter(0..chunks)
        .map(|index| {
            let upstream = upstream.clone();
            async move { upstream.chunk(file, index).await.expect("chunk").len() as u64 }
        })
        .buffered(window)
        .fold(0, |sum, n| async move { sum + n })
        .await;
    mib_per_sec(bytes, started.elapsed())
}

/// Where the time and CPU of one measurement went.
struct Stage {
    wall: Duration,
    emulator_cpu: Duration,
    process_cpu: Duration,
    get_files: u64,
    dc4_connections: u64,
}

impl Stage {
    fn line(&self) -> String {
        let wall = self.wall.as_secs_f64();
        format!(
            "wall {wall:5.2} s, cpu: whole process {:4.0}% of one core (emulator thread {:3.0}%), \
             {} getFile, {:.1} getFile/s, DC4 connections opened so far {}",
            self.process_cpu.as_secs_f64() / wall * 100.0,
            self.emulator_cpu.as_secs_f64() / wall * 100.0,
            self.get_files,
            self.get_files as f64 / wall,
            self.dc4_connections
        )
    }
}

/// Runs `work` and reports the emulator and process CPU and getFile calls it caused.
async fn staged<T>(chain: &Chain, work: impl Future<Output = T>) -> (T, Stage) {
    let before = chain.emulator_report().await.expect("report");
    let cpu = process_cpu();
    let started = Instant::now();
    let out = work.await;
    let wall = started.elapsed();
    let after = chain.emulator_report().await.expect("report");
    let stage = Stage {
        wall,
        emulator_cpu: after.cpu.saturating_sub(before.cpu),
        process_cpu: process_cpu().saturating_sub(cpu),
        get_files: after.counters.requests_for("upload.getFile")
            - before.counters.requests_for("upload.getFile"),
        dc4_connections: after
            .counters
            .connections_by_dc
            .get(&4)
            .copied()
            .unwrap_or(0),
    };
    (out, stage)
}

/// Like [`direct`], calling the core's fetcher in process (no QUIC, no edge).
async fn fetcher_only(chain: &Chain, file: FileRef, chunks: u64, window: usize) -> f64 {
    let started = Instant::now();
    let fetcher = chain.fetcher().clone();
    let size = chunks * MIB;
    let bytes: u64 = futures_util::stream::iter(0..chunks)
        .map(|index| {
            let fetcher = fetcher.clone();
            async move { fetcher.chunk(file, size, index).await.expect("chunk").len() as u64 }
        })
        .buffered(window)
        .fold(0, |sum, n| async move { sum + n })
        .await;
    mib_per_sec(bytes, started.elapsed())
}

async fn run() {
    let file_mib = env_or("BENCH_COLD_MIB", 128);
    let rounds = env_or("BENCH_ROUNDS", 2);
    let config = ChainConfig {
        bots: env_or("BENCH_BOTS", 2) as usize,
        connections_per_bot: env_or("BENCH_CONNECTIONS", 4) as usize,
        // No second-tier cache either: it could only hold chunks never asked twice.
        core_cache_bytes: 0,
    };
    let chain = Chain::start(config).await.expect("chain");
    // The seed's own core: one bot, one connection, so a chunk's halves share it.
    let seed_chain = Chain::start(ChainConfig {
        bots: 1,
        connections_per_bot: 1,
        core_cache_bytes: 0,
    })
    .await
    .expect("seed chain");
    let seed_upstream = seed_chain.upstream().await.expect("seed upstream");
    seed_chain.set_telegram(LATENCY, BANDWIDTH);
    let seed_mib = env_or("BENCH_SEED_MIB", 32);
    let bound = seed_bound(LATENCY, BANDWIDTH);
    let default_max = WindowLimits::default().max;
    let (edge_default, _) = chain.start_edge(default_max).await.expect("edge");
    let (edge_off, _) = chain.start_edge(1).await.expect("edge");
    let (edge_16, _) = chain.start_edge(16).await.expect("edge");
    let upstream = chain.upstream().await.expect("upstream");
    chain.set_telegram(LATENCY, BANDWIDTH);
    let size = file_mib * MIB;
    println!(
        "one viewer, cold cache: {file_mib} MiB sequential GET; emulator +{} ms per answer, {} MiB/s per connection; \
         core {} bots x {} connections ({} connections, ceiling {} MiB/s); edge read-ahead max {default_max} (default); best of {rounds}",
        LATENCY.as_millis(),
        BANDWIDTH / MIB,
        config.bots,
        config.connections_per_bot,
        config.bots * config.connections_per_bot,
        config.bots as u64 * config.connections_per_bot as u64 * BANDWIDTH / MIB
    );
    let mut best = [0f64; 7];
    let names = [
        "edge, default read-ahead",
        "edge, read-ahead off (max 1)",
        "seed baseline: 1 chunk, 1 connection, QUIC",
        "core alone over QUIC, 16 in flight",
        "core alone over QUIC, 32 in flight",
        "core fetcher in process, 16 in flight",
        "edge, read-ahead max 16 (old default)",
    ];
    for round in 0..rounds {
        let mut figures = [0f64; 7];
        for (which, edge) in [(0usize, edge_default), (1, edge_off), (6, edge_16)] {
            let (path, _) = chain.add_file(size, &format!("cold{round}-{which}.mkv"));
            let (fetched, stage) = staged(&chain, client::get(edge, &path, None)).await;
            let fetched = fetched.expect("GET");
            assert_eq!(fetched.body_bytes, size);
            figures[which] = mib_per_sec(size, fetched.total);
            println!("    {}: {}", names[which], stage.line());
        }
        let (_, file) = seed_chain.add_file(seed_mib * MIB, &format!("seed{round}.mkv"));
        seed_upstream.meta(file).await.expect("meta");
        let (figure, stage) = staged(&seed_chain, direct(&seed_upstream, file, seed_mib, 1)).await;
        figures[2] = figure;
        println!("    {}: {}", names[2], stage.line());
        for (which, window) in [(3usize, 16usize), (4, 32)] {
            let (_, file) = chain.add_file(size, &format!("cold{round}-{which}.mkv"));
            upstream.meta(file).await.expect("meta");
            let (figure, stage) = staged(&chain, direct(&upstream, file, file_mib, window)).await;
            figures[which] = figure;
            println!("    {}: {}", names[which], stage.line());
        }
        let (_, file) = chain.add_file(size, &format!("cold{round}-5.mkv"));
        upstream.meta(file).await.expect("meta");
        let (figure, stage) = staged(&chain, fetcher_only(&chain, file, file_mib, 16)).await;
        figures[5] = figure;
        println!("    {}: {}", names[5], stage.line());
        for (slot, figure) in best.iter_mut().zip(figures) {
            *slot = slot.max(figure);
        }
        println!(
            "  round {round}: {}",
            figures
                .iter()
                .map(|f| format!("{f:.1}"))
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
    println!(
        "  seed analytic bound 1 MiB / ({} ms + 1 MiB / {} MiB/s) = {bound:.1} MiB/s; seed measured/bound {:.2}",
        LATENCY.as_millis(),
        BANDWIDTH / MIB,
        best[2] / bound
    );
    let ceiling = config.bots as f64 * config.connections_per_bot as f64 * (BANDWIDTH / MIB) as f64;
    for (name, figure) in names.iter().zip(best) {
        println!(
            "  {name:<42} {figure:8.1} MiB/s  ({:.1}x seed)",
            figure / best[2]
        );
    }
    println!(
        "RESULT cold_viewer: default/seed {:.1}x (seed/bound {:.2}), default/ceiling {:.2} (target >= 0.85), \
         read-ahead off/seed {:.2}x, default/core-alone-32 {:.2}x (target >= 0.95), \
         core-alone-16/fetcher-in-process-16 {:.2}x, read-ahead 16/seed {:.1}x, default {:.1} MiB/s",
        best[0] / best[2],
        best[2] / bound,
        best[0] / ceiling,
        best[1] / best[2],
        best[0] / best[4],
        best[3] / best[5],
        best[6] / best[2],
        best[0]
    );
    chain.shutdown().await;
    seed_chain.shutdown().await;
}
