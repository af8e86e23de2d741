//! The `tgcdn-sandbox` binary as README runs it: `--smoke` starts the emulator, core and
//! edge, downloads the bot's link over HTTP and verifies it; a busy port is one clear line.
//! (`--listen 127.0.0.1:0 --remote-listen 127.0.0.1:0` instead of the default 8080 and 8081
//! so the test never collides with another process on the machine; everything else is the
//! default run.)

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// The smoke run starts the emulator, core and edge in a debug build, moves the film through
/// MTProto crypto and runs ffprobe: seconds, tens on a loaded machine, so the bound is
/// generous but finite.
const SMOKE_BOUND: Duration = Duration::from_secs(300);
const QUICK_BOUND: Duration = Duration::from_secs(30);

/// Both edges on ports the system picks.
const EPHEMERAL: [&str; 4] = ["--listen", "127.0.0.1:0", "--remote-listen", "127.0.0.1:0"];

fn sandbox() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tgcdn-sandbox"));
    command
        .env_remove("TGCDN_SANDBOX_LISTEN")
        .env_remove("TGCDN_SANDBOX_REMOTE_LISTEN")
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
        sandbox().arg("--smoke").args(EPHEMERAL).output(),
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
    assert!(stdout.starts_with("OK: film.mp4 ("), "{stdout}");
    assert!(
        stdout.contains("both regions serve it byte-exact, region b's 2nd request all cache hits"),
        "{stdout}"
    );
    // CI installs ffmpeg: there the film must be probed as a real video.
    if std::process::Command::new("ffprobe")
        .arg("-version")
        .output()
        .is_ok()
    {
        assert!(stdout.contains("ffprobe: 30.0 s of h264+aac"), "{stdout}");
    }
}

#[tokio::test]
async fn a_busy_port_is_one_clear_error_line() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = tokio::time::timeout(
        QUICK_BOUND,
        sandbox()
            .args([
                "--smoke",
                "--listen",
                &addr,
                "--remote-listen",
                "127.0.0.1:0",
            ])
            .output(),
    )
    .await
    .expect("a busy port took too long to report")
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: cannot listen on {addr} ")),
        "{stderr}"
    );
    assert!(stderr.contains("--listen"), "{stderr}");
}

#[tokio::test]
async fn a_busy_second_region_port_names_its_own_flag() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = tokio::time::timeout(
        QUICK_BOUND,
        sandbox()
            .args([
                "--smoke",
                "--listen",
                "127.0.0.1:0",
                "--remote-listen",
                &addr,
            ])
            .output(),
    )
    .await
    .expect("a busy port took too long to report")
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: cannot listen on {addr} (choose another address with --remote-listen)"
        )),
        "{stderr}"
    );
}

/// Everything the flags set can come from `--config`: this file alone makes a smoke run on
/// ephemeral ports.
#[tokio::test]
async fn a_config_file_sets_what_the_flags_set() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sandbox.toml");
    std::fs::write(
        &config,
        "smoke = true\nlisten = \"127.0.0.1:0\"\nremote_listen = \"127.0.0.1:0\"\ndata_dir = \"kept\"\n",
    )
    .unwrap();
    let output = tokio::time::timeout(SMOKE_BOUND, sandbox().arg("--config").arg(&config).output())
        .await
        .expect("the smoke run took too long")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("OK: film.mp4 ("), "{stdout}");
    assert!(dir.path().join("kept/world.state").is_file());
}

#[tokio::test]
async fn a_typo_in_the_config_file_is_one_error_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sandbox.toml");
    std::fs::write(&config, "lisen = \"127.0.0.1:0\"\n").unwrap();
    let output = tokio::time::timeout(QUICK_BOUND, sandbox().arg("--config").arg(&config).output())
        .await
        .expect("a bad config file took too long to report")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: --config {}: ", config.display())),
        "{stderr}"
    );
    assert!(stderr.contains("lisen"), "{stderr}");
}

#[tokio::test]
async fn a_missing_demo_file_is_reported_before_anything_starts() {
    let output = tokio::time::timeout(
        QUICK_BOUND,
        sandbox()
            .arg("--smoke")
            .args(EPHEMERAL)
            .args(["--file", "/nonexistent/film.mkv"])
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

/// The interactive run: the banner names the bot's links and the curl commands, the edge
/// answers a Range request on the printed link, and SIGTERM stops everything with exit 0.
#[tokio::test]
async fn the_interactive_run_prints_links_serves_them_and_stops_on_sigterm() {
    let (child, banner) = start_interactive(&[]).await;
    for expected in [
        "Download: http://127.0.0.1:",
        "Watch: http://127.0.0.1:",
        "curl -r 0-99 '",
        "region b  http://127.0.0.1:",
        "over QUIC at 127.0.0.1:",
        "region b's 1st request fetched ",
        "its 2nd served 2 of 2 chunk(s) from its own cache",
    ] {
        assert!(
            banner.contains(expected),
            "{expected:?} missing from:\n{banner}"
        );
    }
    let link = bot_link(&banner);
    let head = get_first_bytes(link).await;
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    stop(child).await;
}

/// Two runs on one `--data-dir`: the second is the same emulated Telegram with the same
/// keys, so the first run's links (the bot's copy and the channel posts) work on its edge,
/// and nothing is posted or uploaded again.
#[tokio::test]
async fn a_kept_data_dir_keeps_the_first_runs_links_working() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let (first, first_banner) = start_interactive(&["--data-dir", data_dir]).await;
    let first_link = bot_link(&first_banner).to_owned();
    let first_post = post_link(&first_banner).to_owned();
    stop(first).await;

    let (second, second_banner) = start_interactive(&["--data-dir", data_dir]).await;
    let second_link = bot_link(&second_banner);
    let on_second = |link: &str| {
        let (_, path) = split(link);
        let (authority, _) = split(second_link);
        format!("http://{authority}/{path}")
    };
    // The same post is linked with the same token: it was not posted again. Nor was the
    // film sent to the bot again (another copy in the channel on every run): the second run
    // shows the first run's reply, whose link names the same copy.
    assert_eq!(split(post_link(&second_banner)).1, split(&first_post).1);
    assert_eq!(split(second_link).1, split(&first_link).1);
    assert!(
        second_banner.contains("In an earlier run on this --data-dir, the demo user sent"),
        "{second_banner}"
    );
    for link in [&first_link, &first_post] {
        let moved = on_second(link);
        let head = get_first_bytes(&moved).await;
        assert!(
            head.starts_with("HTTP/1.1 206"),
            "{link} in the second run: {head}"
        );
    }
    stop(second).await;
}

/// Starts an interactive run on ephemeral ports and reads its banner up to its last line.
async fn start_interactive(extra: &[&str]) -> (tokio::process::Child, String) {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let mut child = sandbox().args(EPHEMERAL).args(extra).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    tokio::time::timeout(SMOKE_BOUND, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.starts_with("Press Ctrl-C to stop.");
            banner.push(line);
            if done {
                return;
            }
        }
        panic!("the sandbox exited before its banner ended: {banner:#?}");
    })
    .await
    .expect("the banner took too long");
    (child, banner.join("\n"))
}

/// The bot's download link, from the first `curl` line.
fn bot_link(banner: &str) -> &str {
    banner
        .split("curl -r 0-99 '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap()
}

/// The film's channel post's download link, from the file list.
fn post_link(banner: &str) -> &str {
    let files = banner
        .split("Files in the storage channel:")
        .nth(1)
        .unwrap();
    files
        .split("download: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
}

/// `http://authority/path` → (authority, path).
fn split(link: &str) -> (&str, &str) {
    link.strip_prefix("http://")
        .and_then(|rest| rest.split_once('/'))
        .unwrap()
}

/// The first bytes of the answer to `Range: bytes=0-99` on `link`.
async fn get_first_bytes(link: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (authority, path) = split(link);
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let request = format!(
        "GET /{path} HTTP/1.1\r\nHost: {authority}\r\nRange: bytes=0-99\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(QUICK_BOUND, stream.read_to_end(&mut response))
        .await
        .expect("the Range request took too long")
        .unwrap();
    String::from_utf8_lossy(&response[..response.len().min(200)]).into_owned()
}

/// SIGTERM, then a clean exit within the bound.
async fn stop(mut child: tokio::process::Child) {
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(QUICK_BOUND, child.wait())
        .await
        .expect("the sandbox did not stop on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
