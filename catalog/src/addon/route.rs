//! Addon request paths → [`AddonRoute`]: which resource, type, id and catalogue extras a
//! Stremio client asked for, or why the path is refused.
//!
//! The edge strips any secret prefix and forwards the rest; the core parses it here before
//! it touches the catalogue. Every piece a client controls is bounded (path, id, search and
//! genre lengths, skip) so a request can cost neither memory nor a cache full of variants.

use percent_encoding::percent_decode_str;

use super::AddonError;
use crate::model::{Kind, is_imdb_id, is_tgcdn_id};

/// Catalogue pages hold this many items; `skip` must be a multiple of it.
pub const PAGE: usize = 100;
/// Longest path accepted, in bytes.
pub const MAX_PATH: usize = 1024;
/// Longest search accepted, in characters.
pub const MAX_SEARCH: usize = 100;
/// Longest genre accepted, in characters.
pub const MAX_GENRE: usize = 64;
/// Deepest page: a catalogue larger than this is searched, not scrolled.
pub const MAX_SKIP: usize = 100_000;

/// The catalogue id the manifest lists for `kind`.
pub fn catalog_id(kind: Kind) -> &'static str {
    match kind {
        Kind::Movie => "tgcdn-movie",
        Kind::Series => "tgcdn-series",
    }
}

/// A parsed addon request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddonRoute {
    Manifest,
    Catalog {
        kind: Kind,
        extra: CatalogExtra,
    },
    /// `id` is a title id (IMDb or tgcdn).
    Meta {
        kind: Kind,
        id: String,
    },
    /// `id` is a title id; `episode` is `(season, episode)` for a series.
    Stream {
        kind: Kind,
        id: String,
        episode: Option<(u16, u16)>,
    },
}

/// The extras of a catalogue request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogExtra {
    pub search: Option<String>,
    /// A multiple of [`PAGE`].
    pub skip: usize,
    pub genre: Option<String>,
}

impl AddonRoute {
    /// Parses a request path (`/manifest.json`, `/{resource}/{type}/{id}.json`,
    /// `/{resource}/{type}/{id}/{extra}.json`). The extras come either in the path, as
    /// Stremio sends them, or as `query` — the form the edge forwards after making them
    /// canonical (`search=…&skip=…&genre=…`); both at once is a bad request.
    pub fn parse(path: &str, query: &str) -> Result<AddonRoute, AddonError> {
        if path.len() > MAX_PATH {
            return Err(AddonError::bad("path too long"));
        }
        let rest = path
            .strip_prefix('/')
            .ok_or_else(|| AddonError::not_found(path))?;
        if rest == "manifest.json" {
            return Ok(AddonRoute::Manifest);
        }
        let rest = rest
            .strip_suffix(".json")
            .ok_or_else(|| AddonError::not_found(path))?;
        let segments: Vec<&str> = rest.split('/').collect();
        let (resource, kind, id, extra) = match segments.as_slice() {
            [r, t, id] => (*r, *t, *id, None),
            [r, t, id, extra] => (*r, *t, *id, Some(*extra)),
            _ => return Err(AddonError::not_found(path)),
        };
        let extra = match (extra, query) {
            (extra, "") => extra,
            (None, query) => Some(query),
            (Some(_), _) => return Err(AddonError::bad("extras both in the path and the query")),
        };
        let kind = match kind {
            "movie" => Kind::Movie,
            "series" => Kind::Series,
            _ => return Err(AddonError::not_found(path)),
        };
        let id = decode(id)?;
        match (resource, extra) {
            ("catalog", extra) => {
                if id != catalog_id(kind) {
                    return Err(AddonError::not_found(path));
                }
                let extra = extra.map(parse_extra).transpose()?.unwrap_or_default();
                Ok(AddonRoute::Catalog { kind, extra })
            }
            ("meta" | "stream", Some(_)) => Err(AddonError::bad("extras are for catalogs only")),
            ("meta", None) => Ok(AddonRoute::Meta {
                kind,
                id: title_id(&id, path)?,
            }),
            ("stream", None) => {
                let (id, episode) = match kind {
                    Kind::Movie => (title_id(&id, path)?, None),
                    Kind::Series => {
                        let (id, season, episode) = episode_id(&id, path)?;
                        (id, Some((season, episode)))
                    }
                };
                Ok(AddonRoute::Stream { kind, id, episode })
            }
            _ => Err(AddonError::not_found(path)),
        }
    }
}

/// An IMDb or tgcdn id. Another addon's prefix is not ours (404); ours malformed is a 400.
fn title_id(id: &str, path: &str) -> Result<String, AddonError> {
    if is_imdb_id(id) || is_tgcdn_id(id) {
        Ok(id.to_owned())
    } else if id.starts_with("tt") || id.starts_with("tgcdn") {
        Err(AddonError::bad("malformed id"))
    } else {
        Err(AddonError::not_found(path))
    }
}

/// `{title id}:{season}:{episode}`; the title id may itself contain `:` (tgcdn ids do).
fn episode_id(id: &str, path: &str) -> Result<(String, u16, u16), AddonError> {
    let mut parts = id.rsplitn(3, ':');
    let (Some(episode), Some(season), Some(title)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(AddonError::bad(
            "series streams need {id}:{season}:{episode}",
        ));
    };
    let number = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|_| s.bytes().all(|b| b.is_ascii_digit()))
    };
    match (number(season), number(episode)) {
        (Some(season), Some(episode)) => Ok((title_id(title, path)?, season, episode)),
        _ => Err(AddonError::bad("season and episode must be numbers")),
    }
}

/// `search=…&skip=…&genre=…`, URL-encoded; the whole segment may be encoded once more
/// (`search%3Dx`), as some clients encode it as one path component.
fn parse_extra(raw: &str) -> Result<CatalogExtra, AddonError> {
    let text = if raw.contains('=') {
        raw.to_owned()
    } else {
        decode(raw)?
    };
    let mut extra = CatalogExtra::default();
    let mut seen_skip = false;
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| AddonError::bad("extra without a value"))?;
        let value = decode(&value.replace('+', " "))?;
        match key {
            "search" if extra.search.is_none() => {
                let value = value.trim();
                if value.is_empty() || value.chars().count() > MAX_SEARCH {
                    return Err(AddonError::bad("search must be 1 to 100 characters"));
                }
                extra.search = Some(value.to_owned());
            }
            "genre" if extra.genre.is_none() => {
                if value.is_empty() || value.chars().count() > MAX_GENRE {
                    return Err(AddonError::bad("genre must be 1 to 64 characters"));
                }
                extra.genre = Some(value);
            }
            "skip" if !seen_skip => {
                seen_skip = true;
                extra.skip = value
                    .parse::<usize>()
                    .ok()
                    .filter(|s| {
                        s % PAGE == 0 && *s <= MAX_SKIP && value.bytes().all(|b| b.is_ascii_digit())
                    })
                    .ok_or_else(|| {
                        AddonError::bad("skip must be a multiple of 100, at most 100000")
                    })?;
            }
            "search" | "genre" | "skip" => return Err(AddonError::bad("repeated extra")),
            _ => return Err(AddonError::bad("unknown extra")),
        }
    }
    Ok(extra)
}

fn decode(s: &str) -> Result<String, AddonError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| AddonError::bad("not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(path: &str) -> Result<AddonRoute, AddonError> {
        AddonRoute::parse(path, "")
    }

    fn catalog(kind: Kind, search: Option<&str>, skip: usize, genre: Option<&str>) -> AddonRoute {
        let extra = CatalogExtra {
            search: search.map(Into::into),
            skip,
            genre: genre.map(Into::into),
        };
        AddonRoute::Catalog { kind, extra }
    }

    #[test]
    fn every_route_shape() {
        assert_eq!(parse("/manifest.json"), Ok(AddonRoute::Manifest));
        assert_eq!(
            parse("/catalog/movie/tgcdn-movie.json"),
            Ok(catalog(Kind::Movie, None, 0, None))
        );
        assert_eq!(
            parse(
                "/catalog/series/tgcdn-series/search=blade%20runner&skip=200&genre=Sci-Fi%20%26%20Fantasy.json"
            ),
            Ok(catalog(
                Kind::Series,
                Some("blade runner"),
                200,
                Some("Sci-Fi & Fantasy")
            ))
        );
        assert_eq!(
            parse("/catalog/movie/tgcdn-movie/search%3Dam%C3%A9lie%26skip%3D100.json"),
            Ok(catalog(Kind::Movie, Some("amélie"), 100, None)),
            "the whole extra encoded as one component"
        );
        assert_eq!(
            parse("/catalog/movie/tgcdn-movie/search=le+samoura%C3%AF.json"),
            Ok(catalog(Kind::Movie, Some("le samouraï"), 0, None))
        );
        // The edge's canonical form: the extras in the query.
        assert_eq!(
            AddonRoute::parse(
                "/catalog/movie/tgcdn-movie.json",
                "search=blade%20run&skip=100"
            ),
            Ok(catalog(Kind::Movie, Some("blade run"), 100, None))
        );
        assert!(
            AddonRoute::parse("/catalog/movie/tgcdn-movie/skip=100.json", "skip=200").is_err(),
            "extras in both places are refused"
        );
        assert_eq!(
            parse("/meta/movie/tt0110413.json"),
            Ok(AddonRoute::Meta {
                kind: Kind::Movie,
                id: "tt0110413".into()
            })
        );
        assert_eq!(
            parse("/meta/series/tgcdn%3A0123456789abcdef.json"),
            Ok(AddonRoute::Meta {
                kind: Kind::Series,
                id: "tgcdn:0123456789abcdef".into()
            })
        );
        assert_eq!(
            parse("/stream/movie/tt0110413.json"),
            Ok(AddonRoute::Stream {
                kind: Kind::Movie,
                id: "tt0110413".into(),
                episode: None
            })
        );
        assert_eq!(
            parse("/stream/series/tt0903747:1:2.json"),
            Ok(AddonRoute::Stream {
                kind: Kind::Series,
                id: "tt0903747".into(),
                episode: Some((1, 2))
            })
        );
        assert_eq!(
            parse("/stream/series/tgcdn%3A0123456789abcdef%3A10%3A0.json"),
            Ok(AddonRoute::Stream {
                kind: Kind::Series,
                id: "tgcdn:0123456789abcdef".into(),
                episode: Some((10, 0))
            })
        );
        assert_eq!(
            parse("/manifest.json").ok(),
            AddonRoute::parse("/manifest.json", "x=1").ok()
        );
    }

    #[test]
    fn paths_that_are_not_ours_are_not_found() {
        for path in [
            "",
            "manifest.json",
            "/manifest",
            "/x/manifest.json",
            "/catalog/movie/tgcdn-movie",
            "/catalog/anime/tgcdn-movie.json",
            "/catalog/movie/tgcdn-series.json",
            "/catalog/movie/other.json",
            "/subtitles/movie/tt1.json",
            "/meta/movie/kitsu:1.json",
            "/stream/series/kitsu:1:1:2.json",
            "/meta/movie/a/b/c.json",
            "/meta.json",
        ] {
            assert!(
                matches!(parse(path), Err(AddonError::NotFound(_))),
                "{path:?}: {:?}",
                parse(path)
            );
        }
    }

    #[test]
    fn malformed_requests_are_bad_requests() {
        let long = format!(
            "/catalog/movie/tgcdn-movie/search={}.json",
            "a".repeat(MAX_PATH)
        );
        let long_search = format!("/catalog/movie/tgcdn-movie/search={}.json", "a".repeat(101));
        for path in [
            long.as_str(),
            long_search.as_str(),
            "/catalog/movie/tgcdn-movie/skip=50.json",
            "/catalog/movie/tgcdn-movie/skip=-100.json",
            "/catalog/movie/tgcdn-movie/skip=+100.json",
            "/catalog/movie/tgcdn-movie/skip=100100.json",
            "/catalog/movie/tgcdn-movie/skip=99999999999999999999999.json",
            "/catalog/movie/tgcdn-movie/skip=100&skip=200.json",
            "/catalog/movie/tgcdn-movie/search=a&search=b.json",
            "/catalog/movie/tgcdn-movie/search=.json",
            "/catalog/movie/tgcdn-movie/search=%20.json",
            "/catalog/movie/tgcdn-movie/genre=.json",
            "/catalog/movie/tgcdn-movie/color=red.json",
            "/catalog/movie/tgcdn-movie/search.json",
            "/catalog/movie/tgcdn-movie/search=%FF.json",
            "/meta/movie/tt0110413/search=x.json",
            "/meta/movie/tt.json",
            "/meta/movie/tt12ab.json",
            "/meta/movie/tgcdn:xyz.json",
            "/stream/movie/tt0903747:1:2.json",
            "/stream/series/tt0903747.json",
            "/stream/series/tt0903747:1.json",
            "/stream/series/tt0903747:x:2.json",
            "/stream/series/tt0903747:1:+2.json",
            "/stream/series/tt0903747:1:70000.json",
        ] {
            assert!(
                matches!(parse(path), Err(AddonError::BadRequest(_))),
                "{path:?}: {:?}",
                parse(path)
            );
        }
    }
}
