//! Codec tests: round trips, the incremental reader over an in-memory stream, hostile
//! input (truncation, oversized prefixes, random bytes, unknown tags) and the Hello proof.

use proptest::prelude::*;

use super::*;
use crate::FileRef;

const FILE: FileRef = FileRef {
    chat_id: -1001234567890,
    msg_id: 42,
};

fn sample_requests() -> Vec<Request> {
    vec![
        Request::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            edge_id: "fra-1".into(),
            region: "eu-central".into(),
            public_base_url: "https://fra.cdn.example".into(),
            auth_proof: [7; 32],
        }),
        Request::Heartbeat(Heartbeat {
            in_flight: 12,
            open_connections: 40,
            cache_bytes: 3 << 30,
            cache_capacity_bytes: 4 << 30,
            cache_hit_ratio_permille: 873,
            bytes_served_total: u64::MAX,
            uptime_secs: 86_400,
        }),
        Request::Meta(FILE),
        Request::Chunk(ChunkRequest {
            file: FILE,
            index: 1999,
            class: ChunkClass::ReadAhead,
        }),
        Request::Addon(AddonRequest {
            path: "/catalog/movie/top.json".into(),
            query: "skip=100".into(),
            base_url: "https://fra.cdn.example".into(),
        }),
        Request::MetaChunk(ChunkRequest {
            file: FILE,
            index: 0,
            class: ChunkClass::Demand,
        }),
    ]
}

fn sample_responses() -> Vec<Response> {
    vec![
        Response::Welcome(Welcome {
            core_version: "0.1.0".into(),
            heartbeat_interval_secs: 10,
            download_connections: 8,
        }),
        Response::Ack,
        Response::Meta(FileMeta {
            size: 1_500_000_000,
            mime: "video/x-matroska".into(),
            name: "Film (2024) – 1080p.mkv".into(),
            unique_id: "AgADqQUAAuQ".into(),
            date: 1_700_000_000,
            dc: 4,
        }),
        Response::Chunk(ChunkHeader {
            len: limits::MAX_CHUNK_PAYLOAD,
        }),
        Response::Addon(AddonHeader {
            len: 1234,
            max_age_secs: 300,
            stale_revalidate_secs: 3600,
            stale_error_secs: 86_400,
        }),
        Response::Error(WireError::NotFound),
        Response::Error(WireError::Revoked),
        Response::Error(WireError::FloodWait { secs: 31 }),
        Response::Error(WireError::Unavailable),
        Response::Error(WireError::bad_request("chunk index past end of file")),
        Response::Error(WireError::Unauthorized),
        Response::Error(WireError::VersionMismatch { supported: 1 }),
        Response::Error(WireError::Internal),
        Response::Error(WireError::AddonDisabled),
    ]
}

fn request_frame(req: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    encode_request(req, &mut out).unwrap();
    out
}

fn response_frame(resp: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    encode_response(resp, &mut out).unwrap();
    out
}

/// A frame with an arbitrary body, bypassing the encoder's checks.
fn raw_frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

#[test]
fn every_request_round_trips() {
    for req in sample_requests() {
        let frame = request_frame(&req);
        assert_eq!(frame_len(&frame), Ok(Some(frame.len())));
        assert_eq!(decode_request(&frame), Ok(Some((req, frame.len()))));
    }
}

#[test]
fn every_response_round_trips() {
    for resp in sample_responses() {
        let frame = response_frame(&resp);
        assert_eq!(frame_len(&frame), Ok(Some(frame.len())));
        assert_eq!(decode_response(&frame), Ok(Some((resp, frame.len()))));
    }
}

/// Pins the byte layout: a change here is a protocol change and needs a new ALPN.
#[test]
fn chunk_request_has_the_documented_layout() {
    let file = FileRef {
        chat_id: -100,
        msg_id: 7,
    };
    let req = Request::Chunk(ChunkRequest {
        file,
        index: 3,
        class: ChunkClass::ReadAhead,
    });
    // len=6 LE | tag 3 | zigzag varint(-100)=199 | zigzag(7)=14 | varint(3) | class 1
    assert_eq!(
        request_frame(&req),
        [6, 0, 0, 0, 3, 0xC7, 0x01, 0x0E, 0x03, 0x01]
    );
    // Protocol 4: the same fields under the MetaChunk tag, demand = 0.
    let both = Request::MetaChunk(ChunkRequest {
        file,
        index: 3,
        class: ChunkClass::Demand,
    });
    assert_eq!(
        request_frame(&both),
        [6, 0, 0, 0, 5, 0xC7, 0x01, 0x0E, 0x03, 0x00]
    );
    // A version 3 chunk request (no class) no longer decodes.
    assert_eq!(
        decode_request(&raw_frame(&[3, 0xC7, 0x01, 0x0E, 0x03])),
        Err(FrameError::Truncated)
    );
}

/// Pins the version 4 Welcome: the download connection count after the heartbeat interval.
#[test]
fn welcome_has_the_documented_layout() {
    let resp = Response::Welcome(Welcome {
        core_version: "1".into(),
        heartbeat_interval_secs: 10,
        download_connections: 300,
    });
    // len=6 LE | tag 0 | len 1 "1" | varint(10) | varint(300)=[0xAC, 0x02]
    assert_eq!(
        response_frame(&resp),
        [6, 0, 0, 0, 0, 1, b'1', 10, 0xAC, 0x02]
    );
}

/// Pins the version 2 addon header: four varints after the tag (len, max-age,
/// stale-while-revalidate, stale-if-error).
#[test]
fn addon_header_has_the_documented_layout() {
    let resp = Response::Addon(AddonHeader {
        len: 5,
        max_age_secs: 300,
        stale_revalidate_secs: 1,
        stale_error_secs: 0,
    });
    // len=6 LE | tag 4 | varint(5) | varint(300)=[0xAC, 0x02] | varint(1) | varint(0)
    assert_eq!(response_frame(&resp), [6, 0, 0, 0, 4, 5, 0xAC, 0x02, 1, 0]);
    // A version 1 addon header (the length alone) no longer decodes.
    assert_eq!(
        decode_response(&raw_frame(&[4, 5])),
        Err(FrameError::Truncated)
    );
}

/// Pins the version 3 push layout: a push is a tagged frame like the others.
#[test]
fn pushes_round_trip_and_have_the_documented_layout() {
    let file = FileRef {
        chat_id: -100,
        msg_id: 7,
    };
    let mut frame = Vec::new();
    encode_push(&Push::Revoked(file), &mut frame).unwrap();
    // len=4 LE | tag 0 | zigzag varint(-100)=199 | zigzag(7)=14
    assert_eq!(frame, [4, 0, 0, 0, 0, 0xC7, 0x01, 0x0E]);
    assert_eq!(
        decode_push(&frame),
        Ok(Some((Push::Revoked(file), frame.len())))
    );
    let mut forget = Vec::new();
    encode_push(&Push::ForgetAll, &mut forget).unwrap();
    assert_eq!(decode_push(&forget), Ok(Some((Push::ForgetAll, 5))));
    assert_eq!(
        decode_push(&raw_frame(&[0, 0xC7])),
        Err(FrameError::Truncated)
    );
    assert_eq!(decode_push(&frame[..6]), Ok(None));
}

/// Pins the version 4 pushes: unrevocations and the revocation list in bounded parts.
#[test]
fn revocation_lists_round_trip_within_their_bound() {
    let file = FileRef {
        chat_id: -100,
        msg_id: 7,
    };
    let mut frame = Vec::new();
    encode_push(&Push::Unrevoked(file), &mut frame).unwrap();
    assert_eq!(frame, [4, 0, 0, 0, 2, 0xC7, 0x01, 0x0E]);
    // The largest part, of the widest file references, fits one frame.
    let widest = FileRef {
        chat_id: i64::MIN,
        msg_id: i32::MIN,
    };
    let full = Push::RevokedList {
        files: vec![widest; limits::MAX_REVOKED_PER_PUSH],
        last: true,
    };
    let mut frame = Vec::new();
    encode_push(&full, &mut frame).unwrap();
    assert!(frame.len() <= LEN_PREFIX + MAX_FRAME_LEN as usize);
    assert_eq!(decode_push(&frame), Ok(Some((full, frame.len()))));
    let empty = Push::RevokedList {
        files: Vec::new(),
        last: true,
    };
    let mut frame = Vec::new();
    encode_push(&empty, &mut frame).unwrap();
    assert_eq!(frame, [3, 0, 0, 0, 3, 0, 1]);
    assert_eq!(decode_push(&frame), Ok(Some((empty, frame.len()))));
    // One file over the bound is refused on both sides.
    let over = Push::RevokedList {
        files: vec![file; limits::MAX_REVOKED_PER_PUSH + 1],
        last: false,
    };
    let mut frame = Vec::new();
    assert!(matches!(
        encode_push(&over, &mut frame),
        Err(FrameError::FieldTooLong { field: "files", .. })
    ));
    assert!(frame.is_empty());
    let mut body = vec![3u8];
    // postcard: varint length 2049 = 0x81 0x10, then the files, then `last`.
    body.extend_from_slice(&[0x81, 0x10]);
    for _ in 0..=limits::MAX_REVOKED_PER_PUSH {
        body.extend_from_slice(&[0xC7, 0x01, 0x0E]);
    }
    body.push(0);
    assert!(matches!(
        decode_push(&raw_frame(&body)),
        Err(FrameError::FieldTooLong { field: "files", .. })
    ));
    assert_eq!(
        decode_push(&raw_frame(&[4])),
        Err(FrameError::UnknownMessage {
            direction: "push",
            tag: 4
        })
    );
    assert_eq!(ALPN, b"tgcdn/4");
    assert_eq!(PROTOCOL_VERSION, 4);
}

/// Guards the hand-kept variant counts: each sample's tag is below them, every tag below
/// them is sampled, and the count itself is unknown.
#[test]
fn variant_counts_match_the_enums() {
    use super::message::{REQUEST_KINDS, RESPONSE_KINDS};
    let req_tags: std::collections::BTreeSet<u8> = sample_requests()
        .iter()
        .map(|r| request_frame(r)[LEN_PREFIX])
        .collect();
    assert_eq!(req_tags, (0..REQUEST_KINDS as u8).collect());
    let resp_tags: std::collections::BTreeSet<u8> = sample_responses()
        .iter()
        .map(|r| response_frame(r)[LEN_PREFIX])
        .collect();
    assert_eq!(resp_tags, (0..RESPONSE_KINDS as u8).collect());
    assert!(matches!(
        decode_request(&raw_frame(&[REQUEST_KINDS as u8])),
        Err(FrameError::UnknownMessage { .. })
    ));
    assert!(matches!(
        decode_response(&raw_frame(&[RESPONSE_KINDS as u8])),
        Err(FrameError::UnknownMessage { .. })
    ));
}

/// Every field at its limit still fits one frame, so a valid message never fails to encode.
#[test]
fn largest_valid_messages_fit_in_a_frame() {
    let s = |n: usize| "\u{10FFFF}".repeat(n / 4) + &"x".repeat(n % 4);
    let requests = [
        Request::Hello(Hello {
            protocol_version: u16::MAX,
            edge_id: s(limits::MAX_NAME_ID),
            region: s(limits::MAX_NAME_ID),
            public_base_url: s(limits::MAX_URL),
            auth_proof: [0xFF; 32],
        }),
        Request::Addon(AddonRequest {
            path: s(limits::MAX_PATH),
            query: s(limits::MAX_QUERY),
            base_url: s(limits::MAX_URL),
        }),
    ];
    for req in requests {
        let frame = request_frame(&req);
        assert!(frame.len() <= LEN_PREFIX + MAX_FRAME_LEN as usize);
        assert_eq!(decode_request(&frame), Ok(Some((req, frame.len()))));
    }
    let responses = [
        Response::Welcome(Welcome {
            core_version: s(limits::MAX_VERSION),
            heartbeat_interval_secs: u32::MAX,
            download_connections: u32::MAX,
        }),
        Response::Meta(FileMeta {
            size: u64::MAX,
            mime: s(limits::MAX_MIME),
            name: s(limits::MAX_FILE_NAME),
            unique_id: s(limits::MAX_UNIQUE_ID),
            date: u64::MAX,
            dc: u8::MAX,
        }),
        Response::Addon(AddonHeader {
            len: limits::MAX_ADDON_PAYLOAD,
            max_age_secs: u32::MAX,
            stale_revalidate_secs: u32::MAX,
            stale_error_secs: u32::MAX,
        }),
        Response::Error(WireError::BadRequest(s(limits::MAX_ERROR_MESSAGE))),
    ];
    for resp in responses {
        let frame = response_frame(&resp);
        assert_eq!(decode_response(&frame), Ok(Some((resp, frame.len()))));
    }
}

#[test]
fn encoding_appends_and_leaves_buffer_alone_on_error() {
    let mut out = vec![0xAA];
    encode_response(&Response::Ack, &mut out).unwrap();
    assert_eq!(out, [0xAA, 1, 0, 0, 0, 1]);

    let too_long = Request::Addon(AddonRequest {
        path: "x".repeat(limits::MAX_PATH + 1),
        query: String::new(),
        base_url: String::new(),
    });
    let before = out.clone();
    assert_eq!(
        encode_request(&too_long, &mut out),
        Err(FrameError::FieldTooLong {
            field: "path",
            len: limits::MAX_PATH + 1,
            max: limits::MAX_PATH
        })
    );
    assert_eq!(out, before);
}

#[test]
fn frames_decode_back_to_back_from_one_buffer() {
    let mut buf = Vec::new();
    for req in sample_requests() {
        encode_request(&req, &mut buf).unwrap();
    }
    let mut rest = &buf[..];
    for want in sample_requests() {
        let (got, used) = decode_request(rest).unwrap().unwrap();
        assert_eq!(got, want);
        rest = &rest[used..];
    }
    assert!(rest.is_empty());
}

/// Plays the edge's side of a chunk stream: accumulate bytes as they arrive, decode the
/// header once complete, then take exactly `payload_len` bytes.
fn read_response_stream(pieces: &[&[u8]]) -> (Response, Vec<u8>) {
    let mut buf = Vec::new();
    let mut header = None;
    for piece in pieces {
        buf.extend_from_slice(piece);
        if header.is_none()
            && let Some((resp, used)) = decode_response(&buf).unwrap()
        {
            buf.drain(..used);
            header = Some(resp);
        }
    }
    let resp = header.expect("stream ended before a full response frame");
    let want = resp.payload_len().unwrap_or(0) as usize;
    assert_eq!(buf.len(), want, "payload length differs from header");
    (resp, buf)
}

fn chunk_stream(payload: &[u8]) -> (Response, Vec<u8>) {
    let resp = Response::Chunk(ChunkHeader {
        len: payload.len() as u32,
    });
    let mut stream = response_frame(&resp);
    stream.extend_from_slice(payload);
    (resp, stream)
}

#[test]
fn stream_pair_one_byte_at_a_time() {
    let payload: Vec<u8> = (0..5000u32).map(|i| (i * 31) as u8).collect();
    let (resp, stream) = chunk_stream(&payload);
    let pieces: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(read_response_stream(&pieces), (resp, payload));
}

#[test]
fn every_strict_prefix_needs_more_bytes() {
    for frame in sample_requests().iter().map(request_frame) {
        for cut in 0..frame.len() {
            assert_eq!(decode_request(&frame[..cut]), Ok(None), "cut at {cut}");
        }
    }
    for frame in sample_responses().iter().map(response_frame) {
        for cut in 0..frame.len() {
            assert_eq!(decode_response(&frame[..cut]), Ok(None), "cut at {cut}");
        }
    }
}

/// A prefix that lies (claims a shorter body) must never yield a different message.
#[test]
fn every_shortened_body_is_an_error() {
    for frame in sample_requests().iter().map(request_frame) {
        let body = &frame[LEN_PREFIX..];
        for cut in 0..body.len() {
            assert!(decode_request(&raw_frame(&body[..cut])).is_err(), "{cut}");
        }
    }
    for frame in sample_responses().iter().map(response_frame) {
        let body = &frame[LEN_PREFIX..];
        for cut in 0..body.len() {
            assert!(decode_response(&raw_frame(&body[..cut])).is_err(), "{cut}");
        }
    }
}

#[test]
fn oversized_prefix_is_refused_from_the_prefix_alone() {
    let prefix = (MAX_FRAME_LEN + 1).to_le_bytes();
    let too_large = FrameError::TooLarge {
        len: u64::from(MAX_FRAME_LEN) + 1,
        max: MAX_FRAME_LEN,
    };
    assert_eq!(frame_len(&prefix), Err(too_large.clone()));
    assert_eq!(decode_request(&prefix), Err(too_large));
    assert_eq!(
        decode_response(&u32::MAX.to_le_bytes()),
        Err(FrameError::TooLarge {
            len: u64::from(u32::MAX),
            max: MAX_FRAME_LEN,
        })
    );
    // Exactly the maximum is a legal prefix: the reader is told to wait for the body.
    assert_eq!(
        frame_len(&MAX_FRAME_LEN.to_le_bytes()),
        Ok(Some(LEN_PREFIX + MAX_FRAME_LEN as usize))
    );
}

#[test]
fn unknown_tags_are_typed() {
    assert_eq!(
        decode_request(&raw_frame(&[6])),
        Err(FrameError::UnknownMessage {
            direction: "request",
            tag: 6
        })
    );
    // Multi-byte varint tag 300 = [0xAC, 0x02].
    assert_eq!(
        decode_response(&raw_frame(&[0xAC, 0x02])),
        Err(FrameError::UnknownMessage {
            direction: "response",
            tag: 300
        })
    );
    assert_eq!(decode_response(&raw_frame(&[])), Err(FrameError::Truncated));
}

/// postcard accepts over-long varints (0x81 0x00 = 1), so a frame's encoding is not unique.
/// Harmless (frames are never signed or compared as bytes), but pinned so nobody relies on
/// byte-equality of frames without noticing.
#[test]
fn overlong_varint_tags_still_decode() {
    assert_eq!(
        decode_response(&raw_frame(&[0x81, 0x00])),
        Ok(Some((Response::Ack, 6)))
    );
}

#[test]
fn trailing_bytes_are_refused() {
    let mut frame = response_frame(&Response::Ack);
    frame.push(0);
    frame[0] += 1;
    assert_eq!(
        decode_response(&frame),
        Err(FrameError::TrailingBytes { extra: 1 })
    );
}

#[test]
fn decoder_enforces_field_and_payload_limits() {
    // Bypass the encoder: serialise directly, then frame.
    let long_name = Response::Meta(FileMeta {
        size: 1,
        mime: "a/b".into(),
        name: "n".repeat(limits::MAX_FILE_NAME + 1),
        unique_id: "u".into(),
        date: 0,
        dc: 1,
    });
    let body = postcard::to_stdvec(&long_name).unwrap();
    assert!(matches!(
        decode_response(&raw_frame(&body)),
        Err(FrameError::FieldTooLong { field: "name", .. })
    ));

    let huge_chunk = Response::Chunk(ChunkHeader {
        len: limits::MAX_CHUNK_PAYLOAD + 1,
    });
    let body = postcard::to_stdvec(&huge_chunk).unwrap();
    assert!(matches!(
        decode_response(&raw_frame(&body)),
        Err(FrameError::PayloadTooLarge { kind: "chunk", .. })
    ));
    assert!(encode_response(&huge_chunk, &mut Vec::new()).is_err());
}

#[test]
fn invalid_utf8_is_malformed_not_a_panic() {
    // Addon request (tag 4), path of length 1 holding 0xFF.
    let frame = raw_frame(&[4, 1, 0xFF, 0, 0]);
    assert!(matches!(
        decode_request(&frame),
        Err(FrameError::Malformed(_))
    ));
}

#[test]
fn wire_errors_map_to_http_once() {
    let cases = [
        (WireError::NotFound, 404, false, None),
        (WireError::Revoked, 410, false, None),
        (WireError::FloodWait { secs: 9 }, 503, true, Some(9)),
        (WireError::Unavailable, 502, true, None),
        (WireError::bad_request("x"), 400, false, None),
        (WireError::Unauthorized, 502, false, None),
        (
            WireError::VersionMismatch { supported: 1 },
            502,
            false,
            None,
        ),
        (WireError::Internal, 500, false, None),
        (WireError::AddonDisabled, 404, false, None),
    ];
    for (err, status, retryable, retry_after) in cases {
        assert_eq!(err.http_status(), status, "{err}");
        assert_eq!(err.is_retryable(), retryable, "{err}");
        assert_eq!(err.retry_after_secs(), retry_after, "{err}");
    }
}

#[test]
fn bad_request_text_is_cut_on_a_char_boundary() {
    let long = "é".repeat(limits::MAX_ERROR_MESSAGE); // 2 bytes each
    let WireError::BadRequest(msg) = WireError::bad_request(long) else {
        unreachable!()
    };
    assert!(msg.len() <= limits::MAX_ERROR_MESSAGE);
    assert!(msg.chars().all(|c| c == 'é'));
    encode_response(
        &Response::Error(WireError::BadRequest(msg)),
        &mut Vec::new(),
    )
    .unwrap();
}

#[test]
fn hello_version_check() {
    let Request::Hello(mut hello) = sample_requests().remove(0) else {
        unreachable!()
    };
    assert_eq!(hello.check_version(), Ok(()));
    hello.protocol_version = 1;
    assert_eq!(
        hello.check_version(),
        Err(WireError::VersionMismatch {
            supported: PROTOCOL_VERSION
        })
    );
}

#[test]
fn hello_proof_binds_secret_edge_and_connection() {
    let secret = b"cluster secret of at least 32 bytes!";
    let binding = [0x5A; EXPORTER_LEN];
    let proof = hello_proof(secret, "fra-1", &binding);
    assert!(verify_hello_proof(secret, "fra-1", &binding, &proof));
    assert!(!verify_hello_proof(
        b"another secret",
        "fra-1",
        &binding,
        &proof
    ));
    assert!(!verify_hello_proof(secret, "fra-2", &binding, &proof));
    assert!(!verify_hello_proof(
        secret,
        "fra-1",
        &[0x5B; EXPORTER_LEN],
        &proof
    ));
    let mut flipped = proof;
    flipped[31] ^= 1;
    assert!(!verify_hello_proof(secret, "fra-1", &binding, &flipped));
    // Length prefixes keep the split between edge id and binding unambiguous.
    assert_ne!(
        hello_proof(secret, "ab", b"c"),
        hello_proof(secret, "a", b"bc")
    );
    // Empty secrets are weak but must not panic.
    let _ = hello_proof(b"", "", b"");
}

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..40).prop_map(move |chars| {
        let mut s: String = chars.into_iter().collect();
        while s.len() > max {
            s.pop();
        }
        s
    })
}

fn file_ref() -> impl Strategy<Value = FileRef> {
    (any::<i64>(), any::<i32>()).prop_map(|(chat_id, msg_id)| FileRef { chat_id, msg_id })
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (
            any::<u16>(),
            text(limits::MAX_NAME_ID),
            text(limits::MAX_NAME_ID),
            text(limits::MAX_URL),
            any::<[u8; 32]>()
        )
            .prop_map(|(v, e, r, u, p)| Request::Hello(Hello {
                protocol_version: v,
                edge_id: e,
                region: r,
                public_base_url: u,
                auth_proof: p,
            })),
        (
            any::<(u32, u32, u64, u64)>(),
            any::<u16>(),
            any::<(u64, u64)>()
        )
            .prop_map(
                |((i, o, c, cap), h, (b, up))| Request::Heartbeat(Heartbeat {
                    in_flight: i,
                    open_connections: o,
                    cache_bytes: c,
                    cache_capacity_bytes: cap,
                    cache_hit_ratio_permille: h,
                    bytes_served_total: b,
                    uptime_secs: up,
                })
            ),
        file_ref().prop_map(Request::Meta),
        (file_ref(), any::<u64>(), any::<bool>()).prop_map(|(file, index, ahead)| {
            Request::Chunk(ChunkRequest {
                file,
                index,
                class: if ahead {
                    ChunkClass::ReadAhead
                } else {
                    ChunkClass::Demand
                },
            })
        }),
        (file_ref(), any::<u64>()).prop_map(|(file, index)| Request::MetaChunk(ChunkRequest {
            file,
            index,
            class: ChunkClass::Demand,
        })),
        (
            text(limits::MAX_PATH),
            text(limits::MAX_QUERY),
            text(limits::MAX_URL)
        )
            .prop_map(|(path, query, base_url)| Request::Addon(AddonRequest {
                path,
                query,
                base_url
            })),
    ]
}

fn wire_error() -> impl Strategy<Value = WireError> {
    prop_oneof![
        Just(WireError::NotFound),
        Just(WireError::Revoked),
        any::<u32>().prop_map(|secs| WireError::FloodWait { secs }),
        Just(WireError::Unavailable),
        text(limits::MAX_ERROR_MESSAGE).prop_map(WireError::BadRequest),
        Just(WireError::Unauthorized),
        any::<u16>().prop_map(|supported| WireError::VersionMismatch { supported }),
        Just(WireError::Internal),
        Just(WireError::AddonDisabled),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        (text(limits::MAX_VERSION), any::<u32>(), any::<u32>()).prop_map(|(v, h, c)| {
            Response::Welcome(Welcome {
                core_version: v,
                heartbeat_interval_secs: h,
                download_connections: c,
            })
        }),
        Just(Response::Ack),
        (
            any::<u64>(),
            text(limits::MAX_MIME),
            text(limits::MAX_FILE_NAME),
            text(limits::MAX_UNIQUE_ID),
            any::<u64>(),
            any::<u8>()
        )
            .prop_map(
                |(size, mime, name, unique_id, date, dc)| Response::Meta(FileMeta {
                    size,
                    mime,
                    name,
                    unique_id,
                    date,
                    dc
                })
            ),
        (0..=limits::MAX_CHUNK_PAYLOAD).prop_map(|len| Response::Chunk(ChunkHeader { len })),
        (0..=limits::MAX_ADDON_PAYLOAD, any::<(u32, u32, u32)>()).prop_map(
            |(len, (max_age_secs, stale_revalidate_secs, stale_error_secs))| {
                Response::Addon(AddonHeader {
                    len,
                    max_age_secs,
                    stale_revalidate_secs,
                    stale_error_secs,
                })
            }
        ),
        wire_error().prop_map(Response::Error),
    ]
}

proptest! {
    #[test]
    fn arbitrary_requests_round_trip(req in request()) {
        let frame = request_frame(&req);
        prop_assert_eq!(decode_request(&frame), Ok(Some((req, frame.len()))));
    }

    #[test]
    fn arbitrary_responses_round_trip(resp in response()) {
        let frame = response_frame(&resp);
        prop_assert_eq!(decode_response(&frame), Ok(Some((resp, frame.len()))));
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_request(&bytes);
        let _ = decode_response(&bytes);
        let _ = frame_len(&bytes);
    }

    /// Random bodies behind an honest prefix reach postcard and the validators.
    #[test]
    fn random_bodies_never_panic_and_reencode(
        body in proptest::collection::vec(any::<u8>(), 0..256)
    ) {
        let frame = raw_frame(&body);
        if let Ok(Some((req, used))) = decode_request(&frame) {
            prop_assert_eq!(used, frame.len());
            let again = request_frame(&req);
            prop_assert_eq!(decode_request(&again), Ok(Some((req, again.len()))));
        }
        if let Ok(Some((resp, used))) = decode_response(&frame) {
            prop_assert_eq!(used, frame.len());
            let again = response_frame(&resp);
            prop_assert_eq!(decode_response(&again), Ok(Some((resp, again.len()))));
        }
    }

    #[test]
    fn stream_pair_in_random_splits(
        payload in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let (resp, stream) = chunk_stream(&payload);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.extend([0, stream.len()]);
        points.sort_unstable();
        let pieces: Vec<&[u8]> = points.windows(2).map(|w| &stream[w[0]..w[1]]).collect();
        prop_assert_eq!(read_response_stream(&pieces), (resp, payload));
    }
}
