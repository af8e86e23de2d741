//! Floods of forged tokens and a corpus of malformed requests: refused without upstream
//! work, no 5xx, no panic.

use super::*;

/// Panics anywhere in this test binary (a handler task included) since the hook was set.
static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            default(info);
        }));
    });
}

/// A small deterministic generator (xorshift): the same corpus every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A forged or damaged token: random text, or a real token with one edit.
fn hostile_token(rng: &mut Rng, real: &str) -> String {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const URL_SAFE: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-._~%";
    let mut token: Vec<u8> = real.bytes().collect();
    match rng.below(6) {
        0 => {
            let len = 1 + rng.below(120);
            return (0..len)
                .map(|_| char::from(BASE62[rng.below(62)]))
                .collect();
        }
        1 => {
            let len = 1 + rng.below(200);
            let text: String = (0..len)
                .map(|_| char::from(URL_SAFE[rng.below(URL_SAFE.len())]))
                .collect();
            // `%` must start an escape to stay a valid URI.
            return text.replace('%', "%25");
        }
        2 => {
            let at = rng.below(token.len());
            let mut with = BASE62[rng.below(62)];
            if with == token[at] {
                with = if with == b'0' { b'1' } else { b'0' };
            }
            token[at] = with;
        }
        3 => token.truncate(rng.below(token.len())),
        4 => token.push(BASE62[rng.below(62)]),
        _ => {
            let (a, b) = (rng.below(token.len()), rng.below(token.len()));
            token.swap(a, b);
            if token == real.as_bytes() {
                token.pop();
            }
        }
    }
    String::from_utf8(token).unwrap()
}

#[tokio::test]
async fn ten_thousand_forged_tokens_are_refused_without_upstream_work() {
    const TOKENS: usize = 10_000;
    const CLIENTS: usize = 8;
    let edge = Arc::new(start().await);
    let real = token(FILM);
    let started = Instant::now();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let edge = edge.clone();
        let real = real.clone();
        clients.push(tokio::spawn(async move {
            let mut rng = Rng(0x5eed_0000 + client as u64 * 7919);
            let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
            for _ in 0..TOKENS / CLIENTS {
                let forged = hostile_token(&mut rng, &real);
                assert_ne!(forged, real);
                let path = if rng.below(2) == 0 {
                    format!("/dl/{forged}/film.mp4")
                } else {
                    format!("/watch/{forged}")
                };
                let reply = edge.get(&path, &[("range", "bytes=0-")]).await;
                assert!(
                    reply.status.is_client_error(),
                    "{path}: {} (a forged token must be refused, never a 5xx)",
                    reply.status
                );
                *statuses.entry(reply.status.as_u16()).or_default() += 1;
            }
            statuses
        }));
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for client in clients {
        for (status, count) in tokio::time::timeout(Duration::from_secs(120), client)
            .await
            .expect("the flood took too long")
            .unwrap()
        {
            *statuses.entry(status).or_default() += count;
        }
    }
    println!(
        "{TOKENS} forged tokens refused in {:?}: statuses {statuses:?}; upstream meta calls {}, chunk calls {}",
        started.elapsed(),
        edge.upstream.meta_calls(),
        edge.upstream.chunk_calls()
    );
    assert_eq!(statuses.values().sum::<usize>(), TOKENS);
    assert_eq!(edge.upstream.meta_calls(), 0);
    assert_eq!(edge.upstream.chunk_calls(), 0);
    let text = edge.state.metrics.render();
    assert!(text.contains("tgcdn_edge_cache_misses_total 0\n"), "{text}");
    assert!(
        text.contains("tgcdn_edge_upstream_latency_seconds_count 0\n"),
        "{text}"
    );
}

/// Requests no client should send: overlong, NUL and control bytes, non-UTF-8, `..`,
/// lying or absurd Range and If-Range values, thousands of ranges.
fn malformed_corpus(film: &str) -> Vec<(String, Vec<u8>)> {
    let head = |request_line: &[u8], headers: &[&[u8]]| {
        let mut bytes = request_line.to_vec();
        bytes.extend_from_slice(b"\r\nHost: t\r\n");
        for header in headers {
            bytes.extend_from_slice(header);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"Connection: close\r\n\r\n");
        bytes
    };
    let get = |path: &[u8]| [b"GET ".as_slice(), path, b" HTTP/1.1"].concat();
    let film_get = get(film.as_bytes());
    let with_range = |value: &[u8]| head(&film_get, &[&[b"Range: ".as_slice(), value].concat()]);
    let many_ranges: String = (0..5_000)
        .map(|i| format!("{}-{}", i * 3, i * 3 + 1))
        .collect::<Vec<_>>()
        .join(",");
    let overlapping: String = (0..2_000).map(|_| "0-").collect::<Vec<_>>().join(",");
    let mut corpus: Vec<(String, Vec<u8>)> = vec![
        (
            "overlong path".into(),
            head(&get(&[b"/dl/".as_slice(), &[b'a'; 100_000]].concat()), &[]),
        ),
        (
            "overlong header".into(),
            head(
                &film_get,
                &[&[b"X-Big: ".as_slice(), &[b'x'; 200_000]].concat()],
            ),
        ),
        ("many headers".into(), {
            let headers: Vec<Vec<u8>> = (0..500)
                .map(|i| format!("X-H{i}: v").into_bytes())
                .collect();
            let refs: Vec<&[u8]> = headers.iter().map(Vec::as_slice).collect();
            head(&film_get, &refs)
        }),
        ("NUL in path".into(), head(&get(b"/dl/abc\0def/x"), &[])),
        (
            "NUL in header".into(),
            head(&film_get, &[b"Range: bytes=0-1\0"]),
        ),
        (
            "non-UTF-8 path".into(),
            head(&get(b"/dl/\xff\xfe\xfd/\xc3\x28"), &[]),
        ),
        (
            "percent-encoded non-UTF-8".into(),
            head(&get(b"/dl/%ff%fe/%c3%28"), &[]),
        ),
        (
            "dot segments".into(),
            head(&get(b"/dl/../../etc/passwd"), &[]),
        ),
        (
            "dot segments in name".into(),
            head(&get(format!("{film}/../../../etc/passwd").as_bytes()), &[]),
        ),
        (
            "encoded dot segments".into(),
            head(&get(b"/watch/%2e%2e/%2e%2e/metrics"), &[]),
        ),
        (
            "absolute-form target".into(),
            head(&get(b"http://evil.example/dl/x"), &[]),
        ),
        ("asterisk target".into(), head(b"OPTIONS * HTTP/1.1", &[])),
        (
            "unknown method".into(),
            head(
                &[b"BREW ".as_slice(), film.as_bytes(), b" HTTP/1.1"].concat(),
                &[],
            ),
        ),
        (
            "HTTP/0.9".into(),
            [b"GET ".as_slice(), film.as_bytes(), b"\r\n"].concat(),
        ),
        (
            "HTTP/3.7".into(),
            head(
                &[b"GET ".as_slice(), film.as_bytes(), b" HTTP/3.7"].concat(),
                &[],
            ),
        ),
        (
            "bare LF".into(),
            [
                b"GET ".as_slice(),
                film.as_bytes(),
                b" HTTP/1.1\nHost: t\n\n",
            ]
            .concat(),
        ),
        (
            "header without colon".into(),
            head(&film_get, &[b"Range bytes=0-1"]),
        ),
        (
            "obs-fold".into(),
            head(&film_get, &[b"Range: bytes=0-1,\r\n 5-6"]),
        ),
        (
            "duplicate Host and Content-Length".into(),
            head(
                &film_get,
                &[b"Host: u", b"Content-Length: 5", b"Content-Length: 7"],
            ),
        ),
        (
            "chunked body on GET".into(),
            head(&film_get, &[b"Transfer-Encoding: chunked"]),
        ),
        (
            "thousands of ranges".into(),
            with_range(format!("bytes={many_ranges}").as_bytes()),
        ),
        (
            "thousands of overlapping ranges".into(),
            with_range(format!("bytes={overlapping}").as_bytes()),
        ),
        (
            "range past u64".into(),
            with_range(b"bytes=99999999999999999999999-"),
        ),
        (
            "range end past u64".into(),
            with_range(b"bytes=0-99999999999999999999999"),
        ),
        (
            "suffix past u64".into(),
            with_range(b"bytes=-99999999999999999999999"),
        ),
        ("negative range".into(), with_range(b"bytes=-5-3")),
        ("reversed range".into(), with_range(b"bytes=9-3")),
        ("empty range".into(), with_range(b"bytes=")),
        ("other unit".into(), with_range(b"pages=1-2")),
        ("non-UTF-8 range".into(), with_range(b"bytes=\xff-\xfe")),
        (
            "overlong range".into(),
            with_range(&[b"bytes=".as_slice(), &[b'1'; 60_000]].concat()),
        ),
        (
            "range with spaces and junk".into(),
            with_range(b"bytes = 0 - 1 ,, , ;x"),
        ),
        (
            "if-range garbage".into(),
            head(
                &film_get,
                &[b"Range: bytes=0-1", b"If-Range: \xff\xfe garbage"],
            ),
        ),
        (
            "if-range weak etag".into(),
            head(&film_get, &[b"Range: bytes=0-1", b"If-Range: W/\"x\""]),
        ),
        (
            "if-range absurd date".into(),
            head(
                &film_get,
                &[
                    b"Range: bytes=0-1",
                    b"If-Range: Fri, 31 Dec 99999 23:59:59 GMT",
                ],
            ),
        ),
        (
            "if-none-match huge list".into(),
            head(
                &film_get,
                &[format!("If-None-Match: {}", vec!["\"a\""; 5_000].join(",")).as_bytes()],
            ),
        ),
        (
            "if-modified-since garbage".into(),
            head(&film_get, &[b"If-Modified-Since: \x01\x02"]),
        ),
        (
            "forwarded-for garbage".into(),
            head(&film_get, &[b"X-Forwarded-For: ::::, 999.1.1.1"]),
        ),
        (
            "h2 preface then garbage".into(),
            [H2_PREFACE, &[0xff; 64]].concat(),
        ),
        (
            "TLS hello on plain port".into(),
            vec![0x16, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3],
        ),
        ("random bytes".into(), {
            let mut rng = Rng(42);
            (0..4096).map(|_| rng.next() as u8).collect()
        }),
    ];
    // Every request once more as a pipelined second request after a good one.
    let good = head(b"GET /healthz HTTP/1.1", &[]).replace_suffix();
    let pipelined: Vec<(String, Vec<u8>)> = corpus
        .iter()
        .map(|(name, bytes)| {
            (
                format!("{name}, pipelined"),
                [good.as_slice(), bytes].concat(),
            )
        })
        .collect();
    corpus.extend(pipelined);
    corpus
}

/// `Connection: close` off a request, so another may follow on the connection.
trait KeepAlive {
    fn replace_suffix(self) -> Vec<u8>;
}

impl KeepAlive for Vec<u8> {
    fn replace_suffix(self) -> Vec<u8> {
        let text = String::from_utf8(self).unwrap();
        text.replace("Connection: close\r\n", "").into_bytes()
    }
}

#[tokio::test]
async fn malformed_requests_get_no_5xx_and_panic_nothing() {
    count_panics();
    // A request that is not complete (and never will be) is closed at the header deadline.
    let http = HttpSettings {
        header_read_timeout: Duration::from_secs(2),
        ..HttpSettings::default()
    };
    let edge = start_with(upstream(), http).await;
    let film = format!("/dl/{}/film.mp4", token(FILM));
    let corpus = malformed_corpus(&film);
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for (name, request) in &corpus {
        let mut socket = TcpStream::connect(edge.addr).await.unwrap();
        // The server may close before reading everything (a reset is an answer too).
        let _ = socket.write_all(request).await;
        let mut reply = Vec::new();
        let read = tokio::time::timeout(STEP, socket.read_to_end(&mut reply)).await;
        assert!(read.is_ok(), "{name}: the connection was never closed");
        // Every status line in the answer (a pipelined pair has two).
        let text = String::from_utf8_lossy(&reply);
        let mut answered = false;
        for line in text
            .split("\r\n")
            .filter(|line| line.starts_with("HTTP/1.1 "))
        {
            let code = &line[9..12.min(line.len())];
            assert!(!code.starts_with('5'), "{name}: {line}");
            answered = true;
            *statuses.entry(code.to_owned()).or_default() += 1;
        }
        if !answered {
            *statuses.entry("closed".to_owned()).or_default() += 1;
        }
    }
    println!("{} malformed requests: {statuses:?}", corpus.len());
    assert_eq!(PANICS.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Still serving, byte-exact.
    let reply = edge.get(&film, &[("range", "bytes=10-19")]).await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        reply.body.as_ref(),
        tgcdn_edge::testing::pattern(10, 20).as_slice()
    );
}
