//! Photos as a real grammers 0.11 client sees them: a user's photo re-sent by the bot with
//! `InputMediaPhoto` into a channel, the post's `messageMediaPhoto` with a small
//! `photoSize` and a large `photoSizeProgressive`, and every size downloaded with
//! `inputPhotoFileLocation` under the document rules (byte-exact, FILE_MIGRATE on another
//! DC, FILE_REFERENCE_EXPIRED after the TTL, an unknown size refused).

mod common;

use std::time::Duration;

use common::*;
use grammers_client::tl;
use tgemu::{Content, PhotoSizeSpec};

const PART: i32 = 512 * 1024;

/// The photo of a raw message, if it has one.
fn photo_of(msg: &tl::enums::Message) -> Option<tl::types::Photo> {
    let tl::enums::Message::Message(m) = msg else {
        return None;
    };
    let Some(tl::enums::MessageMedia::Photo(media)) = &m.media else {
        return None;
    };
    match media.photo.clone()? {
        tl::enums::Photo::Photo(photo) => Some(photo),
        tl::enums::Photo::Empty(_) => None,
    }
}

fn photo_file(
    photo: &tl::types::Photo,
    size: &str,
    offset: i64,
    limit: i32,
) -> tl::functions::upload::GetFile {
    tl::functions::upload::GetFile {
        precise: false,
        cdn_supported: false,
        location: tl::types::InputPhotoFileLocation {
            id: photo.id,
            access_hash: photo.access_hash,
            file_reference: photo.file_reference.clone(),
            thumb_size: size.to_owned(),
        }
        .into(),
        offset,
        limit,
    }
}

fn send_photo(
    photo: &tl::types::Photo,
    to: tl::enums::InputPeer,
) -> tl::functions::messages::SendMedia {
    tl::functions::messages::SendMedia {
        silent: false,
        background: false,
        clear_draft: false,
        noforwards: false,
        update_stickersets_order: false,
        invert_media: false,
        allow_paid_floodskip: false,
        peer: to,
        reply_to: None,
        media: tl::types::InputMediaPhoto {
            spoiler: false,
            live_photo: false,
            id: tl::types::InputPhoto {
                id: photo.id,
                access_hash: photo.access_hash,
                file_reference: photo.file_reference.clone(),
            }
            .into(),
            ttl_seconds: None,
            video: None,
        }
        .into(),
        message: "a photo".to_owned(),
        random_id: 5,
        reply_markup: None,
        entities: None,
        schedule_date: None,
        schedule_repeat_period: None,
        send_as: None,
        quick_reply_shortcut: None,
        effect: None,
        allow_paid_stars: None,
        suggested_post: None,
    }
}

#[tokio::test]
async fn a_sent_photo_is_resent_and_every_size_downloads_under_the_document_rules() {
    let emu = emulator().await;
    let world = emu.world();
    let bot_info = world.register_bot("1:x", "b");
    let alice = world.register_user("alice");
    let channel = world.create_channel("storage");
    world.add_channel_member(channel.channel_id, bot_info.user_id, true);
    let large = 1024 * 1024 + 300_000;
    let photo = world.add_photo(
        vec![
            PhotoSizeSpec::new("m", 320, 240, Content::pseudo(20_000)),
            PhotoSizeSpec::new("y", 1280, 960, Content::pseudo(large)),
        ],
        4,
    );
    assert_eq!(photo.largest().map(|s| s.kind.as_str()), Some("y"));
    let bot = bot(&emu, "1:x").await;
    let msg_id = world.user_sends_photo(alice.user_id, bot_info.user_id, photo.id, "");

    // The bot sees the photo in its private chat and re-sends it to the channel.
    let request = tl::functions::messages::GetMessages {
        id: vec![tl::types::InputMessageId { id: msg_id }.into()],
    };
    let tl::enums::messages::Messages::Messages(private) = within(bot.client.invoke(&request))
        .await
        .expect("getMessages")
    else {
        panic!("private messages answer")
    };
    let received = photo_of(&private.messages[0]).expect("a photo");
    let to = tl::types::InputPeerChannel {
        channel_id: channel.channel_id,
        access_hash: channel.access_hash,
    };
    within(bot.client.invoke(&send_photo(&received, to.into())))
        .await
        .expect("sendMedia with InputMediaPhoto");
    let sent = world.sent_by(bot_info.user_id);
    assert_eq!(sent[0].media_photo_id, Some(photo.id));
    assert_eq!(sent[0].media_doc_id, None);

    let post = channel_message(&bot.client, channel, sent[0].msg_id)
        .await
        .expect("post");
    let stored = photo_of(&post).expect("the post has the photo");
    assert_eq!((stored.id, stored.dc_id), (photo.id, 4));
    assert!(matches!(
        &stored.sizes[0],
        tl::enums::PhotoSize::Size(s) if s.r#type == "m" && s.size == 20_000
    ));
    assert!(matches!(
        &stored.sizes[1],
        tl::enums::PhotoSize::Progressive(s) if s.r#type == "y" && s.sizes.last() == Some(&(large as i32))
    ));

    // Photos live on their DC like documents.
    let elsewhere = within(bot.client.invoke(&photo_file(&stored, "y", 0, PART))).await;
    assert_eq!(rpc_error(elsewhere), (303, "FILE_MIGRATE_4".to_owned()));
    copy_auth(&bot.client, 4)
        .await
        .expect("auth copied to DC 4");
    for size in &photo.sizes {
        let mut bytes = Vec::new();
        let mut offset = 0;
        while (offset as u64) < size.size {
            let part = within(
                bot.client
                    .invoke_in_dc(4, &photo_file(&stored, &size.kind, offset, PART)),
            )
            .await
            .unwrap_or_else(|e| panic!("size {} at {offset}: {e}", size.kind));
            bytes.extend(file_bytes(part));
            offset += i64::from(PART);
        }
        assert_eq!(bytes.len() as u64, size.size, "size {}", size.kind);
        assert!(
            bytes == emu.content_slice(size.content_id, 0, size.size as usize),
            "size {} bytes differ",
            size.kind
        );
    }
    let unknown = within(
        bot.client
            .invoke_in_dc(4, &photo_file(&stored, "w", 0, PART)),
    )
    .await;
    assert_eq!(rpc_error(unknown), (400, "LOCATION_INVALID".to_owned()));

    emu.faults().file_reference_ttl(Duration::from_secs(60));
    emu.advance_clock(Duration::from_secs(61));
    let stale = within(
        bot.client
            .invoke_in_dc(4, &photo_file(&stored, "y", 0, PART)),
    )
    .await;
    assert_eq!(rpc_error(stale), (400, "FILE_REFERENCE_EXPIRED".to_owned()));
    let fresh = channel_message(&bot.client, channel, sent[0].msg_id)
        .await
        .expect("post again");
    let fresh = photo_of(&fresh).expect("photo");
    within(
        bot.client
            .invoke_in_dc(4, &photo_file(&fresh, "y", 0, PART)),
    )
    .await
    .expect("a fresh reference works");
}
