//! The Stremio catalogue as pure code: no runtime, no sockets, no database, no clock.
//!
//! The core feeds it channel posts and persists what it returns in sled; the edge only relays
//! and caches the addon's answers. Modules, from a file name to an addon answer:
//! `name` (release-name parser → [`name::ParsedName`]), `hash` (the OpenSubtitles hash a
//! stream carries for subtitle addons), `search` (case- and accent-insensitive word/prefix
//! index, generic over its keys), `model` (titles, episodes, files, the metadata a lookup
//! service attaches, and the in-memory catalogue with its indices) and `addon` (Stremio
//! routes and JSON shapes). Imports run in that order and never back.

pub mod addon;
pub mod hash;
pub mod model;
pub mod name;
pub mod search;
