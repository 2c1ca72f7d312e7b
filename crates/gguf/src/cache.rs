//! A cache of model identities, so that many records about one model hash it once.
//!
//! An entry is keyed by the file's device, inode, size, modification time and status-change
//! time, all in nanoseconds, and a lookup succeeds only when all five match the file as it is
//! now. The status-change time (`ctime`) is the part that makes "a changed file never looks
//! unchanged" hold: writing to a file or restoring its modification time with `touch -d` both
//! set `ctime` to the current time, and unprivileged programs cannot set it back.
//!
//! Two races remain, and both are closed here:
//!
//! - The file changes during the pass. The hasher compares `stat` before and after and fails
//!   with [`HashError::Changed`]; nothing is stored.
//! - The file changes after the pass within the same timestamp tick, so its times do not move
//!   (file systems stamp from a clock that ticks every few milliseconds). Entries are therefore
//!   only stored for files whose times are more than [`Cache::SETTLE`] older than the start of
//!   the pass, the rule git uses for "racily clean" index entries; a file hashed right after it
//!   was written is hashed again next time.
//!
//! What it cannot defend against: someone who can change the system clock or write to the
//! cache directory (both mean the account or the machine is already someone else's). For
//! those threat models, hash without the cache.
//!
//! Entries are JSON files under [`Cache::default_dir`], one per (device, inode), written
//! atomically. A corrupt or mismatched entry is a miss, never an error. On platforms without
//! inode numbers the cache never hits.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::HashError;
use crate::hash::Hasher;
use crate::identity::ModelIdentity;

/// The format of entries; bump it whenever [`ModelIdentity`] or its definitions change.
const FORMAT: u32 = 1;

/// A directory of cached [`ModelIdentity`] values.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
    hasher: Hasher,
    settle: Duration,
}

/// A [`ModelIdentity`] and whether it came from the cache.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Digested {
    /// The identity.
    pub identity: ModelIdentity,
    /// Whether it was found in the cache (the file was not read).
    pub from_cache: bool,
}

/// The stat fields an entry is keyed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    format: u32,
    key: FileKey,
    identity: ModelIdentity,
}

impl Cache {
    /// How much older than the start of a pass a file's times must be, by default, for its
    /// entry to be stored: 2 seconds.
    pub const SETTLE: Duration = Duration::from_secs(2);

    /// A cache in `dir`, created when the first entry is stored.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            hasher: Hasher::new(),
            settle: Self::SETTLE,
        }
    }

    /// `$XDG_CACHE_HOME/provenance/gguf`, or `$HOME/.cache/provenance/gguf`; `None` when
    /// neither variable is set to an absolute path.
    pub fn default_dir() -> Option<PathBuf> {
        let absolute = |var: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|path| path.is_absolute())
        };
        let base =
            absolute("XDG_CACHE_HOME").or_else(|| absolute("HOME").map(|h| h.join(".cache")))?;
        Some(base.join("provenance").join("gguf"))
    }

    /// The directory entries live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sets the hasher used on a miss. [`Hasher::new`] by default.
    pub fn hasher(&mut self, hasher: Hasher) -> &mut Self {
        self.hasher = hasher;
        self
    }

    /// Sets how much older than the start of a pass a file's times must be for its entry to
    /// be stored. [`Cache::SETTLE`] by default. Lowering it reopens the race described in the
    /// module docs for files written less than that long before they are hashed; tests of the
    /// cache itself set it to zero.
    pub fn settle_time(&mut self, settle: Duration) -> &mut Self {
        self.settle = settle;
        self
    }

    /// The identity of the file at `path`, from the cache when the file is unchanged.
    pub fn digest_file(&self, path: &Path) -> Result<ModelIdentity, HashError> {
        self.digest_file_with_progress(path, |_, _| {})
            .map(|digested| digested.identity)
    }

    /// Like [`Cache::digest_file`], with a progress callback for a miss (see
    /// [`Hasher::hash_file_with_progress`]), and saying whether it was a hit. Failing to store
    /// an entry is not an error: the identity is still returned.
    pub fn digest_file_with_progress(
        &self,
        path: &Path,
        progress: impl FnMut(u64, u64),
    ) -> Result<Digested, HashError> {
        let io_error = |source| HashError::Io {
            path: path.to_owned(),
            source,
        };
        let before = fs::metadata(path).map_err(io_error)?;
        let key = file_key(&before);
        if let Some(key) = key {
            if let Some(identity) = self.lookup(&key) {
                return Ok(Digested {
                    identity,
                    from_cache: true,
                });
            }
        }
        let started = SystemTime::now();
        let identity = self.hasher.hash_file_with_progress(path, progress)?;
        // The hasher checked that the file did not change during the pass, so `key` (taken
        // before it) describes the bytes hashed.
        if let Some(key) = key.filter(|key| settled(key, started, self.settle)) {
            let _ = self.store(&key, &identity);
        }
        Ok(Digested {
            identity,
            from_cache: false,
        })
    }

    fn entry_path(&self, key: &FileKey) -> PathBuf {
        self.dir
            .join(format!("v{FORMAT}"))
            .join(format!("{:x}-{:x}.json", key.dev, key.ino))
    }

    fn lookup(&self, key: &FileKey) -> Option<ModelIdentity> {
        let bytes = fs::read(self.entry_path(key)).ok()?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        (entry.format == FORMAT && entry.key == *key && entry.identity.size == key.size)
            .then_some(entry.identity)
    }

    fn store(&self, key: &FileKey, identity: &ModelIdentity) -> io::Result<()> {
        let path = self.entry_path(key);
        let dir = path.parent().unwrap_or(&self.dir);
        fs::create_dir_all(dir)?;
        let entry = Entry {
            format: FORMAT,
            key: *key,
            identity: identity.clone(),
        };
        let json = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        let tmp = dir.join(format!(
            ".{:x}-{:x}.{}.tmp",
            key.dev,
            key.ino,
            std::process::id()
        ));
        let result = File::create(&tmp)
            .and_then(|mut file| file.write_all(&json).and_then(|()| file.sync_all()))
            .and_then(|()| fs::rename(&tmp, &path));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

#[cfg(unix)]
fn file_key(meta: &fs::Metadata) -> Option<FileKey> {
    use std::os::unix::fs::MetadataExt;
    let ns = |secs: i64, nsecs: i64| i128::from(secs) * 1_000_000_000 + i128::from(nsecs);
    Some(FileKey {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.len(),
        mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
        ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
    })
}

#[cfg(not(unix))]
fn file_key(_meta: &fs::Metadata) -> Option<FileKey> {
    None
}

/// Whether both file times are at least `settle` before `started`.
fn settled(key: &FileKey, started: SystemTime, settle: Duration) -> bool {
    let Ok(since_epoch) = started.duration_since(SystemTime::UNIX_EPOCH) else {
        return false;
    };
    let limit = since_epoch.saturating_sub(settle).as_nanos() as i128;
    key.mtime_ns < limit && key.ctime_ns < limit
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;

    #[test]
    fn fresh_files_are_not_settled() {
        let now = SystemTime::now();
        let ns = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i128;
        let key = |m: i128, c: i128| FileKey {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: m,
            ctime_ns: c,
        };
        let old = ns - 10_000_000_000;
        let settle = Cache::SETTLE;
        assert!(settled(&key(old, old), now, settle));
        assert!(!settled(&key(ns, old), now, settle));
        assert!(!settled(&key(old, ns - 1_000_000_000), now, settle));
    }
}
