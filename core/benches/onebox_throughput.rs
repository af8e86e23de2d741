//! Streaming one file through the one-box core from the emulated Telegram, against the seed
//! design's one-chunk-at-a-time loop, in the same run and on the same emulator.
//!
//! The emulator adds 50 ms to every answer and paces each connection at 20 MiB/s (the shape
//! EMULATOR.md measured). Baseline: one bot, one connection, an edge read-ahead of one
//! chunk and at most two parts per connection — both 512 KiB halves of a chunk together,
//! then the next pair (the seed's bytes per round trip). tgcdn: two bots × two connections,
//! the default window of 8 parts per connection and the edge's default read-ahead. Each run
//! is one HTTP GET of the whole file through `run_one_box`, body checked byte for byte.
//! Printed as MiB/s and tgcdn/baseline. Run with
//! `cargo bench -p tgcdn-core --bench onebox_throughput` (release; loopback, 2 cores: the
//! emulator's and the client's crypto share them, see PERFORMANCE.md).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{Deployment, MIB, http_get, keyring};
use tgcdn_core::config::OneBoxEdge;
use tgcdn_core::runtime::run_one_box;
use tgemu::{Content, Latency, Scope};

const FILE_MIB: u64 = 48;

async fn stream_once(
    deployment: &Deployment,
    msg_id: i32,
    doc_id: i64,
    extra: &[(&str, &str)],
) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    deployment.provision(dir.path()).await;
    let mut env = vec![("TGCDN_WITH_EDGE", "true")];
    env.extend_from_slice(extra);
    let config = deployment.config(dir.path(), &env);
    let edge = config
        .one_box
        .clone()
        .unwrap_or_else(|| OneBoxEdge::on("127.0.0.1:0".parse().expect("addr")));
    let core = run_one_box(config, edge).await.expect("core starts");
    let addr = core.edge_addr().expect("edge");
    let token = keyring().sign(deployment.file(msg_id), None);
    let path = format!("/dl/{token}/film.mkv");
    // Meta and locations warmed outside the timing, as a viewer's player does with HEAD.
    let _ = http_get(addr, &path, &[("Range", "bytes=0-0")]).await;
    let started = Instant::now();
    let response = http_get(addr, &path, &[]).await;
    let elapsed = started.elapsed();
    assert_eq!(response.status, 200);
    let expected = deployment
        .emu
        .content_slice(doc_id, 0, (FILE_MIB * MIB) as usize);
    assert!(response.body == expected, "body differs");
    core.shutdown().await.expect("shutdown");
    (FILE_MIB * MIB) as f64 / MIB as f64 / elapsed.as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let deployment = Deployment::start().await;
        let world = deployment.emu.world();
        let doc = world.add_document(
            Content::pseudo(FILE_MIB * MIB),
            "film.mkv",
            "video/x-matroska",
            4,
        );
        let msg_id = world.post_document(deployment.channel.channel_id, doc.id, "");
        let faults = deployment.emu.faults();
        faults.set_latency(Scope::All, Latency::Fixed(Duration::from_millis(50)));
        faults.set_bandwidth(Scope::All, 20 * MIB);

        let baseline = stream_once(
            &deployment,
            msg_id,
            doc.id,
            &[
                ("TGCDN_WORKER_TOKENS", ""),
                ("TGCDN_CONNECTIONS_PER_BOT", "1"),
                ("TGCDN_PARTS_PER_CONNECTION", "2"),
                ("TGCDN_READAHEAD_MAX", "1"),
            ],
        )
        .await;
        let tgcdn = stream_once(
            &deployment,
            msg_id,
            doc.id,
            &[("TGCDN_CONNECTIONS_PER_BOT", "2")],
        )
        .await;
        println!(
            "{FILE_MIB} MiB through the one-box core, 50 ms per answer, 20 MiB/s per connection"
        );
        println!("baseline (1 chunk in flight, 1 connection): {baseline:8.1} MiB/s");
        println!("tgcdn (2 bots x 2 connections, window 8):   {tgcdn:8.1} MiB/s");
        println!("tgcdn / baseline: {:.2}x", tgcdn / baseline);
    });
}
