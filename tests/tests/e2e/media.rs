//! Video players' access pattern: an MP4 made by ffmpeg at test time is served from a real
//! file by the emulator; ffprobe reads its duration over HTTP and ffmpeg seeks 5 s into it,
//! which only works through Range requests the edge must answer.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use tgcdn_tests::PostedFile;
use tgemu::Content;

use crate::common::{check, have_tool, metric, run, stack};

const PARTIAL: &str = "tgcdn_edge_http_requests_total{status=\"206\"}";

/// A 20 s 320x240 ~2 Mbit/s H.264 (or MPEG-4 part 2 without libx264) + AAC MP4 with the index first.
fn clip() -> &'static (tempfile::TempDir, PostedFile) {
    static CLIP: OnceLock<(tempfile::TempDir, PostedFile)> = OnceLock::new();
    CLIP.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path: PathBuf = dir.path().join("clip.mp4");
        let encoders = run(
            Command::new("ffmpeg").args(["-hide_banner", "-encoders"]),
            Duration::from_secs(30),
        );
        let video: &[&str] = if String::from_utf8_lossy(&encoders.stdout).contains("libx264") {
            &["-c:v", "libx264", "-preset", "ultrafast"]
        } else {
            &["-c:v", "mpeg4", "-q:v", "5"]
        };
        let mut command = Command::new("ffmpeg");
        command
            .args(["-v", "error", "-y", "-f", "lavfi"])
            .args(["-i", "testsrc=duration=20:size=320x240:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=duration=20"]);
        command
            .args(video)
            // ~2 Mbit/s makes a file of ~5 MiB: a 5 s seek skips more than ffmpeg reads
            // through, so it must ask for a new range.
            .args(["-b:v", "2M", "-maxrate", "2M", "-bufsize", "1M", "-g", "25"])
            .args(["-c:a", "aac", "-movflags", "+faststart"])
            .arg(&path);
        check(
            &run(&mut command, Duration::from_secs(120)),
            "ffmpeg encode",
        );
        let posted = stack().post_file(Content::file(&path), "clip.mp4", "video/mp4", 4);
        (dir, posted)
    })
}

#[test]
fn ffprobe_reads_the_duration_over_http() {
    if !have_tool("ffprobe") || !have_tool("ffmpeg") {
        return;
    }
    let _logs = stack().logs_on_panic();
    let output = run(
        Command::new("ffprobe").args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "default=noprint_wrappers=1:nokey=1",
            &clip().1.url,
        ]),
        Duration::from_secs(60),
    );
    check(&output, "ffprobe");
    let duration: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{:?}", String::from_utf8_lossy(&output.stdout)));
    assert!((19.5..=20.5).contains(&duration), "duration {duration}");
}

#[test]
fn ffmpeg_seeks_into_the_middle_with_range_requests() {
    if !have_tool("ffmpeg") {
        return;
    }
    let stack = stack();
    let _logs = stack.logs_on_panic();
    let url = &clip().1.url;
    let partial_before = metric(stack, PARTIAL);
    // `-loglevel debug` makes ffmpeg's http protocol print the headers it sends.
    let output = run(
        Command::new("ffmpeg").args([
            "-hide_banner",
            "-loglevel",
            "debug",
            "-ss",
            "5",
            "-i",
            url,
            "-t",
            "1",
            "-f",
            "null",
            "-",
        ]),
        Duration::from_secs(60),
    );
    check(&output, "ffmpeg -ss 5");
    let log = String::from_utf8_lossy(&output.stderr);
    let ranges: Vec<&str> = log
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Range: bytes="))
        .collect();
    assert!(
        ranges.iter().any(|r| !r.starts_with("0-")),
        "ffmpeg never asked for a range past the start: {ranges:?}"
    );
    assert!(
        metric(stack, PARTIAL) > partial_before,
        "the edge answered no 206"
    );
}
