//! Temporary stand-ins for `tgcdn_shared::{wire, token}` types until those modules land on
//! `main`. Same names and fields as the shared crate's designs, so the switch is a change of
//! `use` lines. Nothing outside the edge may depend on this module; it is deleted on merge.

/// What the edge needs to answer HEAD and build headers (mirror of `shared::wire::FileMeta`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub size: u64,
    pub mime: String,
    pub name: String,
    pub unique_id: String,
    pub date: u64,
    pub dc: u8,
}

/// A typed failure reported by the core (mirror of `shared::wire::WireError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("file not found")]
    NotFound,
    #[error("file revoked")]
    Revoked,
    #[error("telegram flood wait, retry in {secs}s")]
    FloodWait { secs: u32 },
    #[error("upstream unavailable")]
    Unavailable,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("edge not authorised")]
    Unauthorized,
    #[error("protocol version mismatch, core supports {supported}")]
    VersionMismatch { supported: u16 },
    #[error("internal core error")]
    Internal,
}

impl WireError {
    pub fn http_status(&self) -> u16 {
        match self {
            WireError::NotFound => 404,
            WireError::Revoked => 410,
            WireError::FloodWait { .. } => 503,
            WireError::Unavailable => 502,
            WireError::BadRequest(_) => 400,
            WireError::Unauthorized | WireError::VersionMismatch { .. } => 502,
            WireError::Internal => 500,
        }
    }
    pub fn retry_after_secs(&self) -> Option<u32> {
        match self {
            WireError::FloodWait { secs } => Some(*secs),
            _ => None,
        }
    }
    pub fn is_retryable(&self) -> bool {
        matches!(self, WireError::FloodWait { .. } | WireError::Unavailable)
    }
}

// ---- shared::token stand-ins: "f{chat}_{msg}" valid, "e…" expired, "k…" unknown key ----

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("bad signature")]
    BadSignature,
    #[error("unknown key")]
    UnknownKey { key_id: u8 },
    #[error("expired")]
    Expired { expired_at: u64 },
}

impl TokenError {
    pub fn http_status(&self) -> u16 {
        match self {
            TokenError::BadSignature => 404,
            TokenError::UnknownKey { .. } => 403,
            TokenError::Expired { .. } => 410,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    file: tgcdn_shared::FileRef,
    expires_at: Option<u64>,
}

impl VerifiedToken {
    pub fn file(&self) -> tgcdn_shared::FileRef {
        self.file
    }
    pub fn expires_at(&self) -> Option<u64> {
        self.expires_at
    }
}

#[derive(Debug, Clone, Default)]
pub struct TokenVerifier;

impl TokenVerifier {
    pub fn sign(file: tgcdn_shared::FileRef) -> String {
        format!("f{}_{}", file.chat_id, file.msg_id)
    }
    pub fn verify(&self, token: &str, _now_unix: u64) -> Result<VerifiedToken, TokenError> {
        let (kind, rest) = token.split_at_checked(1).ok_or(TokenError::BadSignature)?;
        let (chat, msg) = rest.split_once('_').ok_or(TokenError::BadSignature)?;
        let file = tgcdn_shared::FileRef {
            chat_id: chat.parse().map_err(|_| TokenError::BadSignature)?,
            msg_id: msg.parse().map_err(|_| TokenError::BadSignature)?,
        };
        match kind {
            "f" => Ok(VerifiedToken {
                file,
                expires_at: None,
            }),
            "e" => Err(TokenError::Expired { expired_at: 1 }),
            "k" => Err(TokenError::UnknownKey { key_id: 9 }),
            _ => Err(TokenError::BadSignature),
        }
    }
}
