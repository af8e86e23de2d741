//! The core's side of the Stremio catalogue: what feeds the pure `tgcdn-catalog` crate and
//! what persists it, channel posts in, catalogue records out.
//!
//! * [`index`] — the typed events the main bot's update feed and the back-fill produce
//!   ([`index::IndexEvent`], [`index::ChannelPost`]), the [`index::CatalogSink`] port the
//!   catalogue store implements, the [`index::Indexer`] that routes events of the
//!   configured channels to it, and the counters `/metrics` shows;
//! * [`posts`] — every post as it came, in sled tree `catalog_posts`;
//! * [`library`] — the pure `tgcdn-catalog` catalogue in memory over sled tree
//!   `catalog_titles`: the indexer's sink (posts in, beside `posts`) and the addon port
//!   (Stremio answers out);
//! * [`enrich`] — background TMDB lookups and video hashes, with counters for `/metrics`;
//! * [`backfill`] — posts made before tgcdn joined a channel, walked downwards with
//!   `channels.getMessages` in batches, resumable from sled tree `catalog_backfill`;
//! * [`tmdb`] — resolves parsed titles to metadata (posters, ids, episodes) over HTTP with
//!   its answers cached in sled.
//!
//! No grammers type here: `telegram/channel.rs` converts messages into these events and
//! implements [`backfill::ChannelReader`] for a bot.

pub mod backfill;
pub mod enrich;
pub mod index;
pub mod library;
pub mod posts;
pub mod tmdb;
