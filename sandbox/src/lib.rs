//! tgcdn-sandbox: the whole system on one machine with no Telegram account.
//!
//! [`Sandbox::start`] runs, in this process and in this order: a check that the HTTP
//! address is free (so a busy port is the first and only error), the Telegram DC emulator
//! ([`world`]: DCs 1, 2, 4, two bots, a storage channel, a demo user), the demo posts
//! ([`seed`]), then the real core in one-box mode through the same library call
//! `tgcdn-core run --with-edge` makes ([`tgcdn_core::runtime::run_one_box`]) on generated
//! but production-validated configuration ([`settings`]) — the first region's edge —, a
//! second region's edge talking to the core over QUIC as a remote `tgcdn-edge` does
//! ([`remote`]), the demo upload through the bot, and a walk of the film's link through both
//! regions ([`tour`]). [`smoke`] checks it over HTTP ([`client`]); [`banner`] prints how to
//! use it.
//!
//! The binary (`main.rs`) is flags plus this. Nothing here reimplements core or edge
//! behaviour: the only sandbox-specific parts are the emulated world and the seeding.

pub mod banner;
pub mod client;
pub mod config_file;
pub mod error;
pub mod persist;
pub mod remote;
pub mod seed;
pub mod settings;
pub mod smoke;
pub mod tour;
pub mod world;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tgcdn_core::bots::select::Health;
use tgcdn_core::runtime::run_one_box;
use tgcdn_core::runtime::{RunError, Running};
use tokio::net::TcpListener;

pub use crate::error::SandboxError;
use crate::persist::{KeptRun, Layout};
use crate::remote::RemoteEdge;
use crate::seed::{DemoPost, SeedContext, Seeded};
use crate::settings::{CoreAddress, Secrets};
use crate::tour::Tour;
use crate::world::{DemoWorld, NetworkFaults};

/// The default HTTP address of the first region's edge (the core's one-box edge).
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// The default HTTP address of the second region's edge (QUIC to the core).
pub const DEFAULT_REMOTE_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8081);

/// What the command line chose.
#[derive(Debug, Clone)]
pub struct Options {
    /// The first region's edge's HTTP address.
    pub listen: SocketAddr,
    /// The second region's edge's HTTP address.
    pub remote_listen: SocketAddr,
    /// The core's database and the emulated world, kept for the next run; a temporary
    /// directory (removed at exit) when `None`.
    pub data_dir: Option<PathBuf>,
    /// Extra files to serve from disk.
    pub files: Vec<PathBuf>,
    pub faults: NetworkFaults,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: DEFAULT_LISTEN,
            remote_listen: DEFAULT_REMOTE_LISTEN,
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
    remote: RemoteEdge,
    world: DemoWorld,
    seeded: Seeded,
    tour: Tour,
    edge_addr: SocketAddr,
    public_base: String,
    data_dir: PathBuf,
    /// Where the world is kept, with what the next run needs besides it.
    kept: Option<(PathBuf, KeptRun)>,
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
        // Held until the second edge serves on it, so nothing can take it meanwhile.
        let remote_listener = TcpListener::bind(options.remote_listen)
            .await
            .map_err(|source| SandboxError::Listen {
                addr: options.remote_listen,
                flag: "--remote-listen",
                source,
            })?;
        let scratch = tempfile::Builder::new()
            .prefix("tgcdn-sandbox-")
            .tempdir()
            .map_err(SandboxError::TempDir)?;
        let layout =
            Layout::new(options.data_dir.as_deref(), scratch.path()).map_err(|source| {
                SandboxError::DemoFile {
                    path: options.data_dir.clone().unwrap_or_default(),
                    source,
                }
            })?;
        let loaded = match &layout.state {
            Some(path) => persist::load(path).map_err(|source| SandboxError::Kept {
                path: path.clone(),
                source,
            })?,
            None => None,
        };
        let (saved, secrets, kept_posts, kept_upload) = match loaded {
            Some(loaded) => (
                Some(loaded.world),
                loaded.run.secrets,
                Some(loaded.run.posts),
                loaded.run.upload,
            ),
            None => (None, Secrets::generate(), None, None),
        };

        let world = DemoWorld::start(options.faults, saved).await?;
        tracing::info!(
            dcs = %world.dc_addrs_setting(),
            restored = world.restored,
            "emulated Telegram running"
        );
        let data_dir = layout.core.clone();
        let mut core_config =
            settings::core_config(&world, &secrets, &data_dir, edge_addr, &public_base)?;
        let keyring = core_config.keyring.clone();
        let context = SeedContext {
            world: &world,
            keyring: &keyring,
            public_base: &public_base,
            files_dir: &layout.files,
        };
        let files = seed::demo_files(&context, kept_posts.as_deref(), &options.files)?;
        if kept_posts.is_none() {
            // Before the core starts: its back-fill catalogues them, as for a channel tgcdn
            // joins late.
            seed::post_catalog_demo(&context)?;
        }
        let posts: Vec<DemoPost> = files.iter().filter_map(seed::DemoFile::post).collect();

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

        let started_rest = async {
            let remote = start_remote(&core, &secrets, remote_listener).await?;
            // The film the bot stored in an earlier run, if its links still hold: another
            // upload would add another copy to the kept channel on every run.
            let seeded = match kept_upload
                .as_ref()
                .and_then(|kept| seed::reuse_upload(&context, &files, kept))
            {
                Some(reused) => Seeded { files, ..reused },
                None => seed::upload_through_bot(&context, files).await?,
            };
            let tour =
                tour::walk(&seeded.bot_links.download, &public_base, edge_addr, &remote).await?;
            Ok::<_, SandboxError>((remote, seeded, tour))
        };
        let (remote, seeded, tour) = match started_rest.await {
            Ok(started) => started,
            Err(error) => {
                let _ = core.shutdown().await;
                return Err(error);
            }
        };
        let kept = layout.state.map(|path| {
            let upload = seeded.kept_upload(&public_base);
            let run = KeptRun {
                secrets,
                posts,
                upload: Some(upload),
            };
            (path, run)
        });
        if let Some((path, run)) = &kept {
            // Kept now too, not only at a clean stop: the core's database already holds
            // this run's messages.
            persist::save(path, world.save(), run).map_err(|source| SandboxError::Kept {
                path: path.clone(),
                source,
            })?;
        }
        Ok(Sandbox {
            core,
            remote,
            world,
            seeded,
            tour,
            edge_addr,
            public_base,
            data_dir,
            kept,
            startup: started.elapsed(),
            _scratch: scratch,
        })
    }

    pub fn seeded(&self) -> &Seeded {
        &self.seeded
    }

    /// Where the first region's edge accepts HTTP.
    pub fn edge_addr(&self) -> SocketAddr {
        self.edge_addr
    }

    /// The second region's edge.
    pub fn remote(&self) -> &RemoteEdge {
        &self.remote
    }

    /// The film's link walked through both regions at start.
    pub fn tour(&self) -> &Tour {
        &self.tour
    }

    /// The core's QUIC address, which the second region's edge connects to.
    pub fn quic_addr(&self) -> Option<SocketAddr> {
        self.core.quic_addr()
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

    /// The second region's edge drains first, as edges do before their core is upgraded;
    /// then the core stops as `tgcdn-core run` does on SIGTERM (front-end, then the edge
    /// drains, then the QUIC server, then the database is flushed), then the emulator stops.
    /// With `--data-dir`, the world is kept as the run leaves it, for the next run.
    pub async fn shutdown(self) -> Result<(), SandboxError> {
        self.remote.shutdown().await;
        let result = self.core.shutdown().await.map_err(SandboxError::Run);
        let kept = match &self.kept {
            Some((path, run)) => {
                persist::save(path, self.world.save(), run).map_err(|source| SandboxError::Kept {
                    path: path.clone(),
                    source,
                })
            }
            None => Ok(()),
        };
        drop(self.world);
        result.and(kept)
    }
}

/// The second region's edge, pointed at the core's QUIC server and pinning its certificate.
async fn start_remote(
    core: &Running,
    secrets: &Secrets,
    listener: TcpListener,
) -> Result<RemoteEdge, SandboxError> {
    let (Some(quic), Some(fingerprint)) = (core.quic_addr(), core.fingerprint()) else {
        return Err(SandboxError::RemoteEdge(
            "the core runs without its QUIC server".to_owned(),
        ));
    };
    let addr = listener
        .local_addr()
        .map_err(|error| SandboxError::RemoteEdge(format!("listener: {error}")))?;
    let core = CoreAddress { quic, fingerprint };
    RemoteEdge::start(listener, public_base(addr), secrets, &core).await
}

/// Checks that `listen` can be bound and returns the concrete address (port 0 resolved),
/// which the links need before the core starts. The probe is released at once and the core
/// binds the same address again; should something take it in between, [`run_error`] gives
/// the same one-line error.
async fn free_addr(listen: SocketAddr) -> Result<SocketAddr, SandboxError> {
    let listen_error = |source| SandboxError::Listen {
        addr: listen,
        flag: "--listen",
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
            flag: "--listen",
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
