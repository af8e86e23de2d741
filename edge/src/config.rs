//! The edge's configuration: `TGCDN_*` environment variables (or the same keys in the TOML
//! file named by `TGCDN_CONFIG`) read through `shared::config`, validated into [`EdgeConfig`].
//!
//! Called once by `main`. Stage one is `shared::config::Settings` (raw values, one-line
//! errors naming the variable); stage two is [`EdgeConfig::from_settings`] (defaults,
//! cross-field checks). [`SETTINGS`] is the single list of keys: `--help` prints it and
//! unknown keys are warned about from it. Never logs a secret.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tgcdn_shared::config::{
    BaseUrl, ByteSize, ConfigError, FromSetting, Secret, Settings, env_name,
};
use tgcdn_shared::token::{KeyError, Keyring, LinkKey, TokenVerifier};

use crate::app::EdgeOptions;
use crate::http::HttpSettings;
use crate::http::addon::{AddonSecret, AddonSettings};
use crate::http::tls::{TlsFiles, TlsIdentity};
use crate::readahead::WindowLimits;
use crate::upstream::quic::QuicSettings;
use tgcdn_shared::chunk::CHUNK_SIZE;

pub use tgcdn_shared::config::SettingDoc;

/// Every setting the edge reads.
pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc {
        key: "listen",
        kind: "address",
        default: Some("0.0.0.0:8080"),
        help: "listen address: HTTP/1.1 and h2c, or HTTPS (h2 and HTTP/1.1) with TGCDN_TLS_*",
    },
    SettingDoc {
        key: "metrics_listen",
        kind: "address",
        default: Some("127.0.0.1:9181"),
        help: "address of the Prometheus /metrics listener (never on the public port; keep it private)",
    },
    SettingDoc {
        key: "tls_cert",
        kind: "path",
        default: None,
        help: "PEM certificate chain; with TGCDN_TLS_KEY the listener speaks TLS (SIGHUP reloads)",
    },
    SettingDoc {
        key: "tls_key",
        kind: "path",
        default: None,
        help: "PEM private key (PKCS#8, RSA or SEC1) for TGCDN_TLS_CERT",
    },
    SettingDoc {
        key: "public_url",
        kind: "url",
        default: None,
        help: "base URL viewers reach this edge at, e.g. https://fra.cdn.example (required)",
    },
    SettingDoc {
        key: "region",
        kind: "text",
        default: Some("default"),
        help: "region name reported to the core",
    },
    SettingDoc {
        key: "edge_id",
        kind: "text",
        default: Some("<region>-<pid>"),
        help: "this edge's name in the core's fleet view",
    },
    SettingDoc {
        key: "cores",
        kind: "core list",
        default: None,
        help: "several cores, each file served by the one rendezvous hashing of the file ranks first among those up (see docs/SCALING.md): NAME=HOST:PORT/CERT_SHA256[/SERVER_NAME], comma-separated, or in TOML an array of tables [[cores]] with name, addr, cert_sha256 and optional server_name; names (A-Za-z0-9._-, the hash input) must be the same on every edge; instead of core_addr and core_cert_sha256",
    },
    SettingDoc {
        key: "core_addr",
        kind: "host:port",
        default: None,
        help: "core's QUIC address as host:port, re-resolved on every reconnect (required unless cores is set)",
    },
    SettingDoc {
        key: "core_server_name",
        kind: "text",
        default: Some("tgcdn-core"),
        help: "TLS server name the core's certificate is issued for",
    },
    SettingDoc {
        key: "core_cert_sha256",
        kind: "sha256",
        default: None,
        help: "SHA-256 of the core's certificate (DER), 64 hex digits, colons allowed (required with core_addr)",
    },
    SettingDoc {
        key: "core_timeout",
        kind: "duration",
        default: Some("10s"),
        help: "a core link silent this long is down (the QUIC idle timeout; keep-alives every second, or every third of it when shorter): its requests fail and, with several cores, its files move to the next core in their ranking until it is back",
    },
    SettingDoc {
        key: "cluster_secret",
        kind: "secret",
        default: None,
        help: "secret shared with the core (with every core of cores), hex or base64, >= 16 bytes (required)",
    },
    SettingDoc {
        key: "link_keys",
        kind: "key list",
        default: None,
        help: "link-signing keys as ID:SECRET, comma-separated, the current one first (required)",
    },
    SettingDoc {
        key: "legacy_links",
        kind: "bool",
        default: Some("false"),
        help: "also accept the older bots' unsigned zlib+JSON links",
    },
    SettingDoc {
        key: "cache_size",
        kind: "size",
        default: Some("256MiB"),
        help: "chunk cache capacity (leave 10-20% memory headroom above it)",
    },
    SettingDoc {
        key: "readahead_max",
        kind: "count",
        default: Some("64"),
        help: "most chunks one response reads ahead (a cap: the window stays within 4 per download connection the core advertises); the window starts at 2 (4 from the start or to the end of a file) and doubles while the client keeps up",
    },
    SettingDoc {
        key: "fetch_cap",
        kind: "count",
        default: Some("64"),
        help: "most chunk fetches in flight to the core, edge-wide",
    },
    SettingDoc {
        key: "fetch_per_client",
        kind: "count",
        default: Some("16"),
        help: "of fetch_cap, the most chunk fetches one client address (IPv6: /64) may have in flight while it is the only active client (at most fetch_cap)",
    },
    SettingDoc {
        key: "fetch_fair_share",
        kind: "count",
        default: Some("4"),
        help: "while other clients are active (fetching, or within the last second), one client holds at most fetch_per_client / active clients fetch slots, but never fewer than this (at most fetch_per_client); free slots go to fills a response waits for before read-ahead, then to the client holding fewest; also the most fills one client may have in flight for chunks its responses wait on right now (many responses at once: a flood, or a crowd behind one address), its read-ahead waiting while such fills of its own wait",
    },
    SettingDoc {
        key: "inflight_max",
        kind: "size",
        default: Some("128MiB"),
        help: "chunk bytes responses may hold outside the cache, edge-wide (read-ahead being fetched, chunks a slow client is draining); edge memory stays near cache_size + this; beyond it streams read ahead less and send small copies (at least 1MiB)",
    },
    SettingDoc {
        key: "per_ip_limit",
        kind: "count",
        default: Some("64"),
        help: "concurrent requests per client address (429 beyond)",
    },
    SettingDoc {
        key: "max_connections",
        kind: "count",
        default: Some("20000"),
        help: "open client connections in total; more are closed at accept (keep below the fd limit)",
    },
    SettingDoc {
        key: "max_connections_per_ip",
        kind: "count",
        default: Some("256"),
        help: "open connections per client address (IPv6: per /64); more are closed at accept; not applied with TGCDN_TRUST_FORWARDED_FOR",
    },
    SettingDoc {
        key: "header_read_timeout",
        kind: "duration",
        default: Some("10s"),
        help: "time a client has to send request headers (from the accept for the first request: TLS handshake, protocol detection and HTTP/2 preface included)",
    },
    SettingDoc {
        key: "h2_keepalive_interval",
        kind: "duration",
        default: Some("30s"),
        help: "HTTP/2 PING interval to find dead peers (0s: no PINGs)",
    },
    SettingDoc {
        key: "h2_keepalive_timeout",
        kind: "duration",
        default: Some("20s"),
        help: "close an HTTP/2 connection whose PING is not answered within this",
    },
    SettingDoc {
        key: "h2_max_streams",
        kind: "count",
        default: Some("32"),
        help: "HTTP/2 streams (requests) one connection may have open at once; more are refused with REFUSED_STREAM (1..=1000)",
    },
    SettingDoc {
        key: "h2_send_buffer",
        kind: "size",
        default: Some("64KiB"),
        help: "response bytes HTTP/2 queues per stream before the edge produces more; with h2_max_streams it bounds what one connection's slow reader pins beyond inflight_max (16KiB..=16MiB)",
    },
    SettingDoc {
        key: "idle_timeout",
        kind: "duration",
        default: Some("120s"),
        help: "close connections with no traffic for this long",
    },
    SettingDoc {
        key: "cache_max_age",
        kind: "duration",
        default: Some("1h"),
        help: "Cache-Control max-age of file responses (capped by link expiry); a revoked file may keep playing from browser/CDN caches this long",
    },
    SettingDoc {
        key: "drain_timeout",
        kind: "duration",
        default: Some("10s"),
        help: "on SIGTERM, how long responses in flight may take to finish",
    },
    SettingDoc {
        key: "addon_secret",
        kind: "secret text",
        default: None,
        help: "makes the Stremio addon private: it is served only under /<secret>/manifest.json (16-128 chars of A-Za-z0-9-_)",
    },
    SettingDoc {
        key: "addon_cache_size",
        kind: "size",
        default: Some("16MiB"),
        help: "bytes of addon answers (catalog pages, metas, streams) the edge keeps for as long as the core allows",
    },
    SettingDoc {
        key: "addon_concurrency",
        kind: "count",
        default: Some("32"),
        help: "addon requests in flight to the core, edge-wide (503 beyond)",
    },
    SettingDoc {
        key: "token_cache",
        kind: "count",
        default: Some("8192"),
        help: "verified link tokens remembered, so a link's later requests skip the HMAC (0: verify every request; expiry is still checked)",
    },
    SettingDoc {
        key: "revoked_max",
        kind: "count",
        default: Some("100000"),
        help: "revoked files kept per core: each core sends its revocation list on connecting and the edge refuses (410) a file any core revoked, whichever core serves it; beyond this a core's further revocations are not kept (logged, tgcdn_edge_revocations_refused_total) and hold only on that core's own files",
    },
    SettingDoc {
        key: "trust_forwarded_for",
        kind: "bool",
        default: Some("false"),
        help: "behind a proxy: per-IP limits use the last X-Forwarded-For address",
    },
];

/// The `--help` text listing every variable.
pub fn settings_help() -> String {
    tgcdn_shared::config::settings_help(SETTINGS_INTRO, SETTINGS)
}

/// What the settings are, before the list (`--help` and docs/CONFIG.md).
pub const SETTINGS_INTRO: &str = "Configured by environment variables (or the same keys, lower-case, in the TOML file named by TGCDN_CONFIG):";

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum EdgeConfigError {
    #[error(transparent)]
    Setting(#[from] ConfigError),
    #[error("{}: {reason}", env_name(key))]
    Invalid { key: &'static str, reason: String },
}

/// Validated configuration.
#[derive(Debug)]
pub struct EdgeConfig {
    pub listen: SocketAddr,
    /// Where `/metrics` is served; loopback unless the operator opens it.
    pub metrics_listen: SocketAddr,
    /// Set when the listener terminates TLS; files already read and checked.
    pub tls: Option<Arc<TlsIdentity>>,
    pub public_url: BaseUrl,
    pub region: String,
    pub edge_id: String,
    /// The cores, in the order given (one for the single-core form); never empty.
    pub cores: Vec<CoreLink>,
    /// How long a silent core link lives (QUIC idle timeout).
    pub core_timeout: Duration,
    pub verifier: TokenVerifier,
    pub options: EdgeOptions,
}

/// How to reach and authenticate to one core.
#[derive(Clone)]
pub struct CoreLink {
    /// The core's name in the rendezvous ranking (`core` in the single-core form).
    pub name: String,
    /// `host:port`, resolved on every connection attempt.
    pub addr: String,
    pub server_name: String,
    pub cert_sha256: [u8; 32],
    pub cluster_secret: Secret,
}

impl std::fmt::Debug for CoreLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreLink")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Most entries of `cores`: each is a connection and a supervisor task.
pub const MAX_CORES: usize = 64;
/// Shortest `core_timeout`: below 3 s keep-alives go out every third of it.
const MIN_CORE_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest `core_timeout`; quinn's idle timeout is a 62-bit count of milliseconds anyway.
const MAX_CORE_TIMEOUT: Duration = Duration::from_secs(600);

impl EdgeConfig {
    pub fn from_settings(settings: &Settings) -> Result<Self, EdgeConfigError> {
        let region: String = settings.get_default(SETTINGS, "region")?;
        let edge_id = settings
            .get::<String>("edge_id")?
            .unwrap_or_else(|| format!("{region}-{}", std::process::id()));
        let keyring = keyring(settings.require("link_keys")?)?;
        let verifier = TokenVerifier::new(keyring)
            .with_legacy(settings.get_default(SETTINGS, "legacy_links")?);
        let core_timeout: Duration = settings.get_default(SETTINGS, "core_timeout")?;
        if !(MIN_CORE_TIMEOUT..=MAX_CORE_TIMEOUT).contains(&core_timeout) {
            return Err(EdgeConfigError::Invalid {
                key: "core_timeout",
                reason: format!("must be 1s..=600s, got {core_timeout:?}"),
            });
        }
        Ok(EdgeConfig {
            listen: settings.get_default(SETTINGS, "listen")?,
            metrics_listen: settings.get_default(SETTINGS, "metrics_listen")?,
            tls: tls_identity(settings)?.map(Arc::new),
            public_url: settings.require("public_url")?,
            region,
            edge_id,
            cores: core_links(settings)?,
            core_timeout,
            verifier,
            options: edge_options(settings)?,
        })
    }

    /// The QUIC client's settings for `core`, with the default time limits but for the idle
    /// timeout (`core_timeout`): this edge introduces itself by id, region and public URL.
    pub fn quic_settings_for(&self, core: &CoreLink) -> QuicSettings {
        let mut quic = QuicSettings::new(
            core.addr.clone(),
            core.cert_sha256,
            core.cluster_secret.bytes().to_vec(),
        );
        quic.server_name = core.server_name.clone();
        quic.edge_id = self.edge_id.clone();
        quic.region = self.region.clone();
        quic.public_base_url = self.public_url.as_str().to_owned();
        quic.idle_timeout = self.core_timeout;
        quic
    }

    /// [`Self::quic_settings_for`] the first core: for programs that link one core only
    /// (the sandbox's second edge).
    pub fn quic_settings(&self) -> QuicSettings {
        self.quic_settings_for(&self.cores[0])
    }

    /// Every core's name and QUIC settings, in the configured order (what
    /// [`crate::upstream::pool::CorePool::start`] takes).
    pub fn pool_settings(&self) -> Vec<(String, QuicSettings)> {
        self.cores
            .iter()
            .map(|core| (core.name.clone(), self.quic_settings_for(core)))
            .collect()
    }

    /// Keys that are set but mean nothing to the edge (typos, usually).
    pub fn unknown_keys(settings: &Settings) -> Vec<String> {
        let known: Vec<&str> = SETTINGS.iter().map(|s| s.key).chain(["config"]).collect();
        settings.unknown_keys(&known)
    }
}

/// The cores: the `cores` list, or else the single `core_addr` + `core_cert_sha256` form as
/// a list of one named `core`. Giving both is refused, so no edge of a fleet silently drops
/// half of what its operator wrote.
fn core_links(settings: &Settings) -> Result<Vec<CoreLink>, EdgeConfigError> {
    let cluster_secret: Secret = settings.require("cluster_secret")?;
    let default_server_name: String = settings.get_default(SETTINGS, "core_server_name")?;
    let Some(entries) = settings.get::<Vec<CoreEntry>>("cores")? else {
        return Ok(vec![CoreLink {
            name: "core".to_owned(),
            addr: settings.require::<HostPort>("core_addr")?.0,
            server_name: default_server_name,
            cert_sha256: settings.require::<CertFingerprint>("core_cert_sha256")?.0,
            cluster_secret,
        }]);
    };
    let invalid = |reason: String| EdgeConfigError::Invalid {
        key: "cores",
        reason,
    };
    if settings.get::<String>("core_addr")?.is_some()
        || settings.get::<String>("core_cert_sha256")?.is_some()
    {
        return Err(invalid(
            "set either it or TGCDN_CORE_ADDR and TGCDN_CORE_CERT_SHA256, not both".to_owned(),
        ));
    }
    if entries.is_empty() || entries.len() > MAX_CORES {
        return Err(invalid(format!(
            "needs 1 to {MAX_CORES} cores, got {}",
            entries.len()
        )));
    }
    for (index, entry) in entries.iter().enumerate() {
        if entries[..index]
            .iter()
            .any(|other| other.name == entry.name)
        {
            return Err(invalid(format!("core name {:?} given twice", entry.name)));
        }
    }
    Ok(entries
        .into_iter()
        .map(|entry| CoreLink {
            name: entry.name,
            addr: entry.addr,
            server_name: entry
                .server_name
                .unwrap_or_else(|| default_server_name.clone()),
            cert_sha256: entry.cert_sha256,
            cluster_secret: cluster_secret.clone(),
        })
        .collect())
}

/// One entry of `cores`: `NAME=HOST:PORT/CERT_SHA256[/SERVER_NAME]` as text, or a TOML table
/// with exactly the keys `name`, `addr`, `cert_sha256` and optionally `server_name`.
struct CoreEntry {
    name: String,
    addr: String,
    cert_sha256: [u8; 32],
    server_name: Option<String>,
}

/// Longest core name: it is a metrics label and a hash input, not prose.
const MAX_CORE_NAME: usize = 64;

impl CoreEntry {
    fn new(name: &str, addr: &str, cert: &str, server_name: Option<&str>) -> Option<Self> {
        let name_ok = !name.is_empty()
            && name.len() <= MAX_CORE_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        let server_name = match server_name.map(str::trim) {
            Some("") => return None,
            other => other.map(str::to_owned),
        };
        name_ok.then_some(())?;
        Some(CoreEntry {
            name: name.to_owned(),
            addr: HostPort::from_text(addr)?.0,
            cert_sha256: CertFingerprint::from_text(cert.trim())?.0,
            server_name,
        })
    }
}

impl FromSetting for CoreEntry {
    fn expected() -> String {
        "NAME=HOST:PORT/CERT_SHA256[/SERVER_NAME] (or a TOML table with name, addr, cert_sha256 and optional server_name)".to_owned()
    }
    fn from_text(text: &str) -> Option<Self> {
        let (name, rest) = text.trim().split_once('=')?;
        let mut parts = rest.split('/');
        let (addr, cert) = (parts.next()?, parts.next()?);
        let server_name = parts.next();
        if parts.next().is_some() {
            return None;
        }
        CoreEntry::new(name.trim(), addr, cert, server_name)
    }
    fn from_toml(value: &toml::Value) -> Option<Self> {
        let table = match value {
            toml::Value::String(text) => return Self::from_text(text),
            toml::Value::Table(table) => table,
            _ => None?,
        };
        const KEYS: [&str; 4] = ["name", "addr", "cert_sha256", "server_name"];
        if table.keys().any(|key| !KEYS.contains(&key.as_str())) {
            return None;
        }
        let text = |key: &str| table.get(key).map(toml::Value::as_str);
        CoreEntry::new(
            text("name")??,
            text("addr")??,
            text("cert_sha256")??,
            text("server_name").map(|name| name.unwrap_or("")),
        )
    }
}

/// Most `token_cache` slots: about 200 MiB of tokens at worst, far past any useful size.
const MAX_TOKEN_CACHE_ENTRIES: usize = 1 << 20;
/// Largest `revoked_max`: ~20 bytes a file, so 10 M files is ~200 MiB per core.
const MAX_REVOKED_MAX: usize = 10_000_000;

/// The serving knobs alone (cache, read-ahead, fetch cap, HTTP limits), without anything
/// about the core link or tokens. `EdgeConfig` uses it; so can the core's one-box mode, which
/// embeds the edge with an in-process upstream and the same `TGCDN_*` tunables.
pub fn edge_options(settings: &Settings) -> Result<EdgeOptions, EdgeConfigError> {
    let readahead_max: usize = settings.get_default(SETTINGS, "readahead_max")?;
    if readahead_max == 0 || readahead_max > 256 {
        return Err(EdgeConfigError::Invalid {
            key: "readahead_max",
            reason: format!("must be 1..=256, got {readahead_max}"),
        });
    }
    let cache_size = settings.get_default::<ByteSize>(SETTINGS, "cache_size")?.0;
    if cache_size < 16 << 20 {
        return Err(EdgeConfigError::Invalid {
            key: "cache_size",
            reason: "must be at least 16MiB (a few streams' read-ahead)".to_owned(),
        });
    }
    let fetch_cap = positive(settings, "fetch_cap")?;
    // Unset: 16, or all of a smaller fetch_cap.
    let fetch_per_client = match settings.get::<usize>("fetch_per_client")? {
        Some(value) => value,
        None => settings
            .get_default::<usize>(SETTINGS, "fetch_per_client")?
            .min(fetch_cap),
    };
    if fetch_per_client == 0 || fetch_per_client > fetch_cap {
        return Err(EdgeConfigError::Invalid {
            key: "fetch_per_client",
            reason: format!("must be 1..=fetch_cap ({fetch_cap})"),
        });
    }
    // Unset: 4, or all of a smaller fetch_per_client.
    let fetch_fair_share = match settings.get::<usize>("fetch_fair_share")? {
        Some(value) => value,
        None => settings
            .get_default::<usize>(SETTINGS, "fetch_fair_share")?
            .min(fetch_per_client),
    };
    if fetch_fair_share == 0 || fetch_fair_share > fetch_per_client {
        return Err(EdgeConfigError::Invalid {
            key: "fetch_fair_share",
            reason: format!("must be 1..=fetch_per_client ({fetch_per_client})"),
        });
    }
    let inflight_max = settings
        .get_default::<ByteSize>(SETTINGS, "inflight_max")?
        .0;
    if inflight_max < CHUNK_SIZE {
        return Err(EdgeConfigError::Invalid {
            key: "inflight_max",
            reason: "must be at least 1MiB (one chunk)".to_owned(),
        });
    }
    let http = HttpSettings {
        header_read_timeout: settings.get_default(SETTINGS, "header_read_timeout")?,
        idle_timeout: settings.get_default(SETTINGS, "idle_timeout")?,
        per_ip_limit: settings.get_default(SETTINGS, "per_ip_limit")?,
        max_connections: positive(settings, "max_connections")?,
        max_connections_per_ip: positive(settings, "max_connections_per_ip")?,
        h2_keepalive_interval: Some(
            settings.get_default::<Duration>(SETTINGS, "h2_keepalive_interval")?,
        )
        .filter(|interval| !interval.is_zero()),
        h2_keepalive_timeout: settings.get_default(SETTINGS, "h2_keepalive_timeout")?,
        h2_max_streams: h2_max_streams(settings)?,
        h2_send_buffer: h2_send_buffer(settings)?,
        readahead: WindowLimits::with_max(readahead_max),
        cache_max_age_secs: settings
            .get_default::<Duration>(SETTINGS, "cache_max_age")?
            .as_secs(),
        drain_timeout: settings.get_default(SETTINGS, "drain_timeout")?,
        trust_forwarded_for: settings.get_default(SETTINGS, "trust_forwarded_for")?,
        token_cache_entries: settings.get_default(SETTINGS, "token_cache")?,
    };
    if http.token_cache_entries > MAX_TOKEN_CACHE_ENTRIES {
        return Err(EdgeConfigError::Invalid {
            key: "token_cache",
            reason: format!(
                "must be at most {MAX_TOKEN_CACHE_ENTRIES}, got {}",
                http.token_cache_entries
            ),
        });
    }
    let revoked_max: usize = settings.get_default(SETTINGS, "revoked_max")?;
    if revoked_max > MAX_REVOKED_MAX {
        return Err(EdgeConfigError::Invalid {
            key: "revoked_max",
            reason: format!("must be at most {MAX_REVOKED_MAX}, got {revoked_max}"),
        });
    }
    Ok(EdgeOptions {
        revoked_max,
        cache_bytes: cache_size,
        fetch_cap,
        fetch_per_client,
        fetch_fair_share,
        inflight_max,
        http,
        addon: addon_settings(settings)?,
    })
}

/// The addon's knobs. Its base URL is `public_url`, the URL viewers reach this edge at (the
/// one-box core's own `public_url` then): never a request's `Host`, which a viewer could
/// forge to plant its own host in cached stream links.
fn addon_settings(settings: &Settings) -> Result<AddonSettings, EdgeConfigError> {
    let concurrency: usize = settings.get_default(SETTINGS, "addon_concurrency")?;
    if concurrency == 0 {
        return Err(EdgeConfigError::Invalid {
            key: "addon_concurrency",
            reason: "must be at least 1".to_owned(),
        });
    }
    Ok(AddonSettings {
        base_url: settings
            .get::<BaseUrl>("public_url")?
            .map(|url| url.to_string()),
        secret: settings.get::<AddonSecret>("addon_secret")?,
        cache_bytes: settings
            .get_default::<ByteSize>(SETTINGS, "addon_cache_size")?
            .0,
        concurrency,
    })
}

/// Most `h2_max_streams`: each stream is a task and a queue; more is no player's need.
const MAX_H2_STREAMS: u32 = 1000;

fn h2_max_streams(settings: &Settings) -> Result<u32, EdgeConfigError> {
    let streams: u32 = settings.get_default(SETTINGS, "h2_max_streams")?;
    if !(1..=MAX_H2_STREAMS).contains(&streams) {
        return Err(EdgeConfigError::Invalid {
            key: "h2_max_streams",
            reason: format!("must be 1..={MAX_H2_STREAMS}, got {streams}"),
        });
    }
    Ok(streams)
}

/// `h2_send_buffer` bounds: one budget-less copy (16 KiB) must fit; above 16 MiB a
/// connection's streams could pin GiBs.
const H2_SEND_BUFFER: std::ops::RangeInclusive<u64> = (16 << 10)..=(16 << 20);

fn h2_send_buffer(settings: &Settings) -> Result<usize, EdgeConfigError> {
    let bytes = settings
        .get_default::<ByteSize>(SETTINGS, "h2_send_buffer")?
        .0;
    if !H2_SEND_BUFFER.contains(&bytes) {
        return Err(EdgeConfigError::Invalid {
            key: "h2_send_buffer",
            reason: "must be 16KiB..=16MiB".to_owned(),
        });
    }
    usize::try_from(bytes).map_err(|_| EdgeConfigError::Invalid {
        key: "h2_send_buffer",
        reason: "too large for this platform".to_owned(),
    })
}

/// A count that must be at least 1.
fn positive(settings: &Settings, key: &'static str) -> Result<usize, EdgeConfigError> {
    let value: usize = settings.get_default(SETTINGS, key)?;
    if value == 0 {
        return Err(EdgeConfigError::Invalid {
            key,
            reason: "must be at least 1".to_owned(),
        });
    }
    Ok(value)
}

/// The listener's TLS identity when `tls_cert` and `tls_key` are both set, read and checked
/// now so that a bad file stops the start with one line naming its variable.
pub fn tls_identity(settings: &Settings) -> Result<Option<TlsIdentity>, EdgeConfigError> {
    // Empty counts as unset, so `TGCDN_TLS_CERT=` in a compose file turns TLS off.
    let path = |key| -> Result<Option<String>, ConfigError> {
        Ok(settings
            .get::<String>(key)?
            .filter(|path| !path.trim().is_empty()))
    };
    let (cert, key) = (path("tls_cert")?, path("tls_key")?);
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            return Err(EdgeConfigError::Invalid {
                key: "tls_key",
                reason: "must be set too when TGCDN_TLS_CERT is".to_owned(),
            });
        }
        (None, Some(_)) => {
            return Err(EdgeConfigError::Invalid {
                key: "tls_cert",
                reason: "must be set too when TGCDN_TLS_KEY is".to_owned(),
            });
        }
    };
    let files = TlsFiles {
        cert: PathBuf::from(cert),
        key: PathBuf::from(key),
    };
    TlsIdentity::load(files)
        .map(Some)
        .map_err(|error| EdgeConfigError::Invalid {
            key: error.file().setting_key(),
            reason: error.to_string(),
        })
}

fn keyring(settings: Vec<LinkKeySetting>) -> Result<Keyring, EdgeConfigError> {
    let invalid = |reason: String| EdgeConfigError::Invalid {
        key: "link_keys",
        reason,
    };
    let mut keys = settings
        .into_iter()
        .map(|setting| LinkKey::new(setting.id, setting.secret.bytes()))
        .collect::<Result<Vec<_>, KeyError>>()
        .map_err(|error| invalid(error.to_string()))?
        .into_iter();
    let current = keys
        .next()
        .ok_or_else(|| invalid("needs at least one ID:SECRET".to_owned()))?;
    Keyring::new(current, keys.collect()).map_err(|error| invalid(error.to_string()))
}

/// `ID:SECRET`: a link key id (0–255) and its secret as `shared::config::Secret` reads it.
struct LinkKeySetting {
    id: u8,
    secret: Secret,
}

impl FromSetting for LinkKeySetting {
    const SECRET: bool = true;
    fn expected() -> String {
        "ID:SECRET (key id 0-255, secret as hex or base64 of at least 16 bytes)".to_owned()
    }
    fn from_text(text: &str) -> Option<Self> {
        let (id, secret) = text.split_once(':')?;
        Some(LinkKeySetting {
            id: id.trim().parse().ok()?,
            secret: Secret::from_text(secret.trim())?,
        })
    }
}

/// `host:port` (a name, an IPv4 address or a bracketed IPv6 address, and a port).
struct HostPort(String);

impl FromSetting for HostPort {
    fn expected() -> String {
        "host:port, such as core.internal:7443 or 10.0.0.5:7443".to_owned()
    }
    fn from_text(text: &str) -> Option<Self> {
        let text = text.trim();
        let (host, port) = text.rsplit_once(':')?;
        let host_ok = !host.is_empty()
            && (host.starts_with('[') && host.ends_with(']')
                || host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
        (host_ok && port.parse::<u16>().is_ok_and(|p| p > 0)).then(|| HostPort(text.to_owned()))
    }
}

/// A SHA-256 fingerprint: 64 hex digits, optionally separated by colons.
struct CertFingerprint([u8; 32]);

impl FromSetting for CertFingerprint {
    fn expected() -> String {
        "a SHA-256 fingerprint of 64 hex digits (colons allowed)".to_owned()
    }
    fn from_text(text: &str) -> Option<Self> {
        let digits: Vec<u8> = text.bytes().filter(|b| *b != b':').collect();
        if digits.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(CertFingerprint(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FINGERPRINT: &str = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
    const SECRET_HEX: &str = "0123456789abcdef0123456789abcdef";

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::from_env_and_file(
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            None,
        )
        .unwrap()
    }

    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![
            ("TGCDN_PUBLIC_URL", "https://fra.cdn.example"),
            ("TGCDN_CORE_ADDR", "10.1.2.3:7443"),
            ("TGCDN_CORE_CERT_SHA256", FINGERPRINT),
            ("TGCDN_CLUSTER_SECRET", SECRET_HEX),
            (
                "TGCDN_LINK_KEYS",
                "2:fedcba9876543210fedcba9876543210, 1:0123456789abcdef0123456789abcdef",
            ),
        ]
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let config = EdgeConfig::from_settings(&settings(&minimal())).unwrap();
        assert_eq!(config.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(config.metrics_listen, "127.0.0.1:9181".parse().unwrap());
        assert_eq!(config.cores.len(), 1);
        assert_eq!(config.cores[0].addr, "10.1.2.3:7443");
        assert_eq!(config.cores[0].name, "core");
        assert_eq!(config.core_timeout, Duration::from_secs(10));
        assert_eq!(config.options.cache_bytes, 256 << 20);
        assert_eq!(config.options.http.readahead.max, 64);
        assert_eq!(config.options.http.max_connections, 20_000);
        assert_eq!(config.options.http.max_connections_per_ip, 256);
        assert_eq!(config.options.http.token_cache_entries, 8192);
        assert_eq!(
            config.options.http.h2_keepalive_interval,
            Some(Duration::from_secs(30))
        );
        assert_eq!(config.cores[0].cert_sha256[1], 0x11);
        assert_eq!(config.cores[0].cert_sha256[31], 0xff);
        assert_eq!(config.verifier.keyring().current_key_id(), 2);
        assert_eq!(config.verifier.keyring().key_ids().count(), 2);
        assert!(!config.verifier.accepts_legacy());
        assert!(format!("{:?}", config.cores).find(SECRET_HEX).is_none());
    }

    /// The code's `Default`s (used by tests, benches and programs that build options
    /// themselves) must say what the settings table says.
    #[test]
    fn the_default_options_are_the_tables_defaults() {
        let from_table = edge_options(&settings(&[])).unwrap();
        assert_eq!(
            format!("{from_table:?}"),
            format!("{:?}", EdgeOptions::default())
        );
    }

    #[test]
    fn overrides_are_read() {
        let mut pairs = minimal();
        pairs.extend([
            ("TGCDN_CACHE_SIZE", "1GiB"),
            ("TGCDN_READAHEAD_MAX", "48"),
            ("TGCDN_FETCH_CAP", "8"),
            ("TGCDN_INFLIGHT_MAX", "32MiB"),
            ("TGCDN_LISTEN", "127.0.0.1:9000"),
            ("TGCDN_IDLE_TIMEOUT", "5m"),
            ("TGCDN_LEGACY_LINKS", "yes"),
            ("TGCDN_MAX_CONNECTIONS", "100"),
            ("TGCDN_MAX_CONNECTIONS_PER_IP", "7"),
            ("TGCDN_H2_KEEPALIVE_INTERVAL", "0s"),
            ("TGCDN_H2_MAX_STREAMS", "4"),
            ("TGCDN_H2_SEND_BUFFER", "128KiB"),
            ("TGCDN_TOKEN_CACHE", "0"),
        ]);
        let config = EdgeConfig::from_settings(&settings(&pairs)).unwrap();
        assert_eq!(config.options.http.token_cache_entries, 0);
        assert_eq!(config.options.http.max_connections, 100);
        assert_eq!(config.options.http.max_connections_per_ip, 7);
        assert_eq!(config.options.http.h2_keepalive_interval, None);
        assert_eq!(config.options.http.h2_max_streams, 4);
        assert_eq!(config.options.http.h2_send_buffer, 128 << 10);
        assert_eq!(config.options.cache_bytes, 1 << 30);
        assert_eq!(config.options.http.readahead.max, 48);
        assert_eq!(config.options.fetch_cap, 8);
        assert_eq!(config.options.inflight_max, 32 << 20);
        assert_eq!(config.options.http.idle_timeout, Duration::from_secs(300));
        assert!(config.verifier.accepts_legacy());
        assert_eq!(
            config.options.addon.base_url.as_deref(),
            Some("https://fra.cdn.example")
        );
        assert!(config.options.addon.secret.is_none());
    }

    #[test]
    fn addon_settings_are_read_and_checked() {
        let mut pairs = minimal();
        pairs.extend([
            ("TGCDN_ADDON_SECRET", "only-my-friends-0123"),
            ("TGCDN_ADDON_CACHE_SIZE", "4MiB"),
            ("TGCDN_ADDON_CONCURRENCY", "3"),
        ]);
        let config = EdgeConfig::from_settings(&settings(&pairs)).unwrap();
        let addon = &config.options.addon;
        assert_eq!(
            addon.secret.as_ref().map(AddonSecret::as_str),
            Some("only-my-friends-0123")
        );
        assert_eq!((addon.cache_bytes, addon.concurrency), (4 << 20, 3));
        for (key, value) in [
            ("TGCDN_ADDON_SECRET", "short"),
            ("TGCDN_ADDON_SECRET", "has/a/slash/in/it/0123"),
            ("TGCDN_ADDON_CONCURRENCY", "0"),
        ] {
            let mut pairs = minimal();
            pairs.push((key, value));
            let error = EdgeConfig::from_settings(&settings(&pairs)).unwrap_err();
            assert!(error.to_string().contains(key), "{error}");
            assert!(!error.to_string().contains(value), "value echoed: {error}");
        }
    }

    #[test]
    fn errors_name_the_variable() {
        let pairs: Vec<_> = minimal()
            .into_iter()
            .filter(|(k, _)| *k != "TGCDN_CORE_ADDR")
            .collect();
        let error = EdgeConfig::from_settings(&settings(&pairs)).unwrap_err();
        assert!(error.to_string().contains("TGCDN_CORE_ADDR"), "{error}");
        let mut pairs = minimal();
        pairs.push(("TGCDN_INFLIGHT_MAX", "64KiB"));
        let error = EdgeConfig::from_settings(&settings(&pairs)).unwrap_err();
        assert!(
            error.to_string().starts_with("TGCDN_INFLIGHT_MAX"),
            "{error}"
        );
        for (key, value) in [
            ("TGCDN_H2_MAX_STREAMS", "0"),
            ("TGCDN_H2_MAX_STREAMS", "100000"),
            ("TGCDN_H2_SEND_BUFFER", "1KiB"),
            ("TGCDN_H2_SEND_BUFFER", "1GiB"),
        ] {
            let mut pairs = minimal();
            pairs.push((key, value));
            let error = EdgeConfig::from_settings(&settings(&pairs)).unwrap_err();
            assert!(error.to_string().starts_with(key), "{key}={value}: {error}");
        }
        let mut pairs = minimal();
        pairs.push(("TGCDN_READAHEAD_MAX", "0"));
        let error = EdgeConfig::from_settings(&settings(&pairs)).unwrap_err();
        assert!(
            error.to_string().starts_with("TGCDN_READAHEAD_MAX"),
            "{error}"
        );
        let mut pairs = minimal();
        pairs.push(("TGCDN_TOKEN_CACHE", "100000000"));
        let error = EdgeConfig::from_settings(&settings(&pairs)).unwrap_err();
        assert!(
            error.to_string().starts_with("TGCDN_TOKEN_CACHE"),
            "{error}"
        );
        let mut pairs = minimal();
        pairs.retain(|(k, _)| *k != "TGCDN_CORE_CERT_SHA256");
        pairs.push(("TGCDN_CORE_CERT_SHA256", "abcd"));
        let error = EdgeConfig::from_settings(&settings(&pairs)).unwrap_err();
        assert!(
            error.to_string().contains("TGCDN_CORE_CERT_SHA256"),
            "{error}"
        );
        let mut pairs = minimal();
        pairs.retain(|(k, _)| *k != "TGCDN_LINK_KEYS");
        pairs.push(("TGCDN_LINK_KEYS", "1:00112233"));
        let error = EdgeConfig::from_settings(&settings(&pairs)).unwrap_err();
        assert!(error.to_string().contains("TGCDN_LINK_KEYS"), "{error}");
        assert!(
            !error.to_string().contains("00112233"),
            "secret echoed: {error}"
        );
    }

    fn without_single_core(
        mut pairs: Vec<(&'static str, &'static str)>,
    ) -> Vec<(&'static str, &'static str)> {
        pairs.retain(|(k, _)| !matches!(*k, "TGCDN_CORE_ADDR" | "TGCDN_CORE_CERT_SHA256"));
        pairs
    }

    #[test]
    fn a_core_list_is_read_from_the_environment() {
        let list = format!(
            "core-a=10.0.0.5:7443/{FINGERPRINT}, core-b=[::1]:7444/{}/other-name",
            FINGERPRINT.to_lowercase()
        );
        let mut pairs = without_single_core(minimal());
        pairs.push(("TGCDN_CORES", &list));
        pairs.push(("TGCDN_CORE_TIMEOUT", "3s"));
        let config = EdgeConfig::from_settings(&settings(&pairs)).unwrap();
        let names: Vec<&str> = config.cores.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["core-a", "core-b"]);
        assert_eq!(config.cores[1].addr, "[::1]:7444");
        assert_eq!(config.cores[0].server_name, "tgcdn-core");
        assert_eq!(config.cores[1].server_name, "other-name");
        assert_eq!(config.cores[1].cert_sha256, config.cores[0].cert_sha256);
        assert_eq!(config.cores[1].cluster_secret.bytes().len(), 16);
        let pool = config.pool_settings();
        assert_eq!(pool[1].0, "core-b");
        assert_eq!(pool[1].1.idle_timeout, Duration::from_secs(3));
        assert_eq!(pool[1].1.server_name, "other-name");
    }

    #[test]
    fn a_core_list_is_read_from_toml_tables() {
        let file = format!(
            "public_url = \"https://fra.cdn.example\"\ncluster_secret = \"{SECRET_HEX}\"\n\
             link_keys = \"1:{SECRET_HEX}\"\n\
             [[cores]]\nname = \"a\"\naddr = \"core-a.internal:7443\"\ncert_sha256 = \"{FINGERPRINT}\"\n\
             [[cores]]\nname = \"b\"\naddr = \"10.0.0.6:7443\"\ncert_sha256 = \"{FINGERPRINT}\"\nserver_name = \"core-b\"\n"
        );
        let path = std::path::Path::new("edge.toml");
        let settings = Settings::from_env_and_file(Vec::new(), Some((path, &file))).unwrap();
        assert!(EdgeConfig::unknown_keys(&settings).is_empty());
        let config = EdgeConfig::from_settings(&settings).unwrap();
        let names: Vec<&str> = config.cores.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(config.cores[0].addr, "core-a.internal:7443");
        assert_eq!(config.cores[1].server_name, "core-b");

        let typo = file.replace("server_name", "server_nam");
        let settings = Settings::from_env_and_file(Vec::new(), Some((path, &typo))).unwrap();
        let error = EdgeConfig::from_settings(&settings).unwrap_err();
        assert!(
            error.to_string().starts_with("cores in edge.toml"),
            "{error}"
        );
    }

    #[test]
    fn bad_core_lists_are_refused_naming_the_variable() {
        let both = format!("a=10.0.0.5:7443/{FINGERPRINT}");
        let twice = format!("a=10.0.0.5:7443/{FINGERPRINT},a=10.0.0.6:7443/{FINGERPRINT}");
        let bad_name = format!("a b=10.0.0.5:7443/{FINGERPRINT}");
        let no_cert = "a=10.0.0.5:7443".to_owned();
        let extra = format!("a=10.0.0.5:7443/{FINGERPRINT}/name/more");
        let many: Vec<String> = (0..=MAX_CORES)
            .map(|i| format!("c{i}=10.0.0.5:7443/{FINGERPRINT}"))
            .collect();
        let many = many.join(",");
        for (list, single) in [
            (&both, true),
            (&twice, false),
            (&bad_name, false),
            (&no_cert, false),
            (&extra, false),
            (&many, false),
            (&String::new(), false),
        ] {
            let mut pairs = if single {
                minimal()
            } else {
                without_single_core(minimal())
            };
            pairs.push(("TGCDN_CORES", list));
            let error = EdgeConfig::from_settings(&settings(&pairs)).unwrap_err();
            assert!(
                error.to_string().starts_with("TGCDN_CORES"),
                "{list}: {error}"
            );
        }
        for timeout in ["0s", "11m"] {
            let mut pairs = minimal();
            pairs.push(("TGCDN_CORE_TIMEOUT", timeout));
            let error = EdgeConfig::from_settings(&settings(&pairs)).unwrap_err();
            assert!(
                error.to_string().starts_with("TGCDN_CORE_TIMEOUT"),
                "{error}"
            );
        }
    }

    #[test]
    fn core_addr_accepts_names_and_addresses() {
        for good in [
            "core.internal:7443",
            "10.0.0.5:7443",
            "[::1]:7443",
            "localhost:1",
        ] {
            assert!(HostPort::from_text(good).is_some(), "{good}");
        }
        for bad in [
            "core.internal",
            ":7443",
            "core:0",
            "core:99999",
            "a b:1",
            "http://x:1",
        ] {
            assert!(HostPort::from_text(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn help_lists_every_variable_and_unknown_keys_are_found() {
        let help = settings_help();
        for setting in SETTINGS {
            assert!(help.contains(&env_name(setting.key)));
        }
        let mut pairs = minimal();
        pairs.push(("TGCDN_CACHE_SIZ", "1GiB"));
        let unknown = EdgeConfig::unknown_keys(&settings(&pairs));
        assert_eq!(unknown, vec!["TGCDN_CACHE_SIZ".to_owned()]);
    }
}
