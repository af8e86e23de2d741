//! Upstream failures as one typed enum with a retry class, so the fetch path decides what to
//! do with a match instead of string comparisons scattered through the code.
//!
//! [`TelegramError`] is what every port returns; `telegram::error` is the one place that
//! builds it from grammers' `InvocationError`. Pure: no I/O, no clock, no grammers type.

use crate::bots::Penalty;

/// What a caller should do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// This bot can't serve the request now (flood wait, lost connection, server hiccup, not a
    /// member): try the same request on another bot at once.
    RetryOtherBot,
    /// The file reference went stale: fetch the message again, then retry once.
    RefreshAndRetry,
    /// The file lives in (or the bot is not yet authorised in) another DC: export/import the
    /// authorisation, then retry there.
    MigrateAndRetry,
    /// The message or its document does not exist: answer "not found".
    NotFound,
    /// Retrying cannot help (a request we built wrongly, an unknown failure).
    GiveUp,
}

/// A Telegram call's failure, classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelegramError {
    #[error("flood wait: this bot must not call for {secs} s")]
    FloodWait { secs: u32 },
    #[error("the file lives in dc {dc}")]
    FileMigrate { dc: i32 },
    #[error("the file reference expired")]
    FileReferenceExpired,
    #[error("the auth key is not authorised in this dc")]
    AuthKeyUnregistered,
    #[error("the bot token is invalid or revoked")]
    AccessTokenInvalid,
    #[error("the bot cannot read this channel")]
    ChannelPrivate,
    #[error("no such message")]
    MessageNotFound,
    #[error("getFile offset or limit rejected")]
    LimitOrOffsetInvalid,
    #[error("no answer before the deadline")]
    Timeout,
    #[error("connection to telegram lost: {0}")]
    ConnectionLost(String),
    #[error("telegram internal error: {0}")]
    Internal(String),
    #[error("telegram error: {0}")]
    Other(String),
}

impl TelegramError {
    pub fn retry_class(&self) -> RetryClass {
        match self {
            Self::FloodWait { .. }
            | Self::ChannelPrivate
            | Self::AccessTokenInvalid
            | Self::Timeout
            | Self::ConnectionLost(_)
            | Self::Internal(_) => RetryClass::RetryOtherBot,
            Self::FileReferenceExpired => RetryClass::RefreshAndRetry,
            Self::FileMigrate { .. } | Self::AuthKeyUnregistered => RetryClass::MigrateAndRetry,
            Self::MessageNotFound => RetryClass::NotFound,
            Self::LimitOrOffsetInvalid | Self::Other(_) => RetryClass::GiveUp,
        }
    }

    /// What the failure means for the bot beyond this request, if anything: a flood wait,
    /// out of rotation for everything (revoked token, lost home-DC authorisation), or for the
    /// request's channel only (no access to it; the bot still serves every other channel).
    /// `AuthKeyUnregistered` from a media DC never gets here: `telegram` imports the
    /// authorisation again and retries once, so what reaches a caller is the home DC's (or an
    /// import that failed because the home DC no longer knows the bot). The background
    /// prober signs in again and puts the bot back.
    pub fn penalty(&self) -> Option<Penalty> {
        match self {
            Self::FloodWait { secs } => Some(Penalty::FloodWait { secs: *secs }),
            Self::AccessTokenInvalid => Some(Penalty::Bot {
                reason: "bot token revoked or invalid",
            }),
            Self::AuthKeyUnregistered => Some(Penalty::Bot {
                reason: "lost its home-DC authorisation",
            }),
            Self::ChannelPrivate => Some(Penalty::Channel {
                reason: "bot cannot read this channel",
            }),
            _ => None,
        }
    }

    /// The failure's class as a metric label: what the retry counters are kept by. Stable
    /// names, fewer than the variants (a timeout and a lost connection are both the link).
    pub fn class_label(&self) -> &'static str {
        match self {
            Self::FloodWait { .. } => "flood_wait",
            Self::FileMigrate { .. } | Self::AuthKeyUnregistered => "migrate",
            Self::FileReferenceExpired => "file_reference",
            Self::AccessTokenInvalid | Self::ChannelPrivate => "no_access",
            Self::MessageNotFound => "not_found",
            Self::Timeout => "timeout",
            Self::ConnectionLost(_) => "connection",
            Self::Internal(_) => "internal",
            Self::LimitOrOffsetInvalid | Self::Other(_) => "rejected",
        }
    }

    /// Whether the failure tells something about the request, so that it uses up one of
    /// the request's attempts. A lost connection (no answer came) and a flood wait (the
    /// bot's state, which the pool keeps, so the bot sits its wait out) do not: they are
    /// bounded by the request's deadline and the pauses between rounds instead.
    pub fn uses_an_attempt(&self) -> bool {
        !matches!(self, Self::ConnectionLost(_) | Self::FloodWait { .. })
    }

    pub fn is_flood_wait(&self) -> bool {
        matches!(self, Self::FloodWait { .. })
    }
}
