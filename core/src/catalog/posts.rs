//! The catalogue's posts in sled tree `catalog_posts`: [`FileRef`] → [`ChannelPost`]
//! (postcard), keyed like `file_meta` so one channel's posts are one ordered range.
//!
//! [`PostStore`] is the [`CatalogSink`] until the catalogue model lands: storing the same
//! post again rewrites the same key, an edit replaces the value, a deletion removes it.
//! Writes are not flushed one by one: the update loop flushes the database when it commits
//! its update state, and the back-fill after each batch.

use tgcdn_shared::FileRef;

use super::index::{CatalogSink, ChannelPost, SinkError};
use crate::store::{Store, StoreError, decode, file_key, get, put};

/// Name of the tree.
pub const TREE: &str = "catalog_posts";

/// Every catalogued post, by channel and message.
#[derive(Clone)]
pub struct PostStore {
    tree: sled::Tree,
}

impl PostStore {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(Self {
            tree: store.tree(TREE)?,
        })
    }

    pub fn get(&self, file: FileRef) -> Result<Option<ChannelPost>, StoreError> {
        get(&self.tree, TREE, &file_key(file))
    }

    /// Every post, ordered by channel then message id.
    pub fn all(&self) -> Result<Vec<ChannelPost>, StoreError> {
        self.tree
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                decode(TREE, &key, &value)
            })
            .collect()
    }

    /// How many posts are stored (walks the tree: for reports, not hot paths).
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

impl CatalogSink for PostStore {
    fn upsert(&self, post: ChannelPost) -> Result<(), SinkError> {
        put(&self.tree, TREE, &file_key(post.file), &post).map_err(|e| SinkError(Box::new(e)))
    }

    fn remove(&self, file: FileRef) -> Result<(), SinkError> {
        self.tree
            .remove(file_key(file))
            .map(drop)
            .map_err(|e| SinkError(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(msg_id: i32, caption: &str) -> ChannelPost {
        ChannelPost {
            file: FileRef {
                chat_id: -1_000_000_000_042,
                msg_id,
            },
            file_name: Some(format!("Show.S01E{msg_id:02}.720p.mkv")),
            caption: Some(caption.into()),
            size: 1 << 30,
            mime: "video/x-matroska".into(),
            date: 1_700_000_000,
        }
    }

    #[test]
    fn posts_are_upserted_idempotently_ordered_and_removed() {
        let store = Store::temporary().unwrap();
        let posts = PostStore::open(&store).unwrap();
        posts.upsert(post(10, "a")).unwrap();
        posts.upsert(post(2, "b")).unwrap();
        posts.upsert(post(10, "a")).unwrap();
        assert_eq!(posts.len(), 2);
        let ids: Vec<i32> = posts.all().unwrap().iter().map(|p| p.file.msg_id).collect();
        assert_eq!(ids, [2, 10], "numeric order");
        posts.upsert(post(10, "edited")).unwrap();
        assert_eq!(
            posts
                .get(post(10, "").file)
                .unwrap()
                .unwrap()
                .caption
                .as_deref(),
            Some("edited")
        );
        posts.remove(post(10, "").file).unwrap();
        posts.remove(post(99, "").file).unwrap();
        assert_eq!(posts.len(), 1);
    }
}
