//! `--config FILE`: the sandbox's settings in TOML, one key per flag (`listen`,
//! `remote_listen`, `data_dir`, `files`, `latency_ms`, `bandwidth`, `smoke`). A flag given on
//! the command line wins over the file, the file over the built-in default. Relative paths
//! are taken from the file's directory, so a config file can live with its data.
//!
//! Called by `main` before anything starts. Pure apart from reading the file; unknown keys
//! are an error naming the key, since a typo would otherwise run a different sandbox.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tgcdn_shared::config::{ByteSize, FromSetting};

/// Why a config file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("--config {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--config {}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

/// The keys of a config file; each absent key leaves the flag's default.
#[derive(Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOptions {
    pub listen: Option<SocketAddr>,
    pub remote_listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub files: Vec<PathBuf>,
    pub latency_ms: Option<u64>,
    /// Bytes per second per emulated Telegram connection, e.g. "20MiB".
    pub bandwidth: Option<String>,
    #[serde(default)]
    pub smoke: bool,
}

impl FileOptions {
    /// Reads and checks `path`.
    pub fn read(path: &Path) -> Result<FileOptions, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|reason| ConfigFileError::Invalid {
            path: path.to_owned(),
            reason,
        })
    }

    /// `text` as options, relative paths joined to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<FileOptions, String> {
        let mut options: FileOptions =
            toml::from_str(text).map_err(|error| error.message().to_owned())?;
        if let Some(bandwidth) = &options.bandwidth {
            parse_bandwidth(bandwidth).map_err(|reason| format!("bandwidth: {reason}"))?;
        }
        options.data_dir = options.data_dir.map(|dir| base.join(dir));
        options.files = options.files.iter().map(|file| base.join(file)).collect();
        Ok(options)
    }
}

/// `20MiB` → bytes per second; zero is refused (nothing would ever arrive).
pub fn parse_bandwidth(text: &str) -> Result<u64, String> {
    match ByteSize::from_text(text) {
        Some(ByteSize(0)) => Err("must be more than 0".to_owned()),
        Some(ByteSize(bytes)) => Ok(bytes),
        None => Err(format!("expected {}", ByteSize::expected())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_has_a_key_and_relative_paths_follow_the_file() {
        let text = r#"
            listen = "127.0.0.1:9000"
            remote_listen = "[::1]:9001"
            data_dir = "state"
            files = ["/abs/film.mkv", "rel.bin"]
            latency_ms = 40
            bandwidth = "20MiB"
            smoke = true
        "#;
        let options = FileOptions::parse(text, Path::new("/etc/tgcdn")).unwrap();
        assert_eq!(
            options,
            FileOptions {
                listen: Some("127.0.0.1:9000".parse().unwrap()),
                remote_listen: Some("[::1]:9001".parse().unwrap()),
                data_dir: Some(PathBuf::from("/etc/tgcdn/state")),
                files: vec![
                    PathBuf::from("/abs/film.mkv"),
                    PathBuf::from("/etc/tgcdn/rel.bin")
                ],
                latency_ms: Some(40),
                bandwidth: Some("20MiB".to_owned()),
                smoke: true,
            }
        );
        assert_eq!(
            FileOptions::parse("", Path::new(".")).unwrap(),
            FileOptions::default()
        );
    }

    #[test]
    fn typos_and_bad_values_are_errors_that_say_what() {
        let typo = FileOptions::parse("lisen = \"127.0.0.1:1\"", Path::new(".")).unwrap_err();
        assert!(typo.contains("lisen"), "{typo}");
        let zero = FileOptions::parse("bandwidth = \"0\"", Path::new(".")).unwrap_err();
        assert_eq!(zero, "bandwidth: must be more than 0");
        assert!(FileOptions::parse("listen = \"nowhere\"", Path::new(".")).is_err());
    }
}
