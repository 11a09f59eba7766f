//! Every environment variable karma-host reads, in one place.

/// Colon-separated plugin directories, used when no `--plugins-dir` is given.
pub const KARMA_PLUGINS_DIR: &str = "KARMA_PLUGINS_DIR";

/// `tracing` filter directives (e.g. `karma_host=debug,my_plugin=trace`); overrides `-v`/`-q`.
pub const RUST_LOG: &str = "RUST_LOG";

/// Disables coloured log output when set.
pub const NO_COLOR: &str = "NO_COLOR";

/// SQLite cache of model outputs; `--cache-path` overrides it.
pub const KARMA_CACHE_PATH: &str = "KARMA_CACHE_PATH";

/// Seconds to wait for another process holding the cache file before giving up (default 60).
pub const KARMA_CACHE_BUSY_TIMEOUT_SECS: &str = "KARMA_CACHE_BUSY_TIMEOUT_SECS";

// The Hugging Face variables are read by the shared hub client: `HF_HOME`, `HF_HUB_CACHE`,
// `HF_HUB_OFFLINE` (as `--offline`), `HF_ENDPOINT`, `HF_TOKEN`, `HF_TOKEN_PATH` and
// `KARMA_HUB_TIMEOUT_SECS`.
pub use karma_hub::{
    HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE, HF_TOKEN, HF_TOKEN_PATH, KARMA_HUB_TIMEOUT_SECS,
};

/// A worker process's address-space limit in MiB (`--isolation worker`; unset: no limit).
pub const WORKER_MEMORY_LIMIT_MIB: &str = "KARMA_WORKER_MEMORY_LIMIT_MIB";

/// The karma-host configuration file (default `$XDG_CONFIG_HOME/karma-host/config.toml`, or
/// `~/.config/karma-host/config.toml`): per-plugin isolation settings.
pub const KARMA_CONFIG: &str = "KARMA_CONFIG";

/// Seconds a scanning child may take to load one plugin before it is killed (default 5).
pub const KARMA_SCAN_TIMEOUT_SECS: &str = "KARMA_SCAN_TIMEOUT_SECS";

/// The plugin scan cache (default `~/.cache/karma/plugin-scan.json`).
pub const KARMA_SCAN_CACHE: &str = "KARMA_SCAN_CACHE";

/// The trust file pinning plugins by sha256 (default
/// `$XDG_CONFIG_HOME/karma-host/plugins.lock`, or `~/.config/karma-host/plugins.lock`).
pub const KARMA_PLUGINS_LOCK: &str = "KARMA_PLUGINS_LOCK";
