//! TMDB answers kept in sled (tree `tmdb_cache`), so a restart or a re-index does not spend
//! the API key's rate again, and a title enriched once stays enriched while TMDB is away.
//!
//! Keyed by the request without credentials (path and sorted query), valued by the body as
//! received and when it was fetched; entries older than the TTL are misses. Only successful
//! answers are stored: an error is worth asking again.

use serde::{Deserialize, Serialize};

use crate::store::{self, StoreError};

/// The sled tree this module owns.
pub const TREE: &str = "tmdb_cache";

#[derive(Debug, Serialize, Deserialize)]
struct CachedAnswer {
    fetched_unix: i64,
    body: Vec<u8>,
}

#[derive(Clone)]
pub struct AnswerCache {
    tree: sled::Tree,
    ttl_secs: i64,
}

impl AnswerCache {
    pub fn new(tree: sled::Tree, ttl_secs: u64) -> Self {
        Self {
            tree,
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(i64::MAX),
        }
    }

    /// The body stored for `key` if it is younger than the TTL at `now_unix`.
    pub fn get(&self, key: &str, now_unix: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(answer) = store::get::<CachedAnswer>(&self.tree, TREE, key.as_bytes())? else {
            return Ok(None);
        };
        let age = now_unix.saturating_sub(answer.fetched_unix);
        Ok((age < self.ttl_secs).then_some(answer.body))
    }

    /// Not flushed: a lost entry is fetched again.
    pub fn put(&self, key: &str, body: &[u8], now_unix: i64) -> Result<(), StoreError> {
        let answer = CachedAnswer {
            fetched_unix: now_unix,
            body: body.to_vec(),
        };
        store::put(&self.tree, TREE, key.as_bytes(), &answer)
    }
}

/// The cache key of a request: `path?k=v&…` with the parameters sorted, so the same question
/// asked with its parameters in another order is one entry.
pub fn key(path: &str, params: &[(&str, String)]) -> String {
    let mut sorted: Vec<_> = params.iter().collect();
    sorted.sort();
    let mut key = String::from(path);
    for (index, (name, value)) in sorted.into_iter().enumerate() {
        key.push(if index == 0 { '?' } else { '&' });
        key.push_str(name);
        key.push('=');
        key.push_str(value);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn entries_expire_after_the_ttl() {
        let store = Store::temporary().unwrap();
        let cache = AnswerCache::new(store.tree(TREE).unwrap(), 60);
        cache.put("/movie/1", b"{}", 1_000).unwrap();
        assert_eq!(
            cache.get("/movie/1", 1_059).unwrap().as_deref(),
            Some(&b"{}"[..])
        );
        assert_eq!(cache.get("/movie/1", 1_060).unwrap(), None);
        assert_eq!(cache.get("/movie/2", 1_000).unwrap(), None);
    }

    #[test]
    fn parameter_order_does_not_split_entries() {
        let a = key(
            "/search/movie",
            &[("year", "2017".into()), ("query", "x".into())],
        );
        let b = key(
            "/search/movie",
            &[("query", "x".into()), ("year", "2017".into())],
        );
        assert_eq!(a, b);
        assert_eq!(a, "/search/movie?query=x&year=2017");
    }
}
