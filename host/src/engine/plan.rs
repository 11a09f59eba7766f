//! Everything resolved before any work starts: model, configuration, datasets and their sources.

use std::{collections::BTreeMap, path::PathBuf};

use crate::{
    cache::KeyContext,
    datasets::{catalog::DatasetDefinition, extract::Extraction, hub::DatasetRequest},
    metrics::MetricHandle,
    plugins::RegisteredModel,
};

pub use crate::datasets::task::Scoring;

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
    /// Local files; their revision is `local:<sha256 of their bytes>`, computed while they are
    /// evaluated (a full read, kept off the critical path).
    Local { files: Vec<PathBuf> },
    /// The hub (or the local HF cache).
    Hub { repo: &'static str, config: Option<String>, split: &'static str, revision: String },
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
    /// The metrics to report: the definition's, or `--metrics`.
    pub metrics: Vec<MetricHandle>,
    /// Text processors applied, in order, to predictions and references before the metrics
    /// (not to prompts or the cache).
    pub processors: Vec<ProcessorStep>,
}

/// A configured text processor: its name and arguments (recorded in results) and itself.
#[derive(Clone, Debug)]
pub struct ProcessorStep {
    pub name: &'static str,
    pub args: BTreeMap<String, String>,
    /// The dataset's language, given to the processor (an argument may override it).
    pub language: Option<String>,
    pub processor: std::sync::Arc<dyn crate::processors::Processor>,
}

impl ProcessorStep {
    /// As results record it: `{name, args, language?}`.
    pub fn describe(&self) -> serde_json::Value {
        let mut described = serde_json::json!({"name": self.name, "args": self.args});
        if let Some(language) = &self.language {
            described["language"] = language.clone().into();
        }
        described
    }
}

impl DatasetPlan {
    /// Whether its answers go to the judge: its family has a grader and a metric reads grades.
    pub fn needs_judge(&self) -> bool {
        self.definition.family.grader().is_some() && self.metrics.iter().any(|metric| metric.needs_grades())
    }

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
    pub scoring: Scoring,
    /// `--strict`: a bad row fails its dataset instead of being recorded and skipped.
    pub strict: bool,
    /// The judge model for datasets whose answers a grader grades (`--judge`).
    pub judge: Option<super::grading::JudgePlan<'a>>,
}

impl EvalPlan<'_> {
    /// The extraction rule applied to `dataset`'s outputs under this plan's scoring.
    pub fn extraction(&self, dataset: &DatasetPlan) -> Extraction {
        match self.scoring {
            Scoring::Generate => dataset.definition.family.extraction(),
            Scoring::Loglikelihood => Extraction::LoglikelihoodArgmax,
        }
    }

    /// The model side of every cache key of this run.
    pub fn key_context(&self) -> KeyContext {
        let config = answer_config(self.model, &self.config);
        let context = KeyContext::new(&self.model.meta.name, &self.plugin_id, &self.plugin_version, &config);
        match self.scoring {
            // Generation keys stay as they were before scoring modes existed.
            Scoring::Generate => context,
            Scoring::Loglikelihood => context.scored_by(Scoring::Loglikelihood.as_str()),
        }
    }
}

/// `config` without the keys the model declares cannot change an answer (timeouts,
/// concurrency, thread counts: `cache_neutral_config`): what cache keys hash.
pub fn answer_config(model: &RegisteredModel, config: &serde_json::Value) -> serde_json::Value {
    let neutral = &model.meta.cache_neutral_config;
    match config {
        serde_json::Value::Object(map) if !neutral.is_empty() => serde_json::Value::Object(
            map.iter()
                .filter(|(key, _)| !neutral.iter().any(|name| name == *key))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}
