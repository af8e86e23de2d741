//! Several cores and several edges on one emulator world, as a fleet runs them: every core
//! has its own main bot and worker bot (all admins of the one storage channel), its own data
//! directory, QUIC address and certificate, and the same cluster secret and link key; every
//! edge knows all cores through `TGCDN_CORES` (names `core-0`, `core-1`…) and pins each
//! core's certificate.
//!
//! The multi-core twin of [`crate::stack`], whose helpers it uses: same child processes
//! (the production `main.rs` files), same bounded waits, same clean-up (children die with the
//! cluster or with the process), same loopback-only rule. Used by the e2e `cluster` module.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use tgcdn_shared::FileRef;
use tgcdn_shared::rendezvous;
use tgcdn_shared::token::{Keyring, LinkKey};
use tgemu::{BotInfo, ChannelInfo, Content, Emulator, EmulatorHandle, Peer, UserInfo, World};

use crate::client;
use crate::stack::{
    ADMIN_PREFIX, CLUSTER_SECRET_HEX, FINGERPRINT_PREFIX, LINK_KEY_ID, LINK_SECRET_HEX,
    LogsOnPanic, PostedFile, StackError, UserUpload, binaries, extract_link, free_tcp_addr,
    free_udp_addr, hex, hex_decode, io_error, lock, log_tails, path_text, percent_encode, spawn,
    wait_for, with_logs,
};

/// Most cores a cluster starts (each brings two bots).
pub const MAX_CORES: usize = 4;
/// Most edges a cluster starts.
pub const MAX_EDGES: usize = 4;

/// What a cluster is made of.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub cores: usize,
    pub edges: usize,
    /// Extra `TGCDN_*` settings for every core (they win over the cluster's).
    pub core_env: Vec<(String, String)>,
    /// Extra `TGCDN_*` settings for every edge (they win over the cluster's).
    pub edge_env: Vec<(String, String)>,
    /// The edges' `TGCDN_CORE_TIMEOUT`: how soon a killed core's requests fail over.
    pub core_timeout: String,
    /// `RUST_LOG` of every child.
    pub log_filter: String,
    /// Bound on each child becoming ready.
    pub startup_timeout: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            cores: 2,
            edges: 2,
            core_env: Vec::new(),
            edge_env: Vec::new(),
            core_timeout: "3s".to_owned(),
            log_filter: "info,grammers=warn,quinn=warn,sled=warn".to_owned(),
            startup_timeout: Duration::from_secs(60),
        }
    }
}

struct CoreSlot {
    name: String,
    main_bot: BotInfo,
    worker: BotInfo,
    quic_addr: SocketAddr,
    data_dir: PathBuf,
    fingerprint: String,
    child: Mutex<Option<Child>>,
    starts: Mutex<u32>,
}

struct EdgeSlot {
    addr: SocketAddr,
    metrics_addr: SocketAddr,
    child: Mutex<Option<Child>>,
    /// Starts so far; each start logs to its own file.
    starts: Mutex<u32>,
}

/// Running cores, edges and the emulator. See the module doc.
pub struct Cluster {
    options: ClusterOptions,
    // Dropped by hand in `Drop`, in order: children, emulator, runtime.
    runtime: Option<tokio::runtime::Runtime>,
    emu: Option<EmulatorHandle>,
    world: World,
    channel: ChannelInfo,
    user: UserInfo,
    keyring: Keyring,
    dir: tempfile::TempDir,
    base_auth_key: [u8; 256],
    cores: Vec<CoreSlot>,
    edges: Vec<EdgeSlot>,
}

impl Cluster {
    /// Brings everything up; returns once every edge is ready and sees every core up.
    pub fn start(options: ClusterOptions) -> Result<Cluster, StackError> {
        if !(1..=MAX_CORES).contains(&options.cores) || !(1..=MAX_EDGES).contains(&options.edges) {
            return Err(StackError::Unexpected(format!(
                "1..={MAX_CORES} cores and 1..={MAX_EDGES} edges"
            )));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tgemu")
            .enable_all()
            .build()
            .map_err(io_error("building the emulator's runtime"))?;
        // `block_on` panics on a thread already inside a runtime; a scoped thread is never.
        let emu = std::thread::scope(|scope| {
            scope
                .spawn(|| runtime.block_on(Emulator::builder().dcs(&[1, 2, 4]).home_dc(2).start()))
                .join()
        })
        .map_err(|_| StackError::Unexpected("the emulator start panicked".to_owned()))??;

        let world = emu.world();
        let channel = world.create_channel("cluster storage");
        let user = world.register_user("cluster viewer");
        let base_auth_key = emu.provision_auth_key();
        let dir = tempfile::Builder::new()
            .prefix("tgcdn-cluster-")
            .tempdir()
            .map_err(io_error("creating the cluster's directory"))?;
        let mut cores = Vec::with_capacity(options.cores);
        for index in 0..options.cores {
            // Bot ids from the tokens: distinct from the single stack's 700000x.
            let main_bot = world.register_bot(
                &format!("71000{index}1:cluster-main-{index}"),
                &format!("cluster_cdn_{index}_bot"),
            );
            let worker = world.register_bot(
                &format!("71000{index}2:cluster-worker-{index}"),
                &format!("cluster_worker_{index}"),
            );
            for bot in [&main_bot, &worker] {
                world.add_channel_member(channel.channel_id, bot.user_id, true);
                let bot_id = tgcdn_core::telegram::bot_id_from_token(&bot.token)
                    .map_err(|e| StackError::Unexpected(format!("bot token {}: {e}", bot.token)))?;
                emu.register_auth_key(tgcdn_core::config::bot_auth_key(&base_auth_key, bot_id));
            }
            let data_dir = dir.path().join(format!("core-{index}-data"));
            std::fs::create_dir(&data_dir).map_err(io_error("creating a core's data dir"))?;
            cores.push(CoreSlot {
                name: format!("core-{index}"),
                main_bot,
                worker,
                quic_addr: free_udp_addr()?,
                data_dir,
                fingerprint: String::new(),
                child: Mutex::new(None),
                starts: Mutex::new(0),
            });
        }
        let edges = (0..options.edges)
            .map(|_| {
                Ok(EdgeSlot {
                    addr: free_tcp_addr()?,
                    metrics_addr: free_tcp_addr()?,
                    child: Mutex::new(None),
                    starts: Mutex::new(0),
                })
            })
            .collect::<Result<Vec<_>, StackError>>()?;
        let link_key = LinkKey::new(LINK_KEY_ID, hex_decode(LINK_SECRET_HEX))
            .map_err(|e| StackError::Unexpected(format!("link key: {e}")))?;
        let keyring = Keyring::new(link_key, Vec::new())
            .map_err(|e| StackError::Unexpected(format!("keyring: {e}")))?;

        let mut cluster = Cluster {
            options,
            runtime: Some(runtime),
            emu: Some(emu),
            world,
            channel,
            user,
            keyring,
            dir,
            base_auth_key,
            cores,
            edges,
        };
        for index in 0..cluster.cores.len() {
            let fingerprint = cluster.spawn_core(index)?;
            cluster.cores[index].fingerprint = fingerprint;
        }
        for index in 0..cluster.edges.len() {
            cluster.spawn_edge(index)?;
        }
        for index in 0..cluster.edges.len() {
            for core in 0..cluster.cores.len() {
                cluster.wait_core_up(index, core, true)?;
            }
        }
        Ok(cluster)
    }

    /// The emulator (faults, counters, content).
    pub fn emulator(&self) -> &EmulatorHandle {
        self.emu
            .as_ref()
            .expect("the emulator lives as long as the cluster")
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    pub fn channel(&self) -> ChannelInfo {
        self.channel
    }

    /// The keys links are signed with (the same ones every core and edge hold).
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The cores' names, as the edges rank them.
    pub fn core_names(&self) -> Vec<String> {
        self.cores.iter().map(|core| core.name.clone()).collect()
    }

    /// The core every edge sends `file` to while all cores are up.
    pub fn owner(&self, file: FileRef) -> usize {
        rendezvous::ranking(&self.core_names(), file)[0]
    }

    /// Edge `edge`'s `http://127.0.0.1:port`, no trailing slash.
    pub fn edge_url(&self, edge: usize) -> String {
        format!("http://{}", self.edges[edge].addr)
    }

    /// A link to `file` on edge `edge`, signed like the cores sign them.
    pub fn link_for(&self, edge: usize, file: FileRef, name: &str) -> String {
        format!(
            "{}/dl/{}/{}",
            self.edge_url(edge),
            self.keyring.sign(file, None),
            percent_encode(name)
        )
    }

    /// Posts a document to the storage channel; the link is edge 0's.
    pub fn post_file(&self, content: Content, name: &str, mime: &str, dc: i32) -> PostedFile {
        let doc = self.world.add_document(content, name, mime, dc);
        let msg_id = self
            .world
            .post_document(self.channel.channel_id, doc.id, "");
        let file = FileRef {
            chat_id: self.channel.bot_api_id(),
            msg_id,
        };
        PostedFile {
            doc,
            file,
            name: name.to_owned(),
            url: self.link_for(0, file, name),
        }
    }

    /// The user sends a document to core `core`'s main bot; waits (bounded) for the reply
    /// and returns the link in it (on edge 0, every core's public URL).
    pub fn user_uploads(
        &self,
        core: usize,
        content: Content,
        name: &str,
        timeout: Duration,
    ) -> Result<UserUpload, StackError> {
        let bot = self.cores[core].main_bot.user_id;
        let doc = self
            .world
            .add_document(content, name, "application/octet-stream", 2);
        let before = self.world.sent_by(bot).len();
        self.world
            .user_sends_document(self.user.user_id, bot, doc.id, "");
        let prefix = format!("{}/dl/", self.edge_url(0));
        let link = wait_for(&format!("core {core}'s link for {name}"), timeout, || {
            Ok(self
                .world
                .sent_by(bot)
                .iter()
                .skip(before)
                .filter(|m| m.peer == Peer::User(self.user.user_id))
                .find_map(|m| extract_link(&m.text, &prefix)))
        })
        .map_err(|e| self.with_logs(e))?;
        Ok(UserUpload { doc, link })
    }

    /// The user ids of core `core`'s bots (main, then worker), for the emulator's faults.
    pub fn core_bot_ids(&self, core: usize) -> [i64; 2] {
        let slot = &self.cores[core];
        [slot.main_bot.user_id, slot.worker.user_id]
    }

    /// SIGKILLs edge `edge` and starts it again on the same addresses (a fresh process: no
    /// cache, no revocation list); returns once it is ready and sees every core up.
    pub fn restart_edge(&self, edge: usize) -> Result<(), StackError> {
        if let Some(mut child) = lock(&self.edges[edge].child).take() {
            child.kill().map_err(io_error("killing an edge"))?;
            child.wait().map_err(io_error("reaping an edge"))?;
        }
        self.spawn_edge(edge)?;
        for core in 0..self.cores.len() {
            self.wait_core_up(edge, core, true)?;
        }
        Ok(())
    }

    /// SIGKILLs core `core` (no shutdown path runs) and reaps it.
    pub fn kill_core(&self, core: usize) -> Result<(), StackError> {
        if let Some(mut child) = lock(&self.cores[core].child).take() {
            child.kill().map_err(io_error("killing a core"))?;
            child.wait().map_err(io_error("reaping a core"))?;
        }
        Ok(())
    }

    /// Starts core `core` again on its data directory and QUIC address; it presents the
    /// same certificate, which the edges still pin.
    pub fn restart_core(&self, core: usize) -> Result<(), StackError> {
        self.kill_core(core)?;
        let fingerprint = self.spawn_core(core)?;
        if fingerprint != self.cores[core].fingerprint {
            return Err(StackError::Unexpected(format!(
                "core {core} came back with certificate {fingerprint}"
            )));
        }
        Ok(())
    }

    /// Core `core`'s admin endpoint, from the line it printed at its latest start.
    pub fn core_admin_url(&self, core: usize) -> Result<String, StackError> {
        let output = std::fs::read_to_string(self.core_log(core))
            .map_err(io_error("reading a core's log"))?;
        output
            .lines()
            .find_map(|line| line.strip_prefix(ADMIN_PREFIX))
            .map(|url| url.trim().to_owned())
            .ok_or_else(|| StackError::Unexpected(format!("core {core} printed no admin endpoint")))
    }

    /// The core binary as an operator runs its commands (`tgcdn-core link …`) against core
    /// `core`: `--admin` and its URL are appended.
    pub fn core_command(&self, core: usize, args: &[&str]) -> Result<Command, StackError> {
        let admin = self.core_admin_url(core)?;
        let mut command = Command::new(binaries().core);
        command
            .args(args)
            .args(["--admin", &admin])
            .env_clear()
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        Ok(command)
    }

    /// Edge `edge`'s `/metrics` text.
    pub fn edge_metrics(&self, edge: usize) -> Result<String, StackError> {
        let url = format!("http://{}/metrics", self.edges[edge].metrics_addr);
        let response = client::get(&url, &[]).map_err(io_error("GET /metrics"))?;
        Ok(String::from_utf8_lossy(&response.body).into_owned())
    }

    /// A counter or gauge of edge `edge` labelled with core `core`'s name (0 if absent),
    /// e.g. `core_metric(0, "tgcdn_edge_core_requests_total", 1)`.
    pub fn core_metric(&self, edge: usize, metric: &str, core: usize) -> Result<u64, StackError> {
        let needle = format!("{metric}{{core=\"{}\"}} ", self.cores[core].name);
        Ok(self
            .edge_metrics(edge)?
            .lines()
            .find_map(|line| line.strip_prefix(&needle))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0))
    }

    /// Waits (bounded by the startup timeout) until edge `edge` sees core `core` up or down.
    pub fn wait_core_up(&self, edge: usize, core: usize, up: bool) -> Result<(), StackError> {
        let what = format!(
            "edge {edge} to see core {core} {}",
            if up { "up" } else { "down" }
        );
        wait_for(&what, self.options.startup_timeout, || {
            let now = self.core_metric(edge, "tgcdn_edge_core_up", core)?;
            Ok((now == u64::from(up)).then_some(()))
        })
        .map_err(|e| self.with_logs(e))
    }

    /// The last lines of every child's output, for failure messages.
    pub fn logs(&self) -> String {
        log_tails(self.dir.path())
    }

    /// A guard that prints [`Cluster::logs`] if the thread panics while it lives.
    pub fn logs_on_panic(&self) -> LogsOnPanic<'_> {
        LogsOnPanic {
            dir: self.dir.path(),
        }
    }

    fn with_logs(&self, error: StackError) -> StackError {
        with_logs(error, || self.logs())
    }

    fn core_log(&self, core: usize) -> PathBuf {
        let start = *lock(&self.cores[core].starts);
        self.dir.path().join(format!("core-{core}-{start}.log"))
    }

    /// Starts core `index`; returns the fingerprint it printed once serving.
    fn spawn_core(&self, index: usize) -> Result<String, StackError> {
        let slot = &self.cores[index];
        *lock(&slot.starts) += 1;
        let out_path = self.core_log(index);
        let dc_addrs: Vec<String> = self
            .emulator()
            .dc_options()
            .iter()
            .map(|(dc, addr)| format!("{dc}={addr}"))
            .collect();
        let mut env = vec![
            ("TGCDN_DATA_DIR".to_owned(), path_text(&slot.data_dir)),
            ("TGCDN_API_ID".to_owned(), "1".to_owned()),
            ("TGCDN_API_HASH".to_owned(), "e2e-api-hash".to_owned()),
            ("TGCDN_BOT_TOKEN".to_owned(), slot.main_bot.token.clone()),
            ("TGCDN_WORKER_TOKENS".to_owned(), slot.worker.token.clone()),
            (
                "TGCDN_STORAGE_CHANNEL".to_owned(),
                self.channel.bot_api_id().to_string(),
            ),
            ("TGCDN_QUIC_LISTEN".to_owned(), slot.quic_addr.to_string()),
            ("TGCDN_ADMIN_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            (
                "TGCDN_CLUSTER_SECRET".to_owned(),
                CLUSTER_SECRET_HEX.to_owned(),
            ),
            (
                "TGCDN_LINK_KEY".to_owned(),
                format!("{LINK_KEY_ID}:{LINK_SECRET_HEX}"),
            ),
            ("TGCDN_PUBLIC_URL".to_owned(), self.edge_url(0)),
            ("TGCDN_DC_ADDRS".to_owned(), dc_addrs.join(",")),
            ("TGCDN_DC_AUTH_KEY".to_owned(), hex(&self.base_auth_key)),
        ];
        env.extend(self.options.core_env.iter().cloned());
        let child = spawn(
            binaries().core,
            &["run"],
            &env,
            &self.options.log_filter,
            &out_path,
        )?;
        *lock(&slot.child) = Some(child);
        wait_for(
            &format!("core {index} to serve edges"),
            self.options.startup_timeout,
            || {
                self.check_alive(&slot.child, &format!("core {index}"))?;
                let output = std::fs::read_to_string(&out_path).unwrap_or_default();
                Ok(output
                    .lines()
                    .find_map(|line| line.strip_prefix(FINGERPRINT_PREFIX))
                    .map(|f| f.trim().to_owned()))
            },
        )
        .map_err(|e| self.with_logs(e))
    }

    /// `TGCDN_CORES` for the edges: every core by name, address and pinned certificate.
    fn cores_setting(&self) -> String {
        self.cores
            .iter()
            .map(|core| format!("{}={}/{}", core.name, core.quic_addr, core.fingerprint))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn_edge(&self, index: usize) -> Result<(), StackError> {
        let slot = &self.edges[index];
        let start = {
            let mut starts = lock(&slot.starts);
            *starts += 1;
            *starts
        };
        let out_path = self.dir.path().join(format!("edge-{index}-{start}.log"));
        let mut env = vec![
            ("TGCDN_LISTEN".to_owned(), slot.addr.to_string()),
            (
                "TGCDN_METRICS_LISTEN".to_owned(),
                slot.metrics_addr.to_string(),
            ),
            ("TGCDN_PUBLIC_URL".to_owned(), self.edge_url(index)),
            ("TGCDN_EDGE_ID".to_owned(), format!("cluster-edge-{index}")),
            ("TGCDN_REGION".to_owned(), "loopback".to_owned()),
            ("TGCDN_CORES".to_owned(), self.cores_setting()),
            (
                "TGCDN_CORE_TIMEOUT".to_owned(),
                self.options.core_timeout.clone(),
            ),
            (
                "TGCDN_CLUSTER_SECRET".to_owned(),
                CLUSTER_SECRET_HEX.to_owned(),
            ),
            (
                "TGCDN_LINK_KEYS".to_owned(),
                format!("{LINK_KEY_ID}:{LINK_SECRET_HEX}"),
            ),
            ("TGCDN_CACHE_SIZE".to_owned(), "64MiB".to_owned()),
        ];
        env.extend(self.options.edge_env.iter().cloned());
        let child = spawn(
            binaries().edge,
            &[],
            &env,
            &self.options.log_filter,
            &out_path,
        )?;
        *lock(&slot.child) = Some(child);
        let ready_url = format!("{}/readyz", self.edge_url(index));
        wait_for(
            &format!("edge {index} to be ready"),
            self.options.startup_timeout,
            || {
                self.check_alive(&slot.child, &format!("edge {index}"))?;
                Ok(
                    client::request(&ready_url, "GET", &[], Duration::from_secs(2))
                        .ok()
                        .filter(|r| r.status() == 200)
                        .map(|_| ()),
                )
            },
        )
        .map_err(|e| self.with_logs(e))
    }

    fn check_alive(&self, slot: &Mutex<Option<Child>>, what: &str) -> Result<(), StackError> {
        let status = match lock(slot).as_mut() {
            Some(child) => child.try_wait().map_err(io_error("polling a child"))?,
            None => return Err(StackError::Unexpected(format!("{what} is not running"))),
        };
        match status {
            Some(status) => Err(StackError::Exited {
                what: what.to_owned(),
                status,
                logs: self.logs(),
            }),
            None => Ok(()),
        }
    }

    /// Where the children's output files are.
    pub fn log_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let slots = self
            .edges
            .iter()
            .map(|edge| &edge.child)
            .chain(self.cores.iter().map(|core| &core.child));
        for slot in slots {
            if let Some(mut child) = lock(slot).take() {
                // Already gone is fine; there is nothing else to do about a failure here.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        drop(self.emu.take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
