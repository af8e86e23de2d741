//! Settings from `TGCDN_*` environment variables and an optional TOML file.
//!
//! This is the first of the two configuration stages: it knows how to find a raw value and
//! turn it into a typed one ([`FromSetting`]), with one clear error line naming where the
//! value came from. It knows nothing about edge or core settings — each binary builds its
//! own typed `Config` from a [`Settings`] and validates it. Only
//! [`Settings::from_process_env`] touches the process (environment, one file read); all
//! other functions are pure so they can be tested with literal inputs.
//!
//! A key such as `cache_size` is read from `TGCDN_CACHE_SIZE` first, then from `cache_size`
//! in the file; dotted keys reach into tables (`quic.listen` ↔ `TGCDN_QUIC_LISTEN` ↔
//! `listen` under `[quic]`). The environment wins so a container can override one value of
//! a shared file.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Prefix of every variable this layer reads.
pub const ENV_PREFIX: &str = "TGCDN_";
/// Variable naming the TOML file, read by [`Settings::from_process_env`].
pub const CONFIG_FILE_VAR: &str = "TGCDN_CONFIG";
/// Shortest secret [`Secret`] accepts.
pub const MIN_SECRET_BYTES: usize = 16;

/// Why settings could not be read. Every message is one line naming the variable or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{origin}: expected {expected}, got {got}")]
    Invalid {
        origin: Origin,
        expected: String,
        got: String,
    },
    #[error("{0}: required setting is not set")]
    Missing(MissingName),
    #[error("{name}: value is not valid UTF-8")]
    NotUnicode { name: String },
    #[error("{path}: cannot read the config file: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    ParseFile {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

/// Where a value came from, as the error line names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Env {
        name: String,
    },
    File {
        key: String,
        path: PathBuf,
    },
    /// The default a binary's settings table declares (a bug in that table if invalid).
    Table {
        key: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Env { name } => f.write_str(name),
            Origin::File { key, path } => write!(f, "{key} in {}", path.display()),
            Origin::Table { key } => write!(f, "the settings table's default of {key}"),
        }
    }
}

/// The names a missing setting could have been given under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingName {
    pub env_name: String,
    pub file: Option<(String, PathBuf)>,
}

impl fmt::Display for MissingName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.env_name)?;
        if let Some((key, path)) = &self.file {
            write!(f, " (or {key} in {})", path.display())?;
        }
        Ok(())
    }
}

/// The raw settings: `TGCDN_*` variables plus the optional parsed file.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    env: BTreeMap<String, String>,
    file: Option<(PathBuf, toml::Table)>,
}

impl Settings {
    /// Builds settings from environment pairs (anything without the `TGCDN_` prefix is
    /// ignored) and optionally a TOML file's path (for messages) and contents.
    pub fn from_env_and_file(
        env: impl IntoIterator<Item = (String, String)>,
        file: Option<(&Path, &str)>,
    ) -> Result<Self, ConfigError> {
        let env = env
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .collect();
        let file = file
            .map(|(path, text)| parse_file(path, text))
            .transpose()?;
        Ok(Settings { env, file })
    }

    /// Reads the process environment and, if `TGCDN_CONFIG` is set, the file it names.
    pub fn from_process_env() -> Result<Self, ConfigError> {
        let mut env = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().filter(|n| n.starts_with(ENV_PREFIX)) else {
                continue;
            };
            let value = value.into_string().map_err(|_| ConfigError::NotUnicode {
                name: name.to_owned(),
            })?;
            env.push((name.to_owned(), value));
        }
        let path = env
            .iter()
            .find(|(name, _)| name == CONFIG_FILE_VAR)
            .map(|(_, p)| PathBuf::from(p));
        let text = match &path {
            Some(path) => {
                Some(
                    std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
                        path: path.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let file = path.as_deref().zip(text.as_deref());
        Self::from_env_and_file(env, file)
    }

    /// The value of `key`, from the environment or else the file; `None` if neither has it.
    pub fn get<T: FromSetting>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        let env_name = env_name(key);
        if let Some(text) = self.env.get(&env_name) {
            return T::from_text(text).map(Some).ok_or_else(|| {
                invalid::<T>(Origin::Env { name: env_name }, describe_text::<T>(text))
            });
        }
        let Some((path, table)) = &self.file else {
            return Ok(None);
        };
        let Some(value) = lookup(table, key) else {
            return Ok(None);
        };
        let origin = Origin::File {
            key: key.to_owned(),
            path: path.clone(),
        };
        T::from_toml(value)
            .map(Some)
            .ok_or_else(|| invalid::<T>(origin, describe_toml::<T>(value)))
    }

    /// [`Settings::get`] with a default for an absent key (an invalid value is still an error).
    pub fn get_or<T: FromSetting>(&self, key: &str, default: T) -> Result<T, ConfigError> {
        Ok(self.get(key)?.unwrap_or(default))
    }

    /// [`Settings::get`], or else the default `table` declares for `key`: the one place a
    /// binary writes a default. A key the table lacks, or declares without a default, is
    /// treated as required.
    pub fn get_default<T: FromSetting>(
        &self,
        table: &[SettingDoc],
        key: &str,
    ) -> Result<T, ConfigError> {
        if let Some(value) = self.get(key)? {
            return Ok(value);
        }
        match table
            .iter()
            .find(|doc| doc.key == key)
            .and_then(|doc| doc.default)
        {
            Some(text) => T::from_text(text).ok_or_else(|| {
                invalid::<T>(
                    Origin::Table {
                        key: key.to_owned(),
                    },
                    describe_text::<T>(text),
                )
            }),
            None => self.require(key),
        }
    }

    /// `check-config`'s listing: every row of `table` with the value in force and where it
    /// came from (environment, file, the table's default), secrets ([`SettingDoc::is_secret`])
    /// masked.
    pub fn describe(&self, table: &[SettingDoc]) -> String {
        let mut text = String::new();
        for doc in table {
            let name = env_name(doc.key);
            let given = match self.env.get(&name) {
                Some(value) => Some((value.clone(), "environment".to_owned())),
                None => self.file.as_ref().and_then(|(path, file)| {
                    let value = lookup(file, doc.key)?;
                    let value = value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned);
                    Some((value, path.display().to_string()))
                }),
            };
            let line = match (given, doc.default) {
                (Some((_, from)), _) if doc.is_secret() => format!("(set, masked)  [{from}]"),
                (Some((value, from)), _) => format!("{value}  [{from}]"),
                (None, Some(default)) => format!("{}  [default]", shown(default)),
                (None, None) => "(unset)".to_owned(),
            };
            text.push_str(&format!("  {name:<30} = {line}\n"));
        }
        text
    }

    /// [`Settings::get`] for a key that must be present.
    pub fn require<T: FromSetting>(&self, key: &str) -> Result<T, ConfigError> {
        self.get(key)?.ok_or_else(|| {
            ConfigError::Missing(MissingName {
                env_name: env_name(key),
                file: self
                    .file
                    .as_ref()
                    .map(|(path, _)| (key.to_owned(), path.clone())),
            })
        })
    }

    /// Variables and file keys not among `known`, as the error lines would name them, so a
    /// binary can warn about typos. `TGCDN_CONFIG` is always known.
    pub fn unknown_keys(&self, known: &[&str]) -> Vec<String> {
        let known_env: Vec<String> = known.iter().map(|k| env_name(k)).collect();
        let mut unknown: Vec<String> = self
            .env
            .keys()
            .filter(|name| *name != CONFIG_FILE_VAR && !known_env.contains(name))
            .cloned()
            .collect();
        if let Some((path, table)) = &self.file {
            let mut leaves = Vec::new();
            collect_leaf_keys(table, "", &mut leaves);
            unknown.extend(
                leaves
                    .into_iter()
                    .filter(|key| !known.contains(&key.as_str()))
                    .map(|key| format!("{key} in {}", path.display())),
            );
        }
        unknown
    }
}

/// One setting of a binary: a row of its settings table, the one place the setting is
/// declared. `--help`, `check-config`, unknown-key warnings, the readers' defaults
/// ([`Settings::get_default`]) and docs/CONFIG.md ([`reference_markdown`]) all come from the
/// table, so adding a setting is adding a row (and reading it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingDoc {
    /// TOML key (dotted = table); the variable is [`env_name`] of it.
    pub key: &'static str,
    /// The type as an operator writes it: `address`, `size`, `duration`, `count`, `bool`,
    /// `url`, `path`, `secret`, `list`, `text`…; a kind containing `secret` or `key` is
    /// masked by `check-config`.
    pub kind: &'static str,
    /// As an operator would write it; `None`: required, or unset unless given.
    pub default: Option<&'static str>,
    pub help: &'static str,
}

impl SettingDoc {
    /// Whether `check-config` masks the value: a kind naming a secret or a key.
    pub fn is_secret(&self) -> bool {
        self.kind.contains("secret") || self.kind.contains("key")
    }
}

/// `--help` text for a table: one entry per setting, with its type and default.
pub fn settings_help(intro: &str, table: &[SettingDoc]) -> String {
    let mut text = format!("{intro}\n");
    for doc in table {
        let default = doc
            .default
            .map_or_else(String::new, |d| format!(" [default: {}]", shown(d)));
        text.push_str(&format!(
            "  {:<30} <{}> {}{default}\n",
            env_name(doc.key),
            doc.kind,
            doc.help
        ));
    }
    text
}

/// A Markdown section describing `table`: a heading, then one table row per setting.
pub fn reference_markdown(heading: &str, intro: &str, table: &[SettingDoc]) -> String {
    let mut text = format!(
        "## {heading}\n\n{intro}\n\n| Variable | File key | Type | Default | Meaning |\n|---|---|---|---|---|\n"
    );
    let cell = |text: &str| text.replace('|', "\\|");
    for doc in table {
        text.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} |\n",
            env_name(doc.key),
            doc.key,
            doc.kind,
            doc.default
                .map_or_else(|| "—".to_owned(), |d| format!("`{}`", cell(shown(d)))),
            cell(doc.help)
        ));
    }
    text
}

/// An empty default (an empty list) as the docs show it.
fn shown(default: &str) -> &str {
    if default.is_empty() {
        "(empty)"
    } else {
        default
    }
}

/// `cache_size` → `TGCDN_CACHE_SIZE`, `quic.listen` → `TGCDN_QUIC_LISTEN`.
pub fn env_name(key: &str) -> String {
    let mut name = String::with_capacity(ENV_PREFIX.len() + key.len());
    name.push_str(ENV_PREFIX);
    name.extend(key.chars().map(|c| {
        if c == '.' {
            '_'
        } else {
            c.to_ascii_uppercase()
        }
    }));
    name
}

fn parse_file(path: &Path, text: &str) -> Result<(PathBuf, toml::Table), ConfigError> {
    text.parse::<toml::Table>()
        .map(|table| (path.to_owned(), table))
        .map_err(|err| {
            let offset = err.span().map_or(0, |span| span.start);
            let before = &text[..offset.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            ConfigError::ParseFile {
                path: path.to_owned(),
                line,
                column,
                message: err.message().replace('\n', " "),
            }
        })
}

fn lookup<'t>(table: &'t toml::Table, key: &str) -> Option<&'t toml::Value> {
    let mut parts = key.split('.');
    let mut value = table.get(parts.next()?)?;
    for part in parts {
        value = value.as_table()?.get(part)?;
    }
    Some(value)
}

fn collect_leaf_keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (key, value) in table {
        let full = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => collect_leaf_keys(inner, &full, out),
            _ => out.push(full),
        }
    }
}

fn invalid<T: FromSetting>(origin: Origin, got: String) -> ConfigError {
    ConfigError::Invalid {
        origin,
        expected: T::expected(),
        got,
    }
}

fn describe_text<T: FromSetting>(text: &str) -> String {
    if T::SECRET {
        format!("{} characters (value not shown)", text.chars().count())
    } else {
        format!("{text:?}")
    }
}

fn describe_toml<T: FromSetting>(value: &toml::Value) -> String {
    match value {
        _ if T::SECRET => format!("a {} (value not shown)", value.type_str()),
        toml::Value::String(text) => format!("{text:?}"),
        toml::Value::Table(_) => "a table".to_owned(),
        other => other.to_string(),
    }
}

/// A type a setting can be read as.
pub trait FromSetting: Sized {
    /// Whether error messages must not echo the value.
    const SECRET: bool = false;
    /// What an error line says was expected, e.g. "a byte size such as 256MiB".
    fn expected() -> String;
    /// Parses an environment value (or a TOML string).
    fn from_text(text: &str) -> Option<Self>;
    /// Parses a TOML value; by default only strings, through [`FromSetting::from_text`].
    fn from_toml(value: &toml::Value) -> Option<Self> {
        value.as_str().and_then(Self::from_text)
    }
}

macro_rules! integer_setting {
    ($($ty:ty),*) => {$(
        impl FromSetting for $ty {
            fn expected() -> String {
                format!("an integer from {} to {}", <$ty>::MIN, <$ty>::MAX)
            }
            fn from_text(text: &str) -> Option<Self> {
                text.trim().parse().ok()
            }
            fn from_toml(value: &toml::Value) -> Option<Self> {
                match value {
                    toml::Value::Integer(n) => <$ty>::try_from(*n).ok(),
                    toml::Value::String(text) => Self::from_text(text),
                    _ => None,
                }
            }
        }
    )*};
}
integer_setting!(u8, u16, u32, u64, usize, i32, i64);

impl FromSetting for bool {
    fn expected() -> String {
        "true/false, yes/no or 1/0".to_owned()
    }
    fn from_text(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => Some(true),
            "false" | "no" | "0" | "off" => Some(false),
            _ => None,
        }
    }
    fn from_toml(value: &toml::Value) -> Option<Self> {
        match value {
            toml::Value::Boolean(b) => Some(*b),
            toml::Value::String(text) => Self::from_text(text),
            _ => None,
        }
    }
}

impl FromSetting for String {
    fn expected() -> String {
        "a string".to_owned()
    }
    fn from_text(text: &str) -> Option<Self> {
        Some(text.to_owned())
    }
}

impl FromSetting for PathBuf {
    fn expected() -> String {
        "a non-empty path".to_owned()
    }
    fn from_text(text: &str) -> Option<Self> {
        (!text.is_empty()).then(|| PathBuf::from(text))
    }
}

impl FromSetting for SocketAddr {
    fn expected() -> String {
        "a socket address such as 0.0.0.0:8080 or [::1]:443".to_owned()
    }
    fn from_text(text: &str) -> Option<Self> {
        text.trim().parse().ok()
    }
}

/// A number of bytes: `256MiB`, `1GiB`, `512k`, `1048576`. `k`/`KiB` and friends are
/// powers of 1024; `KB`/`MB`/`GB`/`TB` are powers of 1000. Units are case-insensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl FromSetting for ByteSize {
    fn expected() -> String {
        "a byte size such as 256MiB".to_owned()
    }
    fn from_text(text: &str) -> Option<Self> {
        let (number, unit) = split_number(text)?;
        let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kib" => 1 << 10,
            "m" | "mib" => 1 << 20,
            "g" | "gib" => 1 << 30,
            "t" | "tib" => 1 << 40,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "tb" => 1_000_000_000_000,
            _ => return None,
        };
        number.checked_mul(multiplier).map(ByteSize)
    }
    fn from_toml(value: &toml::Value) -> Option<Self> {
        match value {
            toml::Value::Integer(n) => u64::try_from(*n).ok().map(ByteSize),
            toml::Value::String(text) => Self::from_text(text),
            _ => None,
        }
    }
}

/// Durations need a unit (`500ms`, `5s`, `2m`, `1h`, `1d`): a bare number is ambiguous.
impl FromSetting for Duration {
    fn expected() -> String {
        "a duration such as 500ms, 5s, 2m or 1h".to_owned()
    }
    fn from_text(text: &str) -> Option<Self> {
        let (number, unit) = split_number(text)?;
        let seconds = |factor: u64| number.checked_mul(factor).map(Duration::from_secs);
        match unit {
            "ms" => Some(Duration::from_millis(number)),
            "s" => seconds(1),
            "m" => seconds(60),
            "h" => seconds(3600),
            "d" => seconds(86_400),
            _ => None,
        }
    }
}

/// Splits `"256 MiB"` into `(256, "MiB")`.
fn split_number(text: &str) -> Option<(u64, &str)> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number = text[..digits_end].parse().ok()?;
    Some((number, text[digits_end..].trim_start()))
}

/// An `http://` or `https://` base URL with a host and no trailing slash, query or fragment,
/// so callers can append `/path` directly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaseUrl(String);

impl BaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromSetting for BaseUrl {
    fn expected() -> String {
        "an http:// or https:// base URL without a trailing slash, such as https://cdn.example.com"
            .to_owned()
    }
    fn from_text(text: &str) -> Option<Self> {
        let rest = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"))?;
        let host = rest.split('/').next().unwrap_or_default();
        let well_formed = !host.is_empty()
            && !text.ends_with('/')
            && !rest.contains(['?', '#', '@'])
            && rest.chars().all(|c| c.is_ascii_graphic());
        well_formed.then(|| BaseUrl(text.to_owned()))
    }
}

/// Secret bytes (at least [`MIN_SECRET_BYTES`]) written as hex or base64 (standard or
/// URL-safe, padding optional). An all-hex-digit value of even length is read as hex; the
/// prefixes `hex:` and `base64:` force one reading. Never printed by `Debug` or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

impl FromSetting for Secret {
    const SECRET: bool = true;
    fn expected() -> String {
        format!("a secret of at least {MIN_SECRET_BYTES} bytes in hex or base64")
    }
    fn from_text(text: &str) -> Option<Self> {
        let text = text.trim();
        let bytes = if let Some(hex) = text.strip_prefix("hex:") {
            decode_hex(hex)?
        } else if let Some(b64) = text.strip_prefix("base64:") {
            decode_base64(b64)?
        } else {
            decode_hex(text).or_else(|| decode_base64(text))?
        };
        (bytes.len() >= MIN_SECRET_BYTES).then_some(Secret(bytes))
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let pairs = text.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|pair| {
            let high = char::from(pair[0]).to_digit(16)?;
            let low = char::from(pair[1]).to_digit(16)?;
            u8::try_from((high << 4) | low).ok()
        })
        .collect()
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let unpadded = text.trim_end_matches('=');
    if text.len() - unpadded.len() > 2 || unpadded.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(unpadded.len() * 3 / 4);
    let mut bits: u32 = 0;
    let mut bit_count = 0;
    for c in unpadded.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        bit_count += 6;
        if bit_count >= 8 {
            bit_count -= 8;
            out.push((bits >> bit_count) as u8); // the low byte of the top 8 pending bits
            bits &= (1 << bit_count) - 1;
        }
    }
    Some(out)
}

/// Comma-separated in the environment (`a, b,c`; empty items dropped), an array in TOML.
impl<T: FromSetting> FromSetting for Vec<T> {
    const SECRET: bool = T::SECRET;
    fn expected() -> String {
        format!("a comma-separated list of {}", T::expected())
    }
    fn from_text(text: &str) -> Option<Self> {
        text.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(T::from_text)
            .collect()
    }
    fn from_toml(value: &toml::Value) -> Option<Self> {
        match value {
            toml::Value::Array(items) => items.iter().map(T::from_toml).collect(),
            toml::Value::String(text) => Self::from_text(text),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
