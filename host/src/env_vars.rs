//! Every environment variable karma-host reads, in one place.

/// Colon-separated plugin directories, used when no `--plugins-dir` is given.
pub const KARMA_PLUGINS_DIR: &str = "KARMA_PLUGINS_DIR";

/// `tracing` filter directives (e.g. `karma_host=debug,my_plugin=trace`); overrides `-v`/`-q`.
pub const RUST_LOG: &str = "RUST_LOG";

/// Disables coloured log output when set.
pub const NO_COLOR: &str = "NO_COLOR";

/// SQLite cache of model outputs; `--cache-path` overrides it.
pub const KARMA_CACHE_PATH: &str = "KARMA_CACHE_PATH";

/// Hugging Face home; the hub cache is `$HF_HOME/hub` unless `HF_HUB_CACHE` is set.
pub const HF_HOME: &str = "HF_HOME";

/// The hub cache directory itself.
pub const HF_HUB_CACHE: &str = "HF_HUB_CACHE";

/// `1` forbids network access to the hub (as `--offline` does).
pub const HF_HUB_OFFLINE: &str = "HF_HUB_OFFLINE";

/// The hub's base URL (tests point it at a local server).
pub const HF_ENDPOINT: &str = "HF_ENDPOINT";

/// Token for gated or private datasets.
pub const HF_TOKEN: &str = "HF_TOKEN";

/// Seconds before a hub request that gets no answer is abandoned (default 30; body reads get ten
/// times as long).
pub const KARMA_HUB_TIMEOUT_SECS: &str = "KARMA_HUB_TIMEOUT_SECS";
