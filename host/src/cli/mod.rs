//! The command line: parse, set up logging, scan plugins, dispatch to one function per
//! subcommand. The only module that prints.

mod args;
mod cache_command;
mod catalog_info;
mod crash_marker;
mod diagnostics;
mod dry_run;
mod eval;
mod eval_plan;
mod info;
mod isolation_config;
mod judge;
mod list;
mod model_config;
mod output;
mod output_guard;
mod processor_plan;
mod progress;
mod run;
mod score;
mod signals;
mod trust_command;

use std::{io::Write, process::ExitCode};

use clap::{CommandFactory, FromArgMatches};
use karma_plugin_api::abi::{ABI_MAJOR, ABI_MINOR};
use tracing_subscriber::EnvFilter;

pub use args::Cli;
use args::{Command, InfoCommand, ListCommand};
pub use diagnostics::ExitStatus;

use crate::{env_vars, plugins};

/// Runs the program: parses `std::env::args`, executes, and returns the exit code.
pub fn main() -> ExitCode {
    let version: &'static str = Box::leak(
        format!("{} (plugin ABI {ABI_MAJOR}.{ABI_MINOR})", env!("CARGO_PKG_VERSION")).into_boxed_str(),
    );
    let matches = Cli::command().version(version).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    init_logging(cli.verbose, cli.quiet);
    let worker_logs = if cli.quiet { plugins::worker::QUIET } else { cli.verbose };
    plugins::worker::WORKER_VERBOSITY.store(worker_logs, std::sync::atomic::Ordering::Relaxed);
    match run(cli) {
        Ok(status) => status.into(),
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = std::io::stderr()
                .write_all(crate::report::redact_text(&diagnostics::render(&error)).as_bytes());
            ExitStatus::Error.into()
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    if cli.require_trusted {
        plugins::trust::require(plugins::trust::TrustFile::open()?);
    }
    // Commands that need no plugins do not scan for them.
    match &cli.command {
        Command::List(ListCommand::Datasets { format, task, metric }) => {
            return catalog_info::list_datasets(*format, task.as_deref(), metric.as_deref())
        }
        Command::List(ListCommand::Metrics { format }) => return catalog_info::list_metrics(*format),
        Command::List(ListCommand::Processors { format }) => return catalog_info::list_processors(*format),
        Command::Info(InfoCommand::Dataset { name, format }) => {
            return catalog_info::info_dataset(name, *format)
        }
        Command::Info(InfoCommand::Metric { name, format }) => {
            return catalog_info::info_metric(name, *format)
        }
        Command::Cache(command) => return cache_command::cache(command),
        Command::Score(arguments) => return score::score(arguments),
        Command::Worker => return plugins::worker::serve::serve().map(|()| ExitStatus::Success),
        Command::ScanPlugin { path, open_as } => {
            return plugins::scan_child::serve(path, open_as.as_deref()).map(|()| ExitStatus::Success)
        }
        Command::Plugins(command) => return trust_command::plugins(command),
        _ => {}
    }
    let directories = plugins::search_path::from_environment(&cli.plugins_dirs);
    let registry = plugins::scan_isolated(&directories, scan_timeout(), cli.allow_insecure_plugins);
    // A directory the user named is an error below, said once; a default one is a warning.
    for problem in registry.directory_problems.iter().filter(|problem| !problem.explicit) {
        tracing::warn!("cannot read plugin directory `{}`: {}", problem.path.display(), problem.reason);
    }
    if let Some(problem) = registry.directory_problems.iter().find(|problem| problem.explicit) {
        return Err(diagnostics::Hinted {
            message: format!("cannot read plugin directory `{}`: {}", problem.path.display(), problem.reason),
            hint: "check the `--plugins-dir` / KARMA_PLUGINS_DIR path".to_owned(),
        }
        .into());
    }
    for (name, paths) in registry.duplicates() {
        let paths: Vec<String> = paths.iter().map(|path| format!("`{}`", path.display())).collect();
        tracing::warn!(
            "model `{name}` is provided by several plugins ({}); it cannot be used until one is removed",
            paths.join(", ")
        );
    }
    let rejected = registry
        .plugins
        .iter()
        .filter(|record| matches!(record.status, plugins::PluginStatus::Rejected(_)))
        .count();
    if rejected > 0 && !matches!(cli.command, Command::List(ListCommand::Plugins { .. })) {
        tracing::warn!("{rejected} plugin file(s) rejected; `karma-host list plugins` says why");
    }
    match cli.command {
        Command::List(ListCommand::Models { format }) => list::models(&registry, format),
        Command::List(ListCommand::Plugins { format }) => list::plugins(&registry, format, cli.verbose > 0),
        Command::Info(InfoCommand::Model { name, format }) => info::model(&registry, &name, format),
        Command::Eval(arguments) => eval::eval(&registry, &arguments),
        Command::Run(arguments) => run::run(&registry, &arguments),
        Command::List(
            ListCommand::Datasets { .. } | ListCommand::Metrics { .. } | ListCommand::Processors { .. },
        )
        | Command::Info(InfoCommand::Dataset { .. } | InfoCommand::Metric { .. })
        | Command::Cache(_)
        | Command::Score(_)
        | Command::Worker
        | Command::ScanPlugin { .. }
        | Command::Plugins(_) => unreachable!("handled before the plugin scan"),
    }
}

/// `KARMA_SCAN_TIMEOUT_SECS` (default 5): how long loading one plugin may take at scan time.
fn scan_timeout() -> std::time::Duration {
    const DEFAULT: f64 = 5.0;
    let seconds = match std::env::var(env_vars::KARMA_SCAN_TIMEOUT_SECS) {
        Err(_) => DEFAULT,
        Ok(value) => match value.trim().parse::<f64>() {
            Ok(seconds) if seconds.is_finite() && seconds > 0.0 => seconds.min(3600.0),
            _ => {
                tracing::warn!(
                    "{} must be a number of seconds above 0, not `{value}`; using {DEFAULT}",
                    env_vars::KARMA_SCAN_TIMEOUT_SECS
                );
                DEFAULT
            }
        },
    };
    std::time::Duration::from_secs_f64(seconds)
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = std::env::var(env_vars::RUST_LOG)
        .ok()
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let color = std::env::var_os(env_vars::NO_COLOR).is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| RedactingStderr)
        .with_ansi(color)
        .without_time()
        .try_init();
}

/// Log output with credentials masked (plugins' forwarded events included). The formatter writes
/// each event in one call, so a credential is never split across two writes.
struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buffer);
        std::io::stderr().write_all(crate::report::redact_text(&text).as_bytes())?;
        Ok(buffer.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Resolves a model name, turning lookup failures into errors with suggestions.
fn find_model<'a>(
    registry: &'a plugins::Registry,
    name: &str,
) -> anyhow::Result<&'a plugins::RegisteredModel> {
    registry.model(name).map_err(|error| {
        let hint = match &error {
            plugins::LookupError::Unknown { suggestions, .. } if !suggestions.is_empty() => {
                format!("did you mean: {}?", suggestions.join(", "))
            }
            plugins::LookupError::Unknown { .. } => {
                "`karma-host list models` shows the registered models; `karma-host list plugins` shows rejected plugin files".to_owned()
            }
            plugins::LookupError::Ambiguous { .. } => "remove one of the plugin files, or point --plugins-dir at one of them".to_owned(),
        };
        diagnostics::Hinted { message: error.to_string(), hint }.into()
    })
}
