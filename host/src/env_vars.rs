//! Every environment variable karma-host reads, in one place.

/// Colon-separated plugin directories, used when no `--plugins-dir` is given.
pub const KARMA_PLUGINS_DIR: &str = "KARMA_PLUGINS_DIR";

/// `tracing` filter directives (e.g. `karma_host=debug,my_plugin=trace`); overrides `-v`/`-q`.
pub const RUST_LOG: &str = "RUST_LOG";

/// Disables coloured log output when set.
pub const NO_COLOR: &str = "NO_COLOR";
