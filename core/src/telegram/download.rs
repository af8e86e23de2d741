//! The Telegram ends of the ports: [`BotClient`] is the resolver's [`DocumentSource`] and
//! the health prober's [`Prober`]; [`channel_bare_id`] maps Bot API chat ids to channels.
//! (The fetch's `PartDownloader` is `resolve::download::BotDownloader`: a part download
//! needs the resolver's location first.) Nothing here caches.

use std::sync::Arc;
use std::time::Instant;

use grammers_session::types::{PeerId, PeerKind};
use tgcdn_shared::FileRef;

use super::BotClient;
use crate::bots::health::ProbeTarget;
use crate::ports::{BoxFuture, DocumentInfo, DocumentSource, Prober, TelegramError};

impl DocumentSource for BotClient {
    fn lookup_document(
        self: Arc<Self>,
        file: FileRef,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<DocumentInfo, TelegramError>> {
        Box::pin(async move {
            let channel_id = channel_bare_id(file.chat_id).ok_or(TelegramError::MessageNotFound)?;
            self.fetch_document(channel_id, file.msg_id, deadline).await
        })
    }
}

impl Prober for BotClient {
    /// The bot-wide check signs in again if the session lost its authorisation (a revoked
    /// token fails here); the channel check reads message 1 of the channel.
    fn probe(
        self: Arc<Self>,
        target: ProbeTarget,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async move {
            match target {
                ProbeTarget::Bot => self
                    .sign_in_if_needed(deadline)
                    .await
                    .map(|_| ())
                    .map_err(|error| format!("sign-in failed: {error}")),
                ProbeTarget::Channel(chat_id) => {
                    let channel = channel_bare_id(chat_id)
                        .ok_or_else(|| format!("{chat_id} is not a channel"))?;
                    self.check_channel_access(channel, deadline)
                        .await
                        .map_err(|error| format!("cannot read the channel: {error}"))
                }
            }
        })
    }
}

/// The bare channel id of a Bot API chat id (`-100…`), or `None` for users and small groups.
pub fn channel_bare_id(chat_id: i64) -> Option<i64> {
    let peer = PeerId::from_bot_api_dialog_id(chat_id)?;
    match peer.kind() {
        PeerKind::Channel => peer.bare_id(),
        PeerKind::User | PeerKind::Chat => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_api_channel_ids_map_to_bare_ids() {
        assert_eq!(channel_bare_id(-1_001_234_567_890), Some(1_234_567_890));
        assert_eq!(channel_bare_id(-1_000_000_000_001), Some(1));
        assert_eq!(channel_bare_id(5), None);
        assert_eq!(channel_bare_id(-5), None);
        assert_eq!(channel_bare_id(0), None);
        assert_eq!(channel_bare_id(i64::MIN), None);
    }
}
