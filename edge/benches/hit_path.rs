//! Instructions per cache-hit request: the edge against a bare hyper server, counted by
//! callgrind in one run, so the figure is repeatable on a machine shared with other builds.
//!
//! `cargo bench -p tgcdn-edge --bench hit_path`. With `valgrind` on the `PATH` the bench runs
//! itself again under `valgrind --tool=callgrind --separate-threads=yes`; each server has its
//! own thread and current-thread runtime (bare hyper, the edge, the edge with the verified
//! token table off), and one client thread drives them all with the same requests, so each
//! server's per-thread instruction total divided by its requests is its cost per request,
//! client excluded. Counters are zeroed after the warm-up (the edge cache then holds every
//! chunk) and dumped after each phase through `callgrind_control`: `ranges` = 64 KiB ranges
//! at pseudo-random offsets on one keep-alive connection, `connections` = one such range per
//! new connection (the TTFB case: accept, head, plan, first bytes, close). User-space
//! instructions only; the kernel's share (copies, TCP) is the same for both servers.
//! Without valgrind (or with `HIT_PATH_PLAIN=1`) the phases run as they are and print
//! wall-clock microseconds per request, which on this shared machine are noise.
//!
//! `HIT_PATH_RANGES` (default 1000) and `HIT_PATH_CONNECTIONS` (default 200) size the phases;
//! `HIT_PATH_OUT=DIR` keeps the callgrind files for `callgrind_annotate DIR/cg.out.1-03`
//! (part 1 = ranges, 2 = connections; thread 02 bare hyper, 03 edge, 04 edge without the
//! token table, 05 the client).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tgcdn_edge::app::{EdgeOptions, build_state};
use tgcdn_edge::http::serve;
use tgcdn_edge::testing::{MemoryUpstream, pattern, test_meta};
use tgcdn_edge::tokens::DEFAULT_TOKEN_CACHE_ENTRIES;
use tgcdn_shared::FileRef;
use tgcdn_shared::chunk::CHUNK_SIZE;
use tgcdn_shared::token::{Keyring, LinkKey, TokenVerifier};
use tokio::net::{TcpListener, TcpStream};

#[path = "common/bare.rs"]
mod bare;
#[path = "common/client.rs"]
mod client;
use bare::start_bare;
use client::request;

/// How long the client waits for a response head: everything runs under callgrind.
const READ_TIMEOUT: Duration = Duration::from_secs(600);

const FILE: FileRef = FileRef {
    chat_id: -1_000_777,
    msg_id: 1,
};
const FILE_MIB: u64 = 16;
const RANGE: u64 = 64 * 1024;
/// Set in the child that runs under callgrind.
const CHILD: &str = "HIT_PATH_UNDER_CALLGRIND";
/// The servers in thread order: callgrind numbers threads 01 (main), 02, 03… as created.
const SERVERS: [&str; 3] = ["bare hyper", "edge", "edge, no token table"];
const PHASES: [&str; 2] = ["ranges", "connections"];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let ranges: u64 = env_or("HIT_PATH_RANGES", 1000);
    let connections: u64 = env_or("HIT_PATH_CONNECTIONS", 200);
    if std::env::var_os(CHILD).is_some() {
        run_phases(ranges, connections, Control::Callgrind);
    } else if !std::env::args().any(|arg| arg == "--bench") {
        // `cargo test --all-targets` runs bench binaries without `--bench`: not a profile run.
        println!("hit_path: run it with `cargo bench -p tgcdn-edge --bench hit_path`");
    } else if std::env::var_os("HIT_PATH_PLAIN").is_none() && valgrind_found() {
        parent(ranges, connections);
    } else {
        println!("valgrind not used: wall-clock figures only (noise on a shared machine)");
        run_phases(ranges, connections, Control::None);
    }
}

fn valgrind_found() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs this binary under callgrind, answers its zero/dump requests, then reads the counts.
fn parent(ranges: u64, connections: u64) {
    let kept = std::env::var_os("HIT_PATH_OUT").map(PathBuf::from);
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = kept.unwrap_or_else(|| temp.path().to_owned());
    std::fs::create_dir_all(&dir).expect("output dir");
    for entry in std::fs::read_dir(&dir).expect("output dir").flatten() {
        if entry.file_name().to_string_lossy().starts_with("cg.out") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg("--separate-threads=yes")
        .arg(format!(
            "--callgrind-out-file={}",
            dir.join("cg.out").display()
        ))
        .arg(exe)
        .env(CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("valgrind");
    let pid = child.id().to_string();
    let mut to_child = child.stdin.take().expect("stdin");
    let from_child = BufReader::new(child.stdout.take().expect("stdout"));
    for line in from_child.lines() {
        let line = line.expect("child output");
        let command = match line.split_once(' ') {
            Some(("control", "zero")) => "--zero".to_owned(),
            Some(("control", phase)) => format!("--dump={phase}"),
            _ => {
                println!("{line}");
                continue;
            }
        };
        let status = Command::new("callgrind_control")
            .args([command.as_str(), pid.as_str()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("callgrind_control");
        assert!(status.success(), "callgrind_control {command} failed");
        writeln!(to_child, "ok").expect("answering the child");
    }
    assert!(child.wait().expect("valgrind").success(), "child failed");
    report(&dir, ranges, connections);
}

/// Per phase and server: instructions per request, and the ratio to bare hyper.
fn report(dir: &Path, ranges: u64, connections: u64) {
    for (part, (phase, requests)) in PHASES.iter().zip([ranges, connections]).enumerate() {
        let counts: Vec<u64> = (0..SERVERS.len())
            .map(|i| instructions(&dir.join(format!("cg.out.{}-{:02}", part + 1, i + 2))))
            .collect();
        let client =
            instructions(&dir.join(format!("cg.out.{}-{:02}", part + 1, SERVERS.len() + 2)));
        println!(
            "{phase}: {requests} requests per server; client {} instructions per request",
            client / (requests * SERVERS.len() as u64)
        );
        let bare = counts[0] as f64 / requests as f64;
        for (name, count) in SERVERS.iter().zip(&counts) {
            let per_request = *count as f64 / requests as f64;
            println!(
                "  {name:<22} {per_request:>10.0} instructions per request  {:.3}x bare hyper",
                per_request / bare
            );
        }
        let edge = counts[1] as f64 / requests as f64;
        println!(
            "RESULT hit_path {phase}: bare hyper / edge = {:.3} (user-space instructions per request; the issue's 0.95x / 1.3x targets are wall-clock), edge {:.0} vs bare {:.0}",
            bare / edge,
            edge,
            bare
        );
    }
}

/// The `Ir` total of one callgrind file (its `totals:` or `summary:` line).
fn instructions(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .find_map(|line| {
            line.strip_prefix("totals:")
                .or_else(|| line.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{}: no totals line", path.display()))
}

/// How the child marks phase boundaries.
#[derive(Clone, Copy)]
enum Control {
    /// Ask the parent (`control zero` / `control PHASE` on stdout) and wait for its `ok`.
    Callgrind,
    None,
}

impl Control {
    fn ask(self, what: &str) {
        if let Control::Callgrind = self {
            println!("control {what}");
            std::io::stdout().flush().expect("stdout");
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer).expect("stdin");
            assert_eq!(answer.trim(), "ok", "parent refused {what}");
        }
    }
}

/// Starts the servers (one thread each, in [`SERVERS`] order), then the client thread, and
/// runs the phases.
fn run_phases(ranges: u64, connections: u64, control: Control) {
    let size = FILE_MIB * CHUNK_SIZE;
    let keyring = Keyring::new(
        LinkKey::new(1, b"bench-link-secret-0123456789abcd").expect("key"),
        Vec::new(),
    )
    .expect("keyring");
    let token = keyring.sign(FILE, None);
    let edge_path = format!("/dl/{token}/bench.mkv");

    let chunks: Arc<Vec<Bytes>> = Arc::new(
        (0..FILE_MIB)
            .map(|i| Bytes::from(pattern(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE)))
            .collect(),
    );
    let mut addrs = vec![on_own_thread("bare", move || start_bare(chunks, size))];
    for token_cache in [DEFAULT_TOKEN_CACHE_ENTRIES, 0] {
        let keyring = keyring.clone();
        addrs.push(on_own_thread("edge", move || async move {
            let upstream = Arc::new(
                MemoryUpstream::new()
                    .with_file(FILE, test_meta(size, "bench.mkv", "video/x-matroska")),
            );
            let mut options = EdgeOptions {
                cache_bytes: 2 * size,
                ..EdgeOptions::default()
            };
            options.http.token_cache_entries = token_cache;
            let state = build_state(upstream, TokenVerifier::new(keyring), options);
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(serve(listener, state, std::future::pending()));
            addr
        }));
    }
    let paths: Vec<String> = std::iter::once("/file".to_owned())
        .chain([edge_path.clone(), edge_path])
        .collect();

    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let targets: Vec<(SocketAddr, String)> = addrs.into_iter().zip(paths).collect();
    std::thread::Builder::new()
        .name("client".into())
        .spawn(move || {
            client.block_on(async {
                let mut buffer = vec![0u8; 256 * 1024];
                for (addr, path) in &targets {
                    let mut socket = TcpStream::connect(addr).await.expect("connect");
                    request(&mut socket, &mut buffer, path, None, READ_TIMEOUT).await;
                }
                control.ask("zero");
                for (name, (addr, path)) in SERVERS.iter().zip(&targets) {
                    let started = Instant::now();
                    let mut socket = TcpStream::connect(addr).await.expect("connect");
                    for start in offsets(size).take(ranges as usize) {
                        let got = request(
                            &mut socket,
                            &mut buffer,
                            path,
                            Some((start, start + RANGE - 1)),
                            READ_TIMEOUT,
                        )
                        .await;
                        assert_eq!(got, RANGE);
                    }
                    print_wall(name, "ranges", started, ranges);
                }
                control.ask(PHASES[0]);
                for (name, (addr, path)) in SERVERS.iter().zip(&targets) {
                    let started = Instant::now();
                    for start in offsets(size).take(connections as usize) {
                        let mut socket = TcpStream::connect(addr).await.expect("connect");
                        let got = request(
                            &mut socket,
                            &mut buffer,
                            path,
                            Some((start, start + RANGE - 1)),
                            READ_TIMEOUT,
                        )
                        .await;
                        assert_eq!(got, RANGE);
                    }
                    print_wall(name, "connections", started, connections);
                }
                control.ask(PHASES[1]);
            })
        })
        .expect("client thread")
        .join()
        .expect("client");
}

fn print_wall(name: &str, phase: &str, started: Instant, requests: u64) {
    println!(
        "wall clock (noise): {name:<22} {phase:<12} {:>8.1} us per request",
        started.elapsed().as_secs_f64() * 1e6 / requests as f64
    );
}

/// 64 KiB-aligned pseudo-random range starts, the same sequence for every server.
fn offsets(size: u64) -> impl Iterator<Item = u64> {
    let slots = size / RANGE;
    std::iter::successors(Some(7_919u64), move |o| {
        Some(o.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1) % slots)
    })
    .map(move |slot| (slot % slots) * RANGE)
}

/// Runs `start` on a new thread's current-thread runtime, which then serves forever; returns
/// the address it bound.
fn on_own_thread<F, Fut>(name: &str, start: F) -> SocketAddr
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = SocketAddr>,
{
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                sender.send(start().await).expect("address");
                std::future::pending::<()>().await
            })
        })
        .expect("server thread");
    receiver.recv().expect("server started")
}
