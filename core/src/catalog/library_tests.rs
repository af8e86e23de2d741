use serde_json::Value;
use tgcdn_shared::token::LinkKey;

use super::*;

const CHANNEL: i64 = -1_001_111_111_111;

fn keyring() -> Keyring {
    Keyring::new(LinkKey::new(1, [9u8; 32]).unwrap(), Vec::new()).unwrap()
}

fn open(store: &Store) -> Library {
    let posts = PostStore::open(store).unwrap();
    Library::open(store, posts, keyring(), AddonInfo::default()).unwrap()
}

fn post(msg_id: i32, name: &str, size: u64) -> ChannelPost {
    ChannelPost {
        file: FileRef {
            chat_id: CHANNEL,
            msg_id,
        },
        file_name: Some(name.to_owned()),
        caption: None,
        size,
        mime: "video/x-matroska".into(),
        date: 1_700_000_000 + msg_id as u64,
    }
}

fn ask(library: &Library, path: &str) -> Result<Value, AddonError> {
    let answer = library.handle(&AddonRequest {
        path: path.to_owned(),
        query: String::new(),
        base_url: "https://edge.test".into(),
    })?;
    Ok(serde_json::from_slice(&answer.json).unwrap())
}

fn catalog_ids(library: &Library, kind: &str) -> Vec<String> {
    let page = ask(
        library,
        &format!("/catalog/{kind}/{}.json", catalog_id_of(kind)),
    )
    .unwrap();
    page["metas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

fn catalog_id_of(kind: &str) -> &'static str {
    match kind {
        "movie" => tgcdn_catalog::addon::catalog_id(Kind::Movie),
        _ => tgcdn_catalog::addon::catalog_id(Kind::Series),
    }
}

#[test]
fn posts_become_titles_with_signed_stream_urls_on_the_asking_edge() {
    let store = Store::temporary().unwrap();
    let library = open(&store);
    library
        .upsert(post(
            10,
            "Blade.Runner.2049.2017.1080p.BluRay.x264-GRP.mkv",
            5 << 20,
        ))
        .unwrap();
    library
        .upsert(post(
            11,
            "Blade Runner 2049 (2017) 2160p WEB-DL HEVC.mkv",
            9 << 20,
        ))
        .unwrap();
    library
        .upsert(post(12, "Breaking.Bad.S01E02.720p.HDTV.x264.mkv", 3 << 20))
        .unwrap();
    assert_eq!(library.len(), 2);

    let movies = catalog_ids(&library, "movie");
    assert_eq!(movies.len(), 1);
    let streams = ask(&library, &format!("/stream/movie/{}.json", movies[0])).unwrap();
    let streams = streams["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 2, "{streams:?}");
    // Best quality first; every URL a signed link on the edge that asked.
    let token_2160 = keyring().sign(
        FileRef {
            chat_id: CHANNEL,
            msg_id: 11,
        },
        None,
    );
    assert!(
        streams[0]["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("https://edge.test/dl/{token_2160}/")),
        "{}",
        streams[0]["url"]
    );
    assert_eq!(streams[0]["behaviorHints"]["videoSize"], 9 << 20);

    let series = catalog_ids(&library, "series");
    assert_eq!(series.len(), 1);
    let meta = ask(&library, &format!("/meta/series/{}.json", series[0])).unwrap();
    assert_eq!(
        meta["meta"]["videos"][0]["id"],
        format!("{}:1:2", series[0])
    );
}

#[test]
fn the_catalogue_survives_a_reopen_and_deletions_reach_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    {
        let library = open(&store);
        library
            .upsert(post(1, "Dune.2021.1080p.mkv", 4 << 20))
            .unwrap();
        library
            .upsert(post(2, "Dune.2021.720p.mkv", 2 << 20))
            .unwrap();
        library
            .upsert(post(3, "Arrival.2016.1080p.mkv", 2 << 20))
            .unwrap();
    }
    let library = open(&store);
    assert_eq!(library.len(), 2);
    let before = catalog_ids(&library, "movie");

    // The same post again changes nothing; deleting one of two files keeps the title.
    library
        .upsert(post(1, "Dune.2021.1080p.mkv", 4 << 20))
        .unwrap();
    library
        .remove(FileRef {
            chat_id: CHANNEL,
            msg_id: 2,
        })
        .unwrap();
    assert_eq!(catalog_ids(&library, "movie"), before);
    // Deleting the last file removes the title, from memory and from sled.
    library
        .remove(FileRef {
            chat_id: CHANNEL,
            msg_id: 3,
        })
        .unwrap();
    assert_eq!(library.len(), 1);
    let reopened = open(&store);
    assert_eq!(reopened.len(), 1);
    assert_eq!(
        catalog_ids(&reopened, "movie"),
        catalog_ids(&library, "movie")
    );
}

#[test]
fn an_edited_caption_moves_the_file_and_keeps_nothing_stale() {
    let store = Store::temporary().unwrap();
    let library = open(&store);
    let mut first = post(5, "video.mp4", 1 << 20);
    first.file_name = None;
    first.caption = Some("Arrival (2016) 1080p".into());
    library.upsert(first.clone()).unwrap();
    let old = catalog_ids(&library, "movie");
    first.caption = Some("Interstellar (2014) 1080p".into());
    library.upsert(first).unwrap();
    let new = catalog_ids(&library, "movie");
    assert_eq!(new.len(), 1);
    assert_ne!(old, new);
    assert_eq!(library.pending_metadata()[0].name, "Interstellar");
}

#[test]
fn metadata_gives_the_imdb_id_and_the_old_id_still_resolves() {
    let store = Store::temporary().unwrap();
    let library = open(&store);
    library
        .upsert(post(7, "Arrival.2016.1080p.mkv", 1 << 20))
        .unwrap();
    let pending = library.pending_metadata();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].name.as_str(), pending[0].year),
        ("Arrival", Some(2016))
    );
    library
        .attach_metadata(
            &pending[0].id,
            Metadata {
                tmdb_id: Some(329865),
                imdb_id: Some("tt2543164".into()),
                name: "Arrival".into(),
                year: Some(2016),
                poster: Some("https://img.test/p.jpg".into()),
                ..Metadata::default()
            },
        )
        .unwrap();
    assert!(library.pending_metadata().is_empty());
    assert_eq!(catalog_ids(&library, "movie"), ["tt2543164"]);
    let meta = ask(&library, "/meta/movie/tt2543164.json").unwrap();
    assert_eq!(meta["meta"]["poster"], "https://img.test/p.jpg");
    assert!(ask(&library, &format!("/stream/movie/{}.json", pending[0].id)).is_ok());
    // And after a restart.
    let reopened = open(&store);
    assert_eq!(catalog_ids(&reopened, "movie"), ["tt2543164"]);
}

#[test]
fn a_video_hash_is_kept_across_a_re_index_of_the_same_file_only() {
    let store = Store::temporary().unwrap();
    let library = open(&store);
    let file = FileRef {
        chat_id: CHANNEL,
        msg_id: 9,
    };
    library
        .upsert(post(9, "Dune.2021.1080p.mkv", 4 << 20))
        .unwrap();
    assert_eq!(library.unhashed().len(), 1);
    library
        .set_video_hash(file, 4 << 20, 0x8e24_5d96_79d3_1e12)
        .unwrap();
    assert!(library.unhashed().is_empty());
    let id = catalog_ids(&library, "movie").remove(0);
    let streams = ask(&library, &format!("/stream/movie/{id}.json")).unwrap();
    assert_eq!(
        streams["streams"][0]["behaviorHints"]["videoHash"],
        "8e245d9679d31e12"
    );

    library
        .upsert(post(9, "Dune.2021.1080p.mkv", 4 << 20))
        .unwrap();
    assert!(
        library.unhashed().is_empty(),
        "the same file keeps its hash"
    );
    library
        .upsert(post(9, "Dune.2021.1080p.mkv", 5 << 20))
        .unwrap();
    assert_eq!(library.unhashed().len(), 1, "other bytes need another hash");
    // A hash computed for the old size is not attached to the new file.
    library.set_video_hash(file, 4 << 20, 1).unwrap();
    assert_eq!(library.unhashed().len(), 1);
}

#[test]
fn bad_addon_requests_are_typed_errors() {
    let store = Store::temporary().unwrap();
    let library = open(&store);
    assert_eq!(
        ask(&library, "/meta/movie/tt0000001.json"),
        Err(AddonError::NotFound)
    );
    assert!(matches!(
        ask(&library, "/nonsense"),
        Err(AddonError::NotFound | AddonError::BadRequest(_))
    ));
    let manifest = ask(&library, "/manifest.json").unwrap();
    assert_eq!(manifest["id"], "org.tgcdn.addon");
}
