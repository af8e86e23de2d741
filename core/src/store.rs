//! The core's sled database: the one place durable state lives.
//!
//! Trees: `sessions` (each bot's grammers session, keyed by bot id prefix — see
//! [`crate::telegram::session`]), `file_meta` (what the resolver learnt about a file),
//! `settings` (link keys, TLS certificate, anything small and named), `revocations` (links
//! switched off by an operator) and `edges` (the fleet's last heartbeats). Values are postcard
//! encoded serde types; keys are fixed binary layouts so that ranges sort naturally.
//!
//! A schema version key in the default tree is checked at open: a database written by a newer
//! tgcdn is refused with [`StoreError::NewerSchema`] instead of being misread as corrupt.
//!
//! Durability: sled flushes in the background every few hundred milliseconds, which is enough
//! for caches (`file_meta`, `edges`). Writes that must survive `kill -9` once acknowledged
//! (auth keys, link keys, revocations) go through the `*_durable` helpers, which await
//! `flush_async` before returning.
//!
//! Reopening: sled releases its file lock only once the last of its background references
//! (flusher thread, epoch garbage) is gone, which can be a moment after the last handle was
//! dropped. Tests, the sandbox and one-box mode reopen a database in the same process, so
//! [`Store::open`] waits for the lock up to [`OPEN_LOCK_WAIT`] and only then answers
//! [`StoreError::Locked`].
//!
//! This module never talks to the network and never holds a grammers type.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tgcdn_shared::FileRef;

/// Version of the layout of every tree below. Bump it when a key or value layout changes and
/// teach [`Store::open`] to migrate the older one.
pub const SCHEMA_VERSION: u32 = 1;

const SCHEMA_KEY: &[u8] = b"tgcdn/schema_version";

/// How long [`Store::open`] waits for the database's lock. A handle dropped in this process
/// lets go within about a second even on a loaded machine; a lock held longer belongs to a
/// live handle or another process, and waiting more would only delay the error.
pub const OPEN_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Pause between two attempts to take the lock: short next to sled's release time, long
/// enough not to spin a core.
const LOCK_RETRY: Duration = Duration::from_millis(20);

const SESSIONS: &str = "sessions";
const FILE_META: &str = "file_meta";
const SETTINGS: &str = "settings";
const REVOCATIONS: &str = "revocations";
const EDGES: &str = "edges";

/// Everything that can go wrong with the database, with the tree and key it concerned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database at {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error(
        "the database at {path} is still locked after {waited:?}: is another tgcdn-core \
         using this data directory?"
    )]
    Locked { path: PathBuf, waited: Duration },
    #[error("database error")]
    Sled(#[from] sled::Error),
    #[error("the database has schema version {found}; this build understands up to {supported}")]
    NewerSchema { found: u32, supported: u32 },
    #[error("the schema version record is malformed ({len} bytes)")]
    MalformedSchemaVersion { len: usize },
    #[error("cannot encode a value for tree `{tree}`")]
    Encode {
        tree: &'static str,
        #[source]
        source: postcard::Error,
    },
    #[error("cannot decode the value of tree `{tree}` at key {key:02x?}")]
    Decode {
        tree: &'static str,
        key: Vec<u8>,
        #[source]
        source: postcard::Error,
    },
}

/// What the resolver learnt about the file a message holds. Persisted so that a restart can
/// answer `Meta` requests before any bot has re-fetched the message; the location itself
/// (with its expiring file reference) is per bot and stays in memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FileMeta {
    pub size: u64,
    pub mime_type: String,
    pub file_name: String,
    /// The DC that holds the document's bytes.
    pub dc_id: i32,
    /// Telegram's document id: stable for the same bytes, used for the ETag.
    pub document_id: i64,
    /// Message date, seconds since the Unix epoch.
    pub date: i64,
}

/// Why and when a link was switched off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Revocation {
    pub revoked_at_unix: i64,
    pub reason: String,
}

/// What the core last heard from an edge (its Hello, then its heartbeats).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EdgeRecord {
    pub region: String,
    pub public_url: String,
    /// When its current connection was authenticated.
    pub connected_unix: i64,
    /// Last Hello or heartbeat.
    pub last_seen_unix: i64,
    /// Its last load report; `None` until the first heartbeat.
    pub load: Option<tgcdn_shared::wire::Heartbeat>,
}

/// The opened database with its trees. Cheap to clone (sled handles are reference counted).
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    sessions: sled::Tree,
    file_meta: sled::Tree,
    settings: sled::Tree,
    revocations: sled::Tree,
    edges: sled::Tree,
}

impl Store {
    /// Opens (or creates) the database in directory `path` and checks its schema version,
    /// waiting up to [`OPEN_LOCK_WAIT`] for a handle dropped a moment ago to let go of it.
    /// Blocks the calling thread while it waits; opening happens once, at start.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_waiting(path, OPEN_LOCK_WAIT)
    }

    /// [`Store::open`] with its own bound on the wait for the lock.
    pub fn open_waiting(path: &Path, wait: Duration) -> Result<Self, StoreError> {
        let deadline = Instant::now() + wait;
        loop {
            match sled::open(path) {
                Ok(db) => return Self::from_db(db),
                Err(source) if !is_lock_held(&source) => {
                    return Err(StoreError::Open {
                        path: path.to_owned(),
                        source,
                    });
                }
                Err(_) if Instant::now() >= deadline => {
                    return Err(StoreError::Locked {
                        path: path.to_owned(),
                        waited: wait,
                    });
                }
                // Each attempt also pins sled's epochs, which lets the dropped handle's
                // deferred clean-up (and with it the lock) go sooner.
                Err(_) => std::thread::sleep(LOCK_RETRY),
            }
        }
    }

    /// A database that lives in memory and in a temporary file removed on drop; for tests.
    pub fn temporary() -> Result<Self, StoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        Self::from_db(db)
    }

    fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        check_schema_version(&db)?;
        Ok(Self {
            sessions: db.open_tree(SESSIONS)?,
            file_meta: db.open_tree(FILE_META)?,
            settings: db.open_tree(SETTINGS)?,
            revocations: db.open_tree(REVOCATIONS)?,
            edges: db.open_tree(EDGES)?,
            db,
        })
    }

    /// The raw `sessions` tree; [`crate::telegram::session::SledSession`] owns its layout.
    pub fn sessions_tree(&self) -> &sled::Tree {
        &self.sessions
    }

    /// A tree whose layout another module owns (the catalogue's, TMDB's cache), opened on
    /// first use; the name must not be one of this module's own trees.
    pub fn tree(&self, name: &'static str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
    }

    /// Waits until everything written so far is on disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    pub fn file_meta(&self, file: FileRef) -> Result<Option<FileMeta>, StoreError> {
        get(&self.file_meta, FILE_META, &file_key(file))
    }

    /// Not flushed: the meta can always be fetched again from Telegram.
    pub fn put_file_meta(&self, file: FileRef, meta: &FileMeta) -> Result<(), StoreError> {
        put(&self.file_meta, FILE_META, &file_key(file), meta)
    }

    /// Not flushed: a meta that comes back after a crash is looked up and dropped again.
    pub fn remove_file_meta(&self, file: FileRef) -> Result<(), StoreError> {
        self.file_meta.remove(file_key(file))?;
        Ok(())
    }

    pub fn setting<V: DeserializeOwned>(&self, name: &str) -> Result<Option<V>, StoreError> {
        get(&self.settings, SETTINGS, name.as_bytes())
    }

    /// Settings hold link keys and certificates: lose one and every link or edge breaks, so the
    /// write is on disk before this returns.
    pub async fn put_setting_durable<V: Serialize>(
        &self,
        name: &str,
        value: &V,
    ) -> Result<(), StoreError> {
        put(&self.settings, SETTINGS, name.as_bytes(), value)?;
        self.flush().await
    }

    pub fn revocation(&self, file: FileRef) -> Result<Option<Revocation>, StoreError> {
        get(&self.revocations, REVOCATIONS, &file_key(file))
    }

    /// An operator who revoked a link must not see it come back after a crash.
    pub async fn revoke_durable(
        &self,
        file: FileRef,
        revocation: &Revocation,
    ) -> Result<(), StoreError> {
        put(&self.revocations, REVOCATIONS, &file_key(file), revocation)?;
        self.flush().await
    }

    /// Every revoked file, in key order. A key that is not a file's (written by no version
    /// of this code) is skipped with a warning rather than failing the whole list.
    pub fn revoked_files(&self) -> Result<Vec<FileRef>, StoreError> {
        let mut files = Vec::new();
        for entry in self.revocations.iter() {
            let (key, _) = entry?;
            match file_of_key(&key) {
                Some(file) => files.push(file),
                None => tracing::warn!(key = ?key.as_ref(), "odd key in the revocations tree"),
            }
        }
        Ok(files)
    }

    /// Returns whether a revocation existed.
    pub async fn unrevoke_durable(&self, file: FileRef) -> Result<bool, StoreError> {
        let existed = self.revocations.remove(file_key(file))?.is_some();
        self.flush().await?;
        Ok(existed)
    }

    pub fn edge(&self, edge_id: &str) -> Result<Option<EdgeRecord>, StoreError> {
        get(&self.edges, EDGES, edge_id.as_bytes())
    }

    /// Not flushed: the next heartbeat rewrites it.
    pub fn put_edge(&self, edge_id: &str, record: &EdgeRecord) -> Result<(), StoreError> {
        put(&self.edges, EDGES, edge_id.as_bytes(), record)
    }

    /// Not flushed: a removed record that comes back after a crash is pruned again.
    pub fn remove_edge(&self, edge_id: &str) -> Result<(), StoreError> {
        self.edges.remove(edge_id.as_bytes())?;
        Ok(())
    }

    /// Every known edge, ordered by id.
    pub fn edges(&self) -> Result<Vec<(String, EdgeRecord)>, StoreError> {
        self.edges
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                let record = decode(EDGES, &key, &value)?;
                Ok((String::from_utf8_lossy(&key).into_owned(), record))
            })
            .collect()
    }
}

/// sled 0.34 reports a lock held elsewhere as an `Other` I/O error with this text
/// (`Config::try_lock`); the `a_held_database_is_refused_as_locked` test pins it.
fn is_lock_held(error: &sled::Error) -> bool {
    matches!(error, sled::Error::Io(io)
        if io.kind() == std::io::ErrorKind::Other
            && io.to_string().contains("could not acquire lock"))
}

fn check_schema_version(db: &sled::Db) -> Result<(), StoreError> {
    match db.get(SCHEMA_KEY)? {
        None => {
            db.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
            // A fresh database must not reopen without its version after a crash.
            db.flush()?;
            Ok(())
        }
        Some(bytes) => {
            let raw: [u8; 4] = bytes
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::MalformedSchemaVersion { len: bytes.len() })?;
            let found = u32::from_be_bytes(raw);
            if found > SCHEMA_VERSION {
                return Err(StoreError::NewerSchema {
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            Ok(())
        }
    }
}

/// `chat_id` then `msg_id`, big-endian with the sign bit flipped so byte order is numeric order.
pub(crate) fn file_key(file: FileRef) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&((file.chat_id as u64) ^ (1 << 63)).to_be_bytes());
    key[8..].copy_from_slice(&((file.msg_id as u32) ^ (1 << 31)).to_be_bytes());
    key
}

/// The file a [`file_key`] names; `None` for a key of another shape.
fn file_of_key(key: &[u8]) -> Option<FileRef> {
    let chat: [u8; 8] = key.get(..8)?.try_into().ok()?;
    let msg: [u8; 4] = key.get(8..)?.try_into().ok()?;
    Some(FileRef {
        chat_id: (u64::from_be_bytes(chat) ^ (1 << 63)) as i64,
        msg_id: (u32::from_be_bytes(msg) ^ (1 << 31)) as i32,
    })
}

pub(crate) fn get<V: DeserializeOwned>(
    tree: &sled::Tree,
    tree_name: &'static str,
    key: &[u8],
) -> Result<Option<V>, StoreError> {
    tree.get(key)?
        .map(|bytes| decode(tree_name, key, &bytes))
        .transpose()
}

pub(crate) fn put<V: Serialize + ?Sized>(
    tree: &sled::Tree,
    tree_name: &'static str,
    key: &[u8],
    value: &V,
) -> Result<(), StoreError> {
    let bytes = postcard::to_stdvec(value).map_err(|source| StoreError::Encode {
        tree: tree_name,
        source,
    })?;
    tree.insert(key, bytes)?;
    Ok(())
}

pub(crate) fn decode<V: DeserializeOwned>(
    tree_name: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<V, StoreError> {
    postcard::from_bytes(bytes).map_err(|source| StoreError::Decode {
        tree: tree_name,
        key: key.to_vec(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> FileMeta {
        FileMeta {
            size: 3 * 1024 * 1024 + 17,
            mime_type: "video/mp4".into(),
            file_name: "film.mp4".into(),
            dc_id: 4,
            document_id: 0x1234_5678_9abc,
            date: 1_700_000_000,
        }
    }

    const FILE: FileRef = FileRef {
        chat_id: -1_001_234_567_890,
        msg_id: 42,
    };

    #[tokio::test]
    async fn every_tree_round_trips_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.put_file_meta(FILE, &meta()).unwrap();
            store
                .put_setting_durable("link_key/1", &[7u8; 32])
                .await
                .unwrap();
            let revocation = Revocation {
                revoked_at_unix: 5,
                reason: "dmca".into(),
            };
            store.revoke_durable(FILE, &revocation).await.unwrap();
            let edge = EdgeRecord {
                region: "fra".into(),
                public_url: "https://fra.example".into(),
                connected_unix: 8,
                last_seen_unix: 9,
                load: None,
            };
            store.put_edge("edge-1", &edge).unwrap();
            store.flush().await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.file_meta(FILE).unwrap(), Some(meta()));
        assert_eq!(
            store.setting::<[u8; 32]>("link_key/1").unwrap(),
            Some([7u8; 32])
        );
        assert_eq!(store.revocation(FILE).unwrap().unwrap().reason, "dmca");
        assert_eq!(store.revoked_files().unwrap(), vec![FILE]);
        let edges = store.edges().unwrap();
        assert_eq!(edges.len(), 1);
        assert_eq!(edges[0].0, "edge-1");
        assert_eq!(edges[0].1.region, "fra");
        assert!(store.unrevoke_durable(FILE).await.unwrap());
        assert!(!store.unrevoke_durable(FILE).await.unwrap());
        assert_eq!(store.revocation(FILE).unwrap(), None);
        assert_eq!(store.revoked_files().unwrap(), Vec::<FileRef>::new());
    }

    /// Regression: the second open used to fail at random while sled's background
    /// references to the first handle still held the lock.
    #[tokio::test]
    async fn reopening_right_after_a_drop_waits_for_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..5u8 {
            let store = Store::open(dir.path()).unwrap();
            if round > 0 {
                assert_eq!(
                    store.setting::<u8>("round").unwrap(),
                    Some(round - 1),
                    "round {round} lost the previous write"
                );
            }
            store.put_setting_durable("round", &round).await.unwrap();
        }
    }

    #[test]
    fn a_held_database_is_refused_as_locked() {
        let dir = tempfile::tempdir().unwrap();
        let _held = Store::open(dir.path()).unwrap();
        let wait = Duration::from_millis(100);
        let started = Instant::now();
        match Store::open_waiting(dir.path(), wait) {
            Err(StoreError::Locked { path, waited }) => {
                assert_eq!(path, dir.path());
                assert_eq!(waited, wait);
            }
            other => panic!("expected Locked, got {:?}", other.err()),
        }
        assert!(started.elapsed() >= wait, "gave up before the deadline");
    }

    #[test]
    fn missing_keys_are_none() {
        let store = Store::temporary().unwrap();
        assert_eq!(store.file_meta(FILE).unwrap(), None);
        assert_eq!(store.setting::<u32>("nothing").unwrap(), None);
        assert_eq!(store.edge("nobody").unwrap(), None);
    }

    #[test]
    fn newer_schema_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            db.insert(SCHEMA_KEY, &(SCHEMA_VERSION + 1).to_be_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        match Store::open(dir.path()) {
            Err(StoreError::NewerSchema { found, supported }) => {
                assert_eq!(found, SCHEMA_VERSION + 1);
                assert_eq!(supported, SCHEMA_VERSION);
            }
            other => panic!("expected NewerSchema, got {:?}", other.err()),
        }
    }

    #[test]
    fn malformed_schema_version_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            db.insert(SCHEMA_KEY, b"x").unwrap();
            db.flush().unwrap();
        }
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::MalformedSchemaVersion { len: 1 })
        ));
    }

    #[test]
    fn fresh_database_records_its_version() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let db = sled::open(dir.path()).unwrap();
        let stored = db.get(SCHEMA_KEY).unwrap().unwrap();
        assert_eq!(stored.as_ref(), SCHEMA_VERSION.to_be_bytes());
    }

    #[test]
    fn garbage_value_is_a_decode_error_naming_the_tree() {
        let store = Store::temporary().unwrap();
        store.file_meta.insert(file_key(FILE), &[0xff; 3]).unwrap();
        match store.file_meta(FILE) {
            Err(StoreError::Decode { tree, key, .. }) => {
                assert_eq!(tree, FILE_META);
                assert_eq!(key, file_key(FILE));
            }
            other => panic!("expected a decode error, got {other:?}"),
        }
    }

    #[test]
    fn file_keys_sort_numerically() {
        let refs = [
            FileRef {
                chat_id: -1_002,
                msg_id: 5,
            },
            FileRef {
                chat_id: -1_001,
                msg_id: -1,
            },
            FileRef {
                chat_id: -1_001,
                msg_id: 3,
            },
            FileRef {
                chat_id: 7,
                msg_id: 1,
            },
        ];
        let keys: Vec<_> = refs.iter().map(|f| file_key(*f)).collect();
        for (file, key) in refs.iter().zip(&keys) {
            assert_eq!(file_of_key(key), Some(*file));
        }
        assert_eq!(file_of_key(&keys[0][..11]), None);
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }
}
