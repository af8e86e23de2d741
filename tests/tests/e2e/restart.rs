//! The core is SIGKILLed while a slow download is streaming and started again on the same
//! data directory: the viewer's download completes with the right bytes. While the core is
//! down the edge still refuses bad links on its own. A revocation recorded while the edge
//! was cut off from the core is honoured once it reconnects (the core's `ForgetAll`), though
//! the edge had the file cached. This module starts its own stacks, since killing the shared
//! one would break the other modules' tests.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use tgcdn_core::revoke::Revocations;
use tgcdn_core::store::Store;
use tgcdn_tests::{Stack, StackOptions, client, sha256_hex};
use tgemu::{Content, Scope};

use crate::common::MIB;
use crate::hostile::refused_links;

/// Downloads `url` like `curl --retry 4 -C -`: after a broken response it asks for the rest
/// with `Range: bytes=N-`. Reports progress; returns the bytes and the number of requests.
fn download_resuming(url: &str, size: u64, progress: mpsc::Sender<u64>) -> (Vec<u8>, u32) {
    use std::io::Read;
    let mut body = Vec::with_capacity(size as usize);
    let mut requests = 0;
    while (body.len() as u64) < size && requests < 5 {
        requests += 1;
        let range = format!("bytes={}-", body.len());
        let headers: Vec<(&str, &str)> = if body.is_empty() {
            Vec::new()
        } else {
            vec![("Range", range.as_str())]
        };
        let Ok((head, mut reader)) = client::open(url, "GET", &headers, Duration::from_secs(20))
        else {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        let expected_status = if body.is_empty() { 200 } else { 206 };
        if head.status != expected_status {
            eprintln!("request {requests}: status {}", head.status);
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    body.extend_from_slice(&buf[..n]);
                    let _ = progress.send(body.len() as u64);
                }
                Err(error) => {
                    eprintln!("request {requests} broke at {}: {error}", body.len());
                    break;
                }
            }
        }
    }
    (body, requests)
}

#[test]
fn a_download_survives_the_core_being_killed_and_restarted() {
    let stack = Stack::start(StackOptions::default()).unwrap();
    let _logs = stack.logs_on_panic();
    let size = 6 * MIB + 555;
    let posted = stack.post_file(Content::pseudo(size), "slow.mkv", "video/x-matroska", 2);
    // ~512 KiB/s per Telegram connection: the file takes seconds, so the kill lands mid-way.
    stack
        .emulator()
        .faults()
        .set_bandwidth(Scope::All, 512 * 1024);

    let (progress, received) = mpsc::channel();
    let url = posted.url.clone();
    let downloader = std::thread::spawn(move || download_resuming(&url, size, progress));
    let started = Instant::now();
    loop {
        let got = received
            .recv_timeout(Duration::from_secs(30))
            .expect("the download made no progress");
        if got >= MIB {
            break;
        }
    }
    assert!(started.elapsed() < Duration::from_secs(30));

    stack.kill_core().unwrap();
    let killed_at = Instant::now();
    for (url, status) in refused_links(&stack.edge_url(), posted.file, stack.keyring()) {
        assert_eq!(client::get(&url, &[]).unwrap().status(), status, "{url}");
    }
    std::thread::sleep(Duration::from_millis(300));
    stack.restart_core().unwrap();
    let restarted_at = Instant::now();
    eprintln!("core down for {:?}", killed_at.elapsed());

    let (body, requests) = downloader.join().unwrap();
    eprintln!(
        "download finished in {:?} with {requests} request(s)",
        started.elapsed()
    );
    assert_eq!(body.len() as u64, size);
    assert_eq!(
        sha256_hex(&body),
        sha256_hex(
            &stack
                .emulator()
                .content_slice(posted.doc.id, 0, size as usize)
        )
    );
    // The restarted core resets the edge's old QUIC connection (its reset key and connection
    // ids survive restarts), so the edge reconnects at once and the response in flight goes
    // on. Before that fix the edge waited out its 30 s idle timeout and the response broke.
    let after_restart = restarted_at.elapsed();
    assert!(
        requests <= 2 && after_restart < Duration::from_secs(15),
        "{requests} requests, {after_restart:?} after the restart"
    );
}

/// The value of an unlabelled counter in the edge's `/metrics` (0 before its first sample).
fn edge_counter(stack: &Stack, name: &str) -> u64 {
    let text = stack.edge_metrics().unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// Records a revocation in the stopped core's database, as an operator's revoke would have
/// while no edge was connected to hear the announcement.
fn revoke_offline(stack: &Stack, file: tgcdn_shared::FileRef) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(&stack.data_dir()).expect("the stopped core's database opens");
        Revocations::new(store.clone())
            .revoke(file, "revoked while the edge was away", 1_700_000_000)
            .await
            .expect("revoked");
        store.flush().await.expect("flushed");
    });
}

#[test]
fn an_edge_that_reconnects_honours_revocations_made_while_it_was_away() {
    let stack = Stack::start(StackOptions::default()).unwrap();
    let _logs = stack.logs_on_panic();
    let posted = stack.post_file(
        Content::pseudo(MIB + 77),
        "away.bin",
        "application/octet-stream",
        2,
    );
    assert_eq!(client::get(&posted.url, &[]).unwrap().status(), 200);

    stack.kill_core().unwrap();
    revoke_offline(&stack, posted.file);
    // The edge still trusts what it cached: without the core it serves the file.
    assert_eq!(client::get(&posted.url, &[]).unwrap().status(), 200);
    let pushes_before = edge_counter(&stack, "tgcdn_edge_pushes_received_total");

    stack.restart_core().unwrap();
    // On reconnecting, the edge applies `ForgetAll` before it takes requests on the new
    // connection (polled with a deadline, not slept).
    let restarted = Instant::now();
    while edge_counter(&stack, "tgcdn_edge_pushes_received_total") <= pushes_before {
        assert!(
            restarted.elapsed() < Duration::from_secs(30),
            "the edge never forgot its cached metadata after reconnecting"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let response = client::get(&posted.url, &[]).unwrap();
    assert_eq!(response.status(), 410, "the revocation made while away");
}
