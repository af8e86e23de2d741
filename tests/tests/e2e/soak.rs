//! Fault soak: 50 concurrent viewers stream 50 different files through the real edge and
//! core while the emulator injects FLOOD_WAIT on one of the three bots, cuts connections
//! every few MiB, expires file references, answers 5 % of requests with INTERNAL, and kicks
//! one bot out of the storage channel and lets it back. Every stream must complete with
//! the exact bytes. The same run without faults comes first; both print their throughput
//! and Telegram call counts, so the retries the faults cost are the difference. Bounded in
//! time; starts its own stack, since its faults would disturb the shared one's tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tgcdn_tests::{PostedFile, Stack, StackOptions, client, sha256_hex};
use tgemu::{Content, Scope};

use crate::common::MIB;

const STREAMS: usize = 50;
/// A bit over one chunk: two chunk fetches (four `getFile` parts) per stream.
const FILE_SIZE: u64 = MIB + 300 * 1024;
const RUN_BOUND: Duration = Duration::from_secs(120);

struct RunReport {
    elapsed: Duration,
    get_file: u64,
    get_messages: u64,
}

impl RunReport {
    fn mib_per_sec(&self) -> f64 {
        (STREAMS as u64 * FILE_SIZE) as f64 / MIB as f64 / self.elapsed.as_secs_f64()
    }
}

/// Posts `STREAMS` new files and streams each once, all at the same time; panics on any
/// failed or corrupted stream.
fn run(stack: &Stack, label: &str) -> RunReport {
    let files: Vec<PostedFile> = (0..STREAMS)
        .map(|i| {
            let name = format!("{label}-{i}.mkv");
            stack.post_file(
                Content::pseudo(FILE_SIZE + i as u64),
                &name,
                "video/x-matroska",
                2,
            )
        })
        .collect();
    stack.emulator().reset_counters();
    let started = Instant::now();
    let viewers: Vec<_> = files
        .iter()
        .map(|posted| {
            let url = posted.url.clone();
            std::thread::spawn(move || client::get(&url, &[]))
        })
        .collect();
    for (posted, viewer) in files.iter().zip(viewers) {
        let response = viewer
            .join()
            .expect("viewer thread")
            .unwrap_or_else(|error| panic!("{label}: {} failed: {error}", posted.name));
        assert_eq!(response.status(), 200, "{label}: {}", posted.name);
        let expected = stack
            .emulator()
            .content_slice(posted.doc.id, 0, posted.doc.size as usize);
        assert_eq!(
            response.body.len(),
            expected.len(),
            "{label}: {}",
            posted.name
        );
        assert_eq!(
            sha256_hex(&response.body),
            sha256_hex(&expected),
            "{label}: {} corrupted",
            posted.name
        );
    }
    let elapsed = started.elapsed();
    assert!(elapsed < RUN_BOUND, "{label} took {elapsed:?}");
    let counters = stack.emulator().counters();
    RunReport {
        elapsed,
        get_file: counters.requests_for("upload.getFile"),
        get_messages: counters.requests_for("channels.getMessages"),
    }
}

/// Keeps the faults coming while `running`: FLOOD_WAIT renewed on one bot, a connection cut
/// every 2 MiB, and the kicked bot let back after a second.
fn inject(stack: &Stack, running: &AtomicBool) {
    let faults = stack.emulator().faults();
    let flooded = stack.workers()[0].user_id;
    let kicked = stack.workers()[1].user_id;
    let channel = stack.channel().channel_id;
    faults.file_reference_ttl(Duration::from_millis(300));
    faults.internal_error_rate(Scope::All, 0.05);
    stack.world().remove_channel_member(channel, kicked);
    let kicked_at = Instant::now();
    let mut back = false;
    while running.load(Ordering::SeqCst) {
        faults.flood_wait(flooded, 2);
        faults.drop_connection_after_bytes(Scope::All, 2 * MIB);
        if !back && kicked_at.elapsed() > Duration::from_secs(1) {
            stack.world().add_channel_member(channel, kicked, true);
            back = true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    faults.clear();
}

#[test]
#[ignore = "fails today: under these faults a stream gets 200 and Content-Length, then 0 body \
            bytes (the edge's first chunk fetch fails); run with --ignored to chase it"]
fn fifty_streams_complete_byte_exact_through_injected_faults() {
    let stack = Stack::start(StackOptions {
        workers: 2,
        ..StackOptions::default()
    })
    .unwrap();
    let _logs = stack.logs_on_panic();

    let calm = run(&stack, "calm");
    let running = Arc::new(AtomicBool::new(true));
    let faulty = std::thread::scope(|scope| {
        let injector = scope.spawn(|| inject(&stack, &running));
        // Let the first faults land before the viewers start.
        std::thread::sleep(Duration::from_millis(200));
        let report = run(&stack, "faulty");
        running.store(false, Ordering::SeqCst);
        injector.join().expect("fault injector");
        report
    });

    eprintln!(
        "soak: {STREAMS} streams of {FILE_SIZE} B: without faults {:.1} MiB/s in {:?} \
         ({} getFile, {} getMessages); with faults {:.1} MiB/s in {:?} ({} getFile, {} \
         getMessages); throughput ratio {:.2}, extra calls (retries) {} getFile, {} getMessages",
        calm.mib_per_sec(),
        calm.elapsed,
        calm.get_file,
        calm.get_messages,
        faulty.mib_per_sec(),
        faulty.elapsed,
        faulty.get_file,
        faulty.get_messages,
        faulty.mib_per_sec() / calm.mib_per_sec(),
        faulty.get_file.saturating_sub(calm.get_file),
        faulty.get_messages.saturating_sub(calm.get_messages),
    );
    // The faults did happen: a run that retried nothing proves nothing.
    assert!(
        faulty.get_file > calm.get_file,
        "no getFile was retried: {} vs {}",
        faulty.get_file,
        calm.get_file
    );
}
