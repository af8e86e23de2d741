//! Link tokens: the `{token}` of `/dl/{token}/{filename}`, naming a [`FileRef`].
//!
//! The core's bot mints tokens with [`Keyring::sign`]; every edge checks them locally with
//! [`TokenVerifier::verify`] so a forged link never costs a round trip to the core. This
//! module is pure: the caller passes `now` in, nothing here reads the clock or does I/O.
//! It must never return a `FileRef` it has not authenticated, except through the legacy
//! path the operator explicitly enabled.
//!
//! # Signed format (version 1)
//!
//! ```text
//! token = base62( version:u8 ‖ key_id:u8 ‖ postcard(Body) ‖ tag[8] )
//! tag   = HMAC-SHA256(secret[key_id], version ‖ key_id ‖ postcard(Body))[..8]
//! Body  = { chat: Chat, msg_id: i32 (zigzag varint), expires_at: Option<u64> (varint) }
//! Chat  = Channel(u64)  — chat_id = -1_000_000_000_000 - id, the Bot API `-100…` form
//!       | Other(i64)    — any other chat id, zigzag varint
//! ```
//!
//! Storing a channel as its positive id saves the 8 bytes a `-100…` number costs as a zigzag
//! varint, so the common token (a channel message, no expiry) is 20 bytes / 26 characters,
//! against 59 characters for the older bots' zlib+JSON tokens of the same message.
//! Each `(FileRef, expiry, key)` has exactly one encoding: non-canonical bodies are
//! refused even under a valid tag, and base62 is a bijection (see [`base62`]).
//!
//! Verification order: text (length, alphabet) → version → length → key id → tag
//! (constant time) → body → expiry. The body is parsed only once the tag matched, so an
//! attacker learns nothing from the body parser.

pub mod base62;
mod legacy;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub use base62::Base62Error;
pub use legacy::{MAX_LEGACY_JSON_LEN, decode_legacy, encode_legacy};

use crate::FileRef;

/// The format version this code writes (first byte of every signed token).
pub const TOKEN_VERSION: u8 = 1;
/// Bytes of truncated HMAC-SHA256 at the end of a signed token.
pub const TAG_LEN: usize = 8;
/// Shortest accepted link secret.
pub const MIN_SECRET_LEN: usize = 16;
/// Longest signed token in characters: the largest body (both fields at their widest and
/// an expiry) encodes within this (checked by a test). Longer text is refused unparsed.
pub const MAX_SIGNED_TOKEN_LEN: usize = 49;

const HEADER_LEN: usize = 2;
/// Shortest body: enum tag, one-byte chat, one-byte message, `None`.
const MIN_BODY_LEN: usize = 4;
/// Longest body: enum tag + 10-byte varint, 5-byte varint, `Some` + 10-byte varint.
const MAX_BODY_LEN: usize = 1 + 10 + 5 + 1 + 10;
const MIN_TOKEN_BYTES: usize = HEADER_LEN + MIN_BODY_LEN + TAG_LEN;
const MAX_TOKEN_BYTES: usize = HEADER_LEN + MAX_BODY_LEN + TAG_LEN;
/// Bot API channel ids are `-100` followed by the channel id: `-(10^12 + id)`.
const CHANNEL_ID_BASE: i64 = -1_000_000_000_000;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused. [`TokenError::http_status`] is what an edge should answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token at all (garbage, truncated, unknown version): answer 404.
    #[error("malformed token: {0}")]
    Malformed(#[from] Malformed),
    /// Well-formed but the tag does not match (forged or altered): answer 404, the same as
    /// malformed, so a prober cannot tell "almost right" from "nonsense".
    #[error("token signature does not match")]
    BadSignature,
    /// Signed with a key this node does not hold (retired, or config out of date): 403.
    #[error("token signed with unknown key id {key_id}")]
    UnknownKey { key_id: u8 },
    /// Authentic but past its expiry: 410 Gone.
    #[error("token expired at {expired_at} (unix seconds)")]
    Expired { expired_at: u64 },
    /// A legacy (unsigned) token while this deployment does not accept them: 403.
    #[error("legacy unsigned tokens are not accepted here")]
    LegacyDisabled,
}

impl TokenError {
    /// The HTTP status an edge answers for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            TokenError::Malformed(_) | TokenError::BadSignature => 404,
            TokenError::UnknownKey { .. } | TokenError::LegacyDisabled => 403,
            TokenError::Expired { .. } => 410,
        }
    }
}

/// Which way a token failed to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("empty token")]
    Empty,
    #[error("{len} characters is longer than the {max} accepted")]
    TooLong { len: usize, max: usize },
    #[error("byte {found:#04x} at position {position} is not in 0-9a-zA-Z")]
    BadCharacter { position: usize, found: u8 },
    #[error("{len} bytes is shorter than the {min} of a token")]
    TooShort { len: usize, min: usize },
    #[error("unknown token format version {version}")]
    UnknownVersion { version: u8 },
    #[error("token body does not decode")]
    Body,
    #[error("{count} bytes left over after the token body")]
    TrailingBytes { count: usize },
    #[error("token body is not in canonical form")]
    NonCanonical,
    #[error("legacy token is not a zlib stream")]
    LegacyZlib,
    #[error("legacy token inflates past {MAX_LEGACY_JSON_LEN} bytes")]
    LegacyTooLarge,
    #[error("legacy token is not {{\"chat_id\": int, \"msg_id\": int}} JSON")]
    LegacyJson,
}

impl From<Base62Error> for Malformed {
    fn from(err: Base62Error) -> Self {
        match err {
            Base62Error::TooLong { len, max } => Malformed::TooLong { len, max },
            Base62Error::BadCharacter { position, found } => {
                Malformed::BadCharacter { position, found }
            }
        }
    }
}

/// Why a key or keyring was refused (configuration errors, found at start-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("link key {key_id}: secret is {len} bytes, at least {MIN_SECRET_LEN} required")]
    SecretTooShort { key_id: u8, len: usize },
    #[error("link key id {key_id} appears twice in the keyring")]
    DuplicateKeyId { key_id: u8 },
}

/// One link-signing secret and the id tokens name it by.
#[derive(Clone)]
pub struct LinkKey {
    id: u8,
    /// HMAC state with the key already absorbed; cloned per token to skip the key schedule.
    mac: HmacSha256,
}

impl LinkKey {
    /// A key from its id and secret (at least [`MIN_SECRET_LEN`] bytes).
    pub fn new(id: u8, secret: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let secret = secret.as_ref();
        if secret.len() < MIN_SECRET_LEN {
            return Err(KeyError::SecretTooShort {
                key_id: id,
                len: secret.len(),
            });
        }
        // HMAC takes keys of any length, so this cannot fail.
        let mac = HmacSha256::new_from_slice(secret).map_err(|_| KeyError::SecretTooShort {
            key_id: id,
            len: secret.len(),
        })?;
        Ok(LinkKey { id, mac })
    }

    pub fn id(&self) -> u8 {
        self.id
    }

    fn tag(&self, signed: &[u8]) -> [u8; TAG_LEN] {
        let full = self
            .mac
            .clone()
            .chain_update(signed)
            .finalize()
            .into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    fn verify_tag(&self, signed: &[u8], tag: &[u8]) -> bool {
        self.mac
            .clone()
            .chain_update(signed)
            .verify_truncated_left(tag)
            .is_ok()
    }
}

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What an authentic signed token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkClaims {
    pub file: FileRef,
    /// Unix seconds from which the link no longer works; `None` never expires.
    pub expires_at: Option<u64>,
    pub key_id: u8,
}

/// The signing key plus the older keys still accepted, for rotation without broken links.
#[derive(Debug, Clone)]
pub struct Keyring {
    /// `keys[0]` signs; all of them verify.
    keys: Vec<LinkKey>,
}

impl Keyring {
    /// A keyring signing with `current` and also accepting `older`. Key ids must be unique.
    pub fn new(current: LinkKey, older: Vec<LinkKey>) -> Result<Self, KeyError> {
        let mut keys = Vec::with_capacity(1 + older.len());
        keys.push(current);
        for key in older {
            if keys.iter().any(|k| k.id == key.id) {
                return Err(KeyError::DuplicateKeyId { key_id: key.id });
            }
            keys.push(key);
        }
        Ok(Keyring { keys })
    }

    /// Id of the key new tokens are signed with.
    pub fn current_key_id(&self) -> u8 {
        self.keys[0].id
    }

    /// Ids of every key that verifies, the current one first.
    pub fn key_ids(&self) -> impl Iterator<Item = u8> + '_ {
        self.keys.iter().map(|k| k.id)
    }

    fn key(&self, id: u8) -> Option<&LinkKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Mints a token for `file`, valid until `expires_at` (unix seconds) if given.
    pub fn sign(&self, file: FileRef, expires_at: Option<u64>) -> String {
        let key = &self.keys[0];
        let body = Body {
            chat: Chat::from_chat_id(file.chat_id),
            msg_id: file.msg_id,
            expires_at,
        };
        let mut buf = [0u8; MAX_TOKEN_BYTES];
        buf[0] = TOKEN_VERSION;
        buf[1] = key.id;
        // MAX_BODY_LEN bounds every Body postcard can write, so the slice is large enough.
        let body_len = postcard::to_slice(&body, &mut buf[HEADER_LEN..HEADER_LEN + MAX_BODY_LEN])
            .map(|written| written.len())
            .unwrap_or(0);
        let signed_len = HEADER_LEN + body_len;
        let tag = key.tag(&buf[..signed_len]);
        buf[signed_len..signed_len + TAG_LEN].copy_from_slice(&tag);
        base62::encode(&buf[..signed_len + TAG_LEN])
    }

    /// Checks a signed token at time `now_unix` and returns what it says.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<LinkClaims, TokenError> {
        let bytes = base62::decode_bounded(token, MAX_SIGNED_TOKEN_LEN).map_err(Malformed::from)?;
        let (&version, _) = bytes.split_first().ok_or(Malformed::Empty)?;
        if version != TOKEN_VERSION {
            return Err(Malformed::UnknownVersion { version }.into());
        }
        if bytes.len() < MIN_TOKEN_BYTES {
            return Err(Malformed::TooShort {
                len: bytes.len(),
                min: MIN_TOKEN_BYTES,
            }
            .into());
        }
        if bytes.len() > MAX_TOKEN_BYTES {
            return Err(Malformed::TooLong {
                len: token.len(),
                max: MAX_SIGNED_TOKEN_LEN,
            }
            .into());
        }
        let key_id = bytes[1];
        let key = self.key(key_id).ok_or(TokenError::UnknownKey { key_id })?;
        let (signed, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        if !key.verify_tag(signed, tag) {
            return Err(TokenError::BadSignature);
        }
        let (body, rest) = postcard::take_from_bytes::<Body>(&signed[HEADER_LEN..])
            .map_err(|_| Malformed::Body)?;
        if !rest.is_empty() {
            return Err(Malformed::TrailingBytes { count: rest.len() }.into());
        }
        let chat_id = body.chat.to_chat_id().ok_or(Malformed::NonCanonical)?;
        if let Some(expired_at) = body.expires_at
            && now_unix >= expired_at
        {
            return Err(TokenError::Expired { expired_at });
        }
        Ok(LinkClaims {
            file: FileRef {
                chat_id,
                msg_id: body.msg_id,
            },
            expires_at: body.expires_at,
            key_id,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct Body {
    chat: Chat,
    msg_id: i32,
    expires_at: Option<u64>,
}

#[derive(Serialize, Deserialize)]
enum Chat {
    /// Positive channel id of a `-100…` chat id (never 0).
    Channel(u64),
    /// Any chat id above the channel range (users, basic groups).
    Other(i64),
}

impl Chat {
    fn from_chat_id(chat_id: i64) -> Chat {
        if chat_id < CHANNEL_ID_BASE {
            Chat::Channel(CHANNEL_ID_BASE.abs_diff(chat_id))
        } else {
            Chat::Other(chat_id)
        }
    }

    /// `None` for values [`Chat::from_chat_id`] never produces.
    fn to_chat_id(&self) -> Option<i64> {
        match *self {
            Chat::Channel(0) => None,
            Chat::Channel(id) => CHANNEL_ID_BASE.checked_sub_unsigned(id),
            Chat::Other(id) if id < CHANNEL_ID_BASE => None,
            Chat::Other(id) => Some(id),
        }
    }
}

/// What [`TokenVerifier::verify`] accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifiedToken {
    Signed(LinkClaims),
    /// An unsigned token of the older bots; only when the verifier accepts legacy tokens.
    Legacy(FileRef),
}

impl VerifiedToken {
    pub fn file(&self) -> FileRef {
        match self {
            VerifiedToken::Signed(claims) => claims.file,
            VerifiedToken::Legacy(file) => *file,
        }
    }

    pub fn expires_at(&self) -> Option<u64> {
        match self {
            VerifiedToken::Signed(claims) => claims.expires_at,
            VerifiedToken::Legacy(_) => None,
        }
    }
}

/// What an edge checks a link with: the keyring, plus whether the older bots' unsigned
/// tokens are still honoured. Legacy is **off** by default because anyone can mint those.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    keyring: Keyring,
    accept_legacy: bool,
}

impl TokenVerifier {
    /// A verifier for signed tokens only.
    pub fn new(keyring: Keyring) -> Self {
        TokenVerifier {
            keyring,
            accept_legacy: false,
        }
    }

    /// Opt in (or out) of unsigned legacy tokens.
    pub fn with_legacy(mut self, accept: bool) -> Self {
        self.accept_legacy = accept;
        self
    }

    pub fn accepts_legacy(&self) -> bool {
        self.accept_legacy
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Tries the signed format; a token that is not signed-format at all is then tried as
    /// legacy. A legacy token while legacy is off is [`TokenError::LegacyDisabled`]; any
    /// other failure keeps the signed format's error.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<VerifiedToken, TokenError> {
        match self.keyring.verify(token, now_unix) {
            Ok(claims) => Ok(VerifiedToken::Signed(claims)),
            Err(signed_err @ TokenError::Malformed(_)) => match decode_legacy(token) {
                Ok(file) if self.accept_legacy => Ok(VerifiedToken::Legacy(file)),
                Ok(_) => Err(TokenError::LegacyDisabled),
                Err(_) => Err(signed_err),
            },
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests;
