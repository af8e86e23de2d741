//! The core keeps serving through bot failures, against the DC emulator with the real
//! grammers client: a bot that cannot read one channel is out for that channel only, a
//! bot removed from a channel and added back returns to rotation once the background prober
//! sees it can read again — no restart — and a dead link costs Telegram almost nothing
//! however often it is requested. Every test runs under one overall timeout; waits are
//! on the pool's state with a deadline.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tgcdn_core::app::{DownloadPath, download_path};
use tgcdn_core::bots::health::Backoff;
use tgcdn_core::bots::select::Health;
use tgcdn_core::fetch::{FetchConfig, FetchError};
use tgcdn_core::frontend::commands::Access;
use tgcdn_core::frontend::ratelimit::RateConfig;
use tgcdn_core::frontend::{FrontEnd, FrontEndConfig};
use tgcdn_core::health::Prober;
use tgcdn_core::resolve::ResolveConfig;
use tgcdn_core::store::Store;
use tgcdn_core::telegram::BotClient;
use tgcdn_shared::FileRef;
use tgcdn_shared::token::{Keyring, LinkKey};
use tgemu::{ChannelInfo, Content, EmulatorHandle, Latency, Peer, Scope};

use support::bots::{BotSpec, deadline, emulator_with, signed_in, wait_for};
use support::bounded;

const CHUNK: u64 = 1024 * 1024;

async fn emulator() -> EmulatorHandle {
    emulator_with(&[1, 2]).await
}

/// A signed-in bot, a member of each of `channels`.
async fn signed_in_bot(
    emu: &EmulatorHandle,
    store: &Store,
    token: &str,
    channels: &[ChannelInfo],
) -> (tgemu::BotInfo, Arc<BotClient>) {
    signed_in(emu, store, BotSpec::new(token, channels)).await
}

/// The front-end's main bot: receives updates.
async fn main_bot(
    emu: &EmulatorHandle,
    store: &Store,
    token: &str,
    channels: &[ChannelInfo],
) -> (tgemu::BotInfo, Arc<BotClient>) {
    let spec = BotSpec {
        updates: true,
        ..BotSpec::new(token, channels)
    };
    signed_in(emu, store, spec).await
}

fn path(store: &Store, clients: &[Arc<BotClient>]) -> DownloadPath {
    let fetch = FetchConfig {
        attempt_timeout: Duration::from_secs(10),
        total_timeout: Duration::from_secs(20),
        ..FetchConfig::default()
    };
    download_path(store.clone(), clients, ResolveConfig::default(), fetch)
}

/// A two-chunk document posted in `channel`, as a link would name it.
fn post_file(emu: &EmulatorHandle, channel: &ChannelInfo) -> (FileRef, tgemu::DocumentInfo) {
    let doc = emu
        .world()
        .add_document(Content::pseudo(2 * CHUNK), "f.bin", "application/zip", 2);
    let msg_id = emu.world().post_document(channel.channel_id, doc.id, "");
    let file = FileRef {
        chat_id: channel.bot_api_id(),
        msg_id,
    };
    (file, doc)
}

#[tokio::test]
async fn a_request_into_an_unreadable_channel_leaves_every_bot_serving_the_storage_channel() {
    bounded(async {
        let emu = emulator().await;
        let store = Store::temporary().expect("store");
        let storage = emu.world().create_channel("storage");
        let unreadable = emu.world().create_channel("someone else's");
        let (_, a) = signed_in_bot(&emu, &store, "4001:a", &[storage]).await;
        let (_, b) = signed_in_bot(&emu, &store, "4002:b", &[storage]).await;
        let path = path(&store, &[a, b]);
        let (stored, doc) = post_file(&emu, &storage);
        let (foreign, _) = post_file(&emu, &unreadable);

        // Every bot tries the foreign message and is refused.
        assert!(path.resolver.meta(foreign).await.is_err());
        let report = path.pool.report(Instant::now());
        for bot in &report {
            assert_eq!(bot.health, Health::Healthy, "bot {}", bot.id);
            assert_eq!(bot.denied_channels.len(), 1, "bot {}", bot.id);
            assert_eq!(bot.denied_channels[0].0, unreadable.bot_api_id());
        }
        // The next foreign request costs Telegram nothing: no bot can read it.
        emu.reset_counters();
        assert!(matches!(
            path.fetcher.chunk(foreign, doc.size, 0).await,
            Err(FetchError::Unavailable(_))
        ));
        assert_eq!(emu.counters().requests_for("channels.getMessages"), 0);

        // Both bots still serve the storage channel.
        let meta = path.resolver.meta(stored).await.expect("storage meta");
        assert_eq!(meta.size, doc.size);
        // Both chunks at once: one after the other, both would go to the bot that looked
        // the meta up (it holds the location); together, the second goes to the other bot.
        let (first, second) = tokio::join!(
            path.fetcher.chunk(stored, doc.size, 0),
            path.fetcher.chunk(stored, doc.size, 1)
        );
        for (index, bytes) in [first, second].into_iter().enumerate() {
            let bytes = bytes.expect("storage chunk");
            let expected = emu.content_slice(doc.id, index as u64 * CHUNK, CHUNK as usize);
            assert!(bytes[..] == expected[..], "chunk {index} differs");
        }
        let report = path.pool.report(Instant::now());
        assert!(
            report.iter().all(|bot| bot.bytes > 0),
            "both bots downloaded: {report:?}"
        );
    })
    .await
}

#[tokio::test]
async fn a_bot_removed_from_the_channel_and_added_back_returns_after_a_probe() {
    bounded(async {
        let emu = emulator().await;
        let store = Store::temporary().expect("store");
        let storage = emu.world().create_channel("storage");
        let (info, bot) = signed_in_bot(&emu, &store, "4101:only", &[storage]).await;
        let path = path(&store, std::slice::from_ref(&bot));
        path.pool.set_probe_backoff(Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_millis(400),
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let probers: Vec<Arc<dyn Prober>> = vec![bot as Arc<dyn Prober>];
        let prober = tokio::spawn(tgcdn_core::health::run(
            Arc::clone(&path.pool),
            probers,
            stopped,
        ));
        let (file, doc) = post_file(&emu, &storage);

        emu.world()
            .remove_channel_member(storage.channel_id, info.user_id);
        assert!(path.fetcher.chunk(file, doc.size, 0).await.is_err());
        let denied = |pool: &tgcdn_core::bots::BotPool| {
            !pool.report(Instant::now())[0].denied_channels.is_empty()
        };
        assert!(denied(&path.pool), "the removed bot is out for the channel");

        // Still out while it is not a member: probes fail and back off.
        emu.reset_counters();
        wait_for(|| emu.counters().requests_for("channels.getMessages") >= 2).await;
        assert!(denied(&path.pool));

        emu.world()
            .add_channel_member(storage.channel_id, info.user_id, true);
        wait_for(|| !denied(&path.pool)).await;
        let bytes = path
            .fetcher
            .chunk(file, doc.size, 1)
            .await
            .expect("served again");
        assert!(bytes[..] == emu.content_slice(doc.id, CHUNK, CHUNK as usize)[..]);

        let _ = stop.send(true);
        prober.await.expect("the prober stops");
    })
    .await
}

#[tokio::test]
async fn five_hundred_requests_for_a_deleted_message_cost_at_most_two_lookups() {
    bounded(async {
        let emu = emulator().await;
        let store = Store::temporary().expect("store");
        let storage = emu.world().create_channel("storage");
        let (_, a) = signed_in_bot(&emu, &store, "4201:a", &[storage]).await;
        let (_, b) = signed_in_bot(&emu, &store, "4202:b", &[storage]).await;
        let path = path(&store, &[a, b]);
        let (file, _) = post_file(&emu, &storage);
        assert!(
            emu.world()
                .delete_message(Peer::Channel(storage.channel_id), file.msg_id)
        );
        emu.reset_counters();
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..500 {
            let resolver = Arc::clone(&path.resolver);
            requests.spawn(async move { resolver.meta(file).await });
        }
        while let Some(answer) = requests.join_next().await {
            assert!(matches!(
                answer.expect("request task"),
                Err(error) if error.is_not_found()
            ));
        }
        let lookups = emu.counters().requests_for("channels.getMessages");
        assert!((1..=2).contains(&lookups), "{lookups} getMessages");
        // Later requests are answered from the negative cache.
        for _ in 0..10 {
            assert!(path.resolver.meta(file).await.is_err());
        }
        assert_eq!(emu.counters().requests_for("channels.getMessages"), lookups);
        assert!(path.resolver.counters().negative_hits >= 10);
    })
    .await
}

#[tokio::test]
async fn the_bot_knows_its_own_username_for_the_addressee_check() {
    bounded(async {
        let emu = emulator().await;
        let store = Store::temporary().expect("store");
        let (_, bot) = signed_in_bot(&emu, &store, "4301:files_bot", &[]).await;
        let username = bot.username(deadline()).await.expect("getUsers");
        assert_eq!(username.as_deref(), Some("4301:files_bot"));
    })
    .await
}

/// A front-end for everyone (no admins, no @-name) storing into `storage_chat_id`.
fn open_front_end(bot: Arc<BotClient>, storage_chat_id: i64) -> FrontEnd {
    let key = LinkKey::new(1, [7u8; 32]).expect("key");
    let keyring = Arc::new(Keyring::new(key, Vec::new()).expect("keyring"));
    let config = FrontEndConfig {
        public_base: "https://cdn.example".into(),
        storage_chat_id,
        access: Access {
            allowed_users: None,
            admins: Default::default(),
        },
        bot_username: None,
    };
    FrontEnd::new(bot, keyring, config).expect("front-end")
}

#[tokio::test]
async fn a_user_over_the_budget_is_told_once_and_others_are_answered() {
    bounded(async {
        let emu = emulator().await;
        let store = Store::temporary().expect("store");
        let storage = emu.world().create_channel("storage");
        let (info, bot) = main_bot(&emu, &store, "4401:main", &[storage]).await;
        let frontend = open_front_end(bot, storage.bot_api_id())
            .with_rate_limit(RateConfig {
                burst: 2,
                refill: Duration::from_secs(600),
                max_users: 100,
            })
            .spawn();
        let alice = emu.world().register_user("alice");
        let bob = emu.world().register_user("bob");
        for _ in 0..5 {
            emu.world()
                .user_sends_text(alice.user_id, info.user_id, "/start");
        }
        emu.world()
            .user_sends_text(bob.user_id, info.user_id, "/start");
        let replies_to = |user: i64| -> Vec<String> {
            emu.world()
                .sent_by(info.user_id)
                .into_iter()
                .filter(|m| m.peer == Peer::User(user))
                .map(|m| m.text)
                .collect()
        };
        // One user's messages are answered in order; other users' do not wait for them.
        wait_for(|| !replies_to(bob.user_id).is_empty() && replies_to(alice.user_id).len() >= 3)
            .await;
        let alice_replies = replies_to(alice.user_id);
        assert_eq!(alice_replies.len(), 3, "{alice_replies:?}");
        assert!(alice_replies[..2].iter().all(|t| t.starts_with("Hi!")));
        assert!(
            alice_replies[2].contains("faster than I can take"),
            "{}",
            alice_replies[2]
        );
        assert!(replies_to(bob.user_id)[0].starts_with("Hi!"));
        frontend.abort();
    })
    .await
}

#[tokio::test]
async fn one_user_sending_forty_files_does_not_delay_other_users_replies() {
    bounded(async {
        let emu = emulator().await;
        let store = Store::temporary().expect("store");
        let storage = emu.world().create_channel("storage");
        let (info, bot) = main_bot(&emu, &store, "4501:main", &[storage]).await;
        let frontend = open_front_end(bot, storage.bot_api_id())
            .with_concurrency(4)
            .spawn();
        // Every call of the main bot is slow, so a file costs a noticeable time to store.
        emu.faults().set_latency(
            Scope::Bot(info.user_id),
            Latency::Fixed(Duration::from_millis(150)),
        );
        let alice = emu.world().register_user("alice");
        let bob = emu.world().register_user("bob");
        for i in 0..40 {
            let doc = emu.world().add_document(
                Content::pseudo(1000 + i),
                &format!("part{i}.pdf"),
                "application/pdf",
                2,
            );
            emu.world()
                .user_sends_document(alice.user_id, info.user_id, doc.id, "");
        }
        emu.world()
            .user_sends_text(bob.user_id, info.user_id, "/start");
        let replies_to = |user: i64| -> Vec<String> {
            emu.world()
                .sent_by(info.user_id)
                .into_iter()
                .filter(|m| m.peer == Peer::User(user))
                .map(|m| m.text)
                .collect()
        };
        wait_for(|| !replies_to(bob.user_id).is_empty()).await;
        let alice_before_bob = replies_to(alice.user_id).len();
        // Handled one after another, Bob would wait for Alice's ten links and her
        // slow-down notice (the default budget); side by side, for one of hers at most.
        assert!(
            alice_before_bob <= 2,
            "{alice_before_bob} of Alice's replies came before Bob's"
        );
        // Alice still gets every link her budget allows, in order, then one notice.
        wait_for(|| replies_to(alice.user_id).len() >= 11).await;
        let alice_replies = replies_to(alice.user_id);
        assert!(alice_replies[..10].iter().all(|t| t.contains("/dl/")));
        assert!(alice_replies[10].contains("faster than I can take"));
        frontend.abort();
    })
    .await
}

#[tokio::test]
async fn a_bot_that_lost_its_home_dc_authorisation_is_benched_and_signs_in_again() {
    bounded(async {
        let emu = emulator().await;
        let store = Store::temporary().expect("store");
        let storage = emu.world().create_channel("storage");
        let (lost, a) = signed_in_bot(&emu, &store, "4601:a", &[storage]).await;
        let (_, b) = signed_in_bot(&emu, &store, "4602:b", &[storage]).await;
        let path = path(&store, &[Arc::clone(&a), Arc::clone(&b)]);
        path.pool.set_probe_backoff(Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_millis(400),
        });
        assert_eq!(emu.world().revoke_authorization(2, lost.user_id), 1);
        // Every lookup is served (bot b takes over) and bot a ends up benched for it.
        for _ in 0..6 {
            let (file, doc) = post_file(&emu, &storage);
            let meta = path
                .resolver
                .meta(file)
                .await
                .expect("served by the other bot");
            assert_eq!(meta.size, doc.size);
        }
        let benched =
            |pool: &tgcdn_core::bots::BotPool| match &pool.report(Instant::now())[0].health {
                Health::Unhealthy { reason } => reason.contains("home-DC authorisation"),
                Health::Healthy => false,
            };
        assert!(
            benched(&path.pool),
            "{:?}",
            path.pool.report(Instant::now())[0]
        );

        // The prober signs the bot in again and puts it back, without a restart.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let probers: Vec<Arc<dyn Prober>> = vec![a as Arc<dyn Prober>, b as Arc<dyn Prober>];
        let prober = tokio::spawn(tgcdn_core::health::run(
            Arc::clone(&path.pool),
            probers,
            stopped,
        ));
        wait_for(|| !benched(&path.pool)).await;
        assert_eq!(path.pool.report(Instant::now())[0].health, Health::Healthy);
        let _ = stop.send(true);
        prober.await.expect("the prober stops");
    })
    .await
}
