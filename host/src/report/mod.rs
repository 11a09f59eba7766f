//! Results files: `results.json` (manifest + per-dataset metrics), the per-sample JSONL, CSV.
//! Files are written atomically (temporary file + rename) so a crash never leaves half a file.

mod redact;
mod time;
mod yaml;

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use serde_json::{json, Value};

pub use redact::redact;
pub use time::utc_timestamp;
pub use yaml::to_yaml;

use crate::engine::{DatasetOutcome, DatasetStatus};

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let directory = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(directory)?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "results".to_owned());
    let temporary = directory.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// The JSON entry of one dataset.
pub fn dataset_entry(outcome: &DatasetOutcome) -> Value {
    let mut entry = json!({
        "metrics": outcome.metrics,
        "task_type": outcome.plan.definition.task_type.as_str(),
        "dataset_args": redact(&serde_json::to_value(&outcome.plan.args).unwrap_or_default()),
        "timings": outcome.timings,
        "cache_hits": outcome.cache_hits,
        "cache_misses": outcome.cache_misses,
        "num_items": outcome.num_items,
        "num_failed": outcome.num_failed,
        "num_unparsed": outcome.num_unparsed,
        "status": outcome.status,
        "revision": outcome.revision,
    });
    if !outcome.subgroups.is_empty() {
        entry["subgroups"] = json!(outcome.subgroups);
    }
    if let Some(error) = &outcome.error {
        entry["error"] = error.clone().into();
    }
    entry
}

/// The whole results document.
pub fn results_document(manifest: &Value, outcomes: &[DatasetOutcome], status: &str) -> Value {
    let datasets: serde_json::Map<String, Value> =
        outcomes.iter().map(|outcome| (outcome.name.clone(), dataset_entry(outcome))).collect();
    let mut manifest = manifest.clone();
    manifest["status"] = status.into();
    manifest["dataset_sources"] = outcomes
        .iter()
        .map(|outcome| {
            (
                outcome.name.clone(),
                json!({
                    "repo": (!outcome.plan.definition.repo_id.is_empty()).then_some(outcome.plan.definition.repo_id),
                    "config": outcome.plan.definition.config,
                    "split": (!outcome.plan.definition.split.is_empty()).then_some(outcome.plan.definition.split),
                    "revision": outcome.revision,
                    "content_sha256": outcome.content_sha256,
                    "files": outcome.files.iter().map(|path| path.display().to_string()).collect::<Vec<_>>(),
                }),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    json!({ "manifest": manifest, "datasets": datasets })
}

/// One CSV row per (dataset, metric).
pub fn results_csv(outcomes: &[DatasetOutcome]) -> String {
    let mut out = String::from(
        "dataset,task_type,metric,score,stderr,ci_low,ci_high,num_samples,num_failed,num_unparsed,status\r\n",
    );
    let cell = |value: Option<f64>| value.map(|value| value.to_string()).unwrap_or_default();
    for outcome in outcomes {
        let status = serde_json::to_value(outcome.status)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default();
        let quoted = |text: &str| {
            if text.contains([',', '"', '\n']) {
                format!("\"{}\"", text.replace('"', "\"\""))
            } else {
                text.to_owned()
            }
        };
        if outcome.metrics.is_empty() {
            out.push_str(&format!(
                "{},{},,,,,,0,{},{},{status}\r\n",
                quoted(&outcome.name),
                outcome.plan.definition.task_type.as_str(),
                outcome.num_failed,
                outcome.num_unparsed
            ));
        }
        for (name, result) in &outcome.metrics {
            out.push_str(&format!(
                "{},{},{name},{},{},{},{},{},{},{},{status}\r\n",
                quoted(&outcome.name),
                outcome.plan.definition.task_type.as_str(),
                cell(result.score.score),
                cell(result.score.stderr),
                cell(result.score.ci_low),
                cell(result.score.ci_high),
                result.score.num_samples,
                result.num_failed,
                result.num_unparsed
            ));
        }
    }
    out
}

/// Whether any dataset failed or any item failed.
pub fn had_failures(outcomes: &[DatasetOutcome]) -> bool {
    outcomes.iter().any(|outcome| outcome.status == DatasetStatus::Failed || outcome.num_failed > 0)
}

/// Appends sample records as JSON lines, flushing per batch.
pub struct SamplesWriter {
    file: std::io::BufWriter<std::fs::File>,
    pub path: PathBuf,
}

impl SamplesWriter {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        Ok(SamplesWriter {
            file: std::io::BufWriter::new(std::fs::File::create(path)?),
            path: path.to_owned(),
        })
    }

    pub fn write(&mut self, samples: &[crate::engine::SampleRecord]) -> std::io::Result<()> {
        for sample in samples {
            serde_json::to_writer(&mut self.file, sample)?;
            self.file.write_all(b"\n")?;
        }
        self.file.flush()
    }
}
