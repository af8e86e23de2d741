//! A viewer's time to first byte after a flood of abandoned requests (#17): one address
//! (127.0.0.1) sends `BENCH_FLOOD` requests `Range: bytes=N-`, each on its own chunk of a
//! big file, and hangs up each after 300 ms; right after the flood is sent, a viewer from
//! another address (127.0.0.2) asks for the first 64 KiB of a file never seen. Baseline: the
//! same viewer request on the same edge with no flood, in the same run. Target: ratio ≤ 2.
//! Also printed: the edge's cancelled fills and the chunk fetches that reached the core, the
//! core's downloads started and cancelled (every stream waiting for them stopped), and the
//! `upload.getFile` calls Telegram answered.
//!
//! `cargo bench -p tgcdn-bench --bench flood` (env BENCH_SAMPLES default 5, BENCH_FLOOD
//! default 500, BENCH_FETCH_PER_CLIENT = the edge's `fetch_per_client`, default 16,
//! BENCH_FETCH_FAIR_SHARE = its `fetch_fair_share`, default 4). The
//! emulator answers after 20 ms, so a fill holds its slot for a while.
//!
//! To tell which side the viewer waits for, `BENCH_FLOOD_PROBE=core` replaces the viewer by
//! a probe on a QUIC connection of its own (a fresh file's Meta, then chunk 0; no edge HTTP
//! in front) and prints each sample's phases and the core's parts in flight;
//! `BENCH_FLOOD_PROBE_DIRECT=1` asks the probe's chunk of the core's fetcher in process.

use std::net::SocketAddr;
use std::time::Duration;

use tgcdn_bench::chain::{Chain, ChainConfig};
use tgcdn_bench::stats::{ms, percentile};
use tgcdn_bench::{MIB, client, env_or};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

const RANGE: u64 = 64 * 1024;
const FLOOD_FILE_MIB: u64 = 1024;
/// How long each abandoned request stays open: long enough to start its fills.
const ABANDON_AFTER: Duration = Duration::from_millis(300);

fn main() {
    tgcdn_bench::run_bench(run);
}

async fn connect_from(source: &str, edge: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{source}:0").parse().expect("address"))
        .expect("bind a loopback source address");
    let stream = socket.connect(edge).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// The viewer's time to first byte for a 64 KiB range of a file never seen.
async fn viewer_ttfb(edge: SocketAddr, path: &str) -> Duration {
    let mut socket = connect_from("127.0.0.2", edge).await;
    let fetched = tokio::time::timeout(
        Duration::from_secs(60),
        client::get_on(&mut socket, path, Some((0, RANGE - 1))),
    )
    .await
    .expect("the viewer waited a minute")
    .expect("the viewer's request failed");
    assert_eq!(fetched.body_bytes, RANGE);
    fetched.first_byte
}

/// Sends `count` abandoned requests from 127.0.0.1; returns once all are sent (they hang
/// up on their own `ABANDON_AFTER` later).
async fn flood(edge: SocketAddr, path: &str, count: u64, round: u64) {
    let mut sent = tokio::task::JoinSet::new();
    for i in 0..count {
        let chunk = (round * count + i) % (FLOOD_FILE_MIB - 1);
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: bench\r\nRange: bytes={}-\r\n\r\n",
            chunk * MIB
        );
        sent.spawn(async move {
            let mut stream = connect_from("127.0.0.1", edge).await;
            let _ = stream.write_all(head.as_bytes()).await;
            tokio::spawn(async move {
                tokio::time::sleep(ABANDON_AFTER).await;
                drop(stream);
            });
        });
    }
    while sent.join_next().await.is_some() {}
}

async fn run() {
    let samples = env_or("BENCH_SAMPLES", 5);
    let count = env_or("BENCH_FLOOD", 500);
    let chain = Chain::start(ChainConfig::default()).await.expect("chain");
    chain.set_telegram(Duration::from_millis(20), 0);
    let (edge, state) = chain.start_edge(32).await.expect("edge");
    let (flood_path, _) = chain.add_file(FLOOD_FILE_MIB * MIB, "flood.mkv");
    let fresh = |tag: &str, i: u64| chain.add_file(8 * MIB, &format!("{tag}{i}.mkv")).0;
    // Warm-up: the QUIC connection and the flood file's metadata.
    viewer_ttfb(edge, &fresh("warm", 0)).await;
    let mut warm = connect_from("127.0.0.1", edge).await;
    client::get_on(&mut warm, &flood_path, Some((0, 0)))
        .await
        .expect("flood file");

    // BENCH_FLOOD_PROBE=core: the samples are a fresh file's Meta + chunk 0 asked of the core
    // over a QUIC connection of their own (no edge HTTP in front), to tell which side waits.
    let probe_core = std::env::var("BENCH_FLOOD_PROBE").is_ok_and(|probe| probe == "core");
    let probe = chain.upstream().await.expect("probe upstream");
    let sample = async |tag: &str, i: u64| {
        if !probe_core {
            return viewer_ttfb(edge, &fresh(tag, i)).await;
        }
        use tgcdn_edge::upstream::Upstream;
        let (_, file) = chain.add_file(8 * MIB, &format!("probe-{tag}{i}.mkv"));
        let parts_before: usize = chain
            .fetcher()
            .pool()
            .report(std::time::Instant::now())
            .iter()
            .map(|bot| bot.load.in_flight)
            .sum();
        let started = std::time::Instant::now();
        probe.meta(file).await.expect("probe meta");
        let meta = started.elapsed();
        if std::env::var("BENCH_FLOOD_PROBE_DIRECT").is_ok() {
            chain
                .fetcher()
                .chunk(file, 8 * MIB, 0)
                .await
                .expect("probe chunk");
        } else {
            probe.chunk(file, 0).await.expect("probe chunk");
        }
        println!(
            "  probe {tag}{i}: parts in flight at the core {parts_before}, meta {:.1} ms, chunk {:.1} ms",
            ms(meta),
            ms(started.elapsed() - meta)
        );
        started.elapsed()
    };
    let (mut idle, mut flooded) = (Vec::new(), Vec::new());
    // The emulator's thread CPU over each flood-to-first-byte window: near the window's wall
    // time means the (one-threaded) emulated Telegram is what the viewer waits for.
    let (mut window, mut emulator_cpu, mut process_cpu) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for i in 0..samples {
        idle.push(sample("idle", i).await);
        let before = chain.emulator_report().await.expect("emulator report").cpu;
        let process_before = tgcdn_bench::chain::process_cpu();
        let started = std::time::Instant::now();
        flood(edge, &flood_path, count, i).await;
        flooded.push(sample("flooded", i).await);
        window += started.elapsed();
        process_cpu += tgcdn_bench::chain::process_cpu() - process_before;
        emulator_cpu += chain.emulator_report().await.expect("emulator report").cpu - before;
        // Let the round's abandoned requests hang up before the next idle sample.
        tokio::time::sleep(ABANDON_AFTER * 2).await;
    }
    let counters = state.chunks.cache().counters();
    let core = chain.fetcher().counters();
    let get_file = chain
        .emulator_report()
        .await
        .expect("emulator report")
        .counters
        .requests_for("upload.getFile");
    let (idle_p50, flooded_p50) = (ms(percentile(&idle, 0.5)), ms(percentile(&flooded, 0.5)));
    let flooded_max = ms(percentile(&flooded, 1.0));
    println!(
        "viewer after a flood: {count} abandoned Range: bytes=N- requests from one address per round, \
         {samples} rounds, fetch slots {} per client of {}",
        state.chunks.slots().per_client(),
        state.chunks.slots().capacity()
    );
    println!(
        "  idle TTFB median {idle_p50:.2} ms; after the flood median {flooded_p50:.2} ms, worst {flooded_max:.2} ms; \
         fills cancelled {}, chunk fetches started {} (misses)",
        counters.cancelled.get(),
        counters.misses.get()
    );
    println!(
        "  core: downloads started {}, cancelled {} (nobody waiting), coalesced {}; upload.getFile answered {get_file}",
        core.downloads, core.cancelled, core.coalesced
    );
    let share = |cpu: Duration| 100.0 * cpu.as_secs_f64() / window.as_secs_f64().max(1e-9);
    println!(
        "  over {:.0} ms of flood-to-viewer windows: emulator thread CPU {:.0} ms ({:.0} %), \
         whole process (bench clients, edge, core, emulator) {:.0} ms ({:.0} % of one core)",
        ms(window),
        ms(emulator_cpu),
        share(emulator_cpu),
        ms(process_cpu),
        share(process_cpu)
    );
    println!(
        "RESULT flood: viewer TTFB after the flood / idle = {:.2}x median (target <= 2), {:.2}x worst",
        flooded_p50 / idle_p50.max(0.001),
        flooded_max / idle_p50.max(0.001)
    );
    chain.shutdown().await;
}
