//! The command line, exactly as typed. No I/O here; doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Evaluation host for medical AI model plugins.
#[derive(Parser, Debug)]
#[command(name = "karma-host", about, long_about = None)]
pub struct Cli {
    /// Directory to scan for plugins (repeatable). Default: $KARMA_PLUGINS_DIR, else `plugins/`
    /// beside the executable and the executable's own directory.
    #[arg(long = "plugins-dir", value_name = "DIR", global = true)]
    pub plugins_dirs: Vec<PathBuf>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List registered models or scanned plugin files.
    #[command(subcommand)]
    List(ListCommand),
    /// Show everything known about one model.
    #[command(subcommand)]
    Info(InfoCommand),
    /// Run one batch of items through a model and print its outputs (JSON lines).
    Run(RunArgs),
}

#[derive(Subcommand, Debug)]
pub enum ListCommand {
    /// Models provided by the loaded plugins.
    Models {
        #[arg(long, value_enum, default_value_t = ModelsFormat::Table)]
        format: ModelsFormat,
    },
    /// Every plugin file scanned, loaded or rejected, with the reason.
    Plugins {
        #[arg(long, value_enum, default_value_t = TableOrJson::Table)]
        format: TableOrJson,
    },
}

#[derive(Subcommand, Debug)]
pub enum InfoCommand {
    /// All metadata of a model, its default configuration and the plugin it comes from.
    Model {
        /// Registry name, e.g. `karma/constant`.
        name: String,
        #[arg(long, value_enum, default_value_t = TableOrJson::Table)]
        format: TableOrJson,
    },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Registry name of the model.
    #[arg(long)]
    pub model: String,
    /// Local path or hub id overriding the model's default weights (passed as `model_path`).
    #[arg(long, value_name = "PATH")]
    pub model_path: Option<String>,
    /// Model configuration overrides as a JSON object, merged over the model's defaults.
    #[arg(long, value_name = "JSON")]
    pub model_args: Option<String>,
    /// JSONL file of items: `input`, `system_prompt`, `conversation`, `options`, `other_args`,
    /// `expected_output`, `images` (file paths), `audio` (file path), `rubric`, optional `id`.
    #[arg(long, value_name = "FILE", required_unless_present = "input")]
    pub items: Option<PathBuf>,
    /// A text item (repeatable); an alternative to --items.
    #[arg(long, value_name = "TEXT", conflicts_with = "items")]
    pub input: Vec<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelsFormat {
    Table,
    Json,
    Csv,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableOrJson {
    Table,
    Json,
}
