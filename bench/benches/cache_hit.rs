//! Cache-hit throughput: the edge (library in this process, cache warmed) against nginx
//! serving the same bytes from a local file (sendfile, page cache warm) and against a bare
//! hyper server streaming the same `Bytes` from memory. Same machine, same client tools:
//! curl for one full GET of the file, wrk for 64 KiB random ranges over 32 connections.
//! A second edge with the verified-token table off (`TGCDN_TOKEN_CACHE=0`) shows what the
//! token check costs per request.
//!
//! `cargo bench -p tgcdn-bench --bench cache_hit` (env BENCH_FILE_MIB, default 256;
//! BENCH_ROUNDS, default 3). Each figure is the best of the rounds, the servers taking
//! turns, because the 2 cores are shared with whatever else runs; compare the ratios.

use std::sync::Arc;

use bytes::Bytes;
use tgcdn_bench::env_or;
use tgcdn_bench::{MIB, bare, client, external};
use tgcdn_edge::app::{EdgeOptions, build_state};
use tgcdn_edge::http::serve;
use tgcdn_edge::testing::{MemoryUpstream, pattern, test_meta};
use tgcdn_edge::tokens::DEFAULT_TOKEN_CACHE_ENTRIES;
use tgcdn_shared::FileRef;
use tgcdn_shared::token::{Keyring, LinkKey, TokenVerifier};
use tokio::net::TcpListener;

const FILE: FileRef = FileRef {
    chat_id: -1_000_777,
    msg_id: 1,
};
const RANGE: u64 = 64 * 1024;
const RANGE_CONNECTIONS: usize = 32;
const WRK_SECONDS: u64 = 4;

fn main() {
    tgcdn_bench::run_bench(run);
}

async fn run() {
    let file_mib = env_or("BENCH_FILE_MIB", 256);
    let rounds = env_or("BENCH_ROUNDS", 3);
    let size = file_mib * MIB;
    let chunks: Arc<Vec<Bytes>> = Arc::new(
        (0..file_mib)
            .map(|i| Bytes::from(pattern(i * MIB, (i + 1) * MIB)))
            .collect(),
    );

    let keyring = Keyring::new(
        LinkKey::new(1, b"bench-link-secret-0123456789abcd").expect("key"),
        Vec::new(),
    )
    .expect("keyring");
    let token = keyring.sign(FILE, None);
    let upstream = Arc::new(
        MemoryUpstream::new().with_file(FILE, test_meta(size, "bench.mkv", "video/x-matroska")),
    );
    let mut urls = Vec::new();
    for token_cache in [DEFAULT_TOKEN_CACHE_ENTRIES, 0] {
        let mut options = EdgeOptions {
            cache_bytes: 2 * size,
            ..EdgeOptions::default()
        };
        options.http.per_ip_limit = 4096;
        // Every bench client is 127.0.0.1.
        options.http.max_connections_per_ip = 4096;
        options.http.token_cache_entries = token_cache;
        let state = build_state(
            upstream.clone(),
            TokenVerifier::new(keyring.clone()),
            options,
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let edge_addr = listener.local_addr().expect("addr");
        tokio::spawn(serve(listener, state, std::future::pending()));
        // Warm the cache: every chunk is a hit from here on.
        let warm = client::get(edge_addr, &format!("/dl/{token}/bench.mkv"), None)
            .await
            .expect("warming the edge cache");
        assert_eq!(warm.body_bytes, size);
        urls.push(format!("http://{edge_addr}/dl/{token}/bench.mkv"));
    }
    let edge_no_token_cache_url = urls.pop();
    let edge_url = urls.pop();

    let bare_addr = bare::start(chunks.clone()).await.expect("bare hyper");
    let bare_url = format!("http://{bare_addr}/file");
    let whole: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    let nginx = match external::Nginx::start("bench.mkv", &whole).await {
        Ok(nginx) => Some(nginx),
        Err(error) => {
            println!("nginx baseline skipped: {error:#}");
            None
        }
    };
    drop(whole);
    let nginx_url = nginx
        .as_ref()
        .map(|n| format!("http://{}/bench.mkv", n.addr));

    println!(
        "cache-hit throughput: {file_mib} MiB file, best of {rounds} rounds (servers take turns), loopback, 2 shared cores"
    );
    let servers: Vec<(&str, String)> = [
        Some(("nginx", nginx_url.clone())),
        Some(("bare hyper", Some(bare_url))),
        Some(("edge", edge_url)),
        Some(("edge, no token cache", edge_no_token_cache_url)),
    ]
    .into_iter()
    .flatten()
    .filter_map(|(name, url)| Some((name, url?)))
    .collect();

    let mut full = vec![0f64; servers.len()];
    for _ in 0..rounds {
        for (best, (name, url)) in full.iter_mut().zip(&servers) {
            match external::curl_speed(url).await {
                Ok(speed) => *best = best.max(speed / MIB as f64),
                Err(error) => println!("{name}: {error:#}"),
            }
        }
    }
    let mut ranges = vec![0f64; servers.len()];
    for _ in 0..rounds {
        for (best, (name, url)) in ranges.iter_mut().zip(&servers) {
            match external::wrk_ranges(url, size, RANGE, RANGE_CONNECTIONS, WRK_SECONDS).await {
                Ok(rps) => *best = best.max(rps),
                Err(error) => println!("{name}: {error:#}"),
            }
        }
    }

    let by_name = |table: &[f64], name: &str| {
        servers
            .iter()
            .position(|(n, _)| *n == name)
            .map(|i| table[i])
    };
    println!(
        "{:<22} {:>14} {:>22}",
        "server", "full GET MiB/s", "64 KiB ranges req/s"
    );
    for (i, (name, _)) in servers.iter().enumerate() {
        println!("{name:<22} {:>14.0} {:>22.0}", full[i], ranges[i]);
    }
    let edge_full = by_name(&full, "edge").unwrap_or(0.0);
    let edge_ranges = by_name(&ranges, "edge").unwrap_or(0.0);
    for baseline in ["nginx", "bare hyper", "edge, no token cache"] {
        if let (Some(f), Some(r)) = (by_name(&full, baseline), by_name(&ranges, baseline)) {
            println!(
                "RESULT cache_hit edge/{baseline}: full GET {:.2}x, 64 KiB ranges x{RANGE_CONNECTIONS} {:.2}x",
                edge_full / f,
                edge_ranges / r
            );
        }
    }
    if let (Some(bf), Some(nf), Some(br), Some(nr)) = (
        by_name(&full, "bare hyper"),
        by_name(&full, "nginx"),
        by_name(&ranges, "bare hyper"),
        by_name(&ranges, "nginx"),
    ) {
        println!(
            "RESULT cache_hit bare hyper/nginx (reference 1.6x, 1.1x): full GET {:.2}x, ranges {:.2}x",
            bf / nf,
            br / nr
        );
    }
}
