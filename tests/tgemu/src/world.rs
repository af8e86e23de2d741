//! The scripted Telegram world: users, bots, channels, documents, photos, messages, per-account
//! update logs (pts), authorisations per (DC, auth key), and who gets pushed updates.
//!
//! Tests drive it through [`World`] (register a bot, post a document, read what the bot
//! sent); API handlers read and change it under one lock. It never does I/O: pushes go
//! to connection writers through channels registered by the connection driver.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use grammers_tl_types::{self as tl, Serializable};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;

use crate::api::render;
use crate::clock::Clock;
use crate::content::Content;

/// A registered bot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotInfo {
    pub user_id: i64,
    pub access_hash: i64,
    pub token: String,
    pub username: String,
}

/// A registered (human) user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub user_id: i64,
    pub access_hash: i64,
}

/// A channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelInfo {
    pub channel_id: i64,
    pub access_hash: i64,
}

impl ChannelInfo {
    /// The Bot API form of the id: `-100` followed by the channel id.
    pub fn bot_api_id(&self) -> i64 {
        -1_000_000_000_000 - self.channel_id
    }
}

/// A document stored on one DC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentInfo {
    pub id: i64,
    pub access_hash: i64,
    pub size: u64,
    pub dc: i32,
}

/// One size of a photo as a test describes it: Telegram's type letter (`s` 100 px box,
/// `m` 320, `x` 800, `y` 1280, `w` 2560), the pixel size and the bytes. Sizes `y` and `w`
/// are shown as `photoSizeProgressive`, the others as `photoSize`, as Telegram does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoSizeSpec {
    pub kind: String,
    pub w: i32,
    pub h: i32,
    pub content: Content,
}

impl PhotoSizeSpec {
    pub fn new(kind: &str, w: i32, h: i32, content: Content) -> Self {
        Self {
            kind: kind.to_owned(),
            w,
            h,
            content,
        }
    }
}

/// One stored size of a photo: its type letter, its bytes, and the id its bytes are
/// generated from (what [`crate::EmulatorHandle::content_slice`] takes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoSizeInfo {
    pub kind: String,
    pub size: u64,
    pub content_id: i64,
}

/// A photo stored on one DC, with its sizes smallest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoInfo {
    pub id: i64,
    pub access_hash: i64,
    pub dc: i32,
    pub sizes: Vec<PhotoSizeInfo>,
}

impl PhotoInfo {
    /// The size with the most bytes (what a client downloads as "the photo").
    pub fn largest(&self) -> Option<&PhotoSizeInfo> {
        self.sizes.iter().max_by_key(|size| size.size)
    }
}

/// A message's file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Media {
    Document(i64),
    Photo(i64),
}

/// A chat as the world sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Peer {
    User(i64),
    Channel(i64),
}

/// Something a bot sent (reply, media, forward), for tests to read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    pub peer: Peer,
    pub msg_id: i32,
    pub text: String,
    pub media_doc_id: Option<i64>,
    pub media_photo_id: Option<i64>,
    pub forwarded_from: Option<(Peer, i32)>,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Account {
    pub(crate) info: UserInfo,
    pub(crate) name: String,
    pub(crate) username: Option<String>,
    pub(crate) bot: bool,
    /// The DC the account signed in on; updates are pushed only there.
    pub(crate) home_dc: Option<i32>,
    pub(crate) mailbox: Mailbox,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Channel {
    pub(crate) info: ChannelInfo,
    pub(crate) title: String,
    pub(crate) date: i32,
    /// user id → admin.
    pub(crate) members: HashMap<i64, bool>,
    pub(crate) mailbox: Mailbox,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Document {
    pub(crate) info: DocumentInfo,
    pub(crate) name: String,
    pub(crate) mime: String,
    pub(crate) date: i32,
    #[serde(with = "shared_content")]
    pub(crate) content: Arc<Content>,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Photo {
    pub(crate) info: PhotoInfo,
    /// Per size, in `info.sizes` order.
    pub(crate) sizes: Vec<StoredPhotoSize>,
    pub(crate) date: i32,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredPhotoSize {
    pub(crate) w: i32,
    pub(crate) h: i32,
    #[serde(with = "shared_content")]
    pub(crate) content: Arc<Content>,
}

impl Photo {
    /// The stored size named `kind`, with its bytes.
    pub(crate) fn size(&self, kind: &str) -> Option<(&PhotoSizeInfo, &Arc<Content>)> {
        let at = self.info.sizes.iter().position(|s| s.kind == kind)?;
        Some((self.info.sizes.get(at)?, &self.sizes.get(at)?.content))
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredMessage {
    pub(crate) id: i32,
    pub(crate) from: Option<i64>,
    /// For a private mailbox, the other user; for a channel, the channel.
    pub(crate) peer: Peer,
    pub(crate) out: bool,
    pub(crate) date: i32,
    pub(crate) text: String,
    pub(crate) media: Option<Media>,
    pub(crate) fwd_from: Option<Peer>,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) enum Event {
    New(i32),
    Edited(i32),
    Deleted(i32),
}

/// Messages and the pts-numbered event log of one account or channel.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct Mailbox {
    pub(crate) pts: i32,
    pub(crate) next_msg_id: i32,
    pub(crate) messages: BTreeMap<i32, StoredMessage>,
    pub(crate) log: Vec<(i32, Event)>,
}

impl Mailbox {
    fn new() -> Self {
        Self {
            pts: 1,
            next_msg_id: 1,
            ..Self::default()
        }
    }

    fn add(&mut self, mut msg: StoredMessage) -> (i32, i32) {
        msg.id = self.next_msg_id;
        self.next_msg_id += 1;
        self.pts += 1;
        let id = msg.id;
        self.messages.insert(id, msg);
        self.log.push((self.pts, Event::New(id)));
        (id, self.pts)
    }

    /// Replaces a message's text (a caption for a post with a file); returns the new pts.
    fn edit(&mut self, msg_id: i32, text: &str) -> Option<i32> {
        let message = self.messages.get_mut(&msg_id)?;
        message.text = text.to_owned();
        self.pts += 1;
        self.log.push((self.pts, Event::Edited(msg_id)));
        Some(self.pts)
    }

    /// The newest message that still exists.
    pub(crate) fn top_message(&self) -> Option<&StoredMessage> {
        self.messages.values().next_back()
    }

    fn delete(&mut self, msg_id: i32) -> Option<i32> {
        self.messages.remove(&msg_id)?;
        self.pts += 1;
        self.log.push((self.pts, Event::Deleted(msg_id)));
        Some(self.pts)
    }

    pub(crate) fn events_after(&self, pts: i32) -> impl Iterator<Item = &(i32, Event)> {
        self.log.iter().filter(move |(p, _)| *p > pts)
    }
}

pub(crate) struct Subscriber {
    pub(crate) conn_id: u64,
    pub(crate) dc: i32,
    pub(crate) tx: UnboundedSender<Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) next_id: i64,
    pub(crate) accounts: HashMap<i64, Account>,
    pub(crate) tokens: HashMap<String, i64>,
    pub(crate) channels: HashMap<i64, Channel>,
    pub(crate) documents: HashMap<i64, Document>,
    pub(crate) photos: HashMap<i64, Photo>,
    /// (DC, auth key id) → the user that key is signed in as on that DC.
    pub(crate) authorizations: HashMap<(i32, u64), i64>,
    /// Exported authorisation (id = user, bytes) → target DC. Not kept by a snapshot: an
    /// export is imported within seconds.
    #[serde(skip)]
    pub(crate) exported: HashMap<Vec<u8>, (i64, i32)>,
    /// Connections, not world: a restored world has none.
    #[serde(skip)]
    pub(crate) subscribers: HashMap<i64, Vec<Subscriber>>,
    pub(crate) sent: Vec<(i64, SentMessage)>,
}

/// The whole world, detached from any connection: what a restarted emulator needs to be the
/// same Telegram (ids, access hashes, file references, messages, update logs, signed-in
/// keys). Serialize it with any serde format; documents backed by files keep their paths.
#[derive(Serialize, Deserialize)]
pub struct WorldSnapshot {
    secret: u64,
    state: State,
}

/// `Arc<Content>` as its `Content` (serde's `rc` feature, for one field).
mod shared_content {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::content::Content;

    pub(super) fn serialize<S: Serializer>(
        content: &Arc<Content>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        content.as_ref().serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<Content>, D::Error> {
        Content::deserialize(d).map(Arc::new)
    }
}

/// Cheaply cloned, thread-safe handle to the world.
#[derive(Clone)]
pub struct World {
    state: Arc<Mutex<State>>,
    clock: Clock,
    secret: u64,
}

pub(crate) fn unix_now() -> i32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i32)
        .unwrap_or(0)
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Why a file reference was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReferenceError {
    Invalid,
    Expired,
}

impl World {
    pub(crate) fn new(secret: u64, clock: Clock) -> Self {
        let state = State {
            next_id: 1_000_000 + (secret % 1000) as i64,
            accounts: HashMap::new(),
            tokens: HashMap::new(),
            channels: HashMap::new(),
            documents: HashMap::new(),
            photos: HashMap::new(),
            authorizations: HashMap::new(),
            exported: HashMap::new(),
            subscribers: HashMap::new(),
            sent: Vec::new(),
        };
        Self {
            state: Arc::new(Mutex::new(state)),
            clock,
            secret,
        }
    }

    /// A world restored from a snapshot: the snapshot's secret replaces a fresh one, so
    /// access hashes and file references stay valid.
    pub(crate) fn restore(snapshot: WorldSnapshot, clock: Clock) -> Self {
        Self {
            state: Arc::new(Mutex::new(snapshot.state)),
            clock,
            secret: snapshot.secret,
        }
    }

    pub(crate) fn secret(&self) -> u64 {
        self.secret
    }

    /// The world as it is now (connections and pending exports left out).
    pub fn snapshot(&self) -> WorldSnapshot {
        let s = self.lock();
        WorldSnapshot {
            secret: self.secret,
            state: State {
                next_id: s.next_id,
                accounts: s.accounts.iter().map(|(id, a)| (*id, a.clone())).collect(),
                tokens: s.tokens.clone(),
                channels: s.channels.iter().map(|(id, c)| (*id, c.clone())).collect(),
                documents: s.documents.iter().map(|(id, d)| (*id, d.clone())).collect(),
                photos: s.photos.clone(),
                authorizations: s.authorizations.clone(),
                exported: HashMap::new(),
                subscribers: HashMap::new(),
                sent: s.sent.clone(),
            },
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // The state is only mutated in short critical sections that do not panic on
        // valid data; recover the guard rather than poisoning every later request.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_id(state: &mut State) -> i64 {
        state.next_id += 1;
        state.next_id
    }

    fn access_hash(&self, id: i64) -> i64 {
        mix(self.secret ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) as i64
    }

    fn add_account(&self, name: &str, username: Option<&str>, bot: bool) -> UserInfo {
        let mut s = self.lock();
        let id = Self::new_id(&mut s);
        let info = UserInfo {
            user_id: id,
            access_hash: self.access_hash(id),
        };
        s.accounts.insert(
            id,
            Account {
                info,
                name: name.to_owned(),
                username: username.map(str::to_owned),
                bot,
                home_dc: None,
                mailbox: Mailbox::new(),
            },
        );
        info
    }

    /// Registers a bot that can sign in with `token`.
    pub fn register_bot(&self, token: &str, username: &str) -> BotInfo {
        let info = self.add_account(username, Some(username), true);
        self.lock().tokens.insert(token.to_owned(), info.user_id);
        BotInfo {
            user_id: info.user_id,
            access_hash: info.access_hash,
            token: token.to_owned(),
            username: username.to_owned(),
        }
    }

    /// Registers a human user (scripted; it never connects).
    pub fn register_user(&self, name: &str) -> UserInfo {
        self.add_account(name, None, false)
    }

    pub fn create_channel(&self, title: &str) -> ChannelInfo {
        let mut s = self.lock();
        let id = Self::new_id(&mut s);
        let info = ChannelInfo {
            channel_id: id,
            access_hash: self.access_hash(id),
        };
        s.channels.insert(
            id,
            Channel {
                info,
                title: title.to_owned(),
                date: unix_now(),
                members: HashMap::new(),
                mailbox: Mailbox::new(),
            },
        );
        info
    }

    /// Adds (or re-adds with new rights) a member; unknown channels are ignored.
    pub fn add_channel_member(&self, channel_id: i64, user_id: i64, admin: bool) {
        if let Some(c) = self.lock().channels.get_mut(&channel_id) {
            c.members.insert(user_id, admin);
        }
    }

    pub fn remove_channel_member(&self, channel_id: i64, user_id: i64) {
        if let Some(c) = self.lock().channels.get_mut(&channel_id) {
            c.members.remove(&user_id);
        }
    }

    /// Forgets `user_id`'s authorisation in `dc`, as Telegram does when it drops a session:
    /// the account's next call there answers `AUTH_KEY_UNREGISTERED` until it signs in
    /// again. Returns how many keys were unbound.
    pub fn revoke_authorization(&self, dc: i32, user_id: i64) -> usize {
        let mut state = self.lock();
        let before = state.authorizations.len();
        state
            .authorizations
            .retain(|(key_dc, _), user| *key_dc != dc || *user != user_id);
        before - state.authorizations.len()
    }

    /// Stores a document on `dc`. A file's size is read now; an unreadable file has size 0.
    pub fn add_document(&self, content: Content, name: &str, mime: &str, dc: i32) -> DocumentInfo {
        let size = content_size(&content);
        let mut s = self.lock();
        let id = Self::new_id(&mut s);
        let info = DocumentInfo {
            id,
            access_hash: self.access_hash(id),
            size,
            dc,
        };
        s.documents.insert(
            id,
            Document {
                info,
                name: name.to_owned(),
                mime: mime.to_owned(),
                date: unix_now(),
                content: Arc::new(content),
            },
        );
        info
    }

    /// Stores a photo on `dc` with `sizes` (each size's bytes generated from its own id, so
    /// no two sizes share bytes). A file-backed size's length is read now.
    pub fn add_photo(&self, sizes: Vec<PhotoSizeSpec>, dc: i32) -> PhotoInfo {
        let mut s = self.lock();
        let id = Self::new_id(&mut s);
        let mut infos = Vec::with_capacity(sizes.len());
        let mut stored = Vec::with_capacity(sizes.len());
        for spec in sizes {
            infos.push(PhotoSizeInfo {
                kind: spec.kind,
                size: content_size(&spec.content),
                content_id: Self::new_id(&mut s),
            });
            stored.push(StoredPhotoSize {
                w: spec.w,
                h: spec.h,
                content: Arc::new(spec.content),
            });
        }
        let info = PhotoInfo {
            id,
            access_hash: self.access_hash(id),
            dc,
            sizes: infos,
        };
        s.photos.insert(
            id,
            Photo {
                info: info.clone(),
                sizes: stored,
                date: unix_now(),
            },
        );
        info
    }

    /// Posts a document to a channel; member bots get `updateNewChannelMessage`.
    /// Returns the message id, or 0 if the channel is unknown.
    pub fn post_document(&self, channel_id: i64, doc_id: i64, caption: &str) -> i32 {
        self.post_media(channel_id, Media::Document(doc_id), caption)
    }

    /// Posts a photo to a channel, like [`Self::post_document`].
    pub fn post_photo(&self, channel_id: i64, photo_id: i64, caption: &str) -> i32 {
        self.post_media(channel_id, Media::Photo(photo_id), caption)
    }

    fn post_media(&self, channel_id: i64, media: Media, caption: &str) -> i32 {
        let msg = StoredMessage {
            id: 0,
            from: None,
            peer: Peer::Channel(channel_id),
            out: false,
            date: unix_now(),
            text: caption.to_owned(),
            media: Some(media),
            fwd_from: None,
        };
        let mut s = self.lock();
        self.add_channel_message(&mut s, channel_id, msg)
            .unwrap_or(0)
    }

    /// Posts a text-only message to a channel (as its owner); members get
    /// `updateNewChannelMessage`. Returns the message id, or 0 if the channel is unknown.
    pub fn post_text(&self, channel_id: i64, text: &str) -> i32 {
        let msg = StoredMessage {
            id: 0,
            from: None,
            peer: Peer::Channel(channel_id),
            out: false,
            date: unix_now(),
            text: text.to_owned(),
            media: None,
            fwd_from: None,
        };
        let mut s = self.lock();
        self.add_channel_message(&mut s, channel_id, msg)
            .unwrap_or(0)
    }

    /// Edits a channel post's text (its caption when it has a file), as the channel's owner;
    /// members get `updateEditChannelMessage` and the edit is in the channel's difference.
    /// Returns false for an unknown channel or message.
    pub fn edit_post(&self, channel_id: i64, msg_id: i32, text: &str) -> bool {
        let mut s = self.lock();
        let Some(channel) = s.channels.get_mut(&channel_id) else {
            return false;
        };
        let Some(pts) = channel.mailbox.edit(msg_id, text) else {
            return false;
        };
        let Some(stored) = channel.mailbox.messages.get(&msg_id).cloned() else {
            return false;
        };
        let members: Vec<(i64, bool)> = channel.members.iter().map(|(u, a)| (*u, *a)).collect();
        for (member, admin) in members {
            let message = self.render_message(&s, &stored, member);
            let update =
                tl::enums::Update::EditChannelMessage(tl::types::UpdateEditChannelMessage {
                    message,
                    pts,
                    pts_count: 1,
                });
            let chats = self
                .channel_chat(&s, channel_id, admin)
                .into_iter()
                .collect();
            Self::push(&s, member, &updates_of(vec![update], vec![], chats));
        }
        true
    }

    /// Deletes several channel posts at once, as Telegram does: one pts per message, one
    /// `updateDeleteChannelMessages` (pts_count = number deleted) to every member. Unknown
    /// ids are skipped; returns how many were deleted.
    pub fn delete_posts(&self, channel_id: i64, msg_ids: &[i32]) -> usize {
        let mut s = self.lock();
        let Some(channel) = s.channels.get_mut(&channel_id) else {
            return 0;
        };
        let mut deleted = Vec::new();
        let mut last_pts = 0;
        for &id in msg_ids {
            if let Some(pts) = channel.mailbox.delete(id) {
                deleted.push(id);
                last_pts = pts;
            }
        }
        if deleted.is_empty() {
            return 0;
        }
        let members: Vec<i64> = channel.members.keys().copied().collect();
        let count = deleted.len();
        let update =
            tl::enums::Update::DeleteChannelMessages(tl::types::UpdateDeleteChannelMessages {
                channel_id,
                messages: deleted,
                pts: last_pts,
                pts_count: count as i32,
            });
        let bytes = updates_of(vec![update], vec![], vec![]);
        for m in members {
            Self::push(&s, m, &bytes);
        }
        count
    }

    /// A user sends a document to a bot; the bot gets `updateNewMessage`.
    pub fn user_sends_document(
        &self,
        user_id: i64,
        bot_user_id: i64,
        doc_id: i64,
        caption: &str,
    ) -> i32 {
        self.user_sends(user_id, bot_user_id, caption, Some(Media::Document(doc_id)))
    }

    /// A user sends a photo to a bot (the "compressed" kind, not a file).
    pub fn user_sends_photo(
        &self,
        user_id: i64,
        bot_user_id: i64,
        photo_id: i64,
        caption: &str,
    ) -> i32 {
        self.user_sends(user_id, bot_user_id, caption, Some(Media::Photo(photo_id)))
    }

    pub fn user_sends_text(&self, user_id: i64, bot_user_id: i64, text: &str) -> i32 {
        self.user_sends(user_id, bot_user_id, text, None)
    }

    fn user_sends(&self, from: i64, to: i64, text: &str, media: Option<Media>) -> i32 {
        let msg = StoredMessage {
            id: 0,
            from: Some(from),
            peer: Peer::User(from),
            out: false,
            date: unix_now(),
            text: text.to_owned(),
            media,
            fwd_from: None,
        };
        let mut s = self.lock();
        self.add_private_message(&mut s, to, msg).unwrap_or(0)
    }

    /// What the bot sent, oldest first.
    pub fn sent_by(&self, bot_user_id: i64) -> Vec<SentMessage> {
        self.lock()
            .sent
            .iter()
            .filter(|(bot, _)| *bot == bot_user_id)
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// Deletes a message. For `Peer::User(bot)`, the id is in that bot's mailbox.
    pub fn delete_message(&self, peer: Peer, msg_id: i32) -> bool {
        let mut s = self.lock();
        match peer {
            Peer::User(owner) => {
                let Some(pts) = s
                    .accounts
                    .get_mut(&owner)
                    .and_then(|a| a.mailbox.delete(msg_id))
                else {
                    return false;
                };
                let update = tl::enums::Update::DeleteMessages(tl::types::UpdateDeleteMessages {
                    messages: vec![msg_id],
                    pts,
                    pts_count: 1,
                });
                Self::push(&s, owner, &updates_of(vec![update], vec![], vec![]));
                true
            }
            Peer::Channel(channel_id) => {
                let Some(channel) = s.channels.get_mut(&channel_id) else {
                    return false;
                };
                let Some(pts) = channel.mailbox.delete(msg_id) else {
                    return false;
                };
                let members: Vec<i64> = channel.members.keys().copied().collect();
                let update = tl::enums::Update::DeleteChannelMessages(
                    tl::types::UpdateDeleteChannelMessages {
                        channel_id,
                        messages: vec![msg_id],
                        pts,
                        pts_count: 1,
                    },
                );
                let bytes = updates_of(vec![update], vec![], vec![]);
                for m in members {
                    Self::push(&s, m, &bytes);
                }
                true
            }
        }
    }

    /// Stores a message in a bot's/user's private mailbox and pushes it to the owner.
    pub(crate) fn add_private_message(
        &self,
        s: &mut State,
        owner: i64,
        msg: StoredMessage,
    ) -> Option<i32> {
        let account = s.accounts.get_mut(&owner)?;
        let (id, pts) = account.mailbox.add(msg);
        let stored = account.mailbox.messages.get(&id)?.clone();
        let users = self.users_for(s, owner, &[stored.from, peer_user_id(stored.peer)]);
        let message = self.render_message(s, &stored, owner);
        let update = tl::enums::Update::NewMessage(tl::types::UpdateNewMessage {
            message,
            pts,
            pts_count: 1,
        });
        Self::push(s, owner, &updates_of(vec![update], users, vec![]));
        Some(id)
    }

    /// Stores a channel post and pushes it to every member.
    pub(crate) fn add_channel_message(
        &self,
        s: &mut State,
        channel_id: i64,
        msg: StoredMessage,
    ) -> Option<i32> {
        let channel = s.channels.get_mut(&channel_id)?;
        let (id, pts) = channel.mailbox.add(msg);
        let stored = channel.mailbox.messages.get(&id)?.clone();
        let members: Vec<(i64, bool)> = channel.members.iter().map(|(u, a)| (*u, *a)).collect();
        for (member, admin) in members {
            let message = self.render_message(s, &stored, member);
            let update = tl::enums::Update::NewChannelMessage(tl::types::UpdateNewChannelMessage {
                message,
                pts,
                pts_count: 1,
            });
            let chats = self
                .channel_chat(s, channel_id, admin)
                .into_iter()
                .collect();
            Self::push(s, member, &updates_of(vec![update], vec![], chats));
        }
        Some(id)
    }

    fn push(s: &State, user: i64, bytes: &[u8]) {
        let home = s.accounts.get(&user).and_then(|a| a.home_dc);
        for sub in s.subscribers.get(&user).into_iter().flatten() {
            if Some(sub.dc) == home {
                // A closed connection's receiver is gone; its entry is removed on close.
                let _ = sub.tx.send(bytes.to_vec());
            }
        }
    }

    pub(crate) fn subscribe(&self, user: i64, conn_id: u64, dc: i32, tx: UnboundedSender<Vec<u8>>) {
        self.lock()
            .subscribers
            .entry(user)
            .or_default()
            .push(Subscriber { conn_id, dc, tx });
    }

    pub(crate) fn unsubscribe(&self, user: i64, conn_id: u64) {
        if let Some(subs) = self.lock().subscribers.get_mut(&user) {
            subs.retain(|s| s.conn_id != conn_id);
        }
    }

    pub(crate) fn record_sent(s: &mut State, bot: i64, sent: SentMessage) {
        s.sent.push((bot, sent));
    }

    /// Users a viewer needs to resolve the given ids (self flagged).
    pub(crate) fn users_for(
        &self,
        s: &State,
        viewer: i64,
        ids: &[Option<i64>],
    ) -> Vec<tl::enums::User> {
        let mut out: Vec<tl::enums::User> = Vec::new();
        let mut seen = Vec::new();
        for id in ids.iter().flatten() {
            if seen.contains(id) {
                continue;
            }
            seen.push(*id);
            if let Some(a) = s.accounts.get(id) {
                out.push(render::user(&render::UserView {
                    id: a.info.user_id,
                    access_hash: a.info.access_hash,
                    first_name: &a.name,
                    username: a.username.as_deref(),
                    bot: a.bot,
                    is_self: *id == viewer,
                }));
            }
        }
        out
    }

    pub(crate) fn channel_chat(
        &self,
        s: &State,
        channel_id: i64,
        admin: bool,
    ) -> Option<tl::enums::Chat> {
        let c = s.channels.get(&channel_id)?;
        Some(render::channel(
            c.info.channel_id,
            c.info.access_hash,
            &c.title,
            c.date,
            admin,
        ))
    }

    /// Renders a stored message for `viewer` (file references are per viewer).
    pub(crate) fn render_message(
        &self,
        s: &State,
        m: &StoredMessage,
        viewer: i64,
    ) -> tl::enums::Message {
        let media = m
            .media
            .and_then(|media| self.render_media(s, media, viewer));
        let (peer_id, post) = match m.peer {
            Peer::User(u) => (render::peer_user(u), false),
            Peer::Channel(c) => (render::peer_channel(c), m.from.is_none()),
        };
        render::message(render::MessageView {
            id: m.id,
            out: m.out,
            post,
            from_id: m.from.map(render::peer_user),
            peer_id,
            fwd_from: m
                .fwd_from
                .map(|p| render::forward_header(tl_peer(p), m.date)),
            date: m.date,
            text: m.text.clone(),
            media,
        })
    }

    /// A message's file as `viewer` sees it; `None` when the file is unknown.
    fn render_media(
        &self,
        s: &State,
        media: Media,
        viewer: i64,
    ) -> Option<tl::enums::MessageMedia> {
        match media {
            Media::Document(id) => s.documents.get(&id).map(|d| {
                render::document_media(render::DocumentView {
                    id: d.info.id,
                    access_hash: d.info.access_hash,
                    file_reference: self.file_reference(d.info.id, viewer),
                    date: d.date,
                    mime_type: &d.mime,
                    size: d.info.size as i64,
                    dc_id: d.info.dc,
                    file_name: &d.name,
                })
            }),
            Media::Photo(id) => s.photos.get(&id).map(|p| {
                let sizes = p
                    .info
                    .sizes
                    .iter()
                    .zip(&p.sizes)
                    .map(|(size, stored)| render::PhotoSizeView {
                        kind: &size.kind,
                        w: stored.w,
                        h: stored.h,
                        size: size.size as i64,
                    })
                    .collect();
                render::photo_media(render::PhotoView {
                    id: p.info.id,
                    access_hash: p.info.access_hash,
                    file_reference: self.file_reference(p.info.id, viewer),
                    date: p.date,
                    dc_id: p.info.dc,
                    sizes,
                })
            }),
        }
    }

    fn now_ms(&self) -> u64 {
        self.clock.elapsed_ms()
    }

    /// A file reference for (document, viewer) issued now: `issued_ms ‖ tag`.
    pub(crate) fn file_reference(&self, doc_id: i64, viewer: i64) -> Vec<u8> {
        let issued = self.now_ms();
        let mut out = issued.to_le_bytes().to_vec();
        out.extend_from_slice(&self.reference_tag(doc_id, viewer, issued).to_le_bytes());
        out
    }

    fn reference_tag(&self, doc_id: i64, viewer: i64, issued: u64) -> u64 {
        mix(self.secret ^ mix(doc_id as u64 ^ mix(viewer as u64 ^ mix(issued))))
    }

    /// Checks a file reference presented by `viewer` against the TTL in force.
    pub(crate) fn check_file_reference(
        &self,
        doc_id: i64,
        viewer: i64,
        reference: &[u8],
        ttl: Option<std::time::Duration>,
    ) -> Result<(), ReferenceError> {
        let (Some(issued), Some(tag)) = (reference.get(..8), reference.get(8..16)) else {
            return Err(ReferenceError::Invalid);
        };
        let issued = u64::from_le_bytes(issued.try_into().map_err(|_| ReferenceError::Invalid)?);
        let tag = u64::from_le_bytes(tag.try_into().map_err(|_| ReferenceError::Invalid)?);
        if tag != self.reference_tag(doc_id, viewer, issued) {
            // Another account's reference: Telegram answers as for a stale one.
            return Err(ReferenceError::Expired);
        }
        if ttl.is_some_and(|ttl| self.now_ms().saturating_sub(issued) > ttl.as_millis() as u64) {
            return Err(ReferenceError::Expired);
        }
        Ok(())
    }
}

/// A content's length: a pseudo document's size, a file's length now (0 if unreadable).
fn content_size(content: &Content) -> u64 {
    match content {
        Content::Pseudo { size } => *size,
        Content::File { path } => std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
    }
}

fn peer_user_id(p: Peer) -> Option<i64> {
    match p {
        Peer::User(u) => Some(u),
        Peer::Channel(_) => None,
    }
}

pub(crate) fn tl_peer(p: Peer) -> tl::enums::Peer {
    match p {
        Peer::User(u) => render::peer_user(u),
        Peer::Channel(c) => render::peer_channel(c),
    }
}

/// `updates#74ae4240` with seq 0 (no seq checking on the client).
pub(crate) fn updates_of(
    updates: Vec<tl::enums::Update>,
    users: Vec<tl::enums::User>,
    chats: Vec<tl::enums::Chat>,
) -> Vec<u8> {
    tl::enums::Updates::Updates(tl::types::Updates {
        updates,
        users,
        chats,
        date: unix_now(),
        seq: 0,
    })
    .to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A restarted emulator must be the same Telegram: same ids and access hashes, the
    /// posts and their update log, the signed-in keys, file references that still verify,
    /// and new ids that never reuse old ones.
    #[test]
    fn a_snapshot_restores_the_same_world_through_a_serde_format() {
        let world = World::new(42, Clock::default());
        let bot = world.register_bot("1:token", "bot");
        let channel = world.create_channel("storage");
        world.add_channel_member(channel.channel_id, bot.user_id, true);
        let doc = world.add_document(Content::pseudo(3 << 20), "a.bin", "application/x", 4);
        let msg_id = world.post_document(channel.channel_id, doc.id, "caption");
        world.lock().authorizations.insert((2, 77), bot.user_id);
        let reference = world.file_reference(doc.id, bot.user_id);

        let bytes = postcard::to_stdvec(&world.snapshot()).unwrap();
        let restored = World::restore(postcard::from_bytes(&bytes).unwrap(), Clock::default());

        let s = restored.lock();
        assert_eq!(s.tokens.get("1:token"), Some(&bot.user_id));
        assert_eq!(
            s.accounts[&bot.user_id].info,
            UserInfo {
                user_id: bot.user_id,
                access_hash: bot.access_hash
            }
        );
        let stored = &s.channels[&channel.channel_id];
        assert_eq!(stored.info, channel);
        assert_eq!(
            stored.mailbox.messages[&msg_id].media,
            Some(Media::Document(doc.id))
        );
        assert_eq!(
            stored.mailbox.pts,
            world.lock().channels[&channel.channel_id].mailbox.pts
        );
        assert_eq!(s.documents[&doc.id].info, doc);
        assert_eq!(s.authorizations.get(&(2, 77)), Some(&bot.user_id));
        drop(s);
        // A reference carries the millisecond it was issued in, so two issued at different
        // times differ; the same secret must give the same tag for the same instant.
        assert_eq!(
            restored.reference_tag(doc.id, bot.user_id, 1_234),
            world.reference_tag(doc.id, bot.user_id, 1_234)
        );
        assert_eq!(
            restored.check_file_reference(doc.id, bot.user_id, &reference, None),
            Ok(())
        );
        let next = restored.create_channel("another");
        assert!(next.channel_id > doc.id, "a new id reused an old one");
    }

    #[test]
    fn bot_api_id_is_minus_100_then_the_id() {
        let c = ChannelInfo {
            channel_id: 1_234_567_890,
            access_hash: 0,
        };
        assert_eq!(c.bot_api_id(), -1_001_234_567_890);
    }

    #[test]
    fn mailbox_pts_counts_new_and_deleted() {
        let world = World::new(7, Clock::default());
        let bot = world.register_bot("t", "b");
        let user = world.register_user("u");
        let first = world.user_sends_text(user.user_id, bot.user_id, "a");
        let second = world.user_sends_text(user.user_id, bot.user_id, "b");
        assert!(world.delete_message(Peer::User(bot.user_id), first));
        assert!(!world.delete_message(Peer::User(bot.user_id), first));
        let s = world.lock();
        let mailbox = &s.accounts[&bot.user_id].mailbox;
        assert_eq!(mailbox.pts, 4);
        let after_first: Vec<i32> = mailbox.events_after(2).map(|(p, _)| *p).collect();
        assert_eq!(after_first, [3, 4]);
        assert!(mailbox.messages.contains_key(&second));
    }

    #[test]
    fn file_references_are_per_viewer_and_expire() {
        let clock = Clock::default();
        let world = World::new(9, clock.clone());
        let reference = world.file_reference(5, 100);
        assert_eq!(world.check_file_reference(5, 100, &reference, None), Ok(()));
        assert_eq!(
            world.check_file_reference(5, 101, &reference, None),
            Err(ReferenceError::Expired)
        );
        assert_eq!(
            world.check_file_reference(6, 100, &reference, None),
            Err(ReferenceError::Expired)
        );
        assert_eq!(
            world.check_file_reference(5, 100, &[1, 2], None),
            Err(ReferenceError::Invalid)
        );
        clock.advance(std::time::Duration::from_millis(5));
        let ttl = Some(std::time::Duration::from_millis(1));
        assert_eq!(
            world.check_file_reference(5, 100, &reference, ttl),
            Err(ReferenceError::Expired)
        );
    }
}
