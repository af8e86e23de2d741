//! Addon answers for a small catalogue, compared as whole JSON values.

use serde_json::{Value, json};
use tgcdn_shared::FileRef;

use super::json::{human_size, iso_from_date, iso_from_unix};
use super::*;
use crate::model::{Catalog, EpisodeMeta, Kind, Metadata, Post};
use crate::name::{Audio, Codec, Container, Hdr, ParsedName, Quality, Source};

const CHAT: i64 = -100_777;

fn post(msg: i32, file_name: &str, parsed: ParsedName, size: u64, date: i64) -> Post {
    Post {
        file: FileRef {
            chat_id: CHAT,
            msg_id: msg,
        },
        size,
        file_name: file_name.into(),
        mime: None,
        caption: None,
        date,
        parsed,
        video_hash: None,
    }
}

fn heat_1080() -> Post {
    let parsed = ParsedName {
        title: "Heat".into(),
        year: Some(1995),
        quality: Some(Quality::P1080),
        source: Some(Source::BluRay),
        codec: Some(Codec::H265),
        hdr: vec![Hdr::Hdr10],
        audio: vec![Audio::Eac3, Audio::Atmos],
        channels: Some("5.1".into()),
        languages: vec!["en".into(), "it".into()],
        group: Some("FLUX".into()),
        container: Some(Container::Mkv),
        ..Default::default()
    };
    let mut p = post(
        1,
        "Heat.1995.1080p.BluRay.x265.HDR10.DDP5.1.Atmos-FLUX.mkv",
        parsed,
        8_589_934_592,
        1_000,
    );
    p.video_hash = Some(0x00ab_cdef_0123_4567);
    p
}

fn heat_720() -> Post {
    let parsed = ParsedName {
        title: "Heat".into(),
        year: Some(1995),
        quality: Some(Quality::P720),
        codec: Some(Codec::H264),
        audio: vec![Audio::Aac],
        container: Some(Container::Mp4),
        ..Default::default()
    };
    post(2, "Heat 1995 720p.mp4", parsed, 1_500_000_000, 900)
}

fn dark(msg: i32, s: u16, e: u16, q: Quality, date: i64) -> Post {
    let parsed = ParsedName {
        title: "Dark".into(),
        seasons: vec![s],
        episodes: vec![e],
        quality: Some(q),
        group: Some("NTb".into()),
        ..Default::default()
    };
    post(
        msg,
        &format!("Dark.S{s:02}E{e:02}.{}.mkv", q.as_str()),
        parsed,
        700 * 1024 * 1024,
        date,
    )
}

/// Heat (with metadata and an IMDb id), Dark (two seasons, no metadata).
fn small_catalog() -> Catalog {
    let mut c = Catalog::new();
    c.upsert(heat_720());
    c.upsert(heat_1080());
    c.upsert(dark(10, 2, 1, Quality::P1080, 3_000));
    c.upsert(dark(11, 1, 2, Quality::P720, 2_000));
    c.upsert(dark(12, 1, 1, Quality::P720, 86_400 * 365));
    let heat = c
        .title_of(&heat_720().file)
        .map(|t| t.id.clone())
        .unwrap_or_default();
    let meta = Metadata {
        tmdb_id: Some(949),
        imdb_id: Some("tt0113277".into()),
        name: "Heat".into(),
        year: Some(1995),
        poster: Some("https://img.example/heat.jpg".into()),
        overview: Some("A heist.".into()),
        genres: vec!["Crime".into(), "Drama".into()],
        rating: Some(7.94),
        runtime_minutes: Some(170),
        released: Some("1995-12-15".into()),
        ..Default::default()
    };
    c.attach_metadata(&heat, meta).expect("heat is catalogued");
    c
}

fn dark_id(c: &Catalog) -> String {
    c.title_of(&FileRef {
        chat_id: CHAT,
        msg_id: 10,
    })
    .map(|t| t.id.clone())
    .unwrap_or_default()
}

fn minter(file: &FileRef, name: &str) -> String {
    format!("/dl/{}/{}/{name}", file.chat_id, file.msg_id)
}

fn get(c: &Catalog, path: &str) -> Result<(Value, CacheHints), AddonError> {
    let route = AddonRoute::parse(path, "")?;
    let links = Links {
        base_url: "https://edge.example/",
        minter: &minter,
    };
    let answer = answer(&route, c, &AddonInfo::default(), links)?;
    Ok((
        serde_json::from_slice(&answer.body).expect("answers are JSON"),
        answer.cache,
    ))
}

fn body(c: &Catalog, path: &str) -> Value {
    get(c, path).expect("answered").0
}

#[test]
fn manifest_exact() {
    let c = small_catalog();
    let (m, cache) = get(&c, "/manifest.json").unwrap();
    assert_eq!(cache, CacheHints::MANIFEST);
    let extra =
        json!([{"name": "search", "isRequired": false}, {"name": "skip", "isRequired": false}]);
    assert_eq!(
        m,
        json!({
            "id": "org.tgcdn.addon",
            "version": env!("CARGO_PKG_VERSION"),
            "name": "tgcdn",
            "description": "Films and series from a Telegram channel, streamed through tgcdn",
            "resources": [
                {"name": "catalog", "types": ["movie", "series"]},
                {"name": "meta", "types": ["movie", "series"], "idPrefixes": ["tt", "tgcdn"]},
                {"name": "stream", "types": ["movie", "series"], "idPrefixes": ["tt", "tgcdn"]},
            ],
            "types": ["movie", "series"],
            "catalogs": [
                {
                    "type": "movie", "id": "tgcdn-movie", "name": "Films",
                    "extra": [
                        {"name": "search", "isRequired": false},
                        {"name": "skip", "isRequired": false},
                        {"name": "genre", "isRequired": false, "options": ["Crime", "Drama"], "optionsLimit": 1},
                    ],
                    "extraSupported": ["search", "skip", "genre"],
                },
                {
                    "type": "series", "id": "tgcdn-series", "name": "Series",
                    "extra": extra, "extraSupported": ["search", "skip"],
                },
            ],
            "idPrefixes": ["tt", "tgcdn"],
            "behaviorHints": {"configurable": false, "configurationRequired": false},
        })
    );
}

#[test]
fn catalog_exact_with_cache_fields() {
    let c = small_catalog();
    let dark = dark_id(&c);
    let (v, cache) = get(&c, "/catalog/movie/tgcdn-movie.json").unwrap();
    assert_eq!(cache, CacheHints::CATALOG);
    assert_eq!(
        v,
        json!({
            "metas": [{
                "id": "tt0113277", "type": "movie", "name": "Heat",
                "poster": "https://img.example/heat.jpg", "posterShape": "poster",
                "genres": ["Crime", "Drama"], "releaseInfo": "1995",
                "description": "A heist.", "imdbRating": "7.9",
            }],
            "cacheMaxAge": 300, "staleRevalidate": 3600, "staleError": 86400,
        })
    );
    assert_eq!(
        body(&c, "/catalog/series/tgcdn-series.json")["metas"],
        json!([{"id": dark, "type": "series", "name": "Dark", "posterShape": "poster"}])
    );
    assert_eq!(
        body(&c, "/catalog/series/tgcdn-series/search=DÁRK.json")["metas"][0]["id"],
        json!(dark)
    );
    assert_eq!(
        body(&c, "/catalog/movie/tgcdn-movie/genre=Drama.json")["metas"][0]["id"],
        "tt0113277"
    );
    assert_eq!(
        body(&c, "/catalog/movie/tgcdn-movie/genre=Western.json")["metas"],
        json!([])
    );
    assert_eq!(
        body(&c, "/catalog/movie/tgcdn-movie/search=he&genre=Crime.json")["metas"][0]["name"],
        "Heat"
    );
    assert_eq!(
        body(&c, "/catalog/movie/tgcdn-movie/search=dark.json")["metas"],
        json!([])
    );
    assert_eq!(
        body(&c, "/catalog/movie/tgcdn-movie/skip=100.json")["metas"],
        json!([])
    );
}

#[test]
fn catalog_pages_of_100_newest_first() {
    let mut c = Catalog::new();
    for i in 0..250 {
        let parsed = ParsedName {
            title: format!("Film {i}"),
            ..Default::default()
        };
        c.upsert(post(i, &format!("Film.{i}.mkv"), parsed, 1, i64::from(i)));
    }
    let names = |path: &str| -> Vec<String> {
        let v = body(&c, path);
        v["metas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = names("/catalog/movie/tgcdn-movie.json");
    assert_eq!(first.len(), 100);
    assert_eq!(
        (first[0].as_str(), first[99].as_str()),
        ("Film 249", "Film 150")
    );
    let third = names("/catalog/movie/tgcdn-movie/skip=200.json");
    assert_eq!((third.len(), third[49].as_str()), (50, "Film 0"));
    let searched = names("/catalog/movie/tgcdn-movie/search=film&skip=200.json");
    assert_eq!(
        searched, third,
        "search pages too, newest first among equals"
    );
}

#[test]
fn meta_exact_for_a_movie_and_a_series_with_episodes_in_order() {
    let mut c = small_catalog();
    let (v, cache) = get(&c, "/meta/movie/tt0113277.json").unwrap();
    assert_eq!(cache, CacheHints::META);
    assert_eq!(
        v["meta"],
        json!({
            "id": "tt0113277", "type": "movie", "name": "Heat",
            "poster": "https://img.example/heat.jpg", "posterShape": "poster",
            "genres": ["Crime", "Drama"], "releaseInfo": "1995", "description": "A heist.",
            "imdbRating": "7.9", "runtime": "170 min", "released": "1995-12-15T00:00:00.000Z",
        })
    );
    let dark = dark_id(&c);
    let episodes = vec![EpisodeMeta {
        season: 1,
        episode: 2,
        title: Some("Lies".into()),
        overview: Some("Jonas lies.".into()),
        released: Some("2017-12-01".into()),
        thumbnail: Some("https://img.example/s1e2.jpg".into()),
    }];
    c.attach_metadata(
        &dark,
        Metadata {
            name: "Dark".into(),
            episodes,
            ..Default::default()
        },
    )
    .unwrap();
    let v = body(&c, &format!("/meta/series/{dark}.json"));
    assert_eq!(
        v["meta"]["videos"],
        json!([
            {"id": format!("{dark}:1:1"), "title": "Episode 1", "released": "1971-01-01T00:00:00.000Z",
             "season": 1, "episode": 1},
            {"id": format!("{dark}:1:2"), "title": "Lies", "released": "2017-12-01T00:00:00.000Z",
             "season": 1, "episode": 2, "thumbnail": "https://img.example/s1e2.jpg", "overview": "Jonas lies."},
            {"id": format!("{dark}:2:1"), "title": "Episode 1", "released": "1970-01-01T00:50:00.000Z",
             "season": 2, "episode": 1},
        ])
    );
    assert!(
        matches!(
            get(&c, "/meta/series/tt0113277.json"),
            Err(AddonError::NotFound(_))
        ),
        "kind must match"
    );
    assert!(matches!(
        get(&c, "/meta/movie/tt0000001.json"),
        Err(AddonError::NotFound(_))
    ));
}

#[test]
fn streams_exact_best_first_with_hints() {
    let c = small_catalog();
    let (v, cache) = get(&c, "/stream/movie/tt0113277.json").unwrap();
    assert_eq!(cache, CacheHints::STREAM);
    assert_eq!(
        v,
        json!({
            "streams": [
                {
                    "url": "https://edge.example/dl/-100777/1/Heat.1995.1080p.BluRay.x265.HDR10.DDP5.1.Atmos-FLUX.mkv",
                    "name": "tgcdn 1080p",
                    "description": "Heat.1995.1080p.BluRay.x265.HDR10.DDP5.1.Atmos-FLUX.mkv\n8.0 GiB · BluRay · HEVC · HDR10 · DDP Atmos 5.1 · en/it",
                    "behaviorHints": {
                        "bingeGroup": "tgcdn-1080p-flux", "videoSize": 8_589_934_592u64,
                        "filename": "Heat.1995.1080p.BluRay.x265.HDR10.DDP5.1.Atmos-FLUX.mkv",
                        "videoHash": "00abcdef01234567", "notWebReady": true,
                    },
                },
                {
                    "url": "https://edge.example/dl/-100777/2/Heat 1995 720p.mp4",
                    "name": "tgcdn 720p",
                    "description": "Heat 1995 720p.mp4\n1.4 GiB · H.264 · AAC",
                    "behaviorHints": {
                        "bingeGroup": "tgcdn-720p-none", "videoSize": 1_500_000_000u64,
                        "filename": "Heat 1995 720p.mp4",
                    },
                },
            ],
            "cacheMaxAge": 60, "staleRevalidate": 240, "staleError": 0,
        })
    );
}

#[test]
fn series_episode_ids_resolve_and_unknown_ids_are_empty() {
    let c = small_catalog();
    let dark = dark_id(&c);
    let v = body(&c, &format!("/stream/series/{dark}:1:2.json"));
    let streams = v["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0]["name"], "tgcdn 720p");
    assert_eq!(streams[0]["behaviorHints"]["bingeGroup"], "tgcdn-720p-ntb");
    let encoded = format!("/stream/series/{}%3A2%3A1.json", dark.replace(':', "%3A"));
    assert_eq!(body(&c, &encoded)["streams"][0]["name"], "tgcdn 1080p");
    for path in [
        format!("/stream/series/{dark}:3:1.json"),
        "/stream/series/tt0903747:1:2.json".into(),
        "/stream/movie/tt0000001.json".into(),
        "/stream/series/tt0113277:1:1.json".into(),
    ] {
        assert_eq!(body(&c, &path)["streams"], json!([]), "{path}");
    }
}

#[test]
fn errors_map_to_statuses() {
    let c = small_catalog();
    assert_eq!(get(&c, "/nope.json").unwrap_err().status(), 404);
    assert_eq!(
        get(&c, "/catalog/movie/tgcdn-movie/skip=1.json")
            .unwrap_err()
            .status(),
        400
    );
}

#[test]
fn cache_control_headers() {
    assert_eq!(
        CacheHints::CATALOG.cache_control(),
        "public, max-age=300, stale-while-revalidate=3600, stale-if-error=86400"
    );
    assert_eq!(
        CacheHints::STREAM.cache_control(),
        "public, max-age=60, stale-while-revalidate=240"
    );
}

#[test]
fn web_readiness() {
    let mut p = heat_720();
    assert!(!not_web_ready(&p), "mp4 H.264 AAC");
    p.parsed.codec = None;
    assert!(!not_web_ready(&p), "unknown codec in mp4 is taken as H.264");
    p.parsed.codec = Some(Codec::H265);
    assert!(not_web_ready(&p), "HEVC");
    p.parsed.codec = Some(Codec::Vp9);
    p.parsed.container = Some(Container::Webm);
    assert!(!not_web_ready(&p), "webm VP9");
    p.parsed.audio = vec![Audio::Ac3];
    assert!(not_web_ready(&p), "AC-3 audio");
    let mut p = heat_720();
    p.parsed.hdr = vec![Hdr::DolbyVision];
    assert!(not_web_ready(&p), "Dolby Vision");
    let mut p = heat_720();
    p.parsed.container = None;
    assert!(not_web_ready(&p), "no container, no MIME");
    p.mime = Some("video/mp4".into());
    assert!(!not_web_ready(&p), "MIME says mp4");
    p.parsed.container = Some(Container::Avi);
    assert!(not_web_ready(&p), "the name's container wins");
}

#[test]
fn display_helpers() {
    assert_eq!(human_size(0), "0 B");
    assert_eq!(human_size(1023), "1023 B");
    assert_eq!(human_size(1024), "1.0 KiB");
    assert_eq!(human_size(1_500_000_000), "1.4 GiB");
    assert_eq!(human_size(u64::MAX), "16384.0 PiB");
    assert_eq!(
        iso_from_date("2008-01-20").as_deref(),
        Some("2008-01-20T00:00:00.000Z")
    );
    for bad in ["2008-1-20", "2008/01/20", "", "20080120xx", "2008-01-2x"] {
        assert_eq!(iso_from_date(bad), None, "{bad}");
    }
    assert_eq!(iso_from_unix(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(iso_from_unix(951_782_400), "2000-02-29T00:00:00.000Z");
    assert_eq!(iso_from_unix(1_796_196_300), "2026-12-02T07:25:00.000Z");
    assert_eq!(iso_from_unix(-1), "1969-12-31T23:59:59.000Z");
}

#[test]
fn links_join_base_and_path() {
    let relative = |_: &FileRef, n: &str| format!("dl/{n}");
    let f = FileRef {
        chat_id: 1,
        msg_id: 2,
    };
    assert_eq!(
        Links {
            base_url: "https://e",
            minter: &minter
        }
        .url(&f, "a"),
        "https://e/dl/1/2/a"
    );
    assert_eq!(
        Links {
            base_url: "https://e/",
            minter: &relative
        }
        .url(&f, "a"),
        "https://e/dl/a"
    );
}

#[test]
fn dark_ids_are_tgcdn_ids() {
    let c = small_catalog();
    assert!(crate::model::is_tgcdn_id(&dark_id(&c)));
    assert_eq!(c.get("tt0113277").map(|t| t.kind), Some(Kind::Movie));
}

mod never_panics {
    use proptest::prelude::*;

    use super::*;

    /// Paths built from the pieces a route is made of, so many of them parse.
    fn path() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("catalog".to_owned()),
            Just("meta".to_owned()),
            Just("stream".to_owned()),
            Just("movie".to_owned()),
            Just("series".to_owned()),
            Just("tgcdn-movie".to_owned()),
            Just("tt0113277".to_owned()),
            Just("tt0113277:1:2".to_owned()),
            Just("search=h%C3&skip=100".to_owned()),
            Just("genre=Crime".to_owned()),
            "[a-z0-9%:=&+.-]{0,12}",
            "\\PC{0,8}",
        ];
        proptest::collection::vec(piece, 0..6).prop_map(|p| format!("/{}.json", p.join("/")))
    }

    proptest! {
        /// Any path gets a route or a typed error, and any route an answer or a typed error.
        #[test]
        fn parse_and_answer_any_path(path in prop_oneof![path(), "\\PC{0,64}"]) {
            let c = small_catalog();
            match get(&c, &path) {
                Ok((body, _)) => prop_assert!(body.is_object()),
                Err(e) => prop_assert!(matches!(e.status(), 400 | 404), "{path:?}: {e}"),
            }
        }
    }
}
