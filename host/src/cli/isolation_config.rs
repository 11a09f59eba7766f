//! Where a model's plugin code runs, and for how long a batch may take: `--isolation` and
//! `--batch-timeout`, else the karma-host configuration file, else in process with 600 s.
//!
//! The file (`$KARMA_CONFIG`, default `$XDG_CONFIG_HOME/karma-host/config.toml` or
//! `~/.config/karma-host/config.toml`) holds defaults and per-plugin entries keyed by the
//! plugin's file name:
//!
//! ```toml
//! isolation = "in-process"
//! batch_timeout_secs = 600
//!
//! [plugins."libthird_party_model.so"]
//! isolation = "worker"
//! batch_timeout_secs = 120
//! ```

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use anyhow::Context;

use super::diagnostics::Hinted;
use crate::{
    env_vars,
    plugins::{Isolation, RegisteredModel},
};

/// The built-in batch timeout.
const DEFAULT_BATCH_TIMEOUT_SECS: u64 = 600;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    isolation: Option<Isolation>,
    batch_timeout_secs: Option<u64>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(flatten)]
    defaults: Settings,
    #[serde(default)]
    plugins: BTreeMap<String, Settings>,
}

/// The settings in force for one run.
pub(super) struct Resolved {
    pub isolation: Isolation,
    pub batch_timeout: Duration,
}

/// The configuration file's path, and whether the user named it (then it must exist).
fn config_path() -> Option<(PathBuf, bool)> {
    if let Some(path) = std::env::var_os(env_vars::KARMA_CONFIG).filter(|path| !path.is_empty()) {
        return Some((PathBuf::from(path), true));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some((base.join("karma-host").join("config.toml"), false))
}

fn read_config() -> anyhow::Result<ConfigFile> {
    let Some((path, named)) = config_path() else { return Ok(ConfigFile::default()) };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !named => {
            return Ok(ConfigFile::default())
        }
        Err(error) => {
            return Err(error).with_context(|| {
                format!(
                    "cannot read the karma-host configuration `{}` (named by {})",
                    path.display(),
                    env_vars::KARMA_CONFIG
                )
            })
        }
    };
    toml::from_str(&text).map_err(|error| {
        Hinted {
            message: format!("the karma-host configuration `{}` is not valid: {error}", path.display()),
            hint:
                "it takes `isolation = \"in-process\" | \"worker\"`, `batch_timeout_secs = N`, and the same \
                   keys under `[plugins.\"FILE.so\"]`"
                    .to_owned(),
        }
        .into()
    })
}

/// The flags win, then the plugin's entry in the configuration file, then its defaults.
pub(super) fn resolve(
    model: &RegisteredModel,
    isolation: Option<Isolation>,
    batch_timeout_secs: Option<u64>,
) -> anyhow::Result<Resolved> {
    let config = read_config()?;
    let file_name = model.plugin_path.file_name().map(|name| name.to_string_lossy().into_owned());
    let entry = file_name.as_ref().and_then(|name| config.plugins.get(name));
    let isolation = isolation
        .or(entry.and_then(|entry| entry.isolation))
        .or(config.defaults.isolation)
        .unwrap_or(Isolation::InProcess);
    let seconds = batch_timeout_secs
        .or(entry.and_then(|entry| entry.batch_timeout_secs))
        .or(config.defaults.batch_timeout_secs)
        .unwrap_or(DEFAULT_BATCH_TIMEOUT_SECS);
    anyhow::ensure!(
        seconds > 0,
        Hinted {
            message: "the batch timeout must be at least 1 second".to_owned(),
            hint: "pass --batch-timeout SECONDS (default 600)".to_owned(),
        }
    );
    Ok(Resolved { isolation, batch_timeout: Duration::from_secs(seconds) })
}
