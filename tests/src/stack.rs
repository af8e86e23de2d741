//! The whole system on loopback, as an operator would run it: the Telegram DC emulator
//! (DCs 1, 2, 4; a main bot and worker bots, all admins of a storage channel; a user), the
//! real `tgcdn-core` binary and the real `tgcdn-edge` binary as child processes, wired only
//! by `TGCDN_*` variables (the edge pins the fingerprint the core prints, both hold the
//! cluster secret and the link key).
//!
//! Used by the e2e tests (`tests/tests/e2e.rs`), and meant for benches and the sandbox.
//! [`Stack::start`] blocks and may be called from any thread, async or not: the emulator
//! runs on a runtime the stack owns. Every wait is bounded. Children die with the stack:
//! [`Drop`] kills them, and they are also spawned with `PR_SET_PDEATHSIG` from a thread that
//! lives as long as the process, so a stack kept in a `static` (never dropped) or a test
//! binary that aborts leaves nothing running. Child output goes to files in the stack's
//! temporary directory; [`Stack::logs_on_panic`] prints their tails when a test fails.
//! Never touches anything outside 127.0.0.1 and its own temporary directory.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tgcdn_shared::FileRef;
use tgcdn_shared::token::{Keyring, LinkKey};
use tgemu::{
    BotInfo, ChannelInfo, Content, DocumentInfo, Emulator, EmulatorHandle, Peer, PhotoInfo,
    PhotoSizeSpec, UserInfo, World,
};

use crate::client;

const MAIN_TOKEN: &str = "7000001:e2e-main-bot";
const WORKER_TOKENS: [&str; 3] = [
    "7000002:e2e-worker-one",
    "7000003:e2e-worker-two",
    "7000004:e2e-worker-three",
];
pub(crate) const CLUSTER_SECRET_HEX: &str =
    "e2ec1a55e2ec1a55e2ec1a55e2ec1a55e2ec1a55e2ec1a55e2ec1a55e2ec1a55";
pub(crate) const LINK_KEY_ID: u8 = 1;
pub(crate) const LINK_SECRET_HEX: &str =
    "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";
/// Marks the line the core prints once it serves edges.
pub(crate) const FINGERPRINT_PREFIX: &str = "certificate sha256 (edges pin it): ";
/// Marks the line with the core's admin endpoint.
pub(crate) const ADMIN_PREFIX: &str = "admin endpoint on ";

/// What a stack is made of. `Default` is one worker bot and no extra settings.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Worker bots besides the main bot (0..=3).
    pub workers: usize,
    /// Extra `TGCDN_*` settings for the core (they win over the stack's).
    pub core_env: Vec<(String, String)>,
    /// Extra `TGCDN_*` settings for the edge (they win over the stack's).
    pub edge_env: Vec<(String, String)>,
    /// `RUST_LOG` of both children.
    pub log_filter: String,
    /// Bound on each child becoming ready.
    pub startup_timeout: Duration,
    /// Also catalogue the storage channel's posts for the Stremio addon
    /// (`TGCDN_CATALOG_CHANNELS`).
    pub catalog_storage_channel: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            workers: 1,
            core_env: Vec::new(),
            edge_env: Vec::new(),
            log_filter: "info,grammers=warn,quinn=warn,sled=warn".to_owned(),
            startup_timeout: Duration::from_secs(60),
            catalog_storage_channel: false,
        }
    }
}

/// Why the stack could not do what was asked. Carries the children's log tails where they
/// explain it.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the emulator: {0}")]
    Emulator(#[from] tgemu::EmulatorError),
    #[error("{what} did not happen within {secs:.1}s\n{logs}")]
    Timeout {
        what: String,
        secs: f64,
        logs: String,
    },
    #[error("{what} exited early ({status})\n{logs}")]
    Exited {
        what: String,
        status: ExitStatus,
        logs: String,
    },
    #[error("{0}")]
    Unexpected(String),
}

pub(crate) fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StackError {
    let what = what.into();
    move |source| StackError::Io { what, source }
}

/// A file posted to the storage channel, with a link the edge accepts.
#[derive(Debug, Clone)]
pub struct PostedFile {
    pub doc: DocumentInfo,
    pub file: FileRef,
    pub name: String,
    pub url: String,
}

/// A file a user sent to the main bot, and the link the bot answered with.
#[derive(Debug, Clone)]
pub struct UserUpload {
    pub doc: DocumentInfo,
    pub link: String,
}

/// A photo a user sent to the main bot, and the link the bot answered with.
#[derive(Debug, Clone)]
pub struct UserPhoto {
    pub photo: PhotoInfo,
    pub link: String,
}

/// A running core, edge and emulator. See the module doc.
pub struct Stack {
    options: StackOptions,
    // Dropped by hand in `Drop`, in order: children, emulator, runtime.
    runtime: Option<tokio::runtime::Runtime>,
    emu: Option<EmulatorHandle>,
    world: World,
    channel: ChannelInfo,
    main_bot: BotInfo,
    workers: Vec<BotInfo>,
    user: UserInfo,
    keyring: Keyring,
    dir: tempfile::TempDir,
    base_auth_key: [u8; 256],
    quic_addr: SocketAddr,
    edge_addr: SocketAddr,
    /// The edge's metrics listener (`TGCDN_METRICS_LISTEN`), never the public port.
    edge_metrics_addr: SocketAddr,
    fingerprint: String,
    core: Mutex<Option<Child>>,
    edge: Mutex<Option<Child>>,
    core_starts: Mutex<u32>,
}

impl Stack {
    /// Brings everything up and waits until the edge reports ready (connected to the core).
    pub fn start(options: StackOptions) -> Result<Stack, StackError> {
        if options.workers > WORKER_TOKENS.len() {
            return Err(StackError::Unexpected(format!(
                "at most {} worker bots",
                WORKER_TOKENS.len()
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
        let channel = world.create_channel("e2e storage");
        let main_bot = world.register_bot(MAIN_TOKEN, "e2e_cdn_bot");
        let workers: Vec<BotInfo> = WORKER_TOKENS[..options.workers]
            .iter()
            .enumerate()
            .map(|(i, token)| world.register_bot(token, &format!("e2e_worker_{i}")))
            .collect();
        for bot in std::iter::once(&main_bot).chain(&workers) {
            world.add_channel_member(channel.channel_id, bot.user_id, true);
        }
        let user = world.register_user("e2e viewer");

        // One base key; the core derives each bot's key from it, the emulator must know them.
        let base_auth_key = emu.provision_auth_key();
        for bot in std::iter::once(&main_bot).chain(&workers) {
            // The core derives by the id in the token, which need not be the emulator's
            // user id for the bot.
            let bot_id = tgcdn_core::telegram::bot_id_from_token(&bot.token)
                .map_err(|e| StackError::Unexpected(format!("bot token {}: {e}", bot.token)))?;
            emu.register_auth_key(tgcdn_core::config::bot_auth_key(&base_auth_key, bot_id));
        }
        let link_key = LinkKey::new(LINK_KEY_ID, hex_decode(LINK_SECRET_HEX))
            .map_err(|e| StackError::Unexpected(format!("link key: {e}")))?;
        let keyring = Keyring::new(link_key, Vec::new())
            .map_err(|e| StackError::Unexpected(format!("keyring: {e}")))?;
        let dir = tempfile::Builder::new()
            .prefix("tgcdn-e2e-")
            .tempdir()
            .map_err(io_error("creating the stack's directory"))?;
        std::fs::create_dir(dir.path().join("data")).map_err(io_error("creating data/"))?;

        let mut stack = Stack {
            quic_addr: free_udp_addr()?,
            edge_addr: free_tcp_addr()?,
            edge_metrics_addr: free_tcp_addr()?,
            options,
            runtime: Some(runtime),
            emu: Some(emu),
            world,
            channel,
            main_bot,
            workers,
            user,
            keyring,
            dir,
            base_auth_key,
            fingerprint: String::new(),
            core: Mutex::new(None),
            edge: Mutex::new(None),
            core_starts: Mutex::new(0),
        };
        stack.fingerprint = stack.spawn_core()?;
        stack.spawn_edge()?;
        Ok(stack)
    }

    /// The emulator (faults, counters, content).
    pub fn emulator(&self) -> &EmulatorHandle {
        // Only `Drop` takes it out.
        self.emu
            .as_ref()
            .expect("the emulator lives as long as the stack")
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    pub fn channel(&self) -> ChannelInfo {
        self.channel
    }

    pub fn main_bot(&self) -> &BotInfo {
        &self.main_bot
    }

    pub fn workers(&self) -> &[BotInfo] {
        &self.workers
    }

    pub fn user(&self) -> UserInfo {
        self.user
    }

    /// The keys links are signed with (the same ones core and edge hold).
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// `http://127.0.0.1:port`, no trailing slash.
    pub fn edge_url(&self) -> String {
        format!("http://{}", self.edge_addr)
    }

    pub fn edge_addr(&self) -> SocketAddr {
        self.edge_addr
    }

    /// The core's QUIC (UDP) address; stable across [`Stack::restart_core`].
    pub fn core_quic_addr(&self) -> SocketAddr {
        self.quic_addr
    }

    /// The certificate fingerprint the core printed and the edge pins.
    pub fn core_fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The core's data directory (sled).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Where the children's output files are.
    pub fn log_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A link to `file` signed like the core signs them (the name percent-encoded).
    pub fn link_for(&self, file: FileRef, name: &str, expires_at: Option<u64>) -> String {
        format!(
            "{}/dl/{}/{}",
            self.edge_url(),
            self.keyring.sign(file, expires_at),
            percent_encode(name)
        )
    }

    /// Posts a document to the storage channel and signs a link to it.
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
            url: self.link_for(file, name, None),
        }
    }

    /// The user sends a document to the main bot; waits (bounded) for the bot's reply and
    /// returns the link in it — the front-end's file-to-link path, end to end.
    pub fn user_uploads(
        &self,
        content: Content,
        name: &str,
        mime: &str,
        dc: i32,
        timeout: Duration,
    ) -> Result<UserUpload, StackError> {
        let bot = self.main_bot.user_id;
        let doc = self.world.add_document(content, name, mime, dc);
        let before = self.world.sent_by(bot).len();
        self.world
            .user_sends_document(self.user.user_id, bot, doc.id, "");
        let link = self.wait_for_link(before, name, timeout)?;
        Ok(UserUpload { doc, link })
    }

    /// The user sends a photo with `sizes` (stored on `dc`) to the main bot, like
    /// [`Self::user_uploads`].
    pub fn user_sends_photo(
        &self,
        sizes: Vec<PhotoSizeSpec>,
        dc: i32,
        timeout: Duration,
    ) -> Result<UserPhoto, StackError> {
        let bot = self.main_bot.user_id;
        let photo = self.world.add_photo(sizes, dc);
        let before = self.world.sent_by(bot).len();
        self.world
            .user_sends_photo(self.user.user_id, bot, photo.id, "");
        let link = self.wait_for_link(before, "a photo", timeout)?;
        Ok(UserPhoto { photo, link })
    }

    /// The first download link the main bot sent the user after its `before`-th message.
    fn wait_for_link(
        &self,
        before: usize,
        what: &str,
        timeout: Duration,
    ) -> Result<String, StackError> {
        let bot = self.main_bot.user_id;
        let prefix = format!("{}/dl/", self.edge_url());
        wait_for(&format!("the bot's link for {what}"), timeout, || {
            Ok(self
                .world
                .sent_by(bot)
                .iter()
                .skip(before)
                .filter(|m| m.peer == Peer::User(self.user.user_id))
                .find_map(|m| extract_link(&m.text, &prefix)))
        })
        .map_err(|e| self.with_logs(e))
    }

    /// SIGKILLs the core (no shutdown path runs) and reaps it.
    pub fn kill_core(&self) -> Result<(), StackError> {
        let mut core = lock(&self.core);
        if let Some(mut child) = core.take() {
            child.kill().map_err(io_error("killing the core"))?;
            child.wait().map_err(io_error("reaping the core"))?;
        }
        Ok(())
    }

    /// Starts the core again on the same data directory and QUIC address (killing it first
    /// if it runs) and checks it presents the same certificate, which the edge still pins.
    pub fn restart_core(&self) -> Result<(), StackError> {
        self.kill_core()?;
        let fingerprint = self.spawn_core()?;
        if fingerprint != self.fingerprint {
            return Err(StackError::Unexpected(format!(
                "the restarted core presents certificate {fingerprint}, the edge pins {}",
                self.fingerprint
            )));
        }
        Ok(())
    }

    /// The running core's admin endpoint (`http://127.0.0.1:port`), from the line the core
    /// printed at start.
    pub fn core_admin_url(&self) -> Result<String, StackError> {
        let start = *lock(&self.core_starts);
        let out_path = self.dir.path().join(format!("core-{start}.log"));
        let output =
            std::fs::read_to_string(&out_path).map_err(io_error("reading the core's log"))?;
        output
            .lines()
            .find_map(|line| line.strip_prefix(ADMIN_PREFIX))
            .map(|url| url.trim().to_owned())
            .ok_or_else(|| StackError::Unexpected("the core printed no admin endpoint".to_owned()))
    }

    /// The core binary as an operator runs its commands against this stack's core
    /// (`tgcdn-core link …`, `status`): `--admin` is appended by the caller.
    pub fn core_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binaries().core);
        command
            .args(args)
            .env_clear()
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        command
    }

    /// Process id of the running core, if any.
    pub fn core_pid(&self) -> Option<u32> {
        lock(&self.core).as_ref().map(Child::id)
    }

    /// Whether the core and the edge are still running (neither exited on its own).
    pub fn children_alive(&self) -> (bool, bool) {
        let alive = |slot: &Mutex<Option<Child>>| {
            lock(slot)
                .as_mut()
                .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
        };
        (alive(&self.core), alive(&self.edge))
    }

    /// The edge's `/metrics` text, from its metrics listener.
    pub fn edge_metrics(&self) -> Result<String, StackError> {
        let response = client::get(&format!("http://{}/metrics", self.edge_metrics_addr), &[])
            .map_err(io_error("GET /metrics"))?;
        Ok(String::from_utf8_lossy(&response.body).into_owned())
    }

    /// The last lines of every child's output, for failure messages.
    pub fn logs(&self) -> String {
        log_tails(self.dir.path())
    }

    /// A guard that prints [`Stack::logs`] if the thread panics while it lives: hold one for
    /// the length of a test.
    pub fn logs_on_panic(&self) -> LogsOnPanic<'_> {
        LogsOnPanic {
            dir: self.dir.path(),
        }
    }

    fn with_logs(&self, error: StackError) -> StackError {
        with_logs(error, || self.logs())
    }

    /// Starts the core binary; returns the fingerprint it printed once serving.
    fn spawn_core(&self) -> Result<String, StackError> {
        let start = {
            let mut starts = lock(&self.core_starts);
            *starts += 1;
            *starts
        };
        let out_path = self.dir.path().join(format!("core-{start}.log"));
        let dc_addrs: Vec<String> = self
            .emulator()
            .dc_options()
            .iter()
            .map(|(dc, addr)| format!("{dc}={addr}"))
            .collect();
        let workers: Vec<&str> = self.workers.iter().map(|b| b.token.as_str()).collect();
        let mut env = vec![
            ("TGCDN_DATA_DIR".to_owned(), path_text(&self.data_dir())),
            ("TGCDN_API_ID".to_owned(), "1".to_owned()),
            ("TGCDN_API_HASH".to_owned(), "e2e-api-hash".to_owned()),
            ("TGCDN_BOT_TOKEN".to_owned(), self.main_bot.token.clone()),
            ("TGCDN_WORKER_TOKENS".to_owned(), workers.join(",")),
            (
                "TGCDN_STORAGE_CHANNEL".to_owned(),
                self.channel.bot_api_id().to_string(),
            ),
            ("TGCDN_QUIC_LISTEN".to_owned(), self.quic_addr.to_string()),
            // Stacks run in parallel: let each core pick its own admin port.
            ("TGCDN_ADMIN_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            (
                "TGCDN_CLUSTER_SECRET".to_owned(),
                CLUSTER_SECRET_HEX.to_owned(),
            ),
            (
                "TGCDN_LINK_KEY".to_owned(),
                format!("{LINK_KEY_ID}:{LINK_SECRET_HEX}"),
            ),
            ("TGCDN_PUBLIC_URL".to_owned(), self.edge_url()),
            ("TGCDN_DC_ADDRS".to_owned(), dc_addrs.join(",")),
            ("TGCDN_DC_AUTH_KEY".to_owned(), hex(&self.base_auth_key)),
        ];
        if self.options.catalog_storage_channel {
            env.push((
                "TGCDN_CATALOG_CHANNELS".to_owned(),
                self.channel.bot_api_id().to_string(),
            ));
        }
        env.extend(self.options.core_env.iter().cloned());
        let child = spawn(
            binaries().core,
            &["run"],
            &env,
            &self.options.log_filter,
            &out_path,
        )?;
        *lock(&self.core) = Some(child);

        let found = wait_for(
            "the core to serve edges",
            self.options.startup_timeout,
            || {
                self.check_alive(&self.core, "the core")?;
                let output = std::fs::read_to_string(&out_path).unwrap_or_default();
                Ok(output
                    .lines()
                    .find_map(|line| line.strip_prefix(FINGERPRINT_PREFIX))
                    .map(|f| f.trim().to_owned()))
            },
        );
        found.map_err(|e| self.with_logs(e))
    }

    fn spawn_edge(&self) -> Result<(), StackError> {
        let out_path = self.dir.path().join("edge.log");
        let mut env = vec![
            ("TGCDN_LISTEN".to_owned(), self.edge_addr.to_string()),
            (
                "TGCDN_METRICS_LISTEN".to_owned(),
                self.edge_metrics_addr.to_string(),
            ),
            ("TGCDN_PUBLIC_URL".to_owned(), self.edge_url()),
            ("TGCDN_EDGE_ID".to_owned(), "e2e-edge".to_owned()),
            ("TGCDN_REGION".to_owned(), "loopback".to_owned()),
            ("TGCDN_CORE_ADDR".to_owned(), self.quic_addr.to_string()),
            (
                "TGCDN_CORE_CERT_SHA256".to_owned(),
                self.fingerprint.clone(),
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
        *lock(&self.edge) = Some(child);
        let ready_url = format!("{}/readyz", self.edge_url());
        wait_for("the edge to be ready", self.options.startup_timeout, || {
            self.check_alive(&self.edge, "the edge")?;
            Ok(
                client::request(&ready_url, "GET", &[], Duration::from_secs(2))
                    .ok()
                    .filter(|r| r.status() == 200),
            )
        })
        .map_err(|e| self.with_logs(e))?;
        Ok(())
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
}

impl Drop for Stack {
    fn drop(&mut self) {
        for slot in [&self.edge, &self.core] {
            if let Some(mut child) = lock(slot).take() {
                // Already gone is fine; there is nothing else to do about a failure here.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        drop(self.emu.take());
        if let Some(runtime) = self.runtime.take() {
            // Allowed inside an async context, unlike dropping the runtime.
            runtime.shutdown_background();
        }
    }
}

/// Prints the last lines of every `*.log` in a stack's directory if the thread panics
/// while it lives; see [`Stack::logs_on_panic`].
pub struct LogsOnPanic<'a> {
    pub(crate) dir: &'a Path,
}

impl Drop for LogsOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", log_tails(self.dir));
        }
    }
}

/// The last 40 lines of every child's `*.log` in `dir`, oldest name first.
pub(crate) fn log_tails(dir: &Path) -> String {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    let mut text = String::new();
    for path in paths {
        let content = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = content.lines().collect();
        let tail = &lines[lines.len().saturating_sub(40)..];
        text.push_str(&format!(
            "----- {} (last {} lines)\n{}\n",
            path.display(),
            tail.len(),
            tail.join("\n")
        ));
    }
    text
}

/// A timeout with the logs attached (made only then: reading them is not free).
pub(crate) fn with_logs(error: StackError, logs: impl FnOnce() -> String) -> StackError {
    match error {
        StackError::Timeout { what, secs, .. } => StackError::Timeout {
            what,
            secs,
            logs: logs(),
        },
        other => other,
    }
}

/// Where the core and edge binaries are.
#[derive(Debug, Clone, Copy)]
pub struct Binaries {
    pub core: &'static str,
    pub edge: &'static str,
}

/// The binaries of this package built from the production `main.rs` files (see
/// `tests/Cargo.toml`). Cargo sets `CARGO_BIN_EXE_*` for integration tests only, so the
/// library finds them next to its caller's executable: `target/<profile>/` holds the binaries
/// and `target/<profile>/deps/` the test executables. `TGCDN_CORE_BIN` / `TGCDN_EDGE_BIN`
/// override (benches or the sandbox pointing at release builds).
pub fn binaries() -> Binaries {
    static FOUND: OnceLock<Binaries> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let locate = |var: &str, name: &str| -> &'static str {
            let path = std::env::var(var)
                .ok()
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    let exe = std::env::current_exe().unwrap_or_default();
                    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
                    if dir.ends_with("deps") {
                        dir.pop();
                    }
                    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
                });
            Box::leak(path_text(&path).into_boxed_str())
        };
        Binaries {
            core: locate("TGCDN_CORE_BIN", "e2e-tgcdn-core"),
            edge: locate("TGCDN_EDGE_BIN", "e2e-tgcdn-edge"),
        }
    })
}

/// Starts a child with only the given environment (plus `RUST_LOG`), output to `log`.
pub(crate) fn spawn(
    program: &str,
    args: &[&str],
    env: &[(String, String)],
    log_filter: &str,
    log: &Path,
) -> Result<Child, StackError> {
    if !Path::new(program).exists() {
        return Err(StackError::Unexpected(format!(
            "{program} is missing: build it with `cargo build -p tgcdn-tests --bins` \
             (`cargo test -p tgcdn-tests` does)"
        )));
    }
    let out = File::create(log).map_err(io_error(format!("creating {}", log.display())))?;
    let err = out.try_clone().map_err(io_error("cloning a log handle"))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("RUST_LOG", log_filter)
        .env("NO_COLOR", "1")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    spawn_on_keeper_thread(command).map_err(io_error(format!("starting {program}")))
}

/// Spawns from one thread that lives as long as the process. `PR_SET_PDEATHSIG` fires when
/// the *thread* that spawned a child ends, so children spawned from a test's thread would die
/// with that test; from here they die exactly when the process does.
fn spawn_on_keeper_thread(mut command: Command) -> std::io::Result<Child> {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static KEEPER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (jobs, inbox) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("e2e-child-keeper".to_owned())
            .spawn(move || {
                for (mut command, reply) in inbox {
                    // The caller may have given up waiting; nothing to do then.
                    let _ = reply.send(command.spawn());
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| eprintln!("cannot start the child keeper thread: {e}"));
        Mutex::new(jobs)
    });
    set_parent_death_signal(&mut command);
    let (reply, answer) = mpsc::channel();
    lock(keeper)
        .send((command, reply))
        .map_err(|_| std::io::Error::other("the child keeper thread is gone"))?;
    answer
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| std::io::Error::other("the child keeper thread did not answer"))?
}

#[cfg(target_os = "linux")]
fn set_parent_death_signal(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the calling (child) process.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn set_parent_death_signal(_command: &mut Command) {}

/// Polls `probe` every 25 ms until it yields a value, errs, or `timeout` passes.
pub(crate) fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<Option<T>, StackError>,
) -> Result<T, StackError> {
    let started = Instant::now();
    loop {
        if let Some(value) = probe()? {
            return Ok(value);
        }
        if started.elapsed() > timeout {
            return Err(StackError::Timeout {
                what: what.to_owned(),
                secs: timeout.as_secs_f64(),
                logs: String::new(),
            });
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The first `prefix…` URL in a message, up to whitespace or a closing quote/bracket.
pub(crate) fn extract_link(text: &str, prefix: &str) -> Option<String> {
    let start = text.find(prefix)?;
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '<' | '>' | ')'))
        .collect();
    Some(link)
}

/// A loopback TCP port free right now (the edge binds it a moment later).
pub(crate) fn free_tcp_addr() -> Result<SocketAddr, StackError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(io_error("finding a free TCP port"))
}

/// A loopback UDP port free right now; the core binds it at every (re)start.
pub(crate) fn free_udp_addr() -> Result<SocketAddr, StackError> {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map_err(io_error("finding a free UDP port"))
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked holding the lock leaves consistent data (a child handle).
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Every byte but RFC 3986 unreserved characters as `%XX`.
pub(crate) fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .filter_map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_cut_out_of_bot_replies() {
        let prefix = "http://127.0.0.1:9/dl/";
        assert_eq!(
            extract_link("Here: http://127.0.0.1:9/dl/abc/f.mp4\nsize 3", prefix).as_deref(),
            Some("http://127.0.0.1:9/dl/abc/f.mp4")
        );
        assert_eq!(
            extract_link("<a href=\"http://127.0.0.1:9/dl/x/y\">", prefix).as_deref(),
            Some("http://127.0.0.1:9/dl/x/y")
        );
        assert_eq!(extract_link("no link", prefix), None);
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(
            hex_decode(&hex(&[0, 1, 0xfe, 0xff])),
            vec![0, 1, 0xfe, 0xff]
        );
    }
}
