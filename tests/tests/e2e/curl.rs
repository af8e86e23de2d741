//! curl against the edge: a whole multi-chunk file with a short last chunk, single ranges
//! across chunk boundaries, resuming a partial download with `-C -`, a multi-range request
//! parsed as multipart/byteranges, and HEAD.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use tgcdn_tests::{PostedFile, client, sha256_hex};
use tgemu::Content;

use crate::common::{MIB, check, expected_sha, file_sha, have_tool, run, stack};

/// 5 MiB + 123 bytes: five full chunks and a 123-byte sixth.
const SIZE: u64 = 5 * MIB + 123;

fn film() -> &'static PostedFile {
    static FILM: OnceLock<PostedFile> = OnceLock::new();
    FILM.get_or_init(|| stack().post_file(Content::pseudo(SIZE), "curl film.mp4", "video/mp4", 4))
}

fn curl(args: &[&str]) -> std::process::Output {
    let output = run(
        Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "60"])
            .args(args),
        Duration::from_secs(90),
    );
    check(&output, &format!("curl {args:?}"));
    output
}

fn expected(from: u64, to_inclusive: u64) -> Vec<u8> {
    stack()
        .emulator()
        .content_slice(film().doc.id, from, (to_inclusive - from + 1) as usize)
}

#[test]
fn a_whole_file_downloads_byte_exact() {
    if !have_tool("curl") {
        return;
    }
    let stack = stack();
    let _logs = stack.logs_on_panic();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("film.mp4");
    let output = curl(&[
        "-o",
        out.to_str().unwrap(),
        "-w",
        "%{http_code} %{size_download}",
        &film().url,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("200 {SIZE}")
    );
    assert_eq!(file_sha(&out), expected_sha(stack, film()));
}

#[test]
fn single_ranges_across_chunk_boundaries_are_exact() {
    if !have_tool("curl") {
        return;
    }
    let _logs = stack().logs_on_panic();
    for (from, to) in [
        (MIB - 1, MIB),             // two bytes, one each side of a boundary
        (MIB - 100, 3 * MIB + 100), // four chunks, partial at both ends
        (2 * MIB, 3 * MIB - 1),     // exactly one chunk
        (5 * MIB - 10, SIZE - 1),   // into the short last chunk
        (SIZE - 1, SIZE - 1),       // the last byte
    ] {
        let range = format!("{from}-{to}");
        let output = curl(&["-r", &range, "-D", "-", "-o", "/dev/stdout", &film().url]);
        let text = output.stdout;
        let split = text
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a head");
        let head = String::from_utf8_lossy(&text[..split]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 206"), "{range}: {head}");
        assert!(
            head.contains(&format!("content-range: bytes {from}-{to}/{SIZE}")),
            "{range}: {head}"
        );
        assert!(
            text[split + 4..] == expected(from, to)[..],
            "{range}: body differs"
        );
    }
}

#[test]
fn a_partial_download_resumes_with_continue_at() {
    if !have_tool("curl") {
        return;
    }
    let stack = stack();
    let _logs = stack.logs_on_panic();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("partial.mp4");
    // What an interrupted download leaves: the first 2 MiB + 17 bytes.
    std::fs::write(&out, expected(0, 2 * MIB + 16)).unwrap();
    let output = curl(&[
        "-C",
        "-",
        "-o",
        out.to_str().unwrap(),
        "-w",
        "%{http_code} %{size_download}",
        &film().url,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("206 {}", SIZE - (2 * MIB + 17))
    );
    assert_eq!(file_sha(&out), expected_sha(stack, film()));
}

#[test]
fn a_multi_range_request_is_multipart_byteranges() {
    if !have_tool("curl") {
        return;
    }
    let _logs = stack().logs_on_panic();
    let dir = tempfile::tempdir().unwrap();
    let (head_path, body_path) = (dir.path().join("head"), dir.path().join("body"));
    let ranges = [(0, 99), (MIB - 5, MIB + 5), (5 * MIB, SIZE - 1)];
    let spec: Vec<String> = ranges.iter().map(|(a, b)| format!("{a}-{b}")).collect();
    curl(&[
        "-r",
        &spec.join(","),
        "-D",
        head_path.to_str().unwrap(),
        "-o",
        body_path.to_str().unwrap(),
        &film().url,
    ]);
    let head = std::fs::read_to_string(&head_path).unwrap();
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .expect("a Content-Type");
    assert!(
        content_type.starts_with("multipart/byteranges; boundary="),
        "{content_type}"
    );
    let body = std::fs::read(&body_path).unwrap();
    let parts = client::multipart_parts(&content_type, &body).unwrap();
    assert_eq!(parts.len(), ranges.len());
    for ((content_range, bytes), (from, to)) in parts.iter().zip(ranges) {
        assert_eq!(content_range, &format!("bytes {from}-{to}/{SIZE}"));
        assert_eq!(sha256_hex(bytes), sha256_hex(&expected(from, to)));
    }
}

#[test]
fn head_reports_size_and_range_support_without_a_body() {
    if !have_tool("curl") {
        return;
    }
    let _logs = stack().logs_on_panic();
    let output = curl(&["-I", &film().url]);
    let head = String::from_utf8_lossy(&output.stdout).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("content-length: {SIZE}\r\n")),
        "{head}"
    );
    assert!(head.contains("accept-ranges: bytes\r\n"), "{head}");
    assert!(head.contains("content-type: video/mp4\r\n"), "{head}");
}
