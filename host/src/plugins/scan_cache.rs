//! What earlier scans found, so that `list` with unchanged plugins starts no child process and
//! loads nothing. An entry is keyed by the file's path and identified by (device, inode, size,
//! mtime, ctime): any change to the file, or a different file put in its place, misses. The
//! file's sha256 is stored beside it, computed once per change; under `--require-trusted` it
//! is computed on every command and must match too. Failures are cached like
//! successes. A cache that cannot be read or parsed is ignored and rebuilt.
//!
//! Location: `$KARMA_SCAN_CACHE`, default `~/.cache/karma/plugin-scan.json`.

use std::{
    collections::BTreeMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use super::scan_child::LoadOutcome;

/// Bumped when the entry format changes: older caches are then rebuilt.
const FORMAT: u32 = 1;

/// The identity of a file's current contents, as the file system tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileIdentity {
    pub fn of(path: &Path) -> std::io::Result<Self> {
        Ok(FileIdentity::from(&std::fs::metadata(path)?))
    }
}

impl From<&std::fs::Metadata> for FileIdentity {
    fn from(metadata: &std::fs::Metadata) -> Self {
        FileIdentity {
            dev: metadata.dev(),
            ino: metadata.ino(),
            size: metadata.size(),
            mtime_ns: i128::from(metadata.mtime()) * 1_000_000_000 + i128::from(metadata.mtime_nsec()),
            ctime_ns: i128::from(metadata.ctime()) * 1_000_000_000 + i128::from(metadata.ctime_nsec()),
        }
    }
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Entry {
    identity: FileIdentity,
    sha256: String,
    outcome: LoadOutcome,
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Stored {
    format: u32,
    entries: BTreeMap<PathBuf, Entry>,
}

/// The scan cache, read once per command and written back if anything changed.
pub struct ScanCache {
    path: Option<PathBuf>,
    stored: Stored,
    changed: bool,
}

fn default_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(crate::env_vars::KARMA_SCAN_CACHE).filter(|path| !path.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/karma/plugin-scan.json"))
}

impl ScanCache {
    pub fn open() -> Self {
        let path = default_path();
        let stored = path
            .as_deref()
            .and_then(|path| std::fs::read(path).ok())
            .and_then(|bytes| match serde_json::from_slice::<Stored>(&bytes) {
                Ok(stored) if stored.format == FORMAT => Some(stored),
                Ok(_) => None,
                Err(error) => {
                    tracing::debug!("the plugin scan cache is unreadable ({error}); rebuilding it");
                    None
                }
            })
            .unwrap_or(Stored { format: FORMAT, entries: BTreeMap::new() });
        ScanCache { path, stored, changed: false }
    }

    /// The cached outcome for `path`, if the file is the one that was scanned.
    pub fn get(&self, path: &Path, identity: FileIdentity) -> Option<&LoadOutcome> {
        self.stored.entries.get(path).filter(|entry| entry.identity == identity).map(|entry| &entry.outcome)
    }

    /// The cached outcome for `path` when the file is the one scanned and its contents hash to
    /// `sha256` (just computed, under `--require-trusted`).
    pub fn get_hashed(&self, path: &Path, identity: FileIdentity, sha256: &str) -> Option<&LoadOutcome> {
        self.stored
            .entries
            .get(path)
            .filter(|entry| entry.identity == identity && entry.sha256 == sha256)
            .map(|entry| &entry.outcome)
    }

    pub fn put(&mut self, path: &Path, identity: FileIdentity, outcome: LoadOutcome) {
        let sha256 = std::fs::File::open(path)
            .and_then(|mut file| super::trust::sha256_of(&mut file))
            .unwrap_or_default();
        self.put_hashed(path, identity, sha256, outcome);
    }

    /// Stores an outcome whose file's sha256 is already known.
    pub fn put_hashed(&mut self, path: &Path, identity: FileIdentity, sha256: String, outcome: LoadOutcome) {
        self.stored.entries.insert(path.to_owned(), Entry { identity, sha256, outcome });
        self.changed = true;
    }

    /// Writes the cache back (atomically) if a scan added to it. Not fatal: the next command
    /// scans again.
    pub fn save(&mut self) {
        let Some(path) = self.path.as_deref().filter(|_| self.changed) else { return };
        // Entries of files that are gone are dropped.
        self.stored.entries.retain(|file, _| file.exists());
        let written = (|| -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let temporary = path.with_extension(format!("tmp.{}", std::process::id()));
            std::fs::write(&temporary, serde_json::to_vec(&self.stored)?)?;
            std::fs::rename(&temporary, path)
        })();
        if let Err(error) = written {
            tracing::debug!("cannot write the plugin scan cache `{}`: {error}", path.display());
        }
        self.changed = false;
    }
}
