//! The admin endpoint's link routes and their client: `POST /admin/links/{mint,inspect,
//! revoke,unrevoke}` with a small JSON body, answered with a [`LinkInfo`] (what
//! `tgcdn-core link …` prints).
//!
//! The work is [`crate::revoke`]'s; this module only turns requests into calls and errors
//! into statuses (400 for a link this core did not sign, 500 for a store failure). Minting
//! first asks the [`MintTarget`] (the resolver) whether the message exists and carries a
//! file, so an operator never hands out a dead link: 404 when it does not, 409 for a
//! revoked file, 503 when Telegram cannot say right now. The clock is read here, once per
//! request, and passed down.

use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use tgcdn_shared::FileRef;
use tgcdn_shared::token::Keyring;

use crate::frontend::links::download_link;
use crate::ports::BoxFuture;
use crate::resolve::{ResolveError, Resolver};
use crate::revoke::{LinkError, LinkInfo, Revocations, inspect};
use crate::store::FileMeta;

/// Longest body a link request may have: a link, a reason, a name.
pub const MAX_BODY: usize = 8 * 1024;

/// What the link routes need from the core.
pub struct LinkAdmin {
    pub keyring: Keyring,
    pub revocations: Arc<Revocations>,
    /// Where viewers reach the links minted here (`TGCDN_PUBLIC_URL`).
    pub public_base: String,
    /// Asked before a link is signed.
    pub target: Arc<dyn MintTarget>,
}

/// What minting asks before signing: that the message exists and carries a file this core
/// serves, and what that file is (its name ends the link when none is given).
pub trait MintTarget: Send + Sync {
    fn prepare(&self, file: FileRef) -> BoxFuture<'_, Result<FileMeta, ResolveError>>;
}

/// In production the resolver answers, as for the bot's own links: the meta is stored and
/// every bot's location looked up, so the minted link's first range needs no lookup.
impl MintTarget for Arc<Resolver> {
    fn prepare(&self, file: FileRef) -> BoxFuture<'_, Result<FileMeta, ResolveError>> {
        Box::pin(self.prepare_link(file))
    }
}

/// Why a link route failed; each maps to one status.
#[derive(Debug, thiserror::Error)]
enum RouteError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("message {} of {} does not exist or carries no file: no link minted", .0.msg_id, .0.chat_id)]
    NoFile(FileRef),
    #[error("the file is revoked: unrevoke it first")]
    Revoked,
    #[error("Telegram could not tell whether the message exists ({0}); try again")]
    Unavailable(ResolveError),
}

impl RouteError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Link(LinkError::Token(_) | LinkError::NoToken(_)) => StatusCode::BAD_REQUEST,
            Self::Link(LinkError::Store(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::NoFile(_) => StatusCode::NOT_FOUND,
            Self::Revoked => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// `POST /admin/links/mint`: a link to message `msg_id` of `chat_id`, optionally expiring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MintRequest {
    pub chat_id: i64,
    pub msg_id: i32,
    /// Seconds from now; `None` never expires.
    pub expires_in_secs: Option<u64>,
    /// The cosmetic file name at the end of the link; default `file`.
    pub name: Option<String>,
}

/// `POST /admin/links/{inspect,revoke,unrevoke}`: the link (or bare token) concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRequest {
    pub link: String,
    /// Why, for `revoke`; kept with the revocation.
    pub reason: Option<String>,
}

/// Answers one link route; `action` is the path after `/admin/links/`.
pub async fn answer(
    links: &LinkAdmin,
    action: &str,
    body: &[u8],
    now_unix: u64,
) -> (StatusCode, Result<LinkInfo, String>) {
    let result = match action {
        "mint" => match serde_json::from_slice::<MintRequest>(body) {
            Ok(request) => mint(links, &request, now_unix).await,
            Err(error) => {
                return bad(format!(
                    "mint wants {{chat_id, msg_id, expires_in_secs?, name?}}: {error}"
                ));
            }
        },
        "inspect" | "revoke" | "unrevoke" => match serde_json::from_slice::<LinkRequest>(body) {
            Ok(request) => on_link(links, action, &request, now_unix)
                .await
                .map_err(RouteError::from),
            Err(error) => return bad(format!("{action} wants {{link, reason?}}: {error}")),
        },
        _ => {
            return (
                StatusCode::NOT_FOUND,
                Err("unknown link action\n".to_owned()),
            );
        }
    };
    match result {
        Ok(info) => (StatusCode::OK, Ok(info)),
        Err(error) => (error.status(), Err(format!("{error}\n"))),
    }
}

fn bad(message: String) -> (StatusCode, Result<LinkInfo, String>) {
    (StatusCode::BAD_REQUEST, Err(format!("{message}\n")))
}

async fn mint(
    links: &LinkAdmin,
    request: &MintRequest,
    now_unix: u64,
) -> Result<LinkInfo, RouteError> {
    let file = FileRef {
        chat_id: request.chat_id,
        msg_id: request.msg_id,
    };
    let meta = links
        .target
        .prepare(file)
        .await
        .map_err(|error| match error {
            ResolveError::Revoked => RouteError::Revoked,
            error if error.is_not_found() => RouteError::NoFile(file),
            error => RouteError::Unavailable(error),
        })?;
    let expires_at = request
        .expires_in_secs
        .map(|secs| now_unix.saturating_add(secs));
    let token = links.keyring.sign(file, expires_at);
    let name = request.name.as_deref().unwrap_or(&meta.file_name);
    let link = download_link(&links.public_base, &token, name);
    Ok(inspect(
        &links.keyring,
        &links.revocations,
        &link,
        now_unix,
    )?)
}

async fn on_link(
    links: &LinkAdmin,
    action: &str,
    request: &LinkRequest,
    now_unix: u64,
) -> Result<LinkInfo, LinkError> {
    let info = inspect(&links.keyring, &links.revocations, &request.link, now_unix)?;
    let file = FileRef {
        chat_id: info.chat_id,
        msg_id: info.msg_id,
    };
    match action {
        "revoke" => {
            let reason = request
                .reason
                .as_deref()
                .unwrap_or("revoked by the operator");
            let now = i64::try_from(now_unix).unwrap_or(i64::MAX);
            links.revocations.revoke(file, reason, now).await?;
        }
        "unrevoke" => {
            links.revocations.unrevoke(file).await?;
        }
        _ => return Ok(info),
    }
    inspect(&links.keyring, &links.revocations, &request.link, now_unix)
}

/// Parses `7d`, `12h`, `30m`, `90s` for `--expires`.
pub fn parse_expiry(text: &str) -> Option<Duration> {
    <Duration as tgcdn_shared::config::FromSetting>::from_text(text)
        .filter(|duration| !duration.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::retry::GiveUp;
    use crate::store::Store;
    use tgcdn_shared::token::LinkKey;

    /// Messages 1..=100 carry `film-{id}.mkv`; 404 is a text message; 503 makes Telegram
    /// unreachable.
    struct Channel;

    impl MintTarget for Channel {
        fn prepare(&self, file: FileRef) -> BoxFuture<'_, Result<FileMeta, ResolveError>> {
            Box::pin(async move {
                match file.msg_id {
                    1..=100 => Ok(FileMeta {
                        size: 1 << 20,
                        mime_type: "video/x-matroska".to_owned(),
                        file_name: format!("film-{}.mkv", file.msg_id),
                        dc_id: 4,
                        document_id: 77,
                        date: 0,
                    }),
                    503 => Err(GiveUp::Unavailable("cut".to_owned()).into()),
                    _ => Err(GiveUp::NotFound.into()),
                }
            })
        }
    }

    fn links() -> LinkAdmin {
        LinkAdmin {
            keyring: Keyring::new(LinkKey::new(1, [9u8; 32]).unwrap(), Vec::new()).unwrap(),
            revocations: Arc::new(Revocations::new(Store::temporary().unwrap())),
            public_base: "https://cdn.example".to_owned(),
            target: Arc::new(Channel),
        }
    }

    #[tokio::test]
    async fn a_link_is_minted_only_for_a_message_with_a_file() {
        let links = links();
        let (status, minted) = answer(&links, "mint", br#"{"chat_id":-1001,"msg_id":7}"#, 0).await;
        assert_eq!(status, StatusCode::OK);
        // No name given: the file's own.
        assert!(minted.unwrap().link.ends_with("/film-7.mkv"));
        let (status, error) = answer(&links, "mint", br#"{"chat_id":-1001,"msg_id":404}"#, 0).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            error
                .unwrap_err()
                .contains("message 404 of -1001 does not exist")
        );
        let (status, error) = answer(&links, "mint", br#"{"chat_id":-1001,"msg_id":503}"#, 0).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(error.unwrap_err().contains("try again"));
    }

    #[tokio::test]
    async fn mint_inspect_revoke_unrevoke() {
        let links = links();
        let mint = br#"{"chat_id":-1001,"msg_id":5,"expires_in_secs":604800,"name":"a.mkv"}"#;
        let (status, minted) = answer(&links, "mint", mint, 1_000).await;
        assert_eq!(status, StatusCode::OK);
        let minted = minted.unwrap();
        assert!(
            minted.link.starts_with("https://cdn.example/dl/"),
            "{minted:?}"
        );
        assert!(minted.link.ends_with("/a.mkv"));
        assert_eq!(minted.expires_at, Some(605_800));
        let body = serde_json::to_vec(&LinkRequest {
            link: minted.link.clone(),
            reason: Some("dmca".to_owned()),
        })
        .unwrap();
        let (_, revoked) = answer(&links, "revoke", &body, 2_000).await;
        let revoked = revoked.unwrap();
        assert_eq!(revoked.state(), "revoked (410)");
        assert_eq!(revoked.revoked.unwrap().reason, "dmca");
        let (_, inspected) = answer(&links, "inspect", &body, 2_000).await;
        assert_eq!(inspected.unwrap().state(), "revoked (410)");
        let (_, unrevoked) = answer(&links, "unrevoke", &body, 2_000).await;
        assert_eq!(unrevoked.unwrap().state(), "valid");
        let (_, late) = answer(&links, "inspect", &body, 605_800).await;
        assert_eq!(late.unwrap().state(), "expired (410)");
    }

    #[tokio::test]
    async fn bad_requests_say_why() {
        let links = links();
        let (status, error) = answer(&links, "revoke", b"{}", 0).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(error.unwrap_err().contains("revoke wants {link"));
        let forged = br#"{"link":"https://cdn.example/dl/3zZz9/x"}"#;
        let (status, error) = answer(&links, "revoke", forged, 0).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(error.unwrap_err().contains("not a link this core signed"));
        let (status, _) = answer(&links, "explode", b"{}", 0).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn expiries_need_a_unit() {
        assert_eq!(parse_expiry("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_expiry("12h"), Some(Duration::from_secs(43_200)));
        assert_eq!(parse_expiry("7"), None);
        assert_eq!(parse_expiry("0s"), None);
    }
}
