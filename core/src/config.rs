//! The core's configuration: `TGCDN_*` variables and/or a TOML file (`TGCDN_CONFIG`) read
//! through `shared::config::Settings`, in two stages — [`RawConfig::read`] takes each value
//! as typed but unchecked, [`RawConfig::validate`] checks them together into [`Config`].
//!
//! Called by `main.rs` only. Every setting is listed once in [`SETTINGS`] (key, meaning),
//! which feeds `--help`, the unknown-key warning and the docs; [`Config::describe`] prints
//! the effective values with secrets masked. Nothing here opens the database or a socket.

use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use tgcdn_edge::app::EdgeOptions;
use tgcdn_edge::config::{EdgeConfigError, edge_options};
use tgcdn_shared::config::{BaseUrl, ByteSize, ConfigError as SettingsError, FromSetting, Secret};
use tgcdn_shared::config::{SettingDoc, Settings, env_name, settings_help};
use tgcdn_shared::token::{Keyring, LinkKey};

use crate::catalog::backfill::BackfillConfig;
use crate::catalog::tmdb::{ApiKey, TmdbSettings};
use crate::fetch::FetchConfig;
use crate::quic::QuicConfig;
use crate::quic::admission::AdmissionLimits;
use crate::resolve::ResolveConfig;
use crate::telegram::download::channel_bare_id;
use crate::telegram::{BotConfig, bot_id_from_token};

/// The embedded edge: where it listens and how it serves.
#[derive(Debug, Clone)]
pub struct OneBoxEdge {
    /// TCP address viewers connect to (`TGCDN_LISTEN`, default 0.0.0.0:8080).
    pub listen: SocketAddr,
    /// Cache size, read-ahead, HTTP limits: the edge's `TGCDN_*` serving settings.
    pub options: EdgeOptions,
    /// Accept the seed design's readable links too (`TGCDN_LEGACY_LINKS`).
    pub legacy_links: bool,
}

impl OneBoxEdge {
    /// Reads the edge's serving keys (`listen`, `cache_size`, `readahead_max`, …) exactly as
    /// a standalone edge would; the core link and token keys are the core's own.
    pub fn from_settings(settings: &Settings) -> Result<Self, EdgeConfigError> {
        Ok(OneBoxEdge {
            listen: settings.get_or("listen", SocketAddr::from(([0, 0, 0, 0], 8080)))?,
            options: edge_options(settings)?,
            legacy_links: settings.get_or("legacy_links", false)?,
        })
    }

    /// Defaults on `listen`: for programs that build the configuration themselves.
    pub fn on(listen: SocketAddr) -> Self {
        OneBoxEdge {
            listen,
            options: EdgeOptions::default(),
            legacy_links: false,
        }
    }
}

/// How long an edge that stopped sending heartbeats stays in the admin list.
pub const DEFAULT_EDGE_RETENTION: Duration = Duration::from_secs(7 * 86_400);

/// Every key the core reads: key, type, default, meaning. `key` is the TOML key (dotted =
/// table); the environment variable is `TGCDN_` + the key upper-cased with `.` → `_`. The one
/// place a core setting is declared: `--help`, unknown-key warnings, the defaults
/// [`RawConfig::read`] applies and docs/CONFIG.md come from it.
pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc {
        key: "data_dir",
        kind: "path",
        default: Some("./tgcdn-data"),
        help: "directory of the sled database (sessions, file meta, certificate, edges)",
    },
    SettingDoc {
        key: "api_id",
        kind: "number",
        default: None,
        help: "Telegram API id from my.telegram.org (required)",
    },
    SettingDoc {
        key: "api_hash",
        kind: "secret",
        default: None,
        help: "Telegram API hash from my.telegram.org (required, secret)",
    },
    SettingDoc {
        key: "bot_token",
        kind: "secret",
        default: None,
        help: "the main bot's token from @BotFather (required, secret)",
    },
    SettingDoc {
        key: "worker_tokens",
        kind: "secret list",
        default: Some(""),
        help: "more bots' tokens, comma-separated; each must be an admin of the storage channel (secret)",
    },
    SettingDoc {
        key: "storage_channel",
        kind: "chat id",
        default: None,
        help: "Bot API id (-100…) of the channel files are stored in (required)",
    },
    SettingDoc {
        key: "connections_per_bot",
        kind: "count",
        default: Some("2"),
        help: "download connections per DC per bot, 1..=16",
    },
    SettingDoc {
        key: "parts_per_connection",
        kind: "count",
        default: Some("8"),
        help: "getFile parts in flight per download connection at most (a sliding window), 1..=64",
    },
    SettingDoc {
        key: "fetch_demand_first",
        kind: "bool",
        default: Some("true"),
        help: "when every download connection is busy, chunks a viewer waits on go before read-ahead (off: first come, the benches' baseline)",
    },
    SettingDoc {
        key: "chunk_cache",
        kind: "size",
        default: Some("64MiB"),
        help: "bytes of the core's second-tier chunk cache",
    },
    SettingDoc {
        key: "negative_cache_secs",
        kind: "seconds",
        default: Some("60"),
        help: "seconds a \"no such file\" answer (deleted message, no document) is remembered, 0..=3600",
    },
    SettingDoc {
        key: "quic.listen",
        kind: "address",
        default: Some("0.0.0.0:4433"),
        help: "UDP address the QUIC endpoint for edges listens on",
    },
    SettingDoc {
        key: "quic.cert_file",
        kind: "path",
        default: None,
        help: "PEM certificate chain for the QUIC endpoint (with quic.key_file); unset: a self-signed one kept in the database",
    },
    SettingDoc {
        key: "quic.key_file",
        kind: "path",
        default: None,
        help: "PEM private key matching quic.cert_file",
    },
    SettingDoc {
        key: "quic.socket_buffer",
        kind: "size",
        default: Some("8MiB"),
        help: "SO_RCVBUF/SO_SNDBUF asked for the UDP socket (capped by net.core.rmem_max/wmem_max)",
    },
    SettingDoc {
        key: "quic.max_unauthenticated",
        kind: "count",
        default: Some("64"),
        help: "QUIC connections without a judged Hello at once, at most (more are refused at accept; half of it in use makes new peers pass a Retry)",
    },
    SettingDoc {
        key: "quic.handshakes_per_sec",
        kind: "count",
        default: Some("50"),
        help: "QUIC handshakes started per second, sustained (a token bucket; beyond it peers are refused, and a low bucket asks for a Retry)",
    },
    SettingDoc {
        key: "quic.handshake_burst",
        kind: "count",
        default: Some("100"),
        help: "QUIC handshakes that may start back to back (the bucket's size)",
    },
    SettingDoc {
        key: "cluster_secret",
        kind: "secret",
        default: None,
        help: "secret shared with every edge (hex or base64, ≥ 16 bytes; required)",
    },
    SettingDoc {
        key: "link_key",
        kind: "key",
        default: None,
        help: "current link-signing key as id:secret, id 0..=255, secret hex/base64 ≥ 16 bytes (required)",
    },
    SettingDoc {
        key: "old_link_keys",
        kind: "key list",
        default: Some(""),
        help: "older link keys still accepted, comma-separated id:secret",
    },
    SettingDoc {
        key: "public_url",
        kind: "url",
        default: None,
        help: "public base URL links are made with, e.g. https://cdn.example.com (required)",
    },
    SettingDoc {
        key: "allowed_users",
        kind: "id list",
        default: Some(""),
        help: "Telegram user ids allowed to use the bot, comma-separated; empty = everyone",
    },
    SettingDoc {
        key: "admins",
        kind: "id list",
        default: Some(""),
        help: "Telegram user ids of operators (admin commands), comma-separated",
    },
    SettingDoc {
        key: "frontend_concurrency",
        kind: "count",
        default: Some("8"),
        help: "messages of different users the bot handles at once (one user's stay in order), 1..=256",
    },
    SettingDoc {
        key: "dc_addrs",
        kind: "DC list",
        default: Some(""),
        help: "pin DC addresses, e.g. 1=127.0.0.1:4001,2=127.0.0.1:4002 (emulator/sandbox; empty: Telegram's)",
    },
    SettingDoc {
        key: "with_edge",
        kind: "bool",
        default: Some("false"),
        help: "one-box mode: also serve viewers over HTTP in this process (the edge's TGCDN_LISTEN, TGCDN_CACHE_SIZE… apply)",
    },
    SettingDoc {
        key: "quic.enabled",
        kind: "bool",
        default: Some("true"),
        help: "serve remote edges over QUIC (turn off for a one-box core nobody else joins)",
    },
    SettingDoc {
        key: "admin_listen",
        kind: "address",
        default: Some("127.0.0.1:9180"),
        help: "TCP address of the admin HTTP listener (/metrics, /admin/*)",
    },
    SettingDoc {
        key: "admin_token",
        kind: "secret",
        default: None,
        help: "bearer token the admin endpoint requires (hex or base64, 16+ bytes); required when admin_listen is not loopback; unset = loopback clients with a loopback Host only",
    },
    SettingDoc {
        key: "edge_retention",
        kind: "duration",
        default: Some("7d"),
        help: "forget an edge in the admin list (sled `edges`) after this long without a heartbeat",
    },
    SettingDoc {
        key: "link_expiry",
        kind: "duration",
        default: None,
        help: "lifetime of the links the bot hands out (7d, 12h…); unset = they never expire (revoking still works)",
    },
    SettingDoc {
        key: "catalog_channels",
        kind: "chat id list",
        default: Some(""),
        help: "Bot API ids (-100…) of channels whose file posts make the Stremio catalogue, comma-separated; the main bot must be an admin there; empty = catalogue off",
    },
    SettingDoc {
        key: "catalog_backfill_batch",
        kind: "count",
        default: Some("200"),
        help: "message ids per channels.getMessages call when back-filling a catalogue channel, 1..=200",
    },
    SettingDoc {
        key: "catalog_backfill_pause",
        kind: "duration",
        default: Some("500ms"),
        help: "pause between two back-fill calls, to stay under FLOOD_WAIT (500ms, 2s…)",
    },
    SettingDoc {
        key: "catalog_video_hashes",
        kind: "bool",
        default: Some("true"),
        help: "compute each catalogued file's OpenSubtitles hash (videoHash, for subtitle addons) from its first and last chunk, in the background; costs ~2 MiB of Telegram downloads per file",
    },
    SettingDoc {
        key: "tmdb_api_key",
        kind: "secret",
        default: None,
        help: "TMDB v3 API key or v4 read access token for catalogue posters, ids and episode titles (secret); unset = the catalogue shows parsed names only",
    },
    SettingDoc {
        key: "tmdb_url",
        kind: "url",
        default: Some("https://api.themoviedb.org/3"),
        help: "TMDB API root",
    },
    SettingDoc {
        key: "tmdb_image_url",
        kind: "url",
        default: Some("https://image.tmdb.org/t/p"),
        help: "TMDB image root poster URLs are built on",
    },
    SettingDoc {
        key: "tmdb_language",
        kind: "text",
        default: Some("en-US"),
        help: "language of TMDB titles and overviews (en-US, it-IT…)",
    },
    SettingDoc {
        key: "dc_auth_key",
        kind: "secret hex",
        default: None,
        help: "hex 256-byte base auth key for the pinned DCs (emulator only; needs dc_addrs); each bot gets its own key derived from it by config::bot_auth_key",
    },
];

/// What the settings are, before the list (`--help` and docs/CONFIG.md).
pub const SETTINGS_INTRO: &str = "Settings come from TGCDN_* environment variables, or from the TOML file named by TGCDN_CONFIG (the same keys, lower-case; dotted keys are tables); the environment wins.";

/// Text for `--help`: every variable, its type and default, and what it means.
pub fn help_text() -> String {
    settings_help(SETTINGS_INTRO, SETTINGS)
}

/// docs/CONFIG.md: the core's table, then the edge's (which one-box mode reads too).
pub fn reference_markdown() -> String {
    format!(
        "# Configuration reference\n\nGenerated from the settings tables in `core/src/config.rs` and `edge/src/config.rs` \
         (`UPDATE_CONFIG_REFERENCE=1 cargo test -p tgcdn-core --lib config_reference` rewrites it; \
         the same test fails while it differs).\n\n{}\n{}",
        tgcdn_shared::config::reference_markdown("tgcdn-core", SETTINGS_INTRO, SETTINGS),
        tgcdn_shared::config::reference_markdown(
            "tgcdn-edge",
            tgcdn_edge::config::SETTINGS_INTRO,
            tgcdn_edge::config::SETTINGS
        ),
    )
}

/// Why the configuration is unusable: a value that did not parse, or values that do not
/// fit together. One line each, naming the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Setting(#[from] SettingsError),
    #[error("{}: {reason}", env_name(key))]
    Invalid { key: &'static str, reason: String },
    #[error("one-box edge: {0}")]
    Edge(#[from] tgcdn_edge::config::EdgeConfigError),
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// A link key as configured: `id:secret`.
#[derive(Debug, Clone)]
pub struct LinkKeySetting {
    pub id: u8,
    pub secret: Secret,
}

impl FromSetting for LinkKeySetting {
    const SECRET: bool = true;
    fn expected() -> String {
        format!("id:secret with id 0..=255 and {}", Secret::expected())
    }
    fn from_text(text: &str) -> Option<Self> {
        let (id, secret) = text.trim().split_once(':')?;
        Some(Self {
            id: id.parse().ok()?,
            secret: Secret::from_text(secret)?,
        })
    }
}

/// A pinned DC address: `dc=ip:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DcAddr {
    pub dc: i32,
    pub addr: SocketAddrV4,
}

impl FromSetting for DcAddr {
    fn expected() -> String {
        "dc=ipv4:port such as 2=127.0.0.1:4002".to_owned()
    }
    fn from_text(text: &str) -> Option<Self> {
        let (dc, addr) = text.trim().split_once('=')?;
        Some(Self {
            dc: dc.trim().parse().ok().filter(|dc| *dc > 0)?,
            addr: addr.trim().parse().ok()?,
        })
    }
}

/// Stage one: every value typed, nothing checked against anything else. No `Debug`: it
/// holds bot tokens and the API hash in the clear.
#[derive(Clone)]
pub struct RawConfig {
    pub data_dir: PathBuf,
    pub api_id: Option<i32>,
    /// 32 hex digits, kept as text (grammers wants the string); never printed.
    pub api_hash: Option<String>,
    pub bot_token: Option<String>,
    pub worker_tokens: Vec<String>,
    pub storage_channel: Option<i64>,
    pub connections_per_bot: usize,
    pub parts_per_connection: usize,
    pub fetch_demand_first: bool,
    pub chunk_cache: ByteSize,
    pub negative_cache_secs: u64,
    pub quic_listen: SocketAddr,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub socket_buffer: ByteSize,
    pub admission: AdmissionLimits,
    pub cluster_secret: Option<Secret>,
    pub link_key: Option<LinkKeySetting>,
    pub old_link_keys: Vec<LinkKeySetting>,
    pub public_url: Option<BaseUrl>,
    pub allowed_users: Vec<i64>,
    pub admins: Vec<i64>,
    pub frontend_concurrency: usize,
    pub dc_addrs: Vec<DcAddr>,
    pub dc_auth_key: Option<Secret>,
    pub quic_enabled: bool,
    pub admin_listen: SocketAddr,
    pub admin_token: Option<Secret>,
    pub edge_retention: Duration,
    pub link_expiry: Option<Duration>,
    /// Present when `with_edge` is set: the embedded edge's listener and serving knobs.
    pub one_box: Option<OneBoxEdge>,
    pub catalog_channels: Vec<i64>,
    pub catalog_backfill_batch: usize,
    pub catalog_backfill_pause: Duration,
    pub catalog_video_hashes: bool,
    pub tmdb_api_key: Option<ApiKey>,
    pub tmdb_url: Option<BaseUrl>,
    pub tmdb_image_url: Option<BaseUrl>,
    pub tmdb_language: String,
}

impl RawConfig {
    /// Reads every key; fails on the first value that does not parse.
    pub fn read(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            data_dir: settings.get_default(SETTINGS, "data_dir")?,
            api_id: settings.get("api_id")?,
            api_hash: settings.get("api_hash")?,
            bot_token: settings.get("bot_token")?,
            worker_tokens: settings.get_default(SETTINGS, "worker_tokens")?,
            storage_channel: settings.get("storage_channel")?,
            connections_per_bot: settings.get_default(SETTINGS, "connections_per_bot")?,
            parts_per_connection: settings.get_default(SETTINGS, "parts_per_connection")?,
            fetch_demand_first: settings.get_default(SETTINGS, "fetch_demand_first")?,
            chunk_cache: settings.get_default(SETTINGS, "chunk_cache")?,
            negative_cache_secs: settings.get_default(SETTINGS, "negative_cache_secs")?,
            quic_listen: settings.get_default(SETTINGS, "quic.listen")?,
            cert_file: settings.get("quic.cert_file")?,
            key_file: settings.get("quic.key_file")?,
            socket_buffer: settings.get_default(SETTINGS, "quic.socket_buffer")?,
            admission: AdmissionLimits {
                max_unauthenticated: settings.get_default(SETTINGS, "quic.max_unauthenticated")?,
                handshakes_per_sec: settings.get_default(SETTINGS, "quic.handshakes_per_sec")?,
                handshake_burst: settings.get_default(SETTINGS, "quic.handshake_burst")?,
            },
            cluster_secret: settings.get("cluster_secret")?,
            link_key: settings.get("link_key")?,
            old_link_keys: settings.get_default(SETTINGS, "old_link_keys")?,
            public_url: settings.get("public_url")?,
            allowed_users: settings.get_default(SETTINGS, "allowed_users")?,
            admins: settings.get_default(SETTINGS, "admins")?,
            frontend_concurrency: settings.get_default(SETTINGS, "frontend_concurrency")?,
            dc_addrs: settings.get_default(SETTINGS, "dc_addrs")?,
            dc_auth_key: settings.get("dc_auth_key")?,
            quic_enabled: settings.get_default(SETTINGS, "quic.enabled")?,
            admin_listen: settings.get_default(SETTINGS, "admin_listen")?,
            admin_token: settings.get("admin_token")?,
            edge_retention: settings.get_default(SETTINGS, "edge_retention")?,
            link_expiry: settings.get("link_expiry")?,
            one_box: if settings.get_default(SETTINGS, "with_edge")? {
                Some(OneBoxEdge::from_settings(settings)?)
            } else {
                None
            },
            catalog_channels: settings.get_default(SETTINGS, "catalog_channels")?,
            catalog_backfill_batch: settings.get_default(SETTINGS, "catalog_backfill_batch")?,
            catalog_backfill_pause: settings.get_default(SETTINGS, "catalog_backfill_pause")?,
            catalog_video_hashes: settings.get_default(SETTINGS, "catalog_video_hashes")?,
            tmdb_api_key: settings.get("tmdb_api_key")?,
            tmdb_url: settings.get("tmdb_url")?,
            tmdb_image_url: settings.get("tmdb_image_url")?,
            tmdb_language: settings.get_default(SETTINGS, "tmdb_language")?,
        })
    }

    /// Stage two: required values present, values consistent with each other.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let api_id = self.api_id.ok_or_else(|| invalid("api_id", "required"))?;
        if api_id <= 0 {
            return Err(invalid("api_id", "must be positive"));
        }
        let api_hash = self
            .api_hash
            .filter(|hash| !hash.trim().is_empty())
            .ok_or_else(|| invalid("api_hash", "required"))?;
        let bot_token = self
            .bot_token
            .ok_or_else(|| invalid("bot_token", "required"))?;
        let mut tokens = vec![bot_token];
        tokens.extend(self.worker_tokens);
        let mut bot_ids = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            let key = if i == 0 { "bot_token" } else { "worker_tokens" };
            let id = bot_id_from_token(token).map_err(|e| invalid(key, e.to_string()))?;
            if bot_ids.contains(&id) {
                return Err(invalid(key, format!("bot {id} is configured twice")));
            }
            bot_ids.push(id);
        }
        let storage_channel = self
            .storage_channel
            .ok_or_else(|| invalid("storage_channel", "required"))?;
        if channel_bare_id(storage_channel).is_none() {
            return Err(invalid(
                "storage_channel",
                "must be a channel id in Bot API form (-100…)",
            ));
        }
        if !(1..=16).contains(&self.connections_per_bot) {
            return Err(invalid("connections_per_bot", "must be 1..=16"));
        }
        if self.negative_cache_secs > 3600 {
            return Err(invalid("negative_cache_secs", "must be 0..=3600"));
        }
        if !(1..=256).contains(&self.frontend_concurrency) {
            return Err(invalid("frontend_concurrency", "must be 1..=256"));
        }
        if !(1..=64).contains(&self.parts_per_connection) {
            return Err(invalid("parts_per_connection", "must be 1..=64"));
        }
        let tls_pem = match (self.cert_file, self.key_file) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid("quic.key_file", "required with quic.cert_file"));
            }
            (None, Some(_)) => {
                return Err(invalid("quic.cert_file", "required with quic.key_file"));
            }
        };
        let cluster_secret = self
            .cluster_secret
            .ok_or_else(|| invalid("cluster_secret", "required"))?;
        let link_key = self
            .link_key
            .ok_or_else(|| invalid("link_key", "required"))?;
        let keyring = keyring(&link_key, &self.old_link_keys)?;
        let public_url = self
            .public_url
            .ok_or_else(|| invalid("public_url", "required"))?;
        let dc_auth_key = match self.dc_auth_key {
            None => None,
            Some(_) if self.dc_addrs.is_empty() => {
                return Err(invalid("dc_auth_key", "only makes sense with dc_addrs"));
            }
            Some(secret) => Some(<[u8; 256]>::try_from(secret.bytes()).map_err(|_| {
                invalid("dc_auth_key", "must be exactly 256 bytes (512 hex digits)")
            })?),
        };
        let mut catalog = catalog_config(
            self.catalog_channels,
            self.catalog_backfill_batch,
            self.catalog_backfill_pause,
        )?;
        if self.tmdb_language.trim().is_empty() {
            return Err(invalid("tmdb_language", "must not be empty"));
        }
        catalog.video_hashes = self.catalog_video_hashes;
        let defaults = TmdbSettings::default();
        catalog.tmdb = TmdbSettings {
            api_key: self.tmdb_api_key,
            api_url: self
                .tmdb_url
                .map_or(defaults.api_url.clone(), |url| url.as_str().to_owned()),
            image_url: self
                .tmdb_image_url
                .map_or(defaults.image_url.clone(), |url| url.as_str().to_owned()),
            language: self.tmdb_language,
            ..defaults
        };
        if !self.admin_listen.ip().is_loopback() && self.admin_token.is_none() {
            return Err(invalid(
                "admin_token",
                "required when admin_listen is not a loopback address (the admin endpoint can revoke links)",
            ));
        }
        if self.edge_retention < Duration::from_secs(60) {
            return Err(invalid("edge_retention", "must be at least 1m"));
        }
        if self
            .link_expiry
            .is_some_and(|expiry| expiry < Duration::from_secs(60))
        {
            return Err(invalid("link_expiry", "must be at least 1m"));
        }
        let socket_buffer = usize::try_from(self.socket_buffer.0)
            .map_err(|_| invalid("quic.socket_buffer", "too large"))?;
        let admission = self.admission;
        for (key, value) in [
            (
                "quic.max_unauthenticated",
                admission.max_unauthenticated as u64,
            ),
            (
                "quic.handshakes_per_sec",
                u64::from(admission.handshakes_per_sec),
            ),
            ("quic.handshake_burst", u64::from(admission.handshake_burst)),
        ] {
            if value == 0 {
                return Err(invalid(
                    key,
                    "must be at least 1: 0 would refuse every edge",
                ));
            }
        }
        Ok(Config {
            data_dir: self.data_dir,
            api_id,
            api_hash,
            bot_tokens: tokens,
            storage_channel,
            connections_per_bot: self.connections_per_bot,
            parts_per_connection: self.parts_per_connection,
            fetch_demand_first: self.fetch_demand_first,
            chunk_cache_bytes: self.chunk_cache.0,
            negative_cache: Duration::from_secs(self.negative_cache_secs),
            quic: QuicConfig {
                listen: self.quic_listen,
                socket_buffer_bytes: socket_buffer,
                admission,
                ..QuicConfig::default()
            },
            tls_pem,
            cluster_secret,
            keyring,
            link_key_ids: std::iter::once(link_key.id)
                .chain(self.old_link_keys.iter().map(|k| k.id))
                .collect(),
            public_url,
            allowed_users: self.allowed_users,
            admins: self.admins,
            frontend_concurrency: self.frontend_concurrency,
            dc_addrs: self.dc_addrs,
            dc_auth_key,
            quic_enabled: self.quic_enabled,
            admin_listen: self.admin_listen,
            admin_token: self.admin_token,
            edge_retention: self.edge_retention,
            link_expiry: self.link_expiry,
            one_box: self.one_box,
            catalog,
            description: String::new(),
        })
    }
}

/// The catalogue channels must be channel ids, each once; the batch fits Telegram's limit.
fn catalog_config(
    channels: Vec<i64>,
    batch: usize,
    pause: Duration,
) -> Result<CatalogConfig, ConfigError> {
    for (i, channel) in channels.iter().enumerate() {
        if channel_bare_id(*channel).is_none() {
            return Err(invalid(
                "catalog_channels",
                format!("{channel} is not a channel id in Bot API form (-100…)"),
            ));
        }
        if channels[..i].contains(channel) {
            return Err(invalid(
                "catalog_channels",
                format!("channel {channel} is listed twice"),
            ));
        }
    }
    let max = crate::catalog::backfill::MAX_BATCH;
    if !(1..=max).contains(&batch) {
        return Err(invalid(
            "catalog_backfill_batch",
            format!("must be 1..={max}"),
        ));
    }
    Ok(CatalogConfig {
        channels,
        backfill: BackfillConfig {
            batch,
            pause,
            ..BackfillConfig::default()
        },
        tmdb: TmdbSettings::default(),
        video_hashes: true,
    })
}

/// The catalogue indexer's settings.
#[derive(Debug, Clone, Default)]
pub struct CatalogConfig {
    /// Bot API ids; empty = no catalogue.
    pub channels: Vec<i64>,
    pub backfill: BackfillConfig,
    /// Metadata lookups; no API key = none.
    pub tmdb: TmdbSettings,
    /// Whether files' video hashes are computed in the background.
    pub video_hashes: bool,
}

fn keyring(current: &LinkKeySetting, older: &[LinkKeySetting]) -> Result<Keyring, ConfigError> {
    let key = |setting: &LinkKeySetting, name: &'static str| {
        LinkKey::new(setting.id, setting.secret.bytes()).map_err(|e| invalid(name, e.to_string()))
    };
    let older = older
        .iter()
        .map(|k| key(k, "old_link_keys"))
        .collect::<Result<Vec<_>, _>>()?;
    Keyring::new(key(current, "link_key")?, older)
        .map_err(|e| invalid("old_link_keys", e.to_string()))
}

/// The validated configuration. `Debug` prints [`Config::describe`], secrets masked.
#[derive(Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub api_id: i32,
    pub api_hash: String,
    /// The main bot first, then the workers; ids are distinct.
    pub bot_tokens: Vec<String>,
    /// Bot API form (`-100…`).
    pub storage_channel: i64,
    pub connections_per_bot: usize,
    pub parts_per_connection: usize,
    /// Demand chunks before read-ahead when every connection is busy.
    pub fetch_demand_first: bool,
    pub chunk_cache_bytes: u64,
    /// How long a "no such file" answer is remembered.
    pub negative_cache: Duration,
    pub quic: QuicConfig,
    pub tls_pem: Option<(PathBuf, PathBuf)>,
    pub cluster_secret: Secret,
    pub keyring: Keyring,
    /// Current first.
    pub link_key_ids: Vec<u8>,
    pub public_url: BaseUrl,
    pub allowed_users: Vec<i64>,
    pub admins: Vec<i64>,
    /// Messages of different users the front-end handles at once.
    pub frontend_concurrency: usize,
    pub dc_addrs: Vec<DcAddr>,
    pub dc_auth_key: Option<[u8; 256]>,
    /// Whether remote edges can join over QUIC (one-box mode may turn it off).
    pub quic_enabled: bool,
    pub admin_listen: SocketAddr,
    /// Bearer token of the admin endpoint; `None` = loopback clients by loopback Host only.
    pub admin_token: Option<Secret>,
    /// How long an edge stays in the `edges` tree without a heartbeat.
    pub edge_retention: Duration,
    /// Lifetime of the links the bot hands out; `None` = no expiry.
    pub link_expiry: Option<Duration>,
    /// One-box mode: the edge served by this process.
    pub one_box: Option<OneBoxEdge>,
    pub catalog: CatalogConfig,
    /// [`Config::describe`]'s text, made from the settings this was read from.
    description: String,
}

impl Config {
    /// Reads and validates the process's configuration.
    pub fn from_process_env() -> Result<Self, ConfigError> {
        Self::from_settings(&Settings::from_process_env()?)
    }

    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let mut config = RawConfig::read(settings)?.validate()?;
        config.description = settings.describe(SETTINGS) + &config.derived_lines();
        Ok(config)
    }

    /// Keys that are set but unknown (typos), as their error lines would name them.
    /// The edge's keys count as known: one-box mode reads its serving knobs.
    pub fn unknown_keys(settings: &Settings) -> Vec<String> {
        let known: Vec<&str> = SETTINGS
            .iter()
            .map(|s| s.key)
            .chain(tgcdn_edge::config::SETTINGS.iter().map(|s| s.key))
            .collect();
        settings.unknown_keys(&known)
    }

    pub fn bot_configs(&self) -> Vec<BotConfig> {
        self.bot_tokens
            .iter()
            .map(|token| BotConfig {
                token: token.clone(),
                api_id: self.api_id,
                api_hash: self.api_hash.clone(),
                connections: self.connections_per_bot,
            })
            .collect()
    }

    pub fn fetch_config(&self) -> FetchConfig {
        FetchConfig {
            cache_bytes: self.chunk_cache_bytes,
            parts_per_connection: self.parts_per_connection,
            demand_first: self.fetch_demand_first,
            ..FetchConfig::default()
        }
    }

    pub fn resolve_config(&self) -> ResolveConfig {
        ResolveConfig {
            negative_ttl: self.negative_cache,
            ..ResolveConfig::default()
        }
    }

    /// How long `run` waits for Telegram at start (sign-in, channel check) per bot.
    pub fn startup_timeout(&self) -> Duration {
        Duration::from_secs(30)
    }

    /// `check-config`'s listing, made when the configuration was read: every row of
    /// [`SETTINGS`] with the value in force and where it came from (secrets masked), then
    /// what the values add up to — the bots by their public ids, the link key ids, one-box.
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// The lines [`Config::describe`] adds after the table: facts derived from several
    /// settings that an operator checks first. Nothing secret: a bot token's id and a link
    /// key's id are public.
    fn derived_lines(&self) -> String {
        let bot_ids: Vec<&str> = self
            .bot_tokens
            .iter()
            .map(|token| token.split_once(':').map_or("?", |(id, _)| id))
            .collect();
        let key_ids: Vec<String> = self.link_key_ids.iter().map(u8::to_string).collect();
        let one_box = self.one_box.as_ref().map_or("off".to_owned(), |edge| {
            format!(
                "HTTP on {}, cache {} bytes",
                edge.listen, edge.options.cache_bytes
            )
        });
        format!(
            "  bots (main first)              = {}\n  link key ids (current first)   = {}\n  one-box edge                   = {one_box}\n",
            bot_ids.join(", "),
            key_ids.join(", "),
        )
    }
}

/// The auth key bot `bot_id` uses with pinned DCs, derived from the configured base key.
///
/// Telegram (and the emulator) bind an auth key to the account that signs in with it, so
/// bots must never share one; deriving them keeps the configuration to one value. The
/// derivation is SHA-256(base ‖ bot_id LE ‖ block) for blocks 0..8; an emulator test
/// registers the same derived keys.
pub fn bot_auth_key(base: &[u8; 256], bot_id: i64) -> [u8; 256] {
    use sha2::{Digest, Sha256};
    let mut key = [0u8; 256];
    for (block, out) in key.chunks_exact_mut(32).enumerate() {
        let digest = Sha256::new()
            .chain_update(base)
            .chain_update(bot_id.to_le_bytes())
            .chain_update([block as u8])
            .finalize();
        out.copy_from_slice(&digest);
    }
    key
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
