//! Counters tests assert on: requests and bytes per bot, per DC, per method, sign-ins and
//! authorisation transfers. Written by the connection driver and API handlers, read as a
//! [`CountersSnapshot`]. Never influences behaviour.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// A copy of every counter at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// TL method name (e.g. `upload.getFile`) → requests.
    pub requests_by_method: BTreeMap<String, u64>,
    pub requests_by_dc: BTreeMap<i32, u64>,
    /// Bot user id → requests made on connections authorised as that bot.
    pub requests_by_bot: BTreeMap<i64, u64>,
    /// Bot user id → bytes written to that bot's connections (transport framing included).
    pub bytes_by_bot: BTreeMap<i64, u64>,
    pub bytes_by_dc: BTreeMap<i32, u64>,
    /// `upload.getFile` answers that carried bytes, per DC.
    pub get_file_by_dc: BTreeMap<i32, u64>,
    /// Successful `auth.importBotAuthorization` calls.
    pub bot_sign_ins: u64,
    pub auth_exports: u64,
    pub auth_imports: u64,
    /// Requests the client sent as `gzip_packed`.
    pub gzipped_requests: u64,
    /// `bad_server_salt` notifications sent.
    pub bad_server_salts: u64,
    /// Connections accepted, per DC.
    pub connections_by_dc: BTreeMap<i32, u64>,
    /// Every `channels.getMessages` that named a channel the caller may read, in order.
    pub channel_get_messages: Vec<GetMessagesCall>,
}

/// One `channels.getMessages` call: who asked, in which channel, for which ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetMessagesCall {
    pub user: i64,
    pub channel_id: i64,
    pub ids: Vec<i32>,
}

impl CountersSnapshot {
    pub fn requests_for(&self, method: &str) -> u64 {
        self.requests_by_method.get(method).copied().unwrap_or(0)
    }

    /// The `channels.getMessages` calls made in `channel_id`.
    pub fn get_messages_in(&self, channel_id: i64) -> Vec<&GetMessagesCall> {
        self.channel_get_messages
            .iter()
            .filter(|call| call.channel_id == channel_id)
            .collect()
    }
}

#[derive(Clone, Default)]
pub struct Counters {
    inner: Arc<Mutex<CountersSnapshot>>,
}

impl Counters {
    fn lock(&self) -> MutexGuard<'_, CountersSnapshot> {
        // Counters are plain numbers; a panic elsewhere leaves them consistent enough.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> CountersSnapshot {
        self.lock().clone()
    }

    pub fn reset(&self) {
        *self.lock() = CountersSnapshot::default();
    }

    pub(crate) fn request(&self, dc: i32, bot: Option<i64>, method: &str) {
        let mut c = self.lock();
        *c.requests_by_method.entry(method.to_owned()).or_default() += 1;
        *c.requests_by_dc.entry(dc).or_default() += 1;
        if let Some(bot) = bot {
            *c.requests_by_bot.entry(bot).or_default() += 1;
        }
    }

    pub(crate) fn bytes(&self, dc: i32, bot: Option<i64>, n: usize) {
        let mut c = self.lock();
        *c.bytes_by_dc.entry(dc).or_default() += n as u64;
        if let Some(bot) = bot {
            *c.bytes_by_bot.entry(bot).or_default() += n as u64;
        }
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut CountersSnapshot)) {
        f(&mut self.lock());
    }
}
