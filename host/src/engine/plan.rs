//! Everything resolved before any work starts: model, configuration, datasets and their sources.

use std::{collections::BTreeMap, path::PathBuf};

use crate::{
    datasets::{catalog::DatasetDefinition, hub::DatasetRequest},
    plugins::RegisteredModel,
};

/// How the cache is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMode {
    /// Read and write.
    Normal,
    /// Do not read; overwrite with fresh outputs.
    Refresh,
    /// Neither read nor write.
    Off,
}

/// Where a dataset's rows come from.
#[derive(Clone, Debug)]
pub enum DatasetSource {
    /// Local files; `revision` is `local:<sha256 of their bytes>`.
    Local { files: Vec<PathBuf>, revision: String },
    /// The hub (or the local HF cache).
    Hub { repo: &'static str, config: Option<&'static str>, split: &'static str, revision: String },
}

/// What to ask the hub for.
pub fn hub_request<'a>(
    repo: &'a str,
    config: Option<&'a str>,
    split: &'a str,
    revision: &'a str,
) -> DatasetRequest<'a> {
    DatasetRequest { repo, config, split, revision }
}

/// One dataset to evaluate.
#[derive(Clone, Debug)]
pub struct DatasetPlan {
    /// The name results are reported under (registry name, or the local path given).
    pub name: String,
    pub definition: &'static DatasetDefinition,
    /// Validated arguments.
    pub args: BTreeMap<String, String>,
    pub source: DatasetSource,
}

impl DatasetPlan {
    /// The prompt template override (`confinement_instructions`), if given.
    pub fn template_override(&self) -> Option<&str> {
        self.args.get("confinement_instructions").map(String::as_str)
    }
}

/// A whole evaluation.
pub struct EvalPlan<'a> {
    pub model: &'a RegisteredModel,
    /// Merged configuration passed to the plugin (metadata defaults < file < --model-args, plus
    /// `model_path`).
    pub config: serde_json::Value,
    pub datasets: Vec<DatasetPlan>,
    pub batch_size: usize,
    pub max_samples: Option<u64>,
    pub cache: CacheMode,
    pub cache_path: PathBuf,
    pub offline: bool,
    pub seed: u64,
    /// Whether per-sample records are wanted (`--samples-output`); building them costs.
    pub collect_samples: bool,
    /// Identifies the plugin in cache keys: file name and model version.
    pub plugin_id: String,
    pub plugin_version: String,
}
