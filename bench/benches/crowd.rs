//! A crowd on two edges (#19): `BENCH_VIEWERS` viewers (default 1 000) on two separate
//! `tgcdn-edge` processes sharing one core, each viewer on its own loopback address
//! (127.0.x.y, so the edges' per-client limits see a crowd, not one client). Each picks one
//! of `BENCH_FILES` files (default 200, 64–256 MiB each) by a Zipf law (s = 1) and starts
//! watching: the first `BENCH_WATCH_MIB` (default 4) from byte 0; a third of them then seek
//! to a random point and read `BENCH_SEEK_MIB` (default 1) more on the same connection. At
//! most `BENCH_CONCURRENCY` (default 200) watch at once. Telegram answers after 50 ms at
//! 20 MiB/s per connection (2 bots x 4 connections).
//!
//! Printed: errors (must be 0), the edges' chunk hit ratio, core egress / edge egress
//! (chunks the edges fetched from the core x 1 MiB over body bytes they served; target
//! <= 0.2), p50/p99 time to first byte of the first request and of the seek (next to the RTT),
//! and the edges' CPU per GiB served. The ratio of core to edge egress is the same-run
//! comparison: what the viewers received against what the core had to send; beside it the
//! crowd's floor (the distinct chunks it asks each edge for, which any edge cache must fetch
//! once) and the fetches as a multiple of that floor, which is the edges' own share.
//!
//! `cargo bench -p tgcdn-bench --bench crowd`; needs `target/release/tgcdn-edge` (built by
//! `bash bench/run`). Other knobs: BENCH_CACHE (each edge's cache, default 512MiB).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tgcdn_bench::chain::{Chain, ChainConfig, process_cpu_of};
use tgcdn_bench::external::{EdgeProcess, metric};
use tgcdn_bench::sample::{SplitMix, zipf_cdf, zipf_pick};
use tgcdn_bench::stats::{ms, percentile};
use tgcdn_bench::{MIB, client, env_or};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;

const RTT: Duration = Duration::from_millis(50);
const PER_CONNECTION: u64 = 20 * MIB;

fn main() {
    tgcdn_bench::run_bench(run);
}

/// What one viewer asks for.
#[derive(Clone)]
struct Viewer {
    edge: usize,
    source: [u8; 4],
    path: String,
    watch: (u64, u64),
    seek: Option<(u64, u64)>,
}

/// What one viewer got.
#[derive(Default)]
struct Watched {
    first_byte: Option<Duration>,
    seek_first_byte: Option<Duration>,
    bytes: u64,
    error: Option<String>,
}

fn plan_viewers(files: &[(String, u64)], count: u64, watch: u64, seek: u64) -> Vec<Viewer> {
    let cdf = zipf_cdf(files.len());
    let mut random = SplitMix(0x7467_6364_6e20_6372);
    (0..count)
        .map(|i| {
            let (path, size) = &files[zipf_pick(&cdf, random.unit())];
            let watch_end = watch.min(*size) - 1;
            let seek = (i % 3 == 0).then(|| {
                let start = random.below(size - seek);
                (start, start + seek - 1)
            });
            Viewer {
                edge: (i % 2) as usize,
                // 127.0.0.1 is the bench's own; viewers start at 127.0.1.1.
                source: [127, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8],
                path: path.clone(),
                watch: (0, watch_end),
                seek,
            }
        })
        .collect()
}

/// The chunks the viewers ask each edge for, counted once per edge: what any cache must
/// fetch at least (a perfect edge cache of unbounded size misses exactly these). The
/// baseline for the core's egress in the same run.
fn compulsory_chunks(plan: &[Viewer]) -> usize {
    let mut seen = std::collections::HashSet::new();
    for viewer in plan {
        let spans = std::iter::once(viewer.watch).chain(viewer.seek);
        for (first, last) in spans {
            for chunk in first / MIB..=last / MIB {
                seen.insert((viewer.edge, viewer.path.as_str(), chunk));
            }
        }
    }
    seen.len()
}

async fn connect_from(source: [u8; 4], edge: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    let stream = socket.connect(edge).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn watch(viewer: Viewer, edge: SocketAddr) -> Watched {
    let mut watched = Watched::default();
    let mut socket = match connect_from(viewer.source, edge).await {
        Ok(socket) => socket,
        Err(error) => {
            watched.error = Some(format!("connect: {error}"));
            return watched;
        }
    };
    let expect = |(first, last): (u64, u64)| last - first + 1;
    match client::get_on(&mut socket, &viewer.path, Some(viewer.watch)).await {
        Ok(fetched) if fetched.body_bytes == expect(viewer.watch) => {
            watched.first_byte = Some(fetched.first_byte);
            watched.bytes += fetched.body_bytes;
        }
        Ok(fetched) => {
            watched.error = Some(format!("short body: {} bytes", fetched.body_bytes));
            return watched;
        }
        Err(error) => {
            watched.error = Some(format!("watch: {error:#}"));
            return watched;
        }
    }
    if let Some(seek) = viewer.seek {
        match client::get_on(&mut socket, &viewer.path, Some(seek)).await {
            Ok(fetched) if fetched.body_bytes == expect(seek) => {
                watched.seek_first_byte = Some(fetched.first_byte);
                watched.bytes += fetched.body_bytes;
            }
            Ok(fetched) => {
                watched.error = Some(format!("short seek: {} bytes", fetched.body_bytes))
            }
            Err(error) => watched.error = Some(format!("seek: {error:#}")),
        }
    }
    watched
}

/// Sums a counter over both edges.
async fn total(edges: &[EdgeProcess], name: &str) -> f64 {
    let mut sum = 0.0;
    for edge in edges {
        let text = edge.metrics().await.expect("edge metrics");
        sum += metric(&text, name).unwrap_or(0.0);
    }
    sum
}

/// A percentile in ms; a cache hit answers well under the RTT, so this is not RTT + x.
fn at(samples: &[Duration], q: f64) -> String {
    format!("{:.1} ms", ms(percentile(samples, q)))
}

async fn run() {
    let viewers = env_or("BENCH_VIEWERS", 1000);
    let file_count = env_or("BENCH_FILES", 200) as usize;
    let watch_bytes = env_or("BENCH_WATCH_MIB", 4) * MIB;
    let seek_bytes = env_or("BENCH_SEEK_MIB", 1) * MIB;
    let concurrency = env_or("BENCH_CONCURRENCY", 200) as usize;
    let cache = std::env::var("BENCH_CACHE").unwrap_or_else(|_| "512MiB".to_owned());

    let chain = Chain::start(ChainConfig::default()).await.expect("chain");
    chain.set_telegram(RTT, PER_CONNECTION);
    let mut random = SplitMix(0x6669_6c65_7320_2020);
    let files: Vec<(String, u64)> = (0..file_count)
        .map(|i| {
            let size = 64 * MIB + random.below(192 * MIB);
            (chain.add_file(size, &format!("crowd{i}.mkv")).0, size)
        })
        .collect();
    let env = [
        ("TGCDN_CACHE_SIZE", cache.clone()),
        // One address per viewer; these only keep the bench's own metrics reads apart.
        ("TGCDN_MAX_CONNECTIONS", (concurrency * 4).to_string()),
    ];
    let mut edges = Vec::new();
    for _ in 0..2 {
        edges.push(
            EdgeProcess::start(chain.core_addr(), chain.fingerprint(), &env)
                .await
                .expect("edge binary (bash bench/run builds it)"),
        );
    }
    let pids: Vec<u32> = edges.iter().map(|e| e.pid().expect("edge pid")).collect();
    let plan = plan_viewers(&files, viewers, watch_bytes, seek_bytes);
    let compulsory = compulsory_chunks(&plan) as f64;
    let cpu_before: Duration = pids.iter().map(|&pid| process_cpu_of(pid)).sum();
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut running = tokio::task::JoinSet::new();
    for viewer in plan {
        let addr = edges[viewer.edge].addr;
        let permit = gate.clone().acquire_owned().await.expect("semaphore open");
        running.spawn(async move {
            let watched = tokio::time::timeout(Duration::from_secs(120), watch(viewer, addr))
                .await
                .unwrap_or_else(|_| Watched {
                    error: Some("no answer within 120 s".to_owned()),
                    ..Watched::default()
                });
            drop(permit);
            watched
        });
    }
    let mut results = Vec::new();
    while let Some(watched) = running.join_next().await {
        results.push(watched.expect("viewer task"));
    }
    let elapsed = started.elapsed();
    let cpu: Duration = pids
        .iter()
        .map(|&pid| process_cpu_of(pid))
        .sum::<Duration>()
        .saturating_sub(cpu_before);

    let errors: Vec<&String> = results.iter().filter_map(|w| w.error.as_ref()).collect();
    let firsts: Vec<Duration> = results.iter().filter_map(|w| w.first_byte).collect();
    let seeks: Vec<Duration> = results.iter().filter_map(|w| w.seek_first_byte).collect();
    let received: u64 = results.iter().map(|w| w.bytes).sum();
    let hits = total(&edges, "tgcdn_edge_cache_hits_total").await;
    let misses = total(&edges, "tgcdn_edge_cache_misses_total").await;
    let coalesced = total(&edges, "tgcdn_edge_cache_coalesced_total").await;
    let served = total(&edges, "tgcdn_edge_http_body_bytes_sent_total").await;
    let core_egress = misses * MIB as f64;
    let gib_served = served / (1u64 << 30) as f64;

    println!(
        "crowd: {viewers} viewers ({} seeking) on 2 edges, {file_count} files of 64-256 MiB (Zipf s=1), \
         {} MiB watched + {} MiB per seek, {concurrency} at once, Telegram +{} ms and 20 MiB/s per connection, \
         cache {cache} per edge: {:.1} s",
        seeks.len(),
        watch_bytes / MIB,
        seek_bytes / MIB,
        RTT.as_millis(),
        elapsed.as_secs_f64(),
    );
    for error in errors.iter().take(5) {
        println!("  error: {error}");
    }
    println!(
        "  edges: {hits} chunk hits, {misses} misses, {coalesced} joined a fill; {:.0} MiB served, {:.0} MiB received by viewers",
        served / MIB as f64,
        received as f64 / MIB as f64
    );
    let lookups = hits + misses + coalesced;
    let hit_ratio = if lookups > 0.0 {
        (hits + coalesced) / lookups
    } else {
        0.0
    };
    let egress_ratio = if served > 0.0 {
        core_egress / served
    } else {
        0.0
    };
    let floor_ratio = if served > 0.0 {
        compulsory * MIB as f64 / served
    } else {
        0.0
    };
    let cpu_per_gib = if gib_served > 0.0 {
        cpu.as_secs_f64() / gib_served
    } else {
        0.0
    };
    println!(
        "RESULT crowd: {} errors of {viewers} viewers; hit ratio {:.3}; core/edge egress {:.3} (target <= 0.2; this crowd's floor {:.3}: {misses} chunk fetches = {:.2}x the {compulsory} chunks it asks each edge for); \
         first byte p50 {} p99 {}; seek p50 {} p99 {} (RTT {} ms); edge CPU {:.2} s/GiB served",
        errors.len(),
        hit_ratio,
        egress_ratio,
        floor_ratio,
        if compulsory > 0.0 {
            misses / compulsory
        } else {
            0.0
        },
        at(&firsts, 0.5),
        at(&firsts, 0.99),
        at(&seeks, 0.5),
        at(&seeks, 0.99),
        RTT.as_millis(),
        cpu_per_gib,
    );
    drop(edges);
    chain.shutdown().await;
}
