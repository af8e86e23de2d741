//! The catalogue's data: a title (movie or series), its episodes, the files that play it and
//! the metadata a lookup service (TMDB) attaches to it.
//!
//! Plain data with serde derives, so the core can persist it as it is; no I/O. The
//! in-memory [`Catalog`] over these titles, with its indices, is in `model/catalog.rs`.
//!
//! Choices worth knowing:
//! * A file entry *is* the [`Post`] (alias [`FileEntry`]): every field a stream needs is
//!   in it, and an edit is detected by one `==`.
//! * Files group by [`GroupKey`] (kind, normalised title, year) until metadata attaches a
//!   TMDB/IMDb id; titles of one kind sharing an id then merge. "Show S01E01" and
//!   "Show (2008) S01E02" are two titles until a lookup joins them.
//! * Ids ([`stable_id`]): the IMDb id when known; else `tgcdn:` + 16 hex digits of FNV-1a
//!   over the TMDB id (order-independent after merges) or over the group key. Same posts,
//!   same ids, across restarts and re-indexing. An id a title leaves behind (enriched or
//!   merged) stays an alias that still resolves, so a viewer's library keeps working.
//! * A series file with no episode number (a season pack) is not catalogued: no Stremio
//!   episode id can point into it. A multi-episode file is listed under each episode.

mod catalog;
#[cfg(test)]
mod tests;

pub use catalog::{Catalog, CatalogError, Change};

use serde::{Deserialize, Serialize};
use tgcdn_shared::FileRef;

use crate::name::ParsedName;
use crate::search::normalise;

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

/// A channel post that carries a playable file: what the core feeds the catalogue. The post
/// itself is the file entry a title lists (every field a stream needs is here, and keeping
/// one shape means an edited post compares equal or not in one `==`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    pub file: FileRef,
    /// Bytes.
    pub size: u64,
    pub file_name: String,
    pub mime: Option<String>,
    pub caption: Option<String>,
    /// Post date, unix seconds.
    pub date: i64,
    /// What [`crate::name`] read from the file name (caption as fallback).
    pub parsed: ParsedName,
    /// OpenSubtitles hash, once the core has computed it.
    pub video_hash: Option<u64>,
}

/// A file as a stream lists it: the post it came from.
pub type FileEntry = Post;

/// What files are grouped by before any metadata is known: kind, normalised title, year.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupKey {
    pub kind: Kind,
    /// [`crate::search::normalise`]d title.
    pub title: String,
    pub year: Option<u16>,
}

impl GroupKey {
    /// The stable tgcdn id of a title known only by this key.
    pub fn tgcdn_id(&self) -> String {
        let year = self.year.map(|y| y.to_string()).unwrap_or_default();
        hashed_id(&[self.kind.as_str(), &self.title, &year])
    }
}

/// Why a post is not in the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The name has no title words to group or show it by.
    NoTitle,
    /// A series file without an episode number (a whole-season pack): no episode id of
    /// Stremio's can point at it.
    NoEpisode,
}

/// Where a post goes: its title's key and, for a series, the episodes it plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub key: GroupKey,
    /// `(season, episode)`, sorted; empty for a movie.
    pub episodes: Vec<(u16, u16)>,
}

impl Placement {
    /// A series episode with no season written ("Show - 05") is season 1; a file that names
    /// several seasons is placed in the first.
    pub fn of(parsed: &ParsedName) -> Result<Placement, Skip> {
        let title = normalise(&parsed.title);
        if title.is_empty() {
            return Err(Skip::NoTitle);
        }
        let kind = if parsed.is_series() {
            Kind::Series
        } else {
            Kind::Movie
        };
        let key = GroupKey {
            kind,
            title,
            year: parsed.year,
        };
        if kind == Kind::Movie {
            return Ok(Placement {
                key,
                episodes: Vec::new(),
            });
        }
        if parsed.episodes.is_empty() {
            return Err(Skip::NoEpisode);
        }
        let season = parsed.seasons.first().copied().unwrap_or(1);
        let mut episodes: Vec<(u16, u16)> = parsed.episodes.iter().map(|&e| (season, e)).collect();
        episodes.sort_unstable();
        episodes.dedup();
        Ok(Placement { key, episodes })
    }
}

/// The files of one series episode, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeFiles {
    pub season: u16,
    pub episode: u16,
    pub files: Vec<Post>,
}

/// A movie or series as the catalogue lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Title {
    /// The Stremio id: the IMDb id when known, else a stable `tgcdn:` id (see [`stable_id`]).
    pub id: String,
    pub kind: Kind,
    /// The parsed title of its newest file: shown until metadata names it.
    pub name: String,
    /// The parsed year of its newest file.
    pub year: Option<u16>,
    /// Every group key whose files land here (several once metadata merged titles), sorted.
    pub keys: Vec<GroupKey>,
    /// Ids this title had before metadata gave it its current one; they still resolve.
    pub aliases: Vec<String>,
    /// `None` until a lookup ran; a lookup that matched nothing attaches metadata without
    /// external ids.
    pub metadata: Option<Metadata>,
    /// Movies: the files, best first.
    pub files: Vec<Post>,
    /// Series: the episodes that have files, in (season, episode) order.
    pub episodes: Vec<EpisodeFiles>,
    /// Latest post date of its files (unix s): the newest index ranks by it.
    pub newest: i64,
}

impl Title {
    /// An empty title for `key`, id from the key.
    pub fn new(key: GroupKey) -> Title {
        Title {
            id: key.tgcdn_id(),
            kind: key.kind,
            name: String::new(),
            year: key.year,
            keys: vec![key],
            aliases: Vec::new(),
            metadata: None,
            files: Vec::new(),
            episodes: Vec::new(),
            newest: 0,
        }
    }

    /// The name to show: the metadata's, else the parsed one.
    pub fn display_name(&self) -> &str {
        match &self.metadata {
            Some(m) if !m.name.is_empty() => &m.name,
            _ => &self.name,
        }
    }

    /// The year to show and index: the metadata's, else the parsed one.
    pub fn display_year(&self) -> Option<u16> {
        self.metadata.as_ref().and_then(|m| m.year).or(self.year)
    }

    pub fn genres(&self) -> &[String] {
        self.metadata
            .as_ref()
            .map(|m| m.genres.as_slice())
            .unwrap_or_default()
    }

    /// Every name the title can be searched by: metadata name, parsed name, grouped titles.
    pub fn search_names(&self) -> Vec<&str> {
        let mut names = vec![self.display_name(), self.name.as_str()];
        names.extend(self.keys.iter().map(|k| k.title.as_str()));
        names
    }

    /// Every file, once each (a multi-episode file is listed under each of its episodes).
    pub fn all_files(&self) -> Vec<&Post> {
        let mut seen = std::collections::HashSet::new();
        self.files
            .iter()
            .chain(self.episodes.iter().flat_map(|e| e.files.iter()))
            .filter(|p| seen.insert(p.file))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.episodes.is_empty()
    }

    /// The files of one episode, best first.
    pub fn episode(&self, season: u16, episode: u16) -> Option<&[Post]> {
        self.episodes
            .binary_search_by_key(&(season, episode), |e| (e.season, e.episode))
            .ok()
            .map(|i| self.episodes[i].files.as_slice())
    }

    /// Adds `post` where `episodes` says (the movie list when empty), best first.
    pub(crate) fn add(&mut self, post: Post, episodes: &[(u16, u16)]) {
        if episodes.is_empty() {
            insert_sorted(&mut self.files, post);
        } else {
            for &(season, episode) in episodes {
                let at = self
                    .episodes
                    .binary_search_by_key(&(season, episode), |e| (e.season, e.episode));
                let at = match at {
                    Ok(at) => at,
                    Err(at) => {
                        self.episodes.insert(
                            at,
                            EpisodeFiles {
                                season,
                                episode,
                                files: vec![],
                            },
                        );
                        at
                    }
                };
                insert_sorted(&mut self.episodes[at].files, post.clone());
            }
        }
        self.refresh();
    }

    /// Removes the file from every list; returns whether it was there.
    pub(crate) fn remove_file(&mut self, file: &FileRef) -> bool {
        let before = self.all_files().len();
        self.files.retain(|p| p.file != *file);
        for e in &mut self.episodes {
            e.files.retain(|p| p.file != *file);
        }
        self.episodes.retain(|e| !e.files.is_empty());
        self.refresh();
        before != self.all_files().len()
    }

    /// Takes in every file, key and alias of `other` (a title metadata found to be the same).
    pub(crate) fn absorb(&mut self, other: Title) {
        for post in other.files {
            insert_sorted(&mut self.files, post);
        }
        for ep in other.episodes {
            for post in ep.files {
                self.add(post, &[(ep.season, ep.episode)]);
            }
        }
        self.keys.extend(other.keys);
        self.keys.sort();
        self.keys.dedup();
        self.aliases.push(other.id);
        self.aliases.extend(other.aliases);
        self.refresh();
    }

    /// Name, year and newest follow the newest file (ties: lowest file ref), so the result
    /// does not depend on the order posts arrived in.
    pub(crate) fn refresh(&mut self) {
        let newest = self
            .files
            .iter()
            .chain(self.episodes.iter().flat_map(|e| e.files.iter()))
            .max_by(|a, b| a.date.cmp(&b.date).then(b.file.cmp(&a.file)));
        if let Some(p) = newest {
            self.newest = p.date;
            self.name = p.parsed.title.clone();
            self.year = p.parsed.year;
        }
        let id = stable_id(self);
        if id != self.id {
            let old = std::mem::replace(&mut self.id, id);
            self.aliases.push(old);
        }
        let current = self.id.clone();
        self.aliases.retain(|a| *a != current);
        self.aliases.sort();
        self.aliases.dedup();
    }
}

/// Best first: higher quality, then larger, then lower file ref (so the order is total).
pub fn file_order(a: &Post, b: &Post) -> std::cmp::Ordering {
    b.parsed
        .quality
        .cmp(&a.parsed.quality)
        .then(b.size.cmp(&a.size))
        .then(a.file.cmp(&b.file))
}

fn insert_sorted(files: &mut Vec<Post>, post: Post) {
    files.retain(|p| p.file != post.file);
    let at = files.partition_point(|p| file_order(p, &post).is_lt());
    files.insert(at, post);
}

/// A title's Stremio id: its IMDb id when the metadata has a well-formed one (Cinemeta and
/// other addons then line up), else `tgcdn:` + a hash of its TMDB id when it has one (so
/// titles merged by metadata get the same id whatever order they were merged in), else
/// `tgcdn:` + a hash of its first group key. Hashes, not slugs: ids stay short, ASCII and
/// free of the `:` that separates season and episode in episode ids.
pub fn stable_id(title: &Title) -> String {
    let meta = title.metadata.as_ref();
    if let Some(imdb) = meta
        .and_then(|m| m.imdb_id.as_deref())
        .filter(|i| is_imdb_id(i))
    {
        return imdb.to_owned();
    }
    if let Some(tmdb) = meta.and_then(|m| m.tmdb_id) {
        return hashed_id(&["tmdb", title.kind.as_str(), &tmdb.to_string()]);
    }
    match title.keys.first() {
        Some(key) => key.tgcdn_id(),
        None => hashed_id(&[title.kind.as_str(), &normalise(&title.name)]),
    }
}

/// `tt` and 1 to 10 digits.
pub fn is_imdb_id(id: &str) -> bool {
    id.strip_prefix("tt")
        .is_some_and(|d| (1..=10).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// `tgcdn:` and 16 lowercase hex digits.
pub fn is_tgcdn_id(id: &str) -> bool {
    id.strip_prefix(TGCDN_PREFIX).is_some_and(|h| {
        h.len() == 16
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

pub const TGCDN_PREFIX: &str = "tgcdn:";

/// `tgcdn:` + FNV-1a 64 of the parts joined by a unit separator. FNV because its output is
/// fixed by its definition (std's hasher may change between releases, and these ids are
/// persisted and bookmarked); 64 bits keep collisions negligible (~1e-10 at 50 000 titles).
fn hashed_id(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        let sep: &[u8] = if i == 0 { b"" } else { b"\x1f" };
        for &b in sep.iter().chain(part.as_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{TGCDN_PREFIX}{h:016x}")
}
