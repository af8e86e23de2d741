//! Photos served as files against the emulator: a user sends a photo (not a file) to the
//! bot, the bot answers with a link, and the one-box edge serves the photo's largest size
//! byte-exact as `image/jpeg`, whole and by range; a photo whose file reference expires
//! between two chunks is refreshed and served through the fetch path like a document.

mod support;

use std::time::{Duration, Instant};

use support::bots::{BotSpec, emulator_with, signed_in};
use support::{Deployment, MIB, bounded, http_get};
use tgcdn_core::app::download_path;
use tgcdn_core::config::OneBoxEdge;
use tgcdn_core::fetch::FetchConfig;
use tgcdn_core::resolve::ResolveConfig;
use tgcdn_core::runtime::run_one_box;
use tgcdn_core::store::Store;
use tgemu::{Content, Peer, PhotoSizeSpec};

const WAIT: Duration = Duration::from_secs(20);

/// A photo as Telegram stores one: a small `m`, a large progressive `y` of `large` bytes.
fn photo_sizes(large: u64) -> Vec<PhotoSizeSpec> {
    vec![
        PhotoSizeSpec::new("m", 320, 240, Content::pseudo(30_000)),
        PhotoSizeSpec::new("y", 1280, 960, Content::pseudo(large)),
    ]
}

#[tokio::test]
async fn a_photo_sent_to_the_bot_gets_a_link_that_serves_its_largest_size() {
    bounded(async {
        let deployment = Deployment::start().await;
        let world = deployment.emu.world();
        let user = world.register_user("alice");
        let dir = tempfile::tempdir().unwrap();
        deployment.provision(dir.path()).await;
        let config = deployment.config(dir.path(), &[]);
        let core = run_one_box(config, OneBoxEdge::on("127.0.0.1:0".parse().unwrap()))
            .await
            .expect("one-box core starts");
        let addr = core.edge_addr().expect("the edge listens");

        let large = 2 * MIB + 4321;
        let photo = world.add_photo(photo_sizes(large), 4);
        world.user_sends_photo(user.user_id, deployment.main_bot.user_id, photo.id, "");
        let started = Instant::now();
        let reply = loop {
            let reply = world
                .sent_by(deployment.main_bot.user_id)
                .into_iter()
                .find(|m| m.peer == Peer::User(user.user_id));
            if let Some(reply) = reply {
                break reply;
            }
            assert!(started.elapsed() < WAIT, "the bot never answered the photo");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let path = reply
            .text
            .split("https://cdn.example.com")
            .find_map(|rest| rest.strip_prefix("/dl/"))
            .and_then(|rest| rest.split_whitespace().next())
            .map(|link| format!("/dl/{link}"))
            .unwrap_or_else(|| panic!("no download link in {:?}", reply.text));
        assert!(path.ends_with(".jpg"), "{path}");

        let largest = photo.largest().expect("sizes");
        let expected = deployment
            .emu
            .content_slice(largest.content_id, 0, large as usize);
        let whole = http_get(addr, &path, &[]).await;
        assert_eq!(whole.status, 200, "{:?}", whole.headers);
        assert_eq!(whole.header("content-type"), Some("image/jpeg"));
        assert!(whole.body == expected, "the photo's bytes differ");

        let (start, end) = (MIB - 100, MIB + 99);
        let range = format!("bytes={start}-{end}");
        let part = http_get(addr, &path, &[("Range", range.as_str())]).await;
        assert_eq!(part.status, 206);
        assert_eq!(
            part.header("content-range"),
            Some(format!("bytes {start}-{end}/{large}").as_str())
        );
        assert!(part.body == expected[start as usize..=end as usize]);
        core.shutdown().await.expect("clean shutdown");
    })
    .await;
}

#[tokio::test]
async fn a_photo_whose_reference_expires_between_chunks_is_refreshed() {
    bounded(async {
        let emu = emulator_with(&[1, 2, 4]).await;
        let store = Store::temporary().expect("store");
        let channel = emu.world().create_channel("storage");
        let (_, client) = signed_in(&emu, &store, BotSpec::new("4001:a", &[channel])).await;
        let large = 2 * MIB + 17;
        let photo = emu.world().add_photo(photo_sizes(large), 4);
        let msg_id = emu.world().post_photo(channel.channel_id, photo.id, "");
        let file = tgcdn_shared::FileRef {
            chat_id: channel.bot_api_id(),
            msg_id,
        };
        let path = download_path(
            store.clone(),
            &[client],
            ResolveConfig::default(),
            FetchConfig {
                attempt_timeout: Duration::from_secs(10),
                total_timeout: Duration::from_secs(20),
                ..FetchConfig::default()
            },
        );
        let meta = path.resolver.meta(file).await.expect("meta");
        assert_eq!(meta.size, large);
        assert_eq!(meta.mime_type, "image/jpeg");
        assert_eq!(meta.file_name, format!("photo_{msg_id}.jpg"));
        let content_id = photo.largest().expect("sizes").content_id;

        emu.faults().file_reference_ttl(Duration::from_secs(60));
        let first = path.fetcher.chunk(file, large, 0).await.expect("chunk 0");
        assert!(first[..] == emu.content_slice(content_id, 0, MIB as usize)[..]);
        let lookups = emu.counters().requests_for("channels.getMessages");
        // The cached location's reference is now stale: the next chunk's getFile answers
        // FILE_REFERENCE_EXPIRED and the photo must be looked up again.
        emu.advance_clock(Duration::from_secs(61));
        let second = path.fetcher.chunk(file, large, 1).await.expect("chunk 1");
        assert!(second[..] == emu.content_slice(content_id, MIB, MIB as usize)[..]);
        assert!(emu.counters().requests_for("channels.getMessages") > lookups);
        let last = path.fetcher.chunk(file, large, 2).await.expect("chunk 2");
        assert_eq!(last.len() as u64, large - 2 * MIB);
    })
    .await;
}
