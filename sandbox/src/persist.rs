//! What a kept `--data-dir` holds besides the core's database: the emulated Telegram (a
//! [`tgemu::WorldSnapshot`]), who is who in it ([`Cast`]), the secrets core and edges share,
//! the demo posts and the bot's reply to the demo upload ([`KeptRun`]), in one file (`world.state`: a magic line, then postcard). Loaded
//! before the emulator starts, so the next run is the same Telegram to the core's kept
//! sessions and database, and the links of earlier runs still verify and resolve.
//!
//! Called by [`crate::Sandbox::start`] (load, then save once everything is up) and
//! [`crate::Sandbox::shutdown`] (save the world as the run leaves it). Written to a
//! temporary file and renamed, so a crash mid-write keeps the previous state.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tgemu::WorldSnapshot;

use crate::seed::{DemoPost, KeptUpload};
use crate::settings::Secrets;
use crate::world::{Cast, Saved};

/// The file's first bytes: a kept world of another layout is refused, not misread.
/// Version 2: the emulator's snapshot holds photos, and the bot's reply is kept.
const MAGIC: &[u8] = b"tgcdn-sandbox world 2\n";

/// Why a kept world cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("reading it")]
    Read(#[source] io::Error),
    #[error("it is not a sandbox world of this version (remove it to start afresh)")]
    Format,
    #[error("decoding it (remove it to start afresh)")]
    Decode(#[source] postcard::Error),
    #[error("encoding it")]
    Encode(#[source] postcard::Error),
    #[error("writing it")]
    Write(#[source] io::Error),
}

/// Where a run keeps things.
pub struct Layout {
    /// The core's database.
    pub core: PathBuf,
    /// The kept world; `None` without `--data-dir` (the world dies with the run).
    pub state: Option<PathBuf>,
    /// The built-in files the emulator serves from disk.
    pub files: PathBuf,
}

impl Layout {
    /// With `--data-dir DIR`: `DIR/core`, `DIR/world.state`, `DIR/files` (created);
    /// without: the run's temporary directory.
    pub fn new(data_dir: Option<&Path>, scratch: &Path) -> io::Result<Layout> {
        match data_dir {
            Some(dir) => {
                let files = dir.join("files");
                std::fs::create_dir_all(&files)?;
                Ok(Layout {
                    core: dir.join("core"),
                    state: Some(dir.join("world.state")),
                    files,
                })
            }
            None => Ok(Layout {
                core: scratch.join("core-data"),
                state: None,
                files: scratch.to_owned(),
            }),
        }
    }
}

/// What a run keeps besides the world: what the next run needs to be the same sandbox.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeptRun {
    pub secrets: Secrets,
    pub posts: Vec<DemoPost>,
    /// The bot's reply to the demo upload, so the next run shows it again instead of
    /// sending the film once more (each upload is another copy in the storage channel).
    pub upload: Option<KeptUpload>,
}

/// Everything kept.
#[derive(Serialize, Deserialize)]
struct Kept {
    world: WorldSnapshot,
    cast: Cast,
    run: KeptRun,
}

/// A kept sandbox, read back.
pub struct Loaded {
    pub world: Saved,
    pub run: KeptRun,
}

/// The kept sandbox at `path`; `None` if there is none yet.
pub fn load(path: &Path) -> Result<Option<Loaded>, PersistError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(PersistError::Read(error)),
    };
    let body = bytes.strip_prefix(MAGIC).ok_or(PersistError::Format)?;
    let kept: Kept = postcard::from_bytes(body).map_err(PersistError::Decode)?;
    Ok(Some(Loaded {
        world: Saved {
            snapshot: kept.world,
            cast: kept.cast,
        },
        run: kept.run,
    }))
}

/// Writes the sandbox to `path`, replacing what was there only once the new state is
/// complete on disk.
pub fn save(path: &Path, world: Saved, run: &KeptRun) -> Result<(), PersistError> {
    let kept = Kept {
        world: world.snapshot,
        cast: world.cast,
        run: run.clone(),
    };
    let mut bytes = MAGIC.to_vec();
    bytes.extend(postcard::to_stdvec(&kept).map_err(PersistError::Encode)?);
    let partial = path.with_extension("partial");
    std::fs::write(&partial, &bytes).map_err(PersistError::Write)?;
    std::fs::rename(&partial, path).map_err(PersistError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_another_kind_is_refused_and_none_is_no_world() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world.state");
        assert!(load(&path).unwrap().is_none());
        std::fs::write(&path, b"something else").unwrap();
        assert!(matches!(load(&path), Err(PersistError::Format)));
        let mut truncated = MAGIC.to_vec();
        truncated.push(7);
        std::fs::write(&path, truncated).unwrap();
        assert!(matches!(load(&path), Err(PersistError::Decode(_))));
    }
}
