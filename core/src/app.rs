//! Assembly of the download path from bot clients: the pool, the resolver and the fetcher
//! wired so that bot `i` is the same bot in all three.
//!
//! Called by `main.rs` and by the emulator integration tests, so both run the exact same
//! wiring. Holds no state of its own and does no I/O.

use std::sync::Arc;

use crate::bots::BotPool;
use crate::fetch::{FetchConfig, Fetcher, PartDownloader};
use crate::resolve::download::BotDownloader;
use crate::resolve::{DocumentSource, ResolveConfig, Resolver};
use crate::store::Store;
use crate::telegram::BotClient;

/// The download path over a set of bots.
pub struct DownloadPath {
    pub pool: Arc<BotPool>,
    pub resolver: Arc<Resolver>,
    pub fetcher: Arc<Fetcher>,
}

/// Wires `bots` (index = pool index) into a pool, a resolver and a fetcher.
pub fn download_path(
    store: Store,
    bots: &[Arc<BotClient>],
    resolve: ResolveConfig,
    fetch: FetchConfig,
) -> DownloadPath {
    let ids: Vec<(i64, usize)> = bots
        .iter()
        .map(|bot| (bot.bot_id(), bot.connections()))
        .collect();
    let pool = Arc::new(BotPool::new(&ids));
    let sources = bots
        .iter()
        .map(|bot| Arc::clone(bot) as Arc<dyn DocumentSource>)
        .collect();
    let resolver = Resolver::new(store, Arc::clone(&pool), sources, resolve);
    let downloaders = bots
        .iter()
        .enumerate()
        .map(|(index, bot)| {
            BotDownloader::new(index, Arc::clone(bot), Arc::clone(&resolver))
                as Arc<dyn PartDownloader>
        })
        .collect();
    let fetcher = Fetcher::new(Arc::clone(&pool), downloaders, fetch);
    DownloadPath {
        pool,
        resolver,
        fetcher,
    }
}
