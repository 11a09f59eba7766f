//! Where plugins are looked for.

use std::path::{Path, PathBuf};

use crate::env_vars;

/// A directory to scan and whether the user named it (a missing named directory is an error; a
/// missing default one is skipped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginDir {
    pub path: PathBuf,
    pub explicit: bool,
}

/// The directories to scan, in order: every `--plugins-dir`; else `KARMA_PLUGINS_DIR`
/// (colon-separated); else `plugins/` beside the executable and the executable's own directory,
/// so a fresh `cargo build` finds the workspace's plugins in `target/<profile>/`.
pub fn resolve(flags: &[PathBuf], env_value: Option<&str>, executable: Option<&Path>) -> Vec<PluginDir> {
    if !flags.is_empty() {
        return flags.iter().map(|path| PluginDir { path: path.clone(), explicit: true }).collect();
    }
    if let Some(value) = env_value.filter(|value| !value.trim().is_empty()) {
        return value
            .split(':')
            .filter(|entry| !entry.is_empty())
            .map(|entry| PluginDir { path: PathBuf::from(entry), explicit: true })
            .collect();
    }
    let Some(directory) = executable.and_then(Path::parent) else { return Vec::new() };
    vec![
        PluginDir { path: directory.join("plugins"), explicit: false },
        PluginDir { path: directory.to_owned(), explicit: false },
    ]
}

/// [`resolve`] with the real environment and executable.
pub fn from_environment(flags: &[PathBuf]) -> Vec<PluginDir> {
    let env_value = std::env::var(env_vars::KARMA_PLUGINS_DIR).ok();
    let executable = std::env::current_exe().ok().map(|path| path.canonicalize().unwrap_or(path));
    resolve(flags, env_value.as_deref(), executable.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_env_and_defaults() {
        let dirs = resolve(&[PathBuf::from("/a")], Some("/b"), Some(Path::new("/bin/karma-host")));
        assert_eq!(dirs, vec![PluginDir { path: "/a".into(), explicit: true }]);
    }

    #[test]
    fn env_is_colon_separated() {
        let dirs = resolve(&[], Some("/b::/c"), Some(Path::new("/bin/karma-host")));
        let paths: Vec<_> = dirs.iter().map(|dir| dir.path.clone()).collect();
        assert_eq!(paths, [PathBuf::from("/b"), PathBuf::from("/c")]);
    }

    #[test]
    fn defaults_are_beside_the_executable() {
        let dirs = resolve(&[], None, Some(Path::new("/opt/karma/karma-host")));
        assert_eq!(
            dirs,
            vec![
                PluginDir { path: "/opt/karma/plugins".into(), explicit: false },
                PluginDir { path: "/opt/karma".into(), explicit: false },
            ]
        );
    }
}
