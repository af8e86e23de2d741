//! A QUIC server shutting down drains: a chunk whose `getFile` is still in progress at
//! Telegram (the emulator slowed down) is delivered whole, new connections are refused
//! meanwhile, and `shutdown` returns once the stream is done.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use common::{MIB, bounded, call, connect, hello_for, serve_quic};
use tgcdn_core::app::download_path;
use tgcdn_core::fetch::FetchConfig;
use tgcdn_core::resolve::ResolveConfig;
use tgcdn_core::store::Store;
use tgcdn_core::telegram::{BotClient, BotConfig, SledSession};
use tgcdn_shared::FileRef;
use tgcdn_shared::wire::{ChunkClass, ChunkRequest, Request, Response};
use tgemu::{Content, Emulator, Latency, Scope};

const TOKEN: &str = "123456:test-token";
const SECRET: &[u8] = b"cluster secret of the drain test";

#[tokio::test]
async fn shutdown_waits_for_chunks_in_progress_and_refuses_new_edges() {
    bounded(async {
        let emu = Emulator::builder()
            .dcs(&[1, 2, 4])
            .home_dc(2)
            .start()
            .await
            .unwrap();
        let world = emu.world();
        let channel = world.create_channel("storage");
        let bot = world.register_bot(TOKEN, "cdn_bot");
        world.add_channel_member(channel.channel_id, bot.user_id, true);
        let size = MIB + 99;
        let doc = world.add_document(Content::pseudo(size), "slow.mkv", "video/x-matroska", 4);
        let msg_id = world.post_document(channel.channel_id, doc.id, "");
        let file = FileRef {
            chat_id: channel.bot_api_id(),
            msg_id,
        };

        let store = Store::temporary().unwrap();
        let key = emu.provision_auth_key();
        let session = Arc::new(SledSession::open(store.sessions_tree().clone(), 123456).unwrap());
        for (dc, addr) in emu.dc_options() {
            let SocketAddr::V4(v4) = addr else {
                panic!("ipv4 loopback expected")
            };
            session.provision_dc(dc, v4, Some(key)).await.unwrap();
        }
        let config = BotConfig {
            token: TOKEN.into(),
            api_id: 1,
            api_hash: "hash".into(),
            connections: 2,
        };
        let client = BotClient::with_session(session, &config);
        client
            .sign_in_if_needed(Instant::now() + Duration::from_secs(10))
            .await
            .unwrap();
        let path = download_path(
            store.clone(),
            &[Arc::new(client)],
            ResolveConfig::default(),
            FetchConfig::default(),
        );
        let server = serve_quic(&store, path, SECRET).await;
        let (addr, fingerprint) = (server.local_addr(), server.fingerprint().to_owned());

        let edge = connect(addr, &fingerprint).await.unwrap();
        let hello = hello_for(&edge, "edge-drain", SECRET);
        assert!(matches!(
            call(&edge, &hello).await.unwrap().0,
            Response::Welcome(_)
        ));
        assert!(matches!(
            call(&edge, &Request::Meta(file)).await.unwrap().0,
            Response::Meta(_)
        ));

        // Every answer from the file's DC now takes 1.5 s.
        emu.faults()
            .set_latency(Scope::Dc(4), Latency::Fixed(Duration::from_millis(1500)));
        let getfiles = emu.counters().requests_for("upload.getFile");
        let request = Request::Chunk(ChunkRequest {
            file,
            index: 0,
            class: ChunkClass::Demand,
        });
        let pending = {
            let edge = edge.clone();
            tokio::spawn(async move { call(&edge, &request).await })
        };
        // The chunk is in progress once its getFile reached Telegram.
        let wait_in_flight = async {
            while emu.counters().requests_for("upload.getFile") == getfiles {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        bounded(wait_in_flight).await;
        assert!(server.streams_in_flight() >= 1);

        // Draining starts in the shutdown's first poll; poll it once here so the refusal
        // below cannot race the spawned task's start.
        let mut shutdown = Box::pin(server.shutdown(Duration::from_secs(10)));
        let first_poll = std::future::poll_fn(|cx| Poll::Ready(shutdown.as_mut().poll(cx))).await;
        assert!(
            first_poll.is_pending(),
            "shutdown did not wait for the chunk"
        );
        let shutdown = tokio::spawn(shutdown);
        assert!(
            connect(addr, &fingerprint).await.is_err(),
            "a draining server accepted a new edge"
        );
        assert!(
            !shutdown.is_finished(),
            "shutdown did not wait for the chunk"
        );

        let (response, payload) = pending.await.unwrap().expect("the chunk survives shutdown");
        assert!(matches!(response, Response::Chunk(h) if u64::from(h.len) == MIB));
        assert!(payload[..] == emu.content_slice(doc.id, 0, MIB as usize)[..]);
        bounded(shutdown).await.unwrap();
    })
    .await;
}
