//! Time to first byte of a 64 KiB range through emulator → core → QUIC → edge, with the
//! emulator adding 0 ms and 50 ms per answer: a cached range (against bare hyper serving the
//! same bytes from memory), an uncached range of a known file (against the core's chunk
//! fetch over QUIC alone, the floor the edge adds its work to), the first range of a file
//! never seen (meta lookup + chunk) and the first range of a link the core made itself (its
//! bot looked the meta and every bot's location up before replying, `prepare_link`). At
//! +50 ms the uncached and new-link figures are also printed as RTT + x ms. A new file and a
//! made link are read through a second edge too, one that asks `Meta` and then the chunk
//! (the protocol-3 path), as the same-run baseline of protocol 4's one `MetaChunk` exchange.
//!
//! `cargo bench -p tgcdn-bench --bench ttfb` (env BENCH_SAMPLES, default 30). Each sample
//! is one request on a new connection; the edge and the baselines take turns.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tgcdn_bench::chain::{Chain, ChainConfig};
use tgcdn_bench::stats::{ms, percentile};
use tgcdn_bench::{MIB, bare, client};
use tgcdn_edge::testing::pattern;
use tgcdn_edge::upstream::Upstream;

const RANGE: u64 = 64 * 1024;
const FILE_MIB: u64 = 512;

fn main() {
    tgcdn_bench::run_bench(run);
}

fn row(name: &str, samples: &[Duration]) -> (f64, f64) {
    let (p50, p90) = (ms(percentile(samples, 0.5)), ms(percentile(samples, 0.9)));
    println!(
        "  {name:<44} median {p50:8.2} ms  p90 {p90:8.2} ms  (n={})",
        samples.len()
    );
    (p50, p90)
}

async fn run() {
    let samples: u64 = std::env::var("BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let config = ChainConfig::default();
    let chain = Chain::start(config).await.expect("chain");
    let (edge, _) = chain.start_edge(16).await.expect("edge");
    // The same-run baseline of MetaChunk: a new file's meta, then its chunk.
    let (edge_two, _) = chain
        .start_edge_two_exchanges(16)
        .await
        .expect("edge, two exchanges");
    let upstream = chain.upstream().await.expect("upstream");
    let chunks: Arc<Vec<Bytes>> = Arc::new(
        (0..4)
            .map(|i| Bytes::from(pattern(i * MIB, (i + 1) * MIB)))
            .collect(),
    );
    let bare = bare::start(chunks).await.expect("bare hyper");
    println!(
        "time to first byte of a {} KiB range, {} bots x {} connections, one request per new connection",
        RANGE / 1024,
        config.bots,
        config.connections_per_bot
    );

    for latency_ms in [0u64, 50] {
        chain.set_telegram(Duration::from_millis(latency_ms), 0);
        println!("emulator +{latency_ms} ms per answer, no bandwidth cap:");
        let (path, file) = chain.add_file(FILE_MIB * MIB, &format!("ttfb{latency_ms}.mkv"));
        // Meta of this file, and chunk 1 for the cached case.
        client::get(edge, &path, Some((MIB, MIB + RANGE - 1)))
            .await
            .expect("warm-up");
        let (mut cached, mut bare_samples, mut uncached, mut core_only, mut fresh, mut made) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        let (mut fresh_two, mut made_two) = (Vec::new(), Vec::new());
        for sample in 0..samples {
            let start = MIB + (sample % 8) * RANGE;
            let range = Some((start, start + RANGE - 1));
            cached.push(
                client::get(edge, &path, range)
                    .await
                    .expect("cached")
                    .first_byte,
            );
            let start = (sample % 4) * MIB + (sample % 8) * RANGE;
            bare_samples.push(
                client::get(bare, "/file", Some((start, start + RANGE - 1)))
                    .await
                    .expect("bare")
                    .first_byte,
            );
            // Distinct chunks never asked before: misses at the edge and at the core.
            let edge_chunk = 2 + 2 * sample;
            let start = edge_chunk * MIB;
            uncached.push(
                client::get(edge, &path, Some((start, start + RANGE - 1)))
                    .await
                    .expect("uncached")
                    .first_byte,
            );
            let started = Instant::now();
            upstream.chunk(file, edge_chunk + 1).await.expect("chunk");
            core_only.push(started.elapsed());
            let (new_path, _) = chain.add_file(4 * MIB, &format!("fresh{latency_ms}-{sample}.mkv"));
            fresh.push(
                client::get(edge, &new_path, Some((0, RANGE - 1)))
                    .await
                    .expect("fresh")
                    .first_byte,
            );
            let (made_path, _) = chain
                .add_linked_file(4 * MIB, &format!("made{latency_ms}-{sample}.mkv"))
                .await
                .expect("link made by the core");
            made.push(
                client::get(edge, &made_path, Some((0, RANGE - 1)))
                    .await
                    .expect("made")
                    .first_byte,
            );
            let (new_path, _) =
                chain.add_file(4 * MIB, &format!("fresh2-{latency_ms}-{sample}.mkv"));
            fresh_two.push(
                client::get(edge_two, &new_path, Some((0, RANGE - 1)))
                    .await
                    .expect("fresh, two exchanges")
                    .first_byte,
            );
            let (made_path, _) = chain
                .add_linked_file(4 * MIB, &format!("made2-{latency_ms}-{sample}.mkv"))
                .await
                .expect("link made by the core");
            made_two.push(
                client::get(edge_two, &made_path, Some((0, RANGE - 1)))
                    .await
                    .expect("made, two exchanges")
                    .first_byte,
            );
        }
        // Which Telegram calls one uncached range costs, edge vs the core alone.
        for (name, via_edge) in [("edge", true), ("core alone", false)] {
            let before = chain.emulator_report().await.expect("report").counters;
            for extra in 0..4u64 {
                let index = 2 + 2 * samples + 2 * extra + u64::from(!via_edge) * 16;
                if via_edge {
                    let start = index * MIB;
                    client::get(edge, &path, Some((start, start + RANGE - 1)))
                        .await
                        .expect("uncached");
                } else {
                    upstream.chunk(file, index).await.expect("chunk");
                }
            }
            let after = chain.emulator_report().await.expect("report").counters;
            let calls: Vec<String> = after
                .requests_by_method
                .iter()
                .filter_map(|(method, n)| {
                    let delta = n - before.requests_by_method.get(method).copied().unwrap_or(0);
                    (delta > 0).then(|| format!("{method} {delta}"))
                })
                .collect();
            println!(
                "  Telegram calls for 4 uncached chunks via {name}: {}",
                calls.join(", ")
            );
        }
        let (c50, c90) = row("cached range, edge", &cached);
        let (b50, b90) = row("same range, bare hyper from memory", &bare_samples);
        let (u50, u90) = row("uncached range (known file), edge", &uncached);
        let (q50, q90) = row("one chunk over QUIC from the core alone", &core_only);
        let (f50, f90) = row("first range of a new file (meta + chunk)", &fresh);
        let (m50, m90) = row("first range of a link the core made", &made);
        let (f2_50, f2_90) = row("new file, Meta then Chunk (protocol 3 path)", &fresh_two);
        let (m2_50, m2_90) = row("link the core made, Meta then Chunk", &made_two);
        println!(
            "  MetaChunk against Meta then Chunk: new file median {:.2}x p90 {:.2}x; \
             link the core made median {:.2}x p90 {:.2}x (RTT + {:.1} ms before)",
            f50 / f2_50,
            f90 / f2_90,
            m50 / m2_50,
            m90 / m2_90,
            m2_50 - latency_ms as f64
        );
        let rtt = latency_ms as f64;
        println!(
            "  against RTT: uncached RTT + {:.1} ms median (target 8), RTT + {:.1} p90 (target 15); \
             link the core made RTT + {:.1} median, RTT + {:.1} p90 (target 15)",
            u50 - rtt,
            u90 - rtt,
            m50 - rtt,
            m90 - rtt
        );
        println!(
            "RESULT ttfb +{latency_ms}ms: cached edge/bare hyper median {:.2}x p90 {:.2}x; \
             uncached edge/core-over-QUIC median {:.2}x p90 {:.2}x; new file/uncached median {:.2}x p90 {:.2}x; \
             link made by the core/new file median {:.2}x p90 {:.2}x; uncached RTT+{:.1}/{:.1} ms, made RTT+{:.1}/{:.1} ms",
            c50 / b50,
            c90 / b90,
            u50 / q50,
            u90 / q90,
            f50 / u50,
            f90 / u90,
            m50 / f50,
            m90 / f90,
            u50 - rtt,
            u90 - rtt,
            m50 - rtt,
            m90 - rtt
        );
    }
    chain.shutdown().await;
}
