//! What a dataset's evaluation produces: its status, scores, counters and sample lines.

use std::{collections::BTreeMap, path::PathBuf};

use serde::Serialize;

use super::DatasetPlan;
use crate::metrics::Score;

/// How a dataset ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetStatus {
    /// Every row read and every item answered.
    Completed,
    /// Finished, but some rows were bad or some items failed (recorded, not scored).
    CompletedWithFailures,
    /// Nothing scored: the dataset could not be read, or the model could not load.
    Failed,
    /// Stopped by a signal; what was done is scored.
    Interrupted,
}

impl DatasetStatus {
    /// Whether the dataset was evaluated to its end (with or without failures).
    pub fn finished(self) -> bool {
        matches!(self, DatasetStatus::Completed | DatasetStatus::CompletedWithFailures)
    }
}

/// One line of the per-sample JSONL.
#[derive(Clone, Debug, Serialize)]
pub struct SampleRecord {
    pub dataset: String,
    pub id: String,
    /// What the model was given.
    pub prompt: String,
    pub raw_output: Option<String>,
    pub prediction: Option<String>,
    pub expected: String,
    pub correct: Option<bool>,
    pub from_cache: bool,
    pub error: Option<String>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The plugin's details of the answer (`finish_reason`, `truncated`, `cost_usd`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Box<serde_json::Value>>,
    /// The judge's verdict on each rubric criterion, for a graded dataset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grades: Option<Box<[CriterionGrade]>>,
}

/// One rubric criterion as the judge graded it (samples file).
#[derive(Clone, Debug, Serialize)]
pub struct CriterionGrade {
    pub criterion: String,
    pub points: f64,
    pub tags: Vec<String>,
    pub criteria_met: bool,
    pub explanation: String,
    pub from_cache: bool,
}

/// The samples line of a row that could not become an item (invalid JSON, a missing field).
#[derive(Clone, Debug, Serialize)]
pub struct BadRowRecord {
    pub dataset: String,
    /// 1-based row number within `file`.
    pub row: u64,
    pub file: String,
    /// The row's own `id`, when it could be read.
    pub id: Option<String>,
    pub error: BadRowError,
}

#[derive(Clone, Debug, Serialize)]
pub struct BadRowError {
    /// Always `bad_row`.
    pub code: &'static str,
    pub message: String,
}

/// One line of the samples file.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum SampleLine {
    Item(SampleRecord),
    BadRow(BadRowRecord),
}

/// A metric's result as written to results files.
#[derive(Clone, Debug, Serialize)]
pub struct MetricResult {
    #[serde(flatten)]
    pub score: Score,
    pub num_failed: u64,
    pub num_unparsed: u64,
    /// The same metric per subgroup (medmcqa's subjects, a local file's `group`), next to the
    /// headline number.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub breakdown: BTreeMap<String, Score>,
    /// For a stratified metric, per field, the best group's score minus the worst's.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub disparity: BTreeMap<String, f64>,
}

/// Wall-clock split of a dataset's evaluation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timings {
    /// Reading rows and building prompts.
    pub data_s: f64,
    /// Inside the plugin (load and run).
    pub model_s: f64,
    pub total_s: f64,
}

/// Everything known about one dataset after the loop.
#[derive(Clone, Debug)]
pub struct DatasetOutcome {
    pub name: String,
    pub plan: DatasetPlan,
    pub status: DatasetStatus,
    pub error: Option<String>,
    /// The revision evaluated (`local:<sha256>` or a hub commit).
    pub revision: Option<String>,
    pub files: Vec<PathBuf>,
    /// sha256 over the data files' bytes, in order.
    pub content_sha256: Option<String>,
    pub metrics: BTreeMap<String, MetricResult>,
    /// Per-subgroup scores, when the dataset has groups (e.g. medmcqa subjects).
    pub subgroups: BTreeMap<String, BTreeMap<String, Score>>,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub num_items: u64,
    pub num_failed: u64,
    pub num_unparsed: u64,
    /// Answers cut short by the model's token limit (they still count, usually as wrong).
    pub num_truncated: u64,
    /// Tokens and cost of the candidate model's calls in this run.
    pub usage: super::usage::Usage,
    /// The judge's work, for a graded dataset.
    pub judge: Option<super::grading::JudgeReport>,
    /// Rows that could not become items (also counted in `num_items` and `num_failed`).
    pub num_bad_rows: u64,
    /// The first bad rows' places and reasons (at most [`BAD_ROWS_LISTED`]).
    pub bad_rows: Vec<BadRowRecord>,
    /// Rows whose id an earlier row of the dataset already had, with the first few such ids.
    pub duplicate_ids: u64,
    pub duplicate_id_examples: Vec<String>,
    /// Rows whose `id` was null, an object or a list: they are identified by row number.
    pub ids_from_row_number: u64,
    pub timings: Timings,
}

/// How many bad rows and duplicate ids a results file lists (all are counted).
pub const BAD_ROWS_LISTED: usize = 20;

impl DatasetOutcome {
    pub fn not_started(plan: &DatasetPlan, status: DatasetStatus) -> Self {
        DatasetOutcome {
            name: plan.name.clone(),
            plan: plan.clone(),
            status,
            error: None,
            revision: None,
            files: Vec::new(),
            content_sha256: None,
            metrics: BTreeMap::new(),
            subgroups: BTreeMap::new(),
            cache_hits: 0,
            cache_misses: 0,
            num_items: 0,
            num_failed: 0,
            num_unparsed: 0,
            num_truncated: 0,
            usage: Default::default(),
            judge: None,
            num_bad_rows: 0,
            bad_rows: Vec::new(),
            duplicate_ids: 0,
            duplicate_id_examples: Vec::new(),
            ids_from_row_number: 0,
            timings: Timings::default(),
        }
    }
}
