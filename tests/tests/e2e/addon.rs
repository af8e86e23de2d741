//! The Stremio addon end to end: posts in a catalogue channel (here the storage channel)
//! reach the real core as channel updates, become titles, and are served by the real edge
//! over QUIC to Stremio's own client library (`stremio-addon-client`, driven by
//! `tests/addon/drive.js`), whose report this module judges: the manifest lints, catalogue
//! paging and search return the right items, series episodes are in order, and every stream
//! URL downloads byte-exact from the edge that answered. Then a deleted post disappears, an
//! edited caption moves its file, and a restarted core keeps the catalogue.
//!
//! Its own stack: it needs the catalogue on and the edge's addon cache off (so a change is
//! visible at once instead of after the answers' max-age), and restarts the core.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tgcdn_catalog::hash::{format_hash, opensubtitles_hash};
use tgcdn_tests::{PostedFile, Stack, StackOptions, client, sha256_hex};
use tgemu::Content;

use crate::common::{check, have_tool, run};

const KIB: u64 = 1 << 10;

/// A file to post: the name (or, for a generic name, the caption) says what it is.
struct Post {
    name: &'static str,
    caption: &'static str,
    size: u64,
}

const POSTS: &[Post] = &[
    post("Blade.Runner.2049.2017.1080p.BluRay.x264-SPARKS.mkv", 900),
    post("Blade Runner 2049 (2017) 2160p WEB-DL HEVC HDR.mkv", 1500),
    post("Arrival.2016.720p.WEBRip.x264-GRP.mp4", 300),
    post(
        "[www.example.org] - Arrival (2016) 1080p BluRay x264.mkv",
        700,
    ),
    post("2001.A.Space.Odyssey.1968.1080p.BluRay.x264.mkv", 1100),
    Post {
        name: "video.mp4",
        caption: "🎬 Dune (2021)\n1080p WEB-DL x264\n#movies",
        size: 400 * KIB,
    },
    post("Breaking.Bad.S01E01.720p.HDTV.x264.mkv", 200),
    post("Breaking.Bad.S01E01.1080p.WEB-DL.x264.mkv", 350),
    post("Breaking Bad S01E02 1080p WEB-DL.mkv", 250),
    post("breaking.bad.s02e01.1080p.bluray.mkv", 260),
    post("Breaking Bad 2x02 720p.mkv", 2300),
];

const fn post(name: &'static str, kib: u64) -> Post {
    Post {
        name,
        caption: "",
        size: kib * KIB,
    }
}

/// Posts every file as the channel's owner; returns them in `POSTS` order.
fn post_all(stack: &Stack) -> Vec<PostedFile> {
    let channel = stack.channel();
    // A text post is not a file: the catalogue must ignore it.
    stack
        .world()
        .post_text(channel.channel_id, "Welcome to the channel!");
    POSTS
        .iter()
        .map(|post| {
            if post.caption.is_empty() {
                return stack.post_file(
                    Content::pseudo(post.size),
                    post.name,
                    "video/x-matroska",
                    4,
                );
            }
            let doc =
                stack
                    .world()
                    .add_document(Content::pseudo(post.size), post.name, "video/mp4", 2);
            let msg_id = stack
                .world()
                .post_document(channel.channel_id, doc.id, post.caption);
            let file = tgcdn_shared::FileRef {
                chat_id: channel.bot_api_id(),
                msg_id,
            };
            PostedFile {
                doc,
                file,
                name: post.name.to_owned(),
                url: stack.link_for(file, post.name, None),
            }
        })
        .collect()
}

fn get_json(url: &str) -> Option<Value> {
    let response = client::get(url, &[]).ok()?;
    (response.status() == 200).then(|| serde_json::from_slice(&response.body).ok())?
}

/// Every title name of `kind`'s catalogue as the edge serves it now.
fn names(stack: &Stack, kind: &str) -> Vec<String> {
    let manifest = get_json(&format!("{}/manifest.json", stack.edge_url())).unwrap_or_default();
    let Some(catalog) = manifest["catalogs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == kind)
    else {
        return Vec::new();
    };
    let url = format!(
        "{}/catalog/{kind}/{}.json",
        stack.edge_url(),
        catalog["id"].as_str().unwrap_or_default()
    );
    let mut names: Vec<String> = get_json(&url)
        .map(|page| {
            page["metas"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Polls until `kind`'s catalogue lists exactly `expected` (sorted), within 60 s.
fn wait_for_names(stack: &Stack, kind: &str, expected: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = names(stack, kind);
        if found == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the {kind} catalogue lists {found:?}, expected {expected:?}\n{}",
            stack.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Installs the client library once (`npm ci` from the committed lock) and runs the driver.
fn drive(manifest_url: &str, searches: &[&str]) -> Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("addon");
    if !dir.join("node_modules/stremio-addon-client").exists() {
        let output = run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir),
            Duration::from_secs(300),
        );
        check(&output, "npm ci in tests/addon");
    }
    let output = run(
        Command::new("node")
            .arg("drive.js")
            .arg(manifest_url)
            .args(searches)
            .current_dir(&dir),
        Duration::from_secs(120),
    );
    check(&output, "node drive.js");
    serde_json::from_slice(&output.stdout).expect("the driver prints one JSON report")
}

fn downloaded(url: &str) -> Vec<u8> {
    let response = client::get(url, &[]).unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(response.status(), 200, "GET {url}");
    response.body
}

fn expected_bytes(stack: &Stack, posted: &PostedFile) -> Vec<u8> {
    stack
        .emulator()
        .content_slice(posted.doc.id, 0, posted.doc.size as usize)
}

#[test]
fn stremio_client_browses_searches_and_plays_the_catalogue_from_the_edge() {
    if !have_tool("node") || !have_tool("npm") {
        return;
    }
    let stack = Stack::start(StackOptions {
        catalog_storage_channel: true,
        edge_env: vec![("TGCDN_ADDON_CACHE_SIZE".into(), "0".into())],
        ..StackOptions::default()
    })
    .unwrap();
    let _logs = stack.logs_on_panic();
    let posted = post_all(&stack);
    let movies = [
        "2001 A Space Odyssey",
        "Arrival",
        "Blade Runner 2049",
        "Dune",
    ];
    wait_for_names(&stack, "movie", &movies);
    wait_for_names(&stack, "series", &["Breaking Bad"]);

    let report = drive(
        &format!("{}/manifest.json", stack.edge_url()),
        &["blade run", "ODYSSEY", "breaking"],
    );
    assert_eq!(report["lint"]["valid"], true, "{}", report["lint"]);
    assert_eq!(report["supported"]["episodeStream"], true);
    assert_eq!(report["supported"]["tgcdnMeta"], true);
    assert_eq!(report["supported"]["foreignMeta"], false);

    // Searches, case-insensitive and by prefix, answered per catalogue.
    let searches = &report["searches"];
    let hits = |suffix: &str| -> Vec<Value> {
        searches
            .as_object()
            .unwrap()
            .iter()
            .filter(|(key, _)| key.ends_with(suffix))
            .flat_map(|(_, names)| names.as_array().unwrap().clone())
            .collect()
    };
    assert_eq!(hits("?blade run"), ["Blade Runner 2049"]);
    assert_eq!(hits("?ODYSSEY"), ["2001 A Space Odyssey"]);
    assert_eq!(hits("?breaking"), ["Breaking Bad"]);

    // The series: episodes in order, with two files for S01E01, the better one first.
    let metas = report["metas"].as_object().unwrap();
    let series = metas
        .values()
        .find(|m| m["name"] == "Breaking Bad")
        .expect("the series' meta");
    let id = series["id"].as_str().unwrap();
    let videos: Vec<&str> = series["videos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        videos,
        ["1:1", "1:2", "2:1", "2:2"].map(|episode| format!("{id}:{episode}")),
        "episode ids in (season, episode) order"
    );
    let first_episode = report["streams"][format!("{id}:1:1")].as_array().unwrap();
    assert_eq!(first_episode.len(), 2);
    assert!(first_episode[0]["name"].as_str().unwrap().contains("1080p"));
    assert!(first_episode[1]["name"].as_str().unwrap().contains("720p"));

    // The film in two qualities: 2160p first.
    let blade = metas
        .values()
        .find(|m| m["name"] == "Blade Runner 2049")
        .unwrap();
    let streams = report["streams"][blade["id"].as_str().unwrap()]
        .as_array()
        .unwrap();
    assert_eq!(streams.len(), 2);
    assert!(streams[0]["name"].as_str().unwrap().contains("2160p"));

    // Every stream of every item: on this edge, a signed link, byte-exact.
    let mut seen = 0;
    for streams in report["streams"].as_object().unwrap().values() {
        for stream in streams.as_array().unwrap() {
            let url = stream["url"].as_str().unwrap();
            assert!(
                url.starts_with(&format!("{}/dl/", stack.edge_url())),
                "{url}"
            );
            let size = stream["behaviorHints"]["videoSize"].as_u64().unwrap();
            let file = posted
                .iter()
                .find(|p| p.doc.size == size && url.contains(&token_of(&p.url)))
                .unwrap_or_else(|| panic!("{url} is none of the posted files"));
            assert_eq!(
                sha256_hex(&downloaded(url)),
                sha256_hex(&expected_bytes(&stack, file)),
                "{url}"
            );
            seen += 1;
        }
    }
    // Breaking Bad S01E01 is listed once per file; every post is a stream somewhere.
    assert_eq!(seen, POSTS.len());

    video_hashes_arrive(&stack, &posted);
    deleted_posts_disappear(&stack, &posted);
    edited_captions_move_the_file(&stack, &posted);

    stack.restart_core().unwrap();
    wait_for_names(
        &stack,
        "movie",
        &["2001 A Space Odyssey", "Blade Runner 2049", "Dune Part Two"],
    );
    wait_for_names(&stack, "series", &["Breaking Bad"]);
}

/// `/dl/{token}/{name}` → token.
fn token_of(url: &str) -> String {
    url.split("/dl/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

/// The core computes each file's OpenSubtitles hash in the background from its first and
/// last chunk: the streams carry it once done, equal to the hash of the emulator's bytes.
fn video_hashes_arrive(stack: &Stack, posted: &[PostedFile]) {
    let film = &posted[1];
    let bytes = expected_bytes(stack, film);
    let block = 64 * 1024;
    let want = format_hash(
        opensubtitles_hash(
            bytes.len() as u64,
            &bytes[..block],
            &bytes[bytes.len() - block..],
        )
        .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let hashes = stream_field(stack, "movie", "Blade Runner 2049", "videoHash");
        if hashes.contains(&want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "video hashes {hashes:?}, want {want}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `behaviorHints.{field}` of every stream of the title named `name`.
fn stream_field(stack: &Stack, kind: &str, name: &str, field: &str) -> Vec<String> {
    let base = stack.edge_url();
    let manifest = get_json(&format!("{base}/manifest.json")).unwrap();
    let catalog = manifest["catalogs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == kind)
        .unwrap();
    let page = get_json(&format!(
        "{base}/catalog/{kind}/{}.json",
        catalog["id"].as_str().unwrap()
    ))
    .unwrap();
    let Some(meta) = page["metas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
    else {
        return Vec::new();
    };
    let streams = get_json(&format!(
        "{base}/stream/{kind}/{}.json",
        meta["id"].as_str().unwrap()
    ))
    .unwrap_or_default();
    streams["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["behaviorHints"][field].as_str().map(str::to_owned))
        .collect()
}

/// Deleting one of Arrival's two posts leaves one stream; deleting both removes the title.
fn deleted_posts_disappear(stack: &Stack, posted: &[PostedFile]) {
    let channel = stack.channel().channel_id;
    stack
        .world()
        .delete_posts(channel, &[posted[2].file.msg_id]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while stream_field(stack, "movie", "Arrival", "filename").len() != 1 {
        assert!(
            Instant::now() < deadline,
            "the deleted post is still a stream"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stack
        .world()
        .delete_posts(channel, &[posted[3].file.msg_id]);
    wait_for_names(
        stack,
        "movie",
        &["2001 A Space Odyssey", "Blade Runner 2049", "Dune"],
    );
}

/// The caption of the post with a generic file name says what it is: editing it moves the
/// file to the title the new caption names.
fn edited_captions_move_the_file(stack: &Stack, posted: &[PostedFile]) {
    let channel = stack.channel().channel_id;
    assert!(stack.world().edit_post(
        channel,
        posted[5].file.msg_id,
        "Dune Part Two (2024) 2160p WEB-DL"
    ));
    wait_for_names(
        stack,
        "movie",
        &["2001 A Space Odyssey", "Blade Runner 2049", "Dune Part Two"],
    );
}
