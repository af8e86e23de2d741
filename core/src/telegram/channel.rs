//! Catalogue channels as Telegram shows them to a bot: channel messages from the update
//! feed turned into [`IndexEvent`]s, and [`BotClient`] as the back-fill's
//! [`ChannelReader`] — the newest message id of a channel (`updates.getChannelDifference`
//! from pts 1 with limit 1: Telegram answers `channelDifferenceTooLong` with the dialog's
//! top message) and a batch of messages (`channels.getMessages`, up to 200 ids).
//!
//! Called by `chat.rs` (the update feed) and by `catalog/backfill.rs` through the port
//! (`ports::channel`).
//! Grammers types stay here; what leaves is [`ChannelPost`] / [`IndexEvent`].

use std::sync::Arc;
use std::time::Instant;

use grammers_tl_types as tl;
use tgcdn_shared::FileRef;

use super::download::channel_bare_id;
use super::{BotClient, TelegramError, within};
use crate::ports::BoxFuture;
use crate::ports::channel::{ChannelPost, ChannelReader, IndexEvent, MAX_BATCH};

/// The Bot API id (`-100…`) of a bare channel id.
pub fn channel_bot_api_id(bare_id: i64) -> i64 {
    -1_000_000_000_000 - bare_id
}

/// The event a channel message (new or edited) means for the catalogue; `None` for a
/// message outside a channel or a service message.
pub(super) fn channel_event(raw: &tl::enums::Message) -> Option<IndexEvent> {
    let tl::enums::Message::Message(message) = raw else {
        return None;
    };
    let tl::enums::Peer::Channel(channel) = &message.peer_id else {
        return None;
    };
    let file = FileRef {
        chat_id: channel_bot_api_id(channel.channel_id),
        msg_id: message.id,
    };
    Some(channel_post(message, file).map_or(IndexEvent::NotAPost(file), IndexEvent::Post))
}

/// Messages deleted from channel `bare_id`.
pub(super) fn deletion_event(bare_id: i64, msg_ids: Vec<i32>) -> IndexEvent {
    IndexEvent::Deleted {
        channel: channel_bot_api_id(bare_id),
        msg_ids,
    }
}

/// The post a message is, when it carries a document (photos and text are not posts).
fn channel_post(message: &tl::types::Message, file: FileRef) -> Option<ChannelPost> {
    let Some(tl::enums::MessageMedia::Document(media)) = &message.media else {
        return None;
    };
    let Some(tl::enums::Document::Document(document)) = &media.document else {
        return None;
    };
    let file_name = document
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            tl::enums::DocumentAttribute::Filename(f) => Some(f.file_name.clone()),
            _ => None,
        });
    Some(ChannelPost {
        file,
        file_name,
        caption: Some(message.message.clone()).filter(|text| !text.trim().is_empty()),
        size: u64::try_from(document.size).ok()?,
        mime: document.mime_type.clone(),
        date: u64::try_from(message.date).unwrap_or(0),
    })
}

fn bare(channel: i64) -> Result<i64, TelegramError> {
    channel_bare_id(channel)
        .ok_or_else(|| TelegramError::Other(format!("{channel} is not a channel id (-100…)")))
}

impl BotClient {
    async fn input_channel(&self, bare_id: i64) -> tl::enums::InputChannel {
        tl::types::InputChannel {
            channel_id: bare_id,
            access_hash: self.channel_access_hash(bare_id).await,
        }
        .into()
    }

    /// The newest message id of channel `channel` (Bot API id); 0 when it has none.
    pub async fn newest_channel_message(
        &self,
        channel: i64,
        deadline: Instant,
    ) -> Result<i32, TelegramError> {
        let request = tl::functions::updates::GetChannelDifference {
            force: false,
            channel: self.input_channel(bare(channel)?).await,
            filter: tl::enums::ChannelMessagesFilter::Empty,
            pts: 1,
            limit: 1,
        };
        let answer = within(deadline, self.main().invoke(&request)).await?;
        Ok(newest_id(&answer))
    }

    /// Messages `ids` of channel `channel` (Bot API id) as catalogue events, one per id.
    pub async fn channel_events(
        &self,
        channel: i64,
        ids: &[i32],
        deadline: Instant,
    ) -> Result<Vec<IndexEvent>, TelegramError> {
        if ids.len() > MAX_BATCH {
            return Err(TelegramError::Other(format!(
                "{} ids in one getMessages (at most {MAX_BATCH})",
                ids.len()
            )));
        }
        let request = tl::functions::channels::GetMessages {
            channel: self.input_channel(bare(channel)?).await,
            id: ids
                .iter()
                .map(|&id| tl::types::InputMessageId { id }.into())
                .collect(),
        };
        let answer = within(deadline, self.main().invoke(&request)).await?;
        Ok(events_for(channel, ids, answer))
    }
}

/// The top message id a `getChannelDifference` answer shows.
fn newest_id(answer: &tl::enums::updates::ChannelDifference) -> i32 {
    use tl::enums::updates::ChannelDifference;
    match answer {
        ChannelDifference::Empty(_) => 0,
        ChannelDifference::TooLong(too_long) => match &too_long.dialog {
            tl::enums::Dialog::Dialog(dialog) => dialog.top_message,
            _ => 0,
        }
        .max(too_long.messages.iter().map(message_id).max().unwrap_or(0)),
        ChannelDifference::Difference(difference) => difference
            .new_messages
            .iter()
            .map(message_id)
            .max()
            .unwrap_or(0),
    }
}

fn message_id(message: &tl::enums::Message) -> i32 {
    match message {
        tl::enums::Message::Message(m) => m.id,
        tl::enums::Message::Service(m) => m.id,
        tl::enums::Message::Empty(m) => m.id,
    }
}

/// One event per requested id: the post, or `NotAPost` for a missing or file-less message.
fn events_for(channel: i64, ids: &[i32], answer: tl::enums::messages::Messages) -> Vec<IndexEvent> {
    use tl::enums::messages::Messages;
    let messages = match answer {
        Messages::Messages(m) => m.messages,
        Messages::Slice(m) => m.messages,
        Messages::ChannelMessages(m) => m.messages,
        Messages::NotModified(_) => Vec::new(),
    };
    ids.iter()
        .map(|&msg_id| {
            let file = FileRef {
                chat_id: channel,
                msg_id,
            };
            messages
                .iter()
                .find_map(|message| match message {
                    tl::enums::Message::Message(m) if m.id == msg_id => channel_post(m, file),
                    _ => None,
                })
                .map_or(IndexEvent::NotAPost(file), IndexEvent::Post)
        })
        .collect()
}

impl ChannelReader for BotClient {
    fn reader_id(&self) -> i64 {
        self.bot_id()
    }

    fn newest_message_id(
        self: Arc<Self>,
        channel: i64,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<i32, TelegramError>> {
        Box::pin(async move { self.newest_channel_message(channel, deadline).await })
    }

    fn read_messages(
        self: Arc<Self>,
        channel: i64,
        ids: Vec<i32>,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<Vec<IndexEvent>, TelegramError>> {
        Box::pin(async move { self.channel_events(channel, &ids, deadline).await })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{document_media, message_with, photo_media};
    use super::*;

    /// `message_with` puts messages in bare channel 1.
    const CHANNEL: i64 = -1_000_000_000_001;

    fn with_text(mut message: tl::enums::Message, text: &str) -> tl::enums::Message {
        if let tl::enums::Message::Message(m) = &mut message {
            m.message = text.into();
        }
        message
    }

    #[test]
    fn channel_messages_become_posts_or_not_posts() {
        let film = with_text(
            message_with(
                Some(document_media(7 << 20, Some("Film.2019.1080p.mkv"))),
                5,
            ),
            "Film (2019)",
        );
        let Some(IndexEvent::Post(post)) = channel_event(&film) else {
            panic!("a post")
        };
        assert_eq!(
            post.file,
            FileRef {
                chat_id: CHANNEL,
                msg_id: 5
            }
        );
        assert_eq!(post.file_name.as_deref(), Some("Film.2019.1080p.mkv"));
        assert_eq!(post.caption.as_deref(), Some("Film (2019)"));
        assert_eq!((post.size, post.mime.as_str()), (7 << 20, "video/mp4"));
        assert_eq!(post.date, 1_700_000_000);
        let bare_file = message_with(Some(document_media(1, None)), 6);
        let Some(IndexEvent::Post(post)) = channel_event(&bare_file) else {
            panic!("a post")
        };
        assert_eq!((post.file_name, post.caption), (None, None));
        assert_eq!(
            channel_event(&with_text(message_with(None, 7), "news")),
            Some(IndexEvent::NotAPost(FileRef {
                chat_id: CHANNEL,
                msg_id: 7
            }))
        );
        // The resolver serves photos, but the catalogue lists videos and documents only.
        let photo = tl::types::PhotoSize {
            r#type: "y".into(),
            w: 1280,
            h: 960,
            size: 90_000,
        };
        assert_eq!(
            channel_event(&message_with(Some(photo_media(vec![photo.into()])), 9)),
            Some(IndexEvent::NotAPost(FileRef {
                chat_id: CHANNEL,
                msg_id: 9
            }))
        );
        let mut private = message_with(None, 8);
        if let tl::enums::Message::Message(m) = &mut private {
            m.peer_id = tl::types::PeerUser { user_id: 9 }.into();
        }
        assert_eq!(channel_event(&private), None);
        assert_eq!(
            deletion_event(1, vec![3, 4]),
            IndexEvent::Deleted {
                channel: CHANNEL,
                msg_ids: vec![3, 4]
            }
        );
    }

    #[test]
    fn a_batch_answers_one_event_per_requested_id() {
        let answer: tl::enums::messages::Messages = tl::types::messages::ChannelMessages {
            inexact: false,
            pts: 1,
            count: 3,
            offset_id_offset: None,
            messages: vec![
                message_with(Some(document_media(10, Some("a.mkv"))), 3),
                tl::types::MessageEmpty {
                    id: 2,
                    peer_id: None,
                }
                .into(),
                message_with(None, 1),
            ],
            topics: Vec::new(),
            chats: Vec::new(),
            users: Vec::new(),
        }
        .into();
        let events = events_for(CHANNEL, &[3, 2, 1, 0], answer);
        assert!(matches!(&events[0], IndexEvent::Post(p) if p.file.msg_id == 3));
        for (event, id) in events[1..].iter().zip([2, 1, 0]) {
            assert_eq!(
                event,
                &IndexEvent::NotAPost(FileRef {
                    chat_id: CHANNEL,
                    msg_id: id
                })
            );
        }
    }

    #[test]
    fn the_newest_id_comes_from_any_difference_shape() {
        use tl::enums::updates::ChannelDifference;
        let empty = ChannelDifference::Empty(tl::types::updates::ChannelDifferenceEmpty {
            r#final: true,
            pts: 1,
            timeout: None,
        });
        assert_eq!(newest_id(&empty), 0);
        let difference = ChannelDifference::Difference(tl::types::updates::ChannelDifference {
            r#final: true,
            pts: 3,
            timeout: None,
            new_messages: vec![message_with(None, 4), message_with(None, 9)],
            other_updates: Vec::new(),
            chats: Vec::new(),
            users: Vec::new(),
        });
        assert_eq!(newest_id(&difference), 9);
        let dialog = tl::types::Dialog {
            pinned: false,
            unread_mark: false,
            view_forum_as_messages: false,
            peer: tl::types::PeerChannel { channel_id: 1 }.into(),
            top_message: 41,
            read_inbox_max_id: 0,
            read_outbox_max_id: 0,
            unread_count: 0,
            unread_mentions_count: 0,
            unread_reactions_count: 0,
            unread_poll_votes_count: 0,
            notify_settings: tl::types::PeerNotifySettings {
                show_previews: None,
                silent: None,
                mute_until: None,
                ios_sound: None,
                android_sound: None,
                other_sound: None,
                stories_muted: None,
                stories_hide_sender: None,
                stories_ios_sound: None,
                stories_android_sound: None,
                stories_other_sound: None,
            }
            .into(),
            pts: Some(50),
            draft: None,
            folder_id: None,
            ttl_period: None,
        };
        let too_long = ChannelDifference::TooLong(tl::types::updates::ChannelDifferenceTooLong {
            r#final: true,
            timeout: None,
            dialog: dialog.into(),
            messages: vec![message_with(None, 41)],
            chats: Vec::new(),
            users: Vec::new(),
        });
        assert_eq!(newest_id(&too_long), 41);
    }
}
