//! The emulated Telegram the sandbox runs against: DCs 1, 2 and 4 on loopback (home DC 2),
//! a main bot and a worker bot, a storage channel where both are admins, a demo user, and
//! the auth keys the core will derive for each bot.
//!
//! With a kept [`Saved`] world (a `--data-dir` of an earlier run, see [`crate::persist`])
//! the emulator starts on that world's snapshot and the same [`Cast`] instead of a new one,
//! so the core's database and sessions, and links made before, still match it.
//!
//! Called by [`crate::Sandbox::start`] before the core exists. Owns the
//! [`tgemu::EmulatorHandle`] (dropping it stops the DCs). Knows nothing of the core beyond
//! what an operator would put in its configuration: tokens, the channel id, DC addresses
//! and the base auth key.

use std::time::Duration;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use tgcdn_core::config::bot_auth_key;
use tgcdn_core::telegram::bot_id_from_token;
use tgemu::{
    BotInfo, ChannelInfo, Emulator, EmulatorHandle, Latency, Scope, UserInfo, WorldSnapshot,
};

use crate::error::SandboxError;

/// The main bot's token: its id (before the colon) is what the core keys its session by.
pub const MAIN_BOT_TOKEN: &str = "7000001:sandbox-main-bot-token";
pub const WORKER_BOT_TOKEN: &str = "7000002:sandbox-worker-bot-token";
const MAIN_BOT_NAME: &str = "tgcdn_sandbox_bot";
const WORKER_BOT_NAME: &str = "tgcdn_sandbox_worker_bot";
const EMULATED_DCS: [i32; 3] = [1, 2, 4];
const HOME_DC: i32 = 2;

/// Emulator faults that make the network feel real (both off by default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NetworkFaults {
    /// Added to every request, on every DC.
    pub latency: Option<Duration>,
    /// Bytes per second per connection.
    pub bandwidth: Option<u64>,
}

/// Who is who in the scripted world, and the key the core derives the bots' keys from.
#[derive(Clone, Serialize, Deserialize)]
pub struct Cast {
    pub main_bot: BotInfo,
    pub worker_bot: BotInfo,
    pub channel: ChannelInfo,
    /// The Stremio catalogue's channel: demo releases posted before the core starts, so the
    /// core's back-fill catalogues them.
    pub catalog_channel: ChannelInfo,
    pub user: UserInfo,
    /// The base the core derives every bot's key from (`TGCDN_DC_AUTH_KEY`); 256 bytes.
    pub base_auth_key: Vec<u8>,
}

/// A world kept from an earlier run.
pub struct Saved {
    pub snapshot: WorldSnapshot,
    pub cast: Cast,
}

/// The scripted world, running.
pub struct DemoWorld {
    pub emulator: EmulatorHandle,
    pub cast: Cast,
    /// Whether the world was restored rather than created (its demo posts exist already).
    pub restored: bool,
}

impl DemoWorld {
    pub async fn start(
        faults: NetworkFaults,
        saved: Option<Saved>,
    ) -> Result<DemoWorld, SandboxError> {
        let builder = Emulator::builder().dcs(&EMULATED_DCS).home_dc(HOME_DC);
        let restored = saved.is_some();
        let (emulator, cast) = match saved {
            Some(saved) => (builder.restore(saved.snapshot).start().await?, saved.cast),
            None => {
                let emulator = builder.start().await?;
                let cast = create_cast(&emulator);
                (emulator, cast)
            }
        };
        let base_auth_key: [u8; 256] = cast.base_auth_key.as_slice().try_into().map_err(|_| {
            SandboxError::core("the kept world", "its base auth key is not 256 bytes")
        })?;
        for token in [MAIN_BOT_TOKEN, WORKER_BOT_TOKEN] {
            // The tokens are constants above; a malformed one is a bug caught by the tests.
            let bot_id =
                bot_id_from_token(token).map_err(|error| SandboxError::core("bot token", error))?;
            emulator.register_auth_key(bot_auth_key(&base_auth_key, bot_id));
        }

        let knobs = emulator.faults();
        if let Some(latency) = faults.latency {
            knobs.set_latency(Scope::All, Latency::Fixed(latency));
        }
        if let Some(bytes_per_sec) = faults.bandwidth {
            knobs.set_bandwidth(Scope::All, bytes_per_sec);
        }
        Ok(DemoWorld {
            emulator,
            cast,
            restored,
        })
    }

    /// The world and cast as they are now, to start the same world next time.
    pub fn save(&self) -> Saved {
        Saved {
            snapshot: self.emulator.world().snapshot(),
            cast: self.cast.clone(),
        }
    }

    /// `dc=addr` pairs for `TGCDN_DC_ADDRS`.
    pub fn dc_addrs_setting(&self) -> String {
        self.emulator
            .dc_options()
            .iter()
            .map(|(dc, addr)| format!("{dc}={addr}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A new world: the bots, both channels with the bots as admins, the demo user, a fresh
/// base auth key.
fn create_cast(emulator: &EmulatorHandle) -> Cast {
    let world = emulator.world();
    let channel = world.create_channel("tgcdn sandbox storage");
    let main_bot = world.register_bot(MAIN_BOT_TOKEN, MAIN_BOT_NAME);
    let worker_bot = world.register_bot(WORKER_BOT_TOKEN, WORKER_BOT_NAME);
    let catalog_channel = world.create_channel("tgcdn sandbox films");
    for bot in [&main_bot, &worker_bot] {
        world.add_channel_member(channel.channel_id, bot.user_id, true);
        world.add_channel_member(catalog_channel.channel_id, bot.user_id, true);
    }
    let user = world.register_user("Demo User");
    let mut base_auth_key = vec![0u8; 256];
    rand::thread_rng().fill_bytes(&mut base_auth_key);
    Cast {
        main_bot,
        worker_bot,
        channel,
        catalog_channel,
        user,
        base_auth_key,
    }
}
