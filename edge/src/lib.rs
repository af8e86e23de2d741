//! tgcdn-edge: the stateless HTTP server near viewers.
//!
//! The request path reads as the module names, in order:
//! 1. [`http`] — accept, timeouts, per-IP limit, route, token check (through [`tokens`], a
//!    bounded memory of verified tokens), response headers, the one error→status map and
//!    the one log line per request;
//! 2. [`range`] — pure: conditional headers and `Range` against the file → a
//!    [`range::ResponsePlan`] (status, spans, multipart layout, length);
//! 3. [`body`] — streams the plan's spans in order with a sliding read-ahead window
//!    ([`readahead`] is its pure window controller);
//! 4. [`fetch`] — the edge's data sources: chunks through the cache under the fetch slots
//!    ([`slots`]: edge-wide and per [`client`]) and a deadline, and cached file metadata;
//! 5. [`cache`] — moka by bytes, LRU, one spawned fetch per missing chunk;
//! 6. [`upstream`] — the core, over QUIC or in-process.
//!
//! Beside the path: [`alloc`] says what a chunk buffer costs (and keeps chunks out of
//! glibc's heap), [`push`] applies what the cores push (revocations) to [`revoked`], the
//! union of the cores' revocation lists that [`fetch`] checks first, [`budget`] bounds
//! the chunk bytes bodies hold outside the cache, [`app`] wires the parts, [`config`] reads
//! `TGCDN_*`, [`metrics`] exports
//! Prometheus text, [`signals`] catches the binary's SIGINT/SIGTERM before it reports
//! serving, [`testing`] is an in-memory upstream for tests and benches.

pub mod alloc;
pub mod app;
pub mod body;
pub mod budget;
pub mod cache;
pub mod client;
pub mod config;
pub mod fetch;
pub mod http;
pub mod metrics;
pub mod push;
pub mod range;
pub mod readahead;
pub mod revoked;
pub mod signals;
pub mod slots;
pub mod testing;
pub mod tokens;
pub mod upstream;
