//! Bots against the DC emulator for the tests that wire the core's parts by hand
//! (`fetch_emulator.rs`, `resilience.rs`): an emulator, sessions provisioned with every DC's
//! loopback address, signed-in `BotClient`s that are members of the channels named, and a
//! polling wait with a deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tgcdn_core::store::Store;
use tgcdn_core::telegram::{BotClient, BotConfig, SledSession, bot_id_from_token};
use tgemu::{BotInfo, ChannelInfo, Emulator, EmulatorHandle};

/// Deadline of one Telegram call in these tests.
pub fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// An emulator with `dcs`, home DC 2.
pub async fn emulator_with(dcs: &[i32]) -> EmulatorHandle {
    Emulator::builder()
        .dcs(dcs)
        .home_dc(2)
        .start()
        .await
        .expect("emulator starts")
}

pub fn bot_config(token: &str, connections: usize) -> BotConfig {
    BotConfig {
        token: token.into(),
        api_id: 1,
        api_hash: "hash".into(),
        connections,
    }
}

/// The bot's sled session with every emulated DC pinned to its loopback address and `key`.
pub async fn provisioned(
    store: &Store,
    emu: &EmulatorHandle,
    token: &str,
    key: [u8; 256],
) -> Arc<SledSession> {
    let bot_id = bot_id_from_token(token).expect("test token");
    let session = SledSession::open(store.sessions_tree().clone(), bot_id).expect("session opens");
    for (dc, addr) in emu.dc_options() {
        let SocketAddr::V4(v4) = addr else {
            panic!("ipv4 loopback expected")
        };
        session
            .provision_dc(dc, v4, Some(key))
            .await
            .expect("provision");
    }
    Arc::new(session)
}

/// How a test bot is made.
pub struct BotSpec<'a> {
    pub token: &'a str,
    /// Channels it is an admin of.
    pub channels: &'a [ChannelInfo],
    pub connections: usize,
    /// Whether its client receives updates (the front-end's main bot).
    pub updates: bool,
}

impl<'a> BotSpec<'a> {
    /// One connection, no updates.
    pub fn new(token: &'a str, channels: &'a [ChannelInfo]) -> Self {
        Self {
            token,
            channels,
            connections: 1,
            updates: false,
        }
    }
}

/// A registered, signed-in bot as `spec` says.
pub async fn signed_in(
    emu: &EmulatorHandle,
    store: &Store,
    spec: BotSpec<'_>,
) -> (BotInfo, Arc<BotClient>) {
    let info = emu.world().register_bot(spec.token, spec.token);
    for channel in spec.channels {
        emu.world()
            .add_channel_member(channel.channel_id, info.user_id, true);
    }
    let session = provisioned(store, emu, spec.token, emu.provision_auth_key()).await;
    let config = bot_config(spec.token, spec.connections);
    let client = if spec.updates {
        BotClient::with_session_receiving_updates(session, &config)
    } else {
        BotClient::with_session(session, &config)
    };
    client.sign_in_if_needed(deadline()).await.expect("sign in");
    (info, Arc::new(client))
}

/// Polls `done` until it holds, failing after ten seconds.
pub async fn wait_for(mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < until, "condition not met within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
