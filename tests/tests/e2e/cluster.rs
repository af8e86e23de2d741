//! Two cores and two edges on one emulator world (`tgcdn_tests::cluster`): files spread over
//! both cores by rendezvous hashing, a link made by either core's bot plays through any core,
//! a revocation made on one core holds at every edge for a file the other core serves —
//! past the edges' negative cache and across an edge restart — until that core unrevokes
//! it, a core SIGKILLed while several downloads stream hands its files to the other core
//! (every download completes, byte-exact, in its first response), then takes them back when
//! it returns, and a core whose every bot is in FLOOD_WAIT hands its files to the other core
//! too. This module starts its own cluster, since it kills a core.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tgcdn_shared::FileRef;
use tgcdn_tests::cluster::{Cluster, ClusterOptions};
use tgcdn_tests::{PostedFile, client, sha256_hex};
use tgemu::{Content, Scope};

use crate::common::{MIB, run};

/// Every wait of this module ends by then, counted from its start.
const BUDGET: Duration = Duration::from_secs(300);

/// Polls `probe` every 25 ms until it holds; panics naming `what` once `deadline` passed.
fn await_until(what: &str, deadline: Instant, mut probe: impl FnMut() -> bool) {
    while !probe() {
        assert!(Instant::now() < deadline, "{what} did not happen in time");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// One GET of `url`, read to the end as one response (no resume), the byte count published
/// in `progress` as it grows.
fn download(url: &str, progress: &AtomicU64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let (head, mut reader) = client::open(url, "GET", &[], Duration::from_secs(30))?;
    if head.status != 200 {
        return Err(std::io::Error::other(format!("status {}", head.status)));
    }
    let mut body = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&buf[..n]);
        progress.store(body.len() as u64, Ordering::SeqCst);
    }
}

fn expected_sha(cluster: &Cluster, posted: &PostedFile, size: u64) -> String {
    sha256_hex(
        &cluster
            .emulator()
            .content_slice(posted.doc.id, 0, size as usize),
    )
}

/// The file a `/dl/{token}/{name}` link names, as the edges read it.
fn file_of(cluster: &Cluster, link: &str) -> FileRef {
    let token = link
        .split("/dl/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("not a link: {link}"));
    cluster
        .keyring()
        .verify(token, 0)
        .expect("a valid link")
        .file
}

/// Sum over the edges of a per-core metric.
fn total(cluster: &Cluster, metric: &str, core: usize) -> u64 {
    (0..2)
        .map(|edge| cluster.core_metric(edge, metric, core).unwrap())
        .sum()
}

#[test]
fn two_cores_share_the_files_and_a_killed_core_hands_its_downloads_to_the_other() {
    let started = Instant::now();
    let deadline = started + BUDGET;
    let cluster = Cluster::start(ClusterOptions {
        // A short read-ahead keeps most of each file unfetched when the core dies, so the
        // survivor has to serve the rest.
        edge_env: vec![("TGCDN_READAHEAD_MAX".to_owned(), "4".to_owned())],
        ..ClusterOptions::default()
    })
    .unwrap();
    let _logs = cluster.logs_on_panic();

    // Core side: each core registered both edges (one cluster secret, one Hello each).
    for core in 0..2 {
        let url = format!("{}/admin/edges", cluster.core_admin_url(core).unwrap());
        let edges = String::from_utf8(client::get(&url, &[]).unwrap().body).unwrap();
        for edge in ["cluster-edge-0", "cluster-edge-1"] {
            assert!(edges.contains(edge), "core {core} lacks {edge}: {edges}");
        }
    }

    // A link made by one core's bot plays through the other core: the link keys are the
    // same and the file is one message of the shared storage channel.
    for maker in 0..2 {
        let server = 1 - maker;
        let mut served_by_other = None;
        for attempt in 0..8 {
            let size = 300_000 + attempt;
            let upload = cluster
                .user_uploads(
                    maker,
                    Content::pseudo(size),
                    &format!("by-{maker}-{attempt}.bin"),
                    Duration::from_secs(30),
                )
                .unwrap();
            if cluster.owner(file_of(&cluster, &upload.link)) == server {
                served_by_other = Some((upload, size));
                break;
            }
        }
        let (upload, size) = served_by_other.expect("no upload ranked on the other core");
        let before = total(&cluster, "tgcdn_edge_core_requests_total", server);
        for edge in 0..2 {
            let link = upload
                .link
                .replace(&cluster.edge_url(0), &cluster.edge_url(edge));
            let body = client::get(&link, &[]).unwrap();
            assert_eq!(body.status(), 200, "{link}");
            let expected = cluster
                .emulator()
                .content_slice(upload.doc.id, 0, size as usize);
            assert!(body.body == expected, "core {maker}'s link via edge {edge}");
        }
        assert!(total(&cluster, "tgcdn_edge_core_requests_total", server) > before);
    }

    // A revocation made on one core applies at every edge to a file another core serves,
    // which never hears of it.
    let revoked = loop {
        let posted = cluster.post_file(
            Content::pseudo(MIB / 2),
            "revoked.bin",
            "application/octet-stream",
            2,
        );
        if cluster.owner(posted.file) == 0 {
            break posted;
        }
        assert!(Instant::now() < deadline, "no file ranked on core 0");
    };
    for edge in 0..2 {
        let url = cluster.link_for(edge, revoked.file, &revoked.name);
        assert_eq!(client::get(&url, &[]).unwrap().status(), 200, "{url}");
    }
    let mut command = cluster
        .core_command(1, &["link", "revoke", &revoked.url])
        .unwrap();
    let output = run(&mut command, Duration::from_secs(20));
    assert!(output.status.success(), "{output:?}");
    for edge in 0..2 {
        let url = cluster.link_for(edge, revoked.file, &revoked.name);
        await_until(
            &format!("edge {edge} refusing the revoked file"),
            deadline,
            || client::get(&url, &[]).unwrap().status() == 410,
        );
    }
    // It holds past the edges' negative cache, when only core 0 (which would serve the
    // file) is asked about it...
    let status_at = |edge: usize| {
        let url = cluster.link_for(edge, revoked.file, &revoked.name);
        client::get(&url, &[]).unwrap().status()
    };
    let held_until = Instant::now() + tgcdn_edge::fetch::NEGATIVE_TTL + Duration::from_secs(2);
    let mut probes = 0;
    while Instant::now() < held_until {
        for edge in 0..2 {
            assert_eq!(status_at(edge), 410, "edge {edge} after {probes} probes");
        }
        probes += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    // ...and in an edge started after it, which learns it from core 1's list on connecting.
    cluster.restart_edge(0).unwrap();
    assert_eq!(status_at(0), 410, "a restarted edge");
    assert_eq!(
        cluster
            .core_metric(0, "tgcdn_edge_core_requests_total", 0)
            .unwrap(),
        0,
        "the restarted edge asked a core about the revoked file"
    );
    // Unrevoked on the core that revoked it: it plays again at both edges.
    let mut command = cluster
        .core_command(1, &["link", "unrevoke", &revoked.url])
        .unwrap();
    let output = run(&mut command, Duration::from_secs(20));
    assert!(output.status.success(), "{output:?}");
    for edge in 0..2 {
        await_until(
            &format!("edge {edge} serving the unrevoked file"),
            deadline,
            || status_at(edge) == 200,
        );
    }

    // Four files, two ranked first on each core, downloaded two per edge (one of each
    // core per edge) while Telegram is slow, so every download streams for seconds.
    let size = 12 * MIB + 333;
    let mut by_core: [Vec<PostedFile>; 2] = [Vec::new(), Vec::new()];
    for n in 0..32 {
        if by_core.iter().all(|files| files.len() >= 2) {
            break;
        }
        let posted = cluster.post_file(
            Content::pseudo(size),
            &format!("film-{n}.mkv"),
            "video/x-matroska",
            2,
        );
        let owner = cluster.owner(posted.file);
        if by_core[owner].len() < 2 {
            by_core[owner].push(posted);
        }
    }
    assert!(
        by_core.iter().all(|files| files.len() == 2),
        "rankings too uneven"
    );
    let victim = 0;
    let files: Vec<(usize, PostedFile)> = vec![
        (0, by_core[0][0].clone()),
        (0, by_core[1][0].clone()),
        (1, by_core[0][1].clone()),
        (1, by_core[1][1].clone()),
    ];
    cluster
        .emulator()
        .faults()
        .set_bandwidth(Scope::All, 512 * 1024);
    let progress: Vec<Arc<AtomicU64>> = files.iter().map(|_| Arc::default()).collect();
    let downloads: Vec<_> = files
        .iter()
        .zip(&progress)
        .map(|((edge, posted), progress)| {
            let url = cluster.link_for(*edge, posted.file, &posted.name);
            let progress = progress.clone();
            std::thread::spawn(move || download(&url, &progress))
        })
        .collect();
    let of_victim: Vec<usize> = (0..files.len())
        .filter(|&i| cluster.owner(files[i].1.file) == victim)
        .collect();
    await_until("the victim's downloads reaching 1 MiB", deadline, || {
        of_victim
            .iter()
            .all(|&i| progress[i].load(Ordering::SeqCst) >= MIB)
    });
    for core in 0..2 {
        assert!(
            total(&cluster, "tgcdn_edge_core_requests_total", core) > 0,
            "core {core} served nothing"
        );
    }
    let at_kill: Vec<u64> = of_victim
        .iter()
        .map(|&i| progress[i].load(Ordering::SeqCst))
        .collect();
    assert!(
        at_kill.iter().all(|&got| got + 6 * MIB < size),
        "the kill would land too late to matter: {at_kill:?} of {size}"
    );
    cluster.kill_core(victim).unwrap();
    let killed_at = Instant::now();

    for ((_, posted), download) in files.iter().zip(downloads) {
        let body = download
            .join()
            .unwrap()
            .unwrap_or_else(|error| panic!("{} broke: {error}", posted.name));
        assert_eq!(body.len() as u64, size, "{}", posted.name);
        assert_eq!(
            sha256_hex(&body),
            expected_sha(&cluster, posted, size),
            "{}",
            posted.name
        );
    }
    eprintln!(
        "downloads finished {:?} after the kill (started {:?} before it)",
        killed_at.elapsed(),
        killed_at - started
    );
    // The victim's requests in flight failed over; the edges now see it down and stay ready.
    assert!(total(&cluster, "tgcdn_edge_core_failures_total", victim) >= 1);
    for edge in 0..2 {
        cluster.wait_core_up(edge, victim, false).unwrap();
        let ready = client::get(&format!("{}/readyz", cluster.edge_url(edge)), &[]).unwrap();
        assert_eq!(ready.status(), 200);
    }

    // It returns: its files go back to it.
    cluster.emulator().faults().set_bandwidth(Scope::All, 0);
    cluster.restart_core(victim).unwrap();
    for edge in 0..2 {
        cluster.wait_core_up(edge, victim, true).unwrap();
    }
    let back = loop {
        let posted = cluster.post_file(
            Content::pseudo(MIB + 7),
            "back.bin",
            "application/octet-stream",
            2,
        );
        if cluster.owner(posted.file) == victim {
            break posted;
        }
        assert!(
            Instant::now() < deadline,
            "no file ranked on the returned core"
        );
    };
    let before = cluster
        .core_metric(1, "tgcdn_edge_core_requests_total", victim)
        .unwrap();
    let body = client::get(&cluster.link_for(1, back.file, &back.name), &[]).unwrap();
    assert_eq!(body.status(), 200);
    assert_eq!(
        sha256_hex(&body.body),
        expected_sha(&cluster, &back, MIB + 7)
    );
    assert!(
        cluster
            .core_metric(1, "tgcdn_edge_core_requests_total", victim)
            .unwrap()
            > before
    );

    // Every bot of a file's core in FLOOD_WAIT (longer than the core's request deadline):
    // the core answers so, and the edge asks the next core of the file's ranking instead of
    // answering 503.
    let flooded = loop {
        let posted = cluster.post_file(
            Content::pseudo(MIB + 11),
            "flooded.bin",
            "application/octet-stream",
            2,
        );
        if cluster.owner(posted.file) == victim {
            break posted;
        }
        assert!(Instant::now() < deadline, "no file ranked on core {victim}");
    };
    for bot in cluster.core_bot_ids(victim) {
        cluster.emulator().faults().flood_wait(bot, 120);
    }
    let other = 1 - victim;
    let before = cluster
        .core_metric(1, "tgcdn_edge_core_requests_total", other)
        .unwrap();
    let body = client::get(&cluster.link_for(1, flooded.file, &flooded.name), &[]).unwrap();
    assert_eq!(body.status(), 200);
    assert_eq!(
        sha256_hex(&body.body),
        expected_sha(&cluster, &flooded, MIB + 11)
    );
    assert!(
        cluster
            .core_metric(1, "tgcdn_edge_core_floods_total", victim)
            .unwrap()
            >= 1
    );
    assert!(
        cluster
            .core_metric(1, "tgcdn_edge_core_requests_total", other)
            .unwrap()
            > before
    );
    assert!(started.elapsed() < BUDGET, "took {:?}", started.elapsed());
}
