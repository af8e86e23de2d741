//! Catalogue behaviour: grouping, re-indexing, edits, deletes, metadata merges, indices,
//! and a property test that incremental upkeep equals a rebuild.

use proptest::prelude::*;
use tgcdn_shared::FileRef;

use super::*;
use crate::name::{ParsedName, Quality};

const CHAT: i64 = -100_123;

pub(crate) fn movie(
    msg: i32,
    title: &str,
    year: Option<u16>,
    q: Option<Quality>,
    date: i64,
) -> Post {
    post(
        msg,
        ParsedName {
            title: title.into(),
            year,
            quality: q,
            ..Default::default()
        },
        date,
    )
}

pub(crate) fn episode(
    msg: i32,
    title: &str,
    s: u16,
    e: &[u16],
    q: Option<Quality>,
    date: i64,
) -> Post {
    let parsed = ParsedName {
        title: title.into(),
        seasons: vec![s],
        episodes: e.to_vec(),
        quality: q,
        ..Default::default()
    };
    post(msg, parsed, date)
}

fn post(msg: i32, parsed: ParsedName, date: i64) -> Post {
    Post {
        file: FileRef {
            chat_id: CHAT,
            msg_id: msg,
        },
        size: 1_000_000 + msg as u64,
        file_name: format!("{}.{msg}.mkv", parsed.title),
        mime: Some("video/x-matroska".into()),
        caption: None,
        date,
        parsed,
        video_hash: None,
    }
}

fn fref(msg: i32) -> FileRef {
    FileRef {
        chat_id: CHAT,
        msg_id: msg,
    }
}

fn meta(name: &str, tmdb: Option<u64>, imdb: Option<&str>, genres: &[&str]) -> Metadata {
    Metadata {
        tmdb_id: tmdb,
        imdb_id: imdb.map(Into::into),
        name: name.into(),
        genres: genres.iter().map(|g| g.to_string()).collect(),
        ..Default::default()
    }
}

fn ids<'a>(titles: &[&'a Title]) -> Vec<&'a String> {
    titles.iter().map(|t| &t.id).collect()
}

fn assert_rebuilds(c: &Catalog) {
    let rebuilt = Catalog::from_titles(c.titles().cloned());
    assert_eq!(c.snapshot(), rebuilt.snapshot());
}

#[test]
fn files_group_by_kind_normalised_title_and_year_best_quality_first() {
    let mut c = Catalog::new();
    c.upsert(movie(
        1,
        "Blade Runner",
        Some(1982),
        Some(Quality::P720),
        10,
    ));
    c.upsert(movie(
        2,
        "BLADE  runner",
        Some(1982),
        Some(Quality::P2160),
        11,
    ));
    c.upsert(movie(3, "Blade Runner", Some(1982), None, 12));
    c.upsert(movie(
        4,
        "Blade Runner",
        Some(1982),
        Some(Quality::P720),
        13,
    ));
    c.upsert(movie(
        5,
        "Blade Runner",
        Some(2049),
        Some(Quality::P1080),
        14,
    ));
    c.upsert(episode(6, "Blade Runner", 1, &[1], None, 15));
    assert_eq!(c.len(), 3, "other year and series are other titles");
    let key = GroupKey {
        kind: Kind::Movie,
        title: "blade runner".into(),
        year: Some(1982),
    };
    let t = c.get(&key.tgcdn_id()).expect("grouped title");
    let order: Vec<i32> = t.files.iter().map(|p| p.file.msg_id).collect();
    // 2160p, then two 720p (larger first: msg 4 is 1 byte larger), then unknown quality.
    assert_eq!(order, [2, 4, 1, 3]);
    assert_eq!(t.newest, 13);
    assert!(is_tgcdn_id(&t.id));
    assert_eq!(
        t.id,
        key.tgcdn_id(),
        "id is a function of the key: stable across rebuilds"
    );
    assert_eq!(t.id, "tgcdn:".to_owned() + &t.id[6..]);
    assert_rebuilds(&c);
}

#[test]
fn the_same_post_twice_changes_nothing() {
    let mut c = Catalog::new();
    let p = movie(1, "Alien", Some(1979), Some(Quality::P1080), 5);
    let first = c.upsert(p.clone());
    assert_eq!(first.written.len(), 1);
    let before = c.snapshot();
    assert!(c.upsert(p).is_empty());
    assert_eq!(c.snapshot(), before);
}

#[test]
fn an_edited_post_moves_its_file() {
    let mut c = Catalog::new();
    c.upsert(movie(1, "Alien", Some(1979), None, 5));
    c.upsert(movie(2, "Alien", Some(1979), None, 6));
    let alien = c.title_of(&fref(1)).unwrap().id.clone();
    let change = c.upsert(movie(1, "Aliens", Some(1986), None, 5));
    let aliens = c.title_of(&fref(1)).unwrap().id.clone();
    assert_ne!(alien, aliens);
    assert_eq!(
        change.written,
        [alien.clone(), aliens.clone()].into_iter().collect()
    );
    assert_eq!(c.get(&alien).unwrap().files.len(), 1);
    // Moving the last file away deletes the old title.
    let change = c.upsert(movie(2, "Aliens", Some(1986), None, 6));
    assert!(change.deleted.contains(&alien));
    assert!(c.get(&alien).is_none());
    assert_eq!(c.get(&aliens).unwrap().files.len(), 2);
    assert_rebuilds(&c);
}

#[test]
fn an_edit_within_a_title_keeps_its_metadata() {
    let mut c = Catalog::new();
    let mut p = movie(1, "Alien", Some(1979), None, 5);
    c.upsert(p.clone());
    let id = c.title_of(&p.file).unwrap().id.clone();
    c.attach_metadata(
        &id,
        meta("Alien", Some(348), Some("tt0078748"), &["Horror"]),
    )
    .unwrap();
    p.caption = Some("now with a caption".into());
    let change = c.upsert(p.clone());
    assert_eq!(
        change.written,
        ["tt0078748".to_owned()].into_iter().collect()
    );
    assert!(change.deleted.is_empty());
    let t = c.get("tt0078748").unwrap();
    assert_eq!(t.files[0].caption.as_deref(), Some("now with a caption"));
    assert!(t.metadata.is_some());
}

#[test]
fn delete_removes_the_stream_then_the_title() {
    let mut c = Catalog::new();
    c.upsert(episode(1, "Dark", 1, &[1], Some(Quality::P1080), 1));
    c.upsert(episode(2, "Dark", 1, &[1], Some(Quality::P720), 2));
    c.upsert(episode(3, "Dark", 1, &[2, 3], None, 3));
    let id = c.title_of(&fref(1)).unwrap().id.clone();
    let t = c.get(&id).unwrap();
    assert_eq!(t.episode(1, 1).unwrap().len(), 2);
    assert_eq!(
        t.episode(1, 3).unwrap()[0].file,
        fref(3),
        "multi-episode file in each"
    );
    assert_eq!(t.all_files().len(), 3);

    assert_eq!(c.remove(&fref(1)).written.len(), 1);
    assert_eq!(c.get(&id).unwrap().episode(1, 1).unwrap().len(), 1);
    c.remove(&fref(3));
    assert!(
        c.get(&id).unwrap().episode(1, 2).is_none(),
        "episode without files is gone"
    );
    assert!(c.remove(&fref(3)).is_empty(), "removing twice is a no-op");
    let change = c.remove(&fref(2));
    assert_eq!(change.deleted, [id.clone()].into_iter().collect());
    assert!(c.get(&id).is_none());
    assert!(c.newest(Kind::Series, 0, 10).is_empty());
    assert!(c.search(Kind::Series, "dark", None, 0, 10).is_empty());
    assert_rebuilds(&c);
}

#[test]
fn posts_without_title_or_episode_are_skipped_and_unplace_an_edited_file() {
    let mut c = Catalog::new();
    c.upsert(movie(1, "Heat", Some(1995), None, 1));
    let id = c.title_of(&fref(1)).unwrap().id.clone();
    let change = c.upsert(movie(1, " .-", None, None, 1));
    assert_eq!(change.skipped, Some(Skip::NoTitle));
    assert!(change.deleted.contains(&id));
    let mut pack = episode(2, "Heat", 1, &[], None, 1);
    pack.parsed.episodes.clear();
    assert_eq!(c.upsert(pack).skipped, Some(Skip::NoEpisode));
    assert!(c.is_empty());
}

#[test]
fn metadata_gives_the_imdb_id_and_merges_titles_by_external_id() {
    let mut c = Catalog::new();
    c.upsert(movie(1, "Leon", Some(1994), Some(Quality::P720), 1));
    c.upsert(movie(
        2,
        "Léon The Professional",
        Some(1994),
        Some(Quality::P1080),
        2,
    ));
    c.upsert(movie(3, "Leon", None, None, 3));
    assert_eq!(c.len(), 3);
    let a = c.title_of(&fref(1)).unwrap().id.clone();
    let b = c.title_of(&fref(2)).unwrap().id.clone();
    let d = c.title_of(&fref(3)).unwrap().id.clone();
    assert_eq!(c.titles_needing_metadata().count(), 3);

    // TMDB id alone: still a tgcdn id, derived from the TMDB id.
    let change = c
        .attach_metadata(
            &a,
            meta("Léon: The Professional", Some(101), None, &["Crime"]),
        )
        .unwrap();
    let tmdb_id = c.title_of(&fref(1)).unwrap().id.clone();
    assert!(is_tgcdn_id(&tmdb_id));
    assert_ne!(tmdb_id, a);
    assert_eq!(change.deleted, [a.clone()].into_iter().collect());
    assert_eq!(c.get(&a).unwrap().id, tmdb_id, "the old id still resolves");

    // Same TMDB id with an IMDb id: merged, named by the IMDb id.
    let full = meta(
        "Léon: The Professional",
        Some(101),
        Some("tt0110413"),
        &["Crime", "Drama"],
    );
    let change = c.attach_metadata(&b, full.clone()).unwrap();
    assert_eq!(
        change.written,
        ["tt0110413".to_owned()].into_iter().collect()
    );
    assert_eq!(
        change.deleted,
        [b.clone(), tmdb_id.clone()].into_iter().collect()
    );
    let t = c.get("tt0110413").unwrap();
    assert_eq!(t.files.len(), 2);
    assert_eq!(t.files[0].file, fref(2), "1080p first");
    for old in [&a, &b, &tmdb_id] {
        assert_eq!(c.get(old).unwrap().id, "tt0110413");
    }
    // Same IMDb id alone merges too.
    c.attach_metadata(&d, meta("Leon", None, Some("tt0110413"), &[]))
        .unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c.get("tt0110413").unwrap().files.len(), 3);
    // New posts of any merged key land in the merged title.
    c.upsert(movie(4, "LEON", Some(1994), Some(Quality::P2160), 4));
    assert_eq!(c.len(), 1);
    assert_eq!(c.get("tt0110413").unwrap().files[0].file, fref(4));
    assert_eq!(c.titles_needing_metadata().count(), 0);
    assert!(c.attach_metadata("tgcdn:0000000000000000", full).is_err());
    assert_rebuilds(&c);
}

#[test]
fn a_movie_and_a_series_with_one_tmdb_number_do_not_merge() {
    let mut c = Catalog::new();
    c.upsert(movie(1, "Fargo", Some(1996), None, 1));
    c.upsert(episode(2, "Fargo", 1, &[1], None, 2));
    let m = c.title_of(&fref(1)).unwrap().id.clone();
    let s = c.title_of(&fref(2)).unwrap().id.clone();
    c.attach_metadata(&m, meta("Fargo", Some(275), None, &[]))
        .unwrap();
    c.attach_metadata(&s, meta("Fargo", Some(275), None, &[]))
        .unwrap();
    assert_eq!(c.len(), 2);
    assert_rebuilds(&c);
}

#[test]
fn an_old_id_resolves_to_the_title_that_held_it_last() {
    // Found by the property test: a movie keeps `tt0000001` as an alias after a second
    // lookup drops its IMDb id; a series then takes that id and drops it too. Both kept the
    // alias, so the incremental index and a rebuild disagreed on where it led.
    let mut c = Catalog::new();
    let movie_id = c
        .upsert(movie(2, "Heat", None, None, 0))
        .written
        .pop_first()
        .unwrap();
    let series_id = c
        .upsert(episode(7, "Heat", 1, &[1], None, 0))
        .written
        .pop_first()
        .unwrap();
    c.attach_metadata(&movie_id, meta("M", None, Some("tt0000001"), &["Drama"]))
        .unwrap();
    c.attach_metadata("tt0000001", meta("M", None, None, &["Comedy"]))
        .unwrap();
    c.attach_metadata(&series_id, meta("M", None, Some("tt0000001"), &["Drama"]))
        .unwrap();
    let change = c
        .attach_metadata("tt0000001", meta("M", Some(2), None, &["Crime"]))
        .unwrap();
    let series = c.get(&series_id).unwrap().id.clone();
    assert_eq!(c.get("tt0000001").unwrap().id, series);
    assert_eq!(c.get(&movie_id).unwrap().id, movie_id);
    assert!(c.get(&movie_id).unwrap().aliases.is_empty());
    assert!(change.written.contains(&series));
    assert_rebuilds(&c);
}

#[test]
fn newest_genre_and_year_indices() {
    let mut c = Catalog::new();
    c.upsert(movie(1, "Old", Some(1950), None, 100));
    c.upsert(movie(2, "Mid", Some(1990), None, 200));
    c.upsert(movie(3, "New", Some(1990), None, 300));
    c.upsert(episode(4, "Show", 1, &[1], None, 400));
    let id = |m| c.title_of(&fref(m)).unwrap().id.clone();
    let (old, mid, new) = (id(1), id(2), id(3));
    assert_eq!(ids(&c.newest(Kind::Movie, 0, 10)), [&new, &mid, &old]);
    assert_eq!(ids(&c.newest(Kind::Movie, 1, 1)), [&mid]);
    assert_eq!(c.newest(Kind::Series, 0, 10).len(), 1);
    // A new file makes its title the newest.
    c.upsert(movie(5, "Old", Some(1950), None, 500));
    assert_eq!(ids(&c.newest(Kind::Movie, 0, 1)), [&old]);

    c.attach_metadata(&mid, meta("Mid", None, None, &["Drama", "Crime"]))
        .unwrap();
    c.attach_metadata(&old, meta("Old", None, None, &["Drama"]))
        .unwrap();
    assert_eq!(c.genres(Kind::Movie), ["Crime", "Drama"]);
    assert!(c.genres(Kind::Series).is_empty());
    assert_eq!(ids(&c.by_genre(Kind::Movie, "Drama", 0, 10)), [&old, &mid]);
    assert!(c.by_genre(Kind::Movie, "Western", 0, 10).is_empty());
    let mut y1990 = ids(&c.by_year(1990));
    y1990.sort();
    let mut want = vec![&mid, &new];
    want.sort();
    assert_eq!(y1990, want);
    c.remove(&fref(2));
    assert_eq!(
        c.genres(Kind::Movie),
        ["Drama"],
        "a genre without titles is gone"
    );
    assert_eq!(ids(&c.by_year(1990)), [&new]);
    assert_rebuilds(&c);
}

#[test]
fn search_by_any_name_accent_insensitive_ranked_and_genre_filtered() {
    let mut c = Catalog::new();
    c.upsert(movie(1, "Amelie", Some(2001), None, 1));
    c.upsert(movie(2, "Amelia", Some(2009), None, 2));
    c.upsert(episode(3, "Amelie Show", 1, &[1], None, 3));
    let amelie = c.title_of(&fref(1)).unwrap().id.clone();
    let amelia = c.title_of(&fref(2)).unwrap().id.clone();
    assert_eq!(
        ids(&c.search(Kind::Movie, "AMÉLIE", None, 0, 10)),
        [&amelie]
    );
    assert_eq!(
        ids(&c.search(Kind::Movie, "ame", None, 0, 10)),
        [&amelia, &amelie]
    );
    assert_eq!(
        c.search(Kind::Series, "ame", None, 0, 10).len(),
        1,
        "per kind"
    );
    c.attach_metadata(
        &amelie,
        meta(
            "Le Fabuleux Destin d'Amélie Poulain",
            None,
            None,
            &["Comedy"],
        ),
    )
    .unwrap();
    assert_eq!(
        ids(&c.search(Kind::Movie, "fabuleux destin", None, 0, 10)),
        [&amelie]
    );
    assert_eq!(
        ids(&c.search(Kind::Movie, "amelie", None, 0, 10)),
        [&amelie],
        "parsed name still"
    );
    assert_eq!(
        ids(&c.search(Kind::Movie, "am", Some("Comedy"), 0, 10)),
        [&amelie]
    );
    assert!(c.search(Kind::Movie, "", None, 0, 10).is_empty());
}

#[test]
fn ids_are_stable_and_well_formed() {
    let key = GroupKey {
        kind: Kind::Movie,
        title: "heat".into(),
        year: Some(1995),
    };
    // Pinned: these ids are persisted and bookmarked, so the hash must never change.
    assert_eq!(key.tgcdn_id(), key.clone().tgcdn_id());
    assert!(is_tgcdn_id(&key.tgcdn_id()));
    let other = GroupKey {
        year: None,
        ..key.clone()
    };
    assert_ne!(key.tgcdn_id(), other.tgcdn_id());
    assert_eq!(
        hashed_id(&[""]),
        "tgcdn:cbf29ce484222325",
        "FNV-1a 64 offset basis"
    );
    assert_eq!(
        hashed_id(&["a"]),
        "tgcdn:af63dc4c8601ec8c",
        "FNV-1a 64 of \"a\""
    );
    assert!(is_imdb_id("tt0110413"));
    for bad in ["tt", "t0110413", "tt01104a3", "tt01104130000", "tgcdn:x"] {
        assert!(!is_imdb_id(bad), "{bad}");
    }
    assert!(!is_tgcdn_id("tgcdn:CBF29CE484222325"));
    assert!(!is_tgcdn_id("tgcdn:cbf29ce48422232"));
}

#[test]
fn titles_round_trip_through_serde_and_rebuild() {
    let mut c = Catalog::new();
    c.upsert(episode(1, "Dark", 1, &[1, 2], Some(Quality::P1080), 1));
    c.upsert(movie(2, "Heat", Some(1995), None, 2));
    let heat = c.title_of(&fref(2)).unwrap().id.clone();
    c.attach_metadata(
        &heat,
        meta("Heat", Some(949), Some("tt0113277"), &["Crime"]),
    )
    .unwrap();
    let stored: Vec<String> = c
        .titles()
        .map(|t| serde_json::to_string(t).expect("serialises"))
        .collect();
    let back = Catalog::from_titles(
        stored
            .iter()
            .map(|s| serde_json::from_str::<Title>(s).expect("deserialises")),
    );
    assert_eq!(back.snapshot(), c.snapshot());
    assert_eq!(
        back.get(&heat).unwrap().id,
        "tt0113277",
        "alias survives the store"
    );
}

/// One step of a random history over a small pool of files and names.
#[derive(Debug, Clone)]
enum Op {
    Upsert {
        msg: i32,
        name: usize,
        year: Option<u16>,
        ep: Option<(u16, u16)>,
        q: Option<Quality>,
        date: i64,
    },
    Remove(i32),
    Attach {
        msg: i32,
        tmdb: Option<u64>,
        imdb: Option<u8>,
        genre: usize,
    },
}

const NAMES: [&str; 4] = ["Heat", "HEAT", "Dark", "Amélie"];
const GENRES: [&str; 3] = ["Drama", "Crime", "Comedy"];

fn op() -> impl Strategy<Value = Op> {
    let quality = proptest::option::of(prop_oneof![Just(Quality::P720), Just(Quality::P1080)]);
    prop_oneof![
        4 => (0..8i32, 0..NAMES.len(), proptest::option::of(1995..1997u16),
              proptest::option::of((1..3u16, 1..3u16)), quality, 0..5i64)
            .prop_map(|(msg, name, year, ep, q, date)| Op::Upsert { msg, name, year, ep, q, date }),
        1 => (0..8i32).prop_map(Op::Remove),
        1 => (0..8i32, proptest::option::of(1..3u64), proptest::option::of(1..3u8), 0..GENRES.len())
            .prop_map(|(msg, tmdb, imdb, genre)| Op::Attach { msg, tmdb, imdb, genre }),
    ]
}

fn to_post(
    msg: i32,
    name: usize,
    year: Option<u16>,
    ep: Option<(u16, u16)>,
    q: Option<Quality>,
    date: i64,
) -> Post {
    match ep {
        None => movie(msg, NAMES[name], year, q, date),
        Some((s, e)) => {
            let mut p = episode(msg, NAMES[name], s, &[e], q, date);
            p.parsed.year = year;
            p
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Whatever the history, the indices equal a rebuild from the titles; without metadata
    /// they also equal a catalogue built from the surviving posts alone, in any order.
    #[test]
    fn incremental_upkeep_equals_a_rebuild(ops in proptest::collection::vec(op(), 1..40)) {
        let mut c = Catalog::new();
        let mut live: std::collections::BTreeMap<i32, Post> = Default::default();
        let mut attached = false;
        for op in ops {
            match op {
                Op::Upsert { msg, name, year, ep, q, date } => {
                    let p = to_post(msg, name, year, ep, q, date);
                    c.upsert(p.clone());
                    live.insert(msg, p);
                }
                Op::Remove(msg) => {
                    c.remove(&fref(msg));
                    live.remove(&msg);
                }
                Op::Attach { msg, tmdb, imdb, genre } => {
                    let Some(id) = c.title_of(&fref(msg)).map(|t| t.id.clone()) else { continue };
                    let imdb = imdb.map(|i| format!("tt{i:07}"));
                    c.attach_metadata(&id, meta("M", tmdb, imdb.as_deref(), &[GENRES[genre]])).unwrap();
                    attached = true;
                }
            }
            assert_rebuilds(&c);
        }
        let files: usize = c.titles().map(|t| t.all_files().len()).sum();
        prop_assert_eq!(files, live.len());
        if !attached {
            let mut fresh = Catalog::new();
            for p in live.values().rev() {
                fresh.upsert(p.clone());
            }
            prop_assert_eq!(fresh.snapshot(), c.snapshot());
        }
    }
}
