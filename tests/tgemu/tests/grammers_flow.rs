//! The whole flow a tgcdn core needs, with the real grammers 0.11 client: connect with a
//! provisioned key, sign in as a bot, get_me, receive a user's document through the
//! updates stream, fetch a channel post by id, and download a 5 MiB document living on
//! DC 4 in 512 KiB parts, two in flight, after FILE_MIGRATE_4 and export/import.

mod common;

use common::*;
use grammers_client::tl;
use grammers_client::update::Update;
use grammers_mtsender::UpdatesConfiguration;
use tgemu::Content;

const PART: i32 = 512 * 1024;

#[tokio::test]
async fn bot_signs_in_receives_and_downloads_from_the_media_dc() {
    let emu = emulator().await;
    let world = emu.world();
    let bot_info = world.register_bot("123:abc", "cdn_bot");
    let alice = world.register_user("alice");
    let channel = world.create_channel("storage");
    world.add_channel_member(channel.channel_id, bot_info.user_id, true);

    let mut bot = bot(&emu, "123:abc").await;
    let me = within(bot.client.get_me()).await.expect("get_me");
    assert_eq!(me.id().bare_id(), Some(bot_info.user_id));
    assert_eq!(emu.counters().bot_sign_ins, 1);

    // A user sends the bot a document; it arrives through the updates stream.
    let updates = bot.updates.take().expect("updates receiver");
    let mut stream = within(
        bot.client
            .stream_updates(updates, UpdatesConfiguration::default()),
    )
    .await
    .expect("update stream");
    let small = world.add_document(
        Content::pseudo(4096),
        "a.bin",
        "application/octet-stream",
        2,
    );
    let sent_id = world.user_sends_document(alice.user_id, bot_info.user_id, small.id, "here");
    let update = within(stream.next()).await.expect("an update");
    let Update::NewMessage(message) = update else {
        panic!("unexpected update {update:?}")
    };
    assert_eq!(message.id(), sent_id);
    assert_eq!(message.text(), "here");
    let location = document_location(&message.into_inner().raw).expect("a document");
    assert_eq!(location.id, small.id);

    // A document posted to the channel, fetched by message id.
    let big = world.add_document(
        Content::pseudo(5 * 1024 * 1024),
        "film.mkv",
        "video/x-matroska",
        4,
    );
    let post_id = world.post_document(channel.channel_id, big.id, "film");
    let post = channel_message(&bot.client, channel, post_id)
        .await
        .expect("channel message");
    let location = document_location(&post).expect("the post has a document");

    // Home DC answers FILE_MIGRATE_4; DC 4 says AUTH_KEY_UNREGISTERED until import.
    let at_home = within(bot.client.invoke(&get_file(&location, 0, PART))).await;
    assert_eq!(rpc_error(at_home), (303, "FILE_MIGRATE_4".to_owned()));
    let before_import = within(bot.client.invoke_in_dc(4, &get_file(&location, 0, PART))).await;
    assert_eq!(
        rpc_error(before_import),
        (401, "AUTH_KEY_UNREGISTERED".to_owned())
    );
    copy_auth(&bot.client, 4).await.expect("export/import");
    let counters = emu.counters();
    assert_eq!((counters.auth_exports, counters.auth_imports), (1, 1));

    // 5 MiB in 512 KiB parts, two in flight.
    let mut downloaded = Vec::with_capacity(big.size as usize);
    let mut offset = 0i64;
    while (offset as u64) < big.size {
        let first = get_file(&location, offset, PART);
        let second = get_file(&location, offset + PART as i64, PART);
        let (a, b) = within(async {
            tokio::join!(
                bot.client.invoke_in_dc(4, &first),
                bot.client.invoke_in_dc(4, &second)
            )
        })
        .await;
        downloaded.extend(file_bytes(a.expect("first part")));
        downloaded.extend(file_bytes(b.expect("second part")));
        offset += 2 * PART as i64;
    }
    assert_eq!(downloaded.len() as u64, big.size);
    assert!(
        downloaded == emu.content_slice(big.id, 0, big.size as usize),
        "bytes differ"
    );
    assert_eq!(emu.counters().get_file_by_dc.get(&4), Some(&10));
    drop(stream);
}

#[tokio::test]
async fn sending_media_and_forwarding_is_recorded() {
    let emu = emulator().await;
    let world = emu.world();
    let bot_info = world.register_bot("1:x", "b");
    let alice = world.register_user("alice");
    let dump = world.create_channel("dump");
    world.add_channel_member(dump.channel_id, bot_info.user_id, true);
    let doc = world.add_document(
        Content::pseudo(10_000),
        "x.bin",
        "application/octet-stream",
        2,
    );
    let bot = bot(&emu, "1:x").await;

    let msg_id = world.user_sends_document(alice.user_id, bot_info.user_id, doc.id, "file");
    // The bot forwards the user's message to the dump channel, then re-sends the document.
    let forward = tl::functions::messages::ForwardMessages {
        silent: false,
        background: false,
        with_my_score: false,
        drop_author: false,
        drop_media_captions: false,
        noforwards: false,
        allow_paid_floodskip: false,
        from_ephemeral: false,
        from_peer: tl::enums::InputPeer::User(tl::types::InputPeerUser {
            user_id: alice.user_id,
            access_hash: alice.access_hash,
        }),
        id: vec![msg_id],
        random_id: vec![7],
        to_peer: tl::enums::InputPeer::Channel(tl::types::InputPeerChannel {
            channel_id: dump.channel_id,
            access_hash: dump.access_hash,
        }),
        top_msg_id: None,
        reply_to: None,
        schedule_date: None,
        schedule_repeat_period: None,
        send_as: None,
        quick_reply_shortcut: None,
        effect: None,
        video_timestamp: None,
        allow_paid_stars: None,
        suggested_post: None,
    };
    within(bot.client.invoke(&forward)).await.expect("forward");
    let sent = world.sent_by(bot_info.user_id);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].peer, tgemu::Peer::Channel(dump.channel_id));
    assert_eq!(sent[0].media_doc_id, Some(doc.id));
    assert_eq!(
        sent[0].forwarded_from,
        Some((tgemu::Peer::User(alice.user_id), msg_id))
    );

    let posted = channel_message(&bot.client, dump, sent[0].msg_id)
        .await
        .expect("post");
    let location = document_location(&posted).expect("document");
    let send_media = tl::functions::messages::SendMedia {
        silent: false,
        background: false,
        clear_draft: false,
        noforwards: false,
        update_stickersets_order: false,
        invert_media: false,
        allow_paid_floodskip: false,
        peer: tl::enums::InputPeer::User(tl::types::InputPeerUser {
            user_id: alice.user_id,
            access_hash: alice.access_hash,
        }),
        reply_to: None,
        media: tl::enums::InputMedia::Document(tl::types::InputMediaDocument {
            spoiler: false,
            id: tl::enums::InputDocument::Document(tl::types::InputDocument {
                id: location.id,
                access_hash: location.access_hash,
                file_reference: location.file_reference.clone(),
            }),
            video_cover: None,
            video_timestamp: None,
            ttl_seconds: None,
            query: None,
        }),
        message: "your link".to_owned(),
        random_id: 9,
        reply_markup: None,
        entities: None,
        schedule_date: None,
        schedule_repeat_period: None,
        send_as: None,
        quick_reply_shortcut: None,
        effect: None,
        allow_paid_stars: None,
        suggested_post: None,
    };
    within(bot.client.invoke(&send_media))
        .await
        .expect("send media");
    let sent = world.sent_by(bot_info.user_id);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].peer, tgemu::Peer::User(alice.user_id));
    assert_eq!(sent[1].text, "your link");
    assert_eq!(sent[1].media_doc_id, Some(doc.id));
}

#[tokio::test]
async fn several_pools_share_one_key() {
    let emu = emulator().await;
    let world = emu.world();
    let bot_info = world.register_bot("3:multi", "multi");
    let channel = world.create_channel("c");
    world.add_channel_member(channel.channel_id, bot_info.user_id, true);
    let doc = world.add_document(
        Content::pseudo(2 * 1024 * 1024),
        "m.bin",
        "application/octet-stream",
        2,
    );
    let post_id = world.post_document(channel.channel_id, doc.id, "");

    let key = emu.provision_auth_key();
    let first = client(&emu, key);
    within(first.client.bot_sign_in("3:multi", "hash"))
        .await
        .expect("sign in once");
    let second = client(&emu, key); // its own session copy, same key, no sign-in
    let post = channel_message(&first.client, channel, post_id)
        .await
        .expect("post");
    let location = document_location(&post).expect("document");
    let (r1, r2) = (
        get_file(&location, 0, PART),
        get_file(&location, PART as i64, PART),
    );
    let (a, b) =
        within(async { tokio::join!(first.client.invoke(&r1), second.client.invoke(&r2)) }).await;
    let mut bytes = file_bytes(a.expect("pool 1"));
    bytes.extend(file_bytes(b.expect("pool 2")));
    assert!(bytes == emu.content_slice(doc.id, 0, 2 * PART as usize));
    assert_eq!(emu.counters().bot_sign_ins, 1);
    assert_eq!(emu.counters().connections_by_dc.get(&2), Some(&2));
}

#[tokio::test]
async fn large_requests_arrive_gzip_packed_and_are_understood() {
    let emu = emulator().await;
    let world = emu.world();
    let bot_info = world.register_bot("8:gz", "gz");
    let carol = world.register_user("carol");
    let bot = bot(&emu, "8:gz").await;
    // grammers gzips requests of 512 bytes or more when that makes them smaller.
    let text = "all work and no play ".repeat(100);
    let request = tl::functions::messages::SendMessage {
        no_webpage: true,
        silent: false,
        background: false,
        clear_draft: false,
        noforwards: false,
        update_stickersets_order: false,
        invert_media: false,
        allow_paid_floodskip: false,
        peer: tl::enums::InputPeer::User(tl::types::InputPeerUser {
            user_id: carol.user_id,
            access_hash: carol.access_hash,
        }),
        reply_to: None,
        message: text.clone(),
        random_id: 1,
        reply_markup: None,
        entities: None,
        schedule_date: None,
        schedule_repeat_period: None,
        send_as: None,
        quick_reply_shortcut: None,
        effect: None,
        allow_paid_stars: None,
        suggested_post: None,
        rich_message: None,
    };
    within(bot.client.invoke(&request))
        .await
        .expect("sendMessage");
    assert!(
        emu.counters().gzipped_requests >= 1,
        "grammers did not compress"
    );
    // Every fresh connection starts with salt 0 and is corrected once.
    assert!(emu.counters().bad_server_salts >= 1);
    let sent = world.sent_by(bot_info.user_id);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].text, text);
    assert_eq!(sent[0].peer, tgemu::Peer::User(carol.user_id));
}
