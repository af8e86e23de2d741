//! Memory under slow readers: the real `tgcdn-edge` binary (a child process, against the
//! core and emulator in this process) with N concurrent slow clients on N distinct files,
//! each reading a few KiB per second, with a bounded cache and in-flight budget. Printed:
//! RSS − idle at the peak, the cache's bytes and the in-flight bytes (both from the edge's
//! metrics), the bound cache size + budget + 64 KiB × streams, and the per-stream excess =
//! (RSS − idle − chunk memory growth) / N, where chunk memory = cache bytes + bytes
//! responses hold (`tgcdn_edge_inflight_held_bytes`, each allocation once) − those the cache
//! also holds (`tgcdn_edge_inflight_cached_bytes`: a chunk being sent that is still cached is
//! one allocation, not two). The in-flight bytes beyond the held ones are reservations of
//! read-ahead not landed yet: bounded, but not memory; the buffers of fetches in progress
//! (at most the fetch cap's worth) are in the excess. Targets (#17): RSS − idle within the
//! bound (ratio ≤ 1), per-stream excess < 64 KiB.
//!
//! `cargo bench -p tgcdn-bench --bench memory` (env BENCH_STREAMS default 500,
//! BENCH_SECONDS default 12, BENCH_CACHE default 256MiB, BENCH_INFLIGHT default 128MiB;
//! needs `target/release/tgcdn-edge`, built by `bash bench/run`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tgcdn_bench::MIB;
use tgcdn_bench::chain::{Chain, ChainConfig};
use tgcdn_bench::env_or;
use tgcdn_bench::external::{EdgeProcess, metric, rss_bytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

/// Each client reads this much, then sleeps a second.
const READ_PER_SECOND: usize = 4 * 1024;
const FILE_SIZE: u64 = 4 * MIB;

fn main() {
    tgcdn_bench::run_bench(run);
}

/// A client that asks for the whole file and then reads `READ_PER_SECOND` per second with
/// a small receive buffer, so the edge feels the back-pressure, until `seconds` pass.
async fn slow_client(addr: SocketAddr, path: String, seconds: u64, received: Arc<AtomicU64>) {
    let socket = TcpSocket::new_v4().expect("socket");
    // Best effort: the kernel rounds it up; small keeps the edge from parking MiBs in it.
    let _ = socket.set_recv_buffer_size(16 * 1024);
    let Ok(mut stream) = socket.connect(addr).await else {
        return;
    };
    let head = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let mut buffer = vec![0u8; READ_PER_SECOND];
    for _ in 0..seconds {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => {
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
            _ => return,
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The chunk bytes the edge reports holding.
#[derive(Debug, Clone, Copy, Default)]
struct Held {
    cache: f64,
    /// Leased: held by responses, or reserved for read-ahead being fetched.
    inflight: f64,
    /// Of `inflight`, the bytes of chunks responses hold.
    held: f64,
    /// Of `held`, the bytes the cache holds too.
    overlap: f64,
    /// Chunk fills in progress (waiting for a fetch slot or fetching).
    fills: f64,
}

impl Held {
    /// Chunk memory: each allocation once.
    fn memory(&self) -> f64 {
        self.cache + self.held - self.overlap
    }
}

/// The cache's and the in-flight budget's bytes, as the edge reports them.
async fn held_bytes(edge: &EdgeProcess) -> Held {
    let text = edge.metrics().await.expect("metrics");
    Held {
        cache: metric(&text, "tgcdn_edge_cache_bytes").unwrap_or(0.0),
        inflight: metric(&text, "tgcdn_edge_inflight_bytes").unwrap_or(0.0),
        held: metric(&text, "tgcdn_edge_inflight_held_bytes").unwrap_or(0.0),
        overlap: metric(&text, "tgcdn_edge_inflight_cached_bytes").unwrap_or(0.0),
        fills: metric(&text, "tgcdn_edge_cache_fetches_in_flight").unwrap_or(0.0),
    }
}

/// A size such as `256MiB` in bytes (MiB and GiB only: all this bench needs).
fn parse_size(text: &str) -> u64 {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let number: u64 = number.parse().expect("a size such as 256MiB");
    match unit {
        "GiB" => number << 30,
        "MiB" | "" => number << 20,
        other => panic!("unit {other}: use MiB or GiB"),
    }
}

async fn run() {
    let streams = env_or("BENCH_STREAMS", 500);
    let seconds = env_or("BENCH_SECONDS", 12);
    let cache_setting = std::env::var("BENCH_CACHE").unwrap_or_else(|_| "256MiB".to_owned());
    let inflight_setting = std::env::var("BENCH_INFLIGHT").unwrap_or_else(|_| "128MiB".to_owned());
    let (cache_size, inflight_max) = (parse_size(&cache_setting), parse_size(&inflight_setting));
    let config = ChainConfig::default();
    let chain = Chain::start(config).await.expect("chain");
    let mut env = vec![
        // Smaller than what the readers fetch: evicted chunks still held by slow
        // responses are what the in-flight budget must bound.
        ("TGCDN_CACHE_SIZE", cache_setting.clone()),
        ("TGCDN_INFLIGHT_MAX", inflight_setting.clone()),
        ("TGCDN_PER_IP_LIMIT", (streams * 2).to_string()),
        ("TGCDN_MAX_CONNECTIONS_PER_IP", (streams * 2).to_string()),
    ];
    // glibc raises its mmap threshold past 1 MiB after the first chunk is freed, after which
    // chunks come from fragmenting heap arenas; a fixed threshold keeps each chunk its own
    // mapping. Set to compare the cache's slack with and without.
    let mmap_threshold = std::env::var("BENCH_MMAP_THRESHOLD").ok();
    if let Some(threshold) = &mmap_threshold {
        env.push(("MALLOC_MMAP_THRESHOLD_", threshold.clone()));
    }
    let edge = EdgeProcess::start(chain.core_addr(), chain.fingerprint(), &env)
        .await
        .expect("edge binary");
    let pid = edge.pid().expect("pid");
    let paths: Vec<String> = (0..=streams)
        .map(|i| chain.add_file(FILE_SIZE, &format!("slow{i}.mkv")).0)
        .collect();
    // One full request first, so lazy start-up costs (QUIC connection, first allocations)
    // are in the idle figure, not spread over the streams.
    tgcdn_bench::client::get(edge.addr, &paths[0], None)
        .await
        .expect("warm-up");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = rss_bytes(pid).expect("rss");
    let idle = held_bytes(&edge).await;

    let received = Arc::new(AtomicU64::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for path in &paths[1..] {
        clients.spawn(slow_client(
            edge.addr,
            path.clone(),
            seconds,
            received.clone(),
        ));
    }
    // Sample while the clients trickle; keep the peak, and the last sample with no fill in
    // progress (every read-ahead landed: no fetch buffer half full), where RSS is what is
    // live because the edge keeps chunk buffers out of glibc's heap (`tgcdn_edge::alloc`).
    let (mut peak_rss, mut at_peak) = (0u64, Held::default());
    let mut at_rest: Option<(u64, Held)> = None;
    for _ in 0..seconds.saturating_sub(2) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let held = held_bytes(&edge).await;
        let rss = rss_bytes(pid).expect("rss");
        if rss > peak_rss {
            (peak_rss, at_peak) = (rss, held);
        }
        if held.fills == 0.0 {
            at_rest = Some((rss, held));
        }
    }
    let open = clients.len();
    while clients.join_next().await.is_some() {}
    let n = streams as f64;
    let kib = 1024.0;
    let mib = MIB as f64;
    let growth = peak_rss.saturating_sub(idle_rss) as f64;
    let chunk_growth = (at_peak.memory() - idle.memory()).max(0.0);
    let per_stream = (growth - chunk_growth) / n;
    let bound = cache_size as f64 + inflight_max as f64 + 64.0 * kib * n;
    println!(
        "memory under slow readers: {streams} slow clients ({} KiB/s each, distinct {} MiB files), edge binary, \
         cache {cache_setting}, in-flight budget {inflight_setting}, glibc mmap threshold {}, {} bots x {} connections, {seconds} s",
        READ_PER_SECOND / 1024,
        FILE_SIZE / MIB,
        mmap_threshold.as_deref().unwrap_or("default"),
        config.bots,
        config.connections_per_bot
    );
    println!(
        "  idle RSS {:.1} MiB, peak RSS {:.1} MiB (RSS - idle {:.1} MiB), cache {:.1} -> {:.1} MiB, \
         in-flight {:.1} MiB (held {:.1}, of which also cached {:.1}), chunk memory growth {:.1} MiB, \
         fills in progress {}, clients open at peak {open}, received {:.1} MiB",
        idle_rss as f64 / mib,
        peak_rss as f64 / mib,
        growth / mib,
        idle.cache / mib,
        at_peak.cache / mib,
        at_peak.inflight / mib,
        at_peak.held / mib,
        at_peak.overlap / mib,
        chunk_growth / mib,
        at_peak.fills,
        received.load(Ordering::Relaxed) as f64 / mib
    );
    match at_rest {
        Some((rss, held)) => println!(
            "  at rest (no fill in progress): RSS - idle {:.1} MiB, chunk memory growth {:.1} MiB: \
             {:.1} KiB per stream beyond chunk memory",
            rss.saturating_sub(idle_rss) as f64 / mib,
            (held.memory() - idle.memory()) / mib,
            (rss.saturating_sub(idle_rss) as f64 - (held.memory() - idle.memory())) / n / kib
        ),
        None => println!(
            "  never at rest: fills were in progress at every sample (BENCH_SECONDS longer lets them land)"
        ),
    }
    println!(
        "RESULT memory: RSS - idle {:.1} MiB vs bound cache + budget + 64 KiB x streams {:.1} MiB: \
         ratio {:.3} (target <= 1); {:.1} KiB per stream beyond chunk memory (target < 64)",
        growth / mib,
        bound / mib,
        growth / bound,
        per_stream / kib
    );
    chain.shutdown().await;
}
