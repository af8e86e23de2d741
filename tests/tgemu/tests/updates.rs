//! Updates with real pts: live pushes (private messages, channel posts, deletions), then a
//! client restart on the same session catching up through updates.getDifference and
//! updates.getChannelDifference without signing in again.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::*;
use grammers_client::Client;
use grammers_client::sender::{ConnectionParams, NoRetries, SenderPool};
use grammers_client::update::Update;
use grammers_mtsender::UpdatesConfiguration;
use tgemu::{Content, Peer};

fn message_ids(update: Update) -> (String, i32) {
    match update {
        Update::NewMessage(m) => (format!("new:{}", m.text()), m.id()),
        Update::MessageDeleted(d) => ("deleted".to_owned(), d.messages()[0]),
        other => panic!("unexpected update {other:?}"),
    }
}

#[tokio::test]
async fn live_updates_then_catch_up_after_restart() {
    let emu = emulator().await;
    let world = emu.world();
    let bot_info = world.register_bot("5:live", "live_bot");
    let bob = world.register_user("bob");
    let channel = world.create_channel("films");
    world.add_channel_member(channel.channel_id, bot_info.user_id, false);
    let doc = world.add_document(Content::pseudo(1000), "f.mkv", "video/x-matroska", 2);

    let key = emu.provision_auth_key();
    let session = Arc::new(emu.session_for(key, 2));
    let pool = |catch_up_session: Arc<grammers_session::storages::MemorySession>| {
        let params = ConnectionParams {
            retry_policy: Box::new(NoRetries),
            ..Default::default()
        };
        let SenderPool {
            runner,
            handle,
            updates,
        } = SenderPool::with_configuration(catch_up_session, API_ID, params);
        (Client::new(handle), tokio::spawn(runner.run()), updates)
    };

    // Online: every kind of live update, in order.
    let (client, runner, updates) = pool(session.clone());
    within(client.bot_sign_in("5:live", "hash"))
        .await
        .expect("sign in");
    let mut stream = within(client.stream_updates(updates, UpdatesConfiguration::default()))
        .await
        .expect("stream");
    // The first next() fetches the state; push only after the stream is live.
    let post = world.post_document(channel.channel_id, doc.id, "first");
    assert_eq!(
        message_ids(within(stream.next()).await.expect("post")),
        ("new:first".into(), post)
    );
    let text = world.user_sends_text(bob.user_id, bot_info.user_id, "hello");
    assert_eq!(
        message_ids(within(stream.next()).await.expect("text")),
        ("new:hello".into(), text)
    );
    assert!(world.delete_message(Peer::User(bot_info.user_id), text));
    assert_eq!(
        message_ids(within(stream.next()).await.expect("delete")),
        ("deleted".into(), text)
    );
    within(stream.sync_update_state())
        .await
        .expect("persist state");
    drop(stream);
    drop(client);
    runner.abort();

    // Offline: two posts and a private message nobody is connected to receive.
    let p2 = world.post_document(channel.channel_id, doc.id, "second");
    let p3 = world.post_document(channel.channel_id, doc.id, "third");
    let t2 = world.user_sends_document(bob.user_id, bot_info.user_id, doc.id, "doc");

    // Restart on the same session: no sign-in, catch up on all three.
    let (client, runner, updates) = pool(session.clone());
    assert!(within(client.is_authorized()).await.expect("authorized"));
    let mut stream =
        within(client.stream_updates(updates, UpdatesConfiguration { catch_up: true }))
            .await
            .expect("stream");
    let mut got = BTreeSet::new();
    for _ in 0..3 {
        got.insert(message_ids(
            within(stream.next()).await.expect("caught-up update"),
        ));
    }
    let expected: BTreeSet<_> = [
        ("new:second".into(), p2),
        ("new:third".into(), p3),
        ("new:doc".into(), t2),
    ]
    .into();
    assert_eq!(got, expected);
    let counters = emu.counters();
    assert_eq!(
        counters.bot_sign_ins, 1,
        "the restart must not sign in again"
    );
    assert!(counters.requests_for("updates.getDifference") >= 1);
    assert!(counters.requests_for("updates.getChannelDifference") >= 1);
    runner.abort();
}
