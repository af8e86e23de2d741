//! Demo content: documents posted to the storage channel (a 64 MiB pseudo-random
//! `film.mkv`, a small text file, and any `--file` served from disk), links to each post,
//! and one upload through the real front-end — the demo user sends the film to the main bot
//! and the bot's reply (with its download and watch links) is read back from the emulator.
//!
//! Called by [`crate::Sandbox::start`] in three steps: [`post_demo_files`] before the core
//! starts, [`forget_stale_meta`] on the core's database before the core opens it, and
//! [`upload_through_bot`] once the core runs. Knows each file's size and SHA-256, so
//! `curl | sha256sum` and the smoke check have something to compare with.
//! Never decides what a link looks like itself: links come from the bot, or from the
//! front-end's own `links` functions and keyring for posts made straight to the channel.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tgcdn_core::frontend::links::{download_link, watch_link};
use tgcdn_core::store::Store;
use tgcdn_shared::FileRef;
use tgcdn_shared::token::Keyring;
use tgcdn_shared::token::LinkClaims;
use tgemu::Content;

use crate::error::SandboxError;
use crate::world::DemoWorld;

/// Size of the demo film: big enough (64 chunks) for read-ahead and seeking to show.
pub const FILM_SIZE: u64 = 64 << 20;
const FILM_NAME: &str = "film.mkv";
const TEXT_NAME: &str = "hello.txt";
/// The DC documents live on: not the bots' home DC, so every download goes through the
/// media-DC export/import path as it does on Telegram.
const MEDIA_DC: i32 = 4;
/// How long the bot may take to answer the demo upload.
const REPLY_WAIT: Duration = Duration::from_secs(30);
const HASH_STEP: usize = 1 << 20;

const TEXT: &str = "Hello from the tgcdn sandbox!\n\n\
This file was posted to an emulated Telegram channel, fetched by the core over MTProto,\n\
carried to the edge over QUIC and served to you over HTTP with Range support.\n";

/// A download link and the browser player page of the same file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    pub download: String,
    pub watch: String,
}

/// One seeded document.
#[derive(Debug, Clone)]
pub struct DemoFile {
    pub name: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the whole content.
    pub sha256: String,
    pub doc_id: i64,
    /// The channel post.
    pub file: FileRef,
    /// Where it was served from: `None` for generated content.
    pub source: Option<PathBuf>,
    /// Links to the channel post.
    pub links: Links,
}

/// Everything seeded.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub files: Vec<DemoFile>,
    /// Index in `files` of the document the demo user sent to the bot.
    pub uploaded: usize,
    /// The bot's reply, verbatim.
    pub bot_reply: String,
    /// The links in that reply (to the bot's copy in the storage channel).
    pub bot_links: Links,
}

impl Seeded {
    /// The file the bot made links for.
    pub fn uploaded_file(&self) -> &DemoFile {
        &self.files[self.uploaded]
    }
}

/// What the seeding needs from the sandbox.
pub struct SeedContext<'a> {
    pub world: &'a DemoWorld,
    pub keyring: &'a Keyring,
    pub public_base: &'a str,
    /// Where generated files (the text file) are written.
    pub scratch: &'a Path,
}

/// Posts the demo documents (the film first) to the storage channel.
pub fn post_demo_files(
    context: &SeedContext<'_>,
    extra: &[PathBuf],
) -> Result<Vec<DemoFile>, SandboxError> {
    let text_path = context.scratch.join(TEXT_NAME);
    std::fs::write(&text_path, TEXT).map_err(|source| SandboxError::DemoFile {
        path: text_path.clone(),
        source,
    })?;
    let mut sources = vec![
        (FILM_NAME.to_owned(), Content::pseudo(FILM_SIZE), None),
        (TEXT_NAME.to_owned(), Content::file(&text_path), None),
    ];
    for path in extra {
        let name = display_name(path);
        sources.push((name, Content::file(path), Some(path.clone())));
    }
    sources
        .into_iter()
        .map(|(name, content, source)| post(context, name, content, source))
        .collect()
}

/// The message the bot's copy of the uploaded film will be: the emulated channel numbers
/// its messages one by one, and nothing but the bot posts after the demo files.
pub fn bot_copy_of(files: &[DemoFile]) -> Option<FileRef> {
    let last = files
        .iter()
        .map(|file| file.file)
        .max_by_key(|file| file.msg_id)?;
    Some(FileRef {
        chat_id: last.chat_id,
        msg_id: last.msg_id.checked_add(1)?,
    })
}

/// A `--data-dir` kept from an earlier run remembers the metadata of messages with the same
/// ids (every emulated channel numbers its messages from 1), but the emulated world is new
/// each run: forget it before the core opens the database, so neither its resolver's cache
/// nor the front-end's check of the bot's copy can pick the old document up.
pub async fn forget_stale_meta(data_dir: &Path, files: &[FileRef]) -> Result<(), SandboxError> {
    let store = Store::open(data_dir).map_err(|source| SandboxError::Store {
        dir: data_dir.to_owned(),
        source,
    })?;
    for file in files {
        store
            .remove_file_meta(*file)
            .map_err(|error| SandboxError::core("forgetting stale file metadata", error))?;
    }
    store
        .flush()
        .await
        .map_err(|error| SandboxError::core("forgetting stale file metadata", error))
}

/// Checks a `--file` before anything starts: it must be a readable regular file.
pub fn check_file(path: &Path) -> Result<(), SandboxError> {
    let metadata = std::fs::metadata(path).map_err(|source| SandboxError::DemoFile {
        path: path.to_owned(),
        source,
    })?;
    if metadata.is_file() {
        std::fs::File::open(path)
            .map(drop)
            .map_err(|source| SandboxError::DemoFile {
                path: path.to_owned(),
                source,
            })
    } else {
        Err(SandboxError::DemoFile {
            path: path.to_owned(),
            source: std::io::Error::other("not a regular file"),
        })
    }
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned())
}

/// Adds the document to the emulator, posts it to the storage channel, links the post.
fn post(
    context: &SeedContext<'_>,
    name: String,
    content: Content,
    source: Option<PathBuf>,
) -> Result<DemoFile, SandboxError> {
    let world = context.world.emulator.world();
    let mime = mime_guess::from_path(&name)
        .first_raw()
        .unwrap_or("application/octet-stream");
    let doc = world.add_document(content, &name, mime, MEDIA_DC);
    let msg_id = world.post_document(context.world.channel.channel_id, doc.id, &name);
    let file = FileRef {
        chat_id: context.world.channel.bot_api_id(),
        msg_id,
    };
    let token = context.keyring.sign(file, None);
    let sha256 = tokio::task::block_in_place(|| content_sha256(context.world, doc.id, doc.size));
    Ok(DemoFile {
        name: name.clone(),
        size: doc.size,
        sha256,
        doc_id: doc.id,
        file,
        source,
        links: Links {
            download: download_link(context.public_base, &token, &name),
            watch: watch_link(context.public_base, &token),
        },
    })
}

/// SHA-256 of a document's bytes as the emulator serves them.
fn content_sha256(world: &DemoWorld, doc_id: i64, size: u64) -> String {
    let mut hasher = Sha256::new();
    let mut offset = 0u64;
    while offset < size {
        let slice = world.emulator.content_slice(doc_id, offset, HASH_STEP);
        if slice.is_empty() {
            break;
        }
        hasher.update(&slice);
        offset += slice.len() as u64;
    }
    crate::settings::hex(&hasher.finalize())
}

/// The demo user sends the film to the main bot; returns everything seeded, with the bot's
/// reply and links. `expected_copy` is the message [`forget_stale_meta`] cleared for the
/// bot's copy: a copy anywhere else could meet stale metadata, so it is an error.
pub async fn upload_through_bot(
    context: &SeedContext<'_>,
    files: Vec<DemoFile>,
    expected_copy: FileRef,
) -> Result<Seeded, SandboxError> {
    let uploaded = 0;
    let world = context.world.emulator.world();
    let bot = context.world.main_bot.user_id;
    let before = world.sent_by(bot).len();
    world.user_sends_document(context.world.user.user_id, bot, files[uploaded].doc_id, "");
    let deadline = Instant::now() + REPLY_WAIT;
    let reply = loop {
        let sent = world.sent_by(bot);
        if let Some(reply) = sent.iter().skip(before).find(|m| m.text.contains("/dl/")) {
            break reply.text.clone();
        }
        if Instant::now() >= deadline {
            return Err(SandboxError::NoReply(REPLY_WAIT));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let bot_links = links_in(&reply, context.public_base)?;
    let copy = token_of(&bot_links.watch)
        .and_then(|token| claims_of(context.keyring, token))
        .map(|claims| claims.file);
    if copy != Some(expected_copy) {
        return Err(SandboxError::UnexpectedCopy {
            expected: expected_copy,
            reply,
        });
    }
    Ok(Seeded {
        files,
        uploaded,
        bot_reply: reply,
        bot_links,
    })
}

fn claims_of(keyring: &Keyring, token: &str) -> Option<LinkClaims> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    keyring.verify(token, now).ok()
}

/// The download and watch links in a reply of the bot.
pub fn links_in(reply: &str, public_base: &str) -> Result<Links, SandboxError> {
    let base = public_base.trim_end_matches('/');
    let find = |what: &'static str, prefix: String| {
        reply
            .split_whitespace()
            .find(|word| word.starts_with(&prefix))
            .map(str::to_owned)
            .ok_or_else(|| SandboxError::ReplyWithoutLink {
                what,
                reply: reply.to_owned(),
            })
    };
    Ok(Links {
        download: find("download", format!("{base}/dl/"))?,
        watch: find("watch", format!("{base}/watch/"))?,
    })
}

/// The token of a `/watch/{token}` link.
fn token_of(watch: &str) -> Option<&str> {
    watch.rsplit_once("/watch/").map(|(_, token)| token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_found_in_a_reply() {
        let reply = "🎬 film.mkv (64.0 MiB)\n\n⬇️ Download: http://127.0.0.1:8080/dl/AbC/film.mkv\n▶️ Watch: http://127.0.0.1:8080/watch/AbC";
        let links = links_in(reply, "http://127.0.0.1:8080/").unwrap();
        assert_eq!(links.download, "http://127.0.0.1:8080/dl/AbC/film.mkv");
        assert_eq!(links.watch, "http://127.0.0.1:8080/watch/AbC");
        assert_eq!(token_of(&links.watch), Some("AbC"));
    }

    #[test]
    fn a_reply_without_links_is_an_error() {
        assert!(matches!(
            links_in("Sorry, that failed.", "http://h"),
            Err(SandboxError::ReplyWithoutLink {
                what: "download",
                ..
            })
        ));
    }

    #[test]
    fn a_directory_is_not_a_demo_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_file(dir.path()).is_err());
        assert!(check_file(&dir.path().join("missing")).is_err());
        let file = dir.path().join("a.bin");
        std::fs::write(&file, b"x").unwrap();
        check_file(&file).unwrap();
    }
}
