//! Demand before read-ahead at the core: the core against the DC emulator (`tests/tgemu`)
//! with the real grammers client, through the real QUIC server and a quinn client acting as
//! the edge, which marks each chunk request demand or read-ahead (protocol 4).
//!
//! The bot has one connection and a window of two parts, so one chunk downloads at a time.
//! While a read-ahead chunk holds it (the emulator's latency), six more read-ahead chunks
//! queue, then one demand chunk: the demand chunk must be the next to arrive, ahead of every
//! read-ahead chunk that queued before it. First come, first served would put it last but
//! for luck (one chance in seven). And `MetaChunk`: the meta, then the chunk, on one stream.

mod common;
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{MIB, call, connect, hello_for, serve_quic};
use support::bots::{BotSpec, signed_in, wait_for};
use tgcdn_core::app::download_path;
use tgcdn_core::fetch::{FetchConfig, Fetcher};
use tgcdn_core::resolve::ResolveConfig;
use tgcdn_core::store::Store;
use tgcdn_shared::FileRef;
use tgcdn_shared::wire::{self, ChunkClass, ChunkRequest, Request, Response};
use tgemu::{Content, Latency, Scope};

const SECRET: &[u8] = b"cluster secret of the priority test";
const READ_AHEAD: u64 = 6;

/// Opens a stream, sends one chunk request of `class` and reads the reply to its end;
/// returns the reply's chunk bytes.
async fn fetch_chunk(
    edge: &quinn::Connection,
    file: FileRef,
    index: u64,
    class: ChunkClass,
) -> Vec<u8> {
    let mut frame = Vec::new();
    let request = Request::Chunk(ChunkRequest { file, index, class });
    wire::encode_request(&request, &mut frame).unwrap();
    let (mut send, mut recv) = edge.open_bi().await.unwrap();
    send.write_all(&frame).await.unwrap();
    send.finish().unwrap();
    let all = recv.read_to_end(2 * MIB as usize).await.unwrap();
    let (response, consumed) = wire::decode_response(&all).unwrap().unwrap();
    assert!(
        matches!(response, Response::Chunk(header) if u64::from(header.len) == MIB),
        "chunk {index}: {response:?}"
    );
    all[consumed..].to_vec()
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
async fn a_demand_chunk_overtakes_queued_read_ahead() {
    support::bounded(async {
        let emu = support::bots::emulator_with(&[1, 2, 4]).await;
        let world = emu.world();
        let channel = world.create_channel("storage");
        let doc = world.add_document(Content::pseudo(12 * MIB), "film.mkv", "video/x-matroska", 2);
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
                attempt_timeout: Duration::from_secs(30),
                total_timeout: Duration::from_secs(50),
                // No read-ahead chunk may count as demand by waiting during this test.
                promote_after: Duration::from_secs(600),
                ..FetchConfig::default()
            },
        );
        let fetcher = Arc::clone(&path.fetcher);
        let server = serve_quic(&store, path, SECRET).await;
        let edge = connect(server.local_addr(), server.fingerprint())
            .await
            .unwrap();
        let hello = hello_for(&edge, "edge-priority", SECRET);
        let welcome = call(&edge, &hello).await.unwrap().0;
        assert!(
            matches!(welcome, Response::Welcome(ref w) if w.download_connections == 1),
            "{welcome:?}"
        );
        // Meta and the bot's file location are known before Telegram is slowed down.
        fetch_chunk(&edge, film, 11, ChunkClass::Demand).await;

        emu.faults()
            .set_latency(Scope::All, Latency::Fixed(Duration::from_millis(400)));
        let arrived = Arc::new(Mutex::new(Vec::new()));
        let mut streams = Vec::new();
        let mut request = |index: u64, class: ChunkClass| {
            let edge = edge.clone();
            let arrived = Arc::clone(&arrived);
            streams.push(tokio::spawn(async move {
                let bytes = fetch_chunk(&edge, film, index, class).await;
                arrived.lock().unwrap().push(index);
                (index, bytes)
            }));
        };
        request(0, ChunkClass::ReadAhead);
        wait_for(|| parts_in_flight(&fetcher) == 2).await;
        for index in 1..=READ_AHEAD {
            request(index, ChunkClass::ReadAhead);
        }
        wait_for(|| fetcher.waiting() == (0, READ_AHEAD as usize)).await;
        let demand = READ_AHEAD + 1;
        request(demand, ChunkClass::Demand);
        wait_for(|| fetcher.waiting().0 == 1 || arrived.lock().unwrap().len() > 1).await;

        for stream in streams {
            let (index, bytes) = stream.await.unwrap();
            let expected = emu.content_slice(doc.id, index * MIB, MIB as usize);
            assert!(bytes == expected, "chunk {index} differs");
        }
        emu.faults().clear();
        let order = arrived.lock().unwrap().clone();
        assert_eq!(order.len(), demand as usize + 1);
        assert_eq!(
            &order[..2],
            &[0, demand],
            "the demand chunk must follow the one in progress: {order:?}"
        );
        assert_eq!(fetcher.waiting(), (0, 0));
    })
    .await;
}

/// Protocol 4's other half: `MetaChunk` answers the meta and then the chunk on one stream,
/// and a chunk past the end after its meta is an error frame after the meta.
#[tokio::test]
async fn a_meta_chunk_is_the_meta_then_the_chunk_on_one_stream() {
    support::bounded(async {
        let emu = support::bots::emulator_with(&[1, 2, 4]).await;
        let world = emu.world();
        let channel = world.create_channel("storage");
        let size = 2 * MIB + 7;
        let doc = world.add_document(Content::pseudo(size), "clip.mp4", "video/mp4", 2);
        let clip = FileRef {
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
            FetchConfig::default(),
        );
        let server = serve_quic(&store, path, SECRET).await;
        let edge = connect(server.local_addr(), server.fingerprint())
            .await
            .unwrap();
        let hello = hello_for(&edge, "edge-meta-chunk", SECRET);
        assert!(matches!(
            call(&edge, &hello).await.unwrap().0,
            Response::Welcome(_)
        ));
        for (index, len) in [(2u64, Some(7u64)), (3, None)] {
            let mut frame = Vec::new();
            let request = Request::MetaChunk(ChunkRequest {
                file: clip,
                index,
                class: ChunkClass::Demand,
            });
            wire::encode_request(&request, &mut frame).unwrap();
            let (mut send, mut recv) = edge.open_bi().await.unwrap();
            send.write_all(&frame).await.unwrap();
            send.finish().unwrap();
            let all = recv.read_to_end(2 * MIB as usize).await.unwrap();
            let (meta, used) = wire::decode_response(&all).unwrap().unwrap();
            assert!(
                matches!(meta, Response::Meta(ref m) if m.size == size && m.name == "clip.mp4"),
                "{meta:?}"
            );
            let (second, more) = wire::decode_response(&all[used..]).unwrap().unwrap();
            let payload = &all[used + more..];
            match len {
                Some(len) => {
                    assert!(
                        matches!(second, Response::Chunk(h) if u64::from(h.len) == len),
                        "{second:?}"
                    );
                    let expected = emu.content_slice(doc.id, index * MIB, len as usize);
                    assert!(payload == &expected[..], "chunk {index} differs");
                }
                None => {
                    assert!(
                        matches!(second, Response::Error(wire::WireError::BadRequest(_))),
                        "{second:?}"
                    );
                    assert!(payload.is_empty());
                }
            }
        }
    })
    .await;
}
