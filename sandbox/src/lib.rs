//! tgcdn-sandbox: the whole system on one machine with no Telegram account.
//!
//! [`Sandbox::start`] runs, in this process and in this order: a check that the HTTP
//! address is free (so a busy port is the first and only error), the Telegram DC emulator
//! ([`world`]: DCs 1, 2, 4, two bots, a storage channel, a demo user), the demo posts
//! ([`seed`]), then the real core in one-box mode through the same library call
//! `tgcdn-core run --with-edge` makes ([`tgcdn_core::runtime::run_one_box`]) on generated
//! but production-validated configuration ([`settings`]), and finally the demo upload
//! through the bot. [`smoke`] checks it over HTTP; [`banner`] prints how to use it.
//!
//! The binary (`main.rs`) is flags plus this. Nothing here reimplements core or edge
//! behaviour: the only sandbox-specific parts are the emulated world and the seeding.

pub mod banner;
pub mod error;
pub mod seed;
pub mod settings;
pub mod smoke;
pub mod world;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tgcdn_core::bots::select::Health;
use tgcdn_core::runtime::run_one_box;
use tgcdn_core::runtime::{RunError, Running};
use tokio::net::TcpListener;

pub use crate::error::SandboxError;
use crate::seed::{SeedContext, Seeded};
use crate::settings::Secrets;
use crate::world::{DemoWorld, NetworkFaults};

/// The default HTTP address of the edge.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// What the command line chose.
#[derive(Debug, Clone)]
pub struct Options {
    /// The edge's HTTP address.
    pub listen: SocketAddr,
    /// The core's database; a temporary directory (removed at exit) when `None`.
    pub data_dir: Option<PathBuf>,
    /// Extra files to serve from disk.
    pub files: Vec<PathBuf>,
    pub faults: NetworkFaults,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: DEFAULT_LISTEN,
            data_dir: None,
            files: Vec::new(),
            faults: NetworkFaults::default(),
        }
    }
}

/// The running sandbox. [`Sandbox::shutdown`] stops it cleanly; dropping it stops the
/// emulator and aborts the rest.
pub struct Sandbox {
    core: Running,
    world: DemoWorld,
    seeded: Seeded,
    edge_addr: SocketAddr,
    public_base: String,
    data_dir: PathBuf,
    startup: Duration,
    /// Holds the generated text file, and the database when no `--data-dir` was given;
    /// removed on drop.
    _scratch: tempfile::TempDir,
}

impl Sandbox {
    pub async fn start(options: Options) -> Result<Sandbox, SandboxError> {
        let started = Instant::now();
        for file in &options.files {
            seed::check_file(file)?;
        }
        let edge_addr = free_addr(options.listen).await?;
        let public_base = public_base(edge_addr);
        let scratch = tempfile::Builder::new()
            .prefix("tgcdn-sandbox-")
            .tempdir()
            .map_err(SandboxError::TempDir)?;
        let data_dir = options
            .data_dir
            .clone()
            .unwrap_or_else(|| scratch.path().join("core-data"));

        let world = DemoWorld::start(options.faults).await?;
        tracing::info!(dcs = %world.dc_addrs_setting(), "emulated Telegram running");
        let secrets = Secrets::generate();
        let mut core_config =
            settings::core_config(&world, &secrets, &data_dir, edge_addr, &public_base)?;
        let keyring = core_config.keyring.clone();
        let context = SeedContext {
            world: &world,
            keyring: &keyring,
            public_base: &public_base,
            scratch: scratch.path(),
        };
        let files = seed::post_demo_files(&context, &options.files)?;
        // Before the core starts: its back-fill catalogues them, as for a channel tgcdn
        // joins late.
        seed::post_catalog_demo(&context)?;
        let copy = seed::bot_copy_of(&files)
            .ok_or_else(|| SandboxError::core("posting the demo files", "nothing posted"))?;
        let mut stale: Vec<_> = files.iter().map(|file| file.file).collect();
        stale.push(copy);
        seed::forget_stale_meta(&data_dir, &stale).await?;

        // `with_edge` is set, so the configuration carries the embedded edge.
        let edge = core_config
            .one_box
            .take()
            .ok_or_else(|| SandboxError::core("configuring the edge", "no one-box edge"))?;
        let storage_channel = core_config.storage_channel;
        let core = run_one_box(core_config, edge)
            .await
            .map_err(|error| run_error(error, options.listen))?;
        if let Err(error) = every_bot_serves(&core, storage_channel) {
            // The start error is the one worth reporting; a failed flush only adds noise.
            let _ = core.shutdown().await;
            return Err(error);
        }
        tracing::info!(
            listen = %edge_addr,
            quic = ?core.quic_addr(),
            admin = %core.admin_addr(),
            "core running with its one-box edge"
        );

        let seeded = match seed::upload_through_bot(&context, files, copy).await {
            Ok(seeded) => seeded,
            Err(error) => {
                let _ = core.shutdown().await;
                return Err(error);
            }
        };
        Ok(Sandbox {
            core,
            world,
            seeded,
            edge_addr,
            public_base,
            data_dir,
            startup: started.elapsed(),
            _scratch: scratch,
        })
    }

    pub fn seeded(&self) -> &Seeded {
        &self.seeded
    }

    /// Where the edge accepts HTTP.
    pub fn edge_addr(&self) -> SocketAddr {
        self.edge_addr
    }

    /// The base URL links are made with.
    pub fn public_base(&self) -> &str {
        &self.public_base
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// From the call to [`Sandbox::start`] until everything was up and seeded.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// The bytes `[offset, offset + len)` of a seeded document, as Telegram holds them.
    pub fn content(&self, doc_id: i64, offset: u64, len: usize) -> Vec<u8> {
        self.world.emulator.content_slice(doc_id, offset, len)
    }

    /// The core stops as `tgcdn-core run` does on SIGTERM (front-end, then the edge drains,
    /// then the QUIC server, then the database is flushed), then the emulator stops.
    pub async fn shutdown(self) -> Result<(), SandboxError> {
        let result = self.core.shutdown().await.map_err(SandboxError::Run);
        drop(self.world);
        result
    }
}

/// Checks that `listen` can be bound and returns the concrete address (port 0 resolved),
/// which the links need before the core starts. The probe is released at once and the core
/// binds the same address again; should something take it in between, [`run_error`] gives
/// the same one-line error.
async fn free_addr(listen: SocketAddr) -> Result<SocketAddr, SandboxError> {
    let listen_error = |source| SandboxError::Listen {
        addr: listen,
        source,
    };
    let probe = TcpListener::bind(listen).await.map_err(listen_error)?;
    probe.local_addr().map_err(listen_error)
}

/// A busy HTTP port is the `--listen` error; anything else is the core's.
fn run_error(error: RunError, listen: SocketAddr) -> SandboxError {
    match error {
        RunError::Listen {
            what: "viewers (one-box edge)",
            source,
            ..
        } => SandboxError::Listen {
            addr: listen,
            source,
        },
        other => SandboxError::Run(other),
    }
}

/// Unlike `tgcdn-core run`, an unusable bot is an error: in the sandbox every bot is
/// scripted to work, so one that cannot read the storage channel is a bug worth stopping
/// for. A bot kept out of some other channel (a catalogue channel it is not admin of) still
/// serves links.
fn every_bot_serves(core: &Running, storage_channel: i64) -> Result<(), SandboxError> {
    let report = core.pool().report(Instant::now());
    match report.iter().find(|bot| !bot.serves(storage_channel)) {
        None => Ok(()),
        Some(bot) => {
            let reason = match &bot.health {
                Health::Unhealthy { reason } => reason.clone(),
                Health::Healthy => "cannot read the storage channel".to_owned(),
            };
            Err(SandboxError::Bot {
                bot_id: bot.id,
                reason,
            })
        }
    }
}

/// The base URL of an edge listening on `addr`: a wildcard address is reached through
/// loopback of the same family.
fn public_base(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_addresses_are_linked_through_loopback() {
        assert_eq!(
            public_base("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            public_base("[::]:9000".parse().unwrap()),
            "http://[::1]:9000"
        );
        assert_eq!(
            public_base("192.168.1.5:8080".parse().unwrap()),
            "http://192.168.1.5:8080"
        );
    }
}
