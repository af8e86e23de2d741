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

fn input_channel(channel: tgemu::ChannelInfo) -> grammers_tl_types::enums::InputChannel {
    grammers_tl_types::types::InputChannel {
        channel_id: channel.channel_id,
        access_hash: channel.access_hash,
    }
    .into()
}

#[tokio::test]
async fn channel_edits_batch_deletes_too_long_differences_and_the_get_messages_limit() {
    use grammers_tl_types as tl;
    let emu = emulator().await;
    let world = emu.world();
    let bot_info = world.register_bot("6:admin", "admin_bot");
    let channel = world.create_channel("catalogue");
    world.add_channel_member(channel.channel_id, bot_info.user_id, true);
    let doc = world.add_document(Content::pseudo(1000), "f.mkv", "video/x-matroska", 2);
    let mut bot = bot(&emu, "6:admin").await;
    let updates = bot.updates.take().expect("updates");
    let mut stream = within(
        bot.client
            .stream_updates(updates, UpdatesConfiguration::default()),
    )
    .await
    .expect("stream");

    let first = world.post_document(channel.channel_id, doc.id, "old caption");
    let text = world.post_text(channel.channel_id, "just words");
    for expected in [first, text] {
        match within(stream.next()).await.expect("post") {
            Update::NewMessage(m) => assert_eq!(m.id(), expected),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(world.edit_post(channel.channel_id, first, "new caption"));
    assert!(!world.edit_post(channel.channel_id, 999, "nothing"));
    match within(stream.next()).await.expect("edit") {
        Update::MessageEdited(m) => {
            assert_eq!((m.id(), m.text()), (first, "new caption"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        world.delete_posts(channel.channel_id, &[first, text, 999]),
        2
    );
    match within(stream.next()).await.expect("delete") {
        Update::MessageDeleted(d) => {
            assert_eq!(d.channel_id(), Some(channel.channel_id));
            assert_eq!(d.messages(), [first, text]);
        }
        other => panic!("unexpected {other:?}"),
    }

    // Five events happened (2 posts, 1 edit, 2 deletions) plus one more post now: a limit
    // of 2 from pts 1 is too long, and the answer names the newest message.
    let newest = world.post_document(channel.channel_id, doc.id, "newest");
    let request = |limit| tl::functions::updates::GetChannelDifference {
        force: false,
        channel: input_channel(channel),
        filter: tl::enums::ChannelMessagesFilter::Empty,
        pts: 1,
        limit,
    };
    match within(bot.client.invoke(&request(2))).await.expect("diff") {
        tl::enums::updates::ChannelDifference::TooLong(too_long) => {
            let tl::enums::Dialog::Dialog(dialog) = too_long.dialog else {
                panic!("a dialog")
            };
            assert_eq!(dialog.top_message, newest);
            assert_eq!(dialog.pts, Some(7));
            assert_eq!(too_long.messages.len(), 1);
        }
        other => panic!("expected too long, got {other:?}"),
    }
    match within(bot.client.invoke(&request(100)))
        .await
        .expect("diff")
    {
        tl::enums::updates::ChannelDifference::Difference(diff) => {
            assert_eq!(diff.pts, 7);
            assert_eq!(diff.new_messages.len(), 1, "only the newest still exists");
            // The edit of a since-deleted post is not replayed; its deletion is.
            assert!(
                diff.other_updates
                    .iter()
                    .all(|u| matches!(u, tl::enums::Update::DeleteChannelMessages(_)))
            );
            assert_eq!(diff.other_updates.len(), 2);
        }
        other => panic!("expected a difference, got {other:?}"),
    }

    let get = |ids: std::ops::RangeInclusive<i32>| tl::functions::channels::GetMessages {
        channel: input_channel(channel),
        id: ids
            .map(|id| tl::types::InputMessageId { id }.into())
            .collect(),
    };
    let (code, name) = rpc_error(within(bot.client.invoke(&get(1..=201))).await);
    assert_eq!((code, name.as_str()), (400, "LIMIT_INVALID"));
    match within(bot.client.invoke(&get(1..=200)))
        .await
        .expect("200 ids")
    {
        tl::enums::messages::Messages::ChannelMessages(m) => {
            assert_eq!(m.messages.len(), 200);
            let real = m
                .messages
                .iter()
                .filter(|m| matches!(m, tl::enums::Message::Message(_)))
                .count();
            assert_eq!(real, 1, "missing ids are messageEmpty");
        }
        other => panic!("unexpected {other:?}"),
    }
    let calls = emu.counters();
    let calls = calls.get_messages_in(channel.channel_id);
    assert_eq!(calls.len(), 1, "the refused call is not counted");
    assert_eq!(calls[0].ids.len(), 200);
}
