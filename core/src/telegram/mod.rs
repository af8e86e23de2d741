//! The only module that uses grammers types; nothing outside `telegram/` names one.
//!
//! * [`session`] — each bot's grammers `Session` stored in sled, plus the per-pool views;
//! * [`download`] — `BotClient` as the resolver's `DocumentSource` and the prober's
//!   `Prober` (the ports in `crate::ports`; `telegram/` imports nothing above them);
//! * [`channel`] — catalogue channels: channel messages → catalogue events, and the
//!   back-fill's reader (newest message id, batches of `channels.getMessages`);
//! * [`error`] — grammers failures classified into the ports' [`TelegramError`];
//! * this file — [`BotClient`]: one bot token, N grammers `SenderPool`s (one TCP connection
//!   per DC each), sign-in only when the stored session is not authorised, `upload.getFile`
//!   parts with a deadline, export/import of the authorisation into a media DC once per bot
//!   per DC (recorded in sled so a restart does not repeat it), and the message → file
//!   lookup the resolver builds on (a document, or a photo's largest size).
//!
//! Connection 0 owns the bot's [`SledSession`]: it signs in, creates and persists auth keys
//! and is the one whose updates a front-end would consume. Connections 1.. use
//! [`session::PoolSession`] views that read the same keys. Before any connection downloads
//! from a media DC, connection 0 authorises that DC (creating its key), so every connection
//! then finds a key that is already bound to the bot.
//!
//! grammers has no per-request timeout and its default retry policy sleeps on FLOOD_WAIT by
//! itself; here every call runs under the caller's deadline and pools use `NoRetries`, so a
//! flood wait comes back at once and the caller can move the request to another bot.

pub mod channel;
pub mod chat;
pub mod download;
pub mod error;
pub mod session;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use grammers_client::Client;
use grammers_client::client::ClientConfiguration;
use grammers_mtsender::{ConnectionParams, NoRetries, SenderPool};
use grammers_session::Session;
use grammers_session::updates::UpdatesLike;
use grammers_tl_types as tl;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use crate::ports::{DocumentInfo, DocumentLocation, FileKind, RetryClass, TelegramError};
pub use session::{PoolSession, SessionError, SledSession};

/// Largest part grammers 0.11 can receive: a 1 MiB answer trips its message-size assert and
/// kills the pool (see the team brief), so chunks are fetched as two parts of this size.
pub const MAX_PART: u32 = 512 * 1024;

/// What a bot needs to connect.
#[derive(Debug, Clone)]
pub struct BotConfig {
    pub token: String,
    pub api_id: i32,
    pub api_hash: String,
    /// Download connections (sender pools) for this bot; at least one.
    pub connections: usize,
}

/// Why a bot could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BotSetupError {
    #[error("a bot token looks like `<digits>:<secret>`")]
    MalformedToken,
    #[error("cannot open the session of bot {bot_id}")]
    Session {
        bot_id: i64,
        #[source]
        source: SessionError,
    },
}

/// The numeric bot id at the front of a token: the key its session is stored under (the
/// secret half never reaches the database).
pub fn bot_id_from_token(token: &str) -> Result<i64, BotSetupError> {
    let (id, secret) = token.split_once(':').ok_or(BotSetupError::MalformedToken)?;
    if secret.is_empty() || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BotSetupError::MalformedToken);
    }
    id.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(BotSetupError::MalformedToken)
}

/// Checks Telegram's `upload.getFile` rules (offset and limit multiples of 4 KiB, 1 MiB
/// divisible by limit, no crossing a 1 MiB boundary) and grammers' 512 KiB ceiling, so an
/// illegal request is refused here instead of costing a round trip.
pub fn check_part(offset: u64, limit: u32) -> Result<(), TelegramError> {
    if limit <= MAX_PART && tgcdn_shared::chunk::is_legal_get_file(offset, limit) {
        Ok(())
    } else {
        Err(TelegramError::LimitOrOffsetInvalid)
    }
}

struct Connection {
    client: Client,
    runner: JoinHandle<()>,
}

/// One bot: its session and its download connections.
pub struct BotClient {
    bot_id: i64,
    token: String,
    api_hash: String,
    session: Arc<SledSession>,
    connections: Vec<Connection>,
    /// Serialises export/import so concurrent first downloads from a DC import once.
    media_auth: tokio::sync::Mutex<()>,
    /// Connection 0's updates, kept only for a bot started to receive them (the main bot's
    /// front-end); [`chat`] turns them into an update feed.
    updates: std::sync::Mutex<Option<mpsc::Receiver<UpdatesLike>>>,
}

impl BotClient {
    /// Opens the bot's session in `sessions` and starts `config.connections` sender pools.
    /// Nothing is sent until the first call; connections open lazily per DC.
    pub fn start(sessions: &sled::Tree, config: &BotConfig) -> Result<Self, BotSetupError> {
        let bot_id = bot_id_from_token(&config.token)?;
        let session = SledSession::open(sessions.clone(), bot_id)
            .map_err(|source| BotSetupError::Session { bot_id, source })?;
        Ok(Self::with_session(Arc::new(session), config))
    }

    /// Like [`Self::start`] with a session already opened (tests provision DCs into it first).
    pub fn with_session(session: Arc<SledSession>, config: &BotConfig) -> Self {
        Self::build(session, config, false)
    }

    /// Like [`Self::start`], and keeps connection 0's updates for [`Self::update_feed`]
    /// (only the bot whose front-end consumes them should: undrained updates pile up).
    pub fn start_receiving_updates(
        sessions: &sled::Tree,
        config: &BotConfig,
    ) -> Result<Self, BotSetupError> {
        let bot_id = bot_id_from_token(&config.token)?;
        let session = SledSession::open(sessions.clone(), bot_id)
            .map_err(|source| BotSetupError::Session { bot_id, source })?;
        Ok(Self::build(Arc::new(session), config, true))
    }

    /// Like [`Self::with_session`], keeping the updates as [`Self::start_receiving_updates`].
    pub fn with_session_receiving_updates(session: Arc<SledSession>, config: &BotConfig) -> Self {
        Self::build(session, config, true)
    }

    fn build(session: Arc<SledSession>, config: &BotConfig, keep_updates: bool) -> Self {
        let count = config.connections.max(1);
        let mut connections = Vec::with_capacity(count);
        let (primary, updates) = spawn_pool(Arc::clone(&session), config.api_id, true);
        connections.push(primary);
        for _ in 1..count {
            // Only one pool may consume a bot's updates; the others drop their receiver.
            let (connection, _updates) =
                spawn_pool(Arc::new(session.pool_view()), config.api_id, false);
            connections.push(connection);
        }
        Self {
            bot_id: session.bot_id(),
            token: config.token.clone(),
            api_hash: config.api_hash.clone(),
            session,
            connections,
            media_auth: tokio::sync::Mutex::new(()),
            updates: std::sync::Mutex::new(keep_updates.then_some(updates)),
        }
    }

    pub fn bot_id(&self) -> i64 {
        self.bot_id
    }

    pub fn connections(&self) -> usize {
        self.connections.len()
    }

    pub fn session(&self) -> &Arc<SledSession> {
        &self.session
    }

    fn main(&self) -> &Client {
        // `with_session` always creates at least one connection.
        &self.connections[0].client
    }

    /// Signs the bot in unless its stored session already is. Returns whether it signed in.
    pub async fn sign_in_if_needed(&self, deadline: Instant) -> Result<bool, TelegramError> {
        if within(deadline, self.main().is_authorized()).await? {
            return Ok(false);
        }
        within(
            deadline,
            self.main().bot_sign_in(&self.token, &self.api_hash),
        )
        .await?;
        tracing::info!(bot_id = self.bot_id, "bot signed in");
        Ok(true)
    }

    /// Makes sure this bot's authorisation is imported into `dc_id` (no-op for the home DC or
    /// when the session records an earlier import with the current key).
    pub async fn authorize_dc(&self, dc_id: i32, deadline: Instant) -> Result<(), TelegramError> {
        if dc_id == self.home_dc()? || self.session.media_dc_authorized(dc_id).map_err(other)? {
            return Ok(());
        }
        let _serial = self.media_auth.lock().await;
        if self.session.media_dc_authorized(dc_id).map_err(other)? {
            return Ok(());
        }
        let export = tl::functions::auth::ExportAuthorization { dc_id };
        let tl::enums::auth::ExportedAuthorization::Authorization(exported) =
            within(deadline, self.main().invoke(&export)).await?;
        let import = tl::functions::auth::ImportAuthorization {
            id: exported.id,
            bytes: exported.bytes,
        };
        within(deadline, self.main().invoke_in_dc(dc_id, &import)).await?;
        self.session
            .mark_media_dc_authorized(dc_id)
            .await
            .map_err(other)?;
        tracing::info!(bot_id = self.bot_id, dc_id, "authorisation imported");
        Ok(())
    }

    fn home_dc(&self) -> Result<i32, TelegramError> {
        self.session.home_dc_id().map_err(other)
    }

    /// Downloads `limit` bytes at `offset` of a document or photo size on connection
    /// `connection`.
    ///
    /// Authorises the media DC first when needed; follows one `FILE_MIGRATE` and re-imports
    /// once after `AUTH_KEY_UNREGISTERED` in a media DC. Everything else (flood wait, stale
    /// reference, timeout…) goes back to the caller classified.
    pub async fn get_file_part(
        &self,
        connection: usize,
        location: &DocumentLocation,
        offset: u64,
        limit: u32,
        deadline: Instant,
    ) -> Result<Bytes, TelegramError> {
        check_part(offset, limit)?;
        let client = &self
            .connections
            .get(connection)
            .ok_or_else(|| TelegramError::Other(format!("no connection {connection}")))?
            .client;
        let request = tl::functions::upload::GetFile {
            precise: false,
            cdn_supported: false,
            location: input_location(location),
            offset: offset as i64,
            limit: limit as i32,
        };
        let mut dc_id = location.dc_id;
        let mut migrated = false;
        let mut reimported = false;
        loop {
            self.authorize_dc(dc_id, deadline).await?;
            match within(deadline, client.invoke_in_dc(dc_id, &request)).await {
                Ok(tl::enums::upload::File::File(file)) => return Ok(Bytes::from(file.bytes)),
                Ok(tl::enums::upload::File::CdnRedirect(_)) => {
                    return Err(TelegramError::Other("unexpected CDN redirect".into()));
                }
                Err(TelegramError::FileMigrate { dc }) if !migrated => {
                    migrated = true;
                    dc_id = dc;
                }
                Err(TelegramError::AuthKeyUnregistered)
                    if !reimported && dc_id != self.home_dc()? =>
                {
                    reimported = true;
                    self.session
                        .clear_media_dc_authorized(dc_id)
                        .map_err(other)?;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Fetches message `msg_id` of channel `channel_id` (bare id, not `-100…`) and returns its
    /// file (document or photo) as this bot sees it. No message, an empty one or one without
    /// a file is [`TelegramError::MessageNotFound`].
    pub async fn fetch_document(
        &self,
        channel_id: i64,
        msg_id: i32,
        deadline: Instant,
    ) -> Result<DocumentInfo, TelegramError> {
        let access_hash = self.channel_access_hash(channel_id).await;
        let request = tl::functions::channels::GetMessages {
            channel: tl::types::InputChannel {
                channel_id,
                access_hash,
            }
            .into(),
            id: vec![tl::types::InputMessageId { id: msg_id }.into()],
        };
        let answer = within(deadline, self.main().invoke(&request)).await?;
        document_from_messages(answer, msg_id).ok_or(TelegramError::MessageNotFound)
    }

    /// Whether this bot can read channel `channel_id` (bare id): `channels.getMessages` of
    /// message 1 answers, even with an empty message, only to members. `ChannelPrivate` means
    /// the bot was never added or was removed.
    pub async fn check_channel_access(
        &self,
        channel_id: i64,
        deadline: Instant,
    ) -> Result<(), TelegramError> {
        match self.fetch_document(channel_id, 1, deadline).await {
            Ok(_) | Err(TelegramError::MessageNotFound) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Bots may address channels they belong to with access hash 0; use the cached one if the
    /// session has it.
    async fn channel_access_hash(&self, channel_id: i64) -> i64 {
        let Some(peer) = grammers_session::types::PeerId::channel(channel_id) else {
            return 0;
        };
        match self.session.peer(peer).await {
            Ok(Some(info)) => info.auth().map_or(0, |auth| auth.hash()),
            _ => 0,
        }
    }
}

impl BotClient {
    /// Disconnects every pool and waits until their runner tasks are gone, so the session
    /// (and with it the sled database) is released when this returns. Dropping a
    /// `BotClient` only asks the runners to stop.
    pub async fn shutdown(mut self) {
        for connection in std::mem::take(&mut self.connections) {
            connection.client.disconnect();
            connection.runner.abort();
            // Aborted is the expected outcome; a runner that panicked is gone as well.
            let _ = connection.runner.await;
        }
    }
}

impl Drop for BotClient {
    fn drop(&mut self) {
        for connection in &self.connections {
            connection.client.disconnect();
            connection.runner.abort();
        }
    }
}

fn spawn_pool<S>(
    session: Arc<S>,
    api_id: i32,
    primary: bool,
) -> (Connection, mpsc::Receiver<UpdatesLike>)
where
    S: Session,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    let params = ConnectionParams {
        retry_policy: Box::new(NoRetries),
        ..ConnectionParams::default()
    };
    let SenderPool {
        runner,
        handle,
        updates,
    } = SenderPool::with_configuration(session, api_id, params);
    // The caller keeps connection 0's receiver for a front-end or drops it: a dropped
    // receiver makes grammers stop forwarding instead of warning about a full channel.
    let client = Client::with_configuration(
        handle,
        ClientConfiguration {
            auto_cache_peers: primary,
        },
    );
    let runner = tokio::spawn(runner.run());
    (Connection { client, runner }, updates)
}

async fn within<T>(
    deadline: Instant,
    call: impl Future<Output = Result<T, grammers_mtsender::InvocationError>>,
) -> Result<T, TelegramError> {
    match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), call).await {
        Ok(result) => result.map_err(TelegramError::from),
        Err(_) => Err(TelegramError::Timeout),
    }
}

fn other(error: SessionError) -> TelegramError {
    TelegramError::Other(format!("session: {error}"))
}

fn document_from_messages(
    answer: tl::enums::messages::Messages,
    msg_id: i32,
) -> Option<DocumentInfo> {
    use tl::enums::messages::Messages;
    let messages = match answer {
        Messages::Messages(m) => m.messages,
        Messages::Slice(m) => m.messages,
        Messages::ChannelMessages(m) => m.messages,
        Messages::NotModified(_) => return None,
    };
    messages.into_iter().find_map(|message| match message {
        tl::enums::Message::Message(message) if message.id == msg_id => document_of(message),
        _ => None,
    })
}

/// The `getFile` location of a document or of one photo size.
fn input_location(location: &DocumentLocation) -> tl::enums::InputFileLocation {
    match &location.kind {
        FileKind::Document => tl::types::InputDocumentFileLocation {
            id: location.id,
            access_hash: location.access_hash,
            file_reference: location.file_reference.clone(),
            thumb_size: String::new(),
        }
        .into(),
        FileKind::PhotoSize(thumb_size) => tl::types::InputPhotoFileLocation {
            id: location.id,
            access_hash: location.access_hash,
            file_reference: location.file_reference.clone(),
            thumb_size: thumb_size.clone(),
        }
        .into(),
    }
}

fn document_of(message: tl::types::Message) -> Option<DocumentInfo> {
    let media = match message.media {
        Some(tl::enums::MessageMedia::Document(media)) => media,
        Some(tl::enums::MessageMedia::Photo(media)) => {
            return photo_of(media, message.id, message.date);
        }
        _ => return None,
    };
    let Some(tl::enums::Document::Document(document)) = media.document else {
        return None;
    };
    let file_name = document
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            tl::enums::DocumentAttribute::Filename(f) => Some(f.file_name.clone()),
            _ => None,
        });
    Some(DocumentInfo {
        location: DocumentLocation {
            id: document.id,
            access_hash: document.access_hash,
            file_reference: document.file_reference,
            dc_id: document.dc_id,
            kind: FileKind::Document,
        },
        size: u64::try_from(document.size).ok()?,
        mime_type: document.mime_type,
        file_name,
        date: i64::from(message.date),
    })
}

/// A photo served as a file: its largest size (by bytes), as `image/jpeg` named
/// `photo_<msg_id>.jpg` (Telegram re-encodes every photo it stores as JPEG).
fn photo_of(media: tl::types::MessageMediaPhoto, msg_id: i32, date: i32) -> Option<DocumentInfo> {
    let Some(tl::enums::Photo::Photo(photo)) = media.photo else {
        return None;
    };
    let (thumb_size, size) = photo
        .sizes
        .iter()
        .filter_map(photo_size_bytes)
        .max_by_key(|(_, size)| *size)?;
    Some(DocumentInfo {
        location: DocumentLocation {
            id: photo.id,
            access_hash: photo.access_hash,
            file_reference: photo.file_reference,
            dc_id: photo.dc_id,
            kind: FileKind::PhotoSize(thumb_size),
        },
        size,
        mime_type: "image/jpeg".to_owned(),
        file_name: Some(format!("photo_{msg_id}.jpg")),
        date: i64::from(date),
    })
}

/// A downloadable photo size's type letter and bytes; `None` for the inline kinds
/// (stripped, cached, path) that `getFile` does not serve.
pub(crate) fn photo_size_bytes(size: &tl::enums::PhotoSize) -> Option<(String, u64)> {
    let (kind, bytes) = match size {
        tl::enums::PhotoSize::Size(s) => (&s.r#type, s.size),
        tl::enums::PhotoSize::Progressive(s) => (&s.r#type, *s.sizes.iter().max()?),
        _ => return None,
    };
    Some((kind.clone(), u64::try_from(bytes).ok().filter(|b| *b > 0)?))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const ONE_MIB: u64 = 1024 * 1024;

    #[test]
    fn bot_ids_come_from_the_token_prefix() {
        assert_eq!(bot_id_from_token("123456:AAE-secret").unwrap(), 123456);
        for bad in ["", "123456", ":secret", "12a:secret", "123:", "-5:x", "0:x"] {
            assert!(bot_id_from_token(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn legal_parts_pass() {
        check_part(0, MAX_PART).unwrap();
        check_part(512 * 1024, MAX_PART).unwrap();
        check_part(5 * ONE_MIB + 512 * 1024, MAX_PART).unwrap();
        check_part(ONE_MIB - 4096, 4096).unwrap();
        check_part(128 * 1024, 128 * 1024).unwrap();
    }

    #[test]
    fn illegal_parts_are_refused_before_any_call() {
        let cases = [
            (0, 0),
            (0, 1024 * 1024), // legal for Telegram, fatal for grammers 0.11
            (1, 4096),
            (0, 4097),
            (0, 3 * 4096),          // 1 MiB not divisible by the limit
            (768 * 1024, MAX_PART), // crosses the 1 MiB boundary
            (ONE_MIB - 4096, 8192), // crosses too
        ];
        for (offset, limit) in cases {
            assert_eq!(
                check_part(offset, limit),
                Err(TelegramError::LimitOrOffsetInvalid),
                "{offset} {limit}"
            );
        }
    }

    /// A channel post with `media`, for the tests here and in `chat`.
    pub(super) fn message_with(
        media: Option<tl::enums::MessageMedia>,
        id: i32,
    ) -> tl::enums::Message {
        let mut message = tl::types::Message {
            out: false,
            mentioned: false,
            media_unread: false,
            silent: false,
            post: true,
            from_scheduled: false,
            legacy: false,
            edit_hide: false,
            pinned: false,
            noforwards: false,
            invert_media: false,
            offline: false,
            video_processing_pending: false,
            paid_suggested_post_stars: false,
            paid_suggested_post_ton: false,
            id,
            from_id: None,
            from_boosts_applied: None,
            from_rank: None,
            peer_id: tl::types::PeerChannel { channel_id: 1 }.into(),
            saved_peer_id: None,
            fwd_from: None,
            via_bot_id: None,
            via_business_bot_id: None,
            guestchat_via_from: None,
            reply_to: None,
            date: 1_700_000_000,
            message: String::new(),
            media: None,
            reply_markup: None,
            entities: None,
            views: None,
            forwards: None,
            replies: None,
            edit_date: None,
            post_author: None,
            grouped_id: None,
            reactions: None,
            restriction_reason: None,
            ttl_period: None,
            quick_reply_shortcut_id: None,
            effect: None,
            factcheck: None,
            report_delivery_until_date: None,
            paid_message_stars: None,
            suggested_post: None,
            schedule_repeat_period: None,
            summary_from_language: None,
            rich_message: None,
        };
        message.media = media;
        message.into()
    }

    pub(super) fn document_media(size: i64, name: Option<&str>) -> tl::enums::MessageMedia {
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
            video: false,
            round: false,
            voice: false,
            document: Some(
                tl::types::Document {
                    id: 11,
                    access_hash: 22,
                    file_reference: vec![1, 2, 3],
                    date: 5,
                    mime_type: "video/mp4".into(),
                    size,
                    thumbs: None,
                    video_thumbs: None,
                    dc_id: 4,
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

    fn channel_messages(messages: Vec<tl::enums::Message>) -> tl::enums::messages::Messages {
        tl::types::messages::ChannelMessages {
            inexact: false,
            pts: 1,
            count: messages.len() as i32,
            offset_id_offset: None,
            messages,
            topics: Vec::new(),
            chats: Vec::new(),
            users: Vec::new(),
        }
        .into()
    }

    #[test]
    fn document_is_read_from_the_requested_message() {
        let answer = channel_messages(vec![
            message_with(None, 6),
            message_with(Some(document_media(3 << 20, Some("film.mp4"))), 7),
        ]);
        let info = document_from_messages(answer, 7).unwrap();
        assert_eq!(
            info.location,
            DocumentLocation {
                id: 11,
                access_hash: 22,
                file_reference: vec![1, 2, 3],
                dc_id: 4,
                kind: FileKind::Document,
            }
        );
        assert_eq!(info.size, 3 << 20);
        assert_eq!(info.mime_type, "video/mp4");
        assert_eq!(info.file_name.as_deref(), Some("film.mp4"));
        assert_eq!(info.date, 1_700_000_000);
    }

    /// A `messageMediaPhoto` with `sizes`, for the tests here and in `channel`.
    pub(super) fn photo_media(sizes: Vec<tl::enums::PhotoSize>) -> tl::enums::MessageMedia {
        tl::types::MessageMediaPhoto {
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
                    dc_id: 4,
                }
                .into(),
            ),
            ttl_seconds: None,
            video: None,
        }
        .into()
    }

    #[test]
    fn a_photo_is_served_as_its_largest_size() {
        let sizes = vec![
            tl::types::PhotoStrippedSize {
                r#type: "i".into(),
                bytes: vec![1, 2, 3],
            }
            .into(),
            tl::types::PhotoSizeProgressive {
                r#type: "y".into(),
                w: 1280,
                h: 960,
                sizes: vec![1000, 8000, 64000],
            }
            .into(),
            tl::types::PhotoSize {
                r#type: "m".into(),
                w: 320,
                h: 240,
                size: 900,
            }
            .into(),
        ];
        let answer = channel_messages(vec![message_with(Some(photo_media(sizes)), 7)]);
        let info = document_from_messages(answer, 7).unwrap();
        assert_eq!(
            info.location,
            DocumentLocation {
                id: 9,
                access_hash: 8,
                file_reference: vec![7],
                dc_id: 4,
                kind: FileKind::PhotoSize("y".into()),
            }
        );
        assert_eq!(info.size, 64000);
        assert_eq!(info.mime_type, "image/jpeg");
        assert_eq!(info.file_name.as_deref(), Some("photo_7.jpg"));
        let tl::enums::InputFileLocation::InputPhotoFileLocation(input) =
            input_location(&info.location)
        else {
            panic!("a photo location")
        };
        assert_eq!((input.id, input.thumb_size.as_str()), (9, "y"));
    }

    #[test]
    fn a_photo_without_a_downloadable_size_is_not_found() {
        let stripped = vec![
            tl::types::PhotoStrippedSize {
                r#type: "i".into(),
                bytes: vec![1],
            }
            .into(),
        ];
        let answer = channel_messages(vec![message_with(Some(photo_media(stripped)), 7)]);
        assert_eq!(document_from_messages(answer, 7), None);
    }

    #[test]
    fn no_document_means_not_found() {
        let empty: tl::enums::Message = tl::types::MessageEmpty {
            id: 7,
            peer_id: None,
        }
        .into();
        assert_eq!(
            document_from_messages(channel_messages(vec![empty]), 7),
            None
        );
        let text_only = channel_messages(vec![message_with(None, 7)]);
        assert_eq!(document_from_messages(text_only, 7), None);
        let other_id = channel_messages(vec![message_with(Some(document_media(1, None)), 8)]);
        assert_eq!(document_from_messages(other_id, 7), None);
        let negative = channel_messages(vec![message_with(Some(document_media(-1, None)), 7)]);
        assert_eq!(document_from_messages(negative, 7), None);
    }
}
