//! The command line, exactly as typed. No I/O here; doc comments are the help text.

use std::path::PathBuf;

use crate::{engine::Scoring, plugins::Isolation};
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
    /// Load plugin files that other users can write (or whose directory they can), or that
    /// another user owns; refused by default, since loading runs their code as you.
    #[arg(long, global = true)]
    pub allow_insecure_plugins: bool,
    /// Load only plugins pinned in the trust file (`karma-host plugins trust`), each checked
    /// against its sha256 as it is loaded.
    #[arg(long, global = true)]
    pub require_trusted: bool,
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
    /// Evaluate a model on datasets: prompts, answer extraction, metrics, cache, results files.
    Eval(Box<EvalArgs>),
    /// Run one batch of items through a model and print its outputs (JSON lines).
    Run(RunArgs),
    /// Score predictions you already have (columns `prediction`, `reference` or `references`,
    /// optional `id`, `group`, `other_args`): the same metrics, intervals and results schema as
    /// `eval`, no model.
    Score(ScoreArgs),
    /// Inspect or clear the output cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Serves one plugin's model to the karma-host process that started it (`--isolation
    /// worker`); not for use by hand.
    #[command(hide = true)]
    Worker,
    /// Loads one plugin file and reports its models to the karma-host process scanning the
    /// plugin directories; not for use by hand.
    #[command(hide = true)]
    ScanPlugin {
        path: PathBuf,
        /// The descriptor path to load instead (a pinned file, already hashed).
        #[arg(long)]
        open_as: Option<PathBuf>,
    },
    /// Pin plugins by sha256 in the trust file, or check the pins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
}

#[derive(Subcommand, Debug)]
pub enum PluginsCommand {
    /// Pin plugin files at their current sha256 (`--require-trusted` loads only pinned files).
    Trust {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Check every pinned file against its sha256 (exit 1 if one changed or is missing).
    Verify,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Registry name of the model (`karma-host list models`).
    #[arg(long)]
    pub model: String,
    /// Comma-separated dataset names or aliases (`karma-host list datasets`), or paths of local
    /// files: MCQ (question, options, answer), open QA (question, answer), translation (source,
    /// target), VQA (image or images, question, answer), speech recognition (audio, text). An
    /// existing path containing a comma is one dataset.
    #[arg(long, required = true)]
    pub datasets: Vec<String>,
    /// Local path or hub id overriding the model's default weights (passed as `model_path`).
    #[arg(long, value_name = "PATH")]
    pub model_path: Option<String>,
    /// Model configuration as a JSON object; overrides --model-config and the model's defaults.
    #[arg(long, value_name = "JSON")]
    pub model_args: Option<String>,
    /// Model configuration file (TOML or JSON); overrides the model's defaults.
    #[arg(long, value_name = "FILE")]
    pub model_config: Option<PathBuf>,
    /// Dataset arguments: `ds:key=value,key2=value;ds2:key=value` (values cannot contain `,`/`;`).
    #[arg(long, value_name = "SPEC")]
    pub dataset_args: Option<String>,
    /// One dataset argument, `ds.key=value` (repeatable); the value may contain anything.
    #[arg(long = "dataset-arg", value_name = "DS.KEY=VALUE")]
    pub dataset_arg: Vec<String>,
    /// The task of local dataset files (KARMA's task_type names: `mcqa`, `open_ended_qa`,
    /// `translation`, `vqa`, `transcription`, `rubric_evaluation`) when their columns are ambiguous. Default: told from the first row.
    #[arg(long, value_name = "TASK")]
    pub task: Option<String>,
    /// Comma-separated metrics every dataset reports instead of its own list
    /// (`karma-host list metrics`).
    #[arg(long, value_name = "LIST")]
    pub metrics: Option<String>,
    /// Metric arguments: `metric:key=value;metric2:key=value`.
    #[arg(long, value_name = "SPEC")]
    pub metric_args: Option<String>,
    /// Comma-separated text processors applied to predictions and references before the
    /// metrics, replacing each dataset's own (`none`: no processors).
    #[arg(long, value_name = "LIST")]
    pub processors: Option<String>,
    /// Processor arguments: `ds.processor:key=value,key2=value;ds2.processor:key=value`
    /// (`processor:key=value` applies to every dataset).
    #[arg(long, value_name = "SPEC")]
    pub processor_args: Option<String>,
    /// Items per plugin call (1 to 4096). Default: the model's preferred batch size (API
    /// models run a batch's requests concurrently and want large ones), else 8.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_batch_size)]
    pub batch_size: Option<u32>,
    /// Evaluate only the first N rows of each dataset, in file order.
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = parse_max_samples)]
    pub max_samples: Option<u64>,
    /// Neither read nor write the cache.
    #[arg(long, conflicts_with = "refresh_cache")]
    pub no_cache: bool,
    /// Ignore cached outputs and overwrite them with fresh ones.
    #[arg(long)]
    pub refresh_cache: bool,
    /// The cache file (default: $KARMA_CACHE_PATH, else ~/.cache/karma/cache.sqlite).
    #[arg(long, value_name = "FILE")]
    pub cache_path: Option<PathBuf>,
    /// Results file.
    #[arg(long, value_name = "FILE", default_value = "results.json")]
    pub output: PathBuf,
    /// Per-sample JSONL file (prompt, raw output, prediction, expected, ...).
    #[arg(long, value_name = "FILE")]
    pub samples_output: Option<PathBuf>,
    /// Summary printed on stdout.
    #[arg(long, value_enum, default_value_t = TableOrJson::Table)]
    pub format: TableOrJson,
    /// Format of the results file.
    #[arg(long, value_enum, default_value_t = SaveFormat::Json)]
    pub save_format: SaveFormat,
    /// Validate everything and print the plan; load no model and call nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// No progress bars.
    #[arg(long)]
    pub no_progress: bool,
    /// Use only the local Hugging Face cache (also HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
    /// Seed for bootstrap intervals (recorded in the manifest), 0 to 2^64-1.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true, value_parser = parse_seed)]
    pub seed: u64,
    /// Stop a dataset at its first bad row (invalid JSON, a missing field) instead of recording
    /// the row as a failure and scoring the others.
    #[arg(long)]
    pub strict: bool,
    /// How MCQ items are answered: `generate` (the model writes an answer) or `loglikelihood`
    /// (each option scored as a continuation, lm-eval-harness style; needs model support).
    #[arg(long, value_enum, default_value_t = Scoring::Generate)]
    pub scoring: Scoring,
    /// The judge model for datasets whose answers a judge grades (HealthBench's rubrics):
    /// any registered model, with its own plugin instance, cache namespace and usage report.
    #[arg(long, value_name = "NAME")]
    pub judge: Option<String>,
    /// The judge's configuration, a JSON object merged over its defaults.
    #[arg(long, value_name = "JSON")]
    pub judge_args: Option<String>,
    /// Where the model's plugin code runs: `in-process`, or `worker` (a child process: a crash,
    /// exit or hang fails only the items that cause it, and the rest are scored). Default: the
    /// configuration file's setting for the plugin (see the README), else `in-process`.
    #[arg(long, value_enum)]
    pub isolation: Option<Isolation>,
    /// Seconds a worker may spend on one batch (or on loading) before it is killed and the
    /// batch retried (default: the configuration file's, else 600).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_timeout: Option<u64>,
}

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// The predictions file (.jsonl, .json, .csv or .parquet).
    pub file: PathBuf,
    /// Comma-separated metrics (`karma-host list metrics`).
    #[arg(long, value_name = "LIST")]
    pub metrics: String,
    /// Metric arguments: `metric:key=value;metric2:key=value`.
    #[arg(long, value_name = "SPEC")]
    pub metric_args: Option<String>,
    /// Comma-separated text processors applied to predictions and references before the metrics.
    #[arg(long, value_name = "LIST")]
    pub processors: Option<String>,
    /// Processor arguments: `processor:key=value,key2=value;processor2:key=value`.
    #[arg(long, value_name = "SPEC")]
    pub processor_args: Option<String>,
    /// Also write the results document to this file.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// What is printed on stdout: a table, or the results document.
    #[arg(long, value_enum, default_value_t = TableOrJson::Table)]
    pub format: TableOrJson,
    /// Seed for bootstrap intervals.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true, value_parser = parse_seed)]
    pub seed: u64,
    /// Stop at the first bad row instead of recording it and scoring the others.
    #[arg(long)]
    pub strict: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveFormat {
    Json,
    Csv,
    Yaml,
}

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// Size and contents of the cache.
    Info {
        #[arg(long, value_name = "FILE")]
        cache_path: Option<PathBuf>,
    },
    /// Delete cached outputs (all, or one model's).
    Clear {
        #[arg(long, value_name = "FILE")]
        cache_path: Option<PathBuf>,
        /// Only this model's outputs.
        #[arg(long)]
        model: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ListCommand {
    /// Models provided by the loaded plugins.
    Models {
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Every plugin file scanned, loaded or rejected, with the reason.
    Plugins {
        #[arg(long, value_enum, default_value_t = TableOrJson::Table)]
        format: TableOrJson,
    },
    /// Registered datasets and dataset groups.
    Datasets {
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Only datasets of this task (`mcqa`, `vqa`, `transcription`, ...: `list datasets` shows them).
        #[arg(long, value_name = "TASK")]
        task: Option<String>,
        /// Only datasets reporting this metric.
        #[arg(long, value_name = "METRIC")]
        metric: Option<String>,
    },
    /// Available metrics.
    Metrics {
        #[arg(long, value_enum, default_value_t = TableOrJson::Table)]
        format: TableOrJson,
    },
    /// Text processors (`--processors`) and their arguments.
    Processors {
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
    /// A dataset's definition: source, revision, schema, metrics, arguments, prompt example.
    Dataset {
        /// Registry name or alias, e.g. `medqa`.
        name: String,
        #[arg(long, value_enum, default_value_t = TableOrJson::Table)]
        format: TableOrJson,
    },
    /// A metric's definition.
    Metric {
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
    /// Where the model's plugin code runs: `in-process`, or `worker` (a child process; a crash
    /// fails only the items that cause it). Default: the configuration file's, else `in-process`.
    #[arg(long, value_enum)]
    pub isolation: Option<Isolation>,
    /// Seconds a worker may spend on the batch (or on loading) before it is killed.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_timeout: Option<u64>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
    Csv,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableOrJson {
    Table,
    Json,
}

/// A whole number in `low..=high`, or a message that says the allowed range.
fn whole_number(text: &str, low: u64, high: u64) -> Result<u64, String> {
    let range = if high == u64::MAX {
        format!("a whole number from {low} to {high} (2^64-1)")
    } else {
        format!("a whole number from {low} to {high}")
    };
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!("`{text}` is not {range}"));
    }
    match digits.parse::<u64>() {
        Ok(value) if (low..=high).contains(&value) => Ok(value),
        _ => Err(format!("{text} is out of range: expected {range}")),
    }
}

/// `--max-samples`: a whole number of rows, at least 1 (0 would evaluate nothing).
fn parse_max_samples(text: &str) -> Result<u64, String> {
    if text.trim() == "0" {
        return Err("must be at least 1 (0 would evaluate nothing)".to_owned());
    }
    whole_number(text, 1, u64::MAX)
}

fn parse_batch_size(text: &str) -> Result<u32, String> {
    whole_number(text, 1, 4096).map(|size| size as u32)
}

fn parse_seed(text: &str) -> Result<u64, String> {
    whole_number(text, 0, u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_out_of_range_say_the_range() {
        assert_eq!(parse_batch_size("8"), Ok(8));
        assert_eq!(parse_batch_size("-1").unwrap_err(), "`-1` is not a whole number from 1 to 4096");
        assert_eq!(
            parse_batch_size("5000").unwrap_err(),
            "5000 is out of range: expected a whole number from 1 to 4096"
        );
        assert!(parse_seed("-1").unwrap_err().contains("from 0 to 18446744073709551615"));
        assert_eq!(parse_seed("18446744073709551615"), Ok(u64::MAX));
        assert!(parse_max_samples("99999999999999999999").unwrap_err().contains("out of range"));
        assert!(parse_max_samples("0").unwrap_err().contains("at least 1"));
        assert!(parse_max_samples("ten").unwrap_err().contains("not a whole number from 1"));
    }
}
