//! The core's Telegram layer against the DC emulator (tests/tgemu), with the real grammers
//! 0.11 client: sign-in once and never again after a restart, media-DC downloads on every
//! connection, whole files through the `Fetcher`, and the failure paths the fetch layer routes
//! around (FLOOD_WAIT, a bot outside the storage channel, expired file references).
//! Every test runs under one overall timeout and every call has a deadline.
//! Locations come from the resolver, wired exactly as `main` does (`app::download_path`).
//! `emulator.rs` covers the QUIC path and the binary.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tgcdn_core::app::download_path;
use tgcdn_core::bots::select::Health;
use tgcdn_core::fetch::{FetchConfig, Fetcher};
use tgcdn_core::resolve::ResolveConfig;
use tgcdn_core::store::Store;
use tgcdn_core::telegram::BotClient;
use tgcdn_shared::FileRef;
use tgemu::{ChannelInfo, Content, EmulatorHandle};

use support::bots::{BotSpec, bot_config, deadline, emulator_with, provisioned, signed_in};
use support::bounded;

const CHUNK: u64 = 1024 * 1024;
const PART: u32 = 512 * 1024;

async fn emulator() -> EmulatorHandle {
    emulator_with(&[1, 2, 4]).await
}

/// A signed-in bot that is (or is not) a member of `channel`.
async fn signed_in_bot(
    emu: &EmulatorHandle,
    store: &Store,
    token: &str,
    channel: Option<ChannelInfo>,
    connections: usize,
) -> (tgemu::BotInfo, Arc<BotClient>) {
    let channels: Vec<ChannelInfo> = channel.into_iter().collect();
    let spec = BotSpec {
        connections,
        ..BotSpec::new(token, &channels)
    };
    signed_in(emu, store, spec).await
}

fn fetcher(store: &Store, clients: &[Arc<BotClient>]) -> Arc<Fetcher> {
    let config = FetchConfig {
        attempt_timeout: Duration::from_secs(10),
        total_timeout: Duration::from_secs(20),
        ..FetchConfig::default()
    };
    download_path(store.clone(), clients, ResolveConfig::default(), config).fetcher
}

async fn assert_chunk(
    emu: &EmulatorHandle,
    fetcher: &Arc<Fetcher>,
    file: FileRef,
    doc: tgemu::DocumentInfo,
    index: u64,
) {
    let bytes = fetcher
        .chunk(file, doc.size, index)
        .await
        .unwrap_or_else(|e| panic!("chunk {index}: {e}"));
    let expected = emu.content_slice(doc.id, index * CHUNK, CHUNK as usize);
    assert_eq!(bytes.len(), expected.len(), "chunk {index} length");
    assert!(bytes[..] == expected[..], "chunk {index} bytes differ");
}

#[tokio::test]
async fn restart_reuses_the_session_and_downloads_from_a_media_dc() {
    bounded(async {
        const TOKEN: &str = "123456:test-token";
        let emu = emulator().await;
        let world = emu.world();
        let bot = world.register_bot(TOKEN, "cdn_bot");
        let channel = world.create_channel("storage");
        world.add_channel_member(channel.channel_id, bot.user_id, true);
        let doc = world.add_document(Content::pseudo(3 << 20), "film.mp4", "video/mp4", 4);
        let msg_id = world.post_document(channel.channel_id, doc.id, "");
        let key = emu.provision_auth_key();
        let dir = tempfile::tempdir().expect("tempdir");
        let config = bot_config(TOKEN, 2);

        {
            let store = Store::open(dir.path()).expect("store");
            let session = provisioned(&store, &emu, TOKEN, key).await;
            let client = BotClient::with_session(session, &config);
            assert!(client.sign_in_if_needed(deadline()).await.expect("sign in"));
            let info = client
                .fetch_document(channel.channel_id, msg_id, deadline())
                .await
                .expect("document");
            client
                .get_file_part(0, &info.location, 0, PART, deadline())
                .await
                .expect("first part");
            client.shutdown().await;
            store.flush().await.expect("flush");
        }
        let before = emu.counters();
        assert_eq!(before.bot_sign_ins, 1);
        assert_eq!((before.auth_exports, before.auth_imports), (1, 1));

        let store = Store::open(dir.path()).expect("store reopens");
        let client = BotClient::start(store.sessions_tree(), &config).expect("bot starts");
        assert!(
            !client
                .sign_in_if_needed(deadline())
                .await
                .expect("authorised")
        );

        let info = client
            .fetch_document(channel.channel_id, msg_id, deadline())
            .await
            .expect("document after restart");
        assert_eq!(info.location.dc_id, 4);
        assert_eq!(info.size, 3 << 20);
        for connection in 0..2 {
            let part = client
                .get_file_part(connection, &info.location, 512 * 1024, PART, deadline())
                .await
                .unwrap_or_else(|e| panic!("connection {connection}: {e}"));
            assert!(
                part[..] == emu.content_slice(doc.id, 512 * 1024, PART as usize)[..],
                "connection {connection} bytes differ"
            );
        }
        assert!(client.session().media_dc_authorized(4).expect("flag"));
        let after = emu.counters();
        assert_eq!(after.bot_sign_ins, before.bot_sign_ins, "restart signed in");
        assert_eq!(after.auth_exports, before.auth_exports, "restart exported");
        assert_eq!(after.auth_imports, before.auth_imports, "restart imported");
    })
    .await
}

#[tokio::test]
async fn fetcher_downloads_a_multi_chunk_file_byte_exact() {
    bounded(async {
        let emu = emulator().await;
        let store = Store::temporary().expect("store");
        let channel = emu.world().create_channel("storage");
        let (_, client) = signed_in_bot(&emu, &store, "1001:a", Some(channel), 2).await;
        let size = 3 * CHUNK + CHUNK / 2;
        let doc = emu
            .world()
            .add_document(Content::pseudo(size), "f.mkv", "video/x-matroska", 4);
        let msg_id = emu.world().post_document(channel.channel_id, doc.id, "");
        let file = FileRef {
            chat_id: channel.bot_api_id(),
            msg_id,
        };
        let fetcher = fetcher(&store, &[client]);
        for index in 0..4 {
            assert_chunk(&emu, &fetcher, file, doc, index).await;
        }
        assert!(fetcher.chunk(file, size, 4).await.is_err(), "past the end");
    })
    .await
}

#[tokio::test]
async fn flood_wait_moves_the_fetch_to_another_bot() {
    bounded(async {
        let emu = emulator().await;
        let store = Store::temporary().expect("store");
        let channel = emu.world().create_channel("storage");
        let (bot_a, client_a) = signed_in_bot(&emu, &store, "2001:a", Some(channel), 1).await;
        let (bot_b, client_b) = signed_in_bot(&emu, &store, "2002:b", Some(channel), 1).await;
        let doc =
            emu.world()
                .add_document(Content::pseudo(2 * CHUNK), "f.mkv", "video/x-matroska", 2);
        let msg_id = emu.world().post_document(channel.channel_id, doc.id, "");
        let file = FileRef {
            chat_id: channel.bot_api_id(),
            msg_id,
        };
        emu.faults().flood_wait(bot_a.user_id, 30);
        // Bot A is index 0: with equal loads the first pick is A, which answers FLOOD_WAIT.
        let fetcher = fetcher(&store, &[client_a, client_b]);
        assert_chunk(&emu, &fetcher, file, doc, 0).await;
        assert_chunk(&emu, &fetcher, file, doc, 1).await;
        let report = fetcher.pool().report(Instant::now());
        let waited = report[0]
            .flood_wait_secs
            .expect("bot A marked flood-waiting");
        assert!((25..=30).contains(&waited), "{waited}");
        assert_eq!(report[1].flood_wait_secs, None);
        let counters = emu.counters();
        assert!(
            counters
                .bytes_by_bot
                .get(&bot_b.user_id)
                .copied()
                .unwrap_or(0)
                >= 2 * CHUNK
        );
    })
    .await
}

#[tokio::test]
async fn a_bot_outside_the_storage_channel_is_taken_out_of_rotation() {
    bounded(async {
        let emu = emulator().await;
        let store = Store::temporary().expect("store");
        let channel = emu.world().create_channel("storage");
        let (_, outsider) = signed_in_bot(&emu, &store, "3001:out", None, 1).await;
        let (_, member) = signed_in_bot(&emu, &store, "3002:in", Some(channel), 1).await;
        let doc =
            emu.world()
                .add_document(Content::pseudo(CHUNK + 4096), "f.bin", "application/zip", 2);
        let msg_id = emu.world().post_document(channel.channel_id, doc.id, "");
        let file = FileRef {
            chat_id: channel.bot_api_id(),
            msg_id,
        };
        let fetcher = fetcher(&store, &[outsider, member]);
        assert_chunk(&emu, &fetcher, file, doc, 0).await;
        assert_chunk(&emu, &fetcher, file, doc, 1).await;
        // Out for this channel only: the outsider stays healthy for every other one.
        let report = fetcher.pool().report(Instant::now());
        assert_eq!(report[0].health, Health::Healthy);
        assert_eq!(report[0].denied_channels[0].0, channel.bot_api_id());
        assert!(report[1].denied_channels.is_empty());
    })
    .await
}

#[tokio::test]
async fn an_expired_file_reference_is_refreshed_and_retried() {
    bounded(async {
        let emu = emulator().await;
        let store = Store::temporary().expect("store");
        let channel = emu.world().create_channel("storage");
        let (_, client) = signed_in_bot(&emu, &store, "4001:a", Some(channel), 1).await;
        let doc =
            emu.world()
                .add_document(Content::pseudo(2 * CHUNK), "f.mkv", "video/x-matroska", 4);
        let msg_id = emu.world().post_document(channel.channel_id, doc.id, "");
        let file = FileRef {
            chat_id: channel.bot_api_id(),
            msg_id,
        };
        let fetcher = fetcher(&store, &[client]);
        emu.faults().file_reference_ttl(Duration::from_secs(60));
        assert_chunk(&emu, &fetcher, file, doc, 0).await;
        let lookups = emu.counters().requests_for("channels.getMessages");
        // The cached location's reference is now stale; the next chunk must refresh it.
        emu.advance_clock(Duration::from_secs(61));
        assert_chunk(&emu, &fetcher, file, doc, 1).await;
        assert!(emu.counters().requests_for("channels.getMessages") > lookups);
    })
    .await
}

/// One uncached chunk of a file whose `Meta` was just answered, at +50 ms per answer on an
/// idle pool of two bots × two connections, costs one Telegram round trip, counted on the
/// emulator's side: both 512 KiB halves leave together on two connections, and the bot that
/// looked the meta up (so already holds the location) serves it. Before, the rotation sent
/// the chunk to the other bot, which first had to look the location up itself
/// (`channels.getMessages`): two round trips (~100 ms instead of ~50) on every other file.
#[tokio::test]
async fn a_chunk_after_its_meta_takes_one_round_trip() {
    bounded(async {
        let emu = emulator().await;
        let store = Store::temporary().expect("store");
        let channel = emu.world().create_channel("storage");
        let (_, client_a) = signed_in_bot(&emu, &store, "3001:a", Some(channel), 2).await;
        let (_, client_b) = signed_in_bot(&emu, &store, "3002:b", Some(channel), 2).await;
        let add = |name: &str| {
            let doc =
                emu.world()
                    .add_document(Content::pseudo(4 * CHUNK), name, "video/x-matroska", 4);
            let msg_id = emu.world().post_document(channel.channel_id, doc.id, "");
            (
                doc,
                FileRef {
                    chat_id: channel.bot_api_id(),
                    msg_id,
                },
            )
        };
        // Every connection opens its media-DC socket (connect + initConnection, one round
        // trip of its own) before the measured chunk, as in a core that has been serving.
        let (_, warm) = add("warm.mkv");
        for client in [&client_a, &client_b] {
            let location = client
                .fetch_document(channel.channel_id, warm.msg_id, deadline())
                .await
                .expect("warm-up document")
                .location;
            for connection in 0..2 {
                client
                    .get_file_part(connection, &location, 0, PART, deadline())
                    .await
                    .expect("warm-up part");
            }
        }
        let path = download_path(
            store.clone(),
            &[client_a, client_b],
            ResolveConfig::default(),
            FetchConfig::default(),
        );
        emu.faults().set_latency(
            tgemu::Scope::All,
            tgemu::Latency::Fixed(Duration::from_millis(50)),
        );
        for round in 0..4 {
            let (doc, file) = add(&format!("film{round}.mkv"));
            // The edge's `Meta`, then its first `Chunk`, as the QUIC handler runs them.
            let meta = path.resolver.meta(file).await.expect("meta");
            emu.start_trace();
            let bytes = path.fetcher.chunk(file, meta.size, 1).await.expect("chunk");
            assert!(bytes[..] == emu.content_slice(doc.id, CHUNK, CHUNK as usize)[..]);
            let trace = emu.trace();
            let methods: Vec<&str> = trace.iter().map(|r| r.method).collect();
            assert_eq!(
                methods,
                ["upload.getFile", "upload.getFile"],
                "round {round}: {trace:?}"
            );
            assert_ne!(
                trace[0].conn_id, trace[1].conn_id,
                "halves share a connection"
            );
            assert_eq!(tgemu::round_trips(&trace), 1, "round {round}: {trace:?}");
        }
    })
    .await
}
