//! One cold viewer on a core with 4 bots × 4 connections (ceiling 16 × 20 MiB/s = 320 MiB/s
//! at +50 ms per answer), and what the core costs in CPU per GiB against a bare grammers
//! download loop over the same emulator, the same number of bots and connections and the
//! same parts in flight, with no core at all (the MTProto crypto and framing bound).
//!
//! Rows, each on a file never fetched before: the edge with its default read-ahead (a full
//! `GET`), the core alone over QUIC with 64 chunks in flight, the core's fetcher in process
//! with 64 chunks in flight (128 `getFile` parts: 8 per connection, the fetcher's cap),
//! and bare grammers with 128 parts in flight spread over its 16 connections. CPU is this
//! process's user + system time minus the emulator thread's, per GiB delivered: for the
//! edge row it includes the edge and the HTTP client, for the QUIC row the QUIC client.
//!
//! `cargo bench -p tgcdn-bench --bench many_connections` (env BENCH_MANY_MIB default 256,
//! BENCH_ROUNDS default 2, BENCH_BOTS default 4, BENCH_CONNECTIONS default 4).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use grammers_client::tl;
use tgcdn_bench::chain::{BareBot, Chain, ChainConfig, process_cpu};
use tgcdn_bench::stats::mib_per_sec;
use tgcdn_bench::{MIB, client, env_or};
use tgcdn_edge::readahead::WindowLimits;
use tgcdn_edge::upstream::Upstream;
use tgcdn_shared::FileRef;

const LATENCY: Duration = Duration::from_millis(50);
const BANDWIDTH: u64 = 20 * MIB;
const PART: u64 = 512 * 1024;
/// Chunks in flight for the core rows; twice that in parts for the bare loop.
const WINDOW: usize = 64;

fn main() {
    tgcdn_bench::run_bench(run);
}

/// One measurement: throughput and CPU per GiB outside the emulator thread.
#[derive(Clone, Copy, Default)]
struct Figure {
    mib_s: f64,
    cpu_s_per_gib: f64,
}

async fn measure(chain: &Chain, bytes: u64, work: impl Future<Output = ()>) -> Figure {
    let before = chain.emulator_report().await.expect("report");
    let cpu = process_cpu();
    let started = Instant::now();
    work.await;
    let wall = started.elapsed();
    let after = chain.emulator_report().await.expect("report");
    let ours = process_cpu()
        .saturating_sub(cpu)
        .saturating_sub(after.cpu.saturating_sub(before.cpu));
    let gib = bytes as f64 / (1u64 << 30) as f64;
    Figure {
        mib_s: mib_per_sec(bytes, wall),
        cpu_s_per_gib: ours.as_secs_f64() / gib,
    }
}

/// Every 512 KiB part of the first `bytes` of the bare bots' file, `in_flight` at a time,
/// part `i` on connection `i mod 16` (bot-major), as the fetcher spreads halves.
async fn bare_download(bots: &[BareBot], bytes: u64, in_flight: usize) {
    let clients: Vec<(&grammers_client::Client, &tl::enums::InputFileLocation)> = bots
        .iter()
        .flat_map(|bot| bot.clients.iter().map(|c| (c, &bot.location)))
        .collect();
    let parts = bytes / PART;
    let got: u64 = futures_util::stream::iter(0..parts)
        .map(|index| {
            let (client, location) = clients[index as usize % clients.len()];
            let request = tl::functions::upload::GetFile {
                precise: false,
                cdn_supported: false,
                location: location.clone(),
                offset: (index * PART) as i64,
                limit: PART as i32,
            };
            async move {
                match client.invoke_in_dc(4, &request).await.expect("getFile") {
                    tl::enums::upload::File::File(file) => file.bytes.len() as u64,
                    tl::enums::upload::File::CdnRedirect(_) => panic!("CDN redirect"),
                }
            }
        })
        .buffer_unordered(in_flight)
        .fold(0, |sum, n| async move { sum + n })
        .await;
    assert_eq!(got, bytes, "bare loop bytes");
}

async fn run() {
    let file_mib = env_or("BENCH_MANY_MIB", 256);
    let rounds = env_or("BENCH_ROUNDS", 2);
    let config = ChainConfig {
        bots: env_or("BENCH_BOTS", 4) as usize,
        connections_per_bot: env_or("BENCH_CONNECTIONS", 4) as usize,
        core_cache_bytes: 0,
    };
    let connections = config.bots * config.connections_per_bot;
    let ceiling = connections as f64 * (BANDWIDTH / MIB) as f64;
    let size = file_mib * MIB;
    let chain = Chain::start(config).await.expect("chain");
    let default_max = WindowLimits::default().max;
    let (edge, _) = chain.start_edge(default_max).await.expect("edge");
    let upstream = chain.upstream().await.expect("upstream");
    let (_, bare_file) = chain.add_file(size, "bare.mkv");
    let mut bare = Vec::new();
    for index in 0..config.bots {
        let bot = chain
            .bare_grammers(index, config.connections_per_bot, bare_file)
            .await
            .expect("bare grammers bot");
        bare.push(bot);
    }
    // Every bare connection opens its media-DC socket before it is measured, as the core's
    // have by the time they have served a few chunks.
    bare_download(&bare, connections as u64 * PART, connections).await;
    chain.set_telegram(LATENCY, BANDWIDTH);
    println!(
        "one cold viewer, {file_mib} MiB; emulator +{} ms per answer, {} MiB/s per connection; \
         {} bots x {} connections = {connections} (ceiling {ceiling:.0} MiB/s); best of {rounds}",
        LATENCY.as_millis(),
        BANDWIDTH / MIB,
        config.bots,
        config.connections_per_bot,
    );
    let names = [
        "edge, default read-ahead",
        "core alone over QUIC, 64 in flight",
        "core fetcher in process, 64 in flight",
        "bare grammers, 128 parts in flight",
    ];
    let mut best = [Figure::default(); 4];
    for round in 0..rounds {
        let mut figures = [Figure::default(); 4];
        let (path, _) = chain.add_file(size, &format!("many{round}-edge.mkv"));
        figures[0] = measure(&chain, size, async {
            let fetched = client::get(edge, &path, None).await.expect("GET");
            assert_eq!(fetched.body_bytes, size);
        })
        .await;
        let (_, file) = chain.add_file(size, &format!("many{round}-quic.mkv"));
        upstream.meta(file).await.expect("meta");
        figures[1] = measure(&chain, size, quic(&upstream, file, file_mib)).await;
        let (_, file) = chain.add_file(size, &format!("many{round}-fetcher.mkv"));
        upstream.meta(file).await.expect("meta");
        figures[2] = measure(&chain, size, fetcher(&chain, file, file_mib)).await;
        figures[3] = measure(&chain, size, bare_download(&bare, size, 2 * WINDOW)).await;
        for (name, figure) in names.iter().zip(figures) {
            println!(
                "    round {round}: {name:<40} {:7.1} MiB/s ({:.2} of the ceiling), CPU {:.2} s/GiB",
                figure.mib_s,
                figure.mib_s / ceiling,
                figure.cpu_s_per_gib
            );
        }
        for (slot, figure) in best.iter_mut().zip(figures) {
            if figure.mib_s > slot.mib_s {
                *slot = figure;
            }
        }
    }
    let bare_cpu = best[3].cpu_s_per_gib;
    for (name, figure) in names.iter().zip(best) {
        println!(
            "  {name:<40} {:7.1} MiB/s  ({:.2} of the ceiling {ceiling:.0}), CPU {:.2} s/GiB ({:.2}x bare grammers)",
            figure.mib_s,
            figure.mib_s / ceiling,
            figure.cpu_s_per_gib,
            figure.cpu_s_per_gib / bare_cpu
        );
    }
    println!(
        "RESULT many_connections: {connections} connections, edge/ceiling {:.2}, edge/core-alone-64 {:.2}x, \
         core-alone/ceiling {:.2}, bare grammers/ceiling {:.2}; CPU per GiB fetcher {:.2} s vs bare grammers {:.2} s = {:.2}x \
         (target <= 1.25), core over QUIC (both ends) {:.2}x, edge chain (all in process) {:.2}x",
        best[0].mib_s / ceiling,
        best[0].mib_s / best[1].mib_s,
        best[1].mib_s / ceiling,
        best[3].mib_s / ceiling,
        best[2].cpu_s_per_gib,
        bare_cpu,
        best[2].cpu_s_per_gib / bare_cpu,
        best[1].cpu_s_per_gib / bare_cpu,
        best[0].cpu_s_per_gib / bare_cpu,
    );
    drop(bare);
    chain.shutdown().await;
}

/// Chunks `0..chunks` straight from the core over QUIC, [`WINDOW`] in flight.
async fn quic(
    upstream: &Arc<tgcdn_edge::upstream::quic::QuicUpstream>,
    file: FileRef,
    chunks: u64,
) {
    futures_util::stream::iter(0..chunks)
        .map(|index| {
            let upstream = upstream.clone();
            async move { upstream.chunk(file, index).await.expect("chunk").len() }
        })
        .buffered(WINDOW)
        .for_each(|_| async {})
        .await;
}

/// Chunks `0..chunks` from the core's fetcher in this process, [`WINDOW`] in flight.
async fn fetcher(chain: &Chain, file: FileRef, chunks: u64) {
    let fetcher = chain.fetcher().clone();
    let size = chunks * MIB;
    futures_util::stream::iter(0..chunks)
        .map(|index| {
            let fetcher = fetcher.clone();
            async move { fetcher.chunk(file, size, index).await.expect("chunk").len() }
        })
        .buffered(WINDOW)
        .for_each(|_| async {})
        .await;
}
