//! The `tgcdn-sandbox` binary as README runs it: `--smoke` starts the emulator, core and
//! edge, downloads the bot's link over HTTP and verifies it; a busy port is one clear line.
//! (`--listen 127.0.0.1:0` instead of the default 8080 so the test never collides with
//! another process on the machine; everything else is the default run.)

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// The smoke run moves 64 MiB through MTProto crypto in a debug build: tens of seconds on a
/// loaded machine, so the bound is generous but finite.
const SMOKE_BOUND: Duration = Duration::from_secs(300);
const QUICK_BOUND: Duration = Duration::from_secs(30);

fn sandbox() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tgcdn-sandbox"));
    command
        .env_remove("TGCDN_SANDBOX_LISTEN")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn smoke_run_downloads_and_verifies_the_bots_link() {
    let output = tokio::time::timeout(
        SMOKE_BOUND,
        sandbox()
            .args(["--smoke", "--listen", "127.0.0.1:0"])
            .output(),
    )
    .await
    .expect("the smoke run took too long")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(
        stdout.starts_with("OK: film.mkv (67108864 bytes)"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_busy_port_is_one_clear_error_line() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = tokio::time::timeout(
        QUICK_BOUND,
        sandbox().args(["--smoke", "--listen", &addr]).output(),
    )
    .await
    .expect("a busy port took too long to report")
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: cannot listen on {addr}: ")),
        "{stderr}"
    );
    assert!(stderr.contains("--listen"), "{stderr}");
}

#[tokio::test]
async fn a_missing_demo_file_is_reported_before_anything_starts() {
    let output = tokio::time::timeout(
        QUICK_BOUND,
        sandbox()
            .args([
                "--smoke",
                "--listen",
                "127.0.0.1:0",
                "--file",
                "/nonexistent/film.mkv",
            ])
            .output(),
    )
    .await
    .expect("a missing file took too long to report")
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: --file /nonexistent/film.mkv: "),
        "{stderr}"
    );
}
