//! The core's side of the Stremio catalogue: what feeds the pure `tgcdn-catalog` crate and
//! what persists it. [`tmdb`] resolves parsed titles to metadata (posters, ids, episodes)
//! over HTTP with its answers cached in sled.

pub mod tmdb;
