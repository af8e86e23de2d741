//! The Stremio addon routes: `/manifest.json`, `/{resource}/{type}/{id}[/{extra}].json`,
//! optionally under a secret path prefix, relayed to the core and cached here.
//!
//! Called by [`super::dispatch`] for [`super::route::Route::Addon`]. Order per request: the
//! addon must be configured (a base URL) → the secret prefix, compared in constant time
//! ([`path::strip_secret`]) → the route, ids and extra validated into a canonical call
//! ([`path::parse`]) → the method (`OPTIONS` preflight answered here) → the answer from
//! [`cache::AnswerCache`] (one core call per key at a time, kept as long as the core says).
//! Everything refused before the cache costs the core nothing. CORS headers are added to
//! every addon response, errors included, by [`add_cors`] in [`super::handle`]. Statuses
//! for failures are still chosen in [`super::response`].

pub mod cache;
pub mod path;

use std::sync::Arc;
use std::time::Instant;

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE,
};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use tgcdn_shared::config::FromSetting;
use tgcdn_shared::wire::WireError;

use super::download::PreparedBody;
use super::response::{EdgeBody, EdgeError, error_response};
use crate::metrics::AnswerCounters;
use crate::upstream::{Upstream, UpstreamError};
use cache::{Answer, AnswerCache, AnswerKey, FetchError};
use path::PathError;

/// The methods addon routes answer, for `Allow` and CORS.
pub const METHODS: &str = "GET, HEAD, OPTIONS";

/// Addon knobs (validated configuration).
#[derive(Debug, Clone)]
pub struct AddonSettings {
    /// The edge's public base URL, sent to the core so stream links point back here.
    /// `None`: the addon routes answer 404.
    pub base_url: Option<String>,
    /// When set, addon routes exist only under `/{secret}/…`.
    pub secret: Option<AddonSecret>,
    /// Bytes of answers (JSON and keys) the edge keeps.
    pub cache_bytes: u64,
    /// Addon calls in flight to the core, edge-wide (503 beyond).
    pub concurrency: usize,
}

impl Default for AddonSettings {
    fn default() -> Self {
        AddonSettings {
            base_url: None,
            secret: None,
            cache_bytes: 16 << 20,
            concurrency: 32,
        }
    }
}

/// The addon's path secret: 16–128 characters of `A-Z a-z 0-9 - _`, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AddonSecret(String);

impl AddonSecret {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AddonSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AddonSecret({} chars)", self.0.len())
    }
}

impl FromSetting for AddonSecret {
    const SECRET: bool = true;
    fn expected() -> String {
        "16 to 128 characters of A-Z, a-z, 0-9, '-' and '_' (it becomes a URL path segment)"
            .to_owned()
    }
    fn from_text(text: &str) -> Option<Self> {
        let ok = (16..=128).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| AddonSecret(text.to_owned()))
    }
}

/// Addon requests from `OPTIONS`, `GET`/`HEAD` or anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddonMethod {
    Get,
    Head,
    Options,
    Other,
}

/// See the module docs.
pub struct AddonEdge {
    base_url: Option<Arc<str>>,
    secret: Option<AddonSecret>,
    answers: AnswerCache,
}

impl AddonEdge {
    /// Lookups are counted in `counters` (the edge's `/metrics`).
    pub fn new(
        upstream: Arc<dyn Upstream>,
        settings: AddonSettings,
        counters: AnswerCounters,
    ) -> Self {
        AddonEdge {
            base_url: settings.base_url.map(Arc::from),
            secret: settings.secret,
            answers: AnswerCache::new(
                upstream,
                settings.cache_bytes,
                settings.concurrency,
                counters,
            ),
        }
    }

    /// The answers' cache, for tests and metrics.
    pub fn answers(&self) -> &AnswerCache {
        &self.answers
    }

    /// The response to an addon request (errors included; CORS is added by the caller).
    pub async fn serve(
        &self,
        method: AddonMethod,
        raw_path: &str,
    ) -> (Response<EdgeBody>, PreparedBody) {
        match self.answer(method, raw_path).await {
            Ok(reply) => reply,
            Err(error) => {
                let mut response = error_response(&error, method == AddonMethod::Head);
                response
                    .headers_mut()
                    .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                (response, PreparedBody::Empty)
            }
        }
    }

    async fn answer(
        &self,
        method: AddonMethod,
        raw_path: &str,
    ) -> Result<(Response<EdgeBody>, PreparedBody), EdgeError> {
        let base_url = self.base_url.as_ref().ok_or(EdgeError::NotFound)?;
        let secret = self.secret.as_ref().map(AddonSecret::as_str);
        let inner = path::strip_secret(raw_path, secret).ok_or(EdgeError::NotFound)?;
        let call = path::parse(inner).map_err(|error| match error {
            PathError::NotFound => EdgeError::NotFound,
            PathError::BadRequest(why) => EdgeError::BadRequest(why),
        })?;
        match method {
            AddonMethod::Options => return Ok(preflight()),
            AddonMethod::Other => return Err(EdgeError::MethodNotAllowed { allow: METHODS }),
            AddonMethod::Get | AddonMethod::Head => {}
        }
        let key = AnswerKey {
            base_url: Arc::clone(base_url),
            path: call.path,
            query: call.query,
        };
        let answer = self.answers.get(key).await.map_err(|error| match error {
            FetchError::Upstream(error) => EdgeError::Upstream(error),
            FetchError::Busy => EdgeError::Busy,
        })?;
        found_response(&answer, Instant::now())
    }
}

/// 200 with the JSON and `Cache-Control` from the core's lifetimes (what is left of them).
fn found_response(
    answer: &Answer,
    now: Instant,
) -> Result<(Response<EdgeBody>, PreparedBody), EdgeError> {
    let Some(found) = &answer.found else {
        return Err(EdgeError::Upstream(UpstreamError::Core(
            WireError::NotFound,
        )));
    };
    let mut response = Response::new(EdgeBody::Empty);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(found.json.len()));
    let header = &found.header;
    let cache_control = if header.max_age_secs == 0 {
        "no-cache".to_owned()
    } else {
        format!(
            "public, max-age={}, stale-while-revalidate={}, stale-if-error={}",
            answer.remaining_secs(now),
            header.stale_revalidate_secs,
            header.stale_error_secs
        )
    };
    if let Ok(value) = HeaderValue::from_str(&cache_control) {
        headers.insert(CACHE_CONTROL, value);
    }
    Ok((response, PreparedBody::Fixed(found.json.clone())))
}

/// `204` to a CORS preflight: any origin may call the addon with any header.
fn preflight() -> (Response<EdgeBody>, PreparedBody) {
    let mut response = Response::new(EdgeBody::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
        .headers_mut()
        .insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    (response, PreparedBody::Empty)
}

/// The CORS headers every addon response carries (Stremio's web app calls from its origin).
pub fn add_cors(headers: &mut HeaderMap) {
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(METHODS),
    );
    headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("*"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_setting_is_checked_and_never_printed() {
        let good = "abcdefghijklmnop_-0123";
        let secret = AddonSecret::from_text(good).unwrap();
        assert!(!format!("{secret:?}").contains(good));
        for bad in [
            "short",
            "has space in it!!!!",
            "slash/in/the/secret",
            &"x".repeat(129),
        ] {
            assert!(AddonSecret::from_text(bad).is_none(), "{bad}");
        }
    }
}
