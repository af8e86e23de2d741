//! Revocation and the operator's link commands: mint, inspect, revoke, unrevoke.
//!
//! What is revoked is the *file* (one storage-channel message), not one token: a token
//! only names `(chat, message)`, so every link ever minted for that message — whatever its
//! expiry or signing key — stops working together, and a new link for it stays dead until
//! the file is unrevoked. The record lives in the sled `revocations` tree
//! ([`Store::revoke_durable`], on disk before the operator is answered), and the resolver
//! checks it on every request, so it survives restarts; a revoked file answers
//! [`WireError::Revoked`](tgcdn_shared::wire::WireError::Revoked), 410 Gone at the edge.
//!
//! After the record is written, [`Revocations`] announces the [`Change`] on a bounded
//! broadcast channel: the QUIC server pushes it to every connected edge (which refuses the
//! file whichever core serves it, see docs/SCALING.md) and the one-box edge applies it to
//! its own caches; an unrevocation is announced the same way. [`Revocations::files`] is the
//! whole list each edge gets when it connects. Called by the admin endpoint
//! (`tgcdn-core link …`) and the bot's `/revoke`; it never touches the network itself, and
//! the time is passed in.

use serde::{Deserialize, Serialize};
use tgcdn_shared::FileRef;
use tgcdn_shared::token::{Keyring, TokenError};
use tgcdn_shared::wire::Push;
use tokio::sync::broadcast;

use crate::store::{Revocation, Store, StoreError};

/// Revocations waiting for a slow connection's pusher before it falls behind; a pusher that
/// falls behind tells its edge to forget every cached meta instead (see `Push::ForgetAll`).
pub const ANNOUNCE_CAPACITY: usize = 1024;

/// Why a link command failed; each says what the operator got wrong or what broke.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("not a link this core signed: {0}")]
    Token(#[from] TokenError),
    #[error("no token in {0:?} (expected …/dl/TOKEN/name, …/watch/TOKEN or a bare token)")]
    NoToken(String),
    #[error("the revocation could not be stored")]
    Store(#[from] StoreError),
}

/// A change to this core's revocations, as announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Revoked(FileRef),
    Unrevoked(FileRef),
}

impl Change {
    /// The push that tells an edge.
    pub fn push(self) -> Push {
        match self {
            Change::Revoked(file) => Push::Revoked(file),
            Change::Unrevoked(file) => Push::Unrevoked(file),
        }
    }
}

/// Durable revocations and their announcement. One per core, shared by everything that can
/// revoke or serve.
pub struct Revocations {
    store: Store,
    announce: broadcast::Sender<Change>,
}

impl Revocations {
    pub fn new(store: Store) -> Self {
        Revocations {
            store,
            announce: broadcast::Sender::new(ANNOUNCE_CAPACITY),
        }
    }

    /// Revokes every link to `file`: on disk first, then announced (again, if it already
    /// was revoked: an edge that missed the first announcement hears it now).
    pub async fn revoke(
        &self,
        file: FileRef,
        reason: &str,
        now_unix: i64,
    ) -> Result<Revocation, StoreError> {
        let revocation = match self.store.revocation(file)? {
            Some(existing) => existing,
            None => {
                let revocation = Revocation {
                    revoked_at_unix: now_unix,
                    reason: reason.to_owned(),
                };
                self.store.revoke_durable(file, &revocation).await?;
                revocation
            }
        };
        // No subscriber (no edge connected) is not an error: the store answers from now on.
        let _ = self.announce.send(Change::Revoked(file));
        tracing::info!(%file, reason = %revocation.reason, "file revoked");
        Ok(revocation)
    }

    /// Makes `file` servable again; returns whether it was revoked. Announced either way
    /// (an edge that missed an earlier unrevocation hears it now): edges stop refusing it on
    /// this core's word at once.
    pub async fn unrevoke(&self, file: FileRef) -> Result<bool, StoreError> {
        let existed = self.store.unrevoke_durable(file).await?;
        let _ = self.announce.send(Change::Unrevoked(file));
        tracing::info!(%file, existed, "file unrevoked");
        Ok(existed)
    }

    /// Every file revoked on this core: what an edge is sent when it connects.
    pub fn files(&self) -> Result<Vec<FileRef>, StoreError> {
        self.store.revoked_files()
    }

    pub fn status(&self, file: FileRef) -> Result<Option<Revocation>, StoreError> {
        self.store.revocation(file)
    }

    /// Every change from now on, in order; lags (and says so) past [`ANNOUNCE_CAPACITY`].
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.announce.subscribe()
    }
}

/// What `/admin/links/*` answers and `tgcdn-core link …` prints about one link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkInfo {
    /// The link itself when the core built it (mint), else the token it was given.
    pub link: String,
    pub chat_id: i64,
    pub msg_id: i32,
    pub key_id: u8,
    /// Unix seconds from which the link no longer works; `None` never expires.
    pub expires_at: Option<u64>,
    pub expired: bool,
    /// Set when the file (every link to it) is revoked.
    pub revoked: Option<Revocation>,
}

impl LinkInfo {
    /// What the link answers a viewer now, in words.
    pub fn state(&self) -> &'static str {
        match (&self.revoked, self.expired) {
            (Some(_), _) => "revoked (410)",
            (None, true) => "expired (410)",
            (None, false) => "valid",
        }
    }

    /// The lines `tgcdn-core link …` prints.
    pub fn lines(&self) -> String {
        let expires = match self.expires_at {
            Some(at) => format!("{at} (unix)"),
            None => "never".to_owned(),
        };
        let mut text = format!(
            "link: {}\nfile: chat {} message {}\nkey id: {}\nexpires: {expires}\nstate: {}\n",
            self.link,
            self.chat_id,
            self.msg_id,
            self.key_id,
            self.state()
        );
        if let Some(revoked) = &self.revoked {
            text.push_str(&format!(
                "revoked at: {} (unix), reason: {}\n",
                revoked.revoked_at_unix, revoked.reason
            ));
        }
        text
    }
}

/// The token inside `link`: the segment after `/dl/` or `/watch/`, or `link` itself when it
/// has no slash (a bare token).
pub fn token_of(link: &str) -> Result<&str, LinkError> {
    let link = link.trim();
    let after = ["/dl/", "/watch/"]
        .iter()
        .find_map(|marker| link.find(marker).map(|at| &link[at + marker.len()..]));
    let token = match after {
        Some(rest) => rest.split(['/', '?', '#']).next().unwrap_or(""),
        None if !link.contains('/') => link,
        None => "",
    };
    if token.is_empty() {
        return Err(LinkError::NoToken(link.to_owned()));
    }
    Ok(token)
}

/// What `link` says, checked against `keyring`, including when it has expired (an operator
/// inspects and revokes expired links too).
pub fn inspect(
    keyring: &Keyring,
    revocations: &Revocations,
    link: &str,
    now_unix: u64,
) -> Result<LinkInfo, LinkError> {
    let token = token_of(link)?;
    // Verified as of the epoch so an expired link still yields its claims; expiry is
    // judged against the real time below.
    let claims = keyring.verify(token, 0)?;
    let expired = claims.expires_at.is_some_and(|at| now_unix >= at);
    Ok(LinkInfo {
        link: link.trim().to_owned(),
        chat_id: claims.file.chat_id,
        msg_id: claims.file.msg_id,
        key_id: claims.key_id,
        expires_at: claims.expires_at,
        expired,
        revoked: revocations.status(claims.file)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tgcdn_shared::token::LinkKey;

    const FILE: FileRef = FileRef {
        chat_id: -1_001_234_567_890,
        msg_id: 42,
    };

    fn keyring() -> Keyring {
        Keyring::new(LinkKey::new(3, [7u8; 32]).unwrap(), Vec::new()).unwrap()
    }

    #[test]
    fn the_token_is_found_in_every_link_shape() {
        assert_eq!(
            token_of("https://cdn.example/dl/AbC/film.mkv").unwrap(),
            "AbC"
        );
        assert_eq!(token_of(" https://cdn.example/dl/AbC ").unwrap(), "AbC");
        assert_eq!(token_of("https://cdn.example/dl/AbC?x=1").unwrap(), "AbC");
        assert_eq!(token_of("https://cdn.example/watch/XyZ").unwrap(), "XyZ");
        assert_eq!(token_of("XyZ").unwrap(), "XyZ");
        for bad in [
            "",
            "https://cdn.example/",
            "https://cdn.example/dl/",
            "/dl//x",
        ] {
            assert!(matches!(token_of(bad), Err(LinkError::NoToken(_))), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_revoke_is_stored_announced_and_covers_every_link_to_the_file() {
        let store = Store::temporary().unwrap();
        let revocations = Revocations::new(store.clone());
        let mut announced = revocations.subscribe();
        let keyring = keyring();
        let forever = keyring.sign(FILE, None);
        let week = keyring.sign(FILE, Some(1_000_000));
        revocations.revoke(FILE, "dmca", 500).await.unwrap();
        assert_eq!(announced.try_recv(), Ok(Change::Revoked(FILE)));
        assert_eq!(revocations.files().unwrap(), vec![FILE]);
        assert_eq!(store.revocation(FILE).unwrap().unwrap().reason, "dmca");
        for token in [&forever, &week] {
            let info = inspect(&keyring, &revocations, token, 600).unwrap();
            assert_eq!(info.state(), "revoked (410)");
            assert_eq!(info.revoked.as_ref().unwrap().revoked_at_unix, 500);
        }
        // Revoking again keeps the first record and announces again.
        revocations.revoke(FILE, "again", 900).await.unwrap();
        assert_eq!(announced.try_recv(), Ok(Change::Revoked(FILE)));
        assert_eq!(store.revocation(FILE).unwrap().unwrap().reason, "dmca");
        assert!(revocations.unrevoke(FILE).await.unwrap());
        assert_eq!(announced.try_recv(), Ok(Change::Unrevoked(FILE)));
        assert_eq!(revocations.files().unwrap(), Vec::<FileRef>::new());
        let info = inspect(&keyring, &revocations, &forever, 600).unwrap();
        assert_eq!(info.state(), "valid");
    }

    #[test]
    fn an_expired_link_is_inspected_not_refused() {
        let store = Store::temporary().unwrap();
        let revocations = Revocations::new(store);
        let keyring = keyring();
        let token = keyring.sign(FILE, Some(1_000));
        let before = inspect(&keyring, &revocations, &token, 999).unwrap();
        assert!(!before.expired);
        let after = inspect(&keyring, &revocations, &token, 1_000).unwrap();
        assert!(after.expired);
        assert_eq!(after.state(), "expired (410)");
        assert!(after.lines().contains("expires: 1000 (unix)"));
        let other = Keyring::new(LinkKey::new(3, [8u8; 32]).unwrap(), Vec::new()).unwrap();
        assert!(matches!(
            inspect(&other, &revocations, &token, 0),
            Err(LinkError::Token(TokenError::BadSignature))
        ));
    }
}
