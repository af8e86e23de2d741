//! A whole core's surroundings for the integration tests that run `Running`/`run_one_box`
//! or the `tgcdn-core` binary: an emulated Telegram with a storage channel, a main bot and
//! a worker in it, sessions provisioned in a data directory, the `TGCDN_*` settings that
//! point at all of it, and a minimal HTTP/1.1 client for the one-box edge.
#![allow(dead_code)] // each test binary uses its own subset

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tgcdn_core::config::{Config, bot_auth_key};
use tgcdn_core::store::Store;
use tgcdn_core::telegram::SledSession;
use tgcdn_shared::FileRef;
use tgcdn_shared::config::Settings;
use tgcdn_shared::token::{Keyring, LinkKey};
use tgemu::{BotInfo, ChannelInfo, Emulator, EmulatorHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub mod bots;

pub const MIB: u64 = 1 << 20;
pub const TOKEN: &str = "123456:test-token";
pub const WORKER: &str = "654321:worker-token";
pub const LINK_KEY_HEX: &str = "00112233445566778899aabbccddeeff";

pub async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test step took too long")
}

/// The emulated Telegram side of a deployment.
pub struct Deployment {
    pub emu: EmulatorHandle,
    pub channel: ChannelInfo,
    pub main_bot: BotInfo,
    pub worker: BotInfo,
    /// Base auth key the core derives each bot's key from (`TGCDN_DC_AUTH_KEY`).
    pub base_key: [u8; 256],
}

impl Deployment {
    /// Emulator with DCs 1, 2, 4, a storage channel and both bots admins of it.
    pub async fn start() -> Deployment {
        let emu = Emulator::builder()
            .dcs(&[1, 2, 4])
            .home_dc(2)
            .start()
            .await
            .expect("emulator starts");
        let world = emu.world();
        let channel = world.create_channel("storage");
        let main_bot = world.register_bot(TOKEN, "cdn_bot");
        let worker = world.register_bot(WORKER, "worker_bot");
        for bot in [&main_bot, &worker] {
            world.add_channel_member(channel.channel_id, bot.user_id, true);
        }
        let base_key = emu.provision_auth_key();
        for bot_id in [123456, 654321] {
            emu.register_auth_key(bot_auth_key(&base_key, bot_id));
        }
        Deployment {
            emu,
            channel,
            main_bot,
            worker,
            base_key,
        }
    }

    /// `TGCDN_*` pairs for a core keeping its database in `data_dir`; every listener on a
    /// loopback port chosen by the kernel.
    pub fn env(&self, data_dir: &Path) -> Vec<(String, String)> {
        let dc_addrs: Vec<String> = self
            .emu
            .dc_options()
            .iter()
            .map(|(dc, addr)| format!("{dc}={addr}"))
            .collect();
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        [
            ("TGCDN_DATA_DIR", data_dir.display().to_string()),
            ("TGCDN_API_ID", "1".into()),
            ("TGCDN_API_HASH", "hash".into()),
            ("TGCDN_BOT_TOKEN", TOKEN.into()),
            ("TGCDN_WORKER_TOKENS", WORKER.into()),
            (
                "TGCDN_STORAGE_CHANNEL",
                self.channel.bot_api_id().to_string(),
            ),
            ("TGCDN_QUIC_LISTEN", "127.0.0.1:0".into()),
            ("TGCDN_ADMIN_LISTEN", "127.0.0.1:0".into()),
            ("TGCDN_LISTEN", "127.0.0.1:0".into()),
            ("TGCDN_CLUSTER_SECRET", hex(b"cluster secret of the tests")),
            ("TGCDN_LINK_KEY", format!("1:{LINK_KEY_HEX}")),
            ("TGCDN_PUBLIC_URL", "https://cdn.example.com".into()),
            ("TGCDN_DC_ADDRS", dc_addrs.join(",")),
            ("TGCDN_DC_AUTH_KEY", hex(&self.base_key)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The validated configuration `env` describes, plus `extra` pairs.
    pub fn config(&self, data_dir: &Path, extra: &[(&str, &str)]) -> Config {
        let mut env = self.env(data_dir);
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let settings = Settings::from_env_and_file(env, None).expect("settings");
        Config::from_settings(&settings).expect("valid configuration")
    }

    /// Sessions with the emulator's DC addresses and each bot's derived key, as a fresh
    /// deployment would have them after provisioning.
    pub async fn provision(&self, data_dir: &Path) {
        let store = Store::open(data_dir).expect("store opens");
        for bot_id in [123456, 654321] {
            let key = bot_auth_key(&self.base_key, bot_id);
            let session =
                SledSession::open(store.sessions_tree().clone(), bot_id).expect("session opens");
            for (dc, addr) in self.emu.dc_options() {
                let SocketAddr::V4(v4) = addr else {
                    panic!("ipv4 loopback expected")
                };
                session
                    .provision_dc(dc, v4, Some(key))
                    .await
                    .expect("provision");
            }
        }
        store.flush().await.expect("flush");
        // The core started next (in this process or a child) waits in `Store::open` for
        // sled to let go of the lock this handle held.
        drop(store);
    }

    pub fn file(&self, msg_id: i32) -> FileRef {
        FileRef {
            chat_id: self.channel.bot_api_id(),
            msg_id,
        }
    }
}

/// The keyring `TGCDN_LINK_KEY` above makes.
pub fn keyring() -> Keyring {
    let secret: Vec<u8> = (0..16u8).map(|i| i * 0x11).collect();
    Keyring::new(LinkKey::new(1, secret).expect("key"), Vec::new()).expect("keyring")
}

/// A response as the tests look at it.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` over HTTP/1.1 with `Connection: close` and extra headers; the body is read to
/// the end and must match `Content-Length`.
pub async fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    bounded(async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut all = Vec::new();
        stream.read_to_end(&mut all).await.expect("read");
        let split = all
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of headers");
        let head = String::from_utf8_lossy(&all[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .expect("status line");
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let response = HttpResponse {
            status,
            headers,
            body: all[split + 4..].to_vec(),
        };
        if let Some(len) = response.header("content-length") {
            assert_eq!(
                len.parse::<usize>().expect("length"),
                response.body.len(),
                "body shorter than Content-Length"
            );
        }
        response
    })
    .await
}
