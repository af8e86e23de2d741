//! `--smoke`: proves the running sandbox serves what it claims, through the edge's HTTP
//! port like any viewer — a 100-byte Range of the bot's link (206, exact bytes), the whole
//! file (200, length and SHA-256), the bot's watch page (200), every other seeded file
//! (SHA-256, or for the generated 1 GiB file its last 100 bytes, exact), and, when ffprobe
//! is installed, that the film is a real video (ffprobe reads its duration over HTTP from
//! the same link, seeking with Range requests as a player does).
//!
//! Called by `main` after [`crate::Sandbox::start`]. The client is a bare hyper HTTP/1.1
//! connection per request to the edge's listen address (no proxy, no redirects); every
//! request and the ffprobe run have a deadline, so a stuck edge fails the check instead of
//! hanging it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::StatusCode;

use crate::Sandbox;
use crate::client::{get, get_keeping};
use crate::error::SandboxError;

/// Longest the ffprobe run may take.
const PROBE_DEADLINE: Duration = Duration::from_secs(60);
const RANGE_LEN: u64 = 100;
/// Longest the catalogue may take to show the demo releases (the back-fill's first walk).
const CATALOG_DEADLINE: Duration = Duration::from_secs(60);

/// Runs the checks; the summary line on success.
pub async fn check(sandbox: &Sandbox) -> Result<String, SandboxError> {
    let seeded = sandbox.seeded();
    let addr = sandbox.edge_addr();
    let film = seeded.uploaded_file();
    let link = &seeded.bot_links.download;

    let ranged = get(addr, link, Some(format!("bytes=0-{}", RANGE_LEN - 1))).await?;
    let expected_head = sandbox.content(film.doc_id, 0, RANGE_LEN as usize);
    expect(
        ranged.status == StatusCode::PARTIAL_CONTENT,
        format!("Range request answered {}", ranged.status),
    )?;
    expect(
        ranged.content_range.as_deref() == Some(&format!("bytes 0-99/{}", film.size)),
        format!("Content-Range {:?}", ranged.content_range),
    )?;
    expect(
        ranged.head == expected_head,
        "the first 100 bytes differ from the document's".to_owned(),
    )?;

    let started = Instant::now();
    let full = get(addr, link, None).await?;
    let elapsed = started.elapsed();
    expect(
        full.status == StatusCode::OK,
        format!("full download answered {}", full.status),
    )?;
    let film_sha256 = film.sha256.as_deref().unwrap_or_default();
    expect(
        full.len == film.size && full.sha256 == film_sha256,
        format!(
            "full download: {} bytes sha256 {}, expected {} bytes sha256 {film_sha256}",
            full.len, full.sha256, film.size
        ),
    )?;

    let watch = get(addr, &seeded.bot_links.watch, None).await?;
    expect(
        watch.status == StatusCode::OK && watch.len > 0,
        format!("the watch page answered {}", watch.status),
    )?;

    for other in seeded.files.iter().filter(|f| f.doc_id != film.doc_id) {
        match &other.sha256 {
            Some(sha256) => {
                let fetched = get(addr, &other.links.download, None).await?;
                expect(
                    fetched.status == StatusCode::OK && fetched.sha256 == *sha256,
                    format!(
                        "{}: answered {} with sha256 {}, expected {sha256}",
                        other.name, fetched.status, fetched.sha256
                    ),
                )?;
            }
            None => check_tail(sandbox, addr, other).await?,
        }
    }
    check_regions(sandbox)?;
    let video = probe_video(&seeded.bot_links.download).await?;
    let addon = check_catalog(sandbox).await?;
    let mib_per_sec = film.size as f64 / (1 << 20) as f64 / elapsed.as_secs_f64().max(1e-6);
    Ok(format!(
        "OK: {} ({} bytes) via the bot's link: Range 0-99 exact, full sha256 {film_sha256} \
         matches ({mib_per_sec:.1} MiB/s cold); {video}; {} more file(s) match; {addon}; \
         both regions serve it byte-exact, region b's 2nd request all cache hits",
        film.name,
        film.size,
        seeded.files.len() - 1
    ))
}

/// The walk through both regions made at start: each edge served the film whole and
/// byte-exact, and the second edge's second request never left its own cache.
fn check_regions(sandbox: &Sandbox) -> Result<(), SandboxError> {
    let film = sandbox.seeded().uploaded_file();
    let expected = film.sha256.as_deref().unwrap_or_default();
    let tour = sandbox.tour();
    for visit in [
        &tour.first_region,
        &tour.second_region_cold,
        &tour.second_region_warm,
    ] {
        expect(
            visit.status == StatusCode::OK && visit.len == film.size && visit.sha256 == expected,
            format!(
                "{}: answered {} with {} bytes sha256 {}, expected {} bytes sha256 {expected}",
                visit.url, visit.status, visit.len, visit.sha256, film.size
            ),
        )?;
    }
    let (cold, warm) = (
        tour.second_region_cold.lookups,
        tour.second_region_warm.lookups,
    );
    expect(
        cold.misses > 0,
        format!("region b's first request fetched nothing from the core: {cold:?}"),
    )?;
    expect(
        warm.all_hits(),
        format!("region b's second request was not served from its cache: {warm:?}"),
    )
}

/// The Stremio addon lists the demo releases once the core's back-fill has walked the
/// catalogue channel: both films and the series, by their parsed names.
async fn check_catalog(sandbox: &Sandbox) -> Result<String, SandboxError> {
    let base = sandbox.public_base();
    let pages = [
        (
            format!("{base}/catalog/movie/tgcdn-movie.json"),
            &["Big Buck Demo", "Sintel Demo"][..],
        ),
        (
            format!("{base}/catalog/series/tgcdn-series.json"),
            &["Demo Show"][..],
        ),
    ];
    let deadline = Instant::now() + CATALOG_DEADLINE;
    for (url, names) in &pages {
        loop {
            let page = get_keeping(sandbox.edge_addr(), url, None, 1 << 16).await?;
            let text = String::from_utf8_lossy(&page.head);
            let listed = names
                .iter()
                .all(|name| text.contains(&format!("\"name\":\"{name}\"")));
            if page.status == StatusCode::OK && listed {
                break;
            }
            expect(
                Instant::now() < deadline,
                format!("{url} does not list {names:?} within {CATALOG_DEADLINE:?}: {text}"),
            )?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(format!(
        "the addon ({base}/manifest.json) lists 2 films and 1 series"
    ))
}

/// A file too large to download in a smoke run: its last bytes must be exact, which also
/// proves the edge can seek to its far end.
async fn check_tail(
    sandbox: &Sandbox,
    addr: SocketAddr,
    file: &crate::seed::DemoFile,
) -> Result<(), SandboxError> {
    let start = file.size.saturating_sub(RANGE_LEN);
    let fetched = get(
        addr,
        &file.links.download,
        Some(format!("bytes={start}-{}", file.size - 1)),
    )
    .await?;
    let expected = sandbox.content(file.doc_id, start, RANGE_LEN as usize);
    expect(
        fetched.status == StatusCode::PARTIAL_CONTENT && fetched.head == expected,
        format!(
            "{}: the last {RANGE_LEN} bytes answered {} and differ from the document's",
            file.name, fetched.status
        ),
    )
}

/// What ffprobe makes of the film at `url`: its duration, or a note that ffprobe is not
/// installed (the check is then skipped, not failed).
async fn probe_video(url: &str) -> Result<String, SandboxError> {
    let probe = tokio::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=codec_name",
            "-of",
            "default=noprint_wrappers=1",
            url,
        ])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(PROBE_DEADLINE, probe).await {
        Err(_) => {
            return Err(SandboxError::Smoke(format!(
                "ffprobe {url}: no answer within {PROBE_DEADLINE:?}"
            )));
        }
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok("ffprobe not installed, video not checked".to_owned());
        }
        Ok(Err(error)) => {
            return Err(SandboxError::Smoke(format!("ffprobe {url}: {error}")));
        }
        Ok(Ok(output)) => output,
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let summary = video_summary(&text);
    match summary {
        Some(summary) if output.status.success() => Ok(summary),
        _ => Err(SandboxError::Smoke(format!(
            "ffprobe {url}: not a video ({}): {}{}",
            output.status,
            text.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))),
    }
}

/// `codec_name=h264\ncodec_name=aac\nduration=30.000000\n` → "ffprobe: 30.0 s of h264+aac";
/// `None` without a positive duration or any codec.
fn video_summary(ffprobe_output: &str) -> Option<String> {
    let mut codecs = Vec::new();
    let mut duration = None;
    for line in ffprobe_output.lines() {
        match line.trim().split_once('=') {
            Some(("codec_name", codec)) => codecs.push(codec.to_owned()),
            Some(("duration", secs)) => duration = secs.parse::<f64>().ok(),
            _ => {}
        }
    }
    let duration = duration.filter(|secs| *secs > 0.0)?;
    (!codecs.is_empty()).then(|| format!("ffprobe: {duration:.1} s of {}", codecs.join("+")))
}

fn expect(condition: bool, failure: String) -> Result<(), SandboxError> {
    if condition {
        Ok(())
    } else {
        Err(SandboxError::Smoke(failure))
    }
}

#[cfg(test)]
mod tests {
    use super::video_summary;

    #[test]
    fn ffprobe_output_becomes_a_summary_only_for_a_video() {
        assert_eq!(
            video_summary("codec_name=h264\ncodec_name=aac\nduration=30.000000\n").as_deref(),
            Some("ffprobe: 30.0 s of h264+aac")
        );
        assert_eq!(video_summary("duration=N/A\n"), None);
        assert_eq!(video_summary("codec_name=h264\n"), None);
        assert_eq!(video_summary(""), None);
    }
}
