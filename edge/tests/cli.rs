//! The `tgcdn-edge` binary as a supervisor sees it: a SIGTERM or SIGINT sent the moment
//! the `serving` line appears stops it through its ordered shutdown (drain, `stopped`,
//! exit 0), never by the signal's default action. The core need not be up: the edge serves
//! before its core link is (`/readyz` says when it is).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Start-up and shutdown of a debug build on a loaded machine: seconds at most.
const BOUND: Duration = Duration::from_secs(30);

/// Runs that each signal at the ready line: the race it guards against is narrow, so
/// one run alone could pass by luck.
const RUNS: usize = 20;

/// The edge on loopback ports the system picks, with a core nobody answers at.
fn edge() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tgcdn-edge"));
    command
        .env_clear()
        .env("RUST_LOG", "info")
        .env("TGCDN_LISTEN", "127.0.0.1:0")
        .env("TGCDN_METRICS_LISTEN", "127.0.0.1:0")
        .env("TGCDN_PUBLIC_URL", "https://cdn.example.com")
        .env("TGCDN_CORE_ADDR", "127.0.0.1:9")
        .env("TGCDN_CORE_CERT_SHA256", "ab".repeat(32))
        .env("TGCDN_CLUSTER_SECRET", "00112233445566778899aabbccddeeff")
        .env("TGCDN_LINK_KEYS", "1:00112233445566778899aabbccddeeff")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Starts the edge and waits for its `serving` line; the rest of its output is returned
/// by [`finish`].
async fn start() -> (
    Child,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
    let mut child = edge().spawn().expect("tgcdn-edge starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    tokio::time::timeout(BOUND, async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            if line.contains(" serving ") {
                return;
            }
        }
        panic!("the edge exited before its serving line");
    })
    .await
    .expect("no serving line in time");
    (child, lines)
}

fn signal(child: &Child, name: &str) {
    let pid = child.id().expect("running").to_string();
    let sent = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
}

/// Waits for the exit and returns its status and the lines printed after `serving`.
async fn finish(
    mut child: Child,
    mut lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) -> (std::process::ExitStatus, String) {
    let mut rest = Vec::new();
    let status = tokio::time::timeout(BOUND, async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            rest.push(line);
        }
        child.wait().await.expect("wait")
    })
    .await
    .expect("the edge did not stop in time");
    (status, rest.join("\n"))
}

async fn stops_cleanly_when_signalled_at_once(name: &str) {
    for run in 0..RUNS {
        let (child, lines) = start().await;
        signal(&child, name);
        let (status, rest) = finish(child, lines).await;
        assert!(
            status.success(),
            "run {run}: SIG{name} right after serving ended it with {status:?}; it printed:\n{rest}"
        );
        assert!(rest.contains("stopped"), "run {run}: {rest}");
    }
}

#[tokio::test]
async fn sigterm_right_after_the_serving_line_is_an_ordered_shutdown() {
    stops_cleanly_when_signalled_at_once("TERM").await;
}

#[tokio::test]
async fn sigint_right_after_the_serving_line_is_an_ordered_shutdown() {
    stops_cleanly_when_signalled_at_once("INT").await;
}
