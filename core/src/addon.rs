//! The core's port for Stremio addon requests: what answers an [`AddonRequest`] that an edge
//! forwarded, as a trait the catalogue implements.
//!
//! The QUIC handler (and through it the one-box edge) calls [`AddonService::handle`] with a
//! request the edge already validated and made canonical (see [`AddonRequest`]); the
//! service answers JSON bytes with cache lifetimes, or a typed [`AddonError`] that
//! `quic::handler::wire_error` maps to the wire, the one place that does. A core without a
//! service answers `AddonDisabled` and the edge turns that into 404. This module is a leaf:
//! it knows neither the catalogue nor the transport.

use bytes::Bytes;
use tgcdn_shared::wire::AddonRequest;

/// How long an answer may be reused, in seconds: the edge caches it for `max_age_secs`
/// and passes all three to viewers as `Cache-Control`. Zero `max_age_secs`: do not cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheHints {
    pub max_age_secs: u32,
    pub stale_revalidate_secs: u32,
    pub stale_error_secs: u32,
}

/// A successful answer: the response body as sent to the viewer (JSON) and its lifetimes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddonAnswer {
    pub json: Bytes,
    pub cache: CacheHints,
}

/// Why a request was not answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddonError {
    /// No such catalogue, item or stream (HTTP 404 at the edge).
    #[error("not found")]
    NotFound,
    /// The request names something the addon does not serve in that form (HTTP 400).
    #[error("bad addon request: {0}")]
    BadRequest(String),
    /// Something the answer depends on is down right now; worth retrying (HTTP 502).
    #[error("addon unavailable: {0}")]
    Unavailable(String),
    /// A failure that retrying will not fix (HTTP 500); the text is logged, not sent.
    #[error("addon internal error: {0}")]
    Internal(String),
}

/// What answers addon requests. Implementations must be cheap enough to call on the
/// request path (the handler calls it directly on its task) and never panic on any
/// request: a request the service does not understand is `BadRequest` or `NotFound`.
pub trait AddonService: Send + Sync {
    fn handle(&self, request: &AddonRequest) -> Result<AddonAnswer, AddonError>;
}
