//! A bot's grammers session kept in the sled `sessions` tree, so a restart reuses its auth keys
//! and never signs in again.
//!
//! [`SledSession`] implements grammers 0.11's `Session` trait for one bot: home DC, DC options
//! with their auth keys, cached peers, the updates state (with per-channel pts), plus one thing
//! grammers does not track — which media DCs this bot's authorisation was already imported
//! into ([`SledSession::media_dc_authorized`]), so export/import happens once per bot per DC for
//! the life of the database, not once per process.
//!
//! Layout: every key starts with `bot/<bot id>/`, followed by `home_dc`, `dc/<id>`,
//! `peer/<bot API dialog id>`, `self`, `updates` or `media_auth/<dc>`. Values are postcard
//! encodings of the mirror types below (grammers' own serde support would pull in serde_with).
//!
//! Several connections per bot need several `SenderPool`s, and grammers says one session must
//! not serve several pools: every pool writes DC options after `help.getConfig`, and a pool that
//! finds no key for a DC generates its own. The first pool owns the [`SledSession`]; every other
//! pool gets a [`PoolSession`] view from [`SledSession::pool_view`]: it reads the home DC, peers,
//! updates state and — crucially — the auth keys live from the shared session, keeps the
//! addresses a pool learns in its own overlay, and never writes anything to disk. Callers must
//! therefore let the first pool connect to a DC (which creates and persists its key) before any
//! other pool talks to that DC; `telegram::BotClient` does so by authorising a media DC on the
//! first pool before downloading from it.
//!
//! Durability: home DC, DC options (auth keys) and media-DC marks are flushed before the
//! trait's future completes; peers and the updates state are left to sled's periodic flush
//! (losing the last pts to a crash only means a longer `getDifference`).

use std::collections::HashMap;
use std::net::{SocketAddrV4, SocketAddrV6};
use std::sync::{Arc, Mutex, MutexGuard};

use grammers_session::types::{
    ChannelKind, ChannelState, DcOption, PeerAuth, PeerId, PeerInfo, UpdateState, UpdatesState,
};
use grammers_session::{BoxFuture, Session, SessionData};
use serde::{Deserialize, Serialize};

use crate::store::{self, StoreError};

const TREE: &str = "sessions";
const AUTH_KEY_LEN: usize = 256;

/// Errors of the session storage; grammers sees them as erased session errors.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session store error for bot {bot_id}")]
    Store {
        bot_id: i64,
        #[source]
        source: StoreError,
    },
    #[error("stored auth key for bot {bot_id} dc {dc_id} has {len} bytes, not 256")]
    BadAuthKey { bot_id: i64, dc_id: i32, len: usize },
    #[error("session cache lock poisoned")]
    Poisoned,
}

#[derive(Serialize, Deserialize)]
struct StoredDcOption {
    ipv4: SocketAddrV4,
    ipv6: SocketAddrV6,
    auth_key: Option<Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
enum StoredPeer {
    User {
        id: i64,
        auth: Option<i64>,
        bot: Option<bool>,
        is_self: Option<bool>,
    },
    Chat {
        id: i64,
    },
    Channel {
        id: i64,
        auth: Option<i64>,
        kind: Option<u8>,
    },
}

#[derive(Serialize, Deserialize, Default)]
struct StoredUpdates {
    pts: i32,
    qts: i32,
    date: i32,
    seq: i32,
    channels: Vec<(i64, i32)>,
}

/// In-memory copy of what grammers reads on every request (`home_dc_id`, `dc_option` are
/// synchronous and must be cheap).
struct Cache {
    home_dc: i32,
    dc_options: HashMap<i32, DcOption>,
}

/// One bot's persisted grammers session. Share it as `Arc<SledSession>`.
pub struct SledSession {
    tree: sled::Tree,
    bot_id: i64,
    prefix: Vec<u8>,
    cache: Mutex<Cache>,
    /// Serialises read-modify-write of peers and the updates state.
    write_lock: Mutex<()>,
}

impl SledSession {
    /// Opens bot `bot_id`'s session inside the `sessions` tree (see
    /// [`crate::store::Store::sessions_tree`]). A bot never seen before starts from grammers'
    /// defaults (home DC 2, Telegram's five static DC addresses, no keys).
    pub fn open(tree: sled::Tree, bot_id: i64) -> Result<Self, SessionError> {
        let prefix = format!("bot/{bot_id}/").into_bytes();
        let defaults = SessionData::default();
        let mut session = Self {
            tree,
            bot_id,
            prefix,
            cache: Mutex::new(Cache {
                home_dc: defaults.home_dc,
                dc_options: defaults.dc_options,
            }),
            write_lock: Mutex::new(()),
        };
        session.load_cache()?;
        Ok(session)
    }

    pub fn bot_id(&self) -> i64 {
        self.bot_id
    }

    fn load_cache(&mut self) -> Result<(), SessionError> {
        let home_dc: Option<i32> = self.get(b"home_dc")?;
        let dc_prefix = self.key(b"dc/");
        let mut stored = Vec::new();
        for entry in self.tree.scan_prefix(&dc_prefix) {
            let (key, value) = entry.map_err(|e| self.store_error(e.into()))?;
            let Some(id_bytes) = key.get(dc_prefix.len()..).and_then(|b| b.try_into().ok()) else {
                continue;
            };
            let id = i32::from_be_bytes(id_bytes);
            let option: StoredDcOption =
                store::decode(TREE, &key, &value).map_err(|e| self.store_error(e))?;
            stored.push(self.dc_option_from_stored(id, option)?);
        }
        let cache = self.cache.get_mut().map_err(|_| SessionError::Poisoned)?;
        if let Some(home_dc) = home_dc {
            cache.home_dc = home_dc;
        }
        for option in stored {
            cache.dc_options.insert(option.id, option);
        }
        Ok(())
    }

    fn dc_option_from_stored(
        &self,
        id: i32,
        option: StoredDcOption,
    ) -> Result<DcOption, SessionError> {
        let auth_key = match option.auth_key {
            None => None,
            Some(bytes) => Some(<[u8; AUTH_KEY_LEN]>::try_from(bytes.as_slice()).map_err(
                |_| SessionError::BadAuthKey {
                    bot_id: self.bot_id,
                    dc_id: id,
                    len: bytes.len(),
                },
            )?),
        };
        Ok(DcOption {
            id,
            ipv4: option.ipv4,
            ipv6: option.ipv6,
            auth_key,
        })
    }

    /// Pins DC `dc_id` to `address`, optionally with an auth key made elsewhere (the emulator
    /// provisions keys because a DH handshake needs Telegram's private RSA keys; an operator
    /// may pin addresses). Durable, like every DC option.
    pub async fn provision_dc(
        &self,
        dc_id: i32,
        address: SocketAddrV4,
        auth_key: Option<[u8; AUTH_KEY_LEN]>,
    ) -> Result<(), SessionError> {
        let option = DcOption {
            id: dc_id,
            ipv4: address,
            ipv6: SocketAddrV6::new(address.ip().to_ipv6_mapped(), address.port(), 0, 0),
            auth_key,
        };
        self.set_dc_option(&option).await
    }

    /// Whether the session holds an auth key for `dc_id`.
    pub fn has_auth_key(&self, dc_id: i32) -> Result<bool, SessionError> {
        Ok(self.dc_option(dc_id)?.is_some_and(|o| o.auth_key.is_some()))
    }

    /// Whether this bot's authorisation was imported into `dc_id` with the key it holds now.
    pub fn media_dc_authorized(&self, dc_id: i32) -> Result<bool, SessionError> {
        self.tree
            .contains_key(self.media_auth_key(dc_id))
            .map_err(|e| self.store_error(e.into()))
    }

    /// Records (durably) that `auth.importAuthorization` succeeded in `dc_id`.
    pub async fn mark_media_dc_authorized(&self, dc_id: i32) -> Result<(), SessionError> {
        self.tree
            .insert(self.media_auth_key(dc_id), &[])
            .map_err(|e| self.store_error(e.into()))?;
        self.flush().await
    }

    /// Forgets the import into `dc_id` (after the DC answered `AUTH_KEY_UNREGISTERED`).
    pub fn clear_media_dc_authorized(&self, dc_id: i32) -> Result<(), SessionError> {
        self.tree
            .remove(self.media_auth_key(dc_id))
            .map_err(|e| self.store_error(e.into()))?;
        Ok(())
    }

    /// A view for an additional `SenderPool` of this bot; see the module doc.
    pub fn pool_view(self: &Arc<Self>) -> PoolSession {
        PoolSession {
            shared: Arc::clone(self),
            addresses: Mutex::new(HashMap::new()),
        }
    }

    fn media_auth_key(&self, dc_id: i32) -> Vec<u8> {
        let mut key = self.key(b"media_auth/");
        key.extend_from_slice(&dc_id.to_be_bytes());
        key
    }

    fn key(&self, suffix: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.prefix.len() + suffix.len() + 8);
        key.extend_from_slice(&self.prefix);
        key.extend_from_slice(suffix);
        key
    }

    fn dc_key(&self, dc_id: i32) -> Vec<u8> {
        let mut key = self.key(b"dc/");
        key.extend_from_slice(&dc_id.to_be_bytes());
        key
    }

    fn peer_key(&self, dialog_id: i64) -> Vec<u8> {
        let mut key = self.key(b"peer/");
        key.extend_from_slice(&dialog_id.to_be_bytes());
        key
    }

    fn get<V: serde::de::DeserializeOwned>(
        &self,
        suffix: &[u8],
    ) -> Result<Option<V>, SessionError> {
        store::get(&self.tree, TREE, &self.key(suffix)).map_err(|e| self.store_error(e))
    }

    fn put<V: Serialize + ?Sized>(&self, key: &[u8], value: &V) -> Result<(), SessionError> {
        store::put(&self.tree, TREE, key, value).map_err(|e| self.store_error(e))
    }

    pub async fn flush(&self) -> Result<(), SessionError> {
        self.tree
            .flush_async()
            .await
            .map_err(|e| self.store_error(e.into()))?;
        Ok(())
    }

    fn store_error(&self, source: StoreError) -> SessionError {
        SessionError::Store {
            bot_id: self.bot_id,
            source,
        }
    }

    fn cache(&self) -> Result<MutexGuard<'_, Cache>, SessionError> {
        self.cache.lock().map_err(|_| SessionError::Poisoned)
    }

    fn writer(&self) -> Result<MutexGuard<'_, ()>, SessionError> {
        self.write_lock.lock().map_err(|_| SessionError::Poisoned)
    }

    fn load_peer(&self, dialog_id: i64) -> Result<Option<PeerInfo>, SessionError> {
        let stored: Option<StoredPeer> = store::get(&self.tree, TREE, &self.peer_key(dialog_id))
            .map_err(|e| self.store_error(e))?;
        Ok(stored.map(peer_from_stored))
    }

    fn store_peer(&self, peer: PeerInfo) -> Result<(), SessionError> {
        let Some(dialog_id) = peer.id().bot_api_dialog_id() else {
            return Ok(());
        };
        let _guard = self.writer()?;
        let merged = match self.load_peer(dialog_id)? {
            Some(mut known) => {
                if known.extend_info(&peer) {
                    known
                } else {
                    peer
                }
            }
            None => peer,
        };
        if let PeerInfo::User {
            is_self: Some(true),
            ..
        } = merged
        {
            self.put(&self.key(b"self"), &dialog_id)?;
        }
        self.put(&self.peer_key(dialog_id), &peer_to_stored(&merged))
    }

    fn load_updates(&self) -> Result<StoredUpdates, SessionError> {
        Ok(self.get(b"updates")?.unwrap_or_default())
    }

    fn apply_update_state(&self, update: UpdateState) -> Result<(), SessionError> {
        let _guard = self.writer()?;
        let mut state = self.load_updates()?;
        match update {
            UpdateState::All(all) => {
                state = StoredUpdates {
                    pts: all.pts,
                    qts: all.qts,
                    date: all.date,
                    seq: all.seq,
                    channels: all.channels.iter().map(|c| (c.id, c.pts)).collect(),
                };
            }
            UpdateState::Primary { pts, date, seq } => {
                state.pts = pts;
                state.date = date;
                state.seq = seq;
            }
            UpdateState::Secondary { qts } => state.qts = qts,
            UpdateState::Channel { id, pts } => {
                match state.channels.iter_mut().find(|(known, _)| *known == id) {
                    Some(entry) => entry.1 = pts,
                    None => state.channels.push((id, pts)),
                }
            }
        }
        self.put(&self.key(b"updates"), &state)
    }
}

fn peer_to_stored(peer: &PeerInfo) -> StoredPeer {
    match *peer {
        PeerInfo::User {
            id,
            auth,
            bot,
            is_self,
        } => StoredPeer::User {
            id,
            auth: auth.map(PeerAuth::hash),
            bot,
            is_self,
        },
        PeerInfo::Chat { id } => StoredPeer::Chat { id },
        PeerInfo::Channel { id, auth, kind } => StoredPeer::Channel {
            id,
            auth: auth.map(PeerAuth::hash),
            kind: kind.map(|k| k as u8),
        },
    }
}

fn peer_from_stored(peer: StoredPeer) -> PeerInfo {
    match peer {
        StoredPeer::User {
            id,
            auth,
            bot,
            is_self,
        } => PeerInfo::User {
            id,
            auth: auth.map(PeerAuth::from_hash),
            bot,
            is_self,
        },
        StoredPeer::Chat { id } => PeerInfo::Chat { id },
        StoredPeer::Channel { id, auth, kind } => PeerInfo::Channel {
            id,
            auth: auth.map(PeerAuth::from_hash),
            kind: kind.and_then(channel_kind_from_u8),
        },
    }
}

fn channel_kind_from_u8(value: u8) -> Option<ChannelKind> {
    [
        ChannelKind::Broadcast,
        ChannelKind::Megagroup,
        ChannelKind::Gigagroup,
        ChannelKind::Community,
    ]
    .into_iter()
    .find(|kind| *kind as u8 == value)
}

impl Session for SledSession {
    type Error = SessionError;

    fn home_dc_id(&self) -> Result<i32, SessionError> {
        Ok(self.cache()?.home_dc)
    }

    fn set_home_dc_id(&self, dc_id: i32) -> BoxFuture<'_, Result<(), SessionError>> {
        Box::pin(async move {
            self.put(&self.key(b"home_dc"), &dc_id)?;
            self.cache()?.home_dc = dc_id;
            self.flush().await
        })
    }

    fn dc_option(&self, dc_id: i32) -> Result<Option<DcOption>, SessionError> {
        Ok(self.cache()?.dc_options.get(&dc_id).cloned())
    }

    fn set_dc_option(&self, dc_option: &DcOption) -> BoxFuture<'_, Result<(), SessionError>> {
        let dc_option = dc_option.clone();
        Box::pin(async move {
            let previous_key = self
                .cache()?
                .dc_options
                .get(&dc_option.id)
                .and_then(|o| o.auth_key);
            let stored = StoredDcOption {
                ipv4: dc_option.ipv4,
                ipv6: dc_option.ipv6,
                auth_key: dc_option.auth_key.map(|k| k.to_vec()),
            };
            self.put(&self.dc_key(dc_option.id), &stored)?;
            if previous_key != dc_option.auth_key {
                // An import binds the bot to one key: a new key starts unauthorised.
                self.clear_media_dc_authorized(dc_option.id)?;
            }
            self.cache()?.dc_options.insert(dc_option.id, dc_option);
            self.flush().await
        })
    }

    fn peer(&self, peer: PeerId) -> BoxFuture<'_, Result<Option<PeerInfo>, SessionError>> {
        Box::pin(async move {
            let dialog_id = match peer.bot_api_dialog_id() {
                Some(id) => id,
                None => match self.get::<i64>(b"self")? {
                    Some(id) => id,
                    None => return Ok(None),
                },
            };
            self.load_peer(dialog_id)
        })
    }

    fn cache_peer(&self, peer: PeerInfo) -> BoxFuture<'_, Result<(), SessionError>> {
        Box::pin(async move { self.store_peer(peer) })
    }

    fn updates_state(&self) -> BoxFuture<'_, Result<UpdatesState, SessionError>> {
        Box::pin(async move {
            let stored = self.load_updates()?;
            Ok(UpdatesState {
                pts: stored.pts,
                qts: stored.qts,
                date: stored.date,
                seq: stored.seq,
                channels: stored
                    .channels
                    .into_iter()
                    .map(|(id, pts)| ChannelState { id, pts })
                    .collect(),
            })
        })
    }

    fn set_update_state(&self, update: UpdateState) -> BoxFuture<'_, Result<(), SessionError>> {
        Box::pin(async move { self.apply_update_state(update) })
    }
}

/// The session of a bot's second, third, … `SenderPool`: live auth keys and identity from the
/// shared [`SledSession`], its own addresses, no writes to disk, no updates state of its own.
pub struct PoolSession {
    shared: Arc<SledSession>,
    /// Options this pool learnt (from `help.getConfig`, or a key it had to generate itself).
    addresses: Mutex<HashMap<i32, DcOption>>,
}

impl Session for PoolSession {
    type Error = SessionError;

    fn home_dc_id(&self) -> Result<i32, SessionError> {
        self.shared.home_dc_id()
    }

    fn set_home_dc_id(&self, _dc_id: i32) -> BoxFuture<'_, Result<(), SessionError>> {
        // Only the first pool signs in, so only it may move the home DC.
        Box::pin(async { Ok(()) })
    }

    fn dc_option(&self, dc_id: i32) -> Result<Option<DcOption>, SessionError> {
        let shared = self.shared.dc_option(dc_id)?;
        let own = self
            .addresses
            .lock()
            .map_err(|_| SessionError::Poisoned)?
            .get(&dc_id)
            .cloned();
        Ok(match (shared, own) {
            (shared, None) => shared,
            (None, own) => own,
            // The shared key wins: it is the one the first pool authorised.
            (Some(shared), Some(own)) => Some(DcOption {
                auth_key: shared.auth_key.or(own.auth_key),
                ..own
            }),
        })
    }

    fn set_dc_option(&self, dc_option: &DcOption) -> BoxFuture<'_, Result<(), SessionError>> {
        let dc_option = dc_option.clone();
        Box::pin(async move {
            let shared_key = self
                .shared
                .dc_option(dc_option.id)?
                .and_then(|o| o.auth_key);
            if shared_key.is_none() && dc_option.auth_key.is_some() {
                tracing::warn!(
                    bot_id = self.shared.bot_id,
                    dc_id = dc_option.id,
                    "a secondary pool generated its own auth key; connect the first pool first"
                );
            }
            self.addresses
                .lock()
                .map_err(|_| SessionError::Poisoned)?
                .insert(dc_option.id, dc_option);
            Ok(())
        })
    }

    fn peer(&self, peer: PeerId) -> BoxFuture<'_, Result<Option<PeerInfo>, SessionError>> {
        self.shared.peer(peer)
    }

    fn cache_peer(&self, _peer: PeerInfo) -> BoxFuture<'_, Result<(), SessionError>> {
        // Download pools only call upload.getFile, which carries no peers; keeping them out
        // means the shared session has one writer.
        Box::pin(async { Ok(()) })
    }

    fn updates_state(&self) -> BoxFuture<'_, Result<UpdatesState, SessionError>> {
        self.shared.updates_state()
    }

    fn set_update_state(&self, _update: UpdateState) -> BoxFuture<'_, Result<(), SessionError>> {
        // Updates are consumed on the first pool only.
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
