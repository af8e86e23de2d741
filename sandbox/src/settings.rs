//! The configuration an operator would write, generated: the `TGCDN_*` pairs of a one-box
//! core (`tgcdn-core run --with-edge`) and of a remote edge (`tgcdn-edge`), fed through the
//! same two-stage readers the binaries use (`Settings::from_env_and_file` →
//! `Config::from_settings` / `EdgeConfig::from_settings`), so the sandbox runs on
//! configuration that production validation accepted.
//!
//! Called by [`crate::Sandbox::start`]. Pure apart from drawing fresh random secrets in
//! [`Secrets::generate`]; never reads the process environment (the sandbox has embedded
//! defaults, and a stray `TGCDN_*` variable meant for a real deployment must not leak in).

use std::net::SocketAddr;
use std::path::Path;

use rand::RngCore;
use tgcdn_core::config::Config;
use tgcdn_edge::config::EdgeConfig;
use tgcdn_shared::config::Settings;

use crate::error::SandboxError;
use crate::world::{DemoWorld, MAIN_BOT_TOKEN, WORKER_BOT_TOKEN};

/// The link key's id in tokens.
const LINK_KEY_ID: u8 = 1;
/// Any positive id works against the emulator; Telegram would want my.telegram.org's.
const API_ID: &str = "1";
const API_HASH: &str = "00000000000000000000000000000000";

/// Secrets core and edges share: fresh for every run, or kept with the world in a
/// `--data-dir` (so earlier links keep working).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Secrets {
    cluster_secret: [u8; 32],
    link_key: [u8; 32],
}

impl Secrets {
    pub fn generate() -> Self {
        let mut rng = rand::thread_rng();
        let mut secrets = Secrets {
            cluster_secret: [0; 32],
            link_key: [0; 32],
        };
        rng.fill_bytes(&mut secrets.cluster_secret);
        rng.fill_bytes(&mut secrets.link_key);
        secrets
    }

    fn link_key_setting(&self) -> String {
        format!("{LINK_KEY_ID}:{}", hex(&self.link_key))
    }
}

/// The core's configuration: the emulator's DCs pinned, the one-box edge on `listen` with a
/// short drain so Ctrl-C stops promptly, the QUIC server and the admin endpoint on
/// ephemeral loopback ports (so no fixed port can collide), links made for `public_base`,
/// the demo user as admin (so `/stats` works).
pub fn core_config(
    world: &DemoWorld,
    secrets: &Secrets,
    data_dir: &Path,
    listen: SocketAddr,
    public_base: &str,
) -> Result<Config, SandboxError> {
    let pairs = [
        ("TGCDN_DATA_DIR", data_dir.display().to_string()),
        ("TGCDN_API_ID", API_ID.to_owned()),
        ("TGCDN_API_HASH", API_HASH.to_owned()),
        ("TGCDN_BOT_TOKEN", MAIN_BOT_TOKEN.to_owned()),
        ("TGCDN_WORKER_TOKENS", WORKER_BOT_TOKEN.to_owned()),
        (
            "TGCDN_STORAGE_CHANNEL",
            world.cast.channel.bot_api_id().to_string(),
        ),
        ("TGCDN_QUIC_LISTEN", "127.0.0.1:0".to_owned()),
        ("TGCDN_CLUSTER_SECRET", hex(&secrets.cluster_secret)),
        ("TGCDN_LINK_KEY", secrets.link_key_setting()),
        ("TGCDN_PUBLIC_URL", public_base.to_owned()),
        ("TGCDN_ADMINS", world.cast.user.user_id.to_string()),
        ("TGCDN_DC_ADDRS", world.dc_addrs_setting()),
        ("TGCDN_DC_AUTH_KEY", hex(&world.cast.base_auth_key)),
        ("TGCDN_ADMIN_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "TGCDN_CATALOG_CHANNELS",
            world.cast.catalog_channel.bot_api_id().to_string(),
        ),
        ("TGCDN_WITH_EDGE", "true".to_owned()),
        ("TGCDN_LISTEN", listen.to_string()),
        ("TGCDN_DRAIN_TIMEOUT", "2s".to_owned()),
    ];
    let settings = settings_from(pairs)?;
    Ok(Config::from_settings(&settings)?)
}

/// Where a remote edge finds the core and how it proves itself: what `deploy/` puts in an
/// edge's environment file.
pub struct CoreAddress<'a> {
    pub quic: SocketAddr,
    /// The core certificate's SHA-256, as the core prints it.
    pub fingerprint: &'a str,
}

/// A remote edge's configuration, as `tgcdn-edge` reads it: the core's QUIC address and
/// pinned certificate, the cluster secret and link key the core holds, its own listener
/// and public URL, and a region name the core's fleet view shows.
pub fn edge_config(
    secrets: &Secrets,
    core: &CoreAddress<'_>,
    listen: SocketAddr,
    public_base: &str,
    region: &str,
) -> Result<EdgeConfig, SandboxError> {
    let pairs = [
        ("TGCDN_LISTEN", listen.to_string()),
        // Unused (the sandbox never serves the edge's /metrics), but never a fixed port.
        ("TGCDN_METRICS_LISTEN", "127.0.0.1:0".to_owned()),
        ("TGCDN_PUBLIC_URL", public_base.to_owned()),
        ("TGCDN_REGION", region.to_owned()),
        ("TGCDN_EDGE_ID", format!("sandbox-{region}")),
        ("TGCDN_CORE_ADDR", core.quic.to_string()),
        ("TGCDN_CORE_CERT_SHA256", core.fingerprint.to_owned()),
        ("TGCDN_CLUSTER_SECRET", hex(&secrets.cluster_secret)),
        ("TGCDN_LINK_KEYS", secrets.link_key_setting()),
        ("TGCDN_DRAIN_TIMEOUT", "2s".to_owned()),
    ];
    let settings = settings_from(pairs)?;
    EdgeConfig::from_settings(&settings)
        .map_err(|error| SandboxError::RemoteEdge(format!("configuration: {error}")))
}

fn settings_from<const N: usize>(pairs: [(&str, String); N]) -> Result<Settings, SandboxError> {
    let env = pairs.map(|(name, value)| (name.to_owned(), value));
    Settings::from_env_and_file(env, None)
        .map_err(|error| SandboxError::core("building settings", error))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex(&[0, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }
}
