//! tgcdn-edge: the stateless HTTP server near viewers.
//!
//! The request path reads top to bottom: `http` (accept, route, token check, headers) →
//! [`body`] (ordered chunk slices, [`readahead`]) → [`fetch`] (global fetch cap, metadata)
//! → [`cache`] (moka by bytes, single flight) → [`upstream`] (the core, over QUIC or
//! in-process). [`testing`] is an in-memory upstream for tests and benches.

pub mod app;
pub mod body;
pub mod cache;
pub mod config;
pub mod fetch;
pub mod http;
pub mod metrics;
pub mod readahead;
pub mod testing;
pub mod upstream;
