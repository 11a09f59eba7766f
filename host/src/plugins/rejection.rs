//! Why a plugin file was not loaded, in words a person can act on.

use std::{fmt, path::PathBuf};

/// A stable, machine-readable reason code (part of `list plugins --format json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectCode {
    Directory,
    Symlink,
    DanglingSymlink,
    NotRegularFile,
    Unreadable,
    EmptyFile,
    NotElf,
    TruncatedElf,
    WrongClass,
    WrongEndianness,
    WrongArchitecture,
    NotSharedLibrary,
    Executable,
    NotAPlugin,
    MissingLibrary,
    UnresolvedSymbol,
    OpenFailed,
    BadRootPointer,
    AbiStableMismatch,
    AbiMajorMismatch,
    LayoutMismatch,
    InitFailed,
    BadMetadata,
    /// Scanning in a child process: the plugin's load-time code killed it with a signal.
    LoadCrashed,
    /// ... or made it exit (`exit(0)` in a constructor).
    LoadExited,
    /// ... or did not finish within the scan timeout.
    LoadTimeout,
    /// Writable by other users, or owned by another user (`--allow-insecure-plugins`).
    InsecurePermissions,
    /// `--require-trusted`: not pinned in the trust file, or changed since.
    Untrusted,
}

impl RejectCode {
    /// The snake_case name written in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::Directory => "directory",
            RejectCode::Symlink => "symlink",
            RejectCode::DanglingSymlink => "dangling_symlink",
            RejectCode::NotRegularFile => "not_regular_file",
            RejectCode::Unreadable => "unreadable",
            RejectCode::EmptyFile => "empty_file",
            RejectCode::NotElf => "not_elf",
            RejectCode::TruncatedElf => "truncated_elf",
            RejectCode::WrongClass => "wrong_class",
            RejectCode::WrongEndianness => "wrong_endianness",
            RejectCode::WrongArchitecture => "wrong_architecture",
            RejectCode::NotSharedLibrary => "not_shared_library",
            RejectCode::Executable => "executable",
            RejectCode::NotAPlugin => "not_a_plugin",
            RejectCode::MissingLibrary => "missing_library",
            RejectCode::UnresolvedSymbol => "unresolved_symbol",
            RejectCode::OpenFailed => "open_failed",
            RejectCode::BadRootPointer => "bad_root_pointer",
            RejectCode::AbiStableMismatch => "abi_stable_mismatch",
            RejectCode::AbiMajorMismatch => "abi_major_mismatch",
            RejectCode::LayoutMismatch => "layout_mismatch",
            RejectCode::InitFailed => "init_failed",
            RejectCode::BadMetadata => "bad_metadata",
            RejectCode::LoadCrashed => "load_crashed",
            RejectCode::LoadExited => "load_exited",
            RejectCode::LoadTimeout => "load_timeout",
            RejectCode::InsecurePermissions => "insecure_permissions",
            RejectCode::Untrusted => "untrusted",
        }
    }

    /// Every code, for reading one back from its name.
    const ALL: [RejectCode; 28] = [
        RejectCode::Directory,
        RejectCode::Symlink,
        RejectCode::DanglingSymlink,
        RejectCode::NotRegularFile,
        RejectCode::Unreadable,
        RejectCode::EmptyFile,
        RejectCode::NotElf,
        RejectCode::TruncatedElf,
        RejectCode::WrongClass,
        RejectCode::WrongEndianness,
        RejectCode::WrongArchitecture,
        RejectCode::NotSharedLibrary,
        RejectCode::Executable,
        RejectCode::NotAPlugin,
        RejectCode::MissingLibrary,
        RejectCode::UnresolvedSymbol,
        RejectCode::OpenFailed,
        RejectCode::BadRootPointer,
        RejectCode::AbiStableMismatch,
        RejectCode::AbiMajorMismatch,
        RejectCode::LayoutMismatch,
        RejectCode::InitFailed,
        RejectCode::BadMetadata,
        RejectCode::LoadCrashed,
        RejectCode::LoadExited,
        RejectCode::LoadTimeout,
        RejectCode::InsecurePermissions,
        RejectCode::Untrusted,
    ];

    /// The code named `name` (as written by [`as_str`](Self::as_str)).
    pub fn from_name(name: &str) -> Option<RejectCode> {
        RejectCode::ALL.into_iter().find(|code| code.as_str() == name)
    }
}

/// A file found in a plugin directory that could not be registered.
#[derive(Clone, Debug)]
pub struct Rejection {
    /// The path as found while scanning.
    pub path: PathBuf,
    /// Stable reason code.
    pub code: RejectCode,
    /// One lowercase clause saying what is wrong.
    pub reason: String,
    /// What to do about it, when we know.
    pub hint: Option<String>,
    /// Long diagnostic text (e.g. abi_stable's layout dump), shown with `--verbose`.
    pub detail: Option<String>,
}

impl Rejection {
    pub(crate) fn new(path: impl Into<PathBuf>, code: RejectCode, reason: impl Into<String>) -> Self {
        Rejection { path: path.into(), code, reason: reason.into(), hint: None, detail: None }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.path.display(), self.reason)
    }
}
