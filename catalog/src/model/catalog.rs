//! The in-memory catalogue: titles by id plus every index the addon reads (newest per kind,
//! genre, year, words), kept up to date one title at a time.
//!
//! The core owns one, feeds it posts and metadata, and writes what each [`Change`] names
//! to sled; at start it rebuilds it with [`Catalog::from_titles`]. Every mutation takes the
//! touched titles out of all indices, changes them, and puts them back, so the indices can
//! only ever describe the titles as they are (a property test checks this against a
//! rebuild).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use tgcdn_shared::FileRef;

use super::{Kind, Metadata, Placement, Post, Skip, Title, is_imdb_id};
use crate::search::SearchIndex;

/// What a mutation did, for the core's store: write the title records named in `written`
/// (read them with [`Catalog::get`]), delete those in `deleted`. An id is never in both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub written: BTreeSet<String>,
    pub deleted: BTreeSet<String>,
    /// Set when the post was not catalogued (and why); any earlier placement of the same
    /// file was still removed.
    pub skipped: Option<Skip>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.written.is_empty() && self.deleted.is_empty()
    }

    fn write(&mut self, id: &str) {
        self.deleted.remove(id);
        self.written.insert(id.to_owned());
    }

    fn delete(&mut self, id: &str) {
        self.written.remove(id);
        self.deleted.insert(id.to_owned());
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CatalogError {
    #[error("no title with id {0:?}")]
    UnknownTitle(String),
}

/// Titles ranked newest first (ties by id, so pages are stable).
type Ranked = BTreeSet<(Reverse<i64>, String)>;

/// Titles and their indices. See the module doc.
#[derive(Debug, Default)]
pub struct Catalog {
    titles: BTreeMap<String, Title>,
    aliases: HashMap<String, String>,
    by_key: HashMap<super::GroupKey, String>,
    by_file: HashMap<FileRef, String>,
    by_tmdb: HashMap<(Kind, u64), String>,
    by_imdb: HashMap<String, String>,
    newest: BTreeMap<Kind, Ranked>,
    genres: BTreeMap<(Kind, String), Ranked>,
    years: BTreeMap<u16, BTreeSet<String>>,
    search: BTreeMap<Kind, SearchIndex<String>>,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// The catalogue the core persisted. Titles without files are dropped; a title whose
    /// external id another already holds is merged into it, as [`Catalog::attach_metadata`]
    /// would have.
    pub fn from_titles(titles: impl IntoIterator<Item = Title>) -> Self {
        let mut catalog = Catalog::new();
        for mut title in titles {
            title.refresh();
            if title.is_empty() {
                continue;
            }
            let mut change = Change::default();
            let title = catalog.merge_same(title, &mut change);
            catalog.index(title, &mut change);
        }
        catalog
    }

    /// The title with this id, or the title it became (ids change once metadata names the
    /// title; the old ones keep resolving).
    pub fn get(&self, id: &str) -> Option<&Title> {
        self.titles
            .get(id)
            .or_else(|| self.titles.get(self.aliases.get(id)?))
    }

    pub fn titles(&self) -> impl Iterator<Item = &Title> {
        self.titles.values()
    }

    pub fn len(&self) -> usize {
        self.titles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.titles.is_empty()
    }

    /// Titles no lookup has run for yet.
    pub fn titles_needing_metadata(&self) -> impl Iterator<Item = &Title> {
        self.titles.values().filter(|t| t.metadata.is_none())
    }

    /// The title a file is in.
    pub fn title_of(&self, file: &FileRef) -> Option<&Title> {
        self.titles.get(self.by_file.get(file)?)
    }

    /// Adds or updates a post. The same post twice changes nothing; an edited post (same
    /// file, other name or caption) moves to wherever its new name says.
    pub fn upsert(&mut self, post: Post) -> Change {
        let mut change = Change::default();
        if let Some(title) = self.title_of(&post.file)
            && title.all_files().iter().any(|p| **p == post)
        {
            return change;
        }
        let placement = Placement::of(&post.parsed);
        let target = placement
            .as_ref()
            .ok()
            .and_then(|p| self.by_key.get(&p.key))
            .cloned();
        let here = self.by_file.get(&post.file).cloned();
        if here.is_none() || here != target {
            self.remove_into(&post.file, &mut change);
        }
        let placement = match placement {
            Ok(placement) => placement,
            Err(skip) => {
                change.skipped = Some(skip);
                return change;
            }
        };
        // An edit that stays in its title keeps the title (and its metadata): the old copy
        // of the file goes inside `add`.
        let mut title = match target {
            Some(id) => self.take(&id),
            None => None,
        }
        .unwrap_or_else(|| {
            let fresh = Title::new(placement.key.clone());
            // A 64-bit id collision with another key's title: share it rather than lose one.
            self.take(&fresh.id).unwrap_or(fresh)
        });
        if !title.keys.contains(&placement.key) {
            title.keys.push(placement.key.clone());
            title.keys.sort();
        }
        title.remove_file(&post.file);
        title.add(post, &placement.episodes);
        change.write(&title.id);
        self.index(title, &mut change);
        change
    }

    /// Removes a deleted post's file; a title left without files leaves the catalogue.
    pub fn remove(&mut self, file: &FileRef) -> Change {
        let mut change = Change::default();
        self.remove_into(file, &mut change);
        change
    }

    /// Attaches what a lookup found. When another title of the same kind already has this
    /// TMDB or IMDb id, the two become one.
    pub fn attach_metadata(
        &mut self,
        id: &str,
        metadata: Metadata,
    ) -> Result<Change, CatalogError> {
        let current = self.get(id).map(|t| t.id.clone());
        let mut title = current
            .and_then(|id| self.take(&id))
            .ok_or_else(|| CatalogError::UnknownTitle(id.to_owned()))?;
        let mut change = Change::default();
        let old_id = title.id.clone();
        title.metadata = Some(metadata);
        let mut title = self.merge_same(title, &mut change);
        title.refresh();
        if title.id != old_id {
            change.delete(&old_id);
        }
        change.write(&title.id);
        self.index(title, &mut change);
        Ok(change)
    }

    /// Newest first, `skip`/`limit` paged.
    pub fn newest(&self, kind: Kind, skip: usize, limit: usize) -> Vec<&Title> {
        self.page(self.newest.get(&kind), skip, limit)
    }

    /// Newest first among titles of `genre`.
    pub fn by_genre(&self, kind: Kind, genre: &str, skip: usize, limit: usize) -> Vec<&Title> {
        self.page(self.genres.get(&(kind, genre.to_owned())), skip, limit)
    }

    /// Titles whose shown year is `year`, by id.
    pub fn by_year(&self, year: u16) -> Vec<&Title> {
        self.years
            .get(&year)
            .into_iter()
            .flatten()
            .filter_map(|id| self.titles.get(id))
            .collect()
    }

    /// Every genre of `kind`'s titles, sorted.
    pub fn genres(&self, kind: Kind) -> Vec<&str> {
        self.genres
            .keys()
            .filter(|(k, _)| *k == kind)
            .map(|(_, g)| g.as_str())
            .collect()
    }

    /// Ranked search among `kind`'s titles, optionally only those of `genre`.
    pub fn search(
        &self,
        kind: Kind,
        query: &str,
        genre: Option<&str>,
        skip: usize,
        limit: usize,
    ) -> Vec<&Title> {
        let Some(index) = self.search.get(&kind) else {
            return Vec::new();
        };
        let in_genre = |id: &String| match genre {
            None => true,
            Some(g) => self
                .titles
                .get(id)
                .is_some_and(|t| t.genres().iter().any(|x| x == g)),
        };
        index
            .search(query, in_genre, skip, limit)
            .iter()
            .filter_map(|id| self.titles.get(id))
            .collect()
    }

    fn page(&self, ranked: Option<&Ranked>, skip: usize, limit: usize) -> Vec<&Title> {
        ranked
            .into_iter()
            .flatten()
            .skip(skip)
            .take(limit)
            .filter_map(|(_, id)| self.titles.get(id))
            .collect()
    }

    /// Takes the file out of its title; the title is rewritten, or deleted when emptied.
    fn remove_into(&mut self, file: &FileRef, change: &mut Change) {
        let Some(id) = self.by_file.get(file).cloned() else {
            return;
        };
        let Some(mut title) = self.take(&id) else {
            return;
        };
        title.remove_file(file);
        if title.is_empty() {
            change.delete(&title.id);
        } else {
            change.write(&title.id);
            self.index(title, change);
        }
    }

    /// Folds into `title` every indexed title of its kind that shares its TMDB or IMDb id,
    /// recording their records as deleted. An IMDb id a title of the other kind holds is
    /// dropped from `title`'s metadata: it would be the id of both, and ids are unique.
    fn merge_same(&mut self, mut title: Title, change: &mut Change) -> Title {
        let Some(meta) = title.metadata.as_mut() else {
            return title;
        };
        let mut same = BTreeSet::new();
        if let Some(tmdb) = meta.tmdb_id {
            same.extend(self.by_tmdb.get(&(title.kind, tmdb)).cloned());
        }
        if let Some(imdb) = meta.imdb_id.as_deref().filter(|i| is_imdb_id(i))
            && let Some(holder) = self.by_imdb.get(imdb).and_then(|id| self.titles.get(id))
        {
            if holder.kind == title.kind {
                same.insert(holder.id.clone());
            } else {
                meta.imdb_id = None;
            }
        }
        for id in same {
            if let Some(other) = self.take(&id) {
                change.delete(&other.id);
                title.absorb(other);
            }
        }
        title.refresh();
        title
    }

    /// Removes a title from the map and every index.
    fn take(&mut self, id: &str) -> Option<Title> {
        let title = self.titles.remove(id)?;
        let ranked = (Reverse(title.newest), title.id.clone());
        if let Some(set) = self.newest.get_mut(&title.kind) {
            set.remove(&ranked);
        }
        for genre in title.genres() {
            let key = (title.kind, genre.clone());
            if let Some(set) = self.genres.get_mut(&key) {
                set.remove(&ranked);
                if set.is_empty() {
                    self.genres.remove(&key);
                }
            }
        }
        if let Some(year) = title.display_year()
            && let Some(set) = self.years.get_mut(&year)
        {
            set.remove(&title.id);
            if set.is_empty() {
                self.years.remove(&year);
            }
        }
        if let Some(index) = self.search.get_mut(&title.kind) {
            index.remove(&title.id);
        }
        for alias in &title.aliases {
            self.aliases.remove(alias);
        }
        for key in &title.keys {
            self.by_key.remove(key);
        }
        for post in title.all_files() {
            self.by_file.remove(&post.file);
        }
        if let Some(meta) = &title.metadata {
            if let Some(tmdb) = meta.tmdb_id {
                self.by_tmdb.remove(&(title.kind, tmdb));
            }
            if let Some(imdb) = &meta.imdb_id {
                self.by_imdb.remove(imdb);
            }
        }
        Some(title)
    }

    /// Puts a title into the map and every index. Every old id resolves to one title: an
    /// alias that is another title's current id is dropped, and an id or alias another
    /// title still keeps as an alias is taken from it (the latest claim wins, and the
    /// loser's record is rewritten so a rebuild agrees).
    fn index(&mut self, mut title: Title, change: &mut Change) {
        title
            .aliases
            .retain(|alias| !self.titles.contains_key(alias));
        for claimed in std::iter::once(&title.id).chain(&title.aliases) {
            let Some(holder) = self.aliases.remove(claimed) else {
                continue;
            };
            if let Some(other) = self.titles.get_mut(&holder) {
                other.aliases.retain(|alias| alias != claimed);
                change.write(&holder);
            }
        }
        let id = title.id.clone();
        let ranked = (Reverse(title.newest), id.clone());
        self.newest
            .entry(title.kind)
            .or_default()
            .insert(ranked.clone());
        for genre in title.genres() {
            self.genres
                .entry((title.kind, genre.clone()))
                .or_default()
                .insert(ranked.clone());
        }
        if let Some(year) = title.display_year() {
            self.years.entry(year).or_default().insert(id.clone());
        }
        self.search.entry(title.kind).or_default().upsert(
            id.clone(),
            title.search_names(),
            title.newest,
        );
        for alias in &title.aliases {
            self.aliases.insert(alias.clone(), id.clone());
        }
        for key in &title.keys {
            self.by_key.insert(key.clone(), id.clone());
        }
        for post in title.all_files() {
            self.by_file.insert(post.file, id.clone());
        }
        if let Some(meta) = &title.metadata {
            if let Some(tmdb) = meta.tmdb_id {
                self.by_tmdb.insert((title.kind, tmdb), id.clone());
            }
            if let Some(imdb) = meta.imdb_id.as_ref().filter(|i| is_imdb_id(i)) {
                self.by_imdb.insert(imdb.clone(), id.clone());
            }
        }
        self.titles.insert(id, title);
    }
}

#[cfg(test)]
impl Catalog {
    /// Every index in a form that two catalogues of the same titles share (empty sets and
    /// indices left behind by removals count as absent).
    pub(crate) fn snapshot(&self) -> String {
        let mut out = format!("titles {:#?}\n", self.titles);
        out += &format!("aliases {:?}\n", sorted(&self.aliases));
        out += &format!("by_key {:?}\n", sorted(&self.by_key));
        out += &format!("by_file {:?}\n", sorted(&self.by_file));
        out += &format!("by_tmdb {:?}\n", sorted(&self.by_tmdb));
        out += &format!("by_imdb {:?}\n", sorted(&self.by_imdb));
        let newest: Vec<_> = self.newest.iter().filter(|(_, s)| !s.is_empty()).collect();
        out += &format!(
            "newest {newest:?}\ngenres {:?}\nyears {:?}\n",
            self.genres, self.years
        );
        for (kind, index) in self.search.iter().filter(|(_, i)| !i.is_empty()) {
            out += &format!("search {kind:?} {:?}\n", index.canonical());
        }
        out
    }
}

#[cfg(test)]
fn sorted<K: std::fmt::Debug>(m: &HashMap<K, String>) -> Vec<String> {
    let mut v: Vec<String> = m.iter().map(|(k, v)| format!("{k:?}→{v}")).collect();
    v.sort();
    v
}
