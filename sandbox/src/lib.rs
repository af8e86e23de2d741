//! tgcdn-sandbox: the whole system on one machine with no Telegram account.
//!
//! [`Sandbox::start`] runs, in this process and in this order: the edge's HTTP listener
//! (bound first, so a busy port is the first and only error), the Telegram DC emulator
//! ([`world`]: DCs 1, 2, 4, two bots, a storage channel, a demo user), the real core
//! ([`core_node`]) on generated but production-validated configuration ([`settings`]),
//! the real edge ([`edge_node`]) connected to it over QUIC on loopback, and the demo
//! content ([`seed`]). [`smoke`] checks it over HTTP; [`banner`] prints how to use it.
//!
//! The binary (`main.rs`) is flags plus this. Nothing here reimplements core or edge
//! behaviour: the only sandbox-specific parts are the emulated world and the seeding.

pub mod banner;
pub mod core_node;
pub mod edge_node;
pub mod error;
pub mod seed;
pub mod settings;
pub mod smoke;
pub mod world;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use crate::core_node::CoreNode;
use crate::edge_node::EdgeNode;
pub use crate::error::SandboxError;
use crate::seed::{SeedContext, Seeded};
use crate::settings::Secrets;
use crate::world::{DemoWorld, NetworkFaults};

/// The default HTTP address of the edge.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// How long each part may take to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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
    edge: EdgeNode,
    core: CoreNode,
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
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| SandboxError::Listen {
                    addr: options.listen,
                    source,
                })?;
        let edge_addr = listener
            .local_addr()
            .map_err(|source| SandboxError::Listen {
                addr: options.listen,
                source,
            })?;
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
        let core_config = settings::core_config(&world, &secrets, &data_dir, &public_base)?;
        let core = CoreNode::start(&core_config).await?;
        tracing::info!(quic = %core.quic_addr(), "core running");
        let edge_config = settings::edge_config(
            &secrets,
            edge_addr,
            &public_base,
            core.quic_addr(),
            core.fingerprint(),
        )?;
        let edge = EdgeNode::start(edge_config, listener).await?;
        tracing::info!(listen = %edge_addr, "edge running");

        let seeded = seed::seed(
            &SeedContext {
                world: &world,
                store: core.store(),
                keyring: &core_config.keyring,
                public_base: &public_base,
                scratch: scratch.path(),
            },
            &options.files,
        )
        .await?;
        Ok(Sandbox {
            edge,
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

    /// The edge drains and closes its QUIC link, the core stops its front-end and QUIC
    /// server and flushes its database, then the emulator stops.
    pub async fn shutdown(self) -> Result<(), SandboxError> {
        self.edge.shutdown(SHUTDOWN_GRACE).await;
        let result = self.core.shutdown(SHUTDOWN_GRACE).await;
        drop(self.world);
        result
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
