//! The Stremio addon: request routes and the JSON answers built from the [`Catalog`].
//!
//! The core parses a forwarded path with [`AddonRoute::parse`] and calls [`answer`]; the
//! result is JSON bytes plus [`CacheHints`] the edge turns into HTTP cache headers (the
//! same values are in the body as `cacheMaxAge`/`staleRevalidate`/`staleError` for
//! Stremio's own cache). Errors are [`AddonError`]: 404 for anything not ours, 400 for a
//! malformed request, mapped to a status in one place ([`AddonError::status`]).
//!
//! Stream URLs are `{base_url}{link path}`: the caller passes its public base URL and a
//! [`LinkMinter`] that signs a link path for a file — this crate never sees a secret.
//! Submodules: `route` (paths), `json` (answer shapes and what goes in them).

mod json;
mod route;
#[cfg(test)]
mod tests;

pub use json::{AddonInfo, not_web_ready};
pub use route::{
    AddonRoute, CatalogExtra, MAX_GENRE, MAX_PATH, MAX_SEARCH, MAX_SKIP, PAGE, catalog_id,
};

use tgcdn_shared::FileRef;

use crate::model::Catalog;

/// Signs a link path (`/…`, no host) that streams `file` under `file_name`.
pub trait LinkMinter {
    fn link_path(&self, file: &FileRef, file_name: &str) -> String;
}

impl<F: Fn(&FileRef, &str) -> String> LinkMinter for F {
    fn link_path(&self, file: &FileRef, file_name: &str) -> String {
        self(file, file_name)
    }
}

/// Where stream URLs point: the answering edge's public base URL and the link signer.
#[derive(Clone, Copy)]
pub struct Links<'a> {
    /// `https://edge.example.org` (a trailing `/` is tolerated).
    pub base_url: &'a str,
    pub minter: &'a dyn LinkMinter,
}

impl Links<'_> {
    fn url(&self, file: &FileRef, file_name: &str) -> String {
        let path = self.minter.link_path(file, file_name);
        let base = self.base_url.trim_end_matches('/');
        if path.starts_with('/') {
            format!("{base}{path}")
        } else {
            format!("{base}/{path}")
        }
    }
}

/// How long an answer may be cached (seconds), in the body and in HTTP headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheHints {
    pub max_age: u32,
    pub stale_revalidate: u32,
    pub stale_error: u32,
}

impl CacheHints {
    /// The manifest changes only when genres or the version do.
    pub const MANIFEST: CacheHints = CacheHints {
        max_age: 3600,
        stale_revalidate: 86_400,
        stale_error: 86_400,
    };
    /// A new post should show within minutes; a popular page is served by the edges.
    pub const CATALOG: CacheHints = CacheHints {
        max_age: 300,
        stale_revalidate: 3600,
        stale_error: 86_400,
    };
    /// Metadata changes rarely (an enrichment, a new episode).
    pub const META: CacheHints = CacheHints {
        max_age: 3600,
        stale_revalidate: 86_400,
        stale_error: 86_400,
    };
    /// Streams carry signed URLs that expire: short, and never served stale on error. The
    /// link lifetime must exceed `max_age + stale_revalidate` plus a viewing.
    pub const STREAM: CacheHints = CacheHints {
        max_age: 60,
        stale_revalidate: 240,
        stale_error: 0,
    };

    /// The `Cache-Control` value for these hints.
    pub fn cache_control(&self) -> String {
        let mut v = format!("public, max-age={}", self.max_age);
        if self.stale_revalidate > 0 {
            v += &format!(", stale-while-revalidate={}", self.stale_revalidate);
        }
        if self.stale_error > 0 {
            v += &format!(", stale-if-error={}", self.stale_error);
        }
        v
    }
}

/// A JSON answer and how long it may be cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub body: Vec<u8>,
    pub cache: CacheHints,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddonError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// Serialising an answer failed (cannot happen for these shapes; kept typed, not a panic).
    #[error("encoding the answer: {0}")]
    Encode(String),
}

impl AddonError {
    fn not_found(what: &str) -> Self {
        // Echo at most a short prefix: the path is client input.
        AddonError::NotFound(what.chars().take(120).collect())
    }

    fn bad(reason: &'static str) -> Self {
        AddonError::BadRequest(reason)
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            AddonError::NotFound(_) => 404,
            AddonError::BadRequest(_) => 400,
            AddonError::Encode(_) => 500,
        }
    }
}

/// Answers a parsed route from the catalogue.
pub fn answer(
    route: &AddonRoute,
    catalog: &Catalog,
    info: &AddonInfo,
    links: Links<'_>,
) -> Result<Answer, AddonError> {
    let (body, cache) = match route {
        AddonRoute::Manifest => (
            encode(&json::manifest(info, catalog))?,
            CacheHints::MANIFEST,
        ),
        AddonRoute::Catalog { kind, extra } => {
            let page = json::catalog_page(catalog, *kind, extra);
            (
                encode(&Cached::new(page, CacheHints::CATALOG))?,
                CacheHints::CATALOG,
            )
        }
        AddonRoute::Meta { kind, id } => {
            let meta = json::meta(catalog, *kind, id)?;
            (
                encode(&Cached::new(meta, CacheHints::META))?,
                CacheHints::META,
            )
        }
        AddonRoute::Stream { kind, id, episode } => {
            let streams = json::streams(catalog, *kind, id, *episode, links);
            (
                encode(&Cached::new(streams, CacheHints::STREAM))?,
                CacheHints::STREAM,
            )
        }
    };
    Ok(Answer { body, cache })
}

/// A resource answer with Stremio's cache fields beside its own.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Cached<T> {
    #[serde(flatten)]
    inner: T,
    cache_max_age: u32,
    stale_revalidate: u32,
    stale_error: u32,
}

impl<T> Cached<T> {
    fn new(inner: T, hints: CacheHints) -> Self {
        Cached {
            inner,
            cache_max_age: hints.max_age,
            stale_revalidate: hints.stale_revalidate,
            stale_error: hints.stale_error,
        }
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, AddonError> {
    serde_json::to_vec(value).map_err(|e| AddonError::Encode(e.to_string()))
}
