//! Fault soak: 50 concurrent viewers stream 50 different files through the real edge and
//! core while the emulator injects FLOOD_WAIT on half of the four bots, cuts connections
//! every few MiB, expires file references, answers 5 % of requests with INTERNAL, and kicks
//! one bot out of the storage channel and lets it back. Every stream must complete with
//! the exact bytes. The same run without faults comes first; both print their throughput
//! and Telegram call counts, and the faulty run the core's retry counters by class (from its
//! `/metrics`), so the retries the faults cost are the difference. Bounded in time; starts
//! its own stack, since its faults would disturb the shared one's tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
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
    /// The core's retry counters this run added, `(sample, count)` from its `/metrics`.
    retries: Vec<(String, f64)>,
}

/// The core's retry and give-up counters: `tgcdn_core_retries_total{path,class}` and
/// `tgcdn_core_give_ups_total{path,class}` samples from its admin `/metrics`.
fn core_retry_counters(stack: &Stack) -> Vec<(String, f64)> {
    let url = format!(
        "{}/metrics",
        stack.core_admin_url().expect("core admin URL")
    );
    let response = client::get(&url, &[]).expect("core /metrics");
    assert_eq!(response.status(), 200);
    String::from_utf8_lossy(&response.body)
        .lines()
        .filter(|line| {
            line.starts_with("tgcdn_core_retries_total{")
                || line.starts_with("tgcdn_core_give_ups_total{")
        })
        .filter_map(|line| {
            let (sample, value) = line.rsplit_once(' ')?;
            Some((sample.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// What `after` added to `before`, samples that did not move left out.
fn added(before: &[(String, f64)], after: Vec<(String, f64)>) -> Vec<(String, f64)> {
    after
        .into_iter()
        .filter_map(|(sample, value)| {
            let was = before
                .iter()
                .find(|(name, _)| *name == sample)
                .map_or(0.0, |(_, value)| *value);
            (value > was).then_some((sample, value - was))
        })
        .collect()
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
    let retries_before = core_retry_counters(stack);
    let started = Instant::now();
    let viewers: Vec<_> = files
        .iter()
        .map(|posted| {
            let url = posted.url.clone();
            std::thread::spawn(move || client::get(&url, &[]))
        })
        .collect();
    let failed: Vec<String> = files
        .iter()
        .zip(viewers)
        .filter_map(|(posted, viewer)| {
            let response = match viewer.join().expect("viewer thread") {
                Ok(response) => response,
                Err(error) => return Some(format!("{}: {error}", posted.name)),
            };
            let expected =
                stack
                    .emulator()
                    .content_slice(posted.doc.id, 0, posted.doc.size as usize);
            if response.status() != 200 {
                Some(format!("{}: status {}", posted.name, response.status()))
            } else if response.body.len() != expected.len() {
                Some(format!("{}: {} bytes", posted.name, response.body.len()))
            } else if sha256_hex(&response.body) != sha256_hex(&expected) {
                Some(format!("{}: corrupted", posted.name))
            } else {
                None
            }
        })
        .collect();
    let elapsed = started.elapsed();
    let counters = stack.emulator().counters();
    let retries = added(&retries_before, core_retry_counters(stack));
    // The retries are shown before any assertion: they are what explains a failure.
    eprintln!("soak {label}: core retries {retries:?}");
    assert!(
        failed.is_empty(),
        "{label}: {} failed: {failed:?}",
        failed.len()
    );
    assert!(elapsed < RUN_BOUND, "{label} took {elapsed:?}");
    RunReport {
        elapsed,
        get_file: counters.requests_for("upload.getFile"),
        get_messages: counters.requests_for("channels.getMessages"),
        retries,
    }
}

/// Keeps the faults coming while `running`: FLOOD_WAIT renewed on half the bots (two
/// workers), a connection cut every 2 MiB, and the kicked bot (the third worker) let back
/// after a second. The main bot is the one always free of flood waits.
fn inject(stack: &Stack, running: &AtomicBool, armed: &Barrier) {
    let faults = stack.emulator().faults();
    let flooded = [stack.workers()[0].user_id, stack.workers()[1].user_id];
    let kicked = stack.workers()[2].user_id;
    let channel = stack.channel().channel_id;
    faults.file_reference_ttl(Duration::from_millis(300));
    faults.internal_error_rate(Scope::All, 0.05);
    stack.world().remove_channel_member(channel, kicked);
    let kicked_at = Instant::now();
    let mut back = false;
    let mut first = true;
    while running.load(Ordering::SeqCst) {
        for bot in flooded {
            faults.flood_wait(bot, 2);
        }
        faults.drop_connection_after_bytes(Scope::All, 2 * MIB);
        if std::mem::take(&mut first) {
            armed.wait();
        }
        if !back && kicked_at.elapsed() > Duration::from_secs(1) {
            stack.world().add_channel_member(channel, kicked, true);
            back = true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    faults.clear();
}

/// Stops the injector when dropped, so a failed run ends the test instead of leaving the
/// injector looping inside the thread scope.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

#[test]
fn fifty_streams_complete_byte_exact_through_injected_faults() {
    let stack = Stack::start(StackOptions {
        workers: 3,
        ..StackOptions::default()
    })
    .unwrap();
    let _logs = stack.logs_on_panic();

    let calm = run(&stack, "calm");
    let running = Arc::new(AtomicBool::new(true));
    let armed = Barrier::new(2);
    let faulty = std::thread::scope(|scope| {
        let stop = StopOnDrop(&running);
        let injector = scope.spawn(|| inject(&stack, &running, &armed));
        // The viewers start once every fault is in place.
        armed.wait();
        let report = run(&stack, "faulty");
        drop(stop);
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
    for (sample, count) in &faulty.retries {
        eprintln!("soak: with faults, core {sample} {count}");
    }
    // The faults did happen, and the core's /metrics counted them by class: a run that
    // retried nothing proves nothing.
    assert!(
        faulty.get_file > calm.get_file,
        "no getFile was retried: {} vs {}",
        faulty.get_file,
        calm.get_file
    );
    assert!(calm.retries.is_empty(), "{:?}", calm.retries);
    for class in ["flood_wait", "connection", "internal", "no_access"] {
        let retried: f64 = faulty
            .retries
            .iter()
            .filter(|(sample, _)| {
                sample.starts_with("tgcdn_core_retries_total{")
                    && sample.contains(&format!("class=\"{class}\""))
            })
            .map(|(_, count)| count)
            .sum();
        assert!(
            retried > 0.0,
            "no {class} retry counted: {:?}",
            faulty.retries
        );
    }
}
