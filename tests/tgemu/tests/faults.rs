//! Each injected fault, seen by a real grammers 0.11 client as the exact Telegram error,
//! and bad input closing only the offending connection.

mod common;

use std::time::{Duration, Instant};

use common::*;
use grammers_client::tl;
use grammers_mtsender::InvocationError;
use tgemu::{Content, Latency, Scope};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PART: i32 = 512 * 1024;

fn get_self() -> tl::functions::users::GetUsers {
    tl::functions::users::GetUsers {
        id: vec![tl::enums::InputUser::UserSelf],
    }
}

/// A bot that is an admin of a fresh channel holding one document on `dc`.
struct Setup {
    emu: tgemu::EmulatorHandle,
    bot: TestClient,
    bot_id: i64,
    channel: tgemu::ChannelInfo,
    doc: tgemu::DocumentInfo,
    post_id: i32,
}

async fn setup(size: u64, dc: i32) -> Setup {
    let emu = emulator().await;
    let world = emu.world();
    let bot_id = world.register_bot("42:token", "fault_bot").user_id;
    let channel = world.create_channel("c");
    world.add_channel_member(channel.channel_id, bot_id, true);
    let doc = world.add_document(
        Content::pseudo(size),
        "d.bin",
        "application/octet-stream",
        dc,
    );
    let post_id = world.post_document(channel.channel_id, doc.id, "");
    let bot = bot(&emu, "42:token").await;
    Setup {
        emu,
        bot,
        bot_id,
        channel,
        doc,
        post_id,
    }
}

impl Setup {
    async fn location(&self) -> tl::types::InputDocumentFileLocation {
        let msg = channel_message(&self.bot.client, self.channel, self.post_id)
            .await
            .expect("post");
        document_location(&msg).expect("document")
    }
}

#[tokio::test]
async fn flood_wait_names_the_seconds_and_code_420() {
    let s = setup(4096, 2).await;
    s.emu.faults().flood_wait(s.bot_id, 30);
    let result = within(s.bot.client.invoke(&get_self())).await;
    assert_eq!(rpc_error(result), (420, "FLOOD_WAIT_30".to_owned()));
    // 25 of the 30 s pass on the emulator's clock: what is left is counted down from there
    // (less whatever real time the requests took).
    s.emu.advance_clock(Duration::from_secs(25));
    let (code, message) = rpc_error(within(s.bot.client.invoke(&get_self())).await);
    let left: u32 = message
        .strip_prefix("FLOOD_WAIT_")
        .and_then(|secs| secs.parse().ok())
        .unwrap_or_else(|| panic!("not a flood wait: {message}"));
    assert_eq!(code, 420);
    assert!((1..=5).contains(&left), "{left} s left");
    s.emu.advance_clock(Duration::from_secs(6));
    within(s.bot.client.invoke(&get_self()))
        .await
        .expect("works once the wait is over");
}

#[tokio::test]
async fn expired_file_reference_then_refetch_works() {
    let s = setup(64 * 1024, 2).await;
    s.emu.faults().file_reference_ttl(Duration::from_secs(60));
    let stale = s.location().await;
    // An hour-long TTL would expire the same way: the emulator's clock jumps, nobody waits.
    s.emu.advance_clock(Duration::from_secs(61));
    let result = within(s.bot.client.invoke(&get_file(&stale, 0, PART))).await;
    assert_eq!(
        rpc_error(result),
        (400, "FILE_REFERENCE_EXPIRED".to_owned())
    );
    let fresh = s.location().await;
    let bytes = file_bytes(
        within(s.bot.client.invoke(&get_file(&fresh, 0, PART)))
            .await
            .expect("fresh"),
    );
    assert_eq!(bytes, s.emu.content_slice(s.doc.id, 0, 64 * 1024));
}

#[tokio::test]
async fn another_bots_file_reference_is_refused() {
    let s = setup(8192, 2).await;
    let location = s.location().await;
    s.emu.world().register_bot("7:other", "other");
    let other = bot(&s.emu, "7:other").await;
    let result = within(other.client.invoke(&get_file(&location, 0, 4096))).await;
    assert_eq!(
        rpc_error(result),
        (400, "FILE_REFERENCE_EXPIRED".to_owned())
    );
}

#[tokio::test]
async fn non_member_gets_channel_private() {
    let s = setup(4096, 2).await;
    s.emu
        .world()
        .remove_channel_member(s.channel.channel_id, s.bot_id);
    let result = channel_message(&s.bot.client, s.channel, s.post_id).await;
    assert_eq!(rpc_error(result), (400, "CHANNEL_PRIVATE".to_owned()));
}

#[tokio::test]
async fn unknown_token_is_access_token_invalid() {
    let emu = emulator().await;
    let c = client(&emu, emu.provision_auth_key());
    let result = within(c.client.bot_sign_in("999:nope", "hash")).await;
    assert_eq!(rpc_error(result), (400, "ACCESS_TOKEN_INVALID".to_owned()));
    assert_eq!(emu.counters().bot_sign_ins, 0);
}

#[tokio::test]
async fn unsigned_key_is_auth_key_unregistered() {
    let emu = emulator().await;
    let c = client(&emu, emu.provision_auth_key());
    let result = within(c.client.invoke(&get_self())).await;
    assert_eq!(rpc_error(result), (401, "AUTH_KEY_UNREGISTERED".to_owned()));
    assert!(
        !within(c.client.is_authorized())
            .await
            .expect("is_authorized answers")
    );
}

#[tokio::test]
async fn document_elsewhere_is_file_migrate() {
    let s = setup(4096, 4).await;
    let location = s.location().await;
    let result = within(s.bot.client.invoke(&get_file(&location, 0, 4096))).await;
    assert_eq!(rpc_error(result), (303, "FILE_MIGRATE_4".to_owned()));
}

#[tokio::test]
async fn get_file_part_rules() {
    let s = setup(3 * 1024 * 1024 - 4096, 2).await;
    let location = s.location().await;
    let cases = [
        (100, 4096, "OFFSET_INVALID"),
        (0, 1000, "LIMIT_INVALID"),
        (0, 12 * 1024, "LIMIT_INVALID"),
        (768 * 1024, PART, "LIMIT_INVALID"),
        (0, 2 * 1024 * 1024, "LIMIT_INVALID"),
        // Legal for Telegram, but grammers 0.11 would panic on the answer.
        (0, 1024 * 1024, "EMULATOR_ANSWER_TOO_BIG_FOR_GRAMMERS"),
    ];
    for (offset, limit, expected) in cases {
        let result = within(s.bot.client.invoke(&get_file(&location, offset, limit))).await;
        assert_eq!(
            rpc_error(result),
            (400, expected.to_owned()),
            "offset {offset} limit {limit}"
        );
    }
    // The last part is short; past the end is empty; the client is still healthy.
    let tail = file_bytes(
        within(
            s.bot
                .client
                .invoke(&get_file(&location, 3 * 1024 * 1024 - 8192, 8192)),
        )
        .await
        .expect("tail"),
    );
    assert_eq!(tail.len(), 4096);
    let past = within(
        s.bot
            .client
            .invoke(&get_file(&location, 4 * 1024 * 1024, 4096)),
    )
    .await;
    assert!(file_bytes(past.expect("past the end")).is_empty());
}

#[tokio::test]
async fn internal_error_rate_one_fails_every_call() {
    let s = setup(4096, 2).await;
    s.emu
        .faults()
        .internal_error_rate(Scope::Bot(s.bot_id), 1.0);
    for _ in 0..3 {
        let result = within(s.bot.client.invoke(&get_self())).await;
        assert_eq!(rpc_error(result), (500, "INTERNAL".to_owned()));
    }
    s.emu
        .faults()
        .internal_error_rate(Scope::Bot(s.bot_id), 0.0);
    within(s.bot.client.invoke(&get_self()))
        .await
        .expect("healthy again");
}

#[tokio::test]
async fn dropped_connection_fails_the_call_and_the_client_reconnects() {
    let s = setup(1024 * 1024, 2).await;
    let location = s.location().await;
    let before = s
        .emu
        .counters()
        .connections_by_dc
        .get(&2)
        .copied()
        .unwrap_or(0);
    s.emu
        .faults()
        .drop_connection_after_bytes(Scope::Dc(2), 100_000);
    let result = within(s.bot.client.invoke(&get_file(&location, 0, PART))).await;
    assert!(
        matches!(
            result,
            Err(InvocationError::Io(_)) | Err(InvocationError::Dropped(_))
        ),
        "expected a connection error, got {:?}",
        result.map(|_| ())
    );
    let bytes = within(async {
        // The pool reconnects on a later request; how many tries that takes depends on when
        // it notices the cut, so retry (with a short pause, not to spin) until `within` ends.
        loop {
            if let Ok(file) = s.bot.client.invoke(&get_file(&location, 0, PART)).await {
                return file_bytes(file);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(bytes, s.emu.content_slice(s.doc.id, 0, PART as usize));
    assert!(
        s.emu
            .counters()
            .connections_by_dc
            .get(&2)
            .copied()
            .unwrap_or(0)
            > before
    );
}

#[tokio::test]
async fn latency_is_added_per_request() {
    let s = setup(4096, 2).await;
    s.emu
        .faults()
        .set_latency(Scope::Dc(2), Latency::Fixed(Duration::from_millis(300)));
    let start = Instant::now();
    within(s.bot.client.invoke(&get_self()))
        .await
        .expect("answer");
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );

    // Four requests in flight on one connection take one latency, not four.
    s.emu.faults().set_latency(
        Scope::Bot(s.bot_id),
        Latency::Jitter {
            min: Duration::from_millis(200),
            max: Duration::from_millis(250),
        },
    );
    let start = Instant::now();
    let c = &s.bot.client;
    let req = get_self();
    let (a, b, d, e) = within(async {
        tokio::join!(
            c.invoke(&req),
            c.invoke(&req),
            c.invoke(&req),
            c.invoke(&req)
        )
    })
    .await;
    assert!(a.is_ok() && b.is_ok() && d.is_ok() && e.is_ok());
    assert!(start.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn bandwidth_cap_paces_and_bytes_are_counted() {
    let s = setup(2 * 1024 * 1024, 2).await;
    let location = s.location().await;
    s.emu.reset_counters();
    let rate = 2 * 1024 * 1024;
    s.emu.faults().set_bandwidth(Scope::Dc(2), rate);
    let start = Instant::now();
    let mut total = 0;
    for pair in 0..2 {
        let offset = pair * 2 * PART as i64;
        let (first, second) = (
            get_file(&location, offset, PART),
            get_file(&location, offset + PART as i64, PART),
        );
        let (a, b) = within(async {
            tokio::join!(s.bot.client.invoke(&first), s.bot.client.invoke(&second))
        })
        .await;
        total += file_bytes(a.expect("a")).len() + file_bytes(b.expect("b")).len();
    }
    assert_eq!(total, 2 * 1024 * 1024);
    // 2 MiB at 2 MiB/s, less the pacer's 50 ms of burst credit.
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
    let counters = s.emu.counters();
    assert!(counters.bytes_by_dc[&2] >= 2 * 1024 * 1024);
    assert!(counters.bytes_by_bot[&s.bot_id] >= 2 * 1024 * 1024);
    assert_eq!(counters.requests_for("upload.getFile"), 4);
    assert_eq!(counters.requests_by_bot[&s.bot_id], 4);
}

#[tokio::test]
async fn unimplemented_method_is_a_clear_error() {
    let s = setup(4096, 2).await;
    let result = within(s.bot.client.invoke(&tl::functions::help::GetSupport {})).await;
    assert_eq!(
        rpc_error(result),
        (400, "METHOD_NOT_IMPLEMENTED_BY_EMULATOR".to_owned())
    );
}

/// Sends raw bytes to a DC and expects the server to close that connection.
async fn expect_closed(addr: std::net::SocketAddr, bytes: &[u8]) {
    let mut stream = within(TcpStream::connect(addr)).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    stream.shutdown().await.ok();
    let mut buf = [0u8; 64];
    let n = within(stream.read(&mut buf)).await.unwrap_or(0);
    assert_eq!(n, 0, "the server answered garbage");
}

#[tokio::test]
async fn garbage_closes_only_that_connection() {
    let s = setup(4096, 2).await;
    let addr = s.emu.dc_addr(2);
    // Bad crc in a full-transport frame.
    let mut frame = vec![16, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9];
    expect_closed(addr, &frame).await;
    // A well-formed frame naming an unknown auth key.
    frame = vec![0u8; 8 + 8 + 16 + 32];
    let total = (frame.len() + 4) as u32;
    frame[0..4].copy_from_slice(&total.to_le_bytes());
    frame[8] = 0x55;
    let crc = crc32(&frame);
    frame.extend_from_slice(&crc.to_le_bytes());
    expect_closed(addr, &frame).await;
    // A known auth key id with a body that does not match its msg_key.
    let known = tgemu::crypto::key_id(&s.emu.provision_auth_key());
    frame = vec![0u8; 8 + 8 + 16 + 64];
    let total = (frame.len() + 4) as u32;
    frame[0..4].copy_from_slice(&total.to_le_bytes());
    frame[8..16].copy_from_slice(&known.to_le_bytes());
    frame[16..]
        .iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = i as u8);
    let crc = crc32(&frame);
    frame.extend_from_slice(&crc.to_le_bytes());
    expect_closed(addr, &frame).await;
    // A truncated intermediate frame, then EOF.
    expect_closed(addr, &[0xee, 0xee, 0xee, 0xee, 0x40, 0, 0, 0, 1, 2, 3]).await;
    // An absurd length.
    expect_closed(addr, &[0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]).await;

    // The existing client and a brand-new one still work.
    within(s.bot.client.invoke(&get_self()))
        .await
        .expect("old client fine");
    let fresh = bot(&s.emu, "42:token").await;
    within(fresh.client.invoke(&get_self()))
        .await
        .expect("new client fine");
}

fn crc32(bytes: &[u8]) -> u32 {
    // CRC-32/ISO-HDLC, bitwise: the test should not share the emulator's implementation.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test]
async fn dropping_the_handle_stops_the_listeners() {
    let emu = emulator().await;
    let addr = emu.dc_addr(2);
    let mut open = within(TcpStream::connect(addr))
        .await
        .expect("connect while running");
    drop(emu);
    // The open connection is closed and nothing accepts new ones.
    let mut buf = [0u8; 8];
    assert_eq!(within(open.read(&mut buf)).await.unwrap_or(0), 0);
    // The listener tasks were aborted with the handle; the socket closes once the runtime
    // has dropped them, which `within` bounds.
    within(async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
}
