//! Who could have put a plugin file there: loading it runs its code as the caller, so a file
//! (or a directory holding it) that other users can write, or that another user owns, is
//! refused unless `--allow-insecure-plugins`. Group-writable only warns. Sticky directories
//! (such as /tmp) are not "writable by others" in this sense: others cannot replace our files.

use std::{fs, os::unix::fs::MetadataExt, path::Path};

use super::rejection::{RejectCode, Rejection};

const WORLD_WRITABLE: u32 = 0o002;
const GROUP_WRITABLE: u32 = 0o020;
const STICKY: u32 = 0o1000;

/// Checks the file at `path` (a regular file: symlinks were refused before) and its directory.
/// Returns the warnings to log when it passes.
pub fn check(path: &Path, allow_insecure: bool) -> Result<Vec<String>, Rejection> {
    let refuse = |reason: String| {
        Rejection::new(path, RejectCode::InsecurePermissions, reason).hint(
            "fix the owner or mode (`chmod o-w`, `chown`), or pass --allow-insecure-plugins if you trust everyone who can write there",
        )
    };
    let mut warnings = Vec::new();
    // SAFETY: geteuid has no preconditions.
    let caller = unsafe { libc::geteuid() };
    let directory = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    for (what, target) in [("the file", path), ("its directory", directory)] {
        let Ok(metadata) = fs::metadata(target) else { continue };
        let mode = metadata.mode();
        let is_directory = metadata.is_dir();
        let problem = if mode & WORLD_WRITABLE != 0 && !(is_directory && mode & STICKY != 0) {
            Some(format!(
                "{what} `{}` is writable by every user (mode {:o})",
                target.display(),
                mode & 0o7777
            ))
        } else if metadata.uid() != caller && metadata.uid() != 0 {
            Some(format!(
                "{what} `{}` is owned by user {}, not by you ({caller}) or root",
                target.display(),
                metadata.uid()
            ))
        } else {
            None
        };
        match problem {
            Some(problem) if !allow_insecure => return Err(refuse(problem)),
            Some(problem) => warnings.push(format!("{problem}; loaded anyway (--allow-insecure-plugins)")),
            None if mode & GROUP_WRITABLE != 0 && !(is_directory && mode & STICKY != 0) => {
                warnings.push(format!(
                    "{what} `{}` is group-writable (mode {:o})",
                    target.display(),
                    mode & 0o7777
                ));
            }
            None => {}
        }
    }
    Ok(warnings)
}
