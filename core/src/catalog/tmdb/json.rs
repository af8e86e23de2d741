//! TMDB's JSON answers as serde types, the choice of the search result that is the title a
//! release name meant, and the conversion of details into the catalogue's [`Metadata`].
//!
//! Pure: no HTTP here. TMDB leaves many fields `null` or `""` (an unreleased film has no
//! date, an obscure one no poster), so every field but the id is optional and empty strings
//! count as absent.

use serde::Deserialize;
use tgcdn_catalog::model::{EpisodeMeta, Kind, Metadata};

/// `/search/movie` and `/search/tv`.
#[derive(Debug, Deserialize)]
pub struct SearchPage {
    #[serde(default)]
    pub results: Vec<SearchResult>,
}

/// One hit; movies carry `title`/`release_date`, series `name`/`first_air_date`.
#[derive(Debug, Deserialize)]
pub struct SearchResult {
    pub id: u64,
    pub title: Option<String>,
    pub original_title: Option<String>,
    pub name: Option<String>,
    pub original_name: Option<String>,
    pub release_date: Option<String>,
    pub first_air_date: Option<String>,
}

impl SearchResult {
    fn names(&self) -> impl Iterator<Item = &str> {
        [
            &self.title,
            &self.original_title,
            &self.name,
            &self.original_name,
        ]
        .into_iter()
        .filter_map(|name| name.as_deref())
    }

    fn year(&self) -> Option<u16> {
        year_of(
            self.release_date
                .as_deref()
                .or(self.first_air_date.as_deref()),
        )
    }
}

#[derive(Debug, Deserialize)]
pub struct Genre {
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct ExternalIds {
    pub imdb_id: Option<String>,
}

/// `/movie/{id}?append_to_response=external_ids`.
#[derive(Debug, Deserialize)]
pub struct MovieDetails {
    pub id: u64,
    pub title: Option<String>,
    pub imdb_id: Option<String>,
    pub release_date: Option<String>,
    pub overview: Option<String>,
    pub poster_path: Option<String>,
    pub backdrop_path: Option<String>,
    #[serde(default)]
    pub genres: Vec<Genre>,
    pub vote_average: Option<f32>,
    pub runtime: Option<u32>,
    #[serde(default)]
    pub external_ids: ExternalIds,
}

/// `/tv/{id}?append_to_response=external_ids`.
#[derive(Debug, Deserialize)]
pub struct TvDetails {
    pub id: u64,
    pub name: Option<String>,
    pub first_air_date: Option<String>,
    pub overview: Option<String>,
    pub poster_path: Option<String>,
    pub backdrop_path: Option<String>,
    #[serde(default)]
    pub genres: Vec<Genre>,
    pub vote_average: Option<f32>,
    #[serde(default)]
    pub episode_run_time: Vec<u32>,
    #[serde(default)]
    pub external_ids: ExternalIds,
}

/// `/tv/{id}/season/{n}`.
#[derive(Debug, Deserialize)]
pub struct SeasonDetails {
    #[serde(default)]
    pub episodes: Vec<EpisodeDetails>,
}

#[derive(Debug, Deserialize)]
pub struct EpisodeDetails {
    pub season_number: u16,
    pub episode_number: u16,
    pub name: Option<String>,
    pub overview: Option<String>,
    pub air_date: Option<String>,
    pub still_path: Option<String>,
}

/// `/find/{imdb_id}?external_source=imdb_id`.
#[derive(Debug, Deserialize)]
pub struct FindResults {
    #[serde(default)]
    pub movie_results: Vec<SearchResult>,
    #[serde(default)]
    pub tv_results: Vec<SearchResult>,
}

/// The result that is the title a release name meant, or `None` when no hit is close
/// enough: a wrong poster is worse than none, so a hit must match the title exactly (after
/// [`comparable`]) or, when the name has a year, match that year and contain the title.
/// Among equals TMDB's own order (popularity) wins.
pub fn pick<'a>(
    results: &'a [SearchResult],
    title: &str,
    year: Option<u16>,
) -> Option<&'a SearchResult> {
    let wanted = comparable(title);
    if wanted.is_empty() {
        return None;
    }
    let mut best: Option<(u8, &SearchResult)> = None;
    for result in results {
        let score = score(result, &wanted, year);
        if score >= 2 && best.is_none_or(|(top, _)| score > top) {
            best = Some((score, result));
        }
    }
    best.map(|(_, result)| result)
}

/// Title: exact 2, containing 1. Year: equal 2, one off 1 (festival vs release year),
/// further off disqualifies; no year on either side scores nothing.
fn score(result: &SearchResult, wanted: &str, year: Option<u16>) -> u8 {
    let title = result
        .names()
        .map(|name| {
            let name = comparable(name);
            if name == wanted {
                2
            } else if !name.is_empty() && (name.contains(wanted) || wanted.contains(&name)) {
                1
            } else {
                0
            }
        })
        .max()
        .unwrap_or(0);
    let year_score = match (year, result.year()) {
        (Some(wanted), Some(found)) => match wanted.abs_diff(found) {
            0 => 2,
            1 => 1,
            _ => return 0,
        },
        _ => 0,
    };
    if title == 0 {
        return 0;
    }
    title + year_score
}

/// Lowercase alphanumeric words separated by single spaces, `&` read as `and`: enough to
/// compare "Marvel's The Avengers" with "marvels the avengers".
pub fn comparable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for ch in text.chars() {
        if ch == '\'' || ch == '’' {
            continue;
        }
        if ch == '&' {
            push_word(&mut out, &mut pending_space, "and");
            continue;
        }
        if ch.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.extend(ch.to_lowercase());
        } else {
            pending_space = true;
        }
    }
    out
}

fn push_word(out: &mut String, pending_space: &mut bool, word: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(word);
    *pending_space = true;
}

/// Image URLs: TMDB gives paths (`/abc.jpg`) under a configurable image base and size.
#[derive(Debug, Clone)]
pub struct Images {
    pub base: String,
}

impl Images {
    fn url(&self, size: &str, path: Option<&str>) -> Option<String> {
        let path = non_empty(path)?;
        Some(format!("{}/{size}{path}", self.base.trim_end_matches('/')))
    }
}

pub fn movie_metadata(details: MovieDetails, images: &Images) -> Metadata {
    let imdb_id = valid_imdb(details.imdb_id.or(details.external_ids.imdb_id));
    Metadata {
        tmdb_id: Some(details.id),
        imdb_id,
        name: details.title.unwrap_or_default(),
        year: year_of(details.release_date.as_deref()),
        poster: images.url("w500", details.poster_path.as_deref()),
        background: images.url("original", details.backdrop_path.as_deref()),
        logo: None,
        overview: non_empty(details.overview.as_deref()).map(str::to_owned),
        genres: details.genres.into_iter().map(|genre| genre.name).collect(),
        rating: details.vote_average.filter(|rating| *rating > 0.0),
        runtime_minutes: details.runtime.filter(|minutes| *minutes > 0),
        released: non_empty(details.release_date.as_deref()).map(str::to_owned),
        episodes: Vec::new(),
    }
}

pub fn series_metadata(
    details: TvDetails,
    seasons: Vec<SeasonDetails>,
    images: &Images,
) -> Metadata {
    let episodes = seasons
        .into_iter()
        .flat_map(|season| season.episodes)
        .map(|episode| EpisodeMeta {
            season: episode.season_number,
            episode: episode.episode_number,
            title: non_empty(episode.name.as_deref()).map(str::to_owned),
            overview: non_empty(episode.overview.as_deref()).map(str::to_owned),
            released: non_empty(episode.air_date.as_deref()).map(str::to_owned),
            thumbnail: images.url("w300", episode.still_path.as_deref()),
        })
        .collect();
    Metadata {
        tmdb_id: Some(details.id),
        imdb_id: valid_imdb(details.external_ids.imdb_id),
        name: details.name.unwrap_or_default(),
        year: year_of(details.first_air_date.as_deref()),
        poster: images.url("w500", details.poster_path.as_deref()),
        background: images.url("original", details.backdrop_path.as_deref()),
        logo: None,
        overview: non_empty(details.overview.as_deref()).map(str::to_owned),
        genres: details.genres.into_iter().map(|genre| genre.name).collect(),
        rating: details.vote_average.filter(|rating| *rating > 0.0),
        runtime_minutes: details.episode_run_time.first().copied(),
        released: non_empty(details.first_air_date.as_deref()).map(str::to_owned),
        episodes,
    }
}

/// Which search endpoint and year parameter a kind uses.
pub fn search_endpoint(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Movie => ("/search/movie", "year"),
        Kind::Series => ("/search/tv", "first_air_date_year"),
    }
}

/// `tt` followed by digits; TMDB sometimes stores `""` or junk.
fn valid_imdb(id: Option<String>) -> Option<String> {
    id.filter(|id| {
        id.len() > 2 && id.starts_with("tt") && id[2..].bytes().all(|b| b.is_ascii_digit())
    })
}

fn year_of(date: Option<&str>) -> Option<u16> {
    non_empty(date)?.get(..4)?.parse().ok()
}

fn non_empty(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: u64, title: &str, date: &str) -> SearchResult {
        SearchResult {
            id,
            title: Some(title.into()),
            original_title: None,
            name: None,
            original_name: None,
            release_date: Some(date.into()),
            first_air_date: None,
        }
    }

    #[test]
    fn the_exact_title_in_the_right_year_wins_over_popularity() {
        let results = [
            hit(1, "Blade Runner", "1982-06-25"),
            hit(2, "Blade Runner 2049", "2017-10-04"),
        ];
        assert_eq!(
            pick(&results, "Blade Runner 2049", Some(2017)).map(|r| r.id),
            Some(2)
        );
        assert_eq!(
            pick(&results, "Blade Runner", Some(1982)).map(|r| r.id),
            Some(1)
        );
    }

    #[test]
    fn a_remake_in_another_year_is_not_taken() {
        let results = [hit(7, "Dune", "1984-12-14"), hit(8, "Dune", "2021-09-15")];
        assert_eq!(pick(&results, "Dune", Some(2021)).map(|r| r.id), Some(8));
        assert_eq!(pick(&results, "Dune", Some(2000)).map(|r| r.id), None);
    }

    #[test]
    fn without_a_year_only_an_exact_title_matches() {
        let results = [hit(3, "The Matrix Reloaded", "2003-05-15")];
        assert!(pick(&results, "The Matrix", None).is_none());
        let results = [hit(4, "The Matrix", "1999-03-31")];
        assert_eq!(pick(&results, "the matrix", None).map(|r| r.id), Some(4));
    }

    #[test]
    fn punctuation_case_and_ampersands_do_not_matter() {
        assert_eq!(
            comparable("Marvel's The Avengers: Age of Ultron"),
            "marvels the avengers age of ultron"
        );
        assert_eq!(comparable("Fast & Furious"), "fast and furious");
        assert_eq!(comparable("  Amélie  "), "amélie");
        assert_eq!(comparable("..."), "");
    }

    #[test]
    fn an_empty_title_matches_nothing() {
        let results = [hit(5, "", "2001-01-01")];
        assert!(pick(&results, "", Some(2001)).is_none());
        assert!(pick(&results, "???", Some(2001)).is_none());
    }

    #[test]
    fn junk_imdb_ids_and_empty_fields_are_dropped() {
        let images = Images {
            base: "https://img.example/t/p/".into(),
        };
        let details: MovieDetails = serde_json::from_str(
            r#"{"id": 9, "title": "X", "imdb_id": "", "release_date": "",
                "overview": " ", "poster_path": "/p.jpg", "backdrop_path": null,
                "genres": [{"id": 1, "name": "Drama"}], "vote_average": 0,
                "runtime": 0, "external_ids": {"imdb_id": "nm123"}}"#,
        )
        .unwrap();
        let meta = movie_metadata(details, &images);
        assert_eq!(meta.imdb_id, None);
        assert_eq!(meta.year, None);
        assert_eq!(meta.released, None);
        assert_eq!(meta.overview, None);
        assert_eq!(meta.rating, None);
        assert_eq!(meta.runtime_minutes, None);
        assert_eq!(
            meta.poster.as_deref(),
            Some("https://img.example/t/p/w500/p.jpg")
        );
        assert_eq!(meta.background, None);
        assert_eq!(meta.genres, ["Drama"]);
    }
}
