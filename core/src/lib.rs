//! tgcdn-core: the one long-lived process that talks to Telegram.
//!
//! Modules in request order (see `docs/ARCHITECTURE.md`):
//! * [`bots`] — the bot pool's pure parts: load counters with RAII guards, the choice of
//!   the least-loaded healthy bot and connection, health per bot and per (bot, channel)
//!   with a re-probe schedule;
//! * [`health`] — the background prober that puts recovered bots back in rotation;
//! * [`resolve`] — a file reference → its meta (persisted) and each bot's document
//!   location (cached, refreshed when Telegram says the reference expired);
//! * [`fetch`] — single-flight chunk downloads across the pool, retries by the shared
//!   policy, a small second-tier cache;
//! * [`ports`] — what the request path needs from Telegram (part downloader, document
//!   source, prober), the failure type with its retry class and the one pure retry policy;
//!   no grammers, so `quic → fetch → resolve → telegram` imports run one way;
//! * [`quic`] — the server edges connect to: pinned TLS identity, Hello gate, one stream
//!   per request, the edge registry;
//! * [`telegram`] — the only module that uses grammers: bot sessions stored in sled, sender
//!   pools per bot, `getFile` with deadlines, errors classified into retry classes;
//! * [`catalog`] — the channel indexer: catalogue channels' posts from updates and a
//!   back-fill, stored through the catalogue sink;
//! * [`frontend`] — the main bot's file-to-link front-end: copy a user's file into the
//!   storage channel, answer with signed links, `/start`, `/help`, `/stats`;
//! * [`runtime`] — a running core (what `tgcdn-core run` starts) as a library value;
//! * [`onebox`] — the edge served in-process from the core's handler (one-box mode);
//! * [`stats`] / [`report`] — event counters, and the one report of bots, DCs, edges and
//!   caches that `/stats`, `/metrics` and `/admin/*` all render;
//! * [`addon`] — the port Stremio addon requests are answered through (the catalogue
//!   implements it; none configured → the addon is disabled);
//! * [`admin`] — the admin HTTP listener (`/metrics`, `/admin/*`) and its client for
//!   `tgcdn-core status`;
//! * [`app`] — the wiring of bots, resolver and fetcher that `main` and the tests share;
//! * [`config`] — `TGCDN_*` / TOML settings read, then validated into a typed `Config`
//!   (the one-box edge's settings included, so `config` imports nothing above it);
//! * [`clock`] — wall-clock seconds for records that outlive the process;
//! * [`links`] — the download and watch links handed out, with safe file names;
//! * [`revoke`] — revoking a file (every link to it) durably and announcing it to edges,
//!   and the operator's link commands (mint, inspect);
//! * [`store`] — the sled database (sessions, file meta, settings, revocations, edges).

pub mod addon;
pub mod admin;
pub mod app;
pub mod bots;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod fetch;
pub mod frontend;
pub mod health;
pub mod links;
pub mod onebox;
pub mod ports;
pub mod quic;
pub mod report;
pub mod resolve;
pub mod revoke;
pub mod runtime;
pub mod signals;
pub mod stats;
pub mod store;
pub mod telegram;
