//! Cache failures, each naming the file, saying what is wrong in words (not SQLite's codes) and
//! what to do about it.

use std::path::{Path, PathBuf};

/// A cache failure.
#[derive(Debug)]
pub struct CacheError {
    pub path: PathBuf,
    pub problem: CacheProblem,
}

#[derive(Debug)]
pub enum CacheProblem {
    Sqlite(rusqlite::Error),
    /// The cache's folder could not be created.
    Folder(std::io::Error),
    /// A schema version number above the one this build writes.
    NewerSchema(String),
    /// A schema version that is not a number at all.
    UnknownSchema(String),
}

impl CacheError {
    pub(super) fn sqlite(path: &Path, source: rusqlite::Error) -> Self {
        CacheError { path: path.to_owned(), problem: CacheProblem::Sqlite(source) }
    }

    fn code(&self) -> Option<rusqlite::ErrorCode> {
        match &self.problem {
            CacheProblem::Sqlite(error) => error.sqlite_error_code(),
            _ => None,
        }
    }

    /// What to do about it, for the `hint:` line.
    pub fn hint(&self) -> Option<String> {
        use rusqlite::ErrorCode::*;
        let elsewhere =
            "choose a writable location with --cache-path or KARMA_CACHE_PATH, or run with --no-cache";
        Some(match (&self.problem, self.code()) {
            (CacheProblem::Folder(_), _) | (_, Some(CannotOpen | ReadOnly | PermissionDenied)) => {
                if self.path.is_dir() {
                    "give a file path, e.g. --cache-path DIR/cache.sqlite".to_owned()
                } else {
                    elsewhere.to_owned()
                }
            }
            (_, Some(DatabaseBusy | DatabaseLocked)) => format!(
                "wait for the other process to finish; if it is stopped (Ctrl-Z), resume it with `fg` or end it \
                 (`fuser -v {}` shows it); or use another --cache-path",
                self.path.display()
            ),
            (_, Some(NotADatabase | DatabaseCorrupt)) | (CacheProblem::UnknownSchema(_), _) => {
                "delete the file (`karma-host cache clear` cannot read it either) or use another --cache-path"
                    .to_owned()
            }
            (CacheProblem::NewerSchema(_), _) => {
                "upgrade karma-host, or use another --cache-path for this version".to_owned()
            }
            (_, Some(DiskFull)) => "free some disk space, or move the cache with --cache-path".to_owned(),
            _ => return None,
        })
    }
}

impl std::fmt::Display for CacheError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use rusqlite::ErrorCode::*;
        let path = self.path.display();
        let folder =
            self.path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
        match (&self.problem, self.code()) {
            (CacheProblem::Folder(error), _) => {
                write!(formatter, "cache `{path}`: cannot create its folder `{}`: {error}", folder.display())
            }
            (CacheProblem::NewerSchema(version), _) => write!(
                formatter,
                "cache `{path}` has schema version {version}, newer than this karma-host knows ({})",
                super::SCHEMA_VERSION
            ),
            (CacheProblem::UnknownSchema(version), _) => write!(
                formatter,
                "cache `{path}` has schema version `{version}`, which no karma-host writes: the file is damaged or \
                 not a karma-host cache"
            ),
            (_, Some(CannotOpen)) if self.path.is_dir() => {
                write!(formatter, "cache `{path}` is a directory, not a cache file")
            }
            (_, Some(CannotOpen | ReadOnly | PermissionDenied)) => write!(
                formatter,
                "cache `{path}` cannot be opened for writing: the file or its folder `{}` is read-only or not \
                 accessible",
                folder.display()
            ),
            (_, Some(DatabaseBusy | DatabaseLocked)) => write!(
                formatter,
                "cache `{path}` is locked by another process (another evaluation writing to it, or one that is \
                 stopped or hung); gave up after waiting {} s",
                super::busy_timeout().as_secs()
            ),
            (_, Some(NotADatabase)) => write!(formatter, "cache `{path}` is not a SQLite database"),
            (_, Some(DiskFull)) => write!(formatter, "cache `{path}`: the disk is full"),
            (CacheProblem::Sqlite(error), _) => write!(formatter, "cache `{path}`: {error}"),
        }
    }
}

/// No source: the message already says, in words, what SQLite's error code meant.
impl std::error::Error for CacheError {}
