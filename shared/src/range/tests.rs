//! Tests of `Range` evaluation (a table of exact outcomes plus a never-panics property) and of
//! the conditional helpers.

use super::*;
use proptest::prelude::*;

const ETAG: &str = "\"AgADxyz-42\"";
/// Sun, 06 Nov 1994 08:49:37 GMT
const LAST_MODIFIED: u64 = 784_111_777;

fn r(start: u64, end: u64) -> ByteRange {
    ByteRange { start, end }
}

fn single(start: u64, end: u64) -> Result<RangeRequest, RangeError> {
    Ok(RangeRequest::Single(r(start, end)))
}

fn multi(ranges: &[(u64, u64)]) -> Result<RangeRequest, RangeError> {
    Ok(RangeRequest::Multi(
        ranges.iter().map(|&(start, end)| r(start, end)).collect(),
    ))
}

const FULL: Result<RangeRequest, RangeError> = Ok(RangeRequest::Full);
const TOO_MANY: Result<RangeRequest, RangeError> = Err(RangeError::TooMany);

fn unsatisfiable(file_size: u64) -> Result<RangeRequest, RangeError> {
    Err(RangeError::Unsatisfiable { file_size })
}

#[test]
fn range_table() {
    let list = |n: u64| {
        let specs: Vec<String> = (0..n)
            .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
            .collect();
        format!("bytes={}", specs.join(","))
    };
    let (sixteen, seventeen) = (list(16), list(17));
    let sixteen_expected: Vec<(u64, u64)> = (0..16).map(|i| (i * 10, i * 10 + 1)).collect();
    let four_gib: u64 = 4 << 30;
    let seventeen_then_garbage = format!("{seventeen},x");

    let cases: Vec<(&str, u64, Result<RangeRequest, RangeError>)> = vec![
        // Single ranges.
        ("bytes=0-0", 1000, single(0, 0)),
        ("bytes=0-499", 1000, single(0, 499)),
        ("bytes=500-999", 1000, single(500, 999)),
        ("bytes=999-999", 1000, single(999, 999)),
        ("bytes=500-", 1000, single(500, 999)),
        ("bytes=0-", 1000, single(0, 999)),
        ("bytes=-1", 1000, single(999, 999)),
        ("bytes=-500", 1000, single(500, 999)),
        ("bytes=-1000", 1000, single(0, 999)),
        ("bytes=00-0015", 1000, single(0, 15)),
        // Clamped to the file.
        ("bytes=500-5000", 1000, single(500, 999)),
        ("bytes=-5000", 1000, single(0, 999)),
        ("bytes=0-99999999999999999999999", 1000, single(0, 999)),
        // Unsatisfiable.
        ("bytes=1000-", 1000, unsatisfiable(1000)),
        ("bytes=1000-2000", 1000, unsatisfiable(1000)),
        ("bytes=-0", 1000, unsatisfiable(1000)),
        ("bytes=99999999999999999999999-", 1000, unsatisfiable(1000)),
        ("bytes=1000-1001, 2000-", 1000, unsatisfiable(1000)),
        // Invalid syntax → ignored.
        ("bytes=5-2", 1000, FULL),
        ("", 1000, FULL),
        ("bytes=", 1000, FULL),
        ("bytes=,", 1000, FULL),
        ("bytes= , ,", 1000, FULL),
        ("bytes=-", 1000, FULL),
        ("bytes=a-b", 1000, FULL),
        ("bytes=0-1,abc", 1000, FULL),
        ("bytes=+1-2", 1000, FULL),
        ("bytes=-1-2", 1000, FULL),
        ("bytes=0 - 1", 1000, FULL),
        ("bytes 0-1", 1000, FULL),
        ("bytes =0-1", 1000, FULL),
        ("items=0-1", 1000, FULL),
        ("0-1", 1000, FULL),
        ("bytes=0-1;q=1", 1000, FULL),
        // Whitespace and case.
        ("  bytes=0-1  ", 1000, single(0, 1)),
        ("\tbytes= 0-1 ,\t", 1000, single(0, 1)),
        ("BYTES=0-1", 1000, single(0, 1)),
        ("Bytes=-2", 1000, single(998, 999)),
        // Multi: order, drop unsatisfiable members, coalesce.
        ("bytes=0-1,5-6", 1000, multi(&[(0, 1), (5, 6)])),
        ("bytes=500-600, 0-10", 1000, multi(&[(0, 10), (500, 600)])),
        ("bytes=0-1, 2000-3000, 5-6", 1000, multi(&[(0, 1), (5, 6)])),
        ("bytes=,0-1,,5-6,", 1000, multi(&[(0, 1), (5, 6)])),
        ("bytes=0-10,5-20", 1000, single(0, 20)),
        ("bytes=0-9,10-19", 1000, single(0, 19)),
        ("bytes=0-9,11-19", 1000, multi(&[(0, 9), (11, 19)])),
        ("bytes=0-100,10-20,30-40", 1000, single(0, 100)),
        ("bytes=0-1,-1", 1000, multi(&[(0, 1), (999, 999)])),
        ("bytes=0-499,-500", 1000, single(0, 999)),
        ("bytes=0-1,1000-", 1000, single(0, 1)),
        // Limits.
        (&sixteen, 1000, multi(&sixteen_expected)),
        (&seventeen, 1000, TOO_MANY),
        ("bytes=0-,0-", 1000, single(0, 999)),
        ("bytes=0-,0-,0-", 1000, TOO_MANY),
        ("bytes=0-999,1-999,2-999", 1000, TOO_MANY),
        ("bytes=0-1,0-1,0-1", 1000, single(0, 1)),
        // Garbage beats the count: ignored, not refused.
        (&seventeen_then_garbage, 1000, FULL),
        // Empty file.
        ("bytes=0-", 0, unsatisfiable(0)),
        ("bytes=0-0", 0, unsatisfiable(0)),
        ("bytes=-0", 0, unsatisfiable(0)),
        ("bytes=-1", 0, FULL),
        ("bytes=5-2", 0, FULL),
        // Big files and chunk boundaries.
        (
            "bytes=1048575-1048576",
            four_gib,
            single(1_048_575, 1_048_576),
        ),
        ("bytes=-1", four_gib, single(four_gib - 1, four_gib - 1)),
        (
            "bytes=4294967295-",
            four_gib,
            single(four_gib - 1, four_gib - 1),
        ),
        ("bytes=4294967296-", four_gib, unsatisfiable(four_gib)),
    ];
    assert!(cases.len() >= 30);
    for (header, size, expected) in cases {
        assert_eq!(
            parse_range(header.as_bytes(), size),
            expected,
            "Range: {header:?} on a file of {size} bytes"
        );
    }
}

#[test]
fn non_utf8_header_is_ignored() {
    assert_eq!(parse_range(b"bytes=0-1\xff", 10), FULL);
    assert_eq!(parse_range(b"\xffbytes=0-1", 10), FULL);
}

#[test]
fn if_range_entity_tags() {
    assert!(if_range_allows_partial(ETAG, ETAG, LAST_MODIFIED));
    assert!(if_range_allows_partial(
        " \"AgADxyz-42\"\t",
        ETAG,
        LAST_MODIFIED
    ));
    assert!(
        !if_range_allows_partial("W/\"AgADxyz-42\"", ETAG, LAST_MODIFIED),
        "weak never matches"
    );
    assert!(!if_range_allows_partial("\"other\"", ETAG, LAST_MODIFIED));
    assert!(
        !if_range_allows_partial("\"agadxyz-42\"", ETAG, LAST_MODIFIED),
        "case-sensitive"
    );
    assert!(
        !if_range_allows_partial("\"AgADxyz-42\", \"x\"", ETAG, LAST_MODIFIED),
        "no lists"
    );
    assert!(
        !if_range_allows_partial("\"AgADxyz-42", ETAG, LAST_MODIFIED),
        "unterminated"
    );
    assert!(!if_range_allows_partial("*", ETAG, LAST_MODIFIED));
    // A weak ETag of ours can never be matched strongly.
    assert!(!if_range_allows_partial("\"a\"", "W/\"a\"", LAST_MODIFIED));
    assert!(!if_range_allows_partial(
        "W/\"a\"",
        "W/\"a\"",
        LAST_MODIFIED
    ));
}

#[test]
fn if_range_dates() {
    let exact = "Sun, 06 Nov 1994 08:49:37 GMT";
    assert!(if_range_allows_partial(exact, ETAG, LAST_MODIFIED));
    // The obsolete forms are dates too.
    assert!(if_range_allows_partial(
        "Sunday, 06-Nov-94 08:49:37 GMT",
        ETAG,
        LAST_MODIFIED
    ));
    assert!(if_range_allows_partial(
        "Sun Nov  6 08:49:37 1994",
        ETAG,
        LAST_MODIFIED
    ));
    assert!(
        !if_range_allows_partial("Sun, 06 Nov 1994 08:49:36 GMT", ETAG, LAST_MODIFIED),
        "earlier"
    );
    assert!(
        !if_range_allows_partial("Sun, 06 Nov 1994 08:49:38 GMT", ETAG, LAST_MODIFIED),
        "later"
    );
    assert!(!if_range_allows_partial("yesterday", ETAG, LAST_MODIFIED));
    assert!(!if_range_allows_partial("", ETAG, LAST_MODIFIED));
    assert!(!if_range_allows_partial("784111777", ETAG, LAST_MODIFIED));
}

#[test]
fn if_none_match() {
    assert!(if_none_match_matches(ETAG, ETAG));
    assert!(if_none_match_matches("*", ETAG));
    assert!(if_none_match_matches(" * ", ETAG));
    assert!(
        if_none_match_matches("W/\"AgADxyz-42\"", ETAG),
        "weak comparison"
    );
    assert!(if_none_match_matches("\"a\", \"AgADxyz-42\"", ETAG));
    assert!(if_none_match_matches("\"a\",W/\"AgADxyz-42\" ,", ETAG));
    assert!(
        if_none_match_matches("\"a,b\", \"AgADxyz-42\"", ETAG),
        "comma inside a tag"
    );
    assert!(if_none_match_matches("\"a\"", "W/\"a\""));
    assert!(!if_none_match_matches("\"a\", \"b\"", ETAG));
    assert!(!if_none_match_matches("\"a,AgADxyz-42\"", ETAG));
    assert!(!if_none_match_matches("AgADxyz-42", ETAG), "unquoted");
    assert!(
        !if_none_match_matches("\"AgADxyz-42\" junk", ETAG),
        "malformed list"
    );
    assert!(!if_none_match_matches(
        "\"x\", garbage, \"AgADxyz-42\"",
        ETAG
    ));
    assert!(
        !if_none_match_matches("\"a b\", \"AgADxyz-42\"", ETAG),
        "space in a tag"
    );
    assert!(!if_none_match_matches("", ETAG));
    assert!(!if_none_match_matches(" , ", ETAG));
    assert!(!if_none_match_matches("**", ETAG));
}

#[test]
fn header_values() {
    assert_eq!(content_range_value(r(0, 499), 1000), "bytes 0-499/1000");
    assert_eq!(content_range_value(r(0, 0), 1), "bytes 0-0/1");
    assert_eq!(
        content_range_value(r(10, u64::MAX - 1), u64::MAX),
        format!("bytes 10-{}/{}", u64::MAX - 1, u64::MAX)
    );
    assert_eq!(unsatisfied_content_range(1000), "bytes */1000");
    assert_eq!(unsatisfied_content_range(0), "bytes */0");
}

#[test]
fn http_dates_round_trip() {
    assert_eq!(
        format_http_date(LAST_MODIFIED),
        "Sun, 06 Nov 1994 08:49:37 GMT"
    );
    assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(format_http_date(u64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    assert_eq!(
        parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(LAST_MODIFIED)
    );
    assert_eq!(
        parse_http_date(" Sun, 06 Nov 1994 08:49:37 GMT "),
        Some(LAST_MODIFIED)
    );
    assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37"), None);
    assert_eq!(parse_http_date(""), None);
    assert_eq!(
        parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"),
        Some(253_402_300_799)
    );
}

proptest! {
    #[test]
    fn parse_range_never_panics_and_stays_in_file(
        header in proptest::collection::vec(any::<u8>(), 0..64),
        size in prop_oneof![Just(0u64), 1..100u64, any::<u64>()],
    ) {
        check_outcome(&header, size)?;
    }

    /// Random headers from the grammar's own alphabet reach the resolving logic far more often
    /// than arbitrary bytes do.
    #[test]
    fn plausible_ranges_stay_in_file(
        specs in proptest::collection::vec(
            (prop_oneof![Just(None), (0..200u64).prop_map(Some)],
             prop_oneof![Just(None), (0..200u64).prop_map(Some)]),
            0..20,
        ),
        size in 0..150u64,
    ) {
        let body: Vec<String> = specs.iter().map(|(a, b)| {
            format!("{}-{}", a.map(|n| n.to_string()).unwrap_or_default(),
                             b.map(|n| n.to_string()).unwrap_or_default())
        }).collect();
        let header = format!("bytes={}", body.join(", "));
        check_outcome(header.as_bytes(), size)?;
    }

    #[test]
    fn conditionals_never_panic(value in "\\PC*", etag in "\\PC*", date in any::<u64>()) {
        let _ = if_range_allows_partial(&value, &etag, date);
        let _ = if_none_match_matches(&value, &etag);
        let _ = parse_http_date(&value);
        prop_assert_eq!(parse_http_date(&format_http_date(date)), Some(date.min(253_402_300_799)));
    }
}

fn check_outcome(header: &[u8], size: u64) -> Result<(), TestCaseError> {
    match parse_range(header, size) {
        Ok(RangeRequest::Full) => {}
        Ok(RangeRequest::Single(range)) => {
            prop_assert!(
                range.start <= range.end && range.end < size,
                "{range:?} / {size}"
            );
        }
        Ok(RangeRequest::Multi(ranges)) => {
            prop_assert!(ranges.len() >= 2 && ranges.len() <= MAX_RANGES);
            for range in &ranges {
                prop_assert!(
                    range.start <= range.end && range.end < size,
                    "{range:?} / {size}"
                );
            }
            // Ascending, disjoint and not adjacent (else they would have been merged).
            for pair in ranges.windows(2) {
                prop_assert!(pair[0].end + 1 < pair[1].start, "{ranges:?}");
            }
            let total: u64 = ranges.iter().map(ByteRange::len).sum();
            prop_assert!(total <= size);
        }
        Err(RangeError::Unsatisfiable { file_size }) => prop_assert_eq!(file_size, size),
        Err(RangeError::TooMany) => {}
    }
    Ok(())
}
