//! A Telegram DC emulator that the real grammers 0.11 client talks to over loopback TCP,
//! so tgcdn's Telegram code is tested and benchmarked offline.
//!
//! Start one with [`Emulator::builder`]: each emulated DC is a listener on its own
//! `127.0.0.1` port. Authorisation keys are *provisioned*, not negotiated: Telegram's DH
//! handshake needs Telegram's RSA private keys, so [`EmulatorHandle::provision_auth_key`]
//! makes a 256-byte key every emulated DC accepts, and the client is handed a session
//! whose DC options carry the emulator's addresses and that key
//! ([`EmulatorHandle::session_for`]); grammers then skips DH (`connect_with_auth`).
//! Sign-in state is per (DC, key), as in Telegram.
//!
//! Tests script the world through [`World`] (bots, users, channels, documents, photos,
//! messages), inject faults through [`Faults`], and assert on [`CountersSnapshot`].
//! Layers: `transport` (framing) → `crypto` (MTProto 2.0, server side) → `session`
//! (containers, salts, msg ids) → `api` (methods) over `world`; `server` drives the I/O.
//! This crate must not depend on tgcdn-core or tgcdn-edge.

mod api;
mod clock;
pub mod content;
mod counters;
pub mod crypto;
mod faults;
mod server;
pub mod session;
pub mod trace;
pub mod transport;
mod world;

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use grammers_session::SessionData;
use grammers_session::storages::MemorySession;
use grammers_session::types::DcOption;
use rand::RngCore;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use api::files::{answer_body_len, check_part};
pub use content::Content;
pub use counters::{Counters, CountersSnapshot, GetMessagesCall};
pub use faults::{Faults, Latency, Pacer, Scope};
pub use trace::{RequestTrace, round_trips};
pub use world::{
    BotInfo, ChannelInfo, DocumentInfo, Peer, PhotoInfo, PhotoSizeInfo, PhotoSizeSpec, SentMessage,
    UserInfo, World, WorldSnapshot,
};

use clock::Clock;
use crypto::ServerKey;
use server::Shared;

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("binding the listener for DC {dc} failed: {source}")]
    Bind { dc: i32, source: std::io::Error },
    #[error("home DC {0} is not one of the emulated DCs")]
    UnknownHomeDc(i32),
    #[error("no DCs to emulate")]
    NoDcs,
}

/// Entry point: `Emulator::builder().dcs(&[1, 2, 4]).home_dc(2).start().await?`.
pub struct Emulator;

impl Emulator {
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder {
            dcs: vec![1, 2, 4],
            home_dc: 2,
            grammers_safe: true,
            restore: None,
        }
    }
}

pub struct EmulatorBuilder {
    dcs: Vec<i32>,
    home_dc: i32,
    grammers_safe: bool,
    restore: Option<world::WorldSnapshot>,
}

impl EmulatorBuilder {
    /// Start with this world ([`World::snapshot`] of an earlier emulator) instead of an empty
    /// one: the same accounts, channels, messages, documents and signed-in keys, so a client
    /// that kept its session carries on. Auth keys themselves are registered again by the
    /// caller ([`EmulatorHandle::register_auth_key`]).
    pub fn restore(mut self, snapshot: world::WorldSnapshot) -> Self {
        self.restore = Some(snapshot);
        self
    }

    /// The DC ids to emulate (default 1, 2, 4).
    pub fn dcs(mut self, dcs: &[i32]) -> Self {
        self.dcs = dcs.to_vec();
        self.dcs.dedup();
        self
    }

    /// The DC `session_for` and tests treat as home (default 2).
    pub fn home_dc(mut self, dc: i32) -> Self {
        self.home_dc = dc;
        self
    }

    /// Serve message bodies ≥ 1 044 448 bytes (a 1 MiB `getFile` part). grammers 0.11
    /// panics on those, so by default such answers are refused with 400
    /// `EMULATOR_ANSWER_TOO_BIG_FOR_GRAMMERS`; enable this for other clients.
    pub fn allow_large_answers(mut self, allow: bool) -> Self {
        self.grammers_safe = !allow;
        self
    }

    /// Binds one loopback listener per DC and starts serving (call inside a tokio runtime).
    pub async fn start(self) -> Result<EmulatorHandle, EmulatorError> {
        if self.dcs.is_empty() {
            return Err(EmulatorError::NoDcs);
        }
        if !self.dcs.contains(&self.home_dc) {
            return Err(EmulatorError::UnknownHomeDc(self.home_dc));
        }
        let mut listeners = Vec::new();
        for &dc in &self.dcs {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .map_err(|source| EmulatorError::Bind { dc, source })?;
            let addr = listener
                .local_addr()
                .map_err(|source| EmulatorError::Bind { dc, source })?;
            listeners.push((dc, addr, listener));
        }
        let addrs: Vec<(i32, SocketAddr)> = listeners.iter().map(|(dc, a, _)| (*dc, *a)).collect();
        let clock = Clock::default();
        let world = match self.restore {
            Some(snapshot) => World::restore(snapshot, clock.clone()),
            None => World::new(rand::thread_rng().next_u64(), clock.clone()),
        };
        let secret = world.secret();
        let shared = Arc::new(Shared {
            world,
            faults: Faults::with_clock(clock.clone()),
            clock,
            counters: Counters::default(),
            tracer: trace::Tracer::default(),
            keys: RwLock::new(HashMap::new()),
            dc_options: RwLock::new(addrs.clone()),
            salts: session::SaltSchedule::new(secret.rotate_left(17)),
            grammers_safe: self.grammers_safe,
            next_conn: AtomicU64::new(1),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let tasks = listeners
            .into_iter()
            .map(|(dc, _, listener)| {
                tokio::spawn(server::serve_dc(
                    listener,
                    dc,
                    shared.clone(),
                    shutdown_rx.clone(),
                ))
            })
            .collect();
        Ok(EmulatorHandle {
            shared,
            addrs,
            home_dc: self.home_dc,
            shutdown,
            tasks,
        })
    }
}

/// A running emulator. Dropping it stops the listeners and closes every connection.
pub struct EmulatorHandle {
    shared: Arc<Shared>,
    addrs: Vec<(i32, SocketAddr)>,
    home_dc: i32,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl EmulatorHandle {
    /// The loopback address of an emulated DC.
    ///
    /// # Panics
    /// If `dc` is not emulated: that is a mistake in the test, not an input to handle.
    pub fn dc_addr(&self, dc: i32) -> SocketAddr {
        match self.addrs.iter().find(|(id, _)| *id == dc) {
            Some((_, addr)) => *addr,
            None => panic!("DC {dc} is not emulated (emulated: {:?})", self.addrs),
        }
    }

    /// Every emulated DC with its address.
    pub fn dc_options(&self) -> Vec<(i32, SocketAddr)> {
        self.addrs.clone()
    }

    pub fn home_dc(&self) -> i32 {
        self.home_dc
    }

    /// A fresh random 256-byte auth key that every emulated DC accepts.
    pub fn provision_auth_key(&self) -> [u8; 256] {
        let mut key = [0u8; 256];
        rand::thread_rng().fill_bytes(&mut key);
        self.register_auth_key(key);
        key
    }

    /// Makes an existing key (e.g. one a restarted core persisted) valid on every DC.
    pub fn register_auth_key(&self, key: [u8; 256]) {
        let key = ServerKey::new(key);
        self.shared
            .keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.id, key);
    }

    /// A grammers session whose DC options are exactly the emulated DCs, each with its
    /// loopback address and `key`, and `home_dc` as home. Non-emulated DCs are removed so
    /// nothing can reach a real Telegram address.
    pub fn session_for(&self, key: [u8; 256], home_dc: i32) -> MemorySession {
        let mut data = SessionData {
            home_dc,
            ..SessionData::default()
        };
        data.dc_options.clear();
        for &(id, addr) in &self.addrs {
            let ipv4 = match addr {
                SocketAddr::V4(v4) => v4,
                SocketAddr::V6(_) => SocketAddrV4::new(Ipv4Addr::LOCALHOST, addr.port()),
            };
            let ipv6 = SocketAddrV6::new(Ipv6Addr::LOCALHOST, addr.port(), 0, 0);
            data.dc_options.insert(
                id,
                DcOption {
                    id,
                    ipv4,
                    ipv6,
                    auth_key: Some(key),
                },
            );
        }
        MemorySession::from(data)
    }

    /// The scripted world (cheap clone).
    pub fn world(&self) -> World {
        self.shared.world.clone()
    }

    /// The fault-injection knobs (cheap clone).
    pub fn faults(&self) -> Faults {
        self.shared.faults.clone()
    }

    /// Moves the emulator's clock forward by `by` at once: file references and flood waits
    /// age as if that much time had passed, so TTL tests need not wait in real time.
    pub fn advance_clock(&self, by: std::time::Duration) {
        self.shared.clock.advance(by);
    }

    /// A snapshot of every counter.
    pub fn counters(&self) -> CountersSnapshot {
        self.shared.counters.snapshot()
    }

    pub fn reset_counters(&self) {
        self.shared.counters.reset();
    }

    /// Starts (or restarts, forgetting the past) recording every API request's arrival and
    /// answer times; see [`trace`].
    pub fn start_trace(&self) {
        self.shared.tracer.start();
    }

    /// The requests recorded since [`Self::start_trace`], in arrival order.
    pub fn trace(&self) -> Vec<RequestTrace> {
        self.shared.tracer.entries()
    }

    /// The bytes `[offset, offset + len)` of a document, or of a photo size by its
    /// [`PhotoSizeInfo::content_id`], clipped to its size (empty for an unknown id or an
    /// unreadable file).
    pub fn content_slice(&self, doc_id: i64, offset: u64, len: usize) -> Vec<u8> {
        let (content, size) = {
            let s = self.shared.world.lock();
            let photo_size = || {
                s.photos.values().find_map(|p| {
                    let at = p.info.sizes.iter().position(|z| z.content_id == doc_id)?;
                    Some((p.sizes.get(at)?.content.clone(), p.info.sizes[at].size))
                })
            };
            match s.documents.get(&doc_id) {
                Some(d) => (d.content.clone(), d.info.size),
                None => match photo_size() {
                    Some(found) => found,
                    None => return Vec::new(),
                },
            }
        };
        let len = size.saturating_sub(offset).min(len as u64) as usize;
        let mut out = vec![0u8; len];
        match content::read_into(&content, doc_id, offset, &mut out) {
            Ok(()) => out,
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}
