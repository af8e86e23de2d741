//! The bot front-end against the DC emulator: a user's file is copied into the storage
//! channel and answered with a link whose token names the copy; commands, the allow-list
//! and the admin check; and a restart between a user's message and the bot reading it
//! answers that message exactly once. Every wait is bounded.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tgcdn_core::frontend::commands::Access;
use tgcdn_core::frontend::{FrontEnd, FrontEndConfig};
use tgcdn_core::store::Store;
use tgcdn_core::telegram::{BotClient, BotConfig, SledSession, bot_id_from_token};
use tgcdn_shared::FileRef;
use tgcdn_shared::token::{Keyring, LinkKey};
use tgemu::{
    BotInfo, ChannelInfo, Content, Emulator, EmulatorHandle, Latency, Peer, Scope, SentMessage,
};
use tokio::task::JoinHandle;

const TEST_TIMEOUT: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(15);
const TOKEN: &str = "7001:main-bot";
const BASE: &str = "https://cdn.example";

async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("front-end test took too long")
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

fn keyring() -> Arc<Keyring> {
    let key = LinkKey::new(1, [7u8; 32]).expect("key");
    Arc::new(Keyring::new(key, Vec::new()).expect("keyring"))
}

fn bot_config() -> BotConfig {
    BotConfig {
        token: TOKEN.into(),
        api_id: 1,
        api_hash: "hash".into(),
        connections: 1,
    }
}

/// An emulated world with the main bot as admin of the storage channel.
struct World {
    emu: EmulatorHandle,
    bot: BotInfo,
    channel: ChannelInfo,
    key: [u8; 256],
}

async fn world() -> World {
    let emu = Emulator::builder()
        .dcs(&[1, 2, 4])
        .home_dc(2)
        .start()
        .await
        .expect("emulator starts");
    let bot = emu.world().register_bot(TOKEN, "cdn_bot");
    let channel = emu.world().create_channel("storage");
    emu.world()
        .add_channel_member(channel.channel_id, bot.user_id, true);
    let key = emu.provision_auth_key();
    World {
        emu,
        bot,
        channel,
        key,
    }
}

impl World {
    /// The main bot on a sled session provisioned with the emulator's DCs, signed in.
    async fn main_bot(&self, store: &Store) -> Arc<BotClient> {
        let bot_id = bot_id_from_token(TOKEN).expect("token");
        let session = SledSession::open(store.sessions_tree().clone(), bot_id).expect("session");
        for (dc, addr) in self.emu.dc_options() {
            let SocketAddr::V4(v4) = addr else {
                panic!("ipv4 loopback expected")
            };
            session
                .provision_dc(dc, v4, Some(self.key))
                .await
                .expect("provision");
        }
        let client = BotClient::with_session_receiving_updates(Arc::new(session), &bot_config());
        client.sign_in_if_needed(deadline()).await.expect("sign in");
        Arc::new(client)
    }

    fn config(&self, access: Access) -> FrontEndConfig {
        FrontEndConfig {
            public_base: BASE.into(),
            storage_chat_id: self.channel.bot_api_id(),
            access,
            bot_username: Some("cdn_bot".into()),
        }
    }

    fn spawn(&self, bot: &Arc<BotClient>, access: Access) -> JoinHandle<()> {
        FrontEnd::new(Arc::clone(bot), keyring(), self.config(access))
            .expect("front-end")
            .spawn()
    }

    fn replies_to(&self, user_id: i64) -> Vec<SentMessage> {
        self.emu
            .world()
            .sent_by(self.bot.user_id)
            .into_iter()
            .filter(|m| m.peer == Peer::User(user_id))
            .collect()
    }

    /// Waits until the bot has sent `count` messages to `user_id`, and returns them.
    async fn wait_replies(&self, user_id: i64, count: usize) -> Vec<SentMessage> {
        let started = Instant::now();
        loop {
            let replies = self.replies_to(user_id);
            if replies.len() >= count {
                return replies;
            }
            assert!(
                started.elapsed() < WAIT,
                "only {} of {count} replies: {replies:?}",
                replies.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The token in the `/dl/{token}/{name}` link of a reply.
fn download_token(text: &str) -> (&str, &str) {
    let after = text
        .split(&format!("{BASE}/dl/"))
        .nth(1)
        .unwrap_or_else(|| panic!("no download link in {text:?}"));
    let link = after.split_whitespace().next().expect("link");
    link.split_once('/').expect("token/name")
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[tokio::test]
async fn a_file_is_stored_and_answered_with_a_link_to_the_copy() {
    bounded(async {
        let w = world().await;
        let alice = w.emu.world().register_user("alice");
        let admin = w.emu.world().register_user("admin");
        let store = Store::temporary().expect("store");
        let bot = w.main_bot(&store).await;
        let access = Access {
            allowed_users: None,
            admins: HashSet::from([admin.user_id]),
        };
        let frontend = w.spawn(&bot, access);

        let doc = w.emu.world().add_document(
            Content::pseudo(3 << 20),
            "My Film (2024).mkv",
            "video/x-matroska",
            4,
        );
        w.emu
            .world()
            .user_sends_document(alice.user_id, w.bot.user_id, doc.id, "");
        let reply = w.wait_replies(alice.user_id, 1).await.remove(0);
        let (token, name) = download_token(&reply.text);
        assert_eq!(name, "My_Film_%282024%29.mkv");
        assert!(
            reply.text.contains(&format!("{BASE}/watch/{token}")),
            "{}",
            reply.text
        );
        assert!(reply.text.contains("3.0 MiB"), "{}", reply.text);

        let claims = keyring().verify(token, now_unix()).expect("token verifies");
        assert_eq!(claims.expires_at, None);
        assert_eq!(claims.file.chat_id, w.channel.bot_api_id());
        let stored: Vec<_> = w
            .emu
            .world()
            .sent_by(w.bot.user_id)
            .into_iter()
            .filter(|m| m.peer == Peer::Channel(w.channel.channel_id))
            .collect();
        assert_eq!(stored.len(), 1, "{stored:?}");
        assert_eq!(
            claims.file,
            FileRef {
                chat_id: w.channel.bot_api_id(),
                msg_id: stored[0].msg_id
            }
        );
        assert_eq!(stored[0].media_doc_id, Some(doc.id));

        // The copy is a real channel message the download path can resolve.
        let info = bot
            .fetch_document(w.channel.channel_id, claims.file.msg_id, deadline())
            .await
            .expect("stored message");
        assert_eq!(info.size, 3 << 20);

        w.emu
            .world()
            .user_sends_text(alice.user_id, w.bot.user_id, "/start");
        w.emu
            .world()
            .user_sends_text(alice.user_id, w.bot.user_id, "/help@cdn_bot");
        w.emu
            .world()
            .user_sends_text(alice.user_id, w.bot.user_id, "/stats");
        let replies = w.wait_replies(alice.user_id, 4).await;
        assert!(replies[1].text.starts_with("Hi!"), "{}", replies[1].text);
        assert!(
            replies[2].text.starts_with("How it works"),
            "{}",
            replies[2].text
        );
        assert!(
            replies[3]
                .text
                .contains("only available to the bot's administrators"),
            "{}",
            replies[3].text
        );

        w.emu
            .world()
            .user_sends_text(admin.user_id, w.bot.user_id, "/stats");
        let stats = w.wait_replies(admin.user_id, 1).await.remove(0);
        assert!(stats.text.contains("DCs: home 2"), "{}", stats.text);
        frontend.abort();
    })
    .await
}

#[tokio::test]
async fn users_off_the_allow_list_are_refused_politely() {
    bounded(async {
        let w = world().await;
        let alice = w.emu.world().register_user("alice");
        let mallory = w.emu.world().register_user("mallory");
        let store = Store::temporary().expect("store");
        let bot = w.main_bot(&store).await;
        let access = Access {
            allowed_users: Some(HashSet::from([alice.user_id])),
            admins: HashSet::new(),
        };
        let frontend = w.spawn(&bot, access);
        let doc = w
            .emu
            .world()
            .add_document(Content::pseudo(1000), "a.pdf", "application/pdf", 2);
        w.emu
            .world()
            .user_sends_document(mallory.user_id, w.bot.user_id, doc.id, "");
        let refusal = w.wait_replies(mallory.user_id, 1).await.remove(0);
        assert!(refusal.text.starts_with("Sorry"), "{}", refusal.text);
        assert!(!refusal.text.contains("/dl/"));

        w.emu
            .world()
            .user_sends_document(alice.user_id, w.bot.user_id, doc.id, "");
        let reply = w.wait_replies(alice.user_id, 1).await.remove(0);
        assert!(reply.text.contains("/dl/"), "{}", reply.text);
        let stored = w
            .emu
            .world()
            .sent_by(w.bot.user_id)
            .into_iter()
            .filter(|m| matches!(m.peer, Peer::Channel(_)))
            .count();
        assert_eq!(stored, 1, "only the allowed user's file is stored");
        frontend.abort();
    })
    .await
}

#[tokio::test]
async fn a_message_sent_while_the_core_is_down_is_answered_once_after_restart() {
    bounded(async {
        let w = world().await;
        let alice = w.emu.world().register_user("alice");
        let dir = tempfile::tempdir().expect("tempdir");

        {
            let store = Store::open(dir.path()).expect("store");
            let bot = w.main_bot(&store).await;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let frontend = FrontEnd::new(Arc::clone(&bot), keyring(), w.config(Access::default()))
                .expect("front-end")
                .spawn_until(async move {
                    let _ = stopped.await;
                });
            w.emu
                .world()
                .user_sends_text(alice.user_id, w.bot.user_id, "/help");
            w.wait_replies(alice.user_id, 1).await;
            // A clean stop: the answered message is committed before the task ends.
            stop.send(()).expect("front-end running");
            frontend.await.expect("front-end stops cleanly");
            let bot = Arc::try_unwrap(bot)
                .unwrap_or_else(|_| panic!("the front-end still holds the bot"));
            bot.shutdown().await;
            store.flush().await.expect("flush");
        }

        // Nobody is connected: this message waits in the bot's mailbox.
        let doc = w
            .emu
            .world()
            .add_document(Content::pseudo(4096), "notes.txt", "text/plain", 2);
        w.emu
            .world()
            .user_sends_document(alice.user_id, w.bot.user_id, doc.id, "");
        let sign_ins = w.emu.counters().bot_sign_ins;

        let store = Store::open(dir.path()).expect("store reopens");
        let bot = BotClient::start_receiving_updates(store.sessions_tree(), &bot_config())
            .expect("bot starts");
        assert!(!bot.sign_in_if_needed(deadline()).await.expect("authorised"));
        let frontend = w.spawn(&Arc::new(bot), Access::default());
        let replies = w.wait_replies(alice.user_id, 2).await;
        assert!(replies[1].text.contains("notes.txt"), "{}", replies[1].text);
        // One update at a time, in order: once a message sent after the backlog is
        // answered, a duplicate of an earlier answer would already be there.
        w.emu
            .world()
            .user_sends_text(alice.user_id, w.bot.user_id, "/help");
        let replies = w.wait_replies(alice.user_id, 3).await;
        assert_eq!(replies.len(), 3, "{replies:?}");
        assert_eq!(
            replies[2].text, replies[0].text,
            "the marker gets the help text"
        );
        assert_eq!(w.emu.counters().bot_sign_ins, sign_ins);
        assert!(w.emu.counters().requests_for("updates.getDifference") >= 1);
        frontend.abort();
    })
    .await
}

#[tokio::test]
async fn a_failed_resend_falls_back_to_forwarding() {
    bounded(async {
        let w = world().await;
        let alice = w.emu.world().register_user("alice");
        let store = Store::temporary().expect("store");
        let bot = w.main_bot(&store).await;
        let frontend = w.spawn(&bot, Access::default());
        // Every request of the bot waits 30 ms and references live 5 ms, so the one in the
        // user's message is stale when sendMedia is handled: the bot must forward instead.
        w.emu.faults().set_latency(
            Scope::Bot(w.bot.user_id),
            Latency::Fixed(Duration::from_millis(30)),
        );
        w.emu.faults().file_reference_ttl(Duration::from_millis(5));
        let doc = w
            .emu
            .world()
            .add_document(Content::pseudo(5000), "clip.mp4", "video/mp4", 2);
        let sent = w
            .emu
            .world()
            .user_sends_document(alice.user_id, w.bot.user_id, doc.id, "");
        let reply = w.wait_replies(alice.user_id, 1).await.remove(0);
        let (token, _) = download_token(&reply.text);
        let claims = keyring().verify(token, now_unix()).expect("token verifies");
        let stored = w
            .emu
            .world()
            .sent_by(w.bot.user_id)
            .into_iter()
            .find(|m| m.peer == Peer::Channel(w.channel.channel_id))
            .expect("a copy in the channel");
        assert_eq!(stored.msg_id, claims.file.msg_id);
        assert_eq!(stored.media_doc_id, Some(doc.id));
        assert_eq!(
            stored.forwarded_from,
            Some((Peer::User(alice.user_id), sent))
        );
        assert_eq!(w.emu.counters().requests_for("messages.sendMedia"), 1);
        frontend.abort();
    })
    .await
}

/// `/revoke <link>` from an admin revokes the file (stored, announced to edges) and gives
/// the bot's links an expiry when one is configured; a non-admin is refused and revokes
/// nothing.
#[tokio::test]
async fn an_admin_revokes_a_link_from_the_bot_and_links_carry_the_expiry() {
    bounded(async {
        let w = world().await;
        let alice = w.emu.world().register_user("alice");
        let admin = w.emu.world().register_user("admin");
        let store = Store::temporary().expect("store");
        let bot = w.main_bot(&store).await;
        let revocations = Arc::new(tgcdn_core::revoke::Revocations::new(store.clone()));
        let mut announced = revocations.subscribe();
        let access = Access {
            allowed_users: None,
            admins: HashSet::from([admin.user_id]),
        };
        let frontend = FrontEnd::new(Arc::clone(&bot), keyring(), w.config(access))
            .expect("front-end")
            .with_revocations(Arc::clone(&revocations))
            .with_link_expiry(Some(Duration::from_secs(7 * 86_400)))
            .spawn();

        let doc = w
            .emu
            .world()
            .add_document(Content::pseudo(1000), "a.pdf", "application/pdf", 2);
        w.emu
            .world()
            .user_sends_document(alice.user_id, w.bot.user_id, doc.id, "");
        let reply = w.wait_replies(alice.user_id, 1).await.remove(0);
        let (token, _) = download_token(&reply.text);
        let claims = keyring().verify(token, now_unix()).expect("token verifies");
        let expires_at = claims.expires_at.expect("the link expires");
        assert!(
            expires_at.abs_diff(now_unix() + 7 * 86_400) < 60,
            "{expires_at}"
        );
        let link = format!("{BASE}/dl/{token}/a.pdf");

        w.emu
            .world()
            .user_sends_text(alice.user_id, w.bot.user_id, &format!("/revoke {link}"));
        let refused = w.wait_replies(alice.user_id, 2).await.remove(1);
        assert!(refused.text.contains("/revoke"), "{}", refused.text);
        assert_eq!(store.revocation(claims.file).expect("store"), None);

        w.emu
            .world()
            .user_sends_text(admin.user_id, w.bot.user_id, "/revoke");
        w.emu
            .world()
            .user_sends_text(admin.user_id, w.bot.user_id, &format!("/revoke {link}"));
        let replies = w.wait_replies(admin.user_id, 2).await;
        assert!(
            replies[0].text.starts_with("Usage: /revoke"),
            "{}",
            replies[0].text
        );
        assert!(
            replies[1].text.starts_with("Revoked:"),
            "{}",
            replies[1].text
        );
        let revocation = store
            .revocation(claims.file)
            .expect("store")
            .expect("revoked");
        assert!(revocation.reason.contains(&admin.user_id.to_string()));
        assert_eq!(
            announced.try_recv(),
            Ok(tgcdn_core::revoke::Change::Revoked(claims.file))
        );
        frontend.abort();
    })
    .await
}
