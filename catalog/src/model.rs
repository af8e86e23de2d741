//! The catalogue's data: a title (movie or series), its episodes, the files that play it and
//! the metadata a lookup service (TMDB) attaches to it.
//!
//! Plain data with serde derives, so the core can persist it as it is; no I/O.

use serde::{Deserialize, Serialize};

/// Movie or series: Stremio's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Movie,
    Series,
}

impl Kind {
    /// The Stremio type name (`movie`, `series`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Movie => "movie",
            Kind::Series => "series",
        }
    }
}

/// What a metadata service knows of a title. Every field is optional but the name: an item
/// nothing matched is catalogued from its parsed name alone and enriched later.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub tmdb_id: Option<u64>,
    /// IMDb id (`tt0903747`) when the service knows it.
    pub imdb_id: Option<String>,
    pub name: String,
    pub year: Option<u16>,
    /// Absolute image URLs.
    pub poster: Option<String>,
    pub background: Option<String>,
    pub logo: Option<String>,
    pub overview: Option<String>,
    pub genres: Vec<String>,
    /// Average rating out of 10.
    pub rating: Option<f32>,
    pub runtime_minutes: Option<u32>,
    /// First release or air date, `YYYY-MM-DD`.
    pub released: Option<String>,
    /// Series only: every known episode, any order.
    pub episodes: Vec<EpisodeMeta>,
}

/// One episode as a metadata service describes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpisodeMeta {
    pub season: u16,
    pub episode: u16,
    pub title: Option<String>,
    pub overview: Option<String>,
    /// Air date, `YYYY-MM-DD`.
    pub released: Option<String>,
    /// Absolute image URL of a still.
    pub thumbnail: Option<String>,
}
