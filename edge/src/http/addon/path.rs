//! Pure parsing of Stremio addon paths: the optional secret prefix, the route shape, ids and
//! the `extra` query, into the canonical request the core is asked (see
//! [`tgcdn_shared::wire::AddonRequest`]).
//!
//! Called by [`super::AddonEdge`] before anything else, so a request that fails here costs
//! the core nothing. Everything a viewer controls is bounded here: path and segment
//! lengths, charsets, id shapes, `skip` range. No I/O, no allocation beyond the canonical
//! output.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use subtle::ConstantTimeEq;

/// Longest raw path accepted (before percent-decoding).
pub const MAX_RAW_PATH: usize = 1024;
/// Longest raw path segment accepted.
pub const MAX_SEGMENT: usize = 512;
/// Longest `search` text, in characters after decoding.
pub const MAX_SEARCH_CHARS: usize = 128;
/// Longest `genre`, in characters after decoding.
pub const MAX_GENRE_CHARS: usize = 64;
/// Catalogue pages hold 100 items; `skip` is a multiple of this.
pub const PAGE: u32 = 100;
/// Largest `skip` accepted: 1000 pages deep.
pub const MAX_SKIP: u32 = 100_000;
/// Longest catalogue id and longest `tgcdn…` id.
pub const MAX_ID: usize = 96;

/// What `extra` values are escaped with in the canonical query (encodeURIComponent's set).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'!')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Why a path is refused. `NotFound` for paths that are not an addon route of ours (shape,
/// resource, type, id prefix); `BadRequest` for a route of ours with a malformed id or extra.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("not an addon route")]
    NotFound,
    #[error("malformed addon request: {0}")]
    BadRequest(&'static str),
}

/// A validated addon call in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddonCall {
    /// `/manifest.json` or `/{resource}/{type}/{id}.json`, id decoded, no secret.
    pub path: String,
    /// Canonical extra: `search=…&skip=…&genre=…` (present keys, that order), or empty.
    pub query: String,
}

/// The addon path under the configured secret: `Some(rest)` (starting with `/`) when the
/// first segment equals `secret` (compared in constant time) or no secret is set.
pub fn strip_secret<'a>(path: &'a str, secret: Option<&str>) -> Option<&'a str> {
    let Some(secret) = secret else {
        return Some(path);
    };
    let rest = path.strip_prefix('/')?;
    let (first, inner) = rest.split_at(rest.find('/')?);
    bool::from(first.as_bytes().ct_eq(secret.as_bytes())).then_some(inner)
}

/// Parses an addon path (after [`strip_secret`]) into its canonical call.
pub fn parse(path: &str) -> Result<AddonCall, PathError> {
    if path.len() > MAX_RAW_PATH {
        return Err(PathError::NotFound);
    }
    let stem = path
        .strip_prefix('/')
        .and_then(|p| p.strip_suffix(".json"))
        .ok_or(PathError::NotFound)?;
    if stem == "manifest" {
        return Ok(AddonCall {
            path: "/manifest.json".to_owned(),
            query: String::new(),
        });
    }
    let segments: Vec<&str> = stem.split('/').collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || s.len() > MAX_SEGMENT)
    {
        return Err(PathError::NotFound);
    }
    let (resource, kind, raw_id, extra) = match segments.as_slice() {
        [resource, kind, id] => (*resource, *kind, *id, None),
        [resource, kind, id, extra] => (*resource, *kind, *id, Some(*extra)),
        _ => return Err(PathError::NotFound),
    };
    let resource = Resource::parse(resource)?;
    let series = match kind {
        "movie" => false,
        "series" => true,
        _ => return Err(PathError::NotFound),
    };
    let id = decode(raw_id).ok_or(PathError::BadRequest("id is not UTF-8"))?;
    resource.check_id(&id, series)?;
    let query = match extra {
        None => String::new(),
        Some(_) if resource != Resource::Catalog => {
            return Err(PathError::BadRequest("extra only applies to catalogs"));
        }
        Some(extra) => Extra::parse(extra)?.canonical(),
    };
    Ok(AddonCall {
        path: format!("/{}/{kind}/{id}.json", resource.name()),
        query,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Catalog,
    Meta,
    Stream,
}

impl Resource {
    fn parse(segment: &str) -> Result<Self, PathError> {
        match segment {
            "catalog" => Ok(Resource::Catalog),
            "meta" => Ok(Resource::Meta),
            "stream" => Ok(Resource::Stream),
            // Not served (yet): `subtitles` and anything else are not our routes.
            _ => Err(PathError::NotFound),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Resource::Catalog => "catalog",
            Resource::Meta => "meta",
            Resource::Stream => "stream",
        }
    }

    /// Catalogue ids are names; meta and stream ids are `tt…` or `tgcdn…`, with
    /// `:season:episode` only on a series stream.
    fn check_id(self, id: &str, series: bool) -> Result<(), PathError> {
        if self == Resource::Catalog {
            // Starts with a letter or digit, so `.` and `..` are never catalogue ids.
            let ok = id.starts_with(|c: char| c.is_ascii_alphanumeric())
                && id.len() <= MAX_ID
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            return ok
                .then_some(())
                .ok_or(PathError::BadRequest("bad catalog id"));
        }
        let episode_allowed = self == Resource::Stream && series;
        if let Some(rest) = id.strip_prefix("tt") {
            return check_imdb(rest, episode_allowed);
        }
        if let Some(rest) = id.strip_prefix("tgcdn") {
            return check_tgcdn(rest, episode_allowed);
        }
        // Another addon's id (kitsu:…, tmdb:…): not ours to answer.
        Err(PathError::NotFound)
    }
}

/// `tt` is followed by 1–10 digits, then `:season:episode` where allowed.
fn check_imdb(rest: &str, episode_allowed: bool) -> Result<(), PathError> {
    let mut parts = rest.split(':');
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    let base = parts.next().unwrap_or_default();
    if !digits(base, 10) {
        return Err(PathError::BadRequest("bad IMDb id"));
    }
    match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => Ok(()),
        (Some(season), Some(episode), None)
            if episode_allowed && digits(season, 4) && digits(episode, 5) =>
        {
            Ok(())
        }
        _ => Err(PathError::BadRequest("bad IMDb episode id")),
    }
}

/// `tgcdn`, optionally a `:` (the namespace separator of Stremio ids such as the
/// catalogue's `tgcdn:0123…`), then 1–91 id characters; a further `:` (the episode
/// separator) only where an episode id is allowed. The catalogue defines the rest.
fn check_tgcdn(rest: &str, episode_allowed: bool) -> Result<(), PathError> {
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    let ok = !rest.is_empty()
        && rest.len() + "tgcdn".len() <= MAX_ID
        && rest.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'_' | b'-')
                || (b == b':' && episode_allowed)
        });
    ok.then_some(())
        .ok_or(PathError::BadRequest("bad tgcdn id"))
}

/// The `extra` segment: a URL-encoded query string of `search`, `skip` and `genre`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Extra {
    search: Option<String>,
    skip: u32,
    genre: Option<String>,
}

impl Extra {
    fn parse(raw: &str) -> Result<Self, PathError> {
        let mut extra = Extra::default();
        let mut seen_skip = false;
        for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or(PathError::BadRequest("extra pair without '='"))?;
            let value = decode_query(value).ok_or(PathError::BadRequest("extra is not UTF-8"))?;
            match key {
                "search" if extra.search.is_none() => {
                    extra.search = Some(text(value, MAX_SEARCH_CHARS, "bad search")?);
                }
                "genre" if extra.genre.is_none() => {
                    extra.genre = Some(text(value, MAX_GENRE_CHARS, "bad genre")?);
                }
                "skip" if !seen_skip => {
                    seen_skip = true;
                    extra.skip = skip(&value)?;
                }
                "search" | "genre" | "skip" => {
                    return Err(PathError::BadRequest("extra key given twice"));
                }
                _ => return Err(PathError::BadRequest("unknown extra key")),
            }
        }
        Ok(extra)
    }

    fn canonical(&self) -> String {
        let mut parts = Vec::with_capacity(3);
        if let Some(search) = &self.search {
            parts.push(format!(
                "search={}",
                utf8_percent_encode(search, QUERY_VALUE)
            ));
        }
        if self.skip > 0 {
            parts.push(format!("skip={}", self.skip));
        }
        if let Some(genre) = &self.genre {
            parts.push(format!("genre={}", utf8_percent_encode(genre, QUERY_VALUE)));
        }
        parts.join("&")
    }
}

fn text(value: String, max_chars: usize, what: &'static str) -> Result<String, PathError> {
    let ok = !value.trim().is_empty()
        && value.chars().count() <= max_chars
        && !value.chars().any(char::is_control);
    ok.then_some(value).ok_or(PathError::BadRequest(what))
}

fn skip(value: &str) -> Result<u32, PathError> {
    let bad = PathError::BadRequest("skip must be a multiple of 100 up to 100000");
    if value.is_empty() || value.len() > 6 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    let skip: u32 = value.parse().map_err(|_| bad)?;
    (skip.is_multiple_of(PAGE) && skip <= MAX_SKIP)
        .then_some(skip)
        .ok_or(bad)
}

/// A percent-decoded path segment, if it is UTF-8.
fn decode(segment: &str) -> Option<String> {
    percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|text| text.into_owned())
}

/// A query value as Node's `querystring` (the addon SDK's) reads it: `+` is a space.
fn decode_query(value: &str) -> Option<String> {
    decode(&value.replace('+', " "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn call(path: &str, query: &str) -> Result<AddonCall, PathError> {
        Ok(AddonCall {
            path: path.to_owned(),
            query: query.to_owned(),
        })
    }

    #[test]
    fn every_route_shape() {
        assert_eq!(parse("/manifest.json"), call("/manifest.json", ""));
        assert_eq!(
            parse("/catalog/movie/tgcdn-movies.json"),
            call("/catalog/movie/tgcdn-movies.json", "")
        );
        assert_eq!(
            parse("/catalog/series/top/skip=200&search=blade%20runner+2049.json"),
            call(
                "/catalog/series/top.json",
                "search=blade%20runner%202049&skip=200"
            )
        );
        assert_eq!(
            parse("/catalog/movie/top/genre=Science%20Fiction&skip=0.json"),
            call("/catalog/movie/top.json", "genre=Science%20Fiction")
        );
        assert_eq!(
            parse("/meta/series/tt0903747.json"),
            call("/meta/series/tt0903747.json", "")
        );
        assert_eq!(
            parse("/stream/series/tt0903747%3A1%3A2.json"),
            call("/stream/series/tt0903747:1:2.json", "")
        );
        assert_eq!(
            parse("/stream/series/tt0903747:10:12.json"),
            call("/stream/series/tt0903747:10:12.json", "")
        );
        assert_eq!(
            parse("/stream/movie/tgcdnAbC_9-x.json"),
            call("/stream/movie/tgcdnAbC_9-x.json", "")
        );
        assert_eq!(
            parse("/stream/series/tgcdn42:1:3.json"),
            call("/stream/series/tgcdn42:1:3.json", ""),
        );
        assert_eq!(
            parse("/meta/movie/tgcdn:0123456789abcdef.json"),
            call("/meta/movie/tgcdn:0123456789abcdef.json", "")
        );
        assert_eq!(
            parse("/stream/series/tgcdn:0123456789abcdef:2:7.json"),
            call("/stream/series/tgcdn:0123456789abcdef:2:7.json", "")
        );
    }

    #[test]
    fn foreign_or_unknown_routes_are_not_found() {
        for path in [
            "/",
            "/manifest",
            "/x/manifest.json",
            "/subtitles/movie/tt1.json",
            "/addon_catalog/movie/x.json",
            "/catalog/tv/top.json",
            "/catalog/movie.json",
            "/catalog//top.json",
            "/catalog/movie/top/a/b.json",
            "/stream/movie/kitsu:1.json",
            "/meta/movie/tmdb%3A1.json",
            &format!("/catalog/movie/{}.json", "a".repeat(MAX_RAW_PATH)),
        ] {
            assert_eq!(parse(path), Err(PathError::NotFound), "{path}");
        }
    }

    #[test]
    fn malformed_ids_and_extras_are_bad_requests() {
        for path in [
            "/meta/movie/tt.json",
            "/meta/movie/ttabc.json",
            "/meta/movie/tt12345678901.json",
            "/meta/series/tt1:1:2.json",
            "/stream/movie/tt1:1:2.json",
            "/stream/series/tt1:1.json",
            "/stream/series/tt1:1:2:3.json",
            "/stream/series/tt1:a:2.json",
            "/stream/movie/tgcdn.json",
            "/stream/movie/tgcdn%2F..%2F.json",
            "/stream/movie/tgcdn1:2:3.json",
            "/meta/movie/tgcdn:0123456789abcdef:1:2.json",
            "/stream/movie/tgcdn:.json",
            "/meta/movie/tt1%FF.json",
            "/catalog/movie/to%20p.json",
            "/catalog/movie/%2E%2E.json",
            "/catalog/movie/.hidden.json",
            "/catalog/movie/top/skip=50.json",
            "/catalog/movie/top/skip=100100.json",
            "/catalog/movie/top/skip=-100.json",
            "/catalog/movie/top/skip=1e3.json",
            "/catalog/movie/top/skip=100&skip=200.json",
            "/catalog/movie/top/search=a&search=b.json",
            "/catalog/movie/top/search=.json",
            "/catalog/movie/top/search=%0A.json",
            "/catalog/movie/top/limit=5.json",
            "/catalog/movie/top/search.json",
            "/meta/movie/tt1/search=x.json",
        ] {
            assert!(
                matches!(parse(path), Err(PathError::BadRequest(_))),
                "{path}: {:?}",
                parse(path)
            );
        }
        let long = format!(
            "/catalog/movie/top/search={}.json",
            "x".repeat(MAX_SEARCH_CHARS + 1)
        );
        assert!(matches!(parse(&long), Err(PathError::BadRequest(_))));
    }

    #[test]
    fn extra_order_does_not_change_the_canonical_query() {
        let a = parse("/catalog/movie/top/genre=Drama&search=x&skip=100.json").unwrap();
        let b = parse("/catalog/movie/top/skip=100&search=x&genre=Drama.json").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.query, "search=x&skip=100&genre=Drama");
    }

    #[test]
    fn secret_prefix() {
        let secret = Some("s3cr3t-s3cr3t-s3cr3t");
        assert_eq!(
            strip_secret("/s3cr3t-s3cr3t-s3cr3t/manifest.json", secret),
            Some("/manifest.json")
        );
        assert_eq!(strip_secret("/manifest.json", secret), None);
        assert_eq!(
            strip_secret("/s3cr3t-s3cr3t-s3cr3X/manifest.json", secret),
            None
        );
        assert_eq!(strip_secret("/s3cr3t-s3cr3t-s3cr3t", secret), None);
        assert_eq!(strip_secret("", secret), None);
        assert_eq!(strip_secret("/manifest.json", None), Some("/manifest.json"));
    }

    proptest! {
        /// Whatever the path, parsing never panics and a success is canonical: parsing its
        /// own output gives it back.
        #[test]
        fn parse_never_panics_and_is_canonical(path in "/[a-z%0-9:./&=+ -]{0,80}\\.json") {
            if let Ok(found) = parse(&path) {
                let again = if found.query.is_empty() {
                    found.path.clone()
                } else {
                    format!("{}/{}.json", found.path.trim_end_matches(".json"), found.query)
                };
                prop_assert_eq!(parse(&again), Ok(found));
            }
        }

        #[test]
        fn arbitrary_text_never_panics(path in any::<String>(), secret in "[a-z]{0,20}") {
            let _ = parse(&path);
            let _ = strip_secret(&path, Some(&secret));
        }
    }
}
