//! The catalogue as the core holds it: the pure [`Catalog`] in memory behind a lock, its
//! title records in sled (tree `catalog_titles`, JSON so records written by an older build
//! still read after fields are added), and the two ports it serves — the indexer's
//! [`CatalogSink`] (posts in) and the QUIC handler's [`AddonService`] (Stremio answers out).
//!
//! Every mutation applies to the in-memory catalogue and writes the records its
//! [`Change`] names under the same lock, so sled and memory never disagree about the order
//! of two edits; at start [`Library::open`] rebuilds the indices from the records. Reads
//! (addon answers) take the read lock only for the time it takes to build one answer.
//! Enrichment (metadata, video hashes) runs in `enrich.rs` and comes back through
//! [`Library::attach_metadata`] and [`Library::set_video_hash`].

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tgcdn_catalog::addon::{self, AddonInfo, AddonRoute, Links};
use tgcdn_catalog::model::{Catalog, Change, Kind, Metadata, Post, Title};
use tgcdn_catalog::name;
use tgcdn_shared::FileRef;
use tgcdn_shared::token::Keyring;
use tgcdn_shared::wire::AddonRequest;
use tokio::sync::Notify;

use super::index::{CatalogSink, ChannelPost, SinkError};
use super::posts::PostStore;
use crate::addon::{AddonAnswer, AddonError, AddonService, CacheHints};
use crate::links::download_link;
use crate::store::{Store, StoreError};

/// The sled tree of title records: Stremio id → JSON [`Title`].
pub const TITLES: &str = "catalog_titles";

#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("catalogue store")]
    Store(#[from] StoreError),
    #[error("catalogue store")]
    Sled(#[from] sled::Error),
    #[error("title record {id:?} cannot be read")]
    Decode {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("title record {id:?} cannot be written")]
    Encode {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Catalog(#[from] tgcdn_catalog::model::CatalogError),
    #[error("metadata client")]
    Tmdb(#[from] super::tmdb::TmdbError),
}

/// What a lookup needs to know of a title that has no metadata yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: String,
    pub kind: Kind,
    pub name: String,
    pub year: Option<u16>,
    /// Series: the seasons that have files.
    pub seasons: Vec<u16>,
}

/// A file whose OpenSubtitles hash is still to compute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhashed {
    pub file: FileRef,
    pub size: u64,
}

pub struct Library {
    catalog: RwLock<Catalog>,
    titles: sled::Tree,
    /// Every post as it came from the channel, beside the catalogue built from them.
    posts: PostStore,
    keyring: Keyring,
    info: AddonInfo,
    /// Woken when a title needs metadata or a file needs its hash.
    work: Arc<Notify>,
}

impl Library {
    /// Opens the title records and rebuilds the in-memory catalogue from them.
    pub fn open(
        store: &Store,
        posts: PostStore,
        keyring: Keyring,
        info: AddonInfo,
    ) -> Result<Self, LibraryError> {
        let titles = store.tree(TITLES)?;
        let records = titles
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                serde_json::from_slice::<Title>(&value).map_err(|source| LibraryError::Decode {
                    id: String::from_utf8_lossy(&key).into_owned(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            catalog: RwLock::new(Catalog::from_titles(records)),
            titles,
            posts,
            keyring,
            info,
            work: Arc::new(Notify::new()),
        })
    }

    /// The raw posts the catalogue was built from.
    pub fn posts(&self) -> &PostStore {
        &self.posts
    }

    /// Titles in the catalogue.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Notified whenever enrichment has something new to do.
    pub fn work(&self) -> Arc<Notify> {
        Arc::clone(&self.work)
    }

    /// Titles without metadata, oldest id first (stable order, so a restart resumes).
    pub fn pending_metadata(&self) -> Vec<Pending> {
        self.read()
            .titles_needing_metadata()
            .map(|title| {
                let mut seasons: Vec<u16> = title.episodes.iter().map(|e| e.season).collect();
                seasons.dedup();
                Pending {
                    id: title.id.clone(),
                    kind: title.kind,
                    name: title.name.clone(),
                    year: title.year,
                    seasons,
                }
            })
            .collect()
    }

    /// Files without a video hash.
    pub fn unhashed(&self) -> Vec<Unhashed> {
        self.read()
            .titles()
            .flat_map(|title| title.all_files())
            .filter(|post| post.video_hash.is_none())
            .map(|post| Unhashed {
                file: post.file,
                size: post.size,
            })
            .collect()
    }

    pub fn attach_metadata(&self, id: &str, metadata: Metadata) -> Result<(), LibraryError> {
        let mut catalog = self.write();
        let change = catalog.attach_metadata(id, metadata)?;
        self.persist(&catalog, &change)
    }

    /// Records `hash` for `file` if it is still catalogued with the same size.
    pub fn set_video_hash(&self, file: FileRef, size: u64, hash: u64) -> Result<(), LibraryError> {
        let mut catalog = self.write();
        let Some(mut post) = find_post(&catalog, &file) else {
            return Ok(());
        };
        if post.size != size || post.video_hash == Some(hash) {
            return Ok(());
        }
        post.video_hash = Some(hash);
        let change = catalog.upsert(post);
        self.persist(&catalog, &change)
    }

    fn upsert_post(&self, post: ChannelPost) -> Result<(), LibraryError> {
        let mut catalog = self.write();
        let known = find_post(&catalog, &post.file);
        let post = catalogue_post(post, known.as_ref());
        let needs_work = post.video_hash.is_none();
        let change = catalog.upsert(post);
        self.persist(&catalog, &change)?;
        drop(catalog);
        if needs_work || !change.is_empty() {
            self.work.notify_one();
        }
        Ok(())
    }

    fn remove_post(&self, file: FileRef) -> Result<(), LibraryError> {
        let mut catalog = self.write();
        let change = catalog.remove(&file);
        self.persist(&catalog, &change)
    }

    /// Writes what `change` names, with the catalogue still locked by the caller.
    fn persist(&self, catalog: &Catalog, change: &Change) -> Result<(), LibraryError> {
        let mut batch = sled::Batch::default();
        for id in &change.deleted {
            batch.remove(id.as_bytes());
        }
        for id in &change.written {
            // A written id is in the catalogue by `Change`'s contract; if not, deleting the
            // record is the state that matches memory.
            match catalog.get(id).filter(|title| title.id == *id) {
                Some(title) => {
                    let json =
                        serde_json::to_vec(title).map_err(|source| LibraryError::Encode {
                            id: id.clone(),
                            source,
                        })?;
                    batch.insert(id.as_bytes(), json);
                }
                None => batch.remove(id.as_bytes()),
            }
        }
        self.titles.apply_batch(batch)?;
        Ok(())
    }

    fn read(&self) -> RwLockReadGuard<'_, Catalog> {
        // The catalogue is only mutated through `Catalog`'s methods, which keep it consistent
        // even if a panic interrupted a caller between two of them.
        self.catalog.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Catalog> {
        self.catalog.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The link path a stream URL carries: a signed token without expiry, like the bot's.
    fn link_path(&self, file: &FileRef, file_name: &str) -> String {
        download_link("", &self.keyring.sign(*file, None), file_name)
    }
}

/// The catalogue's post for a channel post: its name parsed (caption as fallback), and the
/// video hash kept when the file is the same as before (same name and size).
fn catalogue_post(post: ChannelPost, known: Option<&Post>) -> Post {
    let parsed = name::parse_post(post.file_name.as_deref(), post.caption.as_deref());
    let file_name = post.file_name.unwrap_or_default();
    let video_hash = known
        .filter(|known| known.size == post.size && known.file_name == file_name)
        .and_then(|known| known.video_hash);
    Post {
        file: post.file,
        size: post.size,
        file_name,
        mime: Some(post.mime).filter(|mime| !mime.is_empty()),
        caption: post.caption,
        date: i64::try_from(post.date).unwrap_or(i64::MAX),
        parsed,
        video_hash,
    }
}

fn find_post(catalog: &Catalog, file: &FileRef) -> Option<Post> {
    catalog
        .title_of(file)?
        .all_files()
        .into_iter()
        .find(|post| post.file == *file)
        .cloned()
}

/// The raw post first, then the catalogue: a crash between the two leaves a post the next
/// re-index of the channel catalogues again, never a title without its post.
impl CatalogSink for Library {
    fn upsert(&self, post: ChannelPost) -> Result<(), SinkError> {
        self.posts.upsert(post.clone())?;
        self.upsert_post(post).map_err(|e| SinkError(Box::new(e)))
    }

    fn remove(&self, file: FileRef) -> Result<(), SinkError> {
        self.posts.remove(file)?;
        self.remove_post(file).map_err(|e| SinkError(Box::new(e)))
    }
}

impl AddonService for Library {
    fn handle(&self, request: &AddonRequest) -> Result<AddonAnswer, AddonError> {
        let route = AddonRoute::parse(&request.path, &request.query).map_err(addon_error)?;
        let minter = |file: &FileRef, file_name: &str| self.link_path(file, file_name);
        let links = Links {
            base_url: &request.base_url,
            minter: &minter,
        };
        let answer = addon::answer(&route, &self.read(), &self.info, links).map_err(addon_error)?;
        Ok(AddonAnswer {
            json: answer.body.into(),
            cache: CacheHints {
                max_age_secs: answer.cache.max_age,
                stale_revalidate_secs: answer.cache.stale_revalidate,
                stale_error_secs: answer.cache.stale_error,
            },
        })
    }
}

fn addon_error(error: addon::AddonError) -> AddonError {
    match error {
        addon::AddonError::NotFound(_) => AddonError::NotFound,
        addon::AddonError::BadRequest(reason) => AddonError::BadRequest(reason.to_owned()),
        addon::AddonError::Encode(reason) => AddonError::Internal(reason),
    }
}

#[cfg(test)]
#[path = "library_tests.rs"]
mod tests;
