//! The TMDB metadata client: a parsed title (movie, or series with the seasons the channel
//! has) → [`Metadata`] with TMDB and IMDb ids, poster, backdrop, overview, genres, rating,
//! runtime and episode titles.
//!
//! Every answer goes through [`cache`] (sled) first, so an enriched title costs nothing on
//! restart; requests run under a deadline and are retried by the pure [`retry`] policy
//! (backoff on 429/5xx, `Retry-After` honoured). The choice of search hit and the JSON
//! shapes are pure in [`json`]. Without an API key, or while TMDB is unreachable, callers
//! get a typed error and catalogue the item from its parsed name; enrichment runs again later.

pub mod cache;
pub mod json;
pub mod retry;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use tgcdn_catalog::model::{Kind, Metadata};
use tgcdn_shared::config::FromSetting;

use self::cache::AnswerCache;
use self::json::{Images, MovieDetails, SearchPage, SeasonDetails, TvDetails};
use self::retry::{Next, Outcome, RetryPolicy};
use crate::clock::unix_now;
use crate::store::{Store, StoreError};

/// Seasons fetched for one series at most: a name claiming season 4000 must not cost 4000
/// requests.
pub const MAX_SEASONS_PER_LOOKUP: usize = 64;

/// A TMDB credential: a v3 API key (sent as `api_key=`) or a v4 read access token (a JWT,
/// sent as `Authorization: Bearer`). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// v4 tokens are JWTs; v3 keys are 32 hex digits.
    fn is_bearer_token(&self) -> bool {
        self.0.starts_with("eyJ")
    }
}

impl FromSetting for ApiKey {
    const SECRET: bool = true;
    fn expected() -> String {
        "a TMDB v3 API key or v4 read access token".to_owned()
    }
    fn from_text(text: &str) -> Option<Self> {
        let text = text.trim();
        let plausible =
            !text.is_empty() && text.len() <= 2048 && text.bytes().all(|b| b.is_ascii_graphic());
        plausible.then(|| Self(text.to_owned()))
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(…)")
    }
}

/// Where TMDB is and how to talk to it.
#[derive(Debug, Clone)]
pub struct TmdbSettings {
    pub api_key: Option<ApiKey>,
    /// API root, `https://api.themoviedb.org/3` in production.
    pub api_url: String,
    /// Image root, `https://image.tmdb.org/t/p`; sizes and paths are appended.
    pub image_url: String,
    /// Answer language (`en-US`); part of every cache key.
    pub language: String,
    /// Deadline of one HTTP request, connection included.
    pub timeout: Duration,
    /// How long a stored answer is trusted.
    pub cache_ttl: Duration,
    pub retry: RetryPolicy,
}

impl Default for TmdbSettings {
    fn default() -> Self {
        Self {
            api_key: None,
            api_url: "https://api.themoviedb.org/3".into(),
            image_url: "https://image.tmdb.org/t/p".into(),
            language: "en-US".into(),
            timeout: Duration::from_secs(10),
            cache_ttl: Duration::from_secs(7 * 24 * 3600),
            retry: RetryPolicy::default(),
        }
    }
}

/// What to look up: the catalogue's parsed title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub kind: Kind,
    pub title: String,
    pub year: Option<u16>,
    /// Series only: the seasons whose episode titles are wanted.
    pub seasons: Vec<u16>,
}

#[derive(Debug, thiserror::Error)]
pub enum TmdbError {
    #[error("no TMDB API key is configured")]
    NoApiKey,
    #[error("TMDB refused the API key (HTTP {status})")]
    Unauthorized { status: u16 },
    #[error("TMDB answered HTTP {status} for {path}")]
    Status {
        path: String,
        status: u16,
        /// How long TMDB asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    #[error("cannot reach TMDB for {path}")]
    Transport {
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("TMDB's answer for {path} has an unexpected shape")]
    Decode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("TMDB answer cache")]
    Store(#[from] StoreError),
}

impl TmdbError {
    /// Whether the same lookup may succeed later without an operator doing anything:
    /// TMDB being down or rate-limiting is; a missing or refused key is not.
    pub fn is_transient(&self) -> bool {
        match self {
            TmdbError::Status { status, .. } => retry::is_retryable_status(*status),
            TmdbError::Transport { .. } | TmdbError::Store(_) => true,
            TmdbError::NoApiKey
            | TmdbError::Unauthorized { .. }
            | TmdbError::Decode { .. }
            | TmdbError::Client(_) => false,
        }
    }
}

/// Counters for `/metrics`; relaxed atomics, read by the reporter.
#[derive(Debug, Default)]
pub struct TmdbStats {
    pub requests: AtomicU64,
    pub cache_hits: AtomicU64,
    pub retries: AtomicU64,
    pub failures: AtomicU64,
}

pub struct TmdbClient {
    http: reqwest::Client,
    settings: TmdbSettings,
    images: Images,
    cache: AnswerCache,
    stats: TmdbStats,
}

impl TmdbClient {
    pub fn new(settings: TmdbSettings, store: &Store) -> Result<Self, TmdbError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("tgcdn/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(TmdbError::Client)?;
        let cache = AnswerCache::new(store.tree(cache::TREE)?, settings.cache_ttl.as_secs());
        Ok(Self {
            http,
            images: Images {
                base: settings.image_url.clone(),
            },
            settings,
            cache,
            stats: TmdbStats::default(),
        })
    }

    pub fn stats(&self) -> &TmdbStats {
        &self.stats
    }

    pub fn has_api_key(&self) -> bool {
        self.settings.api_key.is_some()
    }

    /// The metadata of the title `lookup` names, `Ok(None)` when TMDB has nothing close
    /// enough (see [`json::pick`]).
    pub async fn resolve(&self, lookup: &Lookup) -> Result<Option<Metadata>, TmdbError> {
        let Some(id) = self.search(lookup).await? else {
            return Ok(None);
        };
        let metadata = match lookup.kind {
            Kind::Movie => {
                let details: MovieDetails = self
                    .get(&format!("/movie/{id}"), external_ids())
                    .await?
                    .ok_or_else(|| vanished(format!("/movie/{id}")))?;
                json::movie_metadata(details, &self.images)
            }
            Kind::Series => {
                let details: TvDetails = self
                    .get(&format!("/tv/{id}"), external_ids())
                    .await?
                    .ok_or_else(|| vanished(format!("/tv/{id}")))?;
                let seasons = self.seasons(id, &lookup.seasons).await?;
                json::series_metadata(details, seasons, &self.images)
            }
        };
        Ok(Some(metadata))
    }

    /// The TMDB id of the best hit. TMDB's year filter is strict (a film shown at a festival
    /// the year before its release is filed under the release), so a search with the year
    /// that finds nothing acceptable is asked again without it and judged with the year.
    async fn search(&self, lookup: &Lookup) -> Result<Option<u64>, TmdbError> {
        let (path, year_param) = json::search_endpoint(lookup.kind);
        let base = vec![
            ("query", lookup.title.clone()),
            ("include_adult", "false".to_owned()),
        ];
        let mut attempts = Vec::with_capacity(2);
        if let Some(year) = lookup.year {
            let mut with_year = base.clone();
            with_year.push((year_param, year.to_string()));
            attempts.push(with_year);
        }
        attempts.push(base);
        for params in attempts {
            let page: SearchPage = self.get(path, params).await?.unwrap_or(SearchPage {
                results: Vec::new(),
            });
            if let Some(hit) = json::pick(&page.results, &lookup.title, lookup.year) {
                return Ok(Some(hit.id));
            }
        }
        Ok(None)
    }

    /// Episode lists of the wanted seasons; a season TMDB does not know is skipped.
    async fn seasons(&self, id: u64, wanted: &[u16]) -> Result<Vec<SeasonDetails>, TmdbError> {
        let mut numbers = wanted.to_vec();
        numbers.sort_unstable();
        numbers.dedup();
        numbers.truncate(MAX_SEASONS_PER_LOOKUP);
        let mut seasons = Vec::with_capacity(numbers.len());
        for number in numbers {
            if let Some(season) = self
                .get(&format!("/tv/{id}/season/{number}"), Vec::new())
                .await?
            {
                seasons.push(season);
            }
        }
        Ok(seasons)
    }

    /// GET `path` with `params` (the language added), from the cache when fresh; `Ok(None)`
    /// for a 404.
    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        mut params: Vec<(&'static str, String)>,
    ) -> Result<Option<T>, TmdbError> {
        let api_key = self.settings.api_key.as_ref().ok_or(TmdbError::NoApiKey)?;
        params.push(("language", self.settings.language.clone()));
        let key = cache::key(path, &params);
        if let Some(body) = self.cache.get(&key, unix_now())? {
            // An entry this build cannot read (written by another version) is a miss.
            if let Ok(value) = serde_json::from_slice(&body) {
                self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Some(value));
            }
        }
        let Some(body) = self.fetch(path, &params, api_key).await? else {
            return Ok(None);
        };
        // Decoded before it is stored: a gateway's HTML page must not be cached for days.
        let value = serde_json::from_slice(&body).map_err(|source| TmdbError::Decode {
            path: path.to_owned(),
            source,
        })?;
        self.cache.put(&key, &body, unix_now())?;
        Ok(Some(value))
    }

    /// The HTTP exchange with retries; the body of a 200, `None` for a 404.
    async fn fetch(
        &self,
        path: &str,
        params: &[(&'static str, String)],
        api_key: &ApiKey,
    ) -> Result<Option<Vec<u8>>, TmdbError> {
        let url = format!("{}{path}", self.settings.api_url.trim_end_matches('/'));
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let mut request = self.http.get(&url).query(params);
            request = if api_key.is_bearer_token() {
                request.bearer_auth(&api_key.0)
            } else {
                request.query(&[("api_key", &api_key.0)])
            };
            let (outcome, error) = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    match status {
                        200 => match response.bytes().await {
                            Ok(body) => return Ok(Some(body.to_vec())),
                            Err(source) => (Outcome::Transport, transport(path, source)),
                        },
                        404 => return Ok(None),
                        401 | 403 => {
                            self.stats.failures.fetch_add(1, Ordering::Relaxed);
                            return Err(TmdbError::Unauthorized { status });
                        }
                        _ => {
                            let retry_after = response
                                .headers()
                                .get(reqwest::header::RETRY_AFTER)
                                .and_then(|value| value.to_str().ok())
                                .map(str::to_owned);
                            let error = TmdbError::Status {
                                path: path.to_owned(),
                                status,
                                retry_after: None,
                            };
                            (
                                Outcome::Status {
                                    status,
                                    retry_after,
                                },
                                error,
                            )
                        }
                    }
                }
                Err(source) => (Outcome::Transport, transport(path, source)),
            };
            match self
                .settings
                .retry
                .next(attempt, &outcome, SystemTime::now())
            {
                Next::RetryAfter(pause) => {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(path, attempt, ?pause, "TMDB request failed, retrying");
                    tokio::time::sleep(pause).await;
                }
                Next::GiveUp { hint } => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    return Err(with_hint(error, hint));
                }
            }
        }
    }
}

fn external_ids() -> Vec<(&'static str, String)> {
    vec![("append_to_response", "external_ids".to_owned())]
}

fn transport(path: &str, source: reqwest::Error) -> TmdbError {
    TmdbError::Transport {
        path: path.to_owned(),
        source,
    }
}

/// A search hit whose details then 404: TMDB removed it between two calls.
fn vanished(path: String) -> TmdbError {
    TmdbError::Status {
        path,
        status: 404,
        retry_after: None,
    }
}

fn with_hint(error: TmdbError, hint: Option<Duration>) -> TmdbError {
    match error {
        TmdbError::Status { path, status, .. } => TmdbError::Status {
            path,
            status,
            retry_after: hint,
        },
        other => other,
    }
}
