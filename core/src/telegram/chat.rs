//! What the bot front-end needs from Telegram, in core types: the main bot's update feed
//! (with its state persisted in the bot's [`SledSession`], so a restart catches up through
//! `updates.getDifference` / `getChannelDifference` instead of losing messages) — private
//! messages, and channel posts, edits and deletions as catalogue events —, plain text
//! replies, and copying a user's file into the storage channel.
//!
//! Called by `frontend/` only. Like the rest of `telegram/`, this is where grammers types
//! stay: [`IncomingMessage`] and [`IncomingMedia`] carry the file's input location as a
//! private field, so callers can pass a message back to [`BotClient::copy_to_channel`]
//! without ever naming a TL type.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use grammers_client::client::UpdateStream;
use grammers_client::update::Update;
use grammers_mtsender::UpdatesConfiguration;
use grammers_session::Session;
use grammers_session::types::PeerId;
use grammers_tl_types as tl;

use super::{BotClient, SledSession, TelegramError, channel, within};
use crate::ports::channel::IndexEvent;

/// What kind of file a user sent; decides the default file name and the reply wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Document,
    Video,
    Audio,
    Photo,
    /// Media with no file the core serves (poll, location, contact, dice, game…).
    Other,
}

/// A file attached to an incoming message.
#[derive(Debug, Clone)]
pub struct IncomingMedia {
    pub kind: MediaKind,
    pub file_name: Option<String>,
    pub mime_type: Option<String>,
    /// Bytes, when Telegram says (for a photo, its largest size).
    pub size: Option<u64>,
    input: InputMedia,
}

#[derive(Debug, Clone)]
enum InputMedia {
    Document(tl::types::InputDocument),
    Photo(tl::types::InputPhoto),
    /// Nothing to copy ([`MediaKind::Other`]).
    None,
}

/// A message a user sent to the bot in a private chat.
#[derive(Debug, Clone)]
pub struct IncomingMessage {
    pub msg_id: i32,
    /// The user who sent it (also the chat to answer in).
    pub user_id: i64,
    pub text: String,
    pub media: Option<IncomingMedia>,
}

/// One item of the update feed.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// A user wrote to the bot privately.
    Message(IncomingMessage),
    /// A channel message was posted, edited or deleted (any channel: the receiver keeps
    /// the catalogue channels' ones).
    Channel(IndexEvent),
    /// Anything else (the bot's own messages, private edits…): nothing to answer.
    Other,
}

/// The main bot's updates, in order, gaps resolved by grammers.
pub struct UpdateFeed {
    stream: UpdateStream,
    session: Arc<SledSession>,
}

/// Where the bot's state is: its home DC and the media DCs it has imported its auth into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcSummary {
    pub home: i32,
    pub media_authorized: Vec<i32>,
}

impl UpdateFeed {
    /// Waits for the next update. No deadline: the caller owns the loop and stops it by
    /// dropping this future.
    pub async fn next(&mut self) -> Result<Incoming, TelegramError> {
        let update = self.stream.next().await.map_err(TelegramError::from)?;
        Ok(match update {
            Update::NewMessage(message) => {
                let raw = message.into_inner().raw;
                match channel::channel_event(&raw) {
                    Some(event) => Incoming::Channel(event),
                    None => incoming_message(raw).map_or(Incoming::Other, Incoming::Message),
                }
            }
            Update::MessageEdited(message) => channel::channel_event(&message.into_inner().raw)
                .map_or(Incoming::Other, Incoming::Channel),
            Update::MessageDeleted(deletion) => match deletion.channel_id() {
                Some(bare_id) => {
                    Incoming::Channel(channel::deletion_event(bare_id, deletion.into_messages()))
                }
                None => Incoming::Other,
            },
            _ => Incoming::Other,
        })
    }

    /// Persists how far the feed has got, durably, so a restart resumes after the updates
    /// handled so far. grammers records the state of every update it has *received*; an
    /// update received in the same batch but not yet returned by [`Self::next`] counts as
    /// seen, so call this after each handled update (batches are rare for a bot's chats).
    pub async fn commit(&self, deadline: Instant) -> Result<(), TelegramError> {
        let sync = async {
            self.stream
                .sync_update_state()
                .await
                .map_err(|e| TelegramError::Other(format!("saving the update state: {e}")))?;
            self.session
                .flush()
                .await
                .map_err(|e| TelegramError::Other(format!("flushing the update state: {e}")))
        };
        tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), sync)
            .await
            .unwrap_or(Err(TelegramError::Timeout))
    }
}

impl BotClient {
    /// The bot's own username (`users.getUsers` of itself), so the front-end can tell
    /// `/help@this_bot` from `/help@other_bot`. `None` for an account without one.
    pub async fn username(&self, deadline: Instant) -> Result<Option<String>, TelegramError> {
        let request = tl::functions::users::GetUsers {
            id: vec![tl::enums::InputUser::UserSelf],
        };
        let users = within(deadline, self.main().invoke(&request)).await?;
        Ok(users.into_iter().find_map(|user| match user {
            tl::enums::User::User(user) if user.is_self => user.username,
            _ => None,
        }))
    }

    /// The bot's update feed, catching up (through `getDifference`) on what arrived while
    /// the core was down. Available once, and only for a bot started with
    /// [`BotClient::start_receiving_updates`] or [`BotClient::with_session_receiving_updates`].
    pub async fn update_feed(&self, deadline: Instant) -> Result<UpdateFeed, TelegramError> {
        let receiver = self
            .updates
            .lock()
            .map_err(|_| TelegramError::Other("updates lock poisoned".into()))?
            .take()
            .ok_or_else(|| {
                TelegramError::Other("this bot's updates are not kept or already taken".into())
            })?;
        let create = self
            .main()
            .stream_updates(receiver, UpdatesConfiguration { catch_up: true });
        let stream = tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), create)
            .await
            .map_err(|_| TelegramError::Timeout)?
            .map_err(|e| TelegramError::Other(format!("starting the update stream: {e}")))?;
        Ok(UpdateFeed {
            stream,
            session: Arc::clone(&self.session),
        })
    }

    /// Sends `text` to user `user_id` (who must have written to the bot, so the session
    /// knows their access hash), as a reply to `reply_to` if given. Returns the message id.
    pub async fn send_text(
        &self,
        user_id: i64,
        text: &str,
        reply_to: Option<i32>,
        deadline: Instant,
    ) -> Result<i32, TelegramError> {
        let random_id = fresh_random_id();
        let request = tl::functions::messages::SendMessage {
            no_webpage: true,
            silent: false,
            background: false,
            clear_draft: false,
            noforwards: false,
            update_stickersets_order: false,
            invert_media: false,
            allow_paid_floodskip: false,
            peer: self.user_peer(user_id).await?,
            reply_to: reply_to.map(reply_to_message),
            message: text.to_owned(),
            random_id,
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
        let answer = within(deadline, self.main().invoke(&request)).await?;
        sent_message_id(&answer, random_id).ok_or(TelegramError::MessageNotFound)
    }

    /// Copies the file of `message` into channel `channel_id` (bare id): re-sent by its input
    /// location with `messages.sendMedia` (no "forwarded from" header, the user's caption
    /// kept), or forwarded with `messages.forwardMessages` if that fails. Returns the id of
    /// the channel message. A flood wait is returned at once: forwarding would meet it too.
    pub async fn copy_to_channel(
        &self,
        message: &IncomingMessage,
        channel_id: i64,
        deadline: Instant,
    ) -> Result<i32, TelegramError> {
        let media = message
            .media
            .as_ref()
            .ok_or_else(|| TelegramError::Other("the message has no file".into()))?;
        let channel: tl::enums::InputPeer = tl::types::InputPeerChannel {
            channel_id,
            access_hash: self.channel_access_hash(channel_id).await,
        }
        .into();
        match self
            .resend_media(media, &message.text, channel.clone(), deadline)
            .await
        {
            Ok(id) => return Ok(id),
            Err(error @ (TelegramError::FloodWait { .. } | TelegramError::Timeout)) => {
                return Err(error);
            }
            Err(error) => {
                tracing::warn!(bot_id = self.bot_id, %error, "sendMedia failed; forwarding instead");
            }
        }
        let random_id = fresh_random_id();
        let request = tl::functions::messages::ForwardMessages {
            silent: true,
            background: false,
            with_my_score: false,
            drop_author: false,
            drop_media_captions: false,
            noforwards: false,
            allow_paid_floodskip: false,
            from_ephemeral: false,
            from_peer: self.user_peer(message.user_id).await?,
            id: vec![message.msg_id],
            random_id: vec![random_id],
            to_peer: channel,
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
        let answer = within(deadline, self.main().invoke(&request)).await?;
        sent_message_id(&answer, random_id).ok_or(TelegramError::MessageNotFound)
    }

    /// The bot's home DC and the media DCs its authorisation was imported into.
    pub fn dc_summary(&self) -> Result<DcSummary, TelegramError> {
        let home = self.home_dc()?;
        // Telegram's production DCs are 1–5; the emulator uses the same ids.
        let mut media_authorized = Vec::new();
        for dc in 1..=5 {
            if self.session.media_dc_authorized(dc).map_err(super::other)? {
                media_authorized.push(dc);
            }
        }
        Ok(DcSummary {
            home,
            media_authorized,
        })
    }

    async fn resend_media(
        &self,
        media: &IncomingMedia,
        caption: &str,
        channel: tl::enums::InputPeer,
        deadline: Instant,
    ) -> Result<i32, TelegramError> {
        let input: tl::enums::InputMedia = match &media.input {
            InputMedia::Document(document) => tl::types::InputMediaDocument {
                spoiler: false,
                id: document.clone().into(),
                video_cover: None,
                video_timestamp: None,
                ttl_seconds: None,
                query: None,
            }
            .into(),
            InputMedia::Photo(photo) => tl::types::InputMediaPhoto {
                spoiler: false,
                live_photo: false,
                id: photo.clone().into(),
                ttl_seconds: None,
                video: None,
            }
            .into(),
            InputMedia::None => {
                return Err(TelegramError::Other(
                    "the message has no file to copy".into(),
                ));
            }
        };
        let random_id = fresh_random_id();
        let request = tl::functions::messages::SendMedia {
            silent: true,
            background: false,
            clear_draft: false,
            noforwards: false,
            update_stickersets_order: false,
            invert_media: false,
            allow_paid_floodskip: false,
            peer: channel,
            reply_to: None,
            media: input,
            message: caption.to_owned(),
            random_id,
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
        let answer = within(deadline, self.main().invoke(&request)).await?;
        sent_message_id(&answer, random_id).ok_or(TelegramError::MessageNotFound)
    }

    /// The input peer of a user the session has seen (their updates cached the access hash).
    async fn user_peer(&self, user_id: i64) -> Result<tl::enums::InputPeer, TelegramError> {
        let peer = PeerId::user(user_id)
            .ok_or_else(|| TelegramError::Other(format!("invalid user id {user_id}")))?;
        let info = self.session.peer(peer).await.map_err(super::other)?;
        let access_hash = info
            .and_then(|info| info.auth())
            .map(|auth| auth.hash())
            .ok_or_else(|| TelegramError::Other(format!("user {user_id} not in the session")))?;
        Ok(tl::types::InputPeerUser {
            user_id,
            access_hash,
        }
        .into())
    }
}

fn reply_to_message(msg_id: i32) -> tl::enums::InputReplyTo {
    tl::types::InputReplyToMessage {
        reply_to_msg_id: msg_id,
        top_msg_id: None,
        reply_to_peer_id: None,
        quote_text: None,
        quote_entities: None,
        quote_offset: None,
        monoforum_peer_id: None,
        todo_item_id: None,
        poll_option: None,
    }
    .into()
}

/// A `random_id` for a send: unique per call in this process (a counter) and unpredictable
/// across processes (std's randomly keyed hasher), which is all Telegram asks of it.
fn fresh_random_id() -> i64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::hash::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish() as i64
}

/// The id of the message a send created: the `updateMessageID` with our `random_id`, else the
/// one new message in the answer.
fn sent_message_id(answer: &tl::enums::Updates, random_id: i64) -> Option<i32> {
    let updates = match answer {
        tl::enums::Updates::UpdateShortSentMessage(sent) => return Some(sent.id),
        tl::enums::Updates::Updates(u) => &u.updates,
        tl::enums::Updates::Combined(u) => &u.updates,
        _ => return None,
    };
    // Only the id Telegram pairs with our random id is ours: the same answer may carry other
    // new messages (another user's upload landing in the channel at the same moment), and
    // linking one of those would hand this user someone else's file.
    updates.iter().find_map(|update| match update {
        tl::enums::Update::MessageId(m) if m.random_id == random_id => Some(m.id),
        _ => None,
    })
}

/// A private, incoming message from a user, or `None` for anything else.
fn incoming_message(raw: tl::enums::Message) -> Option<IncomingMessage> {
    let tl::enums::Message::Message(message) = raw else {
        return None;
    };
    if message.out {
        return None;
    }
    let tl::enums::Peer::User(chat) = &message.peer_id else {
        return None;
    };
    Some(IncomingMessage {
        msg_id: message.id,
        user_id: chat.user_id,
        media: message.media.and_then(incoming_media),
        text: message.message,
    })
}

fn incoming_media(media: tl::enums::MessageMedia) -> Option<IncomingMedia> {
    match media {
        tl::enums::MessageMedia::Document(media) => {
            let tl::enums::Document::Document(document) = media.document? else {
                return None;
            };
            let mut kind = if media.video || media.round {
                MediaKind::Video
            } else if media.voice {
                MediaKind::Audio
            } else {
                MediaKind::Document
            };
            let mut file_name = None;
            for attribute in &document.attributes {
                match attribute {
                    tl::enums::DocumentAttribute::Filename(f) => {
                        file_name = Some(f.file_name.clone());
                    }
                    tl::enums::DocumentAttribute::Video(_) if kind == MediaKind::Document => {
                        kind = MediaKind::Video;
                    }
                    tl::enums::DocumentAttribute::Audio(_) if kind == MediaKind::Document => {
                        kind = MediaKind::Audio;
                    }
                    _ => {}
                }
            }
            Some(IncomingMedia {
                kind,
                file_name,
                mime_type: Some(document.mime_type),
                size: u64::try_from(document.size).ok(),
                input: InputMedia::Document(tl::types::InputDocument {
                    id: document.id,
                    access_hash: document.access_hash,
                    file_reference: document.file_reference,
                }),
            })
        }
        tl::enums::MessageMedia::Photo(media) => {
            let tl::enums::Photo::Photo(photo) = media.photo? else {
                return None;
            };
            let size = photo
                .sizes
                .iter()
                .filter_map(super::photo_size_bytes)
                .map(|(_, size)| size)
                .max();
            Some(IncomingMedia {
                kind: MediaKind::Photo,
                file_name: None,
                mime_type: Some("image/jpeg".into()),
                size,
                input: InputMedia::Photo(tl::types::InputPhoto {
                    id: photo.id,
                    access_hash: photo.access_hash,
                    file_reference: photo.file_reference,
                }),
            })
        }
        // A text's link preview is part of the text; an empty or unknown media is nothing.
        tl::enums::MessageMedia::Empty
        | tl::enums::MessageMedia::WebPage(_)
        | tl::enums::MessageMedia::Unsupported => None,
        _ => Some(IncomingMedia {
            kind: MediaKind::Other,
            file_name: None,
            mime_type: None,
            size: None,
            input: InputMedia::None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn updates(list: Vec<tl::enums::Update>) -> tl::enums::Updates {
        tl::types::Updates {
            updates: list,
            users: Vec::new(),
            chats: Vec::new(),
            date: 0,
            seq: 0,
        }
        .into()
    }

    #[test]
    fn the_sent_id_is_the_one_matching_our_random_id() {
        let answer = updates(vec![
            tl::types::UpdateMessageId {
                id: 5,
                random_id: 1,
            }
            .into(),
            tl::types::UpdateMessageId {
                id: 9,
                random_id: 2,
            }
            .into(),
        ]);
        assert_eq!(sent_message_id(&answer, 2), Some(9));
        assert_eq!(sent_message_id(&updates(Vec::new()), 2), None);
    }

    #[test]
    fn someone_elses_new_message_is_never_taken_for_ours() {
        let theirs = tl::types::UpdateNewChannelMessage {
            message: crate::telegram::tests::message_with(None, 41),
            pts: 1,
            pts_count: 1,
        };
        let answer = updates(vec![
            theirs.into(),
            tl::types::UpdateMessageId {
                id: 41,
                random_id: 7,
            }
            .into(),
        ]);
        assert_eq!(sent_message_id(&answer, 8), None);
        assert_eq!(sent_message_id(&answer, 7), Some(41));
    }

    fn document_media(video: bool, name: Option<&str>) -> tl::enums::MessageMedia {
        let attributes = name
            .map(|n| {
                vec![
                    tl::types::DocumentAttributeFilename {
                        file_name: n.into(),
                    }
                    .into(),
                ]
            })
            .unwrap_or_default();
        tl::types::MessageMediaDocument {
            nopremium: false,
            spoiler: false,
            video,
            round: false,
            voice: false,
            document: Some(
                tl::types::Document {
                    id: 1,
                    access_hash: 2,
                    file_reference: vec![3],
                    date: 0,
                    mime_type: "video/mp4".into(),
                    size: 5000,
                    thumbs: None,
                    video_thumbs: None,
                    dc_id: 2,
                    attributes,
                }
                .into(),
            ),
            alt_documents: None,
            video_cover: None,
            video_timestamp: None,
            ttl_seconds: None,
        }
        .into()
    }

    #[test]
    fn documents_keep_name_kind_size_and_location() {
        let media = incoming_media(document_media(true, Some("a.mp4"))).unwrap();
        assert_eq!(media.kind, MediaKind::Video);
        assert_eq!(media.file_name.as_deref(), Some("a.mp4"));
        assert_eq!(media.size, Some(5000));
        let InputMedia::Document(input) = media.input else {
            panic!("a document")
        };
        assert_eq!(
            (input.id, input.access_hash, input.file_reference),
            (1, 2, vec![3])
        );
        let plain = incoming_media(document_media(false, None)).unwrap();
        assert_eq!(plain.kind, MediaKind::Document);
        assert_eq!(plain.file_name, None);
    }

    #[test]
    fn photos_report_their_largest_size() {
        let sizes = vec![
            tl::types::PhotoSize {
                r#type: "m".into(),
                w: 320,
                h: 240,
                size: 900,
            }
            .into(),
            tl::types::PhotoSizeProgressive {
                r#type: "y".into(),
                w: 1280,
                h: 960,
                sizes: vec![1000, 8000, 64000],
            }
            .into(),
        ];
        let media: tl::enums::MessageMedia = tl::types::MessageMediaPhoto {
            spoiler: false,
            live_photo: false,
            photo: Some(
                tl::types::Photo {
                    has_stickers: false,
                    id: 9,
                    access_hash: 8,
                    file_reference: vec![7],
                    date: 0,
                    sizes,
                    video_sizes: None,
                    dc_id: 2,
                }
                .into(),
            ),
            ttl_seconds: None,
            video: None,
        }
        .into();
        let media = incoming_media(media).unwrap();
        assert_eq!(media.kind, MediaKind::Photo);
        assert_eq!(media.size, Some(64000));
        assert!(matches!(media.input, InputMedia::Photo(ref p) if p.id == 9));
    }

    #[test]
    fn media_without_a_file_is_other_and_a_link_preview_is_no_media() {
        let dice: tl::enums::MessageMedia = tl::types::MessageMediaDice {
            value: 6,
            emoticon: "🎲".into(),
            game_outcome: None,
        }
        .into();
        let media = incoming_media(dice).unwrap();
        assert_eq!(media.kind, MediaKind::Other);
        assert!(matches!(media.input, InputMedia::None));
        assert!(incoming_media(tl::enums::MessageMedia::Empty).is_none());
        assert!(incoming_media(tl::enums::MessageMedia::Unsupported).is_none());
    }

    #[test]
    fn random_ids_differ() {
        let ids: std::collections::HashSet<i64> = (0..1000).map(|_| fresh_random_id()).collect();
        assert_eq!(ids.len(), 1000);
    }
}
