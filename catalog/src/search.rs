//! Catalogue search: text normalisation, tokenisation and a word index with prefix queries.
//!
//! The model's catalogue keeps one [`SearchIndex`] per kind and feeds it every name a title
//! is known by; the addon asks it for a ranked page. This module knows nothing of titles:
//! keys are any ordered value, so it imports nothing from the rest of the crate.
//!
//! Normalisation is `deunicode` (transliterate to ASCII), then lowercase, apostrophes dropped
//! and every other non-alphanumeric character a word break. `deunicode` was chosen over
//! NFKD + dropping combining marks (`unicode-normalization`) because a viewer types on a
//! Latin keyboard: it also folds letters that have no decomposition (ß → ss, ø → o, ł → l,
//! æ → ae) and spells Cyrillic, Greek and CJK titles in Latin words, so "Amélie", "amelie"
//! and "AMÉLIE" are one word and a CJK title gets word breaks. It has no dependencies.
//!
//! A query matches a title when every query word is one of its words, the last query word
//! as a prefix (the viewer is still typing it). Hits rank exact last word before prefix,
//! then newest first, then by key so pages are stable.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;
use std::ops::Bound;

/// Query words beyond this many are ignored: each costs a posting-list scan, and no title
/// needs more to be found.
pub const MAX_QUERY_WORDS: usize = 8;

/// Lowercase ASCII words separated by single spaces: the form titles are grouped and
/// searched by.
pub fn normalise(text: &str) -> String {
    let ascii = deunicode::deunicode(text);
    let mut out = String::with_capacity(ascii.len());
    let mut gap = false;
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            out.push(c.to_ascii_lowercase());
        } else if c != '\'' {
            // An apostrophe joins ("Schindler's" is searched as "schindlers"); anything
            // else separates words.
            gap = true;
        }
    }
    out
}

/// The normalised words of `text`, in order, duplicates kept.
pub fn words(text: &str) -> Vec<String> {
    normalise(text)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One indexed document: its key, words and the recency that ranks it.
#[derive(Debug, Clone)]
struct Doc<K> {
    key: K,
    words: BTreeSet<String>,
    recency: i64,
}

/// Word → documents, with prefix scans over the sorted words.
///
/// Documents live in slots (dense `u32`s, reused after removal) so a query marks hits in a
/// flat array instead of hashing keys: a one-letter prefix over 50 000 titles stays cheap.
#[derive(Debug, Clone)]
pub struct SearchIndex<K> {
    /// Sorted slot lists per word.
    postings: BTreeMap<String, Vec<u32>>,
    docs: Vec<Option<Doc<K>>>,
    slots: HashMap<K, u32>,
    free: Vec<u32>,
}

impl<K> Default for SearchIndex<K> {
    fn default() -> Self {
        SearchIndex {
            postings: BTreeMap::new(),
            docs: Vec::new(),
            slots: HashMap::new(),
            free: Vec::new(),
        }
    }
}

/// How a document's words met the last query word.
const MISS: u8 = 0;
const PREFIX: u8 = 1;
const EXACT: u8 = 2;

impl<K: Clone + Eq + Hash + Ord> SearchIndex<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of documents indexed.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Indexes `key` under every word of `names` (replacing what it had), ranked by
    /// `recency` (larger is newer). Returns whether anything changed.
    pub fn upsert<'a>(
        &mut self,
        key: K,
        names: impl IntoIterator<Item = &'a str>,
        recency: i64,
    ) -> bool {
        let words: BTreeSet<String> = names.into_iter().flat_map(words).collect();
        if let Some(&slot) = self.slots.get(&key) {
            if let Some(doc) = self.docs.get(slot as usize).and_then(Option::as_ref)
                && doc.words == words
                && doc.recency == recency
            {
                return false;
            }
            self.remove(&key);
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                // More than 4 billion documents would not fit in memory long before this.
                let slot = u32::try_from(self.docs.len()).unwrap_or(u32::MAX);
                self.docs.push(None);
                slot
            }
        };
        for word in &words {
            let list = self.postings.entry(word.clone()).or_default();
            if let Err(at) = list.binary_search(&slot) {
                list.insert(at, slot);
            }
        }
        self.docs[slot as usize] = Some(Doc {
            key: key.clone(),
            words,
            recency,
        });
        self.slots.insert(key, slot);
        true
    }

    /// Drops `key` from the index. Returns whether it was there.
    pub fn remove(&mut self, key: &K) -> bool {
        let Some(slot) = self.slots.remove(key) else {
            return false;
        };
        if let Some(doc) = self.docs.get_mut(slot as usize).and_then(Option::take) {
            for word in &doc.words {
                if let Some(list) = self.postings.get_mut(word) {
                    if let Ok(at) = list.binary_search(&slot) {
                        list.remove(at);
                    }
                    if list.is_empty() {
                        self.postings.remove(word);
                    }
                }
            }
        }
        self.free.push(slot);
        true
    }

    /// The keys matching `query` that pass `filter`, ranked, `skip` hits skipped and at most
    /// `limit` returned. An empty query matches nothing.
    pub fn search(
        &self,
        query: &str,
        filter: impl Fn(&K) -> bool,
        skip: usize,
        limit: usize,
    ) -> Vec<K> {
        let mut hits = self.hits(query, filter);
        let end = skip.saturating_add(limit).min(hits.len());
        if skip >= end {
            return Vec::new();
        }
        // Only the first `end` need ordering: partition, then sort that head.
        if end < hits.len() {
            hits.select_nth_unstable_by(end - 1, rank_order);
            hits.truncate(end);
        }
        hits.sort_unstable_by(rank_order);
        hits.drain(skip..).map(|hit| hit.key.clone()).collect()
    }

    /// Every hit of `query`, unordered. With several words the exact ones narrow first
    /// (intersecting their sorted posting lists, shortest first) and only those candidates
    /// are checked for the prefix; a single word is a prefix scan over the sorted words.
    fn hits(&self, query: &str, filter: impl Fn(&K) -> bool) -> Vec<Hit<'_, K>> {
        let mut terms = words(query);
        terms.truncate(MAX_QUERY_WORDS);
        let Some(last) = terms.pop() else {
            return Vec::new();
        };
        if terms.is_empty() {
            return self.prefix_hits(&last, filter);
        }
        let mut lists = Vec::with_capacity(terms.len());
        for term in &terms {
            match self.postings.get(term) {
                Some(list) => lists.push(list),
                None => return Vec::new(),
            }
        }
        lists.sort_by_key(|l| l.len());
        let mut candidates: Vec<u32> = lists[0].clone();
        for list in &lists[1..] {
            candidates.retain(|slot| list.binary_search(slot).is_ok());
        }
        candidates
            .into_iter()
            .filter_map(|slot| self.docs.get(slot as usize)?.as_ref())
            .filter_map(|doc| {
                let mark = word_mark(&doc.words, &last);
                (mark != MISS && filter(&doc.key)).then_some(Hit {
                    key: &doc.key,
                    exact: mark == EXACT,
                    recency: doc.recency,
                })
            })
            .collect()
    }

    /// Documents with a word starting with `prefix`, marked in a flat array so each is
    /// counted once however many of its words match.
    fn prefix_hits(&self, prefix: &str, filter: impl Fn(&K) -> bool) -> Vec<Hit<'_, K>> {
        let mut marks = vec![MISS; self.docs.len()];
        let from = (Bound::Included(prefix), Bound::Unbounded);
        for (word, list) in self.postings.range::<str, _>(from) {
            if !word.starts_with(prefix) {
                break;
            }
            let mark = if word == prefix { EXACT } else { PREFIX };
            for &slot in list {
                let m = &mut marks[slot as usize];
                *m = (*m).max(mark);
            }
        }
        marks
            .iter()
            .zip(&self.docs)
            .filter(|(mark, _)| **mark != MISS)
            .filter_map(|(mark, doc)| Some((*mark, doc.as_ref()?)))
            .filter(|(_, doc)| filter(&doc.key))
            .map(|(mark, doc)| Hit {
                key: &doc.key,
                exact: mark == EXACT,
                recency: doc.recency,
            })
            .collect()
    }

    /// Word → keys and key → recency: what the index means, independent of slot numbers.
    /// Tests compare an incrementally kept index with one built from scratch through it.
    pub fn canonical(&self) -> (BTreeMap<String, BTreeSet<K>>, BTreeMap<K, i64>) {
        let mut words = BTreeMap::new();
        let mut recency = BTreeMap::new();
        for doc in self.docs.iter().flatten() {
            for w in &doc.words {
                words
                    .entry(w.clone())
                    .or_insert_with(BTreeSet::new)
                    .insert(doc.key.clone());
            }
            recency.insert(doc.key.clone(), doc.recency);
        }
        (words, recency)
    }
}

/// How `words` (sorted) meet a prefix: the first word not below it decides.
fn word_mark(words: &BTreeSet<String>, prefix: &str) -> u8 {
    match words
        .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
        .next()
    {
        Some(w) if w == prefix => EXACT,
        Some(w) if w.starts_with(prefix) => PREFIX,
        _ => MISS,
    }
}

struct Hit<'a, K> {
    key: &'a K,
    exact: bool,
    recency: i64,
}

/// Exact before prefix, newer before older, then by key.
fn rank_order<K: Ord>(a: &Hit<'_, K>, b: &Hit<'_, K>) -> std::cmp::Ordering {
    b.exact
        .cmp(&a.exact)
        .then(b.recency.cmp(&a.recency))
        .then_with(|| a.key.cmp(b.key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(docs: &[(&'static str, &str, i64)]) -> SearchIndex<&'static str> {
        let mut idx = SearchIndex::new();
        for &(key, name, recency) in docs {
            idx.upsert(key, [name], recency);
        }
        idx
    }

    fn all(idx: &SearchIndex<&'static str>, q: &str) -> Vec<&'static str> {
        idx.search(q, |_| true, 0, usize::MAX)
    }

    #[test]
    fn normalise_folds_case_accents_and_punctuation() {
        assert_eq!(normalise("Amélie"), "amelie");
        assert_eq!(
            normalise("  LÉON: The  Professional!! "),
            "leon the professional"
        );
        assert_eq!(normalise("Schindler's List"), "schindlers list");
        assert_eq!(normalise("Blade.Runner_2049"), "blade runner 2049");
        assert_eq!(normalise("Straße Øre Łódź"), "strasse ore lodz");
        assert_eq!(normalise("Брат"), "brat");
        assert_eq!(normalise("..."), "");
        assert!(!normalise("千と千尋の神隠し").is_empty());
    }

    #[test]
    fn search_is_case_and_accent_insensitive() {
        let idx = index(&[("a", "Amélie", 1), ("b", "Léon", 2)]);
        assert_eq!(all(&idx, "AMELIE"), ["a"]);
        assert_eq!(all(&idx, "améLIE"), ["a"]);
        assert_eq!(all(&idx, "leon"), ["b"]);
    }

    #[test]
    fn every_word_must_match_and_the_last_may_be_a_prefix() {
        let idx = index(&[
            ("br", "Blade Runner", 1),
            ("br49", "Blade Runner 2049", 2),
            ("b2", "Blade II", 3),
        ]);
        assert_eq!(all(&idx, "blade run"), ["br49", "br"]);
        assert_eq!(all(&idx, "blade"), ["b2", "br49", "br"]);
        assert_eq!(all(&idx, "runner blade"), ["br49", "br"]);
        // Only the last word is a prefix.
        assert!(all(&idx, "bla runner").is_empty());
        assert!(all(&idx, "blade x").is_empty());
        assert!(all(&idx, "").is_empty());
        assert!(all(&idx, " ,.; ").is_empty());
    }

    #[test]
    fn exact_last_word_ranks_before_prefix_then_newer_first() {
        let idx = index(&[
            ("star-old", "Star", 1),
            ("stars-new", "Stars", 9),
            ("star-new", "A Star Is Born", 5),
            ("stardust", "Stardust", 7),
        ]);
        assert_eq!(
            all(&idx, "star"),
            ["star-new", "star-old", "stars-new", "stardust"]
        );
    }

    #[test]
    fn pages_and_filter() {
        let docs: Vec<(&'static str, String, i64)> = ["a", "b", "c", "d", "e"]
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, format!("title {k}"), i as i64))
            .collect();
        let mut idx = SearchIndex::new();
        for (k, name, r) in &docs {
            idx.upsert(*k, [name.as_str()], *r);
        }
        assert_eq!(idx.search("title", |_| true, 0, 2), ["e", "d"]);
        assert_eq!(idx.search("title", |_| true, 2, 2), ["c", "b"]);
        assert_eq!(idx.search("title", |_| true, 4, 2), ["a"]);
        assert!(idx.search("title", |_| true, 5, 2).is_empty());
        assert!(
            idx.search("title", |_| true, usize::MAX, usize::MAX)
                .is_empty()
        );
        assert_eq!(idx.search("tit", |k| *k != "d", 0, 2), ["e", "c"]);
    }

    #[test]
    fn upsert_replaces_and_remove_forgets() {
        let mut idx = index(&[("a", "Alien", 1)]);
        assert!(
            !idx.upsert("a", ["Alien"], 1),
            "same words and recency change nothing"
        );
        assert!(idx.upsert("a", ["Aliens"], 1));
        assert!(all(&idx, "alien").contains(&"a"), "prefix still finds it");
        assert_eq!(idx.search("alien", |_| true, 0, 9), ["a"]);
        assert!(idx.remove(&"a"));
        assert!(!idx.remove(&"a"));
        assert!(all(&idx, "alien").is_empty());
        assert!(idx.canonical().0.is_empty(), "no word left behind");
        idx.upsert("b", ["Brazil"], 2);
        assert_eq!(idx.len(), 1);
        assert_eq!(all(&idx, "bra"), ["b"]);
    }

    #[test]
    fn extra_query_words_are_ignored() {
        let idx = index(&[("a", "a b c d e f g h", 1)]);
        assert_eq!(all(&idx, "a b c d e f g h zzz yyy"), ["a"]);
    }
}
