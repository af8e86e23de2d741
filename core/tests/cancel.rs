//! An edge that gives up on a chunk stops costing Telegram work: the core against the DC
//! emulator (`tests/tgemu`) with the real grammers client, through the real QUIC server and
//! a real quinn client acting as the edge.
//!
//! The bot has one connection and a window of two parts, so while chunk 0's two parts are
//! held by the emulator's latency every later chunk waits for a slot. A stream for chunk 1 is
//! then stopped (as the edge's dropped fill does): its download is cancelled and its parts
//! never reach the emulator. Of two streams for chunk 2 one is stopped: the other still gets
//! the chunk, byte-exact, from the one download.

mod common;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{MIB, call, connect, hello_for, serve_quic};
use support::bots::{BotSpec, signed_in, wait_for};
use tgcdn_core::app::download_path;
use tgcdn_core::fetch::{FetchConfig, Fetcher};
use tgcdn_core::resolve::ResolveConfig;
use tgcdn_core::store::Store;
use tgcdn_shared::FileRef;
use tgcdn_shared::wire::{self, ChunkClass, ChunkRequest, Request, Response};
use tgemu::{Content, EmulatorHandle, Latency, Scope};

const SECRET: &[u8] = b"cluster secret of the cancellation test";
const GET_FILE: &str = "upload.getFile";

/// Opens a stream and sends one chunk request; the reply is left unread.
async fn request_chunk(
    edge: &quinn::Connection,
    file: FileRef,
    index: u64,
) -> (quinn::SendStream, quinn::RecvStream) {
    let mut frame = Vec::new();
    wire::encode_request(
        &Request::Chunk(ChunkRequest {
            file,
            index,
            class: ChunkClass::Demand,
        }),
        &mut frame,
    )
    .unwrap();
    let (mut send, recv) = edge.open_bi().await.unwrap();
    send.write_all(&frame).await.unwrap();
    send.finish().unwrap();
    (send, recv)
}

/// Reads a chunk reply to the end and checks it against the emulator's content.
async fn assert_chunk(
    emu: &EmulatorHandle,
    doc: &tgemu::DocumentInfo,
    mut recv: quinn::RecvStream,
    index: u64,
) {
    let all = recv.read_to_end(2 * MIB as usize).await.unwrap();
    let (response, consumed) = wire::decode_response(&all).unwrap().unwrap();
    assert!(
        matches!(response, Response::Chunk(header) if u64::from(header.len) == MIB),
        "chunk {index}: {response:?}"
    );
    let expected = emu.content_slice(doc.id, index * MIB, MIB as usize);
    assert!(all[consumed..] == expected[..], "chunk {index} differs");
}

fn parts_in_flight(fetcher: &Fetcher) -> usize {
    fetcher
        .pool()
        .report(Instant::now())
        .iter()
        .map(|bot| bot.load.in_flight)
        .sum()
}

#[tokio::test]
async fn a_stopped_chunk_stream_cancels_its_download_unless_another_waits() {
    support::bounded(async {
        let emu = support::bots::emulator_with(&[1, 2, 4]).await;
        let world = emu.world();
        let channel = world.create_channel("storage");
        let doc = world.add_document(Content::pseudo(4 * MIB), "film.mkv", "video/x-matroska", 2);
        let film = FileRef {
            chat_id: channel.bot_api_id(),
            msg_id: world.post_document(channel.channel_id, doc.id, ""),
        };
        let store = Store::temporary().unwrap();
        let channels = [channel];
        let (_, bot) = signed_in(&emu, &store, BotSpec::new(support::TOKEN, &channels)).await;
        let path = download_path(
            store.clone(),
            &[bot],
            ResolveConfig::default(),
            FetchConfig {
                // A chunk's two halves fill the one connection's window.
                parts_per_connection: 1,
                // Every chunk below must be a download of its own.
                cache_bytes: 0,
                // Far beyond the latency below: no attempt may time out and retry.
                attempt_timeout: Duration::from_secs(30),
                total_timeout: Duration::from_secs(40),
                ..FetchConfig::default()
            },
        );
        let fetcher = Arc::clone(&path.fetcher);
        let server = serve_quic(&store, path, SECRET).await;
        let edge = connect(server.local_addr(), server.fingerprint())
            .await
            .unwrap();
        let hello = hello_for(&edge, "edge-cancel", SECRET);
        assert!(matches!(
            call(&edge, &hello).await.unwrap().0,
            Response::Welcome(_)
        ));
        // Meta and the bot's file location are known before Telegram is slowed down.
        let (_, recv) = request_chunk(&edge, film, 3).await;
        assert_chunk(&emu, &doc, recv, 3).await;
        let before = emu.counters().requests_for(GET_FILE);

        // Long enough that everything below happens while chunk 0's parts are held.
        emu.faults()
            .set_latency(Scope::All, Latency::Fixed(Duration::from_secs(3)));
        let (_held, held) = request_chunk(&edge, film, 0).await;
        wait_for(|| parts_in_flight(&fetcher) == 2).await;
        let (_abandoned, abandoned) = request_chunk(&edge, film, 1).await;
        let (_left, left) = request_chunk(&edge, film, 2).await;
        let (_stays, stays) = request_chunk(&edge, film, 2).await;
        wait_for(|| {
            let counters = fetcher.counters();
            counters.downloads == 4 && counters.coalesced == 1
        })
        .await;
        // What the edge's cancelled fill does: drop the reply unread (STOP_SENDING).
        drop(abandoned);
        drop(left);
        wait_for(|| fetcher.counters().cancelled == 1).await;

        assert_chunk(&emu, &doc, held, 0).await;
        assert_chunk(&emu, &doc, stays, 2).await;
        emu.faults().clear();
        // Chunk 1's download is gone, so nothing can ask for its parts any more.
        assert_eq!(fetcher.counters().cancelled, 1, "chunk 2 was cancelled");
        assert_eq!(parts_in_flight(&fetcher), 0);
        assert_eq!(
            emu.counters().requests_for(GET_FILE) - before,
            4,
            "chunks 0 and 2 only: chunk 1's parts must not be requested"
        );
    })
    .await;
}
