//! What one HTTP/2 connection may hold: at most `h2_max_streams` streams at once. A client
//! that opens more (as a hostile one would; a well-behaved client waits for the limit it
//! was told in SETTINGS) has the extra streams refused with `RST_STREAM REFUSED_STREAM`,
//! while the streams within the limit are served to the last byte, and a stream opened
//! once one has finished is served too.
//!
//! The client speaks raw frames over TCP to the real server on 127.0.0.1:0 (a compliant
//! client library would never exceed the limit). It grants the responses no flow-control
//! window at first, so the admitted streams stay open while the extra ones arrive.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use tgcdn_edge::app::{EdgeOptions, build_state};
use tgcdn_edge::http::{HttpSettings, serve};
use tgcdn_edge::testing::{MemoryUpstream, pattern, test_meta};
use tgcdn_shared::FileRef;
use tgcdn_shared::token::{Keyring, LinkKey, TokenVerifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const STEP: Duration = Duration::from_secs(10);
const LINK_SECRET: &[u8] = b"edge-h2-limits-test-link-secret!";
const FILE: FileRef = FileRef {
    chat_id: -1_005_555,
    msg_id: 8,
};
const SIZE: u64 = 3_000;
const MAX_STREAMS: u32 = 4;

// Frame types and flags (RFC 9113 §6).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
const REFUSED_STREAM: u32 = 0x7;

fn path() -> String {
    let keyring = Keyring::new(LinkKey::new(1, LINK_SECRET).unwrap(), Vec::new()).unwrap();
    format!("/dl/{}/film.mp4", keyring.sign(FILE, None))
}

async fn start(max_streams: u32) -> (SocketAddr, oneshot::Sender<()>) {
    let upstream = MemoryUpstream::new().with_file(FILE, test_meta(SIZE, "film.mp4", "video/mp4"));
    let options = EdgeOptions {
        cache_bytes: 64 << 20,
        http: HttpSettings {
            h2_max_streams: max_streams,
            ..HttpSettings::default()
        },
        ..EdgeOptions::default()
    };
    let keyring = Keyring::new(LinkKey::new(1, LINK_SECRET).unwrap(), Vec::new()).unwrap();
    let state = build_state(
        std::sync::Arc::new(upstream),
        TokenVerifier::new(keyring),
        options,
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, state, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

fn encode(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend(stream.to_be_bytes());
    out.extend(payload);
    out
}

/// HPACK for `GET http://edge{path}`: indexed `:method GET` and `:scheme http`, `:path` and
/// `:authority` as literals with an indexed name, no Huffman (RFC 7541 §6.1, §6.2.2).
fn get_headers(path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86];
    for (index, value) in [(0x04u8, path), (0x01, "edge")] {
        block.push(index);
        assert!(value.len() < 127, "one-byte length");
        block.push(value.len() as u8);
        block.extend(value.as_bytes());
    }
    block
}

async fn read_frame(stream: &mut TcpStream) -> Frame {
    let mut head = [0u8; 9];
    tokio::time::timeout(STEP, stream.read_exact(&mut head))
        .await
        .expect("no frame in time")
        .expect("connection closed");
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    tokio::time::timeout(STEP, stream.read_exact(&mut payload))
        .await
        .expect("no frame payload in time")
        .expect("connection closed");
    Frame {
        kind: head[3],
        flags: head[4],
        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
        payload,
    }
}

/// What the client has seen so far, per stream.
#[derive(Default)]
struct Seen {
    /// The server's advertised `SETTINGS_MAX_CONCURRENT_STREAMS`.
    max_streams: Option<u32>,
    /// Streams answered with a HEADERS frame whose first field is `:status 200`.
    ok: BTreeSet<u32>,
    refused: BTreeSet<u32>,
    body: BTreeMap<u32, Vec<u8>>,
    ended: BTreeSet<u32>,
}

impl Seen {
    /// Reads one frame and records it; answers the server's SETTINGS with an ACK.
    async fn next(&mut self, connection: &mut TcpStream) {
        let frame = read_frame(connection).await;
        match frame.kind {
            SETTINGS if frame.flags & ACK == 0 => {
                for setting in frame.payload.chunks_exact(6) {
                    let id = u16::from_be_bytes([setting[0], setting[1]]);
                    let value =
                        u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]);
                    if id == SETTINGS_MAX_CONCURRENT_STREAMS {
                        self.max_streams = Some(value);
                    }
                }
                connection
                    .write_all(&encode(SETTINGS, ACK, 0, &[]))
                    .await
                    .unwrap();
            }
            HEADERS => {
                // `:status 200` is HPACK's static entry 8, sent indexed.
                assert_eq!(
                    frame.payload.first(),
                    Some(&0x88),
                    "stream {}",
                    frame.stream
                );
                self.ok.insert(frame.stream);
                if frame.flags & END_STREAM != 0 {
                    self.ended.insert(frame.stream);
                }
            }
            DATA => {
                self.body
                    .entry(frame.stream)
                    .or_default()
                    .extend(&frame.payload);
                if frame.flags & END_STREAM != 0 {
                    self.ended.insert(frame.stream);
                }
            }
            RST_STREAM => {
                let code = u32::from_be_bytes(frame.payload[..4].try_into().unwrap());
                assert_eq!(code, REFUSED_STREAM, "stream {} reset", frame.stream);
                self.refused.insert(frame.stream);
            }
            GOAWAY => panic!("the server closed the connection: {:?}", frame.payload),
            _ => {}
        }
    }

    async fn until(&mut self, connection: &mut TcpStream, done: impl Fn(&Seen) -> bool) {
        while !done(self) {
            self.next(connection).await;
        }
    }
}

fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    encode(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

#[tokio::test]
async fn streams_beyond_the_limit_are_refused_and_the_others_served() {
    let (addr, _stop) = start(MAX_STREAMS).await;
    let mut connection = TcpStream::connect(addr).await.unwrap();
    // Preface; responses get no window until we say so, so admitted streams stay open.
    let mut settings = SETTINGS_INITIAL_WINDOW_SIZE.to_be_bytes().to_vec();
    settings.extend(0u32.to_be_bytes());
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(encode(SETTINGS, 0, 0, &settings));
    connection.write_all(&hello).await.unwrap();

    let opened = 2 * MAX_STREAMS + 2;
    let ids: Vec<u32> = (0..opened).map(|n| 2 * n + 1).collect();
    let block = get_headers(&path());
    let mut requests = Vec::new();
    for &id in &ids {
        requests.extend(encode(HEADERS, END_HEADERS | END_STREAM, id, &block));
    }
    connection.write_all(&requests).await.unwrap();

    let mut seen = Seen::default();
    seen.until(&mut connection, |seen| {
        seen.ok.len() + seen.refused.len() == ids.len()
    })
    .await;
    assert_eq!(
        seen.max_streams,
        Some(MAX_STREAMS),
        "advertised in SETTINGS"
    );
    let admitted: Vec<u32> = ids[..MAX_STREAMS as usize].to_vec();
    assert_eq!(seen.ok.iter().copied().collect::<Vec<_>>(), admitted);
    assert_eq!(
        seen.refused.iter().copied().collect::<Vec<_>>(),
        ids[MAX_STREAMS as usize..].to_vec()
    );
    println!(
        "h2 limit {MAX_STREAMS}: {} of {opened} streams opened at once served, {} refused",
        seen.ok.len(),
        seen.refused.len()
    );

    // Open the windows: every admitted stream is served in full.
    let mut updates = window_update(0, 1 << 20);
    for &id in &admitted {
        updates.extend(window_update(id, 1 << 20));
    }
    connection.write_all(&updates).await.unwrap();
    seen.until(&mut connection, |seen| {
        admitted.iter().all(|id| seen.ended.contains(id))
    })
    .await;
    for id in &admitted {
        assert_eq!(seen.body[id], pattern(0, SIZE), "stream {id}");
    }

    // Slots are free again: a new stream on the same connection is served.
    let next = ids.last().unwrap() + 2;
    let mut request = encode(HEADERS, END_HEADERS | END_STREAM, next, &block);
    request.extend(window_update(next, 1 << 20));
    connection.write_all(&request).await.unwrap();
    seen.until(&mut connection, |seen| seen.ended.contains(&next))
        .await;
    assert!(seen.ok.contains(&next));
    assert_eq!(seen.body[&next], pattern(0, SIZE));
}
