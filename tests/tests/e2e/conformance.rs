//! HTTP conformance of the whole stack as one table: Range (RFC 9110 §14), If-Range (§13.1.5),
//! If-None-Match / If-Modified-Since (§13.1.2–3, §13.2.2 precedence) and HEAD, each with the
//! exact status, the headers that matter (Content-Range, Content-Length, Content-Type, ETag,
//! Accept-Ranges, Last-Modified) and the body checked byte for byte against the emulator.
//! Requests go through the exact client, so nothing is added or retried behind the table.

use std::sync::OnceLock;
use std::time::Duration;

use tgcdn_shared::range::{format_http_date, parse_http_date};
use tgcdn_tests::{PostedFile, client};
use tgemu::Content;

use crate::common::{MIB, stack};

/// Three full chunks and a 5-byte fourth.
const SIZE: u64 = 3 * MIB + 5;
const MIME: &str = "video/mp4";
const DAY: u64 = 86_400;

/// What the body must be.
#[derive(Debug, Clone)]
enum Body {
    /// No body (HEAD, 304); for HEAD `Content-Length` is still checked against `head_len`.
    Empty { head_len: Option<u64> },
    /// The file bytes `[from, to]`.
    Bytes(u64, u64),
    /// `multipart/byteranges` with these parts, in order.
    Parts(Vec<(u64, u64)>),
    /// An error body: anything, as long as `Content-Length` matches it.
    Error,
}

/// What `Content-Range` must be.
#[derive(Debug, Clone)]
enum ContentRange {
    Absent,
    Is(String),
}

struct Case {
    name: &'static str,
    method: &'static str,
    headers: Vec<(&'static str, String)>,
    status: u16,
    content_range: ContentRange,
    body: Body,
}

fn film() -> &'static PostedFile {
    static FILM: OnceLock<PostedFile> = OnceLock::new();
    FILM.get_or_init(|| stack().post_file(Content::pseudo(SIZE), "conformance.mp4", MIME, 4))
}

fn range(from: u64, to: u64) -> (ContentRange, Body) {
    (
        ContentRange::Is(format!("bytes {from}-{to}/{SIZE}")),
        Body::Bytes(from, to),
    )
}

fn case(
    name: &'static str,
    method: &'static str,
    headers: &[(&'static str, &str)],
    status: u16,
    (content_range, body): (ContentRange, Body),
) -> Case {
    Case {
        name,
        method,
        headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        status,
        content_range,
        body,
    }
}

fn whole() -> (ContentRange, Body) {
    (ContentRange::Absent, Body::Bytes(0, SIZE - 1))
}

fn unsatisfiable() -> (ContentRange, Body) {
    (ContentRange::Is(format!("bytes */{SIZE}")), Body::Error)
}

fn not_modified() -> (ContentRange, Body) {
    (ContentRange::Absent, Body::Empty { head_len: None })
}

fn table(etag: &str, last_modified: &str) -> Vec<Case> {
    let modified = parse_http_date(last_modified).expect("Last-Modified is an HTTP date");
    let earlier = format_http_date(modified - DAY);
    let later = format_http_date(modified + DAY);
    let weak = format!("W/{etag}");
    let listed = format!("\"nope\", {etag}");
    let s = SIZE;
    let too_many = format!(
        "bytes={}",
        (0..17)
            .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
            .collect::<Vec<_>>()
            .join(",")
    );
    let r = |text: String| text;
    vec![
        case("plain GET", "GET", &[], 200, whole()),
        case(
            "HEAD",
            "HEAD",
            &[],
            200,
            (ContentRange::Absent, Body::Empty { head_len: Some(s) }),
        ),
        case(
            "first byte",
            "GET",
            &[("Range", "bytes=0-0")],
            206,
            range(0, 0),
        ),
        case(
            "first 100",
            "GET",
            &[("Range", "bytes=0-99")],
            206,
            range(0, 99),
        ),
        case(
            "open end",
            "GET",
            &[("Range", "bytes=100-")],
            206,
            range(100, s - 1),
        ),
        case(
            "suffix",
            "GET",
            &[("Range", "bytes=-100")],
            206,
            range(s - 100, s - 1),
        ),
        case(
            "zero suffix",
            "GET",
            &[("Range", "bytes=-0")],
            416,
            unsatisfiable(),
        ),
        case(
            "last byte",
            "GET",
            &[("Range", &r(format!("bytes={}-", s - 1)))],
            206,
            range(s - 1, s - 1),
        ),
        case(
            "start at size",
            "GET",
            &[("Range", &r(format!("bytes={s}-")))],
            416,
            unsatisfiable(),
        ),
        case(
            "past the end",
            "GET",
            &[("Range", &r(format!("bytes={}-{}", s + 100, s + 200)))],
            416,
            unsatisfiable(),
        ),
        case(
            "across a chunk boundary",
            "GET",
            &[("Range", &r(format!("bytes={}-{}", MIB - 1, MIB)))],
            206,
            range(MIB - 1, MIB),
        ),
        case(
            "exactly the second chunk",
            "GET",
            &[("Range", &r(format!("bytes={}-{}", MIB, 2 * MIB - 1)))],
            206,
            range(MIB, 2 * MIB - 1),
        ),
        case(
            "into the short last chunk",
            "GET",
            &[("Range", &r(format!("bytes={}-{}", 3 * MIB - 2, s - 1)))],
            206,
            range(3 * MIB - 2, s - 1),
        ),
        case(
            "end clamped to the size",
            "GET",
            &[("Range", "bytes=0-999999999")],
            206,
            range(0, s - 1),
        ),
        case(
            "suffix longer than the file",
            "GET",
            &[("Range", "bytes=-999999999")],
            206,
            range(0, s - 1),
        ),
        // §14.1.1: last < first makes the spec invalid, and an invalid Range is ignored.
        case(
            "reversed range is ignored",
            "GET",
            &[("Range", "bytes=5-1")],
            200,
            whole(),
        ),
        case(
            "unknown unit is ignored",
            "GET",
            &[("Range", "items=0-10")],
            200,
            whole(),
        ),
        case(
            "garbage range is ignored",
            "GET",
            &[("Range", "bytes=abc")],
            200,
            whole(),
        ),
        case(
            "two ranges",
            "GET",
            &[("Range", "bytes=0-9,20-29")],
            206,
            (ContentRange::Absent, Body::Parts(vec![(0, 9), (20, 29)])),
        ),
        case(
            "three ranges over chunks, out of order",
            "GET",
            &[("Range", &r(format!("bytes=-3,{}-{},0-0", MIB, MIB + 4)))],
            206,
            (
                ContentRange::Absent,
                Body::Parts(vec![(0, 0), (MIB, MIB + 4), (s - 3, s - 1)]),
            ),
        ),
        case(
            "unsatisfiable part dropped",
            "GET",
            &[("Range", &r(format!("bytes=0-9,{}-{}", s + 10, s + 20)))],
            206,
            range(0, 9),
        ),
        case(
            "overlapping ranges coalesce",
            "GET",
            &[("Range", "bytes=0-10,5-15")],
            206,
            range(0, 15),
        ),
        case(
            "adjacent ranges coalesce",
            "GET",
            &[("Range", "bytes=0-9,10-19")],
            206,
            range(0, 19),
        ),
        case(
            "more than twice the file is refused",
            "GET",
            &[("Range", "bytes=0-,0-,0-")],
            416,
            (ContentRange::Absent, Body::Error),
        ),
        case(
            "more than 16 ranges are refused",
            "GET",
            &[("Range", &too_many)],
            416,
            (ContentRange::Absent, Body::Error),
        ),
        case(
            "If-Range with the ETag",
            "GET",
            &[("Range", "bytes=10-19"), ("If-Range", etag)],
            206,
            range(10, 19),
        ),
        case(
            "If-Range with another ETag",
            "GET",
            &[("Range", "bytes=10-19"), ("If-Range", "\"other\"")],
            200,
            whole(),
        ),
        case(
            "If-Range with the date",
            "GET",
            &[("Range", "bytes=10-19"), ("If-Range", last_modified)],
            206,
            range(10, 19),
        ),
        case(
            "If-Range with an older date",
            "GET",
            &[("Range", "bytes=10-19"), ("If-Range", &earlier)],
            200,
            whole(),
        ),
        // §13.1.5: If-Range uses the strong comparison; a weak tag never matches.
        case(
            "If-Range with a weak ETag",
            "GET",
            &[("Range", "bytes=10-19"), ("If-Range", &weak)],
            200,
            whole(),
        ),
        case(
            "If-None-Match hit",
            "GET",
            &[("If-None-Match", etag)],
            304,
            not_modified(),
        ),
        case(
            "If-None-Match *",
            "GET",
            &[("If-None-Match", "*")],
            304,
            not_modified(),
        ),
        case(
            "If-None-Match miss",
            "GET",
            &[("If-None-Match", "\"other\"")],
            200,
            whole(),
        ),
        case(
            "If-None-Match list",
            "GET",
            &[("If-None-Match", &listed)],
            304,
            not_modified(),
        ),
        // §13.1.2: If-None-Match uses the weak comparison.
        case(
            "If-None-Match weak",
            "GET",
            &[("If-None-Match", &weak)],
            304,
            not_modified(),
        ),
        case(
            "If-Modified-Since the date",
            "GET",
            &[("If-Modified-Since", last_modified)],
            304,
            not_modified(),
        ),
        case(
            "If-Modified-Since earlier",
            "GET",
            &[("If-Modified-Since", &earlier)],
            200,
            whole(),
        ),
        case(
            "If-Modified-Since later",
            "GET",
            &[("If-Modified-Since", &later)],
            304,
            not_modified(),
        ),
        case(
            "If-Modified-Since garbage",
            "GET",
            &[("If-Modified-Since", "yesterday-ish")],
            200,
            whole(),
        ),
        // §13.2.2: If-None-Match is evaluated and If-Modified-Since ignored.
        case(
            "If-None-Match beats If-Modified-Since",
            "GET",
            &[
                ("If-None-Match", "\"other\""),
                ("If-Modified-Since", last_modified),
            ],
            200,
            whole(),
        ),
        case(
            "304 beats Range",
            "GET",
            &[("If-None-Match", etag), ("Range", "bytes=0-9")],
            304,
            not_modified(),
        ),
        case(
            "HEAD with a range",
            "HEAD",
            &[("Range", "bytes=100-199")],
            206,
            (
                ContentRange::Is(format!("bytes 100-199/{s}")),
                Body::Empty {
                    head_len: Some(100),
                },
            ),
        ),
        case(
            "HEAD with an unsatisfiable range",
            "HEAD",
            &[("Range", &r(format!("bytes={s}-")))],
            416,
            (
                ContentRange::Is(format!("bytes */{s}")),
                Body::Empty { head_len: None },
            ),
        ),
    ]
}

/// Checks one case; returns every mismatch as text (empty = pass).
fn check(case: &Case, etag: &str, last_modified: &str) -> Vec<String> {
    let headers: Vec<(&str, &str)> = case.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response =
        match client::request(&film().url, case.method, &headers, Duration::from_secs(30)) {
            Ok(response) => response,
            Err(error) => return vec![format!("request failed: {error}")],
        };
    let mut problems = Vec::new();
    let mut expect = |what: &str, got: Option<&str>, want: Option<&str>| {
        if got != want {
            problems.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    };
    let status = response.status().to_string();
    expect("status", Some(&status), Some(&case.status.to_string()));
    match &case.content_range {
        ContentRange::Absent => expect("Content-Range", response.header("content-range"), None),
        ContentRange::Is(value) => expect(
            "Content-Range",
            response.header("content-range"),
            Some(value),
        ),
    }
    if matches!(case.status, 200 | 206 | 304) {
        expect("ETag", response.header("etag"), Some(etag));
        expect(
            "Last-Modified",
            response.header("last-modified"),
            Some(last_modified),
        );
        expect(
            "Accept-Ranges",
            response.header("accept-ranges"),
            Some("bytes"),
        );
    }
    let emulator = stack().emulator();
    match &case.body {
        Body::Empty { head_len } => {
            expect(
                "body length",
                Some(&response.body.len().to_string()),
                Some("0"),
            );
            if let Some(len) = head_len {
                expect(
                    "Content-Length",
                    response.header("content-length"),
                    Some(&len.to_string()),
                );
                expect("Content-Type", response.header("content-type"), Some(MIME));
            }
        }
        Body::Bytes(from, to) => {
            let want = emulator.content_slice(film().doc.id, *from, (to - from + 1) as usize);
            expect("Content-Type", response.header("content-type"), Some(MIME));
            expect(
                "Content-Length",
                response.header("content-length"),
                Some(&want.len().to_string()),
            );
            if response.body != want {
                problems.push(format!("body differs from bytes {from}-{to}"));
            }
        }
        Body::Parts(ranges) => {
            let content_type = response.header("content-type").unwrap_or_default();
            if !content_type.starts_with("multipart/byteranges; boundary=") {
                problems.push(format!("Content-Type {content_type:?} is not multipart"));
            }
            match client::multipart_parts(content_type, &response.body) {
                Ok(parts) if parts.len() == ranges.len() => {
                    for ((content_range, bytes), (from, to)) in parts.iter().zip(ranges) {
                        let want =
                            emulator.content_slice(film().doc.id, *from, (to - from + 1) as usize);
                        if content_range != &format!("bytes {from}-{to}/{SIZE}") || bytes != &want {
                            problems.push(format!("part {from}-{to} is {content_range}"));
                        }
                    }
                }
                Ok(parts) => problems.push(format!("{} parts, want {}", parts.len(), ranges.len())),
                Err(error) => problems.push(format!("multipart body: {error}")),
            }
        }
        Body::Error => {}
    }
    problems
}

#[test]
fn range_and_conditional_requests_follow_rfc_9110() {
    let stack = stack();
    let _logs = stack.logs_on_panic();
    let first = client::request(&film().url, "HEAD", &[], Duration::from_secs(30)).unwrap();
    let etag = first.header("etag").expect("an ETag").to_owned();
    let last_modified = first
        .header("last-modified")
        .expect("a Last-Modified")
        .to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "a strong ETag: {etag}"
    );
    let cases = table(&etag, &last_modified);
    assert!(cases.len() >= 30);
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let problems = check(case, &etag, &last_modified);
            (!problems.is_empty()).then(|| format!("{}: {}", case.name, problems.join("; ")))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn other_methods_and_the_download_flag() {
    let stack = stack();
    let _logs = stack.logs_on_panic();
    let post = client::request(&film().url, "POST", &[], Duration::from_secs(30)).unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let download = client::request(
        &format!("{}?download", film().url),
        "HEAD",
        &[],
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(download.status(), 200);
    let disposition = download.header("content-disposition").unwrap_or_default();
    assert!(
        disposition.starts_with("attachment") && disposition.contains("conformance.mp4"),
        "{disposition}"
    );
    let inline = client::request(&film().url, "HEAD", &[], Duration::from_secs(30)).unwrap();
    assert!(
        inline
            .header("content-disposition")
            .unwrap_or_default()
            .starts_with("inline"),
        "{:?}",
        inline.header("content-disposition")
    );
}
