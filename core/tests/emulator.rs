//! The core against the Telegram DC emulator (`tests/tgemu`), with the real grammers client:
//! the whole edge→core→Telegram path through the real QUIC server (Meta, byte-exact chunks,
//! expired file references refreshed inside the chunk fetch, missing messages), and the
//! `tgcdn-core run` binary end to end. (`fetch_emulator.rs` covers sessions and the fetcher.)

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{MIB, bounded, call, connect, hello_for, serve_quic};
use tgcdn_core::app::download_path;
use tgcdn_core::config::bot_auth_key;
use tgcdn_core::fetch::FetchConfig;
use tgcdn_core::resolve::ResolveConfig;
use tgcdn_core::store::Store;
use tgcdn_core::telegram::{BotClient, BotConfig, SledSession};
use tgcdn_shared::FileRef;
use tgcdn_shared::token::{Keyring, LinkKey};
use tgcdn_shared::wire::{ChunkClass, ChunkRequest, Request, Response, WireError};
use tgemu::{Content, Emulator, EmulatorHandle};

const TOKEN: &str = "123456:test-token";
const WORKER: &str = "654321:worker-token";
const SECRET: &[u8] = b"cluster secret of the emulator test";

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

fn bot_config(token: &str) -> BotConfig {
    BotConfig {
        token: token.into(),
        api_id: 1,
        api_hash: "hash".into(),
        connections: 2,
    }
}

/// A bot session whose DC options are the emulator's DCs with a provisioned key. (Bots name
/// the storage channel with access hash 0, as Telegram allows them to.)
async fn provisioned(
    store: &Store,
    emu: &EmulatorHandle,
    bot_id: i64,
    key: [u8; 256],
) -> Arc<SledSession> {
    let session = Arc::new(SledSession::open(store.sessions_tree().clone(), bot_id).unwrap());
    for (dc, addr) in emu.dc_options() {
        let SocketAddr::V4(v4) = addr else {
            panic!("ipv4 loopback expected")
        };
        session.provision_dc(dc, v4, Some(key)).await.unwrap();
    }
    session
}

#[tokio::test]
async fn an_edge_gets_meta_and_chunks_from_telegram_through_the_quic_server() {
    bounded(async {
        let emu = Emulator::builder()
            .dcs(&[1, 2, 4])
            .home_dc(2)
            .start()
            .await
            .unwrap();
        let world = emu.world();
        let channel = world.create_channel("storage");
        for (token, name) in [(TOKEN, "cdn_bot"), (WORKER, "worker_bot")] {
            let bot = world.register_bot(token, name);
            world.add_channel_member(channel.channel_id, bot.user_id, true);
        }
        let size = 3 * MIB + 777;
        let doc = world.add_document(Content::pseudo(size), "film.mkv", "video/x-matroska", 4);
        let msg_id = world.post_document(channel.channel_id, doc.id, "");
        let film = FileRef {
            chat_id: channel.bot_api_id(),
            msg_id,
        };

        let store = Store::temporary().unwrap();
        let mut bots = Vec::new();
        for (token, id) in [(TOKEN, 123456), (WORKER, 654321)] {
            // One key per bot: a key belongs to the account that signs in with it.
            let key = emu.provision_auth_key();
            let session = provisioned(&store, &emu, id, key).await;
            let client = BotClient::with_session(session, &bot_config(token));
            client.sign_in_if_needed(deadline()).await.unwrap();
            bots.push(Arc::new(client));
        }
        let path = download_path(
            store.clone(),
            &bots,
            ResolveConfig::default(),
            FetchConfig {
                // No second-tier cache: the second pass below must go to Telegram again.
                cache_bytes: 0,
                ..FetchConfig::default()
            },
        );
        let server = serve_quic(&store, path, SECRET).await;

        let edge = connect(server.local_addr(), server.fingerprint())
            .await
            .unwrap();
        let hello = hello_for(&edge, "edge-emu", SECRET);
        assert!(matches!(
            call(&edge, &hello).await.unwrap().0,
            Response::Welcome(_)
        ));

        let response = call(&edge, &Request::Meta(film)).await.unwrap().0;
        let Response::Meta(meta) = response else {
            panic!("expected Meta, got {response:?}");
        };
        assert_eq!(
            (meta.size, meta.name.as_str(), meta.mime.as_str(), meta.dc),
            (size, "film.mkv", "video/x-matroska", 4)
        );

        let fetch_all = async |pass: &str| {
            for index in 0..4u64 {
                let request = Request::Chunk(ChunkRequest {
                    file: film,
                    index,
                    class: ChunkClass::Demand,
                });
                let (response, payload) = call(&edge, &request).await.unwrap();
                let len = (size - index * MIB).min(MIB);
                assert!(matches!(response, Response::Chunk(h) if u64::from(h.len) == len));
                let expected = emu.content_slice(doc.id, index * MIB, len as usize);
                assert!(payload[..] == expected[..], "{pass}: chunk {index} differs");
            }
        };
        fetch_all("fresh references").await;
        let lookups = emu.counters().requests_for("channels.getMessages");

        // Every reference handed out so far goes stale; the fetch must refresh, not fail.
        emu.faults().file_reference_ttl(Duration::from_secs(60));
        emu.advance_clock(Duration::from_secs(61));
        fetch_all("expired references").await;
        assert!(
            emu.counters().requests_for("channels.getMessages") > lookups,
            "the expired references were not looked up again"
        );

        let missing = FileRef {
            msg_id: msg_id + 100,
            ..film
        };
        let (response, _) = call(&edge, &Request::Meta(missing)).await.unwrap();
        assert_eq!(response, Response::Error(WireError::NotFound));
        server.shutdown(Duration::from_secs(1)).await;
    })
    .await;
}

/// The `tgcdn-core run` binary against the emulator: it signs its bots in, marks the one that
/// cannot read the storage channel unhealthy, prints the fingerprint, serves an edge, turns
/// a file sent to the main bot into a link the edge can fetch, and exits cleanly on SIGTERM.
#[tokio::test]
async fn the_binary_runs_serves_and_shuts_down_on_sigterm() {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, BufReader};

    let emu = Emulator::builder()
        .dcs(&[1, 2, 4])
        .home_dc(2)
        .start()
        .await
        .unwrap();
    let world = emu.world();
    let channel = world.create_channel("storage");
    let main_bot = world.register_bot(TOKEN, "cdn_bot");
    world.add_channel_member(channel.channel_id, main_bot.user_id, true);
    // Registered but never added to the channel: must be reported, not fatal.
    let outsider = world.register_bot(WORKER, "outsider_bot");
    let doc = world.add_document(Content::pseudo(MIB + 5), "clip.mp4", "video/mp4", 2);
    let msg_id = world.post_document(channel.channel_id, doc.id, "");
    let key = emu.provision_auth_key();

    let dir = tempfile::tempdir().unwrap();
    {
        // The sessions the core will find, with the keys it derives for each bot from
        // TGCDN_DC_AUTH_KEY (the emulator must know them).
        let store = Store::open(dir.path()).unwrap();
        for bot_id in [123456, 654321] {
            let bot_key = bot_auth_key(&key, bot_id);
            emu.register_auth_key(bot_key);
            provisioned(&store, &emu, bot_id, bot_key).await;
        }
        store.flush().await.unwrap();
    }
    let dc_addrs: Vec<String> = emu
        .dc_options()
        .iter()
        .map(|(dc, addr)| format!("{dc}={addr}"))
        .collect();
    let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let secret_hex: String = SECRET.iter().map(|b| format!("{b:02x}")).collect();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tgcdn-core"))
        .arg("run")
        .env_clear()
        .env("RUST_LOG", "warn")
        .env("TGCDN_DATA_DIR", dir.path())
        .env("TGCDN_API_ID", "1")
        .env("TGCDN_API_HASH", "hash")
        .env("TGCDN_BOT_TOKEN", TOKEN)
        .env("TGCDN_WORKER_TOKENS", WORKER)
        .env("TGCDN_STORAGE_CHANNEL", channel.bot_api_id().to_string())
        .env("TGCDN_QUIC_LISTEN", "127.0.0.1:0")
        .env("TGCDN_ADMIN_LISTEN", "127.0.0.1:0")
        .env("TGCDN_CLUSTER_SECRET", &secret_hex)
        .env("TGCDN_LINK_KEY", "1:00112233445566778899aabbccddeeff")
        .env("TGCDN_PUBLIC_URL", "https://cdn.example.com")
        .env("TGCDN_DC_ADDRS", dc_addrs.join(","))
        .env("TGCDN_DC_AUTH_KEY", key_hex)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut addr, mut fingerprint) = (None, None);
    while addr.is_none() || fingerprint.is_none() {
        let line = bounded(lines.next_line())
            .await
            .unwrap()
            .expect("core exited early");
        if let Some(rest) = line.split(" serving edges on ").nth(1) {
            addr = rest
                .split(' ')
                .next()
                .map(|a| a.parse::<SocketAddr>().unwrap());
        }
        if let Some(rest) = line.strip_prefix("certificate sha256 (edges pin it): ") {
            fingerprint = Some(rest.to_owned());
        }
    }
    let edge = connect(addr.unwrap(), &fingerprint.unwrap()).await.unwrap();
    let hello = hello_for(&edge, "edge-bin", SECRET);
    assert!(matches!(
        call(&edge, &hello).await.unwrap().0,
        Response::Welcome(_)
    ));
    let film = FileRef {
        chat_id: channel.bot_api_id(),
        msg_id,
    };
    // The core printed its address after checking every bot: from here on the outsider,
    // out of rotation, must not be asked anything.
    let outsider_requests = |emu: &EmulatorHandle| {
        emu.counters()
            .requests_by_bot
            .get(&outsider.user_id)
            .copied()
            .unwrap_or(0)
    };
    let before = outsider_requests(&emu);
    // A lookup and two downloads: three picks, so a healthy outsider would get one.
    for index in 0..2u64 {
        let request = Request::Chunk(ChunkRequest {
            file: film,
            index,
            class: ChunkClass::Demand,
        });
        let (response, payload) = call(&edge, &request).await.unwrap();
        let len = (MIB + 5 - index * MIB).min(MIB);
        assert!(
            matches!(response, Response::Chunk(h) if u64::from(h.len) == len),
            "{response:?}"
        );
        assert!(payload[..] == emu.content_slice(doc.id, index * MIB, len as usize)[..]);
    }
    assert_eq!(outsider_requests(&emu), before, "an unhealthy bot was used");

    // The front-end runs: a file sent to the main bot comes back as a link whose token
    // names the stored copy, and that copy is served to the edge.
    let viewer = world.register_user("viewer");
    let sent = world.add_document(Content::pseudo(MIB / 2 + 3), "home.mp4", "video/mp4", 4);
    world.user_sends_document(viewer.user_id, main_bot.user_id, sent.id, "");
    let link = bounded(async {
        loop {
            let replies = world.sent_by(main_bot.user_id);
            if let Some(reply) = replies.iter().find(|m| m.text.contains("/dl/")) {
                return reply.text.clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let token = link
        .split("https://cdn.example.com/dl/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no link in {link:?}"));
    let secret: Vec<u8> = (0..16u8).map(|i| i * 0x11).collect();
    let keyring = Keyring::new(LinkKey::new(1, secret).unwrap(), Vec::new()).unwrap();
    let stored = keyring.verify(token, 0).unwrap().file;
    assert_eq!(stored.chat_id, channel.bot_api_id());
    let request = Request::Chunk(ChunkRequest {
        file: stored,
        index: 0,
        class: ChunkClass::Demand,
    });
    let (_, payload) = call(&edge, &request).await.unwrap();
    assert!(payload[..] == emu.content_slice(sent.id, 0, (MIB / 2 + 3) as usize)[..]);
    assert_eq!(
        emu.counters().bot_sign_ins,
        2,
        "both bots sign in: {:?}",
        emu.counters()
    );

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = bounded(child.wait()).await.unwrap();
    assert!(status.success(), "{status:?}");
}
