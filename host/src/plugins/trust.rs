//! Plugins pinned by sha256 in a trust file (`plugins.lock`): `karma-host plugins trust PATH`
//! adds one, `plugins verify` checks them all, and `--require-trusted` loads nothing else.
//!
//! The file that was hashed is the file that is loaded: it is opened once, the open
//! descriptor is hashed, and the library is loaded through `/proc/self/fd/N`, so swapping the
//! file after the check changes nothing.
//!
//! Location: `$KARMA_PLUGINS_LOCK`, default `$XDG_CONFIG_HOME/karma-host/plugins.lock`
//! (`~/.config/karma-host/plugins.lock`). Format (TOML):
//!
//! ```toml
//! [plugins]
//! "/opt/models/libthird_party.so" = "<sha256 hex>"
//! ```

use std::{
    collections::BTreeMap,
    fs::File,
    io::{Read, Seek},
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use sha2::Digest;

use super::rejection::{RejectCode, Rejection};

#[derive(Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    #[serde(default)]
    plugins: BTreeMap<PathBuf, String>,
}

/// The trust file's pins, by real path.
pub struct TrustFile {
    pub path: PathBuf,
    pins: BTreeMap<PathBuf, String>,
}

/// Set by `--require-trusted`: every plugin load in this process checks against it.
static REQUIRED: OnceLock<TrustFile> = OnceLock::new();

/// Loads only pinned plugins from here on (in this process and the workers it starts).
pub fn require(trust: TrustFile) {
    let _ = REQUIRED.set(trust);
}

/// Whether `--require-trusted` is in force.
pub fn is_required() -> bool {
    REQUIRED.get().is_some()
}

/// The pin a load must match, when trust is required: `Some(Err)` for a file not pinned.
pub(crate) fn required_pin(path: &Path) -> Option<Result<String, Rejection>> {
    let trust = REQUIRED.get()?;
    let real = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    Some(trust.pins.get(&real).cloned().ok_or_else(|| {
        Rejection::new(path, RejectCode::Untrusted, format!("it is not pinned in `{}`", trust.path.display()))
            .hint(format!("`karma-host plugins trust {}` pins it, if you trust it", path.display()))
    }))
}

fn default_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(crate::env_vars::KARMA_PLUGINS_LOCK).filter(|path| !path.is_empty())
    {
        return Some(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("karma-host").join("plugins.lock"))
}

impl TrustFile {
    /// Reads the trust file (absent: no pins).
    pub fn open() -> anyhow::Result<Self> {
        let path = default_path()
            .ok_or_else(|| anyhow::anyhow!("no place for the trust file: set KARMA_PLUGINS_LOCK or HOME"))?;
        let pins = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let stored: Stored = toml::from_str(&text).map_err(|error| {
                    anyhow::anyhow!("the trust file `{}` is not valid: {error}", path.display())
                })?;
                stored.plugins
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(error) => anyhow::bail!("cannot read the trust file `{}`: {error}", path.display()),
        };
        Ok(TrustFile { path, pins })
    }

    pub fn pins(&self) -> &BTreeMap<PathBuf, String> {
        &self.pins
    }

    /// Pins `file` at its current sha256; returns its real path and the hash.
    pub fn pin(&mut self, file: &Path) -> anyhow::Result<(PathBuf, String)> {
        let real = file
            .canonicalize()
            .map_err(|error| anyhow::anyhow!("cannot find `{}`: {error}", file.display()))?;
        anyhow::ensure!(real.is_file(), "`{}` is not a file", file.display());
        let mut opened = File::open(&real)?;
        let hash = sha256_of(&mut opened)?;
        self.pins.insert(real.clone(), hash.clone());
        Ok((real, hash))
    }

    /// Writes the pins back (through a temporary file and a rename).
    pub fn save(&self) -> anyhow::Result<()> {
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let text = format!(
            "# Plugins pinned by sha256 (`karma-host plugins trust PATH`); `--require-trusted` loads only these.\n{}",
            toml::to_string(&Stored { plugins: self.pins.clone() })?
        );
        let temporary = self.path.with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&temporary, text)?;
        std::fs::rename(&temporary, &self.path).map_err(|error| {
            anyhow::anyhow!("cannot write the trust file `{}`: {error}", self.path.display())
        })
    }
}

/// The sha256 (hex) of what `file` holds, read from its start.
pub fn sha256_of(file: &mut File) -> std::io::Result<String> {
    file.rewind()?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect())
}

/// `path` opened once and checked against `expected`: the open file (to load through
/// [`fd_path`]) when the hash matches.
pub(crate) fn open_pinned(path: &Path, expected: &str) -> Result<File, Rejection> {
    let mut file = File::open(path)
        .map_err(|error| Rejection::new(path, RejectCode::Unreadable, format!("unreadable: {error}")))?;
    let actual = sha256_of(&mut file)
        .map_err(|error| Rejection::new(path, RejectCode::Unreadable, format!("unreadable: {error}")))?;
    if actual != expected {
        return Err(Rejection::new(
            path,
            RejectCode::Untrusted,
            format!("it changed since it was pinned: expected sha256 {expected}, found {actual}"),
        )
        .hint(format!(
            "if the new file is trusted, `karma-host plugins trust {}` pins it again",
            path.display()
        )));
    }
    Ok(file)
}

/// The `/proc/self/fd/N` path that opens exactly `file`.
pub(crate) fn fd_path(file: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}
